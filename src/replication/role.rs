//! Node-wide replica-role flags that every command's dispatch reads (one relaxed atomic load
//! when none is set), and the replication facts an RDB save records.
//!
//! - `REPLICA`: this node follows a master (set by [`super::Replication::follow`], cleared by
//!   [`super::Replication::promote`], both synchronously, so a REPLICAOF's `+OK` is followed
//!   at once by the new role's rules).
//! - `READ_ONLY`: `replica-read-only yes` (kept in step with the config by the replica link).
//! - `LOADING`: a full sync is being loaded (`-LOADING` for commands without the `loading`
//!   flag, as Redis's `processCommand`).
//! - `STALE`: the link is down and `replica-serve-stale-data no` (`-MASTERDOWN` for commands
//!   without the `stale` flag).
//! - `NO_RECORD`: the shards do not record their own executions into the feed; a replica
//!   forwards its master's stream verbatim instead.
//! - `ASYNC_LOADING`: a full sync of the same history is loaded with `repl-diskless-load
//!   swapdb` while the old data keeps serving (`-LOADING` only for commands flagged
//!   `no_async_loading`, as Redis's `processCommand`).
//! - `LOAD_HELD`: a full sync is being loaded and Redis would not yet have served any event
//!   during it (its loader serves clients only every `loading-process-events-interval-bytes`
//!   read): clients' commands wait for the load instead of getting `-LOADING`, so a small
//!   payload's load is never seen, as with redis-server.
//!
//! Invariant: the master client (the link applying the master's stream) is never refused.

use crate::cmd::flags;
use crate::protocol::Reply;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

const REPLICA: u8 = 1;
const READ_ONLY: u8 = 2;
const LOADING: u8 = 4;
const STALE: u8 = 8;
const NO_RECORD: u8 = 16;
const ASYNC_LOADING: u8 = 32;
const LOAD_HELD: u8 = 64;
const REPLAYING: u8 = 128;

static FLAGS: AtomicU8 = AtomicU8::new(0);

/// Redis's `-READONLY` for writes on a read-only replica.
pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";
/// Redis's `-LOADING` while a dataset is loaded.
pub const LOADING_ERR: &str = "LOADING Redis is loading the dataset in memory";
/// Redis's `-MASTERDOWN` with `replica-serve-stale-data no`.
pub const MASTERDOWN_ERR: &str = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

fn set(bit: u8, on: bool) {
    if on {
        FLAGS.fetch_or(bit, Ordering::AcqRel);
    } else {
        FLAGS.fetch_and(!bit, Ordering::AcqRel);
    }
}

fn has(bit: u8) -> bool {
    FLAGS.load(Ordering::Acquire) & bit != 0
}

/// Marks this node a replica (or a master).
pub fn set_replica(on: bool) {
    set(REPLICA, on);
    crate::logging::set_replica_role(on);
}

