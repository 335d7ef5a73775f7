//! CLUSTER subcommands, READONLY / READWRITE / ASKING and the cluster-mode restrictions,
//! compared with a real `redis-server --cluster-enabled yes`: byte for byte where the reply
//! holds no node id or port, and after replacing ids and ports by placeholders of the same
//! length where it does (CLUSTER NODES / SLOTS / SHARDS, nodes.conf). One node each: until the
//! cluster bus is in, two slotcore nodes do not see each other, so multi-node topology is
//! exercised through the handshake entry CLUSTER MEET creates.

mod common;
use common::{assert_same, Raw, Server};
use std::time::{Duration, Instant};

/// Both servers in cluster mode, past Redis's 2 s start-up delay before `cluster_state:ok`.
fn pair(extra: &[&str]) -> (Server, Server) {
    let mut a = vec!["--shards", "2", "--cluster-enabled", "yes"];
    a.extend_from_slice(extra);
    let s = Server::slotcore(&a);
    let mut b = vec!["--cluster-enabled", "yes"];
    b.extend_from_slice(extra);
    let o = Server::redis(&b);
    std::thread::sleep(Duration::from_millis(2100));
    (s, o)
}

fn bulk_text(reply: &str) -> String {
    // `$N\r\n<text>\r\n` or `=N\r\ntxt:<text>\r\n`.
    let body = reply.split_once("\r\n").map(|x| x.1).unwrap_or("");
    let body = body.strip_prefix("txt:").unwrap_or(body);
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

fn myid(r: &mut Raw) -> String {
    bulk_text(&r.cmd(&["CLUSTER", "MYID"]))
}

/// Replaces node ids (`ids[i]` -> `ID<i>` padded to 40) and the node's ports by placeholders
/// of the same length, so bulk lengths stay valid.
fn norm(text: &str, ids: &[String], port: u16) -> String {
    let mut t = text.to_string();
    for (i, id) in ids.iter().enumerate() {
        t = t.replace(id.as_str(), &format!("{:-<40}", format!("ID{i}")));
    }
    t = t.replace(&format!(":{}@{}", port, port + 10000), ":PPPPP@CCCCC");
    t.replace(&format!(":{port}\r\n"), ":PPPPP\r\n")
}

fn wait_state_ok(r: &mut Raw) {
    let start = Instant::now();
    while !r.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
        assert!(start.elapsed() < Duration::from_secs(15), "cluster_state never became ok");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn standalone_refuses_cluster_commands() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["CLUSTER", "INFO"],
            &["CLUSTER", "HELP"],
            &["CLUSTER", "NODES"],
            &["CLUSTER", "MYID"],
            &["CLUSTER", "SLOTS"],
            &["CLUSTER", "KEYSLOT", "a"],
            &["CLUSTER", "ADDSLOTS", "1"],
            &["CLUSTER", "RESET", "HARD"],
            &["CLUSTER", "BOGUS"],
            &["CLUSTER", "KEYSLOT"],
            &["CLUSTER"],
            &["READONLY"],
            &["READWRITE"],
            &["ASKING"],
            &["INFO", "cluster"],
            &["SELECT", "1"],
        ],
    );
    let info = s.raw().cmd(&["INFO", "server"]);
    assert!(info.contains("redis_mode:standalone\r\n"), "{info}");
}

