//! Freeing big values and whole databases off the shards' threads (Redis's `lazyfree.c` and
//! its `BIO_LAZY_FREE` thread).
//!
//! Dropping a set of a million members takes a shard's thread tens of milliseconds, during
//! which none of its clients is served. UNLINK, DEL with `lazyfree-lazy-user-del yes`,
//! FLUSHDB/FLUSHALL ASYNC (or with `lazyfree-lazy-user-flush yes`), values replaced by a write
//! (`lazyfree-lazy-server-del yes`) or deleted as expired (`lazyfree-lazy-expire yes`) and a
//! replica's flush before a full sync hand what they remove to one node-wide thread instead,
//! as Redis does:
//! a value goes there when freeing it costs more than [`THRESHOLD`] allocations
//! ([`Value::free_effort`], Redis's `lazyfreeGetFreeEffort`), a flushed database always when
//! it held keys. The key is gone from the keyspace before the command replies either way;
//! only the memory comes back later (jemalloc takes frees from any thread). Evicted values
//! are freed on the shard (eviction measures what it freed as it goes).
//!
//! INFO memory reports `lazyfree_pending_objects` (handed over, not freed yet) and
//! `lazyfreed_objects` (freed by the thread since the start or CONFIG RESETSTAT), counted in
//! objects as Redis counts them: one per value, one per key of a flushed database.

use super::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

/// Values that cost more allocations than this to free go to the thread (`LAZYFREE_THRESHOLD`).
pub const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);
/// `lazyfree-lazy-user-del`, `-user-flush`, `-server-del`.
static USER_DEL: AtomicBool = AtomicBool::new(false);
static USER_FLUSH: AtomicBool = AtomicBool::new(false);
static SERVER_DEL: AtomicBool = AtomicBool::new(false);
static EXPIRE: AtomicBool = AtomicBool::new(false);

/// Takes the `lazyfree-lazy-*` settings from a configuration snapshot (node-wide).
pub fn apply_config(cfg: &crate::config::Config) {
    let yes = |name: &str| cfg.get(name) == Some("yes");
    USER_DEL.store(yes("lazyfree-lazy-user-del"), Ordering::Relaxed);
    USER_FLUSH.store(yes("lazyfree-lazy-user-flush"), Ordering::Relaxed);
    SERVER_DEL.store(yes("lazyfree-lazy-server-del"), Ordering::Relaxed);
    EXPIRE.store(yes("lazyfree-lazy-expire"), Ordering::Relaxed);
}

/// `lazyfree-lazy-expire yes`: a big value deleted as expired is freed as UNLINK frees (and
/// propagated as UNLINK, see `storage::changes`).
#[inline]
pub fn expire() -> bool {
    EXPIRE.load(Ordering::Relaxed)
}

/// `lazyfree-lazy-user-del yes`: DEL frees as UNLINK does.
pub fn user_del() -> bool {
    USER_DEL.load(Ordering::Relaxed)
}

/// `lazyfree-lazy-user-flush yes`: FLUSHDB/FLUSHALL without SYNC free as with ASYNC.
pub fn user_flush() -> bool {
    USER_FLUSH.load(Ordering::Relaxed)
}

/// `lazyfree-lazy-server-del yes`: a value a write replaces (SET over a big set, RENAME onto
/// an existing key, ...) is freed as UNLINK frees.
#[inline]
pub fn server_del() -> bool {
    SERVER_DEL.load(Ordering::Relaxed)
}

/// Something to drop on the thread, and how many objects it counts for.
type Job = (Box<dyn Send>, u64);

/// The thread's queue, started on first use; None when the thread could not start.
fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    static QUEUE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
                while let Ok((job, objects)) = rx.recv() {
                    drop(job);
                    PENDING.fetch_sub(objects, Ordering::AcqRel);
                    FREED.fetch_add(objects, Ordering::AcqRel);
                }
            });
            match started {
                Ok(_) => Some(Mutex::new(tx)),
                Err(e) => {
                    tracing::warn!("Can't start the lazyfree thread, freeing on the shards: {}", e);
                    None
                }
            }
        })
        .as_ref()
}

/// Hands `job` (counting `objects`) to the thread; drops it here if there is none.
fn hand_over(job: Box<dyn Send>, objects: u64) {
    let Some(q) = queue() else { return drop(job) };
    PENDING.fetch_add(objects, Ordering::AcqRel);
    let sent = q.lock().unwrap_or_else(|p| p.into_inner()).send((job, objects));
    if let Err(mpsc::SendError((job, objects))) = sent {
        PENDING.fetch_sub(objects, Ordering::AcqRel);
        drop(job);
    }
}

/// Frees a removed value: on the thread when that is worth it (Redis's `freeObjAsync`), else
/// here.
pub fn free_value(v: Value) {
    if v.free_effort() > THRESHOLD {
        hand_over(Box::new(v), 1);
    } else {
        drop(v);
    }
}

/// As [`free_value`], for a value still in its container (the active expiry's sweep): it is
/// taken out only when it goes to the thread.
pub fn free_in_place(v: &mut Value) {
    if v.free_effort() > THRESHOLD {
        let v = std::mem::replace(v, Value::Str(super::StrValue::from_bytes(b"")));
        hand_over(Box::new(v), 1);
    }
}

/// Empties one database (`emptyData` of one db), its tables freed on the thread when `lazy`
/// and it held keys; returns how many it held.
pub fn empty_db(d: &mut super::db::Db, lazy: bool) -> u64 {
    let keys = d.len() as u64;
    if lazy && keys > 0 {
        free_detached(d.detach_tables(), keys);
    } else {
        d.clear();
    }
    keys
}

/// Frees what a flush detached (`emptyDbAsync`): `keys` objects, on the thread.
pub fn free_detached(old: impl Send + 'static, keys: u64) {
    if keys == 0 {
        return drop(old);
    }
    hand_over(Box::new(old), keys);
}

/// INFO memory's `lazyfree_pending_objects`.
pub fn pending() -> u64 {
    PENDING.load(Ordering::Acquire)
}

/// INFO memory's `lazyfreed_objects`.
pub fn freed() -> u64 {
    FREED.load(Ordering::Acquire)
}

/// CONFIG RESETSTAT (`lazyfreeResetStats`).
pub fn reset_stats() {
    FREED.store(0, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::set::SetValue;

    /// Waits (bounded) until nothing is pending.
    fn drained() {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pending() != 0 {
            assert!(std::time::Instant::now() < until, "the lazyfree thread frees within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn big_values_are_freed_on_the_thread_and_small_ones_here() {
        drained();
        let before = freed();
        let mut big = SetValue::default();
        for i in 0..1000i64 {
            big.add(i.to_string().as_bytes());
        }
        let big = Value::Set(big);
        assert!(big.free_effort() > THRESHOLD);
        free_value(big);
        free_value(Value::Str(crate::storage::StrValue::from_bytes(b"small")));
        drained();
        // Other tests of this process may free too: at least ours was counted.
        assert!(freed() > before);
    }
}
