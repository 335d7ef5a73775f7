//! MIGRATE and resharding: slotcore's MIGRATE replies compared with a real redis-server's for
//! the same sequence against the same target, and `redis-cli --cluster reshard` moving slots
//! with their keys between slotcore masters and to a real redis-server master.

mod common;

use common::cluster::*;
use common::{Server, WAIT};

/// The sequence run on a source whose target is `t` (closed port `dead`).
fn sequence(t: u16, dead: u16) -> Vec<Vec<String>> {
    let t = t.to_string();
    let dead = dead.to_string();
    let m = |rest: &[&str]| {
        let mut v = vec!["MIGRATE".to_string(), "127.0.0.1".to_string(), t.clone()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let c = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        c(&["SET", "a", "hello"]),
        c(&["SET", "n", "12345"]),
        c(&["SET", "big", &"x".repeat(300)]),
        c(&["SET", "e", "v", "PX", "100000"]),
        m(&["a", "0", "1000"]),
        c(&["EXISTS", "a"]),
        m(&["", "0", "1000", "KEYS", "n", "e", "missing", "big"]),
        c(&["DBSIZE"]),
        m(&["nokey", "0", "1000"]),
        c(&["SET", "a", "again"]),
        m(&["a", "0", "1000"]),
        m(&["a", "0", "1000", "COPY", "REPLACE"]),
        c(&["GET", "a"]),
        m(&["a", "3", "1000", "COPY"]),
        m(&["a", "0", "x"]),
        m(&["a", "y", "1000"]),
        m(&["a", "0", "1000", "bogus"]),
        m(&["a", "0", "1000", "AUTH"]),
        m(&["a", "0", "1000", "AUTH2", "u"]),
        m(&["a", "0", "1000", "KEYS", "b"]),
        m(&["a", "0", "1000", "AUTH", "pw"]),
        vec!["MIGRATE".into(), "127.0.0.1".into(), dead, "a".into(), "0".into(), "200".into()],
        m(&["a", "0", "0", "REPLACE"]),
        c(&["EXISTS", "a"]),
    ]
}

fn run(src: &Server, cmds: &[Vec<String>]) -> Vec<String> {
    let mut raw = src.raw();
    cmds.iter()
        .map(|c| {
            let parts: Vec<&str> = c.iter().map(String::as_str).collect();
            raw.cmd(&parts)
        })
        .collect()
}

#[test]
fn migrate_replies_and_target_contents_match_redis() {
    let target = Server::redis(&[]);
    let dead = common::free_port();
    let cmds = sequence(target.port, dead);

    let oracle = Server::redis(&[]);
    target.cli(&["flushall"]);
    let want = run(&oracle, &cmds);
    let want_target: Vec<String> = ["a", "n", "e", "big", "missing"].iter().map(|k| target.cli(&["get", k])).collect();
    let want_db3 = target.cli(&["-n", "3", "get", "a"]);

    let slotcore = Server::slotcore(&["--shards", "2"]);
    target.cli(&["flushall"]);
    let got = run(&slotcore, &cmds);
    for ((c, w), g) in cmds.iter().zip(&want).zip(&got) {
        assert_eq!(g, w, "{c:?}: slotcore replied {g:?}, redis-server replied {w:?}");
    }
    let got_target: Vec<String> = ["a", "n", "e", "big", "missing"].iter().map(|k| target.cli(&["get", k])).collect();
    assert_eq!(got_target, want_target);
    assert_eq!(target.cli(&["-n", "3", "get", "a"]), want_db3);
    let pttl: i64 = target.cli(&["pttl", "e"]).trim().parse().unwrap_or(-9);
    assert!(pttl > 90_000 && pttl <= 100_000, "TTL carried over: {pttl}");
}

/// Masters as (port, id) seen by `entry`.
fn masters(entry: &Server) -> Vec<(u16, String)> {
    nodes(entry)
        .into_iter()
        .filter(|f| f[2].contains("master"))
        .map(|f| {
            let port = f[1].split('@').next().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse().ok());
            (port.unwrap_or(0), f[0].clone())
        })
        .collect()
}

fn reshard(entry: &Server, from: &str, to: &str, slots: usize) -> String {
    let args: Vec<String> = [
        "--cluster",
        "reshard",
        &format!("127.0.0.1:{}", entry.port),
        "--cluster-from",
        from,
        "--cluster-to",
        to,
        "--cluster-slots",
        &slots.to_string(),
        "--cluster-yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, out) = cli_timeout(120, &args);
    assert!(ok && !out.contains("ERR"), "reshard failed:\n{out}");
    out
}

fn check(entry: &Server) {
    let (ok, out) = cli_timeout(30, &["--cluster".into(), "check".into(), format!("127.0.0.1:{}", entry.port)]);
    assert!(ok, "{out}");
    assert!(out.contains("[OK] All nodes agree about slots configuration."), "{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(!out.contains("[WARNING]") && !out.contains("[ERR]"), "{out}");
}

fn write_keys(entry: &Server, n: usize) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", entry.port)]).unwrap();
    let mut c = client.get_connection().expect("cluster connection");
    for i in 0..n {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(format!("value:{i}")).query(&mut c).expect("SET");
    }
}

fn read_keys(entry: &Server, n: usize) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", entry.port)]).unwrap();
    let mut c = client.get_connection().expect("cluster connection");
    for i in 0..n {
        let v: Option<String> = redis::cmd("GET").arg(format!("key:{i}")).query(&mut c).expect("GET");
        assert_eq!(v.as_deref(), Some(format!("value:{i}").as_str()), "key:{i} after resharding");
    }
}

