//! Lua scripting: replies compared byte for byte with a real redis-server for a corpus of
//! scripts (type conversions, errors, RESP3, cjson, bit), atomicity of a multi-shard script
//! under concurrent writers, SCRIPT KILL of a busy script while other clients get BUSY, and
//! the EVALSHA-then-EVAL client pattern.

mod common;

use common::{assert_same, Raw, Server, WAIT};
use std::time::Instant;

fn pair() -> (Server, Server) {
    (Server::slotcore(&["--save", ""]), Server::redis(&[]))
}

#[test]
fn replies_match_redis() {
    let (s, r) = pair();
    let (mut a, mut b) = (s.raw(), r.raw());
    let corpus: &[&[&str]] = &[
        &["set", "k", "v"],
        &["eval", "return {1,2,3,'ciao',{1,2}}", "0"],
        &["eval", "return 3.99", "0"],
        &["eval", "return true", "0"],
        &["eval", "return false", "0"],
        &["eval", "return {ok='fine'}", "0"],
        &["eval", "return {err='My Error'}", "0"],
        &["eval", "return redis.error_reply('My Error')", "0"],
        &["eval", "return redis.status_reply('FINE')", "0"],
        &["eval", "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}", "2", "a", "b", "c", "d"],
        &["eval", "return redis.call('get',KEYS[1])", "1", "k"],
        &["eval", "return redis.call('get','nokey')", "0"],
        &["eval", "return redis.call('incr','k')", "0"],
        &["eval", "return redis.pcall('incr','k')", "0"],
        &["eval", "return redis.call('nosuch')", "0"],
        &["eval", "return redis.call()", "0"],
        &["eval", "return redis.call('get')", "0"],
        &["eval", "return x", "0"],
        &["eval", "x = 5", "0"],
        &["eval", "error('boom')", "0"],
        &["eval", "return {1,2", "0"],
        &["eval", "return 1", "-1"],
        &["eval", "return 1", "3", "a"],
        &["eval", "return cjson.encode({1,2,{a=1}})", "0"],
        &["eval", "return cjson.decode('[1,2,3,\"x\"]')", "0"],
        &["eval", "return cjson.encode(cjson.decode('{\"a\":[1,2.5,\"\\/x\"]}'))", "0"],
        &["eval", "return bit.band(0xff, 0x0f) + bit.bor(1,2) + bit.lshift(1,4)", "0"],
        &["eval", "return bit.tohex(65535)", "0"],
        &["eval", "return redis.sha1hex('')", "0"],
        &["eval", "redis.call('rpush','l','a','b','c'); return redis.call('lrange','l',0,-1)", "0"],
        &["eval", "return redis.call('hgetall','nohash')", "0"],
        &["eval", "redis.setresp(3); return redis.call('hgetall','nohash')", "0"],
        &["eval", "return redis.call('set','k2','x','get')", "0"],
        &["evalsha", "ffffffffffffffffffffffffffffffffffffffff", "0"],
        &["evalsha", "short", "0"],
        &["script", "load", "return 'loaded'"],
        &["evalsha", "1e7b2fd1fec6f1b4ef3a4ceb31bdb74a4da2f2c0", "0"],
        &["script", "exists", "1e7b2fd1fec6f1b4ef3a4ceb31bdb74a4da2f2c0", "ffffffffffffffffffffffffffffffffffffffff"],
        &["eval_ro", "return redis.call('set','x','y')", "0"],
        &["eval_ro", "return redis.call('get','k')", "0"],
        &["eval", "#!lua flags=no-writes\nreturn redis.call('set','x','y')", "0"],
        &["eval", "#!lua flags=bogus\nreturn 1", "0"],
        &["eval", "#!lua\nreturn redis.call('get','k')", "0"],
        &["eval", "return redis.call('select', 9)", "0"],
        &["eval", "local t = {}; for i=1,100 do t[i]=i end; return #t", "0"],
        &["eval", "return tostring(0.1)", "0"],
        &["eval", "return math.floor(7/2)", "0"],
        &["eval", "return string.format('%d-%s', 5, 'x')", "0"],
        &["eval", "return table.concat({'a','b'}, ',')", "0"],
        &["eval", "return redis.call('ping')", "0"],
        &["script", "flush"],
        &["script", "exists", "1e7b2fd1fec6f1b4ef3a4ceb31bdb74a4da2f2c0"],
    ];
    assert_same(&mut a, &mut b, corpus);
    // RESP3 client.
    a.cmd(&["hello", "3"]);
    b.cmd(&["hello", "3"]);
    let resp3: &[&[&str]] = &[
        &["eval", "return true", "0"],
        &["eval", "redis.setresp(3); return {map={a=1}}", "0"],
        &["eval", "redis.setresp(3); return {double=3.5}", "0"],
        &["eval", "redis.setresp(3); return true", "0"],
        &["eval", "redis.setresp(3); return redis.call('hgetall','nohash')", "0"],
    ];
    assert_same(&mut a, &mut b, resp3);
}

