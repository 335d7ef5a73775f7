//! `bind` (the listening addresses, changed at run time and at start-up) and
//! `bind-source-addr` (the source address of the replica's link to its master and of cluster
//! bus links), compared with a real redis-server where both can run the same steps.

mod common;
use common::{assert_same, until, Server};
use std::net::TcpStream;
use std::process::Command;

/// `redis-cli -s <socket> args...` (bounded by a timeout).
fn unix_cli(socket: &str, args: &[&str]) -> String {
    let out =
        Command::new("timeout").args(["30", "redis-cli", "-s", socket]).args(args).output().expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tcp_refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[test]
fn config_set_bind_forms_as_redis() {
    let (ours, redis) = (Server::slotcore(&[]), Server::redis(&[]));
    let (mut a, mut b) = (ours.raw(), redis.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["config", "get", "bind"],
            &["config", "set", "bind", "999.999.999.999"],
            &["config", "set", "bind", "-999.999.999.999"],
            &["config", "get", "bind"],
            &["config", "set", "bind", "localhost"],
            &["config", "get", "bind"],
            &["config", "set", "bind", "127.0.0.1 -::1"],
            &["config", "get", "bind"],
            &["config", "set", "bind", "* -::*"],
            &["config", "get", "bind"],
        ],
    );
    for s in [&ours, &redis] {
        let mut c = s.raw();
        assert_eq!(c.cmd(&["ping"]), "+PONG\r\n", "still listening on the previous addresses");
    }
    let log = ours.log_text();
    for line in [
        "Warning: Could not create server TCP listening socket 999.999.999.999:",
        "Failed to bind",
        "Failed applying new configuration. Possibly related to new bind setting. Restoring previous settings.",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
}

/// Redis's own test: no address at all stops TCP, CONFIG REWRITE keeps it, a restart comes
/// up listening on the Unix socket only, and `bind *` brings TCP back.
fn no_bind_address(s: &mut Server, socket: &str, conf: &std::path::Path) {
    assert_eq!(unix_cli(socket, &["config", "get", "bind"]), "bind\n* -::*\n");
    assert_eq!(unix_cli(socket, &["config", "rewrite"]), "OK\n");
    let text = std::fs::read_to_string(conf).expect("read config");
    assert_eq!(text.lines().filter(|l| l.starts_with("bind")).count(), 0, "the default is not written:\n{text}");
    assert_eq!(unix_cli(socket, &["config", "set", "bind", ""]), "OK\n");
    assert_eq!(unix_cli(socket, &["config", "get", "bind"]), "bind\n\n");
    assert!(tcp_refused(s.port));
    assert_eq!(unix_cli(socket, &["config", "rewrite"]), "OK\n");
    let text = std::fs::read_to_string(conf).expect("read config");
    assert_eq!(text.lines().filter(|l| l.starts_with("bind")).collect::<Vec<_>>(), ["bind \"\""], "{text}");
    s.relaunch();
    until("the restarted server on its Unix socket", || unix_cli(socket, &["ping"]) == "PONG\n");
    assert_eq!(unix_cli(socket, &["config", "get", "bind"]), "bind\n\n");
    assert!(tcp_refused(s.port));
    assert_eq!(unix_cli(socket, &["config", "set", "bind", "*"]), "OK\n");
    assert_eq!(s.raw().cmd(&["ping"]), "+PONG\r\n");
}

#[test]
fn no_bind_address_as_redis() {
    for redis in [true, false] {
        let port = common::free_port();
        let dir = std::env::temp_dir().join(format!("slotcore-bind-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let conf = dir.join("node.conf");
        let socket = dir.join("node.sock").to_string_lossy().into_owned();
        std::fs::write(&conf, format!("unixsocket {socket}\n")).expect("write config");
        let conf_arg = conf.to_string_lossy().into_owned();
        let mut s =
            if redis { Server::redis_with_conf(&conf_arg, &[]) } else { Server::slotcore_on(port, &[&conf_arg]) };
        no_bind_address(&mut s, &socket, &conf);
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn replica_ip_seen_by(master: &Server, replica: &Server) -> String {
    let mut r = replica.raw();
    assert_eq!(r.cmd(&["config", "set", "bind-source-addr", "127.0.0.2"]), "+OK\r\n");
    assert_eq!(r.cmd(&["replicaof", "127.0.0.1", &master.port.to_string()]), "+OK\r\n");
    until("the link up", || replica.cli(&["info", "replication"]).contains("master_link_status:up"));
    let info = master.cli(&["info", "replication"]);
    info.lines().find(|l| l.starts_with("slave0:")).unwrap_or_default().to_string()
}

#[test]
fn replica_link_leaves_from_bind_source_addr() {
    // slotcore's replica seen by redis-server's master, and by slotcore's.
    let master = Server::redis(&["--protected-mode", "no"]);
    let replica = Server::slotcore(&[]);
    let seen = replica_ip_seen_by(&master, &replica);
    assert!(seen.contains("ip=127.0.0.2,"), "{seen}");
    let master = Server::slotcore(&["--protected-mode", "no"]);
    let replica = Server::slotcore(&[]);
    let seen = replica_ip_seen_by(&master, &replica);
    assert!(seen.contains("ip=127.0.0.2,"), "{seen}");
    // An address that cannot be bound: the link is made without it, as Redis's best effort.
    let master = Server::slotcore(&[]);
    let replica = Server::slotcore(&["--bind-source-addr", "192.0.2.1"]);
    let mut r = replica.raw();
    assert_eq!(r.cmd(&["replicaof", "127.0.0.1", &master.port.to_string()]), "+OK\r\n");
    until("the link up", || replica.cli(&["info", "replication"]).contains("master_link_status:up"));
}

#[test]
fn cluster_bus_links_leave_from_bind_source_addr() {
    // redis-server's node learns a node's address from the bus connection it receives.
    let theirs = common::cluster::redis_node();
    let ours = common::cluster::slotcore_node();
    let mut c = ours.raw();
    assert_eq!(c.cmd(&["config", "set", "bind-source-addr", "127.0.0.2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["cluster", "meet", "127.0.0.1", &theirs.port.to_string()]), "+OK\r\n");
    let id = common::cluster::myid(&ours);
    until("redis-server's node to list ours from 127.0.0.2", || {
        common::cluster::nodes(&theirs).iter().any(|n| n[0] == id && n[1].starts_with("127.0.0.2:"))
    });
}

/// A Sentinel process (killed by PID when dropped).
struct Sentinel(std::process::Child);

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sentinel_links_leave_from_bind_source_addr_as_redis() {
    let master = Server::redis(&["--protected-mode", "no"]);
    for program in ["redis-server", env!("CARGO_BIN_EXE_slotcore")] {
        let port = common::free_port();
        let dir = std::env::temp_dir().join(format!("slotcore-bind-sentinel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!("port {port}\nbind-source-addr 127.0.0.2\nsentinel monitor m 127.0.0.1 {} 1\n", master.port),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.join("sentinel.log")).expect("log");
        let child = Command::new(program)
            .arg(&conf)
            .arg("--sentinel")
            .current_dir(&dir)
            .stdout(std::process::Stdio::from(log.try_clone().expect("log")))
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .expect("spawn sentinel");
        let sentinel = Sentinel(child);
        // Its command and Pub/Sub links, as the master lists them.
        until("the Sentinel's links from 127.0.0.2", || {
            let list = master.cli(&["client", "list"]);
            list.lines().filter(|l| l.contains("name=sentinel-") && l.contains(" addr=127.0.0.2:")).count() == 2
        });
        drop(sentinel);
        until("the links gone", || !master.cli(&["client", "list"]).contains("name=sentinel-"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A connection to 127.0.0.1:`port` leaving from 127.0.0.2, which protected mode refuses as
/// it refuses any address but 127.0.0.1 and ::1 (as Redis 7.0); its first reply to PING.
fn ping_from_127_0_0_2(port: u16, keep: &mut Vec<TcpStream>) -> String {
    use socket2::{Domain, Socket, Type};
    use std::io::{BufRead, Write};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into()).expect("bind 127.0.0.2");
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("connect");
    let mut stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(common::WAIT)).expect("timeout");
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut line = String::new();
    std::io::BufReader::new(stream.try_clone().expect("clone")).read_line(&mut line).expect("reply");
    keep.push(stream);
    line.trim_end().chars().take(7).collect()
}

/// `CONFIG SET protected-mode` made on one connection counts for every client accepted after
/// it, whichever shard serves that client: with four shards a shard idle since the change
/// admitted new clients by its old setting (Redis's unit/networking "Protected mode works as
/// expected" with `--shards 4`). The connections stay open, so new ones spread over the shards.
#[test]
fn protected_mode_set_at_run_time_counts_on_every_shard_as_redis() {
    let run = |s: &Server| -> Vec<String> {
        let mut r = s.raw();
        let mut keep = Vec::new();
        let mut seen = Vec::new();
        for mode in ["no", "yes", "no", "yes"] {
            assert_eq!(r.cmd(&["CONFIG", "SET", "protected-mode", mode]), "+OK\r\n");
            for _ in 0..6 {
                seen.push(format!("{mode}: {}", ping_from_127_0_0_2(s.port, &mut keep)));
            }
        }
        seen
    };
    let theirs = run(&Server::redis(&[]));
    assert!(theirs.iter().all(|l| l == "no: +PONG" || l == "yes: -DENIED"), "{theirs:?}");
    assert_eq!(run(&Server::slotcore(&["--shards", "4"])), theirs);
}
