//! ACL LOG: the node's security log of refused commands and failed AUTHs, newest first,
//! with Redis's grouping of similar events (same reason, context, object and user within 60
//! seconds bump a counter) and `acllog-max-len`.

use super::selector::Denied;
use crate::cmd::ClientState;
use crate::protocol::Reply;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where a refusal happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A command sent by the client.
    Toplevel,
    /// Inside MULTI/EXEC.
    Multi,
    /// Inside a script.
    Lua,
}

/// What was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A command.
    Command,
    /// A key.
    Key,
    /// A channel.
    Channel,
    /// AUTH failed.
    Auth,
}

struct Entry {
    count: u64,
    reason: Reason,
    context: Context,
    object: Bytes,
    username: Bytes,
    ctime_ms: u64,
    cinfo: String,
}

static LOG: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());
static MAX_LEN: AtomicUsize = AtomicUsize::new(128);

/// `acllog-max-len`.
pub fn set_max_len(n: usize) {
    MAX_LEN.store(n, Ordering::Relaxed);
    trim(&mut LOG.lock().unwrap_or_else(|p| p.into_inner()));
}

fn trim(log: &mut VecDeque<Entry>) {
    let max = MAX_LEN.load(Ordering::Relaxed);
    while log.len() > max {
        log.pop_back();
    }
}

/// Adds an event (Redis's `addACLLogEntry`).
pub fn add(reason: Reason, context: Context, object: Bytes, username: Bytes, cinfo: String) {
    let now = crate::storage::now_ms();
    let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    let hit = log.iter().take(10).position(|e| {
        e.reason == reason
            && e.context == context
            && e.ctime_ms.abs_diff(now) <= 60_000
            && e.object == object
            && e.username == username
    });
    if let Some(i) = hit {
        if let Some(mut e) = log.remove(i) {
            e.count += 1;
            e.ctime_ms = now;
            e.cinfo = cinfo;
            log.push_front(e);
        }
        return;
    }
    log.push_front(Entry { count: 1, reason, context, object, username, ctime_ms: now, cinfo });
    trim(&mut log);
}

/// Logs a refused command of client `c`.
pub fn add_denied(c: &ClientState, why: Denied, ctx: Context, fullname: &str, args: &[Bytes], pos: usize) {
    let (reason, object) = match why {
        Denied::Command => (Reason::Command, Bytes::copy_from_slice(fullname.as_bytes())),
        Denied::Key => (Reason::Key, args.get(pos).cloned().unwrap_or_default()),
        Denied::Channel => (Reason::Channel, args.get(pos).cloned().unwrap_or_default()),
    };
    add(reason, ctx, object, c.user.name.clone(), client_info(c));
}

/// Logs a failed AUTH/HELLO of client `c` as `username`.
pub fn add_auth_failure(c: &ClientState, command: &Bytes, username: &[u8]) {
    let ctx = if c.multi.is_some() { Context::Multi } else { Context::Toplevel };
    add(Reason::Auth, ctx, command.clone(), Bytes::copy_from_slice(username), client_info(c));
}

/// The client's CLIENT INFO line.
pub fn client_info(c: &ClientState) -> String {
    crate::cmd::connection::client_line(c, crate::storage::now_ms())
}

/// ACL LOG RESET.
pub fn reset() {
    LOG.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// ACL LOG [count]: the newest `count` entries.
pub fn entries(count: usize) -> Reply {
    let now = crate::storage::now_ms();
    let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    let s = |t: &str| Reply::bulk(t.as_bytes());
    let v = log
        .iter()
        .take(count)
        .map(|e| {
            let reason = match e.reason {
                Reason::Command => "command",
                Reason::Key => "key",
                Reason::Channel => "channel",
                Reason::Auth => "auth",
            };
            let context = match e.context {
                Context::Toplevel => "toplevel",
                Context::Multi => "multi",
                Context::Lua => "lua",
            };
            Reply::Map(vec![
                (s("count"), Reply::Int(e.count as i64)),
                (s("reason"), s(reason)),
                (s("context"), s(context)),
                (s("object"), Reply::Bulk(e.object.clone())),
                (s("username"), Reply::Bulk(e.username.clone())),
                (s("age-seconds"), Reply::Double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0)),
                (s("client-info"), s(&e.cinfo)),
            ])
        })
        .collect();
    Reply::Array(v)
}
