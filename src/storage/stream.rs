//! Stream values (Redis's `t_stream.c` data layout): entries keyed by `(ms, seq)` IDs in an
//! ordered map of nodes, each node modelled on one of Redis's listpacks.
//!
//! A node has a master ID (its key), the field names of its first entry (the "master
//! fields"), and its entries in ID order, deleted ones included until the whole node is
//! empty, exactly as Redis keeps them: XDEL and exact trimming only flag an entry, approximate
//! trimming drops whole nodes, and a new node starts when the tail node reaches
//! `stream-node-max-entries` entries (live + deleted) or `stream-node-max-bytes` bytes. Entries
//! whose field names equal the master fields keep only their values (`SAMEFIELDS`). Each node
//! tracks the byte size Redis's listpack would have, so node splits, approximate trims and the
//! RDB encoding (`persist::stream`) match redis-server's.
//!
//! Invariants: `length` = live entries over all nodes; every node has at least one live entry;
//! `last_id` >= every entry ID; `first_id` is the first live entry's ID (0-0 when empty).

use super::stream_group::Group;
use std::collections::BTreeMap;

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// An ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID (None past the maximum), Redis's `streamIncrID`.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (None before 0-0), Redis's `streamDecrID`.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// True for 0-0.
    pub fn is_zero(self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The `<ms>-<seq>` form.
    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(format!("{}-{}", self.ms, self.seq))
    }

    /// The 16-byte big-endian form (the rax key Redis uses).
    pub fn encode(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Reads the 16-byte big-endian form.
    pub fn decode(b: &[u8]) -> Option<StreamId> {
        if b.len() != 16 {
            return None;
        }
        let ms = u64::from_be_bytes(b[..8].try_into().ok()?);
        let seq = u64::from_be_bytes(b[8..].try_into().ok()?);
        Some(StreamId::new(ms, seq))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Entry flag: deleted (a tombstone kept in its node).
pub const FLAG_DELETED: u8 = 1;
/// Entry flag: the entry's fields are the node's master fields.
pub const FLAG_SAMEFIELDS: u8 = 2;

/// Redis's `STREAM_LISTPACK_MAX_SIZE` (1 GiB).
pub const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// One entry inside a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    /// Its ID.
    pub id: StreamId,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Its fields (absent with `FLAG_SAMEFIELDS`) and values, packed as
    /// `u32 LE length | bytes` items: `f1 v1 f2 v2 ...`, or `v1 v2 ...` with SAMEFIELDS.
    pub data: Box<[u8]>,
    /// Number of field-value pairs.
    pub nfields: u32,
}

/// One node (one of Redis's listpacks).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The master entry's fields.
    pub master: Vec<Box<[u8]>>,
    /// Entries in ID order, tombstones included.
    pub entries: Vec<NodeEntry>,
    /// Live entries.
    pub live: u64,
    /// Tombstones.
    pub deleted: u64,
    /// The size in bytes Redis's listpack for this node would have.
    pub lp_bytes: usize,
}

fn pack(items: &[&[u8]]) -> Box<[u8]> {
    let mut v = Vec::with_capacity(items.iter().map(|i| i.len() + 4).sum());
    for i in items {
        v.extend_from_slice(&(i.len() as u32).to_le_bytes());
        v.extend_from_slice(i);
    }
    v.into_boxed_slice()
}

fn unpack(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 4 <= data.len() {
        let n = u32::from_le_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]) as usize;
        p += 4;
        out.push(&data[p..p + n]);
        p += n;
    }
    out
}

/// Bytes a listpack entry holding the integer `v` takes (encoding plus back-length).
pub fn lp_int_size(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (-2147483648..=2147483647).contains(&v) {
        5
    } else {
        9
    };
    enc + backlen_size(enc)
}

fn backlen_size(l: usize) -> usize {
    if l < 128 {
        1
    } else if l < 16384 {
        2
    } else if l < 2097152 {
        3
    } else if l < 268435456 {
        4
    } else {
        5
    }
}

/// Bytes a listpack entry holding `s` takes (strings that are integers are stored as such).
pub fn lp_str_size(s: &[u8]) -> usize {
    if s.len() <= 20 {
        if let Some(v) = crate::protocol::request::string2ll(s) {
            return lp_int_size(v);
        }
    }
    let enc = if s.len() < 64 {
        1 + s.len()
    } else if s.len() < 4096 {
        2 + s.len()
    } else {
        5 + s.len()
    };
    enc + backlen_size(enc)
}

