//! The pre-write hook of a point-in-time snapshot (forkless BGSAVE, design.md §5 "Snapshots").
//!
//! While a snapshot runs, each [`Db`] carries a [`SnapState`]: one "done" bit per hash slot.
//! The snapshot's background steps serialize the slots in ascending order; before anything
//! changes a slot whose bit is still clear (any write, a lookup that hands out `&mut Entry`,
//! lazy or active expiry, a slot drop or move, FLUSH), `Db` serializes that whole slot first
//! and sets its bit. So every slot is written exactly once, as it was when the snapshot began,
//! and memory grows only by the slots saved ahead of the steps (not yet taken by the writer).
//! Tables removed whole (FLUSHDB/FLUSHALL, dropped slots) are not copied: they are kept,
//! unchanged, until a step serializes them.
//!
//! Invariants: a slot's bit is set exactly when its state at the snapshot's start is in the
//! output (or kept in `detached`); only the owning shard touches a `SnapState`. The encoding
//! itself is injected ([`SlotEncoder`]), so storage does not depend on the RDB codec.
//! SWAPDB moves a database's `SnapState` with its data, so a snapshot finds its databases by
//! the index they had when it began ([`SnapState::db`]).

use super::db::{Db, SlotTable};
use crate::cluster::slot::SLOTS;

/// Appends the live keys of one slot table (those not expired at `now_ms`) in the snapshot's
/// format; returns how many keys it wrote.
pub type SlotEncoder = fn(out: &mut Vec<u8>, table: &SlotTable, now_ms: u64, compress: bool) -> usize;

/// One database's part of a running snapshot.
#[derive(Debug)]
pub struct SnapState {
    /// Which snapshot.
    pub id: u64,
    /// The index this database had when the snapshot began.
    pub db: usize,
    /// One bit per slot: its start state is saved (or detached).
    done: Box<[u64; SLOTS / 64]>,
    /// Whole tables removed before they were saved, in their start state.
    detached: Vec<SlotTable>,
    /// Bytes of slots the hook saved, not yet taken by a step.
    out: Vec<u8>,
    /// The next slot a step looks at.
    cursor: usize,
    /// Keys already expired at this time are left out.
    now_ms: u64,
    compress: bool,
    encode: SlotEncoder,
    /// Keys in the tables encoded so far (`rdb-key-save-delay` paces per key).
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

impl Db {
    /// Starts snapshot `id` of this database (index `db`): from now on every slot is saved
    /// before its first change. `now_ms` is the snapshot's time (keys expired then are left
    /// out); `compress` as `rdbcompression`.
    pub fn snapshot_begin(&mut self, id: u64, db: usize, now_ms: u64, compress: bool, encode: SlotEncoder) {
        self.snap = Some(Box::new(SnapState {
            id,
            db,
            done: Box::new([0; SLOTS / 64]),
            detached: Vec::new(),
            out: Vec::new(),
            cursor: 0,
            now_ms,
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
        while out.len() < budget {
            if until.is_some_and(|t| std::time::Instant::now() >= t) && !out.is_empty() {
                break;
            }
            if let Some(t) = s.detached.pop() {
                s.keys += t.len() as u64;
                (s.encode)(&mut out, &t, s.now_ms, s.compress);
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
            if let Some(t) = self.slots.get(slot).and_then(|t| t.as_deref()) {
                s.keys += t.len() as u64;
                (s.encode)(&mut out, t, s.now_ms, s.compress);
            }
        }
        let finished = s.cursor >= SLOTS && s.detached.is_empty();
        self.snap = Some(s);
        (out, finished)
    }

    /// Keys in the tables this snapshot encoded so far (0 without a snapshot).
    pub fn snapshot_keys(&self) -> u64 {
        self.snap.as_ref().map_or(0, |s| s.keys)
    }

    /// Ends the snapshot on this database (finished or abandoned).
    pub fn snapshot_end(&mut self) {
        self.snap = None;
    }

    /// The hook: saves `slot` (as it is now, still its start state) unless it already is.
    #[cold]
    #[inline(never)]
    pub(super) fn snapshot_save_slot(&mut self, slot: u16) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        let slot = slot as usize;
        if s.is_done(slot) {
            return;
        }
        s.set_done(slot);
        if let Some(t) = self.slots.get(slot).and_then(|t| t.as_deref()) {
            s.keys += t.len() as u64;
            (s.encode)(&mut s.out, t, s.now_ms, s.compress);
        }
    }

    /// A whole table leaves the database (FLUSH, slot drop): the snapshot keeps it when its
    /// slot was not saved yet, else it is dropped.
    pub(super) fn snapshot_detach(&mut self, slot: usize, table: SlotTable) {
        let Some(s) = self.snap.as_deref_mut() else { return };
        if !s.is_done(slot) {
            s.set_done(slot);
            s.detached.push(table);
        }
    }

    /// FLUSH with a snapshot running: every unsaved table goes to the snapshot as it is.
    pub(super) fn snapshot_detach_all(&mut self) {
        if self.snap.is_none() {
            return;
        }
        for slot in 0..self.slots.len() {
            if let Some(t) = self.slots[slot].take() {
                self.snapshot_detach(slot, *t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{StrValue, Value};

    /// A test encoding: `key=value;` per live key.
    fn enc(out: &mut Vec<u8>, t: &SlotTable, now: u64, _c: bool) -> usize {
        let mut n = 0;
        for (k, e) in t.iter().filter(|(_, e)| !e.is_expired(now)) {
            let Value::Str(v) = &e.value else { continue };
            out.extend_from_slice(k);
            out.push(b'=');
            out.extend_from_slice(&v.to_bytes());
            out.push(b';');
            n += 1;
        }
        n
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
        db.snapshot_begin(1, 0, 0, false, enc);
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
    fn flush_and_slot_moves_keep_the_start_state() {
        let mut db = Db::new();
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), s("v"), 0);
        }
        db.set(b"gone", s("soon"), 5);
        db.snapshot_begin(2, 0, 10, false, enc);
        let slot = crate::cluster::slot::key_slot(b"k1");
        let moved = db.take_slot(slot).unwrap();
        db.clear();
        db.set(b"k1", s("after"), 0);
        db.put_slot(crate::cluster::slot::key_slot(b"k2"), moved);
        let got = drain(&mut db);
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|x| x.ends_with("=v")));
    }
}
