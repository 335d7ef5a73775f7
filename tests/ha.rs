//! High availability end to end, as the deployment guides run it: a cluster built with
//! `redis-cli --cluster create --cluster-replicas 1`, replicas that hold their master's data,
//! kill -9 of a master while a client writes (its replica takes over, every write WAIT
//! acknowledged survives), the old master rejoining as a replica of the winner, CLUSTER
//! FAILOVER handing the slots back, SHUTDOWN failing over, and a whole shard group lost and
//! restored from its RDB files.

mod common;

use common::cluster::{self, info_field, myid, nodes, wait_for, wait_ok};
use common::{Server, WAIT};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODE_TIMEOUT_MS: u64 = 3000;

fn node() -> Server {
    Server::slotcore(&[
        "--cluster-enabled",
        "yes",
        "--cluster-node-timeout",
        &NODE_TIMEOUT_MS.to_string(),
        "--shards",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--save",
        "",
    ])
}

fn refs(v: &[Server]) -> Vec<&Server> {
    v.iter().collect()
}

/// INFO replication field of a node.
fn repl_field(s: &Server, field: &str) -> String {
    let text = s.cli(&["info", "replication"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(|v| v.trim().to_string()).unwrap_or_default()
}

/// The first slot of a master (from its own CLUSTER NODES line).
fn first_slot(s: &Server) -> u16 {
    let me = nodes(s).into_iter().find(|f| f[2].contains("myself")).expect("myself line");
    let range = me.get(8).expect("master has slots");
    range.split('-').next().and_then(|x| x.parse().ok()).expect("slot number")
}

/// A key whose slot is `slot` (hash-tagged so every key of a series lands there).
fn tag_for(slot: u16) -> String {
    (0..).map(|i| format!("t{i}")).find(|t| slotcore::cluster::key_slot(t.as_bytes()) == slot).expect("tag")
}

/// The id of the master `s` replicates (from its CLUSTER NODES), if it is a replica.
fn master_of(s: &Server) -> Option<String> {
    nodes(s).into_iter().find(|f| f[2].contains("myself")).filter(|f| f[2].contains("slave")).map(|f| f[3].clone())
}

/// Sends one command on a raw connection and reads one reply line (plus a bulk body).
fn call(c: &mut (TcpStream, BufReader<TcpStream>), args: &[&str]) -> std::io::Result<String> {
    c.0.write_all(&common::encode(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()))?;
    let mut line = String::new();
    if c.1.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
    }
    if let Some(n) = line.strip_prefix('$').and_then(|n| n.trim().parse::<i64>().ok()) {
        if n >= 0 {
            let mut body = String::new();
            c.1.read_line(&mut body)?;
            return Ok(body.trim_end().to_string());
        }
    }
    Ok(line.trim_end().to_string())
}

fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let r = BufReader::new(s.try_clone().expect("clone"));
    (s, r)
}

