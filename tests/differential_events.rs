//! Differential test of what other connections hear: the random streams of
//! `tests/differential.rs` go to a slotcore node of several shards and to a redis-server, and
//! after every command the messages other connections received since the one before must be
//! the same, in the same order (but for the `keymiss` events of a SORT .. BY over a hash
//! table, whose order Redis draws at start: see [`keymiss_order_tolerated`]):
//!
//! - keyspace notifications, heard by a PSUBSCRIBE `__key*__:*` subscriber, with another set
//!   of classes each seed (`notify-keyspace-events`);
//! - CLIENT TRACKING invalidations, heard by trackers that keep reading keys of the stream:
//!   a RESP3 tracker in the default mode, one with OPTOUT, one in BCAST mode with prefixes,
//!   and a RESP2 tracker with OPTIN whose invalidations go to a `__redis__:invalidate`
//!   subscriber (REDIRECT).
//!
//! One client sends the stream and waits for every reply, so Redis's order is defined: each
//! write's messages are in the listeners' buffers before its reply. A subscriber's messages
//! are read up to a marker published after the command by another connection; a tracker's
//! pushes are those before the reply of its own next command.

mod common;
mod mix;

use common::{Raw, Server};
use mix::*;

/// The raw frames `c` reads before the first one `last` accepts (which is read too and, with
/// `keep_last`, returned last).
fn frames_until(c: &mut Raw, last: &dyn Fn(&str) -> bool, keep_last: bool) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let f = c.reply();
        if last(&f) {
            if keep_last {
                out.push(f);
            }
            return out;
        }
        out.push(f);
    }
}

/// A RESP2 `message` frame on the channel `marker` carrying `tag`.
fn is_marker(frame: &str, tag: &str) -> bool {
    frame == format!("*3\r\n$7\r\nmessage\r\n$6\r\nmarker\r\n${}\r\n{tag}\r\n", tag.len())
}

/// A connection subscribed to `patterns` and to the channel `marker`.
fn subscriber(port: u16, patterns: &[&str], channels: &[&str]) -> Raw {
    let mut c = Raw::connect(port);
    for p in patterns {
        assert!(c.cmd(&["PSUBSCRIBE", p]).contains("psubscribe"));
    }
    for ch in channels.iter().chain(&["marker"]) {
        assert!(c.cmd(&["SUBSCRIBE", ch]).contains("subscribe"));
    }
    c
}

/// What `sub` heard until the marker `tag` that `ctl` publishes now.
fn heard(ctl: &mut Raw, sub: &mut Raw, tag: &str) -> Vec<String> {
    assert!(ctl.cmd(&["PUBLISH", "marker", tag]).starts_with(':'));
    frames_until(sub, &|f| is_marker(f, tag), false)
}

/// Panics with the frames of both sides, what slotcore sends after (`late`: a frame that
/// came too late, or never), and the stream's last commands when they differ.
fn same(what: &str, ours: Vec<String>, theirs: Vec<String>, history: &[String], late: impl FnOnce() -> Vec<String>) {
    if ours != theirs {
        let start = history.len().saturating_sub(8);
        panic!(
            "{what} after {:?}\n  slotcore:     {ours:?}\n  redis-server: {theirs:?}\n  slotcore then: {:?}\n  \
             last commands:\n    {}",
            history.last(),
            late(),
            history[start..].join("\n    ")
        );
    }
}

/// The seeds to run: SLOTCORE_DIFF_SEEDS of them (`default` unless set), from
/// SLOTCORE_DIFF_FIRST_SEED (1 unless set) on, to replay one.
fn seeds(default: u64) -> std::ops::RangeInclusive<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let first = var("SLOTCORE_DIFF_FIRST_SEED").unwrap_or(1);
    first..=first + var("SLOTCORE_DIFF_SEEDS").unwrap_or(default) - 1
}

fn shards() -> String {
    std::env::var("SLOTCORE_DIFF_SHARDS").unwrap_or_else(|_| "3".to_string())
}

/// The classes of each seed, in turn: all of them, with `new` and `keymiss`, and subsets.
const CLASSES: [&str; 5] = ["KEA", "KEAnm", "Eg$lshzxetd", "Kglz", "K$shtnm"];

/// The commands of the stream's last step: the block's after EXEC, else the last one.
fn last_step(history: &[String]) -> &[String] {
    match history.last().map(String::as_str) {
        Some("EXEC") => {
            let from = history.iter().rposition(|c| c == "MULTI").map_or(0, |i| i + 1);
            &history[from..]
        }
        _ => history.get(history.len().saturating_sub(1)..).unwrap_or(&[]),
    }
}

