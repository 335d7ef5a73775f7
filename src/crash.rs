//! Crash reports in the log, as Redis writes them: a panic (Redis's `serverPanic`: "Guru
//! Meditation") or a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT: "crashed by
//! signal") writes a bug report with the stack trace of the failing thread to the log
//! destination, then the process ends as it would have (abort, or the signal's default action,
//! so a core dump is still produced where enabled). Without this, a panic's message went to
//! stderr only, and a node run with `logfile` vanished without a word in its log.
//!
//! The signal handler writes with plain `write(2)` calls on the log's file descriptor; the
//! stack trace itself needs the allocator (as Redis's `backtrace_symbols` may), a risk taken
//! once, at the end of the process.
//!
//! The software watchdog (`crate::watchdog`) writes its reports with the same pieces: Redis's
//! signal-handler line ([`handler_line`]) and the stack trace ([`write_trace`]), whose frames
//! it captured in the stalled thread's handler and resolves on its own thread.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The log destination's descriptor (stdout until `logfile` is opened).
static LOG_FD: AtomicI32 = AtomicI32::new(1);
/// A report was written (a panic's abort then reports nothing more).
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The signals that get a report.
const FATAL: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT];

/// Where crash reports go (the log file's descriptor, kept open for the process's life).
pub fn set_log_fd(fd: i32) {
    LOG_FD.store(fd, Ordering::Relaxed);
}

/// Writes one log line in Redis's format (warning level) with `write(2)`, from a stack buffer.
fn line(text: &str) {
    let mut buf = [0u8; 1024];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = writeln!(
        cur,
        "{}:M {} # {}",
        std::process::id(),
        crate::logging::format_time(now.as_secs(), now.subsec_millis()),
        text
    );
    let n = cur.position() as usize;
    write_raw(&buf[..n]);
}

/// [`line`] with formatted text, built in a stack buffer.
fn line_fmt(args: std::fmt::Arguments<'_>) {
    let mut text = [0u8; 256];
    let mut cur = std::io::Cursor::new(&mut text[..]);
    let _ = cur.write_fmt(args);
    let n = cur.position() as usize;
    line(std::str::from_utf8(&text[..n]).unwrap_or("crashed"));
}

/// The program counter of the interrupted code, from a `SA_SIGINFO` handler's `ucontext_t`
/// (0: unknown).
#[allow(unused_variables)]
pub(crate) fn interrupted_ip(ctx: *mut libc::c_void) -> usize {
    if ctx.is_null() {
        return 0;
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    // SAFETY: the kernel passes a valid ucontext_t with SA_SIGINFO.
    return unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as usize };
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    // SAFETY: as above.
    return unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.pc as usize };
    #[allow(unreachable_code)]
    0
}

