//! The master side of PSYNC2, as state (Redis's `replication.c` master half): the attached
//! replicas, the merged stream, the backlog, full and partial resynchronization, ACKs, WAIT,
//! `repl-timeout`, the replica output-buffer limit and the backlog's time to live.
//!
//! [`Master`] does no I/O. The control core's task (`runtime::repl_master`) feeds it the
//! shards' feed items in order, replica ACKs, a snapshot's file as it streams and a clock
//! tick, and carries out what it asks for ([`Action`]): take a snapshot on the shards, start a
//! replica's socket tasks. Bytes for a replica go into that replica's queue ([`Outbox`]), which its writer task
//! drains.
//!
//! Beside this file: `sync_request` (a replica's SYNC/PSYNC), `full_sync` (snapshots for
//! replicas), `acks` (REPLCONF ACK and WAIT), `replica_backlog` (the backlog of a node that
//! follows a master) and `restart` (a master's replication history across a restart).
//!
//! Invariants:
//! - `offset` is `master_repl_offset`: every byte of the merged stream (commands, SELECT,
//!   MULTI/EXEC, `ping`, GETACK, or a master's forwarded bytes) advances it and is appended
//!   once to the replication buffer (`backlog`), which the backlog and every replica share:
//!   a replica is a position in it, and its writer copies the stream from there.
//! - A replica waiting for its snapshot holds the stream from its snapshot's mark on (each
//!   shard pushed its mark when the forkless snapshot began on it, all shards held at once, so
//!   the snapshot holds exactly what came before the marks, however long it then streams):
//!   its position is the mark's, which keeps the buffer from there; the bytes before the mark
//!   never reach it.
//! - The buffer is trimmed back to `repl-backlog-size` of what no replica needs after every
//!   commit, when a replica goes, and in the cron, a bounded number of blocks at a time.
//! - A snapshot's file reaches its replicas as it is produced (`$<len>` then the file for a
//!   disk target, `$EOF:<mark>` … `<mark>` diskless); once its first byte went out, nothing
//!   else is written to those replicas' sockets until it ends, and no replica joins it.
//! - While this node follows a master, shard units are not propagated (the master's bytes
//!   arrive as `Raw` and are forwarded verbatim), as Redis's `replicationFeedSlaves`; the
//!   backlog keeps them from the link's start on (`replica_backlog`), and the node's offset is
//!   the one the link publishes.

use super::attached::{close_replica, Replica, State};
pub use super::attached::{Out, Outbox};
use super::backlog::Backlog;
use super::feed::{FeedItem, Unit};
pub use super::handoff::{send, Attach, ReplicaFacts, Request, WaitRequest};
pub use super::settings::{replica_obuf_limit, Settings};
use super::stream::StreamEncoder;
use super::{ReplicaStatus, Replication};
use crate::protocol::Reply;
use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Full resyncs served (INFO `sync_full`).
pub static SYNC_FULL: AtomicU64 = AtomicU64::new(0);
/// Partial resyncs accepted (INFO `sync_partial_ok`).
pub static SYNC_PARTIAL_OK: AtomicU64 = AtomicU64::new(0);
/// Partial resyncs refused (INFO `sync_partial_err`).
pub static SYNC_PARTIAL_ERR: AtomicU64 = AtomicU64::new(0);
/// Set while `min-replicas-to-write` is not met on a master (writes get NOREPLICAS).
static NO_GOOD_REPLICAS: AtomicBool = AtomicBool::new(false);
/// Replicas with lag <= `min-replicas-max-lag` (INFO `min_slaves_good_slaves`).
pub static GOOD_REPLICAS: AtomicU64 = AtomicU64::new(0);

/// Redis's NOREPLICAS error.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// True while writes must be refused with [`NOREPLICAS`] (one relaxed load).
#[inline]
pub fn writes_refused() -> bool {
    NO_GOOD_REPLICAS.load(Ordering::Relaxed)
}

