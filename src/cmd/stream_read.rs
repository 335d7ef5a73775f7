//! XREAD and XREADGROUP (t_stream.c `xreadCommand`), their blocked form, and the group
//! delivery they share with the serving of blocked readers (`streamReplyWithRange` with a
//! group, Redis's `serveClientsBlockedOnStreamKey`).
//!
//! The keyed handler is the non-blocking attempt: it serves every stream that has something
//! for the caller, or answers the null array, which for a call with BLOCK means "block"
//! (`cmd::blocking`). A blocked reader is a [`Wait`]: its `$` IDs are resolved to the stream's
//! last ID when the waiter registers on the key's shard; a group reader always waits for
//! entries past its group's last delivered ID. Serving one reader never consumes anything
//! from the stream, so every XREAD waiter on a key is served by one XADD.
//!
//! XREADGROUP propagates what it did, never itself: one `XCLAIM key group consumer 0 id TIME t
//! RETRYCOUNT n FORCE JUSTID LASTID last` per delivered entry, `XGROUP SETID .. ENTRIESREAD`
//! for NOACK reads, `XGROUP CREATECONSUMER` for a consumer a NOACK read created.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys};
use super::stream::{event, get_stream, item_reply, read_stream, strict_id};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::replication::feed::Argv;
use crate::storage::stream::{Stream, StreamId};
use bytes::Bytes;

/// Redis's `XREAD_BLOCKED_DEFAULT_COUNT`.
const BLOCKED_DEFAULT_COUNT: u64 = 1000;

/// XREAD / XREADGROUP.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("xread", -4, READONLY | BLOCKING, "@read @stream @slow @blocking", Keys::Custom { legacy: (0, 0, 0), find: read_keys }, Exec::Keyed(xread)),
    spec("xreadgroup", -7, WRITE | BLOCKING, "@write @stream @slow @blocking", Keys::Custom { legacy: (0, 0, 0), find: read_keys }, Exec::Keyed(xreadgroup)),
];

/// Redis's `xreadGetKeys`: the keys after STREAMS, none when malformed (the command then
/// reports the error itself).
fn read_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    let mut i = 1;
    let mut streams = None;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "block") || eq_ic(a, "count") {
            i += 1;
        } else if eq_ic(a, "group") {
            i += 2;
        } else if eq_ic(a, "noack") {
        } else if eq_ic(a, "streams") {
            streams = Some(i);
            break;
        } else {
            break;
        }
        i += 1;
    }
    let Some(p) = streams else { return Ok(Vec::new()) };
    let n = args.len() - p - 1;
    if n == 0 || n % 2 != 0 {
        return Ok(Vec::new());
    }
    Ok((p + 1..p + 1 + n / 2).collect())
}

/// What a reader asked for on one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadId {
    /// Entries after this ID.
    After(StreamId),
    /// `$`: entries after the stream's last ID when the call blocks.
    Last,
    /// `>`: entries never delivered to the group.
    New,
}

/// A blocked XREAD / XREADGROUP.
#[derive(Debug, Clone)]
pub struct Wait {
    /// Keys with what is asked of each.
    pub ids: Vec<(Bytes, ReadId)>,
    /// Entries per reply (COUNT, or 1000).
    pub count: u64,
    /// XREADGROUP: group and consumer.
    pub group: Option<(Bytes, Bytes)>,
    /// NOACK.
    pub noack: bool,
}

/// Options of a call.
struct Opts {
    block: Option<u64>,
    count: u64,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    streams_at: usize,
    n: usize,
}

