//! maxmemory, eviction and client output-buffer limits, compared with a real redis-server on
//! the same workloads: how many keys each policy keeps and which ones, the OOM texts (plain
//! commands, MULTI/EXEC, scripts), evictions reaching a replica as DELs, CONFIG GET/SET of
//! `client-output-buffer-limit`, a pipelining client that never reads dropped at the hard
//! limit with bounded memory, and the soft limit enforced over time; on nodes of several
//! shards, what the node holds for itself leaves room for the data a Redis user plans for,
//! clients are evicted before keys, and evicted keys' invalidations do not feed eviction.

mod common;
use common::{Raw, Server, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const VALUE: usize = 4000;
const KEYS: usize = 12_000;

fn ports() {
    common::use_ports(8420);
}

fn info_field(raw: &mut Raw, section: &str, field: &str) -> u64 {
    let text = raw.cmd(&["INFO", section]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

/// Sends `cmds` pipelined in chunks; returns the replies.
fn pipeline(raw: &mut Raw, cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
    let mut out = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(200) {
        let mut buf = Vec::new();
        for c in chunk {
            let a: Vec<&[u8]> = c.iter().map(|x| &x[..]).collect();
            buf.extend_from_slice(&common::encode(&a));
        }
        raw.send(&buf);
        for _ in chunk {
            out.push(raw.reply());
        }
    }
    out
}

fn set_cmd(i: usize, ttl: Option<u64>) -> Vec<Vec<u8>> {
    let mut c = vec![b"SET".to_vec(), format!("key:{i}").into_bytes(), vec![b'v'; VALUE]];
    if let Some(t) = ttl {
        c.push(b"EX".to_vec());
        c.push(t.to_string().into_bytes());
    }
    c
}

fn exists(raw: &mut Raw, range: std::ops::Range<usize>) -> Vec<bool> {
    let cmds: Vec<Vec<Vec<u8>>> = range.map(|i| vec![b"EXISTS".to_vec(), format!("key:{i}").into_bytes()]).collect();
    pipeline(raw, &cmds).iter().map(|r| r == ":1\r\n").collect()
}

fn frac(v: &[bool]) -> f64 {
    v.iter().filter(|&&b| b).count() as f64 / v.len().max(1) as f64
}

/// What one policy's workload left behind on one server.
#[derive(Debug)]
struct Outcome {
    errors: usize,
    kept: u64,
    evicted: u64,
    used: u64,
    /// Fraction kept of the keys the policy should keep (hot, or non-volatile, or far TTLs).
    favoured: f64,
    /// Fraction kept of the keys the policy should evict first.
    disfavoured: f64,
}

/// Fills 30mb with `KEYS` values of 4000 bytes under `policy`, shaped so each policy has
/// keys to favour: hot keys read recently (lru) or often (lfu), keys without a TTL (volatile),
/// far TTLs (ttl).
fn workload(s: &Server, policy: &str) -> Outcome {
    let mut raw = s.raw();
    raw.cmd(&["FLUSHALL"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
    raw.cmd(&["CONFIG", "RESETSTAT"]);
    let volatile = policy.starts_with("volatile");
    // Odd keys volatile (TTL growing with the index) under volatile policies.
    let ttl = |i: usize| (volatile && i % 2 == 1).then_some(100_000 + i as u64);
    let hot = 0..500;
    let first: Vec<_> = (0..2000).map(|i| set_cmd(i, ttl(i))).collect();
    pipeline(&mut raw, &first);
    if policy.ends_with("-lfu") {
        let gets: Vec<_> =
            (0..20).flat_map(|_| hot.clone()).map(|i| vec![b"GET".to_vec(), format!("key:{i}").into_bytes()]).collect();
        pipeline(&mut raw, &gets);
    }
    if policy.ends_with("-lru") {
        // The LRU clock ticks in seconds: let the others age, then read the hot ones.
        std::thread::sleep(Duration::from_millis(2100));
        let gets: Vec<_> = hot.clone().map(|i| vec![b"GET".to_vec(), format!("key:{i}").into_bytes()]).collect();
        pipeline(&mut raw, &gets);
    }
    raw.cmd(&["CONFIG", "SET", "maxmemory", "30mb"]);
    // Under LRU the hot keys are read again every 500 writes of the fill: the fill may take
    // longer than a second of the LRU clock, and keys written after the last read would
    // otherwise be "more recent" than the hot ones.
    let mut rest: Vec<Vec<Vec<u8>>> = Vec::new();
    for i in 2000..KEYS {
        rest.push(set_cmd(i, ttl(i)));
        if policy.ends_with("-lru") && i % 500 == 0 {
            rest.extend(hot.clone().map(|h| vec![b"GET".to_vec(), format!("key:{h}").into_bytes()]));
        }
    }
    let replies = pipeline(&mut raw, &rest);
    let errors = replies.iter().filter(|r| r.starts_with('-')).count();
    if errors > 0 {
        let e = replies.iter().find(|r| r.starts_with('-')).unwrap();
        assert_eq!(e, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    }
    let present = exists(&mut raw, 0..KEYS);
    let pick = |f: &dyn Fn(usize) -> bool| -> Vec<bool> { (0..KEYS).filter(|&i| f(i)).map(|i| present[i]).collect() };
    let (favoured, disfavoured) = match policy {
        "allkeys-lru" | "allkeys-lfu" => (pick(&|i| i < 500), pick(&|i| (500..2000).contains(&i))),
        "volatile-lru" | "volatile-lfu" | "volatile-random" => {
            (pick(&|i| i % 2 == 0), pick(&|i| i % 2 == 1 && i < 2000))
        }
        "volatile-ttl" => (pick(&|i| i % 2 == 0), pick(&|i| i % 2 == 1 && i < 3000)),
        _ => (pick(&|_| true), pick(&|_| true)),
    };
    Outcome {
        errors,
        kept: raw.cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse().unwrap_or(0),
        evicted: info_field(&mut raw, "stats", "evicted_keys"),
        used: info_field(&mut raw, "memory", "used_memory"),
        favoured: frac(&favoured),
        disfavoured: frac(&disfavoured),
    }
}

#[test]
fn every_policy_keeps_what_redis_keeps() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    let max = 30u64 << 20;
    for policy in [
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let a = workload(&s, policy);
        let b = workload(&r, policy);
        eprintln!("{policy}: slotcore {a:?}\n{policy}: redis    {b:?}");
        // Both stay under the ceiling (a little over is allowed for what one write adds).
        assert!(a.used <= max + max / 20, "{policy}: slotcore used {} > maxmemory", a.used);
        // Keys kept within 35% of redis-server's: slotcore's per-key overhead is higher and an
        // empty node already uses ~5 MB against ~1 MB (issue 11's memory work), so fewer
        // keys fit under the same ceiling (measured: 0.74x under allkeys-lru).
        let ratio = a.kept as f64 / b.kept as f64;
        assert!((0.65..=1.25).contains(&ratio), "{policy}: kept {} vs redis-server {}", a.kept, b.kept);
        // Refused or evicted: the same kind of outcome as redis-server. Under a volatile-*
        // policy slotcore may also refuse some writes once no key with a TTL is left to evict
        // (fewer keys fit: see above); redis-server did not reach that point in this workload.
        if policy.starts_with("volatile") {
            assert!(a.errors <= KEYS / 5, "{policy}: OOM errors {} vs {}", a.errors, b.errors);
        } else {
            assert_eq!(a.errors > 0, b.errors > 0, "{policy}: OOM errors {} vs {}", a.errors, b.errors);
        }
        assert_eq!(a.evicted > 0, b.evicted > 0, "{policy}: evicted {} vs {}", a.evicted, b.evicted);
        assert_eq!(a.evicted + a.kept + a.errors as u64, KEYS as u64, "{policy}: every write accounted for");
        // The keys the policy favours survive as on redis-server.
        match policy {
            "noeviction" | "allkeys-random" => {}
            "volatile-lru" | "volatile-lfu" | "volatile-random" | "volatile-ttl" => {
                // Keys without a TTL are never evicted: any missing one is a refused write.
                let missing = (1.0 - a.favoured) * (KEYS / 2) as f64;
                assert!(missing <= a.errors as f64 + 0.5, "{policy}: a key without a TTL was evicted: {a:?}");
                assert_eq!(b.favoured, 1.0);
                assert!(a.disfavoured < 0.5 && b.disfavoured < 0.5, "{policy}: {a:?} / {b:?}");
            }
            _ => {
                // Sampled LRU/LFU keep clearly more of the hot keys than of the cold ones (one run:
                // allkeys-lru redis-server 65% vs 8%, slotcore 43% vs 2%; allkeys-lfu redis-server
                // 100% vs 55%, slotcore 100% vs 30%). redis-server is not held to it: its LRU
                // clock ticks once a second, so when the cold writes and the hot reads fall in
                // the same second (a loaded machine) it cannot tell them apart (one CI-like run:
                // 9.4% vs 8.9%).
                assert!(a.favoured > a.disfavoured + 0.2, "{policy}: hot keys kept {a:?} / {b:?}");
                assert!(a.disfavoured < 0.5, "{policy}: cold keys kept {a:?}");
            }
        }
    }
}

#[test]
fn oom_texts_match_redis() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        c.cmd(&["SET", "k", "v"]);
        c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    }
    let mut a = s.raw();
    let mut b = r.raw();
    let mut steps: Vec<Vec<&str>> = vec![
        vec!["SET", "x", "1"],
        vec!["GET", "k"],
        vec!["DEL", "k"],
        vec!["INCR", "n"],
        vec!["MULTI"],
        vec!["GET", "k"],
        vec!["EXEC"],
        vec!["EVAL", "return redis.call('set','y','1')", "0"],
        vec!["EVAL", "return redis.pcall('set','y','1')", "0"],
        vec!["EVAL", "return redis.call('get','k')", "0"],
        vec!["CONFIG", "GET", "maxmemory-policy"],
    ];
    for st in steps.drain(..) {
        let ra = a.cmd(&st);
        let rb = b.cmd(&st);
        assert_eq!(ra, rb, "{st:?}");
    }
    // EXEC of a transaction queued under the ceiling, run over it.
    for c in [&mut a, &mut b] {
        c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        c.cmd(&["MULTI"]);
        c.cmd(&["SET", "z", "1"]);
    }
    for srv in [&s, &r] {
        srv.raw().cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    }
    let (ra, rb) = (a.cmd(&["EXEC"]), b.cmd(&["EXEC"]));
    assert_eq!(ra, rb);
    assert_eq!(
        ra,
        "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(a.cmd(&["EXISTS", "z"]), ":0\r\n");
    // INFO fields as Redis names them.
    let info = a.cmd(&["INFO", "memory"]);
    for f in
        ["maxmemory:1\r\n", "maxmemory_human:1B\r\n", "maxmemory_policy:noeviction\r\n", "mem_not_counted_for_evict:"]
    {
        assert!(info.contains(f), "{f} missing in {info}");
    }
}

/// A slotcore master (`allkeys-random`) with a redis-server replica linked to it, and a
/// connection to each.
fn master_with_replica() -> (Server, Server, Raw, Raw) {
    ports();
    let m = Server::slotcore(&["--maxmemory-policy", "allkeys-random"]);
    let rep = Server::redis(&[]);
    let mc = m.raw();
    let mut rc = rep.raw();
    rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    let deadline = Instant::now() + WAIT;
    while !rc.cmd(&["INFO", "replication"]).contains("master_link_status:up") {
        assert!(Instant::now() < deadline, "replica never linked");
        std::thread::sleep(Duration::from_millis(50));
    }
    (m, rep, mc, rc)
}

#[test]
fn evictions_reach_a_replica_as_deletes() {
    let (_m, _rep, mut mc, mut rc) = master_with_replica();
    mc.cmd(&["CONFIG", "SET", "maxmemory", "20mb"]);
    let cmds: Vec<_> = (0..8000).map(|i| set_cmd(i, None)).collect();
    pipeline(&mut mc, &cmds);
    let evicted = info_field(&mut mc, "stats", "evicted_keys");
    assert!(evicted > 1000, "evicted {evicted}");
    // Any later command may evict again while memory is over the limit (reads too, as in
    // Redis), so lift the limit before comparing: the replica must then converge exactly.
    mc.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    mc.cmd(&["WAIT", "1", "5000"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let (a, b) = (mc.cmd(&["DEBUG", "DIGEST"]), rc.cmd(&["DEBUG", "DIGEST"]));
        if a == b && mc.cmd(&["DBSIZE"]) == rc.cmd(&["DBSIZE"]) {
            break;
        }
        assert!(Instant::now() < deadline, "replica differs: {a} vs {b}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mc.cmd(&["DBSIZE"]), rc.cmd(&["DBSIZE"]));
    // A replica keeps what its master sends (replica-ignore-maxmemory yes): no own evictions.
    assert_eq!(info_field(&mut rc, "stats", "evicted_keys"), 0);
}

/// What the ceiling leaves out for a replica (its stream beyond the backlog, the records on
/// their way to it) is given back as the replica takes the stream: once the replication
/// buffer is back to the backlog after a burst of writes under the ceiling, a few cron ticks
/// later `mem_not_counted_for_evict` is too, and the node's count is back at the ceiling.
/// (The replicas' output was reported once a second while it shrank: 10-25 MB of freed
/// blocks stayed left out for most of a second after the replica had caught up.)
#[test]
fn not_counted_memory_is_given_back_once_the_replica_caught_up() {
    let (_m, _rep, mut mc, _rc) = master_with_replica();
    let limit: u64 = 20 << 20;
    mc.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let backlog = info_field(&mut mc, "replication", "repl_backlog_size");
    let cmds: Vec<_> = (0..8000).map(|i| set_cmd(i, None)).collect();
    pipeline(&mut mc, &cmds);
    let deadline = Instant::now() + WAIT;
    while info_field(&mut mc, "memory", "mem_total_replication_buffers") > backlog + (256 << 10) {
        assert!(Instant::now() < deadline, "the replica never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let left_out = info_field(&mut mc, "memory", "mem_not_counted_for_evict");
    let used = info_field(&mut mc, "memory", "used_memory");
    assert!(left_out < 1 << 20, "{left_out} bytes still left out (used_memory {used})");
    assert!(used.saturating_sub(left_out) <= limit + (1 << 20), "used_memory {used}, {left_out} left out");
    assert!(info_field(&mut mc, "stats", "evicted_keys") > 1000);
}

#[test]
fn output_buffer_limit_config_matches_redis() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    let mut a = s.raw();
    let mut b = r.raw();
    for st in [
        &["CONFIG", "GET", "client-output-buffer-limit"][..],
        &["CONFIG", "SET", "client-output-buffer-limit", "normal 32mb 0 0"],
        &["CONFIG", "GET", "client-output-buffer-limit"],
        &["CONFIG", "SET", "client-output-buffer-limit", "replica 1gb 100mb 30 pubsub 1mb 512kb 5"],
        &["CONFIG", "GET", "client-output-buffer-limit"],
        &["CONFIG", "SET", "client-output-buffer-limit", "master 1 2 3"],
        &["CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"],
        &["CONFIG", "SET", "client-output-buffer-limit", "normal 1x 2 3"],
        &["CONFIG", "GET", "client-output-buffer-limit"],
    ] {
        assert_eq!(a.cmd(st), b.cmd(st), "{st:?}");
    }
}

/// RSS of a process in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// A connection that pipelines 1000 `LRANGE bl 0 -1` (about 270 KB of reply each) in one
/// write and never reads: dropped at the 32 MB hard limit, as by redis-server, and the
/// server's memory stays bounded.
#[test]
fn a_client_that_never_reads_is_dropped_at_the_hard_limit() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 33554432 0 0"]), "+OK\r\n");
        let elems: Vec<Vec<u8>> = (0..2500).map(|i| format!("{i:0100}").into_bytes()).collect();
        let mut args: Vec<&[u8]> = vec![b"RPUSH", b"bl"];
        args.extend(elems.iter().map(|e| &e[..]));
        c.cmd_bytes(&args);
        let before = rss(srv.pid());
        let mut hog = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        let one = common::encode(&[b"LRANGE", b"bl", b"0", b"-1"]);
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        std::io::Write::write_all(&mut hog, &batch).unwrap();
        // Dropped: the connection shows up as closed once we drain what was sent before.
        let deadline = Instant::now() + WAIT;
        let mut peak = 0;
        loop {
            peak = peak.max(rss(srv.pid()));
            let list = c.cmd(&["CLIENT", "LIST"]);
            if list.matches("id=").count() <= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the hog is still connected: {list}");
            std::thread::sleep(Duration::from_millis(20));
        }
        hog.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let _ = hog.read_to_end(&mut got);
        assert!(got.len() < 40 << 20, "{} bytes reached the client", got.len());
        assert!(peak < before + (150 << 20), "RSS grew from {before} to {peak}");
        eprintln!("rss before {} MB, peak {} MB, client got {} bytes", before >> 20, peak >> 20, got.len());
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    }
    assert!(s.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits."));
}

/// The soft limit: over it for longer than its seconds, the client is dropped; a client that
/// goes over it briefly and reads is not.
#[test]
fn soft_limit_is_enforced_over_time() {
    ports();
    let s = Server::slotcore(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 1mb 2"]), "+OK\r\n");
    c.cmd(&["SET", "big", &"x".repeat(500_000)]);
    // Brief: 4 MB of replies read at once stays connected.
    let mut quick = s.raw();
    let gets: Vec<u8> = common::encode(&[b"GET", b"big"]).repeat(8);
    quick.send(&gets);
    for _ in 0..8 {
        quick.reply();
    }
    assert_eq!(quick.cmd(&["PING"]), "+PONG\r\n");
    // Stuck: 40 MB of replies never read; closed after about 2 seconds, not before 1.
    let mut stuck = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let start = Instant::now();
    std::io::Write::write_all(&mut stuck, &common::encode(&[b"GET", b"big"]).repeat(80)).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(c.cmd(&["CLIENT", "LIST"]).matches("id=").count(), 3, "closed too early");
    let deadline = Instant::now() + WAIT;
    while c.cmd(&["CLIENT", "LIST"]).matches("id=").count() > 2 {
        assert!(Instant::now() < deadline, "stuck client never closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "closed after {took:?}");
}

/// Redis's "is the memory limit honoured" scenario on a small keyspace: a ceiling 100 KB over
/// an empty node's use, keys written until it is nearly reached, then as many again; the node
/// must stay within 4 KB of the ceiling (eviction gives back what the keys held, slot tables
/// included) and the first phase must fit more than a handful of keys. INFO's used_memory is
/// the memory the node held when INFO began.
fn small_margin(s: &Server, policy: &str) -> (usize, i64) {
    let mut raw = s.raw();
    for i in 0..50 {
        raw.cmd(&["SETEX", &format!("warm{i}"), "10", "x"]);
    }
    raw.cmd(&["FLUSHALL"]);
    let limit = info_field(&mut raw, "memory", "used_memory") + 100 * 1024;
    raw.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
    let mut n = 0;
    loop {
        raw.cmd(&["SETEX", &format!("key:{}", fastrand::u64(..)), "10000", "x"]);
        n += 1;
        if info_field(&mut raw, "memory", "used_memory") + 4096 > limit || n > 100_000 {
            break;
        }
    }
    for _ in 0..n {
        let r = raw.cmd(&["SETEX", &format!("key:{}", fastrand::u64(..)), "10000", "x"]);
        assert_eq!(r, "+OK\r\n", "{policy}");
    }
    let over = info_field(&mut raw, "memory", "used_memory") as i64 - limit as i64;
    raw.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    (n, over)
}

#[test]
fn a_small_keyspace_stays_under_a_100_kb_margin_as_redis() {
    ports();
    let r = Server::redis(&[]);
    let s = Server::slotcore(&[]);
    for policy in ["allkeys-random", "allkeys-lru", "volatile-lru", "volatile-ttl"] {
        let (rn, rover) = small_margin(&r, policy);
        let (sn, sover) = small_margin(&s, policy);
        assert!(rn > 10 && rover < 4096, "redis-server {policy}: {rn} keys, {rover} bytes over");
        assert!(sn > 10 && sover < 4096, "slotcore {policy}: {sn} keys (redis-server {rn}), {sover} bytes over");
    }
}

/// `used_memory` grown by 10,000 SETs of `key:<n>` with values of 0..`range` bytes; returns
/// the bytes written (key, value and one separator each) per byte of memory, and the bytes
/// of memory per key.
fn efficiency(s: &Server, range: usize) -> (f64, f64) {
    let mut raw = s.raw();
    raw.cmd(&["FLUSHALL"]);
    let base = info_field(&mut raw, "memory", "used_memory");
    let mut written = 0;
    let cmds: Vec<Vec<Vec<u8>>> = (0..10_000)
        .map(|i| {
            let (k, v) = (format!("key:{i}").into_bytes(), vec![b'A'; fastrand::usize(..range)]);
            written += k.len() + v.len() + 2;
            vec![b"SET".to_vec(), k, v]
        })
        .collect();
    assert!(pipeline(&mut raw, &cmds).iter().all(|r| r == "+OK\r\n"));
    let used = info_field(&mut raw, "memory", "used_memory") - base;
    (written as f64 / used as f64, used as f64 / 10_000.0)
}

/// Ten thousand small keys spread over most of the 16384 slots: each slot holding one to three
/// keys costs no table allocation, so the memory per key stays near redis-server's single
/// dict (it was 1.6-1.8x before, and under Redis's own efficiency floor of 0.15 / 0.25 / 0.35
/// for values up to 32 / 64 / 128 bytes).
#[test]
fn ten_thousand_small_keys_cost_near_redis_per_key() {
    ports();
    let r = Server::redis(&[]);
    let s = Server::slotcore(&[]);
    for (range, floor) in [(32, 0.15), (64, 0.25), (128, 0.35)] {
        let (re, rb) = efficiency(&r, range);
        let (se, sb) = efficiency(&s, range);
        assert!(
            se >= floor && sb <= rb * 1.4,
            "values of 0..{range} bytes: slotcore {se:.3} ({sb:.0} bytes a key), redis-server {re:.3} ({rb:.0})"
        );
    }
}

/// After big writes are overwritten, a connection holds no more than redis-server's: the
/// query buffer a 32 MB bulk string grew is given back once parsed. It used to stay alive as
/// a view of its last bytes (CLIENT LIST showed 16 KB of room, `used_memory` kept 40 MB).
#[test]
fn a_big_writes_buffer_is_given_back_as_redis() {
    ports();
    let r = Server::redis(&[]);
    let s = Server::slotcore(&[]);
    let big = vec![b'x'; 32 << 20];
    let mut left = Vec::new();
    for srv in [&r, &s] {
        let mut c = srv.client();
        let base = info_field(&mut srv.raw(), "memory", "used_memory");
        for key in ["a", "b"] {
            let _: () = redis::cmd("SET").arg(key).arg(&big[..]).query(&mut c).unwrap();
        }
        for key in ["a", "b"] {
            let _: () = redis::cmd("SET").arg(key).arg("small").query(&mut c).unwrap();
        }
        let used = info_field(&mut srv.raw(), "memory", "used_memory");
        left.push(used.saturating_sub(base));
    }
    assert!(
        left[1] < (left[0] + (4 << 20)),
        "bytes left after the big writes: redis-server {}, slotcore {}",
        left[0],
        left[1]
    );
}

/// Redis's client-tracking eviction scenario: 10 RESP3 clients track 300 keys with 1 KB names
/// (none of them reading what comes after), the ceiling is set 40 KB under the used memory.
/// Returns the keys evicted when the ceiling was set, and the keys left then and half a second
/// later.
fn tracking_eviction(s: &Server) -> (u64, u64, u64) {
    let mut raw = s.raw();
    raw.cmd(&["CONFIG", "SET", "latency-tracking", "no"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"]);
    let mut trackers: Vec<Raw> = (0..10).map(|_| s.raw()).collect();
    for t in &mut trackers {
        t.cmd(&["HELLO", "3"]);
        assert_eq!(t.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    }
    for j in 0..300 {
        let key = format!("{j}{}", "x".repeat(1000));
        raw.cmd(&["SET", &key, "x"]);
        for t in &mut trackers {
            t.cmd(&["GET", &key]);
        }
    }
    // The query buffers' room is trimmed by the cron (Redis's test waits the same).
    std::thread::sleep(Duration::from_millis(1100));
    let limit = info_field(&mut raw, "memory", "used_memory") - 40_000;
    raw.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let evicted = info_field(&mut raw, "stats", "evicted_keys");
    let keys = |raw: &mut Raw| raw.cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse::<u64>().expect("DBSIZE");
    let left = keys(&mut raw);
    std::thread::sleep(Duration::from_millis(500));
    let later = keys(&mut raw);
    for t in &mut trackers {
        assert!(t.reply().starts_with('>'), "an invalidation message waits");
    }
    (evicted, left, later)
}

/// Invalidation messages sent for evicted keys do not make the node evict more: a reply buffer
/// emptied under a ceiling gives back its room beyond 1 KB, as Redis's per-client buffer is
/// sized to its use. It kept up to 16 KB per client (1 MB without a ceiling): the messages of
/// one eviction cycle left 10 clients holding more than the margin, the next command evicted
/// for them, and the node evicted all 300 keys.
#[test]
fn tracking_invalidations_do_not_feed_eviction() {
    ports();
    for s in [Server::redis(&[]), Server::slotcore(&[])] {
        let (evicted, left, later) = tracking_eviction(&s);
        let r = (evicted, left, later);
        assert!((10..=50).contains(&evicted) && left >= 200 && later >= 200, "{} {r:?}", s.port);
    }
}

/// The same over two and four shards: one eviction cycle per command, and the invalidations it
/// sends to trackers on other shards are not evicted for again. The command's own check ran a
/// second cycle right after the one that ran node-wide, and the next command's cycle counted
/// messages the other shards had not taken yet (Redis writes them out before it reads the next
/// command): four shards evicted 58 to 93 keys where one evicts about 30 and redis-server 36.
#[test]
fn tracking_invalidations_do_not_feed_eviction_on_several_shards() {
    ports();
    let start = Instant::now();
    let mut seen = Vec::new();
    for shards in [2, 4, 4, 4] {
        let s = Server::slotcore_shards(shards);
        let (evicted, left, later) = tracking_eviction(&s);
        seen.push((shards, evicted, left, later));
        assert!((10..=50).contains(&evicted) && left >= 200 && later >= 200, "{seen:?}");
        assert!(start.elapsed() < Duration::from_secs(120), "{seen:?}");
    }
}

fn dbsize(raw: &mut Raw) -> u64 {
    raw.cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse().expect("DBSIZE")
}

/// A fresh node's first keys under a ceiling 100 KB over its empty use (Redis's "is the memory
/// limit honoured" scenario, right after start-up): how many SETEX of random keys fit before
/// the used memory is within 4 KB of the ceiling, and how far over the ceiling the node is
/// after as many again.
fn first_keys(s: &Server) -> (usize, i64) {
    let mut raw = s.raw();
    raw.cmd(&["FLUSHALL"]);
    let limit = info_field(&mut raw, "memory", "used_memory") + 100 * 1024;
    raw.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    let mut n = 0;
    while n < 100_000 {
        raw.cmd(&["SETEX", &format!("key:{}", fastrand::u64(..)), "10000", "x"]);
        n += 1;
        if info_field(&mut raw, "memory", "used_memory") + 4096 > limit {
            break;
        }
    }
    for _ in 0..n {
        raw.cmd(&["SETEX", &format!("key:{}", fastrand::u64(..)), "10000", "x"]);
    }
    let over = info_field(&mut raw, "memory", "used_memory") as i64 - limit as i64;
    (n, over)
}

/// Every shard's first keys of each kind fit a 100 KB margin as Redis's do: a shard's first
/// command of each name made a 24 KB latency histogram (Redis makes one per command, here
/// every shard had its own), so four shards' first SETEX took the whole margin (1 or 2 keys).
#[test]
fn first_keys_on_every_shard_fit_a_100_kb_margin() {
    ports();
    for s in [Server::redis(&[]), Server::slotcore_shards(2), Server::slotcore_shards(4)] {
        let (n, over) = first_keys(&s);
        assert!(n > 10 && over < 4096, "port {}: {n} keys, {over} bytes over", s.port);
    }
}

/// Redis's client-eviction scenarios: 50 keys of 100 KB under an 11 MB ceiling,
/// `maxmemory-clients` 3 MB (the caller exempt). Returns the caller's connection.
fn client_eviction_setup(s: &Server) -> Raw {
    let mut raw = s.raw();
    raw.cmd(&["CONFIG", "SET", "maxmemory", "11mb"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    raw.cmd(&["CONFIG", "SET", "maxmemory-clients", "3mb"]);
    raw.cmd(&["CLIENT", "NO-EVICT", "on"]);
    raw.cmd(&["CONFIG", "RESETSTAT"]);
    for j in 0..50 {
        raw.cmd(&["SETRANGE", &j.to_string(), "100000", "x"]);
    }
    assert_eq!(dbsize(&mut raw), 50);
    raw
}

/// (evicted keys, evicted clients, keys left), and the ceiling taken off.
fn evictions(raw: &mut Raw) -> (u64, u64, u64) {
    let r = (info_field(raw, "stats", "evicted_keys"), info_field(raw, "stats", "evicted_clients"), dbsize(raw));
    raw.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    r
}

/// 30 clients each send 249 of a request's 250 arguments of 1000 bytes.
fn half_sent_requests(s: &Server) -> (u64, u64, u64) {
    let mut raw = client_eviction_setup(s);
    let arg = format!("$1000\r\n{}\r\n", "x".repeat(1000));
    let mut clients = Vec::new();
    for _ in 0..30 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        c.set_write_timeout(Some(Duration::from_secs(5))).ok();
        // An evicted client's socket is closed under it: later writes may fail.
        let _ = c.write_all(b"*250\r\n");
        for _ in 0..249 {
            if c.write_all(arg.as_bytes()).is_err() {
                break;
            }
        }
        clients.push(c);
    }
    // The node settles (an evicted client's memory comes back when its connection ends).
    std::thread::sleep(Duration::from_millis(300));
    evictions(&mut raw)
}

/// 20 clients send `MGET 1` (a 100 KB value) over and over without reading, until a client
/// or a key was evicted (10 s at most).
fn unread_replies(s: &Server) -> (u64, u64, u64) {
    let mut raw = client_eviction_setup(s);
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            c.set_write_timeout(Some(Duration::from_secs(5))).ok();
            c
        })
        .collect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let (keys, evicted) =
            (info_field(&mut raw, "stats", "evicted_keys"), info_field(&mut raw, "stats", "evicted_clients"));
        if keys > 0 || evicted > 0 {
            break;
        }
        // A closed (evicted) client's writes fail; the others go on.
        clients.retain_mut(|c| c.write_all(b"*2\r\n$4\r\nMGET\r\n$1\r\n1\r\n").is_ok());
    }
    // Every request sent is read and run (an evicted client's are dropped with it), and with
    // them any eviction they lead to: no client holds input and no command ran since the last
    // look.
    let mut ran = u64::MAX;
    common::until("the clients' requests run", || {
        let list = raw.cmd(&["CLIENT", "LIST"]);
        let idle = list
            .lines()
            .filter(|l| l.contains(" qbuf=") && !l.contains("cmd=client|list"))
            .all(|l| common::field(l, "qbuf") == 0);
        // The caller's own CLIENT LIST and INFO count two commands a look.
        let now = info_field(&mut raw, "stats", "total_commands_processed");
        let settled = idle && now == ran.wrapping_add(2);
        ran = now;
        settled
    });
    evictions(&mut raw)
}

/// Clients over `maxmemory-clients` go, keys stay, as in Redis: the node's own memory leaves
/// room for 5 MB of keys and 3 MB of clients under 11 MB, and replies on their way from the
/// key's shard to a client's count against no key. With four shards an empty node used 3 MB
/// (redis-server 0.9 MB): every shard held a copy of the 16384-slot routing table and every
/// pair of threads a channel of 1024 message slots, and 4 to 9 keys were evicted for the
/// half-sent requests; replies of `MGET` travelling between shards, in no client's output
/// yet, had up to 26 keys evicted before any client reached the limit (half the runs).
#[test]
fn clients_go_before_keys_on_several_shards() {
    ports();
    let servers = [Server::redis(&[]), Server::slotcore_shards(2), Server::slotcore_shards(4)];
    for s in &servers {
        let (keys, clients, left) = half_sent_requests(s);
        assert!(keys == 0 && clients > 0 && left == 50, "port {}: {keys} keys and {clients} clients evicted", s.port);
    }
}

/// 20 clients asking for a 100 KB value without reading are evicted before any key, as with
/// redis-server, three rounds on each node. The shards run at the same time: a shard that
/// read the node's total while another grew a client's reply buffer (the old and the new
/// allocation both there), or held a batch of replies that had arrived from the key's shard
/// but were not in the buffer yet, found the node over `maxmemory` with the clients under
/// their limit and evicted keys (9 to 26 keys in half the runs with two or four shards, on a
/// busy machine). A reply buffer now counts at its new size before it grows, and arrived
/// replies stay left out until they are in it.
#[test]
fn unread_replies_evict_clients_before_keys_on_several_shards() {
    ports();
    let servers = [Server::redis(&[]), Server::slotcore_shards(2), Server::slotcore_shards(4)];
    for round in 0..3 {
        for s in &servers {
            let r = unread_replies(s);
            let (keys, clients, left) = r;
            assert!(keys == 0 && clients > 0 && left == 50, "port {} round {round}: {r:?}", s.port);
        }
    }
}
