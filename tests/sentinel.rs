//! Sentinel, with real processes: the deployment guide's master + replica + three Sentinels
//! replayed with slotcore Sentinels over slotcore nodes, real `redis-server --sentinel`
//! Sentinels over slotcore nodes, slotcore Sentinels over redis-server nodes, and a mixed
//! quorum (two slotcore Sentinels and one redis-server Sentinel). Each run kills or shuts the
//! master down, measures how long until every Sentinel names the replica, checks the promoted
//! node has the data and takes writes, the config files were rewritten, and the restarted old
//! master becomes a replica of the new one. Also: SENTINEL replies and errors next to a real
//! Sentinel's, the event channels, and a Sentinel-aware client following the failover.

mod common;

use common::sentinel::{wait_for, Sentinel, DOWN_AFTER, FAILOVER_TIMEOUT};
use common::{free_port, Server, WAIT};
use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn role(s: &Server) -> String {
    s.cli(&["ROLE"]).lines().next().unwrap_or("").to_string()
}

/// How the master goes away.
#[derive(Clone, Copy)]
enum Stop {
    Kill9,
    Shutdown,
}

/// The guide, end to end. `real`: which Sentinels are redis-server; `redis_nodes`: data nodes
/// are redis-server instead of slotcore.
fn guide(real: [bool; 3], redis_nodes: bool, stop: Stop) {
    let mp = free_port();
    let rp = free_port();
    let mp_s = mp.to_string();
    let node = |port: u16, extra: &[&str]| {
        if redis_nodes {
            Server::redis_on(port, extra)
        } else {
            Server::slotcore_on(port, extra)
        }
    };
    let mut master = node(mp, &[]);
    let replica = node(rp, &["--replicaof", "127.0.0.1", &mp_s]);
    wait_for("replica link up", WAIT, || replica.cli(&["INFO", "replication"]).contains("master_link_status:up"));
    let sentinels: Vec<Sentinel> = real.iter().map(|r| Sentinel::start(*r, mp)).collect();

    // They agree on the master, find the replica and each other, and rewrite their files.
    for s in &sentinels {
        s.wait_until("num-other-sentinels 2 and num-slaves 1", || {
            s.master_field("num-other-sentinels") == "2" && s.master_field("num-slaves") == "1"
        });
        s.wait_until("sentinel.conf rewritten", || {
            let c = s.conf_text();
            c.contains("sentinel myid ")
                && c.contains(&format!("sentinel known-replica mymaster 127.0.0.1 {rp}"))
                && c.matches("sentinel known-sentinel mymaster").count() == 2
                && c.contains("sentinel current-epoch 0")
        });
        assert_eq!(s.master_port(), mp_s);
    }

    // Events on pub/sub: a subscriber to +switch-master on the first Sentinel.
    let mut events = std::net::TcpStream::connect(("127.0.0.1", sentinels[0].port)).expect("subscribe");
    events.write_all(&common::encode(&[b"SUBSCRIBE", b"+switch-master"])).expect("write");
    events.set_read_timeout(Some(WAIT * 2)).expect("timeout");
    let mut events = BufReader::new(events);
    let mut buf = Vec::new();
    common::read_reply(&mut events, &mut buf).expect("subscribe reply");

    let mut c = master.client();
    for i in 0..100 {
        redis::cmd("SET").arg(format!("k{i}")).arg(i).query::<()>(&mut c).expect("set");
    }
    wait_for("replica caught up", WAIT, || replica.cli(&["DBSIZE"]).trim() == "100");
    drop(c);

    let t0 = Instant::now();
    match stop {
        Stop::Kill9 => master.kill9(),
        Stop::Shutdown => {
            let _ = master.cli(&["SHUTDOWN", "NOSAVE"]);
            master.wait_exit(WAIT).expect("master exited");
        }
    }
    let rp_s = rp.to_string();
    let limit = Duration::from_millis(DOWN_AFTER + 4 * FAILOVER_TIMEOUT) + Duration::from_secs(15);
    wait_for("every Sentinel to name the replica", limit, || sentinels.iter().all(|s| s.master_port() == rp_s));
    let took = t0.elapsed();
    eprintln!(
        "sentinels real={:?} redis_nodes={}: all Sentinels switched {:.2}s after the master stopped (down-after {}ms)",
        real,
        redis_nodes,
        took.as_secs_f64(),
        DOWN_AFTER
    );
    // One election round normally; a split vote (possible on a loaded machine) costs a retry
    // after 2 x failover-timeout, as in Redis: the bound is `limit` above, and the time taken
    // is printed rather than held to one round.

    // The +switch-master event reached the subscriber.
    buf.clear();
    common::read_reply(&mut events, &mut buf).expect("switch-master message");
    let msg = String::from_utf8_lossy(&buf).into_owned();
    assert!(msg.contains(&format!("mymaster 127.0.0.1 {mp} 127.0.0.1 {rp}")), "{msg}");

    // The promoted node is a master with the data and takes writes.
    wait_for("promoted node role master", WAIT, || role(&replica) == "master");
    assert_eq!(replica.cli(&["GET", "k99"]).trim(), "99");
    assert_eq!(replica.cli(&["SET", "after", "failover"]).trim(), "OK");

    // Config files follow the new master.
    for s in &sentinels {
        s.wait_until("sentinel.conf names the new master", || {
            let c = s.conf_text();
            // The epoch of the election that won: 1, or more after a split vote.
            c.contains(&format!("sentinel monitor mymaster 127.0.0.1 {rp} 2"))
                && c.lines().any(|l| {
                    l.strip_prefix("sentinel config-epoch mymaster ")
                        .and_then(|e| e.parse::<u64>().ok())
                        .is_some_and(|e| e >= 1)
                })
                && c.contains(&format!("sentinel known-replica mymaster 127.0.0.1 {mp}"))
        });
    }

    // The old master returns and becomes a replica of the new one, receiving new writes.
    master.restart();
    wait_for("old master converted to replica", WAIT * 3, || {
        let r = master.cli(&["ROLE"]);
        let l: Vec<&str> = r.lines().collect();
        l.first() == Some(&"slave") && l.get(2) == Some(&rp_s.as_str())
    });
    assert_eq!(replica.cli(&["SET", "newer", "write"]).trim(), "OK");
    wait_for("new write reached the old master", WAIT * 2, || master.cli(&["GET", "newer"]).trim() == "write");
    assert_eq!(master.cli(&["GET", "after"]).trim(), "failover");
    for s in &sentinels {
        s.wait_until("old master listed as replica", || s.master_field("num-slaves") == "1");
    }
}

