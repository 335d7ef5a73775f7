//! Record-level replay of the change stream: every road a change to the keyspace takes must
//! reach the stream in a form that replays to the same data. A slotcore master with 3 shards
//! serves two replicas that replay its stream into an empty keyspace: a real redis-server
//! (the oracle) and a slotcore replica with another shard count. Both start with a forkless
//! full sync taken while a client keeps overwriting keys (the snapshot's mark rule), then the
//! master goes through every road: keyed commands in propagation form, lazy and active
//! expiry, FLUSHALL, FLUSHDB, SWAPDB, served blocked pops, MIGRATE's delete, cross-shard
//! MSET / RENAME / SMOVE / LMOVE / MULTI-EXEC. DEBUG DIGEST of both replicas must end equal
//! to the master's, and nothing may be left over on a replica (a road that records nothing
//! leaves a key or value behind, which the digest sees).

mod common;

use common::{Server, WAIT};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cmd<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(c: &mut redis::Connection, args: &[&str]) {
    let _: redis::Value = cmd(c, args);
}

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = cmd(c, &["INFO", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 3 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn digest(c: &mut redis::Connection) -> String {
    cmd(c, &["DEBUG", "DIGEST"])
}

/// Loads `n` string keys and a few of each other type through one pipelined connection.
fn preload(c: &mut redis::Connection, n: usize) {
    for start in (0..n).step_by(5000) {
        let mut p = redis::pipe();
        for i in start..(start + 5000).min(n) {
            p.cmd("SET").arg(format!("key:{i}")).arg(format!("value-{i}")).ignore();
            if i % 50 == 0 {
                p.cmd("HSET").arg(format!("hash:{i}")).arg("f").arg(i).ignore();
                p.cmd("ZADD").arg(format!("zset:{i}")).arg(i).arg("m").ignore();
                p.cmd("SADD").arg(format!("set:{i}")).arg("a").arg(i).ignore();
                p.cmd("RPUSH").arg(format!("list:{i}")).arg("a").arg(i).ignore();
            }
        }
        let _: () = p.query(c).expect("preload");
    }
}

/// Overwrites, increments, pushes and deletes keys until told to stop; returns how many
/// writes it made.
fn hammer(port: u16, keys: usize, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let mut i: usize = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut p = redis::pipe();
            for _ in 0..50 {
                let k = format!("key:{}", (i * 7919) % keys);
                match i % 5 {
                    0 => p.cmd("SET").arg(&k).arg(format!("new-{i}")).ignore(),
                    1 => p.cmd("APPEND").arg(&k).arg("+").ignore(),
                    2 => p.cmd("DEL").arg(&k).ignore(),
                    3 => p.cmd("INCR").arg(format!("counter:{}", i % 100)).ignore(),
                    _ => p.cmd("LPUSH").arg(format!("hot:{}", i % 300)).arg(i).ignore(),
                };
                i += 1;
            }
            let _: () = p.query(&mut c).expect("hammer");
            count.fetch_add(50, Ordering::Relaxed);
        }
    })
}

/// Runs a blocking command on its own connection, waits until it blocks, runs `wake` (which
/// serves it) and returns the blocked command's reply.
fn blocked(m: &Server, c: &mut redis::Connection, args: &[&str], wake: &[&str]) -> redis::Value {
    let port = m.port;
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let t = std::thread::spawn(move || {
        let mut bc = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        cmd::<redis::Value>(&mut bc, &a)
    });
    until("the client to block", || info_field(c, "clients", "blocked_clients").as_deref() == Some("1"));
    ok(c, wake);
    t.join().expect("blocked client")
}

