//! Client eviction (`maxmemory-clients`, Redis 7.0): every client's memory, the node's total,
//! and closing the largest clients while the total is at or over the limit.
//!
//! ## What a client's memory is
//!
//! As Redis's `getClientMemoryUsage` (CLIENT LIST `tot-mem`): the query buffer with its free
//! room, the arguments of a request not fully received (`argv-mem`), the reply buffer and the
//! replies and published messages waiting for the socket, the MULTI queue and the watched
//! keys (`multi-mem`), the Pub/Sub subscriptions, the tracking prefixes and the connection's
//! own structures. The connection task publishes the parts it owns into its [`ClientState`]
//! and calls [`update`] once per turn of its loop (after a read, a batch or a write); the
//! figure is cached in `ClientState::tot_mem` (what CLIENT LIST and INFO show).
//!
//! ## The node-wide view
//!
//! Clients live on shard threads. Each shard keeps, thread-locally, the sum of its normal and
//! Pub/Sub clients' memory (no-evict clients included, as Redis's per-type totals; the master
//! link and replicas are not counted) and how many evictable clients it has in each of
//! Redis's log2 memory buckets; it publishes the sum and its top non-empty bucket into its
//! slot of two small atomic arrays, with a relaxed store, only when they change. A client
//! whose figure did not change costs no store at all.
//!
//! ## Eviction
//!
//! [`evict_local`] (Redis's `evictClients`): while the node total is at or over the limit,
//! the shard holding the top bucket node-wide closes its largest evictable client there
//! (logged as Redis logs it, counted in `evicted_clients`); when another shard holds the top
//! bucket its id is returned and the caller ([`evict`]) asks that shard to go on. It runs
//! after every turn of a connection (Redis: before each command and before sleeping) and in
//! every shard's cron. Never evicted: the master link, replicas (on the control core),
//! clients with `CLIENT NO-EVICT on`.
//!
//! Invariants: a client is counted in its shard's sum and bucket exactly as its
//! `tot_mem`/`mem_bucket` say; [`forget`] takes it out when its connection ends, eviction
//! when it closes it (a closing client counts nothing).

use crate::cmd::{ClientState, ShardState};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};

/// Redis's smallest effective limit (128 KB): a smaller setting still lets clients talk.
const MIN_LIMIT: u64 = 128 * 1024;
/// Redis's bucket bounds: up to 32 KB in the first bucket, over 4 GB in the last.
const BUCKET_MIN_LOG: u32 = 15;
const BUCKET_MAX_LOG: u32 = 33;
const BUCKETS: usize = (BUCKET_MAX_LOG - BUCKET_MIN_LOG + 1) as usize;
/// Shards with a slot of their own (more share nothing: their clients are not counted).
const MAX_SHARDS: usize = 256;

/// Redis's per-entry overheads: a list node of a pattern or watched key (24 bytes, plus 16
/// for the watched-key entry), a dictionary entry and its bucket pointer for a channel.
const PATTERN_BYTES: usize = 24;
const CHANNEL_BYTES: usize = 24 + 8;
/// A queued MULTI command's entry (Redis's `multiCmd`).
pub const QUEUED_CMD_BYTES: usize = 24;
/// A watched key's entry.
pub const WATCHED_KEY_BYTES: usize = 40;
/// A tracking prefix's radix-tree nodes, as Redis estimates them.
const PREFIX_BYTES: usize = 32;

/// `maxmemory-clients`: bytes (> 0), a percent of `maxmemory` (< 0), or off (0).
static SETTING: AtomicI64 = AtomicI64::new(0);
static EVICTED: AtomicU64 = AtomicU64::new(0);
/// The memory of evicted clients whose connections have not ended yet (see [`closing_bytes`]).
static CLOSING: AtomicU64 = AtomicU64::new(0);