/// Bumped each time this node is set to follow a (new) master: the shards then answer their
/// blocked clients `-UNBLOCKED` (Redis's `disconnectAllBlockedClients` in `replicationSetMaster`).
static FOLLOW_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This node was set to follow a (new) master.
pub fn followed_new_master() {
    FOLLOW_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// How many times this node was set to follow a master.
pub fn follow_epoch() -> u64 {
    FOLLOW_EPOCH.load(Ordering::Acquire)
}

/// True on a replica (a master is configured).
pub fn is_replica() -> bool {
    has(REPLICA)
}

/// Follows `replica-read-only`.
pub fn set_read_only(on: bool) {
    set(READ_ONLY, on);
}

/// On while a full sync is loaded.
pub fn set_loading(on: bool) {
    set(LOADING, on);
}

/// True while a full sync is loaded.
pub fn loading() -> bool {
    has(LOADING)
}

/// On while clients' commands wait for a full sync's load (see `LOAD_HELD` above).
pub fn set_load_held(on: bool) {
    set(LOAD_HELD, on);
    crate::pause::hold_changed();
}

/// True while clients' commands wait for a full sync's load.
#[inline]
pub fn load_held() -> bool {
    FLAGS.load(Ordering::Relaxed) & LOAD_HELD != 0
}

/// On while a full sync is loaded beside the old data (Redis's `async_loading`).
pub fn set_async_loading(on: bool) {
    set(ASYNC_LOADING, on);
}

/// True while a full sync is loaded beside the old data.
pub fn async_loading() -> bool {
    has(ASYNC_LOADING)
}

/// On while the link is down with `replica-serve-stale-data no`.
pub fn set_stale(on: bool) {
    set(STALE, on);
}

/// True while the link is down with `replica-serve-stale-data no` (scripts check it).
pub fn stale() -> bool {
    has(STALE)
}

/// True on a replica with `replica-read-only yes` (scripts check it).
pub fn read_only_replica() -> bool {
    has(REPLICA) && has(READ_ONLY)
}

/// On while the shards must not record their executions (a replica applying its master's
/// stream forwards that stream instead).
pub fn set_no_record(on: bool) {
    set(NO_RECORD, on);
}

/// On while DEBUG LOADAOF replays the AOF's commands: they rebuild what the replicas and the
/// AOF already have, so nothing of them is recorded (Redis loads through a fake client whose
/// commands are never propagated).
pub fn set_replaying(on: bool) {
    set(REPLAYING, on);
}

/// Whether the shards record their executions into the feed: not while a replica forwards
/// its master's stream, nor while DEBUG LOADAOF replays the AOF. Only a replica's flag counts:
/// a REPLICAOF NO ONE takes effect at once for the writes that follow it, before the
/// replica-link task clears the flag (a write made right after it must reach the AOF).
#[inline]
pub fn no_record() -> bool {
    let f = FLAGS.load(Ordering::Acquire);
    (f & NO_RECORD != 0 && f & REPLICA != 0) || f & REPLAYING != 0
}

/// The refusal a command gets from the replica-role rules, if any. `cluster`: cluster mode,
/// where writes to a replica are redirected by the slot rules instead; `master`: the client
/// is the master link.
#[inline]
pub fn refuse(spec_flags: u32, cluster: bool, master: bool) -> Option<Reply> {
    let f = FLAGS.load(Ordering::Relaxed);
    if f & (REPLICA | LOADING | STALE | ASYNC_LOADING) == 0 || master {
        return None;
    }
    if f & (REPLICA | READ_ONLY) == REPLICA | READ_ONLY && !cluster && spec_flags & flags::WRITE != 0 {
        return Some(Reply::err(READONLY_ERR));
    }
    if f & STALE != 0 && spec_flags & flags::STALE == 0 {
        return Some(Reply::err(MASTERDOWN_ERR));
    }
    if f & LOADING != 0 && spec_flags & flags::LOADING == 0 {
        return Some(Reply::err(LOADING_ERR));
    }
    if f & ASYNC_LOADING != 0 && spec_flags & flags::NO_ASYNC_LOADING != 0 {
        return Some(Reply::err(LOADING_ERR));
    }
    None
}

/// What an RDB save records about replication (`repl-stream-db`, `repl-id`, `repl-offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveInfo {
    /// The master stream's selected database.
    pub stream_db: usize,
    /// The replication id.
    pub replid: String,
    /// The replication offset.
    pub offset: u64,
}

static SAVE_ID: Mutex<Option<String>> = Mutex::new(None);
static SAVE_DB: AtomicUsize = AtomicUsize::new(0);
static SAVE_OFFSET: AtomicU64 = AtomicU64::new(0);
static LOADED: Mutex<Option<SaveInfo>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets (or clears) the replication id saves record; None: saves record no replication info.
pub fn set_save_id(replid: Option<String>) {
    *lock(&SAVE_ID) = replid;
}

