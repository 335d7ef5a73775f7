//! The command table and the command families.
//!
//! Every command is declared once, as a [`CommandSpec`] in its family's file (`string.rs`,
//! `generic.rs`, `server.rs`, `connection.rs`, ...). The spec drives everything generic: lookup,
//! arity and auth checks, key extraction and routing, COMMAND, per-command stats.
//!
//! Two kinds of handlers exist:
//! - [`Exec::Keyed`]: runs on the shard that owns the command's keys, against that shard's
//!   [`ShardState`], synchronously. Multi-key commands whose keys span shards run here too, on a
//!   temporary view holding copies of their keys (see `crate::transaction`).
//! - [`Exec::Node`]: runs on the client's home shard with its [`ClientCtx`] and returns a
//!   [`Plan`]: a reply now, or work for the runtime (fan out to all shards, sleep, close, ...).
//!
//! This module never awaits and never names the runtime: the runtime executes plans.

pub mod acl;
pub mod aof;
pub mod bgsave;
pub mod bitmap;
pub mod blocked;
pub mod blocking;
pub mod client_pause;
pub mod cluster;
pub mod cluster_info;
pub mod config;
pub mod connection;
pub mod ctx;
pub mod debug;
pub mod debug_reload;
pub mod digest;
pub mod dump;
pub mod errors;
pub mod failover;
pub mod function;
pub mod generic;
pub mod geo;
pub mod hash;
pub mod histogram;
pub mod hll;
pub mod info;
pub mod instant;
pub mod latency;
pub mod latency_graph;
pub mod list;
pub mod lolwut;
pub mod long_double;
pub mod memory;
pub mod meta;
#[rustfmt::skip]
mod meta_table;
pub mod migrate;
pub mod module;
pub mod multi;
pub mod notify;
pub mod notify_order;
pub mod propagate;
pub mod pubsub;
pub mod pubsub_reg;
pub mod redact;
pub mod replicaof;
pub mod replication;
pub mod save;
pub mod scan_walk;
pub mod scripting;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod spec;
pub mod stream;
pub mod stream_group;
pub mod stream_info;
pub mod stream_read;
pub mod string;
pub mod table;
pub mod tracking;
pub mod tracking_reg;
pub mod util;
pub mod zset;
pub mod zset_ops;

pub use ctx::{ClientCtx, ClientState, Ctx, NodeInfo, ShardState};
pub use spec::{flags, CommandSpec, Exec, Keys, MergeFn, Plan, ShardFn, ShutdownArgs};
pub use table::lookup;

use crate::protocol::Reply;
use bytes::Bytes;

