//! The blocking list and sorted-set commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP): their specs, their argument checks in Redis's order, the
//! non-blocking attempt every call starts with, and how a waiter is served from one key.
//!
//! A call runs like any keyed command on the shard owning its keys (or on a scratch copy when
//! its keys span shards). That run is the command's non-blocking form: it pops from the first
//! non-empty key in argument order, or answers the null the command times out with (which is
//! also what the command answers inside MULTI). A null answer from a call that may block means
//! "block": the connection then registers a waiter (see [`super::blocked`]) on every shard
//! owning one of its keys and waits.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys};
use super::util::{eq_ic, numkeys_at, parse_f64, parse_i64};
use crate::protocol::Reply;
use crate::storage::Value;
use bytes::Bytes;

/// `ERR timeout is not a float or out of range`.
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
/// `ERR timeout is negative`.
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
/// The error CLIENT UNBLOCK ... ERROR sends to the unblocked client.
pub const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

const NUMKEYS: &str = "ERR numkeys should be greater than 0";

/// BLMPOP/BZMPOP: keys after numkeys at 2; too many keys is a syntax error, as LMPOP's.
fn blmpop_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    mpop_keys(args, 2)
}

/// Keys of the `numkeys key...` forms of [B]LMPOP/[B]ZMPOP with numkeys at `at`; Redis finds
/// where LEFT|RIGHT should be and answers a syntax error when numkeys runs past the end.
pub fn mpop_keys(args: &[Bytes], at: usize) -> Result<Vec<usize>, Reply> {
    numkeys_at(args, at, NUMKEYS).map_err(|e| if e == Reply::err(NUMKEYS) { e } else { Reply::err(errors::SYNTAX) })
}

