//! Work that spans shards (design.md §4), in standalone mode where one command's keys may live
//! on several shards of this node.
//!
//! The scheme, in the spirit of Dragonfly's VLL but simpler:
//! 1. **Hold**: the coordinator (the client's home shard) takes the *gate* of every shard the
//!    command touches, in ascending shard order. A held shard runs nothing else: messages from
//!    other shards are deferred in arrival order, its own connections wait. Ascending order
//!    means two transactions never wait on each other (no deadlock).
//! 2. **Copy in**: the coordinator copies the command's keys (from every database, so COPY/MOVE
//!    with DB work) into a scratch [`ShardState`].
//!    A command with derived keys (`Keys::Derived`: SORT's BY/GET patterns name keys after
//!    the sorted key's elements) holds *every* shard in step 1, since those keys are unknown
//!    until the data is read; after copying its argument keys it asks the spec which keys the
//!    copy names and copies those too. They are only read and are never written back.
//! 3. **Run**: the command's ordinary keyed handler runs on the scratch copy. Handlers therefore
//!    never know whether their keys were local.
//! 4. **Write back**: for write commands, the final state of every copied key (None = deleted)
//!    goes back to its owner.
//! 5. **Release** the gates; deferred messages replay in order.
//!
//! Invariants: between hold and release no other command observes or changes any involved
//! key, so the command is atomic as seen by every other client; only the owning shard's thread
//! ever mutates its keyspace (the coordinator mutates a scratch copy, owners apply the result).
//! Node-wide commands (FLUSHALL, SWAPDB, KEYS, DBSIZE) hold every shard the same way.
//!
//! This module holds the pure parts (copying keys in and out); `crate::runtime::shard` holds
//! the message exchange.

use crate::cmd::ShardState;
use crate::storage::{Entry, Keyspace};
use bytes::Bytes;

/// One key's state moved between shards: (database, key, entry or None for absent).
pub type KeyCopy = (usize, Bytes, Option<Entry>);

/// Copies keys out of every database (live entries only; expired ones are reclaimed).
pub fn copy_out(ks: &mut Keyspace, keys: &[Bytes]) -> Vec<KeyCopy> {
    let now = crate::storage::now_ms();
    let mut out = Vec::new();
    for (d, db) in ks.dbs.iter_mut().enumerate() {
        for k in keys {
            if let Some(e) = db.get_notouch(k, now) {
                out.push((d, k.clone(), Some(e.clone())));
            }
        }
    }
    out
}

/// The final state of `keys` in every database of a scratch keyspace, absent ones as None,
/// ready to be written back to their owner.
pub fn final_states(scratch: &mut Keyspace, keys: &[Bytes]) -> Vec<KeyCopy> {
    let now = crate::storage::now_ms();
    let mut out = Vec::new();
    for (d, db) in scratch.dbs.iter_mut().enumerate() {
        for k in keys {
            let e = db.get_notouch(k, now).map(|e| e.clone());
            out.push((d, k.clone(), e));
        }
    }
    out
}

/// Stores states of keys (None deletes).
pub fn apply(ks: &mut Keyspace, entries: Vec<KeyCopy>) {
    for (d, k, e) in entries {
        let Some(db) = ks.dbs.get_mut(d) else { continue };
        match e {
            Some(e) => {
                db.insert(&k, e);
            }
            None => {
                db.remove(&k);
            }
        }
    }
}

/// Adds the counters of a scratch run to the coordinator's shard.
pub fn merge_stats(into: &mut ShardState, from: &ShardState) {
    into.stats.total_commands += from.stats.total_commands;
    into.stats.keyspace_hits += from.stats.keyspace_hits;
    into.stats.keyspace_misses += from.stats.keyspace_misses;
    for (k, v) in from.stats.cmdstats.iter() {
        let e = into.stats.cmdstats.get(k);
        e.calls += v.calls;
        e.usec += v.usec;
        e.failed_calls += v.failed_calls;
        e.rejected_calls += v.rejected_calls;
        if let Some(h) = &v.hist {
            e.hist.get_or_insert_with(Default::default).add_sparse(&h.sparse());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StrValue, Value};

    #[test]
    fn copy_run_write_back() {
        let mut owner = Keyspace::new(2);
        owner.dbs[0].set(b"a", Value::Str(StrValue::Int(1)), 0);
        owner.dbs[1].set(b"a", Value::Str(StrValue::Int(2)), 0);
        let keys = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let mut scratch = Keyspace::new(2);
        apply(&mut scratch, copy_out(&mut owner, &keys));
        // "Run": delete a in db0, create b in db1.
        scratch.dbs[0].remove(b"a");
        scratch.dbs[1].set(b"b", Value::Str(StrValue::Int(3)), 0);
        apply(&mut owner, final_states(&mut scratch, &keys));
        assert!(!owner.dbs[0].contains(b"a", 0));
        assert!(owner.dbs[1].contains(b"a", 0));
        assert!(owner.dbs[1].contains(b"b", 0));
        assert_eq!(owner.dbs[0].len() + owner.dbs[1].len(), 2);
    }
}
