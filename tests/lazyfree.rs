//! Freeing off the shards' threads (Redis's lazyfree): UNLINK, DEL with
//! `lazyfree-lazy-user-del`, FLUSHDB/FLUSHALL ASYNC and `lazyfree-lazy-user-flush`,
//! `lazyfree-lazy-server-del`, `lazyfree-lazy-expire`; INFO's `lazyfree_pending_objects` / `lazyfreed_objects` read as
//! redis-server's do for the same commands.

mod common;

use common::{Server, WAIT};
use std::time::Instant;

fn cmd<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn mem_field(c: &mut redis::Connection, field: &str) -> u64 {
    let text: String = cmd(c, &["INFO", "memory"]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// `lazyfreed_objects` once nothing is pending any more (bounded wait).
fn freed(c: &mut redis::Connection) -> u64 {
    let start = Instant::now();
    while mem_field(c, "lazyfree_pending_objects") != 0 {
        assert!(start.elapsed() < WAIT, "the lazyfree thread did not finish");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    mem_field(c, "lazyfreed_objects")
}

/// A set of `n` members (a table, not an intset) at `key`.
fn big_set(c: &mut redis::Connection, key: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut k = redis::cmd("SADD");
        k.arg(key);
        for i in chunk {
            k.arg(format!("m{i}"));
        }
        let _: i64 = k.query(c).expect("SADD");
    }
}

/// The counter after each step of the same script, on one server.
fn script(s: &Server) -> Vec<u64> {
    let mut c = s.client();
    let mut seen = Vec::new();
    let _: () = cmd(&mut c, &["CONFIG", "RESETSTAT"]);
    // UNLINK of a big value: freed on the thread; of a small one: here.
    big_set(&mut c, "big", 5000);
    let _: () = cmd(&mut c, &["SET", "small", "v"]);
    let n: i64 = cmd(&mut c, &["UNLINK", "big", "small", "missing"]);
    assert_eq!(n, 2);
    let e: i64 = cmd(&mut c, &["EXISTS", "big"]);
    assert_eq!(e, 0, "the key is gone when UNLINK replies");
    seen.push(freed(&mut c));
    // DEL frees on the thread only with lazyfree-lazy-user-del.
    big_set(&mut c, "big", 5000);
    let _: i64 = cmd(&mut c, &["DEL", "big"]);
    seen.push(freed(&mut c));
    let _: () = cmd(&mut c, &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]);
    big_set(&mut c, "big", 5000);
    let _: i64 = cmd(&mut c, &["DEL", "big"]);
    seen.push(freed(&mut c));
    // A big value replaced by a write, with lazyfree-lazy-server-del.
    let _: () = cmd(&mut c, &["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"]);
    big_set(&mut c, "big", 5000);
    let _: () = cmd(&mut c, &["SET", "big", "now a string"]);
    seen.push(freed(&mut c));
    // A big value deleted as expired, with lazyfree-lazy-expire (on access or by the active
    // expiry, whichever comes first).
    let _: () = cmd(&mut c, &["CONFIG", "SET", "lazyfree-lazy-expire", "yes"]);
    big_set(&mut c, "exp", 5000);
    let _: i64 = cmd(&mut c, &["PEXPIRE", "exp", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let e: i64 = cmd(&mut c, &["EXISTS", "exp"]);
    assert_eq!(e, 0);
    seen.push(freed(&mut c));
    // Flushes: one object per key (301 here, with "big"), ASYNC or with lazyfree-lazy-user-flush.
    for i in 0..300 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    let _: () = cmd(&mut c, &["FLUSHALL", "ASYNC"]);
    seen.push(freed(&mut c));
    for i in 0..100 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    let _: () = cmd(&mut c, &["FLUSHDB"]);
    seen.push(freed(&mut c));
    let _: () = cmd(&mut c, &["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]);
    for i in 0..100 {
        let _: () = cmd(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    let _: () = cmd(&mut c, &["FLUSHDB"]);
    seen.push(freed(&mut c));
    let _: () = cmd(&mut c, &["FLUSHALL", "SYNC"]);
    seen.push(freed(&mut c));
    let _: () = cmd(&mut c, &["CONFIG", "RESETSTAT"]);
    seen.push(mem_field(&mut c, "lazyfreed_objects"));
    let n: i64 = cmd(&mut c, &["DBSIZE"]);
    assert_eq!(n, 0);
    seen
}

#[test]
fn lazyfree_counts_follow_redis() {
    let redis = Server::redis(&[]);
    let expected = script(&redis);
    assert_eq!(expected, vec![1, 1, 2, 3, 4, 305, 305, 405, 405, 0], "redis-server's counts");
    for shards in ["1", "2"] {
        let s = Server::slotcore(&["--shards", shards]);
        assert_eq!(script(&s), expected, "slotcore with {shards} shard(s)");
    }
}

/// UNLINK of a big set answers at once and the memory comes back afterwards.
#[test]
fn unlink_reclaims_memory_in_the_background() {
    let s = Server::slotcore(&[]);
    let mut c = s.client();
    let before = mem_field(&mut c, "used_memory");
    big_set(&mut c, "big", 100_000);
    let peak = mem_field(&mut c, "used_memory");
    assert!(peak > before + 1_000_000, "{before} -> {peak}");
    let n: i64 = cmd(&mut c, &["UNLINK", "big"]);
    assert_eq!(n, 1);
    assert!(freed(&mut c) >= 1);
    let after = mem_field(&mut c, "used_memory");
    assert!(after < before + (peak - before) / 4, "used_memory {before} -> {peak} -> {after}");
}
