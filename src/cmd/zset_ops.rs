//! Sorted sets, continued: lexicographic ranges (found by rank, as Redis finds them, see
//! `lex_start`), ZRANDMEMBER, ZSCAN, and the set algebra
//! (ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD). Plain sets are accepted as inputs
//! with score 1, as in Redis.

use super::ctx::Ctx;
use super::errors;
use super::hash::{parse_scan_args, scan_hash};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::{eq_ic, glob_match, parse_f64, parse_i64, scan_page};
use super::zset::{get_z, read_z};
use crate::protocol::Reply;
use crate::storage::{Value, ZSetValue};
use bytes::Bytes;

fn numkeys_at(args: &[Bytes], at: usize, name: &str) -> Result<Vec<usize>, Reply> {
    super::util::numkeys_at(args, at, &format!("ERR at least 1 input key is needed for '{name}' command"))
}

fn keys_zunion(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    numkeys_at(a, 1, "zunion")
}
fn keys_zinter(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    numkeys_at(a, 1, "zinter")
}
fn keys_zdiff(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    numkeys_at(a, 1, "zdiff")
}
fn keys_zintercard(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    numkeys_at(a, 1, "zintercard")
}
fn store_keys(a: &[Bytes], name: &str) -> Result<Vec<usize>, Reply> {
    let mut k = vec![1];
    k.extend(numkeys_at(a, 2, name)?);
    Ok(k)
}
fn keys_zunionstore(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    store_keys(a, "zunionstore")
}
fn keys_zinterstore(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    store_keys(a, "zinterstore")
}
fn keys_zdiffstore(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    store_keys(a, "zdiffstore")
}
fn keys_zmpop(a: &[Bytes]) -> Result<Vec<usize>, Reply> {
    super::blocking::mpop_keys(a, 1)
}

/// The second sorted-set table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zrangebylex", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrangebylex)),
    spec("zrevrangebylex", -4, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrevrangebylex)),
    spec("zlexcount", 4, READONLY | FAST, "@read @sortedset @fast", KEY1, Exec::Keyed(zlexcount)),
    spec("zremrangebylex", 4, WRITE, "@write @sortedset @slow", KEY1, Exec::Keyed(zremrangebylex)),
    spec("zrandmember", -2, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zrandmember)),
    spec("zscan", -3, READONLY, "@read @sortedset @slow", KEY1, Exec::Keyed(zscan)),
    spec("zunion", -3, READONLY, "@read @sortedset @slow", Keys::Custom { legacy: (0, 0, 0), find: keys_zunion }, Exec::Keyed(zunion)),
    spec("zinter", -3, READONLY, "@read @sortedset @slow", Keys::Custom { legacy: (0, 0, 0), find: keys_zinter }, Exec::Keyed(zinter)),
    spec("zdiff", -3, READONLY, "@read @sortedset @slow", Keys::Custom { legacy: (0, 0, 0), find: keys_zdiff }, Exec::Keyed(zdiff)),
    spec("zintercard", -3, READONLY, "@read @sortedset @slow", Keys::Custom { legacy: (0, 0, 0), find: keys_zintercard }, Exec::Keyed(zintercard)),
    spec("zunionstore", -4, WRITE | DENYOOM, "@write @sortedset @slow", Keys::Custom { legacy: (1, 1, 1), find: keys_zunionstore }, Exec::Keyed(zunionstore)),
    spec("zinterstore", -4, WRITE | DENYOOM, "@write @sortedset @slow", Keys::Custom { legacy: (1, 1, 1), find: keys_zinterstore }, Exec::Keyed(zinterstore)),
    spec("zrangestore", -5, WRITE | DENYOOM, "@write @sortedset @slow", super::spec::keys(1, 2, 1), Exec::Keyed(zrangestore)),
    spec("zmpop", -4, WRITE, "@write @sortedset @slow", Keys::Custom { legacy: (0, 0, 0), find: keys_zmpop }, Exec::Keyed(zmpop)),
    spec("zdiffstore", -4, WRITE | DENYOOM, "@write @sortedset @slow", Keys::Custom { legacy: (1, 1, 1), find: keys_zdiffstore }, Exec::Keyed(zdiffstore)),
];

// ---- lexicographic ranges ------------------------------------------------------------------

