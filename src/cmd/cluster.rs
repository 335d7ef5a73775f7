//! The cluster family: the CLUSTER container and READONLY / READWRITE / ASKING. This file
//! holds the table and the subcommands that change the cluster state (MEET, ADDSLOTS[RANGE],
//! DELSLOTS[RANGE], FLUSHSLOTS, SETSLOT, REPLICATE, FORGET, RESET, SAVECONFIG,
//! SET-CONFIG-EPOCH, BUMPEPOCH, FAILOVER); the describing ones are in `cluster_info.rs`.
//! Subcommands that may change this node's role hand the change to replication
//! ([`crate::cluster::Cluster::sync_repl`]) before replying.
//!
//! Every change runs inside [`crate::cluster::Cluster::change`] with the `todo` bits Redis's
//! `cluster.c` sets (see `cluster::ops`). Checks that need key counts (FLUSHSLOTS, REPLICATE,
//! RESET, SETSLOT ... NODE) ask the shards first and finish at home. On a node without
//! `cluster-enabled yes` every one of these commands replies
//! `ERR This instance has cluster support disabled`, as Redis does.

use super::cluster_info as ci;
use super::ctx::{reply, ClientCtx, ShardState};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, int_arg, parse_i64};
use crate::cluster::bus::NodeFlags as F;
use crate::cluster::ops::SetSlot;
use crate::cluster::state::todo;
use crate::cluster::{Cluster, SLOTS};
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::Arc;

const A: u32 = ADMIN | STALE | NO_ASYNC_LOADING;
const ADM: &str = "@admin @slow @dangerous";

#[rustfmt::skip]
static SUBCOMMANDS: &[CommandSpec] = &[
    spec("reset", -2, ADMIN | NOSCRIPT | STALE, ADM, Keys::None, Exec::Node(reset)),
    spec("getkeysinslot", 4, STALE, "@slow", Keys::None, Exec::Node(ci::getkeysinslot)),
    spec("info", 2, STALE, "@slow", Keys::None, Exec::Node(ci::info)),
    spec("meet", -4, A, ADM, Keys::None, Exec::Node(meet)),
    spec("replicate", 3, A, ADM, Keys::None, Exec::Node(replicate)),
    spec("count-failure-reports", 3, ADMIN | STALE, ADM, Keys::None, Exec::Node(ci::count_failure_reports)),
    spec("links", 2, STALE, "@slow", Keys::None, Exec::Node(ci::links)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(ci::help)),
    spec("setslot", -4, A, ADM, Keys::None, Exec::Node(setslot)),
    spec("forget", 3, A, ADM, Keys::None, Exec::Node(forget)),
    spec("bumpepoch", 2, A, ADM, Keys::None, Exec::Node(bumpepoch)),
    spec("slaves", 3, ADMIN | STALE, ADM, Keys::None, Exec::Node(ci::replicas)),
    spec("shards", 2, STALE, "@slow", Keys::None, Exec::Node(ci::shards)),
    spec("delslots", -3, A, ADM, Keys::None, Exec::Node(delslots)),
    spec("addslotsrange", -4, A, ADM, Keys::None, Exec::Node(addslotsrange)),
    spec("myid", 2, STALE, "@slow", Keys::None, Exec::Node(ci::myid)),
    spec("flushslots", 2, A, ADM, Keys::None, Exec::Node(flushslots)),
    spec("countkeysinslot", 3, STALE, "@slow", Keys::None, Exec::Node(ci::countkeysinslot)),
    spec("nodes", 2, STALE, "@slow", Keys::None, Exec::Node(ci::nodes)),
    spec("saveconfig", 2, A, ADM, Keys::None, Exec::Node(saveconfig)),
    spec("slots", 2, STALE, "@slow", Keys::None, Exec::Node(ci::slots)),
    spec("keyslot", 3, STALE, "@slow", Keys::None, Exec::Node(ci::keyslot)),
    spec("set-config-epoch", 3, A, ADM, Keys::None, Exec::Node(set_config_epoch)),
    spec("delslotsrange", -4, A, ADM, Keys::None, Exec::Node(delslotsrange)),
    spec("replicas", 3, ADMIN | STALE, ADM, Keys::None, Exec::Node(ci::replicas)),
    spec("addslots", -3, A, ADM, Keys::None, Exec::Node(addslots)),
    spec("failover", -2, ADMIN | STALE | NO_ASYNC_LOADING, ADM, Keys::None, Exec::Node(failover)),
];

/// The cluster family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: SUBCOMMANDS, ..spec("cluster", -2, 0, "@slow", Keys::None, Exec::Container) },
    spec("readonly", 1, LOADING | STALE | FAST, "@fast @connection", Keys::None, Exec::Node(readonly)),
    spec("readwrite", 1, LOADING | STALE | FAST, "@fast @connection", Keys::None, Exec::Node(readwrite)),
    spec("asking", 1, FAST, "@fast @connection", Keys::None, Exec::Node(asking)),
];

/// The node's cluster, if cluster mode is on.
pub(super) fn cluster_of(ctx: &ClientCtx<'_>) -> Option<Arc<Cluster>> {
    ctx.node().cluster.clone()
}

