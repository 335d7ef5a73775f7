//! A shard's change log: the "one door" every change to its keyspace passes.
//!
//! Redis's `call()` decides propagation by whether `server.dirty` moved, and what it propagates
//! is the command in its propagation form (absolute expiries, SPOP as SREM, expiry as DEL...).
//! A shard keeps the same two things here:
//! - `dirty`: changes since start (Redis's `server.dirty` rule: a command that changes nothing
//!   adds nothing), read by INFO `rdb_changes_since_last_save` and the save points;
//! - pending units: the commands in propagation form, recorded while the replication feed is
//!   active, and drained after every top-level operation of the shard: pushed to the feed, or
//!   handed back to the coordinator of the transaction that holds the shard (which pushes the
//!   whole transaction as one unit before releasing its shards).
//!
//! Who records: `cmd::execute_keyed` (every keyed command, with the lazy expiries it caused),
//! node-wide shard functions (FLUSHDB, FLUSHALL, SWAPDB), serving blocked pops, the active
//! expire cycle, MIGRATE's delete, slot drops. Recording never waits and allocates only while
//! someone consumes the stream.

use crate::replication::feed::{Argv, Unit};
use bytes::Bytes;

/// One shard's change log.
#[derive(Debug, Default)]
pub struct ChangeLog {
    /// Changes since start (monotonic; Redis's `server.dirty`).
    dirty: u64,
    /// `dirty` at the last successful save (RDB).
    saved_at: u64,
    /// Whether commands are recorded (the feed is active).
    recording: bool,
    /// Units recorded and not yet drained.
    pending: Vec<Unit>,
    /// Consumers (`Unit::TO_*` bits) that do not get the commands recorded now: a script's
    /// `redis.set_repl` (0 outside scripts).
    excluded: u8,
}

impl ChangeLog {
    /// Changes since start.
    pub fn dirty(&self) -> u64 {
        self.dirty
    }

    /// Changes since the last successful save (INFO `rdb_changes_since_last_save`).
    pub fn since_save(&self) -> u64 {
        self.dirty.saturating_sub(self.saved_at)
    }

    /// A save that captured everything up to `dirty_then` succeeded.
    pub fn saved(&mut self, dirty_then: u64) {
        self.saved_at = self.saved_at.max(dirty_then);
    }

    /// Turns recording of commands on or off (follows the feed's activity).
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
        if !on {
            self.pending.clear();
        }
    }

    /// True while commands are recorded.
    #[inline]
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Leaves the consumers in `to` (`Unit::TO_*` bits) out of the commands recorded from now
    /// on, until set again (`redis.set_repl`); 0: every consumer.
    #[inline]
    pub fn set_excluded(&mut self, to: u8) {
        self.excluded = to;
    }

    /// Counts `n` changes without recording a command (the command's record comes from its
    /// caller, e.g. one FLUSHALL for the whole node).
    #[inline]
    pub fn count(&mut self, n: u64) {
        self.dirty += n;
    }

    /// Counts `n` changes and records the commands that reproduce them, as one unit in `db`.
    pub fn record(&mut self, db: usize, n: u64, cmds: Vec<Argv>) {
        self.dirty += n;
        let to = Unit::TO_ALL & !self.excluded;
        if self.recording && !cmds.is_empty() && to != 0 {
            self.pending.push(Unit { db, cmds, to });
        }
    }

    /// Records `cmds` for the consumers `to` only (less those a script's `redis.set_repl`
    /// leaves out), counting no change (DEBUG REPLICATE, PUBLISH).
    pub fn record_to(&mut self, db: usize, cmds: Vec<Argv>, to: u8) {
        let to = to & !self.excluded;
        if self.recording && !cmds.is_empty() && to != 0 {
            self.pending.push(Unit { db, cmds, to });
        }
    }

    /// Records the deletion of expired keys (Redis's `propagateDeletion`: DEL, or UNLINK with
    /// `lazyfree-lazy-expire yes`), one unit each.
    pub fn record_expired(&mut self, db: usize, keys: &[Box<[u8]>], unlink: bool) {
        if !self.recording {
            return;
        }
        let verb = Bytes::from_static(if unlink { b"UNLINK" } else { b"DEL" });
        for k in keys {
            self.pending.push(Unit::new(db, vec![vec![verb.clone(), Bytes::copy_from_slice(k)]]));
        }
    }

    /// Takes the recorded units (to push them to the feed, or hand them to a transaction).
    pub fn take(&mut self) -> Vec<Unit> {
        std::mem::take(&mut self.pending)
    }

    /// True when units wait to be drained.
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Argv {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    #[test]
    fn counts_always_records_only_when_on() {
        let mut log = ChangeLog::default();
        log.record(0, 1, vec![argv(&["SET", "a", "1"])]);
        assert_eq!((log.dirty(), log.has_pending()), (1, false));
        log.set_recording(true);
        log.record(0, 2, vec![argv(&["SADD", "s", "x", "y"])]);
        log.record_expired(3, &[b"k".to_vec().into_boxed_slice()], false);
        let units = log.take();
        assert_eq!(units.len(), 2);
        assert_eq!(units[1], Unit::new(3, vec![argv(&["DEL", "k"])]));
        assert_eq!(log.dirty(), 3);
        log.saved(2);
        assert_eq!(log.since_save(), 1);
    }
}
