//! Differential test: the same seeded random stream of commands over a small keyspace goes to
//! a redis-server and to a slotcore node of two shards, and every reply must be the same.
//!
//! The keys are spread over both shards, so multi-key commands (MSET, RENAME, COPY, LMOVE,
//! SMOVE, the set and sorted-set STORE commands, SORT ... BY/GET) often span them; the same
//! names hold every type, so wrong-type errors are exercised too; some commands run inside
//! MULTI/EXEC. Replies whose order Redis leaves to its hash tables (set members) are compared
//! sorted. After each seed, every database's DEBUG DIGEST must match too.
//!
//! A second test sends other streams to a master with a slotcore and a redis-server replica
//! and checks, after each, that the replicas hold what the master holds and that the master's
//! own RDB and AOF reload to the same data, types, encodings and expiries as a redis-server
//! reloading its own.

mod common;

use common::{Raw, Server};

mod mix;

use mix::*;

#[test]
fn random_commands_over_two_shards_answer_as_redis() {
    // DEBUG DIGEST and DIGEST-VALUE compare whole values, whatever their internal order.
    // SLOTCORE_DIFF_SHARDS=3 or 4 runs it over more shards (the two connections stay on
    // shards 0 and 1; the keys spread over all of them).
    let shards = std::env::var("SLOTCORE_DIFF_SHARDS").unwrap_or_else(|_| "2".to_string());
    let sc = Server::slotcore(&["--shards", &shards, "--enable-debug-command", "yes"]);
    let rs = Server::redis(&["--enable-debug-command", "yes"]);
    let (mut on0, mut on1) = common::one_per_shard(&sc);
    let mut theirs = rs.raw();
    // SLOTCORE_DIFF_SEEDS=60 runs a longer search (about a minute).
    let seeds: u64 = std::env::var("SLOTCORE_DIFF_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    for seed in 1..=seeds {
        // Alternate the shard the client is on: the same keys are local for one, remote for
        // the other.
        let ours = if seed % 2 == 0 { &mut on0 } else { &mut on1 };
        run_seed(seed * 0x9e37_79b9_7f4a_7c15, ours, &mut theirs, 2000);
    }
}

/// The streams again, every connection in RESP3 (HELLO 3): maps, sets, doubles, nulls and
/// booleans, through scripts too, must be Redis's bytes.
#[test]
fn random_commands_in_resp3_answer_as_redis() {
    let sc = Server::slotcore(&["--shards", "2", "--enable-debug-command", "yes"]);
    let rs = Server::redis(&["--enable-debug-command", "yes"]);
    let (mut on0, mut on1) = common::one_per_shard(&sc);
    let mut theirs = rs.raw();
    for c in [&mut on0, &mut on1, &mut theirs] {
        assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    }
    let seeds: u64 = std::env::var("SLOTCORE_DIFF_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    for seed in 1..=seeds {
        let ours = if seed % 2 == 0 { &mut on0 } else { &mut on1 };
        run_seed(seed * 0xd6e8_feb8_6659_fd93, ours, &mut theirs, 1500);
    }
}

