//! What a handler can reach: the shard's state (keyed and fan-out handlers) and the client's
//! state (node-level handlers).

use crate::config::Config;
use crate::protocol::Reply;
use crate::storage::{Db, Keyspace};
use bytes::Bytes;
use hashbrown::HashMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// Call counters of one command on one shard (INFO commandstats).
#[derive(Debug, Default, Clone)]
pub struct CmdStat {
    /// Calls.
    pub calls: u64,
    /// Total microseconds spent.
    pub usec: u64,
    /// Calls rejected before execution (arity, auth, ...).
    pub rejected_calls: u64,
    /// Calls that returned an error.
    pub failed_calls: u64,
    /// Latency distribution while `latency-tracking` is on (INFO latencystats, LATENCY
    /// HISTOGRAM); created at the first sample.
    pub hist: Option<super::histogram::Histogram>,
}

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
pub struct SlowlogEntry {
    /// Unique id (node-wide, in recording order; merged output sorts by it).
    pub id: u64,
    /// Unix time in seconds.
    pub time: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Arguments (trimmed as Redis trims them).
    pub args: Vec<Bytes>,
    /// Client address.
    pub addr: String,
    /// Client name.
    pub name: String,
}

/// A hash of short ASCII names (command names): bumping INFO commandstats once per command
/// costs a multiply per 8 bytes of the name instead of a general-purpose hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

const NAME_HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl std::hash::Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for c in words.by_ref() {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(NAME_HASH_K);
        }
        // The tail, zero-padded, assembled in registers (copying it into a padded array
        // compiled to a call to memcpy, most of this hash's cost).
        let tail = words.remainder();
        if !tail.is_empty() {
            let w = tail.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
            h = (h.rotate_left(5) ^ w).wrapping_mul(NAME_HASH_K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(NAME_HASH_K);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(NAME_HASH_K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: fold the well-mixed high bits in.
        self.0 ^ (self.0 >> 32)
    }
}

/// [`NameHasher`] for maps keyed by command names.
pub type NameHash = std::hash::BuildHasherDefault<NameHasher>;

/// INFO commandstats of one shard, by full command name, in first-call order.
#[derive(Debug, Default)]
pub struct CmdStats {
    index: HashMap<&'static str, usize, NameHash>,
    entries: Vec<(&'static str, CmdStat)>,
    /// The last name asked for (by address: names are the command table's statics) and its
    /// entry; a pipeline mostly repeats one command, so most calls skip the hash.
    last: Option<(usize, usize, usize)>,
}

impl CmdStats {
    /// The entry of `name`, created on first use.
    #[inline]
    pub fn get(&mut self, name: &'static str) -> &mut CmdStat {
        let i = match self.last {
            Some((p, len, i)) if p == name.as_ptr() as usize && len == name.len() => i,
            _ => self.find(name),
        };
        &mut self.entries[i].1
    }

    /// The index of `name`'s entry, created on first use; remembered for the next call.
    #[cold]
    fn find(&mut self, name: &'static str) -> usize {
        let next = self.entries.len();
        let i = *self.index.entry(name).or_insert(next);
        if i == next {
            self.entries.push((name, CmdStat::default()));
        }
        self.last = Some((name.as_ptr() as usize, name.len(), i));
        i
    }

    /// Every command called so far and its figures.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &CmdStat)> {
        self.entries.iter().map(|(k, c)| (*k, c))
    }
}

/// Statistics a shard keeps; INFO sums them over shards.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Commands processed.
    pub total_commands: u64,
    /// Successful key lookups.
    pub keyspace_hits: u64,
    /// Failed key lookups.
    pub keyspace_misses: u64,
    /// Connections accepted.
    pub total_connections_received: u64,
    /// Connections refused (maxclients).
    pub rejected_connections: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Error replies sent.
    pub total_error_replies: u64,
    /// Per command (full name, e.g. `config|get`).
    pub cmdstats: CmdStats,
    /// Per error prefix (`ERR`, `WRONGTYPE`, ...).
    pub errorstats: HashMap<String, u64>,
    /// Keys evicted (maxmemory); stays 0 until eviction exists.
    pub evicted_keys: u64,
    /// Microseconds the last keyed command took (`execute_keyed`), for its caller's SLOWLOG.
    pub last_call_usec: u64,
    /// Reads from client sockets that returned data (INFO `total_reads_processed`).
    pub reads_processed: u64,
    /// Writes to client sockets (INFO `total_writes_processed`).
    pub writes_processed: u64,
    /// The instantaneous metrics' samples (`cmd::instant`).
    pub instant: super::instant::Sampler,
    /// The active expire cycle's running estimate of the share of expired keys among the
    /// volatile ones (INFO `expired_stale_perc`, Redis's 5% moving average).
    pub expired_stale: f64,
    /// Active expire cycles that stopped at their time limit.
    pub expire_time_cap_reached: u64,
    /// Microseconds spent in active expire cycles.
    pub expire_cycle_us: u64,
}

