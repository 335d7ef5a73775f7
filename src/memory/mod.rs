//! The node's memory ceiling: how much memory the node uses, `maxmemory` with its eviction
//! policy (see [`evict`]), the per-client output-buffer limits (see [`obuf`]) and client
//! eviction (`maxmemory-clients`, see [`clients`]). Client memory counts in the used memory
//! that `maxmemory` limits, as in Redis 7.0.
//!
//! ## How used memory is counted
//!
//! Redis keeps one process-wide counter that every allocation updates. slotcore has one
//! allocator (jemalloc) for all threads, and asking it for the process total (`stats.allocated`
//! after an `epoch` refresh) merges every arena's statistics: far too slow for every command.
//! jemalloc also keeps, per thread, the bytes that thread allocated and deallocated
//! (`thread.allocatedp` / `thread.deallocatedp`, two plain loads). A thread's difference is
//! meaningless on its own (a reply built on one shard and freed on another counts +n on one
//! and -n on the other), but the sum over all threads is the process total.
//!
//! So the node total is `base + Σ shard growths`: [`refresh`] (from shard 0's cron, `hz`
//! times a second, from INFO, and before an eviction) takes jemalloc's exact total as the
//! base, and each data shard publishes, into its slot of a small atomic array whenever it
//! checks the limit, its net (allocated - deallocated) growth since then. A shard's growth
//! starts at its first publication after the base (what it did before is in the base): a
//! slot still measured from an older base is left out. Between refreshes, shard growth is
//! seen at once; the other threads' (the control core, helper threads) waits for the next
//! refresh.
//!
//! ## How the ceiling is split across shards
//!
//! The ceiling is node-wide, not a fixed budget per shard: before a command, while the node is
//! over `maxmemory`, its home shard evicts keys **it owns** (sampled from its own keyspace)
//! until the node total is back under the ceiling; when it has nothing (left) to evict under
//! the policy, the other shards evict theirs in turn before the command runs
//! ([`evict::before_command_node_wide`]), as Redis evicts whichever of its keys the policy
//! picks, so that the command's own trackers hear of evicted keys before its reply. A
//! `denyoom` command is refused with Redis's `-OOM` when the node is still over. A shard that
//! runs another shard's work publishes its growth before it answers, so the caller's next
//! check sees it. Every shard's cron also evicts while the node is over the ceiling, so the shards
//! give back memory in proportion to the traffic they see, and a shard holding most of the
//! data is not spared because another shard's clients did the writing. The memory each
//! eviction frees is measured with the evicting thread's own counters (the key is freed on
//! the thread that owns it), as Redis measures `zmalloc_used_memory()` around the delete.
//!
//! Invariants: every setting here is node-wide and follows the configuration snapshot
//! ([`apply_config`], called when a shard refreshes its config); with `maxmemory 0` (the
//! default) a command pays one relaxed load.

pub mod clients;
pub mod evict;
pub mod in_flight;
pub mod mallctl;
pub mod obuf;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use tikv_jemalloc_ctl::thread::ThreadLocal;

/// Redis's reply to a `denyoom` command refused for memory.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    /// `noeviction`: refuse `denyoom` commands over the ceiling.
    NoEviction = 0,
    /// `allkeys-lru`.
    AllkeysLru,
    /// `allkeys-lfu`.
    AllkeysLfu,
    /// `allkeys-random`.
    AllkeysRandom,
    /// `volatile-lru`.
    VolatileLru,
    /// `volatile-lfu`.
    VolatileLfu,
    /// `volatile-random`.
    VolatileRandom,
    /// `volatile-ttl`.
    VolatileTtl,
}

impl Policy {
    /// Parses a `maxmemory-policy` value (lower case, as the config registry keeps it).
    pub fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }
    fn from_u8(v: u8) -> Policy {
        [
            Policy::NoEviction,
            Policy::AllkeysLru,
            Policy::AllkeysLfu,
            Policy::AllkeysRandom,
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(Policy::NoEviction)
    }
    /// True when only keys with an expiry are candidates.
    pub fn volatile_only(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }
}

static MAXMEMORY: AtomicU64 = AtomicU64::new(0);
static POLICY: AtomicU8 = AtomicU8::new(0);
static SAMPLES: AtomicU32 = AtomicU32::new(5);
static TENACITY: AtomicU32 = AtomicU32::new(10);
static REPLICA_IGNORES: AtomicBool = AtomicBool::new(true);
static LAZY_EVICTION: AtomicBool = AtomicBool::new(false);