#[test]
fn errors_and_slot_assignment_match_redis() {
    let (s, o) = pair(&["--cluster-node-timeout", "500"]);
    let (mut a, mut b) = (s.raw(), o.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["CLUSTER", "HELP"],
            &["cluster", "help"],
            &["CLUSTER", "INFO"],
            &["CLUSTER", "LINKS"],
            &["INFO", "cluster"],
            &["CLUSTER", "MEET", "1.2.3.256", "7000"],
            &["CLUSTER", "MEET", "127.0.0.1", "abc"],
            &["CLUSTER", "MEET", "127.0.0.1", "7000", "abc"],
            &["CLUSTER", "MEET", "127.0.0.1", "0"],
            &["CLUSTER", "MEET", "127.0.0.1", "70000"],
            &["CLUSTER", "MEET", "127.0.0.1", "7000", "0"],
            &["CLUSTER", "MEET", "localhost", "7000"],
            &["CLUSTER", "MEET", "127.000.0.1", "7000"],
            &["CLUSTER", "MEET", "a", "b", "c", "d"],
            &["CLUSTER", "MEET", "a"],
            &["CLUSTER", "bogus"],
            &["CLUSTER", "SETSLOT", "1"],
            &["CLUSTER", "SETSLOT", "1", "node"],
            &["CLUSTER", "SETSLOT", "x", "node", "a"],
            &["CLUSTER", "SETSLOT", "16384", "stable"],
            &["CLUSTER", "SETSLOT", "1", "foo"],
            &["CLUSTER", "SETSLOT", "1", "stable", "x"],
            &["CLUSTER", "SETSLOT", "1", "migrating", "abc"],
            &["CLUSTER", "SETSLOT", "1", "importing", "abc"],
            &["CLUSTER", "SETSLOT", "1", "NODE", "abc"],
            &["CLUSTER", "SETSLOT", "1", "STABLE"],
            &["CLUSTER", "RESET", "a", "b"],
            &["CLUSTER", "RESET", "foo"],
            &["CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"],
            &["CLUSTER", "DELSLOTSRANGE", "1", "2", "3"],
            &["CLUSTER", "ADDSLOTSRANGE", "5", "2"],
            &["CLUSTER", "ADDSLOTSRANGE", "1", "x"],
            &["CLUSTER", "COUNTKEYSINSLOT", "x"],
            &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
            &["CLUSTER", "COUNTKEYSINSLOT", "-1"],
            &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
            &["CLUSTER", "GETKEYSINSLOT", "x", "1"],
            &["CLUSTER", "GETKEYSINSLOT", "1", "x"],
            &["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
            &["CLUSTER", "SET-CONFIG-EPOCH", "-1"],
            &["CLUSTER", "SET-CONFIG-EPOCH", "x"],
            &["CLUSTER", "FORGET", "abc"],
            &["CLUSTER", "REPLICATE", "abc"],
            &["CLUSTER", "REPLICAS", "abc"],
            &["CLUSTER", "SLAVES", "abc"],
            &["CLUSTER", "COUNT-FAILURE-REPORTS", "abc"],
            &["CLUSTER", "KEYSLOT"],
            &["CLUSTER", "NODES", "x"],
            &["CLUSTER", "ADDSLOTS", "1", "1"],
            &["CLUSTER", "ADDSLOTS", "1", "x"],
            &["CLUSTER", "DELSLOTS", "1"],
            &["CLUSTER", "ADDSLOTS", "16384"],
            &["CLUSTER", "ADDSLOTS", "-1"],
            &["CLUSTER", "ADDSLOTS", "+1"],
            // Hash slots.
            &["CLUSTER", "KEYSLOT", "name"],
            &["CLUSTER", "KEYSLOT", "{user1000}.following"],
            &["CLUSTER", "KEYSLOT", "foo{{bar}}zap"],
            &["CLUSTER", "KEYSLOT", ""],
            &["CLUSTER", "KEYSLOT", "{}"],
            // Assignment.
            &["CLUSTER", "ADDSLOTS", "0", "1", "2", "5"],
            &["CLUSTER", "ADDSLOTS", "3", "5"],
            &["CLUSTER", "ADDSLOTSRANGE", "100", "200", "300", "400"],
            &["CLUSTER", "ADDSLOTSRANGE", "150", "155"],
            &["CLUSTER", "DELSLOTS", "1"],
            &["CLUSTER", "DELSLOTS", "1"],
            &["CLUSTER", "DELSLOTS", "2", "2"],
            &["CLUSTER", "DELSLOTSRANGE", "150", "160"],
            &["CLUSTER", "DELSLOTSRANGE", "150", "151"],
            &["CLUSTER", "ADDSLOTSRANGE", "150", "155", "155", "156"],
            &["CLUSTER", "ADDSLOTSRANGE", "150", "155", "156", "160"],
            &["CLUSTER", "INFO"],
            &["CLUSTER", "COUNTKEYSINSLOT", "0"],
            &["CLUSTER", "GETKEYSINSLOT", "0", "10"],
            &["CLUSTER", "FLUSHSLOTS"],
            &["CLUSTER", "INFO"],
            // Epochs.
            &["CLUSTER", "BUMPEPOCH"],
            &["CLUSTER", "BUMPEPOCH"],
            &["CLUSTER", "SET-CONFIG-EPOCH", "5"],
            &["CLUSTER", "SET-CONFIG-EPOCH", "6"],
            &["CLUSTER", "BUMPEPOCH"],
            &["CLUSTER", "INFO"],
            &["CLUSTER", "SAVECONFIG"],
            // Cluster-mode restrictions.
            &["SELECT", "1"],
            &["SELECT", "0"],
            &["SELECT", "x"],
            &["SELECT", "-1"],
            &["SWAPDB", "0", "1"],
            &["READONLY"],
            &["READWRITE"],
            &["ASKING"],
            &["READONLY", "x"],
        ],
    );
    // Full coverage: the state turns ok, and the key-counting subcommands see the keys. After
    // being in a minority a master waits clamp(node-timeout, 500, 5000) ms before turning ok;
    // wait that out first, since nothing re-evaluates the state of a node left alone.
    std::thread::sleep(Duration::from_millis(600));
    assert_same(&mut a, &mut b, &[&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]]);
    wait_state_ok(&mut a);
    wait_state_ok(&mut b);
    assert_same(
        &mut a,
        &mut b,
        &[
            &["CLUSTER", "INFO"],
            &["SET", "age", "1"],
            &["SET", "name", "x"],
            &["SET", "{name}2", "x"],
            &["SET", "{name}3", "x"],
            &["CLUSTER", "COUNTKEYSINSLOT", "741"],
            &["CLUSTER", "COUNTKEYSINSLOT", "5798"],
            &["CLUSTER", "COUNTKEYSINSLOT", "5799"],
            &["CLUSTER", "GETKEYSINSLOT", "741", "10"],
            &["CLUSTER", "GETKEYSINSLOT", "741", "0"],
            &["CLUSTER", "GETKEYSINSLOT", "5799", "3"],
            &["MOVE", "age", "1"],
            &["COPY", "age", "{age}x", "DB", "1"],
            &["COPY", "age", "{age}2"],
            &["CLUSTER", "FLUSHSLOTS"],
            &["CLUSTER", "RESET"],
            &["CLUSTER", "RESET", "SOFT"],
            &["CLUSTER", "DELSLOTS", "742"],
            &["CLUSTER", "ADDSLOTS", "742"],
            &["CLUSTER", "SETSLOT", "741", "STABLE"],
        ],
    );
    // Three keys in slot 5798; two of them, in whatever order.
    for r in [&mut a, &mut b] {
        let got = r.cmd(&["CLUSTER", "GETKEYSINSLOT", "5798", "2"]);
        assert!(got.starts_with("*2\r\n"), "{got}");
        let got = r.cmd(&["CLUSTER", "GETKEYSINSLOT", "5798", "100"]);
        let mut keys: Vec<&str> = got.split("\r\n").filter(|l| !l.starts_with(['*', '$']) && !l.is_empty()).collect();
        keys.sort();
        assert_eq!(keys, ["name", "{name}2", "{name}3"], "{got}");
    }
    // A key on the other shard of the two-shard node ("a" is in slot 15495).
    assert_same(
        &mut a,
        &mut b,
        &[&["SET", "a", "1"], &["CLUSTER", "COUNTKEYSINSLOT", "15495"], &["CLUSTER", "GETKEYSINSLOT", "15495", "1"]],
    );
    // SETSLOT ... NODE towards another node (a handshake node passes Redis's master checks);
    // Redis drops handshake nodes after max(node-timeout, 1 s), so this runs quickly. (Giving a
    // slot to a handshake node is left out: redis-server 7.0.15 then dies on an assertion in
    // clusterGetNodesServingMySlots when the slot is deleted.)
    let silent = common::free_port().to_string();
    let mut handshake = Vec::new();
    for r in [&mut a, &mut b] {
        assert_eq!(r.cmd(&["CLUSTER", "MEET", "127.0.0.1", &silent]), "+OK\r\n");
        let nodes = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        let h = nodes.lines().find(|l| l.contains("handshake")).expect("handshake node").split(' ').next().unwrap();
        handshake.push(h.to_string());
    }
    let steps: &[&[&str]] = &[
        &["CLUSTER", "SETSLOT", "741", "NODE", "$H"],
        &["CLUSTER", "SETSLOT", "741", "MIGRATING", "$H"],
        &["CLUSTER", "SETSLOT", "741", "NODE", "$H"],
        &["CLUSTER", "SETSLOT", "741", "STABLE"],
        &["CLUSTER", "FORGET", "$H"],
        &["CLUSTER", "INFO"],
    ];
    for step in steps {
        let mut got = Vec::new();
        for (r, h) in [(&mut a, &handshake[0]), (&mut b, &handshake[1])] {
            let cmd: Vec<&str> = step.iter().map(|x| if *x == "$H" { h.as_str() } else { x }).collect();
            got.push(r.cmd(&cmd));
        }
        assert_eq!(got[0], got[1], "command {step:?}");
    }
    assert_same(
        &mut a,
        &mut b,
        &[&["FLUSHALL"], &["CLUSTER", "FLUSHSLOTS"], &["CLUSTER", "INFO"], &["CLUSTER", "SLOTS"]],
    );
    let info = a.cmd(&["INFO", "server"]);
    assert!(info.contains("redis_mode:cluster\r\n"), "{info}");
    // CONFIG SET reaches the cluster state: without full coverage one slot is enough.
    assert_same(&mut a, &mut b, &[&["CONFIG", "SET", "cluster-require-full-coverage", "no"]]);
    std::thread::sleep(Duration::from_millis(600));
    assert_same(&mut a, &mut b, &[&["CLUSTER", "ADDSLOTS", "7"]]);
    wait_state_ok(&mut a);
    wait_state_ok(&mut b);
    assert_same(&mut a, &mut b, &[&["CLUSTER", "INFO"]]);
}

