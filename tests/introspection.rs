//! Introspection and debugging behaviour that tools and Redis's own test harness rely on,
//! checked side by side with a real redis-server: CLIENT KILL of the caller itself, the
//! query buffer CLIENT LIST shows, MONITOR around scripts, DEBUG QUICKLIST-PACKED-THRESHOLD,
//! the lazy-free fields of INFO, SWAPDB in the replication stream, and option values that
//! begin with `--` on the command line.

mod common;
use common::{assert_same, read_reply, Raw, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A field of a CLIENT INFO / CLIENT LIST line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

#[test]
fn client_kill_of_the_caller_replies_then_closes() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut me = s.raw();
        let mut other = s.raw();
        assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
        // Only the two connections of this test exist: both are killed, the caller after
        // it got the count.
        assert_eq!(me.cmd(&["CLIENT", "KILL", "SKIPME", "no"]), ":2\r\n", "on {}", s.port);
        assert!(me.read_to_end().is_empty());
        assert!(other.read_to_end().is_empty());
        // With SKIPME yes (the default) the caller stays.
        let mut me = s.raw();
        let mut victim = s.raw();
        // A round trip first: the server has registered the connection before the kill.
        assert_eq!(victim.cmd(&["PING"]), "+PONG\r\n");
        assert_eq!(me.cmd(&["CLIENT", "KILL", "SKIPME", "yes"]), ":1\r\n");
        assert_eq!(me.cmd(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn client_list_shows_the_running_command_in_qbuf() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut c = s.raw();
        let info = c.cmd(&["CLIENT", "INFO"]);
        // "*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n" is 26 bytes.
        assert_eq!(field(&info, "qbuf"), Some("26"), "{info}");
        let list = c.cmd(&["CLIENT", "LIST"]);
        assert_eq!(field(&list, "qbuf"), Some("26"), "{list}");
    }
}

/// MONITOR lines without their timestamp and client address.
fn monitor_lines(s: &Server, run: impl FnOnce(&mut Raw)) -> Vec<String> {
    let mut m = s.raw();
    assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
    let mut c = s.raw();
    run(&mut c);
    assert_eq!(c.cmd(&["ECHO", "end"]), "$3\r\nend\r\n");
    let mut lines = Vec::new();
    loop {
        let line = m.reply();
        if line.contains("\"echo\"") || line.contains("\"ECHO\"") {
            return lines;
        }
        let body = line.split_once(']').map_or(line.as_str(), |(_, b)| b).trim().to_string();
        let src = if line.contains(" lua]") { "lua" } else { "client" };
        lines.push(format!("{src}: {body}"));
    }
}

#[test]
fn monitor_shows_scripts_then_their_commands() {
    let script = "redis.call('set',KEYS[1],ARGV[1]) return redis.call('get',KEYS[1])";
    let lib = "#!lua name=mon\nredis.register_function('mon', function() return redis.call('set', 'foo', 'bar') end)";
    let run = |c: &mut Raw| {
        c.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]);
        c.cmd(&["EVAL", script, "1", "foo", "bar"]);
        c.cmd(&["FCALL", "mon", "0"]);
    };
    let ours = monitor_lines(&Server::slotcore(&[]), run);
    let theirs = monitor_lines(&Server::redis(&[]), run);
    assert_eq!(ours, theirs);
    assert!(ours.iter().any(|l| l == "lua: \"set\" \"foo\" \"bar\""), "{ours:?}");
}

#[test]
fn debug_quicklist_packed_threshold_as_redis() {
    let s = Server::slotcore(&["--enable-debug-command", "yes"]);
    let o = Server::redis(&["--enable-debug-command", "yes"]);
    let t = "QUICKLIST-PACKED-THRESHOLD";
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["DEBUG", t, "1b"],
            &["RPUSH", "l", "9", "xxxxxxxxxx", "xxxxxxxxxx"],
            &["LINSERT", "l", "BEFORE", "9", "yy"],
            &["LSET", "l", "0", "zzz"],
            &["LRANGE", "l", "0", "-1"],
            &["LPOS", "l", "xxxxxxxxxx", "RANK", "-1"],
            &["DEBUG", t, "5b"],
            &["DEBUG", t, "4gb"],
            &["DEBUG", t, "4095mb"],
            &["DEBUG", t, "4096mb"],
            &["DEBUG", t, "abc"],
            &["DEBUG", t, "-1"],
            &["DEBUG", t],
            &["DEBUG", t, "0"],
        ],
    );
}

