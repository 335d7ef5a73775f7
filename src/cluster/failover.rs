//! Cluster failover as Redis 7.0's `cluster.c`, sans-IO: the replica election
//! (`clusterHandleSlaveFailover`, `clusterGetSlaveRank`), votes as a master
//! (`clusterSendFailoverAuthIfNeeded`), taking over the master's slots
//! (`clusterFailoverReplaceYourMaster`), manual failover (CLUSTER FAILOVER, MFSTART, the
//! master's write pause and PAUSED offset, `clusterHandleManualFailover`) and replica
//! migration (`clusterHandleSlaveMigration`).
//!
//! Everything works on the locked [`ClusterState`] with `now` (ms) passed in and returns
//! messages in [`Effects`]; `runtime::bus` calls it from packet handling and from its 100 ms
//! cron. The link to replication is one-way and derived: [`Failover::wanted_role`] and
//! [`Failover::pause_until`] say what this node wants from `node.repl`, and
//! [`super::Cluster::sync_repl`] applies a change (follow / promote / pause) outside the lock,
//! so every path that changes roles (bus, CLUSTER REPLICATE / RESET / SETSLOT / FAILOVER,
//! start-up from nodes.conf) reaches replication the same way.
//!
//! Invariants: an election runs only on a replica whose master has slots; a vote is given at
//! most once per epoch (`lastVoteEpoch`, saved with fsync before the ACK leaves); a master
//! advertises PAUSED only once its offset stopped moving under the write pause, so the offset
//! a replica waits for is final.

use super::bus::codec::{mflags, slot_bit, Body, BusMessage, Header, MsgType};
use super::bus::gossip::{self, Effects};
use super::bus::NodeFlags as F;
use super::slot::SLOTS;
use super::state::{name_str, todo, ClusterState, Name};

/// Time a manual failover may take (`CLUSTER_MF_TIMEOUT`, ms).
pub const MF_TIMEOUT: u64 = 5000;
/// A master pauses writes for `MF_TIMEOUT` × this (`CLUSTER_MF_PAUSE_MULT`).
pub const MF_PAUSE_MULT: u64 = 2;
/// A master must stay orphaned this long before a replica migrates to it (ms).
pub const REPLICA_MIGRATION_DELAY: u64 = 5000;
/// The same reason for not failing over is logged again after this long (seconds).
const CANT_FAILOVER_RELOG_PERIOD: u64 = 300;

/// Why a replica cannot fail over (`CLUSTER_CANT_FAILOVER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Cant {
    #[default]
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

/// The replication role this node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Serve as a master.
    Master,
    /// Replicate `host:port`.
    Replica {
        /// Master host.
        host: String,
        /// Master client port.
        port: u16,
    },
}

/// The replica's link to its master as replication reports it (`node.repl.status`), for the
/// data age check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// The link is up (`repl_state == REPL_STATE_CONNECTED`).
    pub connected: bool,
    /// Unix ms of the last byte from the master.
    pub last_io_ms: u64,
    /// Unix ms since when the link is down; 0 = never connected (Redis's
    /// `repl_down_since` starts at 0: "repl is down since EVER").
    pub down_since_ms: u64,
}

