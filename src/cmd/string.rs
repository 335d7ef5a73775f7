//! String commands: GET, SET and family (t_string.c in Redis).

use super::ctx::Ctx;
use super::errors;
use super::long_double::LongDouble;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::{Entry, StrValue, Value};
use bytes::Bytes;

/// The string family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, "@read @string @fast", KEY1, Exec::Keyed(get)),
    spec("set", -3, WRITE | DENYOOM, "@write @string @slow", KEY1, Exec::Keyed(set)),
    spec("setnx", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(setnx)),
    spec("setex", 4, WRITE | DENYOOM, "@write @string @slow", KEY1, Exec::Keyed(setex)),
    spec("psetex", 4, WRITE | DENYOOM, "@write @string @slow", KEY1, Exec::Keyed(psetex)),
    spec("getset", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(getset)),
    spec("getdel", 2, WRITE | FAST, "@write @string @fast", KEY1, Exec::Keyed(getdel)),
    spec("getex", -2, WRITE | FAST, "@write @string @fast", KEY1, Exec::Keyed(getex)),
    spec("mget", -2, READONLY | FAST, "@read @string @fast", keys(1, -1, 1), Exec::Keyed(mget)),
    spec("mset", -3, WRITE | DENYOOM, "@write @string @slow", keys(1, -1, 2), Exec::Keyed(mset)),
    spec("msetnx", -3, WRITE | DENYOOM, "@write @string @slow", keys(1, -1, 2), Exec::Keyed(msetnx)),
    spec("append", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(append)),
    spec("strlen", 2, READONLY | FAST, "@read @string @fast", KEY1, Exec::Keyed(strlen)),
    spec("incr", 2, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(incr)),
    spec("decr", 2, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(decr)),
    spec("incrby", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(incrby)),
    spec("decrby", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(decrby)),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, "@write @string @fast", KEY1, Exec::Keyed(incrbyfloat)),
    spec("getrange", 4, READONLY, "@read @string @slow", KEY1, Exec::Keyed(getrange)),
    spec("substr", 4, READONLY, "@read @string @slow", KEY1, Exec::Keyed(getrange)),
    spec("setrange", 4, WRITE | DENYOOM, "@write @string @slow", KEY1, Exec::Keyed(setrange)),
    spec("lcs", -3, READONLY, "@read @string @slow", keys(1, 2, 1), Exec::Keyed(lcs)),
];

/// The string stored at `key`: Ok(None) when missing, Err(WRONGTYPE) for another type.
fn get_str<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut StrValue>, Reply> {
    let now = ctx.now_ms;
    str_of(ctx.db().get(key, now))
}

/// [`get_str`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`).
fn lookup_str<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut StrValue>, Reply> {
    str_of(ctx.read_entry(key))
}

/// The value of a looked-up entry as a string: Ok(None) when missing, WRONGTYPE for another type.
fn str_of(e: Option<&mut Entry>) -> Result<Option<&mut StrValue>, Reply> {
    match e {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(Reply::err(errors::WRONGTYPE)),
    }
}

/// [`get_str`] for a read-only command: no snapshot pre-write hook (see `Db::get_read`).
fn read_str_ref<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a StrValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get_read(key, now) {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(Reply::err(errors::WRONGTYPE)),
    }
}

/// GET-like read that counts hits and misses.
fn read_str(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let r = read_str_ref(ctx, key).map(|o| o.map(|s| s.to_bytes()));
    // A key of another type was found (a hit) before the type check failed.
    ctx.count_lookup(key, !matches!(r, Ok(None)));
    r
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // The hot read: the value is copied straight into an inline reply when short.
    let r = match read_str_ref(ctx, &args[1]) {
        Ok(Some(StrValue::Raw(v))) => Reply::bulk_inline(v),
        Ok(Some(StrValue::Int(n))) => Reply::bulk_inline(itoa::Buffer::new().format(*n).as_bytes()),
        Ok(None) => Reply::Nil,
        Err(e) => {
            ctx.count_lookup(&args[1], true);
            return e;
        }
    };
    ctx.count_lookup(&args[1], !matches!(r, Reply::Nil));
    r
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    None,
    At(u64),
    Keep,
    Persist,
}

