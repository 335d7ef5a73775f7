//! Replicas' acknowledgements (REPLCONF ACK) and the WAIT commands waiting for them
//! ([`Master`]'s methods for Redis's `replconfCommand` ACK and `waitCommand`).

use super::*;

/// A WAIT command waiting for `numreplicas` replicas to acknowledge offset `target`.
pub(super) struct Waiter {
    target: u64,
    numreplicas: i64,
    deadline_ms: Option<u64>,
    reply: oneshot::Sender<Reply>,
}

impl Master {
    /// REPLCONF ACK from replica `id`.
    pub fn ack(&mut self, repl: &Replication, id: u64, off: u64, now_ms: u64) {
        let Some(r) = self.replicas.iter_mut().find(|r| r.id == id) else { return };
        r.ack_offset = r.ack_offset.max(off);
        r.ack_time_ms = now_ms;
        if r.start_on_ack && r.state == State::Online {
            r.start_on_ack = false;
            if let Some(b) = &self.backlog {
                r.release_held(b);
            }
            self.publish(repl);
        }
        self.serve_waiters(now_ms);
    }

    /// WAIT: answered at once when enough replicas have acknowledged the offset now (or with
    /// what there is for a non-blocking one), else kept until they do or its timeout, with a
    /// GETACK due.
    pub(super) fn wait(&mut self, w: WaitRequest, now_ms: u64) {
        let target = self.offset;
        let count = self.count_acks(target);
        if count >= w.numreplicas || w.no_block {
            let _ = w.reply.send(Reply::Int(count));
            return;
        }
        let deadline_ms = (w.timeout_ms > 0).then(|| now_ms + w.timeout_ms);
        self.waiters.push(Waiter { target, numreplicas: w.numreplicas, deadline_ms, reply: w.reply });
        self.getack = true;
    }

    /// Online replicas that acknowledged `target` or more.
    fn count_acks(&self, target: u64) -> i64 {
        self.replicas.iter().filter(|r| r.state == State::Online && r.ack_offset >= target).count() as i64
    }

    /// Answers the WAITs now satisfied, timed out or abandoned.
    pub(super) fn serve_waiters(&mut self, now_ms: u64) {
        if self.waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            let n = self.count_acks(w.target);
            let timed_out = w.deadline_ms.is_some_and(|d| now_ms >= d);
            if n >= w.numreplicas || timed_out || w.reply.is_canceled() {
                let _ = w.reply.send(Reply::Int(n));
            } else {
                self.waiters.push(w);
            }
        }
    }
}
