//! What a write command changed, and the commands that reproduce the change elsewhere
//! (Redis's `server.dirty` rule and its propagation form: `call()`, `alsoPropagate`,
//! `rewriteClientCommandVector`).
//!
//! A command that changed nothing (a failed SET NX, SADD of present members, a pop from an
//! empty key) counts 0 and records nothing. Relative or random effects become deterministic:
//! expiries are absolute (`SET .. PXAT`, `PEXPIREAT`), SPOP is SREM of what it popped,
//! INCRBYFLOAT is a SET of its result, RESTORE's ttl
//! is absolute with ABSTTL. Everything else is propagated as the client sent it.
//!
//! Node-wide commands (FLUSHDB, FLUSHALL, SWAPDB) and MIGRATE's delete record themselves in
//! their shard functions; this table covers commands run by `execute_keyed`. Where only the
//! handler knows the count (ZADD's added+updated, SETBIT of an equal bit, LTRIM's removed
//! elements, SMOVE into a set that has the member, PFADD's changed registers, ...), the
//! handler reports it with `Ctx::dirty`, which overrides this table.

use super::notify::Before;
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::replication::feed::Argv;
use bytes::Bytes;

/// The effect of one successful (non-error) execution of a write command: the number of
/// changes (Redis's dirty increment) and the commands to propagate.
/// `before` says which keys existed before the command (taken for the store commands, see
/// `notify::needs_before`).
pub fn effects(name: &str, args: &[Bytes], reply: &Reply, now_ms: u64, before: &Before) -> (u64, Vec<Argv>) {
    effects_for(name, args, reply, now_ms, before, true)
}

