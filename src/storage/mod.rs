//! A shard's data, with no I/O and no async: databases made of per-slot tables, values and
//! their encodings, expiry.
//!
//! Invariants: only the owning shard's thread touches a `Keyspace`; each key lives in the table
//! of its hash slot; `Db::keys`/`Db::volatile` always equal the sums over its slot tables.

pub mod access_clock;
pub mod changes;
pub mod db;
pub mod evict;
pub mod geohash;
pub mod hash;
pub mod hash_pack;
pub mod hll;
pub mod intset;
pub mod key_table;
pub mod lazyfree;
pub mod list;
mod list_buf;
pub mod set;
pub mod set_dict;
pub mod slot_array;
pub mod snap;
pub mod strbuf;
pub mod stream;
pub mod stream_group;
#[cfg(test)]
pub(crate) mod test_rng;
pub mod thresholds;
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

/// Who wants expired keys logged: bit 0 the replication feed, bit 1 keyspace notifications.
static EXPIRED_LOGGING: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
static REPLICA_EXPIRY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Keys pushed to any database's expired log so far, node-wide (see [`expired_logged`]).
static EXPIRED_LOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn set_expired_bit(bit: u8, on: bool) {
    if on {
        EXPIRED_LOGGING.fetch_or(bit, std::sync::atomic::Ordering::Relaxed);
    } else {
        EXPIRED_LOGGING.fetch_and(!bit, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Keeps the names of expired keys for the change log (node-wide: on while the replication
/// feed is active; keyspace notifications that want `expired` events turn it on too, with
/// [`set_expired_notify`]).
pub fn set_expired_logging(on: bool) {
    set_expired_bit(1, on);
}

/// Keeps the names of expired keys for `expired` keyspace notifications.
pub fn set_expired_notify(on: bool) {
    set_expired_bit(2, on);
}

/// Keeps the names of expired keys for CLIENT TRACKING invalidations.
pub fn set_expired_tracking(on: bool) {
    set_expired_bit(4, on);
}

/// How many keys were pushed to any database's expired log so far (node-wide). A shard that
/// saw this count unchanged since it last emptied its logs has nothing logged: the push of
/// its own keys happens on its own thread before it looks.
#[inline]
pub fn expired_logged() -> u64 {
    EXPIRED_LOGGED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts `n` keys pushed to an expired log.
fn note_expired_logged(n: u64) {
    EXPIRED_LOGGED.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// Whether expired keys are logged.
#[inline]
pub fn expired_logging() -> bool {
    EXPIRED_LOGGING.load(std::sync::atomic::Ordering::Relaxed) != 0
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

thread_local! {
    static MASTER_VIEW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While the returned guard lives, lookups on this thread see logically expired keys as
/// present: a replica executing its master's command acts on the keys the master still has
/// (Redis's `expireIfNeeded` skips the master client), so the master's DEL of an expired key
/// deletes it and its writes find the keys it found.
pub fn master_view(on: bool) -> MasterView {
    let prev = MASTER_VIEW.with(|c| c.replace(on));
    MasterView { prev }
}

/// Restores the previous lookup mode on drop (see [`master_view`]).
#[derive(Debug)]
pub struct MasterView {
    prev: bool,
}

impl Drop for MasterView {
    fn drop(&mut self) {
        MASTER_VIEW.with(|c| c.set(self.prev));
    }
}

/// The client id of the link applying a master's stream (or an AOF replay), 0 when none.
static MASTER_CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Marks client `id` as the one applying a master's stream (or an AOF replay) until the
/// returned guard drops.
pub fn master_client(id: u64) -> MasterClient {
    MasterClient { prev: MASTER_CLIENT.swap(id, std::sync::atomic::Ordering::Relaxed) }
}

/// Restores the previous master client on drop (see [`master_client`]).
#[derive(Debug)]
pub struct MasterClient {
    prev: u64,
}

impl Drop for MasterClient {
    fn drop(&mut self) {
        MASTER_CLIENT.store(self.prev, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a command of client `id` acts in the master's view on a replica: the master
/// link's, or one whose client is unknown (0).
#[inline]
pub fn from_master_client(id: u64) -> bool {
    id == 0 || id == MASTER_CLIENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether lookups see logically expired keys (see [`master_view`]).
#[inline]
pub(crate) fn in_master_view() -> bool {
    MASTER_VIEW.with(|c| c.get())
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
    let now = crate::clock::wall_ms();
    CACHED_MS.with(|c| c.set(now));
    now
}

/// Sets this thread's cached clock to `ms`: a held shard running a script's command at the
/// script's time (frozen while a script runs, as in Redis).
pub fn set_clock(ms: u64) {
    CACHED_MS.with(|c| c.set(ms));
}

/// The clock as of this thread's last [`tick_clock`] (reads the real clock if never ticked).
#[inline]
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
