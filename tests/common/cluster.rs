//! Cluster helpers for integration tests: nodes of slotcore and of real redis-server with
//! cluster mode on, `redis-cli --cluster` runs bounded by a timeout, and bounded waits.

use super::{Server, WAIT};
use std::process::Command;
use std::time::{Duration, Instant};

/// Node timeout used by cluster tests (ms): short, so failures are detected quickly.
pub const NODE_TIMEOUT: &str = "2000";

/// A slotcore node with cluster mode on (two shards, so slots spread over cores).
pub fn slotcore_node() -> Server {
    Server::slotcore(&["--cluster-enabled", "yes", "--cluster-node-timeout", NODE_TIMEOUT, "--shards", "2"])
}

/// A real redis-server node with cluster mode on.
pub fn redis_node() -> Server {
    Server::redis(&["--cluster-enabled", "yes", "--cluster-node-timeout", NODE_TIMEOUT])
}

/// Runs `redis-cli args...` with a time limit; returns (success, stdout + stderr).
pub fn cli_timeout(secs: u64, args: &[String]) -> (bool, String) {
    let out =
        Command::new("timeout").arg(secs.to_string()).arg("redis-cli").args(args).output().expect("run redis-cli");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `host:port` arguments for nodes.
pub fn addrs(nodes: &[&Server]) -> Vec<String> {
    nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
}

/// `redis-cli --cluster create` of `nodes` with `replicas` replicas per master.
pub fn create(nodes: &[&Server], replicas: usize) -> String {
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(addrs(nodes));
    args.extend(["--cluster-replicas".to_string(), replicas.to_string(), "--cluster-yes".to_string()]);
    let (ok, out) = cli_timeout(90, &args);
    assert!(ok, "redis-cli --cluster create failed:\n{out}\n{}", logs(nodes));
    out
}

/// The logs of every node, for failure messages.
pub fn logs(nodes: &[&Server]) -> String {
    nodes.iter().map(|n| format!("--- node {} ---\n{}", n.port, tail(&n.log_text(), 40))).collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until `f` holds, at most `limit`; panics with `what` otherwise.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// A field of CLUSTER INFO.
pub fn info_field(s: &Server, field: &str) -> String {
    let text = s.cli(&["cluster", "info"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(|v| v.trim().to_string()).unwrap_or_default()
}

/// Waits until every node says `cluster_state:ok`.
pub fn wait_ok(nodes: &[&Server]) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 3 {
        if nodes.iter().all(|n| info_field(n, "cluster_state") == "ok") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("cluster_state never became ok on every node\n{}", logs(nodes));
}

/// The node id (CLUSTER MYID).
pub fn myid(s: &Server) -> String {
    s.cli(&["cluster", "myid"]).trim().to_string()
}

/// CLUSTER NODES lines of a node, parsed as (id, flags, master, slots...).
pub fn nodes(s: &Server) -> Vec<Vec<String>> {
    s.cli(&["cluster", "nodes"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

/// A canonical picture of the topology as one node sees it: sorted `id role master slots`.
pub fn topology(s: &Server) -> Vec<String> {
    let mut v: Vec<String> = nodes(s)
        .into_iter()
        .filter(|f| f.len() >= 8)
        .map(|f| {
            let role = if f[2].contains("master") { "master" } else { "replica" };
            let failed = if f[2].split(',').any(|x| x == "fail") { " fail" } else { "" };
            format!("{} {}{} {} {}", f[0], role, failed, f[3], f[8..].join(" "))
        })
        .collect();
    v.sort();
    v
}

/// [`create`], then waits until every node says `cluster_state:ok` and all of them agree on
/// ids, roles and slots; returns redis-cli's output.
pub fn create_agreed(nodes: &[&Server], replicas: usize) -> String {
    let out = create(nodes, replicas);
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    wait_ok(nodes);
    wait_for(WAIT, "every node to agree on the topology", || {
        let t0 = topology(nodes[0]);
        t0.len() == nodes.len() && nodes.iter().all(|n| topology(n) == t0)
    });
    out
}