/// Every road, on the master.
fn roads(m: &Server, target: &Server) {
    let mut c = m.client();
    // Keyed commands that propagate in another form.
    ok(&mut c, &["SET", "r:ex", "v", "EX", "1000"]);
    ok(&mut c, &["SETEX", "r:setex", "1000", "v"]);
    ok(&mut c, &["SET", "r:f", "1.5"]);
    ok(&mut c, &["INCRBYFLOAT", "r:f", "0.25"]);
    ok(&mut c, &["HSET", "r:h", "f", "1"]);
    ok(&mut c, &["HINCRBYFLOAT", "r:h", "f", "2.5"]);
    ok(&mut c, &["SADD", "r:s", "a", "b", "c", "d", "e"]);
    ok(&mut c, &["SPOP", "r:s", "2"]);
    ok(&mut c, &["GETEX", "r:ex", "PX", "900000"]);
    ok(&mut c, &["EXPIRE", "r:h", "800"]);
    ok(&mut c, &["SET", "r:d", "v"]);
    let dumped: Vec<u8> = cmd(&mut c, &["DUMP", "r:d"]);
    let _: () = redis::cmd("RESTORE").arg("r:restored").arg(100_000).arg(dumped).query(&mut c).expect("RESTORE");

    // Lazy expiry alone (active expiry off): reading the expired keys deletes them.
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for i in 0..30 {
        ok(&mut c, &["SET", &format!("lazy:{i}"), "v", "PX", "20"]);
    }
    std::thread::sleep(Duration::from_millis(60));
    for i in 0..30 {
        let got: Option<String> = cmd(&mut c, &["GET", &format!("lazy:{i}")]);
        assert_eq!(got, None, "lazy:{i} expired");
    }
    // Active expiry: nothing reads these, the cycle deletes them.
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let before: i64 = cmd(&mut c, &["DBSIZE"]);
    for i in 0..300 {
        ok(&mut c, &["SET", &format!("active:{i}"), "v", "PX", "20"]);
    }
    until("active expiry", || cmd::<i64>(&mut c, &["DBSIZE"]) <= before);

    // Cross-shard multi-key commands and a cross-shard transaction.
    let many: Vec<String> = (0..20).flat_map(|i| [format!("ms:{i}"), i.to_string()]).collect();
    let mut mset = vec!["MSET"];
    mset.extend(many.iter().map(|s| s.as_str()));
    ok(&mut c, &mset);
    ok(&mut c, &["MSETNX", "msnx:a", "1", "msnx:b", "2", "msnx:c", "3"]);
    ok(&mut c, &["RENAME", "ms:1", "renamed:1"]);
    ok(&mut c, &["RENAME", "ms:2", "ms:2"]);
    ok(&mut c, &["RENAMENX", "ms:3", "renamed:3"]);
    ok(&mut c, &["SADD", "src:set", "x", "y"]);
    ok(&mut c, &["SMOVE", "src:set", "dst:set", "x"]);
    ok(&mut c, &["RPUSH", "src:list", "a", "b", "c"]);
    ok(&mut c, &["LMOVE", "src:list", "dst:list", "LEFT", "RIGHT"]);
    ok(&mut c, &["SUNIONSTORE", "union", "src:set", "dst:set", "r:s"]);
    ok(&mut c, &["COPY", "ms:4", "copied:4"]);
    ok(&mut c, &["DEL", "ms:5", "ms:6", "ms:7", "nokey"]);
    ok(&mut c, &["UNLINK", "ms:8", "ms:9"]);
    ok(&mut c, &["MULTI"]);
    ok(&mut c, &["INCR", "tx:a"]);
    ok(&mut c, &["SET", "tx:b", "v", "PX", "600000"]);
    ok(&mut c, &["RENAME", "ms:10", "tx:c"]);
    ok(&mut c, &["LPUSH", "tx:d", "1"]);
    ok(&mut c, &["EXEC"]);

    // Served blocked pops record the pop they performed.
    let r = blocked(m, &mut c, &["BLPOP", "bq:1", "10"], &["RPUSH", "bq:1", "a", "b"]);
    assert_ne!(r, redis::Value::Nil);
    blocked(m, &mut c, &["BLMOVE", "bq:2", "bq:other", "LEFT", "RIGHT", "10"], &["RPUSH", "bq:2", "x", "y"]);
    blocked(m, &mut c, &["BZPOPMIN", "bz:1", "10"], &["ZADD", "bz:1", "1", "a", "2", "b"]);
    blocked(
        m,
        &mut c,
        &["BLMPOP", "10", "2", "bq:3", "bq:4", "RIGHT", "COUNT", "2"],
        &["RPUSH", "bq:4", "1", "2", "3"],
    );

    // MIGRATE deletes the key here (the target is another server).
    let tp = target.port.to_string();
    ok(&mut c, &["SET", "mig:1", "v1"]);
    ok(&mut c, &["SET", "{mig}a", "a"]);
    ok(&mut c, &["SET", "{mig}b", "b"]);
    let r: String = cmd(&mut c, &["MIGRATE", "127.0.0.1", &tp, "mig:1", "0", "5000"]);
    assert_eq!(r, "OK");
    let r: String = cmd(&mut c, &["MIGRATE", "127.0.0.1", &tp, "", "0", "5000", "KEYS", "{mig}a", "{mig}b"]);
    assert_eq!(r, "OK");
    assert_eq!(cmd::<i64>(&mut c, &["EXISTS", "mig:1", "{mig}a", "{mig}b"]), 0);

    // Other databases, SWAPDB, FLUSHDB and FLUSHALL.
    ok(&mut c, &["SELECT", "3"]);
    ok(&mut c, &["SET", "in3", "x"]);
    ok(&mut c, &["SELECT", "4"]);
    ok(&mut c, &["SET", "in4", "y"]);
    ok(&mut c, &["SWAPDB", "3", "4"]);
    ok(&mut c, &["SELECT", "5"]);
    ok(&mut c, &["SET", "gone", "z"]);
    ok(&mut c, &["FLUSHDB"]);
    ok(&mut c, &["SELECT", "0"]);
    ok(&mut c, &["SWAPDB", "0", "1"]);
    ok(&mut c, &["SET", "in1-now-0", "v"]);
    ok(&mut c, &["SWAPDB", "0", "1"]);
    ok(&mut c, &["SELECT", "6"]);
    ok(&mut c, &["SET", "before-flushall", "v"]);
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SET", "after-flushall", "v"]);
    ok(&mut c, &["SELECT", "0"]);
    preload(&mut c, 2000);
    ok(&mut c, &["SET", "end", "1"]);
}

