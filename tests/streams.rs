//! Streams compared with a real redis-server 7.0: replies byte for byte (RESP2 and RESP3) for a
//! corpus of commands and errors, node-based trimming, blocked XREAD/XREADGROUP across shards,
//! DUMP/RESTORE and RDB files crossing both ways (DEBUG DIGEST-VALUE and XINFO STREAM FULL
//! equal), and a slotcore replica applying a master's stream writes. Ports 8500-8579.

mod common;

use common::{assert_same, Raw, Server};
use std::time::{Duration, Instant};

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn ports() {
    common::set_port_base(8500);
}

const SETUP: &[&[&str]] = &[
    &["XADD", "s", "1-1", "a", "1", "b", "2"],
    &["XADD", "s", "1-*", "a", "3", "b", "4"],
    &["XADD", "s", "2", "c", "5"],
    &["XADD", "s", "NOMKSTREAM", "3-0", "a", "6", "b", "7"],
    &["XADD", "s", "MAXLEN", "=", "10", "4-0", "a", "8"],
    &["XADD", "s", "5-0", "a", "9", "b", "10", "c", "11"],
    &[
        "XADD",
        "s",
        "6-0",
        "bin",
        "\u{1}\u{2}",
        "long",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    ],
    &["XADD", "t", "100-0", "x", "1"],
    &["XGROUP", "CREATE", "s", "g1", "0"],
    &["XGROUP", "CREATE", "s", "g2", "$"],
    &["XGROUP", "CREATE", "s", "g3", "2-0", "ENTRIESREAD", "2"],
];

