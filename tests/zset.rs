//! Sorted-set commands compared with a real redis-server, byte for byte (sorted sets are ordered).

mod common;
use common::{assert_same, Raw, Server};

const CASES: &[&[&str]] = &[
    &["ZADD", "z", "1", "a", "2", "b", "3", "c", "1.5", "d"],
    &["ZADD", "z", "NX", "10", "a", "4", "e"],
    &["ZADD", "z", "XX", "CH", "10", "a", "9", "zz"],
    &["ZADD", "z", "GT", "CH", "5", "a", "20", "b"],
    &["ZADD", "z", "LT", "CH", "1", "a"],
    &["ZADD", "z", "INCR", "2.5", "a"],
    &["ZADD", "z", "NX", "INCR", "1", "a"],
    &["ZADD", "z", "NX", "XX", "1", "a"],
    &["ZADD", "z", "GT", "LT", "1", "a"],
    &["ZADD", "z", "INCR", "1", "a", "2", "b"],
    &["ZADD", "z", "1"],
    &["ZADD", "z", "x", "a"],
    &["ZADD", "z", "nan", "a"],
    &["ZADD", "z", "inf", "top", "-inf", "bottom", "0.1", "tenth"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["ZRANGE", "z", "1", "2"],
    &["ZRANGE", "z", "0", "-1", "REV"],
    &["ZRANGE", "z", "(1", "10", "BYSCORE", "WITHSCORES"],
    &["ZRANGE", "z", "10", "(1", "BYSCORE", "REV"],
    &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"],
    &["ZRANGE", "z", "0", "1", "LIMIT", "1", "2"],
    &["ZRANGE", "z", "x", "1"],
    &["ZRANGE", "z", "a", "b", "BYSCORE"],
    &["ZREVRANGE", "z", "0", "2", "WITHSCORES"],
    &["ZRANGEBYSCORE", "z", "1", "3", "WITHSCORES", "LIMIT", "0", "2"],
    &["ZREVRANGEBYSCORE", "z", "+inf", "2"],
    &["ZCARD", "z"],
    &["ZCARD", "nokey"],
    &["ZSCORE", "z", "a"],
    &["ZSCORE", "z", "tenth"],
    &["ZSCORE", "z", "top"],
    &["ZSCORE", "z", "none"],
    &["ZMSCORE", "z", "a", "none", "b"],
    &["ZINCRBY", "z", "1.5", "c"],
    &["ZINCRBY", "z", "x", "c"],
    &["ZINCRBY", "z", "-inf", "top"],
    &["ZRANK", "z", "c"],
    &["ZREVRANK", "z", "c"],
    &["ZRANK", "z", "none"],
    &["ZCOUNT", "z", "(1", "5"],
    &["ZCOUNT", "z", "x", "5"],
    &["ZREM", "z", "a", "none"],
    &["ZPOPMIN", "z"],
    &["ZPOPMAX", "z", "2"],
    &["ZPOPMIN", "z", "-1"],
    &["ZPOPMIN", "nokey"],
    &["ZPOPMIN", "nokey", "2"],
    &["ZREMRANGEBYRANK", "z", "0", "0"],
    &["ZREMRANGEBYSCORE", "z", "(2", "+inf"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["TYPE", "z"],
    &["OBJECT", "ENCODING", "z"],
    &["SET", "str", "v"],
    &["ZADD", "str", "1", "a"],
    &["ZSCORE", "str", "a"],
    &["ZREMRANGEBYRANK", "z", "0", "-1"],
    &["EXISTS", "z"],
];

#[test]
fn zset_commands_match_redis_resp2() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    assert_same(&mut s.raw(), &mut o.raw(), CASES);
}

#[test]
fn zset_commands_match_redis_resp3() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b): (Raw, Raw) = (s.raw(), o.raw());
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    assert_same(&mut a, &mut b, CASES);
}

