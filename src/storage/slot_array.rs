//! A database's 16384 slot tables, allocated in chunks of [`CHUNK`] slots as keys arrive and
//! freed when their last key goes.
//!
//! One flat array of every slot's table costs 16384 table headers (over 600 KB) as soon as a
//! database gets its first key, which Redis does not pay (its dict starts with four buckets):
//! a `maxmemory` margin of a few hundred KB, or sixteen databases per shard, would notice. A
//! chunk holds the tables of [`CHUNK`] consecutive slots (1.25 KB), so a small keyspace pays
//! about that per key it adds, not tens of KB, and eviction or deletion that empties a chunk
//! gives it back; the chunk pointers are one 4 KB array that stays cached, so a lookup pays
//! one more load from it and no miss.

use super::db::SlotTable;
use crate::cluster::slot::SLOTS;

/// Slots per chunk.
const CHUNK: usize = 32;
/// Chunks per database.
const CHUNKS: usize = SLOTS / CHUNK;

/// The slot tables of one database.
#[derive(Debug, Default)]
pub struct SlotArray {
    /// Empty until the first key; then [`CHUNKS`] entries, a chunk allocated on first use.
    /// (A chunk's box is a thin pointer: a slice's box, twice the size, made this array 8 KB.)
    chunks: Vec<Option<Box<[SlotTable; CHUNK]>>>,
    /// Keys with an expiry per slot, kept beside the tables in chunks of the same slots,
    /// allocated on a chunk's first such key and freed when its counts are back to zero: a
    /// keyspace without expiries pays nothing for them, and a table stays the 32 bytes of its
    /// keys.
    volatile: Vec<Option<Box<[u32; CHUNK]>>>,
}

impl SlotArray {
    /// The table of `slot`, if its chunk exists.
    #[inline]
    pub fn get(&self, slot: usize) -> Option<&SlotTable> {
        self.chunks.get(slot / CHUNK)?.as_deref().map(|c| &c[slot % CHUNK])
    }

    /// The table of `slot` to change, if its chunk exists.
    #[inline]
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut SlotTable> {
        self.chunks.get_mut(slot / CHUNK)?.as_deref_mut().map(|c| &mut c[slot % CHUNK])
    }

    /// The table of `slot`, its chunk allocated if needed.
    #[inline]
    pub fn get_or_create(&mut self, slot: usize) -> &mut SlotTable {
        if self.chunks.is_empty() {
            self.chunks.resize_with(CHUNKS, || None);
        }
        let chunk =
            self.chunks[slot / CHUNK].get_or_insert_with(|| Box::new(std::array::from_fn(|_| SlotTable::default())));
        &mut chunk[slot % CHUNK]
    }

    /// Frees the chunk of `slot` when none of its tables holds a key or memory (called when
    /// `slot`'s table was emptied).
    pub fn release_if_empty(&mut self, slot: usize) {
        let Some(c) = self.chunks.get_mut(slot / CHUNK) else { return };
        if c.as_deref().is_some_and(|tables| tables.iter().all(SlotTable::is_released)) {
            *c = None;
        }
    }

    /// Keys with an expiry in `slot`.
    #[inline]
    pub fn volatile(&self, slot: usize) -> u32 {
        match self.volatile.get(slot / CHUNK) {
            Some(Some(c)) => c[slot % CHUNK],
            _ => 0,
        }
    }

    /// Counts `n` more keys with an expiry in `slot`.
    pub fn add_volatile(&mut self, slot: usize, n: u32) {
        if n == 0 {
            return;
        }
        if self.volatile.is_empty() {
            self.volatile.resize_with(CHUNKS, || None);
        }
        self.volatile[slot / CHUNK].get_or_insert_with(|| Box::new([0; CHUNK]))[slot % CHUNK] += n;
    }

    /// Counts `n` fewer keys with an expiry in `slot` (freeing the counts' chunk once they
    /// are all zero).
    pub fn sub_volatile(&mut self, slot: usize, n: u32) {
        let Some(Some(c)) = self.volatile.get_mut(slot / CHUNK) else { return };
        let v = &mut c[slot % CHUNK];
        debug_assert!(*v >= n, "more keys with an expiry removed than counted in slot {slot}");
        *v = v.saturating_sub(n);
        if *v == 0 && c.iter().all(|&v| v == 0) {
            self.volatile[slot / CHUNK] = None;
        }
    }

    /// True until a table was created.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Every existing table with its slot, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &SlotTable)> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_deref().map(move |c| (i, c)))
            .flat_map(|(i, c)| c.iter().enumerate().map(move |(j, t)| (i * CHUNK + j, t)))
    }

    /// Every existing table with its slot, ascending, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut SlotTable)> + '_ {
        self.chunks
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| c.as_deref_mut().map(move |c| (i, c)))
            .flat_map(|(i, c)| c.iter_mut().enumerate().map(move |(j, t)| (i * CHUNK + j, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_appear_on_first_use_and_slots_map_one_to_one() {
        let mut a = SlotArray::default();
        assert!(a.is_empty() && a.get(0).is_none() && a.get(SLOTS - 1).is_none());
        for slot in [0, 255, 256, 9000, SLOTS - 1] {
            let t: *const SlotTable = a.get_or_create(slot);
            assert_eq!(a.get(slot).map(|t| t as *const SlotTable), Some(t));
        }
        assert!(a.get(512).is_none(), "an untouched chunk stays unallocated");
        assert!(a.get(257).is_some(), "a touched chunk holds all of its slots");
        let slots: Vec<usize> = a.iter().map(|(s, _)| s).collect();
        let touched: std::collections::BTreeSet<usize> =
            [0, 255, 256, 9000, SLOTS - 1].iter().map(|s| s / CHUNK).collect();
        assert_eq!(slots.len(), touched.len() * CHUNK);
        assert!(slots.windows(2).all(|w| w[0] < w[1]));
        assert!(slots.contains(&9000) && slots.contains(&(SLOTS - 1)));
    }

    #[test]
    fn a_chunk_is_freed_only_when_none_of_its_tables_holds_memory() {
        use crate::storage::db::Db;
        use crate::storage::value::{StrValue, Value};
        let mut db = Db::new();
        // Two keys of one chunk (slots 12539 and 12541 share the chunk of 32 slots from 12512).
        let (a, b) = (&b"a"[..], &b"{a}b"[..]);
        let c = &b"abc"[..];
        for k in [a, b, c] {
            db.set(k, Value::Str(StrValue::from_bytes(b"v")), 0);
        }
        let chunk_of = |k: &[u8]| crate::cluster::slot::key_slot(k) as usize / CHUNK;
        assert_eq!(chunk_of(a), chunk_of(b));
        assert_ne!(chunk_of(a), chunk_of(c));
        db.remove(a);
        assert!(db.slots.get(chunk_of(b) * CHUNK).is_some(), "another key still lives in the chunk");
        db.remove(b);
        assert!(db.slots.get(chunk_of(b) * CHUNK).is_none(), "the emptied chunk is freed");
        assert!(db.slots.get(chunk_of(c) * CHUNK).is_some());
        db.remove(c);
        assert!(db.slots.iter().next().is_none());
    }
}
