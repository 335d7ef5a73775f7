//! Hash commands (t_hash.c in Redis).

use super::ctx::Ctx;
use super::errors;
use super::long_double::LongDouble;
use super::spec::{flags::*, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, glob_match, parse_i64, scan_page};
use crate::protocol::Reply;
use crate::storage::{HashValue, Value};
use bytes::Bytes;

/// The hash family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hset)),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hsetnx)),
    spec("hmset", -4, WRITE | DENYOOM | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hmset)),
    spec("hget", 3, READONLY | FAST, "@read @hash @fast", KEY1, Exec::Keyed(hget)),
    spec("hmget", -3, READONLY | FAST, "@read @hash @fast", KEY1, Exec::Keyed(hmget)),
    spec("hdel", -3, WRITE | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hdel)),
    spec("hlen", 2, READONLY | FAST, "@read @hash @fast", KEY1, Exec::Keyed(hlen)),
    spec("hstrlen", 3, READONLY | FAST, "@read @hash @fast", KEY1, Exec::Keyed(hstrlen)),
    spec("hexists", 3, READONLY | FAST, "@read @hash @fast", KEY1, Exec::Keyed(hexists)),
    spec("hkeys", 2, READONLY, "@read @hash @slow", KEY1, Exec::Keyed(hkeys)),
    spec("hvals", 2, READONLY, "@read @hash @slow", KEY1, Exec::Keyed(hvals)),
    spec("hgetall", 2, READONLY, "@read @hash @slow", KEY1, Exec::Keyed(hgetall)),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hincrby)),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, "@write @hash @fast", KEY1, Exec::Keyed(hincrbyfloat)),
    spec("hrandfield", -2, READONLY, "@read @hash @slow", KEY1, Exec::Keyed(hrandfield)),
    spec("hscan", -3, READONLY, "@read @hash @slow", KEY1, Exec::Keyed(hscan)),
];

/// The hash at `key`: Ok(None) when missing, Err(WRONGTYPE) for another type.
fn get_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut HashValue>, Reply> {
    let now = ctx.now_ms;
    hash_of(ctx.db().get(key, now))
}

/// [`get_hash`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
fn read_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut HashValue>, Reply> {
    hash_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a Hash: Ok(None) when missing, WRONGTYPE for another type.
fn hash_of(e: Option<&mut crate::storage::Entry>) -> Result<Option<&mut HashValue>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Hash(v) => Ok(Some(v)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

/// The hash at `key`, created empty when missing.
fn hash_for_write<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<&'a mut HashValue, Reply> {
    let now = ctx.now_ms;
    match &mut ctx.db().get_or_create(key, now, || Value::Hash(HashValue::default())).0.value {
        Value::Hash(h) => Ok(h),
        _ => Err(Reply::err(errors::WRONGTYPE)),
    }
}

/// Deletes the key if its hash became empty (a key never holds an empty hash).
fn drop_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) {
    if matches!(get_hash(ctx, key), Ok(Some(h)) if h.is_empty()) {
        ctx.db().remove(key);
    }
}

fn set_pairs(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> Result<i64, Reply> {
    if args.len() % 2 != 0 {
        return Err(Reply::error(errors::wrong_arity(name)));
    }
    let h = hash_for_write(ctx, &args[1])?;
    Ok(args[2..].chunks(2).filter(|p| h.set(&p[0], &p[1])).count() as i64)
}

fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hset").map_or_else(|e| e, Reply::Int)
}

fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hmset").map_or_else(|e| e, |_| Reply::Ok)
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match get_hash(ctx, &args[1]) {
        Err(e) => return e,
        Ok(Some(h)) if h.get(&args[2]).is_some() => return Reply::Int(0),
        _ => {}
    }
    match hash_for_write(ctx, &args[1]) {
        Ok(h) => {
            h.set(&args[2], &args[3]);
            Reply::Int(1)
        }
        Err(e) => e,
    }
}

fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => h.get(&args[2]).map_or(Reply::Nil, Reply::bulk),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => Reply::Array(args[2..].iter().map(|f| h.get(f).map_or(Reply::Nil, Reply::bulk)).collect()),
        Ok(None) => Reply::Array(args[2..].iter().map(|_| Reply::Nil).collect()),
        Err(e) => e,
    }
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let n = match get_hash(ctx, &args[1]) {
        Ok(Some(h)) => args[2..].iter().filter(|f| h.remove(f)).count() as i64,
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(n)
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.map_or(0, |h| h.len() as i64)),
        Err(e) => e,
    }
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.and_then(|h| h.get(&args[2]).map(|v| v.len() as i64)).unwrap_or(0)),
        Err(e) => e,
    }
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.is_some_and(|h| h.get(&args[2]).is_some()) as i64),
        Err(e) => e,
    }
}

