//! BGREWRITEAOF (`bgrewriteaofCommand`); the work is `runtime::aof`'s.

use super::ctx::ClientCtx;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use bytes::Bytes;

/// The AOF family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, "@admin @slow @dangerous", Keys::None, Exec::Node(bgrewriteaof)),
];

fn bgrewriteaof(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    // Inside EXEC (the client's transaction still open) the rewrite is only scheduled.
    Plan::Reply(match crate::runtime::aof::request_rewrite(ctx.node(), ctx.client.multi.is_some()) {
        Ok(s) => Reply::status(s),
        Err(e) => Reply::err(e),
    })
}
