//! Set commands (t_set.c in Redis). Multi-key commands declare all their keys, so the runtime
//! runs them atomically even when the keys live on different shards.

use super::ctx::Ctx;
use super::errors;
use super::hash::parse_scan_args;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::{eq_ic, glob_match, numkeys_at, parse_i64};
use crate::protocol::Reply;
use crate::storage::{SetValue, Value};
use bytes::Bytes;

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: keys are 2..2+numkeys.
fn sintercard_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    numkeys_at(args, 1, "ERR numkeys should be greater than 0")
}

/// The set family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, "@write @set @fast", KEY1, Exec::Keyed(sadd)),
    spec("srem", -3, WRITE | FAST, "@write @set @fast", KEY1, Exec::Keyed(srem)),
    spec("smembers", 2, READONLY, "@read @set @slow", KEY1, Exec::Keyed(smembers)),
    spec("sismember", 3, READONLY | FAST, "@read @set @fast", KEY1, Exec::Keyed(sismember)),
    spec("smismember", -3, READONLY | FAST, "@read @set @fast", KEY1, Exec::Keyed(smismember)),
    spec("scard", 2, READONLY | FAST, "@read @set @fast", KEY1, Exec::Keyed(scard)),
    spec("spop", -2, WRITE | FAST, "@write @set @fast", KEY1, Exec::Keyed(spop)),
    spec("srandmember", -2, READONLY, "@read @set @slow", KEY1, Exec::Keyed(srandmember)),
    spec("smove", 4, WRITE | FAST, "@write @set @fast", keys(1, 2, 1), Exec::Keyed(smove)),
    spec("sinter", -2, READONLY, "@read @set @slow", keys(1, -1, 1), Exec::Keyed(sinter)),
    spec("sintercard", -3, READONLY, "@read @set @slow", Keys::Custom { legacy: (0, 0, 0), find: sintercard_keys }, Exec::Keyed(sintercard)),
    spec("sinterstore", -3, WRITE | DENYOOM, "@write @set @slow", keys(1, -1, 1), Exec::Keyed(sinterstore)),
    spec("sunion", -2, READONLY, "@read @set @slow", keys(1, -1, 1), Exec::Keyed(sunion)),
    spec("sunionstore", -3, WRITE | DENYOOM, "@write @set @slow", keys(1, -1, 1), Exec::Keyed(sunionstore)),
    spec("sdiff", -2, READONLY, "@read @set @slow", keys(1, -1, 1), Exec::Keyed(sdiff)),
    spec("sdiffstore", -3, WRITE | DENYOOM, "@write @set @slow", keys(1, -1, 1), Exec::Keyed(sdiffstore)),
    spec("sscan", -3, READONLY, "@read @set @slow", KEY1, Exec::Keyed(sscan)),
];

fn get_set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut SetValue>, Reply> {
    let now = ctx.now_ms;
    set_of(ctx.db().get(key, now))
}

/// [`get_set`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
fn read_set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut SetValue>, Reply> {
    set_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a Set: Ok(None) when missing, WRONGTYPE for another type.
fn set_of(e: Option<&mut crate::storage::Entry>) -> Result<Option<&mut SetValue>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(v) => Ok(Some(v)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

fn set_for_write<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<&'a mut SetValue, Reply> {
    if get_set(ctx, key)?.is_none() {
        ctx.db().set(key, Value::Set(SetValue::default()), 0);
    }
    get_set(ctx, key)?.ok_or(Reply::err("ERR internal error: set vanished"))
}

fn drop_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) {
    if matches!(get_set(ctx, key), Ok(Some(s)) if s.is_empty()) {
        ctx.db().remove(key);
    }
}

fn members_reply(members: Vec<Vec<u8>>) -> Reply {
    Reply::Set(members.into_iter().map(|m| Reply::Bulk(Bytes::from(m))).collect())
}

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match set_for_write(ctx, &args[1]) {
        Ok(s) => Reply::Int(args[2..].iter().filter(|m| s.add(m)).count() as i64),
        Err(e) => e,
    }
}

fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let n = match get_set(ctx, &args[1]) {
        Ok(Some(s)) => args[2..].iter().filter(|m| s.remove(m)).count() as i64,
        Ok(None) => 0,
        Err(e) => return e,
    };
    drop_if_empty(ctx, &args[1]);
    Reply::Int(n)
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Ok(s) => members_reply(s.map(|s| s.members()).unwrap_or_default()),
        Err(e) => e,
    }
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Ok(s) => Reply::Int(s.is_some_and(|s| s.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Ok(s) => Reply::Array(
            args[2..].iter().map(|m| Reply::Int(s.as_ref().is_some_and(|s| s.contains(m)) as i64)).collect(),
        ),
        Err(e) => e,
    }
}

fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Ok(s) => Reply::Int(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// SPOP's extraction strategy switch (`SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;
/// SRANDMEMBER's copy-then-remove strategy switch (`SRANDMEMBER_SUB_STRATEGY_MUL`).
const SRANDMEMBER_SUB_STRATEGY_MUL: usize = 3;

/// SPOP [count], with Redis's strategies: one random member at a time while few are taken,
/// otherwise the members to keep are drawn and the rest is returned.
fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    let s = match get_set(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return if count.is_some() { Reply::Set(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let size = s.len();
    // Redis serves a count covering the whole set with SUNION's code, a counted read lookup.
    let whole = matches!(count, Some(c) if c != 0 && c >= size);
    let n = count.unwrap_or(1).min(size);
    let popped = if n == size {
        std::mem::take(s).members()
    } else if (size - n) * SPOP_MOVE_STRATEGY_MUL > n {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(m) = s.random_member() else { break };
            s.remove(&m);
            out.push(m);
        }
        out
    } else {
        let mut kept = SetValue::default();
        for _ in 0..size - n {
            let Some(m) = s.random_member() else { break };
            s.remove(&m);
            kept.add(&m);
        }
        std::mem::replace(s, kept).members()
    };
    drop_if_empty(ctx, &args[1]);
    if whole {
        ctx.count_lookup(&args[1], true);
    }
    match count {
        None => popped.into_iter().next().map_or(Reply::Nil, |m| Reply::Bulk(Bytes::from(m))),
        Some(_) => members_reply(popped),
    }
}

/// SRANDMEMBER [count] with Redis's four cases: repeats allowed (negative count) or a single
/// member: independent draws; the whole set; most of it: a copy with random members taken
/// out; a few: draws until enough distinct members.
fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(i64::MIN) => return Reply::err(errors::LONG_RANGE),
            Some(n) if n > -(i64::MAX / 2) => Some(n),
            Some(_) => return Reply::err("ERR value is out of range"),
            None => return Reply::err(errors::NOT_INTEGER),
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    let s = match read_set(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    let bulk = |m: Vec<u8>| Reply::Bulk(Bytes::from(m));
    let Some(count) = count else {
        return s.random_member().map_or(Reply::Nil, bulk);
    };
    let (n, unique) = (count.unsigned_abs() as usize, count >= 0);
    let size = s.len();
    if !unique {
        // A sample of members for the reply's size (the set can be large).
        let avg = (0..8).filter_map(|_| s.random_member()).map(|m| m.len()).max().unwrap_or(0);
        if crate::memory::obuf::reply_overflows(n as u64, avg as u64) {
            return Reply::err(crate::memory::obuf::OVER_LIMIT);
        }
    }
    if !unique || n == 1 {
        return Reply::Array((0..n).filter_map(|_| s.random_member()).map(bulk).collect());
    }
    if n >= size {
        return Reply::Array(s.members().into_iter().map(bulk).collect());
    }
    let mut picked = SetValue::default();
    if n * SRANDMEMBER_SUB_STRATEGY_MUL > size {
        picked = s.clone();
        while picked.len() > n {
            let Some(m) = picked.random_member() else { break };
            picked.remove(&m);
        }
    } else {
        while picked.len() < n {
            let Some(m) = s.random_member() else { break };
            picked.add(&m);
        }
    }
    Reply::Array(picked.members().into_iter().map(bulk).collect())
}

fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    // As Redis: a missing source answers 0 whatever the destination holds; then both keys
    // must be sets (the destination may be absent) before anything moves.
    match get_set(ctx, src) {
        Ok(Some(_)) => {}
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    }
    if let Err(e) = get_set(ctx, dst) {
        return e;
    }
    if src == dst {
        // The same set: nothing moves (Redis replies whether the member is there).
        ctx.dirty(0);
        return match get_set(ctx, src) {
            Ok(s) => Reply::Int(s.is_some_and(|s| s.contains(m)) as i64),
            Err(e) => e,
        };
    }
    let moved = match get_set(ctx, src) {
        Ok(Some(s)) => s.remove(m),
        Ok(None) => false,
        Err(e) => return e,
    };
    if !moved {
        return Reply::Int(0);
    }
    drop_if_empty(ctx, src);
    match set_for_write(ctx, dst) {
        Ok(d) => {
            // One change for the removal, one more when the destination gains the member.
            let added = d.add(m);
            ctx.dirty(1 + added as u64);
            Reply::Int(1)
        }
        Err(e) => e,
    }
}

/// Loads the sets of `keys` (None for missing keys); WRONGTYPE if one is not a set.
fn load(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<SetValue>>, Reply> {
    keys.iter().map(|k| read_set(ctx, k).map(|s| s.map(|s| s.clone()))).collect()
}

fn inter(sets: &[Option<SetValue>]) -> Vec<Vec<u8>> {
    if sets.iter().any(|s| s.is_none()) {
        return Vec::new();
    }
    let sets: Vec<&SetValue> = sets.iter().flatten().collect();
    let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else { return Vec::new() };
    smallest.members().into_iter().filter(|m| sets.iter().all(|s| s.contains(m))).collect()
}

fn union(sets: &[Option<SetValue>]) -> Vec<Vec<u8>> {
    let mut acc = SetValue::default();
    for s in sets.iter().flatten() {
        for m in s.members() {
            acc.add(&m);
        }
    }
    acc.members()
}

fn diff(sets: &[Option<SetValue>]) -> Vec<Vec<u8>> {
    let Some(Some(first)) = sets.first() else { return Vec::new() };
    first.members().into_iter().filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m))).collect()
}

