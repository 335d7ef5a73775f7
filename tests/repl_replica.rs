//! The replica side against a real redis-server 7.0 master (and the same checks against a
//! two-shard slotcore master): full sync (diskless `$EOF:` and
//! disk `$len` forms) of 100k keys of every type into 1 and 2 shards, the stream applied
//! afterwards (MULTI/EXEC, SELECT, FLUSHALL, the master's DEL of expired keys), partial resync
//! after a killed link (either side) and after a restart from the replica's RDB file,
//! REPLICAOF NO ONE, and the replica's refusals.

mod common;

use common::Server;
use redis::Commands;
use std::time::{Duration, Instant};

/// A free port (and its bus port) from the shared allocator.
fn port() -> u16 {
    common::free_port()
}

fn master() -> Server {
    Server::redis_on(port(), &["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"])
}

/// A slotcore master with two shards (the replica-side tests also run slotcore to slotcore).
fn slotcore_master() -> Server {
    Server::slotcore_on(port(), &["--shards", "2", "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"])
}

fn replica_of(m: &Server, extra: &[&str]) -> Server {
    let mp = m.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    Server::slotcore_on(port(), &args)
}

/// One field of INFO `section`.
fn info(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").arg(section).query(c).ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

fn stat(m: &Server, field: &str) -> u64 {
    info(&mut m.client(), "stats", field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < common::WAIT {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Waits until the master sees the replica online and acknowledging everything written so far
/// (WAIT makes the master ask for an ACK), and the replica has finished loading (a diskless
/// master may count a replica's ACK of the snapshot before it is loaded).
fn synced(m: &Server, r: &Server) {
    let mut rc = r.raw();
    wait_for("the replica loaded", || !rc.cmd(&["EXISTS", "x"]).starts_with("-LOADING"));
    // The replica's own view: its link is up and no load (async included) is running. The
    // master's WAIT alone can count a replica that has not acknowledged anything when the
    // master's offset is still 0.
    let mut r_client = r.client();
    wait_for("the replica's link up", || {
        info(&mut r_client, "replication", "master_link_status").as_deref() == Some("up")
            && info(&mut r_client, "persistence", "loading").as_deref() == Some("0")
            && info(&mut r_client, "persistence", "async_loading").as_deref() == Some("0")
    });
    let mut c = m.client();
    wait_for("the replica online", || {
        info(&mut c, "replication", "slave0").is_some_and(|s| s.contains("state=online"))
    });
    wait_for("the replica's ACK", || {
        let n: i64 = redis::cmd("WAIT").arg(1).arg(500).query(&mut c).unwrap_or(0);
        let off = info(&mut c, "replication", "master_repl_offset").unwrap_or_default();
        n == 1 && info(&mut c, "replication", "slave0").is_some_and(|s| s.contains(&format!("offset={off},")))
    });
}

fn digest(s: &Server) -> String {
    let mut c = s.client();
    c.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let start = Instant::now();
    let d = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).expect("DEBUG DIGEST");
    eprintln!("DEBUG DIGEST on port {} took {:?}", s.port, start.elapsed());
    d
}

fn same_data(m: &Server, r: &Server) {
    synced(m, r);
    let (a, b) = (digest(m), digest(r));
    assert_ne!(a, "0".repeat(40), "the master holds data");
    assert_eq!(a, b, "DEBUG DIGEST differs; replica log:\n{}", r.log_text());
}

/// 100k keys: strings (some volatile), hashes and sets and sorted sets in both encodings,
/// lists, spread over db 0 and db 2.
fn populate(m: &Server) {
    let mut c = m.client();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(50_000).arg("str").query(&mut c).unwrap();
    for chunk in 0..50 {
        let mut p = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let k = format!("k{i}");
            match i % 6 {
                0 => p.hset_multiple(&k, &[("a", i.to_string()), ("b", "x".repeat(i % 90))]),
                1 => p.rpush(&k, (0..1 + i % 40).map(|j| j.to_string()).collect::<Vec<_>>()),
                2 => p.sadd(&k, (0..if i % 500 == 2 { 600 } else { 1 + i % 20 }).collect::<Vec<_>>()),
                3 => p.sadd(&k, &[format!("m{i}"), "z".into()]),
                4 => p.zadd_multiple(
                    &k,
                    &(0..if i % 500 == 4 { 200 } else { 1 + i % 20 })
                        .map(|j| (j as f64 * 1.5, format!("e{j}")))
                        .collect::<Vec<_>>(),
                ),
                _ => p.set_ex(&k, i, 10_000 + i as u64),
            };
            if i % 10 == 0 {
                p.pexpire(&k, 5_000_000 + i as i64);
            }
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(1000).arg("db2").query(&mut c).unwrap();
}

fn full_sync_and_stream(m: Server, shards: &str, diskless: bool) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync")
        .arg(if diskless { "yes" } else { "no" })
        .query(&mut m.client())
        .unwrap();
    populate(&m);
    let r = replica_of(&m, &["--shards", shards]);
    same_data(&m, &r);
    assert!(r.log_text().contains("MASTER <-> REPLICA sync: Finished with success"), "{}", r.log_text());
    let form = if diskless { "with EOF" } else { "bytes from master" };
    assert!(r.log_text().contains(form), "payload form; log:\n{}", r.log_text());
    let mut c = m.client();
    // Writes keep flowing: a transaction across keys of every shard, other databases.
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    for i in 0..20 {
        let _: () = redis::cmd("INCRBY").arg(format!("tx{i}")).arg(i).query(&mut c).unwrap();
    }
    let _: Vec<i64> = redis::cmd("EXEC").query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(5).query(&mut c).unwrap();
    let _: () = c.set("in5", "five").unwrap();
    let mut r5 = r.raw();
    r5.cmd(&["SELECT", "5"]);
    let _: () = c.lpush("list5", &["a", "b"]).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    let _: () = redis::cmd("SWAPDB").arg(2).arg(3).query(&mut c).unwrap();
    let _: i64 = c.del("k0").unwrap();
    same_data(&m, &r);
    assert_eq!(r5.cmd(&["GET", "in5"]), "$4\r\nfive\r\n");
    let mut rc = r.client();
    let n: i64 = rc.get("tx7").unwrap();
    assert_eq!(n, 7);
    // FLUSHALL, then new data.
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let _: () = c.set("after", "flush").unwrap();
    same_data(&m, &r);
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn full_sync_one_shard_diskless() {
    full_sync_and_stream(master(), "1", true);
}

#[test]
fn full_sync_two_shards_disk() {
    full_sync_and_stream(master(), "2", false);
}

#[test]
fn slotcore_to_slotcore_full_sync_two_shards_into_three() {
    full_sync_and_stream(slotcore_master(), "3", true);
}

#[test]
fn slotcore_to_slotcore_full_sync_disk_into_one_shard() {
    full_sync_and_stream(slotcore_master(), "1", false);
}

#[test]
fn expired_keys_wait_for_the_masters_del() {
    let m = master();
    let r = replica_of(&m, &["--shards", "2"]);
    let mut c = m.client();
    // The master only expires lazily here, so the key stays until it is read there.
    let _: () = redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).query(&mut c).unwrap();
    synced(&m, &r);
    let _: () = c.set("v", "x").unwrap();
    synced(&m, &r);
    let mut rc = r.client();
    let got: redis::RedisResult<Option<String>> = rc.get("v");
    assert_eq!(got.ok().flatten().as_deref(), Some("x"), "log:\n{}", r.log_text());
    // The key's time runs from here (a loaded machine may take seconds to sync).
    let set_at = Instant::now();
    let _: () = c.pexpire("v", 2000).unwrap();
    synced(&m, &r);
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(set_at.elapsed()));
    // Logically expired: hidden from readers, but still held until the master's DEL.
    let got: Option<String> = rc.get("v").unwrap();
    assert_eq!(got, None);
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 1, "the replica deleted an expired key by itself");
    let _: Option<String> = c.get("v").unwrap();
    wait_for("the master's DEL", || redis::cmd("DBSIZE").query::<i64>(&mut rc).unwrap_or(-1) == 0);
}

#[test]
fn killed_links_resume_with_continue() {
    killed_links_resume(master());
}

#[test]
fn slotcore_to_slotcore_killed_links_resume_with_continue() {
    killed_links_resume(slotcore_master());
}

fn killed_links_resume(m: Server) {
    let r = replica_of(&m, &["--shards", "2"]);
    let mut c = m.client();
    let _: () = c.set("a", 1).unwrap();
    same_data(&m, &r);
    let full = stat(&m, "sync_full");
    let partial = stat(&m, "sync_partial_ok");
    // The replica drops its master client.
    let n: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut r.client()).unwrap();
    assert_eq!(n, 1);
    for i in 0..100 {
        let _: () = c.set(format!("during{i}"), i).unwrap();
    }
    wait_for("a partial resync", || stat(&m, "sync_partial_ok") == partial + 1);
    same_data(&m, &r);
    // The master drops the replica.
    let n: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: () = c.set("b", 2).unwrap();
    wait_for("a second partial resync", || stat(&m, "sync_partial_ok") == partial + 2);
    same_data(&m, &r);
    assert_eq!(stat(&m, "sync_full"), full, "no second full sync");
    assert!(r.log_text().contains("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."));
}

