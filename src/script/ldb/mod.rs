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

// ---- the line hook ------------------------------------------------------------------------

/// The hook installed on a debugged script (lines, and every 100000 instructions for the
/// infinite-loop detection).
pub(super) fn install(l: *mut ffi::lua_State) {
    // SAFETY: `l` is a live coroutine of this thread's interpreter.
    unsafe { ffi::lua_sethook(l, Some(line_hook), ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT, 100_000) };
}

unsafe extern "C-unwind" fn line_hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua with the running thread and its activation record.
    let raise = unsafe { stop_here(l, ar) };
    if let Some(msg) = raise {
        // SAFETY: raising from a hook is how Redis ends a debugged script; no Rust value
        // that needs dropping is alive in this frame.
        unsafe {
            ffi::lua_pushstring(l, msg.as_ptr());
            ffi::lua_error(l);
        }
    }
}

/// Why the read-eval loop ended.
enum ReplEnd {
    /// The client is gone.
    Closed,
    /// Stop the script with this error.
    Raise(&'static CStr),
}

/// The body of the hook; returns an error to raise in the script.
unsafe fn stop_here(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> Option<&'static CStr> {
    // SAFETY: `ar` is the hook's record; level 0 is the running function.
    let (line, event, ours) = unsafe {
        ffi::lua_getstack(l, 0, ar);
        ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
        let src = CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
        ((*ar).currentline, (*ar).event, contains(src, b"user_script"))
    };
    if super::vm::killed() {
        return Some(c"Script killed by user with SCRIPT KILL...");
    }
    if !ours {
        // Lines of the interpreter's own Lua code (the sandbox's helpers) are not the script's.
        return None;
    }
    let (bp, step, since) = with(|s| {
        s.currentline = line;
        (s.is_breakpoint(line) || s.luabp, s.step, s.since)
    })?;
    let mut timeout = false;
    if event == ffi::LUA_HOOKCOUNT && !step && !bp {
        let limit = match super::busy_threshold_ms() {
            0 => 5000,
            ms => ms,
        };
        if since.elapsed() < Duration::from_millis(limit) {
            return None;
        }
        timeout = true;
    }
    if !(step || bp || timeout) {
        return None;
    }
    with(|s| {
        let reason = if bp {
            if s.luabp {
                "redis.breakpoint() called"
            } else {
                "break point"
            }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        s.step = false;
        s.luabp = false;
        s.log(format!("* Stopped at {line}, stop reason = {reason}"));
        s.log_source_line(line);
        s.send_logs();
    });
    // SAFETY: `l` is the stopped thread.
    let end = unsafe { repl(l) };
    match end {
        Err(ReplEnd::Raise(msg)) => return Some(msg),
        Err(ReplEnd::Closed) if timeout => {
            return Some(c"timeout during Lua debugging with client closing connection");
        }
        _ => {}
    }
    with(|s| s.since = Instant::now());
    super::vm::restart_clock();
    None
}

/// Reads and runs debugger commands until one resumes the script.
unsafe fn repl(l: *mut ffi::lua_State) -> Result<(), ReplEnd> {
    loop {
        let argv = loop {
            match with(|s| parse_command(&s.cbuf)) {
                Some(Parsed::Command(argv)) => break argv,
                Some(Parsed::Error) => return Err(ReplEnd::Raise(c"protocol error")),
                Some(Parsed::More) => {}
                None => return Err(ReplEnd::Closed),
            }
            let fd = with(|s| s.fd).unwrap_or(-1);
            let mut buf = [0u8; 1024];
            let n = read_some(fd, &mut buf);
            if n == 0 {
                with(|s| {
                    s.step = false;
                    s.bp.clear();
                });
                return Err(ReplEnd::Closed);
            }
            let full = with(|s| {
                s.cbuf.extend_from_slice(&buf[..n]);
                if s.cbuf.len() > MAX_CBUF {
                    s.cbuf.clear();
                    return true;
                }
                false
            });
            if full == Some(true) {
                return Err(ReplEnd::Raise(c"max client buffer reached"));
            }
        };
        with(|s| s.cbuf.clear());
        // Commands are compared as C strings (up to a NUL byte), as Redis does.
        let name = argv[0].split(|&c| c == 0).next().unwrap_or(&[]).to_ascii_lowercase();
        let is = |a: &str, b: &str| name == a.as_bytes() || name == b.as_bytes();
        if is("h", "help") {
            with(|s| {
                for line in HELP {
                    s.log(*line);
                }
            });
        } else if is("s", "step") || is("n", "next") {
            with(|s| s.step = true);
            return Ok(());
        } else if is("c", "continue") {
            return Ok(());
        } else if is("t", "trace") {
            // SAFETY: `l` is the stopped thread.
            unsafe { trace(l) };
        } else if is("m", "maxlen") {
            with(|s| s.set_maxlen(&argv));
        } else if is("b", "break") {
            with(|s| s.breakpoints(&argv));
        } else if is("e", "eval") {
            // SAFETY: as above.
            unsafe { eval(l, &argv) };
        } else if is("a", "abort") {
            return Err(ReplEnd::Raise(c"script aborted for user request"));
        } else if argv.len() > 1 && is("r", "redis") {
            // SAFETY: as above.
            unsafe { redis(l, &argv) };
        } else if is("p", "print") {
            // SAFETY: as above.
            unsafe {
                if argv.len() == 2 {
                    print(l, &argv[1])
                } else {
                    print_all(l)
                }
            };
        } else if is("l", "list") {
            with(|s| {
                let mut around = s.currentline;
                let mut ctx = 5;
                if argv.len() > 1 {
                    let n = atoi(&argv[1]);
                    if n > 0 {
                        around = n;
                    }
                }
                if argv.len() > 2 {
                    ctx = atoi(&argv[2]);
                }
                s.list(around, ctx);
            });
        } else if is("w", "whole") {
            with(|s| s.list(1, 1_000_000));
        } else {
            with(|s| s.log("<error> Unknown Redis Lua debugger command or wrong number of arguments."));
        }
        with(|s| s.send_logs());
    }
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// `eval <code>`: runs the fragment (as an expression first) and logs its value.
unsafe fn eval(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let mut expr = b"return ".to_vec();
    expr.extend_from_slice(&code);
    // SAFETY: loading and calling on the stopped thread; the stack is restored.
    unsafe {
        let load = |b: &[u8]| ffi::luaL_loadbuffer(l, b.as_ptr() as *const _, b.len(), c"@ldb_eval".as_ptr());
        if load(&expr) != 0 {
            ffi::lua_pop(l, 1);
            if load(&code) != 0 {
                log_error_on_top(l);
                return;
            }
        }
        // The fragment sees the script's (protected) globals.
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, super::vm::LDB_ENV.as_ptr());
        ffi::lua_setfenv(l, -2);
        if ffi::lua_pcall(l, 0, 1, 0) != 0 {
            log_error_on_top(l);
            return;
        }
        let mut e = b"<retval> ".to_vec();
        cat_value(&mut e, l, -1, 0);
        with(|s| s.log_max_len(e));
        ffi::lua_pop(l, 1);
    }
}

/// Logs `<error> <message on top>` and pops it.
unsafe fn log_error_on_top(l: *mut ffi::lua_State) {
    let mut e = b"<error> ".to_vec();
    // SAFETY: the top of the stack is the error value.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, -1, &mut len);
        if !p.is_null() {
            e.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
        }
        ffi::lua_pop(l, 1);
    }
    log(e);
}

/// `redis <cmd> ...`: runs the command through `redis.call` while logging.
unsafe fn redis(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    // SAFETY: pushing the call and its arguments on the stopped thread; the stack is restored.
    unsafe {
        if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
            log(b"<reply> ".to_vec());
            return;
        }
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, super::vm::LDB_CALL.as_ptr());
        for a in &argv[1..] {
            ffi::lua_pushlstring(l, a.as_ptr() as *const _, a.len());
        }
        with(|s| s.step = true);
        ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
        with(|s| s.step = false);
        ffi::lua_pop(l, 1);
    }
}

