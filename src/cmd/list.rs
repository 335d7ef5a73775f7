//! List commands (t_list.c in Redis), the non-blocking ones (the blocking ones are in
//! `blocking.rs`). Multi-key commands (LMOVE,
//! RPOPLPUSH, LMPOP) declare their keys, so they stay atomic when keys span shards.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::{ListValue as List, Value};
use bytes::Bytes;

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: keys are 2..2+numkeys.
fn lmpop_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    super::blocking::mpop_keys(args, 1)
}

/// The list family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, "@write @list @fast", KEY1, Exec::Keyed(lpush)),
    spec("rpush", -3, WRITE | DENYOOM | FAST, "@write @list @fast", KEY1, Exec::Keyed(rpush)),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, "@write @list @fast", KEY1, Exec::Keyed(lpushx)),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, "@write @list @fast", KEY1, Exec::Keyed(rpushx)),
    spec("lpop", -2, WRITE | FAST, "@write @list @fast", KEY1, Exec::Keyed(lpop)),
    spec("rpop", -2, WRITE | FAST, "@write @list @fast", KEY1, Exec::Keyed(rpop)),
    spec("llen", 2, READONLY | FAST, "@read @list @fast", KEY1, Exec::Keyed(llen)),
    spec("lrange", 4, READONLY, "@read @list @slow", KEY1, Exec::Keyed(lrange)),
    spec("lindex", 3, READONLY, "@read @list @slow", KEY1, Exec::Keyed(lindex)),
    spec("lset", 4, WRITE | DENYOOM, "@write @list @slow", KEY1, Exec::Keyed(lset)),
    spec("linsert", 5, WRITE | DENYOOM, "@write @list @slow", KEY1, Exec::Keyed(linsert)),
    spec("lrem", 4, WRITE, "@write @list @slow", KEY1, Exec::Keyed(lrem)),
    spec("ltrim", 4, WRITE, "@write @list @slow", KEY1, Exec::Keyed(ltrim)),
    spec("lpos", -3, READONLY, "@read @list @slow", KEY1, Exec::Keyed(lpos)),
    spec("lmove", 5, WRITE | DENYOOM, "@write @list @slow", keys(1, 2, 1), Exec::Keyed(lmove)),
    spec("rpoplpush", 3, WRITE | DENYOOM, "@write @list @slow", keys(1, 2, 1), Exec::Keyed(rpoplpush)),
    spec("lmpop", -4, WRITE, "@write @list @slow", Keys::Custom { legacy: (0, 0, 0), find: lmpop_keys }, Exec::Keyed(lmpop)),
];

fn get_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut List>, Reply> {
    let now = ctx.now_ms;
    list_of(ctx.db().get(key, now))
}

/// [`get_list`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
fn read_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut List>, Reply> {
    list_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a List: Ok(None) when missing, WRONGTYPE for another type.
fn list_of(e: Option<&mut crate::storage::Entry>) -> Result<Option<&mut List>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(v) => Ok(Some(v)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

fn drop_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) {
    if matches!(get_list(ctx, key), Ok(Some(l)) if l.is_empty()) {
        ctx.db().remove(key);
    }
}

fn push(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> Reply {
    let l = if only_existing {
        match get_list(ctx, &args[1]) {
            Err(e) => return e,
            Ok(None) => return Reply::Int(0),
            Ok(Some(l)) => l,
        }
    } else {
        let now = ctx.now_ms;
        match &mut ctx.db().get_or_create(&args[1], now, || Value::List(Box::default())).0.value {
            Value::List(l) => &mut **l,
            _ => return Reply::err(errors::WRONGTYPE),
        }
    };
    for v in &args[2..] {
        if left {
            l.push_front(v);
        } else {
            l.push_back(v);
        }
    }
    Reply::Int(l.len() as i64)
}

fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, true, false)
}
fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, false, false)
}
fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, true, true)
}
fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, false, true)
}

fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => return Reply::error(errors::wrong_arity(if left { "lpop" } else { "rpop" })),
    };
    let out = match get_list(ctx, &args[1]) {
        Ok(Some(l)) => take(l, left, count.unwrap_or(1)),
        Ok(None) => return if count.is_some() { Reply::NilArray } else { Reply::Nil },
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    ctx.dirty(out.len() as u64);
    match count {
        None => out.into_iter().next().map_or(Reply::Nil, |v| Reply::Bulk(v.into())),
        Some(_) => Reply::Array(out.into_iter().map(|v| Reply::Bulk(v.into())).collect()),
    }
}

fn take(l: &mut List, left: bool, n: usize) -> Vec<Vec<u8>> {
    if left {
        l.take_front(n)
    } else {
        l.take_back(n)
    }
}

fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, true)
}
fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, false)
}

fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_list(ctx, &args[1]) {
        Ok(l) => Reply::Int(l.map_or(0, |l| l.len() as i64)),
        Err(e) => e,
    }
}

/// Normalises a Redis (start, end) range over `len` items; None when empty.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    s = s.max(0);
    if e >= len {
        e = len - 1;
    }
    if s > e || s >= len {
        return None;
    }
    e = e.max(0);
    Some((s as usize, e as usize))
}

fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else { return Reply::err(errors::NOT_INTEGER) };
    match read_list(ctx, &args[1]) {
        Ok(Some(l)) => match range(s, e, l.len()) {
            Some((a, b)) => Reply::Array(l.range(a, b + 1).map(Reply::bulk).collect()),
            None => Reply::Array(vec![]),
        },
        Ok(None) => Reply::Array(vec![]),
        Err(e) => e,
    }
}

fn index_of(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(i) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    match read_list(ctx, &args[1]) {
        Ok(Some(l)) => index_of(i, l.len()).and_then(|i| l.get(i)).map_or(Reply::Nil, Reply::bulk),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(i) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    match get_list(ctx, &args[1]) {
        Ok(Some(l)) => match index_of(i, l.len()) {
            Some(i) if l.set(i, &args[3]) => Reply::Ok,
            _ => Reply::err(errors::OUT_OF_RANGE),
        },
        Ok(None) => Reply::err(errors::NO_SUCH_KEY),
        Err(e) => e,
    }
}

fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return Reply::err(errors::SYNTAX);
    };
    match get_list(ctx, &args[1]) {
        Ok(Some(l)) => match l.iter().position(|v| v[..] == args[3][..]) {
            Some(p) => {
                l.insert(if after { p + 1 } else { p }, &args[4]);
                Reply::Int(l.len() as i64)
            }
            None => Reply::Int(-1),
        },
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(count) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    let removed = match get_list(ctx, &args[1]) {
        Ok(Some(l)) => {
            let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
            l.remove_value(&args[3], limit, count < 0)
        }
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(removed as i64)
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else { return Reply::err(errors::NOT_INTEGER) };
    let removed = match get_list(ctx, &args[1]) {
        Ok(Some(l)) => {
            let len = l.len();
            match range(s, e, len) {
                Some((a, b)) => {
                    l.truncate(b + 1);
                    l.drain_front(a);
                }
                None => l.clear(),
            }
            len - l.len()
        }
        Ok(None) => {
            ctx.dirty(0);
            return Reply::Ok;
        }
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    // Redis counts the removed elements (and still signals WATCH when there are none).
    ctx.dirty(removed as u64);
    Reply::Ok
}

fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Reply::err(errors::SYNTAX);
        }
        let Some(v) = parse_i64(&args[i + 1]) else { return Reply::err(errors::NOT_INTEGER) };
        if eq_ic(&args[i], "rank") {
            if v == 0 {
                return Reply::err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            if v == i64::MIN {
                return Reply::err(errors::LONG_RANGE);
            }
            rank = v;
        } else if eq_ic(&args[i], "count") {
            if v < 0 {
                return Reply::err("ERR COUNT can't be negative");
            }
            count = Some(v as usize);
        } else if eq_ic(&args[i], "maxlen") {
            if v < 0 {
                return Reply::err("ERR MAXLEN can't be negative");
            }
            maxlen = v as usize;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 2;
    }
    let l = match read_list(ctx, &args[1]) {
        Ok(Some(l)) => l,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let len = l.len();
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let skip = rank.unsigned_abs() as usize - 1;
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let target = &args[2][..];
    let hits: Box<dyn Iterator<Item = usize> + '_> = if rank > 0 {
        Box::new(l.iter().take(scan).enumerate().filter(|(_, v)| *v == target).map(|(i, _)| i))
    } else {
        Box::new(l.iter().rev().take(scan).enumerate().filter(|(_, v)| *v == target).map(move |(i, _)| len - 1 - i))
    };
    let found: Vec<usize> = hits.skip(skip).take(want).collect();
    match count {
        Some(_) => Reply::Array(found.into_iter().map(|i| Reply::Int(i as i64)).collect()),
        None => found.first().map_or(Reply::Nil, |&i| Reply::Int(i as i64)),
    }
}

pub(crate) fn side(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "left") {
        Some(true)
    } else if eq_ic(arg, "right") {
        Some(false)
    } else {
        None
    }
}

