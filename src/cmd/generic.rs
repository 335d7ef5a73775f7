//! Generic keyspace commands: DEL, EXISTS, EXPIRE family, TTL family, TYPE, RENAME, COPY, MOVE,
//! OBJECT (keyed), and the node-wide KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB
//! (fan-outs over all shards, held together so they are atomic).

use super::ctx::{ClientCtx, Ctx, ShardState};
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, Plan, KEY1};
use super::util::{eq_ic, glob_match, parse_i64};
use crate::cluster::slot::SLOTS;
use crate::protocol::Reply;
use crate::storage::Entry;
use bytes::Bytes;

const KEY2: Keys = keys(2, 2, 1);

/// OBJECT's subcommands.
#[rustfmt::skip]
static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("encoding", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_encoding), "generic", "2.2.3", "Inspect the internal encoding of a Redis object"),
    spec("refcount", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_refcount), "generic", "2.2.3", "Get the number of references to the value of the key"),
    spec("idletime", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_idletime), "generic", "2.2.3", "Get the time since a Redis object was last accessed"),
    spec("freq", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_freq), "generic", "4.0.0", "Get the logarithmic access frequency counter of a Redis object"),
    spec("help", 2, LOADING | STALE, "@keyspace @slow", Keys::None, Exec::Node(object_help), "generic", "6.2.0", "Show helpful text about the different subcommands"),
];

/// The generic family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, "@keyspace @write @slow", keys(1, -1, 1), Exec::Keyed(del), "generic", "1.0.0", "Delete a key"),
    spec("unlink", -2, WRITE | FAST, "@keyspace @write @fast", keys(1, -1, 1), Exec::Keyed(del), "generic", "4.0.0", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking."),
    spec("exists", -2, READONLY | FAST, "@keyspace @read @fast", keys(1, -1, 1), Exec::Keyed(exists), "generic", "1.0.0", "Determine if a key exists"),
    spec("touch", -2, READONLY | FAST, "@keyspace @read @fast", keys(1, -1, 1), Exec::Keyed(exists), "generic", "3.2.1", "Alters the last access time of a key(s). Returns the number of existing keys specified."),
    spec("type", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(type_cmd), "generic", "1.0.0", "Determine the type stored at key"),
    spec("expire", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(expire), "generic", "1.0.0", "Set a key's time to live in seconds"),
    spec("pexpire", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(pexpire), "generic", "2.6.0", "Set a key's time to live in milliseconds"),
    spec("expireat", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(expireat), "generic", "1.2.0", "Set the expiration for a key as a UNIX timestamp"),
    spec("pexpireat", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(pexpireat), "generic", "2.6.0", "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    spec("ttl", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(ttl), "generic", "1.0.0", "Get the time to live for a key in seconds"),
    spec("pttl", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(pttl), "generic", "2.6.0", "Get the time to live for a key in milliseconds"),
    spec("expiretime", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(expiretime), "generic", "7.0.0", "Get the expiration Unix timestamp for a key"),
    spec("pexpiretime", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(pexpiretime), "generic", "7.0.0", "Get the expiration Unix timestamp for a key in milliseconds"),
    spec("persist", 2, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(persist), "generic", "2.2.0", "Remove the expiration from a key"),
    spec("rename", 3, WRITE, "@keyspace @write @slow", keys(1, 2, 1), Exec::Keyed(rename), "generic", "1.0.0", "Rename a key"),
    spec("renamenx", 3, WRITE | FAST, "@keyspace @write @fast", keys(1, 2, 1), Exec::Keyed(renamenx), "generic", "1.0.0", "Rename a key, only if the new key does not exist"),
    spec("copy", -3, WRITE | DENYOOM, "@keyspace @write @slow", keys(1, 2, 1), Exec::Keyed(copy), "generic", "6.2.0", "Copy a key"),
    spec("move", 3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(move_cmd), "generic", "1.0.0", "Move a key to another database"),
    CommandSpec { subcommands: OBJECT_SUBCOMMANDS, ..spec("object", -2, 0, "@slow", Keys::None, Exec::Container, "generic", "1.2.3", "A container for object introspection commands") },
    spec("keys", 2, READONLY, "@keyspace @read @slow @dangerous", Keys::None, Exec::Node(keys_cmd), "generic", "1.0.0", "Find all keys matching the given pattern"),
    spec("scan", -2, READONLY, "@keyspace @read @slow", Keys::None, Exec::Node(scan), "generic", "2.8.0", "Incrementally iterate the keys space"),
    spec("randomkey", 1, READONLY, "@keyspace @read @slow", Keys::None, Exec::Node(randomkey), "generic", "1.0.0", "Return a random key from the keyspace"),
    spec("dbsize", 1, READONLY | FAST, "@keyspace @read @fast", Keys::None, Exec::Node(dbsize), "server", "1.0.0", "Return the number of keys in the selected database"),
    spec("flushdb", -1, WRITE, "@keyspace @write @slow @dangerous", Keys::None, Exec::Node(flushdb), "server", "1.0.0", "Remove all keys from the current database"),
    spec("flushall", -1, WRITE, "@keyspace @write @slow @dangerous", Keys::None, Exec::Node(flushall), "server", "1.0.0", "Remove all keys from all databases"),
    spec("swapdb", 3, WRITE | FAST, "@keyspace @write @fast @dangerous", Keys::None, Exec::Node(swapdb), "server", "4.0.0", "Swaps two Redis databases"),
];

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if db.get_notouch(k, now).is_some() {
            db.remove(k);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    Reply::Int(args[1..].iter().filter(|k| db.get(k, now).is_some()).count() as i64)
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[1], now) {
        Some(e) => Reply::status(e.value.type_name()),
        None => Reply::status("none"),
    }
}

