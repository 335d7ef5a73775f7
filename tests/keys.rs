//! Generic keyspace commands compared with a real redis-server, on a two-shard slotcore
//! (slots 0-8191 on shard 0, 8192-16383 on shard 1: "a" is in slot 15495, "b" in 3300, so
//! commands naming both span shards).

mod common;
use common::{assert_same, Server};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn both() -> (Server, Server) {
    (Server::slotcore_shards(2), Server::redis(&[]))
}

/// Loads `n` string keys `key:i` through one pipelined write.
fn load_strings(r: &mut common::Raw, prefix: &str, n: usize) -> BTreeSet<String> {
    let mut want = BTreeSet::new();
    let mut batch = Vec::new();
    for i in 0..n {
        let k = format!("{prefix}{i}");
        batch.extend(common::encode(&[b"SET", k.as_bytes(), b"v"]));
        want.insert(k);
    }
    r.send(&batch);
    for _ in 0..n {
        r.reply();
    }
    want
}

fn lines(out: &str) -> BTreeSet<String> {
    out.lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn expire_family_and_errors() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SET", "k", "v"],
            &["TTL", "k"],
            &["PTTL", "nokey"],
            &["EXPIRE", "k", "100"],
            &["TTL", "k"],
            &["EXPIRE", "k", "10", "NX"],
            &["EXPIRE", "k", "10", "XX", "GT"],
            &["EXPIRE", "k", "1000", "GT"],
            &["TTL", "k"],
            &["EXPIRE", "k", "50", "LT"],
            &["TTL", "k"],
            &["EXPIRE", "k", "10", "NX", "XX"],
            &["EXPIRE", "k", "10", "NX", "GT"],
            &["EXPIRE", "k", "10", "LT", "NX"],
            &["EXPIRE", "k", "10", "GT", "LT"],
            &["EXPIRE", "k", "10", "XX", "GT", "LT"],
            &["EXPIRE", "k", "10", "BOGUS"],
            &["EXPIRE", "k", "10", "a\r\nb"],
            // Options are checked before the time, as in Redis.
            &["EXPIRE", "k", "abc", "NX", "XX"],
            &["PEXPIRE", "k", "abc", "bogus"],
            &["EXPIRE", "k", "abc"],
            &["EXPIRE", "k", "1.5"],
            &["EXPIRE", "k", "9223372036854775807"],
            &["EXPIRE", "k", "9223372036854775"],
            &["EXPIRE", "k", "-9223372036854775808"],
            &["PEXPIRE", "k", "9223372036854775807"],
            &["EXPIREAT", "k", "9223372036854775807"],
            &["EXPIREAT", "k", "-9223372036854775808"],
            &["PEXPIREAT", "k", "9223372036854775807"],
            &["EXPIRETIME", "k"],
            &["TTL", "k"],
            &["PERSIST", "k"],
            &["PERSIST", "k"],
            &["PERSIST", "nokey"],
            &["TTL", "k"],
            &["EXPIRETIME", "k"],
            &["PEXPIRETIME", "nokey"],
            &["EXPIRETIME", "nokey"],
            &["PEXPIREAT", "k", "99999999999999"],
            &["PEXPIRETIME", "k"],
            &["EXPIRETIME", "k"],
            &["EXPIREAT", "k", "99999999999"],
            &["PEXPIRETIME", "k"],
            &["PEXPIREAT", "k", "99999999999499"],
            &["EXPIRETIME", "k"],
            &["EXPIRE", "k", "100", "xx"],
            &["EXPIRE", "k", "200", "gt"],
            &["EXPIRE", "k", "100", "gt"],
            &["EXPIRE", "k", "100", "lt"],
            &["TTL", "k"],
            // A time in the past deletes the key.
            &["EXPIRE", "k", "-1"],
            &["EXISTS", "k"],
            &["SET", "k", "v"],
            &["PEXPIREAT", "k", "1"],
            &["EXISTS", "k"],
            &["SET", "k", "v"],
            &["EXPIREAT", "k", "0", "NX"],
            &["GET", "k"],
            &["EXPIRE", "nokey", "10"],
            &["EXPIRE", "nokey", "-10"],
            &["SET", "p", "v"],
            &["EXPIRE", "p", "10", "XX"],
            &["EXPIRE", "p", "10", "GT"],
            &["EXPIRE", "p", "10", "LT"],
            &["TTL", "p"],
            &["EXPIRE", "p", "10", "NX"],
            &["PEXPIRE", "p", "5000", "NX"],
            &["PEXPIRE", "p", "5000", "NX"],
            // Overwriting a key with SET drops its expiry; ttl commands see that.
            &["SET", "p", "w"],
            &["TTL", "p"],
            &["EXPIRE"],
            &["EXPIRE", "k"],
            &["TTL"],
            &["TTL", "a", "b"],
            &["PERSIST"],
            &["EXPIRETIME", "a", "b"],
        ],
    );
}

