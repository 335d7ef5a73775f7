//! Diagnostics side by side with a real redis-server: EXEC refused before it runs (BUSY,
//! NOREPLICAS) discards the transaction, INFO errorstats counts errors inside EXEC, INFO
//! latencystats and LATENCY HISTOGRAM / DOCTOR, SLOWLOG hiding secrets and keeping its order,
//! COMMAND LIST with subcommands, COMMAND GETKEYS of a keyless EVAL, INFO total_forks and
//! migrate_cached_sockets, DEBUG SLEEP stopping the whole node (also while it waits for a busy
//! shard).

mod common;
use common::{assert_same, Raw, Server};
use std::time::{Duration, Instant};

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

/// One `field:value` line of an INFO reply.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(str::to_string))
}

/// Polls `f` until it is true or `limit` passed.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn exec_refused_while_a_script_is_busy_discards_the_transaction() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut r = s.raw();
        let mut tx = s.raw();
        assert_eq!(r.cmd(&["CONFIG", "SET", "busy-reply-threshold", "10"]), "+OK\r\n");
        assert_eq!(r.cmd(&["SET", "xx", "1"]), "+OK\r\n");
        assert_eq!(tx.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(tx.cmd(&["INCR", "xx"]), "+QUEUED\r\n");
        let mut busy = s.raw();
        busy.send_cmd(&[b"EVAL", b"while true do end", b"0"]);
        assert!(wait_for(Duration::from_secs(5), || r.cmd(&["PING"]).starts_with("-BUSY")), "on {}", s.port);
        let e = tx.cmd(&["EXEC"]);
        assert!(
            e.starts_with("-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script."),
            "on {}: {e:?}",
            s.port
        );
        assert_eq!(r.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
        assert!(busy.reply().starts_with('-'), "on {}", s.port);
        // Out of MULTI, and nothing of the transaction ran.
        assert_eq!(tx.cmd(&["PING", "x"]), "$1\r\nx\r\n");
        assert_eq!(r.cmd(&["GET", "xx"]), "$1\r\n1\r\n");
    }
}

#[test]
fn exec_with_writes_is_refused_without_enough_replicas() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    let (mut a2, mut b2) = (sc.raw(), rs.raw());
    assert_same(&mut a, &mut b, &[&["SET", "xx", "1"], &["MULTI"], &["INCR", "xx"]]);
    assert_same(&mut a2, &mut b2, &[&["CONFIG", "SET", "min-replicas-to-write", "2"]]);
    // A read-only transaction still runs; one that writes is discarded.
    assert_same(&mut a, &mut b, &[&["EXEC"], &["GET", "xx"], &["MULTI"], &["GET", "xx"], &["EXEC"]]);
    assert_same(&mut a2, &mut b2, &[&["CONFIG", "SET", "min-replicas-to-write", "0"]]);
}

#[test]
fn errorstats_count_errors_inside_exec() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut r = s.raw();
        r.cmd(&["CONFIG", "RESETSTAT"]);
        r.cmd(&["MULTI"]);
        r.cmd(&["SET", "a", "b"]);
        r.cmd(&["AUTH", "a"]);
        let e = r.cmd(&["EXEC"]);
        assert!(e.starts_with("*2\r\n+OK\r\n-ERR AUTH"), "on {}: {e:?}", s.port);
        let info = r.cmd(&["INFO", "errorstats"]);
        assert_eq!(info_field(&info, "errorstat_ERR").as_deref(), Some("count=1"), "on {}: {info}", s.port);
        let stats = r.cmd(&["INFO", "commandstats"]);
        let exec = info_field(&stats, "cmdstat_exec").unwrap_or_default();
        assert!(exec.starts_with("calls=1,") && exec.ends_with("failed_calls=0"), "on {}: {exec}", s.port);
        let auth = info_field(&stats, "cmdstat_auth").unwrap_or_default();
        assert!(auth.ends_with("rejected_calls=0,failed_calls=1"), "on {}: {auth}", s.port);
    }
}

