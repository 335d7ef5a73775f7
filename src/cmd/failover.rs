//! FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: a master's coordinated handover to
//! one of its replicas (`failoverCommand`); the failover itself is
//! [`crate::replication::failover`].

use super::ctx::{reply, ClientCtx};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::replication::failover::{self, State};
use bytes::Bytes;

/// FAILOVER's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("failover", -1, ADMIN | NOSCRIPT | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(failover_cmd)),
];

fn failover_cmd(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let node = ctx.node().clone();
    if node.cluster.is_some() {
        return reply(Reply::err("ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead."));
    }
    if args.len() == 2 && eq_ic(&args[1], "abort") {
        if failover::state() == State::None {
            return reply(Reply::err("ERR No failover in progress."));
        }
        failover::abort(&node, "Failover manually aborted");
        return reply(Reply::Ok);
    }
    let mut timeout_ms = 0i64;
    let mut force = false;
    let mut target: Option<(String, i64)> = None;
    let mut j = 1;
    while j < args.len() {
        if eq_ic(&args[j], "timeout") && j + 1 < args.len() && timeout_ms == 0 {
            let Some(t) = parse_i64(&args[j + 1]) else { return reply(Reply::err(errors::NOT_INTEGER)) };
            if t <= 0 {
                return reply(Reply::err("ERR FAILOVER timeout must be greater than 0"));
            }
            timeout_ms = t;
            j += 2;
        } else if eq_ic(&args[j], "to") && j + 2 < args.len() && target.is_none() {
            let Some(port) = parse_i64(&args[j + 2]) else { return reply(Reply::err(errors::NOT_INTEGER)) };
            target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if eq_ic(&args[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
    }
    if failover::state() != State::None {
        return reply(Reply::err("ERR FAILOVER already in progress."));
    }
    if node.repl.is_replica() {
        return reply(Reply::err("ERR FAILOVER is not valid when server is a replica."));
    }
    if node.repl.with_status(|s| s.replicas.is_empty()) {
        return reply(Reply::err("ERR FAILOVER requires connected replicas."));
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        return reply(Reply::err("ERR FAILOVER with force option requires both a timeout and target HOST and IP."));
    }
    let target = match target {
        Some((host, port)) => {
            let port = u16::try_from(port).ok();
            match port.and_then(|p| failover::find_replica(&node, &host, p)) {
                None => return reply(Reply::err("ERR FAILOVER target HOST and PORT is not a replica.")),
                Some((state, _)) if state != "online" => {
                    return reply(Reply::err("ERR FAILOVER target replica is not online."))
                }
                Some(_) => port.map(|p| (host, p)),
            }
        }
        None => None,
    };
    failover::start(node, target, timeout_ms as u64, force);
    reply(Reply::Ok)
}