#[test]
fn expired_keys_behave_as_missing() {
    let (s, o) = both();
    let (mut a, mut b) = (s.raw(), o.raw());
    for r in [&mut a, &mut b] {
        for k in ["x", "y", "a", "b"] {
            assert_eq!(r.cmd(&["SET", k, "v", "PX", "1"]), "+OK\r\n");
        }
        assert_eq!(r.cmd(&["SET", "live", "v"]), "+OK\r\n");
    }
    std::thread::sleep(Duration::from_millis(30));
    assert_same(
        &mut a,
        &mut b,
        &[
            &["TTL", "x"],
            &["TYPE", "x"],
            &["EXISTS", "x", "y", "live"],
            &["OBJECT", "ENCODING", "y"],
            &["RENAME", "a", "z"],
            &["RENAMENX", "b", "z"],
            &["COPY", "a", "z"],
            &["MOVE", "a", "1"],
            &["RENAME", "live", "a"],
            &["GET", "a"],
            &["DEL", "x", "y", "b"],
            &["KEYS", "*"],
            &["DBSIZE"],
        ],
    );
}

#[test]
fn keys_types_renames_copies() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["MSET", "a", "1", "age", "2", "name", "x"],
            &["RPUSH", "l", "x"],
            &["SADD", "st", "x"],
            &["ZADD", "z", "1", "x"],
            &["HSET", "h", "f", "v"],
            &["TYPE", "a"],
            &["TYPE", "l"],
            &["TYPE", "st"],
            &["TYPE", "z"],
            &["TYPE", "h"],
            &["TYPE", "nokey"],
            &["EXISTS", "a", "age", "a", "nokey"],
            &["TOUCH", "a", "age", "nokey", "a"],
            &["RENAME", "a", "age"],
            &["GET", "age"],
            &["RENAME", "nokey", "x"],
            &["RENAMENX", "nokey", "x"],
            &["RENAME", "nokey", "nokey"],
            &["RENAMENX", "age", "name"],
            &["RENAMENX", "age", "fresh"],
            &["RENAME", "fresh", "fresh"],
            &["RENAMENX", "fresh", "fresh"],
            &["EXPIRE", "fresh", "100"],
            &["RENAME", "fresh", "renamed"],
            &["TTL", "renamed"],
            &["RENAME", "renamed", "fresh"],
            &["PERSIST", "fresh"],
            &["RENAME", "l", "z"],
            &["TYPE", "z"],
            &["COPY", "fresh", "fresh"],
            &["COPY", "fresh", "c1"],
            &["COPY", "fresh", "c1"],
            &["COPY", "fresh", "c1", "REPLACE"],
            &["COPY", "fresh", "c1", "DB", "3"],
            &["COPY", "fresh", "c1", "DB", "3"],
            &["COPY", "fresh", "c1", "DB", "3", "REPLACE"],
            &["COPY", "fresh", "fresh", "DB", "0"],
            &["COPY", "fresh", "fresh", "DB", "4"],
            &["COPY", "fresh", "c1", "DB", "99"],
            &["COPY", "fresh", "c1", "DB", "-1"],
            &["COPY", "fresh", "c1", "DB", "x"],
            &["COPY", "fresh", "c1", "DB", "4294967296"],
            &["COPY", "fresh", "c1", "DB"],
            &["COPY", "fresh", "c1", "BOGUS"],
            &["COPY", "nokey", "c1"],
            &["COPY", "z", "zcopy"],
            &["ZRANGE", "zcopy", "0", "-1"],
            &["COPY", "h", "hcopy"],
            &["HGETALL", "hcopy"],
            &["EXPIRE", "st", "100"],
            &["COPY", "st", "stcopy"],
            &["TTL", "stcopy"],
            &["MOVE", "c1", "3"],
            &["MOVE", "c1", "6"],
            &["MOVE", "c1", "0"],
            &["MOVE", "c1", "99"],
            &["MOVE", "c1", "-1"],
            &["MOVE", "c1", "x"],
            &["MOVE", "c1", "4294967296"],
            &["MOVE", "nokey", "3"],
            &["MOVE", "name", "5"],
            &["EXISTS", "name"],
            &["SELECT", "5"],
            &["GET", "name"],
            &["SELECT", "3"],
            &["GET", "c1"],
            &["SELECT", "4"],
            &["GET", "fresh"],
            &["SELECT", "6"],
            &["GET", "c1"],
            &["SELECT", "0"],
            &["SWAPDB", "0", "3"],
            &["GET", "c1"],
            &["SWAPDB", "0", "99"],
            &["SWAPDB", "0", "-1"],
            &["SWAPDB", "a", "0"],
            &["SWAPDB", "0", "a"],
            &["SWAPDB", "4294967296", "0"],
            &["SWAPDB", "0", "4294967296"],
            &["SWAPDB", "0", "0"],
            &["SWAPDB", "0", "3"],
            &["DEL", "fresh", "nokey", "age", "age"],
            &["UNLINK", "name", "c1", "zcopy"],
            &["DEL"],
            &["EXISTS"],
            &["TYPE"],
            &["RENAME", "x"],
            &["COPY", "x"],
            &["MOVE", "x"],
            &["KEYS"],
            &["KEYS", "a", "b"],
            &["RANDOMKEY", "x"],
            &["DBSIZE", "x"],
            &["SWAPDB", "0"],
            &["FLUSHALL", "BOGUS"],
            &["FLUSHALL", "SYNC", "ASYNC"],
            &["FLUSHDB", "BOGUS"],
            &["FLUSHDB", "ASYNC"],
            &["DBSIZE"],
            &["RANDOMKEY"],
            &["SET", "only", "v"],
            &["RANDOMKEY"],
            &["KEYS", "*"],
            &["KEYS", "on?y"],
            &["KEYS", "x*"],
            &["FLUSHALL", "sync"],
            &["SELECT", "3"],
            &["DBSIZE"],
        ],
    );
}

