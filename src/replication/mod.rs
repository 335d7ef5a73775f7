//! Replication, Redis 7.0's PSYNC2, both sides: the node-wide handle every part of the node
//! uses to reach it.
//!
//! - The shards' change streams reach the control core through the [`feed::Feed`]; the control
//!   core merges them into one stream with one offset space, held once in the replication
//!   buffer the backlog and the attached replicas share (`backlog.rs`), from which each
//!   replica's writer sends it (master side).
//! - A replica's link to its master (handshake, full sync, applying the stream as a master
//!   client) is started and stopped with [`Replication::follow`] and [`Replication::promote`]:
//!   by REPLICAOF, by CLUSTER REPLICATE, and by the cluster bus when a failover moves roles.
//! - [`Replication::offset`] is this node's replication offset (a master's
//!   `master_repl_offset`, a replica's processed offset of its master's stream): the bus
//!   gossips it, elections rank replicas by it, manual failover waits for it.
//!
//! Where it runs:
//! - Master side (`master.rs` and friends), on the control core: drains the feed, merges it
//!   into one stream (SELECT injected when the db changes, atomic units wrapped in
//!   MULTI/EXEC, `ping` every `repl-ping-replica-period`), keeps the backlog, and writes to
//!   replicas. A replica first talks to a shard like any client (REPLCONF); on SYNC/PSYNC
//!   its home shard hands the socket to the control core.
//! - Replica side (`replica.rs` and friends), on shard 0: takes role requests, connects and
//!   handshakes, loads the full sync into every shard, then applies the master's stream as a
//!   master client through the ordinary dispatch (so cross-shard commands and MULTI/EXEC stay
//!   atomic), acknowledges offsets, and forwards the raw stream to the feed
//!   ([`feed::FeedItem::Raw`]) so sub-replicas and the backlog see the master's exact bytes.

pub mod attached;
pub mod backlog;
pub mod failover;
pub mod feed;
pub mod handoff;
pub mod handshake;
pub mod load;
pub mod master;
pub mod replica;
pub mod role;
pub mod settings;
pub mod snapshot;
pub mod stream;

use futures_channel::mpsc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A role change asked of the replication task on the control core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRequest {
    /// Become (or stay) a replica of `host:port` (REPLICAOF host port, CLUSTER REPLICATE, an
    /// old master rejoining as a replica of the winner of a failover).
    Follow {
        /// Master host.
        host: String,
        /// Master client port.
        port: u16,
    },
    /// Stop replicating and serve as a master, keeping the data (REPLICAOF NO ONE, a replica
    /// that won a failover): the replication id shifts as Redis's `shiftReplicationId`.
    Promote,
}

/// What INFO replication, ROLE and the cluster bus read about both sides (filled by the
/// master side on the control core and by the replica link).
#[derive(Debug, Clone, Default)]
pub struct ReplStatus {
    /// 40-hex replication id (`master_replid`).
    pub replid: String,
    /// Previous replication id after a promotion (`master_replid2`; 40 x '0' when cleared).
    pub replid2: String,
    /// `second_repl_offset` (-1 when cleared).
    pub second_offset: i64,
    /// Replica side: the master this node follows, None on a master.
    pub master: Option<MasterLinkStatus>,
    /// Master side: attached replicas (INFO `slaveN:`, ROLE, WAIT).
    pub replicas: Vec<ReplicaStatus>,
    /// Master side: the backlog (`repl_backlog_active`, `_size`, `_first_byte_offset`,
    /// `_histlen`).
    pub backlog_active: bool,
    /// `repl_backlog_size`.
    pub backlog_size: u64,
    /// `repl_backlog_first_byte_offset`.
    pub backlog_first_byte_offset: u64,
    /// `repl_backlog_histlen`.
    pub backlog_histlen: u64,
    /// The replication buffer shared by the backlog and the replicas
    /// (`mem_total_replication_buffers`).
    pub repl_buffer_mem: u64,
    /// What is queued for the replicas besides their stream (the sync's replies, the
    /// snapshot's file on its way), summed.
    pub replica_direct_bytes: u64,
}

