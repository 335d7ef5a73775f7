//! Replication, Redis 7.0's PSYNC2, both sides: the node-wide handle every part of the node
//! uses to reach it.
//!
//! - The shards' change streams reach the control core through the [`feed::Feed`]; the control
//!   core merges them into one stream with one offset space, keeps the backlog and writes the
//!   stream to attached replicas (master side).
//! - A replica's link to its master (handshake, full sync, applying the stream as a master
//!   client) is started and stopped with [`Replication::follow`] and [`Replication::promote`]:
//!   by REPLICAOF, by CLUSTER REPLICATE, and by the cluster bus when a failover moves roles.
//! - [`Replication::offset`] is this node's replication offset (a master's
//!   `master_repl_offset`, a replica's processed offset of its master's stream): the bus
//!   gossips it, elections rank replicas by it, manual failover waits for it.

pub mod feed;

use std::sync::atomic::{AtomicU64, Ordering};
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

/// The node-wide replication handle (one per process, in `NodeInfo`).
#[derive(Debug)]
pub struct Replication {
    /// Shards -> control core change stream.
    pub feed: feed::Feed,
    /// This node's replication offset (see the module docs).
    offset: AtomicU64,
    /// Role changes asked and not yet taken by the replication task (latest wins).
    role_requests: Mutex<Vec<RoleRequest>>,
    /// Writes from ordinary clients are refused/held until this Unix time in ms (manual
    /// failover pauses a master's writers while its replica catches up; CLIENT PAUSE WRITE).
    writes_paused_until: AtomicU64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new()
    }
}

impl Replication {
    /// A master with no replicas and offset 0.
    pub fn new() -> Replication {
        Replication {
            feed: feed::Feed::new(),
            offset: AtomicU64::new(0),
            role_requests: Mutex::new(Vec::new()),
            writes_paused_until: AtomicU64::new(0),
        }
    }

    /// This node's replication offset.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Acquire)
    }

    /// Sets this node's replication offset (the replication task does).
    pub fn set_offset(&self, off: u64) {
        self.offset.store(off, Ordering::Release);
    }

    /// Asks to become a replica of `host:port`.
    pub fn follow(&self, host: &str, port: u16) {
        self.request(RoleRequest::Follow { host: host.to_string(), port });
    }

    /// Asks to stop replicating and serve as a master.
    pub fn promote(&self) {
        self.request(RoleRequest::Promote);
    }

    fn request(&self, r: RoleRequest) {
        match self.role_requests.lock() {
            Ok(mut q) => q.push(r),
            Err(p) => p.into_inner().push(r),
        }
        // Wake the control core: a Control item arrives after everything pushed before it.
        self.feed.push(feed::FeedItem::Control(Box::new(|| {})));
    }

    /// Takes the pending role requests, oldest first (the replication task does).
    pub fn take_role_requests(&self) -> Vec<RoleRequest> {
        match self.role_requests.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    /// Holds ordinary clients' writes until `until_ms` (Unix ms; 0 resumes at once).
    pub fn pause_writes(&self, until_ms: u64) {
        self.writes_paused_until.store(until_ms, Ordering::Release);
    }

    /// True while ordinary clients' writes are paused.
    pub fn writes_paused(&self, now_ms: u64) -> bool {
        self.writes_paused_until.load(Ordering::Acquire) > now_ms
    }
}