/// Whether two differing lists of notifications are tolerated: the same frames, only the
/// `keymiss` ones in another order, after a SORT .. BY of a sorted set or of a set in the
/// `hashtable` encoding. Redis reads the BY keys of such a key's elements in the order of its
/// hash table (a sorted set's member table), which follows the hash seed each process draws
/// at start, so two redis-servers differ as well: which keys miss is defined, not the order.
fn keymiss_order_tolerated(ours: &[String], theirs: &[String], history: &[String], redis: &mut Raw) -> bool {
    let sorts_a_table = last_step(history).iter().any(|c| {
        let words: Vec<&str> = c.split(' ').collect();
        let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case("sort") || w.eq_ignore_ascii_case("sort_ro"))
        else {
            return false;
        };
        // A BY pattern with `*` (one without sorts nothing and reads no BY keys).
        let by = words[at..].windows(2).any(|w| w[0].eq_ignore_ascii_case("by") && w[1].contains('*'));
        // OBJECT ENCODING raises no event (SORT left a sorted set as a skiplist).
        let table = |k: &&str| {
            let enc = redis.cmd(&["OBJECT", "ENCODING", k]);
            enc.contains("hashtable") || enc.contains("skiplist")
        };
        by && words.get(at + 1).is_some_and(table)
    });
    let split = |frames: &[String]| {
        let (mut miss, rest): (Vec<String>, Vec<String>) = frames.iter().cloned().partition(|f| f.contains("keymiss"));
        miss.sort();
        (miss, rest)
    };
    sorts_a_table && split(ours) == split(theirs)
}

#[test]
fn random_commands_notify_as_redis() {
    let shards = shards();
    let servers = [
        Server::slotcore(&["--shards", &shards, "--enable-debug-command", "yes"]),
        Server::redis(&["--enable-debug-command", "yes"]),
    ];
    let mut ctl: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    let mut subs: Vec<Raw> = servers.iter().map(|s| subscriber(s.port, &["__key*__:*"], &[])).collect();
    let (mut ours, mut theirs) = (servers[0].raw(), servers[1].raw());
    for seed in seeds(3) {
        let classes = CLASSES[(seed as usize - 1) % CLASSES.len()];
        for c in ctl.iter_mut() {
            assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", classes]), "+OK\r\n");
        }
        let mut after = |history: &[String]| {
            let tag = history.len().to_string();
            let ours = heard(&mut ctl[0], &mut subs[0], &tag);
            let theirs = heard(&mut ctl[1], &mut subs[1], &tag);
            // The lex-range check (`mix::both`) asked redis-server alone about the key (its
            // `keymiss` events too).
            let last = history.last().map_or("", String::as_str);
            if last.contains("BYLEX") && last.contains("[a") {
                return;
            }
            if ours != theirs && keymiss_order_tolerated(&ours, &theirs, history, &mut ctl[1]) {
                return;
            }
            let late = || heard(&mut ctl[0], &mut subs[0], "late");
            same(&format!("notifications ({classes}, seed {seed})"), ours, theirs, history, late);
        };
        run_seed_with(seed * 0x8cb9_2ba7_2f3d_8dd7, &mut ours, &mut theirs, 400, &mut after);
        // The digests' SELECTs left both in database 0.
    }
}

/// Read commands a tracker sends (every one declares its keys, so it tracks them).
fn read(rng: &mut Rng) -> Vec<String> {
    let k = |rng: &mut Rng| rng.pick(&KEYS).to_string();
    let m = |rng: &mut Rng| rng.pick(&MEMBERS).to_string();
    let c: Vec<String> = match rng.below(12) {
        0 => vec!["GET".into(), k(rng)],
        1 => vec!["MGET".into(), k(rng), k(rng)],
        2 => vec!["EXISTS".into(), k(rng), k(rng), k(rng)],
        3 => vec!["TYPE".into(), k(rng)],
        4 => vec!["STRLEN".into(), k(rng)],
        5 => vec!["LRANGE".into(), k(rng), "0".into(), "-1".into()],
        6 => vec!["HGET".into(), k(rng), m(rng)],
        7 => vec!["SISMEMBER".into(), k(rng), m(rng)],
        8 => vec!["ZRANGE".into(), k(rng), "0".into(), "-1".into(), "WITHSCORES".into()],
        9 => vec!["XLEN".into(), k(rng)],
        10 => vec!["BITCOUNT".into(), k(rng)],
        _ => vec!["ZSCORE".into(), k(rng), m(rng)],
    };
    c
}

/// A tracker's connection: how it was switched on, and what it sends before a read.
struct Tracker {
    conn: Raw,
    /// CLIENT CACHING before some reads (OPTIN: yes, OPTOUT: no).
    caching: Option<&'static str>,
    /// Whether it reads at all (BCAST trackers need not).
    reads: bool,
}