/// The blocking commands' table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("blpop", -3, WRITE | NOSCRIPT | BLOCKING, "@write @list @slow @blocking", keys(1, -2, 1), Exec::Keyed(run)),
    spec("brpop", -3, WRITE | NOSCRIPT | BLOCKING, "@write @list @slow @blocking", keys(1, -2, 1), Exec::Keyed(run)),
    spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "@write @list @slow @blocking", keys(1, 2, 1), Exec::Keyed(run)),
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "@write @list @slow @blocking", keys(1, 2, 1), Exec::Keyed(run)),
    spec("blmpop", -5, WRITE | BLOCKING, "@write @list @slow @blocking", Keys::Custom { legacy: (0, 0, 0), find: blmpop_keys }, Exec::Keyed(run)),
    spec("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, "@write @sortedset @fast @blocking", keys(1, -2, 1), Exec::Keyed(run)),
    spec("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, "@write @sortedset @fast @blocking", keys(1, -2, 1), Exec::Keyed(run)),
    spec("bzmpop", -5, WRITE | BLOCKING, "@write @sortedset @slow @blocking", Keys::Custom { legacy: (0, 0, 0), find: blmpop_keys }, Exec::Keyed(run)),
];

/// How a waiter is served once one of its keys holds data.
#[derive(Debug, Clone)]
pub enum Serve {
    /// BLPOP / BRPOP: `[key, element]`.
    Pop {
        /// From the head.
        left: bool,
    },
    /// BLMPOP: `[key, [elements]]`.
    MPop {
        /// From the head.
        left: bool,
        /// Up to this many.
        count: usize,
    },
    /// BZPOPMIN / BZPOPMAX: `[key, member, score]`.
    ZPop {
        /// Highest scores.
        max: bool,
    },
    /// BZMPOP: `[key, [[member, score], ...]]`.
    ZMPop {
        /// Highest scores.
        max: bool,
        /// Up to this many.
        count: usize,
    },
    /// BLMOVE / BRPOPLPUSH: the element, which is pushed to `dst`.
    Move {
        /// Destination list.
        dst: Bytes,
        /// Pop from the head of the source.
        from_left: bool,
        /// Push to the head of the destination.
        to_left: bool,
        /// BRPOPLPUSH: propagated as RPOPLPUSH, as Redis does (BLMOVE as LMOVE).
        rpoplpush: bool,
    },
    /// XREAD / XREADGROUP with BLOCK (see `stream_read`).
    Stream(Box<super::stream_read::Wait>),
}

/// A blocking call after parsing: how to serve it, its keys in order, and its timeout.
#[derive(Debug, Clone)]
pub struct Blocking {
    /// How to serve.
    pub serve: Serve,
    /// Keys waited on, in argument order (BLMOVE: the source only).
    pub keys: Vec<Bytes>,
    /// Milliseconds; 0 waits forever.
    pub timeout_ms: u64,
}

impl Serve {
    /// True when the waiter wants a sorted set, false for a list.
    pub fn wants_zset(&self) -> bool {
        matches!(self, Serve::ZPop { .. } | Serve::ZMPop { .. })
    }

    /// What `key` holds for this waiter (stream readers wait for entries past their ID).
    pub fn state(&self, ctx: &mut Ctx<'_>, key: &[u8]) -> KeyState {
        match self {
            Serve::Stream(w) => super::stream_read::ready(ctx, w, key),
            _ => key_state(ctx, key, self.wants_zset()),
        }
    }

    /// True for stream readers: serving one leaves the key's data for the next.
    pub fn keeps_data(&self) -> bool {
        matches!(self, Serve::Stream(_))
    }

    /// What the command answers on timeout: a null array, for BLMOVE too (Redis's
    /// `replyToBlockedClientTimedOut`); the non-blocking form (MULTI) answers BLMOVE's null
    /// bulk instead.
    pub fn timeout_reply(&self) -> Reply {
        Reply::NilArray
    }

    /// Pops for this waiter from `key`, which holds a non-empty value of the wanted type.
    pub fn from_key(&self, ctx: &mut Ctx<'_>, key: &Bytes) -> Reply {
        // Every pop is the non-blocking *MPOP of one key; the single-key forms flatten it.
        let (name, side, count, single, run): (&'static [u8], &'static str, usize, bool, super::spec::KeyedFn) =
            match self {
                Serve::Pop { left } => (b"lmpop", if *left { "LEFT" } else { "RIGHT" }, 1, true, super::list::lmpop),
                Serve::MPop { left, count } => {
                    (b"lmpop", if *left { "LEFT" } else { "RIGHT" }, *count, false, super::list::lmpop)
                }
                Serve::ZPop { max } => (b"zmpop", if *max { "MAX" } else { "MIN" }, 1, true, super::zset_ops::zmpop),
                Serve::ZMPop { max, count } => {
                    (b"zmpop", if *max { "MAX" } else { "MIN" }, *count, false, super::zset_ops::zmpop)
                }
                Serve::Move { dst, from_left, to_left, rpoplpush } => {
                    let side = |left: bool| Bytes::from_static(if left { b"LEFT" } else { b"RIGHT" });
                    let lmove =
                        vec![Bytes::from_static(b"LMOVE"), key.clone(), dst.clone(), side(*from_left), side(*to_left)];
                    let before = if super::notify::enabled() {
                        super::notify::Before::take(ctx.shard, ctx.db, &lmove, &[1, 2], ctx.now_ms)
                    } else {
                        Default::default()
                    };
                    let r = super::list::move_one(ctx, key, dst, *from_left, *to_left);
                    if !matches!(r, Reply::Nil | Reply::Error(_)) {
                        if super::notify::enabled() {
                            let (db, now) = (ctx.db, ctx.now_ms);
                            super::notify::command_events(ctx.shard, db, "lmove", &lmove, &r, 1, &[], &before, now);
                        }
                        let form = match rpoplpush {
                            true => vec![Bytes::from_static(b"RPOPLPUSH"), key.clone(), dst.clone()],
                            false => lmove,
                        };
                        ctx.shard.changes.record(ctx.db, 1, vec![form]);
                        // Both lists changed (Redis's `signalModifiedKey` of each: the
                        // destination first, as its push comes before the pop's signal).
                        super::tracking::written_keys(ctx.shard, &[dst.clone(), key.clone()]);
                    }
                    return r;
                }
                Serve::Stream(w) => return super::stream_read::serve(ctx, w, key),
            };
        let a = [
            Bytes::from_static(name),
            Bytes::from_static(b"1"),
            key.clone(),
            Bytes::from_static(side.as_bytes()),
            Bytes::from_static(b"COUNT"),
            Bytes::from(count.to_string()),
        ];
        let r = run(ctx, &a);
        // The pop's own count (its elements), kept out of the blocking command's context.
        let n = ctx.dirty.take().unwrap_or(0);
        let pop = ctx.propagate.take();
        if n > 0 && !matches!(r, Reply::Nil | Reply::NilArray | Reply::Error(_)) {
            let (db, now) = (ctx.db, ctx.now_ms);
            if super::notify::enabled() {
                let name = if name == b"lmpop" { "lmpop" } else { "zmpop" };
                super::notify::command_events(ctx.shard, db, name, &a, &r, n, &[], &Default::default(), now);
            }
            // The served pop is propagated as the non-blocking pop it performed: `LPOP k n`
            // (BLMPOP, BZMPOP), `LPOP k` (BLPOP, BZPOPMIN, ...), as Redis's serving code.
            let mut pop = pop.unwrap_or_else(|| vec![a.to_vec()]);
            if single {
                pop.iter_mut().for_each(|c| c.truncate(2));
            }
            ctx.shard.changes.record(db, n, pop);
            super::tracking::written_keys(ctx.shard, std::slice::from_ref(key));
        }
        if single {
            flatten(r)
        } else {
            r
        }
    }
}

/// `[key, [x]]` -> `[key, x]` and `[key, [[m, s]]]` -> `[key, m, s]`.
fn flatten(r: Reply) -> Reply {
    let Reply::Array(mut v) = r else { return r };
    let Some(Reply::Array(mut items)) = v.pop() else { return Reply::Array(v) };
    match items.pop() {
        Some(Reply::Array(pair)) => v.extend(pair),
        Some(x) => v.push(x),
        None => {}
    }
    Reply::Array(v)
}

/// Parses a blocking timeout in seconds as Redis's `getTimeoutFromObjectOrReply`: a long double
/// times 1000, truncated to milliseconds (so anything under 1 ms waits forever, like 0).
pub fn parse_timeout(arg: &[u8]) -> Result<u64, Reply> {
    let Some(v) = parse_f64(arg).or_else(|| parse_hex_float(arg)) else { return Err(Reply::err(TIMEOUT_NOT_FLOAT)) };
    let ms = v * 1000.0;
    // C's (long long) cast of an out-of-range value gives LLONG_MIN on x86: "negative".
    if !(ms > -9.223372036854775e18 && ms < 9.223372036854775e18) {
        return Err(Reply::err(TIMEOUT_NEGATIVE));
    }
    let ms = ms as i64;
    if ms < 0 {
        return Err(Reply::err(TIMEOUT_NEGATIVE));
    }
    Ok(ms as u64)
}

/// strtold's hexadecimal form: `[+-]0x` hex digits, an optional `.` fraction and an optional
/// binary exponent `p[+-]n`.
fn parse_hex_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let (mant, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = e.parse().ok()?;
        v *= 2f64.powi(e);
    }
    Some(if neg { -v } else { v })
}

