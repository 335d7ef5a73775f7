//! INFO: node facts plus counters summed over every shard, in Redis 7.0's sections, field names
//! and order, with `\r\n` line endings (tools read it with `strstr`).

use super::ctx::{ClientCtx, ShardState};
use super::spec::Plan;
use crate::protocol::Reply;
use bytes::Bytes;
use std::fmt::Write as _;

/// Sections printed by `INFO` / `INFO default`.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "shards",
];
/// Extra sections in `INFO all` / `everything`.
const EXTRA: &[&str] = &["commandstats", "latencystats"];

/// One shard's counters, as carried back from the fan-out.
#[derive(Default)]
struct ShardReport {
    keys: Vec<(u64, u64)>,
    total_commands: u64,
    hits: u64,
    misses: u64,
    conns: u64,
    rejected: u64,
    net_in: u64,
    net_out: u64,
    errors: u64,
    expired: u64,
    evicted: u64,
    clients: u64,
    cmdstats: Vec<(String, [u64; 4])>,
    errorstats: Vec<(String, u64)>,
    /// Per-command latency histograms (`latency::histograms_reply`).
    hists: Option<Reply>,
    /// MIGRATE links the shard keeps open.
    migrate_cached: u64,
    /// Changes since the last save (the shard's change log).
    since_save: u64,
    /// The instantaneous metrics' current rates (`instant::Rates`).
    rates: [u64; 5],
    reads: u64,
    writes: u64,
    /// `expired_stale_perc` in millionths.
    stale_ppm: u64,
    expire_capped: u64,
    expire_us: u64,
    replica_volatile: u64,
    /// Query buffer and pending reply bytes of the shard's clients, and the largest of each.
    qbuf: u64,
    omem: u64,
    max_qbuf: u64,
    max_omem: u64,
    /// Keys (all databases), for the per-key overhead.
    entries: u64,
    /// The clients' memory as client eviction counts it (`mem_clients_normal`).
    clients_mem: u64,
}

fn encode(shard: &mut ShardState) -> Reply {
    let s = &shard.stats;
    let mut v = vec![
        Reply::Int(s.total_commands as i64),
        Reply::Int(s.keyspace_hits as i64),
        Reply::Int(s.keyspace_misses as i64),
        Reply::Int(s.total_connections_received as i64),
        Reply::Int(s.rejected_connections as i64),
        Reply::Int(s.net_input_bytes as i64),
        Reply::Int(s.net_output_bytes as i64),
        Reply::Int(s.total_error_replies as i64),
        Reply::Int(shard.ks.dbs.iter().map(|d| d.expired_keys).sum::<u64>() as i64),
        Reply::Int(s.evicted_keys as i64),
        Reply::Int(shard.clients.len() as i64),
    ];
    v.push(Reply::Array(
        shard.ks.dbs.iter().flat_map(|d| [Reply::Int(d.len() as i64), Reply::Int(d.volatile_len() as i64)]).collect(),
    ));
    v.push(Reply::Array(
        s.cmdstats
            .iter()
            .flat_map(|(k, c)| {
                [
                    Reply::bulk(k.as_bytes()),
                    Reply::Int(c.calls as i64),
                    Reply::Int(c.usec as i64),
                    Reply::Int(c.rejected_calls as i64),
                    Reply::Int(c.failed_calls as i64),
                ]
            })
            .collect(),
    ));
    v.push(Reply::Array(
        s.errorstats.iter().flat_map(|(k, n)| [Reply::bulk(k.as_bytes()), Reply::Int(*n as i64)]).collect(),
    ));
    v.push(Reply::Int(shard.changes.since_save() as i64));
    v.push(super::latency::histograms_reply(shard));
    v.push(Reply::Int(crate::runtime::migrate_link::cached() as i64));
    let s = &shard.stats;
    // The clients' buffers in one pass: query and reply bytes, summed and largest.
    let (mut qbuf, mut omem, mut max_qbuf, mut max_omem) = (0u64, 0u64, 0u64, 0u64);
    let mut clients_mem = 0u64;
    for c in shard.clients.values() {
        let c = c.borrow();
        clients_mem += crate::memory::clients::shown(&c) as u64;
        let (q, o) = (c.qbuf as u64, c.output_bytes() as u64);
        (qbuf, omem, max_qbuf, max_omem) = (qbuf + q, omem + o, max_qbuf.max(q), max_omem.max(o));
    }
    let mut extra: Vec<u64> = s.instant.rates().to_vec();
    extra.extend([
        s.reads_processed,
        s.writes_processed,
        (s.expired_stale * 1e6) as u64,
        s.expire_time_cap_reached,
        s.expire_cycle_us,
        shard.ks.dbs.iter().map(|d| d.replica_volatile_len() as u64).sum(),
        qbuf,
        omem,
        max_qbuf,
        max_omem,
        shard.ks.dbs.iter().map(|d| d.len() as u64).sum(),
        clients_mem,
    ]);
    v.push(Reply::Array(extra.into_iter().map(|n| Reply::Int(n as i64)).collect()));
    Reply::Array(v)
}

