//! Cluster mode end to end: what the deployment guides do, against real slotcore processes,
//! driven by real `redis-cli --cluster`, `redis-cli -c`, `redis-benchmark --cluster` and the
//! `redis` crate's cluster client; and real redis-server nodes as peers on the bus.

mod common;

use common::cluster::*;
use common::{Server, WAIT};
use std::time::Duration;

fn six_slotcore() -> Vec<Server> {
    (0..6).map(|_| slotcore_node()).collect()
}

fn refs(v: &[Server]) -> Vec<&Server> {
    v.iter().collect()
}

/// Masters (by CLUSTER NODES of `entry`): (port, id).
fn masters(entry: &Server) -> Vec<(u16, String)> {
    nodes(entry)
        .into_iter()
        .filter(|f| f[2].contains("master") && f.len() > 8)
        .map(|f| {
            let port = f[1].split('@').next().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse().ok());
            (port.unwrap_or(0), f[0].clone())
        })
        .collect()
}

#[test]
fn create_six_nodes_then_redirects_benchmark_and_tools() {
    let ns = six_slotcore();
    let all = refs(&ns);
    create_agreed(&all, 1);
    let t = topology(&ns[0]);
    assert_eq!(t.iter().filter(|l| l.contains(" master ")).count(), 3, "{t:?}");
    assert_eq!(t.iter().filter(|l| l.contains(" replica ")).count(), 3, "{t:?}");

    let entry = format!("127.0.0.1:{}", ns[0].port);
    let (ok, check) = cli_timeout(30, &["--cluster".into(), "check".into(), entry.clone()]);
    assert!(ok, "{check}");
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    let (ok, info) = cli_timeout(30, &["--cluster".into(), "info".into(), entry.clone()]);
    assert!(ok && info.contains("3 masters"), "{info}");
    let (ok, call) = cli_timeout(30, &["--cluster".into(), "call".into(), entry.clone(), "PING".into()]);
    assert!(ok && call.matches("PONG").count() == 6, "{call}");
    let (ok, st) = cli_timeout(30, &["--cluster".into(), "set-timeout".into(), entry.clone(), "2000".into()]);
    assert!(ok, "{st}");

    // redis-cli -c follows MOVED: write through one node, read through another.
    let p0 = ns[0].port.to_string();
    let p3 = ns[3].port.to_string();
    for k in ["name", "age", "{user1000}.following", "x1", "x2"] {
        let w = Server::cli_port(&p0, &["-c", "set", k, &format!("v-{k}")]);
        assert_eq!(w.trim(), "OK", "set {k}: {w}");
        let r = Server::cli_port(&p3, &["-c", "get", k]);
        assert_eq!(r.trim(), format!("v-{k}"), "get {k}");
    }

    // 10000 keys through a cluster client seeded on one node, read back through another.
    let writer = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", ns[1].port)]).unwrap();
    let mut w = writer.get_connection().expect("cluster connection");
    for i in 0..10000 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut w).expect("cluster SET");
    }
    let reader = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", ns[4].port)]).unwrap();
    let mut r = reader.get_connection().expect("cluster connection");
    for i in (0..10000).step_by(7) {
        let v: i64 = redis::cmd("GET").arg(format!("key:{i}")).query(&mut r).expect("cluster GET");
        assert_eq!(v, i);
    }
    let ms = masters(&ns[0]);
    assert_eq!(ms.len(), 3);
    let sizes: Vec<i64> = ms
        .iter()
        .map(|(port, _)| Server::cli_port(&port.to_string(), &["dbsize"]).trim().parse().unwrap_or(-1))
        .collect();
    assert_eq!(sizes.iter().sum::<i64>(), 10000 + 5, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s > 2800 && s < 3900), "uneven spread {sizes:?}");

    // redis-benchmark in cluster mode runs error-free.
    let out = std::process::Command::new("timeout")
        .args(["120", "redis-benchmark", "--cluster", "-p", &p0, "-t", "set,get", "-n", "20000", "-q"])
        .output()
        .expect("redis-benchmark");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Error") && !text.contains("ERR"), "{text}");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
}

