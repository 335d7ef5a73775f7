//! The large-set (`skiplist`) encoding of sorted sets: an order-statistics treap over
//! (score, member) plus a member index, both in O(log n).
//!
//! Nodes live in one dense `Vec` (a slab addressed by `u32`); each node owns its member bytes
//! once and carries its subtree size, so rank, select, insert and delete are O(log n)
//! (expected; priorities are random, as Redis's skiplist levels are). The member index is a
//! `hashbrown::HashTable<u32>` of slab positions hashed by member bytes, so a member is stored
//! once and the index costs ~5-9 bytes per element.
//!
//! Invariants:
//! - in-order traversal is ascending (score, member), members compared as bytes (memcmp then
//!   length, as Redis's `sdscmp`); scores are never NaN and -0 is stored as 0;
//! - `size` of a node = 1 + sizes of its children; `nodes.len()` = number of members;
//! - the parent's priority >= its children's (max-heap);
//! - `index` holds exactly one entry per node, its slab position. Removal moves the last slab
//!   node into the hole (swap-remove) and repoints its parent and its index entry.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::hash::BuildHasher;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    left: u32,
    right: u32,
    size: u32,
    prio: u32,
}

/// Redis's order: score, then member bytes.
fn cmp_key(sa: f64, ma: &[u8], sb: f64, mb: &[u8]) -> Ordering {
    sa.partial_cmp(&sb).unwrap_or(Ordering::Equal).then_with(|| ma.cmp(mb))
}

