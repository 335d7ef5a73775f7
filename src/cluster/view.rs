//! What shards route by: an immutable snapshot of the slot map, published after every cluster
//! change, and the node's slot -> shard table.
//!
//! Shards never lock the cluster state: each holds an `Arc<ClusterView>` and swaps it when the
//! generation counter moves. The slot -> shard table is *sticky*: a slot keeps its shard for as
//! long as this node wants it (serves it, imports it, or replicates it), so keys never move
//! between shards; newly wanted slots go, in ascending runs, to the shards with the fewest
//! slots, which keeps the spread even (design.md §2). A slot that stops being served here stays
//! wanted, its keys kept (unreachable, as in Redis), until this node loses it to a newer
//! claim while serving it (Redis's dirty slots): only then do the shards delete its keys. A
//! slot given away stays wanted after its keys moved, so it still counts on its shard.

use super::slot::SLOTS;
use super::state::{ClusterState, Name};
use std::sync::Arc;

/// Who serves a slot, as the routing check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRoute {
    /// Nobody (`-CLUSTERDOWN Hash slot not served`).
    Unassigned,
    /// This node; `migrating` = index in `addrs` of the node it is migrating to.
    Mine {
        /// Migration target, if the slot is migrating.
        migrating: Option<u16>,
    },
    /// Another node, at `addrs[addr]`.
    Other {
        /// Index in `addrs`.
        addr: u16,
        /// This node is importing the slot.
        importing: bool,
        /// The owner is my master (READONLY reads are served here).
        my_master: bool,
    },
}

/// The routing snapshot.
#[derive(Debug)]
pub struct ClusterView {
    /// cluster-enabled.
    pub enabled: bool,
    /// `cluster_state:ok`.
    pub ok: bool,
    /// cluster-allow-reads-when-down.
    pub allow_reads_when_down: bool,
    /// This node is a replica.
    pub replica: bool,
    /// Per slot.
    pub route: Vec<SlotRoute>,
    /// slot -> shard.
    pub shard: Vec<u16>,
    /// Slots whose keys this node keeps; keys in other slots are deleted.
    pub keep: Vec<bool>,
    /// `ip:port` of the nodes `route` refers to.
    pub addrs: Vec<Arc<str>>,
    /// Generation this snapshot was built at.
    pub generation: u64,
}

impl ClusterView {
    /// Standalone mode: every slot is served here, spread evenly over the shards.
    pub fn standalone(nshards: usize) -> ClusterView {
        ClusterView {
            enabled: false,
            ok: true,
            allow_reads_when_down: false,
            replica: false,
            route: vec![SlotRoute::Mine { migrating: None }; SLOTS],
            shard: (0..SLOTS).map(|s| (s * nshards / SLOTS) as u16).collect(),
            keep: vec![true; SLOTS],
            addrs: Vec::new(),
            generation: 0,
        }
    }

    /// [`ClusterView::standalone`], one for the whole node: its tables are 16384 entries each
    /// (about 150 KB), and every shard holds a view, so a copy per shard cost a four-shard node
    /// 600 KB of `used_memory` where one node-wide table does.
    pub fn standalone_shared(nshards: usize) -> Arc<ClusterView> {
        static MADE: std::sync::Mutex<Vec<(usize, Arc<ClusterView>)>> = std::sync::Mutex::new(Vec::new());
        let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = made.iter().find(|(n, _)| *n == nshards) {
            return v.clone();
        }
        let v = Arc::new(ClusterView::standalone(nshards));
        made.push((nshards, v.clone()));
        v
    }

    /// The shard owning a slot.
    pub fn shard_of(&self, slot: u16) -> usize {
        self.shard[slot as usize] as usize
    }
}

/// The node's slot -> shard assignment (kept with the cluster state, changed only by
/// [`ShardAssign::update`]).
#[derive(Debug, Clone)]
pub struct ShardAssign {
    nshards: usize,
    /// slot -> shard.
    pub shard: Vec<u16>,
    /// Slots currently wanted (and so assigned for real).
    pub wanted: Vec<bool>,
}

impl ShardAssign {
    /// Nothing wanted yet; unwanted slots point at their standalone shard.
    pub fn new(nshards: usize) -> ShardAssign {
        ShardAssign {
            nshards: nshards.max(1),
            shard: (0..SLOTS).map(|s| (s * nshards.max(1) / SLOTS) as u16).collect(),
            wanted: vec![false; SLOTS],
        }
    }