impl NodeEntry {
    /// The (field, value) pairs, with the node's master fields for SAMEFIELDS entries.
    pub fn pairs<'a>(&'a self, master: &'a [Box<[u8]>]) -> Vec<(&'a [u8], &'a [u8])> {
        let items = unpack(&self.data);
        if self.flags & FLAG_SAMEFIELDS != 0 {
            master.iter().map(|f| &f[..]).zip(items).collect()
        } else {
            items.chunks_exact(2).map(|c| (c[0], c[1])).collect()
        }
    }

    /// True when deleted.
    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }
}

impl Node {
    fn new(id: StreamId, fields: &[&[u8]]) -> Node {
        let mut lp_bytes = 7 + lp_int_size(1) + lp_int_size(0) + lp_int_size(fields.len() as i64) + lp_int_size(0);
        lp_bytes += fields.iter().map(|f| lp_str_size(f)).sum::<usize>();
        let _ = id;
        Node {
            master: fields.iter().map(|f| f.to_vec().into_boxed_slice()).collect(),
            entries: Vec::new(),
            live: 0,
            deleted: 0,
            lp_bytes,
        }
    }

    /// Adjusts the count fields' sizes after `live`/`deleted` changed from the given values.
    fn recount(&mut self, old_live: u64, old_deleted: u64) {
        self.lp_bytes = self.lp_bytes + lp_int_size(self.live as i64) + lp_int_size(self.deleted as i64)
            - lp_int_size(old_live as i64)
            - lp_int_size(old_deleted as i64);
    }

    /// Marks entry `i` deleted (it must be live).
    fn delete_at(&mut self, i: usize) {
        let (l, d) = (self.live, self.deleted);
        let e = &mut self.entries[i];
        let old = lp_int_size(e.flags as i64);
        e.flags |= FLAG_DELETED;
        let new = lp_int_size(e.flags as i64);
        self.lp_bytes = self.lp_bytes + new - old;
        self.live -= 1;
        self.deleted += 1;
        self.recount(l, d);
    }
}

/// A stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// Nodes by master ID.
    pub nodes: BTreeMap<StreamId, Node>,
    /// Live entries.
    pub length: u64,
    /// The last ID ever generated or set.
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub first_id: StreamId,
    /// The largest ID ever deleted.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// One entry as read: its ID and its (field, value) pairs.
pub type Item = (StreamId, Vec<(bytes::Bytes, bytes::Bytes)>);

/// Node limits (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    /// Bytes (0 = no limit but the listpack maximum).
    pub max_bytes: usize,
    /// Entries (0 = no limit).
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// Why an append failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the last one (EDOM).
    NotGreater,
    /// The elements are too large (ERANGE).
    TooLarge,
}

