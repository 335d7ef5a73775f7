//! The Lua debugger (SCRIPT DEBUG / `redis-cli --ldb`): whole debugging sessions driven over a
//! raw connection, every reply compared byte for byte with a real redis-server.

mod common;

use common::{Raw, Server};

fn pair() -> (Server, Server) {
    (Server::slotcore(&["--save", ""]), Server::redis(&[]))
}

/// Runs the same session on both servers: SCRIPT DEBUG `mode`, EVAL `script`, then each
/// debugger command (one reply each), then whatever comes until the server closes.
fn session(s: &Server, r: &Server, mode: &str, script: &str, keys: &[&str], commands: &[&[&str]]) {
    let run = |srv: &Server| -> Vec<Vec<u8>> {
        let mut c = srv.raw();
        let mut out = Vec::new();
        out.push(c.cmd_bytes(&[b"script", b"debug", mode.as_bytes()]));
        let mut eval: Vec<&[u8]> = vec![b"eval", script.as_bytes()];
        let n = keys.len().to_string();
        eval.push(n.as_bytes());
        eval.extend(keys.iter().map(|k| k.as_bytes()));
        out.push(c.cmd_bytes(&eval));
        for cmd in commands {
            let a: Vec<&[u8]> = cmd.iter().map(|x| x.as_bytes()).collect();
            out.push(c.cmd_bytes(&a));
        }
        out.push(c.read_to_end());
        out
    };
    let (ours, theirs) = (run(s), run(r));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "reply {i} differs (script {script:?}, commands {commands:?})"
        );
    }
    assert_eq!(ours.len(), theirs.len());
}

const SCRIPT: &str = "local a = 1\n\
redis.debug('hi', a, {1, 2, {x = 3}}, 'q\"uote')\n\
redis.call('set', KEYS[1], 'v')\n\
local b = redis.call('get', KEYS[1])\n\
local t = {b, 'x', 5.5}\n\
redis.breakpoint()\n\
return t\n";

#[test]
fn sync_session_matches_redis() {
    let (s, r) = pair();
    session(
        &s,
        &r,
        "sync",
        SCRIPT,
        &["k"],
        &[
            &["help"],
            &["step"],
            &["n"],
            &["print"],
            &["print", "a"],
            &["print", "KEYS"],
            &["print", "nosuch"],
            &["redis", "get", "k"],
            &["r", "set", "k2", "v2"],
            &["r", "lpush", "k"],
            &["r", "nosuchcommand", "x"],
            &["eval", "a + 1"],
            &["e", "nosuchglobal + 1"],
            &["e", "return", "(", "{1,", "2}"],
            &["e", "syntax", "error"],
            &["break", "5"],
            &["b", "99"],
            &["b", "x"],
            &["b"],
            &["list"],
            &["l", "2", "1"],
            &["whole"],
            &["trace"],
            &["maxlen"],
            &["maxlen", "10"],
            &["r", "set", "long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
            &["r", "get", "long"],
            &["m", "0"],
            &["r", "get", "long"],
            &["hello\0world"],
            &["\0hello"],
            &["r"],
            &["continue"],
            &["b", "-5"],
            &["b", "-5"],
            &["b", "0"],
            &["c"],
        ],
    );
    // Sync mode keeps what the script (and the debugger's commands) wrote.
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["get", "k2"]), "$2\r\nv2\r\n");
    }
}

#[test]
fn abort_and_errors_match_redis() {
    let (s, r) = pair();
    session(&s, &r, "sync", "local x = 1\nreturn x", &[], &[&["abort"]]);
    session(&s, &r, "sync", "return redis.call('incr', KEYS[1])", &["s"], &[&["s"]]);
    session(&s, &r, "sync", "return {1, 2,", &[], &[]);
    // EVALSHA refuses to debug; SCRIPT DEBUG checks its argument; NO turns it off.
    let run = |srv: &Server| -> Vec<String> {
        let mut c: Raw = srv.raw();
        vec![
            c.cmd(&["script", "debug", "maybe"]),
            c.cmd(&["script", "debug", "yes"]),
            c.cmd(&["evalsha", "0123456789012345678901234567890123456789", "0"]),
            c.cmd(&["evalsha", "short", "0"]),
            c.cmd(&["script", "debug", "no"]),
            c.cmd(&["eval", "return 7", "0"]),
        ]
    };
    assert_eq!(run(&s), run(&r));
}

#[test]
fn forked_session_discards_changes() {
    let (s, r) = pair();
    session(
        &s,
        &r,
        "yes",
        "redis.call('set', KEYS[1], 'new')\nreturn redis.call('get', KEYS[1])",
        &["fk"],
        &[&["s"], &["r", "get", "fk"], &["c"]],
    );
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["exists", "fk"]), ":0\r\n");
    }
}

#[test]
fn client_gone_lets_the_script_finish() {
    let s = Server::slotcore(&["--save", ""]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["script", "debug", "sync"]), "+OK\r\n");
    let stop = c.cmd(&["eval", "redis.call('set', 'after', '1')\nreturn 1", "0"]);
    assert!(stop.contains("Stopped at 1"), "{stop}");
    drop(c);
    // The session ends when the client goes; the script runs to its end and the node serves.
    let mut d = s.raw();
    let start = std::time::Instant::now();
    while d.cmd(&["get", "after"]) != "$1\r\n1\r\n" {
        assert!(start.elapsed() < common::WAIT, "the script never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(d.cmd(&["ping"]), "+PONG\r\n");
}