/// The standalone-mode reply.
pub(super) fn disabled() -> Plan {
    reply(Reply::err(errors::CLUSTER_DISABLED))
}

/// `addReplySubcommandSyntaxError`.
fn sub_syntax(args: &[Bytes]) -> Plan {
    let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).into_owned();
    reply(Reply::error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLUSTER HELP.")))
}

fn result(r: Result<(), String>) -> Reply {
    match r {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(e),
    }
}

/// `getSlotOrReply`.
fn slot_arg(a: &[u8]) -> Result<usize, Reply> {
    match parse_i64(a) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as usize),
        _ => Err(Reply::err("ERR Invalid or out of range slot")),
    }
}

fn sum_ints(replies: &[Reply]) -> Result<usize, Reply> {
    let mut n = 0;
    for r in replies {
        match r {
            Reply::Int(x) => n += (*x).max(0) as usize,
            e @ Reply::Error(_) => return Err(e.clone()),
            _ => {}
        }
    }
    Ok(n)
}

/// Keys in database 0 of one shard (Redis checks `server.db[0]`; cluster mode has no other).
fn count_db0(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Int(shard.ks.dbs[0].len() as i64)
}

/// Empties every database of one shard (a replica's CLUSTER RESET).
fn flush_all(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    for d in shard.ks.dbs.iter_mut() {
        shard.changes.count(d.len() as u64);
        d.clear();
    }
    Reply::Int(0)
}

/// Keys in the slot named by `args[2]`, in database 0 of the owning shard.
fn count_setslot(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Reply::Int(shard.ks.dbs[0].slot_len(s as u16) as i64),
        _ => Reply::err("ERR Invalid or out of range slot"),
    }
}

fn replica_migration(ctx: &ClientCtx<'_>) -> bool {
    ctx.node().config().get("cluster-allow-replica-migration") != Some("no")
}

// ---- MEET -----------------------------------------------------------------------------------

fn meet(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    if args.len() > 5 {
        return sub_syntax(args);
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let Some(port) = parse_i64(&args[3]) else {
        return reply(Reply::error(format!("ERR Invalid TCP base port specified: {}", text(&args[3]))));
    };
    let cport = match args.get(4) {
        Some(a) => match parse_i64(a) {
            Some(p) => p,
            None => return reply(Reply::error(format!("ERR Invalid TCP bus port specified: {}", text(a)))),
        },
        None => port + 10000,
    };
    // clusterStartHandshake: an IP literal (normalized) and ports in 1..=65535.
    let ip = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<std::net::IpAddr>().ok());
    let ports_ok = (1..=65535).contains(&port) && (1..=65535).contains(&cport);
    let Some(ip) = ip.filter(|_| ports_ok) else {
        return reply(Reply::error(format!(
            "ERR Invalid node address specified: {}:{}",
            text(&args[2]),
            text(&args[3])
        )));
    };
    let now = crate::storage::now_ms();
    // A handshake already in progress with that address is not an error.
    c.change(|st| st.start_handshake(&ip.to_string(), port as u16, cport as u16, now));
    reply(Reply::Ok)
}

// ---- slots ----------------------------------------------------------------------------------

fn addslots(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    slots_generic(ctx, args, false)
}

fn delslots(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    slots_generic(ctx, args, true)
}

/// ADDSLOTS / DELSLOTS: every argument is parsed before any is checked.
fn slots_generic(ctx: &mut ClientCtx<'_>, args: &[Bytes], del: bool) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let mut list = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match slot_arg(a) {
            Ok(s) => list.push(s),
            Err(e) => return reply(e),
        }
    }
    reply(result(c.change(|st| {
        let mut marked = vec![0u8; SLOTS];
        for &s in &list {
            st.check_slot_range(&mut marked, del, s, s)?;
        }
        st.update_slots(&marked, del);
        Ok(())
    })))
}

fn addslotsrange(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    range_generic(ctx, args, false)
}

fn delslotsrange(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    range_generic(ctx, args, true)
}

/// ADDSLOTSRANGE / DELSLOTSRANGE: each pair is parsed and checked in turn.
fn range_generic(ctx: &mut ClientCtx<'_>, args: &[Bytes], del: bool) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    if args.len() % 2 == 1 {
        let name = if del { "cluster|delslotsrange" } else { "cluster|addslotsrange" };
        return reply(Reply::error(errors::wrong_arity(name)));
    }
    reply(c.change(|st| {
        let mut marked = vec![0u8; SLOTS];
        for pair in args[2..].chunks(2) {
            let start = match slot_arg(&pair[0]) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let end = match slot_arg(&pair[1]) {
                Ok(s) => s,
                Err(e) => return e,
            };
            if start > end {
                return Reply::error(format!("ERR start slot number {start} is greater than end slot number {end}"));
            }
            if let Err(e) = st.check_slot_range(&mut marked, del, start, end) {
                return Reply::error(e);
            }
        }
        st.update_slots(&marked, del);
        Reply::Ok
    }))
}

