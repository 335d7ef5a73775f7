//! A master restarted from its RDB file keeps its replication history, as Redis 7.0 does: the
//! file records `repl-id`/`repl-offset`, the restarted master takes the saved id as its second
//! id under a new one, keeps a backlog from the saved offset (with the DELs of the keys the
//! load dropped as expired), and its replicas (a real redis-server and a slotcore one)
//! continue with a partial resync and end with the same data.

mod common;

use common::{Server, WAIT};
use std::time::{Duration, Instant};

fn cmd<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn info(s: &Server, section: &str, field: &str) -> String {
    let text: String = cmd(&mut s.client(), &["INFO", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string())).unwrap_or_default()
}

fn num(s: &Server, section: &str, field: &str) -> i64 {
    info(s, section, field).parse().unwrap_or(-2)
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 2 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Every replica's link is up and its offset is the master's.
fn in_sync(m: &Server, replicas: &[&Server]) {
    until("the replicas at the master's offset", || {
        let off = num(m, "replication", "master_repl_offset");
        replicas.iter().all(|r| {
            info(r, "replication", "master_link_status") == "up" && num(r, "replication", "slave_repl_offset") == off
        })
    });
}

fn digest(s: &Server) -> String {
    cmd(&mut s.client(), &["DEBUG", "DIGEST"])
}

#[test]
fn restarted_master_continues_its_history_with_partial_resyncs() {
    let mut m = Server::slotcore_on(
        common::free_port(),
        &["--shards", "2", "--save", "3600 1", "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"],
    );
    let mp = m.port.to_string();
    let redis_replica = Server::redis_on(
        common::free_port(),
        &["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes", "--repl-timeout", "3600"],
    );
    let slotcore_replica = Server::slotcore_on(
        common::free_port(),
        &["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes", "--repl-timeout", "3600"],
    );
    let replicas = [&redis_replica, &slotcore_replica];
    let mut c = m.client();
    for db in ["0", "3"] {
        let _: () = cmd(&mut c, &["SELECT", db]);
        for i in 0..1000 {
            let _: () = cmd(&mut c, &["SET", &format!("k{i}"), &i.to_string()]);
        }
        let _: () = cmd(&mut c, &["RPUSH", "list", "a", "b", "c"]);
        let _: () = cmd(&mut c, &["HSET", "hash", "f", "v"]);
    }
    in_sync(&m, &replicas);
    assert_eq!(digest(&redis_replica), digest(&m));
    // Keys that expire before the save is loaded again: the load drops them and the restarted
    // master deletes them in its stream (the replicas still hold them).
    let _: () = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: () = cmd(&mut c, &["SELECT", "5"]);
    for i in 0..100 {
        let _: () = cmd(&mut c, &["SET", &format!("short{i}"), "v", "PX", "300"]);
    }
    in_sync(&m, &replicas);
    std::thread::sleep(Duration::from_millis(400));
    // Read just before the shutdown: the master's first replication cron second pings its
    // replicas (14 bytes of stream), as Redis's does, and may fall in the sleep.
    let old_id = info(&m, "replication", "master_replid");
    let offset = num(&m, "replication", "master_repl_offset");

    // SHUTDOWN saves (save points are set); the file records the id and offset.
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    drop(c);
    m.restart();

    assert_ne!(info(&m, "replication", "master_replid"), old_id, "a restarted master takes a new id");
    assert_eq!(info(&m, "replication", "master_replid2"), old_id);
    assert_eq!(num(&m, "replication", "second_repl_offset"), offset + 1);
    assert_eq!(num(&m, "persistence", "rdb_last_load_keys_expired"), 100);
    assert_eq!(num(&m, "replication", "repl_backlog_active"), 1);
    assert_eq!(num(&m, "replication", "repl_backlog_first_byte_offset"), offset + 1);
    let histlen = num(&m, "replication", "repl_backlog_histlen");
    // SELECT 5, then one DEL per dropped key.
    let dels: i64 = (0..100)
        .map(|i: i64| format!("*2\r\n$3\r\nDEL\r\n${}\r\nshort{i}\r\n", 5 + i.to_string().len()).len() as i64)
        .sum();
    assert_eq!(histlen, "*2\r\n$6\r\nSELECT\r\n$1\r\n5\r\n".len() as i64 + dels);
    assert_eq!(num(&m, "replication", "master_repl_offset"), offset + histlen);

    // Both replicas continue: partial resyncs only, and the same data as the master.
    until("both replicas resynchronized", || num(&m, "stats", "sync_partial_ok") == 2);
    assert_eq!(num(&m, "stats", "sync_full"), 0, "no replica needed a full sync");
    let mut c = m.client();
    let _: () = cmd(&mut c, &["SET", "after-restart", "1"]);
    // INFO's backlog fields cover the write just answered, as Redis's do.
    let first = num(&m, "replication", "repl_backlog_first_byte_offset");
    let histlen = num(&m, "replication", "repl_backlog_histlen");
    assert_eq!(first + histlen - 1, num(&m, "replication", "master_repl_offset"), "histlen follows the writes");
    in_sync(&m, &replicas);
    let d = digest(&m);
    assert_ne!(d, "0".repeat(40));
    for r in replicas {
        assert_eq!(digest(r), d, "replica on port {} differs; its log:\n{}", r.port, r.log_text());
    }
}

#[test]
fn a_master_without_replicas_saves_no_history() {
    let mut m = Server::slotcore_on(common::free_port(), &["--save", "3600 1"]);
    let mut c = m.client();
    let _: () = cmd(&mut c, &["SET", "k", "v"]);
    let _: () = cmd(&mut c, &["SAVE"]);
    let rdb = std::fs::read(m.dir.join("dump.rdb")).expect("dump.rdb");
    let has = |name: &[u8]| rdb.windows(name.len()).any(|w| w == name);
    assert!(!has(b"repl-id"), "no backlog, no replication info (as Redis)");
    let id = info(&m, "replication", "master_replid");
    m.restart();
    assert_ne!(info(&m, "replication", "master_replid"), id);
    assert_eq!(info(&m, "replication", "master_replid2"), "0".repeat(40));
    assert_eq!(num(&m, "replication", "second_repl_offset"), -1);
    assert_eq!(num(&m, "replication", "repl_backlog_active"), 0);
}

/// Waits until the node's background save is over and succeeded.
fn bgsave_done(s: &Server) {
    until("the BGSAVE to end", || num(s, "persistence", "rdb_bgsave_in_progress") == 0);
    assert_eq!(info(s, "persistence", "rdb_last_bgsave_status"), "ok");
}

/// An aux field of the node's dump.rdb as redis-check-rdb reads it.
fn rdb_aux(s: &Server, name: &str) -> Option<String> {
    let out =
        std::process::Command::new("redis-check-rdb").arg(s.dir.join("dump.rdb")).output().expect("redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tag = format!("AUX FIELD {name} = '");
    text.lines().find_map(|l| l.split_once(&tag).map(|(_, v)| v.trim_end_matches('\'').to_string()))
}

/// A replica's BGSAVE records where it is in its master's stream (Redis's
/// `rdbPopulateSaveInfo`): killed with SIGKILL and restarted from that file, it continues
/// with a partial resync and applies what it missed exactly once.
#[test]
fn a_replica_restarted_from_its_bgsave_resyncs_partially() {
    let m = Server::slotcore_on(
        common::free_port(),
        &["--shards", "2", "--enable-debug-command", "yes", "--repl-ping-replica-period", "3600"],
    );
    let mp = m.port.to_string();
    let mut r = Server::slotcore_on(
        common::free_port(),
        &["--shards", "2", "--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes", "--save", ""],
    );
    // The writes reach the replica as its master's stream (not inside the first sync's file).
    until("the replica's link", || info(&r, "replication", "master_link_status") == "up");
    let mut c = m.client();
    for i in 0..500 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), &i.to_string()]);
        let _: i64 = cmd(&mut c, &["INCR", "counter"]);
    }
    let _: () = cmd(&mut c, &["SELECT", "2"]);
    let _: i64 = cmd(&mut c, &["RPUSH", "list", "a", "b"]);
    in_sync(&m, &[&r]);
    let offset = num(&r, "replication", "slave_repl_offset");
    let _: String = cmd(&mut r.client(), &["BGSAVE"]);
    bgsave_done(&r);
    assert_eq!(rdb_aux(&r, "repl-offset"), Some(offset.to_string()), "the replica's BGSAVE records its position");
    assert_eq!(rdb_aux(&r, "repl-id"), Some(info(&m, "replication", "master_replid")));
    assert_eq!(rdb_aux(&r, "repl-stream-db").as_deref(), Some("2"));
    // Written while the replica is down: the resync brings these, once.
    r.kill9();
    let _: i64 = cmd(&mut c, &["RPUSH", "list", "c"]);
    let _: () = cmd(&mut c, &["SELECT", "0"]);
    for _ in 0..50 {
        let _: i64 = cmd(&mut c, &["INCR", "counter"]);
    }
    r.restart();
    in_sync(&m, &[&r]);
    assert_eq!(num(&m, "stats", "sync_full"), 1, "only the first sync was a full one");
    assert_eq!(num(&m, "stats", "sync_partial_ok"), 1);
    let v: i64 = cmd(&mut r.client(), &["GET", "counter"]);
    assert_eq!(v, 550);
    assert_eq!(digest(&r), digest(&m), "replica log:\n{}", r.log_text());
}