/// [`effects`], building the commands only when `argv` is true (someone records them: the
/// replication feed or keyspace notifications). The count is the same either way; without
/// `argv` the common commands (those propagated as sent, and SET) return no commands, so a
/// node without replicas, AOF or notifications copies no arguments per write.
pub fn effects_for(
    name: &str,
    args: &[Bytes],
    reply: &Reply,
    now_ms: u64,
    before: &Before,
    argv: bool,
) -> (u64, Vec<Argv>) {
    let verbatim = |n: u64| (n, if argv { vec![args.to_vec()] } else { Vec::new() });
    let none = (0, Vec::new());
    let int = match reply {
        Reply::Int(n) => Some(*n),
        Reply::Bool(t) => Some(*t as i64),
        _ => None,
    };
    let nil = matches!(reply, Reply::Nil | Reply::NilArray) || matches!(reply, Reply::Array(v) if v.is_empty());
    let argc = args.len() as u64;
    match name {
        // Counted by their integer reply; 0 = nothing changed.
        "sadd" | "srem" | "hdel" | "zrem" | "lrem" | "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex"
        | "del" | "unlink" | "xdel" | "xtrim" => match int {
            Some(n) if n > 0 => verbatim(n as u64),
            _ => none,
        },
        "hsetnx" | "smove" | "renamenx" | "setnx" | "persist" | "move" | "copy" | "pfadd" | "linsert" => match int {
            Some(n) if n > 0 => verbatim(1),
            _ => none,
        },
        "msetnx" => match int {
            Some(1) => verbatim((argc - 1) / 2),
            _ => none,
        },
        "lpushx" | "rpushx" => match int {
            Some(n) if n > 0 => verbatim(argc - 2),
            _ => none,
        },
        "lpush" | "rpush" => verbatim(argc - 2),
        // RENAME k k changes nothing.
        "rename" if args[1] == args[2] => none,
        "setrange" if args[3].is_empty() => none,
        // Stored a result (one change), or deleted the destination for an empty one.
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore" => {
            match int {
                Some(n) if n > 0 => verbatim(1),
                _ if before.existed(&args[1]) => verbatim(1),
                _ => none,
            }
        }
        "bitop" => match int {
            Some(n) if n > 0 => verbatim(1),
            _ if before.existed(&args[2]) => verbatim(1),
            _ => none,
        },
        // SORT .. STORE counts the stored elements (or the deletion of the destination).
        "sort" if super::notify::sort_store_dest(args).is_some() => match int {
            Some(n) if n > 0 => verbatim(n as u64),
            _ if super::notify::sort_store_dest(args).is_some_and(|d| before.existed(d)) => verbatim(1),
            _ => none,
        },
        "hset" | "hmset" => verbatim((argc - 2) / 2),
        "mset" => verbatim((argc - 1) / 2),
        "expire" | "pexpire" | "expireat" | "pexpireat" => match int {
            Some(1) => expire_effect(name, args, now_ms),
            _ => none,
        },
        "set" => set_effect(args, reply, now_ms, argv),
        "setex" | "psetex" => {
            let unit = if name == "setex" { 1000 } else { 1 };
            let at = parse_i64(&args[2]).map_or(now_ms, |t| now_ms.saturating_add((t.max(0) as u64) * unit));
            (1, vec![vec![b("SET"), args[1].clone(), args[3].clone(), b("PXAT"), num(at)]])
        }
        "getex" => getex_effect(args, reply, now_ms),
        // A write whether or not the key existed (its reply is then nil); Redis propagates it
        // as SET.
        "getset" => (1, vec![vec![b("SET"), args[1].clone(), args[2].clone()]]),
        "getdel" if !nil => (1, vec![vec![b("DEL"), args[1].clone()]]),
        "incrbyfloat" => match bulk(reply) {
            Some(v) => (1, vec![vec![b("SET"), args[1].clone(), v, b("KEEPTTL")]]),
            None => none,
        },
        "hincrbyfloat" => match bulk(reply) {
            Some(v) => (1, vec![vec![b("HSET"), args[1].clone(), args[2].clone(), v]]),
            None => none,
        },
        "spop" => match reply {
            Reply::Bulk(_) | Reply::ShortBulk(_) => {
                (1, vec![vec![b("SREM"), args[1].clone(), bulk(reply).unwrap_or_default()]])
            }
            Reply::Array(ms) | Reply::Set(ms) if !ms.is_empty() => {
                let mut v = vec![b("SREM"), args[1].clone()];
                v.extend(ms.iter().filter_map(bulk));
                (ms.len() as u64, vec![v])
            }
            _ => none,
        },
        // Blocking pops record the pop they performed themselves (`blocking::Serve::from_key`),
        // whether served at once or later.
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" => none,
        "restore" | "restore-asking" => restore_effect(args, now_ms),
        "sort" => none,
        // GEORADIUS & co.: a query, or a STORE counting the stored items (Redis's
        // `dirty += returned_items`, or one for deleting the destination).
        "georadius" | "georadiusbymember" | "geosearchstore" => match super::notify::geo_store_dest(name, args) {
            None => none,
            Some(dst) => match int {
                Some(n) if n > 0 => verbatim(n as u64),
                _ if before.existed(dst) => verbatim(1),
                _ => none,
            },
        },
        "pfdebug" => match (args.get(1), int) {
            (Some(sub), Some(1)) if eq_ic(sub, "todense") => verbatim(1),
            _ => none,
        },
        "bitfield" if !args.iter().skip(2).any(|a| eq_ic(a, "set") || eq_ic(a, "incrby")) => none,
        // MIGRATE records the DEL of what the target took, in its own delete step.
        "migrate" => none,
        _ if nil => none,
        _ => verbatim(1),
    }
}

/// Commands that signal WATCH (Redis's `signalModifiedKey`) even when they changed nothing:
/// LTRIM of an existing list (the caller touches only keys that existed).
pub fn signals_unchanged(name: &str, reply: &Reply) -> bool {
    name == "ltrim" && matches!(reply, Reply::Ok)
}

/// The pop Redis propagates a *MPOP as, and a blocking pop served from `key`:
/// `LPOP|RPOP|ZPOPMIN|ZPOPMAX key [n]`, `n` being the number of elements popped (the
/// single-key blocking forms BLPOP/BZPOPMIN/... propagate without it).
pub fn pop_form(verb: &'static str, key: &Bytes, popped: Option<u64>) -> Argv {
    let mut v = vec![b(verb), key.clone()];
    v.extend(popped.map(num));
    v
}

/// A key a write that changed something leaves unsignalled: SMOVE's destination when it
/// already held the member (`dirty` 1: only the source lost it), as Redis signals it only on
/// a successful add.
pub fn unsignalled_key<'a>(name: &str, args: &'a [Bytes], dirty: u64) -> Option<&'a Bytes> {
    (name == "smove" && dirty == 1).then(|| &args[2])
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn num(n: u64) -> Bytes {
    Bytes::from(n.to_string())
}