/// EXPIRE family: `base` = ms added to the argument scaled by `unit_ms` (0 for absolute times).
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: i64, relative: bool, name: &str) -> Reply {
    let Some(n) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if eq_ic(a, "nx") {
            nx = true;
        } else if eq_ic(a, "xx") {
            xx = true;
        } else if eq_ic(a, "gt") {
            gt = true;
        } else if eq_ic(a, "lt") {
            lt = true;
        } else {
            return Reply::error(format!("ERR Unsupported option {}", String::from_utf8_lossy(a)));
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Reply::err("ERR GT and LT options at the same time are not compatible");
    }
    let now = ctx.now_ms as i64;
    let at = n.checked_mul(unit_ms).and_then(|ms| if relative { ms.checked_add(now) } else { Some(ms) });
    let Some(at) = at else { return Reply::error(errors::invalid_expire(name)) };
    let key = &args[1];
    let cur = match ctx.db().get_notouch(key, now as u64) {
        None => return Reply::Int(0),
        Some(e) => e.expire_at,
    };
    // A persistent key counts as an infinite TTL for GT/LT.
    if (nx && cur != 0)
        || (xx && cur == 0)
        || (gt && (cur == 0 || at <= cur as i64))
        || (lt && cur != 0 && at >= cur as i64)
    {
        return Reply::Int(0);
    }
    if at <= now {
        ctx.db().remove(key);
    } else {
        ctx.db().set_expire(key, at as u64);
    }
    Reply::Int(1)
}

fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, true, "expire")
}
fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, true, "pexpire")
}
fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, false, "expireat")
}
fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, false, "pexpireat")
}

/// -2 missing, -1 no expiry, else the expiry mapped by `f`.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[Bytes], f: impl Fn(u64, u64) -> i64) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(&args[1], now) {
        None => Reply::Int(-2),
        Some(Entry { expire_at: 0, .. }) => Reply::Int(-1),
        Some(e) => Reply::Int(f(e.expire_at, now)),
    }
}

fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, now| (at.saturating_sub(now) as i64 + 500) / 1000)
}
fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, now| at.saturating_sub(now) as i64)
}
fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, _| ((at + 500) / 1000) as i64)
}
fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |at, _| at as i64)
}

fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(&args[1], now) {
        Some(e) if e.expire_at != 0 => {
            ctx.db().set_expire(&args[1], 0);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Reply {
    let now = ctx.now_ms;
    let (src, dst) = (&args[1], &args[2]);
    if ctx.db().get_notouch(src, now).is_none() {
        return Reply::err(errors::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    if nx && ctx.db().contains(dst, now) {
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

fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, false)
}
fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, true)
}

fn parse_db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, Reply> {
    match parse_i64(arg) {
        None => Err(Reply::err(errors::NOT_INTEGER)),
        Some(n) if n < 0 || n as usize >= ctx.shard.ks.dbs.len() => Err(Reply::err(errors::DB_INDEX)),
        Some(n) => Ok(n as usize),
    }
}

fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if eq_ic(&args[i], "replace") {
            replace = true;
        } else if eq_ic(&args[i], "db") && i + 1 < args.len() {
            match parse_db_index(ctx, &args[i + 1]) {
                Ok(d) => dst_db = d,
                Err(e) => return e,
            }
            i += 1;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src == dst && dst_db == ctx.db {
        return Reply::err(errors::SAME_OBJECT);
    }
    let now = ctx.now_ms;
    let Some(entry) = ctx.db().get_notouch(src, now).map(|e| e.clone()) else { return Reply::Int(0) };
    let target = &mut ctx.shard.ks.dbs[dst_db];
    if target.contains(dst, now) {
        if !replace {
            return Reply::Int(0);
        }
        target.remove(dst);
    }
    target.insert(dst, entry);
    Reply::Int(1)
}

fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let dst_db = match parse_db_index(ctx, &args[2]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dst_db == ctx.db {
        return Reply::err(errors::SAME_OBJECT);
    }
    let now = ctx.now_ms;
    let key = &args[1];
    if ctx.db().get_notouch(key, now).is_none() || ctx.shard.ks.dbs[dst_db].contains(key, now) {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.db().remove(key) else { return Reply::Int(0) };
    ctx.shard.ks.dbs[dst_db].insert(key, entry);
    Reply::Int(1)
}

fn object_encoding(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[2], now) {
        Some(e) => Reply::bulk(e.value.encoding().as_bytes()),
        None => Reply::Nil,
    }
}

fn object_refcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[2], now) {
        // Shared small integers report INT_MAX in Redis; values here are never shared.
        Some(_) => Reply::Int(1),
        None => Reply::Nil,
    }
}

fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[2], now) {
        Some(e) => Reply::Int(((now / 1000) as u32).saturating_sub(e.lru) as i64),
        None => Reply::Nil,
    }
}

fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get_notouch(&args[2], now) {
        // No maxmemory policy is implemented, so no LFU policy can be selected.
        Some(_) => Reply::err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        None => Reply::Nil,
    }
}

fn object_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
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

// ---- node-wide commands ----------------------------------------------------------------

fn sum_ints(replies: &[Reply]) -> i64 {
    replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum()
}

fn dbsize(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        Reply::Int(shard.ks.dbs[db].len() as i64)
    }
    Plan::AllShards { run, merge: Box::new(|_, replies| Reply::Int(sum_ints(&replies))) }
}

fn keys_cmd(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let pat = &args[1];
        let all = &pat[..] == b"*";
        let d = &shard.ks.dbs[db];
        let mut out = Vec::new();
        for slot in d.nonempty_slots_from(0) {
            if let Some(t) = d.slot_table(slot) {
                for (k, e) in t.iter() {
                    if !e.is_expired(now) && (all || glob_match(pat, k, false)) {
                        out.push(Reply::bulk(k));
                    }
                }
            }
        }
        Reply::Array(out)
    }
    Plan::AllShards { run, merge: Box::new(|_, replies| Reply::Array(concat(replies))) }
}

fn concat(replies: Vec<Reply>) -> Vec<Reply> {
    replies.into_iter().flat_map(|r| if let Reply::Array(v) = r { v } else { Vec::new() }).collect()
}

/// SCAN options after validation.
struct ScanOpts {
    cursor: u64,
    pattern: Option<Bytes>,
    count: usize,
    type_name: Option<Bytes>,
}