#[test]
fn restarted_replica_resumes_partially_from_its_rdb() {
    restarted_replica_resumes(master());
}

#[test]
fn slotcore_to_slotcore_restarted_replica_resumes_partially() {
    restarted_replica_resumes(slotcore_master());
}

fn restarted_replica_resumes(m: Server) {
    let mut r = replica_of(&m, &["--shards", "2"]);
    let mut c = m.client();
    for i in 0..1000 {
        let _: () = c.set(format!("r{i}"), i).unwrap();
    }
    same_data(&m, &r);
    let _: () = redis::cmd("SAVE").query(&mut r.client()).unwrap();
    let full = stat(&m, "sync_full");
    let partial = stat(&m, "sync_partial_ok");
    r.kill9();
    let _: () = c.set("while-down", 1).unwrap();
    r.restart();
    wait_for("a partial resync after the restart", || stat(&m, "sync_partial_ok") == partial + 1);
    same_data(&m, &r);
    assert_eq!(stat(&m, "sync_full"), full, "the restarted replica did a full sync");
}

#[test]
fn replica_refusals_and_replicaof_no_one() {
    let m = master();
    let r = replica_of(&m, &["--shards", "2"]);
    let mut rc = r.raw();
    synced(&m, &r);
    assert_eq!(rc.cmd(&["SET", "x", "1"]), "-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(rc.cmd(&["GET", "x"]), "$-1\r\n");
    // Inside MULTI the refusal aborts the transaction, as Redis.
    assert_eq!(rc.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(rc.cmd(&["INCR", "x"]), "-READONLY You can't write against a read only replica.\r\n");
    assert!(rc.cmd(&["EXEC"]).starts_with("-EXECABORT"));
    let mp = m.port.to_string();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &mp]), "+OK Already connected to specified master\r\n");
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", "70000"]), "-ERR Invalid master port\r\n");
    let mut c = m.client();
    let _: () = c.set("kept", "yes").unwrap();
    synced(&m, &r);
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    assert_eq!(rc.cmd(&["SET", "x", "1"]), "+OK\r\n");
    assert_eq!(rc.cmd(&["GET", "kept"]), "$3\r\nyes\r\n");
    // The master's writes no longer arrive.
    let _: () = c.set("later", "no").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rc.cmd(&["EXISTS", "later"]), ":0\r\n");
    assert!(r.log_text().contains("MASTER MODE enabled (user request from 'id="));
    assert!(r.log_text().contains("Setting secondary replication ID to "));
    // Following again resumes from the shifted history.
    assert_eq!(rc.cmd(&["SLAVEOF", "127.0.0.1", &mp]), "+OK\r\n");
    wait_for("the replica back", || info(&mut c, "replication", "slave0").is_some_and(|s| s.contains("online")));
    same_data(&m, &r);
}