/// Election, vote and manual failover state (the `failover_auth_*` and `mf_*` fields of
/// Redis's `clusterState`).
#[derive(Debug)]
pub struct Failover {
    /// When the election may start (or started), ms.
    auth_time: u64,
    /// Votes received in this election.
    auth_count: usize,
    /// The vote request went out.
    auth_sent: bool,
    /// My rank when the election was scheduled.
    auth_rank: usize,
    /// Epoch of the election.
    auth_epoch: u64,
    cant_reason: Cant,
    cant_logged_s: u64,
    /// Manual failover deadline (ms), 0 = none in progress.
    pub mf_end: u64,
    /// Replica side: the election may start now.
    mf_can_start: bool,
    /// Master side: the replica that asked for the manual failover.
    pub mf_slave: Option<Name>,
    /// Replica side: the offset the paused master announced.
    mf_master_offset: Option<u64>,
    /// Master side: the offset seen at the last cron tick while paused.
    mf_last_offset: Option<u64>,
    /// Master side: the offset did not move for a tick under the pause: PAUSED may be sent.
    mf_settled: bool,
    /// Replica side: MFSTART must go to my master (CLUSTER FAILOVER runs off the bus).
    pub mfstart_pending: bool,
    /// Writes paused until (Unix ms) by this master's manual failover; 0 = not paused.
    pub pause_until: u64,
    applied_pause: u64,
    applied_role: Option<Role>,
    /// The master link, refreshed by the bus before each use.
    pub link: LinkState,
    /// Run the election step at the end of this event (`CLUSTER_TODO_HANDLE_FAILOVER`).
    pub handle_soon: bool,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            auth_time: 0,
            auth_count: 0,
            auth_sent: false,
            auth_rank: 0,
            auth_epoch: 0,
            cant_reason: Cant::None,
            cant_logged_s: 0,
            mf_end: 0,
            mf_can_start: false,
            mf_slave: None,
            mf_master_offset: None,
            mf_last_offset: None,
            mf_settled: false,
            mfstart_pending: false,
            pause_until: 0,
            applied_pause: 0,
            // Replication starts as a master.
            applied_role: Some(Role::Master),
            link: LinkState::default(),
            handle_soon: false,
        }
    }
}

impl Failover {
    /// `resetManualFailover`: ends a manual failover in progress (a master resumes writes).
    pub fn reset_manual(&mut self) {
        if self.mf_slave.is_some() {
            self.pause_until = 0;
        }
        self.mf_end = 0;
        self.mf_can_start = false;
        self.mf_slave = None;
        self.mf_master_offset = None;
        self.mf_last_offset = None;
        self.mf_settled = false;
        self.mfstart_pending = false;
    }

    /// True when this master announces PAUSED (manual failover, offset final).
    pub fn paused_flag(&self) -> bool {
        self.mf_end != 0 && self.mf_slave.is_some() && self.mf_settled
    }

    /// A role change to hand to replication, recorded as applied.
    pub fn take_role_change(&mut self, wanted: Option<Role>) -> Option<Role> {
        let w = wanted?;
        if self.applied_role.as_ref() == Some(&w) {
            return None;
        }
        self.applied_role = Some(w.clone());
        Some(w)
    }

    /// A write-pause change to hand to replication, recorded as applied.
    pub fn take_pause_change(&mut self) -> Option<u64> {
        if self.pause_until == self.applied_pause {
            return None;
        }
        self.applied_pause = self.pause_until;
        Some(self.pause_until)
    }
}

/// The role my cluster state implies: a master, or a replica of my master's address (None
/// while that address is unknown).
pub fn wanted_role(st: &ClusterState) -> Option<Role> {
    let me = st.me();
    if me.is_master() {
        return Some(Role::Master);
    }
    let m = me.slaveof.and_then(|m| st.nodes.get(&m))?;
    if m.ip.is_empty() || m.port == 0 || m.has(F::NOADDR) {
        return None;
    }
    Some(Role::Replica { host: m.ip.clone(), port: m.port })
}

/// `clusterGetSlaveRank`: replicas of my master (not NOFAILOVER) with a larger offset.
pub fn rank(st: &ClusterState) -> usize {
    let Some(m) = st.my_master() else { return 0 };
    let mine = st.me().repl_offset;
    st.nodes
        .values()
        .filter(|n| {
            n.name != st.myself
                && !n.is_master()
                && n.slaveof == Some(m)
                && !n.has(F::NOFAILOVER)
                && n.repl_offset > mine
        })
        .count()
}

/// Milliseconds my data is older than it should be (Redis's `data_age` before the
/// node-timeout is taken off): since the last byte from the master while the link is up,
/// else since the link went down, in whole seconds as Redis counts them.
fn data_age(l: &LinkState, now: u64) -> u64 {
    let since = if l.connected { l.last_io_ms } else { l.down_since_ms };
    (now / 1000).saturating_sub(since / 1000) * 1000
}

