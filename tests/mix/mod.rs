//! The differential tests' random command streams: a seeded generator of about 200 command
//! forms over a small keyspace (every type, the same names holding every type, multi-key
//! commands, MULTI/EXEC blocks), and the comparison of every reply with a redis-server's.
//! Shared by `tests/differential.rs` and `tests/differential_cluster.rs`.

// Each test binary that includes this uses a part of it.
#![allow(dead_code)]

use crate::common::Raw;
use std::cell::Cell;

thread_local! {
    /// A hash tag put before every key name (cluster tests keep all keys in one slot).
    static TAG: Cell<&'static str> = const { Cell::new("") };
}

/// Puts `tag` before every key name the streams send from now on, on this thread.
pub fn set_key_tag(tag: &'static str) {
    TAG.with(|t| t.set(tag));
}

/// `args` with the tag put before every argument that names one of [`KEYS`].
fn tagged(args: &[String]) -> Vec<String> {
    let tag = TAG.with(|t| t.get());
    if tag.is_empty() {
        return args.to_vec();
    }
    args.iter().map(|a| if KEYS.contains(&a.as_str()) { format!("{tag}{a}") } else { a.clone() }).collect()
}

/// A small deterministic generator (xorshift64*), so a failure names a seed that replays it.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Key names: twelve spread over the slots (so over both shards), used for every type.
pub const KEYS: [&str; 12] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11"];
pub const MEMBERS: [&str; 10] = ["a", "b", "c", "d", "e", "1", "2", "3", "10", "-5"];
pub const NUMBERS: [&str; 8] = ["0", "1", "-1", "7", "42", "3.5", "-0.25", "1e3"];
pub const ENDS: [&str; 2] = ["LEFT", "RIGHT"];

