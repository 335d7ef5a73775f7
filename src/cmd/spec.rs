//! What a command is: its spec, its handler kinds, and the plans node-level handlers return.

use super::ctx::{ClientCtx, Ctx, ShardState};
use crate::protocol::Reply;
use bytes::Bytes;
use std::time::Duration;

/// Command flags (a subset of Redis's `CMD_*`); they appear in COMMAND INFO.
pub mod flags {
    /// May modify the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use (refused under maxmemory).
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed from scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Not shown to MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// Not logged to SLOWLOG.
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 11;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 12;
    /// May replicate even if read-only.
    pub const MAY_REPLICATE: u32 = 1 << 13;
    /// Not allowed inside MULTI.
    pub const NO_MULTI: u32 = 1 << 14;
    /// Served in an importing slot without ASKING.
    pub const ASKING: u32 = 1 << 15;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 16;
    /// Keys are optional.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    /// Not allowed during async loading.
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// Guarded by `enable-*-command` (DEBUG, MODULE).
    pub const PROTECTED: u32 = 1 << 19;
    /// May touch keys the arguments do not name (RANDOMKEY, SCAN): what it deletes on the way
    /// (expired keys) reaches replicas and the AOF as separate commands, never one MULTI/EXEC,
    /// as Redis's `CMD_TOUCHES_ARBITRARY_KEYS` (not shown by COMMAND INFO, as in Redis 7.0).
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 20;