fn log_cant(st: &mut ClusterState, reason: Cant, now: u64) {
    let now_s = now / 1000;
    if reason == st.fo.cant_reason && now_s.saturating_sub(st.fo.cant_logged_s) < CANT_FAILOVER_RELOG_PERIOD {
        return;
    }
    st.fo.cant_reason = reason;
    // Nothing is logged while the master failed recently: this is for stalled replicas.
    let nolog = st.settings.node_timeout + 5000;
    if let Some(m) = st.my_master().and_then(|m| st.nodes.get(&m)) {
        if m.has(F::FAIL) && now.saturating_sub(m.fail_time) < nolog {
            return;
        }
    }
    let msg = match reason {
        Cant::DataAge => {
            "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option."
        }
        Cant::WaitingDelay => "Waiting the delay before I can start a new failover.",
        Cant::Expired => "Failover attempt expired.",
        Cant::WaitingVotes => "Waiting for votes, but majority still not reached.",
        Cant::None => "Unknown reason code.",
    };
    st.fo.cant_logged_s = now_s;
    tracing::warn!("Currently unable to failover: {}", msg);
}

fn message(st: &ClusterState, t: MsgType) -> BusMessage {
    BusMessage { header: gossip::header(st, t), body: Body::Empty }
}

/// `clusterHandleSlaveFailover`: schedule, run and conclude an election for my failed (or
/// manually failed-over) master.
pub fn handle_replica_failover(st: &mut ClusterState, now: u64, fx: &mut Effects) {
    let auth_age = now.saturating_sub(st.fo.auth_time);
    let quorum = st.size / 2 + 1;
    let manual = st.fo.mf_end != 0 && st.fo.mf_can_start;
    let timeout = st.settings.node_timeout;
    let auth_timeout = (timeout * 2).max(2000);
    let auth_retry = auth_timeout * 2;

    let master = st.my_master().and_then(|m| st.nodes.get(&m));
    let can = match master {
        None => false,
        Some(m) => {
            st.me().has(F::SLAVE)
                && (m.has(F::FAIL) || manual)
                && (!st.settings.replica_no_failover || manual)
                && m.numslots != 0
        }
    };
    if !can {
        st.fo.cant_reason = Cant::None;
        return;
    }

    let mut age = data_age(&st.fo.link, now);
    if age > timeout {
        age -= timeout;
    }
    let factor = st.settings.replica_validity_factor;
    if factor != 0 && age > st.settings.repl_ping_period * 1000 + timeout * factor && !manual {
        log_cant(st, Cant::DataAge, now);
        return;
    }

    if auth_age > auth_retry {
        let fo = &mut st.fo;
        fo.auth_time = now + 500 + fastrand::u64(0..500);
        fo.auth_count = 0;
        fo.auth_sent = false;
        let r = rank(st);
        let fo = &mut st.fo;
        fo.auth_rank = r;
        fo.auth_time += r as u64 * 1000;
        if fo.mf_end != 0 {
            fo.auth_time = now;
            fo.auth_rank = 0;
            fo.handle_soon = true;
        }
        tracing::warn!(
            "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
            st.fo.auth_time - now,
            st.fo.auth_rank,
            st.me().repl_offset
        );
        // Tell my sibling replicas my offset, so they rank themselves against it.
        let master = st.my_master();
        let siblings: Vec<Name> = st
            .nodes
            .values()
            .filter(|n| n.name != st.myself && !n.is_master() && n.slaveof.is_some() && n.slaveof == master)
            .map(|n| n.name)
            .collect();
        for s in siblings {
            let m = gossip::ping(st, MsgType::Pong, None, now);
            fx.send.push((s, m));
        }
        return;
    }

    if !st.fo.auth_sent && st.fo.mf_end == 0 {
        let newrank = rank(st);
        if newrank > st.fo.auth_rank {
            let added = (newrank - st.fo.auth_rank) as u64 * 1000;
            st.fo.auth_time += added;
            st.fo.auth_rank = newrank;
            tracing::warn!("Replica rank updated to #{}, added {} milliseconds of delay.", newrank, added);
        }
    }

    if now < st.fo.auth_time {
        log_cant(st, Cant::WaitingDelay, now);
        return;
    }
    if auth_age > auth_timeout {
        log_cant(st, Cant::Expired, now);
        return;
    }

    if !st.fo.auth_sent {
        st.current_epoch += 1;
        st.fo.auth_epoch = st.current_epoch;
        tracing::warn!("Starting a failover election for epoch {}.", st.current_epoch);
        let mut m = message(st, MsgType::FailoverAuthRequest);
        if st.fo.mf_end != 0 {
            m.header.mflags[0] |= mflags::FORCEACK;
        }
        fx.broadcast.push(m);
        st.fo.auth_sent = true;
        st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
        return;
    }

    if st.fo.auth_count >= quorum {
        tracing::warn!("Failover election won: I'm the new master.");
        if st.me().config_epoch < st.fo.auth_epoch {
            let e = st.fo.auth_epoch;
            st.me_mut().config_epoch = e;
            tracing::warn!("configEpoch set to {} after successful failover", e);
        }
        replace_my_master(st);
    } else {
        log_cant(st, Cant::WaitingVotes, now);
    }
}