/// Parses an EX/PX/EXAT/PXAT value into an absolute ms time, with Redis's checks.
fn expire_at(ctx: &Ctx<'_>, unit: &[u8], val: &[u8], cmd: &str) -> Result<u64, Reply> {
    let n = parse_i64(val).ok_or(Reply::err(errors::NOT_INTEGER))?;
    if n <= 0 {
        return Err(Reply::error(errors::invalid_expire(cmd)));
    }
    let (ms, absolute) = if eq_ic(unit, "ex") {
        (n.checked_mul(1000), false)
    } else if eq_ic(unit, "px") {
        (Some(n), false)
    } else if eq_ic(unit, "exat") {
        (n.checked_mul(1000), true)
    } else {
        (Some(n), true)
    };
    let ms = ms.ok_or_else(|| Reply::error(errors::invalid_expire(cmd)))?;
    let at = if absolute { Some(ms) } else { ms.checked_add(ctx.now_ms as i64) };
    match at {
        Some(at) if at > 0 => Ok(at as u64),
        _ => Err(Reply::error(errors::invalid_expire(cmd))),
    }
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() == 3 {
        // Plain SET: one lookup.
        ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[2])), 0);
        return Reply::Ok;
    }
    let (mut nx, mut xx, mut get_old) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let has_next = i + 1 < args.len();
        if eq_ic(a, "nx") && !xx {
            nx = true;
        } else if eq_ic(a, "xx") && !nx {
            xx = true;
        } else if eq_ic(a, "get") {
            get_old = true;
        } else if eq_ic(a, "keepttl") && expiry == Expiry::None {
            expiry = Expiry::Keep;
        } else if (eq_ic(a, "ex") || eq_ic(a, "px") || eq_ic(a, "exat") || eq_ic(a, "pxat"))
            && expiry == Expiry::None
            && has_next
        {
            match expire_at(ctx, a, &args[i + 1], "set") {
                Ok(at) => expiry = Expiry::At(at),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    let key = &args[1];
    let now = ctx.now_ms;
    let old = if get_old {
        match read_str(ctx, key) {
            Ok(v) => Some(v),
            Err(e) => return e,
        }
    } else {
        None
    };
    let exists = ctx.db().contains(key, now);
    if (nx && exists) || (xx && !exists) {
        return match old {
            Some(Some(v)) => Reply::Bulk(v),
            _ => Reply::Nil,
        };
    }
    let keep = match expiry {
        Expiry::Keep => ctx.db().get_notouch(key, now).map_or(0, |e| e.expire_at),
        Expiry::At(at) => at,
        _ => 0,
    };
    ctx.db().set(key, Value::Str(StrValue::from_bytes(&args[2])), keep);
    if keep != 0 && keep <= now && !crate::storage::replica_expiry() {
        // An absolute time in the past: deleted at once (propagated as DEL), where Redis
        // deletes it at its next lookup. A replica keeps it until its master's DEL: the
        // master's `SET .. PXAT` arrives after its time whenever the link lags.
        ctx.db().remove(key);
    }
    match old {
        Some(Some(v)) => Reply::Bulk(v),
        Some(None) => Reply::Nil,
        None => Reply::Ok,
    }
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    if ctx.db().contains(&args[1], now) {
        return Reply::Int(0);
    }
    ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[2])), 0);
    Reply::Int(1)
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit: &str, name: &str) -> Reply {
    let at = match expire_at(ctx, unit.as_bytes(), &args[2], name) {
        Ok(at) => at,
        Err(e) => return e,
    };
    ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[3])), at);
    Reply::Ok
}

fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setex_generic(ctx, args, "ex", "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setex_generic(ctx, args, "px", "psetex")
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let old = match read_str(ctx, &args[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[2])), 0);
    old.map_or(Reply::Nil, Reply::Bulk)
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_str(ctx, &args[1]) {
        Ok(Some(v)) => {
            ctx.db().remove(&args[1]);
            Reply::Bulk(v)
        }
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut expiry = Expiry::None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if (eq_ic(a, "ex") || eq_ic(a, "px") || eq_ic(a, "exat") || eq_ic(a, "pxat"))
            && expiry == Expiry::None
            && i + 1 < args.len()
        {
            match expire_at(ctx, a, &args[i + 1], "getex") {
                Ok(at) => expiry = Expiry::At(at),
                Err(e) => return e,
            }
            i += 1;
        } else if eq_ic(a, "persist") && expiry == Expiry::None {
            expiry = Expiry::Persist;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    let v = match read_str(ctx, &args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    match expiry {
        // A time in the past deletes the key, except on a replica (`checkAlreadyExpired`).
        Expiry::At(at) if at <= now && !crate::storage::replica_expiry() => {
            ctx.db().remove(&args[1]);
        }
        Expiry::At(at) => {
            ctx.db().set_expire(&args[1], at);
        }
        Expiry::Persist => {
            // Only a key that had a ttl changes (Redis's `removeExpire`).
            let had_ttl = ctx.db().get_notouch(&args[1], now).is_some_and(|e| e.expire_at != 0);
            if had_ttl {
                ctx.db().set_expire(&args[1], 0);
            }
            ctx.dirty(had_ttl as u64);
        }
        _ => {}
    }
    Reply::Bulk(v)
}

fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let out = args[1..]
        .iter()
        .map(|k| match read_str(ctx, k) {
            Ok(Some(v)) => Reply::Bulk(v),
            _ => Reply::Nil,
        })
        .collect();
    Reply::Array(out)
}

fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return Reply::error(errors::wrong_arity("mset"));
    }
    for kv in args[1..].chunks(2) {
        ctx.db().set(&kv[0], Value::Str(StrValue::from_bytes(&kv[1])), 0);
    }
    Reply::Ok
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return Reply::error(errors::wrong_arity("msetnx"));
    }
    let now = ctx.now_ms;
    if args[1..].chunks(2).any(|kv| ctx.db().contains(&kv[0], now)) {
        return Reply::Int(0);
    }
    for kv in args[1..].chunks(2) {
        ctx.db().set(&kv[0], Value::Str(StrValue::from_bytes(&kv[1])), 0);
    }
    Reply::Int(1)
}