const MORE: &[&[&str]] = &[
    &["ZADD", "{z}1", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"],
    &["ZRANGEBYLEX", "{z}1", "-", "+"],
    &["ZRANGEBYLEX", "{z}1", "[b", "(d"],
    &["ZRANGEBYLEX", "{z}1", "-", "+", "LIMIT", "1", "2"],
    &["ZREVRANGEBYLEX", "{z}1", "+", "[c"],
    &["ZRANGE", "{z}1", "[b", "+", "BYLEX", "LIMIT", "0", "2"],
    &["ZRANGE", "{z}1", "+", "[c", "BYLEX", "REV"],
    &["ZRANGE", "{z}1", "-", "+", "BYLEX", "WITHSCORES"],
    &["ZRANGEBYLEX", "{z}1", "a", "b"],
    &["ZLEXCOUNT", "{z}1", "[b", "+"],
    &["ZLEXCOUNT", "{z}1", "-", "x"],
    &["ZREMRANGEBYLEX", "{z}1", "[d", "+"],
    &["ZADD", "{z}2", "1", "a", "2", "b", "10", "x"],
    &["SADD", "{z}s", "a", "y"],
    &["ZUNION", "2", "{z}1", "{z}2", "WITHSCORES"],
    &["ZUNION", "3", "{z}1", "{z}2", "{z}s", "WEIGHTS", "1", "2", "3", "AGGREGATE", "MAX", "WITHSCORES"],
    &["ZINTER", "2", "{z}1", "{z}2", "WITHSCORES"],
    &["ZINTER", "2", "{z}2", "{z}s", "AGGREGATE", "MIN", "WITHSCORES"],
    &["ZDIFF", "2", "{z}2", "{z}1", "WITHSCORES"],
    &["ZDIFF", "1", "{z}2", "AGGREGATE", "SUM"],
    &["ZINTERCARD", "2", "{z}1", "{z}2"],
    &["ZINTERCARD", "2", "{z}1", "{z}2", "LIMIT", "1"],
    &["ZUNIONSTORE", "{z}dst", "2", "{z}1", "{z}2"],
    &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"],
    &["ZINTERSTORE", "{z}dst", "2", "{z}1", "{z}nokey"],
    &["EXISTS", "{z}dst"],
    &["ZDIFFSTORE", "{z}dst", "2", "{z}2", "{z}1"],
    &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"],
    &["ZUNION", "0", "{z}1"],
    &["ZUNION", "2", "{z}1"],
    &["ZUNION", "x", "{z}1"],
    &["ZUNIONSTORE", "{z}d", "0", "{z}1"],
    &["ZUNION", "1", "{z}1", "WEIGHTS", "x"],
    &["ZUNION", "1", "{z}1", "AGGREGATE", "FOO"],
    &["ZINTER", "1", "{z}1", "WITHSCORES", "BOGUS"],
    &["ZRANDMEMBER", "{z}nokey"],
    &["ZRANDMEMBER", "{z}1", "x"],
    &["ZRANDMEMBER", "{z}1", "1", "FOO"],
    &["ZSCAN", "{z}2", "0"],
    &["ZSCAN", "{z}2", "0", "MATCH", "a*"],
    &["ZRANGESTORE", "{z}dst", "{z}2", "0", "1"],
    &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"],
    &["ZRANGESTORE", "{z}dst", "{z}2", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"],
    &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"],
    &["ZRANGESTORE", "{z}dst", "{z}1", "[a", "[b", "BYLEX"],
    &["ZRANGESTORE", "{z}dst", "{z}nokey", "0", "-1"],
    &["EXISTS", "{z}dst"],
    &["ZMPOP", "2", "{z}nokey", "{z}2", "MIN", "COUNT", "2"],
    &["ZMPOP", "1", "{z}2", "MAX"],
    &["ZMPOP", "1", "{z}nokey", "MAX"],
    &["ZMPOP", "0", "{z}2", "MAX"],
    &["ZMPOP", "1", "{z}2", "MIDDLE"],
    &["ZMPOP", "1", "{z}2", "MIN", "COUNT", "0"],
    &["SET", "{z}str", "v"],
    &["ZUNION", "2", "{z}1", "{z}str"],
];

#[test]
fn zset_lex_algebra_match_redis() {
    for resp3 in [false, true] {
        let s = Server::slotcore(&[]);
        let o = Server::redis(&[]);
        let (mut a, mut b): (Raw, Raw) = (s.raw(), o.raw());
        if resp3 {
            a.cmd(&["HELLO", "3"]);
            b.cmd(&["HELLO", "3"]);
        }
        assert_same(&mut a, &mut b, MORE);
    }
}

#[test]
fn zset_algebra_across_shards() {
    // "a" and "age" live on different shards of a two-shard node.
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["ZADD", "a", "1", "x", "2", "y"],
            &["ZADD", "age", "5", "y", "6", "z"],
            &["ZUNIONSTORE", "name", "2", "a", "age"],
            &["ZRANGE", "name", "0", "-1", "WITHSCORES"],
            &["ZINTER", "2", "a", "age", "WITHSCORES"],
        ],
    );
}

#[test]
fn zscan_returns_every_member_of_a_big_sorted_set() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..3000 {
        batch.extend(common::encode(&[b"ZADD", b"big", i.to_string().as_bytes(), format!("m{i}").as_bytes()]));
    }
    r.send(&batch);
    for _ in 0..3000 {
        r.reply();
    }
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "big"]), "$8\r\nskiplist\r\n");
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let out = s.cli(&["ZSCAN", "big", &cursor, "COUNT", "100"]);
        let mut lines = out.lines();
        cursor = lines.next().unwrap_or("0").to_string();
        let rest: Vec<&str> = lines.collect();
        for pair in rest.chunks(2) {
            seen.insert(pair[0].to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 3000);
}