/// An order-statistics tree of (score, member) with a member -> position index.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    root: u32,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Default for Tree {
    fn default() -> Self {
        Tree { nodes: Vec::new(), root: NIL, index: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl Tree {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn hash(&self, m: &[u8]) -> u64 {
        self.hasher.hash_one(m)
    }

    fn find(&self, m: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index.find(self.hash(m), |&i| &*nodes[i as usize].member == m).copied()
    }

    fn size(&self, t: u32) -> u32 {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].size
        }
    }

    fn fix(&mut self, t: u32) {
        let n = &self.nodes[t as usize];
        let s = 1 + self.size(n.left) + self.size(n.right);
        self.nodes[t as usize].size = s;
    }

    /// Node `a` sorts before node `b`.
    fn less(&self, a: u32, b: u32) -> bool {
        let (x, y) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        cmp_key(x.score, &x.member, y.score, &y.member) == Ordering::Less
    }

    /// The score of a member.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.find(m).map(|i| self.nodes[i as usize].score)
    }

    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        if let Some(i) = self.find(m) {
            let old = self.nodes[i as usize].score;
            if old != score {
                self.root = self.detach(self.root, i);
                let n = &mut self.nodes[i as usize];
                n.score = score;
                n.left = NIL;
                n.right = NIL;
                n.size = 1;
                self.root = self.attach(self.root, i);
            }
            return Some(old);
        }
        assert!(self.nodes.len() < NIL as usize - 1, "sorted set too large");
        let i = self.nodes.len() as u32;
        self.nodes.push(Node { member: m.into(), score, left: NIL, right: NIL, size: 1, prio: fastrand::u32(..) });
        let h = self.hash(m);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.insert_unique(h, i, |&j| hasher.hash_one(&*nodes[j as usize].member));
        self.root = self.attach(self.root, i);
        None
    }

    /// Removes a member; returns its score if it was there.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let i = self.find(m)?;
        let score = self.nodes[i as usize].score;
        self.root = self.detach(self.root, i);
        let h = self.hash(m);
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        let last = (self.nodes.len() - 1) as u32;
        if i != last {
            // Repoint the last node's parent (or the root) and its index entry to `i`.
            if self.root == last {
                self.root = i;
            } else {
                let mut cur = self.root;
                loop {
                    let goes_left = self.less(last, cur);
                    let n = &mut self.nodes[cur as usize];
                    let next = if goes_left { &mut n.left } else { &mut n.right };
                    if *next == last {
                        *next = i;
                        break;
                    }
                    cur = *next;
                }
            }
            let h = self.hash(&self.nodes[last as usize].member);
            if let Some(slot) = self.index.find_mut(h, |&j| j == last) {
                *slot = i;
            }
        }
        self.nodes.swap_remove(i as usize);
        if self.nodes.capacity() > 64 && self.nodes.len() < self.nodes.capacity() / 4 {
            self.nodes.shrink_to(self.nodes.len() * 2);
            self.index.shrink_to(self.nodes.len(), |&j| self.hasher.hash_one(&*self.nodes[j as usize].member));
        }
        Some(score)
    }

    /// Splits subtree `t` into (< key of node k, >= key of node k).
    fn split(&mut self, t: u32, k: u32) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.less(t, k) {
            let (l, r) = self.split(self.nodes[t as usize].right, k);
            self.nodes[t as usize].right = l;
            self.fix(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.nodes[t as usize].left, k);
            self.nodes[t as usize].left = r;
            self.fix(t);
            (l, t)
        }
    }

    /// Joins two subtrees where every key of `a` sorts before every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.fix(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.fix(b);
            b
        }
    }

    /// Inserts the lone node `k` into subtree `t`; returns the new subtree root.
    fn attach(&mut self, t: u32, k: u32) -> u32 {
        if t == NIL {
            return k;
        }
        if self.nodes[k as usize].prio > self.nodes[t as usize].prio {
            let (l, r) = self.split(t, k);
            let n = &mut self.nodes[k as usize];
            n.left = l;
            n.right = r;
            self.fix(k);
            return k;
        }
        if self.less(k, t) {
            let l = self.attach(self.nodes[t as usize].left, k);
            self.nodes[t as usize].left = l;
        } else {
            let r = self.attach(self.nodes[t as usize].right, k);
            self.nodes[t as usize].right = r;
        }
        self.nodes[t as usize].size += 1;
        t
    }

    /// Unlinks node `k` (which is in subtree `t`); returns the new subtree root.
    fn detach(&mut self, t: u32, k: u32) -> u32 {
        if t == k {
            let n = &self.nodes[k as usize];
            return self.merge(n.left, n.right);
        }
        if self.less(k, t) {
            let l = self.detach(self.nodes[t as usize].left, k);
            self.nodes[t as usize].left = l;
        } else {
            let r = self.detach(self.nodes[t as usize].right, k);
            self.nodes[t as usize].right = r;
        }
        self.nodes[t as usize].size -= 1;
        t
    }

    /// 0-based ascending rank of a member.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        let k = self.find(m)?;
        let (mut cur, mut r) = (self.root, 0usize);
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            if cur == k {
                return Some(r + self.size(n.left) as usize);
            }
            if self.less(k, cur) {
                cur = n.left;
            } else {
                r += self.size(n.left) as usize + 1;
                cur = n.right;
            }
        }
        None
    }

    /// How many members have a score below `v` (`<= v` when `inclusive`).
    pub fn count_below(&self, v: f64, inclusive: bool) -> usize {
        let (mut cur, mut r) = (self.root, 0usize);
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            if n.score < v || (inclusive && n.score == v) {
                r += self.size(n.left) as usize + 1;
                cur = n.right;
            } else {
                cur = n.left;
            }
        }
        r
    }

    /// The first rank where `pred` fails, assuming it holds on a prefix of the order.
    pub fn partition_point(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        let (mut cur, mut r) = (self.root, 0usize);
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            if pred(&n.member) {
                r += self.size(n.left) as usize + 1;
                cur = n.right;
            } else {
                cur = n.left;
            }
        }
        r
    }

    /// Members of ranks `lo..hi` (clamped to the length), ascending, double-ended.
    pub fn range(&self, lo: usize, hi: usize) -> Iter<'_> {
        let hi = hi.min(self.len());
        let mut it = Iter { t: self, front: Vec::new(), back: Vec::new(), left: hi.saturating_sub(lo) };
        if it.left == 0 {
            return it;
        }
        // Front stack: the path to rank `lo`, keeping the nodes still to visit (went left).
        let (mut cur, mut k) = (self.root, lo as u32);
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            let ls = self.size(n.left);
            if k < ls {
                it.front.push(cur);
                cur = n.left;
            } else if k == ls {
                it.front.push(cur);
                break;
            } else {
                k -= ls + 1;
                cur = n.right;
            }
        }
        let (mut cur, mut k) = (self.root, (hi - 1) as u32);
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            let ls = self.size(n.left);
            if k > ls {
                it.back.push(cur);
                k -= ls + 1;
                cur = n.right;
            } else if k == ls {
                it.back.push(cur);
                break;
            } else {
                cur = n.left;
            }
        }
        it
    }

    /// Approximate heap bytes (slab, index, member allocations).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.index.capacity() * 5
            + self.nodes.iter().map(|n| n.member.len().next_multiple_of(8).max(8)).sum::<usize>()
    }

    /// Checks every invariant (tests).
    #[cfg(test)]
    pub fn check(&self) {
        fn walk(t: &Tree, n: u32, seen: &mut usize) -> u32 {
            if n == NIL {
                return 0;
            }
            let x = &t.nodes[n as usize];
            for c in [x.left, x.right] {
                if c != NIL {
                    assert!(t.nodes[c as usize].prio <= x.prio, "heap order");
                }
            }
            let s = 1 + walk(t, x.left, seen) + walk(t, x.right, seen);
            assert_eq!(s, x.size, "subtree size");
            *seen += 1;
            s
        }
        let mut seen = 0;
        walk(self, self.root, &mut seen);
        assert_eq!(seen, self.nodes.len());
        assert_eq!(self.index.len(), self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            assert_eq!(self.find(&n.member), Some(i as u32));
        }
        let v: Vec<_> = self.range(0, self.len()).collect();
        assert!(v.windows(2).all(|w| cmp_key(w[0].1, w[0].0, w[1].1, w[1].0) == Ordering::Less));
    }
}

