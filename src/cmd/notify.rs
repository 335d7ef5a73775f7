//! Keyspace notifications (Redis 7.0's `notify.c` and the `notifyKeyspaceEvent` calls of the
//! command families), published through the node's pub/sub.
//!
//! - `notify-keyspace-events` (config file, CONFIG SET/GET) is parsed into Redis's class flags
//!   and kept node-wide in one atomic ([`set_flags`], [`flags`]): with notifications off every
//!   hook costs one relaxed load.
//! - Events of a keyed command are derived after it ran, by [`command_events`], from the
//!   command, its arguments, its reply, its dirty count and which keys existed before and after
//!   (the snapshot [`Before`] taken by `cmd::execute_keyed` only while notifications are on),
//!   in Redis 7.0's order: `new` (class `n`, when `dbAdd` would run) before the command's own
//!   event, `del` after a pop or removal that emptied a key. Served blocked pops emit theirs in
//!   `blocking::Serve::from_key`, expired keys in `ShardState::log_expired`, MIGRATE's delete
//!   in its delete step. FLUSHDB, FLUSHALL and SWAPDB emit nothing (as Redis).
//! - An event becomes `__keyspace@<db>__:<key>` -> event and `__keyevent@<db>__:<event>` -> key
//!   (K and E), queued on the shard ([`Pending`]) and published when the shard flushes after
//!   its operation: to this shard's subscribers at once, and to the other shards' subscribers
//!   through the shard's forwarder task (one FIFO per shard, so one shard's events keep their
//!   order everywhere), and a connection writes its replies only once they are delivered
//!   (`notify_order`), as Redis's reach subscribers before the reply. In cluster mode events stay on this node (Redis does not send them
//!   over the bus).

use super::ctx::ShardState;
use super::util::eq_ic;
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::atomic::{AtomicU32, Ordering};

/// K: `__keyspace@<db>__` channels.
pub const KEYSPACE: u32 = 1 << 0;
/// E: `__keyevent@<db>__` channels.
pub const KEYEVENT: u32 = 1 << 1;
/// g: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// $: string commands.
pub const STRING: u32 = 1 << 3;
/// l: list commands.
pub const LIST: u32 = 1 << 4;
/// s: set commands.
pub const SET: u32 = 1 << 5;
/// h: hash commands.
pub const HASH: u32 = 1 << 6;
/// z: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// x: expired keys.
pub const EXPIRED: u32 = 1 << 8;
/// e: evicted keys.
pub const EVICTED: u32 = 1 << 9;
/// t: stream commands.
pub const STREAM: u32 = 1 << 10;
/// m: key misses (excluded from A).
pub const KEY_MISS: u32 = 1 << 11;
/// d: module key types.
pub const MODULE: u32 = 1 << 13;
/// n: new keys (excluded from A).
pub const NEW: u32 = 1 << 14;
/// A: every class but m and n.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's error for a bad class letter.
pub const BAD_CLASS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

static FLAGS: AtomicU32 = AtomicU32::new(0);

/// The node's notification classes (0 = off).
#[inline]
pub fn flags() -> u32 {
    FLAGS.load(Ordering::Relaxed)
}

/// True when some class would publish something (K or E, and a class).
#[inline]
pub fn enabled() -> bool {
    let f = flags();
    f & (KEYSPACE | KEYEVENT) != 0 && f & !(KEYSPACE | KEYEVENT) != 0
}

/// Installs the classes; keeps expired keys logged while `expired` events are wanted.
pub fn set_flags(f: u32) {
    FLAGS.store(f, Ordering::Relaxed);
    let wants_expired = f & (KEYSPACE | KEYEVENT) != 0 && f & EXPIRED != 0;
    crate::storage::set_expired_notify(wants_expired);
}

/// Installs the classes of a configuration (start-up and CONFIG SET).
pub fn apply_config(cfg: &crate::config::Config) {
    set_flags(cfg.notify_keyspace_events);
}