/// CONFIG SET of `min-replicas-*`: the good replicas are recounted with the new
/// `min-replicas-max-lag` from the replicas' last ACK times (Redis's `updateGoodSlaves`), and
/// the NOREPLICAS refusal follows at once; the cron keeps it current after that.
pub fn settings_changed(cfg: &crate::config::Config, repl: &Replication) {
    // The control core takes the new settings in order with the stream (a control item makes
    // it re-read the config), before the writes that follow this CONFIG SET: e.g. a smaller
    // `repl-backlog-size` trims the backlog before a replica's next PSYNC is judged.
    if repl.feed.active() {
        repl.feed.push(super::feed::FeedItem::Control(Box::new(|| {})));
    }
    let s = Settings::from_config(cfg);
    let now_ms = crate::storage::now_ms();
    let good = repl.with_status(|st| {
        st.replicas
            .iter()
            .filter(|r| r.state == "online" && now_ms.saturating_sub(r.ack_time_ms) / 1000 <= s.min_lag)
            .count() as u64
    });
    GOOD_REPLICAS.store(good, Ordering::Relaxed);
    let refuse = !super::role::is_replica() && s.min_replicas > 0 && s.min_lag > 0 && good < s.min_replicas;
    NO_GOOD_REPLICAS.store(refuse, Ordering::Relaxed);
}

/// A snapshot being taken for replicas.
#[derive(Debug)]
struct Snapshot {
    id: u64,
    /// `$EOF:` framing (diskless) rather than `$<len>`.
    eof: bool,
    exclude_data: bool,
    /// Offset at its mark, once the mark came through the feed.
    mark: Option<u64>,
    /// Where the file's replication aux fields go once the mark is in.
    repl_info: Option<oneshot::Sender<crate::persist::file::ReplInfo>>,
    /// The file's bytes started to flow to its replicas (no replica can join any more).
    sending: bool,
    /// The `$EOF:` delimiter (diskless).
    eof_mark: String,
}

/// What the I/O side must do.
#[derive(Debug)]
pub enum Action {
    /// Take snapshot `id` on the shards (begun on all at once, each pushes its mark) and
    /// stream its file here ([`Master::snapshot_len`], [`Master::snapshot_data`],
    /// [`Master::snapshot_end`]).
    Snapshot {
        /// Snapshot id.
        id: u64,
        /// Leave the keys out (`rdb-filter-only`).
        exclude_data: bool,
        /// Disk target (write the RDB file, send it with its length).
        disk: bool,
        /// The file's replication aux fields, sent when the mark comes through the feed.
        repl_info: oneshot::Receiver<crate::persist::file::ReplInfo>,
    },
    /// Start a replica's reader and writer on `fd`.
    Start {
        /// Client id.
        id: u64,
        /// The socket.
        fd: i32,
        /// Its queue's receiving end.
        rx: super::attached::OutReceiver,
        /// Pending bytes shared with the queue.
        pending: Rc<Cell<u64>>,
        /// Input already read.
        leftover: Vec<u8>,
    },
}

/// What `pending` holds at most before it is committed, and the buffer `Master::commit` keeps
/// between batches: its memory is outside what INFO counts for replication and counts
/// against `maxmemory` (Redis encodes straight into its replication buffer), so a batch of
/// many writes goes to the shared buffer in pieces of about this size.
const PENDING_KEPT: usize = 8 * 1024;

/// The master side's state on the control core.
pub struct Master {
    enc: StreamEncoder,
    /// Stream bytes encoded and not yet committed.
    pending: BytesMut,
    /// The replication buffer: the backlog, and the replicas' stream (see `backlog.rs`).
    backlog: Option<Rc<RefCell<Backlog>>>,
    /// Stream bytes went straight into the backlog since the last commit (INFO's fields are
    /// due).
    backlog_moved: bool,
    /// `master_repl_offset`.
    offset: u64,
    /// The replication id last seen in the status.
    replid: String,
    replicas: Vec<Replica>,
    snapshots: Vec<Snapshot>,
    waiters: Vec<acks::Waiter>,
    /// A GETACK is due (WAIT asked).
    getack: bool,
    /// Unix ms since when no replica is attached.
    no_replicas_since: u64,
    cron_loops: u64,
    /// The node follows a master (units are not propagated).
    following: bool,
    actions: Vec<Action>,
    settings: Settings,
}

