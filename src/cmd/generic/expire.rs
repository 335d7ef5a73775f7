//! EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME
//! and PERSIST. Expiry times are absolute Unix milliseconds (`Entry::expire_at`, 0 = none), as
//! Redis's `expires` dict; setting one in the past deletes the key.

use super::errors;
use crate::cmd::ctx::Ctx;
use crate::cmd::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

/// The NX/XX/GT/LT flags of the EXPIRE family.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Parses the flags after the time, as Redis's `parseExtendedExpireArgumentsOrReply` (before
/// the time itself is parsed).
fn parse_flags(args: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let mut f = ExpireFlags::default();
    for a in args {
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else {
            return Err(Reply::error(format!("ERR Unsupported option {}", super::sanitize(a))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Reply::err(errors::EXPIRE_NX_INCOMPATIBLE));
    }
    if f.gt && f.lt {
        return Err(Reply::err(errors::EXPIRE_GT_LT_INCOMPATIBLE));
    }
    Ok(f)
}

/// The EXPIRE family: the argument times `unit_ms`, plus now when `relative`.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: i64, relative: bool, name: &str) -> Reply {
    let f = match parse_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let Some(n) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    let now = ctx.now_ms as i64;
    // Overflow of the unit conversion or of adding the base time is an error, as in Redis.
    let at = n.checked_mul(unit_ms).and_then(|ms| if relative { ms.checked_add(now) } else { Some(ms) });
    let Some(at) = at else { return Reply::error(errors::invalid_expire(name)) };
    let key = &args[1];
    let cur = match ctx.db().get(key, now as u64) {
        None => return Reply::Int(0),
        Some(e) => e.expire_at,
    };
    // A key without expiry has an infinite TTL: GT never applies, LT always does.
    if (f.nx && cur != 0)
        || (f.xx && cur == 0)
        || (f.gt && (cur == 0 || at <= cur as i64))
        || (f.lt && cur != 0 && at >= cur as i64)
    {
        return Reply::Int(0);
    }
    // Loading the AOF (and a replica) keeps the key: it expires later, as Redis's
    // `checkAlreadyExpired` skips loading and replicas.
    if at <= now && !crate::storage::replica_expiry() {
        ctx.db().remove(key);
    } else {
        ctx.db().set_expire(key, at as u64);
    }
    Reply::Int(1)
}

pub(super) fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, true, "expire")
}

pub(super) fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, true, "pexpire")
}

pub(super) fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, false, "expireat")
}

pub(super) fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, false, "pexpireat")
}

/// -2 when missing, -1 without expiry, else `f(expire_at, now)`. No touch, counted lookup.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[Bytes], f: impl Fn(u64, u64) -> i64) -> Reply {
    let now = ctx.now_ms;
    let at = ctx.db().get_notouch(&args[1], now).map(|e| e.expire_at);
    ctx.count_lookup(&args[1], at.is_some());
    match at {
        None => Reply::Int(-2),
        Some(0) => Reply::Int(-1),
        Some(at) => Reply::Int(f(at, now)),
    }
}

pub(super) fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, now| (at.saturating_sub(now) as i64 + 500) / 1000)
}

pub(super) fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

pub(super) fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // Unsigned, so times near LLONG_MAX round up like Redis's reply (9223372036854776).
    ttl_generic(ctx, args, |at, _| ((at + 500) / 1000) as i64)
}

pub(super) fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, _| at as i64)
}

pub(super) fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(&args[1], now) {
        Some(e) if e.expire_at != 0 => {
            ctx.db().set_expire(&args[1], 0);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}
