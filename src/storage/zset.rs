//! Sorted-set values: member -> score plus an ordered index of (score, member). Reported as
//! `listpack` while small (<= 128 members of <= 64 bytes) and `skiplist` after that, converting
//! one way like Redis. Rank queries walk the ordered index (O(rank), not yet O(log n)).

use hashbrown::HashMap;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// Redis's default `zset-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis's default `zset-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// A score with Redis's ordering (no NaN is ever stored; -0 is stored as 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// A sorted set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSetValue {
    scores: HashMap<Box<[u8]>, f64>,
    order: BTreeSet<(Score, Box<[u8]>)>,
    big: bool,
}

impl ZSetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }
    /// True when empty (a key never holds an empty sorted set).
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
    /// The score of a member.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.scores.get(m).copied()
    }
    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        let score = if score == 0.0 { 0.0 } else { score };
        let old = self.scores.insert(m.into(), score);
        if let Some(o) = old {
            self.order.remove(&(Score(o), Box::from(m)));
        }
        self.order.insert((Score(score), m.into()));
        if self.scores.len() > MAX_LISTPACK_ENTRIES || m.len() > MAX_LISTPACK_VALUE {
            self.big = true;
        }
        old
    }
    /// Removes a member; returns true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.scores.remove(m) {
            Some(s) => {
                self.order.remove(&(Score(s), Box::from(m)));
                true
            }
            None => false,
        }
    }
    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.order.iter().map(|(s, m)| (&m[..], s.0))
    }
    /// 0-based ascending rank of a member.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        let s = self.score(m)?;
        Some(self.order.range(..(Score(s), Box::from(m))).count())
    }
    /// Switches to the `skiplist` encoding for good (SORT does this, as in Redis).
    pub fn make_skiplist(&mut self) {
        self.big = true;
    }
    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.big {
            "skiplist"
        } else {
            "listpack"
        }
    }
    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        self.scores.keys().map(|m| 2 * m.len() + 64).sum()
    }
}
