//! Replication commands on the client's home shard (`replication.c`): REPLCONF, SYNC, PSYNC,
//! ROLE, WAIT.
//!
//! - REPLCONF records what a would-be replica tells us in its [`ClientState`]; `ack` and
//!   `getack` from a client that is not (yet) a replica get no reply, as in Redis.
//! - SYNC/PSYNC check what Redis checks on the spot, then hand the connection to the control
//!   core ([`Plan::Replicate`]); from there on the master side owns the socket.
//! - WAIT goes through the feed, after this client's writes, and its answer comes back from the
//!   control core ([`Plan::Later`]): the client waits, the shard does not.

use super::ctx::{reply, ClientCtx, ClientState, ShardState};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::replication::master::{self, Attach, WaitRequest};
use bytes::Bytes;

/// The replication family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, "@admin @slow @dangerous", Keys::None, Exec::Node(replconf)),
    spec("sync", 1, NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT, "@admin @slow @dangerous", Keys::None, Exec::Node(sync)),
    spec("psync", -3, NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT, "@admin @slow @dangerous", Keys::None, Exec::Node(sync)),
    spec("role", 1, NOSCRIPT | LOADING | STALE | FAST, "@admin @fast @dangerous", Keys::None, Exec::Node(role)),
    spec("wait", 3, NOSCRIPT, "@slow @connection", Keys::None, Exec::Node(wait)),
];

/// `NET_HOST_STR_LEN`: the longest announced address REPLCONF accepts, plus one.
const NET_HOST_STR_LEN: usize = 256;

/// "No reply": REPLCONF ACK/GETACK answer nothing.
fn silent() -> Plan {
    reply(Reply::Raw(Bytes::new()))
}

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

