//! The master side of replication against real Redis 7.0 tools: a real `redis-server
//! --replicaof` syncs from a slotcore master (full sync, disk and diskless, then the merged
//! stream of every kind of write), resumes with `+CONTINUE` after its link is killed, is
//! counted by WAIT, shows up in ROLE / INFO replication / CLIENT LIST in Redis's shape;
//! `redis-cli --replica` and `redis-cli --rdb` work against slotcore.

mod common;

use common::{Server, WAIT};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A free port (and its bus port) from the shared allocator.
fn port() -> u16 {
    common::free_port()
}

fn master(extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2", "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    Server::slotcore_on(port(), &args)
}

fn replica_of(m: &Server, extra: &[&str]) -> Server {
    let mp = m.port.to_string();
    let mut args = vec!["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &mp];
    args.extend_from_slice(extra);
    Server::redis_on(port(), &args)
}

fn cmd<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = cmd(c, &["INFO", section]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

/// Polls `f` until it is true or the deadline passes.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT * 3 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Sends pipelined commands on one connection and reads every reply.
fn pipeline(port: u16, cmds: Vec<Vec<String>>) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).ok();
    let mut w = s.try_clone().expect("clone");
    let n = cmds.len();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for c in cmds {
            let a: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            buf.extend_from_slice(&common::encode(&a));
            if buf.len() > 1 << 16 {
                w.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        w.write_all(&buf).expect("write");
    });
    let mut r = BufReader::new(s);
    for _ in 0..n {
        let mut out = Vec::new();
        common::read_reply(&mut r, &mut out).expect("reply");
        assert!(out[0] != b'-', "error reply {:?}", String::from_utf8_lossy(&out));
    }
    writer.join().expect("writer");
}

