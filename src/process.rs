//! Process-wide concerns: the pidfile and the exit path shared by SIGTERM/SIGINT and SHUTDOWN.

use std::sync::OnceLock;

static PIDFILE: OnceLock<String> = OnceLock::new();

/// Remembers the pidfile written at start-up, so the exit path can remove it.
pub fn set_pidfile(path: String) {
    let _ = PIDFILE.set(path);
}

/// Logs Redis's closing lines, removes the pidfile and exits the process with `code`.
/// (Persistence on shutdown hooks in here once RDB/AOF exist.)
pub fn shutdown_and_exit(code: i32) -> ! {
    if let Some(p) = PIDFILE.get() {
        if !p.is_empty() {
            tracing::info!("Removing the pid file.");
            let _ = std::fs::remove_file(p);
        }
    }
    tracing::warn!("Redis is now ready to exit, bye bye...");
    std::process::exit(code)
}
