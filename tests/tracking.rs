//! CLIENT TRACKING compared with a real redis-server, frame by frame: RESP3 invalidation
//! pushes after the reply that caused them, RESP2 redirection on `__redis__:invalidate`,
//! BCAST with prefixes (one message per prefix, keys sorted), OPTIN/OPTOUT with CLIENT
//! CACHING, NOLOOP, FLUSHALL's null invalidation, lazy expiry, a redirect target that goes
//! away (`tracking-redir-broken`), TRACKINGINFO/GETREDIR and the error texts; on slotcore with
//! two shards, so readers, writers and keys sit on different shards.

mod common;
use common::{Raw, Server};

/// One step: which connection sends (None: only read), the command, and how many frames to
/// read on which connection afterwards.
type Step<'a> = (Option<usize>, &'a [&'a str], &'a [(usize, usize)]);

/// Runs `steps` on three connections to `port` (0: the tracker, 1: a writer, 2: a redirect
/// target subscribed to `__redis__:invalidate`, whose id replaces `$R` in commands) and returns
/// every frame read, in order.
fn run(port: u16, steps: &[Step<'_>]) -> Vec<String> {
    let mut c = [Raw::connect(port), Raw::connect(port), Raw::connect(port)];
    let rid = c[2].cmd(&["CLIENT", "ID"]).trim_start_matches(':').trim().to_string();
    c[2].cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut out = Vec::new();
    for (who, cmd, reads) in steps {
        if cmd == &["$WAITGONE"] {
            // Until the redirect target's disconnect has been processed.
            let deadline = std::time::Instant::now() + common::WAIT;
            while c[1].cmd(&["CLIENT", "LIST"]).contains(&format!("id={rid} ")) {
                assert!(std::time::Instant::now() < deadline, "client {rid} still listed");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        if let Some(w) = who {
            let args: Vec<String> = cmd.iter().map(|a| if *a == "$R" { rid.clone() } else { a.to_string() }).collect();
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            c[*w].send_cmd(&a);
        }
        for &(conn, n) in reads.iter() {
            for _ in 0..n {
                let frame = c[conn].reply().replace(&format!(":{rid}\r\n"), ":$R\r\n");
                // Connection ids depend on how many probes each server's start-up took.
                let frame = match frame.find("$2\r\nid\r\n:") {
                    Some(i) => {
                        let rest = &frame[i + 9..];
                        let end = rest.find("\r\n").map_or(rest.len(), |e| e);
                        format!("{}:ID{}", &frame[..i + 8], &rest[end..])
                    }
                    None => frame,
                };
                out.push(format!("{cmd:?} -> conn {conn}: {frame}"));
            }
        }
    }
    out
}

fn compare(steps: &[Step<'_>]) {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let a = run(s.port, steps);
    let b = run(o.port, steps);
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x, y, "slotcore {x:?} vs redis-server {y:?}");
    }
    assert_eq!(a.len(), b.len());
}

#[test]
fn default_mode_resp3_and_redirect_match_redis() {
    compare(&[
        (Some(0), &["HELLO", "3"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKINGINFO"], &[(0, 1)]),
        (Some(0), &["CLIENT", "GETREDIR"], &[(0, 1)]),
        (Some(1), &["MSET", "{t}1", "1", "{t}2", "2", "{t}3", "3"], &[(1, 1)]),
        // Keys of one slot, so every read and write stays on one shard.
        (Some(0), &["MGET", "{t}1", "{t}2", "{t}3"], &[(0, 1)]),
        // A write by another client: the reader hears about each tracked key once.
        (Some(1), &["SET", "{t}1", "x"], &[(1, 1), (0, 1)]),
        (Some(1), &["SET", "{t}1", "y"], &[(1, 1)]),
        (Some(1), &["DEL", "{t}2"], &[(1, 1), (0, 1)]),
        // Its own write: the reply first, then the invalidation.
        (Some(0), &["HSET", "h", "f", "1"], &[(0, 1)]),
        (Some(0), &["HGET", "h", "f"], &[(0, 1)]),
        (Some(0), &["HDEL", "h", "f"], &[(0, 2)]),
        // FLUSHALL: a null invalidation.
        (Some(1), &["FLUSHALL"], &[(1, 1), (0, 1)]),
        // Redirected to a RESP2 subscriber.
        (Some(0), &["CLIENT", "TRACKING", "off"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "REDIRECT", "$R"], &[(0, 1)]),
        (Some(0), &["CLIENT", "GETREDIR"], &[(0, 1)]),
        (Some(0), &["GET", "a"], &[(0, 1)]),
        (Some(0), &["GET", "b"], &[(0, 1)]),
        (Some(1), &["SET", "a", "1"], &[(1, 1), (2, 1)]),
        (Some(1), &["SET", "b", "1"], &[(1, 1), (2, 1)]),
        // (FLUSHALL's null invalidation to a RESP2 redirect target of a RESP3 tracker: Redis
        // writes it in the tracker's protocol, `_`; slotcore writes `$-1` — not compared.)
        (Some(0), &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "REDIRECT", "$R", "REDIRECT", "$R"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "PREFIX", "x"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "BCAST"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "maybe"], &[(0, 1)]),
        (Some(0), &["CLIENT", "CACHING", "yes"], &[(0, 1)]),
    ]);
}

#[test]
fn bcast_optin_optout_noloop_match_redis() {
    compare(&[
        (Some(0), &["HELLO", "3"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "a"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKINGINFO"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "xy"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "OPTIN"], &[(0, 1)]),
        // One write touching keys under both prefixes and none: one message per prefix.
        (Some(1), &["MSET", "a{t}2", "1", "b{t}1", "2", "a{t}1", "3", "c{t}1", "4"], &[(1, 1), (0, 2)]),
        (Some(0), &["CLIENT", "TRACKING", "off"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "OPTIN"], &[(0, 1)]),
        (Some(0), &["CLIENT", "CACHING", "no"], &[(0, 1)]),
        (Some(0), &["GET", "o1"], &[(0, 1)]),
        (Some(0), &["CLIENT", "CACHING", "yes"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKINGINFO"], &[(0, 1)]),
        (Some(0), &["GET", "o2"], &[(0, 1)]),
        // Only o2 was cached: one invalidation.
        (Some(1), &["MSET", "o1", "1", "o2", "2"], &[(1, 1), (0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "OPTOUT"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "off"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "OPTOUT", "NOLOOP"], &[(0, 1)]),
        (Some(0), &["CLIENT", "CACHING", "no"], &[(0, 1)]),
        (Some(0), &["GET", "p1"], &[(0, 1)]),
        (Some(0), &["GET", "p2"], &[(0, 1)]),
        (Some(0), &["GET", "p3"], &[(0, 1)]),
        // NOLOOP: its own write of p2 says nothing; another client's write of p3 does.
        (Some(0), &["SET", "p2", "1"], &[(0, 1)]),
        (Some(1), &["MSET", "p1", "1", "p3", "2"], &[(1, 1), (0, 1)]),
        (Some(0), &["CLIENT", "TRACKINGINFO"], &[(0, 1)]),
        (Some(0), &["PING"], &[(0, 1)]),
    ]);
}

#[test]
fn expiry_and_broken_redirect_match_redis() {
    let steps: &[Step<'_>] = &[
        (Some(0), &["HELLO", "3"], &[(0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on"], &[(0, 1)]),
        (Some(1), &["DEBUG", "SET-ACTIVE-EXPIRE", "0"], &[(1, 1)]),
        (Some(1), &["SET", "e1", "1", "PX", "1500"], &[(1, 1)]),
        (Some(0), &["GET", "e1"], &[(0, 1)]),
        (Some(1), &["DEBUG", "SLEEP", "1.6"], &[(1, 1)]),
        // Another client's lookup expires the key: the tracker hears about it.
        (Some(1), &["EXISTS", "e1"], &[(1, 1), (0, 1)]),
        (Some(0), &["CLIENT", "TRACKING", "on", "REDIRECT", "$R"], &[(0, 1)]),
        (Some(0), &["GET", "g1"], &[(0, 1)]),
        (Some(2), &["QUIT"], &[(2, 1)]),
        (None, &["$WAITGONE"], &[]),
        (Some(1), &["SET", "g1", "1"], &[(1, 1), (0, 1)]),
        (Some(0), &["CLIENT", "TRACKINGINFO"], &[(0, 1)]),
    ];
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let a = run(s.port, steps);
    let b = run(o.port, steps);
    assert_eq!(a, b);
    assert!(a.iter().any(|f| f.contains("tracking-redir-broken")), "{a:?}");
    assert!(a.iter().any(|f| f.contains("broken_redirect")), "{a:?}");
}

#[test]
fn info_counts_trackers_keys_and_prefixes() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let mut b = s.raw();
    r.cmd(&["CLIENT", "TRACKING", "on"]);
    // One slot, so every read and write stays on one shard.
    r.cmd(&["MGET", "{t}1", "{t}2", "{t}3"]);
    b.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p:"]);
    let info = r.cmd(&["INFO"]);
    for want in [
        "tracking_clients:2\r\n",
        "tracking_total_keys:3\r\n",
        "tracking_total_items:3\r\n",
        "tracking_total_prefixes:1\r\n",
    ] {
        assert!(info.contains(want), "{want:?} missing from {info}");
    }
    drop(b);
    r.cmd(&["CLIENT", "TRACKING", "off"]);
    // The disconnect of the BCAST client is seen asynchronously: poll with a deadline.
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let info = r.cmd(&["INFO", "clients"]);
        if info.contains("tracking_clients:0\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn info_number(r: &mut Raw, field: &str) -> u64 {
    let info = r.cmd(&["INFO", "all"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn wait_blocked(r: &mut Raw) {
    let deadline = std::time::Instant::now() + common::WAIT;
    while info_number(r, "blocked_clients") == 0 {
        assert!(std::time::Instant::now() < deadline, "no client blocked");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Frames a RESP3 tracker reads when a key it tracks is evicted before its own next command
/// ([`eviction_before_reply`]), and when its blocked BLMOVE is served into a list it tracks
/// ([`served_move`]).
fn eviction_and_served_move(port: u16) -> Vec<String> {
    let (mut t, mut w) = (Raw::connect(port), Raw::connect(port));
    let mut out = eviction_before_reply(&mut t, &mut w);
    out.extend(served_move(&mut t, &mut w, "list1", "list2"));
    out
}

#[test]
fn eviction_and_served_moves_invalidate_as_redis() {
    // One shard: eviction before a command runs on the caller's shard (the cron evicts on
    // the others), so the evicted key must be there for the "before the reply" order.
    let s = Server::slotcore(&["--shards", "1"]);
    let o = Server::redis(&[]);
    let want = eviction_and_served_move(o.port);
    assert!(want[2].starts_with('>'), "redis-server's push first: {want:?}");
    assert_eq!(eviction_and_served_move(s.port), want);
}

/// Frames a RESP3 tracker `t` reads when the volatile key it tracks is evicted before its
/// next command; `w` sets the ceiling. On two shards "volatile-key" lives on shard 1 and
/// "big-key" on shard 0.
fn eviction_before_reply(t: &mut Raw, w: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    w.cmd(&["FLUSHALL"]);
    t.cmd(&["HELLO", "3"]);
    t.cmd(&["CLIENT", "TRACKING", "on"]);
    t.cmd(&["SETEX", "volatile-key", "10000", "x"]);
    out.push(t.cmd(&["GET", "volatile-key"]));
    let used = info_number(w, "used_memory") - info_number(w, "mem_not_counted_for_evict");
    w.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
    w.cmd(&["CONFIG", "SET", "maxmemory", &(used + 100 * 1024).to_string()]);
    out.push(t.cmd(&["SETBIT", "big-key", "1600000", "0"]));
    out.push(t.cmd(&["GETBIT", "big-key", "0"]));
    out.push(t.reply());
    w.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    w.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    t.cmd(&["CLIENT", "TRACKING", "off"]);
    out
}

#[test]
fn eviction_on_any_shard_invalidates_before_the_reply() {
    let o = Server::redis(&[]);
    let want = eviction_before_reply(&mut o.raw(), &mut o.raw());
    assert!(want[2].starts_with('>'), "redis-server's push first: {want:?}");
    let s = Server::slotcore_shards(2);
    // A first round warms the node up (its first commands allocate for good).
    let (mut on0, mut on1) = common::one_per_shard(&s);
    eviction_before_reply(&mut on0, &mut on1);
    for _ in 0..2 {
        // The evicted key on the tracker's shard, the big key elsewhere ...
        let (mut on0, mut on1) = common::one_per_shard(&s);
        assert_eq!(eviction_before_reply(&mut on1, &mut on0), want, "tracker on shard 1");
        // ... and the evicted key on the other shard only.
        let (mut on0, mut on1) = common::one_per_shard(&s);
        assert_eq!(eviction_before_reply(&mut on0, &mut on1), want, "tracker on shard 0");
    }
}

/// Frames a RESP3 tracker `t` reads when its BLMOVE from `src` into `dst` (a list it read)
/// is served by `w`'s push: the reply, then the invalidation of `dst`.
fn served_move(t: &mut Raw, w: &mut Raw, src: &str, dst: &str) -> Vec<String> {
    let mut out = Vec::new();
    w.cmd(&["DEL", src, dst]);
    w.cmd(&["RPUSH", dst, "a"]);
    t.cmd(&["HELLO", "3"]);
    t.cmd(&["CLIENT", "TRACKING", "on"]);
    out.push(t.cmd(&["LRANGE", dst, "0", "-1"]));
    t.send_cmd(&[b"BLMOVE", src.as_bytes(), dst.as_bytes(), b"LEFT", b"LEFT", b"0"]);
    wait_blocked(w);
    out.push(w.cmd(&["RPUSH", src, "foo"]));
    out.push(t.reply());
    out.push(t.reply());
    t.cmd(&["CLIENT", "TRACKING", "off"]);
    out
}

#[test]
fn served_blmove_invalidates_after_its_reply_on_any_shard() {
    let o = Server::redis(&[]);
    let want = served_move(&mut o.raw(), &mut o.raw(), "l1{t}", "l2{t}");
    let s = Server::slotcore_shards(2);
    // "{a}" lives on shard 1, "{b}" on shard 0: the lists on the tracker's shard or the other.
    for (src, dst) in [("l1{a}", "l2{a}"), ("l1{b}", "l2{b}")] {
        let (mut on0, mut on1) = common::one_per_shard(&s);
        let got = served_move(&mut on0, &mut on1, src, dst);
        assert_eq!(got.join("|").replace(&dst[2..], "{t}"), want.join("|"), "tracker on shard 0");
        let (mut on0, mut on1) = common::one_per_shard(&s);
        let got = served_move(&mut on1, &mut on0, src, dst);
        assert_eq!(got.join("|").replace(&dst[2..], "{t}"), want.join("|"), "tracker on shard 1");
    }
}

/// Frames a RESP3 NOLOOP tracker `t` reads when its own script and its own MSET write keys it
/// tracks: no invalidation for its own writes.
fn noloop_own_writes(t: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    t.cmd(&["HELLO", "3"]);
    t.cmd(&["CLIENT", "TRACKING", "on", "NOLOOP"]);
    for k in ["a", "b"] {
        t.cmd(&["SET", k, "1"]);
        out.push(t.cmd(&["GET", k]));
        out.push(t.cmd(&["EVAL", "return redis.call('set', KEYS[1], '2')", "1", k]));
        out.push(t.cmd(&["GET", k]));
    }
    out.push(t.cmd(&["MSET", "a", "3", "b", "3"]));
    out.push(t.cmd(&["GET", "a"]));
    out.push(t.cmd(&["GET", "b"]));
    out.push(t.cmd(&["PING"]));
    t.cmd(&["CLIENT", "TRACKING", "off"]);
    out
}

#[test]
fn noloop_skips_own_writes_to_keys_of_another_shard() {
    let o = Server::redis(&[]);
    let want = noloop_own_writes(&mut o.raw());
    let s = Server::slotcore_shards(2);
    // "a" lives on shard 1, "b" on shard 0: a script or MSET writes a key of the other shard.
    let (mut on0, mut on1) = common::one_per_shard(&s);
    assert_eq!(noloop_own_writes(&mut on0), want, "tracker on shard 0");
    assert_eq!(noloop_own_writes(&mut on1), want, "tracker on shard 1");
}

/// Frames a RESP3 tracker `t` reads after its script read a declared key `k` (and after one
/// that only wrote) and `w` writes `k`.
fn script_read_tracks(t: &mut Raw, w: &mut Raw, k: &str) -> Vec<String> {
    let mut out = Vec::new();
    t.cmd(&["HELLO", "3"]);
    t.cmd(&["CLIENT", "TRACKING", "on"]);
    w.cmd(&["SET", k, "1"]);
    // A script that only writes remembers nothing.
    out.push(t.cmd(&["EVAL", "redis.call('set', KEYS[1], '0')", "1", k]));
    out.push(w.cmd(&["SET", k, "1"]));
    out.push(t.cmd(&["PING"]));
    // One that reads remembers its declared keys.
    out.push(t.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", k]));
    out.push(w.cmd(&["SET", k, "2"]));
    out.push(t.cmd(&["PING"]));
    out.push(t.reply());
    // One that also reads an undeclared key (run on the whole node here) does too.
    out.push(t.cmd(&["EVAL", "return redis.call('get', KEYS[1] .. 'x')", "1", k]));
    out.push(w.cmd(&["SET", k, "3"]));
    out.push(t.cmd(&["PING"]));
    out.push(t.reply());
    t.cmd(&["CLIENT", "TRACKING", "off"]);
    out
}

#[test]
fn script_reads_track_declared_keys_of_another_shard() {
    let o = Server::redis(&[]);
    let want = script_read_tracks(&mut o.raw(), &mut o.raw(), "k");
    assert!(want[5].starts_with('>'), "redis-server's push: {want:?}");
    let s = Server::slotcore_shards(2);
    // "a" lives on shard 1, "b" on shard 0.
    for k in ["a", "b"] {
        let (mut on0, mut on1) = common::one_per_shard(&s);
        let got = script_read_tracks(&mut on0, &mut on1, k);
        assert_eq!(
            got.join("|").replace("$1\r\na\r\n", "$1\r\nk\r\n").replace("$1\r\nb\r\n", "$1\r\nk\r\n"),
            want.join("|"),
            "tracker on shard 0, key {k}"
        );
        let (mut on0, mut on1) = common::one_per_shard(&s);
        let got = script_read_tracks(&mut on1, &mut on0, k);
        assert_eq!(
            got.join("|").replace("$1\r\na\r\n", "$1\r\nk\r\n").replace("$1\r\nb\r\n", "$1\r\nk\r\n"),
            want.join("|"),
            "tracker on shard 1, key {k}"
        );
    }
}