const CASES: &[&[&str]] = &[
    &["XLEN", "s"],
    &["XLEN", "nokey"],
    &["XRANGE", "s", "-", "+"],
    &["XRANGE", "s", "(1-1", "+", "COUNT", "2"],
    &["XRANGE", "s", "1", "3"],
    &["XRANGE", "s", "(1-0", "(3-0"],
    &["XRANGE", "s", "-", "+", "COUNT", "0"],
    &["XRANGE", "s", "-", "+", "COUNT", "-1"],
    &["XRANGE", "s", "(0-0", "(0-0"],
    &["XRANGE", "s", "-", "(0-0"],
    &["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"],
    &["XRANGE", "s", "x", "+"],
    &["XRANGE", "s", "-", "+", "COUNT"],
    &["XRANGE", "s", "-", "+", "LIMIT", "1"],
    &["XRANGE", "nokey", "-", "+"],
    &["XREVRANGE", "s", "+", "-"],
    &["XREVRANGE", "s", "+", "-", "COUNT", "3"],
    &["XREVRANGE", "s", "(5-0", "2"],
    &["XADD", "s", "1-0", "a", "b"],
    &["XADD", "s", "0-0", "a", "b"],
    &["XADD", "s", "6-0", "a"],
    &["XADD", "s", "bad", "a", "b"],
    &["XADD", "s", "MAXLEN", "-1", "*", "a", "b"],
    &["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "a", "b"],
    &["XADD", "s", "LIMIT", "10", "*", "a", "b"],
    &["XADD", "s", "MAXLEN", "5", "LIMIT", "10", "*", "a", "b"],
    &["XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "*", "a", "b"],
    &["XADD", "nokey", "NOMKSTREAM", "*", "a", "b"],
    &["EXISTS", "nokey"],
    &["XADD", "str", "*", "a", "b"],
    &["SET", "str", "v"],
    &["XADD", "str", "*", "a", "b"],
    &["XLEN", "str"],
    &["XDEL", "s", "2-0", "99-0"],
    &["XDEL", "s", "2-0"],
    &["XDEL", "s", "bad"],
    &["XDEL", "nokey", "1-0"],
    &["XREAD", "STREAMS", "s", "0"],
    &["XREAD", "COUNT", "2", "STREAMS", "s", "t", "1-1", "0"],
    &["XREAD", "STREAMS", "s", "$"],
    &["XREAD", "STREAMS", "s", "t"],
    &["XREAD", "STREAMS", "s", "t", "nokey", "0", "0", "0"],
    &["XREAD", "STREAMS", "s", ">"],
    &["XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"],
    &["XREAD", "NOACK", "STREAMS", "s", "0"],
    &["XREAD", "COUNT", "x", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "x", "STREAMS", "s", "0"],
    &["XREAD", "s", "0"],
    &["XREAD", "STREAMS", "str", "0"],
    &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "s", "0"],
    &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "s", "$"],
    &["XREADGROUP", "GROUP", "nogroup", "alice", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "nokey", ">"],
    &["XREADGROUP", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g2", "carol", "NOACK", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g3", "dan", "COUNT", "1", "STREAMS", "s", ">"],
    &["XPENDING", "s", "g1"],
    &["XPENDING", "s", "g2"],
    &["XPENDING", "s", "nogroup"],
    &["XPENDING", "s", "g1", "IDLE", "100000000", "-", "+", "10"],
    &["XPENDING", "s", "g1", "-", "+", "0"],
    &["XPENDING", "s", "g1", "-", "+"],
    &["XPENDING", "s", "g1", "-", "+", "10", "nobody"],
    &["XPENDING", "s", "g1", "x", "+", "10"],
    &["XACK", "s", "g1", "1-1", "1-2", "1-1"],
    &["XACK", "s", "g1", "bad"],
    &["XACK", "s", "nogroup", "1-1"],
    &["XACK", "nokey", "g1", "1-1"],
    &["XCLAIM", "s", "g1", "erin", "0", "3-0", "4-0", "JUSTID"],
    &["XCLAIM", "s", "g1", "erin", "0", "5-0", "FORCE", "RETRYCOUNT", "7"],
    &["XCLAIM", "s", "g1", "erin", "0", "3-0", "BOGUS"],
    &["XCLAIM", "s", "g1", "erin", "x", "3-0"],
    &["XCLAIM", "s", "g1", "erin", "0", "3-0", "IDLE", "x"],
    &["XCLAIM", "s", "nogroup", "erin", "0", "3-0"],
    &["XCLAIM", "s", "g1", "erin", "100000000", "3-0"],
    &["XPENDING", "s", "g1"],
    &["XAUTOCLAIM", "s", "g1", "fred", "0", "0-0", "COUNT", "1"],
    &["XAUTOCLAIM", "s", "g1", "fred", "0", "(3-0", "JUSTID"],
    &["XAUTOCLAIM", "s", "g1", "fred", "0", "0", "COUNT", "0"],
    &["XAUTOCLAIM", "s", "g1", "fred", "0", "0", "BOGUS"],
    &["XAUTOCLAIM", "s", "nogroup", "fred", "0", "0"],
    &["XDEL", "s", "4-0"],
    &["XAUTOCLAIM", "s", "g1", "fred", "0", "0"],
    &["XINFO", "STREAM", "s"],
    &["XINFO", "GROUPS", "s"],
    &["XINFO", "STREAM", "nokey"],
    &["XINFO", "STREAM", "s", "FULL", "BOGUS"],
    &["XINFO", "CONSUMERS", "s", "nogroup"],
    &["XINFO", "BOGUS", "s"],
    &["XINFO", "HELP"],
    &["XGROUP", "HELP"],
    &["XGROUP", "CREATE", "s", "g1", "$"],
    &["XGROUP", "CREATE", "nokey", "g1", "$"],
    &["XGROUP", "CREATE", "s", "g9", "bad"],
    &["XGROUP", "CREATE", "s", "g9", "$", "ENTRIESREAD", "-5"],
    &["XGROUP", "CREATE", "s", "g9", "$", "BOGUS"],
    &["XGROUP", "CREATECONSUMER", "s", "g1", "zed"],
    &["XGROUP", "CREATECONSUMER", "s", "g1", "zed"],
    &["XGROUP", "CREATECONSUMER", "s", "nogroup", "zed"],
    &["XGROUP", "DELCONSUMER", "s", "g1", "erin"],
    &["XGROUP", "DELCONSUMER", "s", "g1", "nobody"],
    &["XGROUP", "SETID", "s", "g1", "0", "ENTRIESREAD", "0"],
    &["XGROUP", "SETID", "s", "nogroup", "0"],
    &["XGROUP", "SETID", "s", "g1", "$", "BOGUS", "1"],
    &["XINFO", "GROUPS", "s"],
    &["XGROUP", "DESTROY", "s", "g2"],
    &["XGROUP", "DESTROY", "s", "g2"],
    &["XGROUP", "BOGUS", "s", "g2"],
    &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
    &["XINFO", "STREAM", "m"],
    &["XSETID", "s", "1-0"],
    &["XSETID", "s", "100-0", "ENTRIESADDED", "1"],
    &["XSETID", "s", "100-0", "ENTRIESADDED", "-1"],
    &["XSETID", "s", "100-0", "MAXDELETEDID", "200-0"],
    &["XSETID", "s", "100-0", "ENTRIESADDED", "50", "MAXDELETEDID", "7-0"],
    &["XSETID", "nokey", "1-0"],
    &["XINFO", "STREAM", "s"],
    &["XTRIM", "s", "MAXLEN", "2"],
    &["XTRIM", "s", "MINID", "6-0"],
    &["XTRIM", "s"],
    &["XTRIM", "s", "LIMIT", "1"],
    &["XTRIM", "s", "MAXLEN", "1", "LIMIT", "1"],
    &["XTRIM", "nokey", "MAXLEN", "1"],
    &["XRANGE", "s", "-", "+"],
    &["XADD", "s", "100-*", "a", "b"],
    &["TYPE", "s"],
    &["OBJECT", "ENCODING", "s"],
];