/// A lex bound: `-`, `+`, `[x` (inclusive), `(x` (exclusive).
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn parse_lex(a: &[u8]) -> Option<Lex> {
    match a.first()? {
        b'-' if a.len() == 1 => Some(Lex::Min),
        b'+' if a.len() == 1 => Some(Lex::Max),
        b'[' => Some(Lex::Incl(a[1..].to_vec())),
        b'(' => Some(Lex::Excl(a[1..].to_vec())),
        _ => None,
    }
}

fn above_min(m: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Incl(x) => m >= &x[..],
        Lex::Excl(x) => m > &x[..],
    }
}

fn below_max(m: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Max => true,
        Lex::Min => false,
        Lex::Incl(x) => m <= &x[..],
        Lex::Excl(x) => m < &x[..],
    }
}

const BAD_LEX: &str = "ERR min or max not valid string range item";

/// `-` < every string < `+` (Redis's `sdscmplex` with its min/max strings).
fn cmp_lex(a: &Lex, b: &Lex) -> std::cmp::Ordering {
    let rank = |l: &Lex| match l {
        Lex::Min => 0,
        Lex::Incl(_) | Lex::Excl(_) => 1,
        Lex::Max => 2,
    };
    match (a, b) {
        (Lex::Incl(x) | Lex::Excl(x), Lex::Incl(y) | Lex::Excl(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Where a lex range starts, as Redis finds it (`zslIsInLexRange` then the first member >= min,
/// by a descent that assumes members are ordered, i.e. equal scores): None when empty.
fn lex_start(z: &ZSetValue, min: &Lex, max: &Lex) -> Option<usize> {
    let c = cmp_lex(min, max);
    if c.is_gt() || (c.is_eq() && (matches!(min, Lex::Excl(_)) || matches!(max, Lex::Excl(_)))) {
        return None;
    }
    let (first, last) = (z.range(0, 1).next()?, z.range(z.len() - 1, z.len()).next()?);
    if !above_min(last.0, min) || !below_max(first.0, max) {
        return None;
    }
    Some(z.partition_point(|m| !above_min(m, min)))
}

/// The rank after the last member <= max (for reverse ranges and counts).
fn lex_end(z: &ZSetValue, max: &Lex) -> usize {
    if z.encoding() == "listpack" {
        z.len() - z.iter().rev().position(|(m, _)| below_max(m, max)).unwrap_or(z.len())
    } else {
        z.partition_point(|m| below_max(m, max))
    }
}

/// Members within a lex range (ascending, or descending with `rev`), after LIMIT.
pub fn lex_range(ctx: &mut Ctx<'_>, key: &[u8], a: &[u8], b: &[u8], rev: bool, limit: Option<(i64, i64)>) -> Reply {
    let (Some(x), Some(y)) = (parse_lex(a), parse_lex(b)) else { return Reply::err(BAD_LEX) };
    let (min, max) = if rev { (y, x) } else { (x, y) };
    let z = match read_z(ctx, key) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(vec![]),
        Err(e) => return e,
    };
    let (off, cnt) = match limit {
        Some((off, _)) if off < 0 => return Reply::Array(vec![]),
        Some((off, cnt)) => (off as usize, usize::try_from(cnt).unwrap_or(usize::MAX)),
        None => (0, usize::MAX),
    };
    let Some(lo) = lex_start(z, &min, &max) else { return Reply::Array(vec![]) };
    // As Redis: the first member in range must be within both bounds; then skip `off` members
    // without checking them and take members while they stay within the far bound.
    let within = |r: usize| z.range(r, r + 1).next().is_some_and(|(m, _)| above_min(m, &min) && below_max(m, &max));
    let items: Vec<Reply> = if rev {
        let hi = lex_end(z, &max);
        if hi == 0 || !within(hi - 1) {
            return Reply::Array(vec![]);
        }
        z.range(0, hi.saturating_sub(off))
            .rev()
            .take_while(|(m, _)| above_min(m, &min))
            .take(cnt)
            .map(|(m, _)| Reply::bulk(m))
            .collect()
    } else {
        if !within(lo) {
            return Reply::Array(vec![]);
        }
        z.range(lo.saturating_add(off), usize::MAX)
            .take_while(|(m, _)| below_max(m, &max))
            .take(cnt)
            .map(|(m, _)| Reply::bulk(m))
            .collect()
    };
    Reply::Array(items)
}

fn bylex_old(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    let limit = match &args[4..] {
        [] => None,
        [l, o, c] if eq_ic(l, "limit") => match (parse_i64(o), parse_i64(c)) {
            (Some(o), Some(c)) => Some((o, c)),
            _ => return Reply::err(errors::NOT_INTEGER),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    lex_range(ctx, &args[1], &args[2], &args[3], rev, limit)
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bylex_old(ctx, args, false)
}
fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bylex_old(ctx, args, true)
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(min), Some(max)) = (parse_lex(&args[2]), parse_lex(&args[3])) else { return Reply::err(BAD_LEX) };
    match read_z(ctx, &args[1]) {
        Ok(Some(z)) => Reply::Int(match lex_start(z, &min, &max) {
            None => 0,
            Some(lo) if z.encoding() == "listpack" => {
                z.range(lo, usize::MAX).take_while(|(m, _)| below_max(m, &max)).count() as i64
            }
            Some(lo) => lex_end(z, &max).saturating_sub(lo) as i64,
        }),
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(min), Some(max)) = (parse_lex(&args[2]), parse_lex(&args[3])) else { return Reply::err(BAD_LEX) };
    let n = match get_z(ctx, &args[1]) {
        Ok(Some(z)) => {
            let victims: Vec<Vec<u8>> = match lex_start(z, &min, &max) {
                Some(lo) => {
                    z.range(lo, usize::MAX).take_while(|(m, _)| below_max(m, &max)).map(|(m, _)| m.to_vec()).collect()
                }
                None => Vec::new(),
            };
            let n = victims.iter().filter(|m| z.remove(m)).count();
            let empty = z.is_empty();
            if empty {
                ctx.db().remove(&args[1]);
            }
            n as i64
        }
        Ok(None) => 0,
        Err(e) => return e,
    };
    Reply::Int(n)
}

// ---- random members and scanning -----------------------------------------------------------

fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (count, scores) = match args.len() {
        2 => (None, false),
        3 | 4 => {
            if args.len() == 4 && !eq_ic(&args[3], "withscores") {
                return Reply::err(errors::SYNTAX);
            }
            match parse_i64(&args[2]) {
                Some(i64::MIN) => return Reply::err(errors::LONG_RANGE),
                Some(n) if n > -(i64::MAX / 2) => (Some(n), args.len() == 4),
                Some(_) => return Reply::err("ERR value is out of range"),
                None => return Reply::err(errors::NOT_INTEGER),
            }
        }
        _ => return Reply::err(errors::SYNTAX),
    };
    let z = match read_z(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let Some(count) = count else {
        let i = fastrand::usize(..z.len());
        return z.range(i, i + 1).next().map_or(Reply::Nil, |(m, _)| Reply::bulk(m));
    };
    let all: Vec<(&[u8], f64)> = z.iter().collect();
    if count < 0 {
        let avg = all.iter().map(|(m, _)| m.len() + if scores { 20 } else { 0 }).sum::<usize>() / all.len().max(1);
        if crate::memory::obuf::reply_overflows(count.unsigned_abs(), avg as u64) {
            return Reply::err(crate::memory::obuf::OVER_LIMIT);
        }
    }
    let picked: Vec<(&[u8], f64)> = if count >= 0 {
        let mut idx: Vec<usize> = (0..all.len()).collect();
        fastrand::shuffle(&mut idx);
        idx.truncate(count as usize);
        idx.into_iter().map(|i| all[i]).collect()
    } else {
        (0..count.unsigned_abs()).map(|_| all[fastrand::usize(..all.len())]).collect()
    };
    if scores {
        Reply::Pairs(picked.into_iter().map(|(m, s)| (Reply::bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(picked.into_iter().map(|(m, _)| Reply::bulk(m)).collect())
    }
}

/// ZSCAN: small sorted sets return everything with cursor 0; big ones use the stable
/// hash-ordered cursor of HSCAN.
fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (cursor, pat, count) = match parse_scan_args(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let z = match read_z(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(vec![])]),
        Err(e) => return e,
    };
    let keep = |m: &[u8]| pat.as_ref().is_none_or(|p| glob_match(p, m, false));
    let (next, items): (u64, Vec<(&[u8], f64)>) = if z.encoding() == "listpack" {
        (0, z.iter().collect())
    } else {
        let above = z.iter().map(|(m, s)| (scan_hash(m), (m, s))).filter(|(h, _)| *h > cursor).collect();
        scan_page(above, count, z.len())
    };
    let mut out = Vec::new();
    for (m, s) in items.into_iter().filter(|(m, _)| keep(m)) {
        out.push(Reply::bulk(m));
        out.push(Reply::bulk(crate::protocol::reply::format_double(s).as_bytes()));
    }
    Reply::Array(vec![Reply::bulk(next.to_string().as_bytes()), Reply::Array(out)])
}

// ---- set algebra ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// (member, score) pairs of one input.
type Scored = Vec<(Vec<u8>, f64)>;

/// Reads a sorted set or a plain set (members score 1) as (member, score) pairs.
/// A read lookup: counted, `keymiss` (see `Ctx::read_entry`).
fn load(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Scored>, Reply> {
    match ctx.read_entry(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z.iter().map(|(m, s)| (m.to_vec(), s)).collect())),
            Value::Set(s) => Ok(Some(s.members().into_iter().map(|m| (m, 1.0)).collect())),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

fn aggregate(a: f64, b: f64, agg: Agg) -> f64 {
    let v = match agg {
        Agg::Sum => a + b,
        Agg::Min => a.min(b),
        Agg::Max => a.max(b),
    };
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Parses keys and options after `numkeys` (at `at`) and computes the result set.
fn algebra(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    at: usize,
    op: Op,
    name: &str,
    allow_scores: bool,
) -> Result<(ZSetValue, bool), Reply> {
    let key_idx = numkeys_at(args, at, name)?;
    let n = key_idx.len();
    let mut weights = vec![1.0; n];
    let mut agg = Agg::Sum;
    let mut withscores = false;
    let mut i = at + 1 + n;
    while i < args.len() {
        let a = &args[i];
        if op != Op::Diff && eq_ic(a, "weights") && args.len() - i > n {
            for (j, w) in weights.iter_mut().enumerate() {
                *w = parse_f64(&args[i + 1 + j]).ok_or(Reply::err("ERR weight value is not a float"))?;
            }
            i += n + 1;
        } else if op != Op::Diff && eq_ic(a, "aggregate") && i + 1 < args.len() {
            let v = &args[i + 1];
            agg = if eq_ic(v, "sum") {
                Agg::Sum
            } else if eq_ic(v, "min") {
                Agg::Min
            } else if eq_ic(v, "max") {
                Agg::Max
            } else {
                return Err(Reply::err(errors::SYNTAX));
            };
            i += 2;
        } else if allow_scores && eq_ic(a, "withscores") {
            withscores = true;
            i += 1;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
    }
    let mut inputs = Vec::with_capacity(n);
    for &k in &key_idx {
        inputs.push(load(ctx, &args[k])?);
    }
    let mut out = ZSetValue::default();
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    match op {
        Op::Union => {
            for (set, w) in inputs.iter().zip(&weights) {
                for (m, s) in set.iter().flatten() {
                    let v = weighted(*s, *w);
                    let nv = match out.score(m) {
                        Some(cur) => aggregate(cur, v, agg),
                        None => v,
                    };
                    out.insert(m, nv);
                }
            }
        }
        Op::Inter => {
            if inputs.iter().all(|s| s.is_some()) {
                let maps: Vec<hashbrown::HashMap<&[u8], f64>> =
                    inputs.iter().flatten().map(|s| s.iter().map(|(m, v)| (&m[..], *v)).collect()).collect();
                if let Some(first) = inputs[0].as_ref() {
                    'members: for (m, s) in first {
                        let mut acc = weighted(*s, weights[0]);
                        for (j, map) in maps.iter().enumerate().skip(1) {
                            match map.get(&m[..]) {
                                Some(v) => acc = aggregate(acc, weighted(*v, weights[j]), agg),
                                None => continue 'members,
                            }
                        }
                        out.insert(m, acc);
                    }
                }
            }
        }
        Op::Diff => {
            if let Some(first) = inputs[0].as_ref() {
                let rest: Vec<hashbrown::HashSet<&[u8]>> =
                    inputs[1..].iter().flatten().map(|s| s.iter().map(|(m, _)| &m[..]).collect()).collect();
                for (m, s) in first {
                    if !rest.iter().any(|r| r.contains(&m[..])) {
                        out.insert(m, *s);
                    }
                }
            }
        }
    }
    Ok((out, withscores))
}

fn reply_of(z: &ZSetValue, scores: bool) -> Reply {
    if scores {
        Reply::Pairs(z.iter().map(|(m, s)| (Reply::bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(z.iter().map(|(m, _)| Reply::bulk(m)).collect())
    }
}

fn read_op(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, name: &str) -> Reply {
    match algebra(ctx, args, 1, op, name, true) {
        Ok((z, scores)) => reply_of(&z, scores),
        Err(e) => e,
    }
}

fn store_op(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, name: &str) -> Reply {
    match algebra(ctx, args, 2, op, name, false) {
        Ok((z, _)) => {
            let n = z.len() as i64;
            ctx.db().remove(&args[1]);
            if n > 0 {
                ctx.db().set(&args[1], Value::ZSet(z), 0);
            }
            Reply::Int(n)
        }
        Err(e) => e,
    }
}

fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Union, "zunion")
}
fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Inter, "zinter")
}
fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_op(ctx, args, Op::Diff, "zdiff")
}
fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Union, "zunionstore")
}
fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Inter, "zinterstore")
}
fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store_op(ctx, args, Op::Diff, "zdiffstore")
}

fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = match numkeys_at(args, 1, "zintercard") {
        Ok(k) => k,
        Err(e) => return e,
    };
    let rest = &args[2 + keys.len()..];
    let limit = match rest {
        [] => 0,
        [l, v] if eq_ic(l, "limit") => match parse_i64(v) {
            Some(n) if n >= 0 => n as usize,
            _ => return Reply::err("ERR LIMIT can't be negative"),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    let sub: Vec<Bytes> = args[..2 + keys.len()].to_vec();
    match algebra(ctx, &sub, 1, Op::Inter, "zintercard", false) {
        Ok((z, _)) => Reply::Int(if limit > 0 { z.len().min(limit) } else { z.len() } as i64),
        Err(e) => e,
    }
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut zr: Vec<Bytes> = vec![Bytes::from_static(b"zrange"), args[2].clone(), args[3].clone(), args[4].clone()];
    zr.extend(args[5..].iter().cloned());
    let members = match super::zset::zrange_members(ctx, &zr) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let scores: Vec<(Vec<u8>, f64)> = match get_z(ctx, &args[2]) {
        Ok(Some(z)) => members.into_iter().filter_map(|m| z.score(&m).map(|s| (m, s))).collect(),
        Ok(None) => Vec::new(),
        Err(e) => return e,
    };
    let mut out = ZSetValue::default();
    for (m, s) in &scores {
        out.insert(m, *s);
    }
    let n = out.len() as i64;
    ctx.db().remove(&args[1]);
    if n > 0 {
        ctx.db().set(&args[1], Value::ZSet(out), 0);
    }
    Reply::Int(n)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
pub(crate) fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = match keys_zmpop(args) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let rest = &args[2 + keys.len()..];
    let max = match rest.first() {
        Some(w) if eq_ic(w, "min") => false,
        Some(w) if eq_ic(w, "max") => true,
        _ => return Reply::err(errors::SYNTAX),
    };
    let count = match &rest[1..] {
        [] => 1,
        [c, n] if eq_ic(c, "count") => match parse_i64(n) {
            Some(n) if n > 0 => n as usize,
            _ => return Reply::err("ERR count should be greater than 0"),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    for &k in &keys {
        let popped: Vec<(Vec<u8>, f64)> = match get_z(ctx, &args[k]) {
            Ok(Some(z)) if !z.is_empty() => {
                let n = count.min(z.len());
                let items: Vec<(Vec<u8>, f64)> = if max {
                    z.iter().rev().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
                } else {
                    z.iter().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
                };
                for (m, _) in &items {
                    z.remove(m);
                }
                if z.is_empty() {
                    ctx.db().remove(&args[k]);
                }
                items
            }
            Ok(_) => continue,
            Err(e) => return e,
        };
        let n = popped.len() as u64;
        ctx.dirty(n);
        let verb = if max { "ZPOPMAX" } else { "ZPOPMIN" };
        ctx.propagate = Some(vec![super::propagate::pop_form(verb, &args[k], Some(n))]);
        let pairs = popped
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(Bytes::from(m)), Reply::Double(s)]))
            .collect();
        return Reply::Array(vec![Reply::Bulk(args[k].clone()), Reply::Array(pairs)]);
    }
    Reply::NilArray
}
