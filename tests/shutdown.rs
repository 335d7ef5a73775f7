//! The shutdown sequence as Redis 7.0 runs it: SHUTDOWN ABORT (of a signal's request and of a
//! shutdown waiting for its replicas), `shutdown_in_milliseconds`, the waiting callers' error,
//! a second SIGINT during the final save, and the first base of a run-time AOF.

mod common;
use common::{until, Raw, Server};
use std::time::Duration;

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn info(r: &mut Raw, field: &str) -> String {
    let text = r.cmd(&["INFO", "everything"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

fn signal(s: &Server, sig: i32) {
    // SAFETY: kill(2) on a child process this test started.
    unsafe { libc::kill(s.pid() as i32, sig) };
}

#[test]
fn shutdown_abort_cancels_a_signal_as_redis() {
    let ours = Server::slotcore(&[DEBUG[0], DEBUG[1]]);
    let theirs = Server::redis(&[DEBUG[0], DEBUG[1]]);
    for s in [&ours, &theirs] {
        let mut r = s.raw();
        assert_eq!(r.cmd(&["SHUTDOWN", "ABORT"]), "-ERR No shutdown in progress.\r\n");
        // With the cron paused the signal's request waits; SHUTDOWN ABORT takes it back.
        assert_eq!(r.cmd(&["DEBUG", "PAUSE-CRON", "1"]), "+OK\r\n");
        signal(s, libc::SIGTERM);
        until("the signal's log line", || s.log_text().contains("Received SIGTERM scheduling shutdown"));
        assert_eq!(r.cmd(&["SHUTDOWN", "ABORT"]), "+OK\r\n");
        assert!(s.log_text().contains("Shutdown manually aborted."));
        assert_eq!(r.cmd(&["DEBUG", "PAUSE-CRON", "0"]), "+OK\r\n");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
        assert_eq!(r.cmd(&["SHUTDOWN", "ABORT"]), "-ERR No shutdown in progress.\r\n");
    }
}

/// A master whose replica is stopped (SIGSTOP: it cannot acknowledge) after `incr`.
fn master_with_stopped_replica(master: &Server, replica: &Server) {
    let mut m = master.raw();
    let mut r = replica.raw();
    assert_eq!(m.cmd(&["CONFIG", "SET", "shutdown-timeout", "300"]), "+OK\r\n");
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "+OK\r\n");
    assert_eq!(m.cmd(&["SET", "k", "1"]), "+OK\r\n");
    until("the replica's sync", || r.cmd(&["GET", "k"]) == "$1\r\n1\r\n");
    // SAFETY: kill(2) on a child process this test started.
    unsafe { libc::kill(replica.pid() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(m.cmd(&["INCR", "k"]), ":2\r\n");
}

#[test]
fn shutdown_waiting_for_a_replica_shows_and_aborts_as_redis() {
    for redis in [false, true] {
        let start = |_: usize| if redis { Server::redis(&[]) } else { Server::slotcore(&["--shards", "2"]) };
        let (master, replica) = (start(0), start(1));
        master_with_stopped_replica(&master, &replica);
        let mut m = master.raw();
        let mut waiting = [master.raw(), master.raw()];
        for w in waiting.iter_mut() {
            w.send(&common::encode(&[b"SHUTDOWN"]));
        }
        until("the shutdown's countdown", || info(&mut m, "shutdown_in_milliseconds").parse::<u64>().unwrap_or(0) > 0);
        until("both callers blocked", || info(&mut m, "blocked_clients") == "2");
        // Writes wait meanwhile; SHUTDOWN ABORT answers both callers with Redis's error.
        assert_eq!(m.cmd(&["SHUTDOWN", "ABORT"]), "+OK\r\n");
        for w in waiting.iter_mut() {
            assert_eq!(w.reply(), "-ERR Errors trying to SHUTDOWN. Check logs.\r\n", "redis={redis}");
        }
        assert!(master.log_text().contains("Shutdown manually aborted."));
        assert_eq!(info(&mut m, "shutdown_in_milliseconds"), "");
        assert_eq!(m.cmd(&["INCR", "k"]), ":3\r\n");
        // SAFETY: kill(2) on a child process this test started.
        unsafe { libc::kill(replica.pid() as i32, libc::SIGCONT) };
        let mut r = replica.raw();
        until("the replica catching up", || r.cmd(&["GET", "k"]) == "$1\r\n3\r\n");
    }
}

#[test]
fn shutdown_refuses_to_exit_while_the_first_aof_base_is_written() {
    for redis in [false, true] {
        let mut s = if redis { Server::redis(&[]) } else { Server::slotcore(&[]) };
        let mut r = s.raw();
        r.cmd(&["SET", "k", "v"]);
        assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "30000000"]), "+OK\r\n");
        assert_eq!(r.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
        assert_eq!(r.cmd(&["SHUTDOWN", "NOSAVE"]), "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
        assert!(s.log_text().contains("Writing initial AOF, can't exit."));
        assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
        r.send(&common::encode(&[b"SHUTDOWN", b"NOSAVE", b"FORCE"]));
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "redis={redis}");
        assert!(s.log_text().contains("Writing initial AOF. Exit anyway."));
    }
}

#[test]
fn second_sigint_during_the_final_save_exits_at_once_without_its_temp_file() {
    for redis in [false, true] {
        let args = ["--save", "900 1"];
        let mut s = if redis { Server::redis(&args) } else { Server::slotcore(&args) };
        let mut r = s.raw();
        for i in 0..20 {
            r.cmd(&["SET", &i.to_string(), "v"]);
        }
        // 20 keys at 100 ms each: the final save takes 2 s.
        assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]), "+OK\r\n");
        let temp = s.dir.join(format!("temp-{}.rdb", s.pid()));
        signal(&s, libc::SIGINT);
        until("the final save's temp file", || temp.exists());
        signal(&s, libc::SIGINT);
        assert_eq!(s.wait_exit(Duration::from_secs(1)), Some(1), "redis={redis}");
        assert!(!temp.exists(), "redis={redis}");
        assert!(s.log_text().contains("You insist... exiting now."));
    }
}

