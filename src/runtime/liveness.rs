//! Shard liveness, watched from the control core for the cluster bus.
//!
//! The bus runs on the control core, so a shard busy with a long command does not make the
//! node look dead (a difference from Redis, whose bus shares the one thread). The opposite
//! risk is a node whose shards are stuck while its control core keeps answering PINGs: the
//! cluster would never fail it over. So once a second the control core sends every shard a
//! no-op over the mesh (`Msg::Look`, served like any other shard work, after a transaction
//! holding the shard lets go); a shard that has not answered its probe for node-timeout makes
//! [`Liveness::stuck`] report it, and the bus then stops answering and sending bus messages
//! until the shard answers again, so the other nodes flag this node PFAIL, then FAIL, and its
//! replica takes over. At most one probe per shard is in flight.

use super::mesh::Msg;
use super::mesh_links::Senders;
use crate::cmd::ShardState;
use crate::protocol::Reply;
use bytes::Bytes;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Probe period (ms).
const PROBE_MS: u64 = 1000;

/// A probe's send time while its message is still waiting for the control core to send it:
/// never counted as late.
const NOT_SENT: u64 = u64::MAX;

/// One shard's probe in flight.
#[derive(Default)]
struct Probe {
    /// When its message was sent (ms), or [`NOT_SENT`].
    sent: Cell<u64>,
    /// Its answer; `None` when no probe is in flight.
    answer: RefCell<Option<oneshot::Receiver<Reply>>>,
}

/// Outstanding probes per shard.
pub struct Liveness {
    probes: Vec<Probe>,
    /// The shard reported by the last [`Liveness::stuck`] call, for logging transitions.
    reported: Cell<Option<usize>>,
}

fn probe(_shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Ok
}

impl Liveness {
    /// No probe in flight yet.
    pub fn new(nshards: usize) -> Liveness {
        Liveness { probes: (0..nshards).map(|_| Probe::default()).collect(), reported: Cell::new(None) }
    }

    /// The send time of shard `s`'s probe while it waits for its answer. The answer is looked
    /// at here, not left to a task to notice: after the control core itself was held off its
    /// CPU for a while, a shard that answered meanwhile is not reported late before that task
    /// gets to run (the bus would drop the messages of that turn).
    fn in_flight(&self, s: usize) -> Option<u64> {
        let p = &self.probes[s];
        let mut answer = p.answer.borrow_mut();
        match answer.as_mut()?.try_recv() {
            Ok(None) => Some(p.sent.get()),
            // Answered, or the shard is gone (its end of the channel dropped).
            _ => {
                *answer = None;
                None
            }
        }
    }

    /// A shard whose probe has waited more than `timeout_ms`, if any (logs when this changes).
    pub fn stuck(&self, now: u64, timeout_ms: u64) -> Option<usize> {
        let late = |s: &usize| self.in_flight(*s).is_some_and(|t| t != NOT_SENT && now.saturating_sub(t) > timeout_ms);
        let stuck = (0..self.probes.len()).find(late);
        if stuck != self.reported.get() {
            match stuck {
                Some(s) => tracing::warn!(
                    "Shard {} did not answer for more than {} ms: not answering the cluster bus until it does.",
                    s,
                    timeout_ms
                ),
                None => tracing::warn!("Every shard answers again: cluster bus resumed."),
            }
            self.reported.set(stuck);
        }
        stuck
    }

    /// Probes every shard once a second, forever.
    pub async fn run(self: Rc<Self>, mesh: Rc<Senders>) {
        loop {
            glommio::timer::sleep(Duration::from_millis(PROBE_MS)).await;
            for s in 0..self.probes.len() {
                if self.in_flight(s).is_some() {
                    continue;
                }
                let (reply, answer) = oneshot::channel();
                *self.probes[s].answer.borrow_mut() = Some(answer);
                self.probes[s].sent.set(NOT_SENT);
                let (me, mesh) = (self.clone(), mesh.clone());
                glommio::spawn_local(async move {
                    // The clock starts when the message goes, so time the control core spent
                    // off its CPU before this task ran is not counted against the shard. A
                    // send that waits for room in a full channel does count.
                    me.probes[s].sent.set(crate::storage::now_ms().max(1));
                    // A failed send drops the message and with it the answer's sender.
                    let _ = mesh.send_to(s, Msg::Look { run: probe, args: Vec::new(), reply }).await;
                })
                .detach();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_probe_is_reported_until_answered() {
        let l = Liveness::new(2);
        assert_eq!(l.stuck(10_000, 2000), None);
        let (reply, answer) = oneshot::channel();
        *l.probes[1].answer.borrow_mut() = Some(answer);
        l.probes[1].sent.set(NOT_SENT);
        // Not sent yet (the control core has not run the sending task): never late.
        assert_eq!(l.stuck(1_000_000, 2000), None);
        l.probes[1].sent.set(5_000);
        assert_eq!(l.stuck(6_000, 2000), None);
        assert_eq!(l.stuck(7_001, 2000), Some(1));
        reply.send(Reply::Ok).unwrap();
        assert_eq!(l.stuck(7_002, 2000), None);
        assert!(l.probes[1].answer.borrow().is_none());
    }

    #[test]
    fn an_answer_that_came_while_the_control_core_was_away_counts_at_once() {
        let l = Liveness::new(1);
        let (reply, answer) = oneshot::channel();
        *l.probes[0].answer.borrow_mut() = Some(answer);
        l.probes[0].sent.set(5_000);
        // The shard answered at once; the control core looks 10 s later.
        reply.send(Reply::Ok).unwrap();
        assert_eq!(l.stuck(15_000, 2000), None);
        // A shard gone (its end dropped) is not reported either.
        let (reply, answer) = oneshot::channel::<Reply>();
        *l.probes[0].answer.borrow_mut() = Some(answer);
        l.probes[0].sent.set(5_000);
        drop(reply);
        assert_eq!(l.stuck(15_000, 2000), None);
    }
}
