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