/// Redis's `keyspaceEventsStringToFlags`: None on a letter that is no class.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// Redis's `keyspaceEventsFlagsToString` (the CONFIG GET form).
pub fn flags_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Notifications a shard produced and has not published yet: (channel, message) pairs.
#[derive(Default)]
pub struct Pending {
    msgs: Vec<(Bytes, Bytes)>,
    /// The shard's forwarder (to the other shards' subscribers); None on scratch states.
    forward: Option<futures_channel::mpsc::UnboundedSender<Vec<Bytes>>>,
}

impl Pending {
    /// Connects the forwarder that carries this shard's events to the other shards.
    pub fn set_forwarder(&mut self, tx: futures_channel::mpsc::UnboundedSender<Vec<Bytes>>) {
        self.forward = Some(tx);
    }

    /// True when events wait to be published.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Moves `other`'s events after this one's (a transaction's scratch run).
    pub fn absorb(&mut self, other: &mut Pending) {
        self.msgs.append(&mut other.msgs);
    }

    /// Takes the queued events (work done for a transaction: its coordinator publishes them).
    pub fn take(&mut self) -> Vec<(Bytes, Bytes)> {
        std::mem::take(&mut self.msgs)
    }

    /// Queues events taken from another shard's [`Pending::take`].
    pub fn extend(&mut self, events: Vec<(Bytes, Bytes)>) {
        self.msgs.extend(events);
    }
}

/// Redis's `notifyKeyspaceEvent`: queues the K and E messages of one event.
pub fn emit(st: &mut ShardState, class: u32, event: &str, key: &[u8], db: usize) {
    st.notify.emit(class, event, key, db);
}

impl Pending {
    /// Queues the K and E messages of one event (see [`emit`]).
    pub fn emit(&mut self, class: u32, event: &str, key: &[u8], db: usize) {
        let f = flags();
        if f & class == 0 {
            return;
        }
        if f & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.msgs.push((Bytes::from(ch), Bytes::copy_from_slice(event.as_bytes())));
        }
        if f & KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.msgs.push((Bytes::from(ch), Bytes::copy_from_slice(key)));
        }
    }
}

/// Publishes what the shard queued: here at once, elsewhere through the forwarder. A scratch
/// state (no forwarder: a cross-shard transaction's copy) keeps its events until the
/// coordinator takes them with [`Pending::absorb`].
pub fn publish_pending(st: &mut ShardState) {
    if st.notify.msgs.is_empty() || st.notify.forward.is_none() {
        return;
    }
    let msgs = std::mem::take(&mut st.notify.msgs);
    let limit = super::pubsub::pubsub_limit(st);
    for (ch, m) in &msgs {
        st.pubsub.publish(ch, m, limit);
    }
    let others = st.node.shards > 1
        && (st.node.pubsub.len(super::pubsub_reg::Kind::Pattern) > 0
            || st.node.pubsub.len(super::pubsub_reg::Kind::Channel) > 0);
    if let (true, Some(tx)) = (others, st.notify.forward.as_ref()) {
        let flat: Vec<Bytes> = msgs.into_iter().flat_map(|(c, m)| [c, m]).collect();
        // Counted before it is sent: a connection's wait for it (`notify_order`) starts now.
        super::notify_order::sent(st.id);
        if tx.unbounded_send(flat).is_err() {
            super::notify_order::delivered(st.id, 1);
        }
    }
}

/// Runs on another shard: delivers a forwarded batch `[_, ch, msg, ch, msg, ...]` to this
/// shard's subscribers (a `ShardFn`).
pub fn deliver_forwarded(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let limit = super::pubsub::pubsub_limit(st);
    for pair in args[1..].chunks_exact(2) {
        st.pubsub.publish(&pair[0], &pair[1], limit);
    }
    Reply::Ok
}

/// Which keys existed (logically) before a command ran, taken only while notifications are
/// on or the command's dirty count depends on it (store commands).
#[derive(Debug, Default)]
pub struct Before {
    keys: Vec<(Bytes, bool)>,
}

