//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, CLIENT.

use super::ctx::{reply, ClientCtx};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::parse_i64;
use crate::protocol::Reply;
use bytes::Bytes;

/// The connection family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST | SKIP_SLOWLOG | STALE, "@fast @connection", Keys::None, Exec::Node(ping), "connection", "1.0.0", "Ping the server"),
    spec("echo", 2, FAST, "@fast @connection", Keys::None, Exec::Node(echo), "connection", "1.0.0", "Echo the given string"),
    spec("quit", -1, ALLOW_BUSY | NO_AUTH | LOADING | STALE | FAST | NOSCRIPT, "@fast @connection", Keys::None, Exec::Node(quit), "connection", "1.0.0", "Close the connection"),
    spec("select", 2, LOADING | STALE | FAST, "@fast @connection", Keys::None, Exec::Node(select), "connection", "2.0.0", "Change the selected database for the current connection"),
];

/// Which clients CLIENT KILL targets.
#[derive(Debug, Clone, Default)]
pub struct KillFilter {
    /// `ip:port` of the client.
    pub addr: Option<String>,
    /// `ip:port` of the local end.
    pub laddr: Option<String>,
    /// Client id.
    pub id: Option<u64>,
    /// Skip the calling client (SKIPME yes, the default).
    pub skip_id: Option<u64>,
    /// The old form `CLIENT KILL addr`: reply +OK or an error instead of a count.
    pub old_form: bool,
}

fn ping(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let _ = ctx;
    match args.len() {
        1 => reply(Reply::status("PONG")),
        2 => reply(Reply::Bulk(args[1].clone())),
        _ => reply(Reply::error(errors::wrong_arity("ping"))),
    }
}

fn echo(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    reply(Reply::Bulk(args[1].clone()))
}

fn quit(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Close(Reply::Ok)
}

fn select(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match parse_i64(&args[1]) {
        None => reply(Reply::err(errors::NOT_INTEGER)),
        Some(n) if n < 0 || n as usize >= ctx.shard.config.databases => reply(Reply::err(errors::DB_INDEX)),
        Some(n) => {
            ctx.client.db = n as usize;
            reply(Reply::Ok)
        }
    }
}