/// The four trackers on the server at `port` (the last one redirects to `redirect`'s client).
fn trackers(port: u16, redirect: &mut Raw) -> Vec<Tracker> {
    let id = redirect.cmd(&["CLIENT", "ID"]).trim().trim_start_matches(':').to_string();
    assert!(redirect.cmd(&["SUBSCRIBE", "__redis__:invalidate"]).contains("subscribe"));
    assert!(redirect.cmd(&["SUBSCRIBE", "marker"]).contains("subscribe"));
    let modes: [(&[&str], Option<&'static str>, bool, bool); 4] = [
        (&[], None, true, true),
        (&["OPTOUT"], Some("no"), true, true),
        (&["BCAST", "PREFIX", "k1", "PREFIX", "k3"], None, false, true),
        (&["REDIRECT", &id, "OPTIN"], Some("yes"), true, false),
    ];
    modes
        .into_iter()
        .map(|(opts, caching, reads, resp3)| {
            let mut conn = Raw::connect(port);
            if resp3 {
                assert!(conn.cmd(&["HELLO", "3"]).starts_with('%'));
            }
            let mut args = vec!["CLIENT", "TRACKING", "on"];
            args.extend(opts);
            assert!(conn.cmd(&args).starts_with('+'), "{args:?}");
            Tracker { conn, caching, reads }
        })
        .collect()
}

/// A tracker's turn after a command of the stream: its next command (a read, or PING), sent
/// and answered, with the invalidation pushes before the reply.
fn turn(t: &mut Tracker, rng: &mut Rng) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmd = vec!["PING".to_string()];
    if t.reads && rng.below(3) == 0 {
        if let (Some(c), true) = (t.caching, rng.below(2) == 0) {
            t.conn.send_cmd(&[b"CLIENT", b"CACHING", c.as_bytes()]);
            out.extend(frames_until(&mut t.conn, &|f| !f.starts_with('>'), true));
        }
        cmd = read(rng);
    }
    let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
    t.conn.send_cmd(&a);
    out.extend(frames_until(&mut t.conn, &|f| !f.starts_with('>'), true));
    out.push(cmd.join(" "));
    out
}

/// The keys `frames` invalidate (sorted), and the frames that invalidate no keys.
fn invalidated(frames: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut keys, mut rest) = (Vec::new(), Vec::new());
    for f in frames {
        match f.split_once("invalidate\r\n*") {
            Some((_, list)) => keys.extend(list.split("\r\n").skip(2).step_by(2).map(String::from)),
            None => rest.push(f.clone()),
        }
    }
    keys.retain(|k| !k.is_empty());
    keys.sort();
    (keys, rest)
}

/// Whether two differing turns are tolerated: the same keys invalidated, in another order or
/// grouping, after a transaction or a script (slotcore invalidates the keys such work wrote on
/// several shards shard by shard, not in the order it wrote them), or for the BCAST tracker
/// (Redis sends one message per prefix for all the keys written; slotcore one per shard).
fn tolerated(ours: &[String], theirs: &[String], history: &[String], bcast: bool) -> bool {
    let last = history.last().map_or("", String::as_str);
    (bcast || last == "EXEC" || last.starts_with("EVAL")) && invalidated(ours) == invalidated(theirs)
}

#[test]
fn random_commands_invalidate_as_redis() {
    let shards = shards();
    let servers = [
        Server::slotcore(&["--shards", &shards, "--enable-debug-command", "yes"]),
        Server::redis(&["--enable-debug-command", "yes"]),
    ];
    let mut ctl: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    let mut redirect: Vec<Raw> = servers.iter().map(|s| s.raw()).collect();
    let mut all: Vec<Vec<Tracker>> =
        servers.iter().zip(redirect.iter_mut()).map(|(s, r)| trackers(s.port, r)).collect();
    let (mut ours, mut theirs) = (servers[0].raw(), servers[1].raw());
    for seed in seeds(3) {
        let mut rng = Rng(seed * 0x94d0_49bb_1331_11eb);
        let mut after = |history: &[String]| {
            let tag = history.len().to_string();
            for i in 0..all[0].len() {
                // The same reads on both sides.
                let mut twin = Rng(rng.0);
                let ours = turn(&mut all[0][i], &mut rng);
                let theirs = turn(&mut all[1][i], &mut twin);
                if ours != theirs && tolerated(&ours, &theirs, history, i == 2) {
                    continue;
                }
                let late = || turn(&mut all[0][i], &mut Rng(0));
                same(&format!("tracker {i}'s frames (seed {seed})"), ours, theirs, history, late);
            }
            let ours = heard(&mut ctl[0], &mut redirect[0], &tag);
            let theirs = heard(&mut ctl[1], &mut redirect[1], &tag);
            if ours != theirs && tolerated(&ours, &theirs, history, false) {
                return;
            }
            let late = || heard(&mut ctl[0], &mut redirect[0], "late");
            same(&format!("redirected invalidations (seed {seed})"), ours, theirs, history, late);
        };
        run_seed_with(seed * 0x2127_599b_f432_5c37, &mut ours, &mut theirs, 400, &mut after);
    }
}
