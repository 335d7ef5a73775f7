//! MONITOR: every executed command, on every shard, is fed to every monitoring connection.
//!
//! Monitors register an unbounded channel in a node-wide list; feeding costs one atomic load
//! while nobody monitors.

use bytes::Bytes;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static MONITORS: Mutex<Vec<(u64, UnboundedSender<Bytes>)>> = Mutex::new(Vec::new());

/// Registers client `id` as a monitor; its lines arrive on the receiver.
pub fn register(id: u64) -> UnboundedReceiver<Bytes> {
    let (tx, rx) = unbounded();
    let mut m = MONITORS.lock().unwrap_or_else(|p| p.into_inner());
    m.push((id, tx));
    COUNT.store(m.len(), Ordering::Release);
    rx
}

/// Removes a monitor.
pub fn unregister(id: u64) {
    let mut m = MONITORS.lock().unwrap_or_else(|p| p.into_inner());
    m.retain(|(i, _)| *i != id);
    COUNT.store(m.len(), Ordering::Release);
}

/// True when someone monitors.
pub fn active() -> bool {
    COUNT.load(Ordering::Acquire) > 0
}

/// Whether a client's command is shown to monitors: administrative commands never are, nor
/// those flagged `skip_monitor`, except the script runners, which Redis feeds itself before
/// running them (so the script's own commands follow their EVAL or FCALL).
pub fn shown(spec: &crate::cmd::CommandSpec, fullname: &str) -> bool {
    use crate::cmd::flags;
    if spec.has(flags::ADMIN) {
        return false;
    }
    !spec.has(flags::SKIP_MONITOR)
        || matches!(fullname, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// Feeds a command a script ran (`[<db> lua]`), as Redis's call() does for its script client.
pub fn feed_script_call(db: usize, spec: &crate::cmd::CommandSpec, args: &[Bytes]) {
    if active() && !spec.has(crate::cmd::flags::SKIP_MONITOR) && !spec.has(crate::cmd::flags::ADMIN) {
        feed(db, "lua", args);
    }
}

/// Appends an argument quoted like Redis's `sdscatrepr`.
pub fn repr(out: &mut String, a: &[u8]) {
    out.push('"');
    for &c in a {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
}

/// Feeds one command to every monitor: `+<secs>.<usecs> [<db> <addr>] "cmd" "arg" ...`.
pub fn feed(db: usize, addr: &str, args: &[Bytes]) {
    if !active() {
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut line = format!("+{}.{:06} [{} {}]", now.as_secs(), now.subsec_micros(), db, addr);
    // Passwords and user definitions are shown as `(redacted)`.
    let redacted = crate::cmd::redact::redacted(args);
    for a in redacted.as_deref().unwrap_or(args) {
        line.push(' ');
        repr(&mut line, a);
    }
    line.push_str("\r\n");
    let line = Bytes::from(line);
    let mut m = MONITORS.lock().unwrap_or_else(|p| p.into_inner());
    m.retain(|(_, tx)| tx.unbounded_send(line.clone()).is_ok());
    COUNT.store(m.len(), Ordering::Release);
}