#[test]
fn replies_with_node_ids_match_redis() {
    let (s, o) = pair(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    let (ida, idb) = (myid(&mut a), myid(&mut b));
    assert_eq!(ida.len(), 40);
    assert!(ida.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{ida}");
    let same = |a: &mut Raw, b: &mut Raw, cmd: &[&str], ida: &str, idb: &str| {
        let ca: Vec<&str> = cmd.iter().map(|x| if *x == "$ME" { ida } else { x }).collect();
        let cb: Vec<&str> = cmd.iter().map(|x| if *x == "$ME" { idb } else { x }).collect();
        let ra = norm(&a.cmd(&ca), &[ida.to_string()], s.port);
        let rb = norm(&b.cmd(&cb), &[idb.to_string()], o.port);
        assert_eq!(ra, rb, "command {cmd:?}");
    };
    for cmd in [
        &["CLUSTER", "NODES"][..],
        &["CLUSTER", "MYID"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "ADDSLOTS", "0", "1", "2", "5", "7", "8"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "REPLICAS", "$ME"],
        &["CLUSTER", "SLAVES", "$ME"],
        &["CLUSTER", "COUNT-FAILURE-REPORTS", "$ME"],
        &["CLUSTER", "FORGET", "$ME"],
        &["CLUSTER", "REPLICATE", "$ME"],
        &["CLUSTER", "SETSLOT", "0", "IMPORTING", "$ME"],
        &["CLUSTER", "SETSLOT", "9", "MIGRATING", "$ME"],
        &["CLUSTER", "SETSLOT", "0", "MIGRATING", "$ME"],
        &["CLUSTER", "SETSLOT", "1000", "importing", "$ME"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "SETSLOT", "0", "stable"],
        &["CLUSTER", "NODES"],
        // Taking an importing slot bumps the epoch without consensus.
        &["CLUSTER", "SETSLOT", "1000", "node", "$ME"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "INFO"],
        &["CLUSTER", "SETSLOT", "8", "NODE", "$ME"],
        &["CLUSTER", "SLOTS"],
    ] {
        same(&mut a, &mut b, cmd, &ida, &idb);
    }
    // The same commands in RESP3: NODES/INFO verbatim, maps as %.
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    for cmd in [
        &["CLUSTER", "NODES"][..],
        &["CLUSTER", "INFO"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "LINKS"],
    ] {
        same(&mut a, &mut b, cmd, &ida, &idb);
    }
    a.cmd(&["HELLO", "2"]);
    b.cmd(&["HELLO", "2"]);

    // nodes.conf: the CLUSTER NODES text plus the vars line.
    std::thread::sleep(Duration::from_millis(100));
    let fa = std::fs::read_to_string(s.dir.join("nodes.conf")).expect("slotcore nodes.conf");
    let fb = std::fs::read_to_string(o.dir.join("nodes.conf")).expect("redis nodes.conf");
    assert_eq!(norm(&fa, std::slice::from_ref(&ida), s.port), norm(&fb, std::slice::from_ref(&idb), o.port));

    // MEET adds a handshake node (nobody listens there); the ids of handshake nodes differ.
    let silent = common::free_port();
    for (r, id) in [(&mut a, &ida), (&mut b, &idb)] {
        let port = silent.to_string();
        assert_eq!(r.cmd(&["CLUSTER", "MEET", "127.0.0.1", &port]), "+OK\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "MEET", "127.0.0.1", &port]), "+OK\r\n", "a handshake in progress is fine");
        assert_eq!(r.cmd(&["CLUSTER", "MEET", "0:0::1", &port, "19000"]), "+OK\r\n");
        let nodes = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        let hs: Vec<&str> = nodes.lines().filter(|l| l.contains("handshake")).collect();
        assert_eq!(hs.len(), 2, "{nodes}");
        let shapes: Vec<String> = hs.iter().map(|l| l.split_once(' ').unwrap().1.to_string()).collect();
        assert!(
            shapes.contains(&format!("127.0.0.1:{silent}@{} handshake - 0 0 0 disconnected", silent + 10000)),
            "{nodes}"
        );
        assert!(shapes.contains(&format!("::1:{silent}@19000 handshake - 0 0 0 disconnected")), "{nodes}");
        let info = r.cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_known_nodes:3\r\n"), "{info}");
        let info = r.cmd(&["INFO", "clients"]);
        assert!(info.contains("cluster_connections:4\r\n"), "{info}");
        assert_eq!(
            r.cmd(&["CLUSTER", "SET-CONFIG-EPOCH", "3"]),
            "-ERR The user can assign a config epoch only when the node does not know any other node.\r\n"
        );
        // Handshake nodes carry no slave flag, so Redis's master checks let them through.
        let h = hs[0].split(' ').next().unwrap().to_string();
        assert_eq!(r.cmd(&["CLUSTER", "REPLICAS", &h]), "*0\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "COUNT-FAILURE-REPORTS", &h]), ":0\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "SETSLOT", "100", "IMPORTING", &h]), "+OK\r\n");
        assert!(bulk_text(&r.cmd(&["CLUSTER", "NODES"])).contains(&format!("[100-<-{h}]")));
        assert_eq!(r.cmd(&["CLUSTER", "SETSLOT", "100", "STABLE"]), "+OK\r\n");
        assert_eq!(
            r.cmd(&["CLUSTER", "REPLICATE", &h]),
            "-ERR To set a master the node must be empty and without assigned slots.\r\n"
        );
        // SHARDS lists masters only; the handshake nodes are not.
        let shards = r.cmd(&["CLUSTER", "SHARDS"]);
        assert!(shards.starts_with("*1\r\n"), "{shards}");
        assert_eq!(r.cmd(&["CLUSTER", "FORGET", &h]), "+OK\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "FORGET", &h]), format!("-ERR Unknown node {h}\r\n"));
        let info = r.cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_known_nodes:2\r\n"), "{info}");
        // RESET forgets the rest; HARD takes a new name and zeroes the epochs.
        assert_eq!(r.cmd(&["CLUSTER", "RESET", "HARD"]), "+OK\r\n");
        let new = myid(r);
        assert_ne!(&new, id);
        let nodes = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        assert_eq!(nodes.lines().count(), 1, "{nodes}");
        assert!(nodes.ends_with(" myself,master - 0 0 0 connected\n"), "{nodes}");
        let info = r.cmd(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_current_epoch:0\r\ncluster_my_epoch:0\r\n"), "{info}");
        assert!(info.contains("cluster_slots_assigned:0\r\n"), "{info}");
    }
}

#[test]
fn replicate_makes_a_replica_and_reset_makes_it_a_master_again() {
    let (s, o) = pair(&[]);
    let silent = common::free_port().to_string();
    for r in [&mut s.raw(), &mut o.raw()] {
        assert_eq!(r.cmd(&["CLUSTER", "MEET", "127.0.0.1", &silent]), "+OK\r\n");
        let nodes = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        let h = nodes.lines().find(|l| l.contains("handshake")).unwrap().split(' ').next().unwrap().to_string();
        // An empty master may follow any non-replica node.
        assert_eq!(r.cmd(&["CLUSTER", "REPLICATE", &h]), "+OK\r\n");
        let me = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        let mine = me.lines().find(|l| l.contains("myself")).unwrap().to_string();
        assert!(mine.contains(&format!(" myself,slave {h} 0 0 0 connected")), "{mine}");
        assert_eq!(r.cmd(&["CLUSTER", "SETSLOT", "1", "STABLE"]), "-ERR Please use SETSLOT only with masters.\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "FORGET", &h]), "-ERR Can't forget my master!\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "REPLICAS", &h]), format!("*1\r\n${}\r\n{}\r\n", mine.len(), mine));
        assert_eq!(r.cmd(&["CLUSTER", "SLOTS"]), "*0\r\n");
        assert_eq!(r.cmd(&["CLUSTER", "RESET"]), "+OK\r\n");
        let me = bulk_text(&r.cmd(&["CLUSTER", "NODES"]));
        assert_eq!(me.lines().count(), 1, "{me}");
        assert!(me.contains(" myself,master - 0 0 0 connected"), "{me}");
    }
}

#[test]
fn hostname_endpoints_match_redis() {
    for ep in ["hostname", "ip", "unknown-endpoint"] {
        let (s, o) = pair(&["--cluster-announce-hostname", "node1.example", "--cluster-preferred-endpoint-type", ep]);
        let (mut a, mut b) = (s.raw(), o.raw());
        let (ida, idb) = (myid(&mut a), myid(&mut b));
        for cmd in [
            &["CLUSTER", "ADDSLOTSRANGE", "0", "10", "20", "30"][..],
            &["CLUSTER", "NODES"],
            &["CLUSTER", "SLOTS"],
            &["CLUSTER", "SHARDS"],
            &["HELLO", "3", "SETNAME", "x"],
            &["CLUSTER", "SLOTS"],
            &["CLUSTER", "SHARDS"],
        ] {
            let ra = norm(&a.cmd(cmd), std::slice::from_ref(&ida), s.port);
            let rb = norm(&b.cmd(cmd), std::slice::from_ref(&idb), o.port);
            if cmd[0] == "HELLO" {
                continue;
            }
            assert_eq!(ra, rb, "{ep}: command {cmd:?}");
        }
        // Bad hostnames are refused as by Redis.
        let long = "x".repeat(256);
        let valid = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
        for cmd in [
            &["CONFIG", "SET", "cluster-announce-hostname", &long][..],
            &["CONFIG", "SET", "cluster-announce-hostname", "?.com"],
            &["CONFIG", "SET", "cluster-announce-hostname", valid],
        ] {
            let ra = norm(&a.cmd(cmd), std::slice::from_ref(&ida), s.port);
            let rb = norm(&b.cmd(cmd), std::slice::from_ref(&idb), o.port);
            assert_eq!(ra, rb, "{ep}: command {cmd:?}");
        }
    }
}

/// CONFIG SET of `cluster-announce-port` / `-bus-port` changes myself's address in CLUSTER
/// NODES at once and reaches the other node by gossip; 0 goes back to the real ports.
#[test]
fn announced_ports_change_at_run_time_and_spread() {
    use common::cluster::{slotcore_node, wait_for};
    let (a, b) = (slotcore_node(), slotcore_node());
    assert_eq!(a.cli(&["cluster", "meet", "127.0.0.1", &b.port.to_string()]).trim(), "OK");
    let me = |s: &Server| s.cli(&["cluster", "nodes"]).lines().find(|l| l.contains("myself")).unwrap_or("").to_string();
    let seen_by_b =
        |id: &str| b.cli(&["cluster", "nodes"]).lines().find(|l| l.starts_with(id)).unwrap_or("").to_string();
    let id = a.cli(&["cluster", "myid"]).trim().to_string();
    wait_for(common::WAIT, "the nodes to meet", || seen_by_b(&id).contains(&format!(":{}@", a.port)));
    let used = common::free_port();
    assert_eq!(a.cli(&["config", "set", "cluster-announce-port", &used.to_string()]).trim(), "OK");
    assert!(me(&a).contains(&format!(":{used}@{} ", a.port + 10000)), "{}", me(&a));
    wait_for(common::WAIT, "the port gossiped", || seen_by_b(&id).contains(&format!(":{used}@")));
    assert_eq!(a.cli(&["config", "set", "cluster-announce-bus-port", &used.to_string()]).trim(), "OK");
    assert!(me(&a).contains(&format!(":{used}@{used} ")), "{}", me(&a));
    wait_for(common::WAIT, "the bus port gossiped", || seen_by_b(&id).contains(&format!("@{used} ")));
    a.cli(&["config", "set", "cluster-announce-port", "0"]);
    a.cli(&["config", "set", "cluster-announce-bus-port", "0"]);
    assert!(me(&a).contains(&format!(":{}@{} ", a.port, a.port + 10000)), "{}", me(&a));
}

/// CLUSTER LINKS lists both links with every peer (`to` and `from`), and DEBUG CLUSTERLINK
/// KILL TO closes ours before anything published after it: an SPUBLISH right after it in one
/// MULTI is lost for that replica only, and the link comes back.
#[test]
fn cluster_links_both_ways_and_a_killed_link_loses_only_what_it_carried() {
    use common::cluster::{wait_for, NODE_TIMEOUT};
    let node = || {
        Server::slotcore(&[
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            NODE_TIMEOUT,
            "--enable-debug-command",
            "yes",
        ])
    };
    let (m, r1, r2) = (node(), node(), node());
    let id = |s: &Server| s.cli(&["cluster", "myid"]).trim().to_string();
    let (mid, r1id) = (id(&m), id(&r1));
    assert_eq!(m.cli(&["cluster", "addslotsrange", "0", "16383"]).trim(), "OK");
    for r in [&r1, &r2] {
        assert_eq!(r.cli(&["cluster", "meet", "127.0.0.1", &m.port.to_string()]).trim(), "OK");
    }
    let links = |s: &Server| {
        let out = s.cli(&["cluster", "links"]);
        (out.matches("direction\nto\n").count(), out.matches("direction\nfrom\n").count())
    };
    wait_for(common::WAIT, "the nodes to meet", || {
        [&r1, &r2].iter().all(|r| r.cli(&["cluster", "nodes"]).lines().count() == 3)
    });
    for r in [&r1, &r2] {
        assert_eq!(r.cli(&["cluster", "replicate", &mid]).trim(), "OK");
    }
    wait_for(common::WAIT, "two links with each peer", || links(&m) == (2, 2));
    common::cluster::wait_ok(&[&m, &r1, &r2]);
    wait_for(common::WAIT, "the master to know its replicas", || {
        m.cli(&["cluster", "nodes"]).lines().filter(|l| l.contains(&format!("slave {mid}"))).count() == 2
    });
    let mut subs = Vec::new();
    for r in [&r1, &r2] {
        let mut c = r.raw();
        assert!(c.cmd(&["SSUBSCRIBE", "ch3"]).starts_with("*3\r\n$10\r\nssubscribe"));
        subs.push(c);
    }
    let mut c = m.raw();
    c.cmd(&["MULTI"]);
    c.cmd(&["DEBUG", "CLUSTERLINK", "KILL", "TO", &r1id]);
    c.cmd(&["SPUBLISH", "ch3", "hello"]);
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n+OK\r\n:0\r\n");
    wait_for(common::WAIT, "the link back", || links(&m) == (2, 2));
    c.cmd(&["SPUBLISH", "ch3", "world"]);
    let msg = |w: &str| format!("*3\r\n$8\r\nsmessage\r\n$3\r\nch3\r\n${}\r\n{w}\r\n", w.len());
    assert_eq!(subs[0].reply(), msg("world"));
    assert_eq!(subs[1].reply(), msg("hello"));
    assert_eq!(subs[1].reply(), msg("world"));
    assert_eq!(c.cmd(&["DEBUG", "CLUSTERLINK", "KILL", "sideways", &r1id]), "-ERR Unknown direction sideways\r\n");
    assert!(c.cmd(&["DEBUG", "CLUSTERLINK", "KILL", "to", "abc"]).starts_with("-ERR Unknown node abc"));
}
