//! Sorted-set values. Two encodings, reported by OBJECT ENCODING as Redis names them:
//! `listpack` ([`zset_pack`](super::zset_pack): one packed sorted buffer, linear scans) while
//! the set has at most `zset-max-listpack-entries` (128) members of at most
//! `zset-max-listpack-value` (64) bytes (the thresholds in force, see
//! [`thresholds`](super::thresholds)), and `skiplist`
//! ([`zset_tree`](super::zset_tree): an order-statistics tree plus a member index, O(log n)
//! insert, delete, score lookup, rank and rank-window access) after that. Conversion is one
//! way, on the insert that crosses a threshold, like Redis's `zsetAdd`.
//!
//! Order is Redis's: score, then member bytes (memcmp, shorter first on a common prefix).
//! No NaN is ever stored and -0 is stored as 0.

use super::zset_pack::{self, Pack};
use super::zset_tree::{self, Tree};

use super::thresholds;

/// A sorted set.
#[derive(Debug, Clone)]
pub enum ZSetValue {
    /// The `listpack` encoding.
    Small(Pack),
    /// The `skiplist` encoding (boxed: keeps the value small).
    Big(Box<Tree>),
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::Small(Pack::default())
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over a rank window of either encoding.
pub enum Iter<'a> {
    /// Over a packed run.
    Small(zset_pack::Iter<'a>),
    /// Over the tree.
    Big(zset_tree::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next(),
            Iter::Big(i) => i.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(i) => i.size_hint(),
            Iter::Big(i) => i.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next_back(),
            Iter::Big(i) => i.next_back(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl ZSetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Small(p) => p.len(),
            ZSetValue::Big(t) => t.len(),
        }
    }
    /// True when empty (a key never holds an empty sorted set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The score of a member.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Small(p) => p.score(m),
            ZSetValue::Big(t) => t.score(m),
        }
    }
    /// Inserts or updates; returns the previous score. Converts to `skiplist` when the set
    /// would exceed `zset-max-listpack-entries` members or `m` is longer than
    /// `zset-max-listpack-value` bytes.
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        let score = if score == 0.0 { 0.0 } else { score };
        if let ZSetValue::Small(p) = self {
            if m.len() <= thresholds::zset_value() && (p.len() < thresholds::zset_entries() || p.score(m).is_some()) {
                return p.insert(m, score);
            }
            self.make_skiplist();
        }
        match self {
            ZSetValue::Big(t) => t.insert(m, score),
            ZSetValue::Small(p) => p.insert(m, score),
        }
    }
    /// Removes a member; returns true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            ZSetValue::Small(p) => p.remove(m).is_some(),
            ZSetValue::Big(t) => t.remove(m).is_some(),
        }
    }
    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, usize::MAX)
    }
    /// Members of ascending ranks `lo..hi` (clamped to the length): O(log n) to start on a
    /// `skiplist`, then O(1) amortized per member, from either end.
    pub fn range(&self, lo: usize, hi: usize) -> Iter<'_> {
        match self {
            ZSetValue::Small(p) => Iter::Small(p.range(lo, hi)),
            ZSetValue::Big(t) => Iter::Big(t.range(lo, hi)),
        }
    }
    /// 0-based ascending rank of a member.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        match self {
            ZSetValue::Small(p) => p.rank(m),
            ZSetValue::Big(t) => t.rank(m),
        }
    }
    /// How many members score below `v` (`<= v` when `inclusive`): the rank where a score
    /// range starts or ends.
    pub fn count_below(&self, v: f64, inclusive: bool) -> usize {
        match self {
            ZSetValue::Small(p) => p.count_below(v, inclusive),
            ZSetValue::Big(t) => t.count_below(v, inclusive),
        }
    }
    /// The first rank where `pred` fails, for a `pred` that holds on a prefix of the members in
    /// order (a binary search on `skiplist`, O(log n); a scan on `listpack`, where it is also
    /// the first failing member when `pred` is not monotonic, as Redis's listpack scans find).
    pub fn partition_point(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        match self {
            ZSetValue::Small(p) => p.iter().position(|(m, _)| !pred(m)).unwrap_or(p.len()),
            ZSetValue::Big(t) => t.partition_point(pred),
        }
    }
    /// Switches to the `skiplist` encoding for good (SORT does this, as in Redis).
    pub fn make_skiplist(&mut self) {
        if let ZSetValue::Small(p) = self {
            let mut t = Tree::default();
            for (x, s) in p.iter() {
                t.insert(x, s);
            }
            *self = ZSetValue::Big(Box::new(t));
        }
    }
    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSetValue::Small(_) => "listpack",
            ZSetValue::Big(_) => "skiplist",
        }
    }
    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        match self {
            ZSetValue::Small(p) => p.heap_size(),
            ZSetValue::Big(t) => std::mem::size_of::<Tree>() + t.heap_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_at_redis_thresholds_and_keeps_order() {
        let mut z = ZSetValue::default();
        for i in 0..128 {
            z.insert(format!("m{i:03}").as_bytes(), (i % 7) as f64);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"m005", 100.0); // an update does not grow the set
        assert_eq!(z.encoding(), "listpack");
        let before: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        z.insert(b"extra", -1.0);
        assert_eq!(z.encoding(), "skiplist");
        let after: Vec<_> = z.iter().skip(1).map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(after, before);
        assert_eq!(z.rank(b"extra"), Some(0));
        assert_eq!(z.rank(b"m005"), Some(128));

        let mut w = ZSetValue::default();
        w.insert(&[b'v'; 64], 1.0);
        assert_eq!(w.encoding(), "listpack");
        w.insert(&[b'v'; 65], 1.0);
        assert_eq!(w.encoding(), "skiplist");
        assert!(w.remove(&[b'v'; 65]) && w.remove(&[b'v'; 64]));
        assert!(w.is_empty());
        assert_eq!(w.encoding(), "skiplist");
    }

    #[test]
    fn negative_zero_is_stored_as_zero_and_equality_is_by_content() {
        let mut a = ZSetValue::default();
        a.insert(b"x", -0.0);
        assert!(a.score(b"x").is_some_and(|s| s.is_sign_positive()));
        let mut b = ZSetValue::default();
        for i in 0..200 {
            b.insert(i.to_string().as_bytes(), 1.0);
        }
        for i in 0..200 {
            if i.to_string() != "x" {
                b.remove(i.to_string().as_bytes());
            }
        }
        b.insert(b"x", 0.0);
        assert_eq!(a, b);
        assert_eq!(b.count_below(0.0, false), 0);
        assert_eq!(b.count_below(0.0, true), 1);
    }
}