/// `numkeys key... LEFT|RIGHT|MIN|MAX [COUNT n]` from `at` (BLMPOP/BZMPOP), as LMPOP parses it.
fn parse_mpop(args: &[Bytes], zset: bool) -> Result<(Vec<Bytes>, bool, usize), Reply> {
    let idx = blmpop_keys(args)?;
    let keys: Vec<Bytes> = idx.iter().map(|&i| args[i].clone()).collect();
    let rest = &args[3 + keys.len()..];
    let dir = match rest.first() {
        Some(w) if zset && eq_ic(w, "min") => false,
        Some(w) if zset && eq_ic(w, "max") => true,
        Some(w) if !zset => super::list::side(w).ok_or(Reply::err(errors::SYNTAX))?,
        _ => return Err(Reply::err(errors::SYNTAX)),
    };
    let count = match &rest[1..] {
        [] => 1,
        [c, n] if eq_ic(c, "count") => match parse_i64(n) {
            Some(n) if n > 0 => n as usize,
            _ => return Err(Reply::err("ERR count should be greater than 0")),
        },
        _ => return Err(Reply::err(errors::SYNTAX)),
    };
    Ok((keys, dir, count))
}

/// Parses a blocking call (`args[0]` is its name), reporting errors in Redis's order.
pub fn parse(args: &[Bytes]) -> Result<Blocking, Reply> {
    let name = &args[0];
    if eq_ic(name, "xread") || eq_ic(name, "xreadgroup") {
        // Without BLOCK (or malformed) the call runs once as its keyed handler.
        let (w, keys, timeout_ms) = super::stream_read::blocking(args).ok_or(Reply::NilArray)?;
        return Ok(Blocking { serve: Serve::Stream(Box::new(w)), keys, timeout_ms });
    }
    let last = args.len() - 1;
    let multi = |left: bool| -> Result<Blocking, Reply> {
        let timeout_ms = parse_timeout(&args[last])?;
        Ok(Blocking { serve: Serve::Pop { left }, keys: args[1..last].to_vec(), timeout_ms })
    };
    if eq_ic(name, "blpop") {
        multi(true)
    } else if eq_ic(name, "brpop") {
        multi(false)
    } else if eq_ic(name, "bzpopmin") || eq_ic(name, "bzpopmax") {
        let mut b = multi(true)?;
        b.serve = Serve::ZPop { max: eq_ic(name, "bzpopmax") };
        Ok(b)
    } else if eq_ic(name, "brpoplpush") {
        let timeout_ms = parse_timeout(&args[3])?;
        let serve = Serve::Move { dst: args[2].clone(), from_left: false, to_left: true, rpoplpush: true };
        Ok(Blocking { serve, keys: vec![args[1].clone()], timeout_ms })
    } else if eq_ic(name, "blmove") {
        let (Some(from_left), Some(to_left)) = (super::list::side(&args[3]), super::list::side(&args[4])) else {
            return Err(Reply::err(errors::SYNTAX));
        };
        let timeout_ms = parse_timeout(&args[5])?;
        let serve = Serve::Move { dst: args[2].clone(), from_left, to_left, rpoplpush: false };
        Ok(Blocking { serve, keys: vec![args[1].clone()], timeout_ms })
    } else {
        let zset = eq_ic(name, "bzmpop");
        let (keys, dir, count) = parse_mpop(args, zset)?;
        let timeout_ms = parse_timeout(&args[1])?;
        let serve = if zset { Serve::ZMPop { max: dir, count } } else { Serve::MPop { left: dir, count } };
        Ok(Blocking { serve, keys, timeout_ms })
    }
}