/// `reply` with the IDs made from the server's clock (`XADD ... *` on a new stream) masked:
/// two servers may be a millisecond apart. An ID counts as clock-made when its milliseconds
/// are within an hour of now; its digits become zeros, so RESP lengths still compare.
fn mask_clock_ids(reply: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i128;
    let mut out = reply.as_bytes().to_vec();
    let mut i = 0;
    while i < out.len() {
        let run = out[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run == 0 {
            i += 1;
            continue;
        }
        let end = i + run;
        let ms: i128 = std::str::from_utf8(&out[i..end]).unwrap().parse().unwrap_or(0);
        let preceded_by_digit_or_dash = i > 0 && (out[i - 1] == b'-' || out[i - 1].is_ascii_digit());
        if !preceded_by_digit_or_dash && out.get(end) == Some(&b'-') && (ms - now).abs() < 3_600_000 {
            let seq = out[end + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            out[i..end + 1 + seq].iter_mut().filter(|c| c.is_ascii_digit()).for_each(|c| *c = b'0');
            i = end + 1 + seq;
        } else {
            i = end;
        }
    }
    String::from_utf8(out).unwrap()
}

/// As `assert_same`, with clock-made stream IDs masked (see `mask_clock_ids`).
fn assert_same_but_clock_ids(a: &mut Raw, b: &mut Raw, cmds: &[&[&str]]) {
    for c in cmds {
        let (ra, rb) = (a.cmd(c), b.cmd(c));
        assert_eq!(
            mask_clock_ids(&ra),
            mask_clock_ids(&rb),
            "command {:?}: slotcore replied {:?}, redis-server replied {:?}",
            c,
            ra,
            rb
        );
    }
}

#[test]
fn clock_ids_are_masked_and_nothing_else() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let id = format!("$15\r\n{now}-3\r\n");
    assert_eq!(mask_clock_ids(&id), "$15\r\n0000000000000-0\r\n");
    for kept in ["$3\r\n1-1\r\n", "$20\r\n18446744073709551615-1\r\n", ":1764000000000\r\n", "+9999999999999-6\r\n"] {
        assert_eq!(mask_clock_ids(kept), kept);
    }
}

#[test]
fn replies_match_redis() {
    ports();
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    assert_same(&mut a, &mut b, SETUP);
    assert_same_but_clock_ids(&mut a, &mut b, CASES);
    // The same in RESP3 (XREAD's map, XINFO's maps, nulls).
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    assert_same(&mut a, &mut b, &[&["FLUSHALL"]]);
    assert_same(&mut a, &mut b, SETUP);
    let resp3: Vec<&[&str]> =
        CASES.iter().copied().filter(|c| !(c[0] == "XINFO" && c.get(1) == Some(&"HELP"))).take(70).collect();
    assert_same_but_clock_ids(&mut a, &mut b, &resp3);
}

#[test]
fn trimming_follows_nodes_as_redis() {
    ports();
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    let mut cmds: Vec<Vec<String>> =
        vec![vec!["CONFIG".into(), "SET".into(), "stream-node-max-entries".into(), "10".into()]];
    for i in 1..=200 {
        cmds.push(vec!["XADD".into(), "x".into(), format!("{i}-0"), "f".into(), format!("v{i}")]);
    }
    cmds.push(vec!["XTRIM".into(), "x".into(), "MAXLEN".into(), "~".into(), "55".into()]);
    cmds.push(vec!["XLEN".into(), "x".into()]);
    cmds.push(vec!["XTRIM".into(), "x".into(), "MINID".into(), "~".into(), "171".into()]);
    // A last ID past the clock makes the next `*` ID deterministic (last ms, next sequence)
    // on both servers; the trimming done by that XADD is what is compared.
    cmds.push(vec!["XSETID".into(), "x".into(), "9999999999999-5".into()]);
    cmds.push(vec![
        "XADD".into(),
        "x".into(),
        "MAXLEN".into(),
        "~".into(),
        "15".into(),
        "LIMIT".into(),
        "10".into(),
        "*".into(),
        "f".into(),
        "v".into(),
    ]);
    cmds.push(vec!["XLEN".into(), "x".into()]);
    cmds.push(vec!["XDEL".into(), "x".into(), "191-0".into(), "192-0".into()]);
    cmds.push(vec!["XTRIM".into(), "x".into(), "MAXLEN".into(), "3".into()]);
    cmds.push(vec!["XINFO".into(), "STREAM".into(), "x".into()]);
    cmds.push(vec!["CONFIG".into(), "SET".into(), "stream-node-max-bytes".into(), "100".into()]);
    for i in 1..=40 {
        cmds.push(vec!["XADD".into(), "y".into(), format!("{i}-0"), "field".into(), "a fairly long value".into()]);
    }
    cmds.push(vec!["XTRIM".into(), "y".into(), "MAXLEN".into(), "~".into(), "20".into()]);
    cmds.push(vec!["XINFO".into(), "STREAM".into(), "y".into()]);
    let refs: Vec<Vec<&str>> = cmds.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let refs2: Vec<&[&str]> = refs.iter().map(|c| c.as_slice()).collect();
    assert_same(&mut a, &mut b, &refs2);
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < common::WAIT {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn blocked_clients(c: &mut Raw) -> u64 {
    let info = c.cmd(&["INFO", "clients"]);
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A blocked XREADGROUP ended by XGROUP DESTROY is one call that failed once, as in Redis.
#[test]
fn destroyed_group_fails_a_blocked_reader_once() {
    ports();
    let sc = Server::slotcore(&["--shards", "2"]);
    let rs = Server::redis(&[]);
    for s in [&sc, &rs] {
        let (mut r, mut w) = (s.raw(), s.raw());
        w.cmd(&["XGROUP", "CREATE", "ms", "g", "$", "MKSTREAM"]);
        r.send_cmd(&[b"XREADGROUP", b"GROUP", b"g", b"alice", b"BLOCK", b"0", b"STREAMS", b"ms", b">"]);
        wait_for("the reader to block", || blocked_clients(&mut w) == 1);
        w.cmd(&["CONFIG", "RESETSTAT"]);
        w.cmd(&["XGROUP", "DESTROY", "ms", "g"]);
        assert!(r.reply().starts_with("-NOGROUP"));
        let stats = w.cmd(&["INFO", "commandstats"]);
        let line = stats.lines().find(|l| l.starts_with("cmdstat_xreadgroup:")).unwrap_or_default().to_string();
        assert!(line.ends_with("rejected_calls=0,failed_calls=1"), "{line}");
    }
}

#[test]
fn blocked_readers_across_shards() {
    ports();
    let sc = Server::slotcore(&["--shards", "3"]);
    let mut w = sc.raw();
    // Keys on different shards of three (their slots are spread out).
    let keys = ["{a}s", "{b}s", "{c}s", "{d}s"];
    for k in &keys {
        w.cmd(&["XADD", k, "1-0", "old", "x"]);
    }
    // Several XREAD readers on each key with `$`, plus one reading every key.
    let mut readers = Vec::new();
    for k in &keys {
        for _ in 0..2 {
            let mut r = sc.raw();
            r.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", k.as_bytes(), b"$"]);
            readers.push((k.to_string(), r));
        }
    }
    let mut all = sc.raw();
    all.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"{a}s", b"{b}s", b"{c}s", b"{d}s", b"$", b"$", b"$", b"$"]);
    let mut group = sc.raw();
    w.cmd(&["XGROUP", "CREATE", "{c}s", "g", "$"]);
    group.send_cmd(&[b"XREADGROUP", b"GROUP", b"g", b"alice", b"BLOCK", b"0", b"STREAMS", b"{c}s", b">"]);
    let mut timeout = sc.raw();
    timeout.send_cmd(&[b"XREAD", b"BLOCK", b"100", b"STREAMS", b"{d}s", b"$"]);
    assert_eq!(timeout.reply(), "*-1\r\n");
    wait_for("the readers to block", || blocked_clients(&mut w) == 10);
    for k in &keys {
        assert_eq!(w.cmd(&["XADD", k, "2-0", "new", k]), "$3\r\n2-0\r\n");
    }
    for (k, mut r) in readers {
        let want = format!(
            "*1\r\n*2\r\n${}\r\n{k}\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$3\r\nnew\r\n${}\r\n{k}\r\n",
            k.len(),
            k.len()
        );
        assert_eq!(r.reply(), want);
    }
    let got = all.reply();
    assert!(got.starts_with("*1\r\n*2\r\n$4\r\n{a}s\r\n"), "{got}");
    let got = group.reply();
    assert!(got.contains("2-0") && got.contains("{c}s"), "{got}");
    // The group delivery is pending for alice.
    assert_eq!(
        w.cmd(&["XPENDING", "{c}s", "g"]),
        "*4\r\n:1\r\n$3\r\n2-0\r\n$3\r\n2-0\r\n*1\r\n*2\r\n$5\r\nalice\r\n$1\r\n1\r\n"
    );
    assert_eq!(blocked_clients(&mut w), 0);
    // A group reader is released with an error when its stream is deleted.
    let mut gone = sc.raw();
    gone.send_cmd(&[b"XREADGROUP", b"GROUP", b"g", b"bob", b"BLOCK", b"0", b"STREAMS", b"{c}s", b">"]);
    wait_for("the group reader to block", || blocked_clients(&mut w) == 1);
    w.cmd(&["DEL", "{c}s"]);
    assert_eq!(gone.reply(), "-UNBLOCKED the stream key no longer exists\r\n");
    // XADD + DEL in one transaction wakes nobody.
    let mut r = sc.raw();
    r.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"{b}s", b"$"]);
    wait_for("the reader to block", || blocked_clients(&mut w) == 1);
    w.cmd(&["MULTI"]);
    w.cmd(&["XADD", "{b}s", "3-0", "tx", "1"]);
    w.cmd(&["DEL", "{b}s"]);
    w.cmd(&["EXEC"]);
    w.cmd(&["XADD", "{b}s", "9-0", "after", "1"]);
    assert!(r.reply().contains("after"));
}