/// A replica's view of its master link (INFO replication on a replica, ROLE).
#[derive(Debug, Clone, Default)]
pub struct MasterLinkStatus {
    /// `master_host`.
    pub host: String,
    /// `master_port`.
    pub port: u16,
    /// ROLE's state: `connect`, `connecting`, `handshake`, `sync`, `connected`.
    pub state: &'static str,
    /// Unix ms of the last byte from the master (`master_last_io_seconds_ago`).
    pub last_io_ms: u64,
    /// Unix ms since when the link is down; 0 while up, and also while never connected since
    /// this node became a replica (INFO `master_link_down_since_seconds:-1`, as Redis's
    /// `repl_down_since`); the cluster's replica validity check reads it.
    pub down_since_ms: u64,
    /// A full sync is being received (`master_sync_in_progress`).
    pub sync_in_progress: bool,
    /// Bytes of the RDB expected (-1 for the EOF form) and read so far.
    pub sync_total_bytes: i64,
    /// Bytes of the RDB read so far.
    pub sync_read_bytes: u64,
    /// Offset read from the master (`slave_read_repl_offset`).
    pub read_offset: u64,
}

impl MasterLinkStatus {
    /// A link about to connect to `host:port`, down since `down_since_ms` (0: never up).
    pub fn connecting(host: &str, port: u16, down_since_ms: u64) -> MasterLinkStatus {
        MasterLinkStatus {
            host: host.to_string(),
            port,
            state: "connect",
            down_since_ms,
            sync_total_bytes: -1,
            ..Default::default()
        }
    }
}

/// One replica as its master sees it.
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    /// Client id of the replica's connection.
    pub id: u64,
    /// Announced ip (REPLCONF ip-address) or peer address.
    pub ip: String,
    /// REPLCONF listening-port.
    pub port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub state: &'static str,
    /// Last acknowledged offset.
    pub ack_offset: u64,
    /// Unix ms of the last ACK.
    pub ack_time_ms: u64,
    /// Peer `ip:port` (CLIENT LIST / KILL).
    pub addr: String,
    /// Local `ip:port`.
    pub laddr: String,
    /// Socket fd on the control core; stays open while the replica is listed here, so
    /// CLIENT KILL may shut it down under the status lock.
    pub fd: i32,
    /// CLIENT SETNAME given before the sync.
    pub name: String,
    /// Database the connection had selected.
    pub db: usize,
    /// Connection time (Unix ms).
    pub created_ms: u64,
    /// Bytes queued for it and not yet written (CLIENT LIST `omem`).
    pub output_bytes: u64,
}

/// A full-sync snapshot, asked of shard 0 by the control core: a forkless point-in-time
/// snapshot begun on every shard at once (each pushes its feed mark `id` there), whose RDB
/// bytes then stream to `out` while the shards keep serving.
#[derive(Debug)]
pub struct SnapshotJob {
    /// Snapshot id (the feed mark's; from `cmd::bgsave::new_id`).
    pub id: u64,
    /// Leave the keys out (`rdb-filter-only`).
    pub exclude_data: bool,
    /// Disk target: write the RDB file (a BGSAVE), then send it with its length first.
    pub disk: bool,
    /// The file's replication aux fields, sent by the control core once the mark passed
    /// (the offset is the stream's at the mark). Dropped: the sync was abandoned.
    pub repl_info: futures_channel::oneshot::Receiver<crate::persist::file::ReplInfo>,
    /// Where the bytes go, in order (bounded: a slow replica slows the snapshot down).
    pub out: mpsc::Sender<SnapshotMsg>,
}

/// What a [`SnapshotJob`] produces.
#[derive(Debug)]
pub enum SnapshotMsg {
    /// Disk target: the file's length (comes before its bytes).
    Len(u64),
    /// The next bytes of the RDB file.
    Data(bytes::Bytes),
    /// The end: the whole file was produced, or why not.
    End(Result<(), String>),
}

/// The node-wide replication handle (one per process, in `NodeInfo`).
#[derive(Debug)]
pub struct Replication {
    /// Shards -> control core change stream.
    pub feed: feed::Feed,
    /// This node's replication offset (see the module docs).
    offset: AtomicU64,
    /// `FeedItem::Raw` items the master link pushed and the master side has not taken in
    /// yet (their bytes are in [`Replication::offset`] already).
    raw_in_flight: AtomicU64,
    /// Sub-replicas wait for the stream the master link pushes (it wakes the control core at
    /// once); otherwise only the backlog takes it, a tick later at most.
    raw_wanted: AtomicBool,
    /// Role changes for the replica-link task (REPLICAOF, CLUSTER REPLICATE, failover).
    role_tx: mpsc::UnboundedSender<RoleRequest>,
    role_rx: Mutex<Option<mpsc::UnboundedReceiver<RoleRequest>>>,
    /// Ids, links and backlog, for INFO/ROLE/the bus.
    pub status: Mutex<ReplStatus>,
    /// Snapshot jobs, control core -> shard 0.
    snapshot_tx: mpsc::UnboundedSender<SnapshotJob>,
    snapshot_rx: Mutex<Option<mpsc::UnboundedReceiver<SnapshotJob>>>,
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new()
    }
}