/// LMOVE's core: a missing source answers nil before the destination's type is checked, as in
/// Redis (`LMOVE nokey wrongtype ...` is nil). Also serves BLMOVE and BRPOPLPUSH.
pub(crate) fn move_one(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> Reply {
    match get_list(ctx, src) {
        Ok(Some(l)) if !l.is_empty() => {}
        Ok(_) => return Reply::Nil,
        Err(e) => return e,
    }
    if let Err(e) = get_list(ctx, dst) {
        return e;
    }
    let v = match get_list(ctx, src) {
        Ok(Some(l)) => {
            if from_left {
                l.pop_front()
            } else {
                l.pop_back()
            }
        }
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let Some(v) = v else { return Reply::Nil };
    // A rotation (the same list) keeps its key, and so its expiry, even when the pop emptied
    // it for a moment (Redis pushes before it deletes an empty source).
    if src != dst {
        drop_if_empty(ctx, src);
    }
    if matches!(get_list(ctx, dst), Ok(None)) {
        ctx.db().set(dst, Value::List(Box::default()), 0);
    }
    if let Ok(Some(d)) = get_list(ctx, dst) {
        if to_left {
            d.push_front(&v);
        } else {
            d.push_back(&v);
        }
    }
    Reply::Bulk(v.into())
}

fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match (side(&args[3]), side(&args[4])) {
        (Some(f), Some(t)) => move_one(ctx, &args[1], &args[2], f, t),
        _ => Reply::err(errors::SYNTAX),
    }
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_one(ctx, &args[1], &args[2], false, true)
}

pub(crate) fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = match lmpop_keys(args) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let rest = &args[2 + keys.len()..];
    let Some(left) = rest.first().and_then(|a| side(a)) else { return Reply::err(errors::SYNTAX) };
    let count = match &rest[1..] {
        [] => 1,
        [c, n] if eq_ic(c, "count") => match parse_i64(n) {
            Some(n) if n > 0 => n as usize,
            _ => return Reply::err("ERR count should be greater than 0"),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    for &k in &keys {
        let popped = match get_list(ctx, &args[k]) {
            Ok(Some(l)) if !l.is_empty() => take(l, left, count),
            Ok(_) => continue,
            Err(e) => return e,
        };
        drop_if_empty(ctx, &args[k]);
        let n = popped.len() as u64;
        ctx.dirty(n);
        ctx.propagate = Some(vec![super::propagate::pop_form(if left { "LPOP" } else { "RPOP" }, &args[k], Some(n))]);
        return Reply::Array(vec![
            Reply::Bulk(args[k].clone()),
            Reply::Array(popped.into_iter().map(|v| Reply::Bulk(v.into())).collect()),
        ]);
    }
    Reply::NilArray
}
