//! Keyspace notifications and the dirty counter against a real redis-server 7.0: the same
//! script runs on both, side by side; after every command the `__keyspace@*__` and
//! `__keyevent@*__` messages a PSUBSCRIBE client received, the reply, and the change of INFO
//! `rdb_changes_since_last_save` must be identical. slotcore runs with 3 shards, so the script's
//! keys live on different shards and its multi-key commands span them.

mod common;

use common::{Raw, Server, WAIT};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A subscriber reading pub/sub frames as (channel, message) pairs.
struct Sub {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Sub {
    fn connect(port: u16, patterns: &[&str]) -> Sub {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(WAIT)).ok();
        let mut sub = Sub { r: BufReader::new(s.try_clone().expect("clone")), w: s };
        let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
        args.extend(patterns.iter().map(|p| p.as_bytes()));
        sub.w.write_all(&common::encode(&args)).expect("write");
        for _ in patterns {
            sub.frame();
        }
        sub.w.write_all(&common::encode(&[b"SUBSCRIBE", b"marker"])).expect("write");
        sub.frame();
        sub
    }

    /// The next frame's strings.
    fn frame(&mut self) -> Vec<String> {
        self.try_frame().expect("pub/sub frame")
    }

    /// The next frame's strings, None when none came within the read timeout.
    fn try_frame(&mut self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        common::read_reply(&mut self.r, &mut out).ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let mut parts = Vec::new();
        let mut lines = text.split("\r\n");
        while let Some(l) = lines.next() {
            if l.starts_with('$') {
                parts.push(lines.next().unwrap_or("").to_string());
            } else if let Some(n) = l.strip_prefix(':') {
                parts.push(n.to_string());
            }
        }
        Some(parts)
    }

    /// The next message as (channel, payload).
    fn message(&mut self) -> (String, String) {
        let f = self.frame();
        match f.first().map(String::as_str) {
            Some("pmessage") if f.len() == 4 => (f[2].clone(), f[3].clone()),
            Some("message") if f.len() == 3 => (f[1].clone(), f[2].clone()),
            _ => panic!("unexpected pub/sub frame {f:?}"),
        }
    }

    /// Messages up to the marker `tag` (excluded).
    fn until_marker(&mut self, tag: &str) -> Vec<(String, String)> {
        let mut got = Vec::new();
        loop {
            let m = self.message();
            if m.0 == "marker" {
                assert_eq!(m.1, tag, "markers out of order");
                return got;
            }
            got.push(m);
        }
    }
}

fn info_field(info: &mut Raw, section: &str, field: &str) -> i64 {
    let text = info.cmd(&["INFO", section]);
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {text:?}"))
}

/// INFO's dirty counter, keyspace_hits and keyspace_misses.
fn counters(info: &mut Raw) -> [i64; 3] {
    [
        info_field(info, "persistence", "rdb_changes_since_last_save"),
        info_field(info, "stats", "keyspace_hits"),
        info_field(info, "stats", "keyspace_misses"),
    ]
}