/// The state of one client connection.
#[derive(Debug)]
pub struct ClientState {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address `ip:port`.
    pub addr: String,
    /// Local address `ip:port`.
    pub laddr: String,
    /// Socket fd.
    pub fd: i32,
    /// Connected through `unixsocket` (CLIENT LIST flag `U`).
    pub unix: bool,
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// Selected database.
    pub db: usize,
    /// RESP3 after `HELLO 3`.
    pub resp3: bool,
    /// Authenticated (always true without requirepass).
    pub authenticated: bool,
    /// Creation time (ms).
    pub created_ms: u64,
    /// Last command time (ms).
    pub last_interaction_ms: u64,
    /// Full name of the last command.
    pub last_cmd: &'static str,
    /// CLIENT REPLY mode.
    pub reply_mode: ReplyMode,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// Set by CLIENT KILL: the connection closes as soon as it notices.
    pub killed: bool,
    /// This connection is a MONITOR.
    pub monitor: bool,
    /// CLIENT SETINFO lib-name / lib-ver are 7.2; kept for CLIENT LIST compatibility.
    pub lib_name: Option<Bytes>,
    /// Bytes pending in the query buffer (for CLIENT LIST).
    pub qbuf: usize,
    /// Size of the query buffer at the last read, received bytes included (for CLIENT LIST:
    /// see `client_line`).
    pub qbuf_room: usize,
    /// Reply bytes not written to the socket yet (CLIENT LIST `omem`).
    pub omem: usize,
    /// The query buffer's size as client eviction counts it (`memory::clients`).
    pub qbuf_alloc: usize,
    /// The reply buffer's allocated size (`memory::clients`).
    pub obuf_cap: usize,
    /// Bytes of the arguments of a request not fully received (CLIENT LIST `argv-mem`).
    pub argv_mem: usize,
    /// The memory those arguments hold (`memory::clients`).
    pub argv_held: usize,
    /// The MULTI queue and watched keys (CLIENT LIST `multi-mem`).
    pub multi_mem: usize,
    /// The connection's own structures (`memory::clients`).
    pub conn_bytes: usize,
    /// The client's memory as last counted (CLIENT LIST `tot-mem`, `maxmemory-clients`).
    pub tot_mem: usize,
    /// The memory bucket it is counted in for eviction + 1 (0: not evictable).
    pub mem_bucket: u8,
    /// Its memory when client eviction closed it (given back when the connection ends).
    pub evicted_mem: usize,
    /// Close after the current reply is written (QUIT, protocol error).
    pub close_after_reply: bool,
    /// READONLY: reads of slots served by this replica's master are served here.
    pub readonly: bool,
    /// ASKING: the next command may touch an importing slot (one-shot).
    pub asking: bool,
    /// In a transaction (MULTI): the number of queued commands (CLIENT LIST `multi=`).
    pub multi: Option<usize>,
    /// Set while the client waits in a blocking command (CLIENT LIST flag `b`, CLIENT UNBLOCK).
    pub blocked: Option<BlockedOn>,
    /// Set while the client's command is held by the node's pause (CLIENT LIST flag `b`).
    pub paused: bool,
    /// Pub/Sub subscriptions (None until the first one).
    pub pubsub: Option<Box<super::pubsub_reg::Subs>>,
    /// What REPLCONF told us (a would-be replica), None until it is called.
    pub replconf: Option<Box<crate::replication::master::ReplicaFacts>>,
    /// The master link of a replica (never refused, never answered; CLIENT LIST flag `M`).
    pub master: bool,
    /// The ACL user (the default user until AUTH/HELLO).
    pub user: Arc<crate::acl::User>,
    /// The ACL generation `user` was read at (see `crate::acl`).
    pub acl_gen: u64,
    /// CLIENT TRACKING state (None until it tracks or receives invalidations).
    pub tracking: Option<Box<super::tracking::ClientTracking>>,
    /// SCRIPT DEBUG: the next EVAL runs as a Lua debugger session.
    pub lua_debug: crate::script::ldb::Mode,
}

