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
    spec("usage", -3, READONLY, "@read @slow", KEY2, Exec::Keyed(usage), "server", "4.0.0", "Estimate the memory usage of a key"),
    spec("stats", 2, 0, "@slow", Keys::None, Exec::Node(stats), "server", "4.0.0", "Show memory usage details"),
    spec("doctor", 2, 0, "@slow", Keys::None, Exec::Node(doctor), "server", "4.0.0", "Outputs memory problems report"),
    spec("malloc-stats", 2, 0, "@slow", Keys::None, Exec::Node(malloc_stats), "server", "4.0.0", "Show allocator internal stats"),
    spec("purge", 2, 0, "@slow", Keys::None, Exec::Node(purge), "server", "4.0.0", "Ask the allocator to release memory"),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help), "server", "4.0.0", "Show helpful text about the different subcommands"),
];

/// The MEMORY family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: MEMORY_SUBCOMMANDS, ..spec("memory", -2, 0, "@slow", Keys::None, Exec::Container, "server", "4.0.0", "A container for memory diagnostics commands") },
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

fn jemalloc(stat: &str) -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let r = match stat {
        "allocated" => tikv_jemalloc_ctl::stats::allocated::read(),
        "active" => tikv_jemalloc_ctl::stats::active::read(),
        _ => tikv_jemalloc_ctl::stats::resident::read(),
    };
    r.unwrap_or(0) as u64
}

fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn stats(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let allocated = jemalloc("allocated");
    let active = jemalloc("active");
    let resident = jemalloc("resident");
    let rss = rss();
    let mut keys = 0u64;
    let mut dbs = Vec::new();
    // This shard's databases (the home shard's view; every shard's memory is in the totals).
    for (i, d) in ctx.shard.ks.dbs.iter().enumerate() {
        let n = d.len() as u64;
        keys += n;
        if n > 0 {
            dbs.push((i, n));
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let f = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let mut m: Vec<(Reply, Reply)> = vec![
        (f("peak.allocated"), Reply::Int(allocated as i64)),
        (f("total.allocated"), Reply::Int(allocated as i64)),
        (f("startup.allocated"), Reply::Int(0)),
        (f("replication.backlog"), Reply::Int(0)),
        (f("clients.slaves"), Reply::Int(0)),
        (f("clients.normal"), Reply::Int(0)),
        (f("cluster.links"), Reply::Int(0)),
        (f("aof.buffer"), Reply::Int(0)),
        (f("lua.caches"), Reply::Int(0)),
        (f("functions.caches"), Reply::Int(0)),
        (f("overhead.total"), Reply::Int(0)),
        (f("keys.count"), Reply::Int(keys as i64)),
        (f("keys.bytes-per-key"), Reply::Int(allocated.checked_div(keys).unwrap_or(0) as i64)),
        (f("dataset.bytes"), Reply::Int(allocated as i64)),
        (f("dataset.percentage"), Reply::Double(100.0)),
        (f("peak.percentage"), Reply::Double(100.0)),
        (f("allocator.allocated"), Reply::Int(allocated as i64)),
        (f("allocator.active"), Reply::Int(active as i64)),
        (f("allocator.resident"), Reply::Int(resident as i64)),
        (f("allocator-fragmentation.ratio"), Reply::Double(ratio(active, allocated))),
        (f("allocator-fragmentation.bytes"), Reply::Int(active as i64 - allocated as i64)),
        (f("allocator.rss-ratio"), Reply::Double(ratio(resident, active))),
        (f("allocator.rss-bytes"), Reply::Int(resident as i64 - active as i64)),
        (f("rss-overhead.ratio"), Reply::Double(ratio(rss, resident))),
        (f("rss-overhead.bytes"), Reply::Int(rss as i64 - resident as i64)),
        (f("fragmentation"), Reply::Double(ratio(rss, allocated))),
        (f("fragmentation.bytes"), Reply::Int(rss as i64 - allocated as i64)),
    ];
    for (i, n) in dbs {
        let overhead = Reply::Map(vec![
            (f("overhead.hashtable.main"), Reply::Int((n as usize * ENTRY_OVERHEAD) as i64)),
            (f("overhead.hashtable.expires"), Reply::Int(0)),
        ]);
        m.insert(11, (f(&format!("db.{i}")), overhead));
    }
    reply(Reply::Map(m))
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
