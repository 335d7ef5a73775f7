//! The small-set (`listpack`) encoding of sorted sets: one byte buffer of entries in ascending
//! (score, member) order, like Redis's listpack. Every operation is a linear scan, which is what
//! Redis does too and is cheap for at most 128 members of at most 64 bytes.
//!
//! Entry layout: `score: f64 LE (8) | len: u8 | member bytes | len: u8`; the trailing length
//! lets iteration run from the back. Invariants: members are unique and at most 255 bytes
//! (the owner converts past 64), entries are sorted, scores are never NaN.

use std::cmp::Ordering;

/// Bytes an entry of a member of length `n` takes.
fn entry_len(n: usize) -> usize {
    n + 10
}

/// A packed sorted run of (score, member).
#[derive(Debug, Clone, Default)]
pub struct Pack {
    buf: Vec<u8>,
    len: usize,
}

/// Decodes the entry at `off`: (member, score, next offset).
fn at(buf: &[u8], off: usize) -> (&[u8], f64, usize) {
    let mut s = [0u8; 8];
    s.copy_from_slice(&buf[off..off + 8]);
    let n = buf[off + 8] as usize;
    let m = &buf[off + 9..off + 9 + n];
    (m, f64::from_le_bytes(s), off + entry_len(n))
}

impl Pack {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
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
        let mut e = Vec::with_capacity(entry_len(m.len()));
        e.extend_from_slice(&score.to_le_bytes());
        e.push(m.len() as u8);
        e.extend_from_slice(m);
        e.push(m.len() as u8);
        self.buf.reserve_exact(e.len());
        self.buf.splice(off..off, e);
        self.len += 1;
        old
    }

    /// Removes a member; returns its score if it was there.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let (off, _, s) = self.find(m)?;
        self.buf.drain(off..off + entry_len(m.len()));
        self.len -= 1;
        if self.buf.capacity() > self.buf.len() + 256 {
            self.buf.shrink_to_fit();
        }
        Some(s)
    }

    /// How many members have a score below `v` (`<= v` when `inclusive`).
    pub fn count_below(&self, v: f64, inclusive: bool) -> usize {
        self.iter().take_while(|(_, s)| *s < v || (inclusive && *s == v)).count()
    }

    /// All members, ascending, double-ended.
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, front: 0, back: self.buf.len(), left: self.len }
    }

    /// Members of ranks `lo..hi` (clamped), ascending, double-ended.
    pub fn range(&self, lo: usize, hi: usize) -> Iter<'_> {
        let hi = hi.min(self.len);
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
        self.buf.capacity()
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
        let n = self.buf[self.back - 1] as usize;
        let off = self.back - entry_len(n);
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
            let m = format!("{}", rng.u32(..60)).into_bytes().repeat(rng.usize(0..3));
            if rng.u32(..3) == 0 {
                assert_eq!(p.remove(&m), model.remove(&m));
            } else {
                let s = rng.u32(..5) as f64 - 2.0;
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