#[test]
fn object_subcommands() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SET", "small", "1"],
            &["SET", "big", "10000"],
            &["SET", "neg", "-1"],
            &["SET", "emb", "hello"],
            &["SET", "raw", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
            &["RPUSH", "l", "x"],
            &["SADD", "si", "1", "2"],
            &["SADD", "ss", "x"],
            &["ZADD", "z", "1", "x"],
            &["HSET", "h", "f", "v"],
            &["OBJECT", "ENCODING", "small"],
            &["OBJECT", "ENCODING", "big"],
            &["OBJECT", "ENCODING", "emb"],
            &["OBJECT", "ENCODING", "raw"],
            &["OBJECT", "ENCODING", "l"],
            &["OBJECT", "ENCODING", "si"],
            &["OBJECT", "ENCODING", "ss"],
            &["OBJECT", "ENCODING", "z"],
            &["OBJECT", "ENCODING", "h"],
            &["OBJECT", "ENCODING", "nokey"],
            &["OBJECT", "REFCOUNT", "small"],
            &["OBJECT", "REFCOUNT", "big"],
            &["OBJECT", "REFCOUNT", "neg"],
            &["OBJECT", "REFCOUNT", "emb"],
            &["OBJECT", "REFCOUNT", "nokey"],
            &["OBJECT", "IDLETIME", "emb"],
            &["OBJECT", "IDLETIME", "nokey"],
            &["OBJECT", "FREQ", "emb"],
            &["OBJECT", "FREQ", "nokey"],
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
            &["SET", "fresh", "v"],
            &["OBJECT", "FREQ", "fresh"],
            &["GET", "fresh"],
            &["OBJECT", "FREQ", "fresh"],
            &["OBJECT", "IDLETIME", "fresh"],
            &["OBJECT", "FREQ", "nokey"],
            &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
            &["OBJECT", "IDLETIME", "fresh"],
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
            &["OBJECT", "FREQ", "fresh"],
            &["OBJECT", "BOGUS", "x"],
            &["OBJECT", "ENCODING"],
            &["OBJECT", "ENCODING", "a", "b"],
            &["OBJECT", "HELP", "x"],
            &["OBJECT"],
            &["OBJECT", "HELP"],
            &["object", "help"],
        ],
    );
    // IDLETIME grows while a key is not accessed; OBJECT itself does not touch it, TOUCH does.
    let mut r = s.raw();
    r.cmd(&["SET", "idle", "v"]);
    std::thread::sleep(Duration::from_millis(2100));
    let idle = r.cmd(&["OBJECT", "IDLETIME", "idle"]);
    assert!(idle == ":2\r\n" || idle == ":3\r\n", "{idle:?}");
    assert_eq!(r.cmd(&["EXISTS", "idle"]), ":1\r\n");
    assert_eq!(r.cmd(&["TTL", "idle"]), ":-1\r\n");
    assert_eq!(r.cmd(&["OBJECT", "IDLETIME", "idle"]), idle);
    assert_eq!(r.cmd(&["TOUCH", "idle"]), ":1\r\n");
    assert_eq!(r.cmd(&["OBJECT", "IDLETIME", "idle"]), ":0\r\n");
}

