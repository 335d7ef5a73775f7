//! slotcore: a Redis Cluster node, thread-per-core and shared-nothing.
//!
//! A process is one node. Inside it, data shards (one glommio executor per configured core)
//! each own a subset of the 16384 hash slots and everything stored under them; a control
//! executor runs node-wide work. Connections live on the shard that accepted them; commands for
//! keys another shard owns travel over a channel mesh. See `design.md` for the whole picture.
//!
//! Module map (data flows one way: conn -> protocol -> cmd -> runtime route -> storage):
//! - [`protocol`]: RESP parsing and encoding, sans-IO.
//! - [`cmd`]: the command table and one file per command family.
//! - [`storage`]: a shard's databases, per-slot tables, values, expiry; no I/O, no async.
//! - [`conn`]: a client's life: read, parse, dispatch, write.
//! - [`runtime`]: executors, placement, the mesh, listeners, timers (the only glommio user).
//! - [`config`]: redis.conf and CONFIG.
//! - [`cluster`]: hash slots, the cluster state and nodes.conf, the routing view shards use,
//!   redirect checks, and the cluster bus protocol (its links run on the control core).
//! - [`transaction`]: commands whose keys span shards (hold, copy, run, write back, release).
//! - [`sentinel`]: Sentinel mode (`--sentinel`): monitoring, election, failover, sentinel.conf.
//! - [`memory`]: used-memory accounting, `maxmemory` and eviction, client output-buffer limits.
//! - [`tls`]: TLS (rustls) for clients on `tls-port`, the replication link and the cluster bus.
//! - [`replication`]: the change feed from shards to the control core, PSYNC2 master and
//!   replica sides, the node's replication offset and role changes.
//!
//! The one door: every change to a shard's keyspace passes `cmd::execute_keyed` (keyed
//! commands; a handler may report its exact change count with `Ctx::dirty`), a node-wide shard
//! function (FLUSHDB, FLUSHALL, SWAPDB), the serving of a blocked pop, MIGRATE's delete,
//! expiry (logged by `storage::Db`), or eviction (`memory::evict`, recorded as DEL/UNLINK).
//! Each road counts Redis's `server.dirty` in the shard's
//! `storage::changes::ChangeLog` (INFO `rdb_changes_since_last_save`, save points), records the
//! command in propagation form (`cmd::propagate`) for the replication feed while it is active,
//! touches WATCH where Redis's `signalModifiedKey` would, and queues the keyspace notifications
//! (`cmd::notify`), which the shard publishes when it flushes after the operation.
//! One road takes changes back: a script run that turns out to need the whole node is undone
//! on its shard before it runs again there (`runtime::script_undo`): its keys are put back and
//! its records dropped in the same step, before any of them left the shard, so the feed never
//! sees the discarded run.

pub mod acl;
pub mod aof;
pub mod clock;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod crash;
pub mod fuzzing;
pub mod limits;
pub mod logging;
pub mod memory;
pub mod oom_score_adj;
pub mod pause;
pub mod persist;
pub mod process;
pub mod proctitle;
pub mod protocol;
pub mod replication;
pub mod runtime;
pub mod script;
pub mod sentinel;
pub mod storage;
pub mod supervise;
pub mod tls;
pub mod transaction;
pub mod watchdog;
