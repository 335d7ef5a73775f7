//! Generic keyspace commands compared with a real redis-server, on a two-shard slotcore.

mod common;
use common::{assert_same, Server};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn both() -> (Server, Server) {
    (Server::slotcore_shards(2), Server::redis(&[]))
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
            &["EXPIRE", "k", "10", "GT", "LT"],
            &["EXPIRE", "k", "10", "BOGUS"],
            &["EXPIRE", "k", "abc"],
            &["EXPIRE", "k", "9223372036854775807"],
            &["PEXPIRE", "k", "9223372036854775807"],
            &["EXPIREAT", "k", "9223372036854775807"],
            &["PERSIST", "k"],
            &["PERSIST", "k"],
            &["TTL", "k"],
            &["EXPIRETIME", "k"],
            &["PEXPIRETIME", "nokey"],
            &["PEXPIREAT", "k", "99999999999999"],
            &["PEXPIRETIME", "k"],
            &["EXPIRETIME", "k"],
            &["EXPIRE", "k", "-1"],
            &["EXISTS", "k"],
            &["EXPIRE", "nokey", "10"],
            &["SET", "p", "v"],
            &["EXPIRE", "p", "10", "GT"],
            &["EXPIRE", "p", "10", "LT"],
            &["TTL", "p"],
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
            &["TYPE", "a"],
            &["TYPE", "nokey"],
            &["EXISTS", "a", "age", "a", "nokey"],
            &["TOUCH", "a", "age", "nokey"],
            &["RENAME", "a", "age"],
            &["GET", "age"],
            &["RENAME", "nokey", "x"],
            &["RENAMENX", "age", "name"],
            &["RENAMENX", "age", "fresh"],
            &["RENAME", "fresh", "fresh"],
            &["COPY", "fresh", "fresh"],
            &["COPY", "fresh", "c1"],
            &["COPY", "fresh", "c1"],
            &["COPY", "fresh", "c1", "REPLACE"],
            &["COPY", "fresh", "c1", "DB", "3"],
            &["COPY", "fresh", "c1", "DB", "99"],
            &["COPY", "fresh", "c1", "DB", "x"],
            &["COPY", "fresh", "c1", "BOGUS"],
            &["MOVE", "c1", "3"],
            &["MOVE", "c1", "0"],
            &["MOVE", "c1", "99"],
            &["MOVE", "name", "5"],
            &["SELECT", "5"],
            &["GET", "name"],
            &["SELECT", "3"],
            &["GET", "c1"],
            &["SELECT", "0"],
            &["SWAPDB", "0", "3"],
            &["GET", "c1"],
            &["SWAPDB", "0", "99"],
            &["SWAPDB", "a", "0"],
            &["SWAPDB", "0", "a"],
            &["SWAPDB", "0", "3"],
            &["OBJECT", "ENCODING", "fresh"],
            &["SET", "big", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
            &["OBJECT", "ENCODING", "big"],
            &["OBJECT", "ENCODING", "c1"],
            &["OBJECT", "ENCODING", "nokey"],
            &["OBJECT", "REFCOUNT", "big"],
            &["OBJECT", "FREQ", "big"],
            &["OBJECT", "BOGUS", "x"],
            &["OBJECT"],
            &["OBJECT", "HELP"],
            &["DEL", "fresh", "big", "nokey", "age"],
            &["UNLINK", "name", "c1"],
            &["KEYS"],
            &["SCAN", "abc"],
            &["SCAN", "0", "COUNT", "0"],
            &["SCAN", "0", "MATCH"],
            &["FLUSHALL", "BOGUS"],
            &["FLUSHDB", "ASYNC"],
            &["DBSIZE"],
            &["RANDOMKEY"],
        ],
    );
}

#[test]
fn keys_scan_and_randomkey_cover_both_shards() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let mut want = BTreeSet::new();
    let mut batch = Vec::new();
    for i in 0..2000 {
        let k = format!("key:{i}");
        batch.extend(common::encode(&[b"SET", k.as_bytes(), b"v"]));
        want.insert(k);
    }
    r.send(&batch);
    for _ in 0..2000 {
        r.reply();
    }
    assert_eq!(r.cmd(&["DBSIZE"]), ":2000\r\n");
    // redis-cli --scan walks the cursor to the end.
    let got: BTreeSet<String> = s.cli(&["--scan"]).lines().map(String::from).collect();
    assert_eq!(got, want);
    let got: BTreeSet<String> = s.cli(&["--scan", "--pattern", "key:1*"]).lines().map(String::from).collect();
    assert_eq!(got, want.iter().filter(|k| k.starts_with("key:1")).cloned().collect());
    let keys = s.cli(&["KEYS", "key:19*"]);
    assert_eq!(keys.lines().count(), want.iter().filter(|k| k.starts_with("key:19")).count());
    assert!(s.cli(&["RANDOMKEY"]).starts_with("key:"));
    // TYPE filters: walking the whole cursor with TYPE hash finds nothing, TYPE string everything.
    for (ty, expect) in [("hash", 0usize), ("string", 2000)] {
        let mut cursor = "0".to_string();
        let mut n = 0;
        loop {
            let out = s.cli(&["SCAN", &cursor, "TYPE", ty, "COUNT", "100"]);
            let mut lines = out.lines();
            cursor = lines.next().unwrap_or("0").to_string();
            n += lines.filter(|l| l.starts_with("key:")).count();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(n, expect, "SCAN TYPE {ty}");
    }
    assert_eq!(r.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(r.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.cmd(&["RANDOMKEY"]), "$-1\r\n");
}

#[test]
fn active_expiry_reclaims_without_access() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(common::encode(&[b"SET", format!("e:{i}").as_bytes(), b"v", b"PX", b"100"]));
    }
    batch.extend(common::encode(&[b"SET", b"keep", b"v"]));
    r.send(&batch);
    for _ in 0..2001 {
        r.reply();
    }
    let start = Instant::now();
    loop {
        let n = r.cmd(&["DBSIZE"]);
        if n == ":1\r\n" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "expired keys not reclaimed: DBSIZE {n:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Lazy expiry too.
    assert_eq!(r.cmd(&["SET", "lazy", "v", "PX", "1"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(r.cmd(&["GET", "lazy"]), "$-1\r\n");
}