/// The script: every command family slotcore has, with no-op writes next to real ones.
/// `SLEEP n` pauses n ms (lets a short ttl pass; active expiry is off on both servers);
/// `DUMPRESTORE src dst ttl [opts]` RESTOREs each server's own DUMP of `src`.
const SCRIPT: &[&[&str]] = &[
    // strings
    &["SET", "s1", "v"],
    &["SET", "s1", "v2", "EX", "100"],
    &["SET", "s1", "v3", "NX"],
    &["SET", "s1", "v4", "XX", "GET"],
    &["SET", "s1", "v5", "KEEPTTL"],
    &["SETNX", "s1", "x"],
    &["SETNX", "s2", "x"],
    &["SETEX", "s3", "100", "v"],
    &["PSETEX", "s4", "100000", "v"],
    &["GETSET", "s2", "y"],
    &["MSET", "m1", "a", "m2", "b", "m3", "c"],
    &["MSETNX", "m1", "x", "m9", "y"],
    &["MSETNX", "n1", "x", "n2", "y"],
    &["GETDEL", "s4"],
    &["GETDEL", "nokey"],
    &["GETEX", "s3", "PERSIST"],
    &["GETEX", "s3", "PERSIST"],
    &["GETEX", "s3", "EX", "100"],
    &["GETEX", "s3"],
    &["INCR", "cnt"],
    &["INCRBY", "cnt", "5"],
    &["DECR", "cnt"],
    &["DECRBY", "cnt", "2"],
    &["INCRBYFLOAT", "flt", "1.5"],
    &["APPEND", "s2", "zz"],
    &["APPEND", "app", "zz"],
    &["SETRANGE", "s2", "1", "Q"],
    &["SETRANGE", "s2", "1", ""],
    &["SETRANGE", "nosr", "0", ""],
    &["SETBIT", "bits", "7", "1"],
    &["SETBIT", "bits", "7", "1"],
    &["SETBIT", "bits", "100", "0"],
    &["BITFIELD", "bf", "SET", "u8", "0", "255"],
    &["BITFIELD", "bf", "SET", "u8", "0", "255"],
    &["BITFIELD", "bf", "INCRBY", "u8", "8", "0"],
    &["BITFIELD", "bf", "GET", "u8", "0"],
    &["BITOP", "AND", "bop", "s1", "s2"],
    &["BITOP", "AND", "bop", "nokey1", "nokey2"],
    &["BITOP", "AND", "bop2", "nokey1"],
    &["PFADD", "hll", "a", "b", "c"],
    &["PFADD", "hll", "a"],
    &["PFCOUNT", "hll"],
    &["PFCOUNT", "hll"],
    &["PFMERGE", "hll2", "hll"],
    // generic
    &["EXPIRE", "s1", "100"],
    &["EXPIRE", "s1", "100", "NX"],
    &["PEXPIRE", "s1", "100000"],
    &["EXPIREAT", "s1", "9999999999"],
    &["PERSIST", "s1"],
    &["PERSIST", "s1"],
    &["EXPIRE", "m3", "-1"],
    &["DEL", "m1", "m2", "nokey"],
    &["UNLINK", "n1"],
    &["RENAME", "n2", "r1"],
    &["RENAME", "r1", "r1"],
    &["RENAMENX", "s2", "r1"],
    &["RENAMENX", "s2", "r2"],
    &["COPY", "r2", "c1"],
    &["COPY", "r2", "c1"],
    &["COPY", "r2", "c1", "REPLACE"],
    &["COPY", "r2", "c1", "DB", "1"],
    &["MOVE", "c1", "2"],
    &["MOVE", "c1", "2"],
    &["SELECT", "2"],
    &["DEL", "c1"],
    &["SELECT", "0"],
    &["DUMPRESTORE", "r2", "rs1", "0"],
    &["DUMPRESTORE", "r2", "rs1", "0", "REPLACE"],
    &["DUMPRESTORE", "r2", "rs2", "100000"],
    &["SET", "ex1", "v", "PX", "50"],
    &["SLEEP", "120"],
    &["GET", "ex1"],
    // lists
    &["LPUSH", "l1", "a", "b", "c"],
    &["RPUSH", "l1", "d"],
    &["LPUSHX", "l1", "e"],
    &["LPUSHX", "nol", "e"],
    &["RPUSHX", "l1", "f"],
    &["LINSERT", "l1", "BEFORE", "a", "x"],
    &["LINSERT", "l1", "BEFORE", "zz", "x"],
    &["LSET", "l1", "0", "y"],
    &["LPOP", "l1"],
    &["RPOP", "l1", "2"],
    &["LREM", "l1", "0", "x"],
    &["LREM", "l1", "0", "nomatch"],
    &["LTRIM", "l1", "0", "-1"],
    &["LTRIM", "nol", "0", "-1"],
    &["LTRIM", "l1", "0", "0"],
    &["LMOVE", "l1", "l2", "LEFT", "RIGHT"],
    &["RPUSH", "l1", "a", "b"],
    &["RPOPLPUSH", "l1", "l2"],
    &["LMOVE", "l2", "l2", "LEFT", "RIGHT"],
    &["LMPOP", "2", "nol", "l2", "LEFT", "COUNT", "10"],
    &["BLPOP", "l1", "0"],
    &["BRPOP", "nol2", "0.01"],
    &["RPUSH", "l3", "a", "b", "c"],
    &["BLMPOP", "0", "1", "l3", "RIGHT", "COUNT", "2"],
    &["BLMOVE", "l3", "l4", "LEFT", "LEFT", "0"],
    // sets
    &["SADD", "st", "a", "b", "c"],
    &["SADD", "st", "a"],
    &["SREM", "st", "a"],
    &["SREM", "st", "zz"],
    &["SADD", "one", "x"],
    &["SPOP", "one"],
    &["SADD", "st2", "a", "b", "c", "d"],
    &["SPOP", "st2", "10"],
    &["SPOP", "st2", "0"],
    &["SADD", "s5", "a", "b"],
    &["SMOVE", "s5", "s6", "a"],
    &["SMOVE", "s5", "s6", "zz"],
    &["SADD", "s6", "b"],
    &["SMOVE", "s5", "s6", "b"],
    &["SMOVE", "s6", "s6", "a"],
    &["SINTERSTORE", "si", "s6", "s6"],
    &["SUNIONSTORE", "su", "s6", "nokey"],
    &["SDIFFSTORE", "sd", "s6", "s6"],
    &["SDIFFSTORE", "si", "s6", "s6"],
    // hashes
    &["HSET", "h", "f", "v", "g", "w"],
    &["HSET", "h", "f", "v"],
    &["HSETNX", "h", "f", "x"],
    &["HSETNX", "h", "n", "x"],
    &["HMSET", "h", "a", "1"],
    &["HINCRBY", "h", "a", "2"],
    &["HINCRBYFLOAT", "h", "a", "1.5"],
    &["HDEL", "h", "nof"],
    &["HDEL", "h", "f", "g", "n", "a"],
    // sorted sets
    &["ZADD", "z", "1", "a", "2", "b"],
    &["ZADD", "z", "1", "a"],
    &["ZADD", "z", "CH", "5", "a"],
    &["ZADD", "z", "NX", "9", "a"],
    &["ZADD", "z", "INCR", "1", "b"],
    &["ZINCRBY", "z", "1", "c"],
    &["ZREM", "z", "nomem"],
    &["ZADD", "z", "3", "d", "4", "e", "5", "f"],
    &["ZREMRANGEBYRANK", "z", "0", "0"],
    &["ZREMRANGEBYSCORE", "z", "100", "200"],
    &["ZREMRANGEBYSCORE", "z", "3", "3"],
    &["ZADD", "zl", "0", "a", "0", "b", "0", "c"],
    &["ZREMRANGEBYLEX", "zl", "[a", "[a"],
    &["ZPOPMIN", "z"],
    &["ZPOPMAX", "z", "2"],
    &["ZMPOP", "1", "z", "MIN", "COUNT", "10"],
    &["ZADD", "z2", "1", "x", "2", "y"],
    &["ZUNIONSTORE", "zu", "2", "z2", "nokey"],
    &["ZINTERSTORE", "zi", "2", "z2", "nokey"],
    &["ZDIFFSTORE", "zu", "1", "nokey"],
    &["ZRANGESTORE", "zr", "z2", "0", "-1"],
    &["BZPOPMIN", "z2", "0"],
    &["BZMPOP", "0", "1", "z2", "MAX"],
    // sort
    &["RPUSH", "sl", "3", "1", "2"],
    &["SORT", "sl", "STORE", "sorted"],
    &["SORT", "sl"],
    &["SORT", "nokey", "STORE", "sorted"],
    // transactions
    &["MULTI"],
    &["SET", "t", "1"],
    &["INCR", "t"],
    &["LPUSH", "tl", "a"],
    &["EXEC"],
    // other databases
    &["SELECT", "1"],
    &["SET", "k1", "v"],
    &["SADD", "k2", "m"],
    &["SELECT", "0"],
    &["SWAPDB", "0", "1"],
    &["FLUSHDB"],
    &["SET", "after", "flush"],
    &["FLUSHALL"],
];