fn dbsizes(nodes: &[&Server]) -> i64 {
    nodes.iter().map(|n| n.cli(&["dbsize"]).trim().parse::<i64>().unwrap_or(-1_000_000)).sum()
}

#[test]
fn reshard_between_slotcore_masters_moves_the_keys() {
    let ns: Vec<Server> = (0..3).map(|_| slotcore_node()).collect();
    let all: Vec<&Server> = ns.iter().collect();
    create_agreed(&all, 0);
    write_keys(&ns[0], 3000);
    let ms = masters(&ns[0]);
    let (from, to) = (&ms[0].1, &ms[1].1);
    let out = reshard(&ns[0], from, to, 1000);
    assert!(out.contains("Moving slot"), "{out}");
    wait_for(WAIT, "every node to agree after resharding", || {
        let t0 = topology(&ns[0]);
        ns.iter().all(|n| topology(n) == t0)
    });
    check(&ns[0]);
    read_keys(&ns[2], 3000);
    assert_eq!(dbsizes(&all), 3000);
    // And back, so the keys move twice.
    reshard(&ns[0], to, from, 500);
    check(&ns[1]);
    read_keys(&ns[1], 3000);
    assert_eq!(dbsizes(&all), 3000);
}

#[test]
fn reshard_from_slotcore_to_a_redis_server_master() {
    let sc: Vec<Server> = (0..2).map(|_| slotcore_node()).collect();
    let rd = redis_node();
    let all: Vec<&Server> = vec![&sc[0], &sc[1], &rd];
    create_agreed(&all, 0);
    write_keys(&sc[0], 2000);
    let rd_id = myid(&rd);
    let sc_id = myid(&sc[0]);
    reshard(&sc[0], &sc_id, &rd_id, 800);
    wait_for(WAIT, "every node to agree after resharding", || {
        let t0 = topology(&sc[0]);
        all.iter().all(|n| topology(n) == t0)
    });
    check(&rd);
    read_keys(&sc[1], 2000);
    assert_eq!(dbsizes(&all), 2000);
    // And from redis-server (its MIGRATE sends RESTORE-ASKING) to the other slotcore master.
    let sc1_id = myid(&sc[1]);
    reshard(&rd, &rd_id, &sc1_id, 400);
    wait_for(WAIT, "every node to agree after the second resharding", || {
        let t0 = topology(&sc[0]);
        all.iter().all(|n| topology(n) == t0)
    });
    check(&sc[1]);
    read_keys(&rd, 2000);
    assert_eq!(dbsizes(&all), 2000);
}

#[test]
fn every_type_migrates_into_redis_server_intact() {
    let target = Server::redis(&[]);
    let src = Server::slotcore(&["--shards", "2"]);
    let mut raw = src.raw();
    raw.cmd(&["RPUSH", "l", "a", "1", "b", "-7"]);
    raw.cmd(&["HSET", "h", "f1", "v1", "f2", "2"]);
    raw.cmd(&["SADD", "s", "1", "2", "300000"]);
    raw.cmd(&["SADD", "sm", "x", "y"]);
    raw.cmd(&["ZADD", "z", "1.5", "a", "2", "b", "-inf", "c"]);
    for i in 0..600 {
        raw.cmd(&["HSET", "bigh", &format!("f{i}"), &format!("v{i}")]);
        raw.cmd(&["ZADD", "bigz", &i.to_string(), &format!("m{i}")]);
        raw.cmd(&["RPUSH", "bigl", &"e".repeat(i % 50)]);
    }
    raw.cmd(&["PFADD", "hll", "a", "b", "c"]);
    let keys = ["l", "h", "s", "sm", "z", "bigh", "bigz", "bigl", "hll"];
    let reads = |s: &Server| -> Vec<String> {
        vec![
            s.cli(&["lrange", "l", "0", "-1"]),
            s.cli(&["hgetall", "h"]),
            s.cli(&["smembers", "s"]),
            s.cli(&["sort", "sm", "alpha"]),
            s.cli(&["zrange", "z", "0", "-1", "withscores"]),
            s.cli(&["hlen", "bigh"]),
            s.cli(&["hget", "bigh", "f599"]),
            s.cli(&["zrange", "bigz", "590", "-1", "withscores"]),
            s.cli(&["lrange", "bigl", "45", "55"]),
            s.cli(&["pfcount", "hll"]),
        ]
    };
    let before = reads(&src);
    let mut args = vec!["MIGRATE", "127.0.0.1"];
    let port = target.port.to_string();
    args.push(&port);
    args.extend(["", "0", "5000", "KEYS"]);
    args.extend(keys);
    assert_eq!(raw.cmd(&args), "+OK\r\n");
    assert_eq!(src.cli(&["dbsize"]).trim(), "0");
    assert_eq!(reads(&target), before);
}

