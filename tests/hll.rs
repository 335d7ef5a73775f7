//! HyperLogLog commands compared with a real redis-server: replies byte for byte, and the
//! stored representation itself (`GET key`) byte for byte, sparse and dense, with the cached
//! cardinality's bytes after PFCOUNT.

mod common;
use common::{assert_same, Raw, Server};

/// Adds elements `prefix{from..to}` to `key` in commands of `per` elements; returns the
/// concatenated replies.
fn add_range(c: &mut Raw, key: &str, prefix: &str, from: usize, to: usize, per: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = from;
    while i < to {
        let end = (i + per).min(to);
        let eles: Vec<String> = (i..end).map(|j| format!("{prefix}{j}")).collect();
        let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
        args.extend(eles.iter().map(|e| e.as_bytes()));
        out.extend(c.cmd_bytes(&args));
        i = end;
    }
    out
}

/// The same GET reply (the HyperLogLog's raw bytes) from both servers.
fn same_bytes(s: &mut Raw, o: &mut Raw, key: &str) {
    let a = s.cmd_bytes(&[b"GET", key.as_bytes()]);
    let b = o.cmd_bytes(&[b"GET", key.as_bytes()]);
    assert!(a == b, "GET {key}: {} bytes from slotcore vs {} from redis-server", a.len(), b.len());
}

#[test]
fn representation_is_redis_bytes() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let (mut sc, mut oc) = (s.raw(), o.raw());
    // Empty, then growing through the sparse encoding into dense, comparing at each step,
    // before and after PFCOUNT fills the cache.
    assert_same(&mut sc, &mut oc, &[&["PFADD", "h"], &["STRLEN", "h"], &["PFDEBUG", "ENCODING", "h"]]);
    same_bytes(&mut sc, &mut oc, "h");
    let steps = [1, 2, 5, 10, 30, 100, 200, 400, 700, 1000, 1500, 2000, 3000, 5000, 20000];
    let mut done = 0;
    for &n in &steps {
        assert_eq!(add_range(&mut sc, "h", "el:", done, n, 100), add_range(&mut oc, "h", "el:", done, n, 100));
        done = n;
        same_bytes(&mut sc, &mut oc, "h");
        assert_same(&mut sc, &mut oc, &[&["PFDEBUG", "ENCODING", "h"], &["PFCOUNT", "h"]]);
        same_bytes(&mut sc, &mut oc, "h");
        if n <= 400 {
            assert_same(&mut sc, &mut oc, &[&["PFDEBUG", "DECODE", "h"]]);
        }
    }
    // Elements re-added change nothing (reply 0, cache stays valid).
    assert_eq!(add_range(&mut sc, "h", "el:", 0, 50, 50), add_range(&mut oc, "h", "el:", 0, 50, 50));
    same_bytes(&mut sc, &mut oc, "h");
    // Binary elements and every tail length of MurmurHash64A.
    for len in 0..20usize {
        let ele: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37) ^ 0xA5).collect();
        let a = sc.cmd_bytes(&[b"PFADD", b"bin", &ele]);
        let b = oc.cmd_bytes(&[b"PFADD", b"bin", &ele]);
        assert_eq!(a, b, "binary element of length {len}");
    }
    same_bytes(&mut sc, &mut oc, "bin");
    // A smaller sparse limit turns values dense sooner.
    assert_same(&mut sc, &mut oc, &[&["CONFIG", "SET", "hll-sparse-max-bytes", "60"]]);
    for n in [5, 20, 40] {
        add_range(&mut sc, "small", "x", 0, n, 7);
        add_range(&mut oc, "small", "x", 0, n, 7);
        same_bytes(&mut sc, &mut oc, "small");
        assert_same(&mut sc, &mut oc, &[&["PFDEBUG", "ENCODING", "small"]]);
    }
    assert_same(&mut sc, &mut oc, &[&["CONFIG", "SET", "hll-sparse-max-bytes", "3000"]]);
}