/// In-order iterator over a rank window of a [`Tree`].
pub struct Iter<'a> {
    t: &'a Tree,
    front: Vec<u32>,
    back: Vec<u32>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let t = self.t;
        let top = self.front.pop()?;
        let n = &t.nodes[top as usize];
        let mut cur = n.right;
        while cur != NIL {
            self.front.push(cur);
            cur = t.nodes[cur as usize].left;
        }
        self.left -= 1;
        Some((&n.member, n.score))
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
        let t = self.t;
        let top = self.back.pop()?;
        let n = &t.nodes[top as usize];
        let mut cur = n.left;
        while cur != NIL {
            self.back.push(cur);
            cur = t.nodes[cur as usize].right;
        }
        self.left -= 1;
        Some((&n.member, n.score))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Reference model: (score bits ordered, member) -> (), plus member -> score.
    #[derive(Default)]
    struct Model {
        scores: std::collections::HashMap<Vec<u8>, f64>,
    }
    impl Model {
        fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
            let mut v: Vec<_> = self.scores.iter().map(|(m, s)| (m.clone(), *s)).collect();
            v.sort_by(|a, b| cmp_key(a.1, &a.0, b.1, &b.0));
            v
        }
    }

    fn member(rng: &mut fastrand::Rng, space: u32) -> Vec<u8> {
        let n = rng.u32(..space);
        match n % 3 {
            0 => n.to_string().into_bytes(),
            1 => format!("m{n}").into_bytes(),
            _ => vec![b'x'; (n % 7) as usize],
        }
    }

    #[test]
    fn random_operations_match_a_reference_model() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..6 {
            let space = [10, 50, 300, 2000, 5000, 20000][round];
            let mut t = Tree::default();
            let mut m = Model::default();
            for step in 0..20000 {
                let key = member(&mut rng, space);
                match rng.u32(..10) {
                    0..=4 => {
                        let s = [0.0, 1.0, -1.5, f64::INFINITY, f64::NEG_INFINITY][rng.usize(..5)]
                            + if rng.bool() { rng.u32(..20) as f64 } else { 0.0 };
                        assert_eq!(t.insert(&key, s), m.scores.insert(key.clone(), s));
                    }
                    5..=7 => assert_eq!(t.remove(&key), m.scores.remove(&key)),
                    _ => assert_eq!(t.score(&key), m.scores.get(&key).copied()),
                }
                assert_eq!(t.len(), m.scores.len());
                if step % 997 == 0 {
                    t.check();
                    let sorted = m.sorted();
                    let got: Vec<_> = t.range(0, usize::MAX).map(|(a, b)| (a.to_vec(), b)).collect();
                    assert_eq!(got, sorted);
                    let back: Vec<_> = t.range(0, t.len()).rev().map(|(a, b)| (a.to_vec(), b)).collect();
                    assert_eq!(back, sorted.iter().rev().cloned().collect::<Vec<_>>());
                    for (r, (mm, _)) in sorted.iter().enumerate() {
                        assert_eq!(t.rank(mm), Some(r));
                    }
                    for _ in 0..20 {
                        let lo = rng.usize(..=sorted.len() + 1);
                        let hi = rng.usize(..=sorted.len() + 2);
                        let want: Vec<_> = sorted.iter().skip(lo).take(hi.saturating_sub(lo)).cloned().collect();
                        let mut it = t.range(lo, hi);
                        assert_eq!(it.len(), want.len());
                        // Alternate ends until they meet.
                        let (mut f, mut b) = (Vec::new(), Vec::new());
                        loop {
                            let x = if rng.bool() {
                                it.next().map(|x| (x, true))
                            } else {
                                it.next_back().map(|x| (x, false))
                            };
                            match x {
                                Some(((a, s), true)) => f.push((a.to_vec(), s)),
                                Some(((a, s), false)) => b.push((a.to_vec(), s)),
                                None => break,
                            }
                        }
                        b.reverse();
                        f.extend(b);
                        assert_eq!(f, want);
                        let v = [0.0, 1.0, 5.0, 19.0, f64::INFINITY, f64::NEG_INFINITY][rng.usize(..6)];
                        assert_eq!(t.count_below(v, false), sorted.iter().filter(|x| x.1 < v).count());
                        assert_eq!(t.count_below(v, true), sorted.iter().filter(|x| x.1 <= v).count());
                    }
                }
            }
            // Drain to empty through removals.
            let all: Vec<Vec<u8>> = m.scores.keys().cloned().collect();
            for k in all {
                assert!(t.remove(&k).is_some());
            }
            assert!(t.is_empty());
            t.check();
        }
    }

    #[test]
    fn rank_is_logarithmic_in_depth() {
        let mut t = Tree::default();
        let mut ordered = BTreeMap::new();
        for i in 0..100_000u32 {
            let m = format!("member:{i}");
            t.insert(m.as_bytes(), (i % 1000) as f64);
            ordered.insert(((i % 1000), m.clone()), ());
        }
        fn depth(t: &Tree, n: u32) -> usize {
            if n == NIL {
                0
            } else {
                1 + depth(t, t.nodes[n as usize].left).max(depth(t, t.nodes[n as usize].right))
            }
        }
        // Expected ~ 2.99 * log2(n) ~ 50 for a random treap of 1e5.
        assert!(depth(&t, t.root) < 80, "depth {}", depth(&t, t.root));
        for (r, ((_, m), _)) in ordered.iter().enumerate().step_by(997) {
            assert_eq!(t.rank(m.as_bytes()), Some(r));
            let (got, _) = t.range(r, r + 1).next().expect("rank in range");
            assert_eq!(got, m.as_bytes());
        }
    }
}
