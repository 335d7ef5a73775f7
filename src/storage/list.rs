//! List values: a quicklist-like run of packed nodes, as Redis 7.0 stores every list.
//!
//! A [`ListValue`] is a `VecDeque` of nodes; a node is one buffer holding its entries back to
//! back (with room at the end the list grows from, see `list_buf`), plus its entry count, so
//! index lookups skip whole nodes by count and only scan inside one node (from its nearer end).
//!
//! Entry layout: `len | bytes | len reversed`, where `len` is the element's length as a LEB128
//! varint (1 byte up to 127, 2 up to 16383, ...) and the trailing copy holds the same varint bytes
//! in reverse order, so a node can be walked backwards from its end (RPOP, LRANGE from the tail,
//! negative LPOS ranks, LREM with a negative count), like listpack's back-length. Elements are
//! kept as their exact bytes (no integer re-encoding), so readers get slices out of the buffer.
//!
//! Node size follows `list-max-listpack-size` (node-wide, see [`set_fill`]): -1..-5 allow at
//! most 4/8/16/32/64 KB of entries per node (default -2: 8 KB), a positive value at most that
//! many entries (and at most 8 KB, Redis's safety limit), as in Redis's quicklist. An element too
//! big for any node gets a node of its own.
//!
//! Invariants: no node is empty; `len` is the sum of the node counts; a node over the limit
//! holds exactly one entry. Inserts split a node that goes over the limit; deletes inside the
//! list (LREM, LTRIM, LINSERT/LSET shrinking) merge a node with a neighbour when both fit in
//! one node; pops at the ends only drop emptied nodes (as Redis does).

use super::list_buf::NodeBuf;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};

/// Byte limits of fill -1..-5.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Most bytes a node holds under a positive (count) fill.
const SAFETY_LIMIT: usize = 8192;

static FILL: AtomicI64 = AtomicI64::new(-2);

/// Sets the node-wide `list-max-listpack-size` (clamped to -5..=32767 like Redis's quicklist).
pub fn set_fill(fill: i64) {
    FILL.store(fill.clamp(-5, 32767), Ordering::Relaxed);
}

/// Whether a node of `bytes` bytes and `count` entries is within `fill`.
fn fits_fill(fill: i64, bytes: usize, count: usize) -> bool {
    if fill < 0 {
        bytes <= SIZE_LEVELS[(fill.unsigned_abs() as usize - 1).min(4)]
    } else {
        bytes <= SAFETY_LIMIT && count <= fill as usize
    }
}

/// The node-wide `list-max-listpack-size` in force (DEBUG OBJECT's `ql_listpack_max`).
pub fn fill() -> i64 {
    FILL.load(Ordering::Relaxed)
}

fn fits(bytes: usize, count: usize) -> bool {
    fits_fill(fill(), bytes, count)
}