#[test]
fn replicaof_is_refused_in_cluster_mode() {
    let r = Server::slotcore_on(port(), &["--cluster-enabled", "yes"]);
    let mut rc = r.raw();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", "1"]), "-ERR REPLICAOF not allowed in cluster mode.\r\n");
    assert_eq!(rc.cmd(&["SLAVEOF", "NO", "ONE"]), "-ERR REPLICAOF not allowed in cluster mode.\r\n");
}

#[test]
fn masterauth_and_announced_address_are_used() {
    let m = Server::redis_on(port(), &["--requirepass", "secret", "--repl-diskless-sync-delay", "0"]);
    let mp = m.port.to_string();
    let r = Server::slotcore_on(
        port(),
        &["--replicaof", "127.0.0.1", &mp, "--masterauth", "secret", "--replica-announce-port", "4242"],
    );
    let out = || Server::cli_port(&mp, &["-a", "secret", "--no-auth-warning", "INFO", "replication"]);
    let start = Instant::now();
    while start.elapsed() < common::WAIT && !out().contains("port=4242,state=online") {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(out().contains("slave0:ip=127.0.0.1,port=4242,state=online"), "{}", out());
    let _ = Server::cli_port(&mp, &["-a", "secret", "--no-auth-warning", "SET", "pw", "ok"]);
    wait_for("the write", || r.cli(&["GET", "pw"]).trim() == "ok");
}

/// ROLE and INFO replication of a slotcore replica and of a redis-server replica of the same
/// master, field by field in order: while streaming, and after REPLICAOF NO ONE.
#[test]
fn role_and_info_match_a_redis_replica() {
    let m = master();
    let mp = m.port.to_string();
    let ours = replica_of(&m, &["--shards", "2"]);
    let theirs = Server::redis_on(port(), &["--replicaof", "127.0.0.1", &mp]);
    let mut c = m.client();
    let _: () = c.set("a", 1).unwrap();
    wait_for("both replicas online", || {
        info(&mut c, "replication", "connected_slaves").as_deref() == Some("2")
            && redis::cmd("WAIT").arg(2).arg(500).query::<i64>(&mut c).unwrap_or(0) == 2
    });
    let fields = |s: &Server| -> Vec<(String, String)> {
        let text: String = redis::cmd("INFO").arg("replication").query(&mut s.client()).unwrap();
        text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
    };
    // Values that depend on timing are compared by name only: the backlog starts at each
    // replica's own sync (`replica_backlog_follows_the_stream_as_redis` compares it).
    let skip = ["master_last_io_seconds_ago", "repl_backlog_first_byte_offset", "repl_backlog_histlen"];
    let compare = |when: &str| {
        let (a, b) = (fields(&ours), fields(&theirs));
        let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "{when}: INFO replication fields");
        for ((k, va), (_, vb)) in a.iter().zip(&b) {
            if !skip.contains(&k.as_str()) {
                assert_eq!(va, vb, "{when}: INFO replication {k}");
            }
        }
    };
    wait_for("equal offsets", || {
        let off = |s: &Server| info(&mut s.client(), "replication", "slave_repl_offset");
        off(&ours) == off(&theirs)
    });
    compare("streaming");
    let role = |s: &Server| s.raw().cmd(&["ROLE"]);
    assert_eq!(role(&ours), role(&theirs));
    for s in [&ours, &theirs] {
        let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut s.client()).unwrap();
    }
    let (a, b) = (fields(&ours), fields(&theirs));
    let get = |v: &[(String, String)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get(&a, "role").as_deref(), Some("master"));
    for k in ["master_replid2", "master_repl_offset", "second_repl_offset"] {
        assert_eq!(get(&a, k), get(&b, k), "after REPLICAOF NO ONE: {k}");
    }
}