/// The machine's memory in bytes (`MemTotal`, INFO `total_system_memory`); 0 when unknown.
pub fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok())))
        .map_or(0, |kb| kb * 1024)
}

/// Takes the memory settings from a configuration snapshot (node-wide; every shard calls it
/// when its snapshot changes, the values are the same for all).
pub fn apply_config(cfg: &crate::config::Config) {
    let num = |name: &str, default: u64| cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    MAXMEMORY.store(num("maxmemory", 0), Ordering::Relaxed);
    let policy = Policy::parse(cfg.get("maxmemory-policy").unwrap_or("noeviction"));
    POLICY.store(policy as u8, Ordering::Relaxed);
    SAMPLES.store(num("maxmemory-samples", 5).clamp(1, 64) as u32, Ordering::Relaxed);
    TENACITY.store(num("maxmemory-eviction-tenacity", 10).min(100) as u32, Ordering::Relaxed);
    REPLICA_IGNORES.store(cfg.get("replica-ignore-maxmemory") != Some("no"), Ordering::Relaxed);
    LAZY_EVICTION.store(cfg.get("lazyfree-lazy-eviction") == Some("yes"), Ordering::Relaxed);
    crate::storage::lazyfree::apply_config(cfg);
    crate::persist::file::apply_config(cfg);
    obuf::apply_config(cfg.get("client-output-buffer-limit").unwrap_or(""));
    clients::apply_config(cfg.get("maxmemory-clients").unwrap_or("0"));
}

/// `maxmemory` in bytes (0 = no ceiling).
#[inline]
pub fn maxmemory() -> u64 {
    MAXMEMORY.load(Ordering::Relaxed)
}

/// `maxmemory-policy`.
pub fn policy() -> Policy {
    Policy::from_u8(POLICY.load(Ordering::Relaxed))
}

/// `maxmemory-samples`.
pub fn samples() -> usize {
    SAMPLES.load(Ordering::Relaxed) as usize
}

/// `lazyfree-lazy-eviction`: evictions propagate as UNLINK instead of DEL.
pub fn lazy_eviction() -> bool {
    LAZY_EVICTION.load(Ordering::Relaxed)
}

/// Redis's `evictionTimeLimitUs`: how long one eviction cycle may run, from
/// `maxmemory-eviction-tenacity` (0..10 linear up to 500 µs, then +15% a step, 100 = no limit).
pub fn eviction_time_limit_us() -> u64 {
    match TENACITY.load(Ordering::Relaxed) {
        t @ 0..=10 => 50 * t as u64,
        t @ 11..=99 => (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
        _ => u64::MAX,
    }
}

/// True when this node must not evict: a replica ignores `maxmemory` (its master's DELs
/// keep it in step) unless `replica-ignore-maxmemory no`.
pub fn replica_ignores() -> bool {
    crate::storage::replica_expiry() && REPLICA_IGNORES.load(Ordering::Relaxed)
}

// ---- accounting --------------------------------------------------------------------------

/// At most this many shard threads publish their counters (more are seen by [`refresh`] only).
const MAX_PUBLISHERS: usize = 256;
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicI64 = AtomicI64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NEVER: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NOTHING: AtomicU64 = AtomicU64::new(0);
/// Per publishing thread: its net allocation since the count's base was taken (its slot's
/// [`GROWTH_GEN`]); each slot written by its own thread only.
static GROWTH: [AtomicI64; MAX_PUBLISHERS] = [ZERO; MAX_PUBLISHERS];
/// Per publishing thread: the base ([`GEN`]) its [`GROWTH`] is measured from.
static GROWTH_GEN: [AtomicU64; MAX_PUBLISHERS] = [NEVER; MAX_PUBLISHERS];
static PUBLISHERS: AtomicUsize = AtomicUsize::new(0);
/// Which base the count is on: 1 before the first [`refresh`], one more after each.
static GEN: AtomicU64 = AtomicU64::new(1);
/// The base of generation `g` (jemalloc's exact total when it was taken) is `BASE[g % 2]`.
static BASE: [AtomicI64; 2] = [ZERO; 2];
/// The replicas' output left out of the count with the base of generation `g` (reported for
/// the buffer its total holds, see [`total_with_replica_output`]) is `BASE_OUTPUT[g % 2]`.
static BASE_OUTPUT: [AtomicU64; 2] = [NOTHING; 2];
/// The bytes of stream records the non-publishing threads had freed ([`FEED_OTHER_FREED`])
/// when the total of generation `g`'s base was read is `BASE_FEED_SEEN[g % 2]`: they are out of
/// that base, and so out of what the count leaves out with it.
static BASE_FEED_SEEN: [AtomicI64; 2] = [ZERO; 2];
/// Serializes [`refresh`]es.
static REBASING: std::sync::Mutex<()> = std::sync::Mutex::new(());
static PEAK: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy)]
struct Counters {
    slot: Option<usize>,
    allocated: ThreadLocal<u64>,
    deallocated: ThreadLocal<u64>,
    /// The base this thread's growth is measured from, and its net allocation then.
    gen: u64,
    base_net: i64,
}