/// What a blocked client waits in.
#[derive(Debug, Clone)]
pub struct BlockedOn {
    /// The blocked call's token (claiming it answers the call).
    pub token: Arc<super::blocked::BlockToken>,
    /// What the call answers on timeout.
    pub timeout_reply: Reply,
}

/// CLIENT REPLY ON|OFF|SKIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// Replies are sent.
    #[default]
    On,
    /// Replies are not sent.
    Off,
    /// The next command's reply is not sent.
    Skip,
}

impl ClientState {
    /// Reply bytes waiting for this client (CLIENT LIST `omem`): the connection's, and
    /// published messages it has not taken from its outbox yet.
    pub fn output_bytes(&self) -> usize {
        self.omem + self.pubsub.as_ref().map_or(0, |p| p.outbox.queued_bytes())
    }

    /// Killed, or over its output-buffer limit: closing, and gone for CLIENT LIST (Redis
    /// frees such a client before it serves anyone else).
    pub fn closing(&self) -> bool {
        self.killed || self.pubsub.as_ref().is_some_and(|p| p.outbox.overflowed.get())
    }

    /// A new client.
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, authenticated: bool) -> ClientState {
        // The generation first: a change after it is seen at the next command.
        let acl_gen = crate::acl::generation();
        let now = crate::storage::now_ms();
        ClientState::fresh(id, addr, laddr, fd, authenticated, now, acl_gen, crate::acl::default())
    }

    /// The client a script's commands run as: the caller's identity and ACL user, database
    /// `db`, times from the thread's cached clock.
    pub fn for_script(caller: &ClientState, db: usize) -> ClientState {
        let now = crate::storage::cached_ms();
        let (addr, laddr) = (caller.addr.clone(), caller.laddr.clone());
        let mut c = ClientState::fresh(caller.id, addr, laddr, -1, true, now, caller.acl_gen, caller.user.clone());
        c.name = caller.name.clone();
        c.db = db;
        c
    }

    /// A client in its initial state with this identity.
    #[allow(clippy::too_many_arguments)]
    fn fresh(
        id: u64,
        addr: String,
        laddr: String,
        fd: i32,
        authenticated: bool,
        now: u64,
        acl_gen: u64,
        user: std::sync::Arc<crate::acl::User>,
    ) -> ClientState {
        ClientState {
            id,
            addr,
            laddr,
            fd,
            unix: false,
            name: None,
            db: 0,
            resp3: false,
            authenticated,
            created_ms: now,
            last_interaction_ms: now,
            last_cmd: "NULL",
            reply_mode: ReplyMode::On,
            no_evict: false,
            killed: false,
            monitor: false,
            lib_name: None,
            qbuf: 0,
            qbuf_room: 0,
            omem: 0,
            qbuf_alloc: 0,
            obuf_cap: 0,
            argv_mem: 0,
            argv_held: 0,
            multi_mem: 0,
            conn_bytes: 0,
            tot_mem: 0,
            mem_bucket: 0,
            evicted_mem: 0,
            close_after_reply: false,
            readonly: false,
            asking: false,
            blocked: None,
            paused: false,
            multi: None,
            pubsub: None,
            replconf: None,
            master: false,
            acl_gen,
            user,
            tracking: None,
            lua_debug: Default::default(),
        }
    }
}

/// A shard's registry of its clients (CLIENT LIST / KILL, INFO clients).
pub type ClientRegistry = HashMap<u64, Rc<RefCell<ClientState>>>;

