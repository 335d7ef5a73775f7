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
//! it writes. So that a script writing a big collection does not pay a copy of it on every
//! call, a key over [`MAX_ELEMENTS`] elements (a string over [`MAX_BYTES`]) is not copied: the
//! run cannot be undone then, and a later command needing another shard fails with Redis's
//! cluster error instead (declare the keys, or the node learns: see [`needs_node`]). Undoing
//! puts those states back and drops the run's records of its commands (the
//! deletions of keys found expired on the way are kept: they happened). Pending keyspace
//! notifications are dropped; what already went out (notifications published, tracking
//! invalidations, WATCH touched, MONITOR lines, command counts) stays, as after a command that
//! changed a key and set it back.

use crate::cmd::ShardState;
use crate::storage::{Entry, Value};
use crate::transaction::{self, KeyCopy};
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::HashSet;

/// Collections with more elements than this are not copied for undoing.
pub const MAX_ELEMENTS: usize = 256;
/// Strings longer than this are not copied for undoing.
pub const MAX_BYTES: usize = 16 * 1024;
/// Scripts remembered per shard as needing the whole node (forgotten all at once past this).
const MAX_REMEMBERED: usize = 1024;

thread_local! {
    /// Scripts (EVAL's SHA1, FCALL's function name) that needed the whole node on this shard.
    static WHOLE_NODE: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// True when script `sha` needed the whole node before on this shard: its runs start there
/// (no partial run to discard or undo).
pub(super) fn needs_node(sha: &str) -> bool {
    WHOLE_NODE.with(|w| w.borrow().contains(sha))
}

/// Remembers that script `sha` needed the whole node.
pub(super) fn remember_needs_node(sha: &str) {
    WHOLE_NODE.with(|w| {
        let mut w = w.borrow_mut();
        if w.len() >= MAX_REMEMBERED {
            w.clear();
        }
        w.insert(sha.to_string());
    });
}

/// The states the run's written keys had before it wrote them.
#[derive(Default)]
pub(super) struct Undo {
    /// Keys written so far.
    saved: HashSet<Bytes>,
    /// Their states before the first write (present ones; the others were absent).
    before: Vec<KeyCopy>,
    /// A written key was too big to copy: the run cannot be undone.
    too_big: bool,
}

impl Undo {
    /// Before a write command of the run with keys `args[idx]` runs on `st`.
    pub(super) fn before_write(&mut self, st: &mut ShardState, args: &[Bytes], idx: &[usize]) {
        if self.too_big {
            return;
        }
        let new: Vec<Bytes> =
            idx.iter().map(|&i| &args[i]).filter(|k| self.saved.insert((*k).clone())).cloned().collect();
        if new.is_empty() {
            return;
        }
        let now = crate::storage::now_ms();
        let big = st.ks.dbs.iter_mut().any(|d| new.iter().any(|k| d.get_notouch(k, now).is_some_and(|e| too_big(e))));
        if big {
            self.too_big = true;
            self.before.clear();
            self.saved.clear();
            return;
        }
        self.before.extend(transaction::copy_out(&mut st.ks, &new));
    }

    /// Whether the run's writes can be undone.
    pub(super) fn possible(&self) -> bool {
        !self.too_big
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

/// A value too costly to copy on every write of a script.
fn too_big(e: &Entry) -> bool {
    match &e.value {
        Value::Str(s) => s.len() > MAX_BYTES,
        Value::Hash(h) => h.len() > MAX_ELEMENTS,
        Value::Set(s) => s.len() > MAX_ELEMENTS,
        Value::ZSet(z) => z.len() > MAX_ELEMENTS,
        Value::List(l) => l.len() > MAX_ELEMENTS,
        Value::Stream(s) => s.len() > MAX_ELEMENTS as u64,
    }
}
