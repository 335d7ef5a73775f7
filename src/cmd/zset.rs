//! Sorted-set commands (t_zset.c in Redis): the core subset.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, parse_f64, parse_i64};
use crate::protocol::Reply;
use crate::storage::{Value, ZSetValue};
use bytes::Bytes;

/// The sorted-set family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, "@write @sortedset @fast", KEY1, Exec::Keyed(zadd)),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, "@write @sortedset @fast", KEY1, Exec::Keyed(zincrby)),
    spec("zrem", -3, WRITE | FAST, "@write @sortedset @fast", KEY1, Exec::Keyed(zrem)),
    spec("zcard", 2, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zcard)),
    spec("zscore", 3, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zscore)),
    spec("zmscore", -3, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zmscore)),
    spec("zrank", 3, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zrank)),
    spec("zrevrank", 3, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zrevrank)),
    spec("zcount", 4, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zcount)),
    spec("zrange", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrange)),
    spec("zrevrange", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrevrange)),
    spec("zrangebyscore", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrangebyscore)),
    spec("zrevrangebyscore", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrevrangebyscore)),
    spec("zpopmin", -2, WRITE | FAST, "@write @sortedset @fast", KEY1, Exec::Keyed(zpopmin)),
    spec("zpopmax", -2, WRITE | FAST, "@write @sortedset @fast", KEY1, Exec::Keyed(zpopmax)),
    spec("zremrangebyrank", 4, WRITE, "@write @sortedset @slow", KEY1, Exec::Keyed(zremrangebyrank)),
    spec("zremrangebyscore", 4, WRITE, "@write @sortedset @slow", KEY1, Exec::Keyed(zremrangebyscore)),
];

/// The sorted set at `key`: Ok(None) when missing, WRONGTYPE for another type.
pub fn get_z<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut ZSetValue>, Reply> {
    let now = ctx.now_ms;
    z_of(ctx.db().get(key, now))
}

/// [`get_z`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
pub fn read_z<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut ZSetValue>, Reply> {
    z_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a ZSet: Ok(None) when missing, WRONGTYPE for another type.
fn z_of(e: Option<&mut crate::storage::Entry>) -> Result<Option<&mut ZSetValue>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(v) => Ok(Some(v)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

fn drop_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) {
    if matches!(get_z(ctx, key), Ok(Some(z)) if z.is_empty()) {
        ctx.db().remove(key);
    }
}

/// ZADD (GEOADD calls it with encoded positions).
pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "nx") {
            nx = true;
        } else if eq_ic(a, "xx") {
            xx = true;
        } else if eq_ic(a, "gt") {
            gt = true;
        } else if eq_ic(a, "lt") {
            lt = true;
        } else if eq_ic(a, "ch") {
            ch = true;
        } else if eq_ic(a, "incr") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Reply::err(errors::SYNTAX);
    }
    if nx && xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && pairs.len() > 2 {
        return Reply::err("ERR INCR option supports a single increment-element pair");
    }
    let mut parsed: smallvec::SmallVec<[(f64, &Bytes); 4]> = smallvec::SmallVec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        match parse_f64(&p[0]) {
            Some(s) => parsed.push((s, &p[1])),
            None => return Reply::err(errors::NOT_FLOAT),
        }
    }
    let (z, created) = if xx {
        match get_z(ctx, &args[1]) {
            Err(e) => return e,
            Ok(None) => return if incr { Reply::Nil } else { Reply::Int(0) },
            Ok(Some(z)) => (z, false),
        }
    } else {
        let now = ctx.now_ms;
        let (e, created) = ctx.db().get_or_create(&args[1], now, || Value::ZSet(ZSetValue::default()));
        match &mut e.value {
            Value::ZSet(z) => (z, created),
            _ => return Reply::err(errors::WRONGTYPE),
        }
    };
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (score, m) in parsed {
        let cur = z.score(m);
        if (nx && cur.is_some()) || (xx && cur.is_none()) {
            continue;
        }
        let new = if incr { cur.unwrap_or(0.0) + score } else { score };
        if new.is_nan() {
            return Reply::err("ERR resulting score is not a number (NaN)");
        }
        if let Some(c) = cur {
            if (gt && new <= c) || (lt && new >= c) {
                continue;
            }
            if new != c {
                z.insert(m, new);
                changed += 1;
            }
        } else {
            z.insert(m, new);
            added += 1;
        }
        incr_result = Some(new);
    }
    // Only a set this call created can be empty here (members are never removed).
    if created && z.is_empty() {
        ctx.db().remove(&args[1]);
    }
    // Redis's dirty += added + updated: an equal score changes nothing.
    ctx.dirty((added + changed) as u64);
    if incr {
        return incr_result.map_or(Reply::Nil, Reply::Double);
    }
    Reply::Int(if ch { added + changed } else { added })
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(by) = parse_f64(&args[2]) else { return Reply::err(errors::NOT_FLOAT) };
    match get_z(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => ctx.db().set(&args[1], Value::ZSet(ZSetValue::default()), 0),
        Ok(Some(_)) => {}
    }
    let Ok(Some(z)) = get_z(ctx, &args[1]) else { return Reply::Nil };
    let cur = z.score(&args[3]);
    let new = cur.unwrap_or(0.0) + by;
    if new.is_nan() {
        drop_if_empty(ctx, &args[1]);
        return Reply::err("ERR resulting score is not a number (NaN)");
    }
    // As ZADD INCR (Redis runs both as one): a score left as it was is no change (no dirty
    // count, event, invalidation or propagation).
    if cur == Some(new) {
        ctx.dirty(0);
    } else {
        z.insert(&args[3], new);
    }
    Reply::Double(new)
}

fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let n = match get_z(ctx, &args[1]) {
        Ok(Some(z)) => args[2..].iter().filter(|m| z.remove(m)).count() as i64,
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(n)
}

fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_z(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| z.len() as i64)),
        Err(e) => e,
    }
}

fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_z(ctx, &args[1]) {
        Ok(z) => z.and_then(|z| z.score(&args[2])).map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_z(ctx, &args[1]) {
        Ok(z) => Reply::Array(
            args[2..].iter().map(|m| z.as_ref().and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double)).collect(),
        ),
        Err(e) => e,
    }
}

fn rank(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    match read_z(ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) => Reply::Int(if rev { (z.len() - 1 - r) as i64 } else { r as i64 }),
            None => Reply::Nil,
        },
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank(ctx, args, false)
}
fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank(ctx, args, true)
}

/// A score bound: value and exclusivity (`(1.5`).
#[derive(Clone, Copy)]
struct Bound {
    v: f64,
    excl: bool,
}

fn parse_bound(a: &[u8]) -> Option<Bound> {
    let (excl, rest) = match a.first() {
        Some(b'(') => (true, &a[1..]),
        _ => (false, a),
    };
    let v = parse_f64(rest)?;
    Some(Bound { v, excl })
}

/// The ascending rank window `lo..hi` of the members scoring within `min..max` (O(log n)).
fn score_ranks(z: &ZSetValue, min: Bound, max: Bound) -> (usize, usize) {
    let lo = z.count_below(min.v, min.excl);
    let hi = z.count_below(max.v, !max.excl);
    (lo, hi.max(lo))
}

/// The members of the ascending rank window `lo..hi`, in reverse with `rev`, after skipping
/// `off` and taking at most `cnt` (None: all) in that direction.
fn window(z: &ZSetValue, lo: usize, hi: usize, rev: bool, off: usize, cnt: Option<usize>) -> Vec<(&[u8], f64)> {
    let n = hi - lo;
    let off = off.min(n);
    let take = cnt.unwrap_or(usize::MAX).min(n - off);
    if rev {
        z.range(hi - off - take, hi - off).rev().collect()
    } else {
        z.range(lo + off, lo + off + take).collect()
    }
}

fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(min), Some(max)) = (parse_bound(&args[2]), parse_bound(&args[3])) else {
        return Reply::err("ERR min or max is not a float");
    };
    match read_z(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| {
            let (lo, hi) = score_ranks(z, min, max);
            (hi - lo) as i64
        })),
        Err(e) => e,
    }
}

fn with_scores(items: Vec<(&[u8], f64)>, scores: bool) -> Reply {
    if scores {
        Reply::Pairs(items.into_iter().map(|(m, s)| (Reply::bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::bulk(m)).collect())
    }
}

/// Index range over `len` (Redis's LRANGE rules).
fn index_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let s = if start < 0 { (len + start).max(0) } else { start };
    let e = if end < 0 { len + end } else { end.min(len - 1) };
    (s <= e && s < len && e >= 0).then_some((s as usize, e as usize))
}

/// How a range is asked for.
#[derive(Clone, Copy, Default)]
struct RangeOpts {
    by_score: bool,
    rev: bool,
    limit: Option<(i64, i64)>,
    scores: bool,
}

/// The shared engine of ZRANGE and its old forms.
fn range_generic(ctx: &mut Ctx<'_>, key: &[u8], a: &[u8], b: &[u8], o: RangeOpts) -> Reply {
    let RangeOpts { by_score, rev, limit, scores } = o;
    let z = match read_z(ctx, key) {
        Ok(Some(z)) => z,
        Ok(None) => {
            if by_score && (parse_bound(a).is_none() || parse_bound(b).is_none()) {
                return Reply::err("ERR min or max is not a float");
            }
            if !by_score && (parse_i64(a).is_none() || parse_i64(b).is_none()) {
                return Reply::err(errors::NOT_INTEGER);
            }
            return Reply::Array(vec![]);
        }
        Err(e) => return e,
    };
    let items: Vec<(&[u8], f64)> = if by_score {
        let (Some(x), Some(y)) = (parse_bound(a), parse_bound(b)) else {
            return Reply::err("ERR min or max is not a float");
        };
        let (min, max) = if rev { (y, x) } else { (x, y) };
        let (lo, hi) = score_ranks(z, min, max);
        match limit {
            Some((off, _)) if off < 0 => Vec::new(),
            Some((off, cnt)) => window(z, lo, hi, rev, off as usize, usize::try_from(cnt).ok()),
            None => window(z, lo, hi, rev, 0, None),
        }
    } else {
        let (Some(s), Some(e)) = (parse_i64(a), parse_i64(b)) else { return Reply::err(errors::NOT_INTEGER) };
        match index_range(s, e, z.len()) {
            Some((s, e)) if rev => window(z, z.len() - 1 - e, z.len() - s, true, 0, None),
            Some((s, e)) => window(z, s, e + 1, false, 0, None),
            None => Vec::new(),
        }
    };
    with_scores(items, scores)
}

fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut by_score, mut by_lex, mut rev, mut scores, mut limit) = (false, false, false, false, None);
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "byscore") {
            by_score = true;
        } else if eq_ic(a, "bylex") {
            by_lex = true;
        } else if eq_ic(a, "rev") {
            rev = true;
        } else if eq_ic(a, "withscores") {
            scores = true;
        } else if eq_ic(a, "limit") && i + 2 < args.len() {
            let (Some(o), Some(c)) = (parse_i64(&args[i + 1]), parse_i64(&args[i + 2])) else {
                return Reply::err(errors::NOT_INTEGER);
            };
            limit = Some((o, c));
            i += 2;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    if by_score && by_lex {
        return Reply::err(errors::SYNTAX);
    }
    if limit.is_some() && !by_score && !by_lex {
        return Reply::err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if by_lex {
        if scores {
            return Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        }
        return super::zset_ops::lex_range(ctx, &args[1], &args[2], &args[3], rev, limit);
    }
    range_generic(ctx, &args[1], &args[2], &args[3], RangeOpts { by_score, rev, limit, scores })
}

/// The members ZRANGE would return for these arguments (for ZRANGESTORE).
pub fn zrange_members(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Vec<Vec<u8>>, Reply> {
    if args[4..].iter().any(|a| eq_ic(a, "withscores")) {
        return Err(Reply::err(errors::SYNTAX));
    }
    match zrange(ctx, args) {
        Reply::Array(v) => {
            Ok(v.into_iter().filter_map(|r| if let Reply::Bulk(b) = r { Some(b.to_vec()) } else { None }).collect())
        }
        e @ Reply::Error(_) => Err(e),
        _ => Ok(Vec::new()),
    }
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let scores = match args.len() {
        4 => false,
        5 if eq_ic(&args[4], "withscores") => true,
        _ => return Reply::err(errors::SYNTAX),
    };
    range_generic(ctx, &args[1], &args[2], &args[3], RangeOpts { rev: true, scores, ..Default::default() })
}

fn byscore_old(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    let (mut scores, mut limit) = (false, None);
    let mut i = 4;
    while i < args.len() {
        if eq_ic(&args[i], "withscores") {
            scores = true;
            i += 1;
        } else if eq_ic(&args[i], "limit") && i + 2 < args.len() {
            let (Some(o), Some(c)) = (parse_i64(&args[i + 1]), parse_i64(&args[i + 2])) else {
                return Reply::err(errors::NOT_INTEGER);
            };
            limit = Some((o, c));
            i += 3;
        } else {
            return Reply::err(errors::SYNTAX);
        }
    }
    range_generic(ctx, &args[1], &args[2], &args[3], RangeOpts { by_score: true, rev, limit, scores })
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    byscore_old(ctx, args, false)
}
fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    byscore_old(ctx, args, true)
}

fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    let popped: Vec<(Vec<u8>, f64)> = match get_z(ctx, &args[1]) {
        Ok(Some(z)) => {
            let n = count.unwrap_or(1).min(z.len());
            let items: Vec<(Vec<u8>, f64)> = if max {
                z.iter().rev().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
            } else {
                z.iter().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
            };
            for (m, _) in &items {
                z.remove(m);
            }
            items
        }
        Ok(None) => Vec::new(),
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    ctx.dirty(popped.len() as u64);
    match count {
        None => Reply::Array(
            popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(Bytes::from(m)), Reply::Double(s)]).collect(),
        ),
        Some(_) => {
            Reply::Pairs(popped.into_iter().map(|(m, s)| (Reply::Bulk(Bytes::from(m)), Reply::Double(s))).collect())
        }
    }
}

fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, false)
}
fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, true)
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else { return Reply::err(errors::NOT_INTEGER) };
    let n = match get_z(ctx, &args[1]) {
        Ok(Some(z)) => match index_range(s, e, z.len()) {
            Some((s, e)) => {
                let victims: Vec<Vec<u8>> = z.range(s, e + 1).map(|(m, _)| m.to_vec()).collect();
                victims.iter().filter(|m| z.remove(m)).count() as i64
            }
            None => 0,
        },
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(n)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(min), Some(max)) = (parse_bound(&args[2]), parse_bound(&args[3])) else {
        return Reply::err("ERR min or max is not a float");
    };
    let n = match get_z(ctx, &args[1]) {
        Ok(Some(z)) => {
            let (lo, hi) = score_ranks(z, min, max);
            let victims: Vec<Vec<u8>> = z.range(lo, hi).map(|(m, _)| m.to_vec()).collect();
            victims.iter().filter(|m| z.remove(m)).count() as i64
        }
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(n)
}
