//! Database-wide generic commands: KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB.
//!
//! All but SCAN are fan-outs with every shard held at once ([`Plan::AllShards`]), so FLUSHALL
//! and SWAPDB are atomic as seen by other clients. SCAN walks hash slots in ascending order, one
//! shard's run of slots at a time ([`Plan::Scan`]): the cursor is the next slot to visit, so a
//! key present for the whole iteration is returned exactly once whatever the shard count.

use super::{errors, int32_arg};
use crate::cluster::slot::SLOTS;
use crate::cmd::ctx::{ClientCtx, ShardState};
use crate::cmd::spec::Plan;
use crate::cmd::util::{eq_ic, glob_match, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

fn sum_ints(replies: &[Reply]) -> i64 {
    replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum()
}

/// The first error among shard replies (a peer gone during shutdown), if any.
fn first_error(replies: &mut Vec<Reply>) -> Option<Reply> {
    let i = replies.iter().position(Reply::is_error)?;
    Some(replies.swap_remove(i))
}

/// DBSIZE: keys of the selected database over all shards (not yet reclaimed expired keys
/// included, as Redis counts them).
pub(super) fn dbsize(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        Reply::Int(shard.ks.dbs[db].len() as i64)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, mut replies| first_error(&mut replies).unwrap_or(Reply::Int(sum_ints(&replies)))),
    }
}

/// KEYS pattern: every live key matching the glob, from every shard.
pub(super) fn keys_cmd(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        // Fan-outs do not tick the other shards' cached clocks: read the real one.
        let now = crate::storage::now_ms();
        let pat = &args[1];
        let all = &pat[..] == b"*";
        let d = &shard.ks.dbs[db];
        let mut out = Vec::new();
        for slot in d.nonempty_slots_from(0) {
            let Some(t) = d.slot_table(slot) else { continue };
            for (k, e) in t.iter() {
                if !e.is_expired(now) && (all || glob_match(pat, k, false)) {
                    out.push(Reply::bulk(k));
                }
            }
        }
        Reply::Array(out)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, mut replies| {
            if let Some(e) = first_error(&mut replies) {
                return e;
            }
            Reply::Array(
                replies.into_iter().flat_map(|r| if let Reply::Array(v) = r { v } else { Vec::new() }).collect(),
            )
        }),
    }
}

/// SCAN options after validation.
struct ScanOpts {
    /// The cursor as the client sent it (any u64; slots >= 16384 mean "done").
    cursor: u64,
    /// MATCH pattern (None also for `*`).
    pattern: Option<Bytes>,
    /// COUNT (default 10).
    count: usize,
    /// TYPE filter.
    type_name: Option<Bytes>,
}

