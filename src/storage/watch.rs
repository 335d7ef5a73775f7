//! WATCH bookkeeping on the shard that owns the watched keys (Redis 7.0's `multi.c` watch
//! part, per database).
//!
//! Each [`Db`](super::Db) has a [`WatchTable`]: watched key -> the clients watching it, each
//! with Redis's two flags: `expired` (the key was logically expired when WATCHed, so deleting
//! it is no logical change) and `dirty` (the key was touched since; that client's EXEC fails).
//! The `Db` write entry points (`insert`, `remove`, `set_expire`, lazy and active expiry,
//! `clear`, `clear_slot`) touch watched keys themselves; in-place modifications through
//! `Db::get` are touched by `cmd::execute_keyed` after a successful write command (see
//! [`touch_after_write`]). The table is empty unless someone watches, and every hook checks
//! that first, so unwatched databases pay one branch.
//!
//! Invariants: a client appears at most once per (database, key); registrations are removed by
//! [`WatchTable::unwatch`] on EXEC, DISCARD, UNWATCH, RESET and disconnect.

use super::db::Db;
use bytes::Bytes;
use hashbrown::HashMap;

/// One client watching one key.
#[derive(Debug, Clone)]
struct Watcher {
    client: u64,
    /// The key was logically expired when watched.
    expired: bool,
    /// The key was touched since the WATCH.
    dirty: bool,
}

/// The watched keys of one database.
#[derive(Debug, Default)]
pub struct WatchTable {
    keys: HashMap<Box<[u8]>, Vec<Watcher>>,
}

impl WatchTable {
    /// True when nobody watches a key of this database.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when `key` is watched.
    pub fn watches(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// Registers `client` on `key` (once); `expired` says the key is logically expired now.
    pub fn watch(&mut self, client: u64, key: &[u8], expired: bool) {
        let list = self.keys.entry_ref(key).or_default();
        if !list.iter().any(|w| w.client == client) {
            list.push(Watcher { client, expired, dirty: false });
        }
    }

    /// Redis's `touchWatchedKey`: the key was modified; `exists_now` says whether it exists
    /// after the modification. A key that was stale when watched and is now gone is no logical
    /// change (its watchers just stop counting it as stale).
    pub fn touch(&mut self, key: &[u8], exists_now: bool) {
        let Some(list) = self.keys.get_mut(key) else { return };
        for w in list.iter_mut() {
            if w.expired && !exists_now {
                w.expired = false;
                continue;
            }
            w.dirty = true;
        }
    }

    /// Redis's `touchAllWatchedKeysInDb`, for the keys of this table: `in_emptied` says whether
    /// a key existed (even logically expired) in the data going away, `replaced` whether it
    /// exists in the data replacing it (SWAPDB) and whether that is logically expired.
    fn touch_replaced(&mut self, in_emptied: impl Fn(&[u8]) -> bool, replaced: impl Fn(&[u8]) -> Option<bool>) {
        for (key, list) in self.keys.iter_mut() {
            let emptied = in_emptied(key);
            let with = replaced(key);
            if !emptied && with.is_none() {
                continue;
            }
            for w in list.iter_mut() {
                if w.expired {
                    match with {
                        // A stale key deleted: no logical change.
                        None => {
                            w.expired = false;
                            continue;
                        }
                        // Still stale.
                        Some(true) => continue,
                        Some(false) => {}
                    }
                } else if !emptied && with == Some(true) {
                    // A missing key replaced by a stale one: still logically missing.
                    w.expired = true;
                    continue;
                }
                w.dirty = true;
            }
        }
    }

    /// Removes every registration of `client`.
    pub fn unwatch(&mut self, client: u64) {
        self.keys.retain(|_, list| {
            list.retain(|w| w.client != client);
            !list.is_empty()
        });
    }

    /// Redis's EXEC check for `client` in this database: true if a watched key was touched,
    /// or has logically expired since it was watched (`is_expired` of the key now).
    pub fn dirty_for(&self, client: u64, is_expired: impl Fn(&[u8]) -> bool) -> bool {
        self.keys
            .iter()
            .any(|(k, list)| list.iter().any(|w| w.client == client && (w.dirty || (!w.expired && is_expired(k)))))
    }

    /// The watched keys (to check them against data about to be replaced).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.keys().map(|k| &k[..])
    }
}