/// What a key holds, for a waiter of the given kind.
pub enum KeyState {
    /// Missing (or an empty leftover).
    Empty,
    /// Holds another type.
    WrongType,
    /// Holds a non-empty value of the wanted type.
    Ready,
}

/// Looks at `key` without touching its LRU clock.
pub fn key_state(ctx: &mut Ctx<'_>, key: &[u8], zset: bool) -> KeyState {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(key, now).map(|e| &e.value) {
        None => KeyState::Empty,
        Some(Value::List(l)) if !zset => {
            if l.is_empty() {
                KeyState::Empty
            } else {
                KeyState::Ready
            }
        }
        Some(Value::ZSet(z)) if zset => {
            if z.is_empty() {
                KeyState::Empty
            } else {
                KeyState::Ready
            }
        }
        Some(_) => KeyState::WrongType,
    }
}

/// The non-blocking attempt of every blocking command: serve from the first non-empty key in
/// argument order, an error for a key of the wrong type met before it, or the timeout null.
fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let b = match parse(args) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Serve::Move { .. } = b.serve {
        // BLMOVE is LMOVE when the source has data (LMOVE checks the destination's type).
        return b.serve.from_key(ctx, &b.keys[0]);
    }
    let zset = b.serve.wants_zset();
    for k in &b.keys {
        match key_state(ctx, k, zset) {
            KeyState::Empty => continue,
            KeyState::WrongType => return Reply::err(errors::WRONGTYPE),
            KeyState::Ready => return b.serve.from_key(ctx, k),
        }
    }
    b.serve.timeout_reply()
}

/// True when a reply from [`run`] means "nothing there: block".
pub fn would_block(r: &Reply) -> bool {
    matches!(r, Reply::Nil | Reply::NilArray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout(b"0.0001"), Ok(0));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(0));
        assert_eq!(parse_timeout(b"-1"), Err(Reply::err(TIMEOUT_NEGATIVE)));
        assert_eq!(parse_timeout(b"inf"), Err(Reply::err(TIMEOUT_NEGATIVE)));
        assert_eq!(parse_timeout(b"1e16"), Err(Reply::err(TIMEOUT_NEGATIVE)));
        assert_eq!(parse_timeout(b"nan"), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
        assert_eq!(parse_timeout(b" 1"), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
        assert_eq!(parse_timeout(b"abc"), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
        assert_eq!(parse_timeout(b""), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
        assert_eq!(parse_timeout(b"0x10"), Ok(16000));
        assert_eq!(parse_timeout(b"0x.8"), Ok(500));
        assert_eq!(parse_timeout(b"0x1p-1"), Ok(500));
        assert_eq!(parse_timeout(b"-0x1"), Err(Reply::err(TIMEOUT_NEGATIVE)));
        assert_eq!(parse_timeout(b"0x"), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
        assert_eq!(parse_timeout(b"0xg"), Err(Reply::err(TIMEOUT_NOT_FLOAT)));
    }
}
