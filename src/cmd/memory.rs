//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP (Redis 7.0's `object.c`
//! memory part), over the process's jemalloc and the values' own size accounting.
//!
//! MEMORY USAGE counts what a key costs here: the key's bytes, the table entry, and the value's
//! heap bytes (`Value::heap_size`, which walks the whole value: SAMPLES is accepted and checked
//! as Redis checks it, and every sample count gives the exact figure).

use super::ctx::{reply, ClientCtx, Ctx};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

const KEY2: Keys = Keys::Range { first: 2, last: 2, step: 1 };

#[rustfmt::skip]
static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("usage", -3, READONLY, "@read @slow", KEY2, Exec::Keyed(usage)),
    spec("stats", 2, 0, "@slow", Keys::None, Exec::Node(stats)),
    spec("doctor", 2, 0, "@slow", Keys::None, Exec::Node(doctor)),
    spec("malloc-stats", 2, 0, "@slow", Keys::None, Exec::Node(malloc_stats)),
    spec("purge", 2, 0, "@slow", Keys::None, Exec::Node(purge)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
];

/// The MEMORY family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: MEMORY_SUBCOMMANDS, ..spec("memory", -2, 0, "@slow", Keys::None, Exec::Container) },
];

/// Bytes of one table entry besides the key and the value's heap (the entry itself).
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<crate::storage::Entry>() + 16;

fn usage(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "samples") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                None => return Reply::err(errors::NOT_INTEGER),
                Some(n) if n < 0 => return Reply::err(errors::SYNTAX),
                Some(_) => {}
            }
            j += 2;
        } else {
            return Reply::err(errors::SYNTAX);
        }
    }
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[2], now) {
        Some(e) => Reply::Int((args[2].len() + ENTRY_OVERHEAD + e.value.heap_size()) as i64),
        None => Reply::Nil,
    }
}

/// A jemalloc statistic (`allocated`, `active` or `resident`), fresh.
pub(crate) fn jemalloc(stat: &str) -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let r = match stat {
        "allocated" => tikv_jemalloc_ctl::stats::allocated::read(),
        "active" => tikv_jemalloc_ctl::stats::active::read(),
        _ => tikv_jemalloc_ctl::stats::resident::read(),
    };
    r.unwrap_or(0) as u64
}

/// The process's resident set size (`/proc/self/statm`).
pub(crate) fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Redis's `getMemoryOverheadData`: what the node's memory is made of, the same figures for
/// INFO memory and MEMORY STATS.
pub(crate) struct Overhead {
    /// `used_memory` (the count the command started with) and its peak.
    pub used: u64,
    pub peak: u64,
    /// `used_memory_startup`: the node set up, before any data.
    pub startup: u64,
    /// The replication backlog, and what the replicas hold beyond it (the shared stream's
    /// blocks past the backlog's size, plus what is queued for them besides the stream).
    pub backlog: u64,
    pub replica_out: u64,
    /// The clients' buffers (their query buffers and pending replies).
    pub clients_normal: u64,
    /// AOF bytes not written yet.
    pub aof_buf: u64,
    /// The EVAL scripts' cache and the function libraries' code.
    pub lua_caches: u64,
    pub functions_caches: u64,
    /// Per database with keys: its number, its keys and their table entries' bytes. An expiry
    /// is a field of the entry here, not a second table: its overhead is 0.
    pub dbs: Vec<(usize, u64, u64)>,
    /// Every overhead above, and the rest of `used` (the keys' and values' own bytes).
    pub total: u64,
    pub dataset: u64,
    pub keys: u64,
}