fn hex_digest(r: &mut Raw, key: &str) -> String {
    r.cmd(&["DEBUG", "DIGEST-VALUE", key])
}

/// Streams with groups, tombstones, several nodes and odd fields, on one server.
fn fill(r: &mut Raw) {
    r.cmd(&["CONFIG", "SET", "stream-node-max-entries", "7"]);
    for i in 1..=60 {
        let v = "x".repeat(i % 70);
        let n = i.to_string();
        if i % 9 == 0 {
            r.cmd(&["XADD", "s", &format!("{i}-1"), "other", &n]);
        } else {
            r.cmd(&["XADD", "s", &format!("{i}-1"), "a", &n, "b", &v]);
        }
    }
    r.cmd(&["XDEL", "s", "5-1", "30-1", "31-1"]);
    r.cmd(&["XGROUP", "CREATE", "s", "g1", "0"]);
    r.cmd(&["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "7"]);
    r.cmd(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "s", ">"]);
    r.cmd(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", "s", ">"]);
    r.cmd(&["XGROUP", "CREATECONSUMER", "s", "g1", "carol"]);
    r.cmd(&["XADD", "e", "1-1", "a", "b"]);
    r.cmd(&["XDEL", "e", "1-1"]);
    r.cmd(&["XADD", "plain", "1-1", "f", "v"]);
}

#[test]
fn dump_restore_and_rdb_cross_with_redis() {
    ports();
    let sc = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let rs = Server::redis(&[DEBUG[0], DEBUG[1]]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    fill(&mut a);
    fill(&mut b);
    for k in ["s", "e", "plain"] {
        assert_eq!(hex_digest(&mut a, k), hex_digest(&mut b, k), "digest of {k}");
    }
    // Without groups the payloads are identical.
    assert_eq!(a.cmd(&["DUMP", "plain"]), b.cmd(&["DUMP", "plain"]));
    assert_eq!(a.cmd(&["DUMP", "e"]), b.cmd(&["DUMP", "e"]));
    // With groups (times differ): each restores the other's, then both agree on everything.
    let da = a.cmd_bytes(&[b"DUMP", b"s"]);
    let db = b.cmd_bytes(&[b"DUMP", b"s"]);
    let payload = |r: &[u8]| -> Vec<u8> {
        let nl = r.iter().position(|&c| c == b'\n').unwrap_or(0);
        r[nl + 1..r.len() - 2].to_vec()
    };
    assert_eq!(b.cmd_bytes(&[b"RESTORE", b"copy", b"0", &payload(&da)]), b"+OK\r\n");
    assert_eq!(a.cmd_bytes(&[b"RESTORE", b"copy", b"0", &payload(&db)]), b"+OK\r\n");
    assert_eq!(hex_digest(&mut a, "copy"), hex_digest(&mut b, "s"));
    assert_eq!(a.cmd(&["XINFO", "STREAM", "copy", "FULL"]), b.cmd(&["XINFO", "STREAM", "s", "FULL"]));
    assert_eq!(b.cmd(&["XINFO", "STREAM", "copy", "FULL"]), a.cmd(&["XINFO", "STREAM", "s", "FULL"]));

    // MIGRATE moves a stream with its groups to redis-server and back.
    let want = a.cmd(&["XINFO", "GROUPS", "s"]);
    let (ap, bp) = (sc.port.to_string(), rs.port.to_string());
    b.cmd(&["DEL", "moved"]);
    a.cmd(&["COPY", "s", "moved"]);
    assert_eq!(a.cmd(&["MIGRATE", "127.0.0.1", &bp, "moved", "0", "5000"]), "+OK\r\n");
    assert_eq!(a.cmd(&["EXISTS", "moved"]), ":0\r\n");
    assert_eq!(b.cmd(&["XINFO", "GROUPS", "moved"]), want);
    assert_eq!(b.cmd(&["MIGRATE", "127.0.0.1", &ap, "moved", "0", "5000"]), "+OK\r\n");
    assert_eq!(a.cmd(&["XINFO", "GROUPS", "moved"]), want);
    a.cmd(&["DEL", "moved"]);

    // slotcore's RDB file loads in redis-server with the same data.
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    let want = a.cmd(&["DEBUG", "DIGEST"]);
    let full = a.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]);
    let check =
        std::process::Command::new("redis-check-rdb").arg(sc.dir.join("dump.rdb")).output().expect("redis-check-rdb");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let d = std::env::temp_dir().join(format!("slotcore-streams-rdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(sc.dir.join("dump.rdb"), d.join("dump.rdb")).unwrap();
    let rs2 = Server::redis(&[DEBUG[0], DEBUG[1], "--dir", d.to_str().unwrap()]);
    let mut c = rs2.raw();
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), want);
    assert_eq!(c.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]), full);

    // redis-server's RDB file loads in slotcore with the same data.
    c.cmd(&["XADD", "s", "1000-0", "from", "redis"]);
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    let want = c.cmd(&["DEBUG", "DIGEST"]);
    let full = c.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]);
    let d2 = std::env::temp_dir().join(format!("slotcore-streams-rdb2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d2);
    std::fs::create_dir_all(&d2).unwrap();
    std::fs::copy(d.join("dump.rdb"), d2.join("dump.rdb")).unwrap();
    let sc2 = Server::slotcore(&["--shards", "3", DEBUG[0], DEBUG[1], "--dir", d2.to_str().unwrap()]);
    let mut e = sc2.raw();
    assert_eq!(e.cmd(&["DEBUG", "DIGEST"]), want);
    assert_eq!(e.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]), full);
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&d2);
}

