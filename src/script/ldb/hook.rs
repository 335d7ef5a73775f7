//! The debugger's line hook and its read-eval loop: where a debugged script stops (a
//! breakpoint, a step, `redis.breakpoint()`, an endless loop), the debugger commands read
//! from the client's socket while it is stopped, and the printing of Lua values.

use super::*;

/// The hook installed on a debugged script (lines, and every 100000 instructions for the
/// infinite-loop detection).
pub(in crate::script) fn install(l: *mut ffi::lua_State) {
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
    if crate::script::vm::killed() {
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
        let limit = match crate::script::busy_threshold_ms() {
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
    crate::script::vm::restart_clock();
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
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, crate::script::vm::LDB_ENV.as_ptr());
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
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, crate::script::vm::LDB_CALL.as_ptr());
        for a in &argv[1..] {
            ffi::lua_pushlstring(l, a.as_ptr() as *const _, a.len());
        }
        with(|s| s.step = true);
        ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
        with(|s| s.step = false);
        ffi::lua_pop(l, 1);
    }
}

/// Logs `<value> <prefix><the value on the top of the stack>`.
unsafe fn log_top(l: *mut ffi::lua_State, prefix: &[u8]) {
    let mut e = b"<value> ".to_vec();
    e.extend_from_slice(prefix);
    // SAFETY: the caller has a value on the top of the stack.
    unsafe { cat_value(&mut e, l, -1, 0) };
    with(|s| s.log_max_len(e));
}

/// Calls `f` with the name of each local of frame `ar`, its value pushed on the stack (popped
/// after); stops once `f` returns true, and says whether it did.
unsafe fn each_local(l: *mut ffi::lua_State, ar: &ffi::lua_Debug, mut f: impl FnMut(&[u8]) -> bool) -> bool {
    let mut i = 1;
    loop {
        // SAFETY: `ar` describes a live frame of the stopped thread.
        let n = unsafe { ffi::lua_getlocal(l, ar, i) };
        if n.is_null() {
            return false;
        }
        i += 1;
        // SAFETY: a local's name is a NUL-terminated string owned by the function's prototype.
        let stop = f(unsafe { CStr::from_ptr(n) }.to_bytes());
        // SAFETY: pops the value `lua_getlocal` pushed.
        unsafe { ffi::lua_pop(l, 1) };
        if stop {
            return true;
        }
    }
}

/// `print <var>`: the first local of that name from the current frame outwards (or KEYS/ARGV).
unsafe fn print(l: *mut ffi::lua_State, name: &[u8]) {
    // SAFETY: walking the stopped thread's frames; every pushed value is popped.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(l, level, &mut ar) != 0 {
            level += 1;
            let found = each_local(l, &ar, |n| {
                let hit = n == name;
                if hit {
                    log_top(l, b"");
                }
                hit
            });
            if found {
                return;
            }
        }
        if name == b"ARGV" || name == b"KEYS" {
            let n = if name == b"ARGV" { c"ARGV" } else { c"KEYS" };
            ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, n.as_ptr());
            log_top(l, b"");
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
            each_local(l, &ar, |name| {
                if !contains(name, b"(*temporary)") {
                    log_top(l, &[name, b" = "].concat());
                    vars += 1;
                }
                false
            });
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
pub(super) unsafe fn cat_value(out: &mut Vec<u8>, l: *mut ffi::lua_State, idx: c_int, level: usize) {
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
