//! The master's full synchronizations: a snapshot's marks in the merged stream, its file
//! streaming to the replicas waiting for it, and starting the next one
//! ([`Master`]'s methods for Redis's `replicationSetupSlaveForFullResync`,
//! `updateSlavesWaitingBgsave` and `replicationStartPendingFork`).

use super::*;

impl Master {
    pub(super) fn mark(&mut self, id: u64) {
        let Some(s) = self.snapshots.iter_mut().find(|s| s.id == id) else { return };
        // Every shard pushes its mark while all are held, so they sit together in the feed:
        // the first one is the snapshot's point.
        if s.mark.is_some() {
            return;
        }
        s.mark = Some(self.offset);
        // Everything after this point goes to the snapshot's replicas; SELECT is emitted again.
        self.enc.reset_db();
        let info = crate::persist::file::ReplInfo { stream_db: 0, replid: self.replid.clone(), offset: self.offset };
        if let Some(tx) = s.repl_info.take() {
            let _ = tx.send(info);
        }
        let line = Bytes::from(format!("+FULLRESYNC {} {}\r\n", self.replid, self.offset));
        for r in self.replicas.iter_mut().filter(|r| r.state == State::WaitEnd(id)) {
            // What came since the snapshot was asked for is in the snapshot: its stream
            // starts here, and the buffer keeps it from here for as long as it needs.
            r.hold_from(self.offset + 1);
            r.initial_offset = self.offset;
            if !r.pre_psync {
                r.out.send(line.clone());
            }
        }
    }

    pub(super) fn sending(&mut self, id: u64) -> Option<&mut Snapshot> {
        let s = self.snapshots.iter_mut().find(|s| s.id == id)?;
        s.sending = true;
        Some(s)
    }

    /// Disk target: the file of snapshot `id` is `len` bytes (its bytes follow).
    pub fn snapshot_len(&mut self, id: u64, len: u64) {
        if self.sending(id).is_none() {
            return;
        }
        let line = Bytes::from(format!("${len}\r\n"));
        for r in self.replicas.iter_mut().filter(|r| r.state == State::WaitEnd(id)) {
            r.out.send(line.clone());
        }
    }

    /// The next bytes of snapshot `id`'s file, for its replicas.
    pub fn snapshot_data(&mut self, id: u64, bytes: Bytes) {
        let Some(s) = self.snapshots.iter_mut().find(|s| s.id == id) else { return };
        let first = !s.sending;
        s.sending = true;
        let head = (first && s.eof).then(|| Bytes::from(format!("$EOF:{}\r\n", s.eof_mark)));
        for r in self.replicas.iter_mut().filter(|r| r.state == State::WaitEnd(id)) {
            if let Some(h) = &head {
                r.out.send(h.clone());
            }
            r.out.send(bytes.clone());
        }
    }

    /// Replicas of a diskless transfer whose writer has made no progress with bytes pending
    /// for longer than `timeout_ms` (updates each replica's progress mark).
    pub(super) fn stalled_full_syncs(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for r in &mut self.replicas {
            let State::WaitEnd(id) = r.state else {
                r.stalled = None;
                continue;
            };
            let streaming = self.snapshots.iter().any(|s| s.id == id && s.eof && s.sending);
            let written = r.out.written();
            match r.stalled {
                Some((w, since)) if streaming && w == written && r.out.pending.get() > 0 => {
                    if now_ms.saturating_sub(since) > timeout_ms {
                        out.push(r.id);
                    }
                }
                _ => r.stalled = streaming.then_some((written, now_ms)),
            }
        }
        out
    }

    /// The most bytes any replica of snapshot `id` has queued and not yet written; None when
    /// no replica waits for it any more (the snapshot can stop).
    pub fn snapshot_pending(&self, id: u64) -> Option<u64> {
        self.replicas.iter().filter(|r| r.state == State::WaitEnd(id)).map(|r| r.out.pending.get()).max()
    }