fn v(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// About `n` keys of every type (small and big encodings, some volatile), in db 0 and db 1.
fn load_every_type(port: u16, n: usize) {
    let mut cmds = Vec::new();
    let far = "4102444800000";
    for i in 0..n {
        let k = format!("key:{i}");
        match i % 5 {
            0 if i % 10 == 0 => cmds.push(v(&["SET", &k, &format!("value-{i}"), "PXAT", far])),
            0 => cmds.push(v(&["SET", &k, &i.to_string()])),
            1 => cmds.push(v(&["RPUSH", &k, "a", &i.to_string(), "c"])),
            2 => cmds.push(v(&["SADD", &k, "x", &i.to_string(), "z"])),
            3 => cmds.push(v(&["ZADD", &k, "1", "a", "2.5", &format!("m{i}")])),
            _ => cmds.push(v(&["HSET", &k, "f", &i.to_string(), "g", "h"])),
        }
    }
    for j in 0..1000 {
        let j = j.to_string();
        cmds.push(v(&["RPUSH", "big:list", &format!("element-{j}")]));
        cmds.push(v(&["HSET", "big:hash", &format!("field-{j}"), &j]));
        cmds.push(v(&["SADD", "big:set", &format!("member-{j}")]));
        cmds.push(v(&["SADD", "big:intset", &j]));
        cmds.push(v(&["ZADD", "big:zset", &j, &format!("member-{j}")]));
    }
    cmds.push(v(&["SELECT", "1"]));
    for i in 0..100 {
        cmds.push(v(&["SET", &format!("db1:{i}"), "x"]));
    }
    pipeline(port, cmds);
}

fn digest(c: &mut redis::Connection) -> String {
    cmd(c, &["DEBUG", "DIGEST"])
}

fn wait_synced(m: &Server, r: &Server) {
    let (mut mc, mut rc) = (m.client(), r.client());
    until("the replica's link to come up", || {
        info_field(&mut rc, "replication", "master_link_status").as_deref() == Some("up")
    });
    until("equal digests", || digest(&mut mc) == digest(&mut rc));
}

/// Writes of every kind after the sync; each must arrive at the replica.
fn write_after_sync(m: &Server) {
    let mut c = m.client();
    let _: () = cmd(&mut c, &["SET", "after:s", "v"]);
    let _: () = cmd(&mut c, &["SET", "after:ex", "v", "EX", "1000"]);
    let _: i64 = cmd(&mut c, &["LPUSH", "after:l", "1", "2", "3"]);
    let _: i64 = cmd(&mut c, &["SADD", "after:set", "a", "b"]);
    let _: i64 = cmd(&mut c, &["ZADD", "after:z", "1", "a", "2", "b"]);
    let _: i64 = cmd(&mut c, &["HSET", "after:h", "f", "v"]);
    let _: i64 = cmd(&mut c, &["EXPIRE", "after:h", "500"]);
    let _: i64 = cmd(&mut c, &["INCRBY", "key:5", "10"]);
    let _: () = cmd(&mut c, &["MSET", "after:m1", "1", "after:m2", "2", "after:m3", "3", "after:m4", "4"]);
    // A transaction.
    let _: () = cmd(&mut c, &["MULTI"]);
    let _: () = cmd(&mut c, &["SET", "after:tx1", "1"]);
    let _: () = cmd(&mut c, &["INCR", "after:tx2"]);
    let _: () = cmd(&mut c, &["RPOP", "key:1"]);
    let _: redis::Value = cmd(&mut c, &["EXEC"]);
    // Other databases and SWAPDB.
    let _: () = cmd(&mut c, &["SELECT", "2"]);
    let _: () = cmd(&mut c, &["SET", "in2", "x"]);
    let _: () = cmd(&mut c, &["SWAPDB", "2", "3"]);
    let _: () = cmd(&mut c, &["SELECT", "0"]);
    // A key that expires: the master's DEL reaches the replica.
    let _: () = cmd(&mut c, &["SET", "after:short", "v", "PX", "50"]);
    // A blocked pop served by a push.
    let port = m.port;
    let popper = std::thread::spawn(move || {
        let mut pc = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let got: Vec<String> = cmd(&mut pc, &["BLPOP", "after:q", "10"]);
        got
    });
    until("the pop to block", || info_field(&mut c, "clients", "blocked_clients").as_deref() == Some("1"));
    let _: i64 = cmd(&mut c, &["RPUSH", "after:q", "x", "y"]);
    assert_eq!(popper.join().unwrap(), vec!["after:q".to_string(), "x".to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let _: i64 = cmd(&mut c, &["EXISTS", "after:short"]);
}

fn check_stream(m: &Server, r: &Server) {
    write_after_sync(m);
    let mut mc = m.client();
    let acked: i64 = cmd(&mut mc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1, "WAIT 1 after writes");
    let mut rc = r.client();
    until("equal digests after the writes", || digest(&mut mc) == digest(&mut rc));
    // Expiries arrive as absolute times.
    let ttl: i64 = cmd(&mut rc, &["TTL", "after:ex"]);
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    let exists: i64 = cmd(&mut rc, &["EXISTS", "after:short"]);
    assert_eq!(exists, 0);
    let _: () = cmd(&mut rc, &["SELECT", "3"]);
    let in3: Option<String> = cmd(&mut rc, &["GET", "in2"]);
    assert_eq!(in3.as_deref(), Some("x"));
    // FLUSHALL empties the replica too.
    let _: () = cmd(&mut mc, &["FLUSHALL"]);
    let _: () = cmd(&mut mc, &["SET", "only", "1"]);
    let _: i64 = cmd(&mut mc, &["WAIT", "1", "5000"]);
    let _: () = cmd(&mut rc, &["SELECT", "0"]);
    until("the flush to arrive", || cmd::<i64>(&mut rc, &["DBSIZE"]) == 1);
}

#[test]
fn diskless_full_sync_of_every_type_then_the_stream() {
    let m = master(&[]);
    load_every_type(m.port, 100_000);
    let r = replica_of(&m, &[]);
    wait_synced(&m, &r);
    assert!(r.log_text().contains("receiving streamed RDB from master with EOF"), "diskless transfer");
    let mut mc = m.client();
    assert_eq!(cmd::<i64>(&mut mc, &["DBSIZE"]), cmd::<i64>(&mut r.client(), &["DBSIZE"]));
    check_stream(&m, &r);
}

#[test]
fn disk_target_sync_to_a_swapdb_loading_replica() {
    let m = master(&["--repl-diskless-sync", "no"]);
    load_every_type(m.port, 20_000);
    let r = replica_of(&m, &["--repl-diskless-load", "swapdb"]);
    wait_synced(&m, &r);
    assert!(!r.log_text().contains("with EOF"), "disk-target transfer has a length");
    check_stream(&m, &r);
}

#[test]
fn killed_link_resumes_with_continue() {
    let m = master(&[]);
    load_every_type(m.port, 2_000);
    let r = replica_of(&m, &[]);
    wait_synced(&m, &r);
    let mut mc = m.client();
    let list: String = cmd(&mut mc, &["CLIENT", "LIST", "TYPE", "replica"]);
    assert!(list.contains("flags=S") && list.contains("cmd=replconf"), "{list}");
    let killed: i64 = cmd(&mut mc, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    let _: () = cmd(&mut mc, &["SET", "while-away", "1"]);
    let mut rc = r.client();
    until("the partial resync", || info_field(&mut mc, "stats", "sync_partial_ok").as_deref() == Some("1"));
    until("equal digests", || digest(&mut mc) == digest(&mut rc));
    assert_eq!(info_field(&mut mc, "stats", "sync_full").as_deref(), Some("1"), "no second full sync");
    assert!(r.log_text().contains("Successful partial resynchronization with master"));
    check_stream(&m, &r);
}

/// CONFIG SET repl-backlog-size trims the backlog at once, as Redis's: right after 160 KB
/// are written behind a new 16 KB size, a PSYNC from offset 1 gets a full resync, not
/// `+CONTINUE` with the whole 160 KB (slotcore used to resize at the next cron tick).
#[test]
fn a_smaller_backlog_set_at_run_time_is_trimmed_before_the_next_psync() {
    let m = master(&[]);
    let r = replica_of(&m, &[]);
    wait_synced(&m, &r);
    let mut mc = m.client();
    let replid = info_field(&mut mc, "replication", "master_replid").expect("master_replid");
    let mut tx = m.raw();
    let big = "A".repeat(16_384);
    let mut batch = common::encode(&[b"MULTI"]);
    batch.extend(common::encode(&[b"CONFIG", b"SET", b"repl-backlog-size", b"16384"]));
    for i in 0..10 {
        batch.extend(common::encode(&[b"SET", format!("{i} string_{i}").as_bytes(), big.as_bytes()]));
    }
    batch.extend(common::encode(&[b"EXEC"]));
    tx.send(&batch);
    // +OK for MULTI, +QUEUED for the 11 commands, then EXEC's 11 replies.
    for _ in 0..12 {
        assert!(tx.reply().starts_with('+'));
    }
    assert!(tx.reply().starts_with("*11\r\n"));
    // Once the replica has taken the writes (until then the shared replication buffer keeps
    // them for it, as Redis's, and a PSYNC could continue from there).
    let end = info_field(&mut mc, "replication", "master_repl_offset");
    let mut rc = r.client();
    until("the replica caught up", || info_field(&mut rc, "replication", "master_repl_offset") == end);
    let mut psync = m.raw();
    let reply = psync.cmd(&["PSYNC", &replid, "1"]);
    assert!(reply.starts_with("+FULLRESYNC"), "{reply}");
    assert_eq!(info_field(&mut mc, "replication", "repl_backlog_size").as_deref(), Some("16384"));
    until("equal digests", || digest(&mut mc) == digest(&mut rc));
}

/// The field names of INFO replication, in order, with the values of `slave0` reduced to
/// its keys.
fn info_shape(c: &mut redis::Connection) -> Vec<String> {
    let text: String = cmd(c, &["INFO", "replication"]);
    text.lines()
        .filter(|l| l.contains(':'))
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            if k.starts_with("slave") && v.contains('=') {
                let keys: Vec<&str> = v.split(',').map(|kv| kv.split('=').next().unwrap()).collect();
                format!("{k}:{}", keys.join(","))
            } else {
                k.to_string()
            }
        })
        .collect()
}

#[test]
fn role_and_info_replication_match_redis() {
    let m = master(&["--min-replicas-to-write", "1"]);
    let r = replica_of(&m, &[]);
    let rm = Server::redis_on(port(), &["--min-replicas-to-write", "1", "--enable-debug-command", "yes"]);
    let rr = replica_of(&rm, &[]);
    for (master, replica) in [(&m, &r), (&rm, &rr)] {
        wait_synced(master, replica);
        let mut c = master.client();
        // A replica may have loaded the file before its master counts it online (redis-server
        // learns that a diskless transfer ended from its cron): writes wait for the count.
        until("the master to count its replica good", || {
            info_field(&mut c, "replication", "min_slaves_good_slaves").as_deref() == Some("1")
        });
        let _: () = cmd(&mut c, &["SET", "k", "v"]);
        assert_eq!(cmd::<i64>(&mut c, &["WAIT", "1", "5000"]), 1);
    }
    let (mut a, mut b) = (m.client(), rm.client());
    until("online replicas on both", || {
        info_shape(&mut a) == info_shape(&mut b)
            && info_field(&mut a, "replication", "min_slaves_good_slaves").as_deref() == Some("1")
    });
    // ROLE: ["master", offset, [[ip, "port", "ack"]]] with the same types on both.
    let shape = |c: &mut redis::Connection| -> String {
        let v: redis::Value = cmd(c, &["ROLE"]);
        let redis::Value::Array(items) = v else { panic!("ROLE not an array") };
        let kinds: Vec<String> = items
            .iter()
            .map(|i| match i {
                redis::Value::BulkString(d) => format!("bulk:{}", String::from_utf8_lossy(d)),
                redis::Value::Int(_) => "int".into(),
                redis::Value::Array(rs) => rs
                    .iter()
                    .map(|r| match r {
                        redis::Value::Array(f) => format!("{}", f.len()),
                        _ => "?".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => "?".into(),
            })
            .collect();
        kinds.join("|")
    };
    assert_eq!(shape(&mut a), shape(&mut b));
    let role: redis::Value = cmd(&mut a, &["ROLE"]);
    let text = format!("{role:?}");
    assert!(text.contains(&format!("\"{}\"", r.port)) || text.contains(&r.port.to_string()), "{text}");
    // The replica's ROLE on a redis-server replica of slotcore.
    let rrole: redis::Value = cmd(&mut r.client(), &["ROLE"]);
    assert!(format!("{rrole:?}").contains("connected"), "{rrole:?}");
    // min-replicas-to-write: with the replica gone, writes are refused with Redis's text.
    drop(r);
    let _: () = cmd(&mut a, &["CONFIG", "SET", "min-replicas-max-lag", "1"]);
    until("NOREPLICAS", || {
        let e = redis::cmd("SET").arg("x").arg("1").query::<()>(&mut a);
        matches!(e, Err(e) if e.to_string().contains("Not enough good replicas to write"))
    });
    let mut raw = m.raw();
    assert_eq!(raw.cmd(&["SET", "x", "1"]), "-NOREPLICAS Not enough good replicas to write.\r\n");
}

#[test]
fn replconf_and_sync_errors_as_redis() {
    let m = master(&[]);
    let rs = Server::redis_on(port(), &[]);
    let (mut a, mut b) = (m.raw(), rs.raw());
    common::assert_same(
        &mut a,
        &mut b,
        &[
            &["REPLCONF", "listening-port"],
            &["REPLCONF", "foo", "bar"],
            &["REPLCONF", "listening-port", "x"],
            &["REPLCONF", "rdb-only", "2"],
            &["REPLCONF", "rdb-filter-only", "keys"],
            &["REPLCONF", "capa", "eof", "capa", "whatever"],
            &["WAIT", "x", "0"],
            &["WAIT", "0", "-1"],
            &["WAIT", "0", "0"],
            &["MULTI"],
            &["SYNC"],
            &["DISCARD"],
            &["PSYNC", "?", "x"],
        ],
    );
    // REPLCONF ACK from a client that is not a replica: no reply at all.
    for s in [&mut a, &mut b] {
        s.send(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n10\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(s.reply(), "+PONG\r\n");
    }
    // Pending output: PSYNC pipelined behind a REPLCONF.
    for s in [&mut a, &mut b] {
        s.send(b"REPLCONF capa eof\r\nPSYNC ? -1\r\n");
        assert_eq!(s.reply(), "+OK\r\n");
        assert_eq!(s.reply(), "-ERR SYNC and PSYNC are invalid with pending output\r\n");
    }
}

#[test]
fn redis_cli_rdb_and_replica_modes() {
    let m = master(&[]);
    load_every_type(m.port, 1_000);
    let file = m.dir.join("fetched.rdb");
    let out = std::process::Command::new("timeout")
        .args(["30", "redis-cli", "-p", &m.port.to_string(), "--rdb"])
        .arg(&file)
        .output()
        .expect("redis-cli --rdb");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check = std::process::Command::new("redis-check-rdb").arg(&file).output().expect("redis-check-rdb");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && text.contains("RDB looks OK"), "{text}");
    assert!(text.contains("repl-id") || !text.is_empty());
    // --replica: the commands written after it attached are printed.
    let log = m.dir.join("replica-mode.out");
    let mut child = std::process::Command::new("timeout")
        .args(["30", "redis-cli", "-p", &m.port.to_string(), "--replica"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli --replica");
    let mut c = m.client();
    until("redis-cli --replica to print a write", || {
        let _: () = cmd(&mut c, &["SET", "marker", "seen"]);
        std::fs::read_to_string(&log).unwrap_or_default().contains("marker")
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// `master_repl_offset` (INFO and ROLE) covers a write as soon as its reply is out, as in
/// Redis: tools compare the master's offset with the replica's to know the replica has it.
#[test]
fn offset_covers_each_write_before_its_reply() {
    let m = master(&[]);
    let r = replica_of(&m, &[]);
    wait_synced(&m, &r);
    let mut c = m.client();
    let offset = |c: &mut redis::Connection| -> u64 {
        info_field(c, "replication", "master_repl_offset").and_then(|v| v.parse().ok()).expect("master_repl_offset")
    };
    let role_offset = |c: &mut redis::Connection| -> u64 {
        let v: redis::Value = cmd(c, &["ROLE"]);
        match v {
            redis::Value::Array(items) => match items.get(1) {
                Some(redis::Value::Int(n)) => *n as u64,
                other => panic!("ROLE offset: {other:?}"),
            },
            other => panic!("ROLE: {other:?}"),
        }
    };
    let mut last = offset(&mut c);
    for i in 0..200 {
        let key = format!("offset:{i}");
        let _: () = cmd(&mut c, &["SET", &key, "v"]);
        let now = if i % 2 == 0 { offset(&mut c) } else { role_offset(&mut c) };
        assert!(now > last, "write {i}: offset {now} did not move past {last}");
        last = now;
    }
    // And the replica reaches exactly that offset.
    let mut rc = r.client();
    until("the replica at the master's offset", || {
        info_field(&mut rc, "replication", "slave_repl_offset").and_then(|v| v.parse::<u64>().ok()) >= Some(last)
    });
}

/// `min-replicas-max-lag` raised by CONFIG SET takes effect at once, counted from the
/// replicas' last ACKs (after a replica was stopped long enough to refuse writes).
fn min_replicas_recount(m: Server) -> Vec<String> {
    let mut r = replica_of(&m, &[]);
    let mut c = m.client();
    until("the replica online", || {
        info_field(&mut c, "replication", "slave0").is_some_and(|s| s.contains("state=online"))
    });
    let mut seen = Vec::new();
    let _: String = cmd(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let _: String = cmd(&mut c, &["CONFIG", "SET", "min-replicas-max-lag", "2"]);
    seen.push(m.cli(&["set", "foo", "1"]).trim().to_string());
    let pid = r.pid().to_string();
    let stop = |sig: &str| std::process::Command::new("kill").args([sig, &pid]).status().expect("kill");
    stop("-STOP");
    until("writes refused", || m.cli(&["set", "foo", "2"]).starts_with("NOREPLICAS"));
    seen.push(m.cli(&["set", "foo", "3"]).trim().to_string());
    stop("-CONT");
    let _: String = cmd(&mut c, &["CONFIG", "SET", "min-replicas-max-lag", "30"]);
    seen.push(m.cli(&["set", "foo", "4"]).trim().to_string());
    assert!(r.is_running());
    seen
}

#[test]
fn min_replicas_max_lag_set_at_run_time_recounts_as_redis() {
    let want = min_replicas_recount(Server::redis_on(port(), &[]));
    assert_eq!(want, ["OK", "NOREPLICAS Not enough good replicas to write.", "OK"]);
    assert_eq!(min_replicas_recount(master(&[])), want);
}

/// A slotcore master and a redis-server replica whose link is up.
fn linked_pair() -> (Server, Server) {
    let m = master(&[]);
    let r = replica_of(&m, &[]);
    let mut rc = r.client();
    until("the replica's link", || info_field(&mut rc, "replication", "master_link_status").as_deref() == Some("up"));
    (m, r)
}

/// Commands Redis propagates in another form reach a redis-server replica in that form:
/// GETSET (also of a missing key, whose reply is nil) as SET, BRPOPLPUSH, served at once or
/// after blocking, as RPOPLPUSH (BLMOVE as LMOVE).
#[test]
fn getset_and_brpoplpush_reach_the_replica_as_redis_propagates_them() {
    let (m, r) = linked_pair();
    let (mut mc, mut rc) = (m.client(), r.client());
    let _: Option<String> = cmd(&mut mc, &["GETSET", "gs", "1"]);
    let _: Option<String> = cmd(&mut mc, &["GETSET", "gs", "2"]);
    let _: i64 = cmd(&mut mc, &["RPUSH", "{l}src", "a", "b"]);
    let _: Option<String> = cmd(&mut mc, &["BRPOPLPUSH", "{l}src", "{l}dst", "0"]);
    let _: Option<String> = cmd(&mut mc, &["BLMOVE", "{l}src", "{l}dst", "LEFT", "RIGHT", "0"]);
    let mut blocked = m.raw();
    blocked.send_cmd(&[b"BRPOPLPUSH", b"{l}empty", b"{l}dst", b"0"]);
    until("the client blocked", || info_field(&mut mc, "clients", "blocked_clients").as_deref() == Some("1"));
    let _: i64 = cmd(&mut mc, &["RPUSH", "{l}empty", "c"]);
    assert_eq!(blocked.reply(), "$1\r\nc\r\n");
    let want: String = cmd(&mut mc, &["DEBUG", "DIGEST"]);
    until("the replica's digest", || cmd::<String>(&mut rc, &["DEBUG", "DIGEST"]) == want);
    let stats: String = cmd(&mut rc, &["INFO", "commandstats"]);
    let calls = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|v| v.split(',').next().and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    assert_eq!((calls("set"), calls("getset")), (2, 0), "{stats}");
    assert_eq!((calls("rpoplpush"), calls("lmove"), calls("brpoplpush")), (2, 1, 0), "{stats}");
}

/// DEBUG REPLICATE sends a command to the replicas only (data divergence on purpose).
#[test]
fn debug_replicate_reaches_the_replicas_only() {
    let (m, r) = linked_pair();
    let (mut mc, mut rc) = (m.client(), r.client());
    let _: () = cmd(&mut mc, &["DEBUG", "REPLICATE", "SET", "only-there", "1"]);
    until("the replicated command", || cmd::<Option<String>>(&mut rc, &["GET", "only-there"]).as_deref() == Some("1"));
    assert_eq!(cmd::<Option<String>>(&mut mc, &["GET", "only-there"]), None);
}

/// A one-shard master under `appendfsync always` writes its rounds to the AOF from the shard
/// itself while no replica is attached (and fdatasync is quick); a replica that attaches in the
/// middle of a write load still gets every write after its sync point.
#[test]
fn replica_attached_under_write_load_to_a_one_shard_always_master_gets_every_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let m = Server::slotcore_on(
        port(),
        &[
            "--shards",
            "1",
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, port) = (stop.clone(), m.port);
            std::thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|c| c.get_connection_with_timeout(WAIT))
                    .expect("connect");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _: () = cmd(&mut c, &["SET", &format!("w:{w}:{}", i % 500), &i.to_string()]);
                    let _: i64 = cmd(&mut c, &["INCR", &format!("n:{w}")]);
                    i += 1;
                }
                i
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = replica_of(&m, &[]);
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|t| t.join().expect("writer")).sum();
    assert!(done > 100, "too few writes: {done}");
    wait_synced(&m, &r);
}

/// INFO persistence and replication while a full sync's save runs (10 keys at 1 s each).
fn save_state(c: &mut redis::Connection) -> (String, usize) {
    let in_progress = info_field(c, "persistence", "rdb_bgsave_in_progress").unwrap_or_default();
    let text: String = cmd(c, &["INFO", "replication"]);
    (in_progress, text.lines().filter(|l| l.starts_with("slave") && l.contains("state=wait_bgsave")).count())
}

/// A full sync's save counts in `rdb_bgsave_in_progress` (to disk or to the replicas'
/// sockets) and BGSAVE answers that one is in progress, as Redis's RDB child. A save to disk
/// that no replica waits for any more stops when no save point is set, and goes on (its file
/// is the node's RDB) when one is; a diskless one stops with its last replica.
#[test]
fn full_sync_saves_are_counted_and_stopped_when_no_replica_waits_as_redis() {
    let slow = ["--save", "", "--rdb-key-save-delay", "1000000"];
    let m = master(&[&["--repl-diskless-sync", "no"][..], &slow[..]].concat());
    let mut mc = m.client();
    for i in 0..10 {
        let _: () = cmd(&mut mc, &["SET", &format!("k{i}"), "v"]);
    }
    let (r1, r2) = (replica_of(&m, &[]), replica_of(&m, &[]));
    let (mut c1, mut c2) = (r1.client(), r2.client());
    until("a save for both replicas", || save_state(&mut mc) == ("1".into(), 2));
    let e = redis::cmd("BGSAVE").query::<String>(&mut mc).expect_err("a save runs");
    assert!(e.to_string().contains("Background save already in progress"), "{e}");
    let _: () = cmd(&mut c1, &["REPLICAOF", "NO", "ONE"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(save_state(&mut mc).0, "1", "the other replica still waits");
    let _: () = cmd(&mut c2, &["REPLICAOF", "NO", "ONE"]);
    until("the unneeded save to stop", || save_state(&mut mc).0 == "0");
    assert!(m.log_text().contains("Background saving terminated by signal 10"), "{}", m.log_text());

    // With a save point the file is worth finishing.
    let _: () = cmd(&mut mc, &["CONFIG", "SET", "save", "900 1"]);
    let mp = m.port.to_string();
    for c in [&mut c1, &mut c2] {
        let _: () = cmd(c, &["REPLICAOF", "127.0.0.1", &mp]);
    }
    until("a save for both replicas again", || save_state(&mut mc) == ("1".into(), 2));
    for c in [&mut c1, &mut c2] {
        let _: () = cmd(c, &["REPLICAOF", "NO", "ONE"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(save_state(&mut mc).0, "1", "a save with save points set goes on");

    // Diskless: the stream's save counts too, and ends with its last replica.
    let d = master(&slow);
    let mut dc = d.client();
    for i in 0..10 {
        let _: () = cmd(&mut dc, &["SET", &format!("k{i}"), "v"]);
    }
    let r3 = replica_of(&d, &[]);
    until("the diskless save", || save_state(&mut dc) == ("1".into(), 1));
    let secs: i64 =
        info_field(&mut dc, "persistence", "rdb_current_bgsave_time_sec").and_then(|v| v.parse().ok()).unwrap_or(-1);
    assert!(secs >= 0, "rdb_current_bgsave_time_sec {secs}");
    let e = redis::cmd("BGSAVE").query::<String>(&mut dc).expect_err("a save runs");
    assert!(e.to_string().contains("Background save already in progress"), "{e}");
    let _: () = cmd(&mut r3.client(), &["REPLICAOF", "NO", "ONE"]);
    until("the diskless save to stop", || save_state(&mut dc).0 == "0");
}

/// A replica that stops reading a diskless transfer (stopped with SIGSTOP) is dropped after
/// `repl-timeout` without progress, as Redis's "Disconnecting timedout replica (full sync)";
/// the snapshot it held ends, and the next replica syncs.
#[test]
fn a_replica_stuck_in_a_diskless_transfer_is_dropped_after_repl_timeout() {
    let m = master(&["--repl-timeout", "2"]);
    let mut mc = m.client();
    let _: () = cmd(&mut mc, &["DEBUG", "POPULATE", "300000", "key", "100"]);
    // Reads slowly (50 µs a key), so the master's socket to it fills up.
    let stuck = replica_of(&m, &["--repl-diskless-load", "swapdb", "--key-load-delay", "50"]);
    until("the transfer to start", || save_state(&mut mc) == ("1".into(), 1));
    std::thread::sleep(Duration::from_millis(300));
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &stuck.pid().to_string()]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill {sig}");
    };
    signal("-STOP");
    until("the stuck replica to be dropped", || m.log_text().contains("Disconnecting timedout replica (full sync)"));
    until("the snapshot to end", || save_state(&mut mc).0 == "0");
    signal("-CONT");
    let next = replica_of(&m, &[]);
    let mut nc = next.client();
    until("the next replica's sync", || {
        info_field(&mut nc, "replication", "master_link_status").as_deref() == Some("up")
    });
    let keys: i64 = cmd(&mut nc, &["DBSIZE"]);
    assert_eq!(keys, 300000);
}

/// A replica's link carries no replies: a command on it that would be answered (after SYNC
/// or PSYNC) drops the replica with Redis's log lines, and a keyspace command is refused
/// first; the master serves everyone else meanwhile. The commands do not run.
#[test]
fn a_command_answered_on_a_replica_link_drops_the_replica_as_redis() {
    let m = master(&[]);
    let mut mc = m.client();
    for (sync, command, name) in [
        (&["SYNC"][..], &["PING"][..], "ping"),
        (&["PSYNC", "replicationid", "-1"][..], &["SET", "rogue", "1"][..], "set"),
        (&["SYNC"][..], &["XINFO", "HELP"][..], "xinfo|help"),
    ] {
        let mut link = common::Raw::connect(m.port);
        let a: Vec<&[u8]> = sync.iter().map(|s| s.as_bytes()).collect();
        link.send_cmd(&a);
        until("the replica to be listed", || {
            let text: String = cmd(&mut mc, &["INFO", "replication"]);
            text.contains("connected_slaves:1")
        });
        let a: Vec<&[u8]> = command.iter().map(|s| s.as_bytes()).collect();
        link.send_cmd(&a);
        let expect = format!("Replica generated a reply to command '{name}', disconnecting it: id=");
        until("the replica to be dropped", || m.log_text().contains(&expect));
        let rest = String::from_utf8_lossy(&link.read_to_end()).into_owned();
        assert!(!rest.contains("PONG") && !rest.contains("+OK"), "no reply on the link: {rest:?}");
        let pong: String = cmd(&mut mc, &["PING"]);
        assert_eq!(pong, "PONG");
        until("no replica", || {
            let text: String = cmd(&mut mc, &["INFO", "replication"]);
            text.contains("connected_slaves:0")
        });
    }
    // Only the keyspace command was refused with an error first.
    let log = m.log_text();
    assert_eq!(log.matches("== CRITICAL ==").count(), 1, "{log}");
    assert!(log.contains("'Replica can't interact with the keyspace' after processing the command 'set'"), "{log}");
    let rogue: Option<String> = cmd(&mut mc, &["GET", "rogue"]);
    assert_eq!(rogue, None, "the refused SET did not run");
}

/// A replica's hard output-buffer limit under `repl-backlog-size` counts as the backlog's
/// size, as in Redis 7.0: a replica that falls behind by more than the limit but less than the
/// backlog stays attached (Redis's replication-buffer unit: a partial resync's backlog would
/// otherwise get the replica dropped right after it). Beside a redis-server master.
#[test]
fn a_replica_limit_under_the_backlog_size_counts_as_the_backlog() {
    let args = ["--repl-backlog-size", "100mb", "--client-output-buffer-limit", "replica 1mb 0 0"];
    let masters = [master(&args), {
        let mut a = vec!["--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"];
        a.extend_from_slice(&args);
        Server::redis_on(port(), &a)
    }];
    for m in &masters {
        let r = replica_of(m, &[]);
        wait_synced(m, &r);
        let mut mc = m.client();
        let pid = r.pid().to_string();
        let stop = std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        assert!(stop.success());
        // 24 MB behind: over the 1 MB limit, under the 100 MB backlog.
        let value = "x".repeat(1 << 20);
        for i in 0..24 {
            let _: () = cmd(&mut mc, &["SET", &format!("big:{i}"), &value]);
        }
        std::thread::sleep(Duration::from_millis(300));
        let attached = info_field(&mut mc, "replication", "connected_slaves");
        let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();
        assert_eq!(attached.as_deref(), Some("1"), "the replica stays attached to {}", m.port);
        wait_synced(m, &r);
    }
}

/// A replica attached right after the master started gets no `ping` before the first write's
/// SELECT when `repl-ping-replica-period` was raised first, as with redis-server: Redis pings at
/// every period's multiple of its once-a-second cron count, whose first round runs as the
/// server starts, before any replica can attach. slotcore's first round came 100 ms after
/// start and pinged the replicas attached by then, whatever the period.
#[test]
fn a_replica_attached_at_start_gets_no_ping_before_the_first_write() {
    let starts: [fn() -> Server; 3] = [
        || Server::redis_on(port(), &[]),
        || Server::slotcore_on(port(), &["--shards", "1"]),
        || Server::slotcore_on(port(), &["--shards", "4"]),
    ];
    for start in starts {
        let s = start();
        let mut c = s.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]), "+OK\r\n");
        let mut feed = common::Feed::attach(s.port);
        // Past the first round of the master's cron whenever the replica attached.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.cmd(&["SET", "first", "1"]), "+OK\r\n");
        let got = [feed.next(), feed.next()];
        assert_eq!(got, [vec!["select", "0"], vec!["set", "first", "1"]], "port {}", s.port);
    }
}
