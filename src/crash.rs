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
    // SAFETY: writes `n` initialised bytes of `buf` to a descriptor; errors are ignored.
    unsafe { libc::write(LOG_FD.load(Ordering::Relaxed), buf.as_ptr().cast(), n) };
}

/// [`line`] with formatted text, built in a stack buffer.
fn line_fmt(args: std::fmt::Arguments<'_>) {
    let mut text = [0u8; 256];
    let mut cur = std::io::Cursor::new(&mut text[..]);
    let _ = cur.write_fmt(args);
    let n = cur.position() as usize;
    line(std::str::from_utf8(&text[..n]).unwrap_or("crashed"));
}

/// The stack trace of the calling thread, one log line per frame line.
fn stack_trace() {
    line("------ STACK TRACE ------");
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    for l in trace.lines() {
        line(l);
    }
}

fn report_start() {
    line("");
    line("=== REDIS BUG REPORT START: Cut & paste starting from here ===");
}

fn report_end() {
    line("=== REDIS BUG REPORT END. Make sure to include from START to END. ===");
}

extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if !REPORTED.swap(true, Ordering::AcqRel) {
        report_start();
        // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
        let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr()) };
        line_fmt(format_args!("slotcore {} crashed by signal: {}, si_code: {}", env!("CARGO_PKG_VERSION"), sig, code));
        // The faulting address means something only for a fault the kernel raised.
        if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && code > 0 {
            line_fmt(format_args!("Accessing address: {addr:p}"));
        }
        stack_trace();
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
        stack_trace();
        report_end();
        // Also where a terminal sees it.
        eprintln!("slotcore panicked: {what} at {at}");
    }));
    for sig in FATAL {
        // SAFETY: installs a handler with a zeroed, then filled, sigaction.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_fatal_signal;
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