impl Db {
    /// FLUSHDB/FLUSHALL: touches the watched keys that exist before the flush.
    pub(super) fn touch_flushed(&mut self) {
        if self.watch.is_empty() {
            return;
        }
        let existing: Vec<Box<[u8]>> =
            self.watch.keys().filter(|k| self.exists_even_expired(k)).map(Box::from).collect();
        self.watch.touch_replaced(|k| existing.iter().any(|e| &e[..] == k), |_| None);
    }
}

/// SWAPDB a b on one shard: swaps the data of two databases; the watch tables stay with their
/// database numbers and are touched as Redis's `touchAllWatchedKeysInDb` does.
pub fn swap_dbs(dbs: &mut [Db], a: usize, b: usize) {
    if a == b {
        return;
    }
    let now = super::now_ms();
    for (from, to) in [(a, b), (b, a)] {
        // Keys watched in `from`: its data goes away, `to`'s data comes in.
        let state: Vec<(Box<[u8]>, bool, Option<bool>)> = dbs[from]
            .watch
            .keys()
            .map(|k| {
                let replaced = dbs[to].exists_even_expired(k).then(|| !dbs[to].contains(k, now));
                (Box::from(k), dbs[from].exists_even_expired(k), replaced)
            })
            .collect();
        let find = |k: &[u8]| state.iter().find(|(s, _, _)| &s[..] == k);
        dbs[from].watch.touch_replaced(|k| find(k).is_some_and(|s| s.1), |k| find(k).and_then(|s| s.2));
    }
    dbs.swap(a, b);
    let (lo, hi) = (a.min(b), a.max(b));
    let (left, right) = dbs.split_at_mut(hi);
    std::mem::swap(&mut left[lo].watch, &mut right[0].watch);
}

/// Called after a keyed write command succeeded in `db`: touches its watched keys that existed
/// before (`existed`) or exist now, covering in-place modifications that do not go through
/// `Db::insert`/`remove`.
pub fn touch_after_write(db: &mut Db, keys: &[(Bytes, bool)]) {
    for (k, existed) in keys {
        let exists = db.exists_even_expired(k);
        if *existed || exists {
            db.watch.touch(k, exists);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StrValue, Value};

    fn v() -> Value {
        Value::Str(StrValue::Int(1))
    }

    #[test]
    fn touches_mark_dirty() {
        let mut db = Db::new();
        db.watch.watch(7, b"k", false);
        assert!(!db.watch.dirty_for(7, |_| false));
        db.set(b"k", v(), 0);
        assert!(db.watch.dirty_for(7, |_| false));
        db.watch.unwatch(7);
        assert!(db.watch.is_empty());
    }

    #[test]
    fn stale_key_deleted_is_no_change() {
        let mut db = Db::new();
        db.set(b"k", v(), 5);
        db.watch.watch(1, b"k", true);
        assert!(db.get(b"k", 10).is_none());
        assert!(!db.watch.dirty_for(1, |_| false));
        db.set(b"k", v(), 0);
        assert!(db.watch.dirty_for(1, |_| false));
    }

    #[test]
    fn flush_touches_existing_only() {
        let mut db = Db::new();
        db.set(b"a", v(), 0);
        db.watch.watch(1, b"a", false);
        db.watch.watch(2, b"b", false);
        db.clear();
        assert!(db.watch.dirty_for(1, |_| false));
        assert!(!db.watch.dirty_for(2, |_| false));
    }

    #[test]
    fn swap_keeps_tables_with_numbers() {
        let mut dbs = vec![Db::new(), Db::new()];
        dbs[1].set(b"x", v(), 0);
        dbs[0].watch.watch(1, b"x", false);
        dbs[0].watch.watch(2, b"y", false);
        swap_dbs(&mut dbs, 0, 1);
        assert!(dbs[0].watch.dirty_for(1, |_| false));
        assert!(!dbs[0].watch.dirty_for(2, |_| false));
        assert!(dbs[1].watch.is_empty());
    }
}
