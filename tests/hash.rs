//! Hash commands compared with a real redis-server, byte for byte.

mod common;
use common::{assert_same, Server};
use std::collections::BTreeSet;

#[test]
fn hash_commands_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["HSET", "h", "f1", "v1", "f2", "v2"],
            &["HSET", "h", "f1", "x", "f3", "v3"],
            &["HSET", "h", "f1"],
            &["HGET", "h", "f1"],
            &["HGET", "h", "nofield"],
            &["HGET", "nokey", "f"],
            &["HMGET", "h", "f1", "nofield", "f3"],
            &["HMGET", "nokey", "a", "b"],
            &["HGETALL", "h"],
            &["HKEYS", "h"],
            &["HVALS", "h"],
            &["HLEN", "h"],
            &["HLEN", "nokey"],
            &["HSTRLEN", "h", "f2"],
            &["HEXISTS", "h", "f2"],
            &["HEXISTS", "h", "zz"],
            &["HSETNX", "h", "f2", "new"],
            &["HSETNX", "h", "f9", "new"],
            &["HMSET", "h", "a", "1", "b", "2"],
            &["HMSET", "h", "a"],
            &["HDEL", "h", "a", "b", "nofield"],
            &["HINCRBY", "h", "n", "5"],
            &["HINCRBY", "h", "n", "-7"],
            &["HINCRBY", "h", "f1", "1"],
            &["HINCRBY", "h", "n", "abc"],
            &["HSET", "h", "big", "9223372036854775807"],
            &["HINCRBY", "h", "big", "1"],
            &["HINCRBYFLOAT", "h", "fl", "10.5"],
            &["HINCRBYFLOAT", "h", "fl", "0.1"],
            &["HINCRBYFLOAT", "h", "f1", "1"],
            &["HINCRBYFLOAT", "h", "fl", "abc"],
            &["HINCRBYFLOAT", "h", "fl", "inf"],
            &["HINCRBY", "fresh", "n", "abc"],
            &["EXISTS", "fresh"],
            &["TYPE", "h"],
            &["OBJECT", "ENCODING", "h"],
            &["SET", "str", "v"],
            &["HGET", "str", "f"],
            &["HSET", "str", "f", "v"],
            &["GET", "h"],
            &["HRANDFIELD", "nokey"],
            &["HRANDFIELD", "nokey", "3"],
            &["HRANDFIELD", "h", "3", "BOGUS"],
            &["HRANDFIELD", "h", "x"],
            &["HSCAN", "nokey", "0"],
            &["HSCAN", "h", "abc"],
            &["HSCAN", "h", "0", "COUNT", "0"],
            &["HSCAN", "h", "0", "MATCH", "f*"],
            &["HDEL", "h", "f1", "f2", "f3", "f9", "n", "big", "fl"],
            &["EXISTS", "h"],
            &["HSET", "long", "f", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
            &["OBJECT", "ENCODING", "long"],
        ],
    );
}

#[test]
fn hscan_returns_every_field_of_a_big_hash() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    let mut want = BTreeSet::new();
    let mut batch = Vec::new();
    for i in 0..5000 {
        let f = format!("field:{i}");
        batch.extend(common::encode(&[b"HSET", b"big", f.as_bytes(), b"v"]));
        want.insert(f);
    }
    r.send(&batch);
    for _ in 0..5000 {
        r.reply();
    }
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "big"]), "$9\r\nhashtable\r\n");
    let mut got = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let out = s.cli(&["HSCAN", "big", &cursor, "COUNT", "50"]);
        let mut lines = out.lines();
        cursor = lines.next().unwrap_or("0").to_string();
        let rest: Vec<&str> = lines.collect();
        for pair in rest.chunks(2) {
            got.insert(pair[0].to_string());
        }
        calls += 1;
        if cursor == "0" || calls > 1000 {
            break;
        }
    }
    assert_eq!(got, want);
    // HRANDFIELD shapes: distinct fields for a positive count, repeats allowed for negative.
    let pos = s.cli(&["HRANDFIELD", "big", "10"]);
    let distinct: BTreeSet<&str> = pos.lines().collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(s.cli(&["HRANDFIELD", "big", "-20", "WITHVALUES"]).lines().count(), 40);
}

#[test]
fn huge_negative_random_counts_close_the_client_instead_of_the_server() {
    // With an output-buffer limit, as redis-server: the reply is stopped and the client closed.
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        let mut r = srv.raw();
        assert_eq!(r.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1000000 0 0"]), "+OK\r\n");
        r.cmd(&["HSET", "h", "a", "b"]);
        r.cmd(&["SADD", "s", "a"]);
        r.cmd(&["ZADD", "z", "1", "a"]);
        for cmd in [
            &["HRANDFIELD", "h", "-999999999"][..],
            &["SRANDMEMBER", "s", "-999999999"],
            &["ZRANDMEMBER", "z", "-999999999", "WITHSCORES"],
        ] {
            let mut c = srv.raw();
            c.send(&common::encode(&cmd.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
            assert!(c.read_to_end().is_empty(), "{cmd:?} answered");
        }
        // Smaller counts are answered, and the server lives on.
        assert!(r.cmd(&["HRANDFIELD", "h", "-1000"]).starts_with("*1000\r\n"));
    }
    // Without a limit slotcore refuses a reply larger than half the machine's memory the same
    // way (redis-server would run out of memory building it).
    let mut r = s.raw();
    assert_eq!(r.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]), "+OK\r\n");
    let mut c = s.raw();
    c.send(&common::encode(&[b"SRANDMEMBER", b"s", b"-4000000000000"]));
    assert!(c.read_to_end().is_empty());
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
    // Inside a transaction the reply is an error instead.
    r.cmd(&["MULTI"]);
    r.cmd(&["SRANDMEMBER", "s", "-4000000000000"]);
    assert!(r.cmd(&["EXEC"]).contains("reply exceeds the client output buffer limit"));
}
