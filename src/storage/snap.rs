//! The pre-write hook of a point-in-time snapshot (forkless BGSAVE, design.md §5 "Snapshots").
//!
//! While a snapshot runs, each [`Db`] carries a [`SnapState`]: one "done" bit per hash slot,
//! and per slot not done yet the identities of the keys already handled. The snapshot's
//! background steps serialize the slots in ascending order, leaving out the keys handled.
//! Before anything changes one key of a slot whose bit is still clear (a write, a lookup that
//! hands out `&mut Entry`, lazy expiry), `Db` serializes that key alone as it is (its state at
//! the start) and records it as handled; a key created during the snapshot is recorded as
//! handled too, so the step skips it (a plain store records both after the fact, from the
//! entry it replaced: [`Db::snapshot_replaced`]; when its caller does not want that entry
//! back, as SET, the snapshot takes it whole and the next step encodes it:
//! [`Db::snapshot_replaced_owned`]). Reads (GET) do not call the hook: they change nothing
//! a snapshot holds. Paths that change a whole slot at once (active expiry,
//! a slot moved) serialize what remains of the slot first and set its bit. So every key is
//! written exactly once, as it was when the snapshot began; the work in a client's command is
//! at most one key's encoding (not a slot's), and memory grows only by the keys saved ahead of the
//! steps plus one word per handled key of the slots not reached yet. Tables removed whole
//! (FLUSHDB/FLUSHALL, dropped slots) are not copied: they are kept, unchanged, with their
//! handled keys, until a step serializes them.
//!
//! A key's identity is the address of its node (`SlotTable::find_id`): stable while the key
//! stays stored, and an address freed during the snapshot is only reused by a key stored after
//! the start, which must be skipped anyway.
//!
//! Invariants: a slot's bit is set exactly when its state at the snapshot's start is in the
//! output (or kept in `detached`); a key of a slot not done is in its handled set exactly when
//! its start state is in the output or it did not exist at the start; only the owning shard
//! touches a `SnapState`. The encoding itself is injected ([`KeyEncoder`]), so storage does not
//! depend on the RDB codec. SWAPDB moves a database's `SnapState` with its data, so a snapshot
//! finds its databases by the index they had when it began ([`SnapState::db`]).

use super::db::{Db, Entry, SlotTable};
use crate::cluster::slot::SLOTS;
use hashbrown::{HashMap, HashSet};

/// At most this many replaced entries wait for a step whole ([`Db::snapshot_replaced_owned`]);
/// past it the hook encodes at once, so a snapshot whose steps are held up (its writer behind)
/// holds no more than about this many old values.
const PENDING_MAX: usize = 1024;

/// Appends one key in the snapshot's format.
pub type KeyEncoder = fn(out: &mut Vec<u8>, key: &[u8], entry: &Entry, compress: bool);

/// Identities of the keys of one slot already handled (see the module docs).
type Handled = HashSet<usize>;

/// One database's part of a running snapshot.
#[derive(Debug)]
pub struct SnapState {
    /// Which snapshot.
    pub id: u64,
    /// The index this database had when the snapshot began.
    pub db: usize,
    /// One bit per slot: its start state is saved (or detached).
    done: Box<[u64; SLOTS / 64]>,
    /// Per slot not done: the keys already saved by the hook or created since the start.
    handled: HashMap<u16, Handled>,
    /// Whole tables removed before they were saved, with their handled keys.
    detached: Vec<(SlotTable, Option<Handled>)>,
    /// Bytes the hook saved, not yet taken by a step.
    out: Vec<u8>,
    /// Replaced entries the hook took as they were (a plain store: [`Db::snapshot_replaced_owned`]),
    /// encoded by the next step rather than in the client's command.
    pending: Vec<(Box<[u8]>, Entry)>,
    /// The next slot a step looks at.
    cursor: usize,
    compress: bool,
    encode: KeyEncoder,
    /// Keys encoded so far (`rdb-key-save-delay` paces per key).
    keys: u64,
}

