//! Process behaviour like redis-server's: start-up log lines, pidfile, SIGTERM, port conflicts,
//! daemonize, and six idle nodes sharing two cores without burning CPU.

mod common;
use common::{free_port, Server};
use std::process::Command;
use std::time::{Duration, Instant};

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn pidfile_log_lines_and_sigterm() {
    let dir = std::env::temp_dir().join(format!("slotcore-proc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("slotcore.pid");
    let mut s = Server::slotcore(&["--pidfile", pidfile.to_str().unwrap()]);
    let pid = std::fs::read_to_string(&pidfile).expect("pidfile written");
    assert_eq!(pid.trim(), s.pid().to_string());
    let log = s.log_text();
    for line in ["Server initialized", "Ready to accept connections", "Running mode=standalone, port="] {
        assert!(log.contains(line), "log lacks {line:?}:\n{log}");
    }
    // Redis's line format: pid:M dd Mon yyyy hh:mm:ss.mmm * text
    let first = log.lines().next().unwrap_or("");
    let parts: Vec<&str> = first.splitn(7, ' ').collect();
    assert!(parts[0].ends_with(":M") && parts.len() == 7 && parts[5] == "*", "{first:?}");
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!pidfile.exists(), "pidfile not removed");
    assert!(s.log_text().contains("Received SIGTERM scheduling shutdown..."));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn port_in_use_fails_like_redis() {
    let s = Server::slotcore(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &s.port.to_string(), "--pin-cores", "no"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Failed listening on port {} (tcp), aborting.", s.port))
    );
}

#[test]
fn daemonize_writes_pidfile_and_serves() {
    let dir = std::env::temp_dir().join(format!("slotcore-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("d.pid");
    let logfile = dir.join("d.log");
    let port = free_port();
    let st = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &port.to_string(), "--daemonize", "yes", "--pin-cores", "no"])
        .args(["--pidfile", pidfile.to_str().unwrap(), "--logfile", logfile.to_str().unwrap()])
        .args(["--dir", dir.to_str().unwrap()])
        .status()
        .expect("run");
    assert!(st.success(), "parent must exit 0");
    assert!(wait_for(Duration::from_secs(10), || pidfile.exists()), "no pidfile");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let up = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && std::fs::read_to_string(&logfile).unwrap_or_default().contains("Ready to accept connections")
    });
    let out = Command::new("redis-cli").args(["-p", &port.to_string(), "ping"]).output().expect("cli");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(up);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    assert!(wait_for(Duration::from_secs(10), || unsafe { libc::kill(pid, 0) } != 0), "daemon did not exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn six_idle_nodes_share_two_cores_without_burning_cpu() {
    let nodes: Vec<Server> = (0..6).map(|_| Server::slotcore(&["--shards", "2"])).collect();
    for n in &nodes {
        assert_eq!(n.raw().cmd(&["PING"]), "+PONG\r\n");
    }
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<u64> = nodes.iter().map(|n| common::cpu_ticks(n.pid())).collect();
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<u64> = nodes.iter().map(|n| common::cpu_ticks(n.pid())).collect();
    let hz = 100.0;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let pct = (a - b) as f64 / hz / 3.0 * 100.0;
        assert!(pct < 5.0, "idle node {i} used {pct:.1}% CPU");
    }
}

/// `busy-poll-us` spins that long after a turn before the loop parks, also on a node whose
/// executors are not bound to CPUs (`pin-cores no`, as every test node): after one PING a
/// 400 ms spin shows as CPU time, without the setting the node stays near 0%.
#[test]
fn busy_poll_spins_before_parking_on_an_unpinned_node() {
    let spin_cpu = |args: &[&str]| {
        let n = Server::slotcore(args);
        std::thread::sleep(Duration::from_millis(500));
        let before = common::cpu_ticks(n.pid());
        assert_eq!(n.raw().cmd(&["PING"]), "+PONG\r\n");
        std::thread::sleep(Duration::from_millis(300));
        common::cpu_ticks(n.pid()) - before
    };
    let spinning = spin_cpu(&["--shards", "1", "--busy-poll-us", "400000"]);
    let parked = spin_cpu(&["--shards", "1"]);
    // 100 ticks a second: a 300 ms window of spinning is about 30.
    assert!(spinning >= 15, "busy-poll-us 400000: {spinning} ticks in 300 ms after a PING");
    assert!(parked <= 5, "no busy-poll: {parked} ticks in 300 ms after a PING");
}

