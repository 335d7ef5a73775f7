//! Per-key generic commands: DEL/UNLINK, EXISTS, TOUCH, TYPE, RENAME/RENAMENX, COPY, MOVE and
//! the OBJECT subcommands. They run on the shard owning their keys (or its scratch copy).

use super::{db_index_arg, errors};
use crate::cmd::ctx::{ClientCtx, Ctx};
use crate::cmd::spec::Plan;
use crate::cmd::util::eq_ic;
use crate::protocol::Reply;
use crate::storage::{db, lazyfree, StrValue, Value};
use bytes::Bytes;

/// Redis shares the integers 0..9999 (`OBJ_SHARED_INTEGERS`); their refcount reads INT_MAX.
const SHARED_INTEGERS: i64 = 10000;
/// `OBJ_SHARED_REFCOUNT`.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// DEL and UNLINK: the keys are gone when the command replies; UNLINK (and DEL with
/// `lazyfree-lazy-user-del yes`) frees big values on the lazyfree thread.
pub(super) fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let lazy = eq_ic(&args[0], "unlink") || lazyfree::user_del();
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        // An expired key is reclaimed by the lookup and does not count, as in Redis.
        if db.get_notouch(k, now).is_some() {
            if let Some(e) = db.remove(k) {
                if lazy {
                    lazyfree::free_value(e.value);
                }
            }
            n += 1;
        }
    }
    Reply::Int(n)
}

/// EXISTS: counts lookups, does not touch (Redis's `LOOKUP_NOTOUCH`).
pub(super) fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &args[1..] {
        let hit = ctx.db().get_notouch(k, now).is_some();
        ctx.count_lookup(k, hit);
        n += hit as i64;
    }
    Reply::Int(n)
}

/// TOUCH: like EXISTS, but updates each key's access time.
pub(super) fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &args[1..] {
        let hit = ctx.db().get(k, now).is_some();
        ctx.count_lookup(k, hit);
        n += hit as i64;
    }
    Reply::Int(n)
}

pub(super) fn type_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let name = ctx.db().get_notouch(&args[1], now).map(|e| e.value.type_name());
    ctx.count_lookup(&args[1], name.is_some());
    Reply::status(name.unwrap_or("none"))
}

/// RENAME / RENAMENX: the entry (value, expiry, access time) moves to the new name.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Reply {
    let now = ctx.now_ms;
    let (src, dst) = (&args[1], &args[2]);
    if ctx.db().get(src, now).is_none() {
        return Reply::err(errors::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    if ctx.db().get(dst, now).is_some() && nx {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.db().remove(src) else { return Reply::err(errors::NO_SUCH_KEY) };
    ctx.db().insert(dst, entry);
    if nx {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

pub(super) fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, false)
}

pub(super) fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, true)
}

/// COPY source destination [DB n] [REPLACE]: the copy keeps the expiry and gets a fresh access
/// time (it is a new object).
pub(super) fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if eq_ic(&args[i], "replace") {
            replace = true;
        } else if eq_ic(&args[i], "db") && i + 1 < args.len() {
            match db_index_arg(&args[i + 1], ctx.shard.ks.dbs.len()) {
                Ok(d) => dst_db = d,
                Err(e) => return e,
            }
            i += 1;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    if ctx.shard.config.cluster_enabled && (ctx.db != 0 || dst_db != 0) {
        return Reply::err(errors::COPY_CLUSTER);
    }
    let (src, dst) = (&args[1], &args[2]);
    if src == dst && dst_db == ctx.db {
        return Reply::err(errors::SAME_OBJECT);
    }
    let now = ctx.now_ms;
    let entry = ctx.db().get(src, now).map(|e| e.clone());
    ctx.count_lookup(src, entry.is_some());
    let Some(mut entry) = entry else { return Reply::Int(0) };
    entry.lru = db::lru_clock();
    let target = &mut ctx.shard.ks.dbs[dst_db];
    if target.get(dst, now).is_some() {
        if !replace {
            return Reply::Int(0);
        }
        target.remove(dst);
    }
    target.insert(dst, entry);
    Reply::Int(1)
}

/// MOVE key db: moves the entry to the same key of another database of this shard.
pub(super) fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if ctx.shard.config.cluster_enabled {
        return Reply::err(errors::MOVE_CLUSTER);
    }
    let dst_db = match db_index_arg(&args[2], ctx.shard.ks.dbs.len()) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dst_db == ctx.db {
        return Reply::err(errors::SAME_OBJECT);
    }
    let now = ctx.now_ms;
    let key = &args[1];
    if ctx.db().get(key, now).is_none() || ctx.shard.ks.dbs[dst_db].get(key, now).is_some() {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.db().remove(key) else { return Reply::Int(0) };
    ctx.shard.ks.dbs[dst_db].insert(key, entry);
    Reply::Int(1)
}

/// OBJECT's lookup: no touch, but counted in the keyspace statistics.
fn object_lookup<T>(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&crate::storage::Entry) -> T) -> Option<T> {
    let now = ctx.now_ms;
    let r = ctx.db().get_notouch(key, now).map(|e| f(e));
    ctx.count_lookup_quiet(r.is_some());
    r
}

pub(super) fn object_encoding(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    object_lookup(ctx, &args[2], |e| Reply::bulk(e.value.encoding().as_bytes())).unwrap_or(Reply::Nil)
}

/// Values are never shared between keys here, except that Redis shares the small integers
/// (unless `maxmemory` is set with an LRU/LFU policy): those report INT_MAX like Redis.
pub(super) fn object_refcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let no_sharing = ctx.shard.config.get("maxmemory").is_some_and(|m| m != "0")
        && ctx.shard.config.get("maxmemory-policy").is_some_and(|p| p.ends_with("-lru") || p.ends_with("-lfu"));
    object_lookup(ctx, &args[2], |e| match e.value {
        Value::Str(StrValue::Int(n)) if !no_sharing && (0..SHARED_INTEGERS).contains(&n) => SHARED_REFCOUNT,
        _ => 1,
    })
    .map_or(Reply::Nil, Reply::Int)
}

/// Redis's `estimateObjectIdleTime` over its 24-bit LRU clock (seconds), so a word written
/// under another policy reads as Redis would read it.
fn idle_seconds(lru: u32, now_ms: u64) -> i64 {
    const LRU_CLOCK_MAX: i64 = (1 << 24) - 1;
    let clock = (now_ms / 1000) as i64 & LRU_CLOCK_MAX;
    let lru = lru as i64 & LRU_CLOCK_MAX;
    if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    }
}

pub(super) fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let lfu = db::lfu_enabled();
    match object_lookup(ctx, &args[2], |e| e.lru) {
        None => Reply::Nil,
        Some(_) if lfu => Reply::err(errors::LFU_SELECTED),
        Some(lru) => Reply::Int(idle_seconds(lru, now)),
    }
}

pub(super) fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let lfu = db::lfu_enabled();
    match object_lookup(ctx, &args[2], |e| e.lru) {
        None => Reply::Nil,
        Some(lru) if lfu => Reply::Int(db::lfu_counter(lru, now) as i64),
        Some(_) => Reply::err(errors::LFU_NOT_SELECTED),
    }
}

pub(super) fn object_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    Plan::Reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