#[test]
fn million_elements_count_like_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut sc, mut oc) = (s.raw(), o.raw());
    assert_eq!(
        add_range(&mut sc, "big", "user:", 0, 1_000_000, 2000),
        add_range(&mut oc, "big", "user:", 0, 1_000_000, 2000)
    );
    same_bytes(&mut sc, &mut oc, "big");
    let a = sc.cmd(&["PFCOUNT", "big"]);
    assert_eq!(a, oc.cmd(&["PFCOUNT", "big"]));
    let n: f64 = a.trim_start_matches(':').trim().parse().expect("integer reply");
    // (Redis's own estimate for these elements; other element sets can be off by 2%.)
    assert!((n - 1e6).abs() / 1e6 < 0.01, "estimate {n} is off by more than 1%");
    same_bytes(&mut sc, &mut oc, "big");
    assert_same(&mut sc, &mut oc, &[&["PFDEBUG", "ENCODING", "big"], &["PFCOUNT", "big", "nokey"]]);
}

#[test]
fn merge_and_union_across_shards() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let (mut sc, mut oc) = (s.raw(), o.raw());
    // "a" and "age" live on different shards of a two-shard node; "{a}d" with "a".
    for (key, from, to) in [("a", 0, 300), ("age", 200, 6000), ("{a}d", 5000, 5100)] {
        assert_eq!(add_range(&mut sc, key, "u", from, to, 500), add_range(&mut oc, key, "u", from, to, 500));
    }
    assert_same(
        &mut sc,
        &mut oc,
        &[
            &["PFCOUNT", "a", "age"],
            &["PFCOUNT", "a", "age", "{a}d", "nokey"],
            &["PFCOUNT", "nokey", "nokey2"],
            &["PFMERGE", "dst", "a", "{a}d"],
            &["PFDEBUG", "ENCODING", "dst"],
            &["PFCOUNT", "dst"],
            &["PFMERGE", "dst2", "a", "age"],
            &["PFDEBUG", "ENCODING", "dst2"],
            &["PFCOUNT", "dst2"],
            &["PFMERGE", "a", "age"],
            &["PFCOUNT", "a"],
            &["PFMERGE", "only"],
            &["PFCOUNT", "only"],
            &["TYPE", "only"],
            &["PFMERGE", "nokey", "nokey2"],
            &["EXISTS", "nokey"],
        ],
    );
    for k in ["dst", "dst2", "a", "only", "nokey"] {
        same_bytes(&mut sc, &mut oc, k);
    }
    // The union count leaves its keys alone: the cached cardinality of "age" stays invalid.
    same_bytes(&mut sc, &mut oc, "age");
}

#[test]
fn errors_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let (mut sc, mut oc) = (s.raw(), o.raw());
    let mut both = |args: &[&[u8]]| {
        let a = sc.cmd_bytes(args);
        let b = oc.cmd_bytes(args);
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "command {:?}", args);
    };
    // A sparse HLL whose opcodes cover only 256 registers, and one with a broken tail.
    let mut short = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    short.extend_from_slice(&[0x40, 0xff]);
    let mut tail = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    tail.extend_from_slice(&[0x7f, 0xfe, 0x80, 0xff]);
    let dense_short = b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80xx".to_vec();
    let bad_enc = b"HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff".to_vec();
    both(&[b"SET", b"short", &short]);
    both(&[b"SET", b"tail", &tail]);
    both(&[b"SET", b"dshort", &dense_short]);
    both(&[b"SET", b"badenc", &bad_enc]);
    both(&[b"SET", b"str", b"hello world, not an hll"]);
    both(&[b"SET", b"int", b"12345678901234567"]);
    both(&[b"RPUSH", b"list", b"x"]);
    both(&[b"PFADD", b"good", b"x", b"y"]);
    for key in [&b"short"[..], b"tail", b"dshort", b"badenc", b"str", b"int", b"list", b"nokey"] {
        both(&[b"PFCOUNT", key]);
        both(&[b"PFADD", key, b"a", b"b", b"c"]);
        both(&[b"PFCOUNT", key, b"good"]);
        both(&[b"PFCOUNT", b"good", key]);
        both(&[b"PFMERGE", b"out", b"good", key]);
        both(&[b"PFMERGE", key, b"good"]);
        both(&[b"PFDEBUG", b"ENCODING", key]);
        both(&[b"PFDEBUG", b"DECODE", key]);
        both(&[b"PFDEBUG", b"TODENSE", key]);
        both(&[b"PFDEBUG", b"bogus", key]);
        both(&[b"GET", key]);
    }
    both(&[b"PFDEBUG", b"GETREG", b"short"]);
    both(&[b"PFADD"]);
    both(&[b"PFCOUNT"]);
    both(&[b"PFMERGE"]);
    both(&[b"PFDEBUG", b"ENCODING"]);
    both(&[b"PFDEBUG", b"ENCODING", b"good", b"extra"]);
    both(&[b"PFSELFTEST", b"x"]);
}

