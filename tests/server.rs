//! Connection and server commands: replies compared with a real redis-server where they are
//! deterministic, and behaviour checks for INFO, CLIENT, MONITOR, SLOWLOG, SHUTDOWN, RESP3.

mod common;
use common::{assert_same, Raw, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn deterministic_replies_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["PING"],
            &["PING", "hi"],
            &["PING", "a", "b"],
            &["ECHO", "x"],
            &["ECHO"],
            &["AUTH", "x"],
            &["AUTH", "default", "x"],
            &["AUTH", "a", "b"],
            &["AUTH", "a", "b", "c"],
            &["HELLO", "4"],
            &["HELLO", "x"],
            &["HELLO", "2", "BOGUS"],
            &["CLIENT", "SETNAME", "a b"],
            &["CLIENT", "SETNAME", "conn1"],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", ""],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "REPLY", "foo"],
            &["CLIENT", "KILL", "1.2.3.4:5"],
            &["CLIENT", "KILL", "ID", "999999"],
            &["CLIENT", "KILL", "ID", "0"],
            &["CLIENT", "KILL", "foo", "bar"],
            &["CLIENT", "NO-EVICT", "maybe"],
            &["CLIENT", "NO-EVICT", "on"],
            &["CLIENT", "LIST", "TYPE", "foo"],
            &["CLIENT", "BOGUS"],
            &["CLIENT"],
            &["SELECT", "16"],
            &["SELECT", "x"],
            &["SELECT", "1"],
            &["RESET"],
            &["COMMAND", "BOGUS"],
            &["COMMAND", "GETKEYS", "mset", "a", "b", "c", "d"],
            &["COMMAND", "GETKEYS", "get"],
            &["COMMAND", "GETKEYS", "nosuch", "x"],
            &["COMMAND", "GETKEYS", "ping", "x"],
            &["COMMAND", "INFO", "nosuchcommand"],
            &["SHUTDOWN", "ABORT"],
            &["SHUTDOWN", "FOO"],
            &["SLOWLOG", "FOO"],
            &["DEBUG", "SLEEP", "0"],
            &["LASTSAVE", "x"],
            &["TIME", "x"],
        ],
    );
}

#[test]
fn info_sections_and_fields() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    r.cmd(&["SET", "k", "v"]);
    r.cmd(&["SET", "age", "v", "EX", "100"]);
    let info = s.cli(&["INFO"]);
    for field in
        ["redis_version:7.0.15", "redis_mode:standalone", "connected_clients:", "used_memory:", "cluster_enabled:0"]
    {
        assert!(info.contains(field), "INFO lacks {field}:\n{info}");
    }
    assert!(info.contains("db0:keys=2,expires=1,avg_ttl=0"), "{info}");
    assert!(info.contains("# Shards") && info.contains("shard1:"), "{info}");
    let raw = r.cmd(&["INFO", "server"]);
    assert!(raw.contains("\r\n# Server\r\n") || raw.contains("# Server\r\n"));
    for line in raw.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        assert!(line.is_empty() || line.starts_with('#') || line.contains(':'), "bad INFO line {line:?}");
    }
    assert!(!raw.contains("# Clients"));
    let all = s.cli(&["INFO", "commandstats"]);
    assert!(all.contains("cmdstat_set:calls=2"), "{all}");
}

#[test]
fn client_list_and_kill_across_shards() {
    let s = Server::slotcore_shards(2);
    let mut conns: Vec<Raw> = (0..6).map(|_| s.raw()).collect();
    let mut ids = Vec::new();
    for c in conns.iter_mut() {
        let id = c.cmd(&["CLIENT", "ID"]);
        ids.push(id.trim_start_matches(':').trim().to_string());
    }
    let list = s.cli(&["CLIENT", "LIST"]);
    for id in &ids {
        assert!(list.contains(&format!("id={id} ")), "{id} missing in {list}");
    }
    // Kill the last connection from the first; it is closed whatever shard it lives on.
    let victim = ids[5].clone();
    assert_eq!(conns[0].cmd(&["CLIENT", "KILL", "ID", &victim]), ":1\r\n");
    let rest = conns[5].read_to_end();
    assert!(rest.is_empty(), "killed connection still answered {rest:?}");
    let list = s.cli(&["CLIENT", "LIST"]);
    assert!(!list.contains(&format!("id={victim} ")));
}

