//! The small-set (`listpack`) encoding of sorted sets: one byte buffer of entries in ascending
//! (score, member) order, like Redis's listpack. Every operation is a linear scan, which is what
//! Redis does too and is cheap for at most 128 members of at most 64 bytes.
//!
//! Entry layout: `mlen: u8 | member | tag: u8 | score | elen: u8`. The tag's low nibble is the
//! score's width: an i8, i16 or i32 mantissa (1-3, as Redis's listpack keeps integer scores as
//! integers) or an f64 LE (0); its high nibble `e` (0-4) scales an integer mantissa, the score
//! being `mantissa / 10^e`, so short decimals such as `12.5` or `0.25` take 1-4 bytes instead of 8
//! (kept only when that division gives back exactly the same f64). `elen`, the whole entry's
//! length, lets iteration run from the back. Invariants: members are unique and at most 64 bytes
//! (the owner converts past that; an entry is then at most 75 bytes), entries are sorted, scores
//! are never NaN. The buffer is kept exactly sized (a `Box<[u8]>`, reallocated on every change).

use std::cmp::Ordering;

/// The longest member an entry can hold (its one-byte `mlen` and `elen`, with the widest
/// score); `zset-max-listpack-value` is capped at this.
pub const MAX_MEMBER: usize = 255 - 11;

/// Powers of ten a stored mantissa is divided by (index: the tag's high nibble).
const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1000.0, 10000.0];

/// The (tag, payload) a score is stored as: the narrowest integer mantissa with the fewest
/// decimals that gives the score back exactly, else the f64.
fn encode_score(s: f64, out: &mut Vec<u8>) {
    for (e, p) in POW10.iter().enumerate() {
        let m = (s * p).round();
        if !(i32::MIN as f64..=i32::MAX as f64).contains(&m) || (m as i32) as f64 / p != s {
            continue;
        }
        let v = m as i32;
        let e = (e as u8) << 4;
        if let Ok(b) = i8::try_from(v) {
            out.push(e | 1);
            out.extend_from_slice(&b.to_le_bytes());
        } else if let Ok(h) = i16::try_from(v) {
            out.push(e | 2);
            out.extend_from_slice(&h.to_le_bytes());
        } else {
            out.push(e | 3);
            out.extend_from_slice(&v.to_le_bytes());
        }
        return;
    }
    out.push(0);
    out.extend_from_slice(&s.to_le_bytes());
}

/// A packed sorted run of (score, member).
#[derive(Debug, Clone, Default)]
pub struct Pack {
    buf: Box<[u8]>,
    len: u32,
}

/// Decodes the entry at `off`: (member, score, next offset).
fn at(buf: &[u8], off: usize) -> (&[u8], f64, usize) {
    let n = buf[off] as usize;
    let m = &buf[off + 1..off + 1 + n];
    let p = off + 2 + n;
    let tag = buf[p - 1];
    let (mantissa, k) = match tag & 0x0F {
        1 => (i8::from_le_bytes([buf[p]]) as f64, 1),
        2 => (i16::from_le_bytes([buf[p], buf[p + 1]]) as f64, 2),
        3 => (i32::from_le_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]) as f64, 4),
        _ => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[p..p + 8]);
            return (m, f64::from_le_bytes(b), p + 9);
        }
    };
    let score = match tag >> 4 {
        0 => mantissa,
        e => mantissa / POW10[e as usize],
    };
    (m, score, p + k + 1)
}

impl Pack {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (offset, rank, score) of a member.
    fn find(&self, m: &[u8]) -> Option<(usize, usize, f64)> {
        let (mut off, mut rank) = (0, 0);
        while off < self.buf.len() {
            let (x, s, next) = at(&self.buf, off);
            if x == m {
                return Some((off, rank, s));
            }
            off = next;
            rank += 1;
        }
        None
    }

