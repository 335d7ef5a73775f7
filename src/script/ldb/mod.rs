//! LDB, the Lua debugger of Redis 7.0 (`SCRIPT DEBUG YES|SYNC|NO`, `redis-cli --ldb`).
//!
//! A client that turned debugging on runs its next EVAL as a debugging session: the script
//! stops at its first line, and until it runs again the shard thread reads the client's
//! debugger commands straight from its socket and answers each with the session's log lines,
//! one array of status replies, as Redis does (Redis blocks its only thread the same way). When
//! the script ends the remaining log and `<endsession>` are sent, then the EVAL reply, and the
//! connection is closed.
//!
//! `SYNC` keeps what the script changed. `YES` is Redis's forked session, whose changes are
//! thrown away: here the script runs on a scratch copy of its keys (see
//! `runtime::script_exec`) whose effects are discarded, so the dataset is untouched; the shard
//! thread is blocked for the session (Redis's parent process is not).
//!
//! The session lives in a thread-local while its script runs (`activate` .. `deactivate`); the
//! line hook (`line_hook`), `redis.call` (which logs commands and replies while stepping),
//! `redis.debug` and `redis.breakpoint` read it.

use crate::conn::monitor::repr;
use mlua::ffi;
use std::cell::RefCell;
use std::ffi::{c_int, CStr};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// A client's debugging mode (SCRIPT DEBUG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Scripts run normally.
    #[default]
    Off,
    /// `YES`: a session whose changes are discarded.
    Forked,
    /// `SYNC`: a session whose changes are kept.
    Sync,
}

const MAX_BREAKPOINTS: usize = 64;
const MAX_LEN_DEFAULT: usize = 256;
/// Deepest nesting of tables shown (Redis's `LUA_MINSTACK/2`).
const MAX_VALUE_DEPTH: usize = 10;
/// Query bytes a session accepts before the script is stopped with an error.
const MAX_CBUF: usize = 1 << 20;
/// How long a log write may wait for the client (Redis's send timeout).
const SEND_TIMEOUT_MS: c_int = 5000;

/// One debugging session.
pub struct Session {
    fd: RawFd,
    forked: bool,
    logs: Vec<Vec<u8>>,
    bp: Vec<i32>,
    /// Stop at the next line.
    step: bool,
    /// Stop at the next line because `redis.breakpoint()` was called.
    luabp: bool,
    src: Vec<Vec<u8>>,
    currentline: i32,
    cbuf: Vec<u8>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    /// When the script last stopped (or started): the infinite-loop detection counts from it.
    since: Instant,
}

thread_local! {
    static LDB: RefCell<Option<Session>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&mut Session) -> R) -> Option<R> {
    LDB.with(|l| l.borrow_mut().as_mut().map(f))
}

