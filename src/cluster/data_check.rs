//! The start-up check of the loaded data against the cluster configuration (Redis's
//! `verifyClusterConfigWithData`): a master that loaded keys for slots nobody is assigned
//! (typically an RDB file next to an empty or missing nodes.conf) takes those slots, and keys
//! of a slot assigned to another node put that slot in importing state, so the keys stay
//! reachable instead of being dropped or hidden.

use super::state::{name_str, todo, ClusterState};
use crate::cluster::slot::key_slot;
use crate::persist::file::Record;

/// Claims the slots of the loaded `records` as Redis 7.0 does at start-up; an error (keys in
/// a database other than 0) is fatal.
pub fn claim_slots_with_keys(st: &mut ClusterState, records: &[Record]) -> Result<(), String> {
    if st.me().slaveof.is_some() || records.is_empty() {
        return Ok(());
    }
    if records.iter().any(|r| r.db != 0) {
        return Err("You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting.".into());
    }
    let mut populated = vec![false; crate::cluster::slot::SLOTS];
    for r in records {
        populated[key_slot(&r.key) as usize] = true;
    }
    let me = st.myself;
    let mut changed = 0;
    for (slot, _) in populated.iter().enumerate().filter(|(_, p)| **p) {
        match st.slots[slot] {
            Some(owner) if owner == me => continue,
            _ if st.importing.contains_key(&(slot as u16)) => continue,
            Some(owner) => {
                tracing::warn!(
                    "I have keys for slot {}, but the slot is assigned to another node. Setting it to importing state.",
                    slot
                );
                tracing::debug!("slot {} is served by {}", slot, name_str(&owner));
                st.importing.insert(slot as u16, owner);
            }
            None => {
                tracing::warn!("I have keys for unassigned slot {}. Taking responsibility for it.", slot);
                st.add_slot(slot, me);
            }
        }
        changed += 1;
    }
    if changed > 0 {
        st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG | todo::UPDATE_STATE);
    }
    Ok(())
}
