//! Databases made of per-slot hash tables (as Redis 7's `kvstore`), with expiry.
//!
//! A `Db` holds one lazily created `SlotTable` per hash slot that has keys. This makes
//! COUNTKEYSINSLOT O(1), GETKEYSINSLOT and slot migration a walk of one table, and SCAN a walk
//! of slots in order (the cursor is a slot number, so a scan survives slots moving between shards).

use super::access_clock::touched;
pub use super::access_clock::{lfu_counter, lfu_enabled, lru_clock, set_lfu};
use super::key_table::KeyTable;
use super::strbuf::{prefetch_read, KeyBytes};
use super::value::{StrValue, Value};
use crate::cluster::slot::{key_slot, SLOTS};
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;
use std::sync::LazyLock;

/// One key's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 = no expiry.
    pub expire_at: u64,
    /// Last access in seconds (OBJECT IDLETIME), or under an LFU policy the LFU word (see
    /// [`set_lfu`]).
    pub lru: u32,
}

impl Entry {
    /// A new entry with no expiry.
    pub fn new(value: Value) -> Entry {
        Entry { value, expire_at: 0, lru: lru_clock() }
    }
    /// True when the entry has an expiry at or before `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }
}

/// One key and its entry: the single allocation a key costs (64 bytes with a key of up to 15
/// bytes and a string value of up to 22, see `storage::strbuf`). The table holds only a thin
/// pointer to it, so a bucket costs 9 bytes whatever the value's type.
#[derive(Debug)]
struct Node {
    key: KeyBytes,
    entry: Entry,
}

const _: () = assert!(std::mem::size_of::<Node>() == 64);

/// The hash function of every key table of the process (one random seed, as Redis's
/// `dict_hash_function_seed`), so a table can move between databases and shards as it is.
static KEY_HASHER: LazyLock<DefaultHashBuilder> = LazyLock::new(DefaultHashBuilder::default);

#[inline]
fn key_hash(key: &[u8]) -> u64 {
    KEY_HASHER.hash_one(key)
}

/// A stored node's hash (when its table grows or shrinks); it takes the table's element type.
#[allow(clippy::borrowed_box)]
fn node_hash(n: &Box<Node>) -> u64 {
    key_hash(&n.key)
}

/// The keys of one hash slot in one database. A database keeps its 16384 tables in chunks of
/// consecutive slots (`storage::slot_array`; the chunk pointers stay cached, so a lookup in a
/// large keyspace, a chain of cache misses, gets no extra one); a table of up to three keys
/// allocates nothing beside its nodes (`storage::key_table`).
#[derive(Debug, Default)]
pub struct SlotTable {
    map: KeyTable<Box<Node>>,
}

const _: () = assert!(std::mem::size_of::<SlotTable>() == 32);