#[test]
fn guide_slotcore_sentinels_over_slotcore_nodes_kill9() {
    guide([false, false, false], false, Stop::Kill9);
}

#[test]
fn guide_real_sentinels_over_slotcore_nodes_shutdown() {
    guide([true, true, true], false, Stop::Shutdown);
}

#[test]
fn guide_slotcore_sentinels_over_redis_nodes_shutdown() {
    guide([false, false, false], true, Stop::Shutdown);
}

#[test]
fn guide_mixed_quorum_over_slotcore_nodes_kill9() {
    guide([false, true, false], false, Stop::Kill9);
}

#[test]
fn guide_mixed_quorum_over_redis_nodes_kill9() {
    guide([true, false, false], true, Stop::Kill9);
}

/// SENTINEL replies and error texts, byte for byte next to a real Sentinel's.
#[test]
fn sentinel_replies_match_redis() {
    let master = Server::slotcore(&[]);
    let ours = Sentinel::start(false, master.port);
    let real = Sentinel::start(true, master.port);
    let cmds: &[&[&str]] = &[
        &["PING"],
        &["ROLE"],
        &["SENTINEL", "FOO"],
        &["SENTINEL", "MASTER"],
        &["SENTINEL", "MASTER", "nope"],
        &["SENTINEL", "REPLICAS", "nope"],
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nope"],
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
        &["SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "10.0.0.1", "1", "0", "*"],
        &["SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", &master.port.to_string(), "0", "*"],
        &["SENTINEL", "SET", "mymaster", "quorum", "0"],
        &["SENTINEL", "SET", "mymaster", "bogus", "1"],
        &["SENTINEL", "SET", "nope", "quorum", "1"],
        &["SENTINEL", "MONITOR", "m2", "127.0.0.1", "1", "0"],
        &["SENTINEL", "MONITOR", "mymaster", "127.0.0.1", "1", "2"],
        &["SENTINEL", "MONITOR", "m3", "not an ip", "1", "2"],
        &["SENTINEL", "FAILOVER", "nope"],
        &["SENTINEL", "CONFIG", "GET", "announce-*"],
        &["SENTINEL", "CONFIG", "SET", "bogus", "1"],
        &["SENTINEL", "CONFIG", "SET", "resolve-hostnames", "maybe"],
        &["SENTINEL", "SIMULATE-FAILURE", "bogus"],
        &["SENTINEL", "PENDING-SCRIPTS"],
        &["PUBLISH", "foo", "bar"],
        &["GET", "x"],
        // Port 0 is a valid port for Redis's Sentinel.
        &["SENTINEL", "MONITOR", "m4", "127.0.0.1", "0", "2"],
        &["SENTINEL", "REMOVE", "m4"],
        // SHUTDOWN's bad options are refused (the Sentinel stays up), as redis-server's.
        &["SHUTDOWN", "bogus"],
        &["SHUTDOWN", "SAVE", "NOSAVE"],
        &["SHUTDOWN", "ABORT", "NOW"],
        &["SHUTDOWN", "ABORT"],
        &["PING"],
        &["PING", "a", "b"],
        &["CLIENT", "HELP"],
        &["ACL", "HELP"],
        &["COMMAND", "HELP"],
        &["SENTINEL", "HELP"],
    ];
    let mut a = common::Raw::connect(ours.port);
    let mut b = common::Raw::connect(real.port);
    common::assert_same(&mut a, &mut b, cmds);
    // Both list the same fields for the master (values differ: times, ids).
    let fields = |s: &Sentinel| -> Vec<String> {
        s.cli(&["SENTINEL", "MASTER", "mymaster"]).lines().step_by(2).map(|l| l.to_string()).collect()
    };
    assert_eq!(fields(&ours), fields(&real));
    // HELLO names the same fields (a Sentinel's has no role).
    let hello = |s: &Sentinel| -> Vec<String> { s.cli(&["HELLO", "2"]).lines().step_by(2).map(String::from).collect() };
    assert_eq!(hello(&ours), hello(&real));
    assert_eq!(ours.cli(&["SENTINEL", "MYID"]).trim().len(), 40);
    let info = ours.cli(&["INFO", "sentinel"]);
    assert!(info.contains("sentinel_masters:1") && info.contains("master0:name=mymaster,status=ok"), "{info}");
    // INFO lists Redis Sentinel's fields in its order (values differ).
    let names = |s: &Sentinel| -> Vec<String> {
        s.cli(&["INFO", "everything"])
            .lines()
            .filter_map(|l| {
                if l.starts_with('#') {
                    Some(l.to_string())
                } else {
                    l.split_once(':').map(|(n, _)| n.to_string())
                }
            })
            .collect()
    };
    assert_eq!(names(&ours), names(&real));
}

/// `redis-sentinel conf` (a link named like Redis's) starts Sentinel mode, as in the guide.
#[test]
fn redis_sentinel_name_starts_sentinel_mode() {
    let master = Server::slotcore(&[]);
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("slotcore-test-sentinel-link-{}-{}", std::process::id(), port));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let link = dir.join("redis-sentinel");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_slotcore"), &link).expect("symlink");
    let conf = dir.join("sentinel0.conf");
    std::fs::write(&conf, format!("port {port}\nsentinel monitor mymaster 127.0.0.1 {} 2\n", master.port))
        .expect("conf");
    let mut child = Command::new(&link).arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let p = port.to_string();
    wait_for("sentinel mode answers", WAIT, || {
        Server::cli_port(&p, &["INFO", "server"]).contains("redis_mode:sentinel")
    });
    wait_for("conf rewritten with myid", WAIT, || {
        std::fs::read_to_string(&conf).unwrap_or_default().contains("sentinel myid ")
    });
    // Without a config file Sentinel refuses to start, as Redis does.
    let out = Command::new(env!("CARGO_BIN_EXE_slotcore")).arg("--sentinel").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Sentinel needs config file on disk to save state."));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Sentinel-aware client (the redis crate's SentinelClient, like redis-py's
/// `Sentinel.master_for`) finds the master, and after a failover finds the new one.
#[test]
fn sentinel_client_follows_failover() {
    use redis::sentinel::{SentinelClient, SentinelServerType};
    let mut master = Server::slotcore(&[]);
    let mp_s = master.port.to_string();
    let replica = Server::slotcore(&["--replicaof", "127.0.0.1", &mp_s]);
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(false, master.port)).collect();
    for s in &sentinels {
        s.wait_until("peers and replica known", || {
            s.master_field("num-other-sentinels") == "2" && s.master_field("num-slaves") == "1"
        });
    }
    let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://127.0.0.1:{}/", s.port)).collect();
    let mut client = SentinelClient::build(urls, "mymaster".into(), None, SentinelServerType::Master).expect("client");
    let mut c = client.get_connection().expect("master connection");
    redis::cmd("SET").arg("before").arg("1").query::<()>(&mut c).expect("set");
    wait_for("replica has the write", WAIT, || replica.cli(&["GET", "before"]).trim() == "1");
    master.kill9();
    let rp = replica.port;
    wait_for("client reaches the promoted master", WAIT * 2, || {
        let Ok(mut c) = client.get_connection() else { return false };
        let port: Option<u16> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("port")
            .query::<Vec<String>>(&mut c)
            .ok()
            .and_then(|v| v.get(1)?.parse().ok());
        port == Some(rp) && redis::cmd("SET").arg("after").arg("2").query::<()>(&mut c).is_ok()
    });
    assert_eq!(replica.cli(&["GET", "before"]).trim(), "1");
}