#[test]
fn by_hand_meet_addslots_replicate() {
    let ns = six_slotcore();
    for n in &ns[1..] {
        assert_eq!(n.cli(&["cluster", "meet", "127.0.0.1", &ns[0].port.to_string()]).trim(), "OK");
    }
    assert_eq!(ns[0].cli(&["cluster", "addslotsrange", "0", "5460"]).trim(), "OK");
    assert_eq!(ns[1].cli(&["cluster", "addslotsrange", "5461", "10922"]).trim(), "OK");
    assert_eq!(ns[2].cli(&["cluster", "addslotsrange", "10923", "16383"]).trim(), "OK");
    wait_for(WAIT, "all six nodes to know each other", || {
        ns.iter().all(|n| topology(n).iter().filter(|l| !l.contains("handshake")).count() == 6)
    });
    for i in 0..3 {
        let master = myid(&ns[i]);
        wait_for(WAIT, "replicate to succeed", || ns[i + 3].cli(&["cluster", "replicate", &master]).trim() == "OK");
    }
    let all = refs(&ns);
    wait_ok(&all);
    wait_for(WAIT, "roles to propagate", || {
        ns.iter().all(|n| topology(n).iter().filter(|l| l.contains(" replica ")).count() == 3)
    });
    // A replica redirects reads to its master unless READONLY.
    let mut raw = ns[3].raw();
    let slot_owner_port = ns[0].port;
    let moved = raw.cmd(&["GET", "age"]); // slot 741, served by ns[0]
    assert_eq!(moved, format!("-MOVED 741 127.0.0.1:{slot_owner_port}\r\n"));
    assert_eq!(raw.cmd(&["READONLY"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "age"]), "$-1\r\n");
    assert_eq!(raw.cmd(&["SET", "age", "1"]), format!("-MOVED 741 127.0.0.1:{slot_owner_port}\r\n"));
    assert_eq!(raw.cmd(&["FLUSHALL"]), "-READONLY You can't write against a read only replica.\r\n");
    // A script counts as a write by its flags (a shebang without no-writes), as in Redis.
    let del = "#!lua\nreturn redis.call('del', KEYS[1])";
    assert_eq!(raw.cmd(&["EVAL", del, "1", "age"]), format!("-MOVED 741 127.0.0.1:{slot_owner_port}\r\n"));
    let get = "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])";
    assert_eq!(raw.cmd(&["EVAL", get, "1", "age"]), "$-1\r\n");
    // Once it has replicated something, a replica lists itself in its own CLUSTER SLOTS.
    assert_eq!(ns[0].cli(&["set", "age", "7"]).trim(), "OK");
    let me = format!("{}", ns[3].port);
    wait_for(WAIT, "the replica in its own CLUSTER SLOTS", || {
        ns[3].cli(&["cluster", "slots"]).lines().filter(|l| l.trim() == me).count() == 1
    });
    assert_eq!(raw.cmd(&["READWRITE"]), "+OK\r\n");
    assert!(raw.cmd(&["GET", "age"]).starts_with("-MOVED 741"));
    // Cluster errors on a master.
    let mut m = ns[0].raw();
    assert_eq!(m.cmd(&["MSET", "a", "1", "b", "2"]), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    let slot: u16 = ns[0].cli(&["cluster", "keyslot", "t"]).trim().parse().expect("keyslot");
    let same_slot = m.cmd(&["MSET", "{t}a", "1", "{t}b", "2"]);
    if slot <= 5460 {
        assert_eq!(same_slot, "+OK\r\n");
    } else {
        assert!(same_slot.starts_with(&format!("-MOVED {slot} ")), "{same_slot}");
    }
    assert_eq!(m.cmd(&["SELECT", "1"]), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(m.cmd(&["SELECT", "0"]), "+OK\r\n");
}

#[test]
fn killed_master_is_flagged_fail_and_comes_back_with_its_id() {
    let mut ns: Vec<Server> = (0..3).map(|_| slotcore_node()).collect();
    {
        let all = refs(&ns);
        let out = create(&all, 0);
        assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
        wait_ok(&all);
    }
    let id2 = myid(&ns[2]);
    ns[2].kill9();
    wait_for(Duration::from_secs(30), "the killed master to be flagged fail", || {
        ns[..2].iter().all(|n| nodes(n).iter().any(|f| f[0] == id2 && f[2].split(',').any(|x| x == "fail")))
    });
    wait_for(WAIT, "cluster_state:fail without the dead master's slots", || {
        ns[..2].iter().all(|n| info_field(n, "cluster_state") == "fail")
    });
    // A key in a slot of the dead master: CLUSTERDOWN.
    assert!(ns[0].cli(&["get", "foo"]).contains("CLUSTERDOWN"), "slot 12182 belongs to the dead master");
    ns[2].restart();
    assert_eq!(myid(&ns[2]), id2, "the restarted node keeps its id (nodes.conf)");
    let all = refs(&ns);
    wait_ok(&all);
}

#[test]
fn mixed_cluster_with_real_redis_servers_converges_and_detects_failures() {
    // Alternate kinds so masters and replicas mix: masters are the first three.
    let mut ns = vec![slotcore_node(), redis_node(), slotcore_node(), redis_node(), slotcore_node(), redis_node()];
    let all = refs(&ns);
    create_agreed(&all, 1);
    // Redirects across both kinds of node.
    for (i, n) in ns.iter().enumerate() {
        let k = format!("mixed-{i}");
        assert_eq!(Server::cli_port(&n.port.to_string(), &["-c", "set", &k, "v"]).trim(), "OK");
        let other = &ns[(i + 1) % ns.len()];
        assert_eq!(Server::cli_port(&other.port.to_string(), &["-c", "get", &k]).trim(), "v");
    }
    // Kill a replica of each kind; the other nodes flag it fail.
    let replicas: Vec<usize> =
        (0..6).filter(|&i| nodes(&ns[i]).iter().any(|f| f[2].contains("myself") && f[2].contains("slave"))).collect();
    let redis_replica = *replicas.iter().find(|&&i| i % 2 == 1).expect("a redis-server replica");
    let slot_replica = *replicas.iter().find(|&&i| i % 2 == 0).expect("a slotcore replica");
    for victim in [redis_replica, slot_replica] {
        let id = myid(&ns[victim]);
        ns[victim].kill9();
        wait_for(Duration::from_secs(30), "the killed replica to be flagged fail", || {
            (0..6)
                .filter(|&j| ns[j].port != ns[victim].port && j != redis_replica && j != slot_replica)
                .all(|j| nodes(&ns[j]).iter().any(|f| f[0] == id && f[2].split(',').any(|x| x == "fail")))
        });
    }
}

#[test]
fn add_node_as_master_and_replica_then_del_node() {
    let ns: Vec<Server> = (0..3).map(|_| slotcore_node()).collect();
    let all = refs(&ns);
    create(&all, 0);
    wait_ok(&all);
    let entry = format!("127.0.0.1:{}", ns[0].port);
    let extra = slotcore_node();
    let (ok, out) =
        cli_timeout(60, &["--cluster".into(), "add-node".into(), format!("127.0.0.1:{}", extra.port), entry.clone()]);
    assert!(ok && out.contains("[OK] New node added correctly."), "{out}");
    // Let gossip spread the new node before the next add-node checks agreement.
    let extra_id = myid(&extra);
    wait_for(WAIT, "every node to know the added master", || {
        ns.iter().all(|n| nodes(n).iter().any(|f| f[0] == extra_id && !f[2].contains("handshake")))
            && nodes(&extra).len() == 4
    });
    let replica = slotcore_node();
    let master_id = myid(&ns[0]);
    let (ok, out) = cli_timeout(
        60,
        &[
            "--cluster".into(),
            "add-node".into(),
            format!("127.0.0.1:{}", replica.port),
            entry.clone(),
            "--cluster-slave".into(),
            "--cluster-master-id".into(),
            master_id.clone(),
        ],
    );
    assert!(ok && out.contains("[OK] New node added correctly."), "{out}");
    wait_for(WAIT, "the new replica to be seen as a replica", || {
        nodes(&ns[1]).iter().any(|f| f[0] == myid(&replica) && f[2].contains("slave") && f[3] == master_id)
    });
    // Remove the empty master again.
    let (ok, out) = cli_timeout(60, &["--cluster".into(), "del-node".into(), entry.clone(), extra_id.clone()]);
    assert!(ok, "{out}");
    assert!(out.contains("SHUTDOWN") || out.contains("Sending CLUSTER RESET SOFT"), "{out}");
    wait_for(WAIT, "every remaining node to forget the deleted one", || {
        ns.iter().all(|n| !nodes(n).iter().any(|f| f[0] == extra_id))
    });
    // The forgotten node stays forgotten (the 60 s ban keeps gossip from re-adding it).
    std::thread::sleep(Duration::from_secs(2));
    assert!(ns.iter().all(|n| !nodes(n).iter().any(|f| f[0] == extra_id)));
}

#[test]
fn malformed_bus_traffic_is_dropped_and_the_node_keeps_serving() {
    use std::io::Write;
    let n = slotcore_node();
    let bus = n.port + 10000;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // A valid-looking header with a bad length, a truncated PING, a wrong version, and noise.
    let mut header = vec![0u8; 2256];
    header[..4].copy_from_slice(b"RCmb");
    header[4..8].copy_from_slice(&2256u32.to_be_bytes());
    header[8..10].copy_from_slice(&1u16.to_be_bytes());
    let mut truncated = header.clone();
    truncated[4..8].copy_from_slice(&4000u32.to_be_bytes());
    truncated.resize(3000, 0);
    let mut bad_version = header.clone();
    bad_version[8..10].copy_from_slice(&9u16.to_be_bytes());
    let mut bad_len = header.clone();
    bad_len[4..8].copy_from_slice(&12u32.to_be_bytes());
    let mut payloads = vec![header, truncated, bad_version, bad_len];
    for _ in 0..20 {
        let len = (rnd() % 5000) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if rnd() % 2 == 0 && p.len() > 8 {
            p[..4].copy_from_slice(b"RCmb");
        }
        payloads.push(p);
    }
    for p in payloads {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", bus)) {
            let _ = s.write_all(&p);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(n.cli(&["ping"]).trim(), "PONG");
    assert_eq!(info_field(&n, "cluster_known_nodes"), "1", "garbage must not add nodes");
}

#[test]
fn idle_cluster_node_uses_almost_no_cpu() {
    let n = slotcore_node();
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(500));
    let before = ticks(n.pid());
    std::thread::sleep(Duration::from_secs(3));
    let used = ticks(n.pid()) - before;
    // 3 s of wall time is 300 ticks at 100 Hz; an idle node must stay far below 1 core.
    assert!(used <= 9, "idle cluster node used {used} CPU ticks in 3 s");
}

#[test]
fn nodes_conf_is_locked_and_kept_across_restarts() {
    let mut n = slotcore_node();
    let id = myid(&n);
    let conf = n.dir.join("nodes.conf");
    let text = std::fs::read_to_string(&conf).expect("nodes.conf written at start-up");
    assert!(text.starts_with(&format!("{id} ")), "{text}");
    assert!(text.ends_with("vars currentEpoch 0 lastVoteEpoch 0\n"), "{text}");
    // A second process on the same nodes.conf is refused with Redis's message.
    let port = common::free_port();
    let out = std::process::Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &port.to_string(), "--cluster-enabled", "yes", "--pin-cores", "no", "--dir"])
        .arg(&n.dir)
        .output()
        .expect("second slotcore");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is already used by a different Redis Cluster node"), "{text}");
    // Epochs and slots survive a restart.
    assert_eq!(n.cli(&["cluster", "addslots", "1", "2", "3"]).trim(), "OK");
    assert!(n.cli(&["cluster", "bumpepoch"]).starts_with("BUMPED"));
    n.restart();
    assert_eq!(myid(&n), id);
    let me = nodes(&n).into_iter().find(|f| f[2].contains("myself")).expect("myself line");
    assert_eq!(me[6], "1", "configEpoch kept: {me:?}");
    assert_eq!(me[8..], ["1-3".to_string()], "{me:?}");
}