#[test]
fn info_memory_has_lazyfree_fields() {
    let s = Server::slotcore(&[]);
    let info = s.raw().cmd(&["INFO", "memory"]);
    for f in ["lazyfree_pending_objects:0\r\n", "lazyfreed_objects:0\r\n", "active_defrag_running:0\r\n"] {
        assert!(info.contains(f), "{f} missing in {info}");
    }
}

/// A replication stream: SYNC sent, the RDB payload skipped.
struct Stream(BufReader<TcpStream>);

impl Stream {
    fn open(s: &Server) -> Stream {
        let mut w = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(10))).ok();
        w.write_all(b"SYNC\r\n").expect("sync");
        let mut r = BufReader::new(w);
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("sync header");
            if let Some(len) = line.trim().strip_prefix('$') {
                let mut rdb = vec![0u8; len.parse().expect("rdb length")];
                r.read_exact(&mut rdb).expect("rdb");
                return Stream(r);
            }
        }
    }

    /// The commands (lower case, space separated) until `until`, PINGs left out.
    fn until(&mut self, until: &str) -> Vec<String> {
        let mut cmds = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut out = Vec::new();
            read_reply(&mut self.0, &mut out).expect("stream");
            let text = String::from_utf8_lossy(&out).to_string();
            let words: Vec<&str> = text.split("\r\n").filter(|w| !w.is_empty() && !w.starts_with(['*', '$'])).collect();
            let line = words.join(" ").to_lowercase();
            if line == "ping" {
                continue;
            }
            let done = line == until;
            cmds.push(line);
            if done {
                return cmds;
            }
        }
        panic!("{until} not seen in {cmds:?}");
    }
}

#[test]
fn swapdb_is_propagated_in_the_callers_db() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut sync = Stream::open(&s);
        let mut c = s.raw();
        c.cmd(&["SELECT", "1"]);
        c.cmd(&["SET", "a", "1"]);
        c.cmd(&["SWAPDB", "1", "9"]);
        c.cmd(&["SET", "end", "1"]);
        let got = sync.until("set end 1");
        assert_eq!(got, ["select 1", "set a 1", "swapdb 1 9", "set end 1"], "on {}", s.port);
    }
}

#[test]
fn option_values_may_begin_with_dashes() {
    let s = Server::slotcore(&["--proc-title-template", "--my--title", "--loglevel", "verbose"]);
    let mut c = s.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "proc-title-template"]),
        "*2\r\n$19\r\nproc-title-template\r\n$11\r\n--my--title\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "loglevel"]), "*2\r\n$8\r\nloglevel\r\n$7\r\nverbose\r\n");
}

#[test]
fn reset_ends_monitor_mode() {
    for s in [Server::slotcore(&[]), Server::redis(&[])] {
        let mut m = s.raw();
        assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
        assert_eq!(m.cmd(&["RESET"]), "+RESET\r\n");
        assert_eq!(m.cmd(&["PING"]), "+PONG\r\n");
        let list = s.raw().cmd(&["CLIENT", "LIST"]);
        assert!(!list.contains("flags=O"), "{list}");
    }
}

/// A command another shard runs once the monitor has read MONITOR's +OK is always shown: the
/// monitor is registered when MONITOR runs, not after its reply was written (a SET sent the
/// moment +OK arrived was missed now and then, so a client waiting for its line hung).
#[test]
fn monitor_sees_other_shards_commands_right_after_its_ok() {
    let s = Server::slotcore(&["--shards", "2"]);
    let (mut m, mut w) = common::one_per_shard(&s);
    for i in 0..300 {
        assert_eq!(m.cmd(&["MONITOR"]), "+OK\r\n");
        assert_eq!(w.cmd(&["SET", "foo", &i.to_string()]), "+OK\r\n");
        assert_eq!(w.cmd(&["ECHO", "end"]), "$3\r\nend\r\n");
        // The command is shown as the client spelt it.
        let first = m.reply();
        assert!(first.contains("\"SET\" \"foo\""), "round {i}: the SET was not shown, got {first:?}");
        assert!(m.reply().contains("\"ECHO\" \"end\""));
        // RESET leaves the monitor mode; the connection stays on its shard for the next round.
        assert_eq!(m.cmd(&["RESET"]), "+RESET\r\n");
    }
}