    /// The score of a member.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.find(m).map(|(_, _, s)| s)
    }

    /// 0-based ascending rank of a member.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        self.find(m).map(|(_, r, _)| r)
    }

    /// Inserts or updates (`m` must be at most 255 bytes); returns the previous score.
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        let old = self.remove(m);
        let mut off = 0;
        while off < self.buf.len() {
            let (x, s, next) = at(&self.buf, off);
            if s.partial_cmp(&score).unwrap_or(Ordering::Equal).then_with(|| x.cmp(m)) == Ordering::Greater {
                break;
            }
            off = next;
        }
        let mut e = Vec::with_capacity(m.len() + 11);
        e.push(m.len() as u8);
        e.extend_from_slice(m);
        encode_score(score, &mut e);
        e.push((e.len() + 1) as u8);
        // Exactly sized, as Redis reallocates its listpack on every change.
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.reserve_exact(e.len());
        v.splice(off..off, e);
        self.buf = v.into_boxed_slice();
        self.len += 1;
        old
    }

    /// Removes a member; returns its score if it was there.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let (off, _, s) = self.find(m)?;
        let end = at(&self.buf, off).2;
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.drain(off..end);
        self.buf = v.into_boxed_slice();
        self.len -= 1;
        Some(s)
    }

    /// How many members have a score below `v` (`<= v` when `inclusive`).
    pub fn count_below(&self, v: f64, inclusive: bool) -> usize {
        self.iter().take_while(|(_, s)| *s < v || (inclusive && *s == v)).count()
    }

    /// All members, ascending, double-ended.
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, front: 0, back: self.buf.len(), left: self.len() }
    }

    /// Members of ranks `lo..hi` (clamped), ascending, double-ended.
    pub fn range(&self, lo: usize, hi: usize) -> Iter<'_> {
        let hi = hi.min(self.len());
        let lo = lo.min(hi);
        let mut it = self.iter();
        let mut off = 0;
        for _ in 0..lo {
            off = at(&self.buf, off).2;
        }
        it.front = off;
        for _ in lo..hi {
            off = at(&self.buf, off).2;
        }
        it.back = off;
        it.left = hi - lo;
        it
    }

    /// Heap bytes of the buffer.
    pub fn heap_size(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator over a window of a [`Pack`].
pub struct Iter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (m, s, next) = at(self.buf, self.front);
        self.front = next;
        self.left -= 1;
        Some((m, s))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let off = self.back - self.buf[self.back - 1] as usize;
        let (m, s, _) = at(self.buf, off);
        self.back = off;
        self.left -= 1;
        Some((m, s))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_run_matches_a_sorted_model() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut p = Pack::default();
        let mut model: std::collections::HashMap<Vec<u8>, f64> = Default::default();
        for _ in 0..5000 {
            let m = format!("{}", rng.u32(..60))
                .into_bytes()
                .repeat(rng.usize(0..3) * rng.usize(1..12))
                .into_iter()
                .take(64)
                .collect::<Vec<u8>>();
            if rng.u32(..3) == 0 {
                assert_eq!(p.remove(&m), model.remove(&m));
            } else {
                let s = match rng.u32(..7) {
                    0 => rng.u32(..5) as f64 - 2.0,
                    1 => rng.i32(..) as f64,
                    2 => rng.i32(-40000..40000) as f64,
                    3 => rng.f64() * 4.0 - 2.0,
                    4 => [f64::INFINITY, f64::NEG_INFINITY, 1e300, 2147483648.0, -2147483649.0][rng.usize(..5)],
                    5 => (rng.u32(..8) as f64) / 2.0 - 2.0,
                    _ => [12.5, -0.25, 0.1, 0.3, 99.99, -1234.5678, 1e-5, 214748.3648, 0.1 + 0.2][rng.usize(..9)],
                };
                assert_eq!(p.insert(&m, s), model.insert(m.clone(), s));
            }
            let mut want: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
            want.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
            let got: Vec<_> = p.iter().map(|(m, s)| (m.to_vec(), s)).collect();
            assert_eq!(got, want);
            let back: Vec<_> = p.iter().rev().map(|(m, s)| (m.to_vec(), s)).collect();
            assert_eq!(back, want.iter().rev().cloned().collect::<Vec<_>>());
            let (lo, hi) = (rng.usize(..=want.len() + 1), rng.usize(..=want.len() + 1));
            let r: Vec<_> = p.range(lo, hi).rev().map(|(m, s)| (m.to_vec(), s)).collect();
            let w: Vec<_> = want.iter().skip(lo).take(hi.saturating_sub(lo)).rev().cloned().collect();
            assert_eq!(r, w);
            if let Some((m, _)) = want.get(lo) {
                assert_eq!(p.rank(m), Some(lo));
            }
            assert_eq!(p.count_below(0.0, true), want.iter().filter(|x| x.1 <= 0.0).count());
        }
    }
}