fn flushslots(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let merge = move |_: &mut ClientCtx<'_>, replies: Vec<Reply>| match sum_ints(&replies) {
        Err(e) => e,
        Ok(n) if n != 0 => Reply::err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS."),
        Ok(_) => c.change(|st| {
            let me = st.myself;
            st.del_node_slots(me);
            st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
            Reply::Ok
        }),
    };
    Plan::AllShards { run: count_db0, merge: Box::new(merge) }
}

fn setslot(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    if c.with(|st| st.me().has(F::SLAVE)) {
        return reply(Reply::err("ERR Please use SETSLOT only with masters."));
    }
    let slot = match slot_arg(&args[2]) {
        Ok(s) => s,
        Err(e) => return reply(e),
    };
    let migrate = replica_migration(ctx);
    let action = match (args.len(), &args[3]) {
        (5, a) if eq_ic(a, "migrating") => SetSlot::Migrating(&args[4]),
        (5, a) if eq_ic(a, "importing") => SetSlot::Importing(&args[4]),
        (4, a) if eq_ic(a, "stable") => SetSlot::Stable,
        (5, a) if eq_ic(a, "node") => {
            // The key count decides two of NODE's checks: ask the slot's shard first.
            let id = args[4].clone();
            let then = move |ctx: &mut ClientCtx<'_>, r: Reply| match r {
                Reply::Int(keys) => {
                    let r = result(c.change(|st| st.set_slot(slot, SetSlot::Node(&id), keys.max(0) as usize, migrate)));
                    c.sync_repl(&ctx.node().repl);
                    r
                }
                other => other,
            };
            return Plan::OnSlot { slot: slot as u16, run: count_setslot, then: Box::new(then) };
        }
        _ => return reply(Reply::err("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")),
    };
    reply(result(c.change(|st| st.set_slot(slot, action, 0, migrate))))
}

// ---- topology -------------------------------------------------------------------------------

fn replicate(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let id = args[2].clone();
    let merge = move |ctx: &mut ClientCtx<'_>, replies: Vec<Reply>| match sum_ints(&replies) {
        Err(e) => e,
        Ok(keys) => {
            let r = result(c.change(|st| st.replicate(&id, keys)));
            c.sync_repl(&ctx.node().repl);
            r
        }
    };
    Plan::AllShards { run: count_db0, merge: Box::new(merge) }
}

fn forget(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let now_s = crate::storage::now_ms() / 1000;
    reply(result(c.change(|st| st.forget(&args[2], now_s))))
}

fn reset(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let hard = match args.get(2) {
        _ if args.len() > 3 => return sub_syntax(args),
        None => false,
        Some(a) if eq_ic(a, "hard") => true,
        Some(a) if eq_ic(a, "soft") => false,
        Some(_) => return reply(Reply::err(errors::SYNTAX)),
    };
    // A master must hold no keys; a replica drops its data.
    let master = c.with(|st| st.me().is_master());
    let merge = move |ctx: &mut ClientCtx<'_>, replies: Vec<Reply>| match sum_ints(&replies) {
        Err(e) => e,
        Ok(n) if master && n != 0 => Reply::err("ERR CLUSTER RESET can't be called with master nodes containing keys"),
        Ok(_) => {
            c.change(|st| st.reset(hard));
            c.sync_repl(&ctx.node().repl);
            Reply::Ok
        }
    };
    Plan::AllShards { run: if master { count_db0 } else { flush_all }, merge: Box::new(merge) }
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] (see `cluster::failover`); the MFSTART, the election
/// and the PONG broadcast go out from the bus within a cron tick.
fn failover(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    use crate::cluster::failover::{cluster_failover, Manual};
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let mode = match args.get(2) {
        _ if args.len() > 3 => return sub_syntax(args),
        None => Manual::Default,
        Some(a) if eq_ic(a, "force") => Manual::Force,
        Some(a) if eq_ic(a, "takeover") => Manual::Takeover,
        Some(_) => return reply(Reply::err(errors::SYNTAX)),
    };
    let now = crate::storage::now_ms();
    let r = result(c.change(|st| cluster_failover(st, mode, now)));
    c.sync_repl(&ctx.node().repl);
    reply(r)
}

// ---- epochs and config --------------------------------------------------------------------

fn set_config_epoch(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    match int_arg(&args[2]) {
        Err(e) => reply(e),
        Ok(epoch) => reply(result(c.change(|st| st.set_config_epoch(epoch)))),
    }
}

fn bumpepoch(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let (bumped, epoch) = c.change(|st| (st.bump_epoch_without_consensus(), st.me().config_epoch));
    reply(Reply::status_owned(format!("{} {}", if bumped { "BUMPED" } else { "STILL" }, epoch)))
}

fn saveconfig(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    match c.save_config() {
        Ok(()) => reply(Reply::Ok),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
            reply(Reply::error(format!("ERR error saving the cluster node config: {msg}")))
        }
    }
}

// ---- READONLY / READWRITE / ASKING --------------------------------------------------------

fn readonly(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    ctx.client.readonly = true;
    reply(Reply::Ok)
}

fn readwrite(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    ctx.client.readonly = false;
    reply(Reply::Ok)
}

fn asking(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    ctx.client.asking = true;
    reply(Reply::Ok)
}
