//! How the master answers a replica's SYNC or PSYNC ([`Master`]'s methods for Redis's
//! `syncCommand` and `masterTryPartialResynchronization`): the replica's socket tasks start,
//! and it continues from the shared buffer (`+CONTINUE`) when its history and offset are
//! there, or else waits for a snapshot (joining one under way when it can).

use super::*;

impl Master {
    /// A replica's SYNC or PSYNC (handed over by its home shard): continued from the
    /// buffer when it can be, else added to a full synchronization.
    pub(super) fn attach(&mut self, repl: &Replication, a: Attach, now_ms: u64) {
        let (out, rx) = Outbox::new();
        let mut r = Replica {
            id: a.id,
            fd: a.fd,
            addr: a.addr,
            laddr: a.laddr,
            name: a.name,
            db: a.db,
            created_ms: a.created_ms,
            facts: a.facts,
            pre_psync: a.psync.is_none(),
            state: State::WaitStart,
            asked_ms: now_ms,
            ack_offset: 0,
            ack_time_ms: now_ms,
            start_on_ack: false,
            initial_offset: 0,
            out,
            soft_since_ms: None,
            stalled: None,
        };
        self.actions.push(Action::Start {
            id: r.id,
            fd: r.fd,
            rx,
            pending: r.out.pending.clone(),
            leftover: a.leftover,
        });
        tracing::info!("Replica {} asks for synchronization", r.name());
        if let Some((replid, off)) = &a.psync {
            if self.try_partial(repl, &mut r, replid, *off, now_ms) {
                SYNC_PARTIAL_OK.fetch_add(1, Ordering::Relaxed);
                self.replicas.push(r);
                self.publish(repl);
                return;
            }
            if !replid.starts_with('?') {
                SYNC_PARTIAL_ERR.fetch_add(1, Ordering::Relaxed);
            }
        }
        SYNC_FULL.fetch_add(1, Ordering::Relaxed);
        if self.replicas.is_empty() && self.backlog.is_none() {
            // A new history: new id, no second id, a backlog from here.
            self.new_history(repl);
            self.restart_backlog(self.offset);
            repl.feed.set_active(true);
            tracing::info!(
                "Replication backlog created, my new replication IDs are '{}' and '{}'",
                self.replid,
                "0".repeat(40)
            );
        }
        // A disk-target snapshot already started: join it when another replica of the same
        // needs is waiting for it and the mark has not passed yet, or start at the mark as
        // that replica does when it has (Redis's "attach to the running BGSAVE"; the buffer
        // holds the stream from the mark on for that replica).
        let joinable = self
            .snapshots
            .iter()
            .find(|s| !s.eof && !s.sending && s.exclude_data == r.facts.exclude_data)
            .map(|s| s.id);
        if let Some(id) = joinable {
            if self.replicas.iter().any(|o| o.state == State::WaitEnd(id) && !o.facts.rdb_only) {
                r.state = State::WaitEnd(id);
                let mark = self.snapshots.iter().find(|s| s.id == id).and_then(|s| s.mark);
                if let Some(off) = mark {
                    r.hold_from(off + 1);
                    r.initial_offset = off;
                    if !r.pre_psync {
                        r.out.send(Bytes::from(format!("+FULLRESYNC {} {}\r\n", self.replid, off)));
                    }
                }
                tracing::info!("Waiting for end of BGSAVE for SYNC");
                self.replicas.push(r);
                self.publish(repl);
                return;
            }
        }
        let delayed = self.settings.diskless && r.facts.capa_eof && self.settings.diskless_delay > 0;
        if delayed {
            tracing::info!("Delay next BGSAVE for diskless SYNC");
        }
        self.replicas.push(r);
        self.publish(repl);
        if !delayed {
            self.start_pending_snapshot(repl, now_ms);
        }
    }

    /// `masterTryPartialResynchronization`.
    pub(super) fn try_partial(
        &mut self,
        repl: &Replication,
        r: &mut Replica,
        replid: &str,
        off: i64,
        now_ms: u64,
    ) -> bool {
        let (id2, off2) = repl.with_status(|s| (s.replid2.clone(), s.second_offset));
        let id_ok = replid.eq_ignore_ascii_case(&self.replid) || (replid.eq_ignore_ascii_case(&id2) && off <= off2);
        if !id_ok {
            if replid.starts_with('?') {
                tracing::info!("Full resync requested by replica {}", r.name());
            } else if !replid.eq_ignore_ascii_case(&self.replid) && !replid.eq_ignore_ascii_case(&id2) {
                tracing::info!(
                    "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are '{}' and '{}')",
                    replid,
                    self.replid,
                    id2
                );
            } else {
                tracing::info!(
                    "Partial resynchronization not accepted: Requested offset for second ID was {}, but I can reply up to {}",
                    off,
                    off2
                );
            }
            return false;
        }
        let backlog = self.backlog.as_ref().filter(|b| off >= 0 && b.borrow().covers(off as u64));
        let Some(backlog) = backlog else {
            tracing::info!(
                "Unable to partial resync with replica {} for lack of backlog (Replica request was: {}).",
                r.name(),
                off
            );
            if off > self.offset as i64 {
                tracing::warn!(
                    "Warning: replica {} tried to PSYNC with an offset that is greater than the master replication offset.",
                    r.name()
                );
            }
            return false;
        };
        r.state = State::Online;
        r.ack_time_ms = now_ms;
        let line = if r.facts.capa_psync2 { format!("+CONTINUE {}\r\n", self.replid) } else { "+CONTINUE\r\n".into() };
        r.out.send(Bytes::from(line));
        let off = off as u64;
        tracing::info!(
            "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
            r.name(),
            backlog.borrow().end() + 1 - off,
            off
        );
        // Its writer reads the backlog from there on, then the stream as it comes.
        r.out.pin(off);
        r.out.start_stream(backlog);
        true
    }
}