fn parse_opts(args: &[Bytes], xreadgroup: bool) -> Result<Opts, Reply> {
    let mut o = Opts { block: None, count: 0, group: None, noack: false, streams_at: 0, n: 0 };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let a = &args[i];
        if eq_ic(a, "block") && more > 0 {
            i += 1;
            let t = parse_i64(&args[i]).ok_or(Reply::err(errors::TIMEOUT_NOT_INT))?;
            if t < 0 {
                return Err(Reply::err("ERR timeout is negative"));
            }
            o.block = Some(t as u64);
        } else if eq_ic(a, "count") && more > 0 {
            i += 1;
            o.count = parse_i64(&args[i]).ok_or(Reply::err(errors::NOT_INTEGER))?.max(0) as u64;
        } else if eq_ic(a, "streams") && more > 0 {
            o.streams_at = i + 1;
            let n = args.len() - o.streams_at;
            if n % 2 != 0 {
                return Err(Reply::err(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            o.n = n / 2;
            break;
        } else if eq_ic(a, "group") && more >= 2 {
            if !xreadgroup {
                return Err(Reply::err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            o.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if eq_ic(a, "noack") {
            if !xreadgroup {
                return Err(Reply::err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            o.noack = true;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 1;
    }
    if o.streams_at == 0 {
        return Err(Reply::err(errors::SYNTAX));
    }
    if xreadgroup && o.group.is_none() {
        return Err(Reply::err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(o)
}

/// The blocking form of a call (for `cmd::blocking`): None when it does not block or is
/// malformed (its handler then answers).
pub fn blocking(args: &[Bytes]) -> Option<(Wait, Vec<Bytes>, u64)> {
    let xreadgroup = eq_ic(&args[0], "xreadgroup");
    let o = parse_opts(args, xreadgroup).ok()?;
    let block = o.block?;
    let mut ids = Vec::with_capacity(o.n);
    for k in 0..o.n {
        let key = args[o.streams_at + k].clone();
        let a = &args[o.streams_at + o.n + k];
        let id = match &a[..] {
            b"$" => ReadId::Last,
            b">" => ReadId::New,
            _ => ReadId::After(strict_id(a).ok()?),
        };
        ids.push((key, id));
    }
    let keys = ids.iter().map(|(k, _)| k.clone()).collect();
    let count = if o.count == 0 { BLOCKED_DEFAULT_COUNT } else { o.count };
    Some((Wait { ids, count, group: o.group, noack: o.noack }, keys, block))
}

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Looks a consumer up (refreshing its seen time) or creates it, with Redis's side effects.
/// Returns the changes counted.
pub fn touch_consumer(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    group: &Bytes,
    consumer: &[u8],
    noack: bool,
    props: &mut Vec<Argv>,
) -> u64 {
    let now = ctx.now_ms;
    let Ok(Some(s)) = get_stream(ctx, key) else { return 0 };
    let Some(g) = s.groups.get_mut(&group[..]) else { return 0 };
    if let Some(c) = g.consumers.get_mut(consumer) {
        c.seen_time = now;
        return 0;
    }
    g.create_consumer(consumer, now);
    event(ctx, "xgroup-createconsumer", key);
    if noack {
        props.push(vec![
            b("XGROUP"),
            b("CREATECONSUMER"),
            key.clone(),
            group.clone(),
            Bytes::copy_from_slice(consumer),
        ]);
    }
    1
}

/// The XCLAIM that recreates one PEL entry elsewhere (Redis's `streamPropagateXCLAIM`).
pub fn xclaim_argv(key: &Bytes, group: &Bytes, s: &Stream, id: StreamId) -> Option<Argv> {
    let g = s.groups.get(&group[..])?;
    let n = g.pel.get(&id)?;
    Some(vec![
        b("XCLAIM"),
        key.clone(),
        group.clone(),
        Bytes::copy_from_slice(&n.consumer),
        b("0"),
        id.to_bytes(),
        b("TIME"),
        Bytes::from(n.delivery_time.to_string()),
        b("RETRYCOUNT"),
        Bytes::from(n.delivery_count.to_string()),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        g.last_id.to_bytes(),
    ])
}

/// `XGROUP SETID key group last ENTRIESREAD n` (Redis's `streamPropagateGroupID`).
pub fn setid_argv(key: &Bytes, group: &Bytes, s: &Stream) -> Option<Argv> {
    let g = s.groups.get(&group[..])?;
    let read = g.entries_read.map_or(-1, |n| n as i64);
    Some(vec![
        b("XGROUP"),
        b("SETID"),
        key.clone(),
        group.clone(),
        g.last_id.to_bytes(),
        b("ENTRIESREAD"),
        Bytes::from(read.to_string()),
    ])
}

/// Delivers new entries after `after` to a group's consumer (`streamReplyWithRange` with a
/// group): advances the group's last ID and read counter, adds PEL entries unless NOACK, and
/// queues the propagation. Returns the entries.
#[allow(clippy::too_many_arguments)]
pub fn deliver(
    s: &mut Stream,
    key: &Bytes,
    group: &Bytes,
    consumer: &[u8],
    after: StreamId,
    count: u64,
    noack: bool,
    now: u64,
    props: &mut Vec<Argv>,
) -> Vec<Reply> {
    let Some(start) = after.incr() else { return Vec::new() };
    let items = s.range(start, StreamId::MAX, count as usize, false);
    let mut out = Vec::with_capacity(items.len());
    let mut propagate_last = false;
    for (id, pairs) in items {
        let last = s.groups.get(&group[..]).map(|g| (g.last_id, g.entries_read));
        if let Some((last_id, read)) = last {
            if id > last_id {
                let new_read = match read {
                    Some(r) if !s.range_has_tombstones(id) => Some(r + 1),
                    _ if s.entries_added > 0 => s.estimate_distance(id),
                    r => r,
                };
                if let Some(g) = s.groups.get_mut(&group[..]) {
                    g.entries_read = new_read;
                    g.last_id = id;
                }
                propagate_last |= noack;
            }
        }
        out.push(item_reply(id, pairs));
        if !noack {
            if let Some(g) = s.groups.get_mut(&group[..]) {
                g.assign(id, consumer, now, Some(1));
            }
            props.extend(xclaim_argv(key, group, s, id));
        }
    }
    if propagate_last {
        props.extend(setid_argv(key, group, s));
    }
    out
}

/// A consumer's own history from `start` (`streamReplyWithRangeFromConsumerPEL`).
fn history(s: &mut Stream, group: &[u8], consumer: &[u8], start: StreamId, count: u64, now: u64) -> Vec<Reply> {
    let ids: Vec<StreamId> = match s.groups.get(group).and_then(|g| g.consumers.get(consumer)) {
        Some(c) => c.pel.range(start..).take(if count == 0 { usize::MAX } else { count as usize }).copied().collect(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.get(id) {
            Some((_, pairs)) => {
                out.push(item_reply(id, pairs));
                if let Some(n) = s.groups.get_mut(group).and_then(|g| g.pel.get_mut(&id)) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            }
            None => out.push(Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::NilArray])),
        }
    }
    out
}

fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_generic(ctx, args, false)
}

fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_generic(ctx, args, true)
}

fn read_generic(ctx: &mut Ctx<'_>, args: &[Bytes], xreadgroup: bool) -> Reply {
    let o = match parse_opts(args, xreadgroup) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut ids = Vec::with_capacity(o.n);
    for k in 0..o.n {
        let key = &args[o.streams_at + k];
        let a = &args[o.streams_at + o.n + k];
        let s = match read_stream(ctx, key) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if let Some((g, _)) = &o.group {
            if !s.as_ref().is_some_and(|s| s.groups.contains_key(&g[..])) {
                return nogroup(key, g);
            }
        }
        let last = s.map(|s| s.last_id).unwrap_or_default();
        let id = if &a[..] == b"$" {
            if xreadgroup {
                return Reply::err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            ReadId::After(last)
        } else if &a[..] == b">" {
            if !xreadgroup {
                return Reply::err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            ReadId::New
        } else {
            match strict_id(a) {
                Ok(id) => ReadId::After(id),
                Err(e) => return e,
            }
        };
        ids.push(id);
    }
    let now = ctx.now_ms;
    let mut out = Vec::new();
    let mut props = Vec::new();
    let mut dirty = 0;
    for (k, id) in ids.into_iter().enumerate() {
        let key = args[o.streams_at + k].clone();
        let Ok(Some(s)) = read_stream(ctx, &key) else { continue };
        let served = match (&o.group, id) {
            (Some(_), ReadId::After(_)) => true,
            (Some((g, _)), _) => {
                s.length > 0
                    && s.edge_id(true).unwrap_or_default() > s.groups.get(&g[..]).map(|g| g.last_id).unwrap_or_default()
            }
            (None, ReadId::After(gt)) => s.length > 0 && s.edge_id(true).unwrap_or_default() > gt,
            (None, _) => false,
        };
        if !served {
            continue;
        }
        let entries = match &o.group {
            None => {
                let ReadId::After(gt) = id else { continue };
                match gt.incr() {
                    Some(start) => s
                        .range(start, StreamId::MAX, o.count as usize, false)
                        .into_iter()
                        .map(|(i, p)| item_reply(i, p))
                        .collect(),
                    None => Vec::new(),
                }
            }
            Some((g, c)) => {
                dirty += 1 + touch_consumer(ctx, &key, g, c, o.noack, &mut props);
                let Ok(Some(s)) = get_stream(ctx, &key) else { continue };
                match id {
                    // IDs greater than the one given.
                    ReadId::After(after) => match after.incr() {
                        Some(start) => history(s, g, c, start, o.count, now),
                        None => Vec::new(),
                    },
                    _ => {
                        let last = s.groups.get(&g[..]).map(|g| g.last_id).unwrap_or_default();
                        deliver(s, &key, g, c, last, o.count, o.noack, now, &mut props)
                    }
                }
            }
        };
        out.push((Reply::Bulk(key), Reply::Array(entries)));
    }
    if xreadgroup {
        ctx.dirty(dirty);
        ctx.propagate = Some(props);
    }
    if out.is_empty() {
        return Reply::NilArray;
    }
    Reply::KeyedMap(out)
}

/// Resolves `$` to the stream's current last ID (when the waiter registers).
pub fn resolve(ctx: &mut Ctx<'_>, w: &mut Wait) {
    for (key, id) in w.ids.iter_mut() {
        if *id == ReadId::Last {
            let last = match get_stream(ctx, key) {
                Ok(Some(s)) => s.last_id,
                _ => StreamId::MIN,
            };
            *id = ReadId::After(last);
        }
    }
}

/// Whether the waiter can be served from `key` now: a stream whose last ID passed what it
/// waits for, or whose group was destroyed (it then gets the error).
pub fn ready(ctx: &mut Ctx<'_>, w: &Wait, key: &[u8]) -> super::blocking::KeyState {
    use super::blocking::KeyState;
    let now = ctx.now_ms;
    let s = match ctx.db().get_notouch(key, now).map(|e| &e.value) {
        Some(crate::storage::Value::Stream(s)) => s,
        // A group reader's stream is gone (deleted or overwritten): it gets an error.
        _ if w.group.is_some() => return KeyState::Ready,
        Some(_) => return KeyState::WrongType,
        None => return KeyState::Empty,
    };
    let gt = match &w.group {
        Some((g, _)) => match s.groups.get(&g[..]) {
            Some(g) => g.last_id,
            None => return KeyState::Ready,
        },
        None => match w.ids.iter().find(|(k, _)| k[..] == *key) {
            Some((_, ReadId::After(id))) => *id,
            _ => StreamId::MAX,
        },
    };
    // The last live entry, as the synchronous read decides (a tombstone or XSETID alone
    // never serves a reader an empty reply).
    if s.length > 0 && s.edge_id(true).is_some_and(|last| last > gt) {
        KeyState::Ready
    } else {
        KeyState::Empty
    }
}

/// Serves a blocked reader from `key` (ready as [`ready`] says), recording what it changed.
pub fn serve(ctx: &mut Ctx<'_>, w: &Wait, key: &Bytes) -> Reply {
    let now = ctx.now_ms;
    let mut props = Vec::new();
    let entries = match &w.group {
        None => {
            let Some((_, ReadId::After(gt))) = w.ids.iter().find(|(k, _)| k == key) else { return Reply::NilArray };
            let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::NilArray };
            match gt.incr() {
                Some(start) => s
                    .range(start, StreamId::MAX, w.count as usize, false)
                    .into_iter()
                    .map(|(i, p)| item_reply(i, p))
                    .collect(),
                None => Vec::new(),
            }
        }
        Some((g, c)) => {
            let exists = match get_stream(ctx, key) {
                Ok(Some(s)) => s.groups.contains_key(&g[..]),
                // The error counts as a failed call where the blocked command ends
                // (`Conn::run_blocking`, Redis's `updateStatsOnUnblock`).
                _ => return Reply::err("UNBLOCKED the stream key no longer exists"),
            };
            if !exists {
                return Reply::err("NOGROUP the consumer group this client was blocked on no longer exists");
            }
            let mut dirty = touch_consumer(ctx, key, g, c, w.noack, &mut props);
            let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::NilArray };
            let last = s.groups.get(&g[..]).map(|g| g.last_id).unwrap_or_default();
            let entries = deliver(s, key, g, c, last, w.count, w.noack, now, &mut props);
            dirty += props.len() as u64;
            if dirty > 0 || !props.is_empty() {
                let db = ctx.db;
                ctx.shard.changes.record(db, dirty.max(1), props);
            }
            entries
        }
    };
    Reply::KeyedMap(vec![(Reply::Bulk(key.clone()), Reply::Array(entries))])
}