/// The master stream's current database and offset (the master link updates them).
pub fn set_save_position(db: usize, offset: u64) {
    SAVE_DB.store(db, Ordering::Relaxed);
    SAVE_OFFSET.store(offset, Ordering::Relaxed);
}

/// A run of the master's stream is being applied (its position is published when it ends).
static APPLYING: AtomicBool = AtomicBool::new(false);

/// Marks a run of the master's stream as being applied until the guard drops (the master
/// link, around each run it applies).
pub fn applying() -> Applying {
    APPLYING.store(true, Ordering::Release);
    Applying
}

/// See [`applying`].
pub struct Applying;

impl Drop for Applying {
    fn drop(&mut self) {
        APPLYING.store(false, Ordering::Release);
    }
}

/// What a save made now records (Redis's `rdbPopulateSaveInfo`), if anything. None while a
/// run of the master's stream is half applied: the saved data would hold part of it and the
/// position none, so a resync from there would apply that part twice (the file then records
/// no position, and a replica restarted from it syncs in full).
pub fn save_info() -> Option<SaveInfo> {
    if APPLYING.load(Ordering::Acquire) {
        tracing::debug!("save while a run of the master's stream is applied: no replication info");
        return None;
    }
    let replid = lock(&SAVE_ID).clone()?;
    Some(SaveInfo { stream_db: SAVE_DB.load(Ordering::Relaxed), replid, offset: SAVE_OFFSET.load(Ordering::Relaxed) })
}

/// Keeps the replication info read from the RDB file at start-up (a restarted replica
/// resumes from it with a partial resync).
pub fn set_loaded_info(info: Option<SaveInfo>) {
    *lock(&LOADED) = info;
}

/// Takes the replication info read at start-up.
pub fn take_loaded_info() -> Option<SaveInfo> {
    lock(&LOADED).take()
}

/// The socket of the link to this replica's master, -1 while there is none.
static MASTER_FD: AtomicI32 = AtomicI32::new(-1);

/// The master link publishes its socket while it applies the stream (-1 when it ends).
pub fn set_master_fd(fd: i32) {
    MASTER_FD.store(fd, Ordering::Release);
}

/// How long a PSYNC FAILOVER waits for the master link to apply what it was sent.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Before a PSYNC FAILOVER promotes this replica: lets the master link apply what its master
/// had already sent (bytes waiting in the socket, or read and not applied yet), for at most
/// [`DRAIN_LIMIT`]. Redis serves the link and the new connection on one thread, the link's
/// older bytes first; with several shards the PSYNC could be served on another shard before
/// the link's shard ran, and the promotion left out its old master's last writes, so the old
/// master's own PSYNC was refused and it synced in full.
pub async fn drain_master_link(repl: &super::Replication) {
    let start = std::time::Instant::now();
    while start.elapsed() < DRAIN_LIMIT {
        let fd = MASTER_FD.load(Ordering::Acquire);
        if fd < 0 {
            return;
        }
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int; an fd closed meanwhile fails with EBADF.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } != 0 {
            return;
        }
        let read = repl.with_status(|s| s.master.as_ref().map_or(0, |m| m.read_offset));
        if unread == 0 && read <= repl.offset() {
            return;
        }
        crate::runtime::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_follow_the_flags() {
        let w = flags::WRITE;
        set_replica(true);
        set_read_only(true);
        assert_eq!(refuse(w, false, false), Some(Reply::err(READONLY_ERR)));
        assert_eq!(refuse(w, true, false), None);
        assert_eq!(refuse(w, false, true), None);
        assert_eq!(refuse(flags::READONLY, false, false), None);
        set_loading(true);
        assert_eq!(refuse(flags::READONLY, false, false), Some(Reply::err(LOADING_ERR)));
        assert_eq!(refuse(flags::LOADING, false, false), None);
        set_loading(false);
        set_replica(false);
        assert_eq!(refuse(w, false, false), None);
        set_read_only(false);
    }
}
