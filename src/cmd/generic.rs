//! Generic keyspace commands: DEL, EXISTS, EXPIRE, TTL, KEYS, SCAN, RENAME, ...

use super::ctx::Ctx;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec};
use crate::protocol::Reply;
use bytes::Bytes;

/// The generic family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, "@keyspace @write @slow", keys(1, -1, 1), Exec::Keyed(del), "generic", "1.0.0", "Delete a key"),
    spec("exists", -2, READONLY | FAST, "@keyspace @read @fast", keys(1, -1, 1), Exec::Keyed(exists), "generic", "1.0.0", "Determine if a key exists"),
];

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if db.get(k, now).is_some() {
            db.remove(k);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    Reply::Int(args[1..].iter().filter(|k| db.get(k, now).is_some()).count() as i64)
}