#[repr(align(64))]
struct Slot {
    sum: AtomicU64,
    /// Top non-empty bucket + 1 (0: no evictable client).
    top: AtomicU8,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot { sum: AtomicU64::new(0), top: AtomicU8::new(0) };
static SLOTS: [Slot; MAX_SHARDS] = [EMPTY; MAX_SHARDS];
static NSLOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// This shard's part of the count.
struct Local {
    sum: Cell<u64>,
    buckets: RefCell<[u32; BUCKETS]>,
    top: Cell<u8>,
    /// When the "over the limit with nothing to evict" warning was last logged (ms).
    warned_ms: Cell<u64>,
}

thread_local! {
    static LOCAL: Local = const {
        Local { sum: Cell::new(0), buckets: RefCell::new([0; BUCKETS]), top: Cell::new(0), warned_ms: Cell::new(0) }
    };
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Makes the calling thread (data shard `id`) publish its clients' memory in slot `id`.
pub fn register_shard(id: usize) {
    if id < MAX_SHARDS {
        SLOT.with(|s| s.set(Some(id)));
        NSLOTS.fetch_max(id + 1, Ordering::AcqRel);
    }
}

/// Takes `maxmemory-clients` from the configuration's text (`0`, bytes, or `N%`).
pub fn apply_config(text: &str) {
    let v = match text.strip_suffix('%') {
        Some(p) => -p.parse::<i64>().unwrap_or(0),
        None => text.parse::<i64>().unwrap_or(0),
    };
    SETTING.store(v, Ordering::Relaxed);
}

/// Redis's `getClientEvictionLimit`: the limit in bytes now (0 = off); a percent of
/// `maxmemory` is off while `maxmemory` is 0; never below 128 KB.
#[inline]
pub fn limit() -> u64 {
    let s = SETTING.load(Ordering::Relaxed);
    let bytes = match s {
        0 => return 0,
        s if s > 0 => s as u64,
        p => match super::maxmemory() {
            0 => return 0,
            max => (max as f64 * (-p) as f64 / 100.0) as u64,
        },
    };
    bytes.max(MIN_LIMIT)
}

/// INFO `evicted_clients`.
pub fn evicted() -> u64 {
    EVICTED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    EVICTED.store(0, Ordering::Relaxed);
}

/// The memory of the node's normal and Pub/Sub clients (what the limit is compared with).
pub fn node_total() -> u64 {
    let n = NSLOTS.load(Ordering::Acquire).min(MAX_SHARDS);
    SLOTS[..n].iter().map(|s| s.sum.load(Ordering::Relaxed)).sum()
}

/// The client's memory as Redis's `getClientMemoryUsage` counts it, from the parts its
/// connection published (see the module doc).
pub fn client_memory(c: &ClientState) -> usize {
    let mut mem = std::mem::size_of::<ClientState>() + c.conn_bytes;
    mem += allocation_size(c.qbuf_alloc.max(c.qbuf));
    mem += c.argv_held;
    mem += allocation_size(c.obuf_cap.max(c.omem)) + c.pubsub.as_ref().map_or(0, |p| p.outbox.queued_bytes());
    mem += c.multi_mem;
    if let Some(s) = &c.pubsub {
        mem += s.patterns.len() * PATTERN_BYTES + (s.channels.len() + s.shard.len()) * CHANNEL_BYTES;
    }
    if let Some(t) = &c.tracking {
        mem += t.prefixes * PREFIX_BYTES;
    }
    mem
}

/// The size jemalloc gives an allocation of `n` bytes (its size classes: a 16-byte quantum
/// up to 128, then four classes per doubling), as Redis counts a buffer by its allocation
/// (`zmalloc_size`), not by the bytes asked for.
pub fn allocation_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => (n + 15) & !15,
        _ => {
            let k = usize::BITS - 1 - (n - 1).leading_zeros();
            let spacing = 1usize << (k - 2);
            (n + spacing - 1) & !(spacing - 1)
        }
    }
}

/// Redis's `getMemUsageBucket`: log2 of the figure, within the bucket bounds.
fn bucket_of(mem: u64) -> usize {
    let bits = 64 - mem.leading_zeros();
    (bits.clamp(BUCKET_MIN_LOG, BUCKET_MAX_LOG) - BUCKET_MIN_LOG) as usize
}

/// Whether the client may be evicted (Redis's `clientEvictionAllowed`, without the limit).
fn evictable(c: &ClientState) -> bool {
    !c.no_evict && !c.master && !c.closing()
}

