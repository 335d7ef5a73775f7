//! CLIENT PAUSE timeout [WRITE|ALL] and CLIENT UNPAUSE (`clientCommand`'s pause branch): the
//! client-command purpose of the node's pause ([`crate::pause`]).

use super::ctx::{reply, ClientCtx};
use super::errors;
use super::spec::Plan;
use super::util::{eq_ic, parse_i64};
use crate::pause::{Kind, Purpose};
use crate::protocol::Reply;
use bytes::Bytes;

/// CLIENT PAUSE timeout [WRITE|ALL]: the mode is checked before the timeout, as in Redis.
pub(super) fn client_pause(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 4 {
        return reply(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let kind = match args.get(3) {
        None => Kind::All,
        Some(m) if eq_ic(m, "write") => Kind::Write,
        Some(m) if eq_ic(m, "all") => Kind::All,
        Some(_) => return reply(Reply::err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let Some(ms) = parse_i64(&args[2]) else { return reply(Reply::err(errors::TIMEOUT_NOT_INT)) };
    if ms < 0 {
        return reply(Reply::err("ERR timeout is negative"));
    }
    // Redis's end time: 0 stays 0 (a pause already over); a sum past the clock's range wraps
    // into the past there, and pauses nothing here either.
    let end = match ms {
        0 => 0,
        _ => (crate::storage::now_ms() as i64).checked_add(ms).map_or(0, |e| e as u64),
    };
    if end > 0 {
        crate::pause::pause(Purpose::ClientCommand, end, kind);
    }
    reply(Reply::Ok)
}

/// CLIENT UNPAUSE: ends the client-command pause (a failover's or shutdown's goes on).
pub(super) fn client_unpause(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    crate::pause::unpause(Purpose::ClientCommand);
    reply(Reply::Ok)
}