/// Parses a cursor like Redis's `parseScanCursorOrReply` (C `strtoul`): optional sign, decimal
/// digits, nothing else; `-N` wraps around; the empty string is 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul parses nothing: valid (0) only when the whole string is empty.
        return arg.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]` in Redis's order of checks.
fn parse_scan(args: &[Bytes]) -> Result<ScanOpts, Reply> {
    let cursor = parse_cursor(&args[1]).ok_or(Reply::err(errors::INVALID_CURSOR))?;
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
            let p = &args[i + 1];
            o.pattern = (&p[..] != b"*").then(|| p.clone());
        } else if eq_ic(&args[i], "type") && has {
            o.type_name = Some(args[i + 1].clone());
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN: validated here, executed by the runtime as a slot walk calling [`scan_shard`].
pub(super) fn scan(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match parse_scan(args) {
        Err(e) => Plan::Reply(e),
        Ok(o) if o.cursor >= SLOTS as u64 => Plan::Reply(Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(vec![])])),
        Ok(o) => Plan::Scan { cursor: o.cursor as usize, count: o.count, run: scan_shard },
    }
}

fn usize_arg(a: Option<&Bytes>) -> Option<usize> {
    std::str::from_utf8(a?).ok()?.parse().ok()
}

/// One shard's part of a SCAN: `args` = `[from, to, budget, "SCAN", cursor, options...]`.
/// Visits this shard's non-empty slots in `from..to`, whole, until `budget` keys were examined;
/// reclaims expired keys met on the way. Returns `[next slot, examined, [keys...]]`.
fn scan_shard(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let (Some(from), Some(to), Some(budget)) =
        (usize_arg(args.first()), usize_arg(args.get(1)), usize_arg(args.get(2)))
    else {
        return Reply::err("ERR internal error: malformed scan range");
    };
    let o = match args.get(3..).filter(|a| a.len() >= 2).map(parse_scan) {
        Some(Ok(o)) => o,
        Some(Err(e)) => return e,
        None => return Reply::err("ERR internal error: malformed scan range"),
    };
    let now = crate::storage::cached_ms();
    let d = &mut shard.ks.dbs[db];
    let (mut examined, mut next, mut typed) = (0usize, to.min(SLOTS), 0u64);
    let mut found = Vec::new();
    let mut expired: Vec<Box<[u8]>> = Vec::new();
    for slot in d.nonempty_slots_from(from) {
        if slot as usize >= to {
            break;
        }
        if examined >= budget {
            next = slot as usize;
            break;
        }
        let Some(t) = d.slot_table(slot) else { continue };
        for (k, e) in t.iter() {
            examined += 1;
            if e.is_expired(now) {
                expired.push(k.into());
                continue;
            }
            if o.pattern.as_ref().is_some_and(|p| !glob_match(p, k, false)) {
                continue;
            }
            if let Some(ty) = &o.type_name {
                typed += 1;
                if !e.value.type_name().as_bytes().eq_ignore_ascii_case(ty) {
                    continue;
                }
            }
            found.push(Reply::bulk(k));
        }
    }
    // Reclaimed through the lazy-expiry path, so they are counted, logged (DEL in the change
    // stream, `expired` notifications) and their watchers touched like any expired key.
    for k in &expired {
        d.get(k, now);
    }
    // The TYPE check is a (non-touching) read lookup in Redis, counted as a hit.
    shard.stats.keyspace_hits += typed;
    Reply::Array(vec![Reply::Int(next as i64), Reply::Int(examined as i64), Reply::Array(found)])
}

/// RANDOMKEY: each shard proposes one random key and its key count; one proposal is picked
/// with probability proportional to the count.
pub(super) fn randomkey(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let d = &mut shard.ks.dbs[db];
        let key = d.random_key(now).map_or(Reply::Nil, |k| Reply::Bulk(Bytes::from(k)));
        Reply::Array(vec![Reply::Int(d.len() as i64), key])
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, mut replies| {
            if let Some(e) = first_error(&mut replies) {
                return e;
            }
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

/// FLUSHDB/FLUSHALL take an optional SYNC or ASYNC.
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => eq_ic(&args[1], "sync") || eq_ic(&args[1], "async"),
        _ => false,
    }
}

/// Whether a flush frees on the lazyfree thread: ASYNC, or no mode and
/// `lazyfree-lazy-user-flush yes` (Redis's `getFlushCommandFlags`).
fn flush_async(args: &[Bytes]) -> bool {
    match args.get(1) {
        Some(m) => eq_ic(m, "async"),
        None => crate::storage::lazyfree::user_flush(),
    }
}

fn ok_or_error(mut replies: Vec<Reply>) -> Reply {
    first_error(&mut replies).unwrap_or(Reply::Ok)
}

/// A node-wide command ran on this shard (every shard runs it while all are held): each
/// counts its `removed` keys, shard 0 also counts `own` for the command itself (Redis: FLUSHDB
/// and FLUSHALL count only the keys they emptied, SWAPDB counts one) and records it once for
/// the whole node (even when it changed nothing, as Redis forces their propagation).
fn record_node_wide(shard: &mut ShardState, db: usize, removed: u64, own: u64, args: &[Bytes]) {
    if shard.id == 0 {
        shard.changes.record(db, removed + own, vec![args.to_vec()]);
    } else {
        shard.changes.count(removed);
    }
}

pub(super) fn flushdb(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if !flush_mode_ok(args) {
        return Plan::Reply(Reply::err(errors::SYNTAX));
    }
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let removed = crate::storage::lazyfree::empty_db(&mut shard.ks.dbs[db], flush_async(args));
        crate::cmd::tracking::flushed(shard);
        record_node_wide(shard, db, removed, 0, args);
        Reply::Ok
    }
    Plan::AllShards { run, merge: Box::new(|_, r| ok_or_error(r)) }
}

pub(super) fn flushall(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if !flush_mode_ok(args) {
        return Plan::Reply(Reply::err(errors::SYNTAX));
    }
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let lazy = flush_async(args);
        let removed = shard.ks.dbs.iter_mut().map(|d| crate::storage::lazyfree::empty_db(d, lazy)).sum();
        crate::cmd::tracking::flushed(shard);
        record_node_wide(shard, db, removed, 0, args);
        // Redis's `flushAllDataAndResetRDB`: a running BGSAVE is stopped (its older data
        // must not land on disk after this); with save points the now empty dataset is saved
        // at once, which also resets the dirty counter.
        if shard.id == 0 {
            crate::cmd::bgsave::stop_running();
        }
        if !crate::cmd::save::has_save_points(&shard.config) {
            return Reply::Ok;
        }
        crate::cmd::save::serialize_shard(shard, db, args)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|ctx, r| {
            if let Some(e) = r.iter().find(|p| p.is_error()) {
                return e.clone();
            }
            if r.iter().any(|p| matches!(p, Reply::Array(_))) {
                // A failed save is logged; FLUSHALL still replies +OK, as in Redis.
                let _ = crate::cmd::save::write_snapshot(&ctx.shard.config, r);
            }
            Reply::Ok
        }),
    }
}

/// SWAPDB a b: swaps the two databases on every shard while all are held.
pub(super) fn swapdb(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if ctx.shard.config.cluster_enabled {
        return Plan::Reply(Reply::err(errors::SWAPDB_CLUSTER));
    }
    let a = match int32_arg(&args[1], Some(errors::SWAPDB_FIRST)) {
        Ok(a) => a,
        Err(e) => return Plan::Reply(e),
    };
    let b = match int32_arg(&args[2], Some(errors::SWAPDB_SECOND)) {
        Ok(b) => b,
        Err(e) => return Plan::Reply(e),
    };
    let n = ctx.shard.ks.dbs.len() as i32;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Plan::Reply(Reply::err(errors::DB_INDEX));
    }
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let n = shard.ks.dbs.len();
        match (usize_arg(args.get(1)), usize_arg(args.get(2))) {
            (Some(a), Some(b)) if a < n && b < n => {
                crate::storage::watch::swap_dbs(&mut shard.ks.dbs, a, b);
                // Propagated in the caller's database, as Redis does every command.
                record_node_wide(shard, db, 0, 1, args);
                Reply::Ok
            }
            _ => Reply::err(errors::DB_INDEX),
        }
    }
    Plan::AllShards { run, merge: Box::new(|_, r| ok_or_error(r)) }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+12"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b"18446744073709551616"[..], b"+", b"-", b" 1", b"1 ", b"0x1", b"abc"] {
            assert_eq!(parse_cursor(bad), None);
        }
    }
}
