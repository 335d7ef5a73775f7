//! Stream commands without consumer groups (t_stream.c): XADD, XRANGE, XREVRANGE, XLEN,
//! XDEL, XTRIM, XSETID, and the ID parsing and reply shapes the other stream files share.
//!
//! Every write reports its change count and its propagation form itself (`Ctx::dirty`,
//! `Ctx::propagate`): XADD with the ID it generated, and approximate trims (`~`) rewritten as
//! exact ones (`=`) to the length or first ID they left, as Redis rewrites its argv.

use super::ctx::Ctx;
use super::errors;
use super::notify;
use super::spec::{flags::*, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::stream::{AppendError, NodeLimits, Stream, StreamId, TrimStrategy};
use crate::storage::Value;
use bytes::Bytes;

/// Redis's error for a malformed ID.
pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// The stream family's table (consumer groups live in `stream_group`, reads in
/// `stream_read`, XINFO in `stream_info`).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("xadd", -5, WRITE | DENYOOM | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xadd)),
    spec("xrange", -4, READONLY, "@read @stream @slow", KEY1, Exec::Keyed(xrange)),
    spec("xrevrange", -4, READONLY, "@read @stream @slow", KEY1, Exec::Keyed(xrevrange)),
    spec("xlen", 2, READONLY | FAST, "@read @stream @fast", KEY1, Exec::Keyed(xlen)),
    spec("xdel", -3, WRITE | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xdel)),
    spec("xtrim", -4, WRITE, "@write @stream @slow", KEY1, Exec::Keyed(xtrim)),
    spec("xsetid", -3, WRITE | DENYOOM | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xsetid)),
];

/// Redis's `streamGenericParseIDOrReply`: `-`/`+` (unless strict), `<ms>`, `<ms>-<seq>`, and
/// with `seq_star` the `<ms>-*` form (then the bool is false: no sequence given).
pub fn parse_id(arg: &[u8], missing_seq: u64, strict: bool, seq_star: bool) -> Result<(StreamId, bool), Reply> {
    let bad = || Reply::err(INVALID_ID);
    if arg.len() > 127 {
        return Err(bad());
    }
    if strict && (arg == b"-" || arg == b"+") {
        return Err(bad());
    }
    if arg == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if arg == b"+" {
        return Ok((StreamId::MAX, true));
    }
    let ull = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    match arg.iter().position(|&c| c == b'-') {
        None => Ok((StreamId::new(ull(arg).ok_or_else(bad)?, missing_seq), true)),
        Some(i) => {
            let ms = ull(&arg[..i]).ok_or_else(bad)?;
            let rest = &arg[i + 1..];
            if seq_star && rest == b"*" {
                return Ok((StreamId::new(ms, 0), false));
            }
            Ok((StreamId::new(ms, ull(rest).ok_or_else(bad)?), true))
        }
    }
}

/// A strict ID (no `-`/`+`), sequence 0 when missing.
pub fn strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    parse_id(arg, 0, true, false).map(|(id, _)| id)
}

/// Redis's `streamParseIntervalIDOrReply` plus the `(` adjustment: the first ID included.
pub fn range_start(arg: &[u8]) -> Result<StreamId, Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], 0, true, false)?.0;
        return id.incr().ok_or(Reply::err("ERR invalid start ID for the interval"));
    }
    Ok(parse_id(arg, 0, false, false)?.0)
}

/// The last ID included by an interval end (`(` excludes).
pub fn range_end(arg: &[u8]) -> Result<StreamId, Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], u64::MAX, true, false)?.0;
        return id.decr().ok_or(Reply::err("ERR invalid end ID for the interval"));
    }
    Ok(parse_id(arg, u64::MAX, false, false)?.0)
}

/// `[id, [f1, v1, ...]]`.
pub fn item_reply(id: StreamId, pairs: Vec<(Bytes, Bytes)>) -> Reply {
    let mut fv = Vec::with_capacity(pairs.len() * 2);
    for (f, v) in pairs {
        fv.push(Reply::Bulk(f));
        fv.push(Reply::Bulk(v));
    }
    Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::Array(fv)])
}

/// The entries as an array of [`item_reply`].
pub fn items_reply(items: Vec<crate::storage::stream::Item>) -> Reply {
    Reply::Array(items.into_iter().map(|(id, p)| item_reply(id, p)).collect())
}

/// The stream at `key`: Ok(None) when missing, WRONGTYPE for another type.
pub fn get_stream<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Stream>, Reply> {
    let now = ctx.now_ms;
    stream_of(ctx.db().get(key, now))
}