fn int(r: &Reply) -> u64 {
    if let Reply::Int(n) = r {
        *n as u64
    } else {
        0
    }
}

fn text(r: &Reply) -> String {
    if let Reply::Bulk(b) = r {
        String::from_utf8_lossy(b).into_owned()
    } else {
        String::new()
    }
}

fn decode(r: &Reply) -> ShardReport {
    let Reply::Array(v) = r else { return ShardReport::default() };
    if v.len() < 14 {
        return ShardReport::default();
    }
    let mut rep = ShardReport {
        total_commands: int(&v[0]),
        hits: int(&v[1]),
        misses: int(&v[2]),
        conns: int(&v[3]),
        rejected: int(&v[4]),
        net_in: int(&v[5]),
        net_out: int(&v[6]),
        errors: int(&v[7]),
        expired: int(&v[8]),
        evicted: int(&v[9]),
        clients: int(&v[10]),
        ..Default::default()
    };
    if let Reply::Array(k) = &v[11] {
        rep.keys = k.chunks(2).map(|c| (int(&c[0]), int(&c[1]))).collect();
    }
    if let Reply::Array(c) = &v[12] {
        rep.cmdstats = c.chunks(5).map(|c| (text(&c[0]), [int(&c[1]), int(&c[2]), int(&c[3]), int(&c[4])])).collect();
    }
    if let Reply::Array(e) = &v[13] {
        rep.errorstats = e.chunks(2).map(|c| (text(&c[0]), int(&c[1]))).collect();
    }
    rep.since_save = v.get(14).map_or(0, int);
    rep.hists = v.get(15).cloned();
    rep.migrate_cached = v.get(16).map_or(0, int);
    if let Some(Reply::Array(x)) = v.get(17) {
        let n: Vec<u64> = x.iter().map(int).collect();
        if n.len() >= 16 {
            rep.rates = [n[0], n[1], n[2], n[3], n[4]];
            (rep.reads, rep.writes, rep.stale_ppm, rep.expire_capped) = (n[5], n[6], n[7], n[8]);
            (rep.expire_us, rep.replica_volatile, rep.qbuf, rep.omem) = (n[9], n[10], n[11], n[12]);
            (rep.max_qbuf, rep.max_omem, rep.entries) = (n[13], n[14], n[15]);
            rep.clients_mem = n.get(16).copied().unwrap_or(0);
        }
    }
    rep
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn rusage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills a zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

fn uname() -> String {
    // SAFETY: uname fills a zeroed struct with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "Linux".into();
    }
    let f = |a: &[libc::c_char]| {
        let b: Vec<u8> = a.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
}

/// INFO [section ...]
pub fn info(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        encode(shard)
    }
    let sections = wanted_sections(args);
    let offset_shown = sections.iter().any(|s| s == "replication");
    // Used memory as the command found it: the shards' reports and the text built below (tens
    // of KB with commandstats), and the command's own future, are INFO's working memory, which
    // Redis's INFO, building its string as it goes on its stack, does not hold when it reads
    // its counter. What the count leaves out is taken with it (`mem_not_counted_for_evict`).
    let used_at_call = sections.iter().any(|s| s == "memory").then(crate::memory::refresh_before_command);
    let plan = Plan::AllShards {
        run,
        merge: Box::new(move |ctx, replies| {
            let reports: Vec<ShardReport> = replies.iter().map(decode).collect();
            Reply::Verbatim(Bytes::from(render(ctx, &reports, &sections, used_at_call)))
        }),
    };
    if offset_shown {
        Plan::AfterFeed(Box::new(plan))
    } else {
        plan
    }
}