/// The backlog fields of INFO replication (`repl_backlog_*`, `master_repl_offset`) of a
/// replica and of its master, as this node's INFO shows them.
fn backlog_fields(s: &Server) -> Vec<(String, String)> {
    let text: String = redis::cmd("INFO").arg("replication").query(&mut s.client()).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.starts_with("repl_backlog_") || *k == "master_repl_offset")
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// A slotcore replica keeps a backlog of its master's stream whether or not it serves
/// sub-replicas, as a redis-server replica of the same master does (created at the sync,
/// `histlen` growing with the applied stream).
#[test]
fn replica_backlog_follows_the_stream_as_redis() {
    // No PING moves the master's offset between the two replicas' syncs.
    let m = Server::redis_on(port(), &["--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "3600"]);
    let mp = m.port.to_string();
    let theirs = Server::redis_on(port(), &["--replicaof", "127.0.0.1", &mp]);
    let ours = replica_of(&m, &["--shards", "2"]);
    let mut c = m.client();
    // Without WAIT: its GETACK would move the master's offset.
    wait_for("both replicas online", || {
        let mut online = |n: &str| info(&mut c, "replication", n).is_some_and(|s| s.contains("state=online"));
        let up = |s: &Server| info(&mut s.client(), "replication", "master_link_status").as_deref() == Some("up");
        online("slave0") && online("slave1") && up(&ours) && up(&theirs)
    });
    assert_eq!(info(&mut c, "replication", "master_repl_offset").as_deref(), Some("0"), "nothing before the syncs");
    for i in 0..200 {
        let _: () = c.set(format!("k{i}"), "v".repeat(i)).unwrap();
    }
    let off = info(&mut c, "replication", "master_repl_offset").unwrap_or_default();
    wait_for("both replicas at the master's offset", || {
        [&ours, &theirs].iter().all(|s| info(&mut s.client(), "replication", "master_repl_offset") == Some(off.clone()))
    });
    let (a, b) = (backlog_fields(&ours), backlog_fields(&theirs));
    assert_eq!(a, b, "the backlog of a slotcore replica and of a redis-server replica");
    let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("repl_backlog_active"), "1");
    assert_eq!(get("repl_backlog_first_byte_offset"), "1");
    assert_eq!(get("repl_backlog_histlen"), off);
}

/// [`promoted_replica_continues_its_siblings`] under a redis-server master, then a slotcore one.
#[test]
fn promoted_replica_continues_its_siblings_after_a_failover() {
    promoted_replica_continues_its_siblings(master());
    promoted_replica_continues_its_siblings(slotcore_master());
}

/// A failover among slotcore replicas: R1 is promoted (REPLICAOF NO ONE) and its sibling R2,
/// which had fallen behind it, follows it (REPLICAOF at run time) and continues with a partial
/// resync from R1's backlog of the old master's stream (`+CONTINUE`, no full sync), ending
/// with R1's data; then R1's own writes reach R2.
fn promoted_replica_continues_its_siblings(m: Server) {
    let r1 = replica_of(&m, &["--shards", "2"]);
    let r2 = Server::slotcore_on(port(), &["--enable-debug-command", "yes"]);
    let mp = m.port.to_string();
    assert_eq!(r2.cli(&["REPLICAOF", "127.0.0.1", &mp]).trim(), "OK");
    let mut c = m.client();
    wait_for("both replicas online", || {
        info(&mut c, "replication", "connected_slaves").as_deref() == Some("2")
            && redis::cmd("WAIT").arg(2).arg(500).query::<i64>(&mut c).unwrap_or(0) == 2
    });
    for i in 0..300 {
        let _: () = c.set(format!("before{i}"), i).unwrap();
    }
    let offset = |s: &Server| info(&mut s.client(), "replication", "master_repl_offset").unwrap_or_default();
    wait_for("R2 at the master's offset", || offset(&r2) == offset(&m));
    // R2 loses its master (it keeps M's history to continue from); R1 goes on.
    let nobody = common::free_port().to_string();
    assert_eq!(r2.cli(&["REPLICAOF", "127.0.0.1", &nobody]).trim(), "OK");
    for i in 0..300 {
        let _: () = c.set(format!("missed{i}"), i).unwrap();
    }
    let _: () = c.del("before7").unwrap();
    same_data(&m, &r1);
    let (off1, off2) = (offset(&r1), offset(&r2));
    assert!(off2.parse::<u64>().unwrap_or(0) < off1.parse::<u64>().unwrap_or(0), "R2 behind R1: {off2} {off1}");
    // The failover.
    drop(m);
    let (full, partial) = (stat(&r1, "sync_full"), stat(&r1, "sync_partial_ok"));
    assert_eq!(r1.cli(&["REPLICAOF", "NO", "ONE"]).trim(), "OK");
    let r1p = r1.port.to_string();
    assert_eq!(r2.cli(&["REPLICAOF", "127.0.0.1", &r1p]).trim(), "OK");
    wait_for("R2 online at R1", || {
        info(&mut r1.client(), "replication", "slave0").is_some_and(|s| s.contains("state=online"))
    });
    same_data(&r1, &r2);
    assert_eq!(stat(&r1, "sync_full"), full, "R2 needed a full sync; R1 log:\n{}", r1.log_text());
    assert_eq!(stat(&r1, "sync_partial_ok"), partial + 1, "R2 continued from R1's backlog");
    assert!(r2.log_text().contains("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."));
    assert_eq!(r2.cli(&["EXISTS", "missed299", "before7"]).trim(), "1");
    // The chained case: R1's own writes reach R2.
    let mut c1 = r1.client();
    for i in 0..50 {
        let _: () = c1.set(format!("after{i}"), i).unwrap();
    }
    same_data(&r1, &r2);
    assert_eq!(r2.cli(&["GET", "after49"]).trim(), "49");
    assert_eq!(stat(&r1, "sync_full"), full, "still no full sync");
}

/// A plain SYNC (no PSYNC, no `capa eof`: a disk-target snapshot) on a replica gets the
/// replica's RDB and then its master's stream, as a chained sub-replica does.
#[test]
fn sync_on_a_replica_gets_its_rdb_then_the_masters_stream() {
    use std::io::{Read, Write};
    let m = slotcore_master();
    let r = replica_of(&m, &["--repl-diskless-sync-delay", "0"]);
    synced(&m, &r);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", r.port)).expect("connect");
    s.set_read_timeout(Some(common::WAIT)).ok();
    s.write_all(b"SYNC\r\n").expect("write");
    // Newlines while the snapshot is prepared, then `$<len>\r\n` and the RDB's bytes.
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") || !got.contains(&b'$') {
        let n = s.read(&mut byte).unwrap_or_else(|e| {
            panic!(
                "read the RDB length: {e}; got {:?}\nreplica:\n{}\nmaster:\n{}\nreplica log:\n{}\nmaster log:\n{}",
                String::from_utf8_lossy(&got),
                r.cli(&["info", "replication"]),
                m.cli(&["info", "replication"]),
                r.log_text(),
                m.log_text()
            )
        });
        assert_eq!(n, 1, "closed early: {got:?}");
        if got.is_empty() && byte[0] == b'\n' {
            continue;
        }
        got.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&got[1..got.len() - 2]).ok().and_then(|t| t.parse().ok()).expect("length");
    let mut rdb = vec![0u8; len];
    s.read_exact(&mut rdb).expect("the RDB");
    assert!(rdb.starts_with(b"REDIS0010"), "{:?}", &rdb[..9.min(rdb.len())]);
    m.cli(&["set", "key", "value"]);
    m.cli(&["flushall"]);
    let want = b"*1\r\n$8\r\nflushall\r\n";
    let mut stream = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stream.windows(want.len()).any(|w| w == want) {
        let n = s.read(&mut chunk).expect("the stream");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&stream));
        stream.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&stream);
    assert!(text.contains("*3\r\n$3\r\nset\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), "{text}");
}

/// A client blocked on a master that turns replica is answered `-UNBLOCKED` (as redis-server
/// answers it), so the master's stream never serves it and both sides keep the same data.
#[test]
fn clients_blocked_on_a_master_that_turns_replica_are_unblocked_as_redis() {
    let answer = |slotcore: bool| {
        let m = slotcore_master();
        let b = if slotcore {
            Server::slotcore_on(port(), &["--enable-debug-command", "yes"])
        } else {
            Server::redis_on(port(), &["--enable-debug-command", "yes"])
        };
        let mut blocked = b.raw();
        blocked.send_cmd(&[b"BLPOP", b"foo", b"0"]);
        wait_for("the client blocked", || info(&mut b.client(), "clients", "blocked_clients").as_deref() == Some("1"));
        assert_eq!(b.cli(&["replicaof", "127.0.0.1", &m.port.to_string()]).trim(), "OK");
        let reply = blocked.reply();
        synced(&m, &b);
        m.cli(&["rpush", "foo", "a", "b", "c"]);
        wait_for("the same data", || digest(&m) == digest(&b));
        assert_eq!(b.cli(&["lrange", "foo", "0", "-1"]), "a\nb\nc\n");
        reply
    };
    let want = answer(false);
    assert!(want.starts_with("-UNBLOCKED"), "{want}");
    assert_eq!(answer(true), want);
}

/// A replica running a script past busy-reply-threshold keeps the master's stream until the
/// script ends, then applies it (Redis does not process its master's input meanwhile): no
/// command of the stream is refused with -BUSY, and both sides end with the same data.
#[test]
fn a_busy_script_on_the_replica_holds_the_stream_until_it_ends() {
    let m = slotcore_master();
    let r = replica_of(&m, &["--busy-reply-threshold", "100"]);
    synced(&m, &r);
    let mut writer = m.raw();
    let mut script = r.raw();
    // A script that spins for about a second, well past the 100 ms threshold.
    script.send_cmd(&[
        b"EVAL",
        b"local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] local n = 0 \
          while true do n = n + 1 if n % 100000 == 0 then t = redis.call('TIME') \
          if t[1] * 1000000 + t[2] - s > 1000000 then return n end end end",
        b"0",
    ]);
    wait_for("the script busy", || r.raw().cmd(&["GET", "x"]).starts_with("-BUSY"));
    for i in 0..200 {
        assert_eq!(writer.cmd(&["SET", &format!("busy:{i}"), &i.to_string()]), "+OK\r\n");
    }
    assert!(script.reply().starts_with(':'), "the script ends by itself");
    same_data(&m, &r);
    let log = r.log_text();
    assert!(!log.contains("CRITICAL"), "the replica refused part of the stream:\n{log}");
    assert_eq!(stat(&r, "unexpected_error_replies"), 0);
}

/// DEBUG SLEEP stops the whole master, as it stops redis-server: a replica waiting in the
/// handshake (the master delays its diskless sync) hears no keepalive newline and gives up
/// after repl-timeout with Redis's log line.
#[test]
fn debug_sleep_silences_the_master_and_the_replica_times_out_its_handshake() {
    for slotcore in [false, true] {
        let args =
            ["--enable-debug-command", "yes", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "1000"];
        let m = if slotcore { Server::slotcore_on(port(), &args) } else { Server::redis_on(port(), &args) };
        let r = replica_of(&m, &["--repl-timeout", "2"]);
        wait_for("the handshake", || r.cli(&["role"]).contains("handshake"));
        // Past two keepalive periods: the newlines keep the link alive while the master runs.
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!r.log_text().contains("Timeout connecting to the MASTER"), "{}", r.log_text());
        let mut mc = m.raw();
        mc.send_cmd(&[b"DEBUG", b"SLEEP", b"4"]);
        wait_for("the replica's handshake timeout", || r.log_text().contains("Timeout connecting to the MASTER..."));
        assert_eq!(mc.reply(), "+OK\r\n", "slotcore master: {slotcore}");
    }
}