impl Before {
    /// Snapshots the keys at `idx` of `args` in `db`.
    pub fn take(st: &ShardState, db: usize, args: &[Bytes], idx: &[usize], now_ms: u64) -> Before {
        let d = &st.ks.dbs[db];
        Before { keys: idx.iter().map(|&i| (args[i].clone(), d.contains(&args[i], now_ms))).collect() }
    }

    /// Whether `key` existed (false when it was not snapshotted).
    pub fn existed(&self, key: &[u8]) -> bool {
        self.keys.iter().any(|(k, e)| *e && k[..] == *key)
    }
}

/// Commands whose dirty count depends on whether their destination existed.
pub fn needs_before(name: &str) -> bool {
    matches!(
        name,
        "sinterstore"
            | "sunionstore"
            | "sdiffstore"
            | "zunionstore"
            | "zinterstore"
            | "zdiffstore"
            | "zrangestore"
            | "bitop"
            | "sort"
            | "georadius"
            | "georadiusbymember"
            | "geosearchstore"
    )
}

/// The destination of GEORADIUS[BYMEMBER] .. STORE|STOREDIST or GEOSEARCHSTORE, if any.
pub fn geo_store_dest<'a>(name: &str, args: &'a [Bytes]) -> Option<&'a Bytes> {
    if name == "geosearchstore" {
        return args.get(1);
    }
    let i = args.iter().position(|a| eq_ic(a, "store") || eq_ic(a, "storedist"))?;
    args.get(i + 1)
}

/// The destination of SORT .. STORE, if any.
pub fn sort_store_dest(args: &[Bytes]) -> Option<&Bytes> {
    let i = args.iter().skip(2).position(|a| eq_ic(a, "store"))? + 2;
    args.get(i + 1)
}