/// `clusterFailoverReplaceYourMaster`: I become a master serving my master's slots, save
/// nodes.conf with fsync and tell everybody (PONG broadcast). The caller gave me a new
/// configEpoch already.
pub fn replace_my_master(st: &mut ClusterState) {
    let Some(old) = st.my_master() else { return };
    if st.me().is_master() || !st.nodes.contains_key(&old) {
        return;
    }
    let me = st.myself;
    {
        let n = st.me_mut();
        n.flags = (n.flags & !F::SLAVE) | F::MASTER;
        n.slaveof = None;
    }
    for j in 0..SLOTS {
        if st.nodes[&old].owns(j) {
            st.del_slot(j);
            st.add_slot(j, me);
        }
    }
    st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG | todo::FSYNC_CONFIG | todo::BROADCAST_PONG);
    st.fo.reset_manual();
}

/// `clusterSendFailoverAuthIfNeeded`: vote for `sender` (a replica asking to replace its
/// master) when every rule of Redis holds; the ACK goes on my link to it.
pub fn on_auth_request(st: &mut ClusterState, sender: Name, h: &Header, now: u64, fx: &mut Effects) {
    let me = st.me();
    if !me.is_master() || me.numslots == 0 {
        return;
    }
    let id = name_str(&sender).to_string();
    if h.current_epoch < st.current_epoch {
        tracing::warn!(
            "Failover auth denied to {}: reqEpoch ({}) < curEpoch({})",
            id,
            h.current_epoch,
            st.current_epoch
        );
        return;
    }
    if st.last_vote_epoch == st.current_epoch {
        tracing::warn!("Failover auth denied to {}: already voted for epoch {}", id, st.current_epoch);
        return;
    }
    let Some(node) = st.nodes.get(&sender) else { return };
    let force_ack = h.mflags[0] & mflags::FORCEACK != 0;
    let master = if node.is_master() { None } else { node.slaveof.and_then(|m| st.nodes.get(&m)) };
    if node.is_master() {
        tracing::warn!("Failover auth denied to {}: it is a master node", id);
        return;
    }
    let Some(master) = master else {
        tracing::warn!("Failover auth denied to {}: I don't know its master", id);
        return;
    };
    if !master.has(F::FAIL) && !force_ack {
        tracing::warn!("Failover auth denied to {}: its master is up", id);
        return;
    }
    let window = st.settings.node_timeout * 2;
    let since = now.saturating_sub(master.voted_time);
    if since < window {
        tracing::warn!(
            "Failover auth denied to {}: can't vote about this master before {} milliseconds",
            id,
            window - since
        );
        return;
    }
    for j in 0..SLOTS {
        if !slot_bit(&h.myslots, j) {
            continue;
        }
        let Some(owner) = st.slots[j].and_then(|o| st.nodes.get(&o)) else { continue };
        if owner.config_epoch <= h.config_epoch {
            continue;
        }
        tracing::warn!(
            "Failover auth denied to {}: slot {} epoch ({}) > reqEpoch ({})",
            id,
            j,
            owner.config_epoch,
            h.config_epoch
        );
        return;
    }
    let master = master.name;
    st.last_vote_epoch = st.current_epoch;
    if let Some(m) = st.nodes.get_mut(&master) {
        m.voted_time = now;
    }
    st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
    fx.send.push((sender, message(st, MsgType::FailoverAuthAck)));
    tracing::warn!("Failover auth granted to {} for epoch {}", id, st.current_epoch);
}