/// Everything a shard owns apart from I/O. Only its own thread touches it.
pub struct ShardState {
    /// Shard index (= mesh peer id).
    pub id: usize,
    /// The databases.
    pub ks: Keyspace,
    /// Statistics.
    pub stats: ShardStats,
    /// This shard's snapshot of the configuration.
    pub config: Arc<Config>,
    /// Clients whose home is this shard.
    pub clients: ClientRegistry,
    /// SLOWLOG entries, newest first.
    pub slowlog: VecDeque<SlowlogEntry>,
    /// The node this shard belongs to.
    pub node: Arc<NodeInfo>,
    /// LATENCY samples per event (newest last), with each event's maximum.
    pub latency: HashMap<&'static str, LatencyEvent>,
    /// Clients blocked on this shard's keys.
    pub blocked: super::blocked::Registry,
    /// Pub/Sub subscriptions of this shard's clients.
    pub pubsub: super::pubsub_reg::Registry,
    /// The one door: every change to `ks` is counted and recorded here.
    pub changes: crate::storage::changes::ChangeLog,
    /// Keyspace notifications queued by the current operation (see `cmd::notify`).
    pub notify: super::notify::Pending,
    /// CLIENT TRACKING: who read this shard's keys (see `cmd::tracking`).
    pub tracking: super::tracking_reg::Table,
    /// [`crate::storage::expired_logged`] when `log_expired` last looked at the databases.
    expired_seen: u64,
}

/// Samples of one latency event (`command`, `fast-command`).
#[derive(Debug, Default, Clone)]
pub struct LatencyEvent {
    /// (unix seconds, milliseconds), at most 160 like Redis.
    pub samples: VecDeque<(u64, u64)>,
    /// Largest latency seen (ms).
    pub max: u64,
}

impl ShardState {
    /// Records a latency sample for `event` if it reaches `latency-monitor-threshold`.
    pub fn record_latency(&mut self, event: &'static str, ms: u64) {
        let threshold = self.config.latency_monitor_threshold;
        if threshold == 0 || ms < threshold {
            return;
        }
        let now = crate::storage::cached_ms() / 1000;
        let e = self.latency.entry(event).or_default();
        match e.samples.back_mut() {
            // One sample per second: keep the worst.
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => e.samples.push_back((now, ms)),
        }
        if e.samples.len() > 160 {
            e.samples.pop_front();
        }
        e.max = e.max.max(ms);
    }

    /// A fresh shard.
    pub fn new(id: usize, config: Arc<Config>, node: Arc<NodeInfo>) -> ShardState {
        ShardState {
            id,
            ks: Keyspace::new(config.databases),
            stats: ShardStats::default(),
            config,
            clients: ClientRegistry::new(),
            slowlog: VecDeque::new(),
            node,
            latency: HashMap::new(),
            blocked: Default::default(),
            pubsub: Default::default(),
            changes: Default::default(),
            notify: Default::default(),
            tracking: Default::default(),
            expired_seen: 0,
        }
    }

    /// Counts a read lookup of `key` in `db` (Redis's `lookupKeyRead`): INFO's keyspace_hits /
    /// keyspace_misses, and on a miss the `keymiss` event, after the `expired` events of the
    /// lookups so far (the miss may be the key that just expired).
    pub fn count_lookup(&mut self, key: &[u8], db: usize, hit: bool) {
        if hit {
            self.stats.keyspace_hits += 1;
            return;
        }
        self.stats.keyspace_misses += 1;
        if super::notify::flags() & super::notify::KEY_MISS != 0 {
            self.log_expired();
            super::notify::emit(self, super::notify::KEY_MISS, "keymiss", key, db);
        }
    }

    /// Moves the keys that expired during the last operation into the change log (as DELs)
    /// and queues their `expired` notifications.
    #[inline]
    pub fn log_expired(&mut self) {
        // Nothing was logged anywhere since the last look: skip the walk over the databases
        // (this runs after every command).
        let logged = crate::storage::expired_logged();
        if logged != self.expired_seen {
            self.expired_seen = logged;
            self.log_expired_walk();
        }
    }