/// One random command: its arguments, and whether its reply is an unordered collection.
pub fn command(rng: &mut Rng) -> (Vec<String>, bool) {
    let k = |rng: &mut Rng| rng.pick(&KEYS).to_string();
    let m = |rng: &mut Rng| rng.pick(&MEMBERS).to_string();
    let n = |rng: &mut Rng| rng.pick(&NUMBERS).to_string();
    let i = |rng: &mut Rng, lo: i64, hi: i64| (lo + rng.below((hi - lo + 1) as usize) as i64).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut unordered = false;
    let pick = rng.below(200);
    if pick >= 120 {
        return third_mix(rng, pick - 120);
    }
    if pick >= 58 {
        return more_commands(rng, pick - 58);
    }
    let c: Vec<String> = match pick {
        // Strings.
        0 => s(&["SET", &k(rng), &m(rng)]),
        1 => s(&["GET", &k(rng)]),
        2 => s(&["APPEND", &k(rng), &m(rng)]),
        3 => s(&["INCRBY", &k(rng), &i(rng, -3, 9)]),
        4 => s(&["INCRBYFLOAT", &k(rng), &n(rng)]),
        5 => s(&["GETDEL", &k(rng)]),
        6 => s(&["SETRANGE", &k(rng), &i(rng, 0, 6), &m(rng)]),
        7 => s(&["MSET", &k(rng), &m(rng), &k(rng), &n(rng), &k(rng), &m(rng)]),
        8 => s(&["MGET", &k(rng), &k(rng), &k(rng)]),
        9 => s(&["MSETNX", &k(rng), &m(rng), &k(rng), &m(rng)]),
        10 => s(&["STRLEN", &k(rng)]),
        11 => s(&["GETRANGE", &k(rng), &i(rng, -4, 3), &i(rng, -2, 8)]),
        // Keys.
        12 => s(&["DEL", &k(rng), &k(rng)]),
        13 => s(&["EXISTS", &k(rng), &k(rng), &k(rng)]),
        14 => s(&["TYPE", &k(rng)]),
        15 => s(&["RENAME", &k(rng), &k(rng)]),
        16 => s(&["RENAMENX", &k(rng), &k(rng)]),
        17 => s(&["COPY", &k(rng), &k(rng), "REPLACE"]),
        18 => s(&["OBJECT", "ENCODING", &k(rng)]),
        19 => s(&["EXPIRE", &k(rng), "1000"]),
        20 => s(&["PERSIST", &k(rng)]),
        21 => s(&["MOVE", &k(rng), "1"]),
        22 => s(&["UNLINK", &k(rng)]),
        // Lists.
        23 => s(&["LPUSH", &k(rng), &m(rng), &m(rng)]),
        24 => s(&["RPUSH", &k(rng), &m(rng)]),
        25 => s(&["LPOP", &k(rng), &i(rng, 1, 3)]),
        26 => s(&["RPOP", &k(rng)]),
        27 => s(&["LRANGE", &k(rng), "0", "-1"]),
        28 => s(&["LMOVE", &k(rng), &k(rng), rng.pick(&ENDS), rng.pick(&ENDS)]),
        29 => s(&["RPOPLPUSH", &k(rng), &k(rng)]),
        30 => s(&["LINSERT", &k(rng), "BEFORE", &m(rng), &m(rng)]),
        31 => s(&["LREM", &k(rng), &i(rng, -2, 2), &m(rng)]),
        32 => s(&["LTRIM", &k(rng), &i(rng, 0, 2), &i(rng, -3, 5)]),
        33 => s(&["LPOS", &k(rng), &m(rng)]),
        34 => s(&["LMPOP", "2", &k(rng), &k(rng), rng.pick(&ENDS), "COUNT", "2"]),
        // Hashes (small: their order is insertion order in both servers).
        35 => s(&["HSET", &k(rng), &m(rng), &n(rng), &m(rng), &m(rng)]),
        36 => s(&["HDEL", &k(rng), &m(rng)]),
        37 => {
            // A hash with a long value is a hash table: its order is the table's.
            unordered = true;
            s(&["HGETALL", &k(rng)])
        }
        38 => s(&["HINCRBY", &k(rng), &m(rng), &i(rng, -5, 5)]),
        39 => s(&["HMGET", &k(rng), &m(rng), &m(rng)]),
        // Sets.
        40 => s(&["SADD", &k(rng), &m(rng), &m(rng), &m(rng)]),
        41 => s(&["SREM", &k(rng), &m(rng)]),
        42 => {
            unordered = true;
            s(&["SMEMBERS", &k(rng)])
        }
        43 => s(&["SINTERSTORE", &k(rng), &k(rng), &k(rng)]),
        44 => s(&["SUNIONSTORE", &k(rng), &k(rng), &k(rng)]),
        45 => s(&["SDIFFSTORE", &k(rng), &k(rng), &k(rng)]),
        46 => s(&["SMOVE", &k(rng), &k(rng), &m(rng)]),
        47 => {
            unordered = true;
            s(&["SUNION", &k(rng), &k(rng)])
        }
        48 => s(&["SINTERCARD", "2", &k(rng), &k(rng)]),
        // Sorted sets.
        49 => s(&["ZADD", &k(rng), &n(rng), &m(rng), &n(rng), &m(rng)]),
        50 => s(&["ZINCRBY", &k(rng), &n(rng), &m(rng)]),
        51 => s(&["ZRANGE", &k(rng), "0", "-1", "WITHSCORES"]),
        52 => s(&["ZUNIONSTORE", &k(rng), "2", &k(rng), &k(rng), "WEIGHTS", "2", "1"]),
        53 => s(&["ZINTERSTORE", &k(rng), "2", &k(rng), &k(rng), "AGGREGATE", "MAX"]),
        54 => s(&["ZDIFFSTORE", &k(rng), "2", &k(rng), &k(rng)]),
        55 => s(&["ZPOPMIN", &k(rng), "2"]),
        56 => s(&["ZRANGESTORE", &k(rng), &k(rng), "0", "2"]),
        // SORT reading other keys (on any shard) by pattern: numeric weights, whose ties
        // Redis breaks by the elements themselves, so the order is defined.
        _ => s(&["SORT", &k(rng), "BY", "w_*", "GET", "#", "GET", "w_*", "LIMIT", "0", "5"]),
    };
    (c, unordered)
}