/// Re-counts `c` in this shard's sum and buckets: as `mem` (None: not counted at all).
#[inline]
fn recount(c: &mut ClientState, mem: Option<usize>) {
    let new_bucket = match mem {
        Some(m) if evictable(c) => bucket_of(m as u64) as u8 + 1,
        _ => 0,
    };
    let new = mem.unwrap_or(0);
    if new == c.tot_mem && new_bucket == c.mem_bucket {
        return;
    }
    move_in_count(c, new, new_bucket);
}

/// [`recount`]'s change: the shard's sum and bucket counts move from the client's old figure
/// to its new one.
#[cold]
#[inline(never)]
fn move_in_count(c: &mut ClientState, new: usize, new_bucket: u8) {
    let Some(slot) = SLOT.with(Cell::get) else { return };
    LOCAL.with(|l| {
        if new != c.tot_mem {
            let sum = (l.sum.get() + new as u64).saturating_sub(c.tot_mem as u64);
            l.sum.set(sum);
            SLOTS[slot].sum.store(sum, Ordering::Relaxed);
        }
        if new_bucket != c.mem_bucket {
            let mut b = l.buckets.borrow_mut();
            if c.mem_bucket > 0 {
                let i = c.mem_bucket as usize - 1;
                b[i] = b[i].saturating_sub(1);
            }
            if new_bucket > 0 {
                b[new_bucket as usize - 1] += 1;
            }
            let top = b.iter().rposition(|&n| n > 0).map_or(0, |i| i as u8 + 1);
            if top != l.top.get() {
                l.top.set(top);
                SLOTS[slot].top.store(top, Ordering::Relaxed);
            }
        }
    });
    c.tot_mem = new;
    c.mem_bucket = new_bucket;
    if super::maxmemory() != 0 {
        // The count of used memory moves with the clients' (see `closed`).
        super::publish();
    }
}

/// Redis's `updateClientMemUsageAndBucket`: recomputes the client's figure and its place in
/// this shard's count (the master link and closing clients count nothing).
#[inline]
pub fn update(c: &mut ClientState) {
    let mem = (!c.master && !c.closing()).then(|| client_memory(c));
    recount(c, mem);
}

/// Takes a client that is going away out of the count; returns the memory it was evicted
/// with, left out of the ceiling's count until its connection is gone (see [`closed`]).
pub fn forget(c: &mut ClientState) -> u64 {
    recount(c, None);
    std::mem::take(&mut c.evicted_mem) as u64
}

/// A client's connection is gone, its buffers freed: this shard's count of used memory is
/// published, then the memory the client was evicted with (from [`forget`]) stops being left
/// out. The count holds a shard's frees once it publishes them (a shard publishes when it
/// checks the ceiling): released when its connection ended, before its buffers were freed and
/// published, an evicted client's buffers (3.5 MB for one with 20 unread 100 KB replies) were
/// in the count of used memory and in no client's until this shard's next check. For the same
/// reason a shard publishes whenever one of its clients' figures changes.
pub fn closed(evicted_mem: u64) {
    if super::maxmemory() != 0 {
        super::publish();
    }
    if evicted_mem > 0 {
        CLOSING.fetch_sub(evicted_mem, Ordering::Relaxed);
    }
}

/// The memory of evicted clients that their connections are giving back (Redis frees an
/// evicted client at once; here its connection ends at its next turn): `maxmemory` leaves it
/// out, so that keys are not evicted for memory already on its way back.
pub fn closing_bytes() -> u64 {
    CLOSING.load(Ordering::Relaxed)
}

/// The memory CLIENT LIST and INFO show for a client: its figure as last counted, computed
/// now for a client never counted (the master link), nothing for a closing one.
pub fn shown(c: &ClientState) -> usize {
    match c.tot_mem {
        _ if c.closing() => 0,
        0 => client_memory(c),
        n => n,
    }
}

/// The shard holding the top bucket node-wide (this one first on a tie), and that bucket + 1.
fn top_shard(me: usize) -> (usize, u8) {
    let n = NSLOTS.load(Ordering::Acquire).min(MAX_SHARDS);
    let mut best = (me, SLOTS.get(me).map_or(0, |s| s.top.load(Ordering::Relaxed)));
    for (i, s) in SLOTS[..n].iter().enumerate() {
        let t = s.top.load(Ordering::Relaxed);
        if t > best.1 {
            best = (i, t);
        }
    }
    best
}