    #[cold]
    fn log_expired_walk(&mut self) {
        for db in 0..self.ks.dbs.len() {
            if self.ks.dbs[db].has_expired_log() {
                // Looked up by name only when something expired (the common call finds nothing).
                let unlink = self.config.get("lazyfree-lazy-expire") == Some("yes");
                let keys = self.ks.dbs[db].take_expired();
                super::tracking::expired(self, &keys);
                self.changes.record_expired(db, &keys, unlink);
                if super::notify::flags() & super::notify::EXPIRED != 0 {
                    for k in &keys {
                        super::notify::emit(self, super::notify::EXPIRED, "expired", k, db);
                    }
                }
            }
        }
    }

    /// Recording follows the feed's activity (a replica forwards its master's stream instead of
    /// recording its own executions). Checked before a command too: the first write after a
    /// REPLICAOF NO ONE, or after the AOF was turned on, must be recorded.
    #[inline]
    pub fn sync_recording(&mut self) {
        let active = self.node.repl.feed.active() && !crate::replication::role::no_record();
        if self.changes.recording() != active {
            self.changes.set_recording(active);
        }
    }

    /// After a top-level operation of this shard: sends what it recorded to the replication
    /// feed (recording follows the feed's activity).
    #[inline]
    pub fn flush_changes(&mut self) {
        self.sync_recording();
        self.log_expired();
        if self.changes.has_pending() {
            self.push_changes();
        }
        if !self.notify.is_empty() {
            super::notify::publish_pending(self);
        }
        if !self.tracking.bcast.is_empty() {
            super::tracking::flush_bcast(self);
        }
    }

    /// [`flush_changes`](Self::flush_changes)'s push to the feed, out of line: nothing is
    /// recorded while no replica or AOF takes the stream, and the push's frame cost every
    /// command then.
    #[inline(never)]
    fn push_changes(&mut self) {
        let units = self.changes.take();
        let item = crate::replication::feed::FeedItem::Units { shard: self.id, units, atomic: false };
        self.node.repl.feed.push_batched(item);
    }

    /// After work done for a transaction holding this shard: hands what it recorded to the
    /// transaction's coordinator, which pushes the whole transaction as one unit.
    /// Its keyspace notifications stay queued for the caller (`notify::Pending::take`).
    pub fn take_changes(&mut self) -> Vec<crate::replication::feed::Unit> {
        self.log_expired();
        self.changes.take()
    }
}

/// Node-wide facts and counters, shared by all shards (read-mostly; counters are atomics).
#[derive(Debug)]
pub struct NodeInfo {
    /// 40-hex run id.
    pub run_id: String,
    /// Process id.
    pub pid: u32,
    /// Start time (ms).
    pub start_ms: u64,
    /// Absolute path of the executable.
    pub executable: String,
    /// Absolute path of the config file, or empty.
    pub config_file: String,
    /// Number of data shards.
    pub shards: usize,
    /// CPU of each shard (None when not pinned).
    pub shard_cpus: Vec<Option<usize>>,
    /// Connected clients over all shards.
    pub connected_clients: AtomicUsize,
    /// Next client id.
    pub next_client_id: AtomicU64,
    /// Configuration generation: bumped by CONFIG SET so shards refresh their snapshot.
    pub config_gen: AtomicU64,
    /// The current configuration.
    pub config: std::sync::RwLock<Arc<Config>>,
    /// Monotonic clock at start, for uptime.
    pub started: std::time::Instant,
    /// The cluster (None in standalone mode).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Clients waiting in a blocking command (INFO blocked_clients).
    pub blocked_clients: AtomicUsize,
    /// Of those, the ones with a timeout (INFO clients_in_timeout_table).
    pub blocked_with_timeout: AtomicUsize,
    /// Pub/Sub subscription counts over all shards.
    pub pubsub: super::pubsub_reg::NodeIndex,
    /// Replication: the change feed, this node's offset, role changes.
    pub repl: crate::replication::Replication,
    /// CLIENT TRACKING: tracking clients and their inboxes.
    pub tracking: super::tracking_reg::Directory,
}