/// The Python interpreter that has redis-py's `redis.sentinel` (Debian's python3-redis), if any.
fn python_with_redis_py() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import redis.sentinel"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// redis-py's client: `Sentinel([...]).master_for('mymaster')`, writing in a loop; prints the
/// master it starts on, then, once a write lands on another master, that master's port, the
/// number of writes and failed attempts, and the value it read back there.
const REDIS_PY_CLIENT: &str = r#"
import sys, time, redis
from redis.sentinel import Sentinel
ports = [int(p) for p in sys.argv[1].split(',')]
sentinel = Sentinel([('127.0.0.1', p) for p in ports], socket_timeout=0.5)
master = sentinel.master_for('mymaster', socket_timeout=0.5)
first = sentinel.discover_master('mymaster')[1]
master.set('k0', 0)
print('MASTER', first, flush=True)
i, errors, deadline = 1, 0, time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        master.set('k%d' % i, i)
        i += 1
        now = master.connection_pool.get_master_address()[1]
        if now != first:
            master.set('after', 'failover')
            print('SWITCHED', now, i, errors, master.get('after').decode(), flush=True)
            sys.exit(0)
    except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as e:
        errors += 1
        time.sleep(0.05)
print('NO SWITCH', i, errors, flush=True)
sys.exit(1)
"#;