/// Runs a keyed command on its owning shard, counting it in INFO commandstats.
///
/// `clock` is the time the previous command of the batch finished (or the batch started); it is
/// advanced to now, so a batch reads the monotonic clock once per command. The command's
/// wall-clock time is the thread's cached clock (`storage::tick_clock` once per batch).
pub fn execute_keyed(
    shard: &mut ShardState,
    spec: &'static CommandSpec,
    fullname: &'static str,
    args: &[Bytes],
    slot: Option<u16>,
    db: usize,
    clock: &mut crate::clock::Stamp,
) -> Reply {
    let Exec::Keyed(f) = spec.exec else {
        return Reply::err("ERR internal error: not a keyed command");
    };
    shard.sync_recording();
    // WATCH: in-place modifications do not pass through `Db::insert`/`remove`, so a write
    // command touches its watched keys itself (only when this database has watchers).
    let watched: Option<Vec<(Bytes, bool)>> = match shard.ks.dbs.get(db) {
        Some(d) if spec.has(flags::WRITE) && !d.watch.is_empty() => spec.key_indexes(args).ok().map(|idx| {
            idx.into_iter()
                .filter(|&i| d.watch.watches(&args[i]))
                .map(|i| (args[i].clone(), d.exists_even_expired(&args[i])))
                .collect()
        }),
        _ => None,
    };
    // The key's slot, known from routing, is looked up by the keyspace instead of rehashing
    // the key; the hint lives exactly as long as `args`' borrow here.
    let hinted = match (slot, shard.ks.dbs.get_mut(db)) {
        (Some(s), Some(d)) => {
            d.hint_slot(&args[1], s);
            true
        }
        _ => false,
    };
    let now_ms = crate::storage::cached_ms();
    // Which keys existed before: only while notifications are on, or for the store commands
    // whose dirty count depends on their destination.
    let before = if notify::enabled()
        || notify::needs_before(spec.name)
        || (matches!(spec.name, "del" | "unlink" | "create" | "ltrim") && shard.node.tracking.active())
    {
        let idx = spec.key_indexes(args).unwrap_or_default();
        notify::Before::take(shard, db, args, &idx, now_ms)
    } else {
        notify::Before::default()
    };
    // On a replica, the master link's writes act on the keys its master has; a writable
    // replica's own clients see expired keys as gone, so their writes re-create them (Redis's
    // `lookupKeyWrite` on a replica).
    let _view = crate::storage::master_view(
        spec.has(flags::WRITE)
            && crate::storage::replica_expiry()
            && crate::storage::from_master_client(tracking::writer()),
    );
    let dirty_before = shard.changes.dirty();
    let mut ctx = Ctx::new(shard, db, now_ms);
    let reply = f(&mut ctx, args);
    if hinted {
        ctx.shard.ks.dbs[db].clear_slot_hint();
    }
    // The one door: count and record what the command changed, after the lazy expiries it
    // caused, as one unit. A handler's own count (`Ctx::dirty`) overrides the table.
    // The commands themselves are built only for someone who reads them (the feed while it
    // records, keyspace notifications); the count always is.
    let argv = ctx.shard.changes.recording() || notify::enabled();
    let (mut dirty, mut cmds) = if !reply.is_error() && (spec.has(flags::WRITE) || ctx.dirty.is_some()) {
        propagate::effects_for(spec.name, args, &reply, now_ms, &before, argv)
    } else {
        (0, Vec::new())
    };
    if let (Some(n), false) = (ctx.dirty, reply.is_error()) {
        dirty = n;
        if n == 0 {
            cmds.clear();
        } else if cmds.is_empty() && argv {
            cmds.push(args.to_vec());
        }
    }
    if let (Some(p), false) = (ctx.propagate.take(), reply.is_error()) {
        cmds = p;
    }
    let shard = &mut *ctx.shard;
    if shard.ks.dbs[db].has_expired_log() {
        shard.log_expired();
    }
    if notify::enabled() {
        notify::command_events(shard, db, spec.name, args, &reply, dirty, &cmds, &before, now_ms);
    }
    if dirty > 0 || !cmds.is_empty() {
        shard.changes.record(db, dirty, cmds);
    }
    // Redis's `signalModifiedKey`: the command changed something (counted above, or recorded
    // by the handler itself: blocking pops), or is one that signals even when it changed
    // nothing (LTRIM of an existing list).
    let changed = shard.changes.dirty() > dirty_before || propagate::signals_unchanged(spec.name, &reply);
    blocked::after_write(ctx.shard, spec, args);
    if changed {
        tracking::written(ctx.shard, spec, args, &reply, &before);
    }
    if let (Some(mut keys), true) = (watched, changed) {
        if let Some(k) = propagate::unsignalled_key(spec.name, args, dirty) {
            keys.retain(|(w, _)| w != k);
        }
        crate::storage::watch::touch_after_write(&mut ctx.shard.ks.dbs[db], &keys);
    }
    let end = crate::clock::Stamp::now();
    let usec = end.micros_since(*clock);
    *clock = end;
    ctx.shard.stats.last_call_usec = usec;
    record_call(ctx.shard, fullname, usec, &reply);
    reply
}

/// Counts one executed command in the shard's stats.
pub fn record_call(shard: &mut ShardState, fullname: &'static str, usec: u64, reply: &Reply) {
    shard.stats.total_commands += 1;
    let st = shard.stats.cmdstats.get(fullname);
    st.calls += 1;
    st.usec += usec;
    if reply.is_error() {
        st.failed_calls += 1;
    }
    if shard.config.latency_tracking {
        st.hist.get_or_insert_with(Default::default).record(usec.saturating_mul(1000));
    }
}

/// A protected command (`fullname` DEBUG, MODULE LOAD/LOADEX/UNLOAD) refused by `enable-debug-command` /
/// `enable-module-command` for a client at `addr`: checked before anything else but the
/// command's existence and arity, as Redis's `processCommand` (inside MULTI it is refused
/// when queued, so EXEC aborts).
pub fn protected_refusal(
    spec: &CommandSpec,
    fullname: &str,
    config: &crate::config::Config,
    addr: &str,
) -> Option<Reply> {
    if !spec.has(flags::PROTECTED) {
        return None;
    }
    if fullname.starts_with("module") {
        (!config.enable_module_command.allows(addr)).then(|| Reply::err(module::NOT_ALLOWED))
    } else {
        (!config.enable_debug_command.allows(addr)).then(|| Reply::err(debug::DEBUG_NOT_ALLOWED))
    }
}

/// Counts a command rejected before execution (unknown, arity, auth, ...).
pub fn record_rejected(shard: &mut ShardState, fullname: Option<&'static str>) {
    if let Some(name) = fullname {
        shard.stats.cmdstats.get(name).rejected_calls += 1;
    }
}

/// Counts an error reply in INFO errorstats (by its first word).
#[inline]
pub fn record_error(shard: &mut ShardState, reply: &Reply) {
    if let Reply::Error(text) = reply {
        record_error_text(shard, text);
    }
}

#[cold]
fn record_error_text(shard: &mut ShardState, text: &str) {
    shard.stats.total_error_replies += 1;
    let prefix = text.split(' ').next().unwrap_or("ERR").to_string();
    *shard.stats.errorstats.entry(prefix).or_default() += 1;
}