#[test]
fn crashes_leave_a_report_in_the_log_as_redis() {
    // SIGABRT and DEBUG SEGFAULT: "crashed by signal" and a stack trace, on both servers;
    // DEBUG PANIC (a Rust panic in slotcore): Redis's "Guru Meditation" report.
    let cases: [(&str, &str); 3] = [
        ("SIGABRT", "crashed by signal: 6"),
        ("SEGFAULT", "crashed by signal: 11"),
        ("PANIC", "Guru Meditation: DEBUG PANIC"),
    ];
    for (how, want) in cases {
        for redis in [false, true] {
            if redis && how == "PANIC" {
                continue;
            }
            let args = ["--enable-debug-command", "yes", "--crash-memcheck-enabled", "no"];
            let mut s = if redis { Server::redis(&args) } else { Server::slotcore(&args) };
            match how {
                "SIGABRT" => unsafe {
                    // SAFETY: kill(2) on a child process this test started.
                    libc::kill(s.pid() as i32, libc::SIGABRT);
                },
                _ => {
                    let mut r = s.raw();
                    r.send(&common::encode(&[b"DEBUG", how.as_bytes()]));
                }
            }
            assert!(s.wait_exit(Duration::from_secs(20)).is_some(), "{how}: still running");
            let log = s.log_text();
            for line in [want, "------ STACK TRACE ------", "=== REDIS BUG REPORT END."] {
                assert!(log.contains(line), "{how} redis={redis}: no {line:?} in the log");
            }
        }
    }
}