/// How a trim is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimStrategy {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries with IDs below this one.
    MinId(StreamId),
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// True without live entries.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Redis's `streamAppendItem`: `use_id` with `seq_given` false is the `<ms>-*` form.
    pub fn append(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        use_id: Option<StreamId>,
        seq_given: bool,
        limits: NodeLimits,
        now_ms: u64,
    ) -> Result<StreamId, AppendError> {
        let id = match use_id {
            Some(u) if seq_given => u,
            Some(u) => {
                if self.last_id.ms == u.ms {
                    if self.last_id.seq == u64::MAX {
                        return Err(AppendError::NotGreater);
                    }
                    StreamId::new(u.ms, self.last_id.seq + 1)
                } else {
                    u
                }
            }
            None => {
                if self.last_id.ms >= now_ms {
                    self.last_id.incr().unwrap_or(self.last_id)
                } else {
                    StreamId::new(now_ms, 0)
                }
            }
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        let totelelen: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
        if totelelen > LISTPACK_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            limits.max_bytes
        };
        let need_new = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                n.lp_bytes + totelelen >= max_bytes
                    || (limits.max_entries != 0 && n.live + n.deleted >= limits.max_entries)
            }
        };
        let fields: Vec<&[u8]> = pairs.iter().map(|(f, _)| *f).collect();
        if need_new {
            self.nodes.insert(id, Node::new(id, &fields));
        }
        let Some((_, node)) = self.nodes.last_key_value_mut_compat() else { return Err(AppendError::TooLarge) };
        let same = node.master.len() == fields.len() && node.master.iter().zip(&fields).all(|(m, f)| &m[..] == *f);
        let master_id = node.entries.first().map(|e| e.id);
        let _ = master_id;
        let (l, d) = (node.live, node.deleted);
        node.live += 1;
        node.recount(l, d);
        let flags = if same { FLAG_SAMEFIELDS } else { 0 };
        let items: Vec<&[u8]> = if same {
            pairs.iter().map(|(_, v)| *v).collect()
        } else {
            pairs.iter().flat_map(|(f, v)| [*f, *v]).collect()
        };
        node.entries.push(NodeEntry { id, flags, data: pack(&items), nfields: pairs.len() as u32 });
        let _ = &node;
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        self.account_last_entry();
        Ok(id)
    }

    /// Adds the listpack size of the tail node's last entry.
    fn account_last_entry(&mut self) {
        let Some((&master_id, node)) = self.nodes.iter_mut().next_back() else { return };
        let Some(e) = node.entries.last() else { return };
        let mut size = lp_int_size(e.flags as i64)
            + lp_int_size(e.id.ms.wrapping_sub(master_id.ms) as i64)
            + lp_int_size(e.id.seq.wrapping_sub(master_id.seq) as i64);
        let items = unpack(&e.data);
        let mut lp_count = e.nfields as i64 + 3;
        if e.flags & FLAG_SAMEFIELDS == 0 {
            size += lp_int_size(e.nfields as i64);
            lp_count += e.nfields as i64 + 1;
        }
        size += items.iter().map(|i| lp_str_size(i)).sum::<usize>();
        size += lp_int_size(lp_count);
        node.lp_bytes += size;
    }

    /// Entries with IDs in `[start, end]`, ascending (or descending with `rev`), at most
    /// `count` (0 = all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<Item> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let mut push = |node: &Node, e: &NodeEntry| {
            let pairs = e
                .pairs(&node.master)
                .into_iter()
                .map(|(f, v)| (bytes::Bytes::copy_from_slice(f), bytes::Bytes::copy_from_slice(v)))
                .collect();
            out.push((e.id, pairs));
            count != 0 && out.len() >= count
        };
        // The node holding `start` has the greatest master ID <= start.
        let first_key = self.nodes.range(..=start).next_back().map(|(k, _)| *k).unwrap_or(StreamId::MIN);
        if !rev {
            for (_, node) in self.nodes.range(first_key..) {
                let from = node.entries.partition_point(|e| e.id < start);
                for e in &node.entries[from..] {
                    if e.id > end {
                        return out;
                    }
                    if !e.is_deleted() && push(node, e) {
                        return out;
                    }
                }
            }
        } else {
            for (_, node) in self.nodes.range(first_key..=end).rev() {
                let to = node.entries.partition_point(|e| e.id <= end);
                for e in node.entries[..to].iter().rev() {
                    if e.id < start {
                        return out;
                    }
                    if !e.is_deleted() && push(node, e) {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// The live entry with this ID.
    pub fn get(&self, id: StreamId) -> Option<Item> {
        self.range(id, id, 1, false).pop()
    }

    /// True when a live entry has this ID.
    pub fn exists(&self, id: StreamId) -> bool {
        self.locate(id).is_some()
    }

    fn locate(&self, id: StreamId) -> Option<(StreamId, usize)> {
        let (k, node) = self.nodes.range(..=id).next_back()?;
        let i = node.entries.binary_search_by(|e| e.id.cmp(&id)).ok()?;
        (!node.entries[i].is_deleted()).then_some((*k, i))
    }

    /// The first (or last) live entry's ID.
    pub fn edge_id(&self, last: bool) -> Option<StreamId> {
        if last {
            self.nodes.values().rev().find_map(|n| n.entries.iter().rev().find(|e| !e.is_deleted()).map(|e| e.id))
        } else {
            self.nodes.values().find_map(|n| n.entries.iter().find(|e| !e.is_deleted()).map(|e| e.id))
        }
    }

    /// Redis's `streamDeleteItem` (XDEL of one ID): true if a live entry was deleted.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((k, i)) = self.locate(id) else { return false };
        let Some(node) = self.nodes.get_mut(&k) else { return false };
        if node.live == 1 {
            self.nodes.remove(&k);
        } else {
            node.delete_at(i);
        }
        self.length -= 1;
        true
    }

    /// After deletions: recomputes `first_id` (Redis does it when the first entry went).
    pub fn refresh_first_id(&mut self) {
        self.first_id = if self.length == 0 { StreamId::MIN } else { self.edge_id(false).unwrap_or_default() };
    }

    /// Redis's `streamTrim`: returns the number of entries removed. `limit` 0 = unbounded.
    pub fn trim(&mut self, strategy: TrimStrategy, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        let keys: Vec<StreamId> = self.nodes.keys().copied().collect();
        for k in keys {
            if let TrimStrategy::MaxLen(max) = strategy {
                if self.length <= max {
                    break;
                }
            }
            let Some(node) = self.nodes.get_mut(&k) else { continue };
            let entries = node.live;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match strategy {
                TrimStrategy::MaxLen(max) => self.length - entries >= max,
                // The node's last entry, tombstones included (as `lpGetEdgeStreamID`).
                TrimStrategy::MinId(min) => node.entries.last().is_some_and(|e| e.id < min),
            };
            if remove_node {
                self.nodes.remove(&k);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let mut i = 0;
            while i < node.entries.len() {
                let stop = match strategy {
                    TrimStrategy::MaxLen(max) => self.length <= max,
                    TrimStrategy::MinId(min) => node.entries[i].id >= min,
                };
                if stop {
                    break;
                }
                if !node.entries[i].is_deleted() {
                    node.delete_at(i);
                    self.length -= 1;
                    deleted += 1;
                }
                i += 1;
            }
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge_id(false).unwrap_or_default();
        }
        deleted
    }

    /// Redis's `streamRangeHasTombstones` from `start` to the end.
    pub fn range_has_tombstones(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: None when unknown.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - self.length),
                std::cmp::Ordering::Equal => return Some(self.entries_added - self.length + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's lag (XINFO), None when it cannot be known.
    pub fn group_lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(g.last_id) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_distance(g.last_id).map(|r| self.entries_added.saturating_sub(r))
    }

    /// Radix-tree keys (XINFO STREAM's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// An estimate of the heap bytes this stream uses.
    pub fn heap_size(&self) -> usize {
        let mut n = 0;
        for node in self.nodes.values() {
            n += 64 + node.master.iter().map(|m| m.len() + 16).sum::<usize>();
            n += node.entries.iter().map(|e| std::mem::size_of::<NodeEntry>() + e.data.len()).sum::<usize>();
        }
        n + self.groups.iter().map(|(k, g)| k.len() + g.heap_size()).sum::<usize>()
    }
}

/// `last_key_value_mut` for BTreeMap (stable name across toolchains).
trait LastMut<K, V> {
    fn last_key_value_mut_compat(&mut self) -> Option<(&K, &mut V)>;
}

impl<K: Ord, V> LastMut<K, V> for BTreeMap<K, V> {
    fn last_key_value_mut_compat(&mut self) -> Option<(&K, &mut V)> {
        self.iter_mut().next_back()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut Stream, ms: u64, limits: NodeLimits) -> StreamId {
        s.append(&[(b"f".as_slice(), b"v".as_slice())], Some(StreamId::new(ms, 0)), true, limits, 0).unwrap()
    }

    #[test]
    fn nodes_split_by_entries_and_trim_approx_drops_whole_nodes() {
        let mut s = Stream::new();
        let l = NodeLimits { max_bytes: 4096, max_entries: 100 };
        for i in 1..=1000 {
            add(&mut s, i, l);
        }
        assert_eq!(s.node_count(), 10);
        assert_eq!(s.trim(TrimStrategy::MaxLen(555), true, 10000), 400);
        assert_eq!(s.len(), 600);
        assert_eq!(s.trim(TrimStrategy::MaxLen(555), false, 0), 45);
        assert_eq!(s.first_id, StreamId::new(446, 0));
        assert_eq!(s.range(StreamId::MIN, StreamId::MAX, 2, false).len(), 2);
        assert_eq!(s.range(StreamId::MIN, StreamId::MAX, 1, true)[0].0, StreamId::new(1000, 0));
    }

    #[test]
    fn delete_and_ids() {
        let mut s = Stream::new();
        let l = NodeLimits::default();
        let a = add(&mut s, 5, l);
        assert_eq!(
            s.append(&[(b"x".as_slice(), b"1".as_slice())], Some(StreamId::new(5, 0)), false, l, 0),
            Ok(StreamId::new(5, 1))
        );
        assert_eq!(
            s.append(&[(b"x".as_slice(), b"1".as_slice())], Some(StreamId::new(4, 0)), true, l, 0),
            Err(AppendError::NotGreater)
        );
        assert!(s.delete(a));
        assert!(!s.delete(a));
        s.refresh_first_id();
        assert_eq!(s.first_id, StreamId::new(5, 1));
        let items = s.range(StreamId::MIN, StreamId::MAX, 0, false);
        assert_eq!(items.len(), 1);
        assert_eq!(&items[0].1[0].0[..], b"x");
    }
}
