//! Cluster failover, bus level, with real processes: a 6-node slotcore cluster built by
//! `redis-cli --cluster create --cluster-replicas 1` survives kill -9 of a master (its replica
//! takes the slots with every write its replica acknowledged; the time is measured and printed
//! for node-timeout 2000, 3000 and 15000), the old master rejoins as a replica of
//! the winner, CLUSTER FAILOVER (default, FORCE, TAKEOVER) moves the slots on purpose, losing
//! a master and its replica fails the cluster; and a mixed cluster (slotcore and redis-server
//! masters and replicas of the other kind) fails over both ways, keeping acknowledged writes.
//!
//! The nodes run with Redis's default `cluster-replica-validity-factor` (10): a replica fails
//! over only because its link to its master was up and its data is recent, as in production.

mod common;

use common::cluster::{addrs, cli_timeout, create_agreed, info_field, logs, myid, nodes, wait_for};
use common::{Server, WAIT};
use std::time::{Duration, Instant};

fn slotcore(timeout: u64) -> Server {
    let t = timeout.to_string();
    Server::slotcore(&["--cluster-enabled", "yes", "--cluster-node-timeout", &t, "--shards", "2"])
}

fn redis(timeout: u64) -> Server {
    let t = timeout.to_string();
    Server::redis(&["--cluster-enabled", "yes", "--cluster-node-timeout", &t])
}

/// The `myself` line of a node: (id, flags, master, slots).
fn me(s: &Server) -> (String, String, String, Vec<String>) {
    let l = nodes(s).into_iter().find(|f| f.len() >= 8 && f[2].contains("myself")).unwrap_or_default();
    if l.is_empty() {
        return Default::default();
    }
    (l[0].clone(), l[2].clone(), l[3].clone(), l[8..].to_vec())
}

/// A key whose slot is in the first range of a CLUSTER NODES slot list.
fn key_in(slots: &[String]) -> String {
    let first = slots.iter().find(|s| !s.starts_with('[')).expect("a slot range");
    let (a, b) = first.split_once('-').unwrap_or((first, first));
    let (a, b): (u16, u16) = (a.parse().expect("slot"), b.parse().expect("slot"));
    (0..)
        .map(|i| format!("key:{i}"))
        .find(|k| (a..=b).contains(&slotcore::cluster::key_slot(k.as_bytes())))
        .expect("key")
}

fn is_master(s: &Server) -> bool {
    me(s).1.contains("master")
}

/// Index of the replica of the master at index `m`.
fn replica_of(all: &[&Server], m: usize) -> usize {
    let id = myid(all[m]);
    (0..all.len()).find(|&i| me(all[i]).2 == id).expect("the master has a replica")
}

/// `redis-cli --cluster check` through `entry`: clean (exit 0, all slots covered, config
/// consistent).
fn check_clean(entry: &Server, all: &[&Server]) {
    let (ok, out) = cli_timeout(30, &["--cluster".into(), "check".into(), addrs(&[entry])[0].clone()]);
    assert!(
        ok && out.contains("[OK] All 16384 slots covered.") && out.contains("[OK] All nodes agree"),
        "{out}\n{}",
        logs(all)
    );
}