#[test]
fn multi_key_commands_across_shards() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SET", "a", "1"],
            &["SET", "b", "2"],
            &["EXPIRE", "a", "100"],
            &["EXISTS", "a", "b", "c", "a"],
            &["TOUCH", "a", "b", "c"],
            &["RENAMENX", "a", "b"],
            &["RENAME", "a", "c"],
            &["TTL", "c"],
            &["EXISTS", "a"],
            &["RENAME", "c", "a"],
            &["RENAME", "a", "b"],
            &["GET", "b"],
            &["TTL", "b"],
            &["EXISTS", "a"],
            &["COPY", "b", "a"],
            &["TTL", "a"],
            &["COPY", "b", "a"],
            &["SET", "b", "new"],
            &["COPY", "b", "a", "REPLACE"],
            &["GET", "a"],
            &["COPY", "a", "b", "DB", "2"],
            &["COPY", "a", "b", "DB", "2"],
            &["COPY", "a", "b", "REPLACE", "DB", "2"],
            &["MOVE", "a", "2"],
            &["SELECT", "2"],
            &["MGET", "a", "b"],
            &["COPY", "b", "a", "DB", "0"],
            &["RENAME", "b", "a"],
            &["SELECT", "0"],
            &["MGET", "a", "b"],
            &["DEL", "a", "b", "c", "a"],
            &["UNLINK", "a", "b"],
            &["EXISTS", "a", "b"],
        ],
    );
}

#[test]
fn dbsize_flush_swapdb_two_shards() {
    let (s, o) = both();
    let (mut a, mut b) = (s.raw(), o.raw());
    for r in [&mut a, &mut b] {
        load_strings(r, "k", 300);
        r.cmd(&["SELECT", "1"]);
        load_strings(r, "one", 50);
        r.cmd(&["SELECT", "2"]);
        load_strings(r, "two", 20);
        r.cmd(&["SELECT", "0"]);
    }
    assert_same(
        &mut a,
        &mut b,
        &[
            &["DBSIZE"],
            &["SWAPDB", "0", "1"],
            &["DBSIZE"],
            &["EXISTS", "one7", "k7"],
            &["SELECT", "1"],
            &["DBSIZE"],
            &["FLUSHDB"],
            &["DBSIZE"],
            &["SELECT", "0"],
            &["DBSIZE"],
            &["SWAPDB", "1", "0"],
            &["DBSIZE"],
            &["SELECT", "2"],
            &["DBSIZE"],
            &["FLUSHALL"],
            &["DBSIZE"],
            &["SELECT", "0"],
            &["DBSIZE"],
            &["RANDOMKEY"],
            &["KEYS", "*"],
            &["SCAN", "0"],
        ],
    );
}

