//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP):
//! errors, immediate replies and timeouts compared byte for byte with redis-server; serving
//! across shards, fairness, disconnects, CLIENT KILL and CLIENT UNBLOCK, INFO and CLIENT LIST.

mod common;
use common::{Raw, Server, WAIT};
use std::time::{Duration, Instant};

/// Keys whose slots fall on shard 0 and shard 1 of a 2-shard node (see tests/sharding.rs).
const ON_SHARD0: &str = "age"; // slot 741
const ON_SHARD1: &str = "a"; // slot 15495
const FOO_SHARD1: &str = "foo"; // slot 12182
const BAR_SHARD0: &str = "bar"; // slot 5061

/// Waits until INFO reports `n` blocked clients.
fn wait_blocked(r: &mut Raw, n: usize) {
    let start = Instant::now();
    let want = format!("blocked_clients:{n}\r\n");
    loop {
        let info = r.cmd(&["INFO", "clients"]);
        if info.contains(&want) {
            return;
        }
        assert!(start.elapsed() < WAIT, "blocked_clients never reached {n}: {info}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn client_id(r: &mut Raw) -> String {
    let rep = r.cmd(&["CLIENT", "ID"]);
    rep.trim_start_matches(':').trim_end().to_string()
}

#[test]
fn errors_immediate_replies_and_timeouts_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let cmds: &[&[&str]] = &[
        &["SET", "str", "x"],
        // Timeout parsing.
        &["BLPOP", "k", "abc"],
        &["BLPOP", "k", ""],
        &["BLPOP", "k", " 1"],
        &["BLPOP", "k", "1 "],
        &["BLPOP", "k", "nan"],
        &["BLPOP", "k", "-1"],
        &["BLPOP", "k", "inf"],
        &["BLPOP", "k", "-inf"],
        &["BLPOP", "k", "1e16"],
        &["BLPOP", "k", "9223372036854775807"],
        &["BRPOP", "k", "-0.5"],
        &["BLPOP", "k", "-0x1"],
        &["BLPOP", "k", "0x"],
        &["BLPOP", "k", "0xg"],
        &["BLPOP", "k", "0x1p"],
        &["BLPOP", "k", "0x0.1p-2"],
        &["BZPOPMIN", "k", "x"],
        &["BZPOPMAX", "str", "x"],
        &["BRPOPLPUSH", "a", "b", "x"],
        &["BLMOVE", "a", "b", "LEFT", "RIGHT", "-1"],
        &["BLMOVE", "a", "b", "MIDDLE", "RIGHT", "x"],
        &["BLMOVE", "a", "b", "LEFT", "UP", "0"],
        &["BLMPOP", "x", "1", "k", "LEFT"],
        &["BLMPOP", "x", "0", "k", "LEFT"],
        &["BLMPOP", "x", "1", "k", "MIDDLE"],
        &["BLMPOP", "x", "1", "k", "LEFT", "COUNT", "0"],
        &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "1", "x"],
        &["BLMPOP", "0", "3", "k", "LEFT"],
        &["LMPOP", "3", "k", "LEFT"],
        &["ZMPOP", "3", "k", "MIN"],
        &["BLMPOP", "0", "1", "k"],
        &["BZMPOP", "x", "1", "k", "MIN"],
        &["BZMPOP", "0", "1", "k", "LEFT"],
        &["BZMPOP", "0", "1", "k", "MAX", "COUNT", "-1"],
        &["BLPOP", "k"],
        &["BZPOPMIN", "k"],
        &["BRPOPLPUSH", "a", "b"],
        // Wrong types.
        &["BLPOP", "str", "0"],
        &["BLPOP", "nokey", "str", "0"],
        &["BZPOPMIN", "str", "0"],
        &["BLMPOP", "0", "2", "nokey", "str", "LEFT"],
        &["BZMPOP", "0", "1", "str", "MIN"],
        &["BRPOPLPUSH", "str", "dst", "0"],
        // Data already there: the first non-empty key in argument order wins.
        &["RPUSH", ON_SHARD1, "a1", "a2", "a3"],
        &["RPUSH", ON_SHARD0, "g1", "g2"],
        &["BLPOP", "nokey", ON_SHARD1, ON_SHARD0, "0"],
        &["BRPOP", ON_SHARD0, ON_SHARD1, "0"],
        &["BLPOP", "nokey", ON_SHARD0, "str", "0"],
        &["BLMPOP", "0", "3", "nokey", ON_SHARD1, ON_SHARD0, "RIGHT", "COUNT", "5"],
        &["RPUSH", ON_SHARD0, "g3", "g4"],
        &["BLMPOP", "0", "2", ON_SHARD0, ON_SHARD1, "LEFT"],
        &["LRANGE", ON_SHARD0, "0", "-1"],
        &["BRPOPLPUSH", ON_SHARD0, ON_SHARD1, "0"],
        &["BLMOVE", ON_SHARD1, ON_SHARD1, "LEFT", "RIGHT", "0"],
        &["BLMOVE", ON_SHARD1, "str", "LEFT", "RIGHT", "0"],
        &["LRANGE", ON_SHARD1, "0", "-1"],
        &["ZADD", "z1", "1", "m1", "2", "m2", "3", "m3"],
        &["ZADD", "z2", "5", "n1"],
        &["BZPOPMIN", "nokey", "z1", "z2", "0"],
        &["BZPOPMAX", "z2", "z1", "0"],
        &["BZPOPMAX", "z2", "z1", "0"],
        &["BZMPOP", "0", "2", "nokey", "z1", "MAX", "COUNT", "10"],
        &["BZPOPMIN", "str", "z1", "0"],
        // Timeouts: RESP2 null array, null bulk for the moving commands.
        &["BLPOP", "nokey", "0.05"],
        &["BRPOP", "nokey", ON_SHARD0, "0.05"],
        &["BLMPOP", "0.05", "1", "nokey", "LEFT"],
        &["BZPOPMIN", "nokey", "0.05"],
        &["BZMPOP", "0.05", "1", "nokey", "MIN"],
        &["BRPOPLPUSH", "nokey", "dst", "0.05"],
        &["BLMOVE", "nokey", "str", "LEFT", "LEFT", "0.05"],
        &["LMOVE", "nokey", "str", "LEFT", "LEFT"],
        &["EXISTS", "dst"],
        // CLIENT UNBLOCK argument errors.
        &["CLIENT", "UNBLOCK", "abc"],
        &["CLIENT", "UNBLOCK", "99999", "maybe"],
        &["CLIENT", "UNBLOCK", "99999", "TIMEOUT", "x"],
        &["CLIENT", "UNBLOCK", "99999"],
        &["CLIENT", "UNBLOCK", "99999", "error"],
        // RESP3: nulls and double scores.
        &["HELLO", "3"],
        &["BLPOP", "nokey", "0.05"],
        &["BLMOVE", "nokey", "dst", "RIGHT", "LEFT", "0.05"],
        &["BZMPOP", "0.05", "1", "nokey", "MIN"],
        &["ZADD", "z3", "1.5", "x", "2.5", "y"],
        &["BZPOPMIN", "z3", "0"],
        &["BZMPOP", "0", "1", "z3", "MIN"],
    ];
    let (mut a, mut b) = (s.raw(), o.raw());
    // HELLO's reply differs (server name, version); compare everything else.
    for c in cmds {
        let ra = a.cmd(c);
        let rb = b.cmd(c);
        if c[0] != "HELLO" {
            assert_eq!(ra, rb, "command {:?}: slotcore replied {:?}, redis-server replied {:?}", c, ra, rb);
        }
    }
}

