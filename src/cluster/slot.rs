//! Hash slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM: poly 0x1021, init 0, no reflection) one byte at a time, built at
/// compile time. The `crc16` crate computes the same function; this table lets the untagged
/// case fold the `{` scan into the CRC loop, since every keyed command hashes its key.
const CRC_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// `CRC_TABLES[k]` is [`CRC_TABLE`] advanced by `8 * k` more zero bits: the CRC of a byte
/// followed by `k` zero bytes. By CRC linearity eight bytes then take eight independent
/// lookups (`T7[b0] ^ T6[b1] ^ ... ^ T0[b7]`, the running CRC folded into `b0 b1`) instead of
/// a chain of eight, which the latency-bound byte loop is.
const CRC_TABLES: [[u16; 256]; 8] = {
    let mut t = [[0u16; 256]; 8];
    t[0] = CRC_TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let v = t[k - 1][i];
            t[k][i] = (v << 8) ^ CRC_TABLE[(v >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// Bytes of `w` equal to `{` have their top bit set in the result (the classic "has zero
/// byte" test on `w ^ 0x7b7b...`; exact for the lowest match, which is all `key_slot` needs
/// to know: whether there is one).
#[inline(always)]
fn brace_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = w ^ (ONES * b'{' as u64);
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// The hash slot of a key, as Redis's `keyHashSlot`: only the first `{` counts, with the first
/// `}` after it; an empty tag (`{}`) or a missing `}` hashes the whole key.
#[inline]
pub fn key_slot(key: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if key.len() >= 8 && std::arch::is_x86_feature_detected!("pclmulqdq") {
        // SAFETY: the CPU has the instructions (checked just above).
        return unsafe { clmul::key_slot(key) };
    }
    key_slot_by_table(key)
}

/// [`key_slot`] with the lookup tables, eight bytes per step.
fn key_slot_by_table(key: &[u8]) -> u16 {
    let t = &CRC_TABLES;
    let mut crc = 0u16;
    let mut words = key.chunks_exact(8);
    for (i, c) in words.by_ref().enumerate() {
        let raw = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if brace_bits(raw) != 0 {
            return tagged_slot(key, 8 * i);
        }
        let w = raw ^ ((crc as u64) << 48);
        crc = t[7][(w >> 56) as usize]
            ^ t[6][(w >> 48) as usize & 0xFF]
            ^ t[5][(w >> 40) as usize & 0xFF]
            ^ t[4][(w >> 32) as usize & 0xFF]
            ^ t[3][(w >> 24) as usize & 0xFF]
            ^ t[2][(w >> 16) as usize & 0xFF]
            ^ t[1][(w >> 8) as usize & 0xFF]
            ^ t[0][w as usize & 0xFF];
    }
    let rest = words.remainder();
    let at = key.len() - rest.len();
    let mut pairs = rest.chunks_exact(2);
    for (i, p) in pairs.by_ref().enumerate() {
        if p[0] == b'{' || p[1] == b'{' {
            return tagged_slot(key, at + 2 * i);
        }
        let x = crc ^ u16::from_be_bytes([p[0], p[1]]);
        crc = t[1][(x >> 8) as usize] ^ t[0][(x & 0xFF) as usize];
    }
    if let [b] = pairs.remainder() {
        if *b == b'{' {
            return tagged_slot(key, key.len() - 1);
        }
        crc = (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize];
    }
    crc & 0x3FFF
}

/// The CRC by carry-less multiplication: a block of up to 16 bytes costs four multiplications
/// and no table reads (a 16-byte key: about a third of the table loop's instructions).
///
/// A CRC with a zero start value is the remainder of the message, as a polynomial over GF(2)
/// with its first byte's top bit highest, times x^16, divided by P = x^16 + x^12 + x^5 + 1.
/// Leading zero bytes do not change it, so a short block is taken right-aligned in 128 bits;
/// each later 16-byte block starts from the CRC so far folded into its top 16 bits (as the
/// table loop folds it into its words).
#[cfg(target_arch = "x86_64")]
mod clmul {
    use std::arch::x86_64::{
        __m128i, _mm_clmulepi64_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_extract_epi64, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
    };

    /// P with its x^16 term.
    const P: u64 = 0x1_1021;

    /// Quotient and remainder of `num / den` over GF(2).
    const fn divmod(mut num: u128, den: u128) -> (u128, u128) {
        let den_deg = 127 - den.leading_zeros();
        let mut q = 0u128;
        while num != 0 && 127 - num.leading_zeros() >= den_deg {
            let shift = (127 - num.leading_zeros()) - den_deg;
            q |= 1 << shift;
            num ^= den << shift;
        }
        (q, num)
    }

    /// x^80 mod P and x^64 mod P: they fold a block's high 64 bits, then the remaining high 16.
    const X80: u64 = divmod(1 << 80, P as u128).1 as u64;
    const X64: u64 = divmod(1 << 64, P as u128).1 as u64;
    /// floor(x^64 / P), Barrett's constant: the quotient of a 64-bit remainder by P is
    /// floor((r >> 16) * MU / x^48), exactly (there are no carries to correct for).
    const MU: u64 = divmod(1 << 64, P as u128).0 as u64;

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    unsafe fn mul(a: u64, b: u64) -> u128 {
        let r = _mm_clmulepi64_si128(_mm_set_epi64x(0, a as i64), _mm_set_epi64x(0, b as i64), 0x00);
        ((_mm_extract_epi64(r, 1) as u64 as u128) << 64) | _mm_cvtsi128_si64(r) as u64 as u128
    }

    /// The CRC of a block of 16 bytes (big-endian in `v`; leading zero bytes for shorter).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    unsafe fn block(v: u128) -> u16 {
        // v * x^16 = hi * x^80 + lo * x^16; fold hi with x^80 mod P: under 80 bits.
        let t = mul((v >> 64) as u64, X80) ^ ((v as u64 as u128) << 16);
        // Fold the 16 bits above 64 with x^64 mod P: under 64 bits.
        let u = t as u64 ^ mul((t >> 64) as u64, X64) as u64;
        // Barrett: u mod P.
        let q = (mul(u >> 16, MU) >> 48) as u64;
        (u ^ mul(q, P) as u64) as u16
    }

    #[inline]
    fn be64(key: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(key[at..at + 8].try_into().unwrap_or([0; 8]))
    }

    #[inline]
    fn be128(key: &[u8], at: usize) -> u128 {
        u128::from_be_bytes(key[at..at + 16].try_into().unwrap_or([0; 16]))
    }

    /// Whether any byte of `w` is `{` (no false positives when none is).
    #[inline]
    fn has_brace(w: u64) -> bool {
        super::brace_bits(w) != 0
    }

    /// Whether any of the 16 bytes of `key` from `at` is `{`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    unsafe fn has_brace16(key: &[u8], at: usize) -> bool {
        let block = &key[at..at + 16];
        // SAFETY: `block` holds 16 readable bytes; the load has no alignment requirement.
        let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'{' as i8))) != 0
    }

    /// [`super::key_slot`] of a key of at least 8 bytes.
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    pub(super) unsafe fn key_slot(key: &[u8]) -> u16 {
        let n = key.len();
        if n < 16 {
            // Two overlapping words cover 8..15 bytes; the bytes they share agree.
            let (hi, lo) = (be64(key, 0), be64(key, n - 8));
            if has_brace(hi) || has_brace(lo) {
                return super::tagged_slot(key, 0);
            }
            let v = ((hi as u128) << (8 * (n - 8))) | lo as u128;
            return block(v) & 0x3FFF;
        }
        // 16 bytes per compare; the last (overlapping) block covers the tail.
        let mut at = 0;
        while at + 16 <= n {
            if has_brace16(key, at) {
                return super::tagged_slot(key, 0);
            }
            at += 16;
        }
        if at < n && has_brace16(key, n - 16) {
            return super::tagged_slot(key, 0);
        }
        // The first block: the first n % 16 bytes (or 16), right-aligned.
        let head = match n % 16 {
            0 => 16,
            r => r,
        };
        let mut crc = block(be128(key, 0) >> (8 * (16 - head)));
        let mut at = head;
        while at < n {
            crc = block(be128(key, at) ^ ((crc as u128) << 112));
            at += 16;
        }
        crc & 0x3FFF
    }
}

