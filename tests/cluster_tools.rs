//! The deployment guides' maintenance tools on a slotcore cluster: `redis-cli --cluster
//! rebalance` (spreading slots onto a new empty master, and draining a master with weight 0
//! before `del-node`) and `redis-cli --cluster fix` (open slots left by an interrupted
//! migration, and slots no node serves), with keys in the slots they move.

mod common;

use common::cluster::*;
use common::{Server, WAIT};
use std::io::Write;
use std::process::{Command, Stdio};

/// `redis-cli args...` bounded by `secs`, answering "yes" to every question it asks on stdin
/// (the coverage fix asks even with `--cluster-yes`, as it does against redis-server).
fn cli_answering_yes(secs: u64, args: &[String]) -> (bool, String) {
    let mut child = Command::new("timeout")
        .arg(secs.to_string())
        .arg("redis-cli")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all("yes\n".repeat(16).as_bytes());
    }
    let out = child.wait_with_output().expect("redis-cli output");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn cluster_args(sub: &str, entry: &str, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["--cluster".to_string(), sub.to_string(), entry.to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Slots a node serves, by its own CLUSTER NODES line.
fn own_slot_count(s: &Server) -> usize {
    nodes(s)
        .into_iter()
        .find(|f| f[2].contains("myself"))
        .map(|f| {
            f[8..]
                .iter()
                .filter(|r| !r.starts_with('['))
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0),
                    None => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn write_keys(entry: &Server, n: usize) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", entry.port)]).unwrap();
    let mut c = client.get_connection().expect("cluster connection");
    for i in 0..n {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut c).expect("cluster SET");
    }
}

/// Every `key:<i>` below `n` reads back through a fresh cluster client, and the masters hold
/// exactly `total` keys.
fn assert_keys(entry: &Server, masters: &[&Server], n: usize, total: i64) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", entry.port)]).unwrap();
    let mut c = client.get_connection().expect("cluster connection");
    for i in 0..n {
        let v: Option<i64> = redis::cmd("GET").arg(format!("key:{i}")).query(&mut c).expect("cluster GET");
        assert_eq!(v, Some(i as i64), "key:{i}");
    }
    let held: i64 = masters.iter().map(|m| m.cli(&["dbsize"]).trim().parse::<i64>().unwrap_or(-1)).sum();
    assert_eq!(held, total);
}

fn check_ok(entry: &str, all: &[&Server]) {
    wait_for(WAIT, "redis-cli --cluster check to pass", || {
        let (ok, out) = cli_timeout(30, &cluster_args("check", entry, &[]));
        ok && out.contains("[OK] All nodes agree about slots configuration.")
            && out.contains("[OK] All 16384 slots covered.")
            && !out.contains("[WARNING]")
    });
    wait_ok(all);
}

#[test]
fn rebalance_onto_an_empty_master_then_drain_it_and_del_node() {
    let ns: Vec<Server> = (0..3).map(|_| slotcore_node()).collect();
    let all: Vec<&Server> = ns.iter().collect();
    create(&all, 0);
    wait_ok(&all);
    let entry = format!("127.0.0.1:{}", ns[0].port);
    write_keys(&ns[0], 3000);

    let extra = slotcore_node();
    let (ok, out) = cli_timeout(60, &cluster_args("add-node", &format!("127.0.0.1:{}", extra.port), &[&entry]));
    assert!(ok && out.contains("[OK] New node added correctly."), "{out}");
    let extra_id = myid(&extra);
    wait_for(WAIT, "every node to know the added master", || {
        ns.iter().all(|n| nodes(n).iter().any(|f| f[0] == extra_id && !f[2].contains("handshake")))
            && nodes(&extra).len() == 4
    });
    let mut four: Vec<&Server> = all.clone();
    four.push(&extra);
    // A master that just joined serves nothing until it sees the whole cluster ok (as Redis,
    // whose RESTORE-ASKING would get CLUSTERDOWN before that).
    wait_ok(&four);

    // The guide's "rebalance" after adding a node: the empty master takes a quarter.
    let (ok, out) = cli_timeout(180, &cluster_args("rebalance", &entry, &["--cluster-use-empty-masters"]));
    assert!(ok && out.contains("Rebalancing across 4 nodes"), "{out}\n{}", logs(&all));
    check_ok(&entry, &four);
    for n in &four {
        let slots = own_slot_count(n);
        assert!((4095..=4097).contains(&slots), "node {} serves {slots} slots", n.port);
    }
    assert_keys(&ns[1], &four, 3000, 3000);
    // Balanced already: a second run has nothing to do.
    let (ok, out) = cli_timeout(60, &cluster_args("rebalance", &entry, &[]));
    assert!(ok && out.contains("No rebalancing needed!"), "{out}");

    // Scaling in: weight 0 drains the node, then del-node removes it.
    let weight = format!("{extra_id}=0");
    let (ok, out) = cli_timeout(180, &cluster_args("rebalance", &entry, &["--cluster-weight", &weight]));
    assert!(ok, "{out}\n{}", logs(&four));
    check_ok(&entry, &four);
    assert_eq!(own_slot_count(&extra), 0);
    assert_keys(&ns[2], &all, 3000, 3000);
    let (ok, out) = cli_timeout(60, &cluster_args("del-node", &entry, &[&extra_id]));
    assert!(ok, "{out}");
    wait_for(WAIT, "every remaining node to forget the deleted one", || {
        ns.iter().all(|n| !nodes(n).iter().any(|f| f[0] == extra_id))
    });
    check_ok(&entry, &all);
}

/// Whether `s` serves `slot`, by its own CLUSTER NODES line.
fn serves(s: &Server, slot: u16) -> bool {
    nodes(s).into_iter().find(|f| f[2].contains("myself")).is_some_and(|f| {
        f[8..].iter().any(|r| match r.split_once('-') {
            Some((x, y)) => x.parse::<u16>().is_ok_and(|x| x <= slot) && y.parse::<u16>().is_ok_and(|y| slot <= y),
            None => r.parse::<u16>() == Ok(slot),
        })
    })
}

fn keyslot(s: &Server, key: &str) -> u16 {
    s.cli(&["cluster", "keyslot", key]).trim().parse().expect("CLUSTER KEYSLOT")
}

fn set_in_cluster(entry: &Server, key: &str) {
    let out = Server::cli_port(&entry.port.to_string(), &["-c", "set", key, "v"]);
    assert_eq!(out.trim(), "OK", "SET {key}");
}

#[test]
fn fix_closes_open_slots_and_covers_unserved_ones() {
    let ns: Vec<Server> = (0..3).map(|_| slotcore_node()).collect();
    let all: Vec<&Server> = ns.iter().collect();
    create(&all, 0);
    wait_ok(&all);
    let entry = format!("127.0.0.1:{}", ns[0].port);
    write_keys(&ns[0], 3000);

    // A migration interrupted half way: a slot with two keys is migrating on its owner and
    // importing on the target, and one of its keys already moved.
    for k in ["{open}:1", "{open}:2", "{cover}:1"] {
        set_in_cluster(&ns[0], k);
    }
    let total = 3003;
    let slot = keyslot(&ns[0], "{open}");
    let a = *all.iter().find(|n| serves(n, slot)).expect("the slot's owner");
    let b = *all.iter().find(|n| n.port != a.port).expect("another master");
    let (a_id, b_id) = (myid(a), myid(b));
    let slot_s = slot.to_string();
    assert_eq!(b.cli(&["cluster", "setslot", &slot_s, "importing", &a_id]).trim(), "OK");
    assert_eq!(a.cli(&["cluster", "setslot", &slot_s, "migrating", &b_id]).trim(), "OK");
    let out = a.cli(&["migrate", "127.0.0.1", &b.port.to_string(), "{open}:1", "0", "5000"]);
    assert_eq!(out.trim(), "OK", "MIGRATE");
    let (_, out) = cli_timeout(30, &cluster_args("check", &entry, &[]));
    assert!(out.contains("The following slots are open"), "{out}");
    let (ok, out) = cli_timeout(120, &cluster_args("fix", &entry, &["--cluster-yes"]));
    assert!(ok && out.contains(&format!("Fixing open slot {slot}")), "{out}\n{}", logs(&all));
    check_ok(&entry, &all);
    assert_keys(&ns[2], &all, 3000, total);
    assert!(serves(a, slot) != serves(b, slot), "one of the two nodes serves the slot");

    // Slots no node serves: one with a key (covered by the node holding it), one without.
    let keyed = keyslot(&ns[0], "{cover}");
    let c = *all.iter().find(|n| serves(n, keyed)).expect("the keyed slot's owner");
    let mut conn = c.client();
    let empty = (0..16384u16)
        .filter(|&s| s != keyed && serves(c, s))
        .find(|&s| redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s).query::<i64>(&mut conn) == Ok(0))
        .expect("an empty slot of the same master");
    assert_eq!(c.cli(&["cluster", "delslots", &keyed.to_string(), &empty.to_string()]).trim(), "OK");
    let (_, out) = cli_timeout(30, &cluster_args("check", &entry, &[]));
    assert!(out.contains("[ERR] Not all 16384 slots are covered by nodes."), "{out}");
    let (ok, out) = cli_answering_yes(120, &cluster_args("fix", &entry, &[]));
    assert!(ok && out.contains("Fixing slots coverage"), "{out}\n{}", logs(&all));
    assert!(out.contains(&format!("Covering slot {keyed} with 127.0.0.1:{}", c.port)), "{out}");
    assert!(out.contains(&format!("Covering slot {empty} with")), "{out}");
    check_ok(&entry, &all);
    assert_keys(&ns[1], &all, 3000, total);
}