#[test]
fn timeout_is_honoured_and_pipelined_commands_wait() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let t = Instant::now();
    assert_eq!(r.cmd(&["BLPOP", ON_SHARD1, ON_SHARD0, "0.3"]), "*-1\r\n");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(3), "took {took:?}");
    // Commands pipelined behind a blocked one run after it, in order.
    r.send(b"PING\r\nBLPOP nokey 0.1\r\nPING\r\n");
    assert_eq!(r.reply(), "+PONG\r\n");
    assert_eq!(r.reply(), "*-1\r\n");
    assert_eq!(r.reply(), "+PONG\r\n");
    // Replies to commands before a blocked one are not held back by it.
    let t = Instant::now();
    r.send(b"RPUSH other 1\r\nBLPOP nokey 1\r\n");
    assert_eq!(r.reply(), ":1\r\n");
    assert!(t.elapsed() < Duration::from_millis(800), "first reply waited for the blocked command");
    assert_eq!(r.reply(), "*-1\r\n");
    // Input sent while blocked is kept for afterwards.
    r.send(b"BRPOP nokey 0.3\r\n");
    std::thread::sleep(Duration::from_millis(100));
    r.send(b"ECHO later\r\n");
    assert_eq!(r.reply(), "*-1\r\n");
    assert_eq!(r.reply(), "$5\r\nlater\r\n");
}

