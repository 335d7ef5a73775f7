//! Scripts that need the whole node on a slotcore of two shards, compared with a real
//! redis-server: node-wide commands called from scripts (DBSIZE, KEYS, SCAN, RANDOMKEY,
//! FLUSHDB, FLUSHALL, SWAPDB, INFO), undeclared keys of the other shard touched after a write,
//! commands whose keys span both shards inside such a script, scripts inside MULTI/EXEC and
//! functions; then replicas (a redis-server and a slotcore) of a master running them must end
//! with the master's DEBUG DIGEST, and its AOF has each script as one MULTI/EXEC.
//!
//! Keys and their shards on two shards (slots 0-8191 on shard 0): `b` (3300), `c` (7365) on
//! shard 0; `a` (15495), `d` (11298) on shard 1.

mod common;
use common::{one_per_shard, Raw, Server};

/// Sorted KEYS, a whole SCAN (sorted), as a script returns them.
const KEYS_SORTED: &str = "local k = redis.call('KEYS', ARGV[1]) table.sort(k) return k";
const SCAN_ALL: &str = "local c = '0' local all = {} repeat local r = redis.call('SCAN', c, 'COUNT', 3) \
    c = r[1] for _, k in ipairs(r[2]) do table.insert(all, k) end until c == '0' table.sort(all) return all";

fn steps() -> Vec<Vec<&'static str>> {
    let v = |a: &[&'static str]| a.to_vec();
    vec![
        v(&["FLUSHALL"]),
        v(&["EVAL", "return redis.call('DBSIZE')", "0"]),
        v(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]),
        v(&["EVAL", "return redis.call('DBSIZE')", "0"]),
        v(&["EVAL", "return redis.call('DBSIZE')", "1", "a"]),
        v(&["EVAL", "return redis.call('DBSIZE')", "2", "a", "b"]),
        v(&["EVAL", KEYS_SORTED, "0", "*"]),
        v(&["EVAL", KEYS_SORTED, "0", "[ab]"]),
        v(&["EVAL", SCAN_ALL, "0"]),
        v(&["EVAL", "return redis.call('EXISTS', redis.call('RANDOMKEY'))", "0"]),
        v(&["EVAL", "return string.match(redis.call('INFO', 'keyspace'), 'db0:keys=%d+')", "0"]),
        v(&["EVAL", "return string.match(redis.call('INFO'), 'db0:keys=%d+')", "0"]),
        // A write, then a key of the other shard (from either shard's connection).
        v(&["EVAL", "redis.call('set', 'a', 'x') return redis.call('get', 'b')", "0"]),
        v(&["EVAL", "redis.call('set', 'b', 'y') return redis.call('get', 'a')", "0"]),
        v(&["EVAL", "redis.call('incr', 'n1') redis.call('incr', 'n1') return {redis.call('get', 'd'), redis.call('get', 'n1')}", "0"]),
        v(&["MGET", "a", "b", "n1"]),
        // Writes on the caller's shard, then the other shard: applied once (from one of the two
        // connections the first run is undone and the script runs again on the whole node).
        v(&["EVAL", "redis.call('incr', '{a}n') redis.call('rpush', '{a}l', 'x') return redis.call('get', 'b')", "0"]),
        v(&["EVAL", "redis.call('incr', '{b}n') redis.call('rpush', '{b}l', 'x') return redis.call('get', 'a')", "0"]),
        v(&["EVAL", "redis.call('del', '{a}n') redis.call('hset', '{b}h', 'f', 'v') return redis.call('dbsize')", "0"]),
        v(&["EVAL", "return {redis.call('get', '{a}n'), redis.call('get', '{b}n'), redis.call('lrange', '{a}l', 0, -1), redis.call('lrange', '{b}l', 0, -1)}", "0"]),
        // The script's time stands still on every shard, as in Redis.
        v(&["EVAL", "redis.call('set', 'a', 'v', 'PX', '1') redis.call('debug', 'sleep', '0.01') return redis.call('exists', 'a')", "0"]),
        v(&["EVAL", "redis.call('set', 'b', 'v', 'PX', '1') redis.call('debug', 'sleep', '0.01') return redis.call('exists', 'b')", "0"]),
        // Writes on both shards, then DBSIZE.
        v(&[
            "EVAL",
            "redis.call('set', 'a', '1') redis.call('set', 'b', '2') redis.call('rpush', 'l1', 'x') \
             redis.call('sadd', 's1', 'm') redis.call('del', 'c') return redis.call('DBSIZE')",
            "0",
        ]),
        v(&["EVAL", "redis.call('set', KEYS[1], 'k1') redis.call('set', KEYS[2], 'k2') return redis.call('DBSIZE')", "2", "a", "b"]),
        // A command whose keys span both shards inside a whole-node run.
        v(&[
            "EVAL",
            "redis.call('set', 'a', '0') redis.call('mset', 'a', '1', 'b', '2', 'c', '3', 'd', '4') \
             redis.call('rename', 'b', 'bb') return redis.call('mget', 'a', 'b', 'bb', 'c', 'd')",
            "0",
        ]),
        v(&["EVAL", KEYS_SORTED, "0", "*"]),
        // Errors keep the script going (pcall) or stop it (call), as in Redis.
        v(&["EVAL", "redis.call('set', 'a', 'e') return redis.pcall('keys')", "0"]),
        v(&["EVAL", "redis.call('set', 'a', 'e2') redis.call('get', 'b') return redis.call('lpush', 'a', 'x')", "0"]),
        v(&["GET", "a"]),
        // Writes then FLUSHDB / FLUSHALL / SWAPDB.
        v(&["EVAL", "redis.call('set', 'a', 'f') return {redis.call('FLUSHDB'), redis.call('DBSIZE')}", "0"]),
        v(&["DBSIZE"]),
        v(&["MSET", "a", "1", "b", "2"]),
        v(&[
            "EVAL",
            "redis.call('select', 1) redis.call('set', 'c', 'one') redis.call('select', 0) \
             return {redis.call('SWAPDB', 0, 1), redis.call('DBSIZE'), redis.call('get', 'c')}",
            "0",
        ]),
        v(&["DBSIZE"]),
        v(&["SELECT", "1"]),
        v(&["DBSIZE"]),
        v(&["SELECT", "0"]),
        v(&["EVAL", "redis.call('set', 'b', 'z') return {redis.call('FLUSHALL'), redis.call('DBSIZE')}", "0"]),
        v(&["SELECT", "1"]),
        v(&["DBSIZE"]),
        v(&["SELECT", "0"]),
        // Inside MULTI/EXEC.
        v(&["MSET", "a", "1", "b", "2"]),
        v(&["MULTI"]),
        v(&["EVAL", "return redis.call('DBSIZE')", "0"]),
        v(&["EVAL", "redis.call('set', 'a', 'm') return redis.call('get', 'b')", "0"]),
        v(&["SET", "d", "4"]),
        v(&["EVAL", KEYS_SORTED, "0", "*"]),
        v(&["EXEC"]),
        // Read-only scripts and functions.
        v(&["EVAL_RO", "return redis.call('DBSIZE')", "0"]),
        v(&["EVAL", "#!lua flags=no-writes\nreturn redis.call('DBSIZE')", "0"]),
        v(&["EVAL", "#!lua\nredis.call('set', 'a', 'sb') return {redis.call('DBSIZE'), redis.call('get', 'b')}", "0"]),
        v(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=nodelib\n\
             redis.register_function('size', function(keys, args) return redis.call('DBSIZE') end)\n\
             redis.register_function('wr', function(keys, args) redis.call('set', 'a', args[1]) \
             return {redis.call('get', 'b'), redis.call('DBSIZE')} end)",
        ]),
        v(&["FCALL", "size", "0"]),
        v(&["FCALL_RO", "size", "0"]),
        v(&["FCALL", "wr", "0", "fv"]),
        v(&["FUNCTION", "DELETE", "nodelib"]),
        // Still refused from scripts, as in Redis (noscript).
        v(&["EVAL", "return redis.pcall('CONFIG', 'SET', 'maxmemory', '0')", "0"]),
        v(&["EVAL", "return redis.pcall('FUNCTION', 'FLUSH')", "0"]),
        v(&["MGET", "a", "b", "c", "d"]),
    ]
}

