//! PUBLISH and SPUBLISH called by scripts (EVAL, FCALL), compared with a real redis-server:
//! replies and receiver counts, messages reaching subscribers on every shard, inside
//! MULTI/EXEC and after a script's restart, propagation to replicas (never to the AOF), and
//! the cluster-mode slot rules for a shard channel.

mod common;
use common::cluster::{self, wait_for};
use common::{one_per_shard, until, Raw, Server, WAIT};

/// A library with functions that publish (FCALL).
const LIB: &str = "#!lua name=publib\n\
    redis.register_function('pub', function(keys, args) return redis.call('publish', args[1], args[2]) end)\n\
    redis.register_function('spub', function(keys, args) return redis.call('spublish', keys[1], args[1]) end)\n\
    redis.register_function{function_name='pubro', flags={'no-writes'},\n\
        callback=function(keys, args) return redis.call('publish', args[1], args[2]) end}";

/// Subscribes (reading one confirmation per channel) and returns the connection.
fn subscribed(mut r: Raw, args: &[&str]) -> Raw {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    r.send_cmd(&a);
    for _ in 1..args.len() {
        r.reply();
    }
    r
}

/// Reads pushed messages until one whose last element is `end` (inclusive).
fn messages_until(r: &mut Raw, end: &str) -> Vec<String> {
    let tail = format!("${}\r\n{end}\r\n", end.len());
    let mut out = Vec::new();
    loop {
        let m = r.reply();
        let done = m.ends_with(&tail);
        out.push(m);
        if done {
            return out;
        }
        assert!(out.len() < 10_000, "no {end:?} message: {out:?}");
    }
}

/// The commands both servers run (the publisher alternates between two connections).
fn steps() -> Vec<Vec<&'static str>> {
    let v = |a: &[&'static str]| a.to_vec();
    vec![
        v(&["EVAL", "return redis.call('publish', KEYS[1], ARGV[1])", "1", "ch", "m1"]),
        v(&[
            "EVAL",
            "return {redis.call('publish','ch','m2'), redis.call('publish','cx','m3'), \
             redis.call('publish','nobody','m4'), redis.call('spublish','sc','m5')}",
            "0",
        ]),
        v(&["EVAL", "return redis.call('spublish','sc','m6')", "1", "k"]),
        v(&["EVAL_RO", "return redis.call('publish','ch','no')", "0"]),
        v(&["EVAL", "#!lua flags=no-writes\nreturn redis.call('publish','ch','no')", "0"]),
        v(&["EVAL", "return redis.call('publish','ch')", "0"]),
        v(&["EVAL", "return redis.pcall('publish','ch','a','b')", "0"]),
        v(&["EVAL", "redis.call('set', KEYS[1], 'v') return redis.call('publish','ch','m7')", "1", "k"]),
        // Keys on both shards (a copied run).
        v(&[
            "EVAL",
            "redis.call('set', KEYS[1], '1') redis.call('set', KEYS[2], '2') return redis.call('publish','ch','m8')",
            "2",
            "a",
            "b",
        ]),
        // Undeclared keys on both shards: slotcore runs it again holding every shard; the
        // message still goes out once.
        v(&[
            "EVAL",
            "local n = redis.call('publish','ch','m9') redis.call('get','a') redis.call('get','b') return n",
            "0",
        ]),
        v(&["FUNCTION", "LOAD", LIB]),
        v(&["FCALL", "pub", "0", "ch", "m10"]),
        v(&["FCALL", "spub", "1", "sc", "m11"]),
        v(&["FCALL_RO", "pubro", "0", "ch", "no"]),
        v(&["FCALL_RO", "pub", "0", "ch", "no"]),
        v(&["MULTI"]),
        v(&["EVAL", "return redis.call('publish','ch','m12')", "0"]),
        v(&["FCALL", "spub", "1", "sc", "m13"]),
        v(&["EXEC"]),
        v(&["EVAL", "return {redis.call('publish','ch','end'), redis.call('spublish','sc','end')}", "0"]),
    ]
}