fn all_of(ctx: &mut Ctx<'_>, key: &[u8], f: impl Fn(&[u8], &[u8]) -> Vec<Reply>) -> Result<Vec<Reply>, Reply> {
    Ok(match read_hash(ctx, key)? {
        Some(h) => h.iter().flat_map(|(k, v)| f(k, v)).collect(),
        None => Vec::new(),
    })
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    all_of(ctx, &args[1], |k, _| vec![Reply::bulk(k)]).map_or_else(|e| e, Reply::Array)
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    all_of(ctx, &args[1], |_, v| vec![Reply::bulk(v)]).map_or_else(|e| e, Reply::Array)
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => Reply::Map(h.iter().map(|(k, v)| (Reply::bulk(k), Reply::bulk(v))).collect()),
        Ok(None) => Reply::Map(Vec::new()),
        Err(e) => e,
    }
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(by) = parse_i64(&args[3]) else { return Reply::err(errors::NOT_INTEGER) };
    let h = match hash_for_write(ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let cur = match h.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                let r = Reply::err("ERR hash value is not an integer");
                drop_if_empty(ctx, &args[1]);
                return r;
            }
        },
    };
    let Some(new) = cur.checked_add(by) else {
        drop_if_empty(ctx, &args[1]);
        return Reply::err(errors::OVERFLOW);
    };
    h.set(&args[2], itoa::Buffer::new().format(new).as_bytes());
    Reply::Int(new)
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(by) = LongDouble::parse(&args[3]) else { return Reply::err(errors::NOT_FLOAT) };
    if !by.is_finite() {
        return Reply::err("ERR value is NaN or Infinity");
    }
    let h = match hash_for_write(ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let cur = match h.get(&args[2]) {
        None => LongDouble::from_i64(0),
        Some(v) => match LongDouble::parse(v) {
            Some(n) => n,
            None => {
                drop_if_empty(ctx, &args[1]);
                return Reply::err("ERR hash value is not a float");
            }
        },
    };
    let new = cur.add(&by);
    if !new.is_finite() {
        drop_if_empty(ctx, &args[1]);
        return Reply::err("ERR increment would produce NaN or Infinity");
    }
    let text = new.to_human();
    h.set(&args[2], text.as_bytes());
    Reply::Bulk(Bytes::from(text))
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (count, with_values) = match args.len() {
        2 => (None, false),
        3 | 4 => {
            if args.len() == 4 && !eq_ic(&args[3], "withvalues") {
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
    let h = match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
    let Some(count) = count else {
        let (f, _) = pairs[fastrand::usize(..pairs.len())];
        return Reply::bulk(f);
    };
    if count < 0 {
        let avg =
            pairs.iter().map(|(f, v)| f.len() + if with_values { v.len() } else { 0 }).sum::<usize>() / pairs.len();
        if crate::memory::obuf::reply_overflows(count.unsigned_abs(), avg as u64) {
            return Reply::err(crate::memory::obuf::OVER_LIMIT);
        }
    }
    let picked: Vec<(&[u8], &[u8])> = if count >= 0 {
        let n = (count as usize).min(pairs.len());
        let mut idx: Vec<usize> = (0..pairs.len()).collect();
        fastrand::shuffle(&mut idx);
        idx.truncate(n);
        idx.into_iter().map(|i| pairs[i]).collect()
    } else {
        (0..count.unsigned_abs()).map(|_| pairs[fastrand::usize(..pairs.len())]).collect()
    };
    if with_values {
        Reply::Pairs(picked.into_iter().map(|(f, v)| (Reply::bulk(f), Reply::bulk(v))).collect())
    } else {
        Reply::Array(picked.into_iter().map(|(f, _)| Reply::bulk(f)).collect())
    }
}

/// A fixed 64-bit hash (FNV-1a) giving table-encoded collections a stable scan order; never 0.
pub fn scan_hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= c as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// Parses `cursor [MATCH pattern] [COUNT count]` (HSCAN/SSCAN/ZSCAN).
pub fn parse_scan_args(args: &[Bytes]) -> Result<(u64, Option<Bytes>, usize), Reply> {
    let cursor = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Reply::err("ERR invalid cursor"))?;
    let (mut pat, mut count) = (None, 10usize);
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(Reply::err(errors::SYNTAX));
        }
        if eq_ic(&args[i], "match") {
            pat = Some(args[i + 1].clone());
        } else if eq_ic(&args[i], "count") {
            match parse_i64(&args[i + 1]) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return Err(Reply::err(errors::SYNTAX)),
                None => return Err(Reply::err(errors::NOT_INTEGER)),
            }
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 2;
    }
    Ok((cursor, pat, count))
}

/// HSCAN: small hashes return everything with cursor 0, like Redis. Table-encoded hashes are
/// walked in the order of a fixed hash of each field: a call returns the fields whose hash is
/// above the cursor, at least COUNT (and at least 1/64 of the hash, to keep a full scan linear),
/// never splitting equal hashes, and the next cursor is the last hash returned. Every field
/// present for the whole scan is returned at least once, whatever happens to the table.
fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (cursor, pat, count) = match parse_scan_args(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let h = match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(vec![])]),
        Err(e) => return e,
    };
    let keep = |f: &[u8]| pat.as_ref().is_none_or(|p| glob_match(p, f, false));
    type Items<'a> = Vec<(&'a [u8], &'a [u8])>;
    let (next, items): (u64, Items<'_>) = match h {
        HashValue::Listpack(_) => (0, h.iter().filter(|(f, _)| keep(f)).collect()),
        HashValue::Table(_) => {
            let above = h.iter().map(|(f, v)| (scan_hash(f), (f, v))).filter(|(x, _)| *x > cursor).collect();
            let (next, page) = scan_page(above, count, h.len());
            (next, page.into_iter().filter(|(f, _)| keep(f)).collect())
        }
    };
    let mut out = Vec::with_capacity(items.len() * 2);
    for (f, v) in items {
        out.push(Reply::bulk(f));
        out.push(Reply::bulk(v));
    }
    Reply::Array(vec![Reply::bulk(next.to_string().as_bytes()), Reply::Array(out)])
}