#[test]
fn debug_and_selftest() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut sc, mut oc) = (s.raw(), o.raw());
    add_range(&mut sc, "d", "q", 0, 500, 100);
    add_range(&mut oc, "d", "q", 0, 500, 100);
    assert_same(
        &mut sc,
        &mut oc,
        &[
            &["PFDEBUG", "DECODE", "d"],
            &["PFDEBUG", "getreg", "d"],
            &["PFDEBUG", "ENCODING", "d"],
            &["PFDEBUG", "TODENSE", "d"],
            &["PFDEBUG", "TODENSE", "d"],
            &["PFDEBUG", "DECODE", "d"],
            &["PFCOUNT", "d"],
        ],
    );
    // RESP3 (HELLO's client id differs, so it is not compared).
    sc.cmd(&["HELLO", "3"]);
    oc.cmd(&["HELLO", "3"]);
    assert_same(
        &mut sc,
        &mut oc,
        &[&["PFDEBUG", "GETREG", "d"], &["PFCOUNT", "d", "e"], &["PFADD", "d", "new"], &["PFMERGE", "d", "d"]],
    );
    same_bytes(&mut sc, &mut oc, "d");
    assert_eq!(sc.cmd(&["PFSELFTEST"]), "+OK\r\n");
}

/// A HyperLogLog short enough to be `embstr` (made by RESTORE) stays `embstr` when only read:
/// PFCOUNT of several keys and PFMERGE's keys leave it as stored, also when PFMERGE then fails
/// on a later key of another type (inside MULTI too); PFCOUNT of the key alone caches the
/// count in it and makes it `raw`, as Redis's. Until 2026-12-07 every read made it `raw`
/// (found by the differential test).
#[test]
fn reads_leave_an_embstr_hyperloglog_as_stored() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let copy = "local d = redis.call('DUMP', KEYS[1]) redis.call('RESTORE', KEYS[2], 0, d) \
                redis.call('RESTORE', KEYS[3], 0, d) return 1";
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["PFADD", "{h}1", "a"],
            &["EVAL", copy, "3", "{h}1", "{h}2", "{h}3"],
            &["OBJECT", "ENCODING", "{h}2"],
            &["SADD", "{h}s", "x"],
            &["PFMERGE", "{h}2", "{h}1", "{h}s"],
            &["OBJECT", "ENCODING", "{h}2"],
            &["MULTI"],
            &["PFMERGE", "{h}3", "{h}1", "{h}s"],
            &["EXEC"],
            &["OBJECT", "ENCODING", "{h}3"],
            &["PFCOUNT", "{h}2", "{h}1"],
            &["OBJECT", "ENCODING", "{h}2"],
            &["PFCOUNT", "{h}2"],
            &["OBJECT", "ENCODING", "{h}2"],
        ],
    );
}