/// An INFO field of `r` as a number (0 when absent).
fn info_number(r: &mut Raw, section: &str, field: &str) -> u64 {
    let text = r.cmd(&["INFO", section]);
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Makes `to`, a replica of `from`, the master of `from` and `other` (once it has all of
/// `from`'s stream, as a failover waits for: REPLICAOF NO ONE, then both follow it) and
/// asserts that both continue with a partial resync, as Redis's replicas do after a failover
/// (the old master as well: it offers its own history), and hold `to`'s data once caught up.
fn hand_over(to: &mut Raw, to_port: u16, from: &mut Raw, other: &mut Raw, what: &str) {
    replicas_caught_up(from, 2);
    // WAIT counts a replica whose acknowledged offset reached the stream's end when WAIT was
    // called; the REPLCONF GETACK it sent after may still be on its way, and a replica
    // promoted before taking it would leave its master ahead of its history. So both take the
    // whole stream first (nothing else writes meanwhile), as a failover pauses writes first.
    common::until("the replicas to take the whole stream", || {
        let end = info_number(from, "replication", "master_repl_offset");
        [&mut *to, &mut *other].into_iter().all(|r| info_number(r, "replication", "slave_repl_offset") == end)
    });
    let before = (from.cmd(&["INFO", "replication"]), to.cmd(&["INFO", "replication"]));
    let partial = info_number(to, "stats", "sync_partial_ok");
    let full = info_number(to, "stats", "sync_full");
    assert_eq!(to.cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    let port = to_port.to_string();
    for r in [&mut *from, &mut *other] {
        assert!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]).starts_with("+OK"));
    }
    replicas_caught_up(to, 2);
    assert_eq!(
        (info_number(to, "stats", "sync_partial_ok") - partial, info_number(to, "stats", "sync_full") - full),
        (2, 0),
        "{what}: both replicas continue (partial, full)\nbefore, the old master: {}\nthe new one: {}\nafter: {}",
        before.0,
        before.1,
        to.cmd(&["INFO", "replication"])
    );
    let want = digests(to);
    assert_replica_holds(from, to, &want, &format!("{what}: the old master"));
    assert_replica_holds(other, to, &want, &format!("{what}: the other replica"));
}

/// Asserts a replica's DEBUG DIGEST is the master's (`want`); when not, the message lists the
/// keys of both (a full sync may change encodings, so only a difference is shown this way).
fn assert_replica_holds(replica: &mut Raw, master: &mut Raw, want: &[String], what: &str) {
    if digests(replica) != want {
        let (ours, theirs) = (key_states(master), key_states(replica));
        let only = |a: &[(String, i64)], b: &[(String, i64)]| -> Vec<String> {
            a.iter().filter(|x| !b.iter().any(|y| y.0 == x.0)).map(|x| format!("{} ttl={}", x.0, x.1)).collect()
        };
        panic!(
            "{what}: DEBUG DIGEST differs\n  master only:  {:?}\n  replica only: {:?}",
            only(&ours, &theirs),
            only(&theirs, &ours)
        );
    }
}

/// Waits until every replica of `master` has acknowledged its whole stream (WAIT).
fn replicas_caught_up(master: &mut Raw, replicas: usize) {
    let want = format!(":{replicas}\r\n");
    common::until("the replicas to acknowledge the stream", || {
        master.cmd(&["WAIT", &replicas.to_string(), "1000"]) == want
    });
}