/// A FAILOVER_AUTH_ACK: counts when it comes from a master with slots that saw my
/// election's epoch.
pub fn on_auth_ack(st: &mut ClusterState, sender: Name, h: &Header) {
    let Some(n) = st.nodes.get(&sender) else { return };
    if n.is_master() && n.numslots > 0 && h.current_epoch >= st.fo.auth_epoch {
        st.fo.auth_count += 1;
        st.fo.handle_soon = true;
    }
}

/// MFSTART from one of my replicas: pause writes for `MF_TIMEOUT × MF_PAUSE_MULT` and ping
/// it (every cron tick) until the failover ends; PAUSED goes out once the offset settled.
pub fn on_mfstart(st: &mut ClusterState, sender: Name, now: u64) {
    let mine = st.nodes.get(&sender).is_some_and(|n| n.slaveof == Some(st.myself) && !n.is_master());
    if !mine || !st.me().is_master() {
        return;
    }
    st.fo.reset_manual();
    st.fo.mf_end = now + MF_TIMEOUT;
    st.fo.mf_slave = Some(sender);
    st.fo.pause_until = now + MF_TIMEOUT * MF_PAUSE_MULT;
    tracing::warn!("Manual failover requested by replica {}.", name_str(&sender));
}

/// Packet prologue on a replica in a manual failover: my master's first PAUSED header
/// carries the offset to reach.
pub fn on_master_header(st: &mut ClusterState, sender: Name, h: &Header) {
    if st.fo.mf_end != 0
        && st.me().has(F::SLAVE)
        && st.my_master() == Some(sender)
        && h.mflags[0] & mflags::PAUSED != 0
        && st.fo.mf_master_offset.is_none()
    {
        st.fo.mf_master_offset = Some(h.offset);
        st.fo.handle_soon = true;
        tracing::warn!("Received replication offset for paused master manual failover: {}", h.offset);
    }
}

/// `clusterHandleManualFailover`: my offset reached the paused master's: the election may
/// start.
pub fn handle_manual_failover(st: &mut ClusterState) {
    if st.fo.mf_end == 0 || st.fo.mf_can_start {
        return;
    }
    let Some(target) = st.fo.mf_master_offset else { return };
    if target == st.me().repl_offset {
        st.fo.mf_can_start = true;
        st.fo.handle_soon = true;
        tracing::warn!("All master replication stream processed, manual failover can start.");
    }
}

