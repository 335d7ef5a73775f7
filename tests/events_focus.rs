//! Focused cases of what `tests/differential_events.rs` found, each beside a redis-server:
//! which writes invalidate which keys for CLIENT TRACKING (store commands, missing keys,
//! consumer groups, reads and writes spanning shards, their order), and keyspace
//! notifications reaching a subscriber before the reply of the command that caused them
//! (GEOSEARCHSTORE's and GEORADIUS .. STORE's events too). slotcore runs with three shards.

mod common;

use common::{Raw, Server};

/// On the server at `port`: a RESP3 tracker `t` and a writer `w`. A step `["t", cmd..]` is
/// the tracker's (its reply is kept); any other step is the writer's, after which the tracker
/// sends PING: the frames it reads up to PONG (its invalidations) are kept.
fn tracker_sees(port: u16, steps: &[&[&str]]) -> Vec<String> {
    let (mut t, mut w) = (Raw::connect(port), Raw::connect(port));
    assert!(t.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(t.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    let mut seen = Vec::new();
    for step in steps {
        if step[0] == "t" {
            seen.push(format!("{:?} -> {}", &step[1..], t.cmd(&step[1..])));
            continue;
        }
        seen.push(format!("{step:?} -> {}", w.cmd(step)));
        t.send_cmd(&[b"PING"]);
        loop {
            let f = t.reply();
            if !f.starts_with('>') {
                break;
            }
            seen.push(format!("  tracker: {f}"));
        }
    }
    seen
}

fn same_as_redis(steps: &[&[&str]]) {
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    let want = tracker_sees(redis.port, steps);
    let got = tracker_sees(ours.port, steps);
    assert_eq!(got.join("\n"), want.join("\n"));
}

#[test]
fn store_commands_and_missing_keys_invalidate_as_redis() {
    same_as_redis(&[
        &["SADD", "a", "1", "2"],
        &["SADD", "b", "2", "3"],
        // Read over several shards: every key is remembered.
        &["t", "MGET", "a", "b", "c", "d", "e"],
        &["t", "EXISTS", "a", "b", "c", "d", "e"],
        // Only the destination is signalled, never the sources.
        &["SUNIONSTORE", "c", "a", "b"],
        &["SINTERSTORE", "d", "a", "b"],
        &["t", "MGET", "c", "d"],
        &["ZUNIONSTORE", "e", "2", "a", "b"],
        &["SDIFFSTORE", "c", "a", "a"],
        &["COPY", "a", "d", "REPLACE"],
        &["t", "GET", "c"],
        &["t", "GET", "zz"],
        // DEL signals the keys it deleted only.
        &["DEL", "zz", "c"],
        &["SET", "zz", "1"],
        &["t", "EXISTS", "a", "b", "d", "e"],
        // Writes over keys of several shards: one invalidation per key, in the command's order.
        &["MSET", "a", "1", "b", "2", "d", "3", "e", "4"],
        &["t", "MGET", "a", "b", "d", "e"],
        &["RENAME", "e", "a"],
        &["RENAME", "b", "d"],
        // A move signals its destination, then its source.
        &["RPUSH", "a", "1", "2", "3"],
        &["t", "MGET", "a", "b", "d", "e"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["t", "MGET", "a", "b"],
        &["RPOPLPUSH", "a", "b"],
        &["t", "MGET", "a", "b"],
        &["BLMOVE", "a", "b", "RIGHT", "LEFT", "0.01"],
    ]);
}

#[test]
fn stream_and_trim_writes_invalidate_as_redis() {
    same_as_redis(&[
        &["XADD", "s", "1-0", "f", "v"],
        &["t", "MGET", "s", "gone", "l"],
        // Missing keys: nothing changes, nothing is signalled.
        &["XDEL", "gone", "1-0"],
        &["XTRIM", "gone", "MAXLEN", "0"],
        &["LTRIM", "l", "0", "1"],
        // Consumer groups and XSETID are not signalled; a group created with its stream is.
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["XACK", "s", "g", "1-0"],
        &["XCLAIM", "s", "g", "d", "0", "1-0"],
        &["XAUTOCLAIM", "s", "g", "d", "0", "0-0"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        &["XSETID", "s", "5-0"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XGROUP", "CREATE", "gone", "g", "0", "MKSTREAM"],
        &["XDEL", "s", "1-0"],
        &["t", "MGET", "s", "gone"],
        &["RPUSH", "l", "a", "b", "c"],
        &["t", "LLEN", "l"],
        &["LTRIM", "l", "0", "-1"],
    ]);
}

/// What a subscriber to `__key*__:*` hears on the server at `port` while one client runs
/// `cmds` and another publishes a marker after each reply: every event must come before it.
/// `classes` are the `notify-keyspace-events` set first.
fn heard_in_order(port: u16, classes: &str, cmds: &[&[&str]]) -> Vec<String> {
    let mut sub = Raw::connect(port);
    assert!(sub.cmd(&["PSUBSCRIBE", "__key*__:*"]).contains("psubscribe"));
    assert!(sub.cmd(&["SUBSCRIBE", "marker"]).contains("subscribe"));
    let (mut c, mut ctl) = (Raw::connect(port), Raw::connect(port));
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", classes]), "+OK\r\n");
    let mut out = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        out.push(format!("{cmd:?} -> {}", c.cmd(cmd)));
        let tag = i.to_string();
        ctl.cmd(&["PUBLISH", "marker", &tag]);
        let marker = format!("*3\r\n$7\r\nmessage\r\n$6\r\nmarker\r\n${}\r\n{tag}\r\n", tag.len());
        loop {
            let f = sub.reply();
            if f == marker {
                break;
            }
            out.push(f);
        }
    }
    out
}

#[test]
fn keyspace_events_come_before_the_reply_as_redis() {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for i in 0..60 {
        // Keys on every shard, one after another.
        cmds.push(vec!["SET".into(), format!("key{i}"), "v".into()]);
        cmds.push(vec!["LPUSH".into(), format!("list{}", i % 7), "x".into()]);
    }
    for c in [
        "GEOADD src 13.36 38.11 a 15.08 37.50 b",
        "GEOSEARCHSTORE dst src FROMLONLAT 13.5 38.1 BYRADIUS 200 km ASC",
        "GEORADIUS src 13.5 38.1 500 km STORE dst2",
        "GEORADIUS src 13.5 38.1 500 km STOREDIST dst2",
        "GEOSEARCHSTORE dst src FROMLONLAT 0 0 BYRADIUS 1 km ASC",
        "GEOSEARCHSTORE none src FROMLONLAT 0 0 BYRADIUS 1 km ASC",
    ] {
        cmds.push(c.split(' ').map(String::from).collect());
    }
    let cmds: Vec<Vec<&str>> = cmds.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let cmds: Vec<&[&str]> = cmds.iter().map(Vec::as_slice).collect();
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    let want = heard_in_order(redis.port, "KEA", &cmds);
    assert_eq!(heard_in_order(ours.port, "KEA", &cmds).join("\n"), want.join("\n"));
}

/// SORT's lookups of the keys its BY and GET patterns name (keys of every shard), one
/// `keymiss` per missing key looked up, as Redis's: in the order Redis reads them where that
/// order is defined (a list's, an intset's, the sorted order for GET, a sorted set's order
/// without sorting), alone, in a transaction, a script, with STORE. A sorted set sorted BY a
/// pattern, or a set in a hash table, is read in its hash table's order, which the hash seed
/// each redis-server draws at start decides: there the same misses come, in some order.
#[test]
fn sort_pattern_lookups_miss_as_redis() {
    let setup: &[&[&str]] = &[
        &["MSET", "w_a", "1", "w_b", "2", "w_c", "3", "h_a", "x"],
        &["HSET", "h_b", "f", "y"],
        &["RPUSH", "l", "x3", "a", "x1", "b", "x2", "c"],
        &["SADD", "i", "5", "3", "100", "7", "1"],
        &["ZADD", "z", "1", "a", "2", "x1", "3", "x2", "4", "b"],
        &["SADD", "s", "a", "x1", "x2", "x3", "x4"],
    ];
    let ordered: &[&[&str]] = &[
        &["SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*"],
        &["SORT_RO", "l", "BY", "w_*", "GET", "w_*", "LIMIT", "1", "3"],
        &["SORT", "l", "BY", "w_*", "ALPHA", "GET", "h_*->f"],
        &["SORT", "i", "BY", "w_*", "GET", "w_*", "DESC"],
        &["SORT", "l", "BY", "w_*", "GET", "w_*", "STORE", "dst"],
        &["SORT", "z", "BY", "nosort", "GET", "w_*"],
        &["SORT", "z", "BY", "nosort", "GET", "w_*", "DESC", "LIMIT", "0", "3"],
        &["SORT", "nokey", "BY", "w_*", "GET", "w_*"],
        &["MULTI"],
        &["SORT", "l", "BY", "w_*", "GET", "w_*"],
        &["SET", "w_x1", "5"],
        &["SORT", "i", "BY", "w_*", "GET", "w_*"],
        &["EXEC"],
        &["EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'w_*', 'GET', 'w_*')", "1", "l"],
        &["DEL", "w_x1"],
    ];
    let unordered: &[&[&str]] = &[&["SORT", "z", "BY", "w_*", "GET", "w_*"], &["SORT", "s", "BY", "w_*"]];
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    let mut want = Vec::new();
    let mut got = Vec::new();
    for (s, out) in [(&redis, &mut want), (&ours, &mut got)] {
        let steps: Vec<&[&str]> = setup.iter().chain(ordered).copied().collect();
        out.push(heard_in_order(s.port, "KEAm", &steps).join("\n"));
        let mut lines = heard_in_order(s.port, "KEAm", unordered);
        lines.sort();
        out.push(lines.join("\n"));
    }
    assert_eq!(got[0], want[0]);
    assert_eq!(got[1], want[1]);
    // Two frames (keyspace, keyevent) per miss.
    assert!(want[0].matches("keymiss").count() >= 40, "{}", want[0]);
    assert!(want[1].matches("keymiss").count() >= 16, "{}", want[1]);
}

/// ZINCRBY that leaves a score as it was (an increment of 0, or one lost to the float's
/// precision) changes nothing, as Redis's: no `zincr` event, no invalidation, no dirty count
/// (so nothing reaches replicas or the AOF). ZADD INCR already behaved so.
#[test]
fn zincrby_that_changes_no_score_is_no_change() {
    let steps: &[&[&str]] = &[
        &["ZADD", "z", "1", "m"],
        &["t", "ZSCORE", "z", "m"],
        &["ZINCRBY", "z", "0", "m"],
        &["ZINCRBY", "z", "1e-30", "m"],
        &["ZADD", "z", "INCR", "0", "m"],
        &["t", "ZSCORE", "z", "m"],
        &["ZINCRBY", "z", "1", "m"],
        &["t", "ZSCORE", "z", "m"],
        &["ZINCRBY", "z", "0", "new"],
    ];
    same_as_redis(steps);
    let events = |s: &Server| {
        let mut w = s.raw();
        assert_eq!(w.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), "+OK\r\n");
        let mut sub = s.raw();
        sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        let mut seen = Vec::new();
        for step in [&["ZADD", "y", "1", "m"][..], &["ZINCRBY", "y", "0", "m"], &["ZINCRBY", "y", "2", "m"]] {
            let before = w.cmd(&["INFO", "persistence"]);
            let dirty = |info: &str| {
                info.lines().find(|l| l.starts_with("rdb_changes_since_last_save:")).unwrap_or("").to_string()
            };
            seen.push(format!("{step:?} -> {}", w.cmd(step)));
            seen.push(format!("  changes {} -> {}", dirty(&before), dirty(&w.cmd(&["INFO", "persistence"]))));
        }
        w.cmd(&["PUBLISH", "__keyevent@0__:end", "end"]);
        loop {
            let m = sub.reply();
            seen.push(format!("  event: {m}"));
            if m.contains("end") {
                break;
            }
        }
        seen.join("\n")
    };
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    assert_eq!(events(&ours), events(&redis));
}

/// Reads of keys on several shards run on copies of the keys on one shard; their lookups, and
/// so their `keymiss` events, come in the order Redis makes them (the arguments' order, every
/// key looked up even after one misses), as do those of the store commands that read their
/// sources as reads.
#[test]
fn spanning_reads_miss_in_argument_order() {
    let cmds: &[&[&str]] = &[
        &["SET", "a", "1"],
        // Integers: the replies of SUNION and the like come in the intset's order.
        &["SADD", "s1", "1", "2"],
        &["SADD", "s2", "2", "3"],
        &["ZADD", "z1", "1", "x", "2", "y"],
        &["PFADD", "p1", "x"],
        &["XADD", "x1", "1-1", "f", "v"],
        &["MGET", "m1", "a", "m2", "m3", "a", "m4"],
        &["EXISTS", "m4", "m3", "a", "m2", "m1"],
        &["TOUCH", "m1", "a", "m2"],
        &["SUNION", "m1", "s1", "m2", "s2", "m3"],
        &["SINTER", "s1", "m1", "s2", "m2"],
        &["SDIFF", "m1", "s1", "m2"],
        &["SINTERCARD", "3", "s1", "m1", "m2"],
        &["SMISMEMBER", "m1", "x"],
        &["ZUNION", "3", "m1", "z1", "m2", "WITHSCORES"],
        &["ZINTER", "2", "z1", "m1"],
        &["ZDIFF", "3", "m1", "z1", "m2"],
        &["ZINTERCARD", "2", "m2", "z1"],
        &["SUNIONSTORE", "d1", "m1", "s1", "m2"],
        &["SINTERSTORE", "d2", "m1", "s1", "m2"],
        &["ZUNIONSTORE", "d3", "3", "m1", "z1", "m2"],
        &["ZRANGESTORE", "d4", "m1", "0", "-1"],
        &["PFCOUNT", "m1", "p1", "m2"],
        &["PFMERGE", "d5", "m1", "p1", "m2"],
        &["BITOP", "OR", "d6", "m1", "a", "m2"],
        &["LCS", "m1", "a"],
        &["COPY", "m1", "d7"],
        &["XREAD", "STREAMS", "m1", "x1", "m2", "0", "0", "0"],
        &["LMPOP", "3", "m1", "m2", "m3", "LEFT"],
        &["ZMPOP", "2", "m1", "z1", "MIN"],
        &["SMOVE", "m1", "s1", "x"],
        &["RENAME", "m1", "d8"],
        &["MULTI"],
        &["MGET", "m1", "a", "m2"],
        &["GET", "m3"],
        &["EXISTS", "m4", "a", "m1"],
        &["EXEC"],
        &[
            "EVAL",
            "redis.call('MGET', KEYS[1], KEYS[2], KEYS[3]) return redis.call('EXISTS', KEYS[3], KEYS[1])",
            "3",
            "m1",
            "a",
            "m2",
        ],
    ];
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    let want = heard_in_order(redis.port, "KEAm", cmds);
    assert!(want.iter().filter(|f| f.contains("keymiss")).count() >= 80, "{want:?}");
    assert_eq!(heard_in_order(ours.port, "KEAm", cmds).join("\n"), want.join("\n"));
}

/// On the server at `port`: a BCAST tracker of the prefix `p` and a writer; after each of the
/// writer's `steps`, the invalidations the tracker read before the reply to its next PING.
fn bcast_tracker_sees(port: u16, steps: &[&[&str]]) -> Vec<String> {
    let (mut t, mut w) = (Raw::connect(port), Raw::connect(port));
    assert!(t.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(t.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p"]), "+OK\r\n");
    let mut seen = Vec::new();
    for step in steps {
        let r = w.cmd(step);
        t.send_cmd(&[b"PING"]);
        let mut frames = Vec::new();
        loop {
            let f = t.reply();
            if !f.starts_with('>') {
                break;
            }
            frames.push(f);
        }
        seen.push(format!("{step:?} -> {r}  tracker heard {frames:?}"));
    }
    seen
}

/// Writes to keys of other shards than the writer's (a command over several shards, a
/// transaction, a script on the whole node) reach a BCAST tracker before the writer's reply,
/// in one message per prefix, as in Redis. They waited for the owning shard's next operation,
/// so a tracker's next command could be answered first.
#[test]
fn bcast_hears_writes_on_other_shards_before_the_reply() {
    let keys: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    mset.extend(keys.iter().flat_map(|k| [k.clone(), "v".to_string()]));
    let mut del = vec!["DEL".to_string()];
    del.extend(keys.iter().cloned());
    let mut steps: Vec<Vec<String>> = vec![mset, del];
    for k in &keys {
        steps.push(vec!["MULTI".into()]);
        steps.push(vec!["SET".into(), k.clone(), "1".into()]);
        steps.push(vec!["INCR".into(), "other".into()]);
        steps.push(vec!["EXEC".into()]);
        steps.push(vec![
            "EVAL".into(),
            "redis.call('DBSIZE') return redis.call('DEL', ARGV[1])".into(),
            "0".into(),
            k.clone(),
        ]);
        steps.push(vec!["RENAME".into(), "other".into(), k.clone()]);
    }
    let steps: Vec<Vec<&str>> = steps.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let steps: Vec<&[&str]> = steps.iter().map(Vec::as_slice).collect();
    let redis = Server::redis(&[]);
    let ours = Server::slotcore(&["--shards", "3"]);
    let want = bcast_tracker_sees(redis.port, &steps);
    assert_eq!(bcast_tracker_sees(ours.port, &steps).join("\n"), want.join("\n"));
}
