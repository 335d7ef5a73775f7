//! HyperLogLog values, byte for byte Redis 7.0's representation (`hyperloglog.c`), with no I/O.
//!
//! A HyperLogLog is an ordinary string value. Its bytes are a 16-byte header followed by the
//! registers:
//! - header: `HYLL`, the encoding (0 dense, 1 sparse), three zero bytes, and the cached
//!   cardinality as a little-endian u64 whose top bit marks the cache invalid;
//! - dense: 16384 registers of 6 bits, packed least significant bit first (12288 bytes);
//! - sparse: run-length opcodes covering all 16384 registers in order: `00xxxxxx` ZERO (1..64
//!   zero registers), `01xxxxxx yyyyyyyy` XZERO (1..16384 zero registers), `1vvvvvxx` VAL
//!   (1..4 registers holding 1..32).
//!
//! Elements hash with MurmurHash64A (seed `0xadc83b19`); the low 14 bits choose the register,
//! the rest give the run of zeros. The estimator is Ertl's improved one (`hllTau`/`hllSigma`).
//!
//! Invariants kept by every mutation here: a value that passed [`check`] keeps passing it; a
//! sparse value grows only while it stays within `sparse_max` bytes, otherwise it turns dense;
//! every register update invalidates the cached cardinality. Malformed sparse data is reported
//! as [`Corrupt`], never a panic.

/// Number of index bits.
pub const P: u32 = 14;
/// Bits of the hash left for the run of zeros.
pub const Q: u32 = 64 - P;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Header size in bytes.
pub const HDR_SIZE: usize = 16;
/// Size in bytes of a dense HyperLogLog (header included).
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * 6).div_ceil(8);
const REGISTER_MAX: u8 = 63;
const ENC_DENSE: u8 = 0;
const ENC_SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
const SEED: u64 = 0xadc8_3b19;

/// The representation is corrupted (a sparse HLL whose opcodes do not cover 16384 registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// The two encodings a stored HyperLogLog can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 6-bit registers.
    Dense,
    /// Run-length opcodes.
    Sparse,
}

/// True when `v` is a HyperLogLog string (Redis's `isHLLObjectOrReply` checks): long enough,
/// `HYLL` magic, a known encoding, and the exact size when dense.
pub fn check(v: &[u8]) -> bool {
    v.len() >= HDR_SIZE && &v[..4] == b"HYLL" && v[4] <= ENC_SPARSE && (v[4] != ENC_DENSE || v.len() == DENSE_SIZE)
}

/// The encoding of a value that passed [`check`].
pub fn encoding(v: &[u8]) -> Encoding {
    if v[4] == ENC_DENSE {
        Encoding::Dense
    } else {
        Encoding::Sparse
    }
}

/// An empty HyperLogLog: sparse, one XZERO covering every register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR_SIZE];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = ENC_SPARSE;
    for _ in 0..REGISTERS / XZERO_MAX_LEN {
        v.extend_from_slice(&xzero(XZERO_MAX_LEN));
    }
    v
}

/// The cached cardinality, if the cache is valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(v[8..16].try_into().ok()?);
    (card >> 63 == 0).then_some(card)
}

/// Stores a freshly computed cardinality in the cache.
pub fn set_cached(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality invalid.
pub fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

// ---- hashing ---------------------------------------------------------------------------------

/// MurmurHash64A, reading 8-byte blocks little-endian (as Redis does on every platform).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        let mut k = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its `0...01` pattern (1..=Q+1).
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit at Q bounds the count to Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- dense registers ---------------------------------------------------------------------------

/// Reads register `i` of a dense register array (the bytes after the header).
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = regs[byte] as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 | (b1 << 8)) >> fb) as u8) & REGISTER_MAX
}

/// Writes register `i` of a dense register array.
pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let word = (REGISTER_MAX as u16) << fb;
    let val = ((val & REGISTER_MAX) as u16) << fb;
    regs[byte] = (regs[byte] & !(word as u8)) | val as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = (*next & !((word >> 8) as u8)) | (val >> 8) as u8;
    }
}