impl NodeInfo {
    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Installs a new configuration and bumps the generation.
    pub fn set_config(&self, cfg: Config) {
        crate::storage::thresholds::apply(&cfg);
        super::notify::apply_config(&cfg);
        let cfg = Arc::new(cfg);
        match self.config.write() {
            Ok(mut c) => *c = cfg,
            Err(p) => *p.into_inner() = cfg,
        }
        self.config_gen.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// The context of a keyed command on its owning shard.
pub struct Ctx<'a> {
    /// The shard.
    pub shard: &'a mut ShardState,
    /// The client's selected database.
    pub db: usize,
    /// The command's clock (ms), fixed for its whole execution like Redis's `mstime` cache.
    pub now_ms: u64,
    /// The changes the handler reported with [`Ctx::dirty`], overriding the table of
    /// `cmd::propagate` (for counts only the handler knows).
    pub dirty: Option<u64>,
    /// The commands a handler propagates instead of itself (Redis's `alsoPropagate` with
    /// `preventCommandPropagation`, or a rewritten argv), overriding `cmd::propagate`.
    pub propagate: Option<Vec<crate::replication::feed::Argv>>,
}

impl<'a> Ctx<'a> {
    /// A context for a command in `db` at `now_ms`.
    pub fn new(shard: &'a mut ShardState, db: usize, now_ms: u64) -> Ctx<'a> {
        Ctx { shard, db, now_ms, dirty: None, propagate: None }
    }
}

impl Ctx<'_> {
    /// Reports the command's change count (Redis's `server.dirty` increment) where only the
    /// handler knows it (ZADD's added+updated, SETBIT of an equal bit, LTRIM's removed, ...);
    /// 0 means nothing changed: nothing is counted or propagated.
    pub fn dirty(&mut self, n: u64) {
        self.dirty = Some(n);
    }

    /// The selected database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.shard.ks.dbs[self.db]
    }

    /// Counts a read lookup of `key` that the command made itself (Redis's `lookupKeyRead`):
    /// INFO's keyspace_hits / keyspace_misses, and a `keymiss` event on a miss.
    pub fn count_lookup(&mut self, key: &[u8], hit: bool) {
        self.shard.count_lookup(key, self.db, hit);
    }

    /// Counts a lookup that raises no `keymiss` event (Redis's `LOOKUP_NONOTIFY`: OBJECT,
    /// MEMORY USAGE).
    pub fn count_lookup_quiet(&mut self, hit: bool) {
        if hit {
            self.shard.stats.keyspace_hits += 1;
        } else {
            self.shard.stats.keyspace_misses += 1;
        }
    }

    /// A read lookup (Redis's `lookupKeyRead`): the live entry of `key`, touched, counted in
    /// keyspace_hits / keyspace_misses, with a `keymiss` event on a miss. Write lookups and
    /// the commands' internal ones use [`Db::get`], which counts nothing.
    pub fn read_entry(&mut self, key: &[u8]) -> Option<&mut crate::storage::Entry> {
        let now = self.now_ms;
        let found: Option<*mut crate::storage::Entry> = self.db().get(key, now).map(|e| e as *mut _);
        self.count_lookup(key, found.is_some());
        // SAFETY: `e` points into this database's table, borrowed through `self` for the
        // returned lifetime. Only a hit leaves a pointer, and counting a hit touches `stats`
        // alone (a miss may expire keys, but then there is no pointer).
        found.map(|e| unsafe { &mut *e })
    }
}

/// The context of a node-level command on the client's home shard.
pub struct ClientCtx<'a> {
    /// The client.
    pub client: &'a mut ClientState,
    /// The home shard.
    pub shard: &'a mut ShardState,
}

impl ClientCtx<'_> {
    /// The node.
    pub fn node(&self) -> &Arc<NodeInfo> {
        &self.shard.node
    }
}

/// Shorthand for a reply inside `Plan::Reply`.
pub fn reply(r: Reply) -> crate::cmd::Plan {
    crate::cmd::Plan::Reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    fn name_hash_pads_the_tail_with_zeros() {
        let name = b"client|no-evict-and-more";
        for len in 0..name.len() {
            let mut h = NameHasher::default();
            h.write(&name[..len]);
            let mut want = 0u64;
            for c in name[..len].chunks(8) {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                want = (want.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(NAME_HASH_K);
            }
            assert_eq!(h.0, want, "length {len}");
        }
    }
}