thread_local! {
    static ME: Cell<Option<Counters>> = const { Cell::new(None) };
}

fn counters() -> Option<Counters> {
    if let Some(c) = ME.with(Cell::get) {
        return Some(c);
    }
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::read().ok()?;
    let deallocated = tikv_jemalloc_ctl::thread::deallocatedp::read().ok()?;
    let c = Counters { slot: None, allocated, deallocated, gen: 0, base_net: 0 };
    ME.with(|m| m.set(Some(c)));
    Some(c)
}

/// Makes the calling thread (a data shard) publish its allocation counters (call once, on
/// the shard's thread).
pub fn register_thread() {
    let Some(mut c) = counters() else { return };
    if c.slot.is_some() {
        return;
    }
    let i = PUBLISHERS.fetch_add(1, Ordering::AcqRel);
    if i < MAX_PUBLISHERS {
        c.slot = Some(i);
        ME.with(|m| m.set(Some(c)));
        publish();
    }
}

fn net(c: &Counters) -> i64 {
    c.allocated.get().wrapping_sub(c.deallocated.get()) as i64
}

/// The calling thread's bytes allocated minus deallocated (jemalloc's per-thread counters).
#[inline]
pub fn thread_net() -> i64 {
    counters().map_or(0, |c| net(&c))
}

/// Publishes the calling thread's growth since the count's base. The first time after a new
/// base, its growth starts from its net allocation now: what it did before is in the base
/// (or, done between the base's total and now, left out until the next base). Counting it
/// from its last publication instead counted twice what it had done since then and the base
/// had seen: a shard that published nothing while it serialized its keys for a replica (its
/// chunks freed by the control core) made the next count 6 MB too high, and 60 keys evicted.
pub fn publish() {
    let Some(mut c) = counters() else { return };
    let Some(i) = c.slot else { return };
    let g = GEN.load(Ordering::Acquire);
    let now = net(&c);
    if c.gen != g {
        // Before the first base, a thread counts all it holds.
        c.base_net = if g == 1 { 0 } else { now };
        c.gen = g;
        ME.with(|m| m.set(Some(c)));
    }
    GROWTH[i].store(now - c.base_net, Ordering::Relaxed);
    GROWTH_GEN[i].store(g, Ordering::Release);
}

/// The current base plus the growth the publishing threads measured from it, and what the
/// count leaves out with that base: the replicas' output and the feed's records in flight.
fn counted() -> (i64, u64) {
    loop {
        let g = GEN.load(Ordering::Acquire);
        let base = BASE[(g % 2) as usize].load(Ordering::Relaxed);
        let output = BASE_OUTPUT[(g % 2) as usize].load(Ordering::Relaxed);
        let seen = BASE_FEED_SEEN[(g % 2) as usize].load(Ordering::Relaxed);
        let n = PUBLISHERS.load(Ordering::Acquire).min(MAX_PUBLISHERS);
        let growth: i64 = (0..n)
            .filter(|&i| GROWTH_GEN[i].load(Ordering::Acquire) == g)
            .map(|i| GROWTH[i].load(Ordering::Relaxed))
            .sum();
        let in_flight = feed_in_flight_seen(seen);
        // A new base taken meanwhile: its growths are measured from it.
        if GEN.load(Ordering::Acquire) == g {
            return (base + growth, output + in_flight);
        }
    }
}

/// The node's used memory as the ceiling sees it (see the module doc): this thread's count
/// is exact, the other shards' as of their last check, the rest as of the last [`refresh`].
pub fn used() -> u64 {
    used_and_output().0
}

/// [`used`], and what the count leaves out with it: the replicas' output and the feed's
/// records in flight.
fn used_and_output() -> (u64, u64) {
    publish();
    let (counted, left_out) = counted();
    let used = counted.max(0) as u64;
    PEAK.fetch_max(used, Ordering::Relaxed);
    (used, left_out)
}