/// The rest of the mix: bitmaps, HyperLogLogs, geo, streams with explicit ids, blocking pops
/// with short timeouts, node-wide commands, scripts over keys of both shards, and long values
/// that change encodings.
pub fn more_commands(rng: &mut Rng, pick: usize) -> (Vec<String>, bool) {
    let k = |rng: &mut Rng| rng.pick(&KEYS).to_string();
    let m = |rng: &mut Rng| rng.pick(&MEMBERS).to_string();
    let i = |rng: &mut Rng, lo: i64, hi: i64| (lo + rng.below((hi - lo + 1) as usize) as i64).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let long = "x".repeat(70);
    let mut unordered = false;
    let c = match pick {
        0 => s(&["SETBIT", &k(rng), &i(rng, 0, 40), &i(rng, 0, 1)]),
        1 => s(&["BITCOUNT", &k(rng)]),
        2 => s(&["BITOP", rng.pick(&["AND", "OR", "XOR"]), &k(rng), &k(rng), &k(rng)]),
        3 => s(&["BITPOS", &k(rng), &i(rng, 0, 1)]),
        4 => s(&["PFADD", &k(rng), &m(rng), &m(rng)]),
        5 => s(&["PFCOUNT", &k(rng), &k(rng)]),
        6 => s(&["PFMERGE", &k(rng), &k(rng), &k(rng)]),
        7 => s(&["GEOADD", &k(rng), &format!("13.{}", i(rng, 0, 9)), "38.1", &m(rng)]),
        8 => s(&["GEOSEARCHSTORE", &k(rng), &k(rng), "FROMLONLAT", "13.5", "38.1", "BYRADIUS", "200", "km", "ASC"]),
        9 => s(&["XADD", &k(rng), &format!("{}-{}", i(rng, 1, 5), i(rng, 0, 3)), "f", &m(rng)]),
        10 => s(&["XRANGE", &k(rng), "-", "+"]),
        11 => s(&["XDEL", &k(rng), &format!("{}-0", i(rng, 1, 5))]),
        12 => s(&["XLEN", &k(rng)]),
        13 => s(&["BLMOVE", &k(rng), &k(rng), rng.pick(&ENDS), rng.pick(&ENDS), "0.01"]),
        14 => s(&["BLPOP", &k(rng), &k(rng), "0.01"]),
        15 => s(&["BZPOPMIN", &k(rng), &k(rng), "0.01"]),
        16 => s(&["LCS", &k(rng), &k(rng)]),
        17 => s(&["SET", &k(rng), &m(rng), "GET"]),
        18 => s(&["SET", &k(rng), &m(rng), "NX"]),
        19 => s(&["SET", &k(rng), &m(rng), "XX", "KEEPTTL"]),
        20 => s(&["HSET", &k(rng), &m(rng), &long]),
        21 => s(&["RPUSH", &k(rng), &long]),
        22 => s(&["SADD", &k(rng), &long]),
        23 => s(&["ZADD", &k(rng), "1", &long]),
        24 => s(&["ZRANGEBYSCORE", &k(rng), "-inf", "+inf", "WITHSCORES", "LIMIT", "1", "3"]),
        25 => s(&["ZREVRANGE", &k(rng), "0", "-1"]),
        26 => s(&["ZREMRANGEBYRANK", &k(rng), "0", "1"]),
        27 => s(&["ZMSCORE", &k(rng), &m(rng), &m(rng)]),
        28 => s(&["ZUNION", "2", &k(rng), &k(rng), "WITHSCORES"]),
        29 => s(&["ZINTERCARD", "2", &k(rng), &k(rng)]),
        30 => s(&["HSETNX", &k(rng), &m(rng), &m(rng)]),
        31 => s(&["HINCRBYFLOAT", &k(rng), &m(rng), "1.5"]),
        32 => {
            unordered = true;
            s(&["HKEYS", &k(rng)])
        }
        33 => s(&["LSET", &k(rng), &i(rng, -2, 2), &m(rng)]),
        34 => s(&["LINDEX", &k(rng), &i(rng, -2, 2)]),
        35 => s(&["SMISMEMBER", &k(rng), &m(rng), &m(rng)]),
        36 => {
            unordered = true;
            s(&["SINTER", &k(rng), &k(rng)])
        }
        37 => {
            unordered = true;
            s(&["SDIFF", &k(rng), &k(rng)])
        }
        38 => s(&["GETEX", &k(rng), "PERSIST"]),
        39 => s(&["DECRBY", &k(rng), &i(rng, 1, 4)]),
        40 => s(&["DBSIZE"]),
        41 => s(&["SWAPDB", "0", "1"]),
        42 => {
            unordered = true;
            s(&["KEYS", "k*"])
        }
        43 => s(&["TOUCH", &k(rng), &k(rng)]),
        44 => s(&[
            "EVAL",
            "redis.call('rpush', KEYS[1], ARGV[1]) return redis.call('lrange', KEYS[1], 0, -1)",
            "1",
            &k(rng),
            &m(rng),
        ]),
        45 => s(&[
            "EVAL",
            "return {redis.pcall('incr', KEYS[1]), redis.pcall('get', KEYS[2]), redis.pcall('type', KEYS[1])}",
            "2",
            &k(rng),
            &k(rng),
        ]),
        46 => s(&["SINTERCARD", "3", &k(rng), &k(rng), &k(rng), "LIMIT", "2"]),
        47 => s(&["ZDIFF", "2", &k(rng), &k(rng)]),
        48 => s(&["GEODIST", &k(rng), &m(rng), &m(rng), "km"]),
        49 => s(&["XTRIM", &k(rng), "MAXLEN", "2"]),
        50 => s(&["OBJECT", "ENCODING", &k(rng)]),
        51 => s(&["SUBSTR", &k(rng), "0", "2"]),
        52 => s(&["DEBUG", "DIGEST-VALUE", &k(rng), &k(rng)]),
        53 => s(&["SMOVE", &k(rng), &k(rng), &m(rng)]),
        54 => s(&["LMPOP", "3", &k(rng), &k(rng), &k(rng), "RIGHT"]),
        55 => s(&["ZMPOP", "2", &k(rng), &k(rng), "MAX", "COUNT", "2"]),
        56 => s(&["RENAME", &k(rng), &k(rng)]),
        57 => s(&["COPY", &k(rng), &k(rng), "DB", "1"]),
        58 => s(&["EXPIRE", &k(rng), "1000", "NX"]),
        59 if rng.below(10) == 0 => s(&["FLUSHDB"]),
        60 => s(&["GETSET", &k(rng), &m(rng)]),
        _ => s(&["HSTRLEN", &k(rng), &m(rng)]),
    };
    (c, unordered)
}