/// Writes `bytes` to the log's descriptor with `write(2)` (async-signal-safe).
fn write_raw(bytes: &[u8]) {
    let fd = LOG_FD.load(Ordering::Relaxed);
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes initialised bytes of `rest` to a descriptor.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// One line as Redis's `serverLogFromHandler` writes it: `pid:signal-handler (unix time) text`.
/// Built in a stack buffer and written with one `write(2)` (async-signal-safe).
pub(crate) fn handler_line(text: &str) {
    let mut buf = [0u8; 512];
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = writeln!(cur, "{}:signal-handler ({}) {}", std::process::id(), secs, text);
    let n = cur.position() as usize;
    write_raw(&buf[..n]);
}

/// The most frames a stack trace shows (Redis's `logStackTrace` takes 100).
pub(crate) const MAX_FRAMES: usize = 100;

/// Writes a stack trace as Redis's `logStackTrace` lays it out: `------ STACK TRACE ------`,
/// the interrupted instruction (`EIP:`) when known (`eip` not 0), then `Backtrace:` and one line
/// per frame (an inlined call gets its own line, with the same address), from the interrupted
/// frame on when `ips` holds it (a signal handler's own frames and the kernel's trampoline are
/// left out, as Redis's `uplevel`). Each line is
/// `function [0xaddress] file:line` as far as the binary's debug information tells.
/// Resolving symbols allocates: never called inside a signal handler that returns.
pub(crate) fn write_trace(eip: usize, ips: &[usize]) {
    write_raw(b"\n------ STACK TRACE ------\n");
    if eip != 0 {
        write_raw(b"EIP:\n");
        write_frame(eip);
    }
    write_raw(b"\nBacktrace:\n");
    let from = ips.iter().position(|&ip| ip == eip && eip != 0).unwrap_or(0);
    for &ip in ips[from..].iter().filter(|&&ip| ip != 0) {
        write_frame(ip);
    }
}

/// The lines of one frame (see [`write_trace`]).
fn write_frame(ip: usize) {
    let mut lines = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        let mut l = match sym.name() {
            Some(name) => format!("{name:#}"),
            None => "??".to_string(),
        };
        l.push_str(&format!(" [{ip:#x}]"));
        if let (Some(file), Some(n)) = (sym.filename(), sym.lineno()) {
            l.push_str(&format!(" {}:{}", file.display(), n));
        }
        lines.push(l);
    });
    if lines.is_empty() {
        lines.push(format!("?? [{ip:#x}]"));
    }
    for mut l in lines {
        l.push('\n');
        write_raw(l.as_bytes());
    }
}

/// The stack trace of the calling thread (`eip`: the instruction a signal interrupted, or 0).
fn stack_trace(eip: usize) {
    let mut ips = Vec::with_capacity(MAX_FRAMES);
    backtrace::trace(|f| {
        ips.push(f.ip() as usize);
        ips.len() < MAX_FRAMES
    });
    write_trace(eip, &ips);
}

fn report_start() {
    line("");
    line("=== REDIS BUG REPORT START: Cut & paste starting from here ===");
}

fn report_end() {
    line("=== REDIS BUG REPORT END. Make sure to include from START to END. ===");
}

extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if !REPORTED.swap(true, Ordering::AcqRel) {
        report_start();
        // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
        let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr()) };
        line_fmt(format_args!("slotcore {} crashed by signal: {}, si_code: {}", env!("CARGO_PKG_VERSION"), sig, code));
        // The faulting address means something only for a fault the kernel raised.
        if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && code > 0 {
            line_fmt(format_args!("Accessing address: {addr:p}"));
        }
        stack_trace(interrupted_ip(ctx));
        report_end();
    }
    // The signal's own default action now (termination, a core dump where enabled).
    // SAFETY: resetting a handler and re-raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Installs the panic hook and the fatal-signal handlers.
pub fn install() {
    std::panic::set_hook(Box::new(|p| {
        REPORTED.store(true, Ordering::Release);
        let what = p
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let at = p.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        line("------------------------------------------------");
        line("!!! Software Failure. Press left mouse button to continue");
        line(&format!("Guru Meditation: {what} #{at}"));
        report_start();
        stack_trace(0);
        report_end();
        // Also where a terminal sees it.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("slotcore panicked: {what} at {at}\n").as_bytes(),
        );
    }));
    for sig in FATAL {
        set_handler(sig, Some(on_fatal_signal), libc::SA_NODEFER);
    }
}

/// A signal handler taking `SA_SIGINFO`'s arguments.
pub(crate) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Installs `handler` for `sig` (with `SA_SIGINFO` and `flags`), or `SIG_IGN` for None.
pub(crate) fn set_handler(sig: libc::c_int, handler: Option<Handler>, flags: libc::c_int) {
    // SAFETY: installs a handler with a zeroed, then filled, sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        match handler {
            Some(h) => {
                sa.sa_sigaction = h as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | flags;
            }
            None => sa.sa_sigaction = libc::SIG_IGN,
        }
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}