#[test]
fn scan_argument_errors() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SCAN", "0"],
            &["SCAN", ""],
            &["SCAN", "abc"],
            &["SCAN", " 1"],
            &["SCAN", "1 "],
            &["SCAN", "+"],
            &["SCAN", "-"],
            &["SCAN", "0x1"],
            &["SCAN", "18446744073709551616"],
            &["SCAN", "abc", "COUNT", "0"],
            &["SCAN", "0", "COUNT", "0"],
            &["SCAN", "0", "COUNT", "-1"],
            &["SCAN", "0", "COUNT", "x"],
            &["SCAN", "0", "COUNT"],
            &["SCAN", "0", "MATCH"],
            &["SCAN", "0", "TYPE"],
            &["SCAN", "0", "BOGUS", "x"],
            &["SCAN", "0", "MATCH", "*", "COUNT", "5", "TYPE", "string", "x"],
            &["SET", "one", "v"],
            &["SCAN", "0"],
            &["SCAN", "0", "TYPE", "STRING"],
            &["SCAN", "0", "TYPE", "hash"],
            &["SCAN", "0", "TYPE", "nosuchtype"],
            &["SCAN", "0", "MATCH", "o*", "COUNT", "1000"],
            &["SCAN", "0", "MATCH", "x*"],
            &["SCAN"],
        ],
    );
}

/// Walks a SCAN with extra options to its end, returning every key in reply order.
fn scan_all(s: &Server, extra: &[&str]) -> Vec<String> {
    let mut r = s.raw();
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    for _ in 0..100_000 {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let reply = r.cmd(&args);
        // *2 $n cursor *m ($len key)*
        let parts: Vec<&str> = reply.split("\r\n").collect();
        assert!(parts.len() >= 4 && parts[0] == "*2", "{reply:?}");
        keys.extend(parts[4..].chunks(2).filter(|c| c.len() == 2).map(|c| c[1].to_string()));
        cursor = parts[2].to_string();
        if cursor == "0" {
            return keys;
        }
    }
    panic!("SCAN did not finish");
}

fn assert_once(keys: &[String], want: &BTreeSet<String>, what: &str) {
    let got: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(got.len(), keys.len(), "{what}: a key was returned twice");
    assert_eq!(&got, want, "{what}");
}

/// RANDOMKEY that meets expired keys on both shards deletes them, and they reach a replica as
/// separate DELs, never wrapped in MULTI/EXEC (Redis's commands that touch arbitrary keys);
/// until 2026-12-07 a two-shard node sent them as one transaction (Redis's unit/expire,
/// "RANDOMKEY: Lazy-expire should not be wrapped in MULTI/EXEC").
#[test]
fn randomkey_expiries_reach_replicas_unwrapped() {
    let debug = ["--enable-debug-command", "yes"];
    let (s, r) = (Server::slotcore(&[&["--shards", "2"][..], &debug].concat()), Server::redis(&debug));
    let mut seen = Vec::new();
    for server in [&r, &s] {
        let mut c = server.raw();
        assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
        for k in ["a", "b"] {
            assert_eq!(c.cmd(&["SET", k, "v", "PX", "1"]), "+OK\r\n");
        }
        std::thread::sleep(Duration::from_millis(5));
        let mut feed = common::Feed::attach(server.port);
        assert_eq!(c.cmd(&["RANDOMKEY"]), "$-1\r\n");
        assert_eq!(c.cmd(&["SET", "end", "1"]), "+OK\r\n");
        let mut got = feed.until_end();
        got.sort();
        seen.push(got);
    }
    let want: Vec<Vec<String>> = [["del", "a"], ["del", "b"]]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .chain(std::iter::once(vec!["set".to_string(), "end".into(), "1".into()]))
        .collect();
    assert_eq!(seen[0], want, "redis-server");
    assert_eq!(seen[1], want, "slotcore");
}