/// The third part of the mix: the read commands of every type with their options, bulk adds
/// that cross the encodings' size limits, DUMP and RESTORE, stream consumer groups,
/// BITFIELD, SORT's options, and arguments that make the commands fail.
pub fn third_mix(rng: &mut Rng, pick: usize) -> (Vec<String>, bool) {
    let k = |rng: &mut Rng| rng.pick(&KEYS).to_string();
    let m = |rng: &mut Rng| rng.pick(&MEMBERS).to_string();
    let n = |rng: &mut Rng| rng.pick(&NUMBERS).to_string();
    let i = |rng: &mut Rng, lo: i64, hi: i64| (lo + rng.below((hi - lo + 1) as usize) as i64).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let id = |rng: &mut Rng| format!("{}-{}", 1 + rng.below(5), rng.below(4));
    // Forty elements at a time, from a numbered range, so a few of these cross 128 entries.
    let bulk = |rng: &mut Rng, cmd: &str, pairs: bool| {
        let key = rng.pick(&KEYS).to_string();
        let from = rng.below(8) * 40;
        let mut c = vec![cmd.to_string(), key];
        for e in from..from + 40 {
            if pairs {
                c.push(e.to_string());
            }
            c.push(format!("{e}"));
        }
        c
    };
    let mut unordered = false;
    let c = match pick {
        0 => s(&["ZRANGE", &k(rng), "[a", "(z", "BYLEX", "LIMIT", "0", "3"]),
        1 => s(&["ZRANGE", &k(rng), "+inf", "-inf", "BYSCORE", "REV", "WITHSCORES"]),
        2 => s(&["ZRANK", &k(rng), &m(rng)]),
        3 => s(&["ZREVRANK", &k(rng), &m(rng)]),
        4 => s(&["ZCOUNT", &k(rng), "(0", "+inf"]),
        5 => s(&["ZLEXCOUNT", &k(rng), "-", "+"]),
        6 => s(&["ZSCORE", &k(rng), &m(rng)]),
        7 => s(&["ZREM", &k(rng), &m(rng), &m(rng)]),
        8 => s(&["ZREMRANGEBYSCORE", &k(rng), "-inf", "(1"]),
        9 => s(&["ZPOPMAX", &k(rng)]),
        10 => s(&["ZINTER", "2", &k(rng), &k(rng), "WITHSCORES"]),
        11 => s(&["ZADD", &k(rng), "GT", "CH", &n(rng), &m(rng)]),
        12 => s(&["ZADD", &k(rng), "INCR", &n(rng), &m(rng)]),
        13 => s(&["ZCARD", &k(rng)]),
        14 => s(&["LLEN", &k(rng)]),
        15 => s(&["LPUSHX", &k(rng), &m(rng)]),
        16 => s(&["RPUSHX", &k(rng), &m(rng), &m(rng)]),
        17 => s(&["LPOS", &k(rng), &m(rng), "RANK", "-1", "COUNT", "0"]),
        18 => s(&["HLEN", &k(rng)]),
        19 => s(&["HEXISTS", &k(rng), &m(rng)]),
        20 => {
            unordered = true;
            s(&["HVALS", &k(rng)])
        }
        21 => s(&["HGET", &k(rng), &m(rng)]),
        22 => s(&["SCARD", &k(rng)]),
        23 => s(&["SISMEMBER", &k(rng), &m(rng)]),
        24 => s(&["SETNX", &k(rng), &m(rng)]),
        25 => s(&["SETEX", &k(rng), "100000", &m(rng)]),
        26 => s(&["INCR", &k(rng)]),
        27 => s(&["DECR", &k(rng)]),
        28 => s(&["GETBIT", &k(rng), &i(rng, 0, 40)]),
        29 => s(&["BITFIELD", &k(rng), "INCRBY", "i5", &i(rng, 0, 20), &i(rng, -20, 20), "GET", "u4", "0"]),
        30 => s(&["BITFIELD", &k(rng), "OVERFLOW", rng.pick(&["SAT", "FAIL", "WRAP"]), "INCRBY", "u8", "8", "200"]),
        31 => s(&["BITCOUNT", &k(rng), "1", "-1", "BIT"]),
        32 => s(&["BITPOS", &k(rng), "1", "0", "-1", "BIT"]),
        // DUMP's bytes are not compared: a set or hash in a hash table is dumped in its table's
        // order, which Redis's seeded hash varies between any two processes.
        33 => s(&[
            "EVAL",
            "local d = redis.call('dump', KEYS[1]) if not d then return 0 end \
             redis.call('restore', KEYS[1], 0, d, 'REPLACE') return redis.call('object', 'encoding', KEYS[1])",
            "1",
            &k(rng),
        ]),
        34 => s(&[
            "EVAL",
            "local d = redis.call('dump', KEYS[1]) if not d then return 0 end \
             return redis.call('restore', KEYS[2], 0, d, 'REPLACE')",
            "2",
            &k(rng),
            &k(rng),
        ]),
        35 => s(&["SORT", &k(rng), "ALPHA", "DESC", "LIMIT", "0", "4"]),
        36 => s(&["SORT", &k(rng), "STORE", &k(rng)]),
        37 => s(&["SORT_RO", &k(rng), "ALPHA"]),
        38 => bulk(rng, "RPUSH", false),
        39 => bulk(rng, "HSET", true),
        40 => bulk(rng, "SADD", false),
        41 => bulk(rng, "ZADD", true),
        42 => s(&["XADD", &k(rng), "MAXLEN", "3", &id(rng), "f", &m(rng)]),
        43 => s(&["XGROUP", "CREATE", &k(rng), "g", "0", "MKSTREAM"]),
        44 => s(&["XREADGROUP", "GROUP", "g", rng.pick(&["c", "d"]), "COUNT", "2", "STREAMS", &k(rng), ">"]),
        45 => s(&["XACK", &k(rng), "g", &id(rng)]),
        46 => s(&["XPENDING", &k(rng), "g"]),
        47 => s(&["XREVRANGE", &k(rng), "+", "-", "COUNT", "2"]),
        48 => s(&["XREAD", "COUNT", "2", "STREAMS", &k(rng), &k(rng), "0", "2-0"]),
        49 => s(&["XINFO", "STREAM", &k(rng)]),
        50 => s(&["XSETID", &k(rng), "9-9"]),
        51 => s(&["XAUTOCLAIM", &k(rng), "g", "e", "0", "0-0", "COUNT", "2", "JUSTID"]),
        52 => s(&["XCLAIM", &k(rng), "g", "f", "0", &id(rng), "JUSTID"]),
        53 => s(&["XGROUP", "DELCONSUMER", &k(rng), "g", "c"]),
        54 => s(&["XINFO", "GROUPS", &k(rng)]),
        // Far from the other expiries (100,000 s), so the milliseconds between the two
        // servers' calls never decide GT.
        55 => s(&["PEXPIRE", &k(rng), rng.pick(&["50000000", "200000000"]), "GT"]),
        56 => s(&["GEOPOS", &k(rng), &m(rng), &m(rng)]),
        57 => s(&["GEOSEARCH", &k(rng), "FROMMEMBER", &m(rng), "BYBOX", "400", "400", "km", "ASC", "WITHDIST"]),
        58 => s(&["GEOHASH", &k(rng), &m(rng)]),
        59 => s(&["ZRANGEBYLEX", &k(rng), "-", "+", "LIMIT", "1", "2"]),
        60 => s(&["ZREVRANGEBYSCORE", &k(rng), "+inf", "-inf", "LIMIT", "0", "2"]),
        61 => s(&["ZUNIONSTORE", &k(rng), "3", &k(rng), &k(rng), &k(rng), "AGGREGATE", "MIN"]),
        62 => s(&["INCRBYFLOAT", &k(rng), "1.7e308"]),
        63 => s(&["APPEND", &k(rng), &"y".repeat(50)]),
        64 => s(&["SETRANGE", &k(rng), "60", "z"]),
        65 => s(&["LINSERT", &k(rng), "AFTER", &m(rng), &"w".repeat(70)]),
        66 => {
            let key = k(rng);
            s(&["RPOPLPUSH", &key, &key])
        }
        67 => s(&["BLMPOP", "0.01", "2", &k(rng), &k(rng), "LEFT", "COUNT", "3"]),
        68 => s(&["BZMPOP", "0.01", "2", &k(rng), &k(rng), "MIN"]),
        69 => s(&["GETEX", &k(rng), "EX", "100000"]),
        70 => s(&["LRANGE", &k(rng), "-3", "-1"]),
        71 => {
            unordered = true;
            s(&["SDIFF", &k(rng), &k(rng), &k(rng)])
        }
        72 => s(&["HMSET", &k(rng), &m(rng), &n(rng)]),
        73 => s(&["ZADD", &k(rng), "NX", "XX", "1", &m(rng)]),
        74 => s(&["SET", &k(rng), &m(rng), "EX", "0"]),
        75 => s(&["LPOP", &k(rng), "-1"]),
        76 => s(&["OBJECT", "ENCODING", &k(rng)]),
        77 => s(&["ZRANGESTORE", &k(rng), &k(rng), "(1", "+inf", "BYSCORE", "LIMIT", "0", "2"]),
        _ => s(&["SINTERSTORE", &k(rng), &k(rng)]),
    };
    (c, unordered)
}