/// INFO's `blocked_clients`.
fn blocked_clients(s: &Server) -> String {
    let text = s.cli(&["info", "clients"]);
    text.lines().find_map(|l| l.strip_prefix("blocked_clients:")).unwrap_or("").trim().to_string()
}

/// Clients blocked on a key follow the cluster as Redis's cron moves them: a reshard that takes
/// the key's slot away answers them `-MOVED` to the new owner, and a node left in a minority
/// answers its blocked clients `-CLUSTERDOWN The cluster is down`.
#[test]
fn blocked_clients_are_redirected_when_their_slot_moves_or_the_cluster_fails() {
    let mut n1 = slotcore_node();
    let mut n2 = slotcore_node();
    let n3 = slotcore_node();
    create(&[&n1, &n2, &n3], 0);
    wait_ok(&[&n1, &n2, &n3]);
    // key9184688 hashes to 10923, the first slot of the third master, the one a 1-slot
    // reshard from it moves.
    assert_eq!(keyslot(&n3, "key9184688"), 10923);
    let mut blocked = n3.raw();
    blocked.send_cmd(&[b"BRPOP", b"key9184688", b"0"]);
    wait_for(WAIT, "the client blocked", || blocked_clients(&n3) == "1");
    let entry = format!("127.0.0.1:{}", n3.port);
    let (to, from) = (myid(&n1), myid(&n3));
    let args = cluster_args(
        "reshard",
        &entry,
        &["--cluster-to", &to, "--cluster-from", &from, "--cluster-slots", "1", "--cluster-yes"],
    );
    let (ok, out) = cli_timeout(60, &args);
    assert!(ok, "reshard failed:\n{out}");
    assert_eq!(blocked.reply(), format!("-MOVED 10923 127.0.0.1:{}\r\n", n1.port));
    wait_for(WAIT, "no blocked client left", || blocked_clients(&n3) == "0");

    // A key still served by the third master; then the other two masters die.
    let mut down = n3.raw();
    let key = (0..).map(|i| format!("k{i}")).find(|k| keyslot(&n3, k) > 11000).unwrap_or_default();
    down.send_cmd(&[b"BLPOP", key.as_bytes(), b"0"]);
    wait_for(WAIT, "the client blocked", || blocked_clients(&n3) == "1");
    n1.kill9();
    n2.kill9();
    assert_eq!(down.reply(), "-CLUSTERDOWN The cluster is down\r\n");
}