/// The key a *MPOP reply names (`[key, [..]]`).
pub fn mpop_key(reply: &Reply) -> Option<Bytes> {
    match reply {
        Reply::Array(v) => match v.first() {
            Some(Reply::Bulk(k)) => Some(k.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Queues the events of one executed keyed command (see the module docs). `dirty` is what it
/// counted, `cmds` what it propagates (its first verb tells EXPIRE-like commands' outcome).
#[allow(clippy::too_many_arguments)]
pub fn command_events(
    st: &mut ShardState,
    db: usize,
    name: &str,
    args: &[Bytes],
    reply: &Reply,
    dirty: u64,
    cmds: &[crate::replication::feed::Argv],
    before: &Before,
    now_ms: u64,
) {
    if reply.is_error() {
        return;
    }
    let exists_now = |st: &ShardState, d: usize, k: &[u8]| st.ks.dbs.get(d).is_some_and(|x| x.contains(k, now_ms));
    // `new` when the command created the key.
    let new = |st: &mut ShardState, k: &Bytes| {
        if !before.existed(k) && exists_now(st, db, k) {
            emit(st, NEW, "new", k, db);
        }
    };
    // `del` when the command emptied the key.
    let del_if_gone = |st: &mut ShardState, k: &Bytes| {
        if !exists_now(st, db, k) {
            emit(st, GENERIC, "del", k, db);
        }
    };
    let key = || args[1].clone();
    let verb = cmds.first().and_then(|c| c.first()).map(|v| v.to_ascii_uppercase());
    match name {
        "set" | "setnx" | "setex" | "psetex" | "getset" => {
            if dirty == 0 {
                return;
            }
            new(st, &args[1]);
            emit(st, STRING, "set", &args[1], db);
            let expires = matches!(name, "setex" | "psetex")
                || (name == "set"
                    && args[3..]
                        .iter()
                        .any(|a| eq_ic(a, "ex") || eq_ic(a, "px") || eq_ic(a, "exat") || eq_ic(a, "pxat")));
            if expires {
                emit(st, GENERIC, "expire", &args[1], db);
            }
        }
        "mset" | "msetnx" => {
            if dirty == 0 {
                return;
            }
            let mut seen: Vec<&Bytes> = Vec::new();
            for pair in args[1..].chunks_exact(2) {
                if !seen.contains(&&pair[0]) {
                    new(st, &pair[0]);
                    seen.push(&pair[0]);
                }
                emit(st, STRING, "set", &pair[0], db);
            }
        }
        "getdel" if dirty > 0 => emit(st, GENERIC, "del", &args[1], db),
        "getex" | "expire" | "pexpire" | "expireat" | "pexpireat" if dirty > 0 => match verb.as_deref() {
            Some(b"DEL") => emit(st, GENERIC, "del", &args[1], db),
            Some(b"PERSIST") => emit(st, GENERIC, "persist", &args[1], db),
            _ => emit(st, GENERIC, "expire", &args[1], db),
        },
        "persist" if dirty > 0 => emit(st, GENERIC, "persist", &args[1], db),
        "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" | "append" | "setrange" | "setbit" | "bitfield"
        | "pfadd" | "pfmerge"
            if dirty > 0 =>
        {
            let ev = match name {
                "incr" | "decr" | "incrby" | "decrby" => "incrby",
                "bitfield" => "setbit",
                "pfmerge" => "pfadd",
                n => n,
            };
            new(st, &args[1]);
            emit(st, STRING, ev, &args[1], db);
        }
        "del" | "unlink" => {
            let mut done: Vec<&Bytes> = Vec::new();
            for k in &args[1..] {
                if before.existed(k) && !done.contains(&k) && !exists_now(st, db, k) {
                    emit(st, GENERIC, "del", k, db);
                    done.push(k);
                }
            }
        }
        "rename" | "renamenx" if dirty > 0 => {
            emit(st, NEW, "new", &args[2], db);
            emit(st, GENERIC, "rename_from", &args[1], db);
            emit(st, GENERIC, "rename_to", &args[2], db);
        }
        "move" if dirty > 0 => {
            let to = super::util::parse_i64(&args[2]).unwrap_or(0) as usize;
            emit(st, NEW, "new", &args[1], to);
            emit(st, GENERIC, "move_from", &args[1], db);
            emit(st, GENERIC, "move_to", &args[1], to);
        }
        "copy" if dirty > 0 => {
            let mut to = db;
            let mut i = 3;
            while i < args.len() {
                if eq_ic(&args[i], "db") {
                    to = args.get(i + 1).and_then(|v| super::util::parse_i64(v)).unwrap_or(0) as usize;
                    i += 1;
                }
                i += 1;
            }
            emit(st, NEW, "new", &args[2], to);
            emit(st, GENERIC, "copy_to", &args[2], to);
        }
        "restore" | "restore-asking" => {
            if exists_now(st, db, &args[1]) {
                emit(st, NEW, "new", &args[1], db);
                emit(st, GENERIC, "restore", &args[1], db);
            } else if before.existed(&args[1]) {
                emit(st, GENERIC, "del", &args[1], db);
            }
        }
        "lpush" | "rpush" | "lpushx" | "rpushx" if dirty > 0 => {
            new(st, &args[1]);
            emit(st, LIST, if name.starts_with('l') { "lpush" } else { "rpush" }, &args[1], db);
        }
        "linsert" | "lset" if dirty > 0 => emit(st, LIST, name, &args[1], db),
        "lpop" | "rpop" | "lrem" if dirty > 0 => {
            emit(st, LIST, name, &args[1], db);
            del_if_gone(st, &key());
        }
        "ltrim" if before.existed(&args[1]) => {
            emit(st, LIST, "ltrim", &args[1], db);
            del_if_gone(st, &key());
        }
        "lmpop" if dirty > 0 => {
            if let Some(k) = mpop_key(reply) {
                let left = args.iter().any(|a| eq_ic(a, "left"));
                emit(st, LIST, if left { "lpop" } else { "rpop" }, &k, db);
                del_if_gone(st, &k);
            }
        }
        "rpoplpush" | "lmove" if dirty > 0 => {
            let (from_left, to_left) =
                if name == "lmove" { (eq_ic(&args[3], "left"), eq_ic(&args[4], "left")) } else { (false, true) };
            new(st, &args[2]);
            emit(st, LIST, if to_left { "lpush" } else { "rpush" }, &args[2], db);
            emit(st, LIST, if from_left { "lpop" } else { "rpop" }, &args[1], db);
            del_if_gone(st, &key());
        }
        "sadd" if dirty > 0 => {
            new(st, &args[1]);
            emit(st, SET, "sadd", &args[1], db);
        }
        "srem" | "spop" if dirty > 0 => {
            emit(st, SET, name, &args[1], db);
            del_if_gone(st, &key());
        }
        "smove" if dirty > 0 => {
            emit(st, SET, "srem", &args[1], db);
            del_if_gone(st, &key());
            if dirty > 1 {
                new(st, &args[2]);
                emit(st, SET, "sadd", &args[2], db);
            }
        }
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore"
        | "bitop" | "sort" | "geosearchstore" | "georadius" | "georadiusbymember"
            if dirty > 0 =>
        {
            let (dst, class, ev) = match name {
                "bitop" => (&args[2], STRING, "set"),
                "sort" => match sort_store_dest(args) {
                    Some(d) => (d, LIST, "sortstore"),
                    None => return,
                },
                "geosearchstore" | "georadius" | "georadiusbymember" => match geo_store_dest(name, args) {
                    Some(d) => (d, ZSET, if name == "geosearchstore" { name } else { "georadiusstore" }),
                    None => return,
                },
                n if n.starts_with('s') => (&args[1], SET, n),
                n => (&args[1], ZSET, n),
            };
            if exists_now(st, db, dst) {
                new(st, dst);
                emit(st, class, ev, dst, db);
            } else {
                emit(st, GENERIC, "del", dst, db);
            }
        }
        "hset" | "hmset" | "hsetnx" | "hincrby" | "hincrbyfloat" if dirty > 0 => {
            new(st, &args[1]);
            emit(st, HASH, if name.starts_with("hincr") { name } else { "hset" }, &args[1], db);
        }
        "hdel" if dirty > 0 => {
            emit(st, HASH, "hdel", &args[1], db);
            del_if_gone(st, &key());
        }
        // GEOADD is ZADD underneath (Redis emits `zadd`).
        "geoadd" if dirty > 0 => {
            new(st, &args[1]);
            emit(st, ZSET, "zadd", &args[1], db);
        }
        "zadd" | "zincrby" if dirty > 0 => {
            let incr = name == "zincrby" || args[2..].iter().any(|a| eq_ic(a, "incr"));
            new(st, &args[1]);
            emit(st, ZSET, if incr { "zincr" } else { "zadd" }, &args[1], db);
        }
        "zrem" | "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" | "zpopmin" | "zpopmax" if dirty > 0 => {
            emit(st, ZSET, name, &args[1], db);
            del_if_gone(st, &key());
        }
        "zmpop" if dirty > 0 => {
            if let Some(k) = mpop_key(reply) {
                let max = args.iter().any(|a| eq_ic(a, "max"));
                emit(st, ZSET, if max { "zpopmax" } else { "zpopmin" }, &k, db);
                del_if_gone(st, &k);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_as_redis() {
        assert_eq!(parse_flags("KEA").map(flags_to_string).as_deref(), Some("AKE"));
        assert_eq!(parse_flags("Egx$").map(flags_to_string).as_deref(), Some("g$xE"));
        assert_eq!(parse_flags("Kmn").map(flags_to_string).as_deref(), Some("nKm"));
        assert_eq!(parse_flags("").map(flags_to_string).as_deref(), Some(""));
        assert_eq!(parse_flags("KEq"), None);
    }
}