impl Overhead {
    /// Computes the overhead from the used memory, the clients' buffers (summed over the
    /// shards) and each database's key count (summed over the shards).
    pub(crate) fn new(node: &crate::cmd::NodeInfo, used: u64, clients_normal: u64, db_keys: &[u64]) -> Overhead {
        let startup = crate::memory::startup();
        let (repl_buffers, backlog_size, replicas, direct) = node
            .repl
            .with_status(|s| (s.repl_buffer_mem, s.backlog_size, !s.replicas.is_empty(), s.replica_direct_bytes));
        // The backlog and the replicas share one buffer: what exceeds the backlog's size while
        // replicas are attached is the replicas'.
        let (backlog, replica_out) = if replicas && repl_buffers > backlog_size {
            (backlog_size, repl_buffers - backlog_size + direct)
        } else {
            (repl_buffers, direct)
        };
        let aof_buf = crate::aof::status::BUFFER_LEN.load(std::sync::atomic::Ordering::Relaxed);
        let (lua_caches, functions_caches) = crate::script::caches_memory();
        let dbs: Vec<(usize, u64, u64)> = db_keys
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i, n, n * ENTRY_OVERHEAD as u64))
            .collect();
        let total = startup
            + backlog
            + replica_out
            + clients_normal
            + aof_buf
            + lua_caches
            + functions_caches
            + dbs.iter().map(|d| d.2).sum::<u64>();
        Overhead {
            used,
            peak: crate::memory::peak().max(used),
            startup,
            backlog,
            replica_out,
            clients_normal,
            aof_buf,
            lua_caches,
            functions_caches,
            dataset: used.saturating_sub(total),
            total,
            keys: db_keys.iter().sum(),
            dbs,
        }
    }

    /// What the node holds beyond its start-up.
    pub(crate) fn net(&self) -> u64 {
        self.used.saturating_sub(self.startup)
    }

    /// The dataset's share of [`Overhead::net`], in percent.
    pub(crate) fn dataset_perc(&self) -> f64 {
        ratio(self.dataset, self.net()) * 100.0
    }
}

/// `a / b`, 0 when `b` is 0.
pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One shard's part of MEMORY STATS: its clients' buffers and each database's key count.
fn stats_of_shard(shard: &mut super::ctx::ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let clients: u64 = shard.clients.values().map(|c| crate::memory::clients::shown(&c.borrow()) as u64).sum();
    let keys = shard.ks.dbs.iter().map(|d| Reply::Int(d.len() as i64)).collect();
    Reply::Array(vec![Reply::Int(clients as i64), Reply::Array(keys)])
}

/// MEMORY STATS: the node's figures (every shard's clients and keys), as INFO memory.
fn stats(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let (used, _) = crate::memory::refresh_before_command();
    Plan::AllShards {
        run: stats_of_shard,
        merge: Box::new(move |ctx, replies| {
            let mut clients = 0u64;
            let mut db_keys: Vec<u64> = Vec::new();
            for r in &replies {
                let Reply::Array(v) = r else { continue };
                if let Some(Reply::Int(n)) = v.first() {
                    clients += *n as u64;
                }
                if let Some(Reply::Array(keys)) = v.get(1) {
                    db_keys.resize(db_keys.len().max(keys.len()), 0);
                    for (i, k) in keys.iter().enumerate() {
                        if let Reply::Int(n) = k {
                            db_keys[i] += *n as u64;
                        }
                    }
                }
            }
            stats_reply(&Overhead::new(ctx.node(), used, clients, &db_keys))
        }),
    }
}