/// A RESP reply parsed just enough to sort an array's elements.
pub fn elements(raw: &str) -> Option<Vec<String>> {
    let mut lines = raw.split("\r\n");
    let head = lines.next()?;
    // A flat array, or in RESP3 a set or a map (its keys and values in a row).
    let n: usize = match head.split_at_checked(1)? {
        ("*" | "~", n) => n.parse().ok()?,
        ("%", n) => 2 * n.parse::<usize>().ok()?,
        _ => return None,
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = lines.next()?;
        let body = if len.starts_with('$') { lines.next()? } else { "" };
        out.push(format!("{len}\r\n{body}"));
    }
    Some(out)
}

pub fn normalized(raw: String, unordered: bool) -> String {
    match (unordered, elements(&raw)) {
        (true, Some(mut e)) => {
            e.sort();
            e.join("|")
        }
        _ => raw,
    }
}

/// Whether a lex range over `key` has no defined answer: its members' scores differ, and Redis
/// then answers by where its skiplist search lands, which depends on the nodes' random levels
/// (two runs of redis-server differ).
pub fn lex_range_undefined(theirs: &mut Raw, key: &str) -> bool {
    // Asked through a script: one integer in RESP2 and RESP3 alike.
    const MIXED: &str = "if redis.call('type', KEYS[1]).ok ~= 'zset' then return 0 end \
        local t = redis.call('zrange', KEYS[1], 0, -1, 'withscores') \
        for i = 4, #t, 2 do if t[i] ~= t[2] then return 1 end end return 0";
    theirs.cmd(&["EVAL", MIXED, "1", key]) == ":1\r\n"
}

