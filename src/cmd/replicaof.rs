//! REPLICAOF and SLAVEOF (`replication.c replicaofCommand`): follow a master, or `NO ONE` to
//! serve as a master again keeping the data. The role changes before the reply (INFO shows
//! `role:slave` and writes get `-READONLY` at once); the replica link on shard 0 then connects
//! and syncs (see `replication::replica`). Refused in cluster mode, where CLUSTER REPLICATE
//! sets roles.

use super::ctx::{reply, ClientCtx};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::eq_ic;
use crate::protocol::Reply;
use bytes::Bytes;

/// The family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "@admin @slow @dangerous", Keys::None, Exec::Node(replicaof)),
    spec("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "@admin @slow @dangerous", Keys::None, Exec::Node(replicaof)),
];

/// Redis's refusal in cluster mode.
pub const CLUSTER_REFUSED: &str = "ERR REPLICAOF not allowed in cluster mode.";

fn replicaof(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if ctx.node().cluster.is_some() {
        return reply(Reply::err(CLUSTER_REFUSED));
    }
    if crate::replication::failover::state() != crate::replication::failover::State::None {
        return reply(Reply::err("ERR REPLICAOF not allowed while failing over."));
    }
    let who = || super::connection::client_line(ctx.client, crate::storage::now_ms());
    if eq_ic(&args[1], "no") && eq_ic(&args[2], "one") {
        if ctx.node().repl.promote() {
            tracing::info!("MASTER MODE enabled (user request from '{}')", who());
        }
        return reply(Reply::Ok);
    }
    let port = match std::str::from_utf8(&args[2]).ok().and_then(|p| p.parse::<i64>().ok()) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return reply(Reply::err("ERR Invalid master port")),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if !ctx.node().repl.follow(&host, port) {
        tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        return reply(Reply::status("OK Already connected to specified master"));
    }
    tracing::info!("REPLICAOF {}:{} enabled (user request from '{}')", host, port, who());
    // Not connected yet: with `replica-serve-stale-data no` the data is stale from now on
    // (the link task keeps the flag up to date afterwards).
    let cfg = ctx.node().config();
    let stale = cfg.get("replica-serve-stale-data") == Some("no");
    crate::replication::role::set_stale(stale);
    apply_read_only(&cfg);
    reply(Reply::Ok)
}

/// `replica-read-only` applies from the REPLICAOF or CONFIG SET that changes it on, before
/// their reply (the next write must get `-READONLY`, or must not), not from the replica
/// link's next step.
pub fn apply_read_only(cfg: &crate::config::Config) {
    crate::replication::role::set_read_only(cfg.get("replica-read-only") != Some("no"));
}