/// What CLUSTER FAILOVER asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    /// Coordinate with the master (MFSTART, offsets matched), then an election.
    Default,
    /// An election with FORCEACK, without the master.
    Force,
    /// A new epoch without agreement, and the slots taken now.
    Takeover,
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] on this node (errors are Redis's reply texts).
pub fn cluster_failover(st: &mut ClusterState, mode: Manual, now: u64) -> Result<(), String> {
    if st.me().is_master() {
        return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
    }
    let Some(master) = st.my_master().and_then(|m| st.nodes.get(&m)) else {
        return Err("ERR I'm a replica but my master is unknown to me".into());
    };
    if mode == Manual::Default && (master.has(F::FAIL) || !master.link_connected) {
        return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
    }
    st.fo.reset_manual();
    st.fo.mf_end = now + MF_TIMEOUT;
    match mode {
        Manual::Takeover => {
            tracing::warn!("Taking over the master (user request).");
            st.bump_epoch_without_consensus();
            replace_my_master(st);
        }
        Manual::Force => {
            tracing::warn!("Forced failover user request accepted.");
            st.fo.mf_can_start = true;
            st.fo.handle_soon = true;
        }
        Manual::Default => {
            tracing::warn!("Manual failover user request accepted.");
            st.fo.mfstart_pending = true;
        }
    }
    Ok(())
}

/// Non-failing replicas of `m` (`clusterCountNonFailingSlaves`).
fn ok_replicas(st: &ClusterState, m: &Name) -> usize {
    st.nodes.values().filter(|n| !n.is_master() && n.slaveof.as_ref() == Some(m) && !n.has(F::FAIL)).count()
}

/// The failover part of `clusterCron`, every 100 ms: manual failover timeout and pings,
/// the replica's manual failover and election steps, and replica migration.
pub fn cron(st: &mut ClusterState, now: u64, fx: &mut Effects) {
    // cluster-replica-no-failover as the NOFAILOVER flag of myself (`clusterUpdateMyselfFlags`).
    let nofailover = if st.settings.replica_no_failover { F::NOFAILOVER } else { 0 };
    if st.me().flags & F::NOFAILOVER != nofailover {
        let n = st.me_mut();
        n.flags = (n.flags & !F::NOFAILOVER) | nofailover;
        st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
    }
    // Master side of a manual failover: wait for the offset to settle, ping the replica.
    if st.me().is_master() {
        if let (Some(r), true) = (st.fo.mf_slave, st.fo.mf_end != 0) {
            let off = st.me().repl_offset;
            if st.fo.mf_last_offset == Some(off) {
                st.fo.mf_settled = true;
            }
            st.fo.mf_last_offset = Some(off);
            let m = gossip::ping(st, MsgType::Ping, Some(r), now);
            fx.send.push((r, m));
        }
    }
    if st.fo.mf_end != 0 && st.fo.mf_end < now {
        tracing::warn!("Manual failover timed out.");
        st.fo.reset_manual();
    }
    if !st.me().has(F::SLAVE) {
        return;
    }
    handle_manual_failover(st);
    handle_replica_failover(st, now, fx);
    // Orphaned masters, and the largest number of ok replicas of a master.
    let mut orphaned = 0;
    let mut max_replicas = 0;
    let mut mine = 0;
    let my_master = st.my_master();
    for n in st.nodes.values() {
        if n.name == st.myself || n.has(F::NOADDR | F::HANDSHAKE) || !n.is_master() || n.has(F::FAIL) {
            continue;
        }
        let ok = ok_replicas(st, &n.name);
        if ok == 0 && n.numslots > 0 && n.has(F::MIGRATE_TO) {
            orphaned += 1;
        }
        max_replicas = max_replicas.max(ok);
        if my_master == Some(n.name) {
            mine = ok;
        }
    }
    if orphaned > 0 && max_replicas >= 2 && mine == max_replicas && st.settings.allow_replica_migration {
        handle_replica_migration(st, max_replicas, now);
    }
}

/// `clusterHandleSlaveMigration`: a replica of a master with the most ok replicas (and the
/// smallest id among them) moves to a master left without working replicas.
pub fn handle_replica_migration(st: &mut ClusterState, max_replicas: usize, now: u64) {
    if !st.ok {
        return;
    }
    let Some(mymaster) = st.my_master() else { return };
    let ok_mine = st
        .nodes
        .values()
        .filter(|n| !n.is_master() && n.slaveof == Some(mymaster) && !n.has(F::FAIL | F::PFAIL))
        .count();
    if ok_mine as u64 <= st.settings.migration_barrier {
        return;
    }
    let mut candidate = st.myself;
    let mut target: Option<Name> = None;
    let mut names: Vec<Name> = st.nodes.keys().copied().collect();
    names.sort();
    for name in names {
        let n = &st.nodes[&name];
        let ok = if n.is_master() { ok_replicas(st, &name) } else { 0 };
        let orphaned = n.is_master() && !n.has(F::FAIL) && n.has(F::MIGRATE_TO) && ok == 0;
        if orphaned {
            if target.is_none() && n.numslots > 0 {
                target = Some(name);
            }
            let n = st.nodes.get_mut(&name).expect("known");
            if n.orphaned_time == 0 {
                n.orphaned_time = now;
            }
        } else {
            st.nodes.get_mut(&name).expect("known").orphaned_time = 0;
        }
        if ok == max_replicas {
            for r in st.replicas_of(&name) {
                if r.name < candidate {
                    candidate = r.name;
                }
            }
        }
    }
    let Some(t) = target else { return };
    if candidate == st.myself && now.saturating_sub(st.nodes[&t].orphaned_time) > REPLICA_MIGRATION_DELAY {
        tracing::warn!("Migrating to orphaned master {}", name_str(&t));
        st.set_my_master(t);
    }
}

/// The end of handling one event (`clusterBeforeSleep`): run the manual failover and
/// election steps when something asked for them, and send a pending MFSTART.
pub fn before_sleep(st: &mut ClusterState, now: u64, fx: &mut Effects) {
    // Taken first: a step may ask for another one (a manual failover schedules its election
    // for now), which then runs at the end of the next event or cron tick.
    if std::mem::take(&mut st.fo.handle_soon) && st.me().has(F::SLAVE) {
        handle_manual_failover(st);
        handle_replica_failover(st, now, fx);
    }
    if st.fo.mfstart_pending {
        st.fo.mfstart_pending = false;
        if let Some(m) = st.my_master().filter(|_| st.me().has(F::SLAVE)) {
            fx.send.push((m, message(st, MsgType::MfStart)));
        }
    }
}

/// What the bus reads from replication before cluster work: my offset and the master link.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplView {
    /// `node.repl.offset()`.
    pub offset: u64,
    /// The master link (all zero when replication follows no master).
    pub link: LinkState,
}