impl Master {
    /// A master with no backlog, at the node's current offset.
    pub fn new(repl: &Replication, settings: Settings, now_ms: u64) -> Master {
        Master {
            enc: StreamEncoder::default(),
            pending: BytesMut::new(),
            backlog: None,
            backlog_moved: false,
            offset: repl.offset(),
            replid: repl.with_status(|s| s.replid.clone()),
            replicas: Vec::new(),
            snapshots: Vec::new(),
            waiters: Vec::new(),
            getack: false,
            no_replicas_since: now_ms,
            cron_loops: 0,
            following: repl.is_replica(),
            actions: Vec::new(),
            settings,
        }
    }

    /// Takes what the I/O side must do.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Takes in one feed item, in feed order.
    pub fn feed(&mut self, repl: &Replication, item: FeedItem, now_ms: u64) {
        match item {
            FeedItem::Units { units, atomic, .. } => self.put_units(repl, &units, atomic),
            FeedItem::Raw(b) => {
                // A replica's backlog exists from the link's start on (`replica_backlog`).
                match &mut self.backlog {
                    // Only the backlog takes them, and nothing is encoded before them: straight
                    // in (a replica's whole stream would otherwise be copied through `pending`,
                    // grown anew for every batch).
                    Some(backlog) if self.replicas.is_empty() && self.pending.is_empty() => {
                        backlog.borrow_mut().append(&b);
                        self.offset += b.len() as u64;
                        self.backlog_moved = true;
                    }
                    Some(_) => self.pending.extend_from_slice(&b),
                    None if !self.replicas.is_empty() => self.pending.extend_from_slice(&b),
                    // Not kept, still counted (the link's offset has them).
                    None => self.offset += b.len() as u64,
                }
                // Only now: until these bytes are in `pending` or the offset, the link's
                // published offset is ahead of this side for a reason of the stream's own.
                repl.raw_taken();
            }
            FeedItem::Mark { snapshot, .. } => {
                self.commit(repl);
                self.mark(snapshot);
            }
            FeedItem::Control(f) => {
                self.commit(repl);
                // A PSYNC sees the buffer without what the replicas have taken since.
                self.trim();
                f();
                let reqs = super::handoff::take_inbox();
                for r in reqs {
                    match r {
                        Request::Attach(a) => self.attach(repl, *a, now_ms),
                        Request::Wait(w) => self.wait(w, now_ms),
                        Request::SaveMark(tx) => {
                            let _ = tx.send(self.save_mark());
                        }
                        Request::Restore(r) => self.restore(repl, r, now_ms),
                        Request::MasterStream(s) => self.master_stream_starts(repl, s, now_ms),
                    }
                }
            }
        }
    }

    /// Command records reach the stream: a master with a backlog or replicas (a replica's
    /// stream is its master's). Until a replica attaches (a feed item) or this node follows a
    /// master, records need not pass here.
    pub fn takes_units(&self) -> bool {
        self.following || self.backlog.is_some() || !self.replicas.is_empty()
    }

    fn put_units(&mut self, repl: &Replication, units: &[Unit], atomic: bool) {
        if self.following {
            // A replica's shards do not record: these are the first writes after a promotion
            // that this side has not seen yet.
            self.sync_external(repl);
        }
        if self.following || (self.backlog.is_none() && self.replicas.is_empty()) {
            return;
        }
        self.enc.put_units_for(&mut self.pending, units, atomic, Unit::TO_REPLICAS);
        if self.pending.len() >= PENDING_KEPT {
            self.commit(repl);
        }
    }