fn bulk(r: &Reply) -> Option<Bytes> {
    match r {
        Reply::Bulk(v) => Some(v.clone()),
        Reply::ShortBulk(v) => Some(Bytes::copy_from_slice(v.as_slice())),
        _ => None,
    }
}

/// EXPIRE & co. that set a ttl: PEXPIREAT with the absolute time and the same options, or the
/// DEL it performed when the time was already past.
fn expire_effect(name: &str, args: &[Bytes], now_ms: u64) -> (u64, Vec<Argv>) {
    let Some(t) = parse_i64(&args[2]) else { return (0, Vec::new()) };
    let at = match name {
        "expire" => (now_ms as i64).saturating_add(t.saturating_mul(1000)),
        "pexpire" => (now_ms as i64).saturating_add(t),
        "expireat" => t.saturating_mul(1000),
        _ => t,
    };
    if at <= now_ms as i64 {
        return (1, vec![vec![b("DEL"), args[1].clone()]]);
    }
    let mut v = vec![b("PEXPIREAT"), args[1].clone(), Bytes::from(at.to_string())];
    v.extend(args[3..].iter().cloned());
    (1, vec![v])
}

/// SET: whether it wrote (NX/XX with or without GET), and the PXAT form of a relative expiry.
fn set_effect(args: &[Bytes], reply: &Reply, now_ms: u64, argv: bool) -> (u64, Vec<Argv>) {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expire: Option<u64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1).and_then(|v| parse_i64(v)).map(|v| v.max(0) as u64);
        if eq_ic(a, "nx") {
            nx = true;
        } else if eq_ic(a, "xx") {
            xx = true;
        } else if eq_ic(a, "get") {
            get = true;
        } else if eq_ic(a, "ex") || eq_ic(a, "px") || eq_ic(a, "exat") || eq_ic(a, "pxat") {
            let v = next.unwrap_or(0);
            expire = Some(if eq_ic(a, "ex") {
                now_ms.saturating_add(v.saturating_mul(1000))
            } else if eq_ic(a, "px") {
                now_ms.saturating_add(v)
            } else if eq_ic(a, "exat") {
                v.saturating_mul(1000)
            } else {
                v
            });
            i += 1;
        }
        i += 1;
    }
    let is_nil = matches!(reply, Reply::Nil);
    let wrote = match (nx, xx, get) {
        (false, false, _) => true,
        (_, _, false) => !is_nil,
        // With GET the reply is the old value: NX wrote when there was none, XX when there was.
        (true, _, true) => is_nil,
        (false, true, true) => !is_nil,
    };
    if !wrote {
        return (0, Vec::new());
    }
    if !argv {
        return (1, Vec::new());
    }
    match expire {
        Some(at) => (1, vec![vec![b("SET"), args[1].clone(), args[2].clone(), b("PXAT"), num(at)]]),
        None => (1, vec![args.to_vec()]),
    }
}

/// GETEX with an option: PEXPIREAT / PERSIST (DEL when the time is past); plain GETEX reads.
fn getex_effect(args: &[Bytes], reply: &Reply, now_ms: u64) -> (u64, Vec<Argv>) {
    if args.len() < 3 || matches!(reply, Reply::Nil) {
        return (0, Vec::new());
    }
    let opt = &args[2];
    if eq_ic(opt, "persist") {
        return (1, vec![vec![b("PERSIST"), args[1].clone()]]);
    }
    let v = args.get(3).and_then(|v| parse_i64(v)).unwrap_or(0);
    let at = if eq_ic(opt, "ex") {
        (now_ms as i64).saturating_add(v.saturating_mul(1000))
    } else if eq_ic(opt, "px") {
        (now_ms as i64).saturating_add(v)
    } else if eq_ic(opt, "exat") {
        v.saturating_mul(1000)
    } else {
        v
    };
    if at <= now_ms as i64 {
        return (1, vec![vec![b("DEL"), args[1].clone()]]);
    }
    (1, vec![vec![b("PEXPIREAT"), args[1].clone(), Bytes::from(at.to_string())]])
}