    /// Applies a new wanted set: slots no longer wanted are released, newly wanted ones go to
    /// the least loaded shards in ascending runs; slots wanted before and now stay put.
    pub fn update(&mut self, wanted: &[bool]) {
        let mut count = vec![0usize; self.nshards];
        let mut fresh = Vec::new();
        for s in 0..SLOTS {
            match (self.wanted[s], wanted[s]) {
                (true, true) => count[self.shard[s] as usize] += 1,
                (false, true) => fresh.push(s),
                _ => {}
            }
        }
        let total = count.iter().sum::<usize>() + fresh.len();
        let target = total.div_ceil(self.nshards);
        let mut shard = 0;
        for s in fresh {
            // The first shard (in index order) still under its target takes the slot.
            while count[shard] >= target && shard + 1 < self.nshards {
                shard += 1;
            }
            if count[shard] >= target {
                shard = (0..self.nshards).min_by_key(|&i| count[i]).unwrap_or(0);
            }
            self.shard[s] = shard as u16;
            count[shard] += 1;
        }
        self.wanted.copy_from_slice(wanted);
    }

    /// Slots per shard (INFO's Shards section).
    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.nshards];
        for s in 0..SLOTS {
            if self.wanted[s] {
                c[self.shard[s] as usize] += 1;
            }
        }
        c
    }
}

/// Builds the view of `st`, updating the shard assignment first.
pub fn build(st: &ClusterState, assign: &mut ShardAssign) -> ClusterView {
    let me = st.myself;
    let master: Option<Name> = st.my_master();
    let mut wanted = vec![false; SLOTS];
    let mut addrs: Vec<Arc<str>> = Vec::new();
    let mut addr_of: hashbrown::HashMap<Name, u16> = hashbrown::HashMap::new();
    let mut route = Vec::with_capacity(SLOTS);
    for (s, w) in wanted.iter_mut().enumerate() {
        let mut index = |n: Name| -> u16 {
            *addr_of.entry(n).or_insert_with(|| {
                let a = st.nodes.get(&n).map(|x| x.endpoint_addr(st.settings.endpoint)).unwrap_or_default();
                addrs.push(Arc::from(a.as_str()));
                (addrs.len() - 1) as u16
            })
        };
        let r = match st.slots[s] {
            None => SlotRoute::Unassigned,
            Some(o) if o == me => {
                let migrating = st.migrating.get(&(s as u16)).map(|&t| index(t));
                SlotRoute::Mine { migrating }
            }
            Some(o) => SlotRoute::Other {
                addr: index(o),
                importing: st.importing.contains_key(&(s as u16)),
                my_master: master == Some(o),
            },
        };
        // A replica keeps whatever keys its master's stream or sync gave it, in every slot, as
        // Redis's replicas never delete keys by slot ownership: a replica whose view of the
        // slot map was behind its master's (restarted with an old nodes.conf, or a slot just
        // resharded to its master) would otherwise drop the keys of those slots after its
        // sync. Every slot is wanted, so none changes shard later either.
        *w = master.is_some()
            || match r {
                SlotRoute::Mine { .. } => true,
                // A slot served elsewhere keeps the keys it still has here (Redis deletes them
                // only when it loses a slot it was serving to a newer claim, `st.lost`).
                SlotRoute::Other { importing, my_master, .. } => {
                    importing || my_master || (assign.wanted[s] && !st.lost[s])
                }
                // An unassigned slot keeps its keys (as Redis keeps them after DELSLOTS, e.g.
                // `redis-cli --cluster fix`'s DELSLOTS + ADDSLOTS) and its shard, until another
                // node serves it.
                SlotRoute::Unassigned => st.importing.contains_key(&(s as u16)) || assign.wanted[s],
            };
        route.push(r);
    }
    assign.update(&wanted);
    ClusterView {
        enabled: true,
        ok: st.ok,
        allow_reads_when_down: st.settings.allow_reads_when_down,
        replica: master.is_some(),
        route,
        shard: assign.shard.clone(),
        keep: wanted,
        addrs,
        generation: st.generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(ranges: &[(usize, usize)]) -> Vec<bool> {
        let mut w = vec![false; SLOTS];
        for &(a, b) in ranges {
            w[a..=b].iter_mut().for_each(|x| *x = true);
        }
        w
    }

    #[test]
    fn spreads_evenly_and_is_sticky() {
        let mut a = ShardAssign::new(2);
        a.update(&want(&[(0, 5460)]));
        assert_eq!(a.counts(), vec![2731, 2730]);
        assert_eq!(a.shard[0], 0);
        assert_eq!(a.shard[5460], 1);
        let before = a.shard.clone();
        // Gaining more slots never moves the ones already placed.
        a.update(&want(&[(0, 5460), (10000, 10999)]));
        assert!((0..=5460).all(|s| a.shard[s] == before[s]));
        let c = a.counts();
        assert_eq!(c.iter().sum::<usize>(), 6461);
        assert!(c[0].abs_diff(c[1]) <= 1, "{c:?}");
        // Losing slots releases them.
        a.update(&want(&[(10000, 10999)]));
        assert_eq!(a.counts().iter().sum::<usize>(), 1000);
    }

    #[test]
    fn one_shard_takes_everything() {
        let mut a = ShardAssign::new(1);
        a.update(&want(&[(0, SLOTS - 1)]));
        assert_eq!(a.counts(), vec![SLOTS]);
    }
}