/// A master's BGSAVE records its stream position too: restarted from it (SIGKILL, nothing
/// written since), it continues the history and its replica resyncs partially.
#[test]
fn a_master_restarted_from_its_bgsave_continues_its_history() {
    let mut m = Server::slotcore_on(
        common::free_port(),
        &["--shards", "2", "--enable-debug-command", "yes", "--repl-ping-replica-period", "3600", "--save", ""],
    );
    let mp = m.port.to_string();
    let r = Server::redis_on(
        common::free_port(),
        &["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes", "--repl-timeout", "3600"],
    );
    let mut c = m.client();
    for i in 0..300 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    in_sync(&m, &[&r]);
    let _: String = cmd(&mut c, &["BGSAVE"]);
    bgsave_done(&m);
    let old_id = info(&m, "replication", "master_replid");
    let offset = num(&m, "replication", "master_repl_offset");
    assert_eq!(rdb_aux(&m, "repl-id"), Some(old_id.clone()), "a master with a backlog records its history");
    assert_eq!(rdb_aux(&m, "repl-offset"), Some(offset.to_string()));
    drop(c);
    m.restart();
    assert_eq!(info(&m, "replication", "master_replid2"), old_id);
    assert_eq!(num(&m, "replication", "second_repl_offset"), offset + 1);
    until("the replica to resync", || num(&m, "stats", "sync_partial_ok") == 1);
    assert_eq!(num(&m, "stats", "sync_full"), 0);
    let _: () = cmd(&mut m.client(), &["SET", "after", "1"]);
    in_sync(&m, &[&r]);
    assert_eq!(digest(&r), digest(&m));
}