/// A push from another connection, on the other shard, serves the blocked client; with keys
/// on both shards only one pop happens, whichever push lands first.
#[test]
fn pushes_on_other_shards_serve_blocked_clients_once() {
    let s = Server::slotcore_shards(2);
    let mut ctl = s.raw();
    for (first, second) in [(ON_SHARD0, ON_SHARD1), (ON_SHARD1, ON_SHARD0)] {
        let mut blocked = s.raw();
        blocked.send_cmd(&[b"BLPOP", first.as_bytes(), second.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        assert!(ctl.cmd(&["CLIENT", "LIST"]).contains("flags=b "));
        assert_eq!(ctl.cmd(&["RPUSH", second, "v1"]), ":1\r\n");
        let want = format!("*2\r\n${}\r\n{}\r\n$2\r\nv1\r\n", second.len(), second);
        assert_eq!(blocked.reply(), want);
        wait_blocked(&mut ctl, 0);
        // The waiter on the other shard is gone: a push there stays.
        assert_eq!(ctl.cmd(&["RPUSH", first, "v2"]), ":1\r\n");
        assert_eq!(ctl.cmd(&["LLEN", first]), ":1\r\n");
        assert_eq!(ctl.cmd(&["DEL", first]), ":1\r\n");
    }
    // Both keys pushed in one pipeline: exactly one element is taken.
    for _ in 0..20 {
        let mut blocked = s.raw();
        blocked.send_cmd(&[b"BLPOP", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        ctl.send(
            &[
                common::encode(&[b"RPUSH", ON_SHARD0.as_bytes(), b"x"]),
                common::encode(&[b"RPUSH", ON_SHARD1.as_bytes(), b"y"]),
            ]
            .concat(),
        );
        assert_eq!(ctl.reply(), ":1\r\n");
        assert_eq!(ctl.reply(), ":1\r\n");
        let got = blocked.reply();
        assert!(got.ends_with("$1\r\nx\r\n") || got.ends_with("$1\r\ny\r\n"), "{got}");
        wait_blocked(&mut ctl, 0);
        assert_eq!(ctl.cmd(&["EXISTS", ON_SHARD0, ON_SHARD1]), ":1\r\n");
        ctl.cmd(&["DEL", ON_SHARD0, ON_SHARD1]);
    }
    // Sorted sets and BLMPOP across shards too.
    let mut blocked = s.raw();
    blocked.send_cmd(&[b"BZPOPMAX", ON_SHARD1.as_bytes(), ON_SHARD0.as_bytes(), b"0"]);
    wait_blocked(&mut ctl, 1);
    ctl.cmd(&["ZADD", ON_SHARD0, "1", "low", "2", "high"]);
    assert_eq!(blocked.reply(), "*3\r\n$3\r\nage\r\n$4\r\nhigh\r\n$1\r\n2\r\n");
    ctl.cmd(&["DEL", ON_SHARD0]);
    blocked.send_cmd(&[b"BLMPOP", b"0", b"2", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"RIGHT", b"COUNT", b"2"]);
    wait_blocked(&mut ctl, 1);
    ctl.cmd(&["RPUSH", ON_SHARD1, "p", "q", "r"]);
    assert_eq!(blocked.reply(), "*2\r\n$1\r\na\r\n*2\r\n$1\r\nr\r\n$1\r\nq\r\n");
    wait_blocked(&mut ctl, 0);
}

#[test]
fn blmove_across_shards_and_chained_serving() {
    let s = Server::slotcore_shards(2);
    let mut ctl = s.raw();
    // Source on shard 0, destination on shard 1.
    let mut mover = s.raw();
    mover.send_cmd(&[b"BLMOVE", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"RIGHT", b"LEFT", b"0"]);
    wait_blocked(&mut ctl, 1);
    ctl.cmd(&["RPUSH", ON_SHARD0, "m1", "m2"]);
    assert_eq!(mover.reply(), "$2\r\nm2\r\n");
    wait_blocked(&mut ctl, 0);
    assert_eq!(ctl.cmd(&["LRANGE", ON_SHARD1, "0", "-1"]), "*1\r\n$2\r\nm2\r\n");
    assert_eq!(ctl.cmd(&["LRANGE", ON_SHARD0, "0", "-1"]), "*1\r\n$2\r\nm1\r\n");
    ctl.cmd(&["DEL", ON_SHARD0, ON_SHARD1]);
    // Same shard: BLMOVE src -> dst, then a BLPOP on dst is served by the move (as Redis does).
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        let mut c = srv.raw();
        let mut m = srv.raw();
        let mut p = srv.raw();
        m.send_cmd(&[b"BRPOPLPUSH", ON_SHARD0.as_bytes(), BAR_SHARD0.as_bytes(), b"0"]);
        wait_blocked(&mut c, 1);
        p.send_cmd(&[b"BLPOP", BAR_SHARD0.as_bytes(), b"0"]);
        wait_blocked(&mut c, 2);
        assert_eq!(c.cmd(&["LPUSH", ON_SHARD0, "v"]), ":1\r\n");
        assert_eq!(m.reply(), "$1\r\nv\r\n");
        assert_eq!(p.reply(), "*2\r\n$3\r\nbar\r\n$1\r\nv\r\n");
        assert_eq!(c.cmd(&["EXISTS", ON_SHARD0, BAR_SHARD0]), ":0\r\n");
        wait_blocked(&mut c, 0);
    }
}

/// Clients blocked on one key are served in the order they blocked, wherever their home is.
#[test]
fn fairness_in_arrival_order_matches_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        for key in [ON_SHARD0, ON_SHARD1, FOO_SHARD1] {
            let mut ctl = srv.raw();
            let mut clients: Vec<Raw> = Vec::new();
            for _ in 0..4 {
                let mut c = srv.raw();
                c.send_cmd(&[b"BRPOP", key.as_bytes(), b"0"]);
                clients.push(c);
                wait_blocked(&mut ctl, clients.len());
            }
            assert_eq!(ctl.cmd(&["LPUSH", key, "1", "2", "3"]), ":3\r\n");
            let mut got = Vec::new();
            for c in clients.iter_mut().take(3) {
                got.push(c.reply());
            }
            let item = |v: &str| format!("*2\r\n${}\r\n{}\r\n$1\r\n{}\r\n", key.len(), key, v);
            assert_eq!(got, vec![item("1"), item("2"), item("3")], "on {key}");
            wait_blocked(&mut ctl, 1);
            ctl.cmd(&["RPUSH", key, "4"]);
            assert_eq!(clients[3].reply(), item("4"));
            wait_blocked(&mut ctl, 0);
        }
    }
}

#[test]
fn disconnect_kill_and_unblock_leave_nothing_behind() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        let mut ctl = srv.raw();
        // A client that goes away.
        {
            let mut gone = srv.raw();
            gone.send_cmd(&[b"BLPOP", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"0"]);
            wait_blocked(&mut ctl, 1);
        }
        wait_blocked(&mut ctl, 0);
        assert_eq!(ctl.cmd(&["RPUSH", ON_SHARD0, "x"]), ":1\r\n");
        assert_eq!(ctl.cmd(&["RPUSH", ON_SHARD1, "y"]), ":1\r\n");
        assert_eq!(ctl.cmd(&["EXISTS", ON_SHARD0, ON_SHARD1]), ":2\r\n");
        ctl.cmd(&["DEL", ON_SHARD0, ON_SHARD1]);
        // CLIENT KILL of a blocked client.
        let mut victim = srv.raw();
        let id = client_id(&mut victim);
        victim.send_cmd(&[b"BZPOPMIN", ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(ctl.cmd(&["CLIENT", "KILL", "ID", &id]), ":1\r\n");
        wait_blocked(&mut ctl, 0);
        assert_eq!(victim.read_to_end(), b"");
        ctl.cmd(&["ZADD", ON_SHARD1, "1", "m"]);
        assert_eq!(ctl.cmd(&["ZCARD", ON_SHARD1]), ":1\r\n");
        ctl.cmd(&["DEL", ON_SHARD1]);
        // CLIENT UNBLOCK with TIMEOUT, then ERROR.
        let mut u = srv.raw();
        let id = client_id(&mut u);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", &id]), ":0\r\n");
        u.send_cmd(&[b"BLPOP", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", &id]), ":1\r\n");
        assert_eq!(u.reply(), "*-1\r\n");
        wait_blocked(&mut ctl, 0);
        u.send_cmd(&[b"BLMOVE", ON_SHARD0.as_bytes(), ON_SHARD1.as_bytes(), b"LEFT", b"LEFT", b"0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), ":1\r\n");
        // Redis answers a timed-out BLMOVE with a null array too.
        assert_eq!(u.reply(), "*-1\r\n");
        u.send_cmd(&[b"BRPOP", ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), ":1\r\n");
        assert_eq!(u.reply(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
        wait_blocked(&mut ctl, 0);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), ":0\r\n");
        assert_eq!(u.cmd(&["PING"]), "+PONG\r\n");
        ctl.cmd(&["RPUSH", ON_SHARD0, "z"]);
        ctl.cmd(&["RPUSH", ON_SHARD1, "z"]);
        assert_eq!(ctl.cmd(&["EXISTS", ON_SHARD0, ON_SHARD1]), ":2\r\n");
        ctl.cmd(&["FLUSHALL"]);
    }
}

/// Keys created by other writes than pushes serve waiters too (RENAME across shards, MOVE
/// between databases, SWAPDB, ZUNIONSTORE), in both servers alike.
#[test]
fn keys_created_by_other_commands_serve_waiters() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        let mut ctl = srv.raw();
        let mut w = srv.raw();
        w.send_cmd(&[b"BLPOP", ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["RPUSH", "{age}tmp", "r"]);
        assert_eq!(ctl.cmd(&["RENAME", "{age}tmp", ON_SHARD1]), "+OK\r\n");
        assert_eq!(w.reply(), "*2\r\n$1\r\na\r\n$1\r\nr\r\n");
        // MOVE from db 1.
        w.send_cmd(&[b"BLPOP", ON_SHARD0.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["SELECT", "1"]);
        ctl.cmd(&["RPUSH", ON_SHARD0, "m"]);
        assert_eq!(ctl.cmd(&["MOVE", ON_SHARD0, "0"]), ":1\r\n");
        assert_eq!(w.reply(), "*2\r\n$3\r\nage\r\n$1\r\nm\r\n");
        // SWAPDB brings a list into db 0.
        w.send_cmd(&[b"BRPOP", BAR_SHARD0.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["RPUSH", BAR_SHARD0, "s"]);
        assert_eq!(ctl.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
        assert_eq!(w.reply(), "*2\r\n$3\r\nbar\r\n$1\r\ns\r\n");
        ctl.cmd(&["SWAPDB", "0", "1"]);
        ctl.cmd(&["SELECT", "0"]);
        // A key of another type leaves a waiter blocked; a sorted set store serves BZPOPMIN.
        w.send_cmd(&[b"BZPOPMIN", ON_SHARD1.as_bytes(), b"0"]);
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["RPUSH", ON_SHARD1, "not-a-zset"]);
        assert!(ctl.cmd(&["INFO", "clients"]).contains("blocked_clients:1\r\n"));
        ctl.cmd(&["DEL", ON_SHARD1]);
        ctl.cmd(&["ZADD", "src1", "7", "z"]);
        ctl.cmd(&["ZUNIONSTORE", ON_SHARD1, "1", "src1"]);
        assert_eq!(w.reply(), "*3\r\n$1\r\na\r\n$1\r\nz\r\n$1\r\n7\r\n");
        wait_blocked(&mut ctl, 0);
        ctl.cmd(&["FLUSHALL"]);
    }
}

/// Many clients blocked on keys of both shards while pushes land on both: every pushed element
/// is popped exactly once or still there, none is lost or duplicated.
#[test]
fn concurrent_blockers_and_pushers_lose_nothing() {
    let s = Server::slotcore_shards(2);
    let port = s.port;
    const PUSHES: usize = 300;
    let popped = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut handles = Vec::new();
    for _ in 0..6 {
        let popped = popped.clone();
        handles.push(std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            loop {
                let r = c.cmd(&["BLPOP", ON_SHARD0, ON_SHARD1, "0.5"]);
                if r == "*-1\r\n" {
                    return;
                }
                let v = r.rsplit("\r\n").nth(1).unwrap_or_default().to_string();
                popped.lock().expect("lock").push(v);
            }
        }));
    }
    let mut pushers = Vec::new();
    for p in 0..2 {
        pushers.push(std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            for i in 0..PUSHES / 2 {
                let key = if i % 2 == 0 { ON_SHARD0 } else { ON_SHARD1 };
                c.cmd(&["RPUSH", key, &format!("p{p}-{i}")]);
            }
        }));
    }
    for h in pushers {
        h.join().expect("pusher");
    }
    for h in handles {
        h.join().expect("blocker");
    }
    let mut ctl = s.raw();
    let mut all = popped.lock().expect("lock").clone();
    for key in [ON_SHARD0, ON_SHARD1] {
        let r = ctl.cmd(&["LRANGE", key, "0", "-1"]);
        for line in r.split("\r\n").filter(|l| l.starts_with('p')) {
            all.push(line.to_string());
        }
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "an element was popped twice");
    assert_eq!(all.len(), PUSHES, "elements lost");
    wait_blocked(&mut ctl, 0);
}

/// A key that expires during the transaction that pushed it (DEBUG SLEEP inside EXEC) does
/// not serve a blocked BRPOP: blocked clients are served on the real clock, as Redis's
/// `handleClientsBlockedOnKeys` runs after the command, outside its frozen time.
#[test]
fn key_expired_inside_exec_serves_nobody() {
    let debug = ["--enable-debug-command", "yes"];
    let mut slotcore_args = vec!["--shards", "1"];
    slotcore_args.extend(debug);
    for s in [Server::slotcore(&slotcore_args), Server::redis(&debug)] {
        let (mut w, mut c) = (s.raw(), s.raw());
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        let id = w.cmd(&["CLIENT", "ID"]).trim().trim_start_matches(':').to_string();
        w.send_cmd(&[b"BRPOP", b"k", b"0"]);
        let start = Instant::now();
        while !c.cmd(&["CLIENT", "LIST", "ID", &id]).contains("flags=b") {
            assert!(start.elapsed() < WAIT, "BRPOP did not block");
            std::thread::sleep(Duration::from_millis(5));
        }
        c.cmd(&["MULTI"]);
        c.cmd(&["RPUSH", "k", "hello"]);
        c.cmd(&["PEXPIRE", "k", "100"]);
        c.cmd(&["DEBUG", "SLEEP", "0.2"]);
        assert!(c.cmd(&["EXEC"]).starts_with("*3"));
        let line = c.cmd(&["CLIENT", "LIST", "ID", &id]);
        assert!(line.contains("flags=b"), "{line}");
        assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), ":1\r\n");
        assert_eq!(w.reply(), "*-1\r\n");
    }
}