/// MEMORY STATS's map, in Redis 7.0's order and names.
fn stats_reply(o: &Overhead) -> Reply {
    let active = jemalloc("active");
    let resident = jemalloc("resident");
    let allocated = jemalloc("allocated");
    let rss = rss();
    let f = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let int = |n: u64| Reply::Int(n as i64);
    let diff = |a: u64, b: u64| Reply::Int(a as i64 - b as i64);
    let mut m: Vec<(Reply, Reply)> = vec![
        (f("peak.allocated"), int(o.peak)),
        (f("total.allocated"), int(o.used)),
        (f("startup.allocated"), int(o.startup)),
        (f("replication.backlog"), int(o.backlog)),
        (f("clients.slaves"), int(o.replica_out)),
        (f("clients.normal"), int(o.clients_normal)),
        (f("cluster.links"), int(0)),
        (f("aof.buffer"), int(o.aof_buf)),
        (f("lua.caches"), int(o.lua_caches)),
        (f("functions.caches"), int(o.functions_caches)),
    ];
    for &(i, _, main) in &o.dbs {
        let overhead = Reply::Map(vec![
            (f("overhead.hashtable.main"), int(main)),
            (f("overhead.hashtable.expires"), int(0)),
            (f("overhead.hashtable.slot-to-keys"), int(0)),
        ]);
        m.push((f(&format!("db.{i}")), overhead));
    }
    m.extend([
        (f("overhead.total"), int(o.total)),
        (f("keys.count"), int(o.keys)),
        (f("keys.bytes-per-key"), int(o.net().checked_div(o.keys).unwrap_or(0))),
        (f("dataset.bytes"), int(o.dataset)),
        (f("dataset.percentage"), Reply::Double(o.dataset_perc())),
        (f("peak.percentage"), Reply::Double(ratio(o.used, o.peak) * 100.0)),
        (f("allocator.allocated"), int(allocated)),
        (f("allocator.active"), int(active)),
        (f("allocator.resident"), int(resident)),
        (f("allocator-fragmentation.ratio"), Reply::Double(ratio(active, allocated))),
        (f("allocator-fragmentation.bytes"), diff(active, allocated)),
        (f("allocator-rss.ratio"), Reply::Double(ratio(resident, active))),
        (f("allocator-rss.bytes"), diff(resident, active)),
        (f("rss-overhead.ratio"), Reply::Double(ratio(rss, resident))),
        (f("rss-overhead.bytes"), diff(rss, resident)),
        (f("fragmentation"), Reply::Double(ratio(rss, o.used))),
        (f("fragmentation.bytes"), diff(rss, o.used)),
    ]);
    Reply::Map(m)
}

fn doctor(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let allocated = jemalloc("allocated");
    let text = if allocated < 1024 * 1024 * 5 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting."
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
    };
    reply(Reply::Verbatim(Bytes::from_static(text.as_bytes())))
}

/// jemalloc's report writer: appends each chunk to the `Vec<u8>` behind `opaque`.
extern "C" fn append_chunk(opaque: *mut libc::c_void, text: *const libc::c_char) {
    // SAFETY: `opaque` is the Vec passed to malloc_stats_print below, alive for the call;
    // `text` is a NUL-terminated string jemalloc owns for the duration of this callback.
    unsafe {
        let out = &mut *(opaque as *mut Vec<u8>);
        out.extend_from_slice(std::ffi::CStr::from_ptr(text).to_bytes());
    }
}

fn malloc_stats(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let mut out: Vec<u8> = Vec::new();
    // SAFETY: the callback only appends to `out`, which outlives the call; no options.
    unsafe {
        rjem_malloc_stats_print(Some(append_chunk), &mut out as *mut Vec<u8> as *mut libc::c_void, std::ptr::null())
    };
    reply(Reply::Verbatim(Bytes::from(out)))
}

extern "C" {
    /// jemalloc's mallctl as linked by tikv-jemalloc-sys (prefixed symbols).
    #[link_name = "_rjem_mallctl"]
    fn rjem_mallctl(
        name: *const libc::c_char,
        oldp: *mut libc::c_void,
        oldlenp: *mut libc::size_t,
        newp: *mut libc::c_void,
        newlen: libc::size_t,
    ) -> libc::c_int;

    /// jemalloc's malloc_stats_print (prefixed as above).
    #[link_name = "_rjem_malloc_stats_print"]
    fn rjem_malloc_stats_print(
        write_cb: Option<extern "C" fn(*mut libc::c_void, *const libc::c_char)>,
        cbopaque: *mut libc::c_void,
        opts: *const libc::c_char,
    );
}

fn purge(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    // "arena.<MALLCTL_ARENAS_ALL>.purge", as Redis's jemalloc_purge.
    // SAFETY: a NUL-terminated control name; the purge control takes and returns no value.
    let rc = unsafe {
        rjem_mallctl(c"arena.4096.purge".as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), 0)
    };
    if rc == 0 {
        reply(Reply::Ok)
    } else {
        reply(Reply::err("ERR Error purging dirty pages"))
    }
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
