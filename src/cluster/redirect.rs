//! Cluster-mode checks before a keyed command runs (Redis's `getNodeByQuery`): every key in
//! one slot or `-CROSSSLOT`; `-CLUSTERDOWN` when the slot is unassigned or the cluster is down;
//! `-MOVED` to the slot's owner; `-ASK`/`-TRYAGAIN` around migrating and importing slots;
//! reads served by a replica for READONLY clients.
//!
//! The checks that need to know which keys exist (migrating and importing slots) cannot run on
//! the home shard: they travel with the command as a [`SlotCheck`] and run on the owning shard
//! just before the command, see [`precheck`].

use crate::cluster::key_slot;
use crate::cluster::view::{ClusterView, SlotRoute};
use crate::cmd::{flags, CommandSpec, ShardState};
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::Arc;

/// `-CROSSSLOT`.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
/// Cluster down.
pub const DOWN: &str = "CLUSTERDOWN The cluster is down";
/// Cluster down, reads allowed.
pub const DOWN_RO: &str = "CLUSTERDOWN The cluster is down and only accepts read commands";
/// Slot not served.
pub const UNBOUND: &str = "CLUSTERDOWN Hash slot not served";
/// Keys of one command are split by a migration.
pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
/// A write on a replica.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";

/// What the owning shard must check before running the command.
#[derive(Debug, Clone, Default)]
pub enum SlotCheck {
    /// Nothing.
    #[default]
    None,
    /// The slot is migrating away: missing keys mean ASK (none exist) or TRYAGAIN (some do).
    Migrating(Box<MigratingCheck>),
    /// The slot is being imported and the client asked: several keys with some missing mean
    /// TRYAGAIN. The key argument indexes.
    Importing(Box<Vec<usize>>),
}

/// What [`SlotCheck::Migrating`] needs; boxed, so that the check (carried by every keyed
/// command, almost always `None`) stays two words.
#[derive(Debug, Clone)]
pub struct MigratingCheck {
    /// The slot.
    pub slot: u16,
    /// `ip:port` of the migration target.
    pub to: Arc<str>,
    /// Key argument indexes.
    pub keys: Vec<usize>,
}

/// Client flags the checks read.
#[derive(Debug, Clone, Copy)]
pub struct ClientFlags {
    /// READONLY was sent.
    pub readonly: bool,
    /// ASKING was sent just before this command.
    pub asking: bool,
}

/// Decides whether a keyed command runs here. `key_idx` are its key argument indexes.
pub fn check(
    view: &ClusterView,
    client: ClientFlags,
    spec: &CommandSpec,
    args: &[Bytes],
    key_idx: &[usize],
) -> Result<SlotCheck, Reply> {
    let Some(&first) = key_idx.first() else {
        return Ok(SlotCheck::None);
    };
    let slot = key_slot(&args[first]);
    let mut multiple = false;
    for &i in &key_idx[1..] {
        if args[i] != args[first] {
            if key_slot(&args[i]) != slot {
                return Err(Reply::err(CROSSSLOT));
            }
            multiple = true;
        }
    }
    let route = view.route[slot as usize];
    if route == SlotRoute::Unassigned {
        return Err(Reply::err(UNBOUND));
    }
    // A script or function counts by its declared flags, as Redis's `getCommandFlags`.
    let write = spec.has(flags::WRITE)
        || (matches!(spec.exec, crate::cmd::Exec::Node(_)) && crate::cmd::scripting::may_write(spec, args));
    if !view.ok {
        if !view.allow_reads_when_down {
            return Err(Reply::err(DOWN));
        }
        if write {
            return Err(Reply::err(DOWN_RO));
        }
    }
    match route {
        SlotRoute::Mine { migrating: Some(to) } => {
            if spec.name == "migrate" {
                return Ok(SlotCheck::None);
            }
            Ok(SlotCheck::Migrating(Box::new(MigratingCheck {
                slot,
                to: view.addrs[to as usize].clone(),
                keys: key_idx.to_vec(),
            })))
        }
        SlotRoute::Mine { migrating: None } => Ok(SlotCheck::None),
        SlotRoute::Other { addr, importing, my_master } => {
            if importing && spec.name == "migrate" {
                return Ok(SlotCheck::None);
            }
            if importing && (client.asking || spec.has(flags::ASKING)) {
                return Ok(if multiple { SlotCheck::Importing(Box::new(key_idx.to_vec())) } else { SlotCheck::None });
            }
            if client.readonly && !write && view.replica && my_master {
                return Ok(SlotCheck::None);
            }
            Err(moved(slot, &view.addrs[addr as usize]))
        }
        SlotRoute::Unassigned => Err(Reply::err(UNBOUND)),
    }
}

impl SlotCheck {
    /// The same check over a list holding just the command's keys, in the order the check
    /// named them (a script's declared keys): key `j` of the list is the check's `j`th key.
    pub fn over_key_list(self) -> SlotCheck {
        match self {
            SlotCheck::None => SlotCheck::None,
            SlotCheck::Migrating(mut m) => {
                m.keys = (0..m.keys.len()).collect();
                SlotCheck::Migrating(m)
            }
            SlotCheck::Importing(keys) => SlotCheck::Importing(Box::new((0..keys.len()).collect())),
        }
    }
}

/// `-MOVED slot ip:port`.
pub fn moved(slot: u16, addr: &str) -> Reply {
    Reply::error(format!("MOVED {slot} {addr}"))
}

/// Runs a [`SlotCheck`] on the owning shard; Some(error) when the command must not run here.
#[inline]
pub fn precheck(st: &mut ShardState, check: &SlotCheck, db: usize, args: &[Bytes], now_ms: u64) -> Option<Reply> {
    match check {
        SlotCheck::None => None,
        _ => precheck_keys(st, check, db, args, now_ms),
    }
}

#[cold]
fn precheck_keys(st: &mut ShardState, check: &SlotCheck, db: usize, args: &[Bytes], now_ms: u64) -> Option<Reply> {
    let keys = match check {
        SlotCheck::None => return None,
        SlotCheck::Migrating(m) => &m.keys,
        SlotCheck::Importing(keys) => &**keys,
    };
    let d = &st.ks.dbs[db];
    let existing = keys.iter().filter(|&&i| d.contains(&args[i], now_ms)).count();
    let missing = keys.len() - existing;
    if missing == 0 {
        return None;
    }
    match check {
        SlotCheck::Migrating(m) if existing == 0 => Some(Reply::error(format!("ASK {} {}", m.slot, m.to))),
        _ => Some(Reply::err(TRYAGAIN)),
    }
}
