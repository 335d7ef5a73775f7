//! The eviction cycle on one shard (Redis's `performEvictions`): while the node is over
//! `maxmemory`, delete this shard's best candidates (chosen by `storage::evict`), measure what
//! each delete freed with this thread's allocation counters, count `evicted_keys`, touch WATCH,
//! queue `evicted` notifications and record each eviction as DEL (UNLINK with
//! `lazyfree-lazy-eviction yes`) in the change log, so replicas and the AOF delete the same
//! keys. A replica does not evict (unless `replica-ignore-maxmemory no`): its master's DELs
//! keep it in step.
//!
//! Invariants: runs only on the shard's own thread, between operations (never inside a held
//! transaction); the caller flushes the change log afterwards (`ShardState::flush_changes`).

use super::{
    eviction_time_limit_us, lazy_eviction, maxmemory, policy, replica_ignores, samples, thread_net, used_for_evict,
};
use crate::cmd::ShardState;
use crate::storage::evict::{pick, Pool};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

/// How stale the node's count may be when a cycle would evict (a refresh merges jemalloc's
/// arena statistics, tens of µs: at most once per this many µs on a node kept at its ceiling).
const REFRESH_BEFORE_EVICTING_US: u64 = 1000;

thread_local! {
    /// This shard's eviction pool (kept between cycles, as Redis's static pool).
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    /// The state of the command being run: over the ceiling when it started (Redis's
    /// `server.pre_command_oom_state`, read by scripts before their first write).
    static PRE_COMMAND_OOM: Cell<bool> = const { Cell::new(false) };
    /// What ran this shard's eviction cycle (for the debug log).
    static CAUSE: Cell<&'static str> = const { Cell::new("") };
}

/// What a cycle ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Under the ceiling (or no ceiling, or a replica that ignores it).
    Ok,
    /// Still over after the cycle's time budget; evicting goes on in the cron.
    Running,
    /// Over the ceiling with nothing (left) to evict, or `noeviction`.
    Fail,
}

/// Runs one eviction cycle if the node is over `maxmemory` (Redis's `performEvictions`).
pub fn perform(st: &mut ShardState) -> Outcome {
    let max = maxmemory();
    // Nothing is evicted while clients are paused (Redis's `isSafeToPerformEvictions`).
    if max == 0 || replica_ignores() || crate::pause::paused(crate::storage::cached_ms()) {
        return Outcome::Ok;
    }
    super::in_flight::settle();
    let mut now_used = used_for_evict();
    if now_used <= max {
        return Outcome::Ok;
    }
    if super::refresh_if_older_than_us(REFRESH_BEFORE_EVICTING_US) {
        // Between refreshes the count holds what this shard allocated and other threads have
        // freed since (the records of replicated writes, freed by the control core): it is
        // confirmed with jemalloc's total before any key goes for it.
        now_used = used_for_evict();
        if now_used <= max {
            return Outcome::Ok;
        }
    }
    let policy = policy();
    if policy == super::Policy::NoEviction {
        return Outcome::Fail;
    }
    let to_free = (now_used - max) as i64;
    tracing::debug!(
        "maxmemory: shard {} ({}) evicts {} bytes: used {}, left out {}, closing clients {}, in flight {}, clients {} of {}",
        st.id,
        CAUSE.get(),
        to_free,
        super::used(),
        super::not_counted_for_evict(),
        super::clients::closing_bytes(),
        super::in_flight::left_out(),
        super::clients::node_total(),
        super::clients::limit()
    );
    let limit_us = eviction_time_limit_us();
    let start = std::time::Instant::now();
    let now_ms = crate::storage::cached_ms();
    let unlink = lazy_eviction();
    let samples = samples();
    let mut freed: i64 = 0;
    let mut evicted = 0u64;
    let outcome = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        while freed < to_free {
            let Some((db, key)) = pick(&st.ks, &mut pool, policy, samples, now_ms) else {
                return Outcome::Fail;
            };
            let before = thread_net();
            drop(st.ks.dbs[db].remove(&key));
            freed += before - thread_net();
            evicted += 1;
            st.changes.record_expired(db, std::slice::from_ref(&key), unlink);
            crate::cmd::notify::emit(st, crate::cmd::notify::EVICTED, "evicted", &key, db);
            // Trackers of the key hear of it (Redis signals an evicted key as modified); the
            // messages are left out of the count until their connections take them.
            let telling = thread_net();
            if let Some(copy) = crate::cmd::tracking::evicted(st, &key) {
                super::in_flight::add(copy, thread_net() - telling);
            }
            if evicted % 16 == 0 {
                // Others may have freed memory meanwhile (or ours was all in the snapshot's copy).
                if used_for_evict() <= max {
                    break;
                }
                if start.elapsed().as_micros() as u64 > limit_us {
                    return Outcome::Running;
                }
            }
        }
        Outcome::Ok
    });
    st.stats.evicted_keys += evicted;
    outcome
}

