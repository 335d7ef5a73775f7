//! The state changes behind the CLUSTER commands, as Redis's `cluster.c` makes them: slot
//! assignment checks, SETSLOT, REPLICATE, FORGET, RESET, SET-CONFIG-EPOCH and an explicit
//! nodes.conf save (SAVECONFIG).
//!
//! Every method takes the state already locked (inside [`super::Cluster::change`]) and leaves
//! the `todo` bits Redis sets; errors are the exact reply texts (with the `ERR ` prefix). Key
//! counts come from the shards before the lock is taken, so the caller passes them in.

use super::bus::NodeFlags as F;
use super::slot::SLOTS;
use super::state::{name_str, parse_name, random_name, todo, ClusterState, Name};

/// A SETSLOT action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetSlot<'a> {
    /// MIGRATING <node>
    Migrating(&'a [u8]),
    /// IMPORTING <node>
    Importing(&'a [u8]),
    /// STABLE
    Stable,
    /// NODE <node>
    Node(&'a [u8]),
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl ClusterState {
    /// `clusterLookupNode`: a known node by its 40-character name.
    pub fn lookup(&self, id: &[u8]) -> Option<Name> {
        parse_name(id).filter(|n| self.nodes.contains_key(n))
    }

    /// A known node or Redis's `Unknown node <id>`.
    pub fn lookup_or_err(&self, id: &[u8]) -> Result<Name, String> {
        self.lookup(id).ok_or_else(|| format!("ERR Unknown node {}", lossy(id)))
    }

    /// `checkSlotAssignmentsOrReply` for `start..=end`, marking the slots in `marked`.
    pub fn check_slot_range(&self, marked: &mut [u8], del: bool, start: usize, end: usize) -> Result<(), String> {
        for (s, m) in marked.iter_mut().enumerate().take(end + 1).skip(start) {
            if del && self.slots[s].is_none() {
                return Err(format!("ERR Slot {s} is already unassigned"));
            } else if !del && self.slots[s].is_some() {
                return Err(format!("ERR Slot {s} is already busy"));
            }
            *m += 1;
            if *m == 2 {
                return Err(format!("ERR Slot {s} specified multiple times"));
            }
        }
        Ok(())
    }

    /// `clusterUpdateSlots`: the marked slots become mine (or unassigned); an importing mark on
    /// them goes.
    pub fn update_slots(&mut self, marked: &[u8], del: bool) {
        let me = self.myself;
        for (s, _) in marked.iter().enumerate().filter(|(_, m)| **m != 0) {
            self.importing.remove(&(s as u16));
            if del {
                self.del_slot(s);
            } else {
                self.add_slot(s, me);
            }
        }
        self.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    }

    /// CLUSTER SETSLOT. `keys_in_slot` is the number of local keys in the slot; `replica_migration`
    /// is `cluster-allow-replica-migration`.
    pub fn set_slot(
        &mut self,
        slot: usize,
        action: SetSlot<'_>,
        keys_in_slot: usize,
        replica_migration: bool,
    ) -> Result<(), String> {
        let me = self.myself;
        if self.me().has(F::SLAVE) {
            return Err("ERR Please use SETSLOT only with masters.".into());
        }
        let unknown = |id: &[u8]| format!("ERR I don't know about node {}", lossy(id));
        let s16 = slot as u16;
        match action {
            SetSlot::Migrating(id) => {
                if self.slots[slot] != Some(me) {
                    return Err(format!("ERR I'm not the owner of hash slot {slot}"));
                }
                let n = self.lookup(id).ok_or_else(|| unknown(id))?;
                if self.nodes[&n].has(F::SLAVE) {
                    return Err("ERR Target node is not a master".into());
                }
                self.migrating.insert(s16, n);
            }
            SetSlot::Importing(id) => {
                if self.slots[slot] == Some(me) {
                    return Err(format!("ERR I'm already the owner of hash slot {slot}"));
                }
                let n = self.lookup(id).ok_or_else(|| unknown(id))?;
                if self.nodes[&n].has(F::SLAVE) {
                    return Err("ERR Target node is not a master".into());
                }
                self.importing.insert(s16, n);
            }
            SetSlot::Stable => {
                self.importing.remove(&s16);
                self.migrating.remove(&s16);
            }
            SetSlot::Node(id) => {
                let n = self.lookup_or_err(id)?;
                if self.nodes[&n].has(F::SLAVE) {
                    return Err("ERR Target node is not a master".into());
                }
                let was_mine = self.slots[slot] == Some(me);
                if was_mine && n != me && keys_in_slot != 0 {
                    return Err(format!(
                        "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                if keys_in_slot == 0 {
                    self.migrating.remove(&s16);
                }
                self.del_slot(slot);
                self.add_slot(slot, n);
                if was_mine && n != me && self.me().numslots == 0 && replica_migration {
                    tracing::warn!(
                        "Configuration change detected. Reconfiguring myself as a replica of {}",
                        name_str(&n)
                    );
                    self.set_my_master(n);
                    self.want(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
                }
                if n == me && self.importing.contains_key(&s16) {
                    if self.bump_epoch_without_consensus() {
                        tracing::warn!("configEpoch updated after importing slot {}", slot);
                    }
                    self.importing.remove(&s16);
                    self.want(todo::BROADCAST_PONG);
                }
            }
        }
        self.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
        Ok(())
    }

    /// CLUSTER REPLICATE. `db_keys` is the number of keys in database 0.
    pub fn replicate(&mut self, id: &[u8], db_keys: usize) -> Result<(), String> {
        let n = self.lookup_or_err(id)?;
        if n == self.myself {
            return Err("ERR Can't replicate myself".into());
        }
        if self.nodes[&n].has(F::SLAVE) {
            return Err("ERR I can only replicate a master, not a replica.".into());
        }
        if self.me().is_master() && (self.me().numslots != 0 || db_keys != 0) {
            return Err("ERR To set a master the node must be empty and without assigned slots.".into());
        }
        self.set_my_master(n);
        self.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    }

    /// CLUSTER FORGET: the node goes, and gossip may not re-add it for 60 s.
    pub fn forget(&mut self, id: &[u8], now_s: u64) -> Result<(), String> {
        let n = self.lookup_or_err(id)?;
        if n == self.myself {
            return Err("ERR I tried hard but I can't forget myself...".into());
        }
        if self.my_master() == Some(n) {
            return Err("ERR Can't forget my master!".into());
        }
        self.blacklist_add(n, now_s);
        self.del_node(n);
        self.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    }

    /// CLUSTER SET-CONFIG-EPOCH.
    pub fn set_config_epoch(&mut self, epoch: i64) -> Result<(), String> {
        if epoch < 0 {
            return Err(format!("ERR Invalid config epoch specified: {epoch}"));
        }
        if self.nodes.len() > 1 {
            return Err(
                "ERR The user can assign a config epoch only when the node does not know any other node.".into()
            );
        }
        if self.me().config_epoch != 0 {
            return Err("ERR Node config epoch is already non-zero".into());
        }
        let e = epoch as u64;
        self.me_mut().config_epoch = e;
        tracing::warn!("configEpoch set to {} via CLUSTER SET-CONFIG-EPOCH", e);
        self.current_epoch = self.current_epoch.max(e);
        self.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
        Ok(())
    }

    /// `clusterReset`: become a master with no slots that knows only itself; HARD also zeroes
    /// the epochs and takes a new name. (Emptying the data of a replica is the caller's job.)
    pub fn reset(&mut self, hard: bool) {
        let me = self.myself;
        {
            let n = self.me_mut();
            if !n.is_master() {
                n.flags = (n.flags & !F::SLAVE) | F::MASTER;
                n.slaveof = None;
            }
        }
        self.migrating.clear();
        self.importing.clear();
        for s in 0..SLOTS {
            self.del_slot(s);
        }
        let others: Vec<Name> = self.nodes.keys().filter(|n| **n != me).copied().collect();
        for n in others {
            self.del_node(n);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            tracing::warn!("configEpoch set to 0 via CLUSTER RESET HARD");
            let new = random_name();
            self.rename_node(me, new);
            self.myself = new;
            tracing::info!("Node hard reset, now I'm {}", name_str(&new));
        }
        self.want(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
    }
}

impl super::Cluster {
    /// CLUSTER SAVECONFIG: saves and fsyncs nodes.conf now, returning the error instead of
    /// exiting (Redis replies `error saving the cluster node config: ...`).
    pub fn save_config(&self) -> std::io::Result<()> {
        let mut g = self.lock();
        let conf = g.st.conf();
        g.conf.save(&conf, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::{ClusterSettings, Node};

    fn fresh() -> ClusterState {
        ClusterState::new(random_name(), ClusterSettings::default(), 1)
    }

    fn add_master(st: &mut ClusterState) -> Name {
        let n = random_name();
        st.add_node(Node::new(n, F::MASTER, 1));
        n
    }

    #[test]
    fn slot_checks_follow_redis() {
        let mut st = fresh();
        let mut m = vec![0u8; SLOTS];
        assert_eq!(st.check_slot_range(&mut m, true, 0, 0).unwrap_err(), "ERR Slot 0 is already unassigned");
        let mut m = vec![0u8; SLOTS];
        st.check_slot_range(&mut m, false, 1, 3).unwrap();
        assert_eq!(st.check_slot_range(&mut m, false, 3, 3).unwrap_err(), "ERR Slot 3 specified multiple times");
        st.update_slots(&m, false);
        assert_eq!(st.me().numslots, 3);
        let mut m = vec![0u8; SLOTS];
        assert_eq!(st.check_slot_range(&mut m, false, 2, 2).unwrap_err(), "ERR Slot 2 is already busy");
    }

    #[test]
    fn setslot_node_moves_a_slot_and_demotes_an_emptied_master() {
        let mut st = fresh();
        let other = add_master(&mut st);
        let me = st.myself;
        st.add_slot(7, me);
        let id = name_str(&other).as_bytes().to_vec();
        assert!(st.set_slot(7, SetSlot::Migrating(&id), 0, true).is_ok());
        let err = st.set_slot(7, SetSlot::Node(&id), 3, true).unwrap_err();
        assert!(err.starts_with("ERR Can't assign hashslot 7 to a different node"), "{err}");
        st.set_slot(7, SetSlot::Node(&id), 0, true).unwrap();
        assert_eq!(st.slots[7], Some(other));
        assert!(st.migrating.is_empty());
        assert_eq!(st.my_master(), Some(other), "a master left without slots follows the new owner");
        assert_eq!(st.set_slot(1, SetSlot::Stable, 0, true).unwrap_err(), "ERR Please use SETSLOT only with masters.");
    }

    #[test]
    fn importing_slot_taken_bumps_the_epoch() {
        let mut st = fresh();
        let other = add_master(&mut st);
        st.add_slot(9, other);
        let id = name_str(&other).as_bytes().to_vec();
        let me_id = name_str(&st.myself).as_bytes().to_vec();
        st.set_slot(9, SetSlot::Importing(&id), 0, true).unwrap();
        st.todo = 0;
        st.set_slot(9, SetSlot::Node(&me_id), 0, true).unwrap();
        assert_eq!(st.slots[9], Some(st.myself));
        assert!(st.importing.is_empty());
        assert_eq!(st.me().config_epoch, 1);
        assert_eq!(st.current_epoch, 1);
        assert_ne!(st.todo & todo::BROADCAST_PONG, 0);
        assert_ne!(st.todo & todo::FSYNC_CONFIG, 0);
    }

    #[test]
    fn reset_hard_forgets_everything() {
        let mut st = fresh();
        let other = add_master(&mut st);
        let old = st.myself;
        st.add_slot(1, old);
        st.add_slot(2, other);
        st.current_epoch = 5;
        st.me_mut().config_epoch = 5;
        st.reset(true);
        assert_ne!(st.myself, old);
        assert_eq!(st.nodes.len(), 1);
        assert!(st.slots.iter().all(|s| s.is_none()));
        assert_eq!((st.current_epoch, st.me().config_epoch), (0, 0));
        assert!(st.me().has(F::MYSELF | F::MASTER));
    }

    #[test]
    fn replicate_and_forget_checks() {
        let mut st = fresh();
        let other = add_master(&mut st);
        let id = name_str(&other).as_bytes().to_vec();
        assert!(st.replicate(b"abc", 0).unwrap_err().starts_with("ERR Unknown node abc"));
        assert_eq!(
            st.replicate(&id, 1).unwrap_err(),
            "ERR To set a master the node must be empty and without assigned slots."
        );
        st.replicate(&id, 0).unwrap();
        assert_eq!(st.forget(&id, 100).unwrap_err(), "ERR Can't forget my master!");
        let me_id = name_str(&st.myself).as_bytes().to_vec();
        assert_eq!(st.forget(&me_id, 100).unwrap_err(), "ERR I tried hard but I can't forget myself...");
        let third = add_master(&mut st);
        st.forget(name_str(&third).as_bytes(), 100).unwrap();
        assert!(st.blacklisted(&third, 150));
        assert!(!st.nodes.contains_key(&third));
    }
}