/// redis-py's `Sentinel.master_for` keeps writing through a kill -9 failover and reaches the
/// promoted replica; skipped (with a message) only when no Python has redis-py.
#[test]
fn redis_py_master_for_follows_kill9_failover() {
    let Some(py) = python_with_redis_py() else {
        eprintln!("SKIPPED redis_py_master_for_follows_kill9_failover: no python3 with redis.sentinel (apt-get install -y python3-redis)");
        return;
    };
    let mut master = Server::slotcore(&[]);
    let mp_s = master.port.to_string();
    let replica = Server::slotcore(&["--replicaof", "127.0.0.1", &mp_s]);
    wait_for("replica link up", WAIT, || replica.cli(&["INFO", "replication"]).contains("master_link_status:up"));
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(false, master.port)).collect();
    for s in &sentinels {
        s.wait_until("peers and replica known", || {
            s.master_field("num-other-sentinels") == "2" && s.master_field("num-slaves") == "1"
        });
    }
    let ports: Vec<String> = sentinels.iter().map(|s| s.port.to_string()).collect();
    let budget = (DOWN_AFTER + 4 * FAILOVER_TIMEOUT) / 1000 + 30;
    let mut client = Command::new(py)
        .args(["-c", REDIS_PY_CLIENT, &ports.join(","), &budget.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("first line");
    assert_eq!(line.trim(), format!("MASTER {mp_s}"), "redis-py found the master");
    wait_for("writes reach the replica", WAIT, || replica.cli(&["GET", "k0"]).trim() == "0");
    master.kill9();
    let t0 = Instant::now();
    let status = client.wait().expect("python exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("output");
    let mut err = String::new();
    if let Some(mut e) = client.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    eprintln!("redis-py after kill -9 of the master ({:.2}s): {}", t0.elapsed().as_secs_f64(), rest.trim());
    assert!(status.success(), "redis-py did not reach a new master: {rest}\n{err}");
    let words: Vec<&str> = rest.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"SWITCHED"), "{rest}");
    assert_eq!(words.get(1), Some(&replica.port.to_string().as_str()), "redis-py follows to the promoted replica");
    assert_eq!(words.get(4), Some(&"failover"), "redis-py read its write back from the new master");
    assert_eq!(role(&replica), "master");
    assert_eq!(replica.cli(&["GET", "after"]).trim(), "failover");
    assert_eq!(replica.cli(&["GET", "k0"]).trim(), "0");
}

