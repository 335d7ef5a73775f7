//! Server commands: INFO, CONFIG, DBSIZE, FLUSHDB/FLUSHALL, COMMAND, DEBUG, TIME, SHUTDOWN, ...

use super::ctx::ClientCtx;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::cmd::ShardState;
use crate::protocol::Reply;
use bytes::Bytes;

/// The server family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dbsize", 1, READONLY | FAST, "@keyspace @read @fast", Keys::None, Exec::Node(dbsize), "server", "1.0.0", "Return the number of keys in the selected database"),
];

fn dbsize(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, _args: &[Bytes]) -> Reply {
        Reply::Int(shard.ks.dbs[db].len() as i64)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            Reply::Int(replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum())
        }),
    }
}