/// Sends one command to both servers and asserts the replies agree.
pub fn both(ours: &mut Raw, theirs: &mut Raw, args: &[String], unordered: bool, history: &[String]) {
    let args = &tagged(args);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if a.contains(&"BYLEX") && a.contains(&"[a") {
        // Inside MULTI the key cannot be looked at first: left out.
        let in_multi = history.iter().rev().find(|h| *h == "MULTI" || *h == "EXEC").is_some_and(|h| h == "MULTI");
        // The key follows ZRANGE, also when a script calls it.
        let key = a.iter().position(|&x| x == "ZRANGE").map_or(a[1], |i| a[i + 1]);
        if in_multi || lex_range_undefined(theirs, key) {
            return;
        }
    }
    let got = normalized(ours.cmd(&a), unordered);
    let want = normalized(theirs.cmd(&a), unordered);
    if got != want {
        // The whole stream, to replay by hand: `redis-cli < target/differential-failure.txt`.
        let mut all = history.join("\n");
        all.push('\n');
        all.push_str(&args.join(" "));
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/target/differential-failure.txt"), all).ok();
        let start = history.len().saturating_sub(15);
        panic!(
            "{:?}\n  slotcore:     {got:?}\n  redis-server: {want:?}\n  last commands before it:\n    {}",
            args,
            history[start..].join("\n    ")
        );
    }
}