/// jemalloc's exact process total: `stats.allocated` after an `epoch` refresh, less the bytes
/// the threads' caches hold. jemalloc counts a small object as allocated from the moment a
/// thread cache takes it from the arena (caches fill in batches), so `stats.allocated` alone
/// moves in steps of tens of KB that no allocation made; what the caches hold is subtracted
/// so that the total moves by the bytes the program allocates and frees, as Redis's counter.
fn exact_total() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
    // SAFETY: `stats.arenas.<i>.tcache_bytes` is a size_t (read as usize); 4096 is jemalloc's
    // MALLCTL_ARENAS_ALL, the merge of every arena.
    let cached = unsafe { tikv_jemalloc_ctl::raw::read::<usize>(b"stats.arenas.4096.tcache_bytes\0") }.unwrap_or(0);
    allocated.saturating_sub(cached as u64)
}

/// Re-reads jemalloc's exact process total and makes it the count's new base; returns it.
pub fn refresh() -> u64 {
    rebase().0
}

/// [`refresh`], and what the count leaves out with the new base (the replicas' output and
/// the feed's records in flight).
fn rebase() -> (u64, u64) {
    let rebasing = REBASING.lock().unwrap_or_else(|p| p.into_inner());
    let Some((total, output, seen)) = total_with_replica_output() else {
        // No total could be read outside a change of the stream's buffer: the base stays, and
        // the count goes on from it with the threads' growths (and the records freed since
        // the base are left for the next one to see).
        drop(rebasing);
        return used_and_output();
    };
    let g = GEN.load(Ordering::Relaxed) + 1;
    BASE[(g % 2) as usize].store(total as i64, Ordering::Relaxed);
    BASE_OUTPUT[(g % 2) as usize].store(output, Ordering::Relaxed);
    // The records the other threads freed before the total was read stop being left out
    // with the base that no longer holds them, not before. Taken out of what is left out when
    // a refresh began (before it waited for the lock and for a change of the stream's buffer
    // to end, and read the total), they were counted meanwhile: the old base and the shards'
    // growths still held them. Behind a stopped replica under load, the shards saw counts
    // 200 KB to 1.1 MB too high in that window, and one evicted a key.
    BASE_FEED_SEEN[(g % 2) as usize].store(seen, Ordering::Relaxed);
    GEN.store(g, Ordering::Release);
    drop(rebasing);
    publish();
    PEAK.fetch_max(total, Ordering::Relaxed);
    (total, output + feed_in_flight_seen(seen))
}

/// When (µs on the node's clock) the last [`refresh`] ran.
static REFRESHED_US: AtomicU64 = AtomicU64::new(0);

/// [`refresh`] unless one ran in the last `us` µs; true when it ran.
pub fn refresh_if_older_than_us(us: u64) -> bool {
    let now = crate::clock::Stamp::now().micros();
    let last = REFRESHED_US.load(Ordering::Relaxed);
    if now.saturating_sub(last) < us
        || REFRESHED_US.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        return false;
    }
    refresh();
    true
}

thread_local! {
    /// This thread's net allocation when the node command it runs started (see
    /// [`node_command_started`]).
    static COMMAND_START_NET: Cell<i64> = const { Cell::new(0) };
}

/// Marks the start of a node-level command on this thread (before its future is allocated):
/// [`refresh_before_command`] leaves out what the command allocated since.
#[inline]
pub fn node_command_started() {
    COMMAND_START_NET.with(|c| c.set(thread_net()));
}

/// [`refresh`], less what the running node command allocated on this thread so far: the
/// memory the node used when the command began (INFO's `used_memory`); and what the count
/// leaves out with it ([`not_counted_for_evict`], INFO's `mem_not_counted_for_evict`), taken
/// with the same base: read later, when INFO's text is built after its round of the shards,
/// another thread's refresh could have taken a later report (after a killed replica's stream
/// was trimmed, 10 MB less left out of a total that still held it).
pub fn refresh_before_command() -> (u64, u64) {
    let (total, left_out) = rebase();
    let grown = thread_net() - COMMAND_START_NET.with(Cell::get);
    (total.saturating_sub(grown.max(0) as u64), left_out + aof_buffer())
}

static STARTUP: AtomicU64 = AtomicU64::new(0);

/// Records the memory used once the node is set up, before any data is loaded (INFO
/// `used_memory_startup`).
pub fn mark_startup() {
    STARTUP.store(exact_total(), Ordering::Relaxed);
}

