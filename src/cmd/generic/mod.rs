//! The generic keyspace family: per-key commands (DEL, UNLINK, EXISTS, TOUCH, TYPE, the EXPIRE
//! and TTL families, PERSIST, RENAME, RENAMENX, COPY, MOVE, OBJECT) and the database-wide ones
//! (KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB).
//!
//! Per-key commands are [`Exec::Keyed`]: they run on the shard owning their keys (or on the
//! runtime's scratch copy when the keys span shards). MOVE and COPY ... DB reach the other
//! database of the same shard directly, since a key's slot, hence its shard, is the same in
//! every database. Database-wide commands are [`Exec::Node`]: fan-outs over all shards held at
//! once (so FLUSHALL and SWAPDB are atomic), except SCAN, which walks hash slots in order shard
//! by shard ([`Plan::Scan`]); its cursor is the next slot to visit.
//!
//! Expiry times are absolute Unix milliseconds, as in Redis; lookups follow Redis's touch and
//! keyspace-statistics rules (EXISTS, TYPE, TTL and OBJECT do not touch the LRU clock).

mod expire;
mod keyed;
mod node;

use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::parse_i64;
use crate::protocol::Reply;
use expire::*;
use keyed::*;
use node::*;

const KEY2: Keys = keys(2, 2, 1);

/// OBJECT's subcommands.
#[rustfmt::skip]
static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("encoding", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_encoding)),
    spec("refcount", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_refcount)),
    spec("idletime", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_idletime)),
    spec("freq", 3, READONLY, "@keyspace @read @slow", KEY2, Exec::Keyed(object_freq)),
    spec("help", 2, LOADING | STALE, "@keyspace @slow", Keys::None, Exec::Node(object_help)),
];

/// The generic family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, "@keyspace @write @slow", keys(1, -1, 1), Exec::Keyed(del)),
    spec("unlink", -2, WRITE | FAST, "@keyspace @write @fast", keys(1, -1, 1), Exec::Keyed(del)),
    spec("exists", -2, READONLY | FAST, "@keyspace @read @fast", keys(1, -1, 1), Exec::Keyed(exists)),
    spec("touch", -2, READONLY | FAST, "@keyspace @read @fast", keys(1, -1, 1), Exec::Keyed(touch)),
    spec("type", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(type_cmd)),
    spec("expire", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(expire)),
    spec("pexpire", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(pexpire)),
    spec("expireat", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(expireat)),
    spec("pexpireat", -3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(pexpireat)),
    spec("ttl", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(ttl)),
    spec("pttl", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(pttl)),
    spec("expiretime", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(expiretime)),
    spec("pexpiretime", 2, READONLY | FAST, "@keyspace @read @fast", KEY1, Exec::Keyed(pexpiretime)),
    spec("persist", 2, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(persist)),
    spec("rename", 3, WRITE, "@keyspace @write @slow", keys(1, 2, 1), Exec::Keyed(rename)),
    spec("renamenx", 3, WRITE | FAST, "@keyspace @write @fast", keys(1, 2, 1), Exec::Keyed(renamenx)),
    spec("copy", -3, WRITE | DENYOOM, "@keyspace @write @slow", keys(1, 2, 1), Exec::Keyed(copy)),
    spec("move", 3, WRITE | FAST, "@keyspace @write @fast", KEY1, Exec::Keyed(move_cmd)),
    CommandSpec { subcommands: OBJECT_SUBCOMMANDS, ..spec("object", -2, 0, "@slow", Keys::None, Exec::Container) },
    spec("keys", 2, READONLY, "@keyspace @read @slow @dangerous", Keys::None, Exec::Node(keys_cmd)),
    spec("scan", -2, READONLY | TOUCHES_ARBITRARY_KEYS, "@keyspace @read @slow", Keys::None, Exec::Node(scan)),
    spec("randomkey", 1, READONLY | TOUCHES_ARBITRARY_KEYS, "@keyspace @read @slow", Keys::None, Exec::Node(randomkey)),
    spec("dbsize", 1, READONLY | FAST, "@keyspace @read @fast", Keys::None, Exec::Node(dbsize)),
    spec("flushdb", -1, WRITE, "@keyspace @write @slow @dangerous", Keys::None, Exec::Node(flushdb)),
    spec("flushall", -1, WRITE, "@keyspace @write @slow @dangerous", Keys::None, Exec::Node(flushall)),
    spec("swapdb", 3, WRITE | FAST, "@keyspace @write @fast @dangerous", Keys::None, Exec::Node(swapdb)),
];

/// Parses an argument like Redis's `getIntFromObjectOrReply`: a 64-bit integer that must fit
/// in 32 bits. `msg` replaces both default errors when given (as SWAPDB does).
fn int32_arg(arg: &[u8], msg: Option<&'static str>) -> Result<i32, Reply> {
    let Some(n) = parse_i64(arg) else { return Err(Reply::err(msg.unwrap_or(errors::NOT_INTEGER))) };
    i32::try_from(n).map_err(|_| Reply::err(msg.unwrap_or(errors::INT32_RANGE)))
}

/// A database index argument (MOVE, COPY ... DB): `ERR DB index is out of range` unless it names
/// one of the `databases`.
fn db_index_arg(arg: &[u8], ndbs: usize) -> Result<usize, Reply> {
    let n = int32_arg(arg, None)?;
    usize::try_from(n).ok().filter(|&d| d < ndbs).ok_or(Reply::err(errors::DB_INDEX))
}

/// An argument quoted in an error text, as Redis's `addReplyErrorFormat` does: newlines become
/// spaces so the reply stays one line.
fn sanitize(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).replace(['\r', '\n'], " ")
}