#[test]
fn latencystats_follow_the_configured_percentiles() {
    let sc = Server::slotcore(&DEBUG);
    let rs = Server::redis(&DEBUG);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["CONFIG", "GET", "latency-tracking-info-percentiles"],
            &["CONFIG", "SET", "latency-tracking-info-percentiles", "0.0 50.0 100.0"],
            &["CONFIG", "GET", "latency-tracking-info-percentiles"],
            &["CONFIG", "SET", "latency-tracking-info-percentiles", "10.0 50.0 a"],
            &["CONFIG", "SET", "latency-tracking-info-percentiles", "10.0 50.0 101.0"],
            &["CONFIG", "GET", "latency-tracking-info-percentiles"],
            &["CONFIG", "SET", "latency-tracking-info-percentiles", "50"],
        ],
    );
    for (r, port) in [(&mut a, sc.port), (&mut b, rs.port)] {
        r.cmd(&["CONFIG", "RESETSTAT"]);
        r.cmd(&["DEBUG", "SLEEP", "0.05"]);
        r.cmd(&["CLIENT", "ID"]);
        let info = r.cmd(&["INFO", "latencystats"]);
        let debug = info_field(&info, "latency_percentiles_usec_debug").unwrap_or_default();
        let p50: f64 = debug.strip_prefix("p50=").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        assert!(p50 >= 50_000.0, "on {port}: {info}");
        assert!(info_field(&info, "latency_percentiles_usec_client|id").is_some(), "on {port}: {info}");
        r.cmd(&["CONFIG", "SET", "latency-tracking", "no"]);
        r.cmd(&["CONFIG", "RESETSTAT"]);
        r.cmd(&["SET", "k", "v"]);
        r.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]);
        let info = r.cmd(&["INFO", "latencystats"]);
        assert!(info_field(&info, "latency_percentiles_usec_set").is_none(), "on {port}: {info}");
    }
}

#[test]
fn latency_histogram_and_doctor_as_redis() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    // Keys on several shards; calls and the empty answers compare exactly.
    let steps: &[&[&str]] = &[
        &["CONFIG", "RESETSTAT"],
        &["SET", "a", "b"],
        &["SET", "c", "d"],
        &["SET", "e", "f"],
        &["CLIENT", "ID"],
        &["LATENCY", "HISTOGRAM", "blabla"],
        &["LATENCY", "HISTOGRAM", "zadd", "nosuch|sub"],
    ];
    assert_same(&mut a, &mut b, steps);
    for (r, port) in [(&mut a, sc.port), (&mut b, rs.port)] {
        let h = r.cmd(&["LATENCY", "HISTOGRAM", "set", "client"]);
        assert!(
            h.starts_with("*4\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:3\r\n$14\r\nhistogram_usec\r\n"),
            "on {port}: {h:?}"
        );
        assert!(h.contains("$9\r\nclient|id\r\n*4\r\n$5\r\ncalls\r\n:1\r\n"), "on {port}: {h:?}");
        let doc = r.cmd(&["LATENCY", "DOCTOR"]);
        assert!(doc.contains("I'm sorry, Dave, I can't do that. Latency monitoring is disabled"), "on {port}: {doc}");
    }
}

/// The words of a SLOWLOG GET reply, newest entry first: each entry's arguments and client
/// name (ids, times, durations and client addresses differ from server to server).
fn slowlog_words(got: &str) -> Vec<String> {
    let lines: Vec<&str> = got.split("\r\n").collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.starts_with('$') && lines.get(i + 1).is_some_and(|n| n.starts_with("127.0.0.1:")) {
            i += 2;
            continue;
        }
        if !l.starts_with(':') && !l.starts_with('*') && !l.starts_with('$') {
            kept.push(l.to_string());
        }
        i += 1;
    }
    kept
}

#[test]
fn slowlog_hides_secrets_and_keeps_its_order() {
    let steps = |r: &mut Raw| -> Vec<String> {
        r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        r.cmd(&["SLOWLOG", "RESET"]);
        r.cmd(&["ACL", "SETUSER", "slowlog test user", "+get", "+set"]);
        r.cmd(&["CONFIG", "SET", "masterauth", ""]);
        r.cmd(&["ACL", "SETUSER", "slowlog-test-user", "+get", "+set"]);
        r.cmd(&["AUTH", "not-real", "not-a-password"]);
        r.cmd(&["ECHO", "one"]);
        r.cmd(&["ECHO", "two"]);
        r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        slowlog_words(&r.cmd(&["SLOWLOG", "GET", "-1"]))
    };
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let ours = steps(&mut sc.raw());
    let theirs = steps(&mut rs.raw());
    assert_eq!(ours, theirs);
    let joined = ours.join(" ");
    assert!(joined.starts_with("ECHO two  ECHO one  AUTH (redacted) (redacted)  ACL SETUSER (redacted)"), "{joined}");
    assert!(joined.contains("CONFIG SET masterauth (redacted)"), "{joined}");
    // CONFIG RESETSTAT leaves SLOWLOG alone, as in Redis.
    let mut r = sc.raw();
    r.cmd(&["CONFIG", "RESETSTAT"]);
    assert_ne!(r.cmd(&["SLOWLOG", "LEN"]), ":0\r\n");
}