/// Known defect, kept out of the default run: Redis serves a blocking command and a write on
/// another connection in the order they arrived. Here a blocking XREADGROUP is sent on a fresh
/// connection (after a PING, as Redis's own tests do) and the DEL right after it on a
/// connection of shard 1, which owns the stream, where it runs at once. When the blocking
/// connection is served by shard 0, its XREADGROUP must hop to shard 1; when shard 1 runs the
/// DEL before the hop arrives (most such rounds on a loaded 2-CPU machine), the XREADGROUP finds
/// no stream and answers NOGROUP instead of being unblocked with "no longer exists". Nothing on
/// shard 1 knows that shard 0 holds an earlier command for the key, so a fix needs an arrival
/// order across shards. Run with `--ignored` to measure it.
#[test]
#[ignore = "known defect: cross-shard arrival order of a blocking command and a later write"]
fn a_blocking_command_sent_first_is_unblocked_by_a_later_write_from_the_keys_shard() {
    const ROUNDS: usize = 100;
    let round = |s: &Server, writer: &mut Raw| -> bool {
        writer.cmd(&["DEL", ON_SHARD1]);
        writer.cmd(&["XADD", ON_SHARD1, "666", "f", "v"]);
        writer.cmd(&["XGROUP", "CREATE", ON_SHARD1, "g", "$"]);
        let mut blocker = s.raw();
        assert_eq!(blocker.cmd(&["PING"]), "+PONG\r\n");
        blocker.send_cmd(&[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"c",
            b"BLOCK",
            b"0",
            b"STREAMS",
            ON_SHARD1.as_bytes(),
            b">",
        ]);
        assert_eq!(writer.cmd(&["DEL", ON_SHARD1]), ":1\r\n");
        blocker.reply().contains("no longer exists")
    };
    let o = Server::redis(&[]);
    let mut w = o.raw();
    let theirs = (0..ROUNDS).filter(|_| round(&o, &mut w)).count();
    let s = Server::slotcore_shards(2);
    // The writer on shard 1; the other connection stays open so that fresh connections land
    // on both shards.
    let (_on0, mut on1) = common::one_per_shard(&s);
    let ours = (0..ROUNDS).filter(|_| round(&s, &mut on1)).count();
    assert_eq!(ours, theirs, "rounds in arrival order: {ours} of {ROUNDS}, redis-server's {theirs}");
}