pub fn digests(r: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    for db in ["1", "0"] {
        r.cmd(&["SELECT", db]);
        out.push(r.cmd(&["DEBUG", "DIGEST"]));
    }
    out
}

/// Every key's type, encoding and value digest, with its milliseconds to live, per database
/// (what DEBUG DIGEST leaves out: encodings and the expiry's value).
pub fn key_states(r: &mut Raw) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for db in ["1", "0"] {
        // Cluster mode has database 0 only.
        if !r.cmd(&["SELECT", db]).starts_with('+') {
            continue;
        }
        let mut keys = elements(&r.cmd(&["KEYS", "*"])).unwrap_or_default();
        keys.sort();
        for k in keys {
            let k = k.split("\r\n").nth(1).unwrap_or("").to_string();
            let ttl: i64 = r.cmd(&["PTTL", &k]).trim().trim_start_matches(':').parse().unwrap_or(-3);
            let state = format!(
                "db{db} {k} {} {} {}",
                r.cmd(&["TYPE", &k]).trim(),
                r.cmd(&["OBJECT", "ENCODING", &k]).trim().replace("\r\n", " "),
                r.cmd(&["DEBUG", "DIGEST-VALUE", &k]).trim().replace("\r\n", " ")
            );
            out.push((state, ttl));
        }
    }
    out
}