fn offset(r: &mut Raw, field: &str) -> String {
    let info = r.cmd(&["INFO", "replication"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

#[test]
fn replica_applies_stream_writes() {
    ports();
    let m = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let mp = m.port.to_string();
    let rep = Server::slotcore(&["--replicaof", "127.0.0.1", &mp, DEBUG[0], DEBUG[1]]);
    // A real redis-server replica too: our propagated commands must be valid Redis ones.
    let theirs = Server::redis(&["--replicaof", "127.0.0.1", &mp, DEBUG[0], DEBUG[1]]);
    let mut w = m.raw();
    let (mut r, mut t) = (rep.raw(), theirs.raw());
    wait_for("both replicas linked", || {
        offset(&mut r, "master_link_status") == "up" && offset(&mut t, "master_link_status") == "up"
    });
    // Node sizes are each server's own configuration (not replicated, as in Redis).
    for c in [&mut w, &mut r, &mut t] {
        c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "5"]);
    }
    for i in 0..40 {
        w.cmd(&["XADD", "s", "*", "n", &i.to_string()]);
    }
    w.cmd(&["XADD", "s", "MAXLEN", "~", "12", "*", "n", "trim"]);
    w.cmd(&["XTRIM", "s", "MAXLEN", "~", "8"]);
    w.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    w.cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"]);
    w.cmd(&["XREADGROUP", "GROUP", "g", "bob", "NOACK", "COUNT", "2", "STREAMS", "s", ">"]);
    let pending = w.cmd(&["XPENDING", "s", "g", "-", "+", "10"]);
    let first = pending.split("\r\n").nth(3).unwrap_or("").to_string();
    w.cmd(&["XCLAIM", "s", "g", "carol", "0", &first]);
    w.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"]);
    w.cmd(&["XACK", "s", "g", &first]);
    w.cmd(&["XADD", "s", "MINID", "~", "0", "*", "n", "last"]);
    w.cmd(&["XSETID", "s", "99999999999999-0", "ENTRIESADDED", "500"]);
    w.cmd(&["XDEL", "s", &first]);
    w.cmd(&["XGROUP", "CREATE", "{x}", "g", "$", "MKSTREAM"]);
    w.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "bob"]);
    let want_off = offset(&mut w, "master_repl_offset");
    wait_for("the replicas to catch up", || {
        // At least: the master's pings (every repl-ping-replica-period) move offsets on.
        let at = |s: String| s.parse::<u64>().unwrap_or(0);
        let want = at(want_off.clone());
        at(offset(&mut r, "slave_repl_offset")) >= want && at(offset(&mut t, "slave_repl_offset")) >= want
    });
    let want = w.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(r.cmd(&["DEBUG", "DIGEST"]), want);
    assert_eq!(t.cmd(&["DEBUG", "DIGEST"]), want);
    // Times (seen-time, idle) are the replicas' own, as with Redis.
    for q in
        [&["XINFO", "STREAM", "s"][..], &["XINFO", "GROUPS", "s"], &["XPENDING", "s", "g"], &["XRANGE", "s", "-", "+"]]
    {
        let want = w.cmd(q);
        assert_eq!(r.cmd(q), want, "{q:?}");
        assert_eq!(t.cmd(q), want, "{q:?}");
    }
}