/// Writes `tag`-ed keys to `port` until stopped or the node dies; after every batch, WAIT 1
/// and keeps the keys a replica acknowledged.
fn writer(port: u16, tag: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut c = connect(port);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = Vec::new();
        for _ in 0..50 {
            let k = format!("{{{tag}}}:{i}");
            i += 1;
            match call(&mut c, &["SET", &k, &k]) {
                Ok(r) if r == "+OK" => batch.push(k),
                _ => return,
            }
        }
        match call(&mut c, &["WAIT", "1", "1000"]) {
            Ok(r) if r.trim_start_matches(':').parse::<i64>().unwrap_or(0) >= 1 => {
                acked.lock().expect("acked").extend(batch);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Every key in `keys` reads back its own name through the cluster, following redirects.
fn assert_all_readable(entry: &Server, keys: &[String]) {
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", entry.port)]).expect("client");
    let mut conn = client.get_connection().expect("cluster connection");
    let mut missing = Vec::new();
    for k in keys {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        if v.as_deref() != Some(k.as_str()) {
            missing.push(k.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost, e.g. {:?}",
        missing.len(),
        keys.len(),
        &missing[..missing.len().min(5)]
    );
}

fn check_clean(entry: &Server) {
    let (ok, out) =
        cluster::cli_timeout(30, &["--cluster".into(), "check".into(), format!("127.0.0.1:{}", entry.port)]);
    assert!(ok && out.contains("[OK] All 16384 slots covered.") && !out.contains("[ERR]"), "cluster check:\n{out}");
}

/// Builds the six-node cluster and waits until every replica's link is up.
fn six_node_cluster() -> Vec<Server> {
    let v: Vec<Server> = (0..6).map(|_| node()).collect();
    cluster::create_agreed(&refs(&v), 1);
    wait_for(WAIT * 2, "every replica's master link up", || {
        v.iter().filter(|s| master_of(s).is_some()).all(|s| repl_field(s, "master_link_status") == "up")
    });
    v
}

/// The index of the replica of master `m` in `v`.
fn replica_of(v: &[Server], m: usize) -> usize {
    let id = myid(&v[m]);
    (0..v.len()).find(|&i| master_of(&v[i]).as_deref() == Some(id.as_str())).expect("a replica")
}

#[test]
fn killed_master_fails_over_keeps_acknowledged_writes_and_rejoins_as_replica() {
    let mut v = six_node_cluster();
    let m = (0..6).find(|&i| master_of(&v[i]).is_none()).expect("a master");
    let r = replica_of(&v, m);
    let tag = tag_for(first_slot(&v[m]));

    // Replicas hold the data: the replica's DBSIZE follows its master's.
    let mut c = connect(v[m].port);
    for i in 0..1000 {
        call(&mut c, &["SET", &format!("{{{tag}}}:pre{i}"), "x"]).expect("SET");
    }
    assert_eq!(call(&mut c, &["WAIT", "1", "5000"]).expect("WAIT"), ":1");
    let dbsize = |s: &Server| s.cli(&["dbsize"]).trim().to_string();
    wait_for(WAIT, "replica DBSIZE equal to its master's", || dbsize(&v[r]) == dbsize(&v[m]));

    // kill -9 while a client writes.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let w = {
        let (port, tag, stop, acked) = (v[m].port, tag.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || writer(port, tag, stop, acked))
    };
    wait_for(WAIT, "some acknowledged writes", || acked.lock().expect("acked").len() >= 500);
    let old_id = myid(&v[m]);
    let winner_id = myid(&v[r]);
    v[m].kill9();
    let killed_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let _ = w.join();
    let other = (0..6).find(|&i| i != m && i != r && master_of(&v[i]).is_none()).expect("another master");
    wait_for(Duration::from_millis(NODE_TIMEOUT_MS) + WAIT, "the replica to become master", || {
        nodes(&v[other]).iter().any(|f| f[0] == winner_id && f[2].contains("master") && f.len() > 8)
    });
    let took = killed_at.elapsed();
    println!("failover with node-timeout {NODE_TIMEOUT_MS}: replica master after {took:?}");
    assert!(took <= Duration::from_millis(NODE_TIMEOUT_MS + 2000), "failover took {took:?}");
    wait_ok(&refs(&v).into_iter().enumerate().filter(|(i, _)| *i != m).map(|(_, s)| s).collect::<Vec<_>>());
    let keys = acked.lock().expect("acked").clone();
    assert_all_readable(&v[other], &keys);

    // The old master comes back as a replica of the winner and syncs.
    v[m].restart();
    wait_for(WAIT * 2, "the old master to rejoin as a replica of the winner", || {
        master_of(&v[m]).as_deref() == Some(winner_id.as_str())
    });
    wait_for(WAIT * 2, "the old master's link up", || repl_field(&v[m], "master_link_status") == "up");
    wait_for(WAIT, "the rejoined replica to hold the winner's keys", || dbsize(&v[m]) == dbsize(&v[r]));
    check_clean(&v[other]);

    // CLUSTER FAILOVER hands the slots back, no key lost.
    wait_for(WAIT * 2, "the rejoined node to see its master healthy and linked", || {
        nodes(&v[m])
            .iter()
            .any(|f| f[0] == winner_id && f[2].split(',').all(|x| x != "fail" && x != "fail?") && f[7] == "connected")
    });
    let reply = v[m].cli(&["cluster", "failover"]);
    assert_eq!(reply.trim(), "OK", "{:?}", nodes(&v[m]));
    wait_for(WAIT * 2, "the old master to be master again", || {
        master_of(&v[m]).is_none() && master_of(&v[r]).as_deref() == Some(old_id.as_str())
    });
    wait_ok(&refs(&v));
    assert_all_readable(&v[other], &keys);
    check_clean(&v[other]);
}

#[test]
fn shutdown_of_a_master_fails_over_and_losing_a_whole_group_stops_the_cluster() {
    let mut v = six_node_cluster();
    let m = (0..6).find(|&i| master_of(&v[i]).is_none()).expect("a master");
    let r = replica_of(&v, m);
    let tag = tag_for(first_slot(&v[m]));
    let mut c = connect(v[m].port);
    for i in 0..200 {
        call(&mut c, &["SET", &format!("{{{tag}}}:{i}"), "v"]).expect("SET");
    }
    assert_eq!(call(&mut c, &["WAIT", "1", "5000"]).expect("WAIT"), ":1");
    let winner_id = myid(&v[r]);
    let other = (0..6).find(|&i| i != m && i != r && master_of(&v[i]).is_none()).expect("another master");

    // SHUTDOWN (7.0 waits for the replica to catch up) also fails over.
    let _ = v[m].cli(&["shutdown", "nosave"]);
    assert!(v[m].wait_exit(WAIT * 2).is_some(), "SHUTDOWN did not exit");
    wait_for(Duration::from_millis(NODE_TIMEOUT_MS) + WAIT, "the replica to take over after SHUTDOWN", || {
        nodes(&v[other]).iter().any(|f| f[0] == winner_id && f[2].contains("master") && f.len() > 8)
    });
    let keys: Vec<String> = (0..200).map(|i| format!("{{{tag}}}:{i}")).collect();
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", v[other].port)]).expect("c");
    let mut conn = client.get_connection().expect("conn");
    for k in &keys {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        assert_eq!(got.as_deref(), Some("v"), "{k} lost after SHUTDOWN failover");
    }

    // The winner saves, then the whole group (winner and old master) dies: the cluster is down.
    assert_eq!(v[r].cli(&["save"]).trim(), "OK");
    v[r].kill9();
    wait_for(Duration::from_millis(NODE_TIMEOUT_MS) + WAIT * 2, "cluster_state:fail", || {
        info_field(&v[other], "cluster_state") == "fail"
    });
    // Redis 7.0's three CLUSTERDOWN texts: the cluster is down; with
    // cluster-allow-reads-when-down, writes are refused with their own text while reads of
    // served slots go on; a slot nobody serves.
    let own_key = format!("{{{}}}:k", tag_for(first_slot(&v[other])));
    assert_eq!(v[other].cli(&["get", "anykey"]).trim(), "CLUSTERDOWN The cluster is down");
    assert_eq!(v[other].cli(&["config", "set", "cluster-allow-reads-when-down", "yes"]).trim(), "OK");
    assert_eq!(
        v[other].cli(&["set", &own_key, "v"]).trim(),
        "CLUSTERDOWN The cluster is down and only accepts read commands"
    );
    assert_eq!(v[other].cli(&["get", &own_key]).trim(), "");
    assert_eq!(v[other].cli(&["config", "set", "cluster-allow-reads-when-down", "no"]).trim(), "OK");

    // Both come back from their files: the cluster is whole again with the data.
    v[r].restart();
    v[m].restart();
    wait_ok(&refs(&v));
    let mut conn = client.get_connection().expect("conn");
    for k in &keys {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        assert_eq!(got.as_deref(), Some("v"), "{k} lost after restoring the group");
    }
    check_clean(&v[other]);
    // A slot this node no longer has anyone for (deleted from its own view).
    let slot = first_slot(&v[other]);
    assert_eq!(v[other].cli(&["config", "set", "cluster-require-full-coverage", "no"]).trim(), "OK");
    assert_eq!(v[other].cli(&["cluster", "delslots", &slot.to_string()]).trim(), "OK");
    assert_eq!(v[other].cli(&["get", &own_key]).trim(), "CLUSTERDOWN Hash slot not served");
}
