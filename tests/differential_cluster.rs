//! Differential test in cluster mode, with resharding: the random streams of
//! `tests/differential.rs`, every key under one hash tag, go to the slotcore node that owns
//! the tag's slot (a cluster of two slotcore nodes of two shards each) and to a one-node
//! redis-server cluster, and every reply must be the same. After each stream the slot moves to
//! the other node as `redis-cli --cluster reshard` moves it (IMPORTING/MIGRATING, MIGRATE of
//! every key, SETSLOT NODE), and the new owner must hold the keys the oracle holds: values,
//! types, encodings and expiries. The oracle reloads its data there (DEBUG RELOAD), since a
//! moved key is rebuilt from its DUMP payload, as a reload rebuilds it.

mod common;
mod mix;

use common::{Raw, Server};
use mix::*;

fn cluster_node(extra: &[&str]) -> Server {
    let mut args = vec!["--cluster-enabled", "yes", "--enable-debug-command", "yes"];
    args.extend(extra);
    Server::slotcore(&args)
}

fn myid(r: &mut Raw) -> String {
    r.cmd(&["CLUSTER", "MYID"]).lines().nth(1).unwrap_or("").to_string()
}

fn cluster_ok(r: &mut Raw) -> bool {
    r.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
}

/// The keys in `slot` on the node `r` is connected to (at most 100).
fn keys_in_slot(r: &mut Raw, slot: &str) -> Vec<String> {
    let reply = r.cmd(&["CLUSTER", "GETKEYSINSLOT", slot, "100"]);
    elements(&reply).unwrap_or_default().iter().filter_map(|e| e.split("\r\n").nth(1)).map(String::from).collect()
}

/// Moves `slot` from the node `src` to `dst` (listening on `dst_port`), as redis-cli does.
fn move_slot(src: &mut Raw, dst: &mut Raw, dst_port: u16, slot: &str) {
    let (src_id, dst_id) = (myid(src), myid(dst));
    assert_eq!(dst.cmd(&["CLUSTER", "SETSLOT", slot, "IMPORTING", &src_id]), "+OK\r\n");
    assert_eq!(src.cmd(&["CLUSTER", "SETSLOT", slot, "MIGRATING", &dst_id]), "+OK\r\n");
    let port = dst_port.to_string();
    loop {
        let keys = keys_in_slot(src, slot);
        if keys.is_empty() {
            break;
        }
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().map(String::as_str));
        assert_eq!(src.cmd(&args), "+OK\r\n", "MIGRATE of {keys:?}");
    }
    for r in [dst, src] {
        assert_eq!(r.cmd(&["CLUSTER", "SETSLOT", slot, "NODE", &dst_id]), "+OK\r\n");
    }
}

#[test]
fn random_commands_in_a_resharded_cluster_answer_as_redis() {
    let shards = std::env::var("SLOTCORE_DIFF_SHARDS").unwrap_or_else(|_| "2".to_string());
    let nodes = [cluster_node(&["--shards", &shards]), cluster_node(&["--shards", &shards])];
    let oracle = Server::redis(&["--cluster-enabled", "yes", "--enable-debug-command", "yes"]);
    let mut theirs = oracle.raw();
    assert_eq!(theirs.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "+OK\r\n");
    let mut ctl: Vec<Raw> = nodes.iter().map(|n| n.raw()).collect();
    let port1 = nodes[1].port.to_string();
    assert_eq!(ctl[0].cmd(&["CLUSTER", "MEET", "127.0.0.1", &port1]), "+OK\r\n");
    // Each node keeps slots of its own, so neither loses its last one when the tag's slot
    // (15891) leaves it: a master left with none would turn replica of the node that took it,
    // as Redis's do with cluster-allow-replica-migration.
    assert_eq!(ctl[0].cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), "+OK\r\n");
    assert_eq!(ctl[1].cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]), "+OK\r\n");
    common::until("both nodes and the oracle to serve every slot", || {
        cluster_ok(&mut theirs)
            && ctl.iter_mut().all(|c| {
                cluster_ok(c) && c.cmd(&["CLUSTER", "NODES"]).lines().filter(|l| l.contains("connected")).count() == 2
            })
    });
    set_key_tag("{t}");
    let slot = theirs.cmd(&["CLUSTER", "KEYSLOT", "{t}"]).trim().trim_start_matches(':').to_string();
    let seeds: u64 = std::env::var("SLOTCORE_DIFF_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let mut owner = 1;
    let mut moved = 0;
    for seed in 1..=seeds {
        let mut ours = Raw::connect(nodes[owner].port);
        run_seed(seed * 0x5851_f42d_4c95_7f2d, &mut ours, &mut theirs, 1000);
        let (a, b) = ctl.split_at_mut(1);
        let (src, dst) = if owner == 0 { (&mut a[0], &mut b[0]) } else { (&mut b[0], &mut a[0]) };
        move_slot(src, dst, nodes[1 - owner].port, &slot);
        owner = 1 - owner;
        assert_eq!(theirs.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
        let (src, dst) = if owner == 1 { (&mut a[0], &mut b[0]) } else { (&mut b[0], &mut a[0]) };
        assert_eq!(src.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), ":0\r\n", "the old owner keeps keys, seed {seed}");
        let moved_keys = key_states(dst);
        moved += moved_keys.len();
        assert_same_keys(moved_keys, key_states(&mut theirs), &format!("the new owner's keys, seed {seed}"));
        // The old owner redirects to the new one.
        let redirect = src.cmd(&["GET", "{t}k0"]);
        assert!(redirect.starts_with(&format!("-MOVED {slot} 127.0.0.1:{}", nodes[owner].port)), "{redirect}");
    }
    // The streams leave most of the twelve names holding something (a FLUSHALL near a
    // stream's end leaves few).
    assert!(moved as u64 >= 4 * seeds, "only {moved} keys moved in {seeds} moves");
}