/// Raises register `i` to `count` if it is lower; true if it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes -----------------------------------------------------------------------------

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` zero registers, one byte.
    Zero(usize),
    /// `len` zero registers, two bytes.
    XZero(usize),
    /// `len` registers set to `value`, one byte.
    Val(u8, usize),
}

impl Op {
    /// Decodes the opcode at `at`. An XZERO cut short by the end of the value reads a zero
    /// second byte, as Redis does (it reads the string's NUL terminator).
    fn at(ops: &[u8], at: usize) -> Op {
        let b = ops[at];
        match b >> 6 {
            0 => Op::Zero((b & 0x3f) as usize + 1),
            1 => Op::XZero((((b & 0x3f) as usize) << 8 | ops.get(at + 1).copied().unwrap_or(0) as usize) + 1),
            _ => Op::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1),
        }
    }
    fn width(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [0x40 | (l >> 8) as u8, (l & 0xff) as u8]
}

fn zero(len: usize) -> u8 {
    (len - 1) as u8
}

fn val(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Zero run encoded as ZERO when it fits, else XZERO.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        seq.extend_from_slice(&xzero(len));
    } else {
        seq.push(zero(len));
    }
}

/// Walks the sparse opcodes, calling `f(first_register, op)`; Corrupt unless they cover
/// exactly every register. An opcode running past the last register is Corrupt at once (as in
/// redis-server 7.0.15 with the CVE-2025-32023 fix, which the oracle runs).
fn walk(ops: &[u8], mut f: impl FnMut(usize, Op)) -> Result<(), Corrupt> {
    let (mut p, mut idx) = (0, 0usize);
    while p < ops.len() {
        let op = Op::at(ops, p);
        if idx + op.span() > REGISTERS {
            return Err(Corrupt);
        }
        f(idx, op);
        idx += op.span();
        p += op.width();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse HyperLogLog to dense in place (the header, cached cardinality included,
/// is kept). Returns true if it converted, false if it was dense already.
pub fn to_dense(v: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if encoding(v) == Encoding::Dense {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&v[..HDR_SIZE]);
    dense[4] = ENC_DENSE;
    let regs = &mut dense[HDR_SIZE..];
    walk(&v[HDR_SIZE..], |first, op| {
        if let Op::Val(value, len) = op {
            for i in first..first + len {
                dense_set(regs, i, value);
            }
        }
    })?;
    *v = dense;
    Ok(true)
}

/// Raises register `index` of a sparse HyperLogLog to `count` (Redis's `hllSparseSet`),
/// splitting the opcode that covers it and merging equal neighbours back, or turning the value
/// dense when `count` does not fit a VAL opcode or the value would outgrow `sparse_max`.
/// Returns whether the register changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Step 1: find the opcode covering `index`, and the one before it.
    let ops_len = v.len() - HDR_SIZE;
    let (mut p, mut first, mut prev) = (0usize, 0usize, None);
    let op = loop {
        if p >= ops_len {
            return Err(Corrupt);
        }
        let op = Op::at(&v[HDR_SIZE..], p);
        if index < first + op.span() {
            break op;
        }
        prev = Some(p);
        p += op.width();
        first += op.span();
    };
    let at = HDR_SIZE + p;
    // Step 2: the cases that rewrite one byte in place.
    match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => v[at] = val(count, 1),
        _ => {
            // Step 3: split into at most ZERO/XZERO-VAL-ZERO/XZERO (or VAL-VAL-VAL).
            let last = first + op.span() - 1;
            let mut seq = Vec::with_capacity(5);
            match op {
                Op::Val(cur, _) => {
                    if index != first {
                        seq.push(val(cur, index - first));
                    }
                    seq.push(val(count, 1));
                    if index != last {
                        seq.push(val(cur, last - index));
                    }
                }
                _ => {
                    if index != first {
                        push_zeros(&mut seq, index - first);
                    }
                    seq.push(val(count, 1));
                    if index != last {
                        push_zeros(&mut seq, last - index);
                    }
                }
            }
            if seq.len() > op.width() && v.len() + seq.len() - op.width() > sparse_max {
                return promote(v, index, count);
            }
            // A cut-short XZERO (last byte of the value) loses as many bytes of the new
            // sequence as it lacked, as in Redis.
            let old_len = v.len();
            let cut = (at + op.width()).saturating_sub(old_len);
            v.splice(at..old_len.min(at + op.width()), seq);
            v.truncate(v.len() - cut);
        }
    }
    // Step 4: merge adjacent VAL opcodes with equal values, scanning up to 5 opcodes from the
    // one before the change.
    let mut p = HDR_SIZE + prev.unwrap_or(0);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        match Op::at(v, p) {
            Op::XZero(_) => p += 2,
            Op::Zero(_) => p += 1,
            Op::Val(v1, l1) => match (p + 1 < v.len()).then(|| Op::at(v, p + 1)) {
                Some(Op::Val(v2, l2)) if v1 == v2 && l1 + l2 <= VAL_MAX_LEN => {
                    v[p + 1] = val(v1, l1 + l2);
                    v.remove(p);
                    // Stay on the merged opcode: it may merge with the next one too.
                }
                _ => p += 1,
            },
        }
    }
    invalidate(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    Ok(dense_raise(&mut v[HDR_SIZE..], index, count))
}

/// Raises register `index` to `count` in either encoding; true if it changed. A dense value
/// does not invalidate its cache here (PFADD and PFMERGE do it once at the end, as Redis).
pub fn set_register(v: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, Corrupt> {
    match encoding(v) {
        Encoding::Dense => Ok(dense_raise(&mut v[HDR_SIZE..], index, count)),
        Encoding::Sparse => sparse_set(v, index, count, sparse_max),
    }
}

/// Adds an element; true if a register changed.
pub fn add(v: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    set_register(v, index, count, sparse_max)
}

/// Merges a value into `max` (one byte per register): `max[i] = max(max[i], reg[i])`.
pub fn merge_into(max: &mut [u8], v: &[u8]) -> Result<(), Corrupt> {
    match encoding(v) {
        Encoding::Dense => {
            let regs = &v[HDR_SIZE..];
            for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
                *m = (*m).max(dense_get(regs, i));
            }
            Ok(())
        }
        Encoding::Sparse => walk(&v[HDR_SIZE..], |first, op| {
            if let Op::Val(value, len) = op {
                for m in &mut max[first..first + len] {
                    *m = (*m).max(value);
                }
            }
        }),
    }
}

/// The registers of a value, one byte each.
pub fn registers(v: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, v)?;
    Ok(regs)
}

/// The estimated cardinality of a value (ignores the cache).
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    match encoding(v) {
        Encoding::Dense => {
            let regs = &v[HDR_SIZE..];
            for i in 0..REGISTERS {
                histo[dense_get(regs, i) as usize] += 1;
            }
        }
        Encoding::Sparse => {
            // Unlike a merge, the histogram counts a VAL run past the end before failing.
            let ops = &v[HDR_SIZE..];
            let (mut p, mut idx) = (0, 0usize);
            while p < ops.len() {
                let op = Op::at(ops, p);
                let slot = if let Op::Val(value, _) = op { value as usize } else { 0 };
                histo[slot] += op.span() as u32;
                idx += op.span();
                p += op.width();
            }
            if idx != REGISTERS {
                return Err(Corrupt);
            }
        }
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of one-byte-per-register registers (multi-key PFCOUNT).
pub fn count_registers(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

/// Ertl's estimator over the register histogram (Redis 7.0's `hllCount`).
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// PFDEBUG DECODE's text of a sparse value: `z:N`, `Z:N` and `v:value,len`, space separated.
pub fn decode(v: &[u8]) -> String {
    let ops = &v[HDR_SIZE..];
    let mut out = Vec::new();
    let mut p = 0;
    while p < ops.len() {
        let op = Op::at(ops, p);
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(value, n) => format!("v:{value},{n}"),
        });
        p += op.width();
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_one_xzero() {
        let v = new_sparse();
        assert_eq!(v.len(), 18);
        assert_eq!(&v[16..], &[0x7f, 0xff]);
        assert!(check(&v));
        assert_eq!(count(&v), Ok(0));
        assert_eq!(decode(&v), "Z:16384");
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i * 7 % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i * 7 % 64) as u8, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for i in 0..5000u32 {
            let e = i.to_le_bytes();
            add(&mut sparse, &e, 3000).unwrap();
            add(&mut dense, &e, 3000).unwrap();
            if i % 500 == 0 {
                assert_eq!(count(&sparse), count(&dense));
                assert_eq!(registers(&sparse), registers(&dense));
            }
        }
        assert_eq!(encoding(&sparse), Encoding::Dense);
        let c = count(&dense).unwrap() as f64;
        assert!((c - 5000.0).abs() / 5000.0 < 0.03, "{c}");
    }

    #[test]
    fn corrupt_sparse_is_an_error() {
        // XZERO of 256 registers: the opcodes no longer cover 16384.
        let mut short = new_sparse();
        short[16] = 0x40;
        assert_eq!(count(&short), Err(Corrupt));
        assert_eq!(registers(&short), Err(Corrupt));
        let far = (0u32..).map(|i| i.to_le_bytes()).find(|e| pattern(e).0 >= 256).unwrap();
        assert_eq!(add(&mut short.clone(), &far, 3000), Err(Corrupt));
        assert_eq!(to_dense(&mut short), Err(Corrupt));
        // A VAL running past the last register.
        let mut over = new_sparse();
        over[17] = 0xfe;
        over.push(0xff);
        assert_eq!(registers(&over), Err(Corrupt));
    }
}