    /// Snapshot `id`'s file is complete (`Ok`) or cannot be (`Err`): its replicas go online
    /// (or are dropped), and the next pending snapshot may start.
    pub fn snapshot_end(&mut self, repl: &Replication, id: u64, result: Result<(), String>) {
        let Some(pos) = self.snapshots.iter().position(|s| s.id == id) else { return };
        let s = self.snapshots.remove(pos);
        let now = crate::storage::now_ms();
        if let Err(e) = result {
            if self.replicas.iter().any(|r| r.state == State::WaitEnd(id)) {
                tracing::warn!("SYNC failed. BGSAVE child returned an error: {}", e);
            }
            for r in self.replicas.iter().filter(|r| r.state == State::WaitEnd(id)) {
                close_replica(r);
            }
            self.replicas.retain(|r| r.state != State::WaitEnd(id));
            self.publish(repl);
            self.start_pending_snapshot(repl, now);
            return;
        }
        // The delimiter closes a diskless transfer (opened here too if no byte came at all).
        let tail = s.eof.then(|| {
            let head = if s.sending { String::new() } else { format!("$EOF:{}\r\n", s.eof_mark) };
            Bytes::from(head + &s.eof_mark)
        });
        for r in self.replicas.iter_mut().filter(|r| r.state == State::WaitEnd(id)) {
            if let Some(t) = &tail {
                r.out.send(t.clone());
            }
            if r.facts.rdb_only {
                tracing::info!("RDB transfer completed, rdb only replica ({}) should be disconnected asap", r.name());
                r.out.close();
                continue;
            }
            r.state = State::Online;
            r.ack_time_ms = now;
            if s.eof {
                tracing::info!(
                    "Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming",
                    r.name()
                );
                r.start_on_ack = true;
            } else if let Some(b) = &self.backlog {
                r.release_held(b);
            }
            tracing::info!("Synchronization with replica {} succeeded", r.name());
        }
        self.replicas.retain(|r| !(r.facts.rdb_only && r.state == State::WaitEnd(id)));
        self.publish(repl);
        self.start_pending_snapshot(repl, now);
    }

    /// Starts a snapshot for the replicas waiting for one, when none is running and the
    /// diskless delay (counted from the latest request) has passed (`replicationStartPendingFork`).
    pub(super) fn start_pending_snapshot(&mut self, repl: &Replication, now_ms: u64) {
        if !self.snapshots.is_empty() {
            return;
        }
        let waiting: Vec<usize> =
            (0..self.replicas.len()).filter(|&i| self.replicas[i].state == State::WaitStart).collect();
        let Some(&first) = waiting.first() else { return };
        let exclude = self.replicas[first].facts.exclude_data;
        let group: Vec<usize> =
            waiting.into_iter().filter(|&i| self.replicas[i].facts.exclude_data == exclude).collect();
        let max_idle_ms = group.iter().map(|&i| now_ms.saturating_sub(self.replicas[i].asked_ms)).max().unwrap_or(0);
        let all_eof = group.iter().all(|&i| self.replicas[i].facts.capa_eof);
        let s = &self.settings;
        let ready = !s.diskless
            || !all_eof
            || (s.diskless_max > 0 && group.len() >= s.diskless_max)
            || max_idle_ms >= s.diskless_delay * 1000;
        if !ready {
            return;
        }
        let eof = (s.diskless || exclude) && all_eof;
        // The shards push the snapshot's mark only into an active feed (on before the first
        // snapshot of a history).
        repl.feed.set_active(true);
        let id = crate::cmd::bgsave::new_id();
        tracing::info!("Starting BGSAVE for SYNC with target: {}", if eof { "replicas sockets" } else { "disk" });
        for &i in &group {
            self.replicas[i].state = State::WaitEnd(id);
        }
        let (tx, rx) = oneshot::channel();
        let eof_mark: String = (0..40).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0')).collect();
        self.snapshots.push(Snapshot {
            id,
            eof,
            exclude_data: exclude,
            mark: None,
            repl_info: Some(tx),
            sending: false,
            eof_mark,
        });
        self.actions.push(Action::Snapshot { id, exclude_data: exclude, disk: !eof, repl_info: rx });
        self.publish(repl);
    }
}