#[test]
fn shutdown_signal_flags_as_redis() {
    let s =
        Server::slotcore(&["--shutdown-on-sigint", "nosave", "force", "now", "--shutdown-on-sigterm", "nosave force"]);
    let o = Server::redis(&["--shutdown-on-sigint", "nosave", "force", "now", "--shutdown-on-sigterm", "nosave force"]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["CONFIG", "GET", "shutdown-on-sigint"],
            &["CONFIG", "GET", "shutdown-on-sigterm"],
            &["CONFIG", "SET", "shutdown-on-sigterm", "force now"],
            &["CONFIG", "GET", "shutdown-on-sigterm"],
            &["CONFIG", "SET", "shutdown-on-sigterm", "save nosave"],
            &["CONFIG", "SET", "shutdown-on-sigterm", "later"],
            &["CONFIG", "SET", "shutdown-on-sigterm", "default"],
            &["CONFIG", "GET", "shutdown-on-sigterm"],
        ],
    );
}

#[test]
fn rename_command_and_process_title() {
    let args = ["--rename-command", "flushdb", "badger", "--rename-command", "set", "put"];
    let s = Server::slotcore(&args);
    let o = Server::redis(&args);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["PUT", "k", "v"],
            // Twice: the old name must stay unknown after the command ran under the new one.
            &["SET", "k", "v"],
            &["PUT", "k", "w"],
            &["SET", "k", "v"],
            &["GET", "k"],
            &["FLUSHDB"],
            &["badger"],
            &["DBSIZE"],
            &["CONFIG", "SET", "proc-title-template", "{unknown}"],
            &["CONFIG", "SET", "proc-title-template", "{title"],
        ],
    );
    // The title is written over the command line, longer than the original arguments.
    let mut r = s.raw();
    let tpl = "TEST {title} {listen-addr} {port} {tls-port} {config-file} and-some-more-room-taken";
    assert_eq!(r.cmd(&["CONFIG", "SET", "proc-title-template", tpl]), "+OK\r\n");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid())).expect("cmdline");
    let title = String::from_utf8_lossy(&cmdline).trim_end_matches('\0').to_string();
    let want = format!(" *:{} {} 0 - and-some-more-room-taken", s.port, s.port);
    assert!(title.starts_with("TEST ") && title.ends_with(&want), "{title:?}");
    let got = format!("*2\r\n$19\r\nproc-title-template\r\n${}\r\n{tpl}\r\n", tpl.len());
    assert_eq!(r.cmd(&["CONFIG", "GET", "proc-title-template"]), got);
}

/// An idle connection holds small buffers: its query and reply buffers grow with what the
/// client sends and receives (redis-server holds about 22-28 KB of `used_memory` per idle
/// connection on this workload; slotcore held 38 KB before the buffers were sized on demand).
#[test]
fn idle_connections_cost_little_memory() {
    let s = Server::slotcore(&[]);
    let mut c = s.raw();
    let used = |c: &mut Raw| -> i64 {
        let text = c.cmd(&["INFO", "memory"]);
        text.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    };
    let before = used(&mut c);
    let n = 300;
    let mut idle: Vec<TcpStream> =
        (0..n).map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect")).collect();
    for sock in &mut idle {
        sock.write_all(b"PING\r\n").expect("write");
        let mut buf = [0u8; 7];
        sock.read_exact(&mut buf).expect("+PONG");
    }
    let per_conn = (used(&mut c) - before) / n;
    assert!(per_conn < 12_000, "{per_conn} bytes of used_memory per idle connection");
}
