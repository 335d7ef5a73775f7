//! Transaction commands: MULTI, EXEC, DISCARD, WATCH, UNWATCH (specs), and the shard-side
//! functions WATCH and EXEC run on the shards owning watched keys.
//!
//! The queue of a transaction belongs to the connection, so `crate::conn::multi` intercepts
//! these five commands before the node handlers below would run (they answer for the parts
//! that need only the client state: MULTI's flag, and the errors outside a transaction). The
//! watch bookkeeping itself lives with the data (`crate::storage::watch`).

use super::ctx::{reply, ClientCtx, ShardState};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use bytes::Bytes;

/// Error when MULTI is sent inside a transaction.
pub const NESTED: &str = "ERR MULTI calls can not be nested";
/// EXEC outside a transaction.
pub const EXEC_WITHOUT: &str = "ERR EXEC without MULTI";
/// DISCARD outside a transaction.
pub const DISCARD_WITHOUT: &str = "ERR DISCARD without MULTI";
/// WATCH inside a transaction.
pub const WATCH_INSIDE: &str = "ERR WATCH inside MULTI is not allowed";
/// EXEC of a transaction flagged by a queueing error.
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
/// A `no-multi` command inside a transaction.
pub const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";
/// MONITOR run by EXEC (Redis's deny-blocking clients).
pub const MONITOR_IN_EXEC: &str = "ERR MONITOR isn't allowed for DENY BLOCKING client";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "@fast @transaction", Keys::None, Exec::Node(multi)),
    spec("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, "@slow @transaction", Keys::None, Exec::Node(exec)),
    spec("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "@fast @transaction", Keys::None, Exec::Node(discard)),
    spec("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "@fast @transaction", Keys::Range { first: 1, last: -1, step: 1 }, Exec::Node(watch)),
    spec("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "@fast @transaction", Keys::None, Exec::Node(unwatch)),
];

/// EXEC refused before it ran (Redis's `execCommandAbort`): the transaction is discarded and
/// the refusal is given as its reason.
pub fn exec_abort(reason: &Reply) -> Reply {
    let text = match reason {
        Reply::Error(t) => t.as_ref(),
        _ => "ERR",
    };
    Reply::error(format!("EXECABORT Transaction discarded because of: {}", text.trim_start_matches('-')))
}

/// The five commands `crate::conn::multi` handles.
pub fn is_transaction_command(fullname: &str) -> bool {
    matches!(fullname, "multi" | "exec" | "discard" | "watch" | "unwatch")
}

fn multi(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if ctx.client.multi.is_some() {
        return reply(Reply::err(NESTED));
    }
    ctx.client.multi = Some(0);
    reply(Reply::Ok)
}

// EXEC/DISCARD/WATCH/UNWATCH when reached without the connection's transaction state (they
// are intercepted by `crate::conn::multi`): the replies that need no queue or watch state.

fn exec(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::err(if ctx.client.multi.take().is_some() { EXECABORT } else { EXEC_WITHOUT }))
}

fn discard(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(if ctx.client.multi.take().is_some() { Reply::Ok } else { Reply::err(DISCARD_WITHOUT) })
}

fn watch(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(if ctx.client.multi.is_some() { Reply::err(WATCH_INSIDE) } else { Reply::Ok })
}

fn unwatch(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Ok)
}

fn client_id(args: &[Bytes]) -> Option<u64> {
    std::str::from_utf8(args.first()?).ok()?.parse().ok()
}

/// Shard side of WATCH: args = [client id, key...] in database `db`.
pub fn shard_watch(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let (Some(id), Some(d)) = (client_id(args), shard.ks.dbs.get_mut(db)) else {
        return Reply::err("ERR internal error: bad watch request");
    };
    let now = crate::storage::cached_ms();
    for k in &args[1..] {
        let expired = d.exists_even_expired(k) && !d.contains(k, now);
        d.watch.watch(id, k, expired);
    }
    Reply::Ok
}

/// Shard side of EXEC's check: args = [client id, EXEC's time in ms]. Replies 1 if a key the
/// client watches on this shard (any database) was touched or has expired by EXEC's time
/// (Redis's check reads the real clock), else 0; then forgets the client's watches here.
pub fn shard_watch_check(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let Some(id) = client_id(args) else { return Reply::err("ERR internal error: bad watch request") };
    let now = args
        .get(1)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or_else(crate::storage::cached_ms);
    let mut dirty = false;
    for d in shard.ks.dbs.iter_mut() {
        if d.watch.is_empty() {
            continue;
        }
        dirty |= d.watch.dirty_for(id, |k| d.exists_even_expired(k) && !d.contains(k, now));
        d.watch.unwatch(id);
    }
    Reply::Int(dirty as i64)
}

/// Shard side of UNWATCH (and of DISCARD, RESET, disconnect): args = [client id].
pub fn shard_unwatch(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let Some(id) = client_id(args) else { return Reply::err("ERR internal error: bad watch request") };
    for d in shard.ks.dbs.iter_mut() {
        if !d.watch.is_empty() {
            d.watch.unwatch(id);
        }
    }
    Reply::Ok
}
