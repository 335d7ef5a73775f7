//! Sentinel's own state, with real processes, each case beside a redis-server Sentinel:
//! commands that must write sentinel.conf say when it could not be written, a master that
//! restarts is down once `master-reboot-down-after-period` passes without a PONG, and a
//! replica whose link never came up is asked for INFO every second.

mod common;

use common::sentinel::Sentinel;
use common::{Raw, Server, WAIT};
use std::time::{Duration, Instant};

/// Replies of the commands that write sentinel.conf while its path is a directory (so no
/// write can succeed), then the file's contents after a SENTINEL SET whose second option is
/// bad, with the file back in place.
fn flush_failures(s: &Sentinel, master_port: u16) -> (Vec<String>, String) {
    let bak = s.dir.join("sentinel.conf.bak");
    std::fs::rename(&s.conf, &bak).expect("rename");
    std::fs::create_dir(&s.conf).expect("mkdir");
    let mp = master_port.to_string();
    let mut r = Raw::connect(s.port);
    let replies: Vec<String> = [
        &["SENTINEL", "SET", "mymaster", "quorum", "3"][..],
        &["SENTINEL", "SET", "mymaster", "quorum", "2", "bogus", "1"],
        &["SENTINEL", "SET", "mymaster", "quorum", "2", "down-after-milliseconds", "-20"],
        &["SENTINEL", "FLUSHCONFIG"],
        &["SENTINEL", "MONITOR", "other", "127.0.0.1", &mp, "2"],
        &["SENTINEL", "REMOVE", "other"],
        &["SENTINEL", "CONFIG", "SET", "resolve-hostnames", "no"],
        &["SENTINEL", "MASTER", "nope"],
    ]
    .iter()
    .map(|c| r.cmd(c))
    .collect();
    std::fs::remove_dir(&s.conf).expect("rmdir");
    std::fs::rename(&bak, &s.conf).expect("rename back");
    // The options before the bad one apply and are saved.
    let bad = r.cmd(&["SENTINEL", "SET", "mymaster", "quorum", "4", "down-after-milliseconds", "-20"]);
    assert!(bad.starts_with("-ERR Invalid argument '-20'"), "{bad}");
    let conf = s.conf_text();
    let monitor = conf.lines().find(|l| l.starts_with("sentinel monitor mymaster")).unwrap_or("").to_string();
    // Nothing of the failed writes is left behind.
    let left: Vec<String> = std::fs::read_dir(&s.dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sentinel.conf" && n != "sentinel.log")
        .collect();
    assert!(left.is_empty(), "real={}: left in the directory: {left:?}", s.real);
    (replies, monitor)
}

/// SENTINEL SET / FLUSHCONFIG / MONITOR / REMOVE / CONFIG SET answer Redis's error when
/// sentinel.conf cannot be written (they answered +OK), and a SENTINEL SET that fails on a
/// later option saves the ones it applied.
#[test]
fn failed_config_writes_are_reported_as_redis() {
    let master = Server::slotcore(&[]);
    let ours = Sentinel::start(false, master.port);
    let real = Sentinel::start(true, master.port);
    let a = flush_failures(&ours, master.port);
    let b = flush_failures(&real, master.port);
    assert_eq!(a, b);
    assert!(b.0[0].starts_with("-ERR Failed to save config file"), "{:?}", b.0);
    assert!(b.1.ends_with(" 4"), "{}", b.1);
}

/// The SENTINEL MASTER flags of `s` (empty if it does not answer).
fn flags(s: &Sentinel) -> String {
    s.master_field("flags")
}

/// A master that restarts and loads its data slowly (answering -LOADING, then PONG) is
/// subjectively down `master-reboot-down-after-period` after its new run id is seen, with a
/// down-after-milliseconds far longer than the load; PONG brings it back up.
#[test]
fn master_reboot_down_after_period_as_redis() {
    let mut master = Server::slotcore(&[
        "--key-load-delay",
        "1500",
        "--loading-process-events-interval-bytes",
        "1024",
        "--save",
        "",
        "--enable-debug-command",
        "yes",
    ]);
    let mut c = master.raw();
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "4000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    drop(c);
    let sentinels = [Sentinel::start(false, master.port), Sentinel::start(true, master.port)];
    for s in &sentinels {
        for cmd in [
            &["SENTINEL", "SET", "mymaster", "down-after-milliseconds", "60000"][..],
            &["SENTINEL", "SET", "mymaster", "master-reboot-down-after-period", "1000"],
            &["SENTINEL", "DEBUG", "info-period", "200", "ping-period", "200"],
        ] {
            assert_eq!(s.cli(cmd).trim(), "OK", "real={}", s.real);
        }
        s.wait_until("the master's run id", || s.master_field("runid").len() == 40);
    }
    // 4000 keys at 1.5 ms each: about 6 s of -LOADING after the restart.
    master.relaunch();
    let start = Instant::now();
    let mut seen_down = [false, false];
    let mut loading_seen = false;
    while start.elapsed() < WAIT && !seen_down.iter().all(|d| *d) {
        for (i, s) in sentinels.iter().enumerate() {
            seen_down[i] |= flags(s).contains("s_down");
        }
        loading_seen |= master.cli(&["PING"]).contains("LOADING");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(loading_seen, "the restarted master never answered -LOADING");
    assert_eq!(seen_down, [true, true], "s_down seen by [slotcore, redis-server] Sentinel");
    for s in &sentinels {
        s.wait_until("the master up again after its load", || !flags(s).contains("s_down"));
        assert!(s.log().contains("+reboot master mymaster"), "real={}", s.real);
    }
}

/// A field of the first replica in SENTINEL REPLICAS mymaster (empty if none yet).
fn replica_field(s: &Sentinel, field: &str) -> String {
    let out = s.cli(&["SENTINEL", "REPLICAS", "mymaster"]);
    let lines: Vec<&str> = out.lines().collect();
    lines.iter().position(|l| *l == field).and_then(|i| lines.get(i + 1)).map(|v| v.to_string()).unwrap_or_default()
}

/// A replica whose link to its master never came up (INFO `master_link_down_since_seconds:-1`,
/// here a slow first sync) shows master-link-down-time -1000 and has its INFO asked every
/// second, not every info-period, as a replica with its link down (it read as 0, and was
/// asked every 10 s).
#[test]
fn replica_never_linked_is_polled_every_second_as_redis() {
    let master = Server::slotcore(&["--save", "", "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]);
    assert_eq!(master.cli(&["DEBUG", "POPULATE", "400"]).trim(), "OK");
    // 400 keys at 25 ms each: the replica's first sync lasts about 10 s.
    let mp = master.port.to_string();
    let replica = Server::slotcore(&[
        "--save",
        "",
        "--key-load-delay",
        "25000",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    assert_eq!(replica.cli(&["REPLICAOF", "127.0.0.1", &mp]).trim(), "OK");
    common::until("the replica syncing", || {
        replica.cli(&["INFO", "replication"]).contains("master_sync_in_progress:1")
    });
    let sentinels = [Sentinel::start(false, master.port), Sentinel::start(true, master.port)];
    for s in &sentinels {
        // Its master's port is known once its first INFO reply came.
        s.wait_until("the replica's first INFO", || replica_field(s, "master-port") == mp);
    }
    // For 4 s of the sync: the link-down time each Sentinel shows and its INFO's age.
    let start = Instant::now();
    let mut down_times = [Vec::new(), Vec::new()];
    let mut oldest_info = [0u64, 0u64];
    while start.elapsed() < Duration::from_secs(4) {
        for (i, s) in sentinels.iter().enumerate() {
            let d = replica_field(s, "master-link-down-time");
            if !down_times[i].contains(&d) {
                down_times[i].push(d);
            }
            oldest_info[i] = oldest_info[i].max(replica_field(s, "info-refresh").parse().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(replica.cli(&["INFO", "replication"]).contains("master_link_down_since_seconds:-1"));
    assert_eq!(down_times[0], down_times[1], "master-link-down-time seen by [slotcore, redis-server] Sentinel");
    assert_eq!(down_times[1], vec!["-1000".to_string()]);
    for (i, age) in oldest_info.iter().enumerate() {
        assert!(*age < 2500, "Sentinel {i} (1: redis-server): the replica's INFO was {age} ms old");
    }
}