impl SnapState {
    fn is_done(&self, slot: usize) -> bool {
        self.done[slot / 64] & (1 << (slot % 64)) != 0
    }
    fn set_done(&mut self, slot: usize) {
        self.done[slot / 64] |= 1 << (slot % 64);
    }
}

/// Appends the keys of `table` not in `skip`; returns how many. Keys whose time has passed
/// but that are still stored are written too, as Redis's RDB and AOF rewrites do: a replica
/// (or a node loading the file as a replica) keeps them until its master's DEL arrives.
fn encode_table(
    encode: KeyEncoder,
    out: &mut Vec<u8>,
    table: &SlotTable,
    skip: Option<&Handled>,
    compress: bool,
) -> u64 {
    let mut n = 0;
    for (id, k, e) in table.iter_ids_prefetched() {
        if skip.is_some_and(|s| s.contains(&id)) {
            continue;
        }
        encode(out, k, e, compress);
        n += 1;
    }
    n
}

impl Db {
    /// Starts snapshot `id` of this database (index `db`): from now on every key is saved
    /// before its first change; `compress` as `rdbcompression`. Every stored key is saved,
    /// expired or not (see [`encode_table`]).
    pub fn snapshot_begin(&mut self, id: u64, db: usize, compress: bool, encode: KeyEncoder) {
        self.snap = Some(Box::new(SnapState {
            id,
            db,
            done: Box::new([0; SLOTS / 64]),
            handled: HashMap::new(),
            detached: Vec::new(),
            out: Vec::new(),
            pending: Vec::new(),
            cursor: 0,
            compress,
            encode,
            keys: 0,
        }));
    }

    /// The running snapshot's (id, start index) of this database, if any.
    pub fn snapshot_of(&self) -> Option<(u64, usize)> {
        self.snap.as_ref().map(|s| (s.id, s.db))
    }

    /// One background step: returns at least `budget` bytes of the snapshot when that many
    /// remain (whole slots, so possibly more), and whether this database is finished.
    pub fn snapshot_step(&mut self, budget: usize) -> (Vec<u8>, bool) {
        self.snapshot_step_timed(budget, None)
    }

    /// [`Db::snapshot_step`] that also stops after the slot during which `until` passed (a
    /// time slice, so one step never holds the shard's loop for long whatever the key sizes).
    pub fn snapshot_step_timed(&mut self, budget: usize, until: Option<std::time::Instant>) -> (Vec<u8>, bool) {
        let Some(mut s) = self.snap.take() else { return (Vec::new(), true) };
        let mut out = std::mem::take(&mut s.out);
        for (k, e) in s.pending.drain(..) {
            (s.encode)(&mut out, &k, &e, s.compress);
        }
        while out.len() < budget {
            if until.is_some_and(|t| std::time::Instant::now() >= t) && !out.is_empty() {
                break;
            }
            if let Some((t, skip)) = s.detached.pop() {
                s.keys += encode_table(s.encode, &mut out, &t, skip.as_ref(), s.compress);
                continue;
            }
            if s.cursor >= SLOTS {
                break;
            }
            let slot = s.cursor;
            s.cursor += 1;
            if s.is_done(slot) {
                continue;
            }
            s.set_done(slot);
            let skip = s.handled.remove(&(slot as u16));
            if let Some(t) = self.slots.get(slot) {
                s.keys += encode_table(s.encode, &mut out, t, skip.as_ref(), s.compress);
            }
        }
        let finished = s.cursor >= SLOTS && s.detached.is_empty();
        self.snap = Some(s);
        (out, finished)
    }

    /// Keys this snapshot encoded so far (0 without a snapshot).
    pub fn snapshot_keys(&self) -> u64 {
        self.snap.as_ref().map_or(0, |s| s.keys)
    }

    /// Ends the snapshot on this database (finished or abandoned).
    pub fn snapshot_end(&mut self) {
        self.snap = None;
    }