/// Subscribers on both shards of a two-shard slotcore, and the same on redis-server: the
/// replies, counts and messages of scripts that publish are Redis's.
#[test]
fn script_publish_matches_redis_on_every_shard() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    // slotcore: channel subscriber on shard 0, pattern and shard channel subscriber on shard 1.
    let (a0, b1) = one_per_shard(&s);
    let (p0, p1) = one_per_shard(&s);
    let mut sc_subs = [subscribed(a0, &["SUBSCRIBE", "ch"]), subscribed(b1, &["PSUBSCRIBE", "c*"])];
    let mut sc_shard = subscribed(s.raw(), &["SSUBSCRIBE", "sc"]);
    let mut rd_subs = [subscribed(o.raw(), &["SUBSCRIBE", "ch"]), subscribed(o.raw(), &["PSUBSCRIBE", "c*"])];
    let mut rd_shard = subscribed(o.raw(), &["SSUBSCRIBE", "sc"]);
    let mut sc_pubs = [p0, p1];
    let mut rd_pubs = [o.raw(), o.raw()];
    let mut in_multi = false;
    for (i, step) in steps().iter().enumerate() {
        // A MULTI block stays on one connection.
        in_multi |= step[0] == "MULTI";
        let who = if in_multi { 0 } else { i % 2 };
        in_multi &= step[0] != "EXEC";
        let got = sc_pubs[who].cmd(step);
        let want = rd_pubs[who].cmd(step);
        assert_eq!(got, want, "{step:?}");
    }
    for (sc, rd) in sc_subs.iter_mut().zip(rd_subs.iter_mut()) {
        assert_eq!(messages_until(sc, "end"), messages_until(rd, "end"));
    }
    assert_eq!(messages_until(&mut sc_shard, "end"), messages_until(&mut rd_shard, "end"));
    // One publisher's scripts reach a subscriber on the other shard in order, pipelined.
    let mut pipeline = Vec::new();
    for i in 0..300 {
        let n = i.to_string();
        pipeline.extend(common::encode(&[b"EVAL", b"return redis.call('publish','ch',ARGV[1])", b"0", n.as_bytes()]));
    }
    sc_pubs[1].send(&pipeline);
    for _ in 0..300 {
        assert_eq!(sc_pubs[1].reply(), ":2\r\n");
    }
    for i in 0..300 {
        let n = i.to_string();
        assert_eq!(sc_subs[0].reply(), format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n{n}\r\n", n.len()));
    }
}

/// A RESP3 subscriber whose own script publishes to it gets the message before the reply.
#[test]
fn resp3_subscriber_gets_its_own_script_message_first() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let mut outs = Vec::new();
    for port in [s.port, o.port] {
        let mut r = Raw::connect(port);
        r.cmd(&["HELLO", "3"]);
        let mut got = r.cmd(&["SUBSCRIBE", "me"]);
        got.push_str(&r.cmd(&["EVAL", "return redis.call('publish','me','x')", "0"]));
        got.push_str(&r.reply());
        got.push_str(&r.cmd(&["PING"]));
        outs.push(got);
    }
    assert_eq!(outs[0], outs[1]);
}

/// Starts a replica of `master` (slotcore or redis-server, as `make`) and waits for its link.
fn linked_replica(master: &Server, make: impl Fn(&[&str]) -> Server) -> Server {
    let port = master.port.to_string();
    let r = make(&["--replicaof", "127.0.0.1", &port]);
    let mut c = r.raw();
    until("the replica's link", || c.cmd(&["INFO", "replication"]).contains("master_link_status:up"));
    r
}

/// What a script publishes goes to replicas with its other effects (not under REPL_AOF),
/// SPUBLISH too, and never into the AOF: the replicas' subscribers hear what redis-server's
/// replica's hear.
#[test]
fn script_publish_reaches_replicas_not_the_aof() {
    let sm = Server::slotcore(&["--save", "", "--shards", "2", "--appendonly", "yes"]);
    let rm = Server::redis(&[]);
    let sr = linked_replica(&sm, |a| Server::slotcore(&[&["--save", "", "--shards", "2"][..], a].concat()));
    let rr = linked_replica(&rm, Server::redis);
    let subs = |r: &Server| (subscribed(r.raw(), &["SUBSCRIBE", "ch"]), subscribed(r.raw(), &["SSUBSCRIBE", "sc"]));
    let (mut s_ch, mut s_sc) = subs(&sr);
    let (mut r_ch, mut r_sc) = subs(&rr);
    let script: &[&[&str]] = &[
        &["EVAL", "return redis.call('publish','ch','r1')", "0"],
        &["EVAL", "redis.call('set','k','v') return redis.call('publish','ch','r2')", "0"],
        &["EVAL", "redis.call('set','k','v') redis.set_repl(redis.REPL_AOF) return redis.call('publish','ch','r3')", "0"],
        &["EVAL", "redis.set_repl(redis.REPL_NONE) return redis.call('publish','ch','r4')", "0"],
        &["EVAL", "redis.set_repl(redis.REPL_REPLICA) redis.call('publish','ch','r5') return redis.call('spublish','sc','s1')", "0"],
        &["SELECT", "3"],
        &["EVAL", "redis.call('set','k','v') return redis.call('publish','ch','r6')", "0"],
        &["PUBLISH", "ch", "r7"],
        &["SPUBLISH", "sc", "s2"],
        &["EVAL", "return {redis.call('publish','ch','end'), redis.call('spublish','sc','end')}", "0"],
        &["SET", "done", "1"],
    ];
    common::assert_same(&mut sm.raw(), &mut rm.raw(), script);
    assert_eq!(messages_until(&mut s_ch, "end"), messages_until(&mut r_ch, "end"));
    assert_eq!(messages_until(&mut s_sc, "end"), messages_until(&mut r_sc, "end"));
    // The AOF has the script's writes (the last one included) and no PUBLISH.
    let aof_dir = sm.dir.join("appendonlydir");
    let read_aof = || -> String {
        let mut text = String::new();
        for e in std::fs::read_dir(&aof_dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().ends_with(".incr.aof") {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()));
            }
        }
        text
    };
    until("the AOF to have the last write", || read_aof().contains("$4\r\ndone\r\n"));
    let aof = read_aof().to_lowercase();
    assert!(!aof.contains("publish"), "{aof}");
}