/// Adds what an executor thread allocated while it set itself up (its tables, its Lua state,
/// its executor's own structures) to `used_memory_startup`: called by each shard once it is
/// set up and before it takes any loaded key, as Redis takes its mark after `initServer`.
pub fn add_startup_of_this_thread() {
    let net = thread_net();
    if net > 0 {
        STARTUP.fetch_add(net as u64, Ordering::Relaxed);
    }
}

/// INFO `used_memory_startup`.
pub fn startup() -> u64 {
    STARTUP.load(Ordering::Relaxed)
}

/// The highest used memory seen (INFO `used_memory_peak`).
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// The replicas' pending stream output as the control core last reported it.
static REPLICA_OUTPUT_NOW: AtomicU64 = AtomicU64::new(0);

/// Records the replicas' pending stream output: the largest one's bytes (replicas hold the
/// same chunks of the stream, so that is the memory they keep beyond the backlog, as Redis's
/// shared replication buffer beyond `repl-backlog-size`). Set by the control core as it
/// changes the stream's buffer ([`change_replica_output`]) and in its cron. The count takes
/// it at the next [`refresh`] only, with the control core's allocations: the control core
/// publishes no counters, so blocks it made since the last refresh are not in the count yet
/// and blocks it freed still are. Taken at once, the report left out blocks the count did not
/// hold: behind a replica reading a burst of writes, the count fell short by what the control
/// core had committed since the last refresh, and the shards did not evict.
pub fn set_replica_output(bytes: u64) {
    REPLICA_OUTPUT_NOW.store(bytes, Ordering::SeqCst);
}

/// Odd while the control core changes the stream's buffer and its report (see
/// [`change_replica_output`]); one more at each start and end.
static REPLICA_OUTPUT_SEQ: AtomicU64 = AtomicU64::new(0);

/// How long [`refresh`] waits for a change of the stream's buffer to end (see
/// [`total_with_replica_output`]).
const CHANGE_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// The control core changes the stream's buffer (`change`, which returns the replicas' output
/// after it) and reports it, so that [`refresh`] reads jemalloc's total while no change is
/// under way: what it then leaves out is what the total holds. A trim frees up to 640 blocks
/// (10 MB of 16 KB blocks, 1-2 ms) before it reports the smaller output: a total read in the
/// middle of one, right after a replica was killed, no longer held 2.8 MB of blocks that were
/// still left out, and the count fell short by them.
pub fn change_replica_output(change: impl FnOnce() -> u64) {
    REPLICA_OUTPUT_SEQ.fetch_add(1, Ordering::SeqCst);
    set_replica_output(change());
    REPLICA_OUTPUT_SEQ.fetch_add(1, Ordering::SeqCst);
}

/// [`refresh`]'s part: jemalloc's exact total, read while the stream's buffer did not change,
/// the replicas' output reported for that buffer taken as what the count leaves out, and the
/// bytes of stream records the non-publishing threads had freed before it was read (see
/// [`FEED_OTHER_FREED`]; one freed meanwhile stays left out until the next refresh: a few
/// records, never counted twice). It
/// waits for a change under way to end ([`CHANGE_WAIT`] at most, as the control core's
/// thread may be descheduled in the middle of one), and reads the total again if one ran
/// while it was read (a few tries of its own were not enough: a trim outlasts them). None
/// past the wait: a total read in the middle of a trim no longer holds blocks the report
/// still leaves out (under a loaded test run, a count 7.5 MB short), and one read in the
/// middle of an append holds blocks the report does not leave out yet.
fn total_with_replica_output() -> Option<(u64, u64, i64)> {
    let start = std::time::Instant::now();
    loop {
        let seq = REPLICA_OUTPUT_SEQ.load(Ordering::SeqCst);
        if start.elapsed() >= CHANGE_WAIT {
            return None;
        }
        if seq % 2 == 1 {
            std::thread::yield_now();
            continue;
        }
        let before = REPLICA_OUTPUT_NOW.load(Ordering::SeqCst);
        let seen = FEED_OTHER_FREED.load(Ordering::SeqCst);
        let total = exact_total();
        // The total's reads are done before the sequence is read again.
        std::sync::atomic::fence(Ordering::SeqCst);
        if REPLICA_OUTPUT_SEQ.load(Ordering::SeqCst) == seq {
            return Some((total, before, seen));
        }
    }
}