/// Before a command on its home shard (Redis's `processCommand` maxmemory step): evicts as
/// needed and says whether the node is out of memory (a `denyoom` command, and any command
/// queued in MULTI, is then refused with [`super::OOM`]). Also remembers the state for
/// [`pre_command_oom`]. `node_wide`: the command's cycle already ran
/// ([`before_command_node_wide`]), and whether the node was out of memory after it; Redis runs
/// one cycle per command, and a second one here, right after the first, found the first one's
/// invalidations still on their way to other shards' clients and evicted as many keys again.
pub fn before_command(st: &mut ShardState, node_wide: Option<bool>) -> bool {
    if maxmemory() == 0 {
        PRE_COMMAND_OOM.with(|c| c.set(false));
        return false;
    }
    let oom = match node_wide {
        Some(oom) => oom,
        None => {
            // Clients over `maxmemory-clients` go before keys (Redis's `processCommand` evicts
            // clients first): the memory they give back may spare the keys.
            if super::clients::limit() != 0 {
                super::clients::evict_local(st);
            }
            CAUSE.set("command");
            let oom = perform(st) == Outcome::Fail;
            st.flush_changes();
            oom
        }
    };
    PRE_COMMAND_OOM.with(|c| c.set(oom));
    oom
}

/// Before a command on its home shard of a node with several shards, while the node is over
/// `maxmemory`: evicts here and, when this shard has nothing (left) to evict under the policy,
/// on the other shards in turn until the node is under the ceiling, so that a command evicts
/// keys wherever they live before it runs, as Redis's `performEvictions` picks among all keys.
/// Each shard that evicts writes its trackers' invalidations into their inboxes before it
/// answers, so the caller's own come before its reply. Returns, when it ran a cycle, whether
/// the node is still out of memory (for [`before_command`], which then runs none of its own);
/// None when it ran none (under the ceiling, `noeviction`, or a transaction holds the shard).
pub async fn before_command_node_wide(shard: &crate::runtime::shard::Shard) -> Option<bool> {
    if maxmemory() == 0 || shard.nshards < 2 || policy() == super::Policy::NoEviction {
        return None;
    }
    if used_for_evict() <= maxmemory() || shard.gate.holder().is_some() {
        return None;
    }
    // Clients over `maxmemory-clients` go before keys, wherever they live (Redis's
    // `processCommand` evicts clients first): the memory they give back may spare the keys.
    if super::clients::limit() != 0 {
        super::clients::evict(shard).await;
        if used_for_evict() <= maxmemory() || shard.gate.holder().is_some() {
            return None;
        }
    }
    let here = {
        let mut st = shard.state.borrow_mut();
        CAUSE.set("command node-wide");
        let o = perform(&mut st);
        st.flush_changes();
        o
    };
    if here != Outcome::Fail {
        return Some(false);
    }
    for i in 1..shard.nshards {
        let to = (shard.id + i) % shard.nshards;
        let r = shard.on_shard(to, evict_here, 0, Vec::new()).await;
        if matches!(r, crate::protocol::Reply::Int(0)) || used_for_evict() <= maxmemory() {
            return Some(false);
        }
    }
    // Refused for memory: confirmed with jemalloc's total of now. The round of the shards takes
    // a while, and the count it began with may hold memory given back since by threads that
    // publish no count of their own (a second cycle of the command's own check used to look
    // again here; without it, transient totals refused writes a 100 KB margin had room for).
    super::refresh();
    Some(used_for_evict() > maxmemory())
}

/// One eviction cycle on this shard for another shard's command: 0 when the node is under the
/// ceiling after it, 1 when it is not.
fn evict_here(st: &mut ShardState, _db: usize, _args: &[bytes::Bytes]) -> crate::protocol::Reply {
    CAUSE.set("for another shard");
    crate::protocol::Reply::Int((perform(st) != Outcome::Ok) as i64)
}

/// Whether the node was out of memory when the running command started (scripts refuse
/// their first `denyoom` call then, as Redis).
pub fn pre_command_oom() -> bool {
    maxmemory() != 0 && PRE_COMMAND_OOM.with(Cell::get)
}

/// The cron step (every shard, `hz` times a second): shard 0 re-bases the accounting on
/// jemalloc's exact total; every shard evicts while the node is over the ceiling.
/// Since when (ms) the node is over `maxmemory`, 0 when it is not; and the milliseconds it spent
/// over it before (INFO `current_eviction_exceeded_time`, `total_eviction_exceeded_time`).
static EXCEEDED_SINCE: AtomicU64 = AtomicU64::new(0);
static EXCEEDED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// (total, current) milliseconds over `maxmemory`; the total includes the current stretch.
pub fn exceeded_ms() -> (u64, u64) {
    let since = EXCEEDED_SINCE.load(Ordering::Relaxed);
    let now = if since > 0 { crate::storage::now_ms().saturating_sub(since) } else { 0 };
    (EXCEEDED_TOTAL.load(Ordering::Relaxed) + now, now)
}

fn track_exceeded(used: u64, limit: u64) {
    let now = crate::storage::now_ms();
    let since = EXCEEDED_SINCE.load(Ordering::Relaxed);
    if used > limit {
        if since == 0 {
            EXCEEDED_SINCE.store(now, Ordering::Relaxed);
        }
    } else if since > 0 {
        EXCEEDED_TOTAL.fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        EXCEEDED_SINCE.store(0, Ordering::Relaxed);
    }
}

pub fn cron(st: &mut ShardState) {
    let limit = maxmemory();
    if limit == 0 {
        track_exceeded(0, 0);
        return;
    }
    if st.id == 0 {
        track_exceeded(super::refresh(), limit);
    }
    CAUSE.set("cron");
    if perform(st) != Outcome::Ok {
        tracing::debug!("maxmemory: node still over the limit after an eviction cycle");
    }
    st.flush_changes();
}