/// `print <var>`: the first local of that name from the current frame outwards (or KEYS/ARGV).
unsafe fn print(l: *mut ffi::lua_State, name: &[u8]) {
    // SAFETY: walking the stopped thread's frames; every pushed local is popped.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(l, level, &mut ar) != 0 {
            level += 1;
            let mut i = 1;
            loop {
                let n = ffi::lua_getlocal(l, &ar, i);
                if n.is_null() {
                    break;
                }
                i += 1;
                if CStr::from_ptr(n).to_bytes() == name {
                    let mut e = b"<value> ".to_vec();
                    cat_value(&mut e, l, -1, 0);
                    with(|s| s.log_max_len(e));
                    ffi::lua_pop(l, 1);
                    return;
                }
                ffi::lua_pop(l, 1);
            }
        }
        if name == b"ARGV" || name == b"KEYS" {
            let n = if name == b"ARGV" { c"ARGV" } else { c"KEYS" };
            ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, n.as_ptr());
            let mut e = b"<value> ".to_vec();
            cat_value(&mut e, l, -1, 0);
            with(|s| s.log_max_len(e));
            ffi::lua_pop(l, 1);
        } else {
            log(b"No such variable.".to_vec());
        }
    }
}

/// `print`: the locals of the current frame.
unsafe fn print_all(l: *mut ffi::lua_State) {
    let mut vars = 0;
    // SAFETY: as `print`.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, 0, &mut ar) != 0 {
            let mut i = 1;
            loop {
                let n = ffi::lua_getlocal(l, &ar, i);
                if n.is_null() {
                    break;
                }
                i += 1;
                let name = CStr::from_ptr(n).to_bytes();
                if !contains(name, b"(*temporary)") {
                    let mut e = b"<value> ".to_vec();
                    e.extend_from_slice(name);
                    e.extend_from_slice(b" = ");
                    cat_value(&mut e, l, -1, 0);
                    with(|s| s.log_max_len(e));
                    vars += 1;
                }
                ffi::lua_pop(l, 1);
            }
        }
    }
    if vars == 0 {
        log(b"No local variables in the current context.".to_vec());
    }
}

