//! Spreading client connections evenly over the shards.
//!
//! Every shard accepts on the same listening sockets, and whichever shard's poller sees a new
//! connection first takes it: left alone, one shard could serve most clients (60 connections
//! opened one after another on a two-shard node landed 50 and 11), and a node would do one
//! core's work with several. So a shard that accepts a connection keeps it only when no other
//! shard serves fewer clients; otherwise it hands the socket over the mesh to the shard with
//! the fewest (`Msg::Adopt`), which registers it with its own poller and serves it for its
//! whole life. The counts are of live client connections per shard, kept in atomics every
//! shard reads; two shards accepting at the same instant may both pick the same target, which
//! costs at most one connection of imbalance.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static LIVE: OnceLock<Box<[AtomicUsize]>> = OnceLock::new();

/// Sets the number of shards (once, before any shard accepts).
pub fn init(nshards: usize) {
    let _ = LIVE.set((0..nshards.max(1)).map(|_| AtomicUsize::new(0)).collect());
}

fn live() -> &'static [AtomicUsize] {
    LIVE.get().map_or(&[], |v| &v[..])
}

/// Picks the shard that serves a connection `home` accepted: `home` unless another shard
/// serves fewer clients (then the first of those with the fewest). Counts it there; the
/// connection's [`Assigned`] guard uncounts it when it ends.
pub fn assign(home: usize) -> usize {
    let live = live();
    let Some(mine) = live.get(home).map(|c| c.load(Ordering::Acquire)) else { return home };
    let mut target = home;
    let mut fewest = mine;
    for (i, c) in live.iter().enumerate() {
        let n = c.load(Ordering::Acquire);
        if n < fewest {
            fewest = n;
            target = i;
        }
    }
    live[target].fetch_add(1, Ordering::AcqRel);
    target
}

/// Live client connections of each shard.
pub fn counts() -> Vec<usize> {
    live().iter().map(|c| c.load(Ordering::Acquire)).collect()
}

/// One connection counted on a shard by [`assign`]; uncounts it when dropped.
pub struct Assigned(usize);

impl Assigned {
    /// The guard of a connection [`assign`] counted on `shard`.
    pub fn on(shard: usize) -> Assigned {
        Assigned(shard)
    }
}

impl Drop for Assigned {
    fn drop(&mut self) {
        if let Some(c) = live().get(self.0) {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_shard_with_the_fewest() {
        init(3);
        // Shard 0 accepts everything; the connections spread 0, 1, 2, 0, 1, 2.
        let mut guards = Vec::new();
        let picked: Vec<usize> = (0..6)
            .map(|_| {
                let t = assign(0);
                guards.push(Assigned::on(t));
                t
            })
            .collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(counts(), vec![2, 2, 2]);
        // Ties keep the connection where it was accepted.
        let t = assign(2);
        assert_eq!(t, 2);
        guards.push(Assigned::on(t));
        // Closing shard 1's connections makes it the target again.
        guards.retain(|g| g.0 != 1);
        assert_eq!(counts(), vec![2, 0, 3]);
        assert_eq!(assign(2), 1);
        guards.push(Assigned::on(1));
        drop(guards);
        assert_eq!(counts(), vec![0, 0, 0]);
    }
}
