//! A replica's backlog of its master's stream (Redis 7.0's `createReplicationBacklog` in
//! `readSyncBulkPayload` and `slaveTryPartialResynchronization`, fed by
//! `replicationFeedStreamFromMasterStream`).
//!
//! A replica keeps a backlog whether or not it serves sub-replicas: once it is promoted (a
//! failover, REPLICAOF NO ONE), its former siblings ask it for the old master's history under
//! its second replication id, and continue (`+CONTINUE`) from what this backlog holds instead of
//! a full resync.
//!
//! - The master link announces where it starts applying the stream ([`MasterStream`]) through
//!   the feed, before it forwards the stream's first byte (`FeedItem::Raw`, pushed for every
//!   byte it processes), so the backlog's offsets are exactly the link's: a backlog created at
//!   offset `O` holds the bytes from `O + 1` on (`repl_backlog_first_byte_offset`), and its
//!   `histlen` grows with the applied stream.
//! - After a full resync the history is new: the sub-replicas are disconnected (they resync
//!   with this node) and the old backlog is dropped (Redis's `replicationAttachToNewMaster`),
//!   and a new one starts at the sync's offset.
//! - After a partial resync the backlog goes on if it ends where the stream resumes (the
//!   cached master's offset); otherwise (a replica restarted from its RDB file) a new one
//!   starts there.
//! - The feed is turned on with the backlog, as on a master with one: the shards do not
//!   record while this node follows a master, and record from the first write after a
//!   promotion on.

use super::*;

/// Where a replica's link starts applying its master's stream.
#[derive(Debug, Clone, Copy)]
pub struct MasterStream {
    /// The offset of the last byte before the stream's first (the sync's offset).
    pub offset: u64,
    /// A full resync: a new history.
    pub full: bool,
}

impl Master {
    /// The master link starts applying its master's stream at `s.offset` (see the module's doc).
    pub(super) fn master_stream_starts(&mut self, repl: &Replication, s: MasterStream, now_ms: u64) {
        if !self.following {
            // Promoted before the link got here: the stream it would have applied never comes.
            return;
        }
        if s.full {
            if !self.replicas.is_empty() {
                for r in std::mem::take(&mut self.replicas) {
                    tracing::info!("Connection with replica {} lost.", r.name());
                    close_replica(&r);
                }
                self.no_replicas_since = now_ms;
            }
            self.backlog = None;
        }
        let continues = self.backlog.as_ref().is_some_and(|b| b.borrow().end() == s.offset);
        if !continues {
            self.restart_backlog(s.offset);
        }
        self.offset = s.offset;
        repl.feed.set_active(true);
        self.publish(repl);
    }
}