#[test]
fn monitor_sees_commands_from_other_connections() {
    let s = Server::slotcore_shards(2);
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "MONITOR"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli monitor");
    let stdout = child.stdout.take().expect("stdout");
    std::thread::sleep(Duration::from_millis(300));
    let mut r = s.raw();
    r.cmd(&["SET", "monitored", "value"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        if line.contains("\"SET\" \"monitored\" \"value\"") {
            seen = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "MONITOR did not show the SET");
}

#[test]
fn slowlog_records_and_resets() {
    let s = Server::slotcore(&["--slowlog-log-slower-than", "0"]);
    let mut r = s.raw();
    r.cmd(&["SET", "k", "v"]);
    r.cmd(&["GET", "k"]);
    let len = r.cmd(&["SLOWLOG", "LEN"]);
    let n: i64 = len.trim_start_matches(':').trim().parse().unwrap_or(0);
    assert!(n >= 2, "SLOWLOG LEN {len:?}");
    let got = r.cmd(&["SLOWLOG", "GET", "1"]);
    assert!(got.starts_with("*1\r\n*6\r\n"), "{got:?}");
    assert_eq!(r.cmd(&["SLOWLOG", "RESET"]), "+OK\r\n");
}

#[test]
fn debug_is_guarded_and_shutdown_exits() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    assert!(r.cmd(&["DEBUG", "SLEEP", "0"]).starts_with("-ERR DEBUG command not allowed."));
    let mut s = Server::slotcore(&["--enable-debug-command", "yes"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["DEBUG", "SLEEP", "0.01"]), "+OK\r\n");
    // SHUTDOWN SAVE writes the RDB file before exiting; the next start loads it.
    assert_eq!(r.cmd(&["SET", "kept", "1"]), "+OK\r\n");
    r.send(&common::encode(&[b"SHUTDOWN", b"SAVE"]));
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(s.dir.join("dump.rdb").exists());
    s.restart();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["GET", "kept"]), "$1\r\n1\r\n");
    r.send(&common::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn resp3_and_client_reply() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    let hello = r.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello:?}");
    assert_eq!(r.cmd(&["GET", "nokey"]), "_\r\n");
    assert_eq!(r.cmd(&["CONFIG", "GET", "port"]).chars().next(), Some('%'));
    // CLIENT REPLY OFF: nothing comes back until ON.
    r.send(&common::encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    r.send(&common::encode(&[b"SET", b"a", b"1"]));
    r.send(&common::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    r.send(&common::encode(&[b"CLIENT", b"REPLY", b"ON"]));
    assert_eq!(r.reply(), "+OK\r\n");
    r.send(&common::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    r.send(&common::encode(&[b"GET", b"a"]));
    r.send(&common::encode(&[b"PING"]));
    assert_eq!(r.reply(), "+PONG\r\n");
}

#[test]
fn redis_cli_interactive_and_tools() {
    let s = Server::slotcore_shards(2);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf 'set x 1\\nget x\\n' | redis-cli -p {}", s.port))
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n1\n");
    assert!(out.status.success());
    assert!(s.cli(&["config", "get", "*"]).lines().count() > 300);
}

#[test]
fn latency_monitor_records_slow_commands() {
    let s = Server::slotcore(&["--latency-monitor-threshold", "5", "--enable-debug-command", "yes"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["LATENCY", "LATEST"]), "*0\r\n");
    assert_eq!(r.cmd(&["DEBUG", "SLEEP", "0.02"]), "+OK\r\n");
    let latest = r.cmd(&["LATENCY", "LATEST"]);
    assert!(latest.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n"), "{latest:?}");
    assert!(r.cmd(&["LATENCY", "HISTORY", "command"]).starts_with("*1\r\n*2\r\n"));
    assert_eq!(r.cmd(&["LATENCY", "RESET"]), ":1\r\n");
    assert_eq!(r.cmd(&["LATENCY", "LATEST"]), "*0\r\n");
}

#[test]
fn debug_digest_matches_redis() {
    let s = Server::slotcore(&["--shards", "2", "--enable-debug-command", "yes"]);
    let o = Server::redis(&["--enable-debug-command", "yes"]);
    let mut a = s.raw();
    let mut b = o.raw();
    assert_same(
        &mut a,
        &mut b,
        &[
            &["DEBUG", "DIGEST"],
            &["MSET", "a", "1", "age", "hello", "name", "12345678901"],
            &["SET", "ttl", "v", "EX", "1000"],
            &["SELECT", "3"],
            &["SET", "other", "db"],
            &["SELECT", "0"],
            &["DEBUG", "DIGEST"],
            &["DEBUG", "DIGEST-VALUE", "a", "age", "ttl", "missing"],
            &["DEBUG", "OBJECT", "missing"],
            &["DEBUG", "POPULATE", "2000"],
            &["DEBUG", "POPULATE", "50", "pre", "20"],
            &["DEBUG", "POPULATE", "3", "a", "2"],
            &["DEBUG", "POPULATE", "-1"],
            &["DEBUG", "POPULATE", "x"],
            &["DEBUG", "POPULATE", "1", "p", "-3"],
            &["DBSIZE"],
            &["GET", "pre:7"],
            &["GET", "a:1"],
            &["DEBUG", "DIGEST"],
        ],
    );
    let obj = a.cmd(&["DEBUG", "OBJECT", "age"]);
    assert!(obj.starts_with("+Value at:") && obj.contains("encoding:embstr serializedlength:6"), "{obj:?}");
    a.cmd(&["RPUSH", "q", "a", "b", "c"]);
    let obj = a.cmd(&["DEBUG", "OBJECT", "q"]);
    // Redis 7.0's quicklist fields (ql_uncompressed_size counts each one's own packing).
    let ql = " ql_nodes:1 ql_avg_node:3.00 ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:9\r\n";
    assert!(obj.contains("encoding:quicklist") && obj.ends_with(ql), "{obj:?}");
}

#[test]
fn command_docs_carry_arguments_for_cli_hints() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    let docs = r.cmd(&["COMMAND", "DOCS", "set"]);
    for part in ["$9\r\narguments\r\n", "$5\r\ntoken\r\n$2\r\nNX\r\n", "$5\r\noneof\r\n", "$7\r\nseconds\r\n"] {
        assert!(docs.contains(part), "COMMAND DOCS set lacks {part:?}: {docs:?}");
    }
    let all = r.cmd(&["COMMAND", "DOCS"]);
    assert!(all.contains("$6\r\nconfig\r\n") && all.contains("$10\r\nconfig|get\r\n"));
}

/// COMMAND INFO / DOCS of a `container|sub` name answer the subcommand's entry, and a
/// container's entry lists its subcommands, as redis-server does (compared on what both
/// carry: name, arity, flags, key positions, ACL categories; summary, since, group).
#[test]
fn command_info_and_docs_of_subcommands_match_redis() {
    use redis::Value;
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.client(), o.client());
    let query = |c: &mut redis::Connection, args: &[&str]| -> Value {
        redis::cmd("COMMAND").arg(args).query(c).expect("COMMAND")
    };
    let items = |v: Value| -> Vec<Value> {
        match v {
            Value::Array(v) => v,
            other => vec![other],
        }
    };
    // An INFO entry: its first seven fields, and its subcommands' (sorted: Redis lists them
    // in its dictionary's order).
    fn entry(v: Value) -> (String, Vec<String>) {
        let Value::Array(f) = v else { return (format!("{v:?}"), Vec::new()) };
        let head = format!("{:?}", &f[..7.min(f.len())]);
        let mut subs: Vec<String> = match f.get(9) {
            Some(Value::Array(subs)) => subs.iter().map(|s| entry(s.clone()).0).collect(),
            _ => Vec::new(),
        };
        subs.sort();
        (head, subs)
    }
    let names = ["config|get", "CONFIG|SET", "client|id", "xgroup|create", "command|info", "config|nosuch", "get|x"];
    for list in [&names[..], &["config|get|x", "|", "get", "config", "client", "xgroup", "object", "command"]] {
        let mut args = vec!["INFO"];
        args.extend_from_slice(list);
        let got: Vec<_> = items(query(&mut a, &args)).into_iter().map(entry).collect();
        let want: Vec<_> = items(query(&mut b, &args)).into_iter().map(entry).collect();
        assert_eq!(got, want, "COMMAND {args:?}");
    }
    // DOCS: the names answered, and each one's summary, since and group.
    let docs = |c: &mut redis::Connection| -> Vec<(String, Vec<String>)> {
        let mut args = vec!["DOCS"];
        args.extend_from_slice(&names);
        let flat = items(query(c, &args));
        flat.chunks(2)
            .map(|kv| {
                let fields = items(kv[1].clone());
                let keep = fields
                    .chunks(2)
                    .filter(|f| matches!(&f[0], Value::BulkString(k) if [&b"summary"[..], b"since", b"group"].contains(&&k[..])))
                    .map(|f| format!("{:?}", f))
                    .collect();
                (format!("{:?}", kv[0]), keep)
            })
            .collect()
    };
    let got = docs(&mut a);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got, docs(&mut b));
}