fn wanted_sections(args: &[Bytes]) -> Vec<String> {
    let asked: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    if asked.is_empty() || asked.iter().any(|a| a == "default") {
        let mut v: Vec<String> = DEFAULT.iter().map(|s| s.to_string()).collect();
        v.extend(asked.into_iter().filter(|a| a != "default"));
        return v;
    }
    if asked.iter().any(|a| a == "all" || a == "everything") {
        return DEFAULT.iter().chain(EXTRA).map(|s| s.to_string()).collect();
    }
    asked
}

fn render(
    ctx: &mut ClientCtx<'_>,
    reports: &[ShardReport],
    sections: &[String],
    used_at_call: Option<(u64, u64)>,
) -> String {
    let node = ctx.node().clone();
    let cfg = node.config();
    let sum = |f: &dyn Fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    let now = crate::storage::now_ms();
    let uptime = node.started.elapsed().as_secs();
    let mut out = String::new();
    let mut first = true;
    let mut section = |name: &str, body: String| {
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        out.push_str("# ");
        out.push_str(name);
        out.push_str("\r\n");
        out.push_str(&body);
    };
    let want = |s: &str| sections.iter().any(|x| x == s);
    if want("server") {
        let mut b = String::new();
        let _ = write!(
            b,
            "redis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:{}\r\nslotcore_version:{}\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
            if node.cluster.is_some() { "cluster" } else { "standalone" },
            env!("CARGO_PKG_VERSION"),
            uname(),
            node.pid,
            node.run_id,
            crate::tls::shown_port(&cfg),
            now * 1000,
            uptime,
            uptime / 86400,
            cfg.hz,
            cfg.hz,
            (now / 1000) & ((1 << 24) - 1),
            node.executable,
            node.config_file
        );
        if let Some(ms) = crate::runtime::shutdown_wait::remaining_ms() {
            let _ = write!(b, "shutdown_in_milliseconds:{ms}\r\n");
        }
        section("Server", b);
    }
    if want("clients") {
        let connected = node.connected_clients.load(std::sync::atomic::Ordering::Relaxed);
        // Redis counts two bus connections per known node other than myself.
        let bus = node.cluster.as_ref().map_or(0, |c| c.with(|st| (st.nodes.len() - 1) * 2));
        section(
            "Clients",
            format!(
                "connected_clients:{}\r\ncluster_connections:{}\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:{}\r\n",
                connected,
                bus,
                cfg.maxclients,
                reports.iter().map(|r| r.max_qbuf).max().unwrap_or(0),
                reports.iter().map(|r| r.max_omem).max().unwrap_or(0),
                node.blocked_clients.load(std::sync::atomic::Ordering::Acquire),
                node.tracking.trackers(),
                node.blocked_with_timeout.load(std::sync::atomic::Ordering::Acquire)
            ),
        );
    }
    if want("memory") {
        let (used, not_counted) =
            used_at_call.unwrap_or_else(|| (crate::memory::refresh(), crate::memory::not_counted_for_evict()));
        let rss = super::memory::rss();
        let total = crate::memory::total_system_memory();
        let maxmem: u64 = cfg.get("maxmemory").and_then(|v| v.parse().ok()).unwrap_or(0);
        let active = super::memory::jemalloc("active");
        let resident = super::memory::jemalloc("resident");
        let repl_buffers = node.repl.with_status(|s| s.repl_buffer_mem);
        let ndb = reports.iter().map(|r| r.keys.len()).max().unwrap_or(0);
        let db_keys: Vec<u64> =
            (0..ndb).map(|d| reports.iter().map(|r| r.keys.get(d).map_or(0, |k| k.0)).sum()).collect();
        let o = super::memory::Overhead::new(&node, used, sum(&|r| r.clients_mem), &db_keys);
        let (peak, overhead, startup, dataset, backlog, replica_out, clients_normal, aof_buf) =
            (o.peak, o.total, o.startup, o.dataset, o.backlog, o.replica_out, o.clients_normal, o.aof_buf);
        let ratio = super::memory::ratio;
        let diff = |a: u64, b: u64| a as i64 - b as i64;
        // Values are freed when deleted (no lazy-free thread): nothing is ever pending there.
        section(
            "Memory",
            format!(
                "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{overhead}\r\nused_memory_startup:{startup}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{active}\r\nallocator_resident:{resident}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\n{}maxmemory:{maxmem}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{}\r\nmem_replication_backlog:{backlog}\r\nmem_total_replication_buffers:{}\r\nmem_clients_slaves:{replica_out}\r\nmem_clients_normal:{clients_normal}\r\nmem_cluster_links:0\r\nmem_aof_buffer:{aof_buf}\r\nmem_allocator:jemalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
                human(used),
                human(rss),
                human(peak),
                ratio(used, peak) * 100.0,
                o.dataset_perc(),
                human(total),
                crate::script::info_memory_fields(human),
                human(maxmem),
                cfg.get("maxmemory-policy").unwrap_or("noeviction"),
                ratio(active, used),
                diff(active, used),
                ratio(resident, active),
                diff(resident, active),
                ratio(rss, resident),
                diff(rss, resident),
                ratio(rss, used),
                diff(rss, used),
                not_counted,
                repl_buffers,
                crate::storage::lazyfree::pending(),
                crate::storage::lazyfree::freed()
            ),
        );
    }
    if want("persistence") {
        section(
            "Persistence",
            format!(
                "loading:{}\r\nasync_loading:{}\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\n{}{}{}",
                u8::from(crate::replication::role::loading()),
                u8::from(crate::replication::role::async_loading()),
                sum(&|r| r.since_save),
                super::save::info_rdb_fields(node.start_ms / 1000),
                crate::aof::info_fields(),
                if crate::runtime::startup_load::in_background() {
                    crate::runtime::startup_load::info_lines()
                } else {
                    String::new()
                }
            ),
        );
    }
    if want("stats") {
        let l = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let (repl_in, repl_out) = (l(&super::instant::NET_REPL_INPUT), l(&super::instant::NET_REPL_OUTPUT));
        let rate = |i: usize| reports.iter().map(|r| r.rates[i]).sum::<u64>();
        let kbps = |b: u64| b as f64 / 1024.0;
        let shards = reports.len().max(1) as f64;
        let (exceeded_total, exceeded_now) = crate::memory::evict::exceeded_ms();
        let evicted_clients = crate::memory::clients::evicted();
        section(
            "Stats",
            format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:{repl_in}\r\ntotal_net_repl_output_bytes:{repl_out}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:{:.2}\r\ninstantaneous_output_repl_kbps:{:.2}\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:{:.2}\r\nexpired_time_cap_reached_count:{}\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:{evicted_clients}\r\ntotal_eviction_exceeded_time:{exceeded_total}\r\ncurrent_eviction_exceeded_time:{exceeded_now}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:{}\r\nmigrate_cached_sockets:{}\r\nslave_expires_tracked_keys:{}\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                sum(&|r| r.conns),
                sum(&|r| r.total_commands),
                rate(0),
                sum(&|r| r.net_in) + repl_in,
                sum(&|r| r.net_out) + repl_out,
                kbps(rate(1) + rate(3)),
                kbps(rate(2) + rate(4)),
                kbps(rate(3)),
                kbps(rate(4)),
                sum(&|r| r.rejected),
                crate::replication::master::SYNC_FULL.load(std::sync::atomic::Ordering::Relaxed),
                crate::replication::master::SYNC_PARTIAL_OK.load(std::sync::atomic::Ordering::Relaxed),
                crate::replication::master::SYNC_PARTIAL_ERR.load(std::sync::atomic::Ordering::Relaxed),
                sum(&|r| r.expired),
                sum(&|r| r.stale_ppm) as f64 / 1e4 / shards,
                sum(&|r| r.expire_capped),
                sum(&|r| r.expire_us) / 1000,
                sum(&|r| r.evicted),
                sum(&|r| r.hits),
                sum(&|r| r.misses),
                node.pubsub.len(crate::cmd::pubsub_reg::Kind::Channel),
                node.pubsub.len(crate::cmd::pubsub_reg::Kind::Pattern),
                node.pubsub.len(crate::cmd::pubsub_reg::Kind::Shard),
                super::bgsave::background_jobs(),
                sum(&|r| r.migrate_cached),
                sum(&|r| r.replica_volatile),
                node.tracking.total_keys.load(std::sync::atomic::Ordering::Relaxed),
                node.tracking.total_items.load(std::sync::atomic::Ordering::Relaxed),
                node.tracking.total_prefixes(),
                crate::conn::master::UNEXPECTED_ERROR_REPLIES.load(std::sync::atomic::Ordering::Relaxed),
                sum(&|r| r.errors),
                sum(&|r| r.reads),
                sum(&|r| r.writes)
            ),
        );
    }
    if want("replication") {
        section("Replication", super::replication::info_section(&node));
    }
    if want("cpu") {
        let (sys, user) = rusage(libc::RUSAGE_SELF);
        // slotcore has no main thread: the thread of the shard that answers stands for it.
        let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
        section(
            "CPU",
            format!("used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{tsys:.6}\r\nused_cpu_user_main_thread:{tuser:.6}\r\n"),
        );
    }
    if want("modules") {
        section("Modules", String::new());
    }
    if want("commandstats") {
        let mut stats: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
        for r in reports {
            for (k, c) in &r.cmdstats {
                let e = stats.entry(k.clone()).or_default();
                for i in 0..4 {
                    e[i] += c[i];
                }
            }
        }
        section(
            "Commandstats",
            stats
                .iter()
                .map(|(k, c)| {
                    let per = if c[0] > 0 { c[1] as f64 / c[0] as f64 } else { 0.0 };
                    format!(
                        "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                        k, c[0], c[1], per, c[2], c[3]
                    )
                })
                .collect(),
        );
    }
    if want("errorstats") {
        let mut errs: std::collections::BTreeMap<String, u64> = Default::default();
        for r in reports {
            for (k, n) in &r.errorstats {
                *errs.entry(k.clone()).or_default() += n;
            }
        }
        section("Errorstats", errs.iter().map(|(k, n)| format!("errorstat_{k}:count={n}\r\n")).collect());
    }
    if want("latencystats") {
        let mut b = String::new();
        if cfg.latency_tracking {
            for (name, h) in super::latency::merge_histograms(reports.iter().filter_map(|r| r.hists.as_ref())) {
                let _ = write!(b, "latency_percentiles_usec_{name}:");
                for (j, p) in cfg.latency_percentiles.iter().enumerate() {
                    if j > 0 {
                        b.push(',');
                    }
                    let _ = write!(b, "p{}={:.3}", p, h.value_at_percentile(*p) as f64 / 1000.0);
                }
                b.push_str("\r\n");
            }
        }
        section("Latencystats", b);
    }
    if want("cluster") {
        section("Cluster", format!("cluster_enabled:{}\r\n", u8::from(node.cluster.is_some())));
    }
    if want("keyspace") {
        let ndb = reports.iter().map(|r| r.keys.len()).max().unwrap_or(0);
        let mut b = String::new();
        for d in 0..ndb {
            let keys: u64 = reports.iter().map(|r| r.keys.get(d).map_or(0, |k| k.0)).sum();
            let expires: u64 = reports.iter().map(|r| r.keys.get(d).map_or(0, |k| k.1)).sum();
            if keys > 0 {
                let _ = write!(b, "db{d}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        section("Keyspace", b);
    }
    if want("shards") {
        let mut b = String::new();
        let n = reports.len().max(1);
        let slots = crate::cluster::slot::SLOTS;
        // In cluster mode a shard serves its part of the node's slots (the sticky even split
        // of `cluster::view`); standalone nodes split all 16384 evenly.
        let counts: Vec<usize> = match &node.cluster {
            Some(c) => c.shard_slot_counts(),
            None => (0..n).map(|i| (0..slots).filter(|s| s * n / slots == i).count()).collect(),
        };
        for (i, r) in reports.iter().enumerate() {
            let per_shard_slots = counts.get(i).copied().unwrap_or(0);
            let cpu = node.shard_cpus.get(i).copied().flatten().map_or("unpinned".to_string(), |c| c.to_string());
            let keys: u64 = r.keys.iter().map(|k| k.0).sum();
            let _ = write!(
                b,
                "shard{i}:cpu={cpu},slots={per_shard_slots},keys={keys},clients={},commands={}\r\n",
                r.clients, r.total_commands
            );
        }
        section("Shards", b);
    }
    out
}