/// On a node of several shards, the commands whose keys live on another shard than the
/// client's (alone, pipelined, or over keys of several shards) are logged as those of the
/// client's own shard are: SLOWLOG shows every command, newest first, as Redis does.
#[test]
fn slowlog_logs_commands_run_on_other_shards() {
    let steps = |r: &mut Raw| -> Vec<String> {
        assert_eq!(r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
        r.cmd(&["SADD", "set", "a", "b", "c"]);
        r.cmd(&["SLOWLOG", "RESET"]);
        // Keys of both shards of a 2-shard node, whichever the connection is on.
        for k in ["a", "b", "c", "d"] {
            r.cmd(&["SET", k, "1"]);
        }
        r.cmd(&["SPOP", "set", "10"]);
        r.cmd(&["GEOADD", "cool-cities", "-122.33207", "47.60621", "Seattle"]);
        r.send(&common::encode(&[b"GET", b"a"]));
        r.send(&common::encode(&[b"GET", b"b"]));
        r.send(&common::encode(&[b"GET", b"c"]));
        for _ in 0..3 {
            r.reply();
        }
        r.cmd(&["MSET", "a", "2", "b", "2", "c", "2", "d", "2"]);
        r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        slowlog_words(&r.cmd(&["SLOWLOG", "GET", "-1"]))
    };
    let theirs = slowlog_from_each_shard_as_redis(steps);
    assert!(theirs.join(" ").contains("GEOADD cool-cities"), "{theirs:?}");
}

/// Runs `steps` against a redis-server and, on a 2-shard slotcore node, from a connection on
/// each shard; asserts all three SLOWLOGs read the same; returns Redis's.
fn slowlog_from_each_shard_as_redis(steps: impl Fn(&mut Raw) -> Vec<String>) -> Vec<String> {
    let sc = Server::slotcore(&["--shards", "2"]);
    let rs = Server::redis(&[]);
    let (mut on0, mut on1) = common::one_per_shard(&sc);
    let theirs = steps(&mut rs.raw());
    assert_eq!(steps(&mut on0), theirs, "from shard 0");
    assert_eq!(steps(&mut on1), theirs, "from shard 1");
    theirs
}

/// MULTI, WATCH and UNWATCH, and each command EXEC runs (not EXEC itself), go into SLOWLOG, as
/// do the commands a script calls (under the script's own client, `?:0` with no name), on
/// whichever shards their keys live: the same entries in the same order as Redis's.
#[test]
fn slowlog_logs_transactions_and_script_calls() {
    let steps = |r: &mut Raw| -> Vec<String> {
        assert_eq!(r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
        r.cmd(&["SLOWLOG", "RESET"]);
        r.cmd(&["WATCH", "a", "b", "c"]);
        r.cmd(&["MULTI"]);
        for k in ["a", "b", "c", "d"] {
            r.cmd(&["SET", k, "1"]);
        }
        r.cmd(&["INCR", "b"]);
        r.cmd(&["MSET", "a", "2", "b", "2", "c", "2", "d", "2"]);
        r.cmd(&["EXEC"]);
        r.cmd(&["MULTI"]);
        r.cmd(&["GET", "c"]);
        r.cmd(&["DISCARD"]);
        r.cmd(&["UNWATCH"]);
        r.cmd(&["EVAL", "redis.call('set', KEYS[1], 'v') return redis.call('get', KEYS[1])", "1", "c"]);
        r.cmd(&["EVAL", "redis.call('incr', KEYS[1]) return redis.call('mget', KEYS[1], KEYS[2])", "2", "a", "b"]);
        r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        slowlog_words(&r.cmd(&["SLOWLOG", "GET", "-1"]))
    };
    let joined = slowlog_from_each_shard_as_redis(steps).join(" ");
    assert!(joined.contains("INCR b  SET d 1") && joined.contains("mget a b ?:0"), "{joined}");
    assert!(!joined.contains("EXEC"), "{joined}");
}

#[test]
fn command_list_and_getkeys_as_redis() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["COMMAND", "GETKEYS", "EVAL", "return 1", "0"],
            &["COMMAND", "GETKEYS", "EVAL", "return 1", "1", "key"],
            &["COMMAND", "GETKEYS", "PING"],
            &["COMMAND", "GETKEYS", "TIME", "x"],
            &["COMMAND", "LIST", "FILTERBY", "PATTERN", "set"],
            &["COMMAND", "LIST", "FILTERBY", "PATTERN", "non_exists*"],
        ],
    );
    for (r, port) in [(&mut a, sc.port), (&mut b, rs.port)] {
        let all = r.cmd(&["COMMAND", "LIST"]);
        assert!(all.contains("\r\nclient|list\r\n") && all.contains("\r\nset\r\n"), "on {port}");
        let scripting = r.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting"]);
        assert!(scripting.contains("\r\nscript|kill\r\n") && !scripting.contains("\r\nset\r\n"), "on {port}");
        let config = r.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "config|*re*"]);
        assert!(config.contains("\r\nconfig|resetstat\r\n") && config.contains("\r\nconfig|rewrite\r\n"), "on {port}");
        assert!(!config.contains("\r\nconfig|get\r\n"), "on {port}");
    }
}