/// `supervised systemd`: READY=1 (with Redis's status line) on `$NOTIFY_SOCKET` once the node
/// accepts connections, STOPPING=1 when it exits (Debian's redis-server.service is
/// `Type=notify` and waits for READY=1).
#[test]
fn supervised_systemd_notifies_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("slotcore-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &port.to_string(), "--supervised", "systemd", "--save", "", "--dir", dir.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let recv = || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // As redis-server 7.0 says them.
    assert_eq!(recv(), "STATUS=Redis is loading...\n");
    assert_eq!(recv(), "STATUS=Ready to accept connections\n");
    assert_eq!(recv(), "READY=1\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "serving when READY=1 arrives");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(recv(), "STOPPING=1\n");
    let status = child.wait().expect("exit");
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `shutdown-on-sigterm`: SIGTERM shuts down as SHUTDOWN with those arguments (`nosave` skips
/// the save that save points ask for; `save` saves without save points).
#[test]
fn shutdown_on_sigterm_picks_the_shutdown_arguments() {
    for (flags, save, expect_file) in [("default", "3600 1", true), ("nosave", "3600 1", false), ("save", "", true)] {
        let mut s = Server::slotcore(&["--save", save, "--shutdown-on-sigterm", flags]);
        let _ = std::fs::remove_file(s.dir.join("dump.rdb"));
        assert_eq!(s.cli(&["SET", "k", "v"]).trim(), "OK");
        unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "{flags}: {}", s.log_text());
        assert_eq!(s.dir.join("dump.rdb").exists(), expect_file, "shutdown-on-sigterm {flags}, save {save:?}");
    }
}

/// The software watchdog (`watchdog-period`), beside a redis-server: off by default (SIGALRM
/// is ignored then, as Redis ignores it); CONFIG SET takes Redis's range and raises a period
/// under `2 * (1000 / hz)` ms to it; a turn that blocks its thread past the period (DEBUG SLEEP
/// freezes slotcore's control executor; a script busy for 600 ms holds a data shard) logs
/// `--- WATCHDOG TIMER EXPIRED ---` and that thread's stack trace once, and the node goes on
/// serving; back at 0, nothing more is logged.
#[test]
fn watchdog_period_logs_a_stalled_thread_and_goes_on() {
    let count = |s: &Server| s.log_text().matches("--- WATCHDOG TIMER EXPIRED ---").count();
    let busy = "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] \
                repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s > 600000 return 1";
    let mut both = Vec::new();
    for redis in [false, true] {
        let args = ["--enable-debug-command", "yes"];
        let s = if redis { Server::redis(&args) } else { Server::slotcore(&args) };
        let mut r = s.raw();
        assert!(r.cmd(&["CONFIG", "GET", "watchdog-period"]).contains("\r\n0\r\n"), "redis={redis}");
        assert_eq!(r.cmd(&["DEBUG", "SLEEP", "0.6"]), "+OK\r\n");
        // SAFETY: kill(2) on a child process this test started.
        unsafe { libc::kill(s.pid() as i32, libc::SIGALRM) };
        assert_eq!(r.cmd(&["PING"]), "+PONG\r\n", "redis={redis}: SIGALRM with the watchdog off");
        assert_eq!(count(&s), 0, "redis={redis}: watchdog report while off");

        assert_eq!(r.cmd(&["CONFIG", "SET", "watchdog-period", "200"]), "+OK\r\n");
        assert_eq!(r.cmd(&["DEBUG", "SLEEP", "1"]), "+OK\r\n");
        assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
        assert!(wait_for(Duration::from_secs(5), || count(&s) == 1), "redis={redis}: no report:\n{}", s.log_text());
        let log = s.log_text();
        let report = &log[log.find("--- WATCHDOG TIMER EXPIRED ---").unwrap_or(0)..];
        for line in ["------ STACK TRACE ------", "EIP:", "Backtrace:", "clock_nanosleep", ":signal-handler ("] {
            assert!(report.contains(line), "redis={redis}: no {line:?} in the report:\n{report}");
        }
        if !redis {
            // The thread DEBUG SLEEP blocks is the control executor (`runtime::control_freeze`).
            assert!(report.contains("slotcore::runtime::control_freeze::run"), "{report}");
        }
        assert_eq!(r.cmd(&["EVAL", busy, "0"]), ":1\r\n");
        assert!(wait_for(Duration::from_secs(5), || count(&s) == 2), "redis={redis}: no report of the script");
        if !redis {
            let log = s.log_text();
            let report = &log[log.rfind("--- WATCHDOG TIMER EXPIRED ---").unwrap_or(0)..];
            assert!(report.contains("slotcore::runtime::script_exec::"), "{report}");
        }

        assert_eq!(r.cmd(&["CONFIG", "SET", "watchdog-period", "0"]), "+OK\r\n");
        assert_eq!(r.cmd(&["DEBUG", "SLEEP", "0.6"]), "+OK\r\n");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(count(&s), 2, "redis={redis}: report after the period went back to 0");
        both.push((s, r));
    }
    let [(_sc, mut a), (_redis, mut b)]: [(Server, common::Raw); 2] = match both.try_into() {
        Ok(both) => both,
        Err(_) => unreachable!("two servers"),
    };
    common::assert_same(
        &mut a,
        &mut b,
        &[
            &["CONFIG", "SET", "watchdog-period", "10"],
            &["CONFIG", "GET", "watchdog-period"],
            &["CONFIG", "SET", "watchdog-period", "-1"],
            &["CONFIG", "SET", "watchdog-period", "2147483648"],
            &["CONFIG", "SET", "watchdog-period", "1.5"],
            &["CONFIG", "SET", "hz", "100"],
            &["CONFIG", "SET", "watchdog-period", "5"],
            &["CONFIG", "GET", "watchdog-period"],
            &["CONFIG", "SET", "watchdog-period", "0"],
            &["CONFIG", "GET", "watchdog-period"],
        ],
    );
}

/// A start-up message written to a closed pipe (`slotcore ... 2>&1 | head -1`) ends the
/// process with its own exit code, as redis-server's ignored write errors do, never with an
/// abort from a failed print.
#[test]
fn messages_to_a_closed_pipe_do_not_abort() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["--shards", "2", "--version"][..], &["--version"], &["--no-such-option", "x"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_slotcore"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Both pipes' read ends close before the process writes.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), None, "{args:?}: killed by a signal ({status:?})");
        assert!(status.code().is_some(), "{args:?}: {status:?}");
    }
}