    /// Writes what was encoded to the backlog and the replicas, and advances the offset.
    pub fn commit(&mut self, repl: &Replication) {
        self.sync_external(repl);
        if self.getack && !self.replicas.is_empty() {
            self.enc.put_getack(&mut self.pending);
        }
        self.getack = false;
        if self.pending.is_empty() {
            if std::mem::take(&mut self.backlog_moved) {
                self.trim();
                self.publish_backlog(repl);
            }
            return;
        }
        self.backlog_moved = false;
        if self.backlog.is_none() && !self.replicas.is_empty() {
            // Replicas read the stream from the backlog's buffer (one is made with the first).
            self.backlog = Some(Rc::new(RefCell::new(Backlog::new(self.settings.backlog_size, self.offset))));
        }
        self.offset += self.pending.len() as u64;
        if let Some(b) = &self.backlog {
            // Once, for the backlog and every replica: their writers read it from there.
            crate::memory::change_replica_output(|| {
                b.borrow_mut().append(&self.pending);
                self.replica_output()
            });
        }
        for r in &self.replicas {
            r.out.kick();
        }
        if self.pending.capacity() > PENDING_KEPT {
            // A big write's buffer is not kept for the small ones after it.
            self.pending = BytesMut::new();
        } else {
            self.pending.clear();
        }
        // A replica's offset is the master link's (published as it processes the stream,
        // ahead of this side): setting it from here would move it back.
        if !self.following {
            repl.set_offset(self.offset);
        }
        self.check_output_limits(crate::storage::now_ms());
        self.trim();
        self.publish_backlog(repl);
    }

    /// INFO's `repl_backlog_histlen`, `_first_byte_offset` and `mem_total_replication_buffers`
    /// move with every write, as Redis's do, not only when the cron publishes.
    /// So do the replicas' output (CLIENT LIST `omem`), which Redis computes when asked.
    fn publish_backlog(&self, repl: &Replication) {
        if let Some(b) = &self.backlog {
            let b = b.borrow();
            let (first, histlen, mem) = (b.first_byte_offset(), b.histlen() as u64, b.mem());
            repl.with_status(|s| {
                s.backlog_first_byte_offset = first;
                s.backlog_histlen = histlen;
                s.repl_buffer_mem = mem;
                for st in &mut s.replicas {
                    if let Some(r) = self.replicas.iter().find(|r| r.id == st.id) {
                        st.output_bytes = r.output_bytes(Some(&b));
                    }
                }
            });
        }
    }

    /// Drops the buffer's oldest blocks that neither the backlog's size nor a replica needs
    /// (a bounded number per call, as Redis's `incrementalTrimReplicationBacklog`).
    fn trim(&self) {
        let Some(b) = &self.backlog else { return };
        let needed = self.replicas.iter().filter_map(|r| r.out.position()).min().unwrap_or(u64::MAX);
        // Blocks freed leave the replicas' output (it was reported once a second otherwise,
        // and after the replica had caught up with a burst, up to 10 MB of blocks freed was
        // still left out of the count for most of a second).
        crate::memory::change_replica_output(|| {
            b.borrow_mut().trim(needed, super::backlog::TRIM_BLOCKS_PER_CALL);
            self.replica_output()
        });
    }

    /// The buffer starts anew after offset `end` (a new one if there is none); the replicas
    /// whose stream has started go on with what comes after it.
    fn restart_backlog(&mut self, end: u64) {
        match &self.backlog {
            Some(b) => {
                crate::memory::change_replica_output(|| {
                    b.borrow_mut().reset(end);
                    self.replica_output()
                });
                for r in &self.replicas {
                    if r.out.position().is_some() {
                        r.out.pin(end + 1);
                    }
                }
            }
            None => self.backlog = Some(Rc::new(RefCell::new(Backlog::new(self.settings.backlog_size, end)))),
        }
    }