/// A replica restarted from its RDB file keeps the keys that expired while it was down, as a
/// redis-server replica does (Redis's `iAmMaster` rule at load): its master's DELs remove them
/// (a master loading the same file drops them). Found by Redis's cluster consistency test.
#[test]
fn a_replica_restarted_from_its_save_keeps_keys_that_expired_meanwhile() {
    let m =
        Server::slotcore_on(common::free_port(), &["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]);
    let mp = m.port.to_string();
    let mut counts = Vec::new();
    for slotcore in [false, true] {
        let args = ["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes"];
        let mut r = if slotcore {
            Server::slotcore_on(common::free_port(), &args)
        } else {
            Server::redis_on(common::free_port(), &args)
        };
        let mut c = m.client();
        let _: String = cmd(&mut c, &["FLUSHALL"]);
        let _: String = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        // The keys reach the replica through the stream, before they expire.
        until("the replica's link", || info(&r, "replication", "master_link_status") == "up");
        for i in 0..20 {
            let _: () = cmd(&mut c, &["SET", &format!("v{i}"), "x", "PX", "1500"]);
            let _: () = cmd(&mut c, &["SET", &format!("p{i}"), "x"]);
        }
        in_sync(&m, &[&r]);
        let _: String = cmd(&mut r.client(), &["SAVE"]);
        r.kill9();
        // No DEL reaches the replica until it is back: the master does not expire actively.
        let _: String = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        std::thread::sleep(Duration::from_millis(1700));
        r.restart();
        let n: i64 = cmd(&mut r.client(), &["DBSIZE"]);
        // A few of the replica's crons later (hz 10) it still keeps them: the loaded keys'
        // expiries are its master's, not ones its own clients set (until 2026-12-06 slotcore's
        // cron deleted them as such, and Redis's cluster consistency test then found a master
        // with more keys than its replica).
        std::thread::sleep(Duration::from_millis(350));
        let later: i64 = cmd(&mut r.client(), &["DBSIZE"]);
        // The same for keys DEBUG RELOAD brings back.
        let _: String = cmd(&mut r.client(), &["DEBUG", "RELOAD"]);
        std::thread::sleep(Duration::from_millis(350));
        let reloaded: i64 = cmd(&mut r.client(), &["DBSIZE"]);
        counts.push((n, later, reloaded));
        // A replica's log lines carry Redis's role character `S`.
        let log = r.log_text();
        assert!(
            log.lines().any(|l| l.contains(":S ") && l.contains("MASTER <-> REPLICA sync")),
            "no replica line in the log:\n{log}"
        );
        let _: String = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        until("the master's DELs to reach the replica", || cmd::<i64>(&mut r.client(), &["DBSIZE"]) == 20);
    }
    assert_eq!(
        counts,
        vec![(40, 40, 40); 2],
        "DBSIZE right after the restart, 350 ms later, and 350 ms after a DEBUG RELOAD: redis-server replica, slotcore replica"
    );
}

/// A master's full-sync file holds the keys whose time has passed but that it still stores (its
/// active expiry off), as Redis's RDB does; the replica keeps them until the master's DELs
/// arrive. Found by Redis's cluster consistency test (a replica restarted from its AOF syncs in
/// full and must get them).
#[test]
fn a_full_sync_carries_keys_expired_but_still_stored_as_redis() {
    let mut counts = Vec::new();
    for (slotcore_master, slotcore_replica) in [(false, false), (true, false), (true, true)] {
        let margs = ["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"];
        let m = if slotcore_master {
            Server::slotcore_on(common::free_port(), &margs)
        } else {
            Server::redis_on(common::free_port(), &margs)
        };
        let mut c = m.client();
        let _: String = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for i in 0..20 {
            let _: () = cmd(&mut c, &["SET", &format!("v{i}"), "x", "PX", "100"]);
            let _: () = cmd(&mut c, &["SET", &format!("p{i}"), "x"]);
        }
        std::thread::sleep(Duration::from_millis(300));
        let mp = m.port.to_string();
        let args = ["--replicaof", "127.0.0.1", &mp];
        let r = if slotcore_replica {
            Server::slotcore_on(common::free_port(), &args)
        } else {
            Server::redis_on(common::free_port(), &args)
        };
        in_sync(&m, &[&r]);
        let n: i64 = cmd(&mut r.client(), &["DBSIZE"]);
        let master_n: i64 = cmd(&mut c, &["DBSIZE"]);
        counts.push((master_n, n));
        let _: String = cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        until("the master's DELs to reach the replica", || cmd::<i64>(&mut r.client(), &["DBSIZE"]) == 20);
    }
    assert_eq!(
        counts,
        vec![(40, 40); 3],
        "(master, replica) DBSIZE after the sync: redis-server pair, slotcore master with a redis-server replica, slotcore pair"
    );
}