impl ReplView {
    /// Reads replication's offset and master link (take it before the cluster lock). A
    /// replica receiving a full sync has no offset (0) until it is loaded, as Redis's
    /// `replicationGetSlaveOffset` once the cached master is discarded for the sync: its
    /// master lists it in CLUSTER SLOTS again only then, and it ranks last in an election.
    pub fn read(repl: &crate::replication::Replication) -> ReplView {
        let (link, syncing) = repl.with_status(|s| {
            s.master
                .as_ref()
                .map(|m| {
                    let link = LinkState {
                        connected: m.state == "connected",
                        last_io_ms: m.last_io_ms,
                        down_since_ms: m.down_since_ms,
                    };
                    (link, m.sync_in_progress)
                })
                .unwrap_or_default()
        });
        ReplView { offset: if syncing { 0 } else { repl.offset() }, link }
    }

    /// Puts it into the state: the offset the bus header carries and elections rank by.
    pub fn apply(&self, st: &mut ClusterState) {
        st.me_mut().repl_offset = self.offset;
        st.fo.link = self.link;
    }
}

impl super::Cluster {
    /// Hands replication the role and write pause the cluster state now implies, when they
    /// changed: `follow(master ip, port)` for a replica (CLUSTER REPLICATE, a lost
    /// election, start-up as a replica, a master address change), `promote()` for a master
    /// (a won election, TAKEOVER, CLUSTER RESET), the failover's write pause for a manual failover.
    pub fn sync_repl(&self, repl: &crate::replication::Replication) {
        let (role, pause) = {
            let mut g = self.lock();
            let wanted = wanted_role(&g.st);
            (g.st.fo.take_role_change(wanted), g.st.fo.take_pause_change())
        };
        use crate::pause::{Kind, Purpose};
        match pause {
            Some(0) => crate::pause::unpause(Purpose::Failover),
            Some(until) => crate::pause::pause(Purpose::Failover, until, Kind::Write),
            None => {}
        }
        match role {
            Some(Role::Master) => {
                repl.promote();
            }
            Some(Role::Replica { host, port }) => {
                repl.follow(&host, port);
            }
            None => {}
        }
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