/// Asserts two [`key_states`] agree, the times to live within 5 seconds (the two servers'
/// clocks run apart between the writes and the checks).
pub fn assert_same_keys(ours: Vec<(String, i64)>, theirs: Vec<(String, i64)>, what: &str) {
    let close = |a: i64, b: i64| if a < 0 || b < 0 { a == b } else { (a - b).abs() <= 5000 };
    let same = ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| a.0 == b.0 && close(a.1, b.1));
    assert!(same, "{what}\n  slotcore:     {ours:?}\n  redis-server: {theirs:?}");
}

/// The command run by a script with no declared keys (`redis.pcall`): its reply goes through
/// Lua and back, an error comes back as an error table, blocking commands do not block, and
/// commands scripts may not call are refused.
fn scripted(args: Vec<String>) -> Vec<String> {
    let mut out = vec!["EVAL".to_string(), "return redis.pcall(unpack(ARGV))".to_string(), "0".to_string()];
    out.extend(args);
    out
}

pub fn run_seed(seed: u64, ours: &mut Raw, theirs: &mut Raw, steps: usize) {
    run_seed_with(seed, ours, theirs, steps, &mut |_| {});
}

/// [`run_seed`], calling `after` with the stream so far after every command both servers
/// answered (the last one is the command just run): a test comparing what other connections
/// received (notifications, invalidations) looks there after each command.
pub fn run_seed_with(seed: u64, ours: &mut Raw, theirs: &mut Raw, steps: usize, after: &mut dyn FnMut(&[String])) {
    let mut rng = Rng(seed);
    let mut history = Vec::new();
    // The weights SORT ... BY w_* reads (never written by the random commands).
    let weights: Vec<String> =
        MEMBERS.iter().enumerate().flat_map(|(j, m)| [format!("w_{m}"), (j * 7 % 10).to_string()]).collect();
    let mset: Vec<String> = std::iter::once("MSET".to_string()).chain(weights).collect();
    both(ours, theirs, &mset, false, &history);
    history.push(mset.join(" "));
    after(&history);
    for _ in 0..steps {
        if rng.below(12) == 0 {
            // A transaction of a few commands.
            let mut block = vec![(vec!["MULTI".to_string()], false)];
            while block.len() < 2 + rng.below(4) {
                // EXEC's array is compared as it comes: no unordered replies inside.
                let c = command(&mut rng);
                if !c.1 {
                    block.push(c);
                }
            }
            block.push((vec!["EXEC".to_string()], false));
            for (args, unordered) in block {
                both(ours, theirs, &args, unordered, &history);
                history.push(tagged(&args).join(" "));
                after(&history);
            }
            continue;
        }
        let (mut args, unordered) = command(&mut rng);
        if rng.below(10) == 0 && !args[0].starts_with("EVAL") {
            args = scripted(args);
        }
        both(ours, theirs, &args, unordered, &history);
        history.push(tagged(&args).join(" "));
        after(&history);
    }
    assert_eq!(digests(ours), digests(theirs), "DEBUG DIGEST after seed {seed}");
}