    /// The slot hook: saves what remains of `slot` (its keys not handled yet, still in their
    /// start state) unless the slot is done.
    #[cold]
    #[inline(never)]
    pub(super) fn snapshot_save_slot(&mut self, slot: u16) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        if s.is_done(slot as usize) {
            return;
        }
        s.set_done(slot as usize);
        let skip = s.handled.remove(&slot);
        if let Some(t) = self.slots.get(slot as usize) {
            s.keys += encode_table(s.encode, &mut s.out, t, skip.as_ref(), s.compress);
        }
    }

    /// The key hook: saves `key` (as it is now, still its start state) unless its slot is done
    /// or the key was handled already.
    #[inline(never)]
    pub(super) fn snapshot_save_key(&mut self, slot: u16, key: &[u8]) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        if s.is_done(slot as usize) {
            return;
        }
        let Some((id, e)) = self.slots.get(slot as usize).and_then(|t| t.find_id(key)) else {
            return;
        };
        if s.handled.entry(slot).or_default().insert(id) {
            (s.encode)(&mut s.out, key, e, s.compress);
            s.keys += 1;
        }
    }

    /// [`Db::insert`]'s hook, after the fact: the key with identity `id` in `slot` was stored
    /// over `old` (its state until now: saved unless the slot is done or the key handled), or
    /// created (`None`: recorded as handled, so the steps leave it out).
    #[inline(never)]
    pub(super) fn snapshot_replaced(&mut self, slot: u16, key: &[u8], id: usize, old: Option<&Entry>) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        if s.is_done(slot as usize) || !s.handled.entry(slot).or_default().insert(id) {
            return;
        }
        if let Some(e) = old {
            (s.encode)(&mut s.out, key, e, s.compress);
            s.keys += 1;
        }
    }

    /// [`Db::snapshot_replaced`] for a store whose caller does not want the replaced entry:
    /// when the snapshot needs it, the entry is kept as it is (with a copy of the key) and
    /// encoded by the next step, so the client's command pays a move instead of the encoding
    /// (RDB + LZF); the steps drain these first, and one runs every few hundred µs while a
    /// snapshot runs, so few wait at a time. Returns the entry when the snapshot does not
    /// keep it (to be dropped by the caller).
    #[inline(never)]
    pub(super) fn snapshot_replaced_owned(
        &mut self,
        slot: u16,
        key: &[u8],
        id: usize,
        old: Option<Entry>,
    ) -> Option<Entry> {
        let Some(s) = self.snap.as_deref_mut() else { return old };
        if s.is_done(slot as usize) || !s.handled.entry(slot).or_default().insert(id) {
            return old;
        }
        match old {
            Some(e) => {
                s.keys += 1;
                if s.pending.len() < PENDING_MAX {
                    s.pending.push((key.into(), e));
                    return None;
                }
                // Steps are held up (the file's writer is behind): encoded now, as the bytes
                // take less room than the entries.
                (s.encode)(&mut s.out, key, &e, s.compress);
                Some(e)
            }
            None => None,
        }
    }

    /// A whole table leaves the database (FLUSH, slot drop): the snapshot keeps it (with its
    /// handled keys) when its slot was not saved yet, else it is dropped.
    pub(super) fn snapshot_detach(&mut self, slot: usize, table: SlotTable) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        if !s.is_done(slot) {
            s.set_done(slot);
            let skip = s.handled.remove(&(slot as u16));
            s.detached.push((table, skip));
        }
    }

    /// FLUSH with a snapshot running: every unsaved table goes to the snapshot as it is.
    pub(super) fn snapshot_detach_all(&mut self) {
        if self.snap.is_none() {
            return;
        }
        let tables: Vec<(usize, SlotTable)> =
            self.slots.iter_mut().filter(|(_, t)| !t.is_empty()).map(|(slot, t)| (slot, std::mem::take(t))).collect();
        for (slot, t) in tables {
            self.snapshot_detach(slot, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{StrValue, Value};

    /// A test encoding: `key=value;`.
    fn enc(out: &mut Vec<u8>, k: &[u8], e: &Entry, _c: bool) {
        let Value::Str(v) = &e.value else { return };
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(&v.to_bytes());
        out.push(b';');
    }

    fn s(v: &str) -> Value {
        Value::Str(StrValue::from_bytes(v.as_bytes()))
    }

    fn drain(db: &mut Db) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let (b, done) = db.snapshot_step(16);
            all.extend_from_slice(&b);
            if done {
                break;
            }
        }
        let mut v: Vec<String> =
            String::from_utf8(all).unwrap().split(';').filter(|x| !x.is_empty()).map(String::from).collect();
        v.sort();
        v
    }

    #[test]
    fn writes_after_begin_are_not_seen() {
        let mut db = Db::new();
        for i in 0..200 {
            db.set(format!("k{i}").as_bytes(), s("old"), 0);
        }
        db.snapshot_begin(1, 0, false, enc);
        // Some steps first, then writes everywhere: overwrite, delete, add, in-place, flush.
        let (first, _) = db.snapshot_step(40);
        for i in 0..200 {
            db.set(format!("k{i}").as_bytes(), s("new"), 0);
        }
        db.remove(b"k7");
        db.set(b"added", s("x"), 0);
        let mut rest = drain(&mut db);
        let first = String::from_utf8(first).unwrap();
        rest.extend(first.split(';').filter(|x| !x.is_empty()).map(String::from));
        rest.sort();
        let mut want: Vec<String> = (0..200).map(|i| format!("k{i}=old")).collect();
        want.sort();
        assert_eq!(rest, want);
        db.snapshot_end();
        assert_eq!(db.len(), 200);
    }

    #[test]
    fn every_key_is_saved_once_whatever_touches_it() {
        let mut db = Db::new();
        for i in 0..500 {
            db.set(format!("k{i}").as_bytes(), s("old"), 0);
        }
        db.set(b"dead", s("gone"), 5);
        db.snapshot_begin(3, 0, false, enc);
        // Before any step: overwrites, delete and re-create, new keys (some deleted again),
        // an in-place edit, expiry changes, lazy expiry.
        for i in (0..500).step_by(3) {
            db.set(format!("k{i}").as_bytes(), s("new"), 0);
        }
        for i in (1..500).step_by(7) {
            db.remove(format!("k{i}").as_bytes());
            db.set(format!("k{i}").as_bytes(), s("again"), 0);
        }
        for i in 0..100 {
            db.set(format!("n{i}").as_bytes(), s("x"), 0);
        }
        for i in 0..50 {
            db.remove(format!("n{i}").as_bytes());
        }
        if let Some(e) = db.get(b"k2", 0) {
            e.value = s("inplace");
        }
        db.set_expire(b"k4", 20);
        assert!(db.get(b"dead", 10).is_none());
        // Part of the steps, then more touches, then a flush (detached tables keep their
        // handled keys) and writes after it.
        let (first, _) = db.snapshot_step(2000);
        for i in (0..500).step_by(2) {
            db.set(format!("k{i}").as_bytes(), s("later"), 0);
        }
        db.clear();
        db.set(b"k5", s("after"), 0);
        let mut got = drain(&mut db);
        got.extend(String::from_utf8(first).unwrap().split(';').filter(|x| !x.is_empty()).map(String::from));
        got.sort();
        // `dead` had expired at the start but was still stored: saved, as Redis's RDB does.
        let mut want: Vec<String> = (0..500).map(|i| format!("k{i}=old")).collect();
        want.push("dead=gone".into());
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn flush_and_slot_moves_keep_the_start_state() {
        let mut db = Db::new();
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), s("v"), 0);
        }
        db.set(b"gone", s("soon"), 5);
        db.snapshot_begin(2, 0, false, enc);
        let slot = crate::cluster::slot::key_slot(b"k1");
        let moved = db.take_slot(slot).unwrap();
        db.clear();
        db.set(b"k1", s("after"), 0);
        db.put_slot(crate::cluster::slot::key_slot(b"k2"), moved);
        let got = drain(&mut db);
        assert_eq!(got.len(), 101);
        assert!(got.iter().all(|x| x.ends_with("=v") || x == "gone=soon"));
    }
}
