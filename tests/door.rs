//! WATCH is touched exactly when Redis 7.0's `signalModifiedKey` would be: each case runs its
//! setup, WATCHes the key from one client, runs the write from another, and EXECs; the EXEC
//! reply (null when the watched key was touched) must equal redis-server's.

mod common;

use common::{Raw, Server};

/// (setup, the write another client runs).
const CASES: &[(&[&[&str]], &[&str])] = &[
    // The case: SADD of a member already there changes nothing.
    (&[&["SADD", "k", "m"]], &["SADD", "k", "m"]),
    (&[&["SADD", "k", "m"]], &["SADD", "k", "n"]),
    (&[&["SADD", "k", "m"]], &["SREM", "k", "zz"]),
    (&[&["SET", "k", "v"]], &["SET", "k", "w", "NX"]),
    (&[&["SET", "k", "v"]], &["SET", "k", "v"]),
    (&[&["SET", "k", "v"]], &["SETRANGE", "k", "0", ""]),
    (&[&["SET", "k", "v"]], &["GETEX", "k", "PERSIST"]),
    (&[&["SET", "k", "v"]], &["PERSIST", "k"]),
    (&[&["SET", "k", "v"]], &["EXPIRE", "k", "100", "XX"]),
    (&[&["SETBIT", "k", "3", "1"]], &["SETBIT", "k", "3", "1"]),
    (&[&["SETBIT", "k", "3", "1"]], &["SETBIT", "k", "3", "0"]),
    (&[&["SET", "k", "v"]], &["BITFIELD", "k", "GET", "u8", "0"]),
    (&[&["RPUSH", "k", "a", "b"]], &["LTRIM", "k", "0", "-1"]),
    (&[&["RPUSH", "k", "a", "b"]], &["LREM", "k", "0", "zz"]),
    (&[&["RPUSH", "k", "a", "b"]], &["LINSERT", "k", "BEFORE", "zz", "x"]),
    (&[&["RPUSH", "k", "a", "b"]], &["LSET", "k", "0", "a"]),
    (&[&["HSET", "k", "f", "v"]], &["HSET", "k", "f", "v"]),
    (&[&["HSET", "k", "f", "v"]], &["HSETNX", "k", "f", "v"]),
    (&[&["HSET", "k", "f", "v"]], &["HDEL", "k", "zz"]),
    (&[&["ZADD", "k", "1", "a"]], &["ZADD", "k", "1", "a"]),
    (&[&["ZADD", "k", "1", "a"]], &["ZADD", "k", "2", "a"]),
    (&[&["ZADD", "k", "1", "a"]], &["ZREM", "k", "zz"]),
    (&[&["SADD", "k", "m"]], &["SMOVE", "k", "k", "m"]),
    (&[&["SADD", "k", "m"]], &["SINTERSTORE", "k", "k"]),
    (&[], &["SINTERSTORE", "k", "nokey"]),
    (&[&["PFADD", "k", "a"]], &["PFADD", "k", "a"]),
    (&[&["SET", "k", "v"]], &["RENAME", "k", "k"]),
    (&[], &["DEL", "k"]),
];

fn exec_reply(s: &Server, setup: &[&[&str]], write: &[&str]) -> String {
    let mut a = s.raw();
    let mut b = s.raw();
    a.cmd(&["FLUSHALL"]);
    for c in setup {
        a.cmd(c);
    }
    assert_eq!(a.cmd(&["WATCH", "k"]), "+OK\r\n");
    b.cmd(write);
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    a.cmd(&["PING"]);
    a.cmd(&["EXEC"])
}

#[test]
fn watch_is_touched_as_redis() {
    common::use_ports(8450);
    let redis = Server::redis(&[]);
    let slot = Server::slotcore(&["--shards", "2"]);
    let mut diffs = Vec::new();
    for (setup, write) in CASES {
        let want = exec_reply(&redis, setup, write);
        let got = exec_reply(&slot, setup, write);
        if want != got {
            diffs.push(format!("{setup:?} then {write:?}: EXEC redis {want:?} slotcore {got:?}"));
        }
    }
    assert!(diffs.is_empty(), "WATCH differs from redis-server:\n{}", diffs.join("\n"));
}

/// `rdb_changes_since_last_save` is in INFO persistence, right where Redis puts it, and
/// FLUSHDB counts the keys it emptied.
#[test]
fn changes_since_save_in_info() {
    common::use_ports(8470);
    let slot = Server::slotcore(&["--shards", "2"]);
    let mut c: Raw = slot.raw();
    let info = c.cmd(&["INFO", "persistence"]);
    let pos = |k: &str| info.find(k).unwrap_or_else(|| panic!("{k} missing in {info:?}"));
    assert!(pos("current_save_keys_total:") < pos("rdb_changes_since_last_save:"));
    assert!(pos("rdb_changes_since_last_save:") < pos("rdb_bgsave_in_progress:"));
    c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]);
    c.cmd(&["FLUSHDB"]);
    let info = c.cmd(&["INFO", "persistence"]);
    assert!(info.contains("rdb_changes_since_last_save:6\r\n"), "{info}");
}