impl Session {
    /// A session for a client's socket `fd` debugging `body`.
    pub fn start(fd: RawFd, body: &[u8], forked: bool) -> Session {
        if forked {
            tracing::warn!("Lua debugging session started (its changes will be discarded)");
        } else {
            tracing::warn!("Redis synchronous debugging eval session started");
        }
        let mut end = body.len();
        while end > 0 && matches!(body[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let src = if end == 0 { Vec::new() } else { body[..end].split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
        Session {
            fd,
            forked,
            logs: Vec::new(),
            bp: Vec::new(),
            step: true,
            luabp: false,
            src,
            currentline: 0,
            cbuf: Vec::new(),
            maxlen: MAX_LEN_DEFAULT,
            maxlen_hint_sent: false,
            since: Instant::now(),
        }
    }

    /// Ends the session: the remaining log and `<endsession>` go to the client (the caller then
    /// sends the EVAL reply and closes the connection).
    pub fn end(mut self) {
        self.logs.push(b"<endsession>".to_vec());
        self.send_logs();
        if self.forked {
            tracing::warn!("Lua debugging session ended");
        } else {
            tracing::warn!("Redis synchronous debugging eval session ended");
        }
    }

    fn log(&mut self, entry: impl Into<Vec<u8>>) {
        self.logs.push(entry.into());
    }

    /// Logs `entry`, cut at `maxlen` bytes (with a hint the first time).
    fn log_max_len(&mut self, mut entry: Vec<u8>) {
        let mut trimmed = false;
        if self.maxlen != 0 && entry.len() > self.maxlen {
            entry.truncate(self.maxlen);
            entry.extend_from_slice(b" ...");
            trimmed = true;
        }
        self.logs.push(entry);
        if trimmed && !self.maxlen_hint_sent {
            self.maxlen_hint_sent = true;
            self.log("<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.");
        }
    }

    /// Sends the log as an array of status replies (newlines become spaces) and empties it.
    fn send_logs(&mut self) {
        let mut proto = format!("*{}\r\n", self.logs.len()).into_bytes();
        for entry in self.logs.drain(..) {
            proto.push(b'+');
            proto.extend(entry.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
            proto.extend_from_slice(b"\r\n");
        }
        // A failed write is noticed by the next read, which ends the session.
        write_all(self.fd, &proto);
    }

    fn source_line(&self, line: i32) -> &[u8] {
        match usize::try_from(line - 1).ok().and_then(|i| self.src.get(i)) {
            Some(l) => l,
            None => b"<out of range source code line>",
        }
    }

    fn is_breakpoint(&self, line: i32) -> bool {
        self.bp.contains(&line)
    }

    fn log_source_line(&mut self, line: i32) {
        let prefix = match (self.currentline == line, self.is_breakpoint(line)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut entry = format!("{prefix}{line:<3} ").into_bytes();
        entry.extend_from_slice(self.source_line(line));
        self.logs.push(entry);
    }

    fn list(&mut self, around: i32, context: i32) {
        for line in 1..=self.src.len() as i32 {
            if around != 0 && (around - line).abs() > context {
                continue;
            }
            self.log_source_line(line);
        }
    }

    fn add_breakpoint(&mut self, line: i32) -> bool {
        if line <= 0 || line as usize > self.src.len() {
            return false;
        }
        if !self.is_breakpoint(line) && self.bp.len() != MAX_BREAKPOINTS {
            self.bp.push(line);
            return true;
        }
        false
    }

    fn breakpoints(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 1 {
            if self.bp.is_empty() {
                self.log("No breakpoints set. Use 'b <line>' to add one.");
            } else {
                self.log(format!("{} breakpoints set:", self.bp.len()));
                for line in self.bp.clone() {
                    self.log_source_line(line);
                }
            }
            return;
        }
        for arg in &argv[1..] {
            let Some(line) = std::str::from_utf8(arg).ok().and_then(|s| s.parse::<i64>().ok()) else {
                let mut e = b"Invalid argument:'".to_vec();
                e.extend_from_slice(arg);
                e.push(b'\'');
                self.log(e);
                continue;
            };
            if line == 0 {
                self.bp.clear();
                self.log("All breakpoints removed.");
            } else if line > 0 {
                if self.bp.len() == MAX_BREAKPOINTS {
                    self.log("Too many breakpoints set.");
                } else if self.add_breakpoint(line.min(i32::MAX as i64) as i32) {
                    self.list(line as i32, 1);
                } else {
                    self.log("Wrong line number.");
                }
            } else {
                let line = (-line).min(i32::MAX as i64) as i32;
                if let Some(i) = self.bp.iter().position(|&b| b == line) {
                    self.bp.remove(i);
                    self.log("Breakpoint removed.");
                } else {
                    self.log("No breakpoint in the specified line.");
                }
            }
        }
    }

    fn set_maxlen(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 2 {
            let mut v = atoi(&argv[1]);
            self.maxlen_hint_sent = true;
            if v != 0 && v <= 60 {
                v = 60;
            }
            self.maxlen = v as usize;
        }
        if self.maxlen != 0 {
            self.log(format!("<value> replies are truncated at {} bytes.", self.maxlen));
        } else {
            self.log("<value> replies are unlimited.");
        }
    }
}

/// Makes `s` the session of the script about to run on this thread.
pub fn activate(s: Session) {
    LDB.with(|l| *l.borrow_mut() = Some(s));
}

/// Takes the session back once the script stopped running.
pub fn deactivate() -> Option<Session> {
    LDB.with(|l| l.borrow_mut().take())
}

/// A session is running on this thread.
pub fn active() -> bool {
    LDB.with(|l| l.borrow().is_some())
}

/// `redis.call` logs its commands and replies (the session is stepping).
pub fn logging() -> bool {
    with(|s| s.step).unwrap_or(false)
}

/// Appends a log line (when logging).
pub fn log(entry: Vec<u8>) {
    with(|s| s.log(entry));
}

/// Logs a command `redis.call` is about to run (at most 10 arguments shown).
pub fn log_command(argv: &[bytes::Bytes]) {
    let mut e = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            e.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        e.push(b' ');
        e.extend_from_slice(a);
    }
    log(e);
}

/// Logs a command's reply (`resp`: its RESP encoding) in human-readable form.
pub fn log_reply(resp: &[u8]) {
    let mut e = b"<reply> ".to_vec();
    human(&mut e, resp);
    with(|s| s.log_max_len(e));
}

/// `redis.breakpoint()`: stop at the next line (true when a session runs).
pub fn breakpoint() -> bool {
    with(|s| s.luabp = true).is_some()
}

/// `redis.debug(...)`: logs its arguments.
///
/// # Safety
/// A Lua C function: `l` is the calling thread.
pub unsafe extern "C-unwind" fn debug_fn(l: *mut ffi::lua_State) -> c_int {
    let Some(line) = with(|s| s.currentline) else { return 0 };
    let mut e = format!("<debug> line {line}: ").into_bytes();
    // SAFETY: reading the arguments on the caller's stack.
    let n = unsafe { ffi::lua_gettop(l) };
    for i in 1..=n {
        // SAFETY: `i` is a valid stack index.
        unsafe { cat_value(&mut e, l, i, 0) };
        if i != n {
            e.extend_from_slice(b", ");
        }
    }
    log(e);
    0
}

mod hook;

use hook::cat_value;
pub(super) use hook::install;

mod human;
mod wire;

use human::human;
use wire::{atoi, contains, parse_command, read_some, write_all, Parsed};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_as_redis_debugger_does() {
        assert!(matches!(parse_command(b""), Parsed::More));
        assert!(matches!(parse_command(b"hello"), Parsed::Error));
        assert!(matches!(parse_command(b"*1\r\n$4\r\nst"), Parsed::More));
        assert!(matches!(parse_command(b"*1\r\n$0\r\n\r\n"), Parsed::Error));
        assert!(matches!(parse_command(b"*0\r\n"), Parsed::Error));
        match parse_command(b"*2\r\n$1\r\nb\r\n$2\r\n12\r\n") {
            Parsed::Command(a) => assert_eq!(a, vec![b"b".to_vec(), b"12".to_vec()]),
            _ => panic!("not parsed"),
        }
        match parse_command(b"*1\r\n$11\r\nhello\0world\r\n") {
            Parsed::Command(a) => assert_eq!(a, vec![b"hello\0world".to_vec()]),
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn replies_in_human_form() {
        let h = |r: &[u8]| {
            let mut o = Vec::new();
            human(&mut o, r);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(h(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(h(b"-ERR x\r\n"), "\"-ERR x\"");
        assert_eq!(h(b":5\r\n"), "5");
        assert_eq!(h(b"$-1\r\n"), "NULL");
        assert_eq!(h(b"*2\r\n$1\r\na\r\n:1\r\n"), "[\"a\",1]");
        assert_eq!(h(b"%1\r\n+a\r\n#t\r\n"), "{\"+a\" => #true}");
        assert_eq!(h(b",1.5\r\n"), "(double) 1.5");
        assert_eq!(h(b"_\r\n"), "(null)");
    }

    #[test]
    fn atoi_as_c() {
        assert_eq!(atoi(b"12abc"), 12);
        assert_eq!(atoi(b" -3"), -3);
        assert_eq!(atoi(b"x"), 0);
    }
}