#[test]
fn keys_scan_and_randomkey_cover_both_shards() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let strings = load_strings(&mut r, "key:", 2000);
    let mut hashes = BTreeSet::new();
    for i in 0..100 {
        let k = format!("h:{i}");
        assert_eq!(r.cmd(&["HSET", &k, "f", "v"]), ":1\r\n");
        hashes.insert(k);
    }
    let all: BTreeSet<String> = strings.union(&hashes).cloned().collect();
    assert_eq!(r.cmd(&["DBSIZE"]), ":2100\r\n");
    // redis-cli --scan walks the cursor to the end.
    let got: Vec<String> = s.cli(&["--scan"]).lines().map(String::from).collect();
    assert_once(&got, &all, "--scan");
    let got: Vec<String> = s.cli(&["--scan", "--pattern", "key:1*"]).lines().map(String::from).collect();
    let want: BTreeSet<String> = strings.iter().filter(|k| k.starts_with("key:1")).cloned().collect();
    assert_once(&got, &want, "--scan --pattern");
    assert_once(&scan_all(&s, &[]), &all, "SCAN");
    assert_once(&scan_all(&s, &["COUNT", "1"]), &all, "SCAN COUNT 1");
    assert_once(&scan_all(&s, &["COUNT", "1000"]), &all, "SCAN COUNT 1000");
    assert_once(&scan_all(&s, &["TYPE", "hash", "COUNT", "7"]), &hashes, "SCAN TYPE hash");
    assert_once(&scan_all(&s, &["TYPE", "STRING"]), &strings, "SCAN TYPE STRING");
    assert_once(&scan_all(&s, &["TYPE", "list"]), &BTreeSet::new(), "SCAN TYPE list");
    let want: BTreeSet<String> = hashes.iter().filter(|k| k.ends_with('7')).cloned().collect();
    assert_once(&scan_all(&s, &["MATCH", "h:*7", "TYPE", "hash", "COUNT", "50"]), &want, "SCAN MATCH TYPE");
    // COUNT bounds the work of one call (whole slots, so roughly).
    let out = s.cli(&["SCAN", "0", "COUNT", "5"]);
    assert_ne!(out.lines().next(), Some("0"));
    assert!(out.lines().count() < 50, "{out}");
    // The cursor as an inline command.
    r.send(b"SCAN 0 COUNT 5000\r\n");
    let reply = r.reply();
    assert!(reply.starts_with("*2\r\n$1\r\n0\r\n*2100\r\n"), "{}", &reply[..40]);
    // KEYS over both shards.
    for pat in ["*", "key:19*", "h:?", "*:1[0-3]", "key:\\*", "nomatch*"] {
        let got = lines(&s.cli(&["KEYS", pat]));
        let want: BTreeSet<String> = all.iter().filter(|k| glob(pat, k)).cloned().collect();
        assert_eq!(got, want, "KEYS {pat}");
    }
    // RANDOMKEY draws from both shards.
    let mut seen_shards = BTreeSet::new();
    for _ in 0..200 {
        let k = s.cli(&["RANDOMKEY"]).trim().to_string();
        assert!(all.contains(&k), "{k}");
        seen_shards.insert(key_slot(k.as_bytes()) >= 8192);
        if seen_shards.len() == 2 {
            break;
        }
    }
    assert_eq!(seen_shards.len(), 2, "RANDOMKEY only drew from one shard");
    assert_eq!(r.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(r.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.cmd(&["RANDOMKEY"]), "$-1\r\n");
    assert_eq!(r.cmd(&["SCAN", "0"]), "*2\r\n$1\r\n0\r\n*0\r\n");
}

/// CRC16 (XMODEM) mod 16384: the hash slot of a key without hash tag.
fn key_slot(key: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in key {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// The globs used above: `*`, `?`, one `[a-b]` class, `\*` as a literal star.
fn glob(pat: &str, k: &str) -> bool {
    match pat {
        "*" => true,
        "key:19*" => k.starts_with("key:19"),
        "h:?" => k.len() == 3 && k.starts_with("h:"),
        "*:1[0-3]" => {
            k.len() >= 4 && k.ends_with(|c: char| ('0'..='3').contains(&c)) && k[..k.len() - 1].ends_with(":1")
        }
        _ => false,
    }
}

#[test]
fn active_expiry_reclaims_without_access() {
    let s = Server::slotcore(&["--shards", "2", "--enable-debug-command", "yes"]);
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(common::encode(&[b"SET", format!("e:{i}").as_bytes(), b"v", b"PX", b"100"]));
    }
    r.send(&batch);
    for _ in 0..2000 {
        r.reply();
    }
    assert_eq!(r.cmd(&["DBSIZE"]), ":2000\r\n");
    let start = Instant::now();
    loop {
        let n = r.cmd(&["DBSIZE"]);
        if n == ":0\r\n" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "expired keys not reclaimed: DBSIZE {n:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Lazy expiry too (with the active cycle off, the key is reclaimed on access).
    assert_eq!(r.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    assert_eq!(r.cmd(&["SET", "lazy", "v", "PX", "1"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(r.cmd(&["DBSIZE"]), ":1\r\n");
    assert_eq!(r.cmd(&["GET", "lazy"]), "$-1\r\n");
    assert_eq!(r.cmd(&["DBSIZE"]), ":0\r\n");
}