/// Read commands of every family on present, missing and wrongly typed keys: `keymiss`
/// events (class `m`) and INFO keyspace_hits / keyspace_misses, where Redis's `lookupKeyRead`
/// counts (write lookups count nothing; OBJECT and MEMORY USAGE raise no `keymiss`).
const READS: &[&[&str]] = &[
    &["RPUSH", "l", "a", "b", "c"],
    &["SET", "s", "v"],
    &["SADD", "st", "1", "2"],
    &["ZADD", "z", "1", "a", "2", "b"],
    &["HSET", "h", "f", "v"],
    &["XADD", "x", "1-1", "f", "v"],
    &["XGROUP", "CREATE", "x", "g", "0"],
    &["PFADD", "hll", "a"],
    &["GEOADD", "geo", "13.36", "38.11", "p"],
    &["GET", "s"],
    &["GET", "nx"],
    &["GET", "l"],
    &["MGET", "s", "nx", "l", "s"],
    &["GETEX", "nx"],
    &["GETDEL", "nx"],
    &["SET", "s", "v2", "GET"],
    &["GETSET", "nx2", "v"],
    &["STRLEN", "nx"],
    &["GETRANGE", "s", "0", "1"],
    &["SUBSTR", "nx", "0", "1"],
    &["LCS", "s", "nx"],
    &["LCS", "l", "s"],
    &["EXISTS", "s", "nx", "nx"],
    &["TYPE", "nx"],
    &["TTL", "nx"],
    &["PTTL", "s"],
    &["EXPIRETIME", "nx"],
    &["TOUCH", "s", "nx"],
    &["OBJECT", "ENCODING", "nx"],
    &["OBJECT", "ENCODING", "s"],
    &["MEMORY", "USAGE", "s"],
    &["DUMP", "nx"],
    &["COPY", "nx", "c"],
    &["COPY", "s", "c"],
    &["INCR", "cnt"],
    &["APPEND", "nx3", "a"],
    &["LRANGE", "l", "0", "-1"],
    &["LRANGE", "nx", "0", "-1"],
    &["LRANGE", "s", "0", "-1"],
    &["LLEN", "nx"],
    &["LINDEX", "l", "0"],
    &["LPOS", "l", "a"],
    &["LPUSH", "nx4", "a"],
    &["LPOP", "nx5"],
    &["LMOVE", "nx", "l2", "LEFT", "LEFT"],
    &["SMEMBERS", "st"],
    &["SMEMBERS", "nx"],
    &["SISMEMBER", "st", "1"],
    &["SMISMEMBER", "nx", "1"],
    &["SCARD", "nx"],
    &["SRANDMEMBER", "st"],
    &["SINTER", "st", "nx"],
    &["SUNION", "nx", "st"],
    &["SDIFF", "st", "nx"],
    &["SINTERCARD", "2", "st", "nx"],
    &["SINTERSTORE", "d", "st", "nx"],
    &["SSCAN", "st", "0"],
    &["SREM", "nx", "a"],
    &["ZRANGE", "z", "0", "-1"],
    &["ZRANGE", "nx", "0", "-1", "BYSCORE"],
    &["ZRANGEBYLEX", "z", "-", "+"],
    &["ZREVRANGE", "nx", "0", "-1"],
    &["ZSCORE", "nx", "a"],
    &["ZMSCORE", "z", "a", "b"],
    &["ZCARD", "z"],
    &["ZCOUNT", "nx", "0", "1"],
    &["ZLEXCOUNT", "z", "-", "+"],
    &["ZRANK", "z", "a"],
    &["ZRANDMEMBER", "z"],
    &["ZSCAN", "nx", "0"],
    &["ZUNION", "2", "z", "nx"],
    &["ZINTERCARD", "2", "z", "nx"],
    &["ZDIFFSTORE", "d2", "2", "z", "nx"],
    &["ZRANGESTORE", "d3", "z", "0", "-1"],
    &["ZREM", "nx", "a"],
    &["HGET", "h", "f"],
    &["HGET", "h", "nof"],
    &["HGET", "nx", "f"],
    &["HMGET", "h", "f", "g"],
    &["HLEN", "nx"],
    &["HSTRLEN", "h", "f"],
    &["HEXISTS", "nx", "f"],
    &["HGETALL", "h"],
    &["HKEYS", "nx"],
    &["HVALS", "h"],
    &["HRANDFIELD", "h"],
    &["HSCAN", "h", "0"],
    &["HDEL", "nx", "f"],
    &["XRANGE", "x", "-", "+"],
    &["XREVRANGE", "nx", "+", "-"],
    &["XLEN", "nx"],
    &["XREAD", "STREAMS", "x", "nx", "0", "0"],
    &["XINFO", "STREAM", "x"],
    &["XPENDING", "x", "g"],
    &["XACK", "x", "g", "1-1"],
    &["GETBIT", "nx", "1"],
    &["BITCOUNT", "s"],
    &["BITPOS", "nx", "1"],
    &["BITOP", "OR", "d4", "s", "nx"],
    &["BITFIELD_RO", "s", "GET", "u8", "0"],
    &["BITFIELD", "nx", "GET", "u8", "0"],
    &["BITFIELD", "nx6", "SET", "u8", "0", "1"],
    &["PFCOUNT", "hll", "nx"],
    &["PFMERGE", "d5", "hll", "nx"],
    &["GEOPOS", "geo", "p"],
    &["GEODIST", "nx", "a", "b"],
    &["GEOHASH", "geo", "p"],
    &["GEOSEARCH", "nx", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    &["SORT", "l", "ALPHA"],
    &["SORT", "l", "BY", "w_*", "GET", "o_*", "ALPHA"],
    &["SORT", "nx"],
    &["SET", "ex1", "v", "PX", "30"],
    &["SLEEP", "60"],
    &["GET", "ex1"],
];

#[test]
fn keyspace_events_and_dirty_counts_match_redis() {
    common::use_ports(8400);
    same_as_redis("KEA", SCRIPT);
}

/// With the `n` class too (`new` before the event of the command that created the key).
#[test]
fn new_key_events_match_redis() {
    common::use_ports(8415);
    same_as_redis("KEAn", SCRIPT);
}

/// `keymiss` events and the keyspace hit/miss counters of read lookups.
#[test]
fn keymiss_events_and_hit_counts_match_redis() {
    common::use_ports(8445);
    same_as_redis("KEAm", READS);
}

fn same_as_redis(classes: &str, script: &[&[&str]]) {
    let flags = ["--notify-keyspace-events", classes];
    let redis = Server::redis(&["--enable-debug-command", "yes", flags[0], flags[1]]);
    // No save points, as the redis-server oracle (FLUSHALL would save and reset the counter).
    let slot = Server::slotcore(&["--shards", "3", "--enable-debug-command", "yes", "--save", "", flags[0], flags[1]]);
    let servers = [&redis, &slot];
    let mut cmd: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    let mut info: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    let mut subs: Vec<Sub> = servers.iter().map(|s| Sub::connect(s.port, &["__key*__:*"])).collect();
    let mut publisher: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    for c in cmd.iter_mut() {
        assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    }
    let mut last: Vec<[i64; 3]> = info.iter_mut().map(counters).collect();
    let mut in_multi = false;
    let mut diffs = Vec::new();
    for (i, c) in script.iter().enumerate() {
        if c[0] == "SLEEP" {
            std::thread::sleep(Duration::from_millis(c[1].parse().unwrap_or(0)));
            continue;
        }
        let replies: Vec<String> = cmd
            .iter_mut()
            .map(|r| {
                if c[0] != "DUMPRESTORE" {
                    return r.cmd(c);
                }
                let dump = r.cmd_bytes(&[b"DUMP", c[1].as_bytes()]);
                let start = dump.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
                let payload = &dump[start..dump.len() - 2];
                let mut a: Vec<&[u8]> = vec![b"RESTORE", c[2].as_bytes(), c[3].as_bytes(), payload];
                a.extend(c[4..].iter().map(|s| s.as_bytes()));
                String::from_utf8_lossy(&r.cmd_bytes(&a)).into_owned()
            })
            .collect();
        // Random or time-dependent replies are compared by their events only.
        let random = matches!(
            c[0],
            "SPOP" | "INCRBYFLOAT" | "HINCRBYFLOAT" | "MEMORY" | "SRANDMEMBER" | "ZRANDMEMBER" | "HRANDFIELD"
        );
        if !random && replies[0] != replies[1] {
            diffs.push(format!("#{i} {c:?}: reply redis {:?} slotcore {:?}", replies[0], replies[1]));
        }
        match c[0] {
            "MULTI" => in_multi = true,
            "EXEC" | "DISCARD" => in_multi = false,
            _ => {}
        }
        if in_multi {
            continue;
        }
        let tag = i.to_string();
        // redis-server: everything before the marker belongs to this command.
        assert!(publisher[0].cmd(&["PUBLISH", "marker", &tag]).starts_with(':'));
        let want = subs[0].until_marker(&tag);
        // slotcore: the same number of messages (they may come from other shards), then the
        // marker; anything in between is an extra message of this command.
        let mut got = Vec::new();
        subs[1].w.set_read_timeout(Some(Duration::from_secs(3))).ok();
        for _ in 0..want.len() {
            let f = match subs[1].try_frame() {
                Some(f) if f.len() == 4 => (f[2].clone(), f[3].clone()),
                _ => {
                    subs[1].w.set_read_timeout(Some(WAIT)).ok();
                    publisher[1].cmd(&["PUBLISH", "marker", &tag]);
                    let late = subs[1].until_marker(&tag);
                    let numpat = publisher[1].cmd(&["PUBSUB", "NUMPAT"]);
                    diffs.push(format!(
                        "#{i} {c:?}: events redis {want:?} slotcore {got:?} then only {late:?} by the marker (numpat {numpat:?})"
                    ));
                    panic!("differences from redis-server:\n{}", diffs.join("\n"));
                }
            };
            got.push(f);
        }
        subs[1].w.set_read_timeout(Some(WAIT)).ok();
        assert!(publisher[1].cmd(&["PUBLISH", "marker", &tag]).starts_with(':'));
        got.extend(subs[1].until_marker(&tag));
        if got != want {
            diffs.push(format!("#{i} {c:?}: events redis {want:?} slotcore {got:?}"));
        }
        let now: Vec<[i64; 3]> = info.iter_mut().map(counters).collect();
        for (k, name) in ["dirty", "keyspace_hits", "keyspace_misses"].iter().enumerate() {
            let (dr, ds) = (now[0][k] - last[0][k], now[1][k] - last[1][k]);
            if dr != ds {
                diffs.push(format!("#{i} {c:?}: {name} redis +{dr} slotcore +{ds}"));
            }
        }
        last = now;
    }
    assert!(diffs.is_empty(), "differences from redis-server:\n{}", diffs.join("\n"));
}

#[test]
fn config_flags_as_redis() {
    common::use_ports(8430);
    let redis = Server::redis(&[]);
    let slot = Server::slotcore(&[]);
    let mut a = redis.raw();
    let mut b = slot.raw();
    common::assert_same(
        &mut a,
        &mut b,
        &[
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", "Egx$n"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", "Kmlshzetd"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", "KEq"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", ""],
            &["CONFIG", "GET", "notify-keyspace-events"],
        ],
    );
    // Off: a write publishes nothing (the subscriber sees only the marker).
    let mut sub = Sub::connect(slot.port, &["__key*__:*"]);
    b.cmd(&["SET", "k", "v"]);
    b.cmd(&["PUBLISH", "marker", "0"]);
    assert_eq!(sub.until_marker("0"), Vec::<(String, String)>::new());
    // From the config file, and `expired` events from the active expire cycle.
    let conf = slot.dir.join("n.conf");
    std::fs::write(&conf, "notify-keyspace-events \"Ex\"\n").expect("write conf");
    let from_file = Server::slotcore(&[conf.to_str().expect("path"), "--shards", "2"]);
    let mut c = from_file.raw();
    assert!(c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]).contains("xE"));
    let mut sub = Sub::connect(from_file.port, &["__keyevent@0__:expired"]);
    c.cmd(&["SET", "gone", "v", "PX", "30"]);
    assert_eq!(sub.message(), ("__keyevent@0__:expired".to_string(), "gone".to_string()));
}