/// Time from kill -9 of the master until every Sentinel reports the replica's address, with
/// each Sentinel's own time; `real` picks redis-server Sentinels, data nodes are slotcore.
fn failover_times(real: bool) -> (Duration, Vec<Duration>) {
    let mut master = Server::slotcore(&[]);
    let mp_s = master.port.to_string();
    let replica = Server::slotcore(&["--replicaof", "127.0.0.1", &mp_s]);
    wait_for("replica link up", WAIT, || replica.cli(&["INFO", "replication"]).contains("master_link_status:up"));
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(real, master.port)).collect();
    for s in &sentinels {
        s.wait_until("peers and replica known", || {
            s.master_field("num-other-sentinels") == "2" && s.master_field("num-slaves") == "1"
        });
    }
    let rp_s = replica.port.to_string();
    let t0 = Instant::now();
    master.kill9();
    let mut seen: Vec<Option<Duration>> = vec![None; sentinels.len()];
    let limit = Duration::from_millis(DOWN_AFTER + 4 * FAILOVER_TIMEOUT) + Duration::from_secs(15);
    while seen.iter().any(|s| s.is_none()) && t0.elapsed() < limit {
        for (i, s) in sentinels.iter().enumerate() {
            if seen[i].is_none() && s.master_port() == rp_s {
                seen[i] = Some(t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let each: Vec<Duration> = seen.into_iter().map(|s| s.expect("every Sentinel names the replica")).collect();
    let all = each.iter().copied().max().unwrap_or_default();
    (all, each)
}

/// Failover time on the same set-up (slotcore master + replica, three Sentinels,
/// down-after-milliseconds 2000, kill -9): slotcore Sentinels next to redis-server Sentinels.
#[test]
fn failover_time_slotcore_vs_redis_sentinels() {
    let fmt = |v: &[Duration]| v.iter().map(|d| format!("{:.2}s", d.as_secs_f64())).collect::<Vec<_>>().join(" ");
    let (ours, ours_each) = failover_times(false);
    let (theirs, theirs_each) = failover_times(true);
    eprintln!(
        "failover time, kill -9 of the master to every Sentinel reporting the replica (down-after-milliseconds {DOWN_AFTER}): slotcore Sentinels {:.2}s (each: {}), redis-server Sentinels {:.2}s (each: {})",
        ours.as_secs_f64(),
        fmt(&ours_each),
        theirs.as_secs_f64(),
        fmt(&theirs_each)
    );
    // Neither can switch before the master has been down for down-after-milliseconds.
    assert!(ours >= Duration::from_millis(DOWN_AFTER) && theirs >= Duration::from_millis(DOWN_AFTER));
}