fn compute(ctx: &mut Ctx<'_>, keys: &[Bytes], op: fn(&[Option<SetValue>]) -> Vec<Vec<u8>>) -> Reply {
    match load(ctx, keys) {
        Ok(sets) => members_reply(op(&sets)),
        Err(e) => e,
    }
}

fn store(ctx: &mut Ctx<'_>, args: &[Bytes], op: fn(&[Option<SetValue>]) -> Vec<Vec<u8>>) -> Reply {
    let sets = match load(ctx, &args[2..]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let members = op(&sets);
    let existed = ctx.db().remove(&args[1]).is_some();
    if members.is_empty() {
        // Deleting the destination is the one change of an empty result.
        ctx.dirty(existed as u64);
        return Reply::Int(0);
    }
    ctx.dirty(1);
    let mut s = SetValue::default();
    for m in &members {
        s.add(m);
    }
    let n = s.len() as i64;
    ctx.db().set(&args[1], Value::Set(s), 0);
    Reply::Int(n)
}

fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    compute(ctx, &args[1..], inter)
}
fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    compute(ctx, &args[1..], union)
}
fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    compute(ctx, &args[1..], diff)
}
fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store(ctx, args, inter)
}
fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store(ctx, args, union)
}
fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    store(ctx, args, diff)
}

fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = match sintercard_keys(args) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let rest = &args[2 + keys.len()..];
    let mut limit = 0usize;
    let mut i = 0;
    while i < rest.len() {
        if eq_ic(&rest[i], "limit") && i + 1 < rest.len() {
            match parse_i64(&rest[i + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return Reply::err(errors::SYNTAX);
        }
    }
    let names: Vec<Bytes> = keys.iter().map(|&i| args[i].clone()).collect();
    match load(ctx, &names) {
        Ok(sets) => {
            let n = inter(&sets).len();
            Reply::Int(if limit > 0 { n.min(limit) } else { n } as i64)
        }
        Err(e) => e,
    }
}

/// SSCAN: intsets return everything with cursor 0 (as Redis); hash tables follow Redis's
/// reverse-binary bucket cursor (`dictScan`), up to COUNT members or COUNT * 10 buckets per
/// call, MATCH applied afterwards.
fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (cursor, pat, count) = match parse_scan_args(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let s = match read_set(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(vec![])]),
        Err(e) => return e,
    };
    let keep = |m: &[u8]| pat.as_ref().is_none_or(|p| glob_match(p, m, false));
    let (next, items) = match s.table() {
        None => (0, s.members()),
        Some(t) => {
            let mut items = Vec::new();
            let mut cursor = cursor;
            let mut more_buckets = count.saturating_mul(10);
            loop {
                cursor = t.scan(cursor, |m| items.push(m.to_vec()));
                if cursor == 0 || more_buckets == 0 {
                    break;
                }
                more_buckets -= 1;
                if items.len() >= count {
                    break;
                }
            }
            (cursor, items)
        }
    };
    let out = items.into_iter().filter(|m| keep(m)).map(|m| Reply::Bulk(Bytes::from(m))).collect();
    Reply::Array(vec![Reply::bulk(next.to_string().as_bytes()), Reply::Array(out)])
}