/// Redis's `evictClients` on this shard: while the node's clients use at least the limit,
/// closes this shard's largest evictable client if it holds the top bucket node-wide. Returns
/// the shard that must go on (it holds the top bucket), if any.
pub fn evict_local(st: &mut ShardState) -> Option<usize> {
    let limit = limit();
    if limit == 0 {
        return None;
    }
    let now_ms = crate::storage::cached_ms();
    while node_total() >= limit {
        let (shard, top) = top_shard(st.id);
        if top == 0 {
            LOCAL.with(|l| {
                if now_ms.saturating_sub(l.warned_ms.get()) >= 1000 {
                    l.warned_ms.set(now_ms);
                    tracing::warn!("Over client maxmemory after evicting all evictable clients");
                }
            });
            return None;
        }
        if shard != st.id {
            return Some(shard);
        }
        let victim = st
            .clients
            .values()
            .filter(|c| {
                let c = c.borrow();
                c.mem_bucket == top && evictable(&c)
            })
            .max_by_key(|c| c.borrow().tot_mem)
            .cloned();
        let Some(victim) = victim else {
            // The count says a client is there: it is not (never expected); re-count none.
            tracing::debug!("client eviction: bucket {} of shard {} is empty", top, st.id);
            return None;
        };
        let mut c = victim.borrow_mut();
        let line = crate::cmd::connection::client_line(&c, now_ms);
        tracing::info!("Evicting client: {}", line);
        c.evicted_mem = c.tot_mem;
        CLOSING.fetch_add(c.tot_mem as u64, Ordering::Relaxed);
        recount(&mut c, None);
        c.killed = true;
        // SAFETY: the fd belongs to a live connection of this shard; shutdown only wakes its
        // pending read (or write), the connection task closes the socket itself.
        unsafe {
            libc::shutdown(c.fd, libc::SHUT_RDWR);
        }
        EVICTED.fetch_add(1, Ordering::Relaxed);
    }
    None
}

/// The same, as a function another shard runs (see [`evict`]): replies the next shard to go
/// on, or -1.
fn evict_here(st: &mut ShardState, _db: usize, _args: &[bytes::Bytes]) -> crate::protocol::Reply {
    crate::protocol::Reply::Int(evict_local(st).map_or(-1, |s| s as i64))
}

/// Evicts clients node-wide while their memory is at or over the limit: here, then on the
/// shards holding the top bucket, in turn (a bounded number of hops).
pub async fn evict(shard: &crate::runtime::shard::Shard) {
    if limit() == 0 || node_total() < limit() {
        return;
    }
    let mut next = evict_local(&mut shard.state.borrow_mut());
    let mut hops = 0;
    while let Some(to) = next {
        hops += 1;
        if hops > 2 * shard.nshards.max(1) {
            return;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        let msg = crate::runtime::mesh::Msg::Run { run: evict_here, db: 0, args: Vec::new(), reply: tx };
        if shard.mesh.send_to(to, msg).await.is_err() {
            return;
        }
        next = match rx.await {
            Ok(crate::protocol::Reply::Int(n)) if n >= 0 => Some(n as usize),
            _ => None,
        };
        if next == Some(shard.id) {
            next = evict_local(&mut shard.state.borrow_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_sizes_are_jemalloc_s_classes() {
        let sizes = [(0, 0), (1, 8), (9, 16), (100, 112), (129, 160), (100_001, 114_688), (1_048_578, 1_310_720)];
        for (n, size) in sizes {
            assert_eq!(allocation_size(n), size, "{n}");
        }
        assert_eq!(allocation_size(1 << 20), 1 << 20);
    }

    #[test]
    fn buckets_are_redis_s() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(32 * 1024 - 1), 0);
        assert_eq!(bucket_of(32 * 1024), 1);
        assert_eq!(bucket_of(1 << 20), 6);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn limits_follow_the_setting() {
        apply_config("0");
        assert_eq!(limit(), 0);
        apply_config("1");
        assert_eq!(limit(), MIN_LIMIT);
        apply_config("3000000");
        assert_eq!(limit(), 3_000_000);
        // A percent with no maxmemory is off.
        apply_config("7%");
        if super::super::maxmemory() == 0 {
            assert_eq!(limit(), 0);
        }
        apply_config("0");
    }
}