    /// Follows what the replica side changed: a new replication id (promotion, or a full sync
    /// from our master) disconnects our replicas as Redis does; an offset set from outside
    /// (a full sync from our master) restarts the backlog there.
    fn sync_external(&mut self, repl: &Replication) {
        let (replid, following) = repl.with_status(|s| (s.replid.clone(), s.master.is_some()));
        if following != self.following {
            self.following = following;
            self.enc.reset_db();
            // Promoted with a backlog: this node's own writes are the stream now.
            if !following && self.backlog.is_some() {
                repl.feed.set_active(true);
            }
            // The backlog's time to live counts from the promotion (Redis's
            // `replicationUnsetMaster`): siblings may take a while to follow.
            if !following {
                self.no_replicas_since = crate::storage::now_ms();
            }
        }
        // The master link publishes its processed offset as it pushes the bytes, ahead of
        // this side's merge of them (counted in flight before it publishes): only with none in
        // flight is a difference an offset set from outside the stream. The offset is read
        // first: a count of none read after it covers every push the offset shows.
        let ext = repl.offset();
        if ext != self.offset && self.pending.is_empty() && !repl.raw_in_flight() {
            self.offset = ext;
            if self.backlog.is_some() {
                self.restart_backlog(ext);
            }
        }
        if replid != self.replid {
            self.replid = replid;
            self.enc.reset_db();
            if !self.replicas.is_empty() {
                tracing::info!("Disconnecting replicas: the replication id changed");
                for r in std::mem::take(&mut self.replicas) {
                    close_replica(&r);
                }
                self.publish(repl);
            }
        }
    }

    /// Starts a new replication history (Redis's `changeReplicationId` and
    /// `clearReplicationId2`): a fresh random id, no second id.
    fn new_history(&mut self, repl: &Replication) {
        let id = super::random_replid();
        repl.with_status(|s| {
            s.replid = id.clone();
            s.replid2 = "0".repeat(40);
            s.second_offset = -1;
        });
        self.replid = id;
    }

    /// Replica `id` sent a command that would be answered on the replication link (anything
    /// but REPLCONF ACK / GETACK): it is dropped, as Redis drops a replica that generates a
    /// reply. A command that reads or writes keys is refused first, as Redis's
    /// `processCommand`, so its error is logged. The command itself is not run.
    pub fn drop_rogue(&mut self, repl: &Replication, id: u64, cmd: &str, keyspace: bool, now_ms: u64) {
        if keyspace {
            tracing::warn!(
                "== CRITICAL == This master is sending an error to its replica: 'Replica can't interact with the keyspace' after processing the command '{}'",
                cmd
            );
        }
        let line = repl.with_status(|s| {
            s.replicas.iter().find(|r| r.id == id).map(|r| crate::cmd::connection::replica_line(r, now_ms, cmd))
        });
        if let Some(line) = line {
            tracing::warn!("Replica generated a reply to command '{}', disconnecting it: {}", cmd, line);
        }
        self.remove(repl, id, now_ms);
    }

    /// The replica's connection went away (or must): forgets it.
    pub fn remove(&mut self, repl: &Replication, id: u64, now_ms: u64) {
        let Some(pos) = self.replicas.iter().position(|r| r.id == id) else {
            // Dropped earlier (output limit, id change): make sure the status no longer lists
            // it before its fd closes.
            self.publish(repl);
            return;
        };
        let r = self.replicas.remove(pos);
        close_replica(&r);
        tracing::info!("Connection with replica {} lost.", r.name());
        if self.replicas.is_empty() {
            self.no_replicas_since = now_ms;
        }
        // What only it needed goes (Redis's `freeReplicaReferencedReplBuffer`).
        self.trim();
        self.publish(repl);
    }

    fn check_output_limits(&mut self, now_ms: u64) {
        let (hard, soft, secs) = self.settings.obuf;
        // A hard limit under `repl-backlog-size` is taken as the backlog's size, as Redis 7.0
        // does: a replica sent a backlog that size at PSYNC would otherwise be dropped right
        // after its partial resync.
        let hard = if hard > 0 { hard.max(self.settings.backlog_size as u64) } else { 0 };
        let mut over = Vec::new();
        let buf = self.backlog.as_ref().map(|b| b.borrow());
        for r in &mut self.replicas {
            let used = r.output_bytes(buf.as_deref());
            let soft_over = soft > 0 && used > soft;
            if !soft_over {
                r.soft_since_ms = None;
            }
            let soft_hit = match (soft_over, r.soft_since_ms) {
                (true, None) => {
                    r.soft_since_ms = Some(now_ms);
                    secs == 0
                }
                (true, Some(since)) => now_ms.saturating_sub(since) > secs * 1000,
                _ => false,
            };
            if (hard > 0 && used >= hard) || soft_hit {
                tracing::warn!(
                    "Client id={} addr={} laddr={} fd={} name={} flags=S scheduled to be closed ASAP for overcoming of output buffer limits.",
                    r.id,
                    r.addr,
                    r.laddr,
                    r.fd,
                    r.name
                );
                over.push(r.id);
            }
        }
        drop(buf);
        for id in over {
            if let Some(pos) = self.replicas.iter().position(|r| r.id == id) {
                let r = self.replicas.remove(pos);
                close_replica(&r);
            }
        }
        self.note_replica_output();
    }

