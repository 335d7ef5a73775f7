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
    let populated = slots_of_records(records)?;
    for (slot, how) in claim(st, &populated) {
        log_claim(slot, how, st);
    }
    Ok(())
}

/// The slots of the loaded keys; an error (keys in a database other than 0) is fatal.
fn slots_of_records(records: &[Record]) -> Result<Vec<bool>, String> {
    if records.iter().any(|r| r.db != 0) {
        return Err("You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting.".into());
    }
    let mut populated = vec![false; crate::cluster::slot::SLOTS];
    for r in records {
        populated[key_slot(&r.key) as usize] = true;
    }
    Ok(populated)
}

/// How a slot with keys was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Assigned to another node: put in importing state.
    Importing,
    /// Unassigned: now mine.
    Owned,
}

/// Marks every `populated` slot not mine (Redis's rule); returns what it did.
fn claim(st: &mut ClusterState, populated: &[bool]) -> Vec<(u16, Claim)> {
    if st.me().slaveof.is_some() {
        return Vec::new();
    }
    let me = st.myself;
    let mut done = Vec::new();
    for (slot, _) in populated.iter().enumerate().filter(|(_, p)| **p) {
        let s16 = slot as u16;
        match st.slots[slot] {
            Some(owner) if owner == me => continue,
            _ if st.importing.contains_key(&s16) => continue,
            Some(owner) => {
                st.importing.insert(s16, owner);
                done.push((s16, Claim::Importing));
            }
            None => {
                st.add_slot(slot, me);
                done.push((s16, Claim::Owned));
            }
        }
    }
    if !done.is_empty() {
        st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG | todo::UPDATE_STATE);
    }
    done
}

fn log_claim(slot: u16, how: Claim, st: &ClusterState) {
    match how {
        Claim::Importing => {
            tracing::warn!(
                "I have keys for slot {}, but the slot is assigned to another node. Setting it to importing state.",
                slot
            );
            if let Some(owner) = st.importing.get(&slot) {
                tracing::debug!("slot {} is served by {}", slot, name_str(owner));
            }
        }
        Claim::Owned => tracing::warn!("I have keys for unassigned slot {}. Taking responsibility for it.", slot),
    }
}

/// Slots marked before an AOF's commands ran ([`claim_before_replay`]), and the slots the
/// shards hold keys in once they ran ([`note_loaded_slots`]).
struct Pending {
    claimed: Vec<(u16, Claim)>,
    loaded: Vec<bool>,
}

static PENDING: std::sync::Mutex<Option<Pending>> = std::sync::Mutex::new(None);

/// An AOF's start-up load: its commands run on the shards after the slot map is made, and a
/// key a command creates goes to the shard that serves its slot then, so every slot a key of
/// the base or of a command names is marked first, as if it had keys (keys of a slot served
/// elsewhere would otherwise be dropped, unmarked, once the map is published, when Redis keeps
/// them in importing state). [`finish_claims`] keeps the marks of the slots that hold keys
/// once the commands ran and takes back the others, as Redis marks only slots with keys.
pub fn claim_before_replay(
    st: &mut ClusterState,
    records: &[Record],
    cmds: &[Vec<bytes::Bytes>],
) -> Result<(), String> {
    if st.me().slaveof.is_some() {
        return Ok(());
    }
    let mut named = slots_of_records(records)?;
    for args in cmds {
        let Some((spec, _)) = crate::cmd::table::resolve(args) else { continue };
        for i in spec.key_indexes(args).unwrap_or_default() {
            if let Some(k) = args.get(i) {
                named[key_slot(k) as usize] = true;
            }
        }
    }
    let claimed = claim(st, &named);
    let loaded = vec![false; crate::cluster::slot::SLOTS];
    *PENDING.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending { claimed, loaded });
    Ok(())
}

/// A shard's slots that hold keys once the AOF's commands ran (every shard calls it before
/// [`finish_claims`]).
pub fn note_loaded_slots(slots: impl Iterator<Item = u16>) {
    if let Some(p) = PENDING.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        for s in slots {
            p.loaded[s as usize] = true;
        }
    }
}

/// Keeps (and logs, as Redis) the marks [`claim_before_replay`] made on slots that hold keys,
/// and takes back the others.
pub fn finish_claims(st: &mut ClusterState) {
    let Some(p) = PENDING.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    for (slot, how) in p.claimed {
        if p.loaded[slot as usize] {
            log_claim(slot, how, st);
            continue;
        }
        match how {
            Claim::Importing => {
                st.importing.remove(&slot);
            }
            Claim::Owned => {
                if st.slots[slot as usize] == Some(st.myself) {
                    st.del_slot(slot as usize);
                }
            }
        }
        st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
    }
}