#[test]
fn every_road_replays_to_the_masters_digest() {
    common::use_ports(8460);
    let m = Server::slotcore(&["--shards", "3", "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]);
    let target = Server::redis(&[]);
    let keys = 60_000;
    preload(&mut m.client(), keys);
    // Writes keep coming while both replicas take their full sync.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let writer = hammer(m.port, keys, stop.clone(), count.clone());
    until("some writes", || count.load(Ordering::Relaxed) > 500);
    let mp = m.port.to_string();
    let rr = Server::redis(&["--replicaof", "127.0.0.1", &mp, "--enable-debug-command", "yes"]);
    let sr = Server::slotcore(&["--replicaof", "127.0.0.1", &mp, "--shards", "2", "--enable-debug-command", "yes"]);
    let (mut mc, mut rc, mut sc) = (m.client(), rr.client(), sr.client());
    let during = count.load(Ordering::Relaxed);
    until("both links up", || {
        info_field(&mut rc, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut sc, "replication", "master_link_status").as_deref() == Some("up")
    });
    assert!(count.load(Ordering::Relaxed) > during, "writes ran during the syncs");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let acked: i64 = cmd(&mut mc, &["WAIT", "2", "10000"]);
    assert_eq!(acked, 2, "both replicas acknowledge the stream");
    let d = digest(&mut mc);
    until("the replicas' digests after the sync under writes", || digest(&mut rc) == d && digest(&mut sc) == d);

    roads(&m, &target);
    let acked: i64 = cmd(&mut mc, &["WAIT", "2", "10000"]);
    assert_eq!(acked, 2, "both replicas acknowledge the roads");
    let d = digest(&mut mc);
    until("the replicas' digests after every road", || digest(&mut rc) == d && digest(&mut sc) == d);
    for db in 0..7 {
        let db = db.to_string();
        let sizes: Vec<i64> = [&mut mc, &mut rc, &mut sc]
            .into_iter()
            .map(|c| {
                ok(c, &["SELECT", &db]);
                cmd(c, &["DBSIZE"])
            })
            .collect();
        assert!(sizes.iter().all(|&n| n == sizes[0]), "db {db} sizes {sizes:?}");
    }
    // The roads really ran: the migrated keys are on the target, the flushed ones gone.
    let mut tc = target.client();
    assert_eq!(cmd::<i64>(&mut tc, &["EXISTS", "mig:1", "{mig}a", "{mig}b"]), 3);
    ok(&mut rc, &["SELECT", "6"]);
    assert_eq!(cmd::<Vec<String>>(&mut rc, &["KEYS", "*"]), vec!["after-flushall".to_string()]);
    let full: String = cmd(&mut mc, &["INFO", "stats"]);
    assert!(full.contains("sync_full:2"), "two full syncs: {full}");
}