/// Raises this process's open-file limit to its hard limit (many client sockets).
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write one rlimit value owned here.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// Clients blocked on keys of another shard cost nothing while they wait, as redis-server's:
/// 1500 of them on a node with Redis's default save points. Each save-point check (ten a
/// second) and each liveness probe used to make the shard signal every key someone waits on,
/// with a walk of the whole ready queue per key: about 5% of a core for 1500 waiters, 8% for
/// 2000. Then every one is served by one push each.
#[test]
fn many_blocked_clients_cost_no_cpu_while_they_wait() {
    const N: usize = 1500;
    assert!(raise_fd_limit() > N as u64 + 200, "the open-file limit is too low for {N} clients");
    let s = Server::slotcore(&["--shards", "2", "--save", "3600 1 300 100 60 10000"]);
    let mut admin = s.raw();
    // Keys under one tag: one shard holds them, so about half the clients wait across shards.
    let mut clients: Vec<Raw> = (0..N).map(|_| s.raw()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let k = format!("{{l}}{i}");
        c.send_cmd(&[b"BLPOP", k.as_bytes(), b"0"]);
    }
    wait_blocked(&mut admin, N);
    let used = common::cpu_ticks_during(s.pid(), Duration::from_secs(2));
    // Clock ticks are 10 ms: 4 ticks in 2 s is 2% of a core.
    assert!(used <= 4, "{N} blocked clients used {used} ticks of CPU in 2 s");
    for i in 0..N {
        let k = format!("{{l}}{i}");
        assert_eq!(admin.cmd(&["RPUSH", &k, "v"]), ":1\r\n");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let k = format!("{{l}}{i}");
        assert_eq!(c.reply(), format!("*2\r\n${}\r\n{k}\r\n$1\r\nv\r\n", k.len()));
    }
    wait_blocked(&mut admin, 0);
}