    /// Tells the memory ceiling what the replicas' output holds (see
    /// [`Master::replica_output`]).
    fn note_replica_output(&self) {
        crate::memory::set_replica_output(self.replica_output());
    }

    /// What the replicas' output holds (left out of the memory ceiling's count), as Redis's
    /// `freeMemoryGetNotCountedMemory`: the shared buffer beyond the backlog's size (and the
    /// blocks' entries for that size), and the largest output queued besides the stream.
    fn replica_output(&self) -> u64 {
        let direct = self.replicas.iter().map(|r| r.out.pending.get()).max().unwrap_or(0);
        let beyond = self.backlog.as_ref().map_or(0, |b| {
            let (size, mem) = (b.borrow().size() as u64, b.borrow().mem());
            let counted = size + (size / (16 * 1024) + 1) * super::backlog::BLOCK_OVERHEAD_BYTES;
            mem.saturating_sub(counted)
        });
        beyond + direct
    }

    /// Takes the settings as the configuration has them now (a new `repl-backlog-size`
    /// resizes the backlog at once, as Redis's CONFIG SET does).
    pub fn set_settings(&mut self, settings: Settings) {
        if let Some(b) = &self.backlog {
            b.borrow_mut().resize(settings.backlog_size);
        }
        self.settings = settings;
    }

    /// Once per 100 ms: the diskless delay, WAIT timeouts and GETACKs; once per second:
    /// `ping`, newlines to replicas waiting for their snapshot, `repl-timeout`, the backlog's
    /// time to live, the good-replicas count (`replicationCron`).
    pub fn tick(&mut self, repl: &Replication, settings: Settings, now_ms: u64, second: bool) {
        self.set_settings(settings);
        self.start_pending_snapshot(repl, now_ms);
        self.serve_waiters(now_ms);
        if !second {
            self.commit(repl);
            // What the replicas' writers have taken since is trimmed (Redis trims before every
            // sleep of its event loop).
            self.trim();
            self.publish_backlog(repl);
            return;
        }
        // Round 0 never pings: Redis's runs as the server starts, before any replica can
        // attach, and here it runs 100 ms after the start, when a replica may be attached
        // already (it got a `ping` ahead of the first write's SELECT, whatever the period).
        let ping_due = self.cron_loops > 0 && self.cron_loops % self.settings.ping_period == 0;
        if ping_due && !self.replicas.is_empty() && !self.following {
            // No ping while a failover pauses writes: it would move the offset the replica
            // is to reach (Redis's `manual_failover_in_progress` in `replicationCron`).
            if !crate::pause::purpose_on(crate::pause::Purpose::Failover, now_ms) {
                self.enc.put_ping(&mut self.pending);
            }
        }
        self.cron_loops += 1;
        for r in &self.replicas {
            let presync = match r.state {
                State::WaitStart => true,
                // Newlines only before the file's bytes start (they would corrupt it after).
                State::WaitEnd(id) => self.snapshots.iter().any(|s| s.id == id && !s.eof && !s.sending),
                State::Online => false,
            };
            if presync {
                r.out.send(Bytes::from_static(b"\n"));
            }
        }
        let timeout_ms = self.settings.timeout * 1000;
        let timed_out: Vec<u64> = self
            .replicas
            .iter()
            .filter(|r| r.state == State::Online && !r.pre_psync && now_ms.saturating_sub(r.ack_time_ms) > timeout_ms)
            .map(|r| r.id)
            .collect();
        for id in timed_out {
            if let Some(r) = self.replicas.iter().find(|r| r.id == id) {
                tracing::warn!("Disconnecting timedout replica (streaming sync): {}", r.name());
            }
            self.remove(repl, id, now_ms);
        }
        // A replica that stops reading a diskless transfer holds it back for every replica
        // of the snapshot (the relay waits for the slowest): after `repl-timeout` without
        // progress it is dropped. A disk transfer does not wait for it: Redis only drops
        // diskless ones too.
        for id in self.stalled_full_syncs(now_ms, timeout_ms) {
            if let Some(r) = self.replicas.iter().find(|r| r.id == id) {
                tracing::warn!("Disconnecting timedout replica (full sync): {}", r.name());
            }
            self.remove(repl, id, now_ms);
        }
        if self.replicas.is_empty() && self.backlog.is_some() && !self.following && self.settings.backlog_ttl > 0 {
            let idle = now_ms.saturating_sub(self.no_replicas_since) / 1000;
            if idle > self.settings.backlog_ttl {
                self.new_history(repl);
                crate::memory::change_replica_output(|| {
                    self.backlog = None;
                    self.replica_output()
                });
                repl.feed.set_active(false);
                tracing::info!(
                    "Replication backlog freed after {} seconds without connected replicas.",
                    self.settings.backlog_ttl
                );
            }
        }
        self.commit(repl);
        self.trim();
        self.publish(repl);
    }

