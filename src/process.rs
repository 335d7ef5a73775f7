//! Process-wide concerns: the pidfile and the exit path shared by SIGTERM/SIGINT and SHUTDOWN.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;

/// SIGTERM/SIGINT progress: 0 none, 1 asked (a shard should save and exit), 2 a shard is on it.
static SIGNALLED: AtomicU8 = AtomicU8::new(0);
/// The signal that asked (SIGTERM or SIGINT).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Called by the signal thread: the first signal asks shard 0 to shut down as
/// `shutdown-on-sigterm` / `shutdown-on-sigint` say ([`signal_shutdown_args`]); returns false
/// when a shutdown was already asked (the caller then exits at once, as Redis does on a
/// repeated signal).
pub fn request_shutdown(sig: i32) -> bool {
    let first = SIGNALLED.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok();
    if first {
        SIGNAL.store(sig, Ordering::Release);
    }
    first
}

/// The SHUTDOWN arguments a signal stands for: the words of `shutdown-on-sigint` or
/// `shutdown-on-sigterm` (`default`: as SHUTDOWN without arguments; `save`, `nosave`, `now`,
/// `force` as SHUTDOWN's own).
pub fn signal_shutdown_args(cfg: &crate::config::Config) -> crate::cmd::ShutdownArgs {
    let name =
        if SIGNAL.load(Ordering::Acquire) == libc::SIGINT { "shutdown-on-sigint" } else { "shutdown-on-sigterm" };
    let words = cfg.get(name).unwrap_or("default");
    let has = |w: &str| words.split_whitespace().any(|x| x.eq_ignore_ascii_case(w));
    crate::cmd::ShutdownArgs { save: has("save"), nosave: has("nosave"), now: has("now"), force: has("force") }
}

/// For shard 0's cron: true once when a signal asked for a shutdown (it then owns it).
pub fn take_shutdown_request() -> bool {
    SIGNALLED.compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// True when no shard picked a signalled shutdown up yet.
pub fn shutdown_pending() -> bool {
    SIGNALLED.load(Ordering::Acquire) == 1
}

/// True while a signal's shutdown is asked for or under way (a second SIGINT then exits at
/// once).
pub fn shutdown_signalled() -> bool {
    SIGNALLED.load(Ordering::Acquire) != 0
}

/// SHUTDOWN ABORT before shard 0 picked the signal's request up: true when it cancelled one.
pub fn cancel_shutdown_request() -> bool {
    SIGNALLED.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// A signalled shutdown failed or was aborted: the next signal asks again.
pub fn shutdown_request_done() {
    SIGNALLED.store(0, Ordering::Release);
}

/// Logs why start-up failed: each line of a several-line reason as Redis logs them, else the
/// reason after `Fatal:`.
pub fn log_fatal(reason: &str) {
    if reason.contains('\n') {
        for line in reason.lines() {
            tracing::warn!("{}", line);
        }
    } else {
        tracing::warn!("Fatal: {}", reason);
    }
}

/// A second SIGINT during a shutdown (Redis's "You insist"): the foreground save's temp file
/// is removed and the process exits with an error at once.
pub fn insist_exit() -> ! {
    tracing::warn!("You insist... exiting now.");
    let _ = std::fs::remove_file(crate::persist::disk::save_temp_name());
    shutdown_and_exit(1)
}

static PIDFILE: OnceLock<String> = OnceLock::new();

/// Remembers the pidfile written at start-up, so the exit path can remove it.
pub fn set_pidfile(path: String) {
    let _ = PIDFILE.set(path);
}

/// Logs Redis's closing lines, removes the pidfile and exits the process with `code`.
pub fn shutdown_and_exit(code: i32) -> ! {
    crate::runtime::listener::stop_accepting();
    crate::runtime::listener::remove_unix_socket();
    if crate::runtime::save_child::aof_child().is_some() {
        tracing::warn!("There is a child rewriting the AOF. Killing it!");
        crate::runtime::save_child::kill(crate::runtime::save_child::Registry::AofRewrite);
        let _ = std::fs::remove_file(crate::runtime::aof::rewrite_temp());
    }
    if let Some(p) = PIDFILE.get() {
        if !p.is_empty() {
            tracing::info!("Removing the pid file.");
            let _ = std::fs::remove_file(p);
        }
    }
    crate::supervise::stopping();
    tracing::warn!("Redis is now ready to exit, bye bye...");
    std::process::exit(code)
}
