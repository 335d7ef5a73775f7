//! A shard's data, with no I/O and no async: databases made of per-slot tables, values and
//! their encodings, expiry.
//!
//! Invariants: only the owning shard's thread touches a `Keyspace`; each key lives in the table
//! of its hash slot; `Db::keys`/`Db::volatile` always equal the sums over its slot tables.

pub mod changes;
pub mod db;
pub mod geohash;
pub mod hash;
pub mod hash_pack;
pub mod hll;
pub mod intset;
pub mod list;
pub mod set;
#[cfg(test)]
pub(crate) mod test_rng;
pub mod value;
pub mod watch;
pub mod zset;
pub mod zset_pack;
pub mod zset_tree;

pub use db::{Db, Entry, Keyspace, SlotTable};
pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use value::{StrValue, Value};
pub use zset::ZSetValue;

static ACTIVE_EXPIRE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// DEBUG SET-ACTIVE-EXPIRE: turns the background expire cycle on or off (node-wide).
pub fn set_active_expire(on: bool) {
    ACTIVE_EXPIRE.store(on, std::sync::atomic::Ordering::Relaxed);
}

static EXPIRED_LOGGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static REPLICA_EXPIRY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keeps the names of expired keys for the change log (node-wide: on while the replication
/// feed is active or keyspace notifications want `expired` events).
pub fn set_expired_logging(on: bool) {
    EXPIRED_LOGGING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether expired keys are logged.
#[inline]
pub fn expired_logging() -> bool {
    EXPIRED_LOGGING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Replica expiry (node-wide, on while this node replicates a master): keys are never deleted
/// because they expired, only hidden from readers; the master's DEL deletes them.
pub fn set_replica_expiry(on: bool) {
    REPLICA_EXPIRY.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this node expires as a replica.
#[inline]
pub fn replica_expiry() -> bool {
    REPLICA_EXPIRY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the background expire cycle runs.
pub fn active_expire_enabled() -> bool {
    ACTIVE_EXPIRE.load(std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    static CACHED_MS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Reads the wall clock and caches it for this thread (like Redis's cached `mstime`): call it
/// once per batch of commands, then use [`cached_ms`] inside the batch.
pub fn tick_clock() -> u64 {
    let now = now_ms();
    CACHED_MS.with(|c| c.set(now));
    now
}

/// The clock as of this thread's last [`tick_clock`] (reads the real clock if never ticked).
pub fn cached_ms() -> u64 {
    let v = CACHED_MS.with(|c| c.get());
    if v == 0 {
        tick_clock()
    } else {
        v
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