    /// `refreshGoodSlavesCount`: replicas with lag <= `min-replicas-max-lag`, and whether
    /// writes are refused for want of them (on every replica change and every second).
    fn refresh_good(&self, now_ms: u64) {
        let good = self
            .replicas
            .iter()
            .filter(|r| {
                r.state == State::Online && now_ms.saturating_sub(r.ack_time_ms) / 1000 <= self.settings.min_lag
            })
            .count() as u64;
        GOOD_REPLICAS.store(good, Ordering::Relaxed);
        let refuse = !self.following
            && self.settings.min_replicas > 0
            && self.settings.min_lag > 0
            && good < self.settings.min_replicas;
        NO_GOOD_REPLICAS.store(refuse, Ordering::Relaxed);
    }

    /// Publishes replicas and backlog for INFO, ROLE, CLIENT LIST/KILL and the bus.
    pub fn publish(&self, repl: &Replication) {
        repl.set_raw_wanted(!self.replicas.is_empty());
        self.note_replica_output();
        self.refresh_good(crate::storage::now_ms());
        let buf = self.backlog.as_ref().map(|b| b.borrow());
        let replicas: Vec<ReplicaStatus> = self
            .replicas
            .iter()
            .map(|r| ReplicaStatus {
                id: r.id,
                ip: r.ip(),
                port: r.facts.listening_port,
                state: match r.state {
                    State::Online => "online",
                    _ => "wait_bgsave",
                },
                ack_offset: r.ack_offset,
                ack_time_ms: r.ack_time_ms,
                addr: r.addr.clone(),
                laddr: r.laddr.clone(),
                fd: r.fd,
                name: r.name.clone(),
                db: r.db,
                created_ms: r.created_ms,
                output_bytes: r.output_bytes(buf.as_deref()),
            })
            .collect();
        let direct = self.replicas.iter().map(|r| r.out.pending.get()).sum();
        repl.with_status(|s| {
            s.replicas = replicas;
            s.replica_direct_bytes = direct;
            match &buf {
                Some(b) => {
                    s.backlog_active = true;
                    s.backlog_size = b.size() as u64;
                    s.backlog_first_byte_offset = b.first_byte_offset();
                    s.backlog_histlen = b.histlen() as u64;
                    s.repl_buffer_mem = b.mem();
                }
                None => {
                    s.backlog_active = false;
                    s.backlog_size = self.settings.backlog_size as u64;
                    s.backlog_first_byte_offset = 0;
                    s.backlog_histlen = 0;
                    s.repl_buffer_mem = 0;
                }
            }
        });
    }
}

mod acks;
mod full_sync;
pub mod replica_backlog;
pub mod restart;
mod sync_request;
#[cfg(test)]
#[path = "master_tests.rs"]
mod tests;
