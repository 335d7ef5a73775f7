//! Forkless BGSAVE and save points: the file is the node's data at the instant BGSAVE replied
//! (writes during the save do not leak in), passes redis-check-rdb and loads in redis-server
//! 7.0 with that instant's DEBUG DIGEST; `save 1 1` saves by itself and survives kill -9;
//! every `save` form redis-server accepts; MISCONF after a failed BGSAVE, as redis-server;
//! SHUTDOWN during a BGSAVE; a cluster node claims the slots of the keys it loaded.

mod common;
use common::{encode, Raw, Server, WAIT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn ports() {
    common::set_port_base(8500);
}

/// Sends `cmds` pipelined in batches and reads every reply; returns the replies that were
/// errors.
fn pipeline(r: &mut Raw, cmds: &[Vec<String>]) -> Vec<String> {
    let mut errors = Vec::new();
    for batch in cmds.chunks(2000) {
        let mut buf = Vec::new();
        for c in batch {
            let a: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            buf.extend(encode(&a));
        }
        r.send(&buf);
        for _ in batch {
            let rep = r.reply();
            if rep.starts_with('-') {
                errors.push(rep);
            }
        }
    }
    errors
}

fn c(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `n` string keys plus one key of every type, some with a TTL, and keys in db 3.
fn fill(r: &mut Raw, n: usize) {
    let mut cmds: Vec<Vec<String>> =
        (0..n).map(|i| c(&["SET", &format!("key:{i}"), &format!("value-{i}-{}", "x".repeat(100 + i % 40))])).collect();
    cmds.push(c(&["HSET", "h", "a", "1", "b", "2"]));
    cmds.push(c(&["RPUSH", "l", "x", "1", "y"]));
    cmds.push(c(&["SADD", "s", "1", "2", "3"]));
    cmds.push(c(&["ZADD", "z", "1.5", "a", "2", "b"]));
    cmds.push(c(&["SET", "ttl", "v", "PX", "100000000"]));
    cmds.push(c(&["SELECT", "3"]));
    for i in 0..100 {
        cmds.push(c(&["SET", &format!("db3:{i}"), "three"]));
    }
    cmds.push(c(&["SELECT", "0"]));
    assert!(pipeline(r, &cmds).is_empty());
}

fn info_field(r: &mut Raw, field: &str) -> String {
    let info = r.cmd(&["INFO", "persistence"]);
    let key = format!("{field}:");
    info.lines().find_map(|l| l.strip_prefix(&key)).unwrap_or("").trim().to_string()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_bgsave_done(r: &mut Raw) {
    wait_for("the BGSAVE to finish", Duration::from_secs(120), || info_field(r, "rdb_bgsave_in_progress") == "0");
}

fn check_rdb(path: &Path) {
    let out = Command::new("redis-check-rdb").arg(path).output().expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");
}

/// A fresh directory holding a copy of `file` as dump.rdb.
fn dir_with(file: &Path, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slotcore-bgsave-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::copy(file, d.join("dump.rdb")).expect("copy rdb");
    d
}

fn digest_in_redis(rdb: &Path, tag: &str) -> (String, String) {
    let d = dir_with(rdb, tag);
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--dir", d.to_str().unwrap()]);
    let mut b = o.raw();
    // DEBUG is allowed while loading: wait until the whole file is in.
    wait_for("redis-server to load the file", Duration::from_secs(60), || {
        b.cmd(&["INFO", "persistence"]).contains("\r\nloading:0\r\n")
    });
    let got = (b.cmd(&["DEBUG", "DIGEST"]), b.cmd(&["DBSIZE"]));
    let _ = std::fs::remove_dir_all(&d);
    got
}

#[test]
fn bgsave_is_the_instant_it_replied() {
    ports();
    const N: usize = 200_000;
    let s = Server::slotcore(&["--shards", "2", "--save", "", DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    fill(&mut a, N);
    let want = a.cmd(&["DEBUG", "DIGEST"]);
    let want_size = a.cmd(&["DBSIZE"]);
    // Writes of every kind while the shards serialize: overwrites, deletes, new keys,
    // in-place edits, expiry changes, SWAPDB, then FLUSHALL. The first ones go in the same
    // packet as BGSAVE, so they run right after it replies.
    let mut during: Vec<Vec<String>> = Vec::new();
    for i in (0..N).step_by(3) {
        during.push(c(&["SET", &format!("key:{i}"), "overwritten"]));
    }
    let mut first = vec![c(&["BGSAVE"])];
    first.extend_from_slice(&during[..500]);
    first.push(c(&["INFO", "persistence"]));
    let mut buf = Vec::new();
    for cmd in &first {
        let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        buf.extend(encode(&a));
    }
    a.send(&buf);
    assert_eq!(a.reply(), "+Background saving started\r\n");
    for _ in 0..500 {
        assert_eq!(a.reply(), "+OK\r\n");
    }
    let info = a.reply();
    assert!(info.contains("rdb_bgsave_in_progress:1"), "the writes must overlap the save: {info}");
    assert_eq!(a.cmd(&["BGSAVE"]), "-ERR Background save already in progress\r\n");
    assert_eq!(a.cmd(&["SAVE"]), "-ERR Background save already in progress\r\n");
    let mut more: Vec<Vec<String>> = during[500..].to_vec();
    for i in (1..N).step_by(7) {
        more.push(c(&["DEL", &format!("key:{i}")]));
        more.push(c(&["APPEND", &format!("key:{}", i + 1), "-more"]));
    }
    more.push(c(&["HSET", "h", "c", "3"]));
    more.push(c(&["LPUSH", "l", "new"]));
    more.push(c(&["SADD", "s", "4"]));
    more.push(c(&["ZINCRBY", "z", "10", "a"]));
    more.push(c(&["PERSIST", "ttl"]));
    more.push(c(&["SET", "brand-new", "1"]));
    more.push(c(&["MSET", "x{1}", "1", "y{2}", "2", "z{3}", "3"]));
    more.push(c(&["SWAPDB", "0", "3"]));
    more.push(c(&["SET", "after-swap", "1"]));
    assert!(pipeline(&mut a, &more).is_empty());
    let changed = a.cmd(&["DEBUG", "DIGEST"]);
    assert_ne!(changed, want);
    // FLUSHDB lets a running BGSAVE finish (FLUSHALL would stop it, as Redis's kills its child).
    assert_eq!(a.cmd(&["FLUSHDB"]), "+OK\r\n");
    wait_bgsave_done(&mut a);
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut a, "rdb_current_bgsave_time_sec"), "-1");
    assert_ne!(info_field(&mut a, "rdb_last_bgsave_time_sec"), "-1");
    assert!(s.log_text().contains("Background saving terminated with success"), "{}", s.log_text());

    let rdb = s.dir.join("dump.rdb");
    check_rdb(&rdb);
    let (digest, size) = digest_in_redis(&rdb, "instant");
    assert_eq!(digest, want, "the file is the data at the instant BGSAVE replied");
    assert_eq!(size, want_size);
    // No temp file is left behind.
    let left: Vec<String> = std::fs::read_dir(&s.dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("temp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn save_1_1_saves_by_itself_and_survives_kill_9() {
    ports();
    let mut s = Server::slotcore(&["--shards", "2", "--save", "1", "1", DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    let saves = |a: &mut Raw| info_field(a, "rdb_saves").parse::<u64>().unwrap_or(0);
    let before = saves(&mut a);
    let cmds: Vec<Vec<String>> = (0..5000).map(|i| c(&["SET", &format!("k{i}"), &format!("v{i}")])).collect();
    assert!(pipeline(&mut a, &cmds).is_empty());
    let written = Instant::now();
    let want = a.cmd(&["DEBUG", "DIGEST"]);
    // Redis's rule saves once more than 1 s passed since the last save (start-up counts).
    wait_for("the save point to save", Duration::from_secs(10), || {
        saves(&mut a) > before && info_field(&mut a, "rdb_bgsave_in_progress") == "0"
    });
    assert!(written.elapsed() < Duration::from_millis(3500), "saved {:?} after the writes", written.elapsed());
    assert!(s.log_text().contains("changes in 1 seconds. Saving..."), "{}", s.log_text());
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    s.kill9();
    s.restart();
    let mut b = s.raw();
    assert_eq!(b.cmd(&["DEBUG", "DIGEST"]), want, "nothing written before the save is lost");
    assert_eq!(b.cmd(&["DBSIZE"]), ":5000\r\n");
}

fn config_save(s: &Server) -> String {
    s.cli(&["CONFIG", "GET", "save"])
}

#[test]
fn save_arguments_as_redis_takes_them() {
    ports();
    let forms: &[&[&str]] = &[
        &["--save", "3600 1 300 100"],
        &["--save", ""],
        &["--save", "900", "1", "--save", "300", "10"],
        &["--save", "60 5", "--save", "30 1"],
        &[],
    ];
    for form in forms {
        let ours = Server::slotcore(form);
        let theirs = Server::redis_with_args(form);
        assert_eq!(config_save(&ours), config_save(&theirs), "form {form:?}");
        for set in [
            &["CONFIG", "SET", "save", "100 2 50 1"][..],
            &["CONFIG", "SET", "save", "0 1"],
            &["CONFIG", "SET", "save", "10"],
            &["CONFIG", "SET", "save", ""],
        ] {
            assert_eq!(ours.cli(set), theirs.cli(set), "{set:?}");
            assert_eq!(config_save(&ours), config_save(&theirs), "{set:?}");
        }
    }
    // Redis's default when none is given.
    let s = Server::slotcore(&[]);
    assert_eq!(config_save(&s), "save\n3600 1 300 100 60 10000\n");
    // A wrong form stops start-up with Redis's message.
    let bad = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", "8599", "--save", "0 1"])
        .output()
        .expect("run slotcore");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Invalid save parameters")
            || String::from_utf8_lossy(&bad.stdout).contains("Invalid save parameters")
    );
}

#[test]
fn misconf_after_a_failed_bgsave_as_redis() {
    ports();
    let ours = Server::slotcore(&["--save", "3600 1"]);
    let theirs = Server::redis_with_args(&["--save", "3600 1"]);
    for s in [&ours, &theirs] {
        // A directory where the file should go: the rename fails, even for root.
        std::fs::create_dir_all(s.dir.join("dump.rdb")).unwrap();
        let mut r = s.raw();
        assert_eq!(r.cmd(&["SET", "a", "1"]), "+OK\r\n");
        assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        wait_bgsave_done(&mut r);
        assert_eq!(info_field(&mut r, "rdb_last_bgsave_status"), "err");
    }
    let (mut a, mut b) = (ours.raw(), theirs.raw());
    for cmd in [&["SET", "a", "2"][..], &["PING"], &["GET", "a"], &["INCR", "n"], &["DEL", "a"]] {
        let (x, y) = (a.cmd(cmd), b.cmd(cmd));
        assert_eq!(x, y, "{cmd:?}");
    }
    assert!(a.cmd(&["SET", "a", "2"]).starts_with("-MISCONF Redis is configured to save RDB snapshots"));
    // stop-writes-on-bgsave-error no lets writes through; a good save clears the error.
    assert_eq!(a.cmd(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "a", "3"]), "+OK\r\n");
    assert_eq!(a.cmd(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]), "+OK\r\n");
    wait_for("MISCONF again", WAIT, || a.cmd(&["SET", "a", "4"]).starts_with("-MISCONF"));
    std::fs::remove_dir(ours.dir.join("dump.rdb")).unwrap();
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    wait_bgsave_done(&mut a);
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    assert_eq!(a.cmd(&["SET", "a", "5"]), "+OK\r\n");
}

#[test]
fn shutdown_during_bgsave_saves_the_latest_data() {
    ports();
    let mut s = Server::slotcore(&["--shards", "2", "--save", "3600 1", DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    fill(&mut a, 100_000);
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert_eq!(a.cmd(&["SET", "written-after-bgsave", "1"]), "+OK\r\n");
    let want = a.cmd(&["DEBUG", "DIGEST"]);
    a.send_cmd(&[b"SHUTDOWN"]);
    assert_eq!(s.wait_exit(WAIT), Some(0));
    let log = s.log_text();
    assert!(
        log.contains("There is a child saving an .rdb. Killing it!")
            || log.contains("Background saving terminated with success"),
        "{log}"
    );
    let rdb = s.dir.join("dump.rdb");
    check_rdb(&rdb);
    let (digest, _) = digest_in_redis(&rdb, "shutdown");
    assert_eq!(digest, want);
}

#[test]
fn cluster_node_claims_the_slots_of_loaded_keys() {
    ports();
    // An RDB with keys in a few slots, from a standalone node.
    let src = Server::slotcore(&[]);
    let mut a = src.raw();
    for k in ["apple", "banana", "cherry{x}", "date{x}"] {
        assert_eq!(a.cmd(&["SET", k, k]), "+OK\r\n");
    }
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    let rdb = src.dir.join("dump.rdb");
    let d1 = dir_with(&rdb, "claim-ours");
    let d2 = dir_with(&rdb, "claim-redis");
    let args = |d: &PathBuf| {
        vec![
            "--cluster-enabled".to_string(),
            "yes".into(),
            "--cluster-require-full-coverage".into(),
            "no".into(),
            "--dir".into(),
            d.to_str().unwrap().to_string(),
        ]
    };
    let a1 = args(&d1);
    let a2 = args(&d2);
    let ours = Server::slotcore(&a1.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let theirs = Server::redis_with_args(&a2.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    // The slot ranges of the node's own line in CLUSTER NODES.
    let slots = |s: &Server| {
        let nodes = s.cli(&["CLUSTER", "NODES"]);
        let me = nodes.lines().find(|l| l.contains("myself")).unwrap_or("").to_string();
        me.split(' ').skip(8).map(String::from).collect::<Vec<_>>()
    };
    wait_for("the claimed slots", WAIT, || !slots(&ours).is_empty());
    assert_eq!(slots(&ours), slots(&theirs));
    // A master with a failed state waits a moment after start before serving (both servers).
    wait_for("the cluster state to turn ok", WAIT, || ours.cli(&["GET", "apple"]).trim() == "apple");
    for k in ["apple", "banana", "cherry{x}", "date{x}"] {
        assert_eq!(ours.cli(&["GET", k]).trim(), k);
    }
    assert!(ours.log_text().contains("I have keys for unassigned slot"), "{}", ours.log_text());
    let conf = std::fs::read_to_string(d1.join("nodes.conf")).unwrap_or_default();
    assert!(conf.contains("myself,master"), "{conf}");
    let _ = std::fs::remove_dir_all(&d1);
    let _ = std::fs::remove_dir_all(&d2);
}

/// FLUSHALL on a node with save points saves the empty dataset at once and resets the dirty
/// counter, as redis-server's `flushAllDataAndResetRDB`; a BGSAVE running at that moment is
/// stopped, so its older data never lands on disk after the FLUSHALL.
#[test]
fn flushall_with_save_points_saves_and_stops_a_running_bgsave() {
    ports();
    let args = ["--save", "3600 1", DEBUG[0], DEBUG[1]];
    let mut ours = Server::slotcore(&["--shards", "2", args[0], args[1], args[2], args[3]]);
    let redis = Server::redis(&args);
    let mut a = ours.raw();
    let mut b = redis.raw();
    let mut dirty = Vec::new();
    for r in [&mut a, &mut b] {
        fill(r, 1000);
        dirty.push(info_field(r, "rdb_changes_since_last_save"));
        assert_eq!(r.cmd(&["FLUSHALL"]), "+OK\r\n");
        assert_eq!(info_field(r, "rdb_changes_since_last_save"), "0");
        assert_eq!(r.cmd(&["SET", "after", "1"]), "+OK\r\n");
        assert_eq!(info_field(r, "rdb_changes_since_last_save"), "1");
    }
    assert_eq!(dirty[0], dirty[1]);
    // The file FLUSHALL wrote is the empty dataset.
    let rdb = ours.dir.join("dump.rdb");
    check_rdb(&rdb);
    assert_eq!(digest_in_redis(&rdb, "flushall").1, ":0\r\n");

    // A BGSAVE of a large dataset, interrupted by FLUSHALL.
    fill(&mut a, 200_000);
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert_eq!(a.cmd(&["FLUSHALL"]), "+OK\r\n");
    wait_bgsave_done(&mut a);
    assert!(ours.log_text().contains("Background saving terminated by signal 10"), "{}", ours.log_text());
    check_rdb(&rdb);
    assert_eq!(digest_in_redis(&rdb, "flushall-bgsave").1, ":0\r\n");
    // And a later BGSAVE runs to its end (the stop request does not outlive the save it ended).
    assert_eq!(a.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    wait_bgsave_done(&mut a);
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    assert_eq!(digest_in_redis(&rdb, "flushall-after").1, ":1\r\n");
    ours.kill9();
}

/// `rdb-key-save-delay` (Redis's testing aid, a hidden directive) slows a BGSAVE by that many
/// µs per key while the node keeps answering; CONFIG GET shows it only by exact name, as
/// redis-server.
#[test]
fn rdb_key_save_delay_slows_the_save_not_the_clients() {
    ports();
    let ours = Server::slotcore(&["--shards", "2", "--save", ""]);
    let redis = Server::redis(&["--save", ""]);
    let mut a = ours.raw();
    let mut b = redis.raw();
    for r in [&mut a, &mut b] {
        assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "200"]), "+OK\r\n");
        assert_eq!(r.cmd(&["CONFIG", "GET", "rdb-key-save-delay"]), "*2\r\n$18\r\nrdb-key-save-delay\r\n$3\r\n200\r\n");
        assert_eq!(r.cmd(&["CONFIG", "GET", "rdb-key-*"]), "*0\r\n");
    }
    fill(&mut a, 10_000);
    let started = Instant::now();
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    // About 10,000 keys at 200 µs each: at least 2 s; meanwhile PING is answered at once.
    let mut worst = Duration::ZERO;
    while info_field(&mut a, "rdb_bgsave_in_progress") == "1" {
        let t = Instant::now();
        assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
        worst = worst.max(t.elapsed());
        assert!(started.elapsed() < Duration::from_secs(60), "the save never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "the save took {took:?}");
    assert!(worst < Duration::from_secs(1), "PING waited {worst:?} during the save");
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    check_rdb(&ours.dir.join("dump.rdb"));
}

/// BGSAVE inside MULTI/EXEC is scheduled (Redis 7.0's reply) and then runs by itself.
#[test]
fn bgsave_inside_exec_is_scheduled_as_redis() {
    ports();
    let ours = Server::slotcore(&["--shards", "2", "--save", ""]);
    let redis = Server::redis(&["--save", ""]);
    let mut replies = Vec::new();
    for s in [&ours, &redis] {
        let mut r = s.raw();
        r.cmd(&["MULTI"]);
        r.cmd(&["SET", "a", "1"]);
        r.cmd(&["BGSAVE"]);
        replies.push(r.cmd(&["EXEC"]));
        wait_for("the scheduled BGSAVE", WAIT, || {
            info_field(&mut r, "rdb_saves") == "1" && info_field(&mut r, "rdb_bgsave_in_progress") == "0"
        });
        assert_eq!(info_field(&mut r, "rdb_changes_since_last_save"), "0");
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[0], "*2\r\n+OK\r\n+Background saving scheduled\r\n");
    check_rdb(&ours.dir.join("dump.rdb"));
}

/// `n` clients that pipeline SETs and GETs of batches of 200 over the first 60,000 keys until
/// `stop`; each returns how many batches it completed (a client with no reply in time panics).
fn busy_clients(
    port: u16,
    n: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<usize>> {
    (0..n)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                let mut batches = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let cmds: Vec<Vec<String>> = (0..200)
                        .map(|i| {
                            let k = format!("key:{}", (w * 7919 + batches * 200 + i) % 60_000);
                            if i % 2 == 0 {
                                c(&["SET", &k, "written during the saves"])
                            } else {
                                c(&["GET", &k])
                            }
                        })
                        .collect();
                    assert!(pipeline(&mut r, &cmds).is_empty());
                    batches += 1;
                }
                batches
            })
        })
        .collect()
}

/// BGSAVEs back to back on a one-shard node while clients write and read: every client keeps
/// getting its replies and every save ends. (The executor used to park with tasks queued now
/// and then during a save, and once for good: a stalled node fails this test at the clients'
/// read timeout instead of hanging it.)
#[test]
fn back_to_back_bgsaves_under_concurrent_clients_never_stall() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    ports();
    let ours = Server::slotcore(&["--shards", "1", "--save", ""]);
    let mut a = ours.raw();
    fill(&mut a, 50_000);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = busy_clients(ours.port, 4, &stop);
    let started = Instant::now();
    let mut saves = 0;
    while started.elapsed() < Duration::from_secs(10) {
        assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        wait_bgsave_done(&mut a);
        assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
        saves += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert!(c.join().expect("a client got no reply in time") > 0);
    }
    assert!(saves >= 3, "only {saves} saves in 10 s");
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    check_rdb(&ours.dir.join("dump.rdb"));
}

/// No starvation: with the node confined to one CPU and more pipelining clients than it can
/// serve (its CPU never idle), a BGSAVE still ends, with the clients served all along. The
/// save's writer thread and child run at idle CPU priority, which gets only the moments the
/// shard leaves its CPU idle; the driver moves them back to the normal class when a block
/// waited 200 ms for them (`runtime::snapshot`), so the save ends whatever the load.
#[test]
fn a_save_under_full_load_completes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    ports();
    let ours = Server::slotcore(&["--shards", "1", "--save", ""]);
    // Every thread of the node, and the save child it starts later, on one CPU.
    let pinned = Command::new("taskset").args(["-a", "-p", "-c", "0", &ours.pid().to_string()]).output();
    assert!(pinned.is_ok_and(|o| o.status.success()), "taskset failed");
    let mut a = ours.raw();
    fill(&mut a, 100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = busy_clients(ours.port, 8, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let began = Instant::now();
    assert_eq!(a.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    wait_for("the save under full load", Duration::from_secs(120), || {
        info_field(&mut a, "rdb_bgsave_in_progress") == "0"
    });
    let took = began.elapsed();
    assert_eq!(info_field(&mut a, "rdb_last_bgsave_status"), "ok");
    stop.store(true, Ordering::Relaxed);
    let batches: usize = clients.into_iter().map(|c| c.join().expect("a client got no reply in time")).sum();
    assert!(batches > 0);
    eprintln!("save under full load: {took:?}, {batches} client batches of 200");
    check_rdb(&ours.dir.join("dump.rdb"));
}

#[test]
fn flushall_stops_a_running_bgsave_without_save_points() {
    ports();
    let s = Server::slotcore(&["--save", ""]);
    let mut r = s.raw();
    fill(&mut r, 2000);
    let dirty: u64 = info_field(&mut r, "rdb_changes_since_last_save").parse().unwrap();
    assert!(dirty > 2000);
    assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]), "+OK\r\n");
    assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    // The child's file is named after it, as Redis's child names its own.
    let out = Command::new("pgrep").args(["-P", &s.pid().to_string()]).output().unwrap();
    let child = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string();
    assert!(s.dir.join(format!("temp-{child}.rdb")).exists(), "no temp-{child}.rdb");
    assert_eq!(r.cmd(&["FLUSHALL"]), "+OK\r\n");
    wait_for("the BGSAVE to stop", Duration::from_secs(1), || info_field(&mut r, "rdb_bgsave_in_progress") == "0");
    // Not saved: the changes are still to be saved, and no file was written.
    let after: u64 = info_field(&mut r, "rdb_changes_since_last_save").parse().unwrap();
    assert!(after >= dirty, "{after} < {dirty}");
    assert!(!s.dir.join("dump.rdb").exists());
    assert!(!s.dir.join(format!("temp-{child}.rdb")).exists());
    assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), "+OK\r\n");
    assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    wait_bgsave_done(&mut r);
    assert_eq!(info_field(&mut r, "rdb_changes_since_last_save"), "0");
}