impl SlotTable {
    fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.find(|| key_hash(key), |n| *n.key == *key).map(|n| &n.entry)
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.map.find_mut(|| key_hash(key), |n| *n.key == *key).map(|n| &mut n.entry)
    }

    /// Stores an entry; returns the one it replaced and the key's identity (see
    /// [`SlotTable::find_id`]).
    fn insert(&mut self, key: &[u8], entry: Entry) -> (Option<Entry>, usize) {
        let mut new = Some(entry);
        let (n, created) = self.map.find_or_insert(
            || key_hash(key),
            |n| *n.key == *key,
            node_hash,
            || Box::new(Node { key: KeyBytes::new(key), entry: new.take().expect("made once") }),
        );
        let old = new.map(|e| std::mem::replace(&mut n.entry, e));
        debug_assert_eq!(old.is_none(), created);
        (old, &**n as *const Node as usize)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Box<Node>> {
        // The table gives memory back as keys go (`KeyTable::fit`).
        self.map.remove(|| key_hash(key), |n| *n.key == *key, node_hash)
    }

    /// A key's entry and the address of its node: the snapshot hook's identity of a key
    /// (stable while the key stays stored, also when its table moves; a freed address is only
    /// reused by a key stored later).
    pub(super) fn find_id(&self, key: &[u8]) -> Option<(usize, &Entry)> {
        self.map.find(|| key_hash(key), |n| *n.key == *key).map(|n| (&**n as *const Node as usize, &n.entry))
    }

    /// Every key with its identity (see [`SlotTable::find_id`]), for a walk that reads every
    /// key and value (a snapshot step): it starts loading the node [`NODE_AHEAD`] keys ahead and the key's and string value's
    /// bytes [`BYTES_AHEAD`] keys ahead, so the cache misses of consecutive keys (a node, a
    /// long key, a long value: each a separate allocation) overlap instead of following one
    /// another. Measured on 1M keys of 100 bytes: the walk was two to three dependent misses
    /// per key.
    pub(super) fn iter_ids_prefetched(&self) -> impl Iterator<Item = (usize, &[u8], &Entry)> {
        let mut far = self.map.iter();
        let mut near = self.map.iter();
        for n in far.by_ref().take(NODE_AHEAD) {
            prefetch_read(&**n as *const Node as *const u8);
        }
        for n in near.by_ref().take(BYTES_AHEAD) {
            prefetch_contents(n);
        }
        self.map.iter().map(move |n| {
            if let Some(f) = far.next() {
                prefetch_read(&**f as *const Node as *const u8);
            }
            if let Some(m) = near.next() {
                prefetch_contents(m);
            }
            (&**n as *const Node as usize, &n.key[..], &n.entry)
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when the slot holds no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// True when the table holds no keys and no memory (its chunk may be freed).
    pub(super) fn is_released(&self) -> bool {
        self.map.is_released()
    }
    /// Keys with an expiry (counted by walking the table: the database keeps the counts).
    fn count_volatile(&self) -> usize {
        self.map.iter().filter(|n| n.entry.expire_at != 0).count()
    }
    /// Iterates over the keys and entries (expired ones included; check `is_expired`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|n| (&n.key[..], &n.entry))
    }
}

/// Keys a database holds before [`Db::prefetch_keys`] pays for itself: at ~120 bytes a key
/// (node, bucket, table), 16k keys fill a 2 MiB L2 cache; below, a pipeline's keys are
/// usually cached already.
const PREFETCH_MIN_KEYS: usize = 1 << 14;

/// How many keys ahead [`SlotTable::iter_ids_prefetched`] starts loading a node.
const NODE_AHEAD: usize = 12;
/// How many keys ahead [`SlotTable::iter_ids_prefetched`] starts loading a node's key and
/// value bytes (the node itself was requested `NODE_AHEAD - BYTES_AHEAD` keys earlier).
const BYTES_AHEAD: usize = 6;

/// Starts loading the heap bytes of a node's key and of its string value, if any.
#[inline(always)]
fn prefetch_contents(n: &Node) {
    if let KeyBytes::Heap(k) = &n.key {
        k.prefetch();
    }
    if let Value::Str(StrValue::Raw(r)) = &n.entry.value {
        r.prefetch();
    }
}

/// A database's tables taken out by [`Db::detach_tables`]: dropping it frees every key.
pub struct DetachedTables(#[allow(dead_code)] super::slot_array::SlotArray);

/// One logical database (`SELECT n`) of one shard.
#[derive(Debug, Default)]
pub struct Db {
    pub(super) slots: super::slot_array::SlotArray,
    keys: usize,
    volatile: usize,
    /// Keys removed because they expired (lazily or by the active cycle).
    pub expired_keys: u64,
    /// Keys that expired and were deleted since the shard last drained this log (only kept
    /// while [`super::expired_logging`] is on): the change log records them as DEL.
    expired_log: Vec<Box<[u8]>>,
    /// Where the active expire cycle resumes.
    expire_cursor: usize,
    /// Clients watching keys of this database (see `storage::watch`).
    pub watch: super::watch::WatchTable,
    /// The slot of the running command's first key: its address, length and slot (see
    /// [`Db::hint_slot`]).
    slot_hint: Option<(usize, usize, u16)>,
    /// A running snapshot's pre-write hook state (see `storage::snap`).
    pub(super) snap: Option<Box<super::snap::SnapState>>,
    /// Keys this replica's own clients gave an expiry (a writable replica; Redis's
    /// `slaveKeysWithExpire`): the master sends no DEL for them, so the replica's cron expires
    /// them itself ([`Db::expire_replica_keys`]).
    replica_volatile: hashbrown::HashSet<Box<[u8]>>,
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db::default()
    }

    /// Number of keys (expired ones not yet reclaimed included, as in Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.keys
    }
    /// True when the database has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// Remembers `key`'s slot while a command runs, so lookups of that same key (the same
    /// bytes at the same address) skip hashing it. The caller clears it with
    /// [`Db::clear_slot_hint`] before `key` can be freed.
    pub fn hint_slot(&mut self, key: &[u8], slot: u16) {
        self.slot_hint = Some((key.as_ptr() as usize, key.len(), slot));
    }

    /// Forgets the hint set by [`Db::hint_slot`].
    pub fn clear_slot_hint(&mut self) {
        self.slot_hint = None;
    }

    /// A key's slot: the hint when it is for these very bytes, else CRC16.
    #[inline]
    fn slot_of(&self, key: &[u8]) -> u16 {
        match self.slot_hint {
            Some((ptr, len, slot)) if ptr == key.as_ptr() as usize && len == key.len() => slot,
            _ => key_slot(key),
        }
    }

    fn table(&self, slot: u16) -> Option<&SlotTable> {
        self.slots.get(slot as usize)
    }

    /// The snapshot pre-write hook for a whole slot: every path that may change several keys
    /// of a slot at once (or the table itself) calls it first.
    #[inline]
    fn pre_write(&mut self, slot: u16) {
        if self.snap.is_some() {
            self.snapshot_save_slot(slot);
        }
    }

    /// The snapshot pre-write hook for one key: every path that may change that key (or
    /// create it) calls it first.
    #[inline]
    fn pre_write_key(&mut self, slot: u16, key: &[u8]) {
        if self.snap.is_some() {
            self.snapshot_save_key(slot, key);
        }
    }

    /// The table of a slot, to change `key` in it.
    fn table_mut_for(&mut self, slot: u16, key: &[u8]) -> Option<&mut SlotTable> {
        self.pre_write_key(slot, key);
        self.slots.get_mut(slot as usize)
    }

    fn table_or_create(&mut self, slot: u16) -> &mut SlotTable {
        self.slots.get_or_create(slot as usize)
    }

    /// The table of a slot, if it has keys.
    pub fn slot_table(&self, slot: u16) -> Option<&SlotTable> {
        self.table(slot).filter(|t| !t.is_empty())
    }

    /// Number of keys in a slot.
    pub fn slot_len(&self, slot: u16) -> usize {
        self.table(slot).map_or(0, |t| t.len())
    }

    /// Starts loading the table entries of `keys` into the cache, for a batch of commands
    /// (a pipeline) about to look them up one after another. In a keyspace larger than the
    /// caches a lookup is a chain of dependent misses (the slot's table, its control bytes and
    /// bucket, the key's node, a long key's bytes); walking every key of the batch one level at
    /// a time lets those misses overlap instead of following one another. Reads only: a key
    /// that is missing, expired or owned by another shard costs a wasted load, nothing else.
    /// Small keyspaces, which stay cached, skip it.
    pub fn prefetch_keys<'a>(&self, keys: impl Iterator<Item = &'a [u8]> + Clone) {
        if self.keys < PREFETCH_MIN_KEYS {
            return;
        }
        let at: smallvec::SmallVec<[(u16, u64); 32]> = keys.map(|k| (self.slot_of(k), key_hash(k))).collect();
        for &(slot, _) in &at {
            if let Some(t) = self.slots.get(slot as usize) {
                prefetch_read(t as *const SlotTable as *const u8);
            }
        }
        for &(slot, h) in &at {
            // The probe reads the control bytes and buckets; the match callback only starts the
            // node's load and declines, so the probe never waits on the node itself.
            let Some(t) = self.slots.get(slot as usize) else { continue };
            t.map.find(
                || h,
                |n| {
                    prefetch_read(&**n as *const Node as *const u8);
                    false
                },
            );
        }
        for &(slot, h) in &at {
            let Some(t) = self.slots.get(slot as usize) else { continue };
            t.map.find(
                || h,
                |n| {
                    if let KeyBytes::Heap(k) = &n.key {
                        k.prefetch();
                    }
                    false
                },
            );
        }
    }

    /// Looks a key up for reading or writing, deleting it first if it has expired (lazy expiry).
    /// Touches its LRU clock.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let slot = self.slot_of(key);
        self.pre_write_key(slot, key);
        self.live_entry(slot, key, now_ms)
    }

    /// The entry of `key` unless it has expired, in one table lookup while it has not: the
    /// lazy expiry of [`Db::expire_if_needed`] (delete, or keep on a replica's master view, or
    /// only hide while clients are paused) runs only for an expired entry. Touches its LRU clock.
    #[inline]
    fn live_entry(&mut self, slot: u16, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let e: *mut Entry = self.slots.get_mut(slot as usize)?.get_mut(key)?;
        // SAFETY: `e` points into `self.slots` and is used right here, before anything else
        // borrows `self`; the expired case below drops it and looks the key up again.
        let live = unsafe { !(*e).is_expired(now_ms) };
        if live {
            // SAFETY: as above; the returned borrow keeps `self` mutably borrowed.
            let e = unsafe { &mut *e };
            e.lru = touched(e.lru, now_ms);
            return Some(e);
        }
        if self.expire_if_needed(slot, key, now_ms) {
            return None;
        }
        // Expired but kept (a replica applying its master's stream sees its master's keys).
        let e = self.slots.get_mut(slot as usize)?.get_mut(key)?;
        e.lru = touched(e.lru, now_ms);
        Some(e)
    }

    /// [`Db::get`] for a command that only reads the value (GET and the like): the same lazy
    /// expiry and LRU touch, without the snapshot's pre-write hook (the access time is not
    /// part of a snapshot, so a read during BGSAVE serializes nothing).
    pub fn get_read(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let slot = self.slot_of(key);
        self.live_entry(slot, key, now_ms).map(|e| &*e)
    }

    /// Looks a key up for writing, creating it from `make()` (no expiry) when it is missing;
    /// returns the entry and whether it was created. The same as [`Db::get`] followed by
    /// [`Db::set`] and `get` on a miss, in one table lookup when the key exists.
    pub fn get_or_create(&mut self, key: &[u8], now_ms: u64, make: impl Fn() -> Value) -> (&mut Entry, bool) {
        let slot = self.slot_of(key);
        let mut created = false;
        if self.expire_if_needed(slot, key, now_ms) {
            // Expired (deleted now, or hidden on a replica): created as on a miss.
            self.set(key, make(), 0);
            created = true;
        }
        self.pre_write(slot);
        let t = self.slots.get_or_create(slot as usize);
        let (n, new) = t.map.find_or_insert(
            || key_hash(key),
            |n| *n.key == *key,
            node_hash,
            || {
                let entry = Entry { value: make(), expire_at: 0, lru: touched(lru_clock(), now_ms) };
                Box::new(Node { key: KeyBytes::new(key), entry })
            },
        );
        let e = &mut n.entry;
        if !new {
            e.lru = touched(e.lru, now_ms);
            return (e, created);
        }
        self.keys += 1;
        if !self.watch.is_empty() {
            self.watch.touch(key, true);
        }
        (e, true)
    }

    /// Looks a key up without touching its LRU clock (OBJECT, TYPE-like introspection).
    pub fn get_notouch(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let slot = self.slot_of(key);
        if self.expire_if_needed(slot, key, now_ms) {
            return None;
        }
        self.table_mut_for(slot, key)?.get_mut(key)
    }

    /// True when the key exists and has not expired (without deleting or touching it).
    pub fn contains(&self, key: &[u8], now_ms: u64) -> bool {
        self.table(self.slot_of(key)).and_then(|t| t.get(key)).is_some_and(|e| !e.is_expired(now_ms))
    }

    /// The stored entry of a key, even if logically expired, without deleting or touching it
    /// (Redis's `dictFind`, as DEBUG OBJECT uses).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.table(self.slot_of(key)).and_then(|t| t.get(key))
    }

    /// True when the key is stored, even if logically expired (Redis's `dictFind`).
    pub fn exists_even_expired(&self, key: &[u8]) -> bool {
        self.table(self.slot_of(key)).is_some_and(|t| t.get(key).is_some())
    }

    /// Deletes the key if it has expired; returns true if it has (a replica only hides it:
    /// it waits for its master's DEL, as Redis's replicas do).
    fn expire_if_needed(&mut self, slot: u16, key: &[u8], now_ms: u64) -> bool {
        // A table without keys that carry an expiry has nothing to expire: no lookup (the
        // common case; Redis looks in its empty `expires` dict).
        let expired = self.slots.volatile(slot as usize) > 0
            && self.table(slot).and_then(|t| t.get(key)).is_some_and(|e| e.is_expired(now_ms));
        if expired && super::replica_expiry() && super::in_master_view() {
            return false;
        }
        // While clients are paused the dataset stays as it is: the key only reads as missing
        // (Redis's `expireIfNeeded`).
        if expired && !super::replica_expiry() && !crate::pause::paused(now_ms) {
            self.expire_in(slot, key);
        }
        expired
    }

    /// Deletes an expired key, counting and logging it.
    fn expire_in(&mut self, slot: u16, key: &[u8]) {
        let Some(node) = self.remove_node_in(slot, key) else { return };
        self.expired_keys += 1;
        if super::expired_logging() {
            self.expired_log.push(node.key[..].into());
            super::note_expired_logged(1);
        }
        if super::lazyfree::expire() {
            super::lazyfree::free_value(node.entry.value);
        }
    }

    /// Takes the keys that expired since the last call (see [`super::expired_logging`]).
    pub fn take_expired(&mut self) -> Vec<Box<[u8]>> {
        std::mem::take(&mut self.expired_log)
    }

    /// True when expired keys wait in the log.
    #[inline]
    pub fn has_expired_log(&self) -> bool {
        !self.expired_log.is_empty()
    }

    /// Stores a value with the given expiry (0 = none), replacing any previous entry.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let old = self.store(key, Entry { value, expire_at, lru: lru_clock() }, false, true);
        // `lazyfree-lazy-server-del yes`: a big value replaced here is freed off the thread.
        if let Some(old) = old.filter(|_| super::lazyfree::server_del()) {
            super::lazyfree::free_value(old.value);
        }
    }

    /// Stores an entry, replacing any previous one; returns the previous entry.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        self.store(key, entry, true, true)
    }

    /// Stores a key read from a file or received in a full sync. Its expiry is never a
    /// writable replica's own (Redis remembers only the keys a replica's own clients give an
    /// expiry, and a load has no client), so a replica keeps it until its master's DEL.
    pub fn load(&mut self, key: &[u8], entry: Entry) {
        self.store(key, entry, false, false);
    }

    /// [`Db::insert`]; without `keep_old` the previous entry is not returned, so a running
    /// snapshot may take it as it is (its encoding waits for the next step, off the command).
    /// `by_client`: a command stores it (a writable replica's own expiries are remembered).
    #[inline]
    fn store(&mut self, key: &[u8], entry: Entry, keep_old: bool, by_client: bool) -> Option<Entry> {
        let slot = self.slot_of(key);
        let volatile_new = entry.expire_at != 0;
        if volatile_new && by_client {
            self.remember_replica_volatile(key);
        }
        let t = self.table_or_create(slot);
        let (old, id) = t.insert(key, entry);
        let volatile_old = old.as_ref().is_some_and(|e| e.expire_at != 0);
        match (volatile_old, volatile_new) {
            (false, true) => {
                self.slots.add_volatile(slot as usize, 1);
                self.volatile += 1;
            }
            (true, false) => {
                self.slots.sub_volatile(slot as usize, 1);
                self.volatile -= 1;
            }
            _ => {}
        }
        if old.is_none() {
            self.keys += 1;
        }
        if !self.watch.is_empty() {
            self.watch.touch(key, true);
        }
        if self.snap.is_some() {
            // The replaced entry is the key's state before this change (the pre-write hook
            // without a second lookup); a new key is only recorded as handled.
            if keep_old {
                self.snapshot_replaced(slot, key, id, old.as_ref());
            } else {
                return self.snapshot_replaced_owned(slot, key, id, old);
            }
        }
        old
    }

    /// Removes a key (expired or not); returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_in(self.slot_of(key), key)
    }

    fn remove_in(&mut self, slot: u16, key: &[u8]) -> Option<Entry> {
        self.remove_node_in(slot, key).map(|n| n.entry)
    }

    /// Removes a key, keeping the counts and WATCH in step; returns its node.
    fn remove_node_in(&mut self, slot: u16, key: &[u8]) -> Option<Box<Node>> {
        let t = self.table_mut_for(slot, key)?;
        let node = t.remove(key)?;
        let emptied = t.is_empty();
        if node.entry.expire_at != 0 {
            self.slots.sub_volatile(slot as usize, 1);
            self.volatile -= 1;
        }
        if emptied {
            self.slots.release_if_empty(slot as usize);
        }
        self.keys -= 1;
        if !self.watch.is_empty() {
            self.watch.touch(key, false);
        }
        Some(node)
    }

    /// Sets or clears (0) a live key's expiry; returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        let slot = self.slot_of(key);
        let Some(t) = self.table_mut_for(slot, key) else { return false };
        let Some(e) = t.get_mut(key) else { return false };
        let was = e.expire_at != 0;
        e.expire_at = expire_at;
        let delta: isize = match (was, expire_at != 0) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        match delta {
            1 => self.slots.add_volatile(slot as usize, 1),
            -1 => self.slots.sub_volatile(slot as usize, 1),
            _ => {}
        }
        self.volatile = (self.volatile as isize + delta) as usize;
        if expire_at != 0 {
            self.remember_replica_volatile(key);
        }
        if !self.watch.is_empty() {
            self.watch.touch(key, true);
        }
        true
    }

    /// Remembers a key that one of this replica's own clients gave an expiry (not the
    /// master's stream, which runs in the master's view, nor a full sync's load).
    /// Keys this writable replica's own clients gave an expiry (INFO
    /// `slave_expires_tracked_keys`).
    pub fn replica_volatile_len(&self) -> usize {
        self.replica_volatile.len()
    }

    fn remember_replica_volatile(&mut self, key: &[u8]) {
        if super::replica_expiry() && !super::in_master_view() && !self.replica_volatile.contains(key) {
            self.replica_volatile.insert(key.into());
        }
    }

    /// A replica's cron (Redis's `expireSlaveKeys`): deletes the keys its own clients gave an
    /// expiry once they expired, and forgets those gone or made persistent. Returns how many
    /// it deleted.
    pub fn expire_replica_keys(&mut self, now_ms: u64) -> usize {
        if self.replica_volatile.is_empty() {
            return 0;
        }
        let keys: Vec<Box<[u8]>> = self.replica_volatile.iter().cloned().collect();
        let mut expired = 0;
        for key in keys {
            let slot = key_slot(&key);
            match self.table(slot).and_then(|t| t.get(&key)).map(|e| (e.expire_at, e.is_expired(now_ms))) {
                Some((at, false)) if at != 0 => continue,
                Some((_, true)) => {
                    self.expire_in(slot, &key);
                    expired += 1;
                }
                _ => {}
            }
            self.replica_volatile.remove(&key);
        }
        expired
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        drop(self.detach_tables());
    }

    /// Empties the database as [`Db::clear`] does, but hands the old tables to the caller
    /// (to be freed elsewhere, e.g. on a background thread).
    pub fn detach_tables(&mut self) -> DetachedTables {
        self.touch_flushed();
        self.snapshot_detach_all();
        let old = std::mem::take(&mut self.slots);
        self.replica_volatile.clear();
        self.keys = 0;
        self.volatile = 0;
        self.expire_cursor = 0;
        DetachedTables(old)
    }

    /// Removes every key of one slot; returns how many were removed.
    pub fn clear_slot(&mut self, slot: u16) -> usize {
        let Some(t) = self.slots.get_mut(slot as usize).filter(|t| !t.is_empty()).map(std::mem::take) else {
            return 0;
        };
        if !self.watch.is_empty() {
            for (k, _) in t.iter() {
                self.watch.touch(k, false);
            }
        }
        self.keys -= t.len();
        self.forget_volatile(slot);
        let n = t.len();
        self.slots.release_if_empty(slot as usize);
        self.snapshot_detach(slot as usize, t);
        n
    }

    /// Slots (ascending) that currently have keys, starting at `from`.
    pub fn nonempty_slots_from(&self, from: usize) -> impl Iterator<Item = u16> + '_ {
        self.slots.iter().filter(move |(i, t)| *i >= from && !t.is_empty()).map(|(i, _)| i as u16)
    }

    /// Takes the whole table of a slot out of this database (for moving it elsewhere).
    pub fn take_slot(&mut self, slot: u16) -> Option<SlotTable> {
        self.pre_write(slot);
        let t = self.slots.get_mut(slot as usize).filter(|t| !t.is_empty()).map(std::mem::take)?;
        if !self.watch.is_empty() {
            for (k, _) in t.iter() {
                self.watch.touch(k, false);
            }
        }
        self.keys -= t.len();
        self.forget_volatile(slot);
        self.slots.release_if_empty(slot as usize);
        Some(t)
    }

    /// Puts a slot table taken with `take_slot` back (the slot must be empty here).
    pub fn put_slot(&mut self, slot: u16, table: SlotTable) {
        self.pre_write(slot);
        self.keys += table.len();
        let volatile = table.count_volatile();
        self.volatile += volatile;
        self.slots.add_volatile(slot as usize, volatile as u32);
        *self.table_or_create(slot) = table;
    }

    /// Drops the expiry count of a slot whose table was taken out.
    fn forget_volatile(&mut self, slot: u16) {
        let v = self.slots.volatile(slot as usize);
        self.slots.sub_volatile(slot as usize, v);
        self.volatile -= v as usize;
    }

    /// Calls `f` on up to `count` keys taken from one random place onwards (Redis's
    /// `dictGetSomeKeys`, for eviction sampling; see `storage::evict`); only keys with an
    /// expiry when `volatile_only`. Expired keys are included.
    pub fn sample_keys(&self, volatile_only: bool, count: usize, mut f: impl FnMut(&[u8], &Entry)) {
        if self.slots.is_empty() || count == 0 || (volatile_only && self.volatile == 0) {
            return;
        }
        let start = fastrand::usize(..SLOTS);
        let mut seen = 0;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let Some(t) = self.slots.get(slot) else { continue };
            if (volatile_only && self.slots.volatile(slot) == 0) || t.map.is_empty() {
                continue;
            }
            // A random start in the first table (bounded, so a huge slot stays cheap).
            let skip = if seen == 0 { fastrand::usize(..t.map.len().min(4096)) } else { 0 };
            for (k, e) in t.iter().skip(skip) {
                if volatile_only && e.expire_at == 0 {
                    continue;
                }
                f(k, e);
                seen += 1;
                if seen == count {
                    return;
                }
            }
        }
    }

    /// A stored key's expiry (0 = none), even if logically expired; None if absent.
    pub fn expire_of(&self, key: &[u8]) -> Option<u64> {
        self.table(self.slot_of(key)).and_then(|t| t.get(key)).map(|e| e.expire_at)
    }

    /// A random live key, if any (expired keys met on the way are reclaimed).
    pub fn random_key(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        for _ in 0..100 {
            if self.keys == 0 {
                return None;
            }
            let slots: Vec<u16> = self.nonempty_slots_from(0).collect();
            let slot = slots[fastrand::usize(..slots.len())];
            let t = self.table(slot)?;
            let idx = fastrand::usize(..t.len());
            let (k, e) = t.iter().nth(idx)?;
            if e.is_expired(now_ms) {
                if super::replica_expiry() || crate::pause::paused(now_ms) {
                    continue;
                }
                let k = k.to_vec();
                self.expire_in(slot, &k);
                continue;
            }
            return Some(k.to_vec());
        }
        None
    }

    /// One step of active expiry: examines up to `budget` keys of slots that have volatile keys,
    /// resuming where the previous step stopped, and deletes the expired ones.
    /// Returns (keys examined, keys expired).
    pub fn active_expire_step(&mut self, now_ms: u64, budget: usize) -> (usize, usize) {
        if self.volatile == 0 || self.slots.is_empty() || super::replica_expiry() || crate::pause::paused(now_ms) {
            return (0, 0);
        }
        let mut examined = 0;
        let mut expired = 0;
        let mut visited = 0;
        while examined < budget && visited < SLOTS {
            let slot = self.expire_cursor;
            self.expire_cursor = (self.expire_cursor + 1) % SLOTS;
            visited += 1;
            if self.slots.volatile(slot) == 0 {
                continue;
            }
            self.pre_write(slot as u16);
            let Some(t) = self.slots.get_mut(slot) else { continue };
            examined += t.map.len();
            let before = t.map.len();
            let mut removed_volatile = 0;
            let watch = &mut self.watch;
            let log = &mut self.expired_log;
            let logging = super::expired_logging();
            let lazy = super::lazyfree::expire();
            let logged_before = log.len();
            t.map.retain(
                |n| {
                    let keep = !n.entry.is_expired(now_ms);
                    if !keep {
                        removed_volatile += 1;
                        if !watch.is_empty() {
                            watch.touch(&n.key, false);
                        }
                        if logging {
                            log.push(n.key[..].into());
                        }
                        if lazy {
                            super::lazyfree::free_in_place(&mut n.entry.value);
                        }
                    }
                    keep
                },
                node_hash,
            );
            if log.len() > logged_before {
                super::note_expired_logged((log.len() - logged_before) as u64);
            }
            let removed = before - t.map.len();
            let emptied = t.is_empty();
            self.slots.sub_volatile(slot, removed_volatile as u32);
            if emptied {
                self.slots.release_if_empty(slot);
            }
            self.volatile -= removed_volatile;
            self.keys -= removed;
            expired += removed;
        }
        self.expired_keys += expired as u64;
        (examined, expired)
    }
}

/// All databases of one shard.
#[derive(Debug)]
pub struct Keyspace {
    /// `databases` entries; index = database number.
    pub dbs: Vec<Db>,
}

impl Keyspace {
    /// A keyspace with `n` empty databases.
    pub fn new(n: usize) -> Keyspace {
        Keyspace { dbs: (0..n.max(1)).map(|_| Db::new()).collect() }
    }
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
