//! Cross-shard behaviour with two data shards: keys on both shards, multi-key commands that span
//! shards stay atomic as seen by other clients, pipelines keep their order, and concurrent
//! cross-shard transactions from connections on both shards never deadlock.

mod common;
use common::{Server, WAIT};
use std::time::{Duration, Instant};

/// Keys whose slots fall on shard 0 (slots 0..8191) and shard 1 (8192..16383) of a 2-shard node.
const ON_SHARD0: &str = "age"; // slot 741
const ON_SHARD1: &str = "a"; // slot 15495

#[test]
fn keys_on_both_shards_round_trip_in_pipelines() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(common::encode(&[b"SET", format!("key:{i}").as_bytes(), format!("v{i}").as_bytes()]));
    }
    r.send(&batch);
    for _ in 0..2000 {
        assert_eq!(r.reply(), "+OK\r\n");
    }
    // A node-wide command after a pipeline of remote writes sees all of them.
    let mut batch = Vec::new();
    for i in 2000..2100 {
        batch.extend(common::encode(&[b"SET", format!("key:{i}").as_bytes(), b"x"]));
    }
    batch.extend(common::encode(&[b"DBSIZE"]));
    r.send(&batch);
    for _ in 2000..2100 {
        assert_eq!(r.reply(), "+OK\r\n");
    }
    assert_eq!(r.reply(), ":2100\r\n");
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(common::encode(&[b"GET", format!("key:{i}").as_bytes()]));
    }
    r.send(&batch);
    for i in 0..2000 {
        let v = format!("v{i}");
        assert_eq!(r.reply(), format!("${}\r\n{}\r\n", v.len(), v));
    }
}

#[test]
fn spanning_del_and_exists() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", ON_SHARD0, "1"]), "+OK\r\n");
    assert_eq!(r.cmd(&["SET", ON_SHARD1, "2"]), "+OK\r\n");
    assert_eq!(r.cmd(&["EXISTS", ON_SHARD0, ON_SHARD1, "nokey"]), ":2\r\n");
    assert_eq!(r.cmd(&["DEL", ON_SHARD0, ON_SHARD1, "nokey"]), ":2\r\n");
    assert_eq!(r.cmd(&["EXISTS", ON_SHARD0, ON_SHARD1]), ":0\r\n");
}

/// Writers MSET two keys on different shards to the same value; readers MGET both and must
/// never see them differ. Many connections, so both shards act as coordinators.
#[test]
fn spanning_mset_is_atomic_and_deadlock_free() {
    let s = Server::slotcore_shards(2);
    let port = s.port;
    {
        let mut r = s.raw();
        if r.cmd(&["MSET", ON_SHARD0, "0", ON_SHARD1, "0"]) != "+OK\r\n" {
            panic!("MSET not available");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut handles = Vec::new();
    for w in 0..4 {
        handles.push(std::thread::spawn(move || {
            let mut r = common::Raw::connect(port);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let v = format!("{w}-{n}");
                assert_eq!(r.cmd(&["MSET", ON_SHARD0, &v, ON_SHARD1, &v]), "+OK\r\n");
                n += 1;
            }
            n
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(std::thread::spawn(move || {
            let mut r = common::Raw::connect(port);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let got = r.cmd(&["MGET", ON_SHARD0, ON_SHARD1]);
                let lines: Vec<&str> = got.split("\r\n").collect();
                // *2, $len, v1, $len, v2
                assert_eq!(lines[2], lines[4], "torn read across shards: {got:?}");
                n += 1;
            }
            n
        }));
    }
    let writes: u64 = handles.into_iter().map(|h| h.join().expect("writer")).sum();
    let reads: u64 = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    assert!(writes > 10 && reads > 10, "too little progress: {writes} writes, {reads} reads");
    // Fairness: neither side starves the other (the gate serves takers in arrival order).
    assert!(reads * 20 > writes && writes * 20 > reads, "unfair progress: {writes} writes, {reads} reads");
    // The server is still responsive.
    let mut r = common::Raw::connect(port);
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
    let _ = WAIT;
}
