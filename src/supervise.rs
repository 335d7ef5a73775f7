//! Running under a supervisor (`supervised`, Redis's `redisSupervisedSystemd` and friends).
//!
//! Debian's `redis-server.service` runs Redis with `Type=notify` and `supervised systemd`:
//! systemd waits for `READY=1` on `$NOTIFY_SOCKET` before it counts the service as started (and
//! fails it after `TimeoutStartSec`). A node swapped in for redis-server there must say the
//! same things at the same moments: `STATUS=...` and `READY=1` once it accepts connections,
//! `STOPPING=1` when it shuts down. `supervised auto` picks systemd when `NOTIFY_SOCKET` is set
//! and upstart when `UPSTART_JOB` is; upstart is told by stopping the process with SIGSTOP once
//! ready (its `expect stop`), as Redis does.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    No,
    Systemd,
    Upstart,
}

static MODE: OnceLock<Mode> = OnceLock::new();

fn mode() -> Mode {
    *MODE.get().unwrap_or(&Mode::No)
}

/// Takes `supervised` once at start-up and logs as Redis does.
pub fn init(supervised: &str) {
    let asked = supervised.to_ascii_lowercase();
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let mode = match asked.as_str() {
        "systemd" => Mode::Systemd,
        "upstart" => Mode::Upstart,
        "auto" if env("UPSTART_JOB") => Mode::Upstart,
        "auto" if env("NOTIFY_SOCKET") => Mode::Systemd,
        _ => Mode::No,
    };
    let mode = match mode {
        Mode::Systemd if !env("NOTIFY_SOCKET") => {
            tracing::warn!("systemd supervision requested or auto-detected, but NOTIFY_SOCKET not found!");
            Mode::No
        }
        Mode::Upstart if !env("UPSTART_JOB") => {
            tracing::warn!("upstart supervision requested, but UPSTART_JOB not found!");
            Mode::No
        }
        m => m,
    };
    match mode {
        Mode::Systemd => tracing::info!(
            "Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."
        ),
        Mode::Upstart => tracing::info!("supervised by upstart, will stop to signal readiness."),
        Mode::No => {}
    }
    let _ = MODE.set(mode);
}

/// Sends `msg` to systemd's notification socket (`redisCommunicateSystemd`); nothing when
/// not supervised by systemd.
pub fn notify_systemd(msg: &str) {
    if mode() != Mode::Systemd {
        return;
    }
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket name.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg.as_bytes(), &addr)?;
        } else {
            sock.send_to(msg.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("Can't send notification to systemd: {}", e);
    }
}

/// The node starts loading its data (before the RDB file or the AOF is read).
pub fn loading() {
    notify_systemd("STATUS=Redis is loading...\n");
}

/// The node accepts connections: systemd hears READY=1 (with a status line), upstart sees the
/// process stop itself. `replica`: it follows a master and waits for its sync.
pub fn ready(replica: bool) {
    match mode() {
        Mode::Systemd => {
            notify_systemd(if replica {
                "STATUS=Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync\n"
            } else {
                "STATUS=Ready to accept connections\n"
            });
            notify_systemd("READY=1\n");
        }
        Mode::Upstart => {
            // SAFETY: raise(2) has no memory effects.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
        Mode::No => {}
    }
}

/// The process is about to exit.
pub fn stopping() {
    notify_systemd("STOPPING=1\n");
}
