//! Taking back what a script run wrote on its own shard, so the run can start again on the
//! whole node (`script_node`).
//!
//! A script running on its shard alone (`script_exec`'s Direct way) on a node of several
//! shards may, after writing, call a node-wide command or touch a key of another shard. It
//! cannot wait for the other shards then (it holds its own, and waiting for a lower shard while
//! holding a higher one could deadlock with a multi-shard transaction), so the run is undone
//! and the script runs again holding every shard, as Redis would have run it in one go.
//!
//! To undo, each key a write command names is copied (in every database) the first time the
//! run writes it, before the write: the price of a write in such a run is one copy of each key
//! it writes. Undoing puts those states back and drops the run's records of its commands (the
//! deletions of keys found expired on the way are kept: they happened). Pending keyspace
//! notifications are dropped; what already went out (notifications published, tracking
//! invalidations, WATCH touched, MONITOR lines, command counts) stays, as after a command that
//! changed a key and set it back.

use crate::cmd::ShardState;
use crate::transaction::{self, KeyCopy};
use bytes::Bytes;
use std::collections::HashSet;

/// The states the run's written keys had before it wrote them.
#[derive(Default)]
pub(super) struct Undo {
    /// Keys written so far.
    saved: HashSet<Bytes>,
    /// Their states before the first write (present ones; the others were absent).
    before: Vec<KeyCopy>,
}

impl Undo {
    /// Before a write command of the run with keys `args[idx]` runs on `st`.
    pub(super) fn before_write(&mut self, st: &mut ShardState, args: &[Bytes], idx: &[usize]) {
        let new: Vec<Bytes> =
            idx.iter().map(|&i| &args[i]).filter(|k| self.saved.insert((*k).clone())).cloned().collect();
        if !new.is_empty() {
            self.before.extend(transaction::copy_out(&mut st.ks, &new));
        }
    }

    /// Puts the written keys back as they were and drops the run's records (all but expired
    /// keys' deletions) and pending notifications.
    pub(super) fn undo(self, st: &mut ShardState) {
        let keys: Vec<Bytes> = self.saved.iter().cloned().collect();
        let ndbs = st.ks.dbs.len();
        let mut states: Vec<KeyCopy> = (0..ndbs).flat_map(|d| keys.iter().map(move |k| (d, k.clone(), None))).collect();
        states.extend(self.before);
        transaction::apply(&mut st.ks, states);
        crate::cmd::blocked::after_keys(st, Some(&keys));
        for u in st.changes.take() {
            if is_expiry(&u.cmds, &self.saved) {
                st.changes.record(u.db, 0, u.cmds);
            }
        }
        st.notify.take();
    }
}

/// A unit recording the deletion of one expired key the run did not write (`DEL k` or
/// `UNLINK k`, as `storage::changes` records expiry); the run's own DEL/UNLINK name written
/// keys.
fn is_expiry(cmds: &[Vec<Bytes>], saved: &HashSet<Bytes>) -> bool {
    match cmds {
        [c] if c.len() == 2 => {
            (c[0].eq_ignore_ascii_case(b"DEL") || c[0].eq_ignore_ascii_case(b"UNLINK")) && !saved.contains(&c[1])
        }
        _ => false,
    }
}