/// `trace`: the script's frames, innermost first.
unsafe fn trace(l: *mut ffi::lua_State) {
    let mut level = 0;
    // SAFETY: reading frame information of the stopped thread.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        while ffi::lua_getstack(l, level, &mut ar) != 0 {
            ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
            if contains(CStr::from_ptr(ar.short_src.as_ptr()).to_bytes(), b"user_script") {
                let name = if ar.name.is_null() {
                    "top level".to_string()
                } else {
                    CStr::from_ptr(ar.name).to_string_lossy().into_owned()
                };
                let line = ar.currentline;
                with(|s| {
                    s.log(format!("{} {}:", if level == 0 { "In" } else { "From" }, name));
                    s.log_source_line(line);
                });
            }
            level += 1;
        }
    }
    if level == 0 {
        log(b"<error> Can't retrieve Lua stack.".to_vec());
    }
}

/// Appends a readable form of the Lua value at `idx` (Redis's `ldbCatStackValue`).
unsafe fn cat_value(out: &mut Vec<u8>, l: *mut ffi::lua_State, idx: c_int, level: usize) {
    if level == MAX_VALUE_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    // SAFETY: `idx` is valid on `l`'s stack; iteration pushes and pops in pairs.
    unsafe {
        let idx = if idx < 0 { ffi::lua_gettop(l) + idx + 1 } else { idx };
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                let mut s = String::new();
                repr(&mut s, std::slice::from_raw_parts(p as *const u8, len));
                out.extend_from_slice(s.as_bytes());
            }
            ffi::LUA_TBOOLEAN => {
                out.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 { b"true" } else { b"false" })
            }
            ffi::LUA_TNUMBER => out.extend_from_slice(fmt_g(ffi::lua_tonumber(l, idx)).as_bytes()),
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TTABLE => {
                let mut expected = 1.0;
                let mut is_array = true;
                let (mut arr, mut full) = (Vec::new(), Vec::new());
                if ffi::lua_checkstack(l, 3) == 0 {
                    out.extend_from_slice(b"{}");
                    return;
                }
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, idx) != 0 {
                    if is_array && (ffi::lua_type(l, -2) != ffi::LUA_TNUMBER || ffi::lua_tonumber(l, -2) != expected) {
                        is_array = false;
                    }
                    cat_value(&mut arr, l, -1, level + 1);
                    arr.extend_from_slice(b"; ");
                    full.push(b'[');
                    cat_value(&mut full, l, -2, level + 1);
                    full.extend_from_slice(b"]=");
                    cat_value(&mut full, l, -1, level + 1);
                    full.extend_from_slice(b"; ");
                    ffi::lua_pop(l, 1);
                    expected += 1.0;
                }
                let mut body = if is_array { arr } else { full };
                body.truncate(body.len().saturating_sub(2));
                out.push(b'{');
                out.extend_from_slice(&body);
                out.push(b'}');
            }
            t => {
                let name = match t {
                    ffi::LUA_TFUNCTION => "function",
                    ffi::LUA_TUSERDATA => "userdata",
                    ffi::LUA_TTHREAD => "thread",
                    ffi::LUA_TLIGHTUSERDATA => "light-userdata",
                    _ => {
                        out.extend_from_slice(b"\"<unknown-lua-type>\"");
                        return;
                    }
                };
                out.extend_from_slice(format!("\"{name}@{:p}\"", ffi::lua_topointer(l, idx)).as_bytes());
            }
        }
    }
}

/// `printf("%g")`.
fn fmt_g(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    crate::protocol::reply::format_g(v, 6)
}

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