/// Two masters of one kind: `a` serves every slot, `b` none.
fn two_masters(a: &Server, b: &Server) {
    assert_eq!(a.cli(&["cluster", "addslotsrange", "0", "16383"]).trim(), "OK");
    assert_eq!(a.cli(&["cluster", "meet", "127.0.0.1", &b.port.to_string()]).trim(), "OK");
    wait_ok(&[a, b]);
}

/// What a subscriber of two shard channels of one slot (and one of another slot) reads when
/// that slot moves to `b` with CLUSTER SETSLOT NODE.
fn shard_channels_of_a_moved_slot(a: &Server, b: &Server) -> Vec<String> {
    two_masters(a, b);
    let slot = a.cli(&["cluster", "keyslot", "{c}"]).trim().to_string();
    let mut sub = a.raw();
    let mut out = vec![sub.cmd(&["SSUBSCRIBE", "{c}2", "{c}1"]), sub.reply(), sub.cmd(&["SSUBSCRIBE", "other"])];
    assert_eq!(b.cli(&["cluster", "setslot", &slot, "importing", &myid(a)]).trim(), "OK");
    assert_eq!(a.cli(&["cluster", "setslot", &slot, "migrating", &myid(b)]).trim(), "OK");
    assert_eq!(a.cli(&["spublish", "{c}1", "still here"]).trim(), "1");
    out.push(sub.reply());
    assert_eq!(a.cli(&["cluster", "setslot", &slot, "node", &myid(b)]).trim(), "OK");
    out.push(sub.reply());
    out.push(sub.reply());
    out.push(sub.cmd(&["SUNSUBSCRIBE"]));
    out
}