impl Replication {
    /// A master with no replicas, offset 0 and a fresh random replication id.
    pub fn new() -> Replication {
        let (role_tx, role_rx) = mpsc::unbounded();
        let (snapshot_tx, snapshot_rx) = mpsc::unbounded();
        let status = ReplStatus {
            replid: random_replid(),
            replid2: "0".repeat(40),
            second_offset: -1,
            backlog_size: 1 << 20,
            ..Default::default()
        };
        Replication {
            feed: feed::Feed::new(),
            offset: AtomicU64::new(0),
            raw_in_flight: AtomicU64::new(0),
            raw_wanted: AtomicBool::new(false),
            role_tx,
            role_rx: Mutex::new(Some(role_rx)),
            status: Mutex::new(status),
            snapshot_tx,
            snapshot_rx: Mutex::new(Some(snapshot_rx)),
        }
    }

    /// This node's replication offset.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Acquire)
    }

    /// Waits until the control core has merged everything pushed to the feed before this
    /// call, so [`Replication::offset`] covers the caller's writes (Redis's
    /// `master_repl_offset` moves with each write command, before its reply). Returns at once
    /// while nothing records.
    pub async fn settled(&self) {
        if self.is_replica() {
            // The backlog takes in what the master link pushed (quietly, see `push_raw`), so
            // that INFO's backlog fields cover the offset it shows.
            if self.raw_in_flight() {
                self.merged().await
            }
            return;
        }
        if !self.feed.active() {
            return;
        }
        self.merged().await
    }

    /// Waits until the control core has taken in everything pushed to the feed before this
    /// call (and followed any change of id or role made before it), whatever the role.
    pub async fn merged(&self) {
        let (tx, rx) = futures_channel::oneshot::channel::<()>();
        self.feed.push(feed::FeedItem::Control(Box::new(move || {
            let _ = tx.send(());
        })));
        let _ = rx.await;
    }

    /// Sets this node's replication offset as the stream moves it (the replication code does).
    pub fn set_offset(&self, off: u64) {
        self.offset.store(off, Ordering::Release);
    }

    /// Pushes stream bytes the master link processed (a replica forwards its master's stream
    /// byte for byte into its backlog and to its sub-replicas) and publishes `offset`, the
    /// link's offset after them. They count in flight from before the offset is published
    /// until the master side takes them in, so that side never sees the link's offset ahead
    /// of what it took in with nothing in flight (it would take that for an offset set from
    /// outside the stream, and restart the backlog there). Without sub-replicas or the AOF
    /// waiting for them, the control core is not woken for them: the backlog takes them in
    /// with its next item or tick.
    pub fn push_raw(&self, bytes: bytes::Bytes, offset: u64) {
        self.raw_in_flight.fetch_add(1, Ordering::AcqRel);
        self.set_offset(offset);
        let item = feed::FeedItem::Raw(bytes);
        if self.raw_wanted.load(Ordering::Relaxed) || self.feed.aof_on() {
            self.feed.push(item);
        } else {
            self.feed.push_quiet(item);
        }
    }

    /// Whether sub-replicas are attached (the master side says, as it publishes them).
    pub fn set_raw_wanted(&self, on: bool) {
        self.raw_wanted.store(on, Ordering::Relaxed);
    }

    /// The master link starts applying its master's stream at `offset` (`full`: after a full
    /// resync, a new history): the master side keeps its backlog from there (Redis's replica
    /// creates one on every sync, so that its siblings can continue from it once it is
    /// promoted). Sent through the feed before the link forwards the stream's first byte.
    pub fn master_stream_starts(&self, offset: u64, full: bool) {
        let start = master::replica_backlog::MasterStream { offset, full };
        master::send(self, master::Request::MasterStream(start));
    }

    /// The master side took in one pushed [`feed::FeedItem::Raw`].
    pub fn raw_taken(&self) {
        self.raw_in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// True while pushed stream bytes wait for the master side.
    pub fn raw_in_flight(&self) -> bool {
        self.raw_in_flight.load(Ordering::Acquire) != 0
    }

    /// Asks to become a replica of `host:port`. Idempotent: following the master already
    /// followed changes nothing and returns false. The role (INFO `role:slave`, `-READONLY`)
    /// changes at once; the link task reconnects (PSYNC with the cached master).
    pub fn follow(&self, host: &str, port: u16) -> bool {
        let changed = self.with_status(|s| {
            if s.master.as_ref().is_some_and(|m| m.host == host && m.port == port) {
                return false;
            }
            // Leaving a live link marks it down now (Redis's `replicationHandleMasterDisconnection`).
            let down = match &s.master {
                Some(m) if m.down_since_ms == 0 && m.state == "connected" => crate::storage::now_ms(),
                Some(m) => m.down_since_ms,
                None => 0,
            };
            s.master = Some(MasterLinkStatus::connecting(host, port, down));
            true
        });
        if changed {
            role::set_replica(true);
            crate::oom_score_adj::role_changed();
            role::followed_new_master();
            let _ = self.role_tx.unbounded_send(RoleRequest::Follow { host: host.to_string(), port });
        }
        changed
    }

    /// Asks to stop replicating and serve as a master, keeping the data. Idempotent: a
    /// master stays as it is and this returns false. The role and the replication ids change
    /// at once; the link task closes the link.
    pub fn promote(&self) -> bool {
        let off = self.offset();
        // Redis's `replicationUnsetMaster` shifts the replication id before the command
        // replies: INFO and ROLE right after REPLICAOF NO ONE show the new ids.
        let was = self.with_status(|s| {
            if s.master.take().is_none() {
                return false;
            }
            s.replid2 = std::mem::replace(&mut s.replid, random_replid());
            s.second_offset = off as i64 + 1;
            tracing::warn!(
                "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
                s.replid2,
                s.second_offset,
                s.replid
            );
            true
        });
        if was {
            role::set_replica(false);
            crate::oom_score_adj::role_changed();
            role::set_stale(false);
            let _ = self.role_tx.unbounded_send(RoleRequest::Promote);
        }
        was
    }

    /// The receiving end of role requests, taken once by the replica-link task.
    pub fn take_role_receiver(&self) -> Option<mpsc::UnboundedReceiver<RoleRequest>> {
        self.with_lock(&self.role_rx, |r| r.take())
    }

    /// Asks shard 0 for a snapshot (see [`SnapshotJob`]).
    pub fn request_snapshot(&self, job: SnapshotJob) {
        let _ = self.snapshot_tx.unbounded_send(job);
    }

    /// The receiving end of snapshot jobs, taken once by shard 0.
    pub fn take_snapshot_receiver(&self) -> Option<mpsc::UnboundedReceiver<SnapshotJob>> {
        self.with_lock(&self.snapshot_rx, |r| r.take())
    }

    /// Reads or changes the status under its lock.
    pub fn with_status<R>(&self, f: impl FnOnce(&mut ReplStatus) -> R) -> R {
        self.with_lock(&self.status, f)
    }

    fn with_lock<T, R>(&self, m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
        match m.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// True when this node follows a master.
    pub fn is_replica(&self) -> bool {
        self.with_status(|s| s.master.is_some())
    }
}

/// A random 40-hex replication id (Redis's `changeReplicationId`).
pub fn random_replid() -> String {
    (0..40).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0')).collect()
}

/// `rdb-del-sync-files yes` without persistence (no save points, no AOF): the RDB file a full
/// sync wrote (a replica's received copy, or a master's disk-target file once sent) is removed,
/// as Redis's `removeRDBUsedToSyncReplicas` and `readSyncBulkPayload`.
pub(crate) fn remove_sync_rdb_without_persistence(cfg: &crate::config::Config) {
    let no_persistence = cfg.get("save").is_none_or(|v| v.trim().is_empty()) && cfg.get("appendonly") != Some("yes");
    if cfg.get("rdb-del-sync-files") == Some("yes") && no_persistence {
        let path = crate::cmd::save::rdb_path(cfg);
        if std::fs::remove_file(&path).is_ok() {
            if role::is_replica() {
                tracing::info!("Removing the RDB file obtained from the master. This replica has persistence disabled");
            } else {
                tracing::info!("Removing the RDB file used to feed replicas in a persistence-less instance");
            }
        }
    }
}