/// Sends `CLUSTER FAILOVER [mode]` to `s` until `done` holds: an election that failed or
/// timed out is only retried after twice the auth timeout (as Redis), so the command is
/// repeated every 2 s while `s` is still a replica (once it is master, the rest of `done`,
/// e.g. the old master following it, may take longer on a loaded machine).
fn failover_until(s: &Server, mode: &[&str], what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut last: Option<Instant> = None;
    while start.elapsed() < WAIT * 2 {
        if done() {
            return;
        }
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) && !is_master(s) {
            let mut args = vec!["cluster", "failover"];
            args.extend_from_slice(mode);
            let out = s.cli(&args);
            // After an earlier OK, `s` may have become master between the check and the send.
            let promoted_meanwhile = last.is_some() && out.contains("You should send CLUSTER FAILOVER to a replica");
            assert!(
                out.trim() == "OK" || out.contains("please use CLUSTER FAILOVER FORCE") || promoted_meanwhile,
                "{what}: {out}"
            );
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", s.log_text());
}

/// Waits until every replica's link to its master is up (Redis's replicas only fail over with
/// recent data).
fn links_up(replicas: &[&Server], all: &[&Server]) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 2 {
        if replicas.iter().all(|r| r.cli(&["info", "replication"]).contains("master_link_status:up")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("a replica's master link never came up\n{}", logs(all));
}

/// Writes `n` keys into the slots `master` serves, each acknowledged by its replica
/// (`WAIT 1`); returns the keys.
fn write_acked(master: &Server, n: usize) -> Vec<String> {
    let tag = key_in(&me(master).3);
    let mut c = common::Raw::connect(master.port);
    let keys: Vec<String> = (0..n).map(|i| format!("{{{tag}}}:{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, k]), "+OK\r\n");
    }
    let start = Instant::now();
    while c.cmd(&["WAIT", "1", "1000"]) != ":1\r\n" {
        assert!(start.elapsed() < WAIT, "the replica of port {} never acknowledged", master.port);
    }
    keys
}

/// Every key reads back its own name from `s` (which serves their slot).
fn all_readable(s: &Server, keys: &[String]) {
    let mut c = common::Raw::connect(s.port);
    for k in keys {
        let want = format!("${}\r\n{k}\r\n", k.len());
        assert_eq!(c.cmd(&["GET", k]), want, "key {k} on port {}", s.port);
    }
}

fn wait_state(nodes: &[&Server], want: &str, all: &[&Server]) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 2 {
        if nodes.iter().all(|n| info_field(n, "cluster_state") == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cluster_state never became {want}\n{}", logs(all));
}

/// Kills the master at `m`; returns (replica index, time until the replica served the slots).
fn kill_and_measure(servers: &mut [Server], m: usize, timeout: u64) -> (usize, Duration) {
    let all: Vec<&Server> = servers.iter().collect();
    let r = replica_of(&all, m);
    let slots = me(all[m]).3;
    assert!(!slots.is_empty());
    servers[m].kill9();
    let start = Instant::now();
    let limit = Duration::from_millis(timeout * 3 + 10_000);
    while start.elapsed() < limit {
        let (_, flags, _, s) = me(&servers[r]);
        if flags.contains("master") && s == slots {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let all: Vec<&Server> = servers.iter().collect();
    assert!(is_master(all[r]), "no failover within {limit:?}\n{}", logs(&all));
    (r, took)
}

fn failover_cycle(timeout: u64) {
    let mut servers: Vec<Server> = (0..6).map(|_| slotcore(timeout)).collect();
    {
        let all: Vec<&Server> = servers.iter().collect();
        create_agreed(&all, 1);
        let replicas: Vec<&Server> = all.iter().copied().filter(|s| !is_master(s)).collect();
        links_up(&replicas, &all);
    }
    let m = (0..6).find(|&i| is_master(&servers[i])).expect("a master");
    let old_id = myid(&servers[m]);
    let keys = write_acked(&servers[m], 200);
    let (r, took) = kill_and_measure(&mut servers, m, timeout);
    println!("node-timeout {timeout} ms: replica became master {} ms after kill -9", took.as_millis());
    if std::env::var("FO_DUMP").is_ok() {
        println!("{}", logs(&servers.iter().collect::<Vec<_>>()));
    }
    assert!(
        took < Duration::from_millis(timeout + 2000),
        "failover took {took:?} with node-timeout {timeout}\n{}",
        logs(&servers.iter().collect::<Vec<_>>())
    );
    let winner = myid(&servers[r]);
    let alive: Vec<&Server> = servers.iter().enumerate().filter(|(i, _)| *i != m).map(|(_, s)| s).collect();
    let all: Vec<&Server> = servers.iter().collect();
    wait_state(&alive, "ok", &all);
    // Every survivor agrees that the winner serves the slots.
    wait_for(WAIT, "every node to see the new master", || {
        alive.iter().all(|s| nodes(s).iter().any(|f| f[0] == winner && f[2].contains("master") && f.len() > 8))
    });
    check_clean(&servers[r], &all);
    assert!(servers[r].log_text().contains("Failover election won: I'm the new master."));
    all_readable(&servers[r], &keys);

    // The old master comes back as a replica of the winner.
    servers[m].restart();
    wait_for(WAIT, "the old master to rejoin as a replica of the winner", || {
        let (id, flags, master, slots) = me(&servers[m]);
        id == old_id && flags == "myself,slave" && master == winner && slots.is_empty()
    });
    let all: Vec<&Server> = servers.iter().collect();
    wait_state(&all, "ok", &all);

    // CLUSTER FAILOVER on it: master again, the winner its replica. Meanwhile a client
    // keeps writing to the winner: its writes are held while the winner pauses for the
    // failover, and are redirected once it is over.
    let key = key_in(&me(&servers[r]).3);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (port, stop, key) = (servers[r].port, stop.clone(), key.clone());
        std::thread::spawn(move || {
            let mut c = common::Raw::connect(port);
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let reply = c.cmd(&["set", &key, "v"]);
                seen.push((t.elapsed(), reply));
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    failover_until(&servers[m], &[], "CLUSTER FAILOVER to make the old master a master again", || {
        is_master(&servers[m]) && me(&servers[r]).2 == old_id
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = writer.join().expect("writer");
    let held = seen.iter().position(|(d, _)| *d > Duration::from_millis(100)).expect("a write held by the pause");
    assert!(seen[held].1.starts_with("-MOVED"), "a held write is redirected after the failover: {:?}", seen[held]);
    assert!(seen[held..].iter().all(|(_, r)| r.starts_with("-MOVED")), "{seen:?}");
    assert!(seen[..held].iter().all(|(_, r)| r == "+OK\r\n"), "{seen:?}");
    assert!(servers[m].log_text().contains("Manual failover user request accepted."));
    assert!(servers[r].log_text().contains("Manual failover requested by replica"));
    // FORCE on the replica, then TAKEOVER back.
    failover_until(&servers[r], &["force"], "FAILOVER FORCE", || is_master(&servers[r]) && me(&servers[m]).2 == winner);
    assert_eq!(servers[m].cli(&["cluster", "failover", "takeover"]).trim(), "OK");
    wait_for(WAIT, "FAILOVER TAKEOVER", || is_master(&servers[m]) && me(&servers[r]).2 == old_id);
    let all: Vec<&Server> = servers.iter().collect();
    wait_state(&all, "ok", &all);
    wait_for(WAIT, "a clean check after the failovers", || {
        let (ok, out) = cli_timeout(30, &["--cluster".into(), "check".into(), addrs(&[&servers[0]])[0].clone()]);
        ok && out.contains("[OK] All nodes agree")
    });

    // Errors as Redis.
    assert_eq!(servers[m].cli(&["cluster", "failover"]).trim(), "ERR You should send CLUSTER FAILOVER to a replica");
    assert_eq!(servers[r].cli(&["cluster", "failover", "bogus"]).trim(), "ERR syntax error");

    // A master and its replica both gone: the cluster fails.
    let other = (0..6).find(|&i| i != m && i != r && is_master(&servers[i])).expect("another master");
    let other_r = replica_of(&servers.iter().collect::<Vec<_>>(), other);
    servers[other].kill9();
    servers[other_r].kill9();
    let rest: Vec<&Server> =
        servers.iter().enumerate().filter(|(i, _)| *i != other && *i != other_r).map(|(_, s)| s).collect();
    let all: Vec<&Server> = servers.iter().collect();
    wait_state(&rest, "fail", &all);
}

#[test]
fn kill9_failover_rejoin_and_manual_failover_node_timeout_2000() {
    failover_cycle(2000);
}

#[test]
fn kill9_and_shutdown_failover_node_timeout_3000() {
    let timeout = 3000;
    let mut servers: Vec<Server> = (0..6).map(|_| slotcore(timeout)).collect();
    {
        let all: Vec<&Server> = servers.iter().collect();
        create_agreed(&all, 1);
        let replicas: Vec<&Server> = all.iter().copied().filter(|s| !is_master(s)).collect();
        links_up(&replicas, &all);
    }
    let m = (0..6).find(|&i| is_master(&servers[i])).expect("a master");
    let (_, took) = kill_and_measure(&mut servers, m, timeout);
    println!("node-timeout {timeout} ms: replica became master {} ms after kill -9", took.as_millis());
    if std::env::var("FO_DUMP").is_ok() {
        println!("{}", logs(&servers.iter().collect::<Vec<_>>()));
    }
    assert!(
        took < Duration::from_millis(timeout + 2000),
        "failover took {took:?}\n{}",
        logs(&servers.iter().collect::<Vec<_>>())
    );
    let alive: Vec<&Server> = servers.iter().enumerate().filter(|(i, _)| *i != m).map(|(_, s)| s).collect();
    wait_state(&alive, "ok", &servers.iter().collect::<Vec<_>>());

    // SHUTDOWN of another master: it exits (after its replicas caught up) and its replica
    // takes over.
    let other = (0..6).find(|&i| i != m && is_master(&servers[i]) && !me(&servers[i]).3.is_empty()).expect("master");
    let other_r = replica_of(&servers.iter().collect::<Vec<_>>(), other);
    let _ = servers[other].cli(&["shutdown", "nosave"]);
    assert!(servers[other].wait_exit(WAIT).is_some(), "SHUTDOWN did not exit");
    wait_for(Duration::from_millis(timeout * 3 + 10_000), "the replica of a shut down master to take over", || {
        is_master(&servers[other_r])
    });
    let alive: Vec<&Server> =
        servers.iter().enumerate().filter(|(i, _)| *i != m && *i != other).map(|(_, s)| s).collect();
    wait_state(&alive, "ok", &servers.iter().collect::<Vec<_>>());
}

/// The deployment guides' default node-timeout: kill -9 of a master, its replica serves the
/// slots within node-timeout + 2 s and has every acknowledged write.
#[test]
fn kill9_failover_node_timeout_15000() {
    let timeout = 15000;
    let mut servers: Vec<Server> = (0..6).map(|_| slotcore(timeout)).collect();
    {
        let all: Vec<&Server> = servers.iter().collect();
        create_agreed(&all, 1);
        let replicas: Vec<&Server> = all.iter().copied().filter(|s| !is_master(s)).collect();
        links_up(&replicas, &all);
    }
    let m = (0..6).find(|&i| is_master(&servers[i])).expect("a master");
    let keys = write_acked(&servers[m], 200);
    let (r, took) = kill_and_measure(&mut servers, m, timeout);
    println!("node-timeout {timeout} ms: replica became master {} ms after kill -9", took.as_millis());
    assert!(
        took < Duration::from_millis(timeout + 2000),
        "failover took {took:?}\n{}",
        logs(&servers.iter().collect::<Vec<_>>())
    );
    all_readable(&servers[r], &keys);
}

/// Builds masters (a, b, c) with one replica each via redis-cli: create with the masters,
/// then add-node --cluster-slave for each replica.
fn build(masters: &[&Server], replicas: &[&Server]) {
    let all: Vec<&Server> = masters.iter().chain(replicas.iter()).copied().collect();
    create_agreed(masters, 0);
    for (m, r) in masters.iter().zip(replicas) {
        let args: Vec<String> = vec![
            "--cluster".into(),
            "add-node".into(),
            addrs(&[r])[0].clone(),
            addrs(&[m])[0].clone(),
            "--cluster-slave".into(),
            "--cluster-master-id".into(),
            myid(m),
        ];
        let (ok, out) = cli_timeout(60, &args);
        assert!(ok, "add-node failed: {out}\n{}", logs(&all));
    }
    wait_for(WAIT, "every replica to be known as one by every node", || {
        all.iter().all(|s| {
            replicas.iter().zip(masters).all(|(r, m)| {
                let rid = myid(r);
                let mid = myid(m);
                nodes(s).iter().any(|f| f[0] == rid && f[2].contains("slave") && f[3] == mid)
            })
        })
    });
    wait_state(&all, "ok", &all);
}

#[test]
fn mixed_cluster_fails_over_both_ways() {
    let t = 2000;
    // Masters: slotcore s0, slotcore s1, redis r0. Replicas: redis r1 of s0, redis r2 of s1,
    // slotcore s2 of r0.
    let mut s: Vec<Server> = (0..3).map(|_| slotcore(t)).collect();
    let mut r: Vec<Server> = (0..3).map(|_| redis(t)).collect();
    build(&[&s[0], &s[1], &r[0]], &[&r[1], &r[2], &s[2]]);
    {
        let all: Vec<&Server> = s.iter().chain(r.iter()).collect();
        links_up(&[&r[1], &r[2], &s[2]], &all);
    }
    // Acknowledged writes on both kinds of master survive their failover.
    let on_s0 = write_acked(&s[0], 200);
    let on_r0 = write_acked(&r[0], 200);

    // kill -9 the slotcore master s0: the redis replica r1 wins (slotcore masters voted).
    let s0_id = myid(&s[0]);
    let r1_id = myid(&r[1]);
    s[0].kill9();
    wait_for(Duration::from_secs(30), "redis replica of a slotcore master to take over", || is_master(&r[1]));
    // kill -9 the redis master r0: the slotcore replica s2 wins (redis masters voted).
    let r0_id = myid(&r[0]);
    let s2_id = myid(&s[2]);
    r[0].kill9();
    wait_for(Duration::from_secs(30), "slotcore replica of a redis master to take over", || is_master(&s[2]));
    assert!(s[2].log_text().contains("Failover election won: I'm the new master."));
    {
        let alive = [&s[1], &s[2], &r[1], &r[2]];
        let all: Vec<&Server> = s.iter().chain(r.iter()).collect();
        wait_state(&alive, "ok", &all);
    }
    all_readable(&r[1], &on_s0);
    all_readable(&s[2], &on_r0);

    // Both old masters return as replicas of the winners.
    s[0].restart();
    r[0].restart();
    wait_for(WAIT, "the old slotcore master to follow the redis winner", || {
        let (_, flags, master, _) = me(&s[0]);
        flags == "myself,slave" && master == r1_id
    });
    wait_for(WAIT, "the old redis master to follow the slotcore winner", || {
        let (_, flags, master, _) = me(&r[0]);
        flags == "myself,slave" && master == s2_id
    });
    {
        let all: Vec<&Server> = s.iter().chain(r.iter()).collect();
        wait_state(&all, "ok", &all);
    }

    // CLUSTER FAILOVER: a slotcore replica of a redis master, and a redis replica of a
    // slotcore master.
    failover_until(&s[0], &[], "slotcore replica's manual failover", || is_master(&s[0]) && me(&r[1]).2 == s0_id);
    failover_until(&r[0], &[], "redis replica's manual failover", || is_master(&r[0]) && me(&s[2]).2 == r0_id);
    assert!(s[2].log_text().contains("Manual failover requested by replica"));
    let all: Vec<&Server> = s.iter().chain(r.iter()).collect();
    wait_state(&all, "ok", &all);
    check_clean(&s[1], &all);
    // The old masters synced from the winners while they were replicas, and kept it all.
    all_readable(&s[0], &on_s0);
    all_readable(&r[0], &on_r0);
}

/// Replica migration (cluster-migration-barrier 1, Redis's default): a master left without a
/// working replica gets one of the replicas of the master that has two.
/// cluster-replica-no-failover: that replica does not take over a killed master on its own,
/// but a manual CLUSTER FAILOVER FORCE still works.
#[test]
fn replica_migration_and_replica_no_failover() {
    let t = 2000;
    let mut n: Vec<Server> = (0..7).map(|_| slotcore(t)).collect();
    // Masters n0, n1, n2; replicas n3 of n0, n4 of n1, n5 of n2; n6 a second replica of n0.
    build(&[&n[0], &n[1], &n[2]], &[&n[3], &n[4], &n[5]]);
    let args: Vec<String> = vec![
        "--cluster".into(),
        "add-node".into(),
        addrs(&[&n[6]])[0].clone(),
        addrs(&[&n[0]])[0].clone(),
        "--cluster-slave".into(),
        "--cluster-master-id".into(),
        myid(&n[0]),
    ];
    let (ok, out) = cli_timeout(60, &args);
    assert!(ok, "add-node failed: {out}");
    {
        let all: Vec<&Server> = n.iter().collect();
        wait_for(WAIT, "the second replica to be known by every node", || {
            let id = myid(&n[6]);
            all.iter().all(|s| nodes(s).iter().any(|f| f[0] == id && f[2].contains("slave")))
        });
        links_up(&[&n[3], &n[4], &n[5], &n[6]], &all);
    }
    let n1_id = myid(&n[1]);
    n[4].kill9();
    // After the dead replica is marked failed and the orphan delay passes, one of n0's two
    // replicas follows n1 instead.
    wait_for(Duration::from_secs(40), "a replica of n0 to migrate to the orphaned master n1", || {
        [3, 6].iter().any(|&i| me(&n[i]).2 == n1_id)
    });
    let migrated = if me(&n[3]).2 == n1_id { 3 } else { 6 };
    assert!(n[migrated].log_text().contains("Migrating to orphaned master"), "{}", n[migrated].log_text());
    {
        let alive: Vec<&Server> = n.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, s)| s).collect();
        links_up(&[&n[migrated]], &alive);
    }

    // n5 (replica of n2) may not fail over by itself.
    assert_eq!(n[5].cli(&["config", "set", "cluster-replica-no-failover", "yes"]).trim(), "OK");
    let keys = write_acked(&n[2], 50);
    n[2].kill9();
    let alive: Vec<&Server> = n.iter().enumerate().filter(|(i, _)| *i != 4 && *i != 2).map(|(_, s)| s).collect();
    let all: Vec<&Server> = n.iter().collect();
    wait_state(&alive, "fail", &all);
    std::thread::sleep(Duration::from_millis(t * 2));
    assert!(!is_master(&n[5]), "a no-failover replica took over by itself");
    failover_until(&n[5], &["force"], "FAILOVER FORCE on a no-failover replica", || is_master(&n[5]));
    wait_state(&alive, "ok", &all);
    all_readable(&n[5], &keys);
}