/// COMMAND GETKEYSANDFLAGS: the keys of a call with their key-spec flags (RO/RW/OW/RM and the
/// access/update/insert/delete kinds), from the specs or, where the flags depend on the
/// arguments (SET, BITFIELD, SORT, MIGRATE), from the argument walk; byte for byte as
/// redis-server in RESP2 and RESP3, errors included.
#[test]
fn command_getkeysandflags_as_redis() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    let corpus: &[&[&str]] = &[
        &["COMMAND", "GETKEYSANDFLAGS", "SET", "k1", "v1"],
        &["COMMAND", "GETKEYSANDFLAGS", "SET", "k1", "v1", "GET"],
        &["COMMAND", "GETKEYSANDFLAGS", "MSET", "k1", "v1", "k2", "v2"],
        &["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "k1", "k2", "LEFT", "RIGHT"],
        &["COMMAND", "GETKEYSANDFLAGS", "SORT", "k1", "STORE", "k2"],
        &["COMMAND", "GETKEYSANDFLAGS", "SORT", "k1", "BY", "w*", "GET", "#"],
        &["COMMAND", "GETKEYSANDFLAGS", "SORT_RO", "k1", "BY", "w*"],
        &["COMMAND", "GETKEYSANDFLAGS", "BITFIELD", "k", "GET", "u8", "0"],
        &["COMMAND", "GETKEYSANDFLAGS", "BITFIELD", "k", "INCRBY", "u8", "0", "1"],
        &["COMMAND", "GETKEYSANDFLAGS", "MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "MIGRATE", "h", "1", "k", "0", "5"],
        &["COMMAND", "GETKEYSANDFLAGS", "ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
        &["COMMAND", "GETKEYSANDFLAGS", "ZUNIONSTORE", "d", "5", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "EVAL", "return 1", "1", "k"],
        &["COMMAND", "GETKEYSANDFLAGS", "EVAL", "return 1", "0"],
        &["COMMAND", "GETKEYSANDFLAGS", "EVAL_RO", "return 1", "2", "k", "j"],
        &["COMMAND", "GETKEYSANDFLAGS", "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s2", ">", ">"],
        &["COMMAND", "GETKEYSANDFLAGS", "XREAD", "COUNT", "2", "STREAMS", "s1", "0"],
        &["COMMAND", "GETKEYSANDFLAGS", "GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d"],
        &["COMMAND", "GETKEYSANDFLAGS", "GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
        &["COMMAND", "GETKEYSANDFLAGS", "DEL", "a", "b", "c"],
        &["COMMAND", "GETKEYSANDFLAGS", "EXISTS", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "GETDEL", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "GETEX", "a", "PERSIST"],
        &["COMMAND", "GETKEYSANDFLAGS", "RENAME", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "COPY", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "SMOVE", "a", "b", "m"],
        &["COMMAND", "GETKEYSANDFLAGS", "SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["COMMAND", "GETKEYSANDFLAGS", "BLMPOP", "0", "2", "a", "b", "LEFT"],
        &["COMMAND", "GETKEYSANDFLAGS", "XINFO", "STREAM", "s"],
        &["COMMAND", "GETKEYSANDFLAGS", "XGROUP", "CREATE", "s", "g", "$"],
        &["COMMAND", "GETKEYSANDFLAGS", "OBJECT", "ENCODING", "k"],
        &["COMMAND", "GETKEYSANDFLAGS", "PFMERGE", "d", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "LCS", "a", "b"],
        &["COMMAND", "GETKEYSANDFLAGS", "EXPIRE", "a", "10"],
        &["COMMAND", "GETKEYSANDFLAGS", "TOUCH", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "GET"],
        &["COMMAND", "GETKEYSANDFLAGS", "SPUBLISH", "ch", "m"],
        &["COMMAND", "GETKEYS", "SPUBLISH", "ch", "m"],
        &["COMMAND", "GETKEYSANDFLAGS", "PUBLISH", "ch", "m"],
        &["COMMAND", "GETKEYSANDFLAGS", "PING"],
        &["COMMAND", "GETKEYSANDFLAGS", "NOSUCHCOMMAND", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "XINFO", "NOSUCHSUB", "a"],
        &["COMMAND", "GETKEYS", "XINFO", "NOSUCHSUB", "a"],
        &["COMMAND", "GETKEYSANDFLAGS", "XINFO"],
        &["COMMAND", "GETKEYSANDFLAGS"],
    ];
    assert_same(&mut a, &mut b, corpus);
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    assert_same(&mut a, &mut b, corpus);
    assert_same(&mut a, &mut b, &[&["COMMAND", "HELP"]]);
}

#[test]
fn info_stats_fork_and_migrate_fields() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    let info = r.cmd(&["INFO", "stats"]);
    assert_eq!(info_field(&info, "total_forks").as_deref(), Some("0"), "{info}");
    assert_eq!(info_field(&info, "migrate_cached_sockets").as_deref(), Some("0"), "{info}");
    assert_eq!(info_field(&info, "latest_fork_usec").as_deref(), Some("0"), "{info}");
    let target = Server::slotcore(&[]);
    r.cmd(&["SET", "key", "v"]);
    let port = target.port.to_string();
    assert_eq!(r.cmd(&["MIGRATE", "127.0.0.1", &port, "key", "0", "5000"]), "+OK\r\n");
    let info = r.cmd(&["INFO", "stats"]);
    assert_eq!(info_field(&info, "migrate_cached_sockets").as_deref(), Some("1"), "{info}");
    assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    let forks = |r: &mut Raw| info_field(&r.cmd(&["INFO", "stats"]), "total_forks");
    assert!(wait_for(Duration::from_secs(5), || forks(&mut r).as_deref() == Some("1")), "{:?}", forks(&mut r));
}

#[test]
fn debug_sleep_stops_the_whole_node() {
    let s = Server::slotcore(&DEBUG);
    let mut sleeper = s.raw();
    let mut other = s.raw();
    sleeper.send_cmd(&[b"DEBUG", b"SLEEP", b"0.5"]);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // Keys on every shard wait for the sleep to end.
    for k in ["a", "b", "c", "d"] {
        assert_eq!(other.cmd(&["SET", k, "1"]), "+OK\r\n");
    }
    assert!(start.elapsed() >= Duration::from_millis(250), "{:?}", start.elapsed());
    assert_eq!(sleeper.reply(), "+OK\r\n");
}

/// The keys each shard holds (INFO shards), in shard order.
fn keys_per_shard(r: &mut Raw) -> Vec<u64> {
    r.cmd(&["INFO", "shards"])
        .lines()
        .filter_map(|l| l.split("keys=").nth(1))
        .filter_map(|v| v.split(',').next().and_then(|n| n.parse().ok()))
        .collect()
}

/// A key that lands on shard `shard` (found by INFO shards' key counts; left set).
fn key_on(r: &mut Raw, shard: usize, prefix: &str) -> String {
    (0..100)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| {
            let before = keys_per_shard(r);
            r.cmd(&["SET", k, "0"]);
            keys_per_shard(r)[shard] > before[shard]
        })
        .expect("a key of the shard")
}

/// A DEBUG SLEEP that waits for a busy shard before it holds them all already stops the rest of
/// the node: a command sent after it, on a connection and a key of an idle shard, is answered
/// after the sleep, as on Redis's one thread (it ran at once while the sleep waited for shard
/// 0, which runs a long SORT; the shards are held in ascending order).
#[test]
fn debug_sleep_waiting_for_a_busy_shard_stops_the_others_meanwhile() {
    let s = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let mut ctl = s.raw();
    let big = key_on(&mut ctl, 0, "big");
    let key = key_on(&mut ctl, 1, "k");
    ctl.cmd(&["DEL", &big]);
    // A list long enough that SORT keeps shard 0 busy for a while.
    let mut filler = s.raw();
    for i in 0..300 {
        let mut args: Vec<String> = vec!["RPUSH".into(), big.clone()];
        args.extend((0..1000).map(|j| ((i * 1000 + j) * 7919 % 1_000_003).to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(filler.cmd(&args).starts_with(':'));
    }
    // Two connections served by shard 1.
    let (_a0, mut sleeper) = common::one_per_shard(&s);
    let (_b0, mut other) = common::one_per_shard(&s);
    filler.send_cmd(&[b"SORT", big.as_bytes(), b"ALPHA", b"LIMIT", b"0", b"1"]);
    std::thread::sleep(Duration::from_millis(10));
    sleeper.send_cmd(&[b"DEBUG", b"SLEEP", b"0.3"]);
    std::thread::sleep(Duration::from_millis(30));
    let start = Instant::now();
    assert_eq!(other.cmd(&["SET", &key, "1"]), "+OK\r\n");
    let waited = start.elapsed();
    assert_eq!(sleeper.reply(), "+OK\r\n");
    assert!(filler.reply().starts_with('*'));
    assert!(waited >= Duration::from_millis(250), "SET answered after {waited:?}, during the sleep");
}

/// LATENCY GRAPH draws the same sparkline as redis-server for the same samples (the age
/// labels below it are compared loosely: the two servers' samples may fall a second apart),
/// answers Redis's error for an event without samples, and LATENCY HELP lists it.
#[test]
fn latency_graph_as_redis() {
    let args = ["--enable-debug-command", "yes", "--latency-monitor-threshold", "1"];
    let redis = Server::redis(&args);
    let slot = Server::slotcore(&args);
    let (mut a, mut b) = (redis.raw(), slot.raw());
    assert_same(&mut a, &mut b, &[&["LATENCY", "GRAPH", "command"], &["LATENCY", "HELP"]]);
    for secs in ["0.1", "0.2", "0.3", "0.05"] {
        a.cmd(&["DEBUG", "SLEEP", secs]);
        b.cmd(&["DEBUG", "SLEEP", secs]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let graph = |r: &mut Raw| -> Vec<String> {
        let text = r.cmd(&["LATENCY", "GRAPH", "command"]);
        text.split('\n').map(str::to_string).collect()
    };
    let (want, got) = (graph(&mut a), graph(&mut b));
    // The bulk header, the rule, four curve rows and the margin are the same bytes; the
    // title's milliseconds are each server's own measure of its sleeps (a timer under load
    // may end a sleep a millisecond late), so they may differ by a millisecond or two.
    let show = || format!("redis:\n{}\nslotcore:\n{}", want.join("\n"), got.join("\n"));
    assert_eq!(got[0], want[0], "{}", show());
    assert_eq!(got[2..8], want[2..8], "{}", show());
    let numbers = |l: &str| -> Vec<i64> {
        l.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect()
    };
    let (gn, wn) = (numbers(&got[1]), numbers(&want[1]));
    assert_eq!(gn.len(), wn.len(), "{}", show());
    assert!(gn.iter().zip(&wn).all(|(g, w)| (g - w).abs() <= 2), "{}", show());
    assert_eq!(got.len(), want.len());
    assert_eq!(got.last(), want.last());
}

#[test]
fn debug_mallctl_and_activedefrag_answer_as_redis() {
    let sc = Server::slotcore(&DEBUG);
    let rs = Server::redis(&DEBUG);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["DEBUG", "MALLCTL", "arenas.page"],
            &["DEBUG", "MALLCTL", "nosuch"],
            &["DEBUG", "MALLCTL", "opt.narenas", "3"],
            &["DEBUG", "MALLCTL", "arenas.page", "x"],
            &["DEBUG", "MALLCTL"],
            &["DEBUG", "MALLCTL-STR", "opt.dss"],
            &["DEBUG", "MALLCTL-STR", "nosuch"],
            &["DEBUG", "MALLCTL-STR", "thread.tcache.flush", "VOID"],
            &["CONFIG", "SET", "activedefrag", "yes"],
            &["CONFIG", "GET", "activedefrag"],
            &["CONFIG", "SET", "activedefrag", "no"],
        ],
    );
    // Both read the allocator's counters (the figures differ).
    let allocated = a.cmd(&["DEBUG", "MALLCTL", "stats.allocated"]);
    assert!(allocated.starts_with(':') && allocated.trim_end()[1..].parse::<u64>().unwrap() > 0, "{allocated}");
    // Redis crashes reading an integer name as a string; slotcore answers an error.
    assert_eq!(a.cmd(&["DEBUG", "MALLCTL-STR", "arenas.page"]), "-ERR Invalid argument\r\n");
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
}