/// A rate limiter (INCR + EXPIRE) and a lock release script, as client libraries use them.
#[test]
fn client_patterns_match_redis() {
    let (s, r) = pair();
    let (mut a, mut b) = (s.raw(), r.raw());
    let limiter = "local n = redis.call('incr', KEYS[1]) if n == 1 then redis.call('expire', KEYS[1], ARGV[1]) end if n > tonumber(ARGV[2]) then return 0 end return n";
    let release = "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";
    let cmds: &[&[&str]] = &[
        &["eval", limiter, "1", "rl", "60", "3"],
        &["eval", limiter, "1", "rl", "60", "3"],
        &["eval", limiter, "1", "rl", "60", "3"],
        &["eval", limiter, "1", "rl", "60", "3"],
        &["ttl", "rl"],
        &["set", "lock", "token1", "nx", "px", "30000"],
        &["eval", release, "1", "lock", "other"],
        &["eval", release, "1", "lock", "token1"],
        &["exists", "lock"],
    ];
    assert_same(&mut a, &mut b, cmds);
    // EVALSHA first, EVAL on NOSCRIPT (redis-py / ioredis style).
    let sha = s.cli(&["script", "load", release]).trim().to_string();
    let mut c = s.client();
    let r: redis::RedisResult<i64> = redis::cmd("evalsha").arg(&sha).arg(1).arg("lock").arg("t").query(&mut c);
    assert_eq!(r.unwrap(), 0);
    s.cli(&["script", "flush"]);
    let r: redis::RedisResult<i64> = redis::cmd("evalsha").arg(&sha).arg(1).arg("lock").arg("t").query(&mut c);
    assert_eq!(r.unwrap_err().kind(), redis::ErrorKind::NoScriptError);
    // The client falls back to EVAL, which caches the script again.
    let n: i64 = redis::cmd("eval").arg(release).arg(1).arg("lock").arg("t").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let n: i64 = redis::cmd("evalsha").arg(&sha).arg(1).arg("lock").arg("t").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

/// A script moving a value between keys on different shards is atomic: concurrent readers of
/// the sum never see a half-done move.
#[test]
fn multi_shard_script_is_atomic() {
    let s = Server::slotcore(&["--save", "", "--shards", "3"]);
    let mut setup = s.raw();
    // Keys spread over shards.
    let keys: Vec<String> = (0..6).map(|i| format!("acct:{i}")).collect();
    for k in &keys {
        setup.cmd(&["set", k, "100"]);
    }
    let mover = "local a = redis.call('decrby', KEYS[1], ARGV[1]) redis.call('incrby', KEYS[2], ARGV[1]) return a";
    let sum = "local s = 0 for i=1,#KEYS do s = s + tonumber(redis.call('get', KEYS[i])) end return s";
    let port = s.port;
    let keys2 = keys.clone();
    let writer = std::thread::spawn(move || {
        let mut w = Raw::connect(port);
        for i in 0..400 {
            let a = &keys2[i % 6];
            let b = &keys2[(i + 1) % 6];
            let r = w.cmd(&["eval", mover, "2", a, b, "7"]);
            assert!(r.starts_with(':'), "{r}");
        }
    });
    let mut reader = s.raw();
    let mut args: Vec<&str> = vec!["eval", sum, "6"];
    args.extend(keys.iter().map(|k| k.as_str()));
    let start = Instant::now();
    while !writer.is_finished() && start.elapsed() < WAIT {
        assert_eq!(reader.cmd(&args), ":600\r\n");
        // Undeclared keys on other shards: the script still sees a consistent total.
        let undeclared = "local s = 0 for i=0,5 do s = s + tonumber(redis.call('get', 'acct:'..i)) end return s";
        assert_eq!(reader.cmd(&["eval", undeclared, "0"]), ":600\r\n");
    }
    writer.join().unwrap();
    assert_eq!(reader.cmd(&args), ":600\r\n");
}

/// A busy read-only script: other clients get BUSY, SCRIPT KILL stops it, the caller gets
/// the kill error; a script that wrote cannot be killed.
#[test]
fn script_kill_and_busy() {
    let s = Server::slotcore(&["--save", "", "--busy-reply-threshold", "100"]);
    let mut runner = s.raw();
    runner.send_cmd(&[b"eval", b"while true do end", b"0"]);
    let mut other = s.raw();
    let start = Instant::now();
    loop {
        let r = other.cmd(&["ping"]);
        if r.starts_with("-BUSY") {
            break;
        }
        assert!(start.elapsed() < WAIT, "never BUSY: {r}");
    }
    assert_eq!(other.cmd(&["script", "kill"]), "+OK\r\n");
    let r = runner.reply();
    assert!(r.contains("killed by user"), "{r}");
    assert_eq!(other.cmd(&["ping"]), "+PONG\r\n");
    assert!(other.cmd(&["script", "kill"]).starts_with("-NOTBUSY"));
    // A script that wrote is unkillable; SHUTDOWN NOSAVE is the way out.
    runner.send_cmd(&[b"eval", b"redis.call('set','x','y') while true do end", b"0"]);
    let start = Instant::now();
    loop {
        if other.cmd(&["ping"]).starts_with("-BUSY") {
            break;
        }
        assert!(start.elapsed() < WAIT);
    }
    assert!(other.cmd(&["script", "kill"]).starts_with("-UNKILLABLE"));
    other.send_cmd(&[b"shutdown", b"nosave"]);
}
