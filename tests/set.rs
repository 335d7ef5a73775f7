//! Set commands compared with a real redis-server: byte for byte where Redis's order is defined
//! (intsets, errors, counts), as sorted member lists where it is not (hash tables).

mod common;
use common::{assert_same, Server};

#[test]
fn set_commands_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    // "a" and "age" live on different shards of a two-shard node.
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SADD", "a", "3", "1", "2", "1"],
            &["SADD", "age", "2", "3", "4"],
            &["SMEMBERS", "a"],
            &["OBJECT", "ENCODING", "a"],
            &["SISMEMBER", "a", "2"],
            &["SISMEMBER", "a", "9"],
            &["SMISMEMBER", "a", "1", "9", "x"],
            &["SCARD", "a"],
            &["SCARD", "nokey"],
            &["SINTER", "a", "age"],
            &["SUNION", "a", "age"],
            &["SDIFF", "a", "age"],
            &["SDIFF", "age", "a", "nokey"],
            &["SINTER", "a", "nokey"],
            &["SINTERCARD", "2", "a", "age"],
            &["SINTERCARD", "2", "a", "age", "LIMIT", "1"],
            &["SINTERCARD", "0", "a"],
            &["SINTERCARD", "3", "a"],
            &["SINTERCARD", "1", "a", "LIMIT", "-1"],
            &["SINTERCARD", "1", "a", "BOGUS", "1"],
            &["SINTERSTORE", "name", "a", "age"],
            &["SMEMBERS", "name"],
            &["SUNIONSTORE", "name", "a", "age"],
            &["SMEMBERS", "name"],
            &["SDIFFSTORE", "name", "a", "a"],
            &["EXISTS", "name"],
            &["SMOVE", "a", "age", "1"],
            &["SMOVE", "a", "age", "9"],
            &["SMEMBERS", "age"],
            &["SREM", "a", "2", "3", "9"],
            &["EXISTS", "a"],
            &["SET", "str", "v"],
            &["SADD", "str", "x"],
            &["SINTER", "age", "str"],
            &["SMOVE", "age", "str", "2"],
            &["SPOP", "age", "-1"],
            &["SPOP", "age", "x"],
            &["SPOP", "age", "1", "2"],
            &["SPOP", "nokey"],
            &["SPOP", "nokey", "2"],
            &["SRANDMEMBER", "nokey"],
            &["SRANDMEMBER", "nokey", "3"],
            &["SRANDMEMBER", "age", "x"],
            &["SRANDMEMBER", "age", "1", "2"],
            &["SSCAN", "age", "0"],
            &["SSCAN", "age", "abc"],
            &["SSCAN", "age", "0", "COUNT", "0"],
            &["SADD", "words", "x", "1"],
            &["OBJECT", "ENCODING", "words"],
            &["SCARD", "words"],
        ],
    );
}

fn sorted(out: String) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn string_sets_and_pops() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    for srv in [&s, &o] {
        srv.cli(&["SADD", "a", "x", "y", "z", "1"]);
        srv.cli(&["SADD", "age", "y", "z", "w"]);
    }
    for cmd in [&["SMEMBERS", "a"][..], &["SINTER", "a", "age"], &["SUNION", "a", "age"], &["SDIFF", "a", "age"]] {
        assert_eq!(sorted(s.cli(cmd)), sorted(o.cli(cmd)), "{cmd:?}");
    }
    // Big sets convert at 513 integers, and SSCAN visits every member once.
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(common::encode(&[b"SADD", b"big", i.to_string().as_bytes()]));
    }
    r.send(&batch);
    for _ in 0..2000 {
        r.reply();
    }
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "big"]), "$9\r\nhashtable\r\n");
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let out = s.cli(&["SSCAN", "big", &cursor, "COUNT", "100"]);
        let mut lines = out.lines();
        cursor = lines.next().unwrap_or("0").to_string();
        seen.extend(lines.map(String::from));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 2000);
    // SPOP with a count removes exactly that many distinct members.
    let popped = s.cli(&["SPOP", "big", "10"]);
    assert_eq!(sorted(popped).iter().collect::<std::collections::BTreeSet<_>>().len(), 10);
    assert_eq!(r.cmd(&["SCARD", "big"]), ":1990\r\n");
    assert_eq!(s.cli(&["SRANDMEMBER", "big", "-30"]).lines().count(), 30);
}

#[test]
fn intset_widths_upgrade_like_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SADD", "w", "5", "-32768", "32767", "0"],
            &["SMEMBERS", "w"],
            &["SADD", "w", "32768", "-2147483648"],
            &["SMEMBERS", "w"],
            &["OBJECT", "ENCODING", "w"],
            &["SADD", "w", "9223372036854775807", "-9223372036854775808", "2147483648"],
            &["SMEMBERS", "w"],
            &["SREM", "w", "9223372036854775807", "-9223372036854775808", "2147483648", "32768"],
            &["SISMEMBER", "w", "-2147483648"],
            &["SISMEMBER", "w", "2147483648"],
            &["SMEMBERS", "w"],
            &["SADD", "w", "7", "-7"],
            &["SMEMBERS", "w"],
            &["OBJECT", "ENCODING", "w"],
            &["SCARD", "w"],
        ],
    );
}
