//! String commands: GET, SET and family.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, KEY1};
use crate::protocol::Reply;
use crate::storage::{StrValue, Value};
use bytes::Bytes;

/// The string family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, "@read @string @fast", KEY1, Exec::Keyed(get), "string", "1.0.0", "Get the value of a key"),
    spec("set", -3, WRITE | DENYOOM, "@write @string @slow", KEY1, Exec::Keyed(set), "string", "1.0.0", "Set the string value of a key"),
];

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let r = match ctx.db().get(&args[1], now) {
        None => Reply::Nil,
        Some(e) => match &e.value {
            Value::Str(s) => Reply::Bulk(s.to_bytes()),
            #[allow(unreachable_patterns)]
            _ => return Reply::err(errors::WRONGTYPE),
        },
    };
    ctx.count_lookup(!matches!(r, Reply::Nil));
    r
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() != 3 {
        return Reply::err(errors::SYNTAX);
    }
    ctx.db().set(&args[1], Value::Str(StrValue::from_bytes(&args[2])), 0);
    Reply::Ok
}