/// A one-shard slotcore master syncing diskless at once, holding 400 strings of 100 kB.
fn large_values_master(extra: &[&str]) -> Server {
    let mut args = vec![
        "--shards",
        "1",
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    let m = Server::slotcore_on(port(), &args);
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(400).arg("big").arg(100_000).query(&mut m.client()).unwrap();
    m
}

/// A diskless full sync of large values (400 strings of 100 kB, one shard on the master) ends:
/// it used to stop for good partway through the transfer.
#[test]
fn diskless_full_sync_of_large_values_completes() {
    let m = large_values_master(&[]);
    let r = replica_of(&m, &["--repl-diskless-load", "swapdb"]);
    same_data(&m, &r);
}

/// Two replicas that load slowly (`key-load-delay`) full-sync one after the other from a
/// one-shard master, diskless. The snapshot jobs run in shard 0's snapshot task queue (a
/// `Latency::Matters` queue); the second sync used to stop for good partway in most runs on a
/// 2-vCPU VM: the job slept on a timer just as that queue's preemption timer ran out, and the
/// executor went to sleep with no timer armed (vendor/glommio/PATCHES.md).
#[test]
fn diskless_full_syncs_to_two_slow_loading_replicas_complete() {
    let m = large_values_master(&["--rdbcompression", "no"]);
    let want = digest(&m);
    let slow = ["--repl-diskless-load", "swapdb", "--key-load-delay", "100"];
    let replicas = [replica_of(&m, &slow), replica_of(&m, &slow)];
    for r in &replicas {
        let mut c = r.client();
        wait_for("the replica's full sync", || {
            redis::cmd("DEBUG").arg("DIGEST").query::<String>(&mut c).is_ok_and(|d| d == want)
        });
    }
}

/// Redis keeps the cached master until a new master's data starts to replace the replica's: a
/// full sync with another master that dies before its file arrives leaves it, and going back
/// to the first master continues with a partial resync.
#[test]
fn a_full_sync_that_never_arrives_keeps_the_cached_master() {
    let m1 = master();
    let mut c1 = m1.client();
    let _: () = c1.set("a", "b").expect("SET");
    let r = replica_of(&m1, &[]);
    synced(&m1, &r);
    // The second master takes 10 s to produce its file.
    let m2 = master();
    let mut c2 = m2.client();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(10).query(&mut c2).expect("POPULATE");
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("rdb-key-save-delay").arg(1_000_000).query(&mut c2).expect("CONFIG");
    let mut rc = r.client();
    let replid = info(&mut rc, "replication", "master_replid");
    let (full, partial) = (stat(&m1, "sync_full"), stat(&m1, "sync_partial_ok"));
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(m2.port).query(&mut rc).expect("REPLICAOF m2");
    wait_for("the second master's full sync", || {
        info(&mut c2, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1")
    });
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c2);
    assert_eq!(info(&mut rc, "replication", "master_replid"), replid, "the history is unchanged");
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(m1.port).query(&mut rc).expect("REPLICAOF m1");
    synced(&m1, &r);
    assert_eq!(stat(&m1, "sync_full"), full, "no second full sync");
    assert_eq!(stat(&m1, "sync_partial_ok"), partial + 1, "a partial resync");
    let v: Option<String> = rc.get("a").expect("GET");
    assert_eq!(v.as_deref(), Some("b"));
}

#[test]
fn client_kill_of_the_master_link_under_load_loses_nothing() {
    // Both masters: the replica's CLIENT KILL TYPE master lands between commands of a batch
    // it applies; the partial resync after it must start right after what was applied.
    for m in [master(), slotcore_master()] {
        let r = replica_of(&m, &[]);
        synced(&m, &r);
        let mut bench = std::process::Command::new("redis-benchmark")
            .args(["-p", &m.port.to_string(), "-c", "50", "-n", "100000000", "-r", "100", "incr", "c:__rand_int__"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-benchmark");
        let mut rc = r.raw();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(rc.cmd(&["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
            wait_for("the link back up", || {
                info(&mut r.client(), "replication", "master_link_status").as_deref() == Some("up")
            });
        }
        let _ = bench.kill();
        let _ = bench.wait();
        assert_eq!(stat(&m, "sync_full"), 1, "every reconnection was a partial resync");
        same_data(&m, &r);
    }
}

/// A 32 MB SET in the stream reaches the replica within a fraction of a second (0.1 s from
/// redis-server to its replica here, 0.25 s to ours). The replica used to reallocate and copy
/// the whole partial argument on each 16 KB read: 30 s for one such SET.
///
/// And the replica then holds about what its data takes: every command here is slow enough
/// for SLOWLOG, whose entries kept the short arguments ("SET", the key) as slices of the read
/// buffer they came in, and so kept each whole 40 MB buffer (two such SETs: 129 MB of
/// `used_memory` for 64 MB of values; the same happened by chance with the default threshold).
#[test]
fn a_32_mb_write_reaches_the_replica_at_once() {
    for m in [master(), slotcore_master()] {
        let r = replica_of(&m, &["--slowlog-log-slower-than", "0"]);
        synced(&m, &r);
        let value = vec![b'x'; 32 << 20];
        for key in ["big", "big2"] {
            let start = Instant::now();
            let mut mc = m.client();
            let _: () = mc.set(key, &value[..]).unwrap();
            let off = info(&mut mc, "replication", "master_repl_offset").unwrap();
            let mut rc = r.client();
            wait_for("the replica's offset", || {
                info(&mut rc, "replication", "slave_repl_offset").as_deref() == Some(&off)
            });
            let took = start.elapsed();
            assert!(took < Duration::from_secs(3), "the replica took {took:?} to apply a 32 MB SET");
        }
        let mut rc = r.client();
        let used: u64 = info(&mut rc, "memory", "used_memory").and_then(|v| v.parse().ok()).unwrap();
        assert!(used < 80 << 20, "the replica holds {used} bytes for 64 MB of values");
        let len: usize = r.client().strlen("big").unwrap();
        assert_eq!(len, 32 << 20);
    }
}

/// One command of the replication handshake, read from a replica (RESP array of bulks).
fn read_command(r: &mut std::io::BufReader<std::net::TcpStream>) -> Vec<String> {
    use std::io::BufRead;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
    (0..n)
        .map(|_| {
            let mut len = String::new();
            r.read_line(&mut len).unwrap();
            let len: usize = len.trim_start_matches('$').trim().parse().unwrap();
            let mut arg = vec![0u8; len + 2];
            std::io::Read::read_exact(r, &mut arg).unwrap();
            String::from_utf8_lossy(&arg[..len]).into_owned()
        })
        .collect()
}

/// Plays a master's side of the handshake until the replica's PSYNC, answered with `reply`
/// (and an empty RDB after FULLRESYNC); returns the PSYNC's offset argument.
fn master_handshake(l: &std::net::TcpListener, reply: &str) -> (std::net::TcpStream, String) {
    use std::io::Write;
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    loop {
        let cmd = read_command(&mut r);
        match cmd.first().map(|c| c.to_ascii_uppercase()).as_deref() {
            Some("PING") => s.write_all(b"+PONG\r\n").unwrap(),
            Some("PSYNC") => {
                s.write_all(reply.as_bytes()).unwrap();
                if reply.starts_with("+FULLRESYNC") {
                    // An empty RDB (checksum 0: not checked).
                    let rdb = b"REDIS0009\xff\0\0\0\0\0\0\0\0";
                    s.write_all(format!("${}\r\n", rdb.len()).as_bytes()).unwrap();
                    s.write_all(rdb).unwrap();
                }
                return (s, cmd.get(2).cloned().unwrap_or_default());
            }
            Some(_) => s.write_all(b"+OK\r\n").unwrap(),
            None => panic!("the replica closed the link during the handshake"),
        }
    }
}

/// A link lost inside a MULTI of the stream resumes at the MULTI, as Redis's replica does (its
/// offset moves past a transaction only at EXEC): the new link's client has no transaction
/// open, and a PSYNC from inside it answered the EXEC with "EXEC without MULTI" (a replica
/// with `propagation-error-behavior panic` stopped; Redis's replication-buffer and replication
/// units).
#[test]
fn a_link_lost_inside_a_transaction_resumes_at_its_multi() {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mp = l.local_addr().unwrap().port().to_string();
    let r = Server::slotcore_on(port(), &["--replicaof", "127.0.0.1", &mp, "--propagation-error-behavior", "panic"]);
    let id = "a".repeat(40);
    let (mut s, _) = master_handshake(&l, &format!("+FULLRESYNC {id} 0\r\n"));
    let set = b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n1\r\n";
    let multi = b"*1\r\n$5\r\nMULTI\r\n";
    let set_a = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
    s.write_all(set).unwrap();
    s.write_all(multi).unwrap();
    s.write_all(set_a).unwrap();
    let mut rc = r.client();
    // The SET before the transaction is applied (so is the queued one, with no EXEC yet).
    wait_for("the SET before the MULTI", || rc.get::<_, Option<String>>("b").ok().flatten().is_some());
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
    let (mut s, offset) = master_handshake(&l, "+CONTINUE\r\n");
    assert_eq!(offset, (1 + set.len()).to_string(), "the PSYNC resumes at the MULTI");
    s.write_all(multi).unwrap();
    s.write_all(set_a).unwrap();
    s.write_all(b"*1\r\n$4\r\nEXEC\r\n").unwrap();
    wait_for("the transaction applied", || rc.get::<_, Option<String>>("a").ok().flatten().as_deref() == Some("1"));
    let off = (set.len() + multi.len() + set_a.len() + 14).to_string();
    wait_for("the replica's offset past the EXEC", || {
        info(&mut rc, "replication", "slave_repl_offset").as_deref() == Some(off.as_str())
    });
}
