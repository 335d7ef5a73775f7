//! Test harness: starts real slotcore (and real redis-server) processes on free loopback ports,
//! talks to them over raw sockets, the `redis` crate and `redis-cli`, and kills only what it
//! started, by PID, when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Upper bound for every wait in tests.
pub const WAIT: Duration = Duration::from_secs(20);

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// Makes this test binary take its ports from `base` upward (call before starting any
/// server; keeps one engineer's tests in their own port range).
pub fn set_port_base(base: u16) {
    let _ = NEXT_PORT.compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed);
}

/// A port range given as `SLOTCORE_TEST_PORTS=first-last` (engineers sharing a machine
/// keep their tests in their own range).
fn port_range() -> Option<(u16, u16)> {
    let v = std::env::var("SLOTCORE_TEST_PORTS").ok()?;
    let (a, b) = v.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// A free port P such that P and P + 10000 are both free and P + 10000 < 32768.
pub fn free_port() -> u16 {
    let range = port_range();
    if NEXT_PORT.load(Ordering::Relaxed) == 0 {
        // Spread parallel test binaries apart.
        let base = match range {
            Some((first, _)) => first,
            None => 12000 + (std::process::id() % 400) as u16 * 20,
        };
        let _ = NEXT_PORT.compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let p = match range {
            Some((first, last)) => first + (p - first) % (last - first + 1),
            None if p >= 22000 => 12000 + (p % 10000),
            None => p,
        };
        if TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
}

/// Polls `f` every 10 ms until it is true; panics after [`WAIT`].
pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Makes [`free_port`] hand out ports from `base` on (a test binary's assigned range); call it
/// before the first server starts.
pub fn use_ports(base: u16) {
    let _ = NEXT_PORT.compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed);
}

pub mod cluster;
pub mod sentinel;

/// A running server process (slotcore or redis-server).
pub struct Server {
    /// Client port.
    pub port: u16,
    /// Working directory (removed on drop).
    pub dir: PathBuf,
    child: Child,
    /// Path of the log file.
    pub log: PathBuf,
    /// Program and arguments, to restart it.
    argv: (std::ffi::OsString, Vec<std::ffi::OsString>),
}

fn scratch_dir(tag: &str, port: u16) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slotcore-test-{}-{}-{}", tag, std::process::id(), port));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

impl Server {
    /// Starts slotcore with `--port P --dir D --pin-cores no` plus `extra` arguments.
    pub fn slotcore(extra: &[&str]) -> Server {
        Server::slotcore_on(free_port(), extra)
    }

    /// Starts slotcore as [`Server::slotcore`] on a given port (tests with an assigned range).
    pub fn slotcore_on(port: u16, extra: &[&str]) -> Server {
        let dir = scratch_dir("slotcore", port);
        let log = dir.join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotcore"));
        // A config file, like redis-server's, must be the first argument.
        let (file, extra) = match extra.first() {
            Some(f) if !f.starts_with("--") => (Some(*f), &extra[1..]),
            _ => (None, extra),
        };
        cmd.args(file);
        cmd.arg("--port").arg(port.to_string()).arg("--dir").arg(&dir).arg("--pin-cores").arg("no");
        cmd.args(extra);
        Server::spawn(cmd, port, dir, log)
    }

    /// Starts slotcore with `shards` data shards.
    pub fn slotcore_shards(shards: usize) -> Server {
        let n = shards.to_string();
        Server::slotcore(&["--shards", &n])
    }

    /// Starts a real redis-server (the oracle) with no persistence.
    pub fn redis(extra: &[&str]) -> Server {
        Server::redis_on(free_port(), extra)
    }

    /// Starts a real redis-server as [`Server::redis`] on a given port.
    pub fn redis_on(port: u16, extra: &[&str]) -> Server {
        let dir = scratch_dir("redis", port);
        let log = dir.join("server.log");
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&dir)
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no");
        cmd.args(extra);
        Server::spawn(cmd, port, dir, log)
    }

    /// Starts a real redis-server with only `--port`, `--dir`, `--appendonly no` and `args`
    /// (its own defaults otherwise, e.g. its save points).
    pub fn redis_with_args(args: &[&str]) -> Server {
        let port = free_port();
        let dir = scratch_dir("redis", port);
        let log = dir.join("server.log");
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port").arg(port.to_string()).arg("--dir").arg(&dir).arg("--appendonly").arg("no");
        cmd.args(args);
        Server::spawn(cmd, port, dir, log)
    }

    /// Starts a real redis-server with the config file `conf` (its first argument, where
    /// redis-server looks for it), then `--port`, `--dir` and `args`.
    pub fn redis_with_conf(conf: &str, args: &[&str]) -> Server {
        let port = free_port();
        let dir = scratch_dir("redis", port);
        let log = dir.join("server.log");
        let mut cmd = Command::new("redis-server");
        cmd.arg(conf).arg("--port").arg(port.to_string()).arg("--dir").arg(&dir);
        cmd.args(args);
        Server::spawn(cmd, port, dir, log)
    }

    fn spawn(mut cmd: Command, port: u16, dir: PathBuf, log: PathBuf) -> Server {
        let argv = (cmd.get_program().to_owned(), cmd.get_args().map(|a| a.to_owned()).collect());
        let child = Self::launch(&mut cmd, &log);
        let s = Server { port, dir, child, log, argv };
        s.wait_ready();
        s
    }

    fn launch(cmd: &mut Command, log: &PathBuf) -> Child {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err)).stdin(Stdio::null());
        cmd.spawn().expect("spawn server")
    }

    /// Kills the process with SIGKILL (its directory stays).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again with the same arguments and directory.
    pub fn restart(&mut self) {
        self.relaunch();
        self.wait_ready();
    }

    /// As [`Server::restart`], without waiting until it answers (it may still be loading).
    pub fn relaunch(&mut self) {
        self.kill9();
        // A killed process's io_uring rings are torn down by the kernel a moment after it
        // exits, and their in-flight accepts keep the listening sockets bound until then.
        let start = Instant::now();
        while start.elapsed() < WAIT
            && (TcpListener::bind(("127.0.0.1", self.port)).is_err()
                || TcpListener::bind(("127.0.0.1", self.port + 10000)).is_err())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut cmd = Command::new(&self.argv.0);
        cmd.args(&self.argv.1);
        self.child = Self::launch(&mut cmd, &self.log);
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
                c.set_read_timeout(Some(Duration::from_secs(2))).ok();
                if c.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 64];
                    if let Ok(n) = c.read(&mut buf) {
                        // Any answer but -LOADING (a big data set still loading) means ready.
                        if n > 0 && !buf[..n].starts_with(b"-LOADING") {
                            return;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server on port {} did not become ready; log:\n{}", self.port, self.log_text());
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// PID of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        let conn = c.get_connection_with_timeout(WAIT).expect("connect");
        conn.set_read_timeout(Some(WAIT)).ok();
        conn
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Runs `redis-cli -p PORT args...` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        Self::cli_port(&self.port.to_string(), args)
    }

    /// Runs `redis-cli -p port args...` (bounded by a timeout) and returns its stdout.
    pub fn cli_port(port: &str, args: &[&str]) -> String {
        let out =
            Command::new("timeout").args(["30", "redis-cli", "-p", port]).args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw connection that sends commands and reads whole RESP replies as bytes.
pub struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    /// Connects to a local port.
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(WAIT)).ok();
        Raw { r: BufReader::new(s.try_clone().expect("clone")), w: s }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }

    /// Sends one command encoded as a RESP array.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        self.send(&encode(args));
    }

    /// Sends a command and returns its raw reply.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send_cmd(&a);
        self.reply()
    }

    /// Reads one whole RESP reply and returns its bytes (lossy UTF-8).
    pub fn reply(&mut self) -> String {
        let mut out = Vec::new();
        read_reply(&mut self.r, &mut out).expect("read reply");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends a command with binary arguments and returns its raw reply bytes.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send_cmd(args);
        let mut out = Vec::new();
        read_reply(&mut self.r, &mut out).expect("read reply");
        out
    }

    /// Reads until EOF (bounded by the read timeout); returns what came.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.r.read_to_end(&mut out);
        out
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof"));
    }
    out.extend_from_slice(&line);
    Ok(line)
}