/// `n` channels named `chan0`, `chan1`, ... in different slots that `node` serves (`local`)
/// or does not.
fn channels(node: &Server, local: bool, n: usize) -> Vec<String> {
    let mut c = node.raw();
    let mut out: Vec<(String, String)> = Vec::new();
    for i in 0..1000 {
        let name = format!("chan{i}");
        let slot = c.cmd(&["CLUSTER", "KEYSLOT", &name]);
        let served = c.cmd(&["SPUBLISH", &name, "probe"]).starts_with(':');
        if served == local && out.iter().all(|(_, s)| *s != slot) {
            out.push((name, slot));
            if out.len() == n {
                break;
            }
        }
    }
    assert_eq!(out.len(), n, "not enough channels");
    out.into_iter().map(|(name, _)| name).collect()
}

/// In cluster mode a script's SPUBLISH follows Redis's rules for the channel's slot (a key's:
/// served here, and the declared keys' slot unless cross-slot access is allowed); its
/// PUBLISH reaches the other nodes, counting the local receivers only.
#[test]
fn script_publish_in_a_cluster_matches_redis() {
    let sc1 = cluster::slotcore_node();
    let sc2 = cluster::slotcore_node();
    let rd = cluster::redis_node();
    let nodes = [&sc1, &sc2, &rd];
    cluster::create_agreed(&nodes, 0);
    let shebang = "#!lua\nreturn redis.call('spublish', ARGV[1], 'x')";
    let cross = "#!lua flags=allow-cross-slot-keys\nreturn redis.call('spublish', ARGV[1], 'x')";
    let old = "return redis.call('spublish', ARGV[1], 'x')";
    let mut replies = Vec::new();
    for node in [&sc1, &rd] {
        let local = channels(node, true, 2);
        let remote = channels(node, false, 1);
        let (l1, l2, r) = (local[0].as_str(), local[1].as_str(), remote[0].as_str());
        let mut c = node.raw();
        let mut got = Vec::new();
        for args in [
            vec!["EVAL", shebang, "1", l1, l1],
            vec!["EVAL", shebang, "1", l1, l2],
            vec!["EVAL", shebang, "1", l1, r],
            vec!["EVAL", shebang, "0", r],
            vec!["EVAL", cross, "1", l1, l2],
            vec!["EVAL", old, "1", l1, l2],
            vec!["EVAL", old, "0", r],
            vec!["EVAL", "return redis.pcall('spublish', ARGV[1], 'x')", "0", r],
            vec![
                "EVAL",
                "#!lua\nredis.call('spublish', ARGV[1], 'x') return redis.call('spublish', ARGV[2], 'x')",
                "0",
                l1,
                l2,
            ],
            vec!["EVAL", "#!lua\nreturn redis.call('publish', ARGV[1], 'x')", "1", l1, r],
        ] {
            got.push(c.cmd(&args));
        }
        replies.push(got);
    }
    assert_eq!(replies[0], replies[1]);
    // Shard channel subscribers on both shards of a slotcore node hear its script's SPUBLISH.
    let l1 = channels(&sc1, true, 1).remove(0);
    let (a, b) = one_per_shard(&sc1);
    let mut ssubs = [subscribed(a, &["SSUBSCRIBE", &l1]), subscribed(b, &["SSUBSCRIBE", &l1])];
    let mut c = sc1.raw();
    wait_for(WAIT, "both shard subscriptions", || c.cmd(&["PUBSUB", "SHARDNUMSUB", &l1]).ends_with(":2\r\n"));
    assert_eq!(c.cmd(&["EVAL", "return redis.call('spublish', KEYS[1], 'hello')", "1", &l1]), ":2\r\n");
    for s in ssubs.iter_mut() {
        assert_eq!(s.reply(), format!("*3\r\n$8\r\nsmessage\r\n${}\r\n{l1}\r\n$5\r\nhello\r\n", l1.len()));
    }
    // A script's PUBLISH on a slotcore node reaches every node's subscribers.
    let mut subs: Vec<Raw> = nodes.iter().map(|n| subscribed(n.raw(), &["SUBSCRIBE", "everywhere"])).collect();
    assert_eq!(sc2.raw().cmd(&["EVAL", "return redis.call('publish','everywhere','m')", "0"]), ":1\r\n");
    for s in subs.iter_mut() {
        assert_eq!(s.reply(), "*3\r\n$7\r\nmessage\r\n$10\r\neverywhere\r\n$1\r\nm\r\n");
    }
}
