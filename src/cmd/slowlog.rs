//! Recording into SLOWLOG (the SLOWLOG command itself is in server.rs) and the `command` /
//! `fast-command` latency events that go with it.
//!
//! Entries live on the shard where the client's connection lives; ids come from one node-wide
//! counter, so SLOWLOG GET can merge shards in the order the entries were made.

use super::ctx::{ClientState, ShardState, SlowlogEntry};
use super::spec::flags;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};

/// Next entry id (Redis's `slowlog_entry_id`: never reset).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Redis keeps at most this many arguments of an entry ...
const MAX_ARGC: usize = 32;
/// ... and at most this many bytes of each.
const MAX_ARG_LEN: usize = 128;

/// The arguments an entry keeps, in memory of their own: sensitive ones redacted, then
/// trimmed as Redis trims them.
fn kept_args(args: &[Bytes]) -> Vec<Bytes> {
    let redacted = super::redact::redacted(args);
    let args = redacted.as_deref().unwrap_or(args);
    let mut kept = Vec::with_capacity(args.len().min(MAX_ARGC));
    for (j, a) in args.iter().enumerate() {
        if j == MAX_ARGC - 1 && args.len() > MAX_ARGC {
            kept.push(Bytes::from(format!("... ({} more arguments)", args.len() - (MAX_ARGC - 1))));
            break;
        }
        if a.len() > MAX_ARG_LEN {
            let mut t = a[..MAX_ARG_LEN].to_vec();
            t.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            kept.push(Bytes::from(t));
        } else {
            // A copy: the argument may be a slice of the connection's read buffer, which an
            // entry would otherwise keep whole (a replica kept the 40 MB buffers of two slow
            // 32 MB SETs from its master's stream that way, through their short arguments).
            kept.push(Bytes::copy_from_slice(a));
        }
    }
    kept
}

/// Whether a command that ran for `usec` µs reaches either the latency monitor's threshold
/// or SLOWLOG's (almost never: every command asks, so this is the whole cost of the common case).
#[inline]
pub fn noteworthy(st: &ShardState, usec: u64) -> bool {
    let latency = st.config.latency_monitor_threshold;
    let slow = st.config.slowlog_log_slower_than;
    (latency != 0 && usec / 1000 >= latency) || (slow >= 0 && usec >= slow as u64)
}

/// A command that ran long on a shard other than its client's, for that client's shard to
/// record (SLOWLOG entries carry the client's address and name).
pub struct SlowNote {
    /// The command's flags.
    pub flags: u32,
    /// The command as the client sent it.
    pub args: Vec<Bytes>,
    /// How long it ran, in µs.
    pub usec: u64,
}

impl SlowNote {
    /// The note of `cmd`, which ran for `usec` µs.
    pub fn of(cmd: &crate::runtime::mesh::RemoteCmd, usec: u64) -> SlowNote {
        SlowNote { flags: cmd.spec.flags, args: cmd.args.clone(), usec }
    }
}

/// Records a command that ran for `usec` µs: a latency event sample, and a SLOWLOG entry if
/// it reached `slowlog-log-slower-than` (and is not flagged `skip_slowlog`).
#[inline]
pub fn record(st: &mut ShardState, client: &ClientState, cmd_flags: u32, args: &[Bytes], usec: u64) {
    if noteworthy(st, usec) {
        record_slow(st, client, cmd_flags, args, usec);
    }
}

#[cold]
fn record_slow(st: &mut ShardState, client: &ClientState, cmd_flags: u32, args: &[Bytes], usec: u64) {
    let who = || {
        let name = client.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        (client.addr.clone(), name)
    };
    record_as(st, who, cmd_flags, args, usec);
}

/// Records a command a script called (`redis.call`/`redis.pcall`) that ran for `usec` µs, as
/// [`record`] does for a client's. The entry names the script's client as Redis names its
/// own: no address (`?:0`) and no name.
pub fn record_script_call(st: &mut ShardState, args: &[Bytes], usec: u64) {
    if !noteworthy(st, usec) {
        return;
    }
    if let Some((spec, _)) = super::table::resolve(args) {
        record_as(st, || ("?:0".to_string(), String::new()), spec.flags, args, usec);
    }
}

fn record_as(st: &mut ShardState, who: impl FnOnce() -> (String, String), cmd_flags: u32, args: &[Bytes], usec: u64) {
    let event = if cmd_flags & flags::FAST != 0 { "fast-command" } else { "command" };
    st.record_latency(event, usec / 1000);
    let threshold = st.config.slowlog_log_slower_than;
    if threshold < 0 || usec < threshold as u64 || cmd_flags & flags::SKIP_SLOWLOG != 0 {
        return;
    }
    let (addr, name) = who();
    let entry = SlowlogEntry {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        time: crate::storage::cached_ms() / 1000,
        duration_us: usec,
        args: kept_args(args),
        addr,
        name,
    };
    st.slowlog.push_front(entry);
    st.slowlog.truncate(st.config.slowlog_max_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_redacts() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let many: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let kept = kept_args(&many);
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], b("... (9 more arguments)"));
        let long = vec![b("set"), b("k"), Bytes::from(vec![b'x'; 130])];
        assert!(kept_args(&long)[2].ends_with(b"... (2 more bytes)"));
        assert_eq!(kept_args(&[b("auth"), b("pw")])[1], b("(redacted)"));
        // Short arguments are copies, not slices of the buffer they were read from.
        let read = Bytes::from(vec![b'k'; 1 << 20]);
        let kept = kept_args(&[b("get"), read.slice(0..10)]);
        let within = |a: &Bytes| read.as_ptr_range().contains(&a.as_ptr());
        assert!(!within(&kept[1]), "a short argument keeps the read buffer alive");
    }
}