/// Reads one RESP2/RESP3 reply, appending its raw bytes to `out`.
pub fn read_reply(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let line = read_line(r, out)?;
    let body = String::from_utf8_lossy(&line[1..]).trim_end().to_string();
    let n: i64 = body.parse().unwrap_or(0);
    match line[0] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            out.extend_from_slice(&buf);
        }
        b'*' | b'~' | b'>' => {
            for _ in 0..n.max(0) {
                read_reply(r, out)?;
            }
        }
        b'%' | b'|' => {
            for _ in 0..n.max(0) * 2 {
                read_reply(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Opens connections until one lands on each of the two shards (told apart by INFO shards'
/// per-shard client counts); returns (on shard 0, on shard 1).
pub fn one_per_shard(s: &Server) -> (Raw, Raw) {
    let mut ctl = s.raw();
    let clients = |ctl: &mut Raw| -> Vec<u64> {
        ctl.cmd(&["INFO", "shards"])
            .lines()
            .filter_map(|l| l.split("clients=").nth(1))
            .filter_map(|v| v.split(',').next().and_then(|n| n.parse().ok()))
            .collect()
    };
    let (mut on0, mut on1) = (None, None);
    // The node hands a new connection to the shard with the fewest clients, and keeps it
    // where it was accepted on a tie; so the connections that land where one is already found
    // stay open until the other shard has one (closing them could tie the counts again and
    // again, with one shard winning every accept).
    let mut extra = Vec::new();
    for _ in 0..64 {
        let before = clients(&mut ctl);
        let mut c = s.raw();
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
        let after = clients(&mut ctl);
        if after[0] > before[0] && on0.is_none() {
            on0 = Some(c);
        } else if after[1] > before[1] && on1.is_none() {
            on1 = Some(c);
        } else {
            extra.push(c);
        }
        if on0.is_some() && on1.is_some() {
            break;
        }
    }
    (on0.expect("a connection on shard 0"), on1.expect("a connection on shard 1"))
}

/// The CLIENT LIST line of the client named `name`, if listed.
pub fn line_of(c: &mut Raw, name: &str) -> Option<String> {
    let list = c.cmd(&["CLIENT", "LIST"]);
    list.lines().find(|l| l.contains(&format!(" name={name} "))).map(str::to_string)
}

/// A numeric field of a CLIENT LIST line.
pub fn field(line: &str, key: &str) -> u64 {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// Sends the same commands to both servers and asserts identical raw replies.
pub fn assert_same(a: &mut Raw, b: &mut Raw, cmds: &[&[&str]]) {
    for c in cmds {
        let ra = a.cmd(c);
        let rb = b.cmd(c);
        assert_eq!(ra, rb, "command {:?}: slotcore replied {:?}, redis-server replied {:?}", c, ra, rb);
    }
}

/// A raw replica link: SYNC, the RDB payload skipped, then the propagated commands.
pub struct Feed {
    r: BufReader<TcpStream>,
}

impl Feed {
    pub fn attach(port: u16) -> Feed {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        (&s).write_all(b"SYNC\r\n").expect("SYNC");
        let mut r = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("payload header");
            // Newlines keep the link alive while the payload is produced.
            if let Some(n) = line.trim_end().strip_prefix('$') {
                let mut payload = vec![0u8; n.parse().expect("payload length")];
                r.read_exact(&mut payload).expect("payload");
                return Feed { r };
            }
        }
    }

    /// The next propagated command, name lowercased.
    pub fn next(&mut self) -> Vec<String> {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("command");
        let n: usize = line.trim_end().trim_start_matches('*').parse().expect("array length");
        (0..n)
            .map(|i| {
                line.clear();
                self.r.read_line(&mut line).expect("bulk header");
                let len: usize = line.trim_end().trim_start_matches('$').parse().expect("bulk length");
                let mut b = vec![0u8; len + 2];
                self.r.read_exact(&mut b).expect("bulk");
                let s = String::from_utf8_lossy(&b[..len]).into_owned();
                if i == 0 {
                    s.to_ascii_lowercase()
                } else {
                    s
                }
            })
            .collect()
    }

    /// Commands up to and including `SET end 1`, without PING and SELECT.
    pub fn until_end(&mut self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let cmd = self.next();
            if cmd[0] == "ping" || cmd[0] == "select" {
                continue;
            }
            let end = cmd == ["set", "end", "1"];
            out.push(cmd);
            if end {
                return out;
            }
        }
    }
}

/// CPU time (user + system, in clock ticks of 10 ms) the process `pid` has used so far; 0 once
/// it is gone.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the command name.
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// CPU clock ticks (10 ms each) the process `pid` uses over the next `d` (slept through here).
pub fn cpu_ticks_during(pid: u32, d: Duration) -> u64 {
    let before = cpu_ticks(pid);
    std::thread::sleep(d);
    cpu_ticks(pid).saturating_sub(before)
}