fn parse_scan(args: &[Bytes]) -> Result<ScanOpts, Reply> {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Reply::err("ERR invalid cursor"))?;
    let mut o = ScanOpts { cursor, pattern: None, count: 10, type_name: None };
    let mut i = 2;
    while i < args.len() {
        let has = i + 1 < args.len();
        if eq_ic(&args[i], "count") && has {
            match parse_i64(&args[i + 1]) {
                Some(n) if n >= 1 => o.count = n as usize,
                Some(_) => return Err(Reply::err(errors::SYNTAX)),
                None => return Err(Reply::err(errors::NOT_INTEGER)),
            }
        } else if eq_ic(&args[i], "match") && has {
            o.pattern = Some(args[i + 1].clone());
        } else if eq_ic(&args[i], "type") && has {
            o.type_name = Some(args[i + 1].clone());
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN: the cursor is the next hash slot to visit (0 = start and end). Every shard walks its
/// own non-empty slots from the cursor, whole slots at a time, until it has COUNT keys; the
/// reply covers the slots below the smallest point where a shard stopped, so keys present for
/// the whole iteration are returned exactly once even if slots move between shards.
fn scan(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if let Err(e) = parse_scan(args) {
        return Plan::Reply(e);
    }
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let Ok(o) = parse_scan(args) else { return Reply::err(errors::SYNTAX) };
        let now = crate::storage::now_ms();
        let d = &shard.ks.dbs[db];
        let mut found = Vec::new();
        let mut stop = SLOTS as i64;
        let mut n = 0;
        for slot in d.nonempty_slots_from(o.cursor.min(SLOTS as u64) as usize) {
            if n >= o.count {
                stop = slot as i64;
                break;
            }
            let Some(t) = d.slot_table(slot) else { continue };
            for (k, e) in t.iter() {
                n += 1;
                if e.is_expired(now) {
                    continue;
                }
                if let Some(p) = &o.pattern {
                    if !glob_match(p, k, false) {
                        continue;
                    }
                }
                if let Some(ty) = &o.type_name {
                    if !e.value.type_name().as_bytes().eq_ignore_ascii_case(ty) {
                        continue;
                    }
                }
                found.push(Reply::Int(slot as i64));
                found.push(Reply::bulk(k));
            }
        }
        Reply::Array(vec![Reply::Int(stop), Reply::Array(found)])
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            let mut stop = SLOTS as i64;
            for r in &replies {
                if let Reply::Array(v) = r {
                    if let Some(Reply::Int(s)) = v.first() {
                        stop = stop.min(*s);
                    }
                }
            }
            let mut keys = Vec::new();
            for r in replies {
                let Reply::Array(mut v) = r else { continue };
                let Some(Reply::Array(found)) = v.pop() else { continue };
                let mut it = found.into_iter();
                while let (Some(Reply::Int(slot)), Some(key)) = (it.next(), it.next()) {
                    if slot < stop {
                        keys.push(key);
                    }
                }
            }
            let next = if stop >= SLOTS as i64 { 0 } else { stop };
            Reply::Array(vec![Reply::bulk_int(next), Reply::Array(keys)])
        }),
    }
}

fn randomkey(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let d = &mut shard.ks.dbs[db];
        let key = d.random_key(now).map_or(Reply::Nil, |k| Reply::Bulk(Bytes::from(k)));
        Reply::Array(vec![Reply::Int(d.len() as i64), key])
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            let cands: Vec<(i64, Reply)> = replies
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Array(mut v) if v.len() == 2 => {
                        let key = v.pop()?;
                        let Some(Reply::Int(n)) = v.pop() else { return None };
                        (n > 0 && key != Reply::Nil).then_some((n, key))
                    }
                    _ => None,
                })
                .collect();
            let total: i64 = cands.iter().map(|c| c.0).sum();
            if total == 0 {
                return Reply::Nil;
            }
            let mut pick = fastrand::i64(0..total);
            for (n, k) in cands {
                if pick < n {
                    return k;
                }
                pick -= n;
            }
            Reply::Nil
        }),
    }
}

/// FLUSHDB/FLUSHALL accept SYNC or ASYNC (both free memory before replying here).
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => eq_ic(&args[1], "sync") || eq_ic(&args[1], "async"),
        _ => false,
    }
}

fn flushdb(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if !flush_mode_ok(args) {
        return Plan::Reply(Reply::err(errors::SYNTAX));
    }
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        shard.ks.dbs[db].clear();
        Reply::Ok
    }
    Plan::AllShards { run, merge: Box::new(|_, _| Reply::Ok) }
}

fn flushall(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if !flush_mode_ok(args) {
        return Plan::Reply(Reply::err(errors::SYNTAX));
    }
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        for d in shard.ks.dbs.iter_mut() {
            d.clear();
        }
        Reply::Ok
    }
    Plan::AllShards { run, merge: Box::new(|_, _| Reply::Ok) }
}

fn swapdb(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let n = ctx.shard.ks.dbs.len() as i64;
    let a = match parse_i64(&args[1]) {
        Some(a) => a,
        None => return Plan::Reply(Reply::err("ERR invalid first DB index")),
    };
    let b = match parse_i64(&args[2]) {
        Some(b) => b,
        None => return Plan::Reply(Reply::err("ERR invalid second DB index")),
    };
    if a < 0 || a >= n || b < 0 || b >= n {
        return Plan::Reply(Reply::err(errors::DB_INDEX));
    }
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let (Some(a), Some(b)) = (parse_i64(&args[1]), parse_i64(&args[2])) else { return Reply::Ok };
        shard.ks.dbs.swap(a as usize, b as usize);
        Reply::Ok
    }
    Plan::AllShards { run, merge: Box::new(|_, _| Reply::Ok) }
}