/// The replies of scripts (EVAL, EVAL_RO, FCALL) whose declared keys are in a slot being
/// migrated, run on the source (`src`, where `{m}x` already moved and `{m}y` did not) and on
/// the target (`dst`), with and without ASKING. Ports are replaced by `SRC`/`DST`.
fn script_sequence(src: &mut common::Raw, dst: &mut common::Raw, ports: (u16, u16)) -> Vec<String> {
    let rpush = "return redis.call('rpush', KEYS[1], ARGV[1])";
    let both = "return {redis.call('exists', KEYS[1]), redis.call('exists', KEYS[2])}";
    let mut out = Vec::new();
    let mut note = |r: String| {
        out.push(r.replace(&ports.0.to_string(), "SRC").replace(&ports.1.to_string(), "DST"));
    };
    note(src.cmd(&["EVAL", rpush, "1", "{m}x", "3"]));
    note(src.cmd(&["EVAL", both, "2", "{m}x", "{m}y"]));
    note(src.cmd(&["EVAL", both, "2", "{m}y", "{m}y"]));
    note(src.cmd(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "{m}y"]));
    note(src.cmd(&["FCALL", "push", "1", "{m}x", "4"]));
    note(src.cmd(&["EVAL", "return 1", "0"]));
    note(src.cmd(&["EXISTS", "{m}x"]));
    note(dst.cmd(&["EVAL", rpush, "1", "{m}x", "5"]));
    note(dst.cmd(&["ASKING"]));
    note(dst.cmd(&["EVAL", rpush, "1", "{m}x", "6"]));
    note(dst.cmd(&["ASKING"]));
    note(dst.cmd(&["EVAL", both, "2", "{m}x", "{m}z"]));
    note(dst.cmd(&["ASKING"]));
    note(dst.cmd(&["LRANGE", "{m}x", "0", "-1"]));
    out
}

/// Two cluster nodes of one kind: `src` serves every slot and is migrating the slot of `{m}`
/// to `dst`, which imports it; `{m}x` (a list) moved already, `{m}y` is still on `src`.
fn migrating_pair(src: &Server, dst: &Server) {
    let lib = "#!lua name=mig\nredis.register_function('push', function(keys, args) \
               return redis.call('rpush', keys[1], args[1]) end)";
    for s in [src, dst] {
        assert_eq!(s.cli(&["FUNCTION", "LOAD", lib]).trim(), "mig");
    }
    assert_eq!(src.cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).trim(), "OK");
    assert_eq!(src.cli(&["CLUSTER", "MEET", "127.0.0.1", &dst.port.to_string()]).trim(), "OK");
    wait_ok(&[src, dst]);
    let slot = src.cli(&["CLUSTER", "KEYSLOT", "{m}"]).trim().to_string();
    assert_eq!(src.cli(&["RPUSH", "{m}x", "1", "2"]).trim(), "2");
    assert_eq!(src.cli(&["SET", "{m}y", "here"]).trim(), "OK");
    assert_eq!(dst.cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &myid(src)]).trim(), "OK");
    assert_eq!(src.cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &myid(dst)]).trim(), "OK");
    let moved = src.cli(&["MIGRATE", "127.0.0.1", &dst.port.to_string(), "{m}x", "0", "5000"]);
    assert_eq!(moved.trim(), "OK");
}

#[test]
fn scripts_in_a_migrating_slot_are_redirected_as_redis() {
    // Found by Redis's cluster resharding test: a script whose key had moved ran on the
    // source and created a new key there, so its write was lost to the client that read the
    // target. Both shards of a 2-shard node run the sequence (the key's shard is the
    // connection's own on one of them, another shard on the other).
    let (rsrc, rdst) = (Server::redis(&["--cluster-enabled", "yes"]), Server::redis(&["--cluster-enabled", "yes"]));
    migrating_pair(&rsrc, &rdst);
    let want = script_sequence(&mut rsrc.raw(), &mut rdst.raw(), (rsrc.port, rdst.port));
    assert!(want[0].starts_with("-ASK "), "redis-server: {want:?}");
    for on_shard in 0..2 {
        let src = Server::slotcore(&["--shards", "2", "--cluster-enabled", "yes"]);
        let dst = Server::slotcore(&["--cluster-enabled", "yes"]);
        migrating_pair(&src, &dst);
        let (c0, c1) = common::one_per_shard(&src);
        let mut c = if on_shard == 0 { c0 } else { c1 };
        let got = script_sequence(&mut c, &mut dst.raw(), (src.port, dst.port));
        assert_eq!(got, want, "connection on shard {on_shard}");
    }
}