/// The slot of a key whose first `{` is at or after `from`.
#[cold]
fn tagged_slot(key: &[u8], from: usize) -> u16 {
    let Some(open) = memchr::memchr(b'{', &key[from..]).map(|i| from + i) else {
        return crc16::State::<crc16::XMODEM>::calculate(key) & 0x3FFF;
    };
    let hashed = match memchr::memchr(b'}', &key[open + 1..]) {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) & 0x3FFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_live_redis() {
        let cases: &[(&[u8], u16)] = &[
            (b"name", 5798),
            (b"age", 741),
            (b"1", 9842),
            (b"key:{hash_tag}:111", 2515),
            (b"123456789", 12739),
            (b"{user1000}.following", 3443),
            (b"{}a", 10875),
            (b"{a}{b}", 15495),
            (b"a{}{b}", 15033),
            (b"foo{{bar}}zap", 4015),
            (b"{a", 10276),
            (b"a}", 5921),
            (b"{}", 15257),
            (b"", 0),
            (b"}{a}", 15495),
        ];
        for (k, s) in cases {
            assert_eq!(key_slot(k), *s, "key {:?}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn every_length_by_table_and_by_multiplication_matches_the_crc16_crate() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300 {
            for _ in 0..20 {
                let key: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        match (seed >> 8) as u8 {
                            b'{' => b'x',
                            b => b,
                        }
                    })
                    .collect();
                let want = crc16::State::<crc16::XMODEM>::calculate(&key) & 0x3FFF;
                assert_eq!(key_slot_by_table(&key), want, "table, len {}", len);
                assert_eq!(key_slot(&key), want, "key_slot, len {}", len);
                #[cfg(target_arch = "x86_64")]
                if len >= 8 && std::arch::is_x86_feature_detected!("pclmulqdq") {
                    // SAFETY: the CPU has the instructions.
                    assert_eq!(unsafe { clmul::key_slot(&key) }, want, "multiplication, len {}", len);
                }
            }
        }
    }

    #[test]
    fn table_matches_the_crc16_crate() {
        let mut key = Vec::new();
        for i in 0..2000u32 {
            key.push((i.wrapping_mul(2654435761) >> 13) as u8 & 0x7F | if i % 7 == 0 { 0x80 } else { 0 });
            let untagged: Vec<u8> = key.iter().map(|&b| if b == b'{' { b'x' } else { b }).collect();
            assert_eq!(key_slot(&untagged), crc16::State::<crc16::XMODEM>::calculate(&untagged) & 0x3FFF);
        }
    }

    /// Redis's `keyHashSlot`, written plainly.
    fn reference_slot(key: &[u8]) -> u16 {
        let crc = |b: &[u8]| crc16::State::<crc16::XMODEM>::calculate(b) & 0x3FFF;
        let Some(open) = key.iter().position(|&b| b == b'{') else { return crc(key) };
        match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => crc(&key[open + 1..open + 1 + len]),
            _ => crc(key),
        }
    }

    #[test]
    fn braces_at_every_position_of_the_words_and_the_tail() {
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(key_slot(&base), reference_slot(&base));
            for open in 0..len {
                for close in open..=len {
                    let mut k = base.clone();
                    k[open] = b'{';
                    if close < len {
                        k[close] = b'}';
                    }
                    assert_eq!(key_slot(&k), reference_slot(&k), "key {:?}", String::from_utf8_lossy(&k));
                    assert_eq!(key_slot_by_table(&k), reference_slot(&k));
                    #[cfg(target_arch = "x86_64")]
                    if len >= 8 && std::arch::is_x86_feature_detected!("pclmulqdq") {
                        // SAFETY: the CPU has the instructions.
                        assert_eq!(unsafe { clmul::key_slot(&k) }, reference_slot(&k));
                    }
                }
            }
        }
        // Bytes next to `{` (0x7b) in value, where a carry-based byte test could misfire.
        for b in [0x7a, 0x7c, 0xfb, 0x7b ^ 0x80, 0x00, 0xff] {
            for len in 1..20 {
                let k = vec![b; len];
                assert_eq!(key_slot(&k), reference_slot(&k));
            }
        }
    }
}
