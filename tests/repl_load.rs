//! How a replica loads a full sync, side by side with a redis-server replica of the same
//! redis-server master: `repl-diskless-load disabled` keeps the master's RDB as the replica's
//! `dbfilename` (and `rdb-del-sync-files yes` removes it without persistence), `on-empty-db`
//! loads from the socket only into an empty replica, `swapdb` with a full sync of the same
//! history serves the old data during the load (`async_loading:1`, `key-load-delay` slowing
//! it) and swaps at the end, `replica-lazy-flush` frees the old data in the background.

mod common;

use common::cluster::wait_for;
use common::Server;
use std::path::Path;
use std::time::Duration;

fn master() -> Server {
    Server::redis(&["--enable-debug-command", "yes", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"])
}

fn replica(slotcore: bool, extra: &[&str]) -> Server {
    let mut args = vec!["--enable-debug-command", "yes", "--save", ""];
    args.extend_from_slice(extra);
    if slotcore {
        Server::slotcore(&args)
    } else {
        Server::redis(&args)
    }
}

fn field(s: &Server, section: &str, name: &str) -> String {
    let text = s.cli(&["info", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_string()
}

fn follow(r: &Server, m: &Server) {
    assert_eq!(r.cli(&["replicaof", "127.0.0.1", &m.port.to_string()]).trim(), "OK");
    wait_for(common::WAIT, "the link up", || field(r, "replication", "master_link_status") == "up");
}

fn digest(s: &Server) -> String {
    s.cli(&["debug", "digest"]).trim().to_string()
}

/// Forces a full sync of the same history: the replica's link is killed while the backlog is
/// overwritten (in one MULTI on the master, as Redis's own test does).
fn force_full_sync_same_history(m: &Server) {
    let mut c = m.raw();
    c.cmd(&["MULTI"]);
    c.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
    c.cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"]);
    let big = "A".repeat(16384);
    for i in 0..10 {
        c.cmd(&["SET", &format!("{i} string_{i}"), &big]);
    }
    let r = c.cmd(&["EXEC"]);
    assert!(r.starts_with('*'), "{r}");
}

/// (file exists after the sync, log says "to disk") for one replica kind and settings.
fn sync_file_kept(slotcore: bool, extra: &[&str]) -> (bool, bool) {
    let m = master();
    m.cli(&["debug", "populate", "1000", "k", "10"]);
    let r = replica(slotcore, extra);
    follow(&r, &m);
    wait_for(common::WAIT, "the same data", || digest(&r) == digest(&m));
    let file = r.dir.join("dump.rdb");
    if file.exists() {
        let out = std::process::Command::new("redis-check-rdb").arg(&file).output().expect("redis-check-rdb");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("RDB looks OK"), "{text}");
    }
    let log = r.log_text();
    (file.exists(), log.lines().any(|l| l.contains("MASTER <-> REPLICA sync: receiving") && l.ends_with("to disk")))
}

#[test]
fn disk_load_keeps_the_masters_rdb_as_redis() {
    for extra in [&["--repl-diskless-load", "disabled"][..], &["--rdb-del-sync-files", "yes"][..]] {
        let want = sync_file_kept(false, extra);
        assert_eq!(sync_file_kept(true, extra), want, "{extra:?}");
    }
    // The default keeps the file; rdb-del-sync-files removes it (no save points, no AOF).
    assert_eq!(sync_file_kept(true, &[]), (true, true));
    assert_eq!(sync_file_kept(true, &["--rdb-del-sync-files", "yes"]), (false, true));
}

#[test]
fn on_empty_db_loads_from_the_socket_only_when_empty() {
    for slotcore in [false, true] {
        let m = master();
        m.cli(&["debug", "populate", "1000", "k", "10"]);
        let r = replica(slotcore, &["--repl-diskless-load", "on-empty-db", "--replica-read-only", "no"]);
        follow(&r, &m);
        assert!(!Path::new(&r.dir.join("dump.rdb")).exists(), "an empty replica loads from the socket");
        assert!(r.log_text().contains("from master with EOF to parser"), "{}", r.log_text());
        // Now holding keys: the next full sync goes through the disk.
        r.cli(&["set", "mine", "x"]);
        force_full_sync_same_history(&m);
        wait_for(common::WAIT, "the file of the second sync", || r.dir.join("dump.rdb").exists());
        wait_for(common::WAIT, "the same data", || digest(&r) == digest(&m));
        assert_eq!(r.cli(&["exists", "mine"]).trim(), "0");
    }
}

/// What a client of the replica sees during and after a `swapdb` load of the same history.
fn swapdb_async_loading(slotcore: bool) -> Vec<String> {
    let m = master();
    let r = replica(
        slotcore,
        &["--repl-diskless-load", "swapdb", "--replica-read-only", "no", "--replica-lazy-flush", "yes"],
    );
    follow(&r, &m);
    r.cli(&["debug", "populate", "2000", "replica", "10"]);
    m.cli(&["debug", "populate", "2000", "master", "10"]);
    r.cli(&["set", "mykey", "myvalue"]);
    // 1 ms per key: the load of 2010 keys takes about 2 s (redis-server answers clients
    // during a load every `loading-process-events-interval-bytes`).
    r.cli(&["config", "set", "key-load-delay", "1000"]);
    r.cli(&["config", "set", "loading-process-events-interval-bytes", "1024"]);
    force_full_sync_same_history(&m);
    let mut seen = Vec::new();
    wait_for(common::WAIT, "async_loading:1", || field(&r, "persistence", "async_loading") == "1");
    seen.push(format!("loading:{}", field(&r, "persistence", "loading")));
    seen.push(format!("get:{}", r.cli(&["get", "mykey"]).trim()));
    seen.push(format!("no_async_loading command: {}", r.cli(&["bgrewriteaof"]).trim()));
    seen.push(format!("deny-loading config: {}", r.cli(&["config", "set", "appendonly", "no"]).trim()));
    wait_for(Duration::from_secs(60), "the load to end", || {
        field(&r, "persistence", "async_loading") == "0" && field(&r, "replication", "master_link_status") == "up"
    });
    r.cli(&["config", "set", "key-load-delay", "0"]);
    wait_for(common::WAIT, "the same data", || digest(&r) == digest(&m));
    seen.push(format!("after:{}", r.cli(&["exists", "mykey"]).trim()));
    seen.push(format!("dbsize:{}", r.cli(&["dbsize"]).trim()));
    seen.push(format!("file:{}", r.dir.join("dump.rdb").exists()));
    let log = r.log_text();
    for line in ["Swapping active DB with loaded DB", "Discarding old DB in background"] {
        seen.push(format!("{line}: {}", log.contains(line)));
    }
    seen
}

#[test]
fn swapdb_serves_the_old_data_during_a_load_of_the_same_history_as_redis() {
    let want = swapdb_async_loading(false);
    println!("{want:?}");
    assert_eq!(want[0], "loading:0", "{want:?}");
    assert_eq!(want[1], "get:myvalue", "{want:?}");
    assert_eq!(swapdb_async_loading(true), want);
}

/// A writable replica (as Redis's `replication-3` tests): keys its own clients gave an expiry
/// are expired by the replica itself; keys from the master that expired stay hidden until
/// the master's DEL, and a write to one re-creates it.
fn writable_replica_expiry(slotcore: bool) -> Vec<String> {
    let m = master();
    let r = replica(slotcore, &["--replica-read-only", "no"]);
    follow(&r, &m);
    let mut seen = Vec::new();
    let mut rc = r.raw();
    rc.cmd(&["SELECT", "5"]);
    for k in ["key1", "key2", "key3"] {
        rc.cmd(&["SET", k, "1", "PX", "300"]);
    }
    seen.push(rc.cmd(&["DBSIZE"]));
    // Deleted, not only past their time: the replica's expiry bookkeeping of them is done
    // before the master writes keys of the same names.
    wait_for(common::WAIT, "the replica to expire its own keys", || {
        rc.cmd(&["DBSIZE"]) == ":0\r\n" && field(&r, "stats", "expired_keys").parse::<u64>().unwrap_or(0) >= 3
    });
    // The master's keys: expired there with its active expiry off, so no DEL comes.
    let mut mc = m.raw();
    mc.cmd(&["SELECT", "5"]);
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    mc.cmd(&["SET", "key1", "5", "PX", "10"]);
    mc.cmd(&["SET", "key2", "5", "PX", "10"]);
    let start = std::time::Instant::now();
    loop {
        let last = (rc.cmd(&["DBSIZE"]), rc.cmd(&["EXISTS", "key1", "key2"]));
        if last == (":2\r\n".to_string(), ":0\r\n".to_string()) {
            break;
        }
        assert!(
            start.elapsed() < common::WAIT,
            "the keys replicated and expired: DBSIZE, EXISTS {last:?}; replica {}; master {}",
            r.cli(&["info", "keyspace"]),
            m.cli(&["info", "keyspace"])
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    seen.push(rc.cmd(&["INCR", "key1"]));
    seen.push(rc.cmd(&["TTL", "key1"]));
    seen.push(rc.cmd(&["GET", "key2"]));
    seen.push(rc.cmd(&["DBSIZE"]));
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    seen
}

/// What a replica holds after its master's `SET .. PXAT` whose time already passed when the
/// replica applied it (a lagging link): the key is kept, hidden, until the master's DEL.
fn past_expiry_from_the_master(slotcore: bool) -> Vec<String> {
    let m = master();
    let r = replica(slotcore, &[]);
    follow(&r, &m);
    let mut mc = m.raw();
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    mc.cmd(&["SET", "lagged", "v", "PXAT", "1"]);
    mc.cmd(&["SET", "fresh", "v"]);
    let mut rc = r.raw();
    wait_for(common::WAIT, "the writes replicated", || rc.cmd(&["EXISTS", "fresh"]) == ":1\r\n");
    let seen = vec![rc.cmd(&["DBSIZE"]), rc.cmd(&["EXISTS", "lagged"]), rc.cmd(&["GET", "lagged"])];
    mc.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    seen
}

#[test]
fn a_replica_keeps_a_key_its_master_set_with_a_past_expiry_as_redis() {
    let want = past_expiry_from_the_master(false);
    assert_eq!(want[0], ":2\r\n", "{want:?}");
    assert_eq!(past_expiry_from_the_master(true), want);
}

#[test]
fn writable_replica_expires_its_own_keys_as_redis() {
    let want = writable_replica_expiry(false);
    assert_eq!(writable_replica_expiry(true), want);
}

/// The replica's `== CRITICAL ==` log line (without the log prefix) and INFO's
/// `unexpected_error_replies` after a writable replica's key makes the master's INCRBY fail.
fn divergence(slotcore: bool) -> (String, String, String) {
    let m = master();
    let r = replica(slotcore, &["--replica-read-only", "no"]);
    follow(&r, &m);
    assert_eq!(r.cli(&["set", "number2", "foo"]).trim(), "OK");
    assert_eq!(m.cli(&["incrby", "number2", "1"]).trim(), "1");
    assert_eq!(m.cli(&["wait", "1", "2000"]).trim(), "1");
    wait_for(common::WAIT, "the error logged", || r.log_text().contains("== CRITICAL =="));
    let log = r.log_text();
    let line = log.lines().find(|l| l.contains("== CRITICAL ==")).unwrap_or("");
    let line = line[line.find("== CRITICAL ==").unwrap_or(0)..].to_string();
    (line, r.cli(&["get", "number2"]).trim().to_string(), field(&r, "stats", "unexpected_error_replies"))
}

#[test]
fn data_divergence_on_a_writable_replica_is_logged_as_redis() {
    let want = divergence(false);
    assert!(want.0.contains("'incrby'"), "{want:?}");
    assert_eq!(divergence(true), want);
}

/// With `propagation-error-behavior panic-on-replicas`, a read-only replica that fails a
/// command of its master's stream stops (Redis's serverPanic); true when the process exited.
fn panics_on_a_failed_master_command(slotcore: bool) -> bool {
    let m = master();
    let mut r = replica(slotcore, &["--propagation-error-behavior", "panic-on-replicas"]);
    follow(&r, &m);
    assert_eq!(m.cli(&["debug", "replicate", "fake-command-1"]).trim(), "OK");
    let exited = r.wait_exit(common::WAIT).is_some() || !r.is_running();
    exited && r.log_text().contains("fake-command-1")
}

#[test]
fn propagation_error_behavior_panic_on_replicas_stops_the_replica_as_redis() {
    assert!(panics_on_a_failed_master_command(false));
    assert!(panics_on_a_failed_master_command(true));
}

/// `swapdb` with a full sync of another history, the transfer killed halfway (the master
/// writes its RDB slowly with `rdb-key-save-delay`): the replica is loading (`loading:1`,
/// commands get -LOADING) from the moment the transfer starts, as Redis loads from the
/// socket, logs Redis's lines for the short read, and keeps its old data afterwards.
fn swapdb_killed_transfer(slotcore: bool) -> Vec<String> {
    let m = master();
    m.cli(&["config", "set", "rdbcompression", "no"]);
    let r = replica(slotcore, &["--repl-diskless-load", "swapdb"]);
    r.cli(&["debug", "populate", "200", "slave", "10"]);
    r.cli(&["set", "mykey", "myvalue"]);
    m.cli(&["debug", "populate", "1000", "master", "100000"]);
    // 10 ms per key: the transfer takes about 10 s.
    m.cli(&["config", "set", "rdb-key-save-delay", "10000"]);
    assert_eq!(r.cli(&["replicaof", "127.0.0.1", &m.port.to_string()]).trim(), "OK");
    let mut seen = Vec::new();
    wait_for(common::WAIT, "loading:1", || field(&r, "persistence", "loading") == "1");
    seen.push(format!("async_loading:{}", field(&r, "persistence", "async_loading")));
    seen.push(format!("get: {}", r.cli(&["get", "mykey"]).trim()));
    m.cli(&["config", "set", "repl-diskless-sync-delay", "5"]);
    m.cli(&["client", "kill", "type", "replica"]);
    wait_for(common::WAIT, "loading:0", || field(&r, "persistence", "loading") == "0");
    seen.push(format!("after: {}", r.cli(&["get", "mykey"]).trim()));
    seen.push(format!("dbsize: {}", r.cli(&["dbsize"]).trim()));
    let log = r.log_text();
    for line in [
        "Loading DB in memory",
        "Internal error in RDB",
        "Failed trying to load the MASTER synchronization DB from socket",
        "Discarding temporary DB in background",
    ] {
        seen.push(format!("{line}: {}", log.contains(line)));
    }
    m.cli(&["config", "set", "rdb-key-save-delay", "0"]);
    seen
}

#[test]
fn swapdb_of_another_history_is_loading_from_the_transfers_start_as_redis() {
    let want = swapdb_killed_transfer(false);
    assert_eq!(want[1], "get: LOADING Redis is loading the dataset in memory", "{want:?}");
    assert_eq!(swapdb_killed_transfer(true), want);
}

/// What a client polling the replica during a full sync of a small payload (its load slowed
/// by `key-load-delay`) saw: (any -LOADING, the keys were there at the end). Redis's loader
/// serves no event before `loading-process-events-interval-bytes` are read, so a client's
/// command waits for such a load instead of getting -LOADING.
fn small_load_poll(slotcore: bool, extra: &[&str]) -> (bool, bool) {
    let m = master();
    m.cli(&["debug", "populate", "2000"]);
    let mut args = vec!["--key-load-delay", "100"];
    args.extend_from_slice(extra);
    let r = replica(slotcore, &args);
    let port = r.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let poller = std::thread::spawn(move || {
        let mut c = common::Raw::connect(port);
        let (mut loading, mut loaded) = (false, false);
        let start = std::time::Instant::now();
        while !stop2.load(std::sync::atomic::Ordering::Acquire) && start.elapsed() < common::WAIT {
            let reply = c.cmd(&["EXISTS", "key:1999"]);
            loading |= reply.starts_with("-LOADING");
            loaded |= reply == ":1\r\n";
        }
        (loading, loaded)
    });
    follow(&r, &m);
    wait_for(common::WAIT, "the keys", || r.cli(&["dbsize"]).trim() == "2000");
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, std::sync::atomic::Ordering::Release);
    poller.join().expect("poller")
}

#[test]
fn a_small_full_sync_holds_clients_instead_of_answering_loading_as_redis() {
    for extra in [&[][..], &["--repl-diskless-load", "on-empty-db"][..]] {
        let want = small_load_poll(false, extra);
        assert_eq!(want, (false, true), "redis-server {extra:?}");
        assert_eq!(small_load_poll(true, extra), want, "slotcore {extra:?}");
    }
}