/// The same random streams, sent to a slotcore master that has a slotcore replica (another
/// shard count) and a redis-server replica, with the AOF on: after each seed both replicas
/// hold what the master holds (DEBUG DIGEST of every database), and so does the master after
/// reloading its own RDB (DEBUG RELOAD) and its own AOF (DEBUG LOADAOF, after a rewrite on
/// odd seeds). At the end a new redis-server replica loads the master's full-sync snapshot.
/// Every reply of the master is still compared with a standalone redis-server's, which
/// reloads at the same points (a reload changes encodings, e.g. a raw string comes back
/// embstr, as in Redis).
#[test]
fn random_commands_replicate_and_persist_as_redis() {
    let shards = std::env::var("SLOTCORE_DIFF_SHARDS").unwrap_or_else(|_| "2".to_string());
    let master = Server::slotcore(&[
        "--shards",
        &shards,
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let port = master.port.to_string();
    let ours_replica =
        Server::slotcore(&["--shards", "3", "--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let redis_replica = Server::redis(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let oracle = Server::redis(&["--enable-debug-command", "yes", "--appendonly", "yes"]);
    let (mut on0, mut on1) = common::one_per_shard(&master);
    let mut theirs = oracle.raw();
    let mut ctl = master.raw();
    let (mut r1, mut r2) = (ours_replica.raw(), redis_replica.raw());
    replicas_caught_up(&mut ctl, 2);
    let seeds: u64 = std::env::var("SLOTCORE_DIFF_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    for seed in 1..=seeds {
        let ours = if seed % 2 == 0 { &mut on0 } else { &mut on1 };
        // Other seeds than the first test's: new streams.
        run_seed(seed * 0x2545_f491_4f6c_dd1d, ours, &mut theirs, 1500);
        // The next seed starts in database 0 on both sides (the checks below use other
        // connections on this side).
        ours.cmd(&["SELECT", "0"]);
        let want = digests(&mut ctl);
        replicas_caught_up(&mut ctl, 2);
        assert_replica_holds(&mut r1, &mut ctl, &want, &format!("slotcore replica after seed {seed}"));
        assert_replica_holds(&mut r2, &mut ctl, &want, &format!("redis-server replica after seed {seed}"));
        for c in [&mut ctl, &mut theirs] {
            assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
        }
        assert_eq!(digests(&mut ctl), want, "after DEBUG RELOAD, seed {seed}");
        if seed % 2 == 1 {
            for c in [&mut ctl, &mut theirs] {
                assert!(c.cmd(&["BGREWRITEAOF"]).starts_with('+'));
                common::until("the AOF rewrite to end", || {
                    c.cmd(&["INFO", "persistence"]).contains("aof_rewrite_in_progress:0")
                });
            }
        }
        for c in [&mut ctl, &mut theirs] {
            assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
        }
        assert_eq!(digests(&mut ctl), want, "after DEBUG LOADAOF, seed {seed}");
        assert_eq!(digests(&mut theirs), want, "redis-server after the same reloads, seed {seed}");
        assert_same_keys(
            key_states(&mut ctl),
            key_states(&mut theirs),
            &format!("keys after the reloads, seed {seed}"),
        );
        // The reloads are not in the stream: the replicas still agree.
        replicas_caught_up(&mut ctl, 2);
        assert_replica_holds(&mut r1, &mut ctl, &want, &format!("slotcore replica after the reloads, seed {seed}"));
        if seed % 2 == 0 {
            // A failover to the slotcore replica, writes there, and back.
            hand_over(&mut r1, ours_replica.port, &mut ctl, &mut r2, &format!("failover, seed {seed}"));
            let mut w = Raw::connect(ours_replica.port);
            run_seed(seed * 0x9e6c_63d0_676a_9a99, &mut w, &mut theirs, 300);
            theirs.cmd(&["SELECT", "0"]);
            hand_over(&mut ctl, master.port, &mut r1, &mut r2, &format!("failback, seed {seed}"));
            // A replica's encodings may differ from its master's, in Redis too: SORT turns a
            // listpack zset into a skiplist in place, and no replica sees it. A reload on both
            // sides gives each key the encoding its size calls for before the next stream.
            for c in [&mut ctl, &mut theirs] {
                assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
            }
            assert_same_keys(
                key_states(&mut ctl),
                key_states(&mut theirs),
                &format!("after the failback, seed {seed}"),
            );
        }
    }
    let want = digests(&mut ctl);
    let late = Server::redis(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    replicas_caught_up(&mut ctl, 3);
    assert_eq!(digests(&mut late.raw()), want, "a redis-server replica synced from the master's snapshot");
    // The master's AOF files, copied: redis-check-aof accepts them and a redis-server loads
    // the master's data from them.
    let copy = std::env::temp_dir().join(format!("slotcore-diff-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("appendonlydir")).expect("create the copy's directory");
    for e in std::fs::read_dir(master.dir.join("appendonlydir")).expect("the master's appendonlydir") {
        let e = e.expect("a directory entry");
        std::fs::copy(e.path(), copy.join("appendonlydir").join(e.file_name())).expect("copy an AOF file");
    }
    let check = std::process::Command::new("redis-check-aof")
        .arg(copy.join("appendonlydir/appendonly.aof.manifest"))
        .output()
        .expect("run redis-check-aof");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{text}");
    let dir = copy.to_string_lossy().into_owned();
    let loaded = Server::redis(&["--enable-debug-command", "yes", "--appendonly", "yes", "--dir", &dir]);
    let mut r = loaded.raw();
    common::until("redis-server to load the AOF", || r.cmd(&["INFO", "persistence"]).contains("\r\nloading:0\r\n"));
    assert_eq!(digests(&mut r), want, "a redis-server loading the master's AOF");
    drop(loaded);
    let _ = std::fs::remove_dir_all(&copy);
}