/// The field names of `INFO everything`, section by section, without slotcore's own
/// (`slotcore_version`, the `# Shards` section).
fn info_field_names(s: &Server) -> Vec<String> {
    let info = s.cli(&["INFO", "everything"]);
    let mut names = Vec::new();
    let mut own_section = false;
    for line in info.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(section) = line.strip_prefix("# ") {
            own_section = section == "Shards";
            if !own_section {
                names.push(line.to_string());
            }
        } else if let Some((name, _)) = line.split_once(':') {
            if !own_section && name != "slotcore_version" {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Every INFO field redis-server 7.0 shows, in its order, so that monitoring tools find theirs
/// (`instantaneous_ops_per_sec`, `used_memory_dataset`, `mem_fragmentation_bytes`, ...).
#[test]
fn info_fields_are_redis_s_in_redis_s_order() {
    let redis = Server::redis(&[]);
    let slot = Server::slotcore_shards(2);
    assert_eq!(info_field_names(&slot), info_field_names(&redis));
}

/// The number an INFO text gives for `name`.
fn info_num<T: std::str::FromStr>(info: &str, name: &str) -> T {
    info.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(&format!("{name}:")).map(str::to_string))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

/// MEMORY STATS as a flat list of (name, value) pairs: a database's map becomes
/// `db.N.<field>` entries.
fn memory_stats(s: &Server) -> Vec<(String, String)> {
    use redis::Value;
    let v: Value = redis::cmd("MEMORY").arg("STATS").query(&mut s.client()).expect("MEMORY STATS");
    let text = |v: &Value| match v {
        Value::BulkString(d) => String::from_utf8_lossy(d).into_owned(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    let Value::Array(items) = v else { panic!("MEMORY STATS is not an array: {v:?}") };
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let name = text(&pair[0]);
        match &pair[1] {
            Value::Array(inner) => {
                for p in inner.chunks(2) {
                    out.push((format!("{name}.{}", text(&p[0])), text(&p[1])));
                }
            }
            v => out.push((name, text(v))),
        }
    }
    out
}

/// An empty one-shard node starts near redis-server's memory: `maxmemory` a few hundred KB
/// over an empty node's (as Redis's own memory tests set it) leaves room for data. At 2.05 MB
/// against Redis's 0.91 MB, glommio's unused 512 KB DMA pool per executor was most of the gap.
#[test]
fn an_empty_node_starts_near_redis_servers_memory() {
    let redis = Server::redis(&[]);
    let slot = Server::slotcore(&["--shards", "1"]);
    let used = |s: &Server| -> u64 { info_num(&s.cli(&["INFO", "memory"]), "used_memory") };
    let (ours, theirs) = (used(&slot), used(&redis));
    assert!(ours * 10 <= theirs * 14, "an empty node uses {ours} bytes, redis-server {theirs}");
}

/// MEMORY STATS shows Redis 7.0's fields in its order, and the node's figures: every shard's
/// keys, the same start-up, overhead and dataset as INFO memory. An empty node's memory is its
/// start-up memory (each shard's set-up counted there, not as 1.8 MB of dataset).
#[test]
fn memory_stats_are_the_nodes_and_agree_with_info() {
    let redis = Server::redis(&[]);
    let slot = Server::slotcore_shards(2);
    let info = |s: &Server, name: &str| -> u64 { info_num(&s.cli(&["INFO", "memory"]), name) };
    let net = info(&slot, "used_memory") - info(&slot, "used_memory_startup");
    assert!(net < 512 << 10, "an empty node holds {net} bytes beyond its start-up memory");
    for s in [&redis, &slot] {
        let mut c = s.raw();
        for i in 0..100 {
            c.cmd(&["SET", &format!("key:{i}"), "value"]);
        }
    }
    let names = |s: &Server| memory_stats(s).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(&slot), names(&redis));
    let stats: std::collections::HashMap<String, u64> =
        memory_stats(&slot).into_iter().filter_map(|(n, v)| v.parse().ok().map(|v| (n, v))).collect();
    assert_eq!(stats["keys.count"], 100, "the keys of both shards");
    assert_eq!(stats["startup.allocated"], info(&slot, "used_memory_startup"));
    assert_eq!(stats["overhead.total"] + stats["dataset.bytes"], stats["total.allocated"]);
    assert!(stats["overhead.total"] >= stats["startup.allocated"] + stats["db.0.overhead.hashtable.main"]);
    assert!(stats["db.0.overhead.hashtable.main"] > 0);
    assert!(stats["peak.allocated"] >= stats["total.allocated"]);
}

/// LOLWUT as redis-server 7.0's: its version line, VERSION 5's Schotter byte for byte where it
/// has no randomness (two rows of squares; every size limit), the errors, COMMAND INFO and DOCS;
/// where the art is random (VERSION 6's skyline, Schotter's lower rows), its shape.
#[test]
fn lolwut_as_redis() {
    let redis = Server::redis(&[]);
    let slot = Server::slotcore(&[]);
    let (mut a, mut b) = (slot.raw(), redis.raw());
    common::assert_same(
        &mut a,
        &mut b,
        &[
            &["LOLWUT"],
            &["LOLWUT", "5"],
            &["LOLWUT", "VERSION"],
            &["LOLWUT", "VERSION", "-1"],
            &["LOLWUT", "VERSION", "59"],
            &["LOLWUT", "VERSION", "5", "20", "3", "2"],
            &["LOLWUT", "VERSION", "5", "66", "8", "2"],
            &["LOLWUT", "VERSION", "5", "1", "1", "1"],
            &["LOLWUT", "VERSION", "5", "0", "0", "0"],
            &["LOLWUT", "VERSION", "5", "3000", "500", "1"],
            &["LOLWUT", "VERSION", "5", "7", "2", "-4"],
            &["LOLWUT", "VERSION", "x"],
            &["LOLWUT", "VERSION", "5", "1a"],
            &["LOLWUT", "VERSION", "6", "80", "z"],
            &["COMMAND", "INFO", "LOLWUT"],
            &["COMMAND", "DOCS", "LOLWUT"],
        ],
    );
    for args in [
        &["LOLWUT", "VERSION", "6", "30", "8"][..],
        &["LOLWUT", "VERSION", "5"],
        &["LOLWUT", "VERSION", "49", "3", "1"],
    ] {
        let (x, y) = (a.cmd(args), b.cmd(args));
        assert_eq!(x.lines().count(), y.lines().count(), "{args:?}: {x:?} / {y:?}");
        assert_eq!(x.lines().last(), y.lines().last(), "{args:?}");
    }
}

/// The instantaneous metrics follow the load (a mean of 16 samples taken every 100 ms), and
/// the replication byte counters count the replication stream apart from the clients' bytes.
#[test]
fn instantaneous_metrics_and_replication_bytes() {
    let master = Server::slotcore_shards(2);
    let replica = Server::slotcore(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    common::until("replica online", || replica.cli(&["INFO", "replication"]).contains("master_link_status:up"));
    let field = |s: &Server, name: &str| -> f64 { info_num(&s.cli(&["INFO", "stats"]), name) };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (port, flag) = (master.port, stop.clone());
    let load = std::thread::spawn(move || {
        let mut r = Raw::connect(port);
        let mut i = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            r.cmd(&["SET", &format!("k{}", i % 100), "value"]);
            i += 1;
        }
    });
    common::until("instantaneous_ops_per_sec under load", || field(&master, "instantaneous_ops_per_sec") > 100.0);
    // The rates are sampled every 100 ms by each shard and the control core apart: the stream's
    // may show a sample after the command rate does.
    common::until("instantaneous_input_kbps under load", || field(&master, "instantaneous_input_kbps") > 0.0);
    common::until("instantaneous_output_repl_kbps under load", || {
        field(&master, "instantaneous_output_repl_kbps") > 0.0
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().expect("load thread");
    let sent = field(&master, "total_net_repl_output_bytes");
    assert!(sent > 0.0 && field(&master, "total_net_output_bytes") >= sent);
    assert!(field(&replica, "total_net_repl_input_bytes") > 0.0);
    assert!(field(&replica, "total_reads_processed") > 0.0);
    // Idle again (but for these INFO calls): the rate falls within 16 samples.
    common::until("instantaneous_ops_per_sec back down", || field(&master, "instantaneous_ops_per_sec") < 500.0);
}

/// `used_memory_peak` is sampled by the cron, as Redis's: replies held for a client that does
/// not read them show in the peak after they are gone, though no INFO ran meanwhile.
#[test]
fn the_cron_samples_the_memory_peak() {
    use std::io::{Read, Write};
    let s = Server::slotcore(&[]);
    let mut admin = s.raw();
    admin.cmd(&["CONFIG", "SET", "hz", "100"]);
    admin.cmd(&["SET", "big", &"x".repeat(1 << 20)]);
    let peak = |r: &mut Raw| -> u64 { info_num(&r.cmd(&["INFO", "memory"]), "used_memory_peak") };
    let before = peak(&mut admin);
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    slow.write_all(&b"GET big\r\n".repeat(32)).expect("write");
    common::until("the replies pending", || {
        let list = admin.cmd(&["CLIENT", "LIST"]);
        list.lines()
            .any(|l| l.split(' ').any(|f| f.strip_prefix("omem=").and_then(|v| v.parse::<u64>().ok()) > Some(16 << 20)))
    });
    // Some cron ticks (10 ms apart at hz 100) while they are held.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let want = 32 * ((1 << 20) + 11);
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    while got < want {
        let n = slow.read(&mut buf).expect("read");
        assert!(n > 0, "the connection closed after {got} bytes");
        got += n;
    }
    let after = peak(&mut admin);
    assert!(after > before + (16 << 20), "used_memory_peak {before} -> {after}");
}

/// A client that does not read its replies shows them in CLIENT LIST (`omem`, `oll`, events
/// `rw`) and INFO (`client_recent_max_output_buffer`, `mem_clients_normal`) until it reads.
#[test]
fn pending_replies_show_in_client_list_and_info() {
    use std::io::{Read, Write};
    let s = Server::slotcore(&[]);
    let mut admin = s.raw();
    admin.cmd(&["SET", "big", &"x".repeat(1 << 20)]);
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    slow.write_all(b"CLIENT SETNAME slow\r\n").expect("write");
    let mut ok = [0u8; 5];
    slow.read_exact(&mut ok).expect("+OK");
    // 32 MB of replies: far more than the socket buffers hold.
    slow.write_all(&b"GET big\r\n".repeat(32)).expect("write");
    let omem = |list: &str| -> u64 {
        let line = list.lines().find(|l| l.contains("name=slow")).unwrap_or_else(|| panic!("no slow client in {list}"));
        line.split(' ').find_map(|f| f.strip_prefix("omem=")).and_then(|v| v.parse().ok()).expect("omem")
    };
    common::until("pending replies in omem", || omem(&s.cli(&["CLIENT", "LIST"])) > 1 << 20);
    let list = s.cli(&["CLIENT", "LIST"]);
    let line = list.lines().find(|l| l.contains("name=slow")).expect("slow client");
    assert!(line.contains(" oll=1 ") && line.contains(" events=rw "), "{line}");
    let info = s.cli(&["INFO", "clients"]);
    let max: u64 = info
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("client_recent_max_output_buffer:"))
        .and_then(|v| v.parse().ok())
        .expect("client_recent_max_output_buffer");
    assert!(max > 1 << 20, "{info}");
    // Reading everything empties it.
    let mut left = 32 * ((1 << 20) + 2 + "$1048576\r\n".len());
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = slow.read(&mut buf).expect("read");
        assert!(n > 0, "closed");
        left = left.saturating_sub(n);
    }
    common::until("omem back to 0", || omem(&s.cli(&["CLIENT", "LIST"])) == 0);
}

/// MODULE answers as redis-server 7.0 does with no module loaded: LIST is empty, LOAD and
/// UNLOAD are refused unless `enable-module-command` allows them, then fail as for a library
/// that cannot load; a `loadmodule` line stops start-up, as a module failing to load does.
#[test]
fn module_command_as_redis_without_modules() {
    let cmds: &[&[&str]] = &[
        &["MODULE", "LIST"],
        &["MODULE", "HELP"],
        &["MODULE", "LOAD", "/nonexistent.so"],
        &["MODULE", "LOADEX", "/nonexistent.so"],
        &["MODULE", "UNLOAD", "foo"],
        &["MODULE", "FOO"],
        &["MODULE"],
        &["MODULE", "LIST", "extra"],
    ];
    for enable in ["no", "yes"] {
        let redis = Server::redis(&["--enable-module-command", enable]);
        let slot = Server::slotcore(&["--enable-module-command", enable]);
        assert_same(&mut redis.raw(), &mut slot.raw(), cmds);
    }
    let slot = Server::slotcore(&["--enable-module-command", "yes"]);
    slot.cli(&["MODULE", "LOAD", "/opt/redisjson.so"]);
    common::until("the load error in the log", || {
        std::fs::read_to_string(&slot.log).unwrap_or_default().contains("Module /opt/redisjson.so failed to load")
    });
    let out = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", "0", "--loadmodule", "/opt/redisjson.so"])
        .output()
        .expect("run slotcore");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Can't load module from /opt/redisjson.so: server aborting"), "{text}");
}

/// Runs `redis-cli -s SOCKET args...` (bounded by a timeout) and returns its stdout.
fn cli_unix(socket: &std::path::Path, args: &[&str]) -> String {
    let out =
        Command::new("timeout").args(["30", "redis-cli", "-s"]).arg(socket).args(args).output().expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unix_socket_clients_as_redis() {
    let base = std::env::temp_dir().join(format!("slotcore-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("socket dir");
    // A stale file where the socket goes does not stop start-up (Redis unlinks it first).
    let ours = base.join("slotcore.sock");
    std::fs::write(&ours, b"stale").expect("stale file");
    let theirs = base.join("redis.sock");
    let sock_args = |p: &std::path::Path| vec!["--unixsocket".to_string(), p.display().to_string()];
    let (a, b) = (sock_args(&ours), sock_args(&theirs));
    let mut s = Server::slotcore(&[&a[0], &a[1], "--unixsocketperm", "700", "--shards", "2"]);
    let mut r = Server::redis(&[&b[0], &b[1], "--unixsocketperm", "700"]);
    for (sock, server) in [(&ours, &s), (&theirs, &r)] {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(sock).expect("socket file");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert_eq!(cli_unix(sock, &["CONFIG", "GET", "unixsocketperm"]), "unixsocketperm\n700\n");
        assert_eq!(cli_unix(sock, &["SET", "k", "v"]), "OK\n");
        // TCP clients see what the socket's clients wrote.
        assert_eq!(server.cli(&["GET", "k"]), "v\n");
        let line = cli_unix(sock, &["CLIENT", "LIST"]);
        let want = format!("addr={}:0 laddr={}:0 ", sock.display(), sock.display());
        assert!(line.contains(&want), "{line}");
        assert!(line.contains(" flags=U "), "{line}");
        // Many connections at once (spread over both shards on slotcore).
        let out = Command::new("timeout")
            .args(["60", "redis-benchmark", "-q", "-s"])
            .arg(sock)
            .args(["-c", "20", "-n", "20000", "incr", "counter"])
            .output()
            .expect("redis-benchmark");
        assert!(out.status.success());
        assert_eq!(server.cli(&["GET", "counter"]), "20000\n");
    }
    // CONFIG SET cannot move it; the perm must be octal.
    let mut c = s.raw();
    let mut o = r.raw();
    assert_same(
        &mut c,
        &mut o,
        &[&["CONFIG", "SET", "unixsocket", "/tmp/x.sock"], &["CONFIG", "SET", "unixsocketperm", "7"]],
    );
    // SHUTDOWN removes the socket file.
    for (sock, server) in [(&ours, &mut s), (&theirs, &mut r)] {
        cli_unix(sock, &["SHUTDOWN", "NOSAVE"]);
        assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
        assert!(!sock.exists(), "{} left behind", sock.display());
        assert!(server.log_text().contains("Removing the unix socket file."));
    }
    // A bad perm or a path too long for sockaddr_un stops start-up as in Redis.
    let long = base.join("x".repeat(120)).display().to_string();
    let port = common::free_port().to_string();
    for args in [vec!["--unixsocketperm", "9"], vec!["--unixsocketperm", "1000"], vec!["--unixsocket", &long]] {
        let run = |bin: &str| {
            let out = Command::new("timeout")
                .args(["20", bin, "--port", &port, "--save", ""])
                .args(&args)
                .output()
                .expect("run server");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            (out.status.code(), text)
        };
        let (ours, text) = run(env!("CARGO_BIN_EXE_slotcore"));
        let (theirs, redis_text) = run("redis-server");
        assert_eq!((ours, theirs), (Some(1), Some(1)), "{args:?}: {text}");
        let why = |t: &str| {
            let line = t.lines().find(|l| l.contains("unix") || l.contains("octal") || l.contains("between"));
            line.map(|l| l.split_once(" # ").map_or(l, |x| x.1).to_string())
        };
        assert_eq!(why(&text), why(&redis_text), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// `used_memory_startup` of an idle node of `shards` shards.
fn startup_memory(shards: &str) -> u64 {
    let s = Server::slotcore(&["--shards", shards]);
    let info = s.cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory_startup:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("field")
}

/// Every pair of executors has a channel whose ring is allocated whole at start-up, so the
/// mesh grows with the square of the shards. Its message was 200 bytes until 2026-12-07: an
/// idle four-shard node started at 5.3 MB (one shard 0.95 MB), enough for Redis's maxmemory
/// tests that fill 5 MB under an 11 MB limit to evict; 2.7 MB once the rare large messages
/// were boxed, which still evicted there; 1.2 MB (one shard 0.6 MB) since the channels hold
/// 256 messages, not 1024, and the shards share one standalone routing table.
#[test]
fn four_shards_start_within_one_megabyte_of_one() {
    let (one, four) = (startup_memory("1"), startup_memory("4"));
    assert!(four < one + 1024 * 1024, "one shard {one} bytes, four {four}");
}