/// REPLCONF option value ...
fn replconf(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() % 2 == 0 {
        return reply(Reply::err(errors::SYNTAX));
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        let facts = ctx.client.replconf.get_or_insert_with(Default::default);
        if eq_ic(opt, "listening-port") {
            let Some(port) = parse_i64(val) else { return reply(Reply::err(errors::NOT_INTEGER)) };
            facts.listening_port = port as u16;
        } else if eq_ic(opt, "ip-address") {
            if val.len() >= NET_HOST_STR_LEN {
                return reply(Reply::error(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
            facts.ip_address = Some(text(val));
        } else if eq_ic(opt, "capa") {
            if eq_ic(val, "eof") {
                facts.capa_eof = true;
            } else if eq_ic(val, "psync2") {
                facts.capa_psync2 = true;
            }
        } else if eq_ic(opt, "ack") || eq_ic(opt, "getack") {
            // Only a replica's ACK counts (on the control core); the caller gets nothing.
            return silent();
        } else if eq_ic(opt, "rdb-only") {
            match parse_i64(val) {
                Some(n @ 0..=1) => facts.rdb_only = n == 1,
                Some(_) => return reply(Reply::err("ERR value is out of range, value must between 0 and 1")),
                None => return reply(Reply::err(errors::NOT_INTEGER)),
            }
        } else if eq_ic(opt, "rdb-filter-only") {
            let Some(filters) = crate::protocol::request::split_args(val) else {
                return reply(Reply::err("ERR Missing rdb-filter-only values"));
            };
            for f in &filters {
                if !eq_ic(f, "functions") {
                    return reply(Reply::error(format!("ERR Unsupported rdb-filter-only option: {}", text(f))));
                }
            }
            // The data is left out; this node keeps no functions, so nothing else is sent.
            facts.exclude_data = true;
        } else {
            return reply(Reply::error(format!("ERR Unrecognized REPLCONF option: {}", text(opt))));
        }
    }
    reply(Reply::Ok)
}

/// SYNC and PSYNC replid offset (`syncCommand`'s checks; the rest runs on the control core).
fn sync(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let node = ctx.node().clone();
    let psync = eq_ic(&args[0], "psync");
    if psync && args.len() > 3 && eq_ic(&args[3], "failover") {
        tracing::warn!("Failover request received for replid {}.", text(&args[1]));
        if !node.repl.is_replica() {
            return reply(Reply::err("ERR PSYNC FAILOVER can't be sent to a master."));
        }
        if !args[1].eq_ignore_ascii_case(node.repl.with_status(|s| s.replid.clone()).as_bytes()) {
            return reply(Reply::err("ERR PSYNC FAILOVER replid must match my replid."));
        }
        node.repl.promote();
        tracing::info!("MASTER MODE enabled (failover request from '{}')", ctx.client.addr);
    }
    // No replica syncs with a master failing over.
    if crate::replication::failover::state() != crate::replication::failover::State::None {
        return reply(Reply::err("NOMASTERLINK Can't SYNC while failing over"));
    }
    let link_down = node.repl.with_status(|s| s.master.as_ref().is_some_and(|m| m.state != "connected"));
    if link_down {
        return reply(Reply::err("NOMASTERLINK Can't SYNC while not connected with my master"));
    }
    let facts = ctx.client.replconf.as_deref().cloned().unwrap_or_default();
    if facts.exclude_data && !facts.capa_eof {
        return reply(Reply::err("ERR Filtered replica requires EOF capability"));
    }
    let psync = if psync {
        let Some(off) = parse_i64(&args[2]) else {
            tracing::warn!("Replica {} asks for synchronization but with a wrong offset", ctx.client.addr);
            return reply(Reply::err(errors::NOT_INTEGER));
        };
        Some((text(&args[1]), off))
    } else {
        None
    };
    let c: &ClientState = ctx.client;
    Plan::Replicate(Box::new(Attach {
        id: c.id,
        fd: -1,
        addr: c.addr.clone(),
        laddr: c.laddr.clone(),
        name: c.name.as_deref().map(text).unwrap_or_default(),
        db: c.db,
        created_ms: c.created_ms,
        facts,
        psync,
        leftover: Vec::new(),
    }))
}

/// Does nothing on a shard: run on every shard, it waits out the transactions holding them.
pub(crate) fn pass_shard(_: &mut ShardState, _: usize, _: &[Bytes]) -> Reply {
    Reply::Ok
}

/// ROLE: `master offset [[ip port ack] ...]` (online replicas, port and ack as bulk strings),
/// or `slave host port state offset`. A master first lets the feed settle, so the offset
/// covers this client's writes.
fn role(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let repl = &ctx.node().repl;
    if repl.feed.active() && !repl.is_replica() {
        let args = args.to_vec();
        let merge = Box::new(move |ctx: &mut ClientCtx<'_>, _| match role_now(ctx, &args) {
            Plan::Reply(r) => r,
            _ => Reply::err("ERR internal error: ROLE"),
        });
        return Plan::AfterFeed(Box::new(Plan::AllShards { run: pass_shard, merge }));
    }
    role_now(ctx, args)
}

fn role_now(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let repl = &ctx.node().repl;
    let offset = repl.offset();
    let r = repl.with_status(|s| match &s.master {
        None => {
            let replicas = s
                .replicas
                .iter()
                .filter(|r| r.state == "online")
                .map(|r| {
                    Reply::Array(vec![
                        Reply::bulk_string(r.ip.clone()),
                        Reply::bulk_string(r.port.to_string()),
                        Reply::bulk_string(r.ack_offset.to_string()),
                    ])
                })
                .collect();
            Reply::Array(vec![
                Reply::bulk_string("master".to_string()),
                Reply::Int(offset as i64),
                Reply::Array(replicas),
            ])
        }
        Some(m) => Reply::Array(vec![
            Reply::bulk_string("slave".to_string()),
            Reply::bulk_string(m.host.clone()),
            Reply::Int(m.port as i64),
            Reply::bulk_string(m.state.to_string()),
            Reply::Int(if m.state == "connected" { offset as i64 } else { -1 }),
        ]),
    });
    reply(r)
}

/// WAIT numreplicas timeout.
fn wait(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let node = ctx.node().clone();
    if node.repl.is_replica() {
        return reply(Reply::err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let Some(numreplicas) = parse_i64(&args[1]) else { return reply(Reply::err(errors::NOT_INTEGER)) };
    let timeout = match parse_i64(&args[2]) {
        None => return reply(Reply::err(errors::TIMEOUT_NOT_INT)),
        Some(t) if t < 0 => return reply(Reply::err("ERR timeout is negative")),
        Some(t) => t as u64,
    };
    let (tx, rx) = futures_channel::oneshot::channel();
    let req = WaitRequest { numreplicas, timeout_ms: timeout, no_block: ctx.client.multi.is_some(), reply: tx };
    master::send(&node.repl, master::Request::Wait(req));
    Plan::Later(rx)
}

/// INFO replication, both roles, in Redis 7.0's field order (`genRedisInfoString`).
pub fn info_section(node: &super::NodeInfo) -> String {
    use std::fmt::Write;
    let cfg = node.config();
    let now = crate::storage::now_ms();
    let offset = node.repl.offset();
    let s = node.repl.with_status(|s| s.clone());
    let mut b = String::new();
    let _ = write!(b, "role:{}\r\n", if s.master.is_some() { "slave" } else { "master" });
    if let Some(m) = &s.master {
        let up = m.state == "connected";
        let ago = |ms: u64| (now.saturating_sub(ms) / 1000) as i64;
        let _ = write!(
            b,
            "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
            m.host,
            m.port,
            if up { "up" } else { "down" },
            if up { ago(m.last_io_ms) } else { -1 },
            u8::from(m.sync_in_progress),
            m.read_offset,
            offset
        );
        if m.sync_in_progress {
            let (total, read) = (m.sync_total_bytes, m.sync_read_bytes as i64);
            let perc = if total != 0 { read as f64 / total as f64 * 100.0 } else { 0.0 };
            let _ = write!(
                b,
                "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                total - read,
                ago(m.last_io_ms)
            );
        }
        if !up {
            let since = if m.down_since_ms > 0 { ago(m.down_since_ms) } else { -1 };
            let _ = write!(b, "master_link_down_since_seconds:{since}\r\n");
        }
        let _ = write!(
            b,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            cfg.get("replica-priority").unwrap_or("100"),
            u8::from(cfg.get("replica-read-only") != Some("no")),
            u8::from(cfg.get("replica-announced") != Some("no"))
        );
    }
    let _ = write!(b, "connected_slaves:{}\r\n", s.replicas.len());
    let num = |k: &str| cfg.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    if num("min-replicas-to-write") > 0 && num("min-replicas-max-lag") > 0 {
        let good = master::GOOD_REPLICAS.load(std::sync::atomic::Ordering::Relaxed);
        let _ = write!(b, "min_slaves_good_slaves:{good}\r\n");
    }
    for (i, r) in s.replicas.iter().enumerate() {
        let lag = if r.state == "online" { (now / 1000) as i64 - (r.ack_time_ms / 1000) as i64 } else { 0 };
        let _ =
            write!(b, "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n", r.ip, r.port, r.state, r.ack_offset);
    }
    let _ = write!(
        b,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        crate::replication::failover::state().name(),
        s.replid,
        s.replid2,
        s.second_offset,
        u8::from(s.backlog_active),
        s.backlog_size,
        s.backlog_first_byte_offset,
        s.backlog_histlen
    );
    b
}