/// Most bytes of entries a node with more than one entry holds under the fill in force.
fn node_bytes_max() -> usize {
    let fill = fill();
    if fill < 0 {
        SIZE_LEVELS[(fill.unsigned_abs() as usize - 1).min(4)]
    } else {
        SAFETY_LIMIT
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Bytes an element of `len` bytes takes in a node.
fn entry_size(len: usize) -> usize {
    len + 2 * varint_len(len)
}

/// Encodes `e` into `dst`, which is exactly `entry_size(e.len())` long.
fn write_entry(dst: &mut [u8], e: &[u8]) {
    let h = varint_len(e.len());
    let last = dst.len() - 1;
    let mut n = e.len();
    for i in 0..h {
        let b = (n & 0x7f) as u8 | if i + 1 < h { 0x80 } else { 0 };
        dst[i] = b;
        dst[last - i] = b;
        n >>= 7;
    }
    dst[h..h + e.len()].copy_from_slice(e);
}

/// The entry starting at `off`: (element start, element end, next entry's offset).
fn read_fwd(buf: &[u8], off: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, off);
    loop {
        let b = buf[i];
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (i, i + n, i + n + (i - off))
}

/// The entry ending at `end`: (entry start, element start, element end).
fn read_back(buf: &[u8], end: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, end);
    loop {
        i -= 1;
        let b = buf[i];
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let h = end - i;
    (i - n - h, i - n, i)
}

/// One packed node.
#[derive(Clone, Default)]
struct Node {
    buf: NodeBuf,
    count: u32,
}

impl Node {
    fn single(e: &[u8]) -> Node {
        let mut buf = vec![0; entry_size(e.len())].into_boxed_slice();
        write_entry(&mut buf, e);
        Node { buf: NodeBuf::exact(buf), count: 1 }
    }

    /// Byte offset of entry `k` (`k <= count`), scanning from the nearer end.
    fn offset(&self, k: usize) -> usize {
        let c = self.count as usize;
        if k <= c / 2 {
            (0..k).fold(0, |off, _| read_fwd(&self.buf, off).2)
        } else {
            (k..c).fold(self.buf.len(), |end, _| read_back(&self.buf, end).0)
        }
    }

    /// The element of entry `k`.
    fn get(&self, k: usize) -> &[u8] {
        let (s, e, _) = read_fwd(&self.buf, self.offset(k));
        &self.buf[s..e]
    }

    /// Replaces bytes `start..end` with the encoded `e` (or just removes them); at the node's
    /// ends this moves no other entry while the buffer has room there (see `list_buf`).
    fn splice(&mut self, start: usize, end: usize, e: Option<&[u8]>) {
        let add = e.map_or(0, |e| entry_size(e.len()));
        self.buf.splice(start, end, add, node_bytes_max(), |dst| {
            if let Some(e) = e {
                write_entry(dst, e);
            }
        });
    }

    /// Removes up to `limit` entries equal to `e`, scanning from the back if `from_back`.
    fn remove_matching(&mut self, e: &[u8], limit: usize, from_back: bool) -> usize {
        let buf = &self.buf;
        let mut hits: Vec<(usize, usize)> = Vec::new();
        if from_back {
            let mut end = buf.len();
            while end > 0 && hits.len() < limit {
                let (st, s, t) = read_back(buf, end);
                if &buf[s..t] == e {
                    hits.push((st, end));
                }
                end = st;
            }
            hits.reverse();
        } else {
            let mut off = 0;
            while off < buf.len() && hits.len() < limit {
                let (s, t, next) = read_fwd(buf, off);
                if &buf[s..t] == e {
                    hits.push((off, next));
                }
                off = next;
            }
        }
        if hits.is_empty() {
            return 0;
        }
        let gone: usize = hits.iter().map(|(s, t)| t - s).sum();
        let mut v = Vec::with_capacity(buf.len() - gone);
        let mut at = 0;
        for (s, t) in &hits {
            v.extend_from_slice(&buf[at..*s]);
            at = *t;
        }
        v.extend_from_slice(&buf[at..]);
        self.buf = NodeBuf::exact(v.into_boxed_slice());
        self.count -= hits.len() as u32;
        hits.len()
    }
}

/// A list value.
#[derive(Clone, Default)]
pub struct ListValue {
    nodes: VecDeque<Node>,
    len: usize,
}

impl ListValue {
    /// An empty list.
    pub fn new() -> ListValue {
        ListValue::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty (a key never holds an empty list).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (for tests and DEBUG-style introspection).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Small lists get an exactly-sized node table (most lists have one node).
    fn reserve_node(&mut self) {
        if self.nodes.len() == self.nodes.capacity() && self.nodes.len() < 4 {
            self.nodes.reserve_exact(1);
        }
    }

    /// Appends an element.
    pub fn push_back(&mut self, e: &[u8]) {
        let size = entry_size(e.len());
        match self.nodes.back_mut() {
            Some(n) if fits(n.buf.len() + size, n.count as usize + 1) => {
                let end = n.buf.len();
                n.splice(end, end, Some(e));
                n.count += 1;
            }
            _ => {
                self.reserve_node();
                self.nodes.push_back(Node::single(e));
            }
        }
        self.len += 1;
    }

    /// Prepends an element.
    pub fn push_front(&mut self, e: &[u8]) {
        let size = entry_size(e.len());
        match self.nodes.front_mut() {
            Some(n) if fits(n.buf.len() + size, n.count as usize + 1) => {
                n.splice(0, 0, Some(e));
                n.count += 1;
            }
            _ => {
                self.reserve_node();
                self.nodes.push_front(Node::single(e));
            }
        }
        self.len += 1;
    }

    /// Removes and returns the first element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let n = self.nodes.front_mut()?;
        let (s, t, next) = read_fwd(&n.buf, 0);
        let out = n.buf[s..t].to_vec();
        if n.count == 1 {
            self.nodes.pop_front();
        } else {
            n.splice(0, next, None);
            n.count -= 1;
        }
        self.len -= 1;
        Some(out)
    }

    /// Removes and returns the last element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let n = self.nodes.back_mut()?;
        let end = n.buf.len();
        let (st, s, t) = read_back(&n.buf, end);
        let out = n.buf[s..t].to_vec();
        if n.count == 1 {
            self.nodes.pop_back();
        } else {
            n.splice(st, end, None);
            n.count -= 1;
        }
        self.len -= 1;
        Some(out)
    }

    /// Removes and returns up to `n` elements from the front (in that order).
    pub fn take_front(&mut self, n: usize) -> Vec<Vec<u8>> {
        let out: Vec<Vec<u8>> = self.iter().take(n).map(<[u8]>::to_vec).collect();
        self.drain_front(out.len());
        out
    }

    /// Removes and returns up to `n` elements from the back (last first).
    pub fn take_back(&mut self, n: usize) -> Vec<Vec<u8>> {
        let out: Vec<Vec<u8>> = self.iter().rev().take(n).map(<[u8]>::to_vec).collect();
        self.truncate(self.len - out.len());
        out
    }

    /// (node, entry within the node) of element `i`; `(node count, 0)` when `i >= len`.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (k, n) in self.nodes.iter().enumerate() {
                let c = n.count as usize;
                if i < c {
                    return (k, i);
                }
                i -= c;
            }
        } else if i < self.len {
            let mut from_end = self.len - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                let c = n.count as usize;
                if from_end <= c {
                    return (k, c - from_end);
                }
                from_end -= c;
            }
        }
        (self.nodes.len(), 0)
    }

    /// (node, byte offset) where element `i` starts; `(node count, 0)` when `i >= len`.
    fn pos(&self, i: usize) -> (usize, usize) {
        match self.locate(i) {
            (k, j) if k < self.nodes.len() => (k, self.nodes[k].offset(j)),
            end => end,
        }
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (k, j) = self.locate(i);
        self.nodes.get(k).map(|n| n.get(j))
    }

    /// Replaces element `i`; false when out of range.
    pub fn set(&mut self, i: usize, e: &[u8]) -> bool {
        let (k, j) = self.locate(i);
        let Some(n) = self.nodes.get_mut(k) else { return false };
        let off = n.offset(j);
        let next = read_fwd(&n.buf, off).2;
        let grew = entry_size(e.len()) > next - off;
        n.splice(off, next, Some(e));
        if grew {
            self.split(k);
        } else {
            self.compact(k);
        }
        true
    }

    /// Inserts `e` so that it becomes element `i` (`i >= len` appends).
    pub fn insert(&mut self, i: usize, e: &[u8]) {
        if i == 0 {
            return self.push_front(e);
        }
        if i >= self.len {
            return self.push_back(e);
        }
        let (k, j) = self.locate(i);
        self.len += 1;
        if j == 0 {
            // At a node's head: the previous node's tail is the same place, if it has room.
            let p = &mut self.nodes[k - 1];
            if fits(p.buf.len() + entry_size(e.len()), p.count as usize + 1) {
                let end = p.buf.len();
                p.splice(end, end, Some(e));
                p.count += 1;
                return;
            }
        }
        let n = &mut self.nodes[k];
        let off = n.offset(j);
        n.splice(off, off, Some(e));
        n.count += 1;
        self.split(k);
    }

    /// Splits node `k` while it is over the limit and has more than one entry: at the first
    /// entry boundary past half its bytes, or before its last entry.
    fn split(&mut self, k: usize) {
        let n = &mut self.nodes[k];
        if n.count < 2 || fits(n.buf.len(), n.count as usize) {
            return;
        }
        let half = n.buf.len() / 2;
        let (mut cut, mut taken) = (0, 0u32);
        loop {
            let next = read_fwd(&n.buf, cut).2;
            if next == n.buf.len() {
                break;
            }
            cut = next;
            taken += 1;
            if cut >= half {
                break;
            }
        }
        let right = Node { buf: n.buf[cut..].into(), count: n.count - taken };
        n.buf = n.buf[..cut].into();
        n.count = taken;
        self.nodes.insert(k + 1, right);
        self.split(k + 1);
        self.split(k);
    }

    /// Merges node `k + 1` into node `k` when the two fit in one node.
    fn try_merge(&mut self, k: usize) -> bool {
        let (Some(a), Some(b)) = (self.nodes.get(k), self.nodes.get(k + 1)) else { return false };
        if !fits(a.buf.len() + b.buf.len(), (a.count + b.count) as usize) {
            return false;
        }
        let Some(b) = self.nodes.remove(k + 1) else { return false };
        let a = &mut self.nodes[k];
        let mut v = Vec::with_capacity(a.buf.len() + b.buf.len());
        v.extend_from_slice(&a.buf);
        v.extend_from_slice(&b.buf);
        a.buf = NodeBuf::exact(v.into_boxed_slice());
        a.count += b.count;
        true
    }

    /// After entries were deleted from node `k`: drops it if empty, else merges it with its
    /// neighbours when they fit together.
    fn compact(&mut self, k: usize) {
        if k >= self.nodes.len() {
            return;
        }
        if self.nodes[k].count == 0 {
            self.nodes.remove(k);
            if k > 0 {
                self.try_merge(k - 1);
            }
            return;
        }
        let at = if k > 0 && self.try_merge(k - 1) { k - 1 } else { k };
        self.try_merge(at);
    }

    /// LREM: removes up to `limit` elements equal to `e`, from the tail if `from_back`.
    pub fn remove_value(&mut self, e: &[u8], limit: usize, from_back: bool) -> usize {
        let (mut removed, mut touched) = (0, Vec::new());
        let nodes = self.nodes.len();
        for step in 0..nodes {
            if removed >= limit {
                break;
            }
            let k = if from_back { nodes - 1 - step } else { step };
            let got = self.nodes[k].remove_matching(e, limit - removed, from_back);
            if got > 0 {
                removed += got;
                touched.push(k);
            }
        }
        self.len -= removed;
        // Highest index first, so compacting one node leaves the lower indexes valid.
        touched.sort_unstable_by(|a, b| b.cmp(a));
        for k in touched {
            self.compact(k);
        }
        removed
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len {
            return;
        }
        if n == 0 {
            return self.clear();
        }
        let (k, j) = self.locate(n);
        self.nodes.truncate(k + 1);
        if j == 0 {
            self.nodes.pop_back();
        } else {
            let node = &mut self.nodes[k];
            let off = node.offset(j);
            let end = node.buf.len();
            node.splice(off, end, None);
            node.count = j as u32;
        }
        self.len = n;
        if self.nodes.len() >= 2 {
            self.try_merge(self.nodes.len() - 2);
        }
    }

    /// Removes the first `n` elements.
    pub fn drain_front(&mut self, n: usize) {
        if n >= self.len {
            return self.clear();
        }
        if n == 0 {
            return;
        }
        let (k, j) = self.locate(n);
        self.nodes.drain(..k);
        if j > 0 {
            let node = &mut self.nodes[0];
            let off = node.offset(j);
            node.splice(0, off, None);
            node.count -= j as u32;
        }
        self.len -= n;
        self.try_merge(0);
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.nodes = VecDeque::new();
        self.len = 0;
    }

    /// All elements, front to back (reversible).
    pub fn iter(&self) -> Iter<'_> {
        Iter { nodes: &self.nodes, front: (0, 0), back: (self.nodes.len(), 0), left: self.len }
    }

    /// Elements `start..end` (clamped to the list), reversible.
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        let end = end.min(self.len);
        let start = start.min(end);
        Iter { nodes: &self.nodes, front: self.pos(start), back: self.pos(end), left: end - start }
    }

    /// Bytes of packed entries over all nodes.
    pub fn packed_bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.buf.len()).sum()
    }

    /// Heap bytes: the node table and every node's buffer (with its room).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }
}

impl PartialEq for ListValue {
    /// Equal elements, whatever the node layout.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl<'a> IntoIterator for &'a ListValue {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over a range of a list's elements, from either end.
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    /// (node, offset) of the next element from the front.
    front: (usize, usize),
    /// (node, offset) just past the next element from the back.
    back: (usize, usize),
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let nodes = self.nodes;
        let (mut k, mut off) = self.front;
        while off >= nodes[k].buf.len() {
            k += 1;
            off = 0;
        }
        let buf = &nodes[k].buf;
        let (s, t, next) = read_fwd(buf, off);
        self.front = (k, next);
        self.left -= 1;
        Some(&buf[s..t])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let nodes = self.nodes;
        let (mut k, mut end) = self.back;
        while end == 0 {
            k -= 1;
            end = nodes[k].buf.len();
        }
        let buf = &nodes[k].buf;
        let (st, s, t) = read_back(buf, end);
        self.back = (k, st);
        self.left -= 1;
        Some(&buf[s..t])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