/// [`get_stream`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
pub fn read_stream<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Stream>, Reply> {
    stream_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a Stream: Ok(None) when missing, WRONGTYPE for another type.
fn stream_of(e: Option<&mut crate::storage::Entry>) -> Result<Option<&mut Stream>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(v) => Ok(Some(v)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

/// The node limits of the configuration.
pub fn limits(ctx: &Ctx<'_>) -> NodeLimits {
    let cfg = &ctx.shard.config;
    let num = |n: &str, d: u64| cfg.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    NodeLimits {
        max_bytes: num("stream-node-max-bytes", 4096) as usize,
        max_entries: num("stream-node-max-entries", 100),
    }
}

/// Queues a stream keyspace event for `key`.
pub fn event(ctx: &mut Ctx<'_>, ev: &str, key: &[u8]) {
    if notify::enabled() {
        let db = ctx.db;
        notify::emit(ctx.shard, notify::STREAM, ev, key, db);
    }
}

/// The `new` event of a key the command created.
pub fn new_event(ctx: &mut Ctx<'_>, key: &[u8]) {
    if notify::enabled() {
        let db = ctx.db;
        notify::emit(ctx.shard, notify::NEW, "new", key, db);
    }
}

/// XADD/XTRIM options after parsing.
struct TrimArgs {
    strategy: Option<TrimStrategy>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID argument (the `~` is just before it).
    arg_idx: usize,
    /// XADD: index of the ID argument, the ID and whether the sequence was given.
    id_idx: usize,
    id: Option<(StreamId, bool)>,
    nomkstream: bool,
}

fn int_or(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::err(errors::NOT_INTEGER))
}

/// Redis's `streamParseAddOrTrimArgsOrReply`.
fn parse_trim(args: &[Bytes], xadd: bool, max_entries: u64) -> Result<TrimArgs, Reply> {
    let mut t =
        TrimArgs { strategy: None, approx: false, limit: 0, arg_idx: 0, id_idx: 0, id: None, nomkstream: false };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if t.strategy.is_some() {
                return Err(Reply::err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            t.approx = false;
            let next = &args[i + 1];
            if more >= 2 && &next[..] == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && &next[..] == b"=" {
                i += 1;
            }
            if eq_ic(opt, "maxlen") {
                let n = int_or(&args[i + 1])?;
                if n < 0 {
                    return Err(Reply::err("ERR The MAXLEN argument must be >= 0."));
                }
                t.strategy = Some(TrimStrategy::MaxLen(n as u64));
            } else {
                t.strategy = Some(TrimStrategy::MinId(strict_id(&args[i + 1])?));
            }
            i += 1;
            t.arg_idx = i;
        } else if eq_ic(opt, "limit") && more > 0 {
            let n = int_or(&args[i + 1])?;
            if n < 0 {
                return Err(Reply::err("ERR The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id(opt, 0, true, true)?);
            break;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 1;
    }
    t.id_idx = i;
    if t.limit != 0 && t.strategy.is_none() {
        return Err(Reply::err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && t.strategy.is_none() {
        return Err(Reply::err("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if crate::storage::in_master_view() {
        // A master's command obeys without limit (its trim was rewritten exact).
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(Reply::err("ERR syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else if t.approx {
        t.limit = approx_limit(max_entries);
    } else {
        t.limit = 0;
    }
    Ok(t)
}

/// The default approximate LIMIT: 100 nodes' worth, capped as Redis caps it.
fn approx_limit(max_entries: u64) -> u64 {
    let l = 100u64.saturating_mul(max_entries);
    if l == 0 {
        10000
    } else {
        l.min(1_000_000)
    }
}

/// Rewrites an approximate trim in `argv` to the exact one it amounted to.
fn rewrite_trim(argv: &mut [Bytes], t: &TrimArgs, s: &Stream) {
    if !t.approx {
        return;
    }
    argv[t.arg_idx - 1] = Bytes::from_static(b"=");
    argv[t.arg_idx] = match t.strategy {
        Some(TrimStrategy::MaxLen(_)) => Bytes::from(s.length.to_string()),
        _ => s.edge_id(false).unwrap_or_default().to_bytes(),
    };
}

fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let lim = limits(ctx);
    let t = match parse_trim(args, true, lim.max_entries) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let field_pos = t.id_idx + 1;
    if args.len() < field_pos + 2 || (args.len() - field_pos) % 2 == 1 {
        return Reply::error(errors::wrong_arity("xadd"));
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return Reply::err("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &args[1];
    let created = match get_stream(ctx, key) {
        Err(e) => return e,
        Ok(None) if t.nomkstream => return Reply::Nil,
        Ok(None) => {
            ctx.db().set(key, Value::Stream(Box::default()), 0);
            true
        }
        Ok(Some(_)) => false,
    };
    let now = ctx.now_ms;
    let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Nil };
    if s.last_id == StreamId::MAX {
        return Reply::err("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let pairs: Vec<(&[u8], &[u8])> = args[field_pos..].chunks_exact(2).map(|c| (&c[0][..], &c[1][..])).collect();
    let (use_id, seq_given) = match t.id {
        Some((id, given)) => (Some(id), given),
        None => (None, true),
    };
    let id = match s.append(&pairs, use_id, seq_given, lim, now) {
        Ok(id) => id,
        Err(e) => {
            if created {
                ctx.db().remove(key);
            }
            return Reply::err(match e {
                AppendError::NotGreater => {
                    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
                }
                AppendError::TooLarge => "ERR Elements are too large to be stored",
            });
        }
    };
    let mut argv = args.to_vec();
    let trimmed = match t.strategy {
        Some(st) => s.trim(st, t.approx, t.limit),
        None => 0,
    };
    if t.strategy.is_some() {
        rewrite_trim(&mut argv, &t, s);
    }
    if !matches!(t.id, Some((_, true))) {
        argv[t.id_idx] = id.to_bytes();
    }
    if created {
        new_event(ctx, key);
    }
    event(ctx, "xadd", key);
    if trimmed > 0 {
        event(ctx, "xtrim", key);
    }
    ctx.dirty(1);
    ctx.propagate = Some(vec![argv]);
    Reply::Bulk(id.to_bytes())
}

fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let lim = limits(ctx);
    let t = match parse_trim(args, false, lim.max_entries) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let key = &args[1];
    let s = match get_stream(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s,
    };
    let Some(st) = t.strategy else { return Reply::Int(0) };
    let n = s.trim(st, t.approx, t.limit);
    let mut argv = args.to_vec();
    if n > 0 {
        rewrite_trim(&mut argv, &t, s);
        event(ctx, "xtrim", key);
    }
    ctx.dirty(n);
    ctx.propagate = Some(if n > 0 { vec![argv] } else { Vec::new() });
    Reply::Int(n as i64)
}

fn range_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    let (sa, ea) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let start = match range_start(sa) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let end = match range_end(ea) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if eq_ic(&args[j], "count") && j + 1 < args.len() {
            count = match parse_i64(&args[j + 1]) {
                Some(n) => n.max(0),
                None => return Reply::err(errors::NOT_INTEGER),
            };
            j += 2;
        } else {
            return Reply::err(errors::SYNTAX);
        }
    }
    let s = match read_stream(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![]),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return Reply::NilArray;
    }
    let n = if count < 0 { 0 } else { count as usize };
    items_reply(s.range(start, end, n, rev))
}

fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_cmd(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_cmd(ctx, args, true)
}

fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_stream(ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(s)) => Reply::Int(s.len() as i64),
    }
}

fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match get_stream(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let Ok(Some(s)) = get_stream(ctx, &args[1]) else { return Reply::Int(0) };
    let mut deleted = 0u64;
    let mut first = false;
    for id in ids {
        if s.delete(id) {
            first |= id == s.first_id;
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.length == 0 {
            s.first_id = StreamId::MIN;
        } else if first {
            s.refresh_first_id();
        }
        event(ctx, "xdel", &args[1]);
    }
    ctx.dirty(deleted);
    ctx.propagate = Some(if deleted > 0 { vec![args.to_vec()] } else { Vec::new() });
    Reply::Int(deleted as i64)
}

fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let id = match strict_id(&args[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if eq_ic(&args[i], "entriesadded") && more > 0 {
            entries_added = match int_or(&args[i + 1]) {
                Ok(n) if n < 0 => return Reply::err("ERR entries_added must be positive"),
                Ok(n) => n,
                Err(e) => return e,
            };
            i += 2;
        } else if eq_ic(&args[i], "maxdeletedid") && more > 0 {
            max_xdel = match strict_id(&args[i + 1]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if id < max_xdel {
                return Reply::err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            i += 2;
        } else {
            return Reply::err(errors::SYNTAX);
        }
    }
    let s = match get_stream(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::err(errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if s.length > 0 {
        let maxid = s.edge_id(true).unwrap_or_default();
        if id < maxid {
            return Reply::err("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added != -1 && s.length > entries_added as u64 {
            return Reply::err("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted_id = max_xdel;
    }
    event(ctx, "xsetid", &args[1]);
    ctx.dirty(1);
    ctx.propagate = Some(vec![args.to_vec()]);
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(parse_id(b"5", 7, false, false), Ok((StreamId::new(5, 7), true)));
        assert_eq!(parse_id(b"5-*", 0, true, true), Ok((StreamId::new(5, 0), false)));
        assert!(parse_id(b"5-*", 0, true, false).is_err());
        assert!(parse_id(b"-", 0, true, false).is_err());
        assert_eq!(parse_id(b"+", 0, false, false), Ok((StreamId::MAX, true)));
        assert!(parse_id(b"1-2-3", 0, false, false).is_err());
        assert!(parse_id(b"-1", 0, false, false).is_err());
        assert_eq!(range_start(b"(1-0"), Ok(StreamId::new(1, 1)));
        assert_eq!(range_end(b"(2-0"), Ok(StreamId::new(1, u64::MAX)));
        assert!(range_end(b"(0-0").is_err());
    }
}