/// Per publishing thread ([`register_thread`]): bytes of stream records it pushed to the
/// replication feed less those it took from it and freed (each slot written by its own thread
/// only). [`FEED_OTHER`]: the bytes the other threads pushed, and [`FEED_OTHER_FREED`] those
/// they took and freed, which count once a base's total no longer holds them (the base's
/// [`BASE_FEED_SEEN`]).
static FEED: [AtomicI64; MAX_PUBLISHERS] = [ZERO; MAX_PUBLISHERS];
static FEED_OTHER: AtomicI64 = AtomicI64::new(0);
static FEED_OTHER_FREED: AtomicI64 = AtomicI64::new(0);

/// The calling thread pushed records holding `bytes` to the replication feed (see
/// `replication::feed`): they are left out of the ceiling's count until they are freed and
/// the count has seen them freed ([`feed_freed`]). A shard's counters are published with it,
/// so the count sees the records and their share at once.
pub fn feed_sent(bytes: usize) {
    match counters().and_then(|c| c.slot) {
        Some(i) => {
            publish();
            FEED[i].store(FEED[i].load(Ordering::Relaxed) + bytes as i64, Ordering::Relaxed);
        }
        None => {
            FEED_OTHER.fetch_add(bytes as i64, Ordering::Relaxed);
        }
    }
}

/// The calling thread freed records holding `bytes` that it took from the feed. A shard
/// publishes its counters (which takes the records out of the count) and then their share;
/// the control core's frees are seen by the next [`refresh`] only (it publishes no counters),
/// so their share stays left out until then: the count never holds them twice.
pub fn feed_freed(bytes: usize) {
    match counters().and_then(|c| c.slot) {
        Some(i) => {
            publish();
            FEED[i].store(FEED[i].load(Ordering::Relaxed) - bytes as i64, Ordering::Relaxed);
        }
        None => {
            FEED_OTHER_FREED.fetch_add(bytes as i64, Ordering::SeqCst);
        }
    }
}

/// Bytes of stream records on their way from the shards to the control core, as the count
/// of used memory holds them: with a base whose total no longer held `seen` bytes of those
/// the non-publishing threads freed.
fn feed_in_flight_seen(seen: i64) -> u64 {
    let n = PUBLISHERS.load(Ordering::Acquire).min(MAX_PUBLISHERS);
    let sum: i64 = FEED[..n].iter().map(|a| a.load(Ordering::Relaxed)).sum();
    (sum + FEED_OTHER.load(Ordering::Relaxed) - seen).max(0) as u64
}

/// Redis's `freeMemoryGetNotCountedMemory`: memory left out of the ceiling's count, the
/// replicas' output beyond the backlog and the AOF buffer, and here also the stream's records
/// on their way to them ([`feed_in_flight_seen`]). Replicas that fall behind (a slow link, a
/// stopped process) would otherwise make the master evict its keys for memory that their
/// output-buffer limit bounds, and evicting would only add DELs to their output.
pub fn not_counted_for_evict() -> u64 {
    counted().1 + aof_buffer()
}

/// The AOF buffer (left out of the count).
fn aof_buffer() -> u64 {
    crate::aof::status::BUFFER_LEN.load(Ordering::Relaxed)
}

/// Used memory as the ceiling counts it: [`used`] less [`not_counted_for_evict`] (the
/// replicas' output and the feed's records taken with the same base), less the memory of
/// evicted clients on its way back ([`clients::closing_bytes`]), and less what travels from
/// one shard to another's clients ([`in_flight`]: evicted keys' invalidations, replies).
pub fn used_for_evict() -> u64 {
    let (used, left_out) = used_and_output();
    used.saturating_sub(left_out + aof_buffer() + clients::closing_bytes() + in_flight::left_out())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenacity_time_limits_are_redis_s() {
        TENACITY.store(10, Ordering::Relaxed);
        assert_eq!(eviction_time_limit_us(), 500);
        TENACITY.store(0, Ordering::Relaxed);
        assert_eq!(eviction_time_limit_us(), 0);
        TENACITY.store(100, Ordering::Relaxed);
        assert_eq!(eviction_time_limit_us(), u64::MAX);
        TENACITY.store(10, Ordering::Relaxed);
    }

    #[test]
    fn policies_parse() {
        assert_eq!(Policy::parse("volatile-ttl"), Policy::VolatileTtl);
        assert!(Policy::parse("volatile-lfu").volatile_only());
        assert!(!Policy::parse("allkeys-random").volatile_only());
        assert_eq!(Policy::from_u8(Policy::AllkeysLfu as u8), Policy::AllkeysLfu);
    }
}