/// RESTORE with a relative ttl: the absolute time plus ABSTTL.
fn restore_effect(args: &[Bytes], now_ms: u64) -> (u64, Vec<Argv>) {
    let mut v = args.to_vec();
    let absttl = args.iter().skip(4).any(|a| eq_ic(a, "absttl"));
    if let (false, Some(ttl)) = (absttl, parse_i64(&args[2])) {
        if ttl > 0 {
            v[2] = Bytes::from((now_ms as i64).saturating_add(ttl).to_string());
            v.push(b("ABSTTL"));
        }
    }
    (1, vec![v])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    #[test]
    fn relative_expiries_become_absolute() {
        let (n, cmds) =
            effects("set", &a(&["set", "k", "v", "EX", "10", "GET"]), &Reply::Nil, 1000, &Before::default());
        assert_eq!((n, cmds), (1, vec![a(&["SET", "k", "v", "PXAT", "11000"])]));
        let (_, cmds) = effects("expire", &a(&["expire", "k", "5", "NX"]), &Reply::Int(1), 1000, &Before::default());
        assert_eq!(cmds, vec![a(&["PEXPIREAT", "k", "6000", "NX"])]);
        let (_, cmds) = effects("pexpire", &a(&["pexpire", "k", "-1"]), &Reply::Int(1), 1000, &Before::default());
        assert_eq!(cmds, vec![a(&["DEL", "k"])]);
        let (_, cmds) = effects("setex", &a(&["setex", "k", "2", "v"]), &Reply::Ok, 1000, &Before::default());
        assert_eq!(cmds, vec![a(&["SET", "k", "v", "PXAT", "3000"])]);
    }

    #[test]
    fn no_ops_record_nothing() {
        assert_eq!(effects("sadd", &a(&["sadd", "s", "x"]), &Reply::Int(0), 0, &Before::default()), (0, vec![]));
        assert_eq!(effects("set", &a(&["set", "k", "v", "NX"]), &Reply::Nil, 0, &Before::default()), (0, vec![]));
        assert_eq!(
            effects("set", &a(&["set", "k", "v", "NX", "GET"]), &Reply::Bulk(Bytes::from("o")), 0, &Before::default()),
            (0, vec![])
        );
        assert_eq!(effects("lpop", &a(&["lpop", "l"]), &Reply::Nil, 0, &Before::default()), (0, vec![]));
        assert_eq!(
            effects("getex", &a(&["getex", "k"]), &Reply::Bulk(Bytes::from("v")), 0, &Before::default()),
            (0, vec![])
        );
    }

    #[test]
    fn counts_without_argv_match() {
        let cases: Vec<(&str, Vec<Bytes>, Reply)> = vec![
            ("set", a(&["set", "k", "v"]), Reply::Ok),
            ("set", a(&["set", "k", "v", "PX", "10"]), Reply::Ok),
            ("set", a(&["set", "k", "v", "NX"]), Reply::Nil),
            ("sadd", a(&["sadd", "s", "x", "y"]), Reply::Int(2)),
            ("sadd", a(&["sadd", "s", "x"]), Reply::Int(0)),
            ("hset", a(&["hset", "h", "f", "v", "g", "w"]), Reply::Int(1)),
            ("lpush", a(&["lpush", "l", "a", "b"]), Reply::Int(2)),
            ("incr", a(&["incr", "n"]), Reply::Int(3)),
            ("lpop", a(&["lpop", "l"]), Reply::Nil),
        ];
        for (name, args, reply) in cases {
            let full = effects(name, &args, &reply, 5, &Before::default());
            let (n, cmds) = effects_for(name, &args, &reply, 5, &Before::default(), false);
            assert_eq!(n, full.0, "{name} {args:?}");
            assert!(cmds.is_empty() || cmds == full.1, "{name}");
        }
    }

    #[test]
    fn random_and_float_results_are_replayed_as_values() {
        let (_, cmds) = effects(
            "spop",
            &a(&["spop", "s", "2"]),
            &Reply::Set(vec![Reply::Bulk(Bytes::from("x"))]),
            0,
            &Before::default(),
        );
        assert_eq!(cmds, vec![a(&["SREM", "s", "x"])]);
        let (_, cmds) = effects(
            "incrbyfloat",
            &a(&["incrbyfloat", "f", "1.5"]),
            &Reply::Bulk(Bytes::from("2.5")),
            0,
            &Before::default(),
        );
        assert_eq!(cmds, vec![a(&["SET", "f", "2.5", "KEEPTTL"])]);
    }
}
