//! Shard liveness, watched from the control core for the cluster bus.
//!
//! The bus runs on the control core, so a shard busy with a long command does not make the
//! node look dead (a difference from Redis, whose bus shares the one thread). The opposite
//! risk is a node whose shards are stuck while its control core keeps answering PINGs: the
//! cluster would never fail it over. So once a second the control core sends every shard a
//! no-op over the mesh (`Msg::Run`, served like any other shard work, after a transaction
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
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Probe period (ms).
const PROBE_MS: u64 = 1000;

/// Outstanding probes per shard.
pub struct Liveness {
    /// Per shard: when the probe still waiting for an answer was sent (ms), 0 = none.
    sent: Vec<Cell<u64>>,
    /// The shard reported by the last [`Liveness::stuck`] call, for logging transitions.
    reported: Cell<Option<usize>>,
}

fn probe(_shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Ok
}

impl Liveness {
    /// No probe in flight yet.
    pub fn new(nshards: usize) -> Liveness {
        Liveness { sent: (0..nshards).map(|_| Cell::new(0)).collect(), reported: Cell::new(None) }
    }

    /// A shard whose probe has waited more than `timeout_ms`, if any (logs when this changes).
    pub fn stuck(&self, now: u64, timeout_ms: u64) -> Option<usize> {
        let stuck = self.sent.iter().position(|t| t.get() != 0 && now.saturating_sub(t.get()) > timeout_ms);
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
            for s in 0..self.sent.len() {
                if self.sent[s].get() != 0 {
                    continue;
                }
                self.sent[s].set(crate::storage::now_ms().max(1));
                let (me, mesh) = (self.clone(), mesh.clone());
                glommio::spawn_local(async move {
                    let (reply, answer) = oneshot::channel();
                    if mesh.send_to(s, Msg::Run { run: probe, db: 0, args: Vec::new(), reply }).await.is_ok() {
                        let _ = answer.await;
                    }
                    me.sent[s].set(0);
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
        l.sent[1].set(5_000);
        assert_eq!(l.stuck(6_000, 2000), None);
        assert_eq!(l.stuck(7_001, 2000), Some(1));
        l.sent[1].set(0);
        assert_eq!(l.stuck(7_002, 2000), None);
    }
}
