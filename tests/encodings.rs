//! Value encodings and the edge cases around them, compared with a real redis-server 7.0:
//! the `hash-/zset-max-listpack-*` and `set-max-intset-entries` thresholds as CONFIG SET
//! changes them (OBJECT ENCODING, and the insertion order a small hash keeps even with huge
//! values), strings modified in place, and the forms in which the *MPOP commands and served
//! blocking pops reach a replica (read from a raw SYNC link on both servers).

mod common;
use common::{assert_same, Feed, Raw, Server, WAIT};
use std::time::Instant;

fn both() -> (Server, Server) {
    (Server::slotcore_shards(2), Server::redis(&[]))
}

fn same(s: &Server, o: &Server, cmds: &[Vec<String>]) {
    let cmds: Vec<Vec<&str>> = cmds.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let cmds: Vec<&[&str]> = cmds.iter().map(|c| &c[..]).collect();
    assert_same(&mut s.raw(), &mut o.raw(), &cmds);
}

fn c(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// HSET key f0 v f1 v ... for fields `from..to`.
fn hset_fields(key: &str, from: usize, to: usize) -> Vec<String> {
    let mut v = c(&["HSET", key]);
    for i in from..to {
        v.push(format!("f{i}"));
        v.push("1".into());
    }
    v
}

#[test]
fn hash_thresholds_follow_the_config() {
    let (s, o) = both();
    let mid = "y".repeat(300);
    let big = "x".repeat(70000);
    same(
        &s,
        &o,
        &[
            // Default: 512 fields stay a listpack, the 513th converts.
            hset_fields("h", 0, 512),
            c(&["OBJECT", "ENCODING", "h"]),
            hset_fields("h", 512, 513),
            c(&["OBJECT", "ENCODING", "h"]),
            // Value length limit, through HSET and HINCRBYFLOAT's result and field.
            c(&["CONFIG", "SET", "hash-max-listpack-value", "8"]),
            c(&["HSET", "small", "f", "12345678"]),
            c(&["HSET", "large", "f", "123456789"]),
            c(&["OBJECT", "ENCODING", "small"]),
            c(&["OBJECT", "ENCODING", "large"]),
            c(&["HSET", "inc", "tmp", "0"]),
            c(&["HINCRBYFLOAT", "inc", "tmp", "0.0000005"]),
            c(&["OBJECT", "ENCODING", "inc"]),
            c(&["HINCRBYFLOAT", "f8", "abcdefgh", "1"]),
            c(&["HINCRBYFLOAT", "f9", "abcdefghi", "1"]),
            c(&["OBJECT", "ENCODING", "f8"]),
            c(&["OBJECT", "ENCODING", "f9"]),
            // Limits raised far: huge values stay in a listpack, in insertion order.
            c(&["CONFIG", "SET", "hash-max-ziplist-entries", "1000000000"]),
            c(&["CONFIG", "SET", "hash-max-ziplist-value", "1000000000"]),
            c(&["HSET", "k", "z", "1", "b", &mid, "c", &big, "a", "-5"]),
            c(&["OBJECT", "ENCODING", "k"]),
            c(&["HGETALL", "k"]),
            c(&["HSET", "k", "b", "short", "c", &mid]),
            c(&["HDEL", "k", "z"]),
            c(&["HGETALL", "k"]),
            c(&["HSTRLEN", "k", "c"]),
            // Out of range.
            c(&["CONFIG", "SET", "hash-max-listpack-entries", "-1"]),
            // (One name per GET: Redis orders a pattern's matches by its dict.)
            c(&["CONFIG", "GET", "hash-max-listpack-entries"]),
            c(&["CONFIG", "GET", "hash-max-ziplist-value"]),
        ],
    );
}

#[test]
fn zset_and_set_thresholds_follow_the_config() {
    let (s, o) = both();
    same(
        &s,
        &o,
        &[
            c(&["CONFIG", "SET", "zset-max-ziplist-entries", "0"]),
            c(&["ZADD", "z0", "1", "a"]),
            c(&["OBJECT", "ENCODING", "z0"]),
            c(&["CONFIG", "SET", "zset-max-ziplist-entries", "2"]),
            c(&["ZADD", "z2", "1", "a", "2", "b"]),
            c(&["OBJECT", "ENCODING", "z2"]),
            c(&["ZADD", "z2", "3", "c"]),
            c(&["OBJECT", "ENCODING", "z2"]),
            c(&["ZRANGE", "z2", "0", "-1", "WITHSCORES"]),
            c(&["CONFIG", "SET", "zset-max-ziplist-entries", "128"]),
            c(&["CONFIG", "SET", "zset-max-listpack-value", "3"]),
            c(&["ZADD", "zv", "1", "abc"]),
            c(&["OBJECT", "ENCODING", "zv"]),
            c(&["ZADD", "zv", "2", "abcd"]),
            c(&["OBJECT", "ENCODING", "zv"]),
            c(&["CONFIG", "SET", "set-max-intset-entries", "2"]),
            c(&["SADD", "s", "1", "2"]),
            c(&["OBJECT", "ENCODING", "s"]),
            c(&["SADD", "s", "3"]),
            c(&["OBJECT", "ENCODING", "s"]),
            c(&["SCARD", "s"]),
            c(&["CONFIG", "GET", "set-max-intset-entries"]),
            c(&["CONFIG", "GET", "zset-max-ziplist-entries"]),
        ],
    );
}

#[test]
fn strings_modified_in_place_and_number_edges() {
    let (s, o) = both();
    same(
        &s,
        &o,
        &[
            c(&["SET", "n", "1234"]),
            c(&["SETRANGE", "n", "0", "2"]),
            c(&["OBJECT", "ENCODING", "n"]),
            c(&["GET", "n"]),
            c(&["SET", "n2", "1234"]),
            c(&["SETRANGE", "n2", "0", ""]),
            c(&["OBJECT", "ENCODING", "n2"]),
            c(&["SET", "e", "hello"]),
            c(&["OBJECT", "ENCODING", "e"]),
            c(&["APPEND", "e", "!"]),
            c(&["OBJECT", "ENCODING", "e"]),
            c(&["SETBIT", "b", "3", "1"]),
            c(&["OBJECT", "ENCODING", "b"]),
            // "1\02": strtold stops at the NUL, which is an error, not 1.
            c(&["SET", "f", "1"]),
            c(&["SETRANGE", "f", "2", "2"]),
            c(&["INCRBYFLOAT", "f", "1"]),
            c(&["HSET", "h", "f", "1"]),
            c(&["SET", "str", "xxxx"]),
            c(&["BITCOUNT", "str", "-6", "-7"]),
            c(&["BITCOUNT", "str", "-6", "-15", "BIT"]),
            c(&["BITCOUNT", "str", "-7", "-6"]),
            c(&["BITCOUNT", "str", "-3", "-100"]),
            c(&["BITPOS", "str", "1", "-6", "-7"]),
        ],
    );
}

fn blocked_clients(r: &mut Raw) -> bool {
    r.cmd(&["INFO", "clients"]).contains("blocked_clients:1")
}

/// Runs the pops on `server` with a SYNC link attached; returns what the link received.
fn pops_as_propagated(server: &Server) -> Vec<Vec<String>> {
    let mut feed = Feed::attach(server.port);
    let mut r = server.raw();
    for cmd in [
        &["LPUSH", "l", "a", "b", "c"][..],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "2"],
        &["RPUSH", "l2", "1", "2", "3"],
        &["LMPOP", "2", "nokey", "l2", "RIGHT", "COUNT", "10"],
        &["LMPOP", "1", "nokey", "LEFT"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZMPOP", "1", "z", "MIN"],
        &["ZMPOP", "1", "z", "MAX", "COUNT", "5"],
        &["RPUSH", "b1", "x", "y"],
        &["BLPOP", "b1", "0"],
        &["BLMPOP", "0", "1", "b1", "RIGHT", "COUNT", "3"],
        &["ZADD", "bz", "1", "a", "2", "b"],
        &["BZPOPMAX", "bz", "0"],
        &["BZMPOP", "0", "1", "bz", "MIN", "COUNT", "4"],
    ] {
        r.cmd(cmd);
    }
    // Served after blocking.
    let mut waiter = server.raw();
    waiter.send_cmd(&[b"BLMPOP", b"0", b"1", b"w", b"LEFT", b"COUNT", b"3"]);
    let start = Instant::now();
    while !blocked_clients(&mut r) {
        assert!(start.elapsed() < WAIT, "BLMPOP did not block");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    r.cmd(&["RPUSH", "w", "a", "b"]);
    assert!(waiter.reply().contains('b'));
    waiter.send_cmd(&[b"BLPOP", b"w2", b"0"]);
    while !blocked_clients(&mut r) {
        assert!(start.elapsed() < WAIT, "BLPOP did not block");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    r.cmd(&["RPUSH", "w2", "q"]);
    assert!(waiter.reply().contains('q'));
    r.cmd(&["SET", "end", "1"]);
    feed.until_end()
}

#[test]
fn mpop_and_served_pops_propagate_as_redis() {
    let sc = Server::slotcore(&["--shards", "1"]);
    let rs = Server::redis(&[]);
    let want = pops_as_propagated(&rs);
    // The forms themselves, so that a change on both sides cannot pass unnoticed.
    assert!(want.contains(&c(&["lpop", "l", "2"])), "{want:?}");
    assert!(want.contains(&c(&["zpopmax", "z", "2"])), "{want:?}");
    assert!(want.contains(&c(&["lpop", "w", "2"])), "{want:?}");
    assert_eq!(pops_as_propagated(&sc), want);
}