    /// Names as COMMAND INFO prints them, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // MAY_REPLICATE is not shown, as in Redis.
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        // PROTECTED is not shown, as in Redis 7.0.
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Where a command's keys are among its arguments.
#[derive(Clone, Copy)]
pub enum Keys {
    /// No keys.
    None,
    /// Redis's legacy (first, last, step); `last` < 0 counts from the end (-1 = last argument).
    Range {
        /// Index of the first key.
        first: i32,
        /// Index of the last key (negative: from the end).
        last: i32,
        /// Distance between keys.
        step: i32,
    },
    /// Keys found by parsing the arguments (numkeys, STORE, ...): the legacy (first,last,step)
    /// for COMMAND INFO, and a function returning the key indexes, or an error reply for
    /// malformed arguments.
    Custom {
        /// Legacy triple shown by COMMAND INFO.
        legacy: (i32, i32, i32),
        /// Finds the key indexes.
        find: fn(&[Bytes]) -> Result<Vec<usize>, Reply>,
    },
    /// Keys found by parsing the arguments (as `Custom`) plus keys only the data names (SORT's
    /// BY and GET patterns name keys after the elements of the sorted key). Derived keys are
    /// only read. On a node with several shards, a call for which `reads_more` is true holds
    /// every shard, copies the `find` keys, then the keys `more` names from that copy, and
    /// runs on the copy; only the `find` keys are written back.
    Derived {
        /// Legacy triple shown by COMMAND INFO.
        legacy: (i32, i32, i32),
        /// Finds the key indexes among the arguments.
        find: fn(&[Bytes]) -> Result<Vec<usize>, Reply>,
        /// Whether this call reads keys the arguments do not name.
        reads_more: fn(&[Bytes]) -> bool,
        /// The extra keys, computed on a shard state holding the `find` keys (client's db).
        more: DerivedFn,
    },
}

/// A keyed handler: runs on the shard owning the keys.
pub type KeyedFn = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;
/// A node-level handler: runs on the client's home shard and returns a plan.
pub type NodeFn = fn(&mut ClientCtx<'_>, &[Bytes]) -> Plan;
/// Work run on every shard by a [`Plan::AllShards`]: gets the shard, the client's db and the
/// arguments. Must be a plain function so it can cross threads.
pub type ShardFn = fn(&mut ShardState, usize, &[Bytes]) -> Reply;
/// Names the keys a call reads besides its argument keys (see [`Keys::Derived`]).
pub type DerivedFn = fn(&mut ShardState, usize, &[Bytes]) -> Vec<Bytes>;
/// Combines the per-shard replies of a fan-out, at home.
pub type MergeFn = Box<dyn FnOnce(&mut ClientCtx<'_>, Vec<Reply>) -> Reply>;
/// Finishes a [`Plan::OnSlot`] at home with the owning shard's reply.
pub type ThenFn = Box<dyn FnOnce(&mut ClientCtx<'_>, Reply) -> Reply>;

/// How a command executes.
#[derive(Clone, Copy)]
pub enum Exec {
    /// On the shard owning the keys.
    Keyed(KeyedFn),
    /// On the home shard, returning a plan.
    Node(NodeFn),
    /// A container command (CONFIG, CLIENT, OBJECT, ...): dispatch on the subcommand.
    Container,
}

/// What a node-level handler wants done.
pub enum Plan {
    /// Reply now.
    Reply(Reply),
    /// Run `run` on every shard, all of them held at once so the result is atomic, then `merge`.
    AllShards {
        /// Runs on each shard.
        run: ShardFn,
        /// Combines the replies (in shard order) at home.
        merge: MergeFn,
    },
    /// Run `run` on the shard that owns hash slot `slot` (only that shard is held), then `then`
    /// at home with its reply (CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT / SETSLOT ... NODE).
    OnSlot {
        /// The hash slot (< 16384).
        slot: u16,
        /// Runs on the owning shard.
        run: ShardFn,
        /// Turns the shard's reply into the command's.
        then: ThenFn,
    },
    /// Wait until the replication feed has merged every change pushed so far (so
    /// `master_repl_offset` covers this client's writes), then run the inner plan (INFO, ROLE).
    AfterFeed(Box<Plan>),
    /// Wait (bounded) until the AOF rewrite `CONFIG SET appendonly yes` started has begun its
    /// snapshot (`runtime::aof_base::snapshot_begun`), then run the inner plan.
    AfterSnapshotBegins(Box<Plan>),
    /// Sleep (without blocking the shard), then reply.
    Sleep(Duration, Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// PUBLISH / SPUBLISH `[_, channel, message]`: deliver on every shard of the node (in
    /// order for one publisher), reply with the number of receivers here, and in cluster mode
    /// send it to the other nodes over the bus (SPUBLISH: to the slot's shard group).
    Publish {
        /// SPUBLISH (shard channels).
        sharded: bool,
    },
    /// Turn this connection into a MONITOR.
    Monitor,
    /// EVAL & co.: run a script (see `crate::runtime::script_exec`).
    Script(Box<crate::cmd::scripting::ScriptJob>),
    /// MIGRATE: move keys to another instance (see `crate::conn::migrate`).
    Migrate(Box<crate::cmd::migrate::MigrateJob>),
    /// Shut the server down (SHUTDOWN); the reply is sent only if shutdown fails.
    Shutdown(ShutdownArgs),
    /// SCAN: visit the hash slots in ascending order from `cursor`, one shard's run of
    /// consecutive slots at a time (slot -> shard), until `count` keys were examined or every
    /// slot was visited. For each run `run` is called on the owning shard with the arguments
    /// `[from, to, budget]` followed by the command's own; it visits its non-empty slots in
    /// `from..to`, whole, until it examined `budget` keys, and returns
    /// `[Int(next slot), Int(examined), Array(keys)]`. The reply is `[next cursor, keys]`, with
    /// cursor 0 once every slot was visited.
    Scan {
        /// First slot to visit (< 16384).
        cursor: usize,
        /// Keys to examine before replying (whole slots, so possibly more).
        count: usize,
        /// Scans part of one shard.
        run: ShardFn,
    },
    /// SYNC/PSYNC: the connection becomes a replica; its home shard hands the socket to the
    /// control core (nothing more is written here).
    Replicate(Box<crate::replication::master::Attach>),
    /// Wait (without blocking the shard) for the reply another core sends (WAIT).
    Later(futures_channel::oneshot::Receiver<Reply>),
    /// CLIENT KILL: run `run` on every shard with the arguments plus the caller's id appended;
    /// reply with the count, or for the old `CLIENT KILL addr` form +OK / "No such client".
    KillClients {
        /// Kills matching clients on one shard, returns how many.
        run: ShardFn,
        /// The old one-argument form.
        old_form: bool,
    },
}

/// SHUTDOWN arguments after parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShutdownArgs {
    /// NOSAVE
    pub nosave: bool,
    /// SAVE
    pub save: bool,
    /// NOW
    pub now: bool,
    /// FORCE
    pub force: bool,
}

/// A command's declaration.
pub struct CommandSpec {
    /// Lower-case name (for subcommands: the subcommand alone, e.g. `get` under `config`).
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments including the name, -N = at least N.
    pub arity: i32,
    /// `flags::*` bits.
    pub flags: u32,
    /// ACL categories, e.g. `"@write @string @slow"`.
    pub acl: &'static str,
    /// Key positions.
    pub keys: Keys,
    /// Handler.
    pub exec: Exec,
    /// Subcommands (for containers).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// True when `flag` is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// True when `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a > 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// The key argument indexes of a call, or an error reply.
    pub fn key_indexes(&self, args: &[Bytes]) -> Result<Vec<usize>, Reply> {
        match self.keys {
            Keys::None => Ok(Vec::new()),
            Keys::Range { first, last, step } => Ok(range_indexes(args.len(), first, last, step)),
            Keys::Custom { find, .. } | Keys::Derived { find, .. } => find(args),
        }
    }

    /// The legacy (first, last, step) triple for COMMAND INFO.
    pub fn legacy_range(&self) -> (i32, i32, i32) {
        match self.keys {
            Keys::None => (0, 0, 0),
            Keys::Range { first, last, step } => (first, last, step),
            Keys::Custom { legacy, .. } | Keys::Derived { legacy, .. } => legacy,
        }
    }
}

/// Expands a legacy key range over `argc` arguments.
pub fn range_indexes(argc: usize, first: i32, last: i32, step: i32) -> Vec<usize> {
    if first <= 0 || step <= 0 {
        return Vec::new();
    }
    let last = if last < 0 { argc as i32 + last } else { last.min(argc as i32 - 1) };
    let mut v = Vec::new();
    let mut i = first;
    while i <= last && (i as usize) < argc {
        v.push(i as usize);
        i += step;
    }
    v
}

/// Shorthand for a spec with no subcommands; used by the family tables (COMMAND DOCS reads `cmd::meta`).
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static str,
    keys: Keys,
    exec: Exec,
) -> CommandSpec {
    CommandSpec { name, arity, flags, acl, keys, exec, subcommands: &[] }
}

/// Keys at (first, last, step).
pub const fn keys(first: i32, last: i32, step: i32) -> Keys {
    Keys::Range { first, last, step }
}

/// One key, at argument 1.
pub const KEY1: Keys = Keys::Range { first: 1, last: 1, step: 1 };