/// Checks a new string length against proto-max-bulk-len.
fn check_len(ctx: &Ctx<'_>, len: u64) -> Result<(), Reply> {
    if len > ctx.shard.config.proto_max_bulk_len as u64 {
        Err(Reply::err(errors::STRING_TOO_LONG))
    } else {
        Ok(())
    }
}

fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cur_len = match get_str(ctx, &args[1]) {
        Ok(Some(s)) => Some(s.len()),
        Ok(None) => None,
        Err(e) => return e,
    };
    match cur_len {
        None => {
            ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[2])), 0);
            Reply::Int(args[2].len() as i64)
        }
        Some(n) => {
            if let Err(e) = check_len(ctx, (n + args[2].len()) as u64) {
                return e;
            }
            let Ok(Some(s)) = get_str(ctx, &args[1]) else { return Reply::Nil };
            let v = s.make_raw();
            v.extend_from_slice(&args[2]);
            Reply::Int(v.len() as i64)
        }
    }
}

fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match lookup_str(ctx, &args[1]) {
        Ok(Some(s)) => Reply::Int(s.len() as i64),
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => {
            ctx.db().set(key, Value::Str(StrValue::Int(by)), 0);
            Reply::Int(by)
        }
        Some(Entry { value: Value::Str(s), .. }) => {
            let cur = match s {
                StrValue::Int(n) => *n,
                StrValue::Raw(v) => match parse_i64(v) {
                    Some(n) => n,
                    None => return Reply::err(errors::NOT_INTEGER),
                },
            };
            let Some(new) = cur.checked_add(by) else { return Reply::err(errors::OVERFLOW) };
            // In place: the key keeps its TTL, as in Redis.
            *s = StrValue::Int(new);
            Reply::Int(new)
        }
        #[allow(unreachable_patterns)]
        Some(_) => Reply::err(errors::WRONGTYPE),
    }
}

fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(by) => incr_by(ctx, &args[1], by),
        None => Reply::err(errors::NOT_INTEGER),
    }
}

fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => Reply::err("ERR decrement would overflow"),
        Some(by) => incr_by(ctx, &args[1], -by),
        None => Reply::err(errors::NOT_INTEGER),
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // As Redis: the stored value is checked before the increment.
    let (cur, expire) = {
        let now = ctx.now_ms;
        match ctx.db().get(&args[1], now) {
            None => (LongDouble::from_i64(0), 0),
            Some(Entry { value: Value::Str(s), expire_at, .. }) => {
                let n = match s {
                    StrValue::Int(n) => Some(LongDouble::from_i64(*n)),
                    StrValue::Raw(v) => LongDouble::parse(v),
                };
                match n {
                    Some(n) => (n, *expire_at),
                    None => return Reply::err(errors::NOT_FLOAT),
                }
            }
            #[allow(unreachable_patterns)]
            Some(_) => return Reply::err(errors::WRONGTYPE),
        }
    };
    let Some(by) = LongDouble::parse(&args[2]) else { return Reply::err(errors::NOT_FLOAT) };
    let new = cur.add(&by);
    if !new.is_finite() {
        return Reply::err("ERR increment would produce NaN or Infinity");
    }
    let text = new.to_human();
    ctx.db().set(&args[1], Value::Str(StrValue::raw(text.clone().into_bytes())), expire);
    Reply::Bulk(Bytes::from(text))
}

fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Reply::err(errors::NOT_INTEGER);
    };
    let v = match lookup_str(ctx, &args[1]) {
        Ok(Some(s)) => s.to_bytes(),
        Ok(None) => return Reply::bulk(b""),
        Err(e) => return e,
    };
    if start < 0 && end < 0 && start > end {
        return Reply::bulk(b"");
    }
    let len = v.len() as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Reply::bulk(b"");
    }
    Reply::Bulk(v.slice(start as usize..=end as usize))
}

fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let offset = match parse_i64(&args[2]) {
        Some(o) if o >= 0 => o as u64,
        Some(_) => return Reply::err(errors::OFFSET_OUT_OF_RANGE),
        None => return Reply::err(errors::NOT_INTEGER),
    };
    let val = &args[3];
    let cur_len = match get_str(ctx, &args[1]) {
        Ok(Some(s)) => Some(s.len()),
        Ok(None) => None,
        Err(e) => return e,
    };
    if val.is_empty() {
        return Reply::Int(cur_len.unwrap_or(0) as i64);
    }
    if let Err(e) = check_len(ctx, offset + val.len() as u64) {
        return e;
    }
    let off = offset as usize;
    if cur_len.is_none() {
        ctx.db().set(&args[1], Value::Str(StrValue::raw(Vec::new())), 0);
    }
    let Ok(Some(s)) = get_str(ctx, &args[1]) else { return Reply::Nil };
    let v = s.make_raw();
    if v.len() < off + val.len() {
        v.resize(off + val.len(), 0);
    }
    v[off..off + val.len()].copy_from_slice(val);
    Reply::Int(v.len() as i64)
}

fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut want_len, mut want_idx, mut with_match_len) = (false, false, false);
    let mut min_match: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "idx") {
            want_idx = true;
        } else if eq_ic(a, "len") {
            want_len = true;
        } else if eq_ic(a, "withmatchlen") {
            with_match_len = true;
        } else if eq_ic(a, "minmatchlen") && i + 1 < args.len() {
            match parse_i64(&args[i + 1]) {
                Some(n) => min_match = n.max(0),
                None => return Reply::err(errors::NOT_INTEGER),
            }
            i += 1;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    let mut fetch = |k: &[u8]| -> Result<Bytes, Reply> {
        match lookup_str(ctx, k) {
            Ok(Some(s)) => Ok(s.to_bytes()),
            Ok(None) => Ok(Bytes::new()),
            Err(_) => Err(Reply::err("ERR The specified keys must contain string values")),
        }
    };
    // Both keys are looked up before either's type is checked, as Redis does.
    let (a, b) = (fetch(&args[1]), fetch(&args[2]));
    let a = match a {
        Ok(v) => v,
        Err(e) => return e,
    };
    let b = match b {
        Ok(v) => v,
        Err(e) => return e,
    };
    if want_len && want_idx {
        return Reply::err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (n, m) = (a.len(), b.len());
    let cells = (n as u64 + 1) * (m as u64 + 1);
    if cells > (u32::MAX as u64) {
        return Reply::err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    // dp[i][j] = LCS length of a[..i], b[..j].
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for j in 1..=m {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    // Walk back from the end like Redis, collecting the string and the match ranges.
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut j) = (n, m);
    let mut matches: Vec<Reply> = Vec::new();
    let mut range: Option<(usize, usize, usize, usize)> = None; // a_start, a_end, b_start, b_end
    let emit = |r: (usize, usize, usize, usize), out: &mut Vec<Reply>| {
        let len = r.1 - r.0 + 1;
        if (len as i64) >= min_match {
            let mut item = vec![
                Reply::Array(vec![Reply::Int(r.0 as i64), Reply::Int(r.1 as i64)]),
                Reply::Array(vec![Reply::Int(r.2 as i64), Reply::Int(r.3 as i64)]),
            ];
            if with_match_len {
                item.push(Reply::Int(len as i64));
            }
            out.push(Reply::Array(item));
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            idx -= 1;
            result[idx] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            range = match range {
                Some((s1, e1, s2, e2)) if s1 == ai + 1 && s2 == bj + 1 => Some((ai, e1, bj, e2)),
                Some(r) => {
                    emit(r, &mut matches);
                    Some((ai, ai, bj, bj))
                }
                None => Some((ai, ai, bj, bj)),
            };
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(r) = range {
        emit(r, &mut matches);
    }
    if want_idx {
        Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Int(total as i64)),
        ])
    } else if want_len {
        Reply::Int(total as i64)
    } else {
        Reply::Bulk(Bytes::from(result))
    }
}