/// Sends `script` (an EVAL without keys) on `runner` and waits until another client gets BUSY.
fn busy_with(s: &Server, runner: &mut Raw, script: &str) {
    runner.send_cmd(&[b"EVAL", script.as_bytes(), b"0"]);
    let mut other = s.raw();
    until("the script busy", || other.cmd(&["PING"]).starts_with("-BUSY"));
}

/// A script that keeps the node busy for `ms` milliseconds, then returns 1.
fn busy_for(ms: u64) -> String {
    format!(
        "local t0 = redis.call('TIME') while true do local t = redis.call('TIME') \
         if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) >= {}000 then return 1 end end",
        ms
    )
}

/// A server (busy after 50 ms) with three keys, each taking 100 ms to save, and a connection.
fn three_keys_saved_slowly(redis: bool) -> (Server, Raw) {
    let args = ["--busy-reply-threshold", "50"];
    let s = if redis { Server::redis(&args) } else { Server::slotcore(&args) };
    let mut r = s.raw();
    for k in ["a", "b", "c"] {
        assert_eq!(r.cmd(&["SET", k, "v"]), "+OK\r\n");
    }
    assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]), "+OK\r\n");
    (s, r)
}

const ENDLESS_WRITER: &str = "redis.call('SET', 'x', 'y') while true do end";

/// The base of a run-time AOF, begun before a script, is written while the script keeps the
/// node busy (as Redis's forked child writes it): right after that script a second, endless
/// one starts, and SHUTDOWN NOSAVE still exits, the first base being complete.
#[test]
fn first_aof_base_is_written_while_a_script_is_busy() {
    for redis in [false, true] {
        let (mut s, mut r) = three_keys_saved_slowly(redis);
        // The base takes about 300 ms; the first script lasts 1.5 s.
        assert_eq!(r.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
        until("the rewrite's start", || s.log_text().contains("Creating AOF incr file"));
        let mut runner = s.raw();
        busy_with(&s, &mut runner, &busy_for(1500));
        assert_eq!(runner.reply(), ":1\r\n", "redis={redis}");
        busy_with(&s, &mut runner, ENDLESS_WRITER);
        r.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
        assert!(r.read_to_end().is_empty(), "SHUTDOWN NOSAVE replied (redis={redis})");
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "redis={redis}");
        assert!(!s.log_text().contains("Writing initial AOF, can't exit."), "redis={redis}");
    }
}

/// A BGSAVE that would take 4 s is stopped at once by SHUTDOWN NOSAVE during a busy script.
#[test]
fn shutdown_nosave_stops_a_bgsave_while_a_script_is_busy() {
    for redis in [false, true] {
        let args = ["--busy-reply-threshold", "50", "--save", ""];
        let mut s = if redis { Server::redis(&args) } else { Server::slotcore(&args) };
        let mut r = s.raw();
        for i in 0..40 {
            assert_eq!(r.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
        }
        assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]), "+OK\r\n");
        assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        let mut runner = s.raw();
        busy_with(&s, &mut runner, ENDLESS_WRITER);
        let asked = std::time::Instant::now();
        r.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
        assert!(r.read_to_end().is_empty(), "SHUTDOWN NOSAVE replied (redis={redis})");
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "redis={redis}");
        assert!(asked.elapsed() < Duration::from_secs(3), "exit took {:?} (redis={redis})", asked.elapsed());
    }
}

/// `CONFIG SET appendonly yes` replies once the first base's snapshot began, as Redis replies
/// once its rewrite child is forked: a script pipelined right after it runs while the base is
/// written, and after it SHUTDOWN NOSAVE exits during a second, endless script.
#[test]
fn a_script_right_after_config_set_appendonly_does_not_hold_the_base_up() {
    for redis in [false, true] {
        let (mut s, mut r) = three_keys_saved_slowly(redis);
        let mut runner = s.raw();
        let script = busy_for(1500);
        let mut pipeline = common::encode(&[b"CONFIG", b"SET", b"appendonly", b"yes"]);
        pipeline.extend(common::encode(&[b"EVAL", script.as_bytes(), b"0"]));
        runner.send(&pipeline);
        // (Both replies come once the script ended.)
        until("the script busy", || r.cmd(&["PING"]).starts_with("-BUSY"));
        assert_eq!(runner.reply(), "+OK\r\n", "redis={redis}");
        assert_eq!(runner.reply(), ":1\r\n", "redis={redis}");
        busy_with(&s, &mut runner, ENDLESS_WRITER);
        r.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
        assert!(r.read_to_end().is_empty(), "SHUTDOWN NOSAVE replied (redis={redis})");
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "redis={redis}");
    }
}