#[test]
fn shard_channels_of_a_slot_that_moves_away_are_unsubscribed_as_redis() {
    // Found by Redis's cluster pubsubshard-slot-migration test: the subscriber waited for its
    // sunsubscribe for ever.
    let want = shard_channels_of_a_moved_slot(&redis_node(), &redis_node());
    assert!(want[4].contains("sunsubscribe"), "{want:?}");
    let got = shard_channels_of_a_moved_slot(&slotcore_node(), &slotcore_node());
    assert_eq!(got, want);
}

#[test]
fn a_dropped_bus_message_type_is_ignored() {
    let node = || {
        Server::slotcore(&[
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "1000",
            "--enable-debug-command",
            "yes",
        ])
    };
    let (a, b) = (node(), node());
    two_masters(&a, &b);
    let mut r = b.raw();
    assert_eq!(
        r.cmd(&["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // b ignores every PING (type 0), so it answers none: a's last PONG from b stops moving.
    let b_id = myid(&b);
    let pong_of_b = |a: &Server| -> u64 {
        nodes(a).into_iter().find(|f| f[0] == b_id).and_then(|f| f[5].parse().ok()).unwrap_or(0)
    };
    let before = pong_of_b(&a);
    wait_for(WAIT, "a to hear a PONG from b", || pong_of_b(&a) > before);
    assert_eq!(r.cmd(&["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "0"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let held = pong_of_b(&a);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(pong_of_b(&a), held, "b answered a PING it should have dropped");
    assert!(b.log_text().contains("Dropping packet that matches debug drop filter"));
    assert_eq!(r.cmd(&["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1"]), "+OK\r\n");
    wait_for(WAIT, "b to answer a's PINGs again", || pong_of_b(&a) > held);
}

/// The `to` link's create-time in `a`'s CLUSTER LINKS for node `id` (0: none).
fn to_link_ctime(a: &Server, id: &str) -> i64 {
    let text = a.cli(&["cluster", "links"]);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(6)
        .find(|w| w[0] == "direction" && w[1] == "to" && w[2] == "node" && w[3] == id && w[4] == "create-time")
        .and_then(|w| w[5].parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_link_over_the_send_buffer_limit_is_freed_and_made_again() {
    let (a, b) = (slotcore_node(), slotcore_node());
    two_masters(&a, &b);
    assert_eq!(a.cli(&["config", "set", "cluster-node-timeout", "3600000"]).trim(), "OK");
    assert_eq!(a.cli(&["config", "set", "cluster-link-sendbuf-limit", "256kb"]).trim(), "OK");
    let b_id = myid(&b);
    wait_for(WAIT, "a's link to b", || to_link_ctime(&a, &b_id) > 0);
    let first = to_link_ctime(&a, &b_id);
    let exceeded =
        |a: &Server| info_field_of(&a.cli(&["cluster", "info"]), "total_cluster_links_buffer_limit_exceeded");
    assert_eq!(exceeded(&a), 0);
    // b stops reading: what a publishes piles up in its link to b.
    let stop = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &b.pid().to_string()]).status().map(|s| s.success());
        assert_eq!(ok.ok(), Some(true));
    };
    stop("-STOP");
    let message = "x".repeat(128 * 1024);
    let mut c = a.raw();
    let mut sent = 0;
    while exceeded(&a) == 0 && sent < 200 {
        c.cmd(&["PUBLISH", "channel", &message]);
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    stop("-CONT");
    assert!(exceeded(&a) >= 1, "no link freed after {sent} messages of 128 KB");
    assert!(a.log_text().contains("due to exceeding send buffer memory limit"));
    wait_for(WAIT, "a new link to b", || to_link_ctime(&a, &b_id) > first);
    wait_ok(&[&a, &b]);
}

fn info_field_of(text: &str, field: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// The MOVED a node gives for a key of the other master, under each
/// cluster-preferred-endpoint-type, once it knows the other's hostname (or that it has none).
fn redirects_by_endpoint_type(a: &Server, b: &Server) -> Vec<String> {
    two_masters(a, b);
    let mut out = Vec::new();
    for (host, ep) in
        [("a.example", "ip"), ("a.example", "hostname"), ("", "hostname"), ("a.example", "unknown-endpoint")]
    {
        assert_eq!(a.cli(&["config", "set", "cluster-announce-hostname", host]).trim(), "OK");
        let a_id = myid(a);
        wait_for(WAIT, "b to learn a's hostname", || {
            let line = b.cli(&["cluster", "nodes"]).lines().find(|l| l.starts_with(&a_id)).map(str::to_string);
            line.is_some_and(|l| {
                l.split(' ')
                    .nth(1)
                    .is_some_and(|f| f.ends_with(&format!(",{host}")) || host.is_empty() && !f.contains(','))
            })
        });
        assert_eq!(b.cli(&["config", "set", "cluster-preferred-endpoint-type", ep]).trim(), "OK");
        let moved = b.raw().cmd(&["GET", "foo"]).replace(&a.port.to_string(), "PORT");
        out.push(moved);
    }
    out
}

#[test]
fn redirects_name_nodes_by_the_preferred_endpoint_type_as_redis() {
    // Found by Redis's cluster endpoints test: MOVED always gave the IP.
    let want = redirects_by_endpoint_type(&redis_node(), &redis_node());
    assert_eq!(want[1], "-MOVED 12182 a.example:PORT\r\n", "{want:?}");
    let got = redirects_by_endpoint_type(&slotcore_node(), &slotcore_node());
    assert_eq!(got, want);
}

/// A master restarted from its AOF with a key of a slot another node serves (set under
/// ASKING while importing it, the mark then cleared with STABLE) and a key of another such
/// slot that was deleted again: returns the keys it then counts in each slot and the slot
/// marks of its CLUSTER NODES line.
fn foreign_keys_after_an_aof_restart(mut a: Server, b: Server) -> (String, String, Vec<String>) {
    two_masters(&b, &a);
    let (s, t) = (a.cli(&["cluster", "keyslot", "{x}"]), a.cli(&["cluster", "keyslot", "{y}"]));
    let (s, t) = (s.trim().to_string(), t.trim().to_string());
    let b_id = myid(&b);
    for slot in [&s, &t] {
        assert_eq!(a.cli(&["cluster", "setslot", slot, "importing", &b_id]).trim(), "OK");
    }
    let mut c = a.raw();
    for cmd in [&["SET", "{x}k", "v"][..], &["SET", "{y}k", "v"], &["DEL", "{y}k"]] {
        assert_eq!(c.cmd(&["ASKING"]), "+OK\r\n");
        assert!(!c.cmd(cmd).starts_with('-'), "{cmd:?}");
    }
    for slot in [&s, &t] {
        assert_eq!(a.cli(&["cluster", "setslot", slot, "stable"]).trim(), "OK");
    }
    a.restart();
    let count = |slot: &str| a.cli(&["cluster", "countkeysinslot", slot]).trim().to_string();
    // Whatever the node does with them, it does at start-up and when the slot map settles.
    wait_ok(&[&a, &b]);
    std::thread::sleep(Duration::from_millis(500));
    let me = nodes(&a).into_iter().find(|n| n[2].contains("myself")).expect("myself");
    let marks = me[8..].iter().map(|m| m.replace(&b_id, "B")).collect();
    (count(&s), count(&t), marks)
}

#[test]
fn a_master_restarted_from_its_aof_keeps_keys_of_slots_served_elsewhere_as_redis() {
    // Found by Redis's cluster resharding test: a master restarted from its AOF marked only
    // the slots of its base file's keys, dropped the keys its AOF commands made in other
    // nodes' slots once the slot map was published, and its replica, synced before, kept them.
    let aof = ["--appendonly", "yes", "--appendfsync", "always"];
    let redis = |_| {
        Server::redis(&[&["--cluster-enabled", "yes", "--cluster-node-timeout", NODE_TIMEOUT][..], &aof[..]].concat())
    };
    let want = foreign_keys_after_an_aof_restart(redis(0), redis(1));
    let slotcore = |_| {
        Server::slotcore(
            &[&["--cluster-enabled", "yes", "--cluster-node-timeout", NODE_TIMEOUT, "--shards", "2"][..], &aof[..]]
                .concat(),
        )
    };
    let got = foreign_keys_after_an_aof_restart(slotcore(0), slotcore(1));
    assert_eq!(want.0, "1", "redis-server: {want:?}");
    assert_eq!(want.1, "0", "redis-server: {want:?}");
    assert_eq!(got, want);
}