/// The steps on redis-server and on slotcore from a connection on `shard`.
fn compare(redis: &mut Raw, slotcore: &mut Raw, shard: usize) {
    for step in steps() {
        let r = redis.cmd(&step);
        let s = slotcore.cmd(&step);
        assert_eq!(s, r, "from shard {shard}, {step:?}: slotcore replied {s:?}, redis-server {r:?}");
    }
}

#[test]
fn node_wide_commands_and_other_shard_keys_in_scripts_match_redis() {
    common::use_ports(9460);
    let dbg = ["--enable-debug-command", "yes"];
    let s = Server::slotcore(&["--shards", "2", dbg[0], dbg[1]]);
    let r = Server::redis(&dbg);
    let (mut on0, mut on1) = one_per_shard(&s);
    let mut rc = r.raw();
    compare(&mut rc, &mut on0, 0);
    compare(&mut rc, &mut on1, 1);
}

fn digest(c: &mut Raw) -> String {
    c.cmd(&["DEBUG", "DIGEST"])
}

/// Scripts that need the whole node, on a master with two replicas and an AOF.
#[test]
fn replicas_and_aof_follow_whole_node_scripts() {
    common::use_ports(9475);
    let dbg = ["--enable-debug-command", "yes"];
    let m = Server::slotcore(&["--shards", "2", "--appendonly", "yes", dbg[0], dbg[1]]);
    let mp = m.port.to_string();
    let rr = Server::redis(&["--replicaof", "127.0.0.1", &mp, dbg[0], dbg[1]]);
    let sr = Server::slotcore(&["--replicaof", "127.0.0.1", &mp, "--shards", "2", dbg[0], dbg[1]]);
    let (mut on0, mut on1) = one_per_shard(&m);
    let (mut rc, mut sc) = (rr.raw(), sr.raw());
    common::until("both links up", || {
        rc.cmd(&["INFO", "replication"]).contains("master_link_status:up")
            && sc.cmd(&["INFO", "replication"]).contains("master_link_status:up")
    });
    for c in [&mut on0, &mut on1] {
        c.cmd(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
        c.cmd(&["EVAL", "redis.call('set', 'a', 'x') redis.call('set', 'b', 'y') return redis.call('DBSIZE')", "0"]);
        c.cmd(&["EVAL", "redis.call('incr', 'c') redis.call('rpush', 'd2', 'v') return redis.call('get', 'a')", "0"]);
        c.cmd(&[
            "EVAL",
            "redis.call('set', 'e', 'v', 'EX', '1000') redis.call('mset', 'a', '1', 'b', '2') return 1",
            "0",
        ]);
        c.cmd(&[
            "EVAL",
            "redis.call('select', 2) redis.call('set', 'a', 'x') redis.call('select', 0) \
             redis.call('swapdb', 0, 2) redis.call('set', 'b', 'after') return 1",
            "0",
        ]);
        c.cmd(&["EVAL", "redis.set_repl(redis.REPL_NONE) redis.call('set', 'local', '1') redis.set_repl(redis.REPL_ALL) redis.call('set', 'a', 'all') return redis.call('del', 'local')", "0"]);
        c.cmd(&[
            "EVAL",
            "redis.call('set', 'b', 'f') redis.call('flushdb') redis.call('set', 'a', 'after-flush') return 1",
            "0",
        ]);
        c.cmd(&["MULTI"]);
        c.cmd(&["EVAL", "redis.call('set', 'a', 'in-exec') return redis.call('get', 'b')", "0"]);
        c.cmd(&["SET", "c", "exec"]);
        assert!(c.cmd(&["EXEC"]).starts_with("*2"));
        // Marked keys for the AOF check below: both written by one script.
        c.cmd(&[
            "EVAL",
            "redis.call('set', 'a', 'mark-a') redis.call('get', 'b') redis.call('set', 'b', 'mark-b') return 1",
            "0",
        ]);
    }
    assert_eq!(on0.cmd(&["WAIT", "2", "10000"]), ":2\r\n");
    let d = digest(&mut on0);
    assert_ne!(d, "+0000000000000000000000000000000000000000\r\n");
    common::until("the replicas' digests", || digest(&mut rc) == d && digest(&mut sc) == d);

    // The AOF: the last script's two SETs within one MULTI ... EXEC.
    let aof = std::fs::read_dir(m.dir.join("appendonlydir"))
        .expect("appendonlydir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("an incr AOF");
    common::until("the AOF has the marks", || std::fs::read_to_string(&aof).unwrap_or_default().contains("mark-b"));
    let text = std::fs::read_to_string(&aof).expect("read AOF");
    let (ia, ib) = (text.rfind("mark-a").expect("mark-a"), text.rfind("mark-b").expect("mark-b"));
    assert!(ia < ib);
    let multi = text[..ia].rfind("MULTI").expect("MULTI before the script");
    assert!(!text[multi..ib].contains("EXEC"), "one unit: {:?}", &text[multi..]);
    assert!(text[ib..].contains("EXEC"));
}

/// The limit of undoing (`script_undo`): a script that wrote a collection too big to copy on
/// its own shard and then needs the other shard fails that command (Redis's cluster error, the
/// write kept, as a failing `redis.call` leaves earlier writes); its later runs start on the
/// whole node and succeed.
#[test]
fn a_big_written_key_then_another_shard() {
    common::use_ports(9490);
    let s = Server::slotcore(&["--shards", "2"]);
    let (_on0, mut on1) = one_per_shard(&s);
    let mut push = vec!["RPUSH", "{a}big"];
    let items: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    push.extend(items.iter().map(|s| s.as_str()));
    assert_eq!(on1.cmd(&push), ":300\r\n");
    assert_eq!(on1.cmd(&["SET", "b", "bv"]), "+OK\r\n");
    let script = "redis.call('rpush', '{a}big', 'x') return redis.call('get', 'b')";
    let first = on1.cmd(&["EVAL", script, "0"]);
    assert!(first.starts_with("-ERR Script attempted to access a non local key"), "{first:?}");
    assert_eq!(on1.cmd(&["LLEN", "{a}big"]), ":301\r\n");
    assert_eq!(on1.cmd(&["EVAL", script, "0"]), "$2\r\nbv\r\n");
    assert_eq!(on1.cmd(&["LLEN", "{a}big"]), ":302\r\n");
    // Small keys are undone and the script runs again at once.
    let small = "redis.call('incr', '{a}n') return {redis.call('get', 'b'), redis.call('get', '{a}n')}";
    assert_eq!(on1.cmd(&["EVAL", small, "0"]), "*2\r\n$2\r\nbv\r\n$1\r\n1\r\n");
}
