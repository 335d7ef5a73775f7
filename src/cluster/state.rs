//! The authoritative cluster state of this node: the nodes it knows, who serves each slot, the
//! epochs, the migrating/importing marks and the derived `cluster_state`.
//!
//! One `ClusterState` exists per process, inside [`super::Cluster`] behind a mutex. The control
//! core (cluster bus) and the CLUSTER commands change it; neither the data path nor the shards
//! read it: after a change, [`ClusterState::commit`] recomputes the state, saves nodes.conf when
//! Redis would, and publishes an immutable [`super::view::ClusterView`] that the shards route by.
//!
//! Node flags use Redis's internal bit values (`CLUSTER_NODE_*`, the same bits the bus carries,
//! [`crate::cluster::bus::NodeFlags`]).

use super::bus::codec::{set_slot_bit, slot_bit, NAME_LEN, SLOT_BYTES};
use super::bus::NodeFlags as F;
use super::nodes::{flag as pflag, ranges, NodeLine, NodesConf};
use super::slot::SLOTS;
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// A node name: 40 lowercase hex characters.
pub type Name = [u8; NAME_LEN];

/// The name as text.
pub fn name_str(n: &Name) -> &str {
    std::str::from_utf8(n).unwrap_or("????????????????????????????????????????")
}

/// Parses a 40-hex node name.
pub fn parse_name(s: &[u8]) -> Option<Name> {
    if s.len() != NAME_LEN || !s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return None;
    }
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(s);
    Some(n)
}

/// A fresh random node name.
pub fn random_name() -> Name {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    let mut n = [0u8; NAME_LEN];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, x) in b.iter().enumerate() {
        n[2 * i] = HEX[(x >> 4) as usize];
        n[2 * i + 1] = HEX[(x & 15) as usize];
    }
    n
}

/// Work `commit` must do (Redis's `CLUSTER_TODO_*`).
pub mod todo {
    /// Recompute `cluster_state`.
    pub const UPDATE_STATE: u32 = 1;
    /// Save nodes.conf.
    pub const SAVE_CONFIG: u32 = 2;
    /// fsync nodes.conf after saving.
    pub const FSYNC_CONFIG: u32 = 4;
    /// Tell every node about our new configuration (PONG broadcast).
    pub const BROADCAST_PONG: u32 = 8;
}

/// One known node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its name.
    pub name: Name,
    /// `NodeFlags` bits.
    pub flags: u16,
    /// IP ("" while unknown / noaddr).
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Bus port.
    pub cport: u16,
    /// Plaintext port (TLS clusters).
    pub pport: u16,
    /// Announced hostname.
    pub hostname: Option<String>,
    /// configEpoch.
    pub config_epoch: u64,
    /// Master, for a replica.
    pub slaveof: Option<Name>,
    /// Slots it serves (bitmap, as on the bus).
    pub slots: Box<[u8; SLOT_BYTES]>,
    /// Number of slots set in `slots`.
    pub numslots: usize,
    /// Creation time (ms).
    pub ctime: u64,
    /// Time of the ping we wait a pong for (ms), 0 when none is pending.
    pub ping_sent: u64,
    /// Last pong received (ms).
    pub pong_received: u64,
    /// Last time any data was received from it (ms).
    pub data_received: u64,
    /// When it was flagged FAIL (ms).
    pub fail_time: u64,
    /// Last time we voted for a replica of this master (ms).
    pub voted_time: u64,
    /// Replication offset it announced.
    pub repl_offset: u64,
    /// Since when this master has no working replica (ms, 0 = not orphaned).
    pub orphaned_time: u64,
    /// Failure reports: (reporting master, time in ms).
    pub fail_reports: Vec<(Name, u64)>,
    /// An outbound bus link to it is established (set by the bus).
    pub link_connected: bool,
    /// When the outbound link was established (ms; set by the bus, for CLUSTER LINKS).
    pub link_ctime: u64,
    /// When its inbound link was accepted (ms, 0 = none; set by the bus once a message on
    /// the link named this node, as Redis's `setClusterNodeToInboundClusterLink`).
    pub inbound_ctime: u64,
    /// Bytes queued on the outbound / inbound link and not written yet (set by the bus every
    /// cron, for CLUSTER LINKS' send-buffer fields).
    pub link_queued: usize,
    pub inbound_queued: usize,
}

impl Node {
    /// A node with no slots and no address.
    pub fn new(name: Name, flags: u16, now_ms: u64) -> Node {
        Node {
            name,
            flags,
            ip: String::new(),
            port: 0,
            cport: 0,
            pport: 0,
            hostname: None,
            config_epoch: 0,
            slaveof: None,
            slots: Box::new([0u8; SLOT_BYTES]),
            numslots: 0,
            ctime: now_ms,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset: 0,
            orphaned_time: 0,
            fail_reports: Vec::new(),
            link_connected: false,
            link_ctime: 0,
            inbound_ctime: 0,
            link_queued: 0,
            inbound_queued: 0,
        }
    }
    /// Has flag bit(s).
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    /// A master (not a replica).
    pub fn is_master(&self) -> bool {
        self.has(F::MASTER)
    }
    /// Serves slot `s`.
    pub fn owns(&self, s: usize) -> bool {
        slot_bit(&self.slots, s)
    }
    /// `ip:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `endpoint:port` as redirections name the node (Redis's `getPreferredEndpoint`): its
    /// IP, its hostname (`?` when it has none), or nothing.
    pub fn endpoint_addr(&self, endpoint: Endpoint) -> String {
        match endpoint {
            Endpoint::Ip => self.addr(),
            Endpoint::Hostname => {
                let h = self.hostname.as_deref().filter(|h| !h.is_empty()).unwrap_or("?");
                format!("{}:{}", h, self.port)
            }
            Endpoint::Unknown => format!(":{}", self.port),
        }
    }
}

/// `cluster-preferred-endpoint-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `ip` (the default).
    Ip,
    /// `hostname`.
    Hostname,
    /// `unknown-endpoint`.
    Unknown,
}

/// Settings from the config that the cluster logic reads.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// cluster-node-timeout (ms).
    pub node_timeout: u64,
    /// cluster-require-full-coverage.
    pub require_full_coverage: bool,
    /// cluster-allow-reads-when-down.
    pub allow_reads_when_down: bool,
    /// cluster-announce-hostname.
    pub announce_hostname: Option<String>,
    /// cluster-announce-ip.
    pub announce_ip: Option<String>,
    /// Client port we announce.
    pub port: u16,
    /// Bus port we announce.
    pub cport: u16,
    /// cluster-preferred-endpoint-type: what MOVED and ASK name a node by.
    pub endpoint: Endpoint,
    /// cluster-replica-validity-factor (0 = a replica may always fail over).
    pub replica_validity_factor: u64,
    /// repl-ping-replica-period (seconds), part of the replica data age limit.
    pub repl_ping_period: u64,
    /// cluster-replica-no-failover.
    pub replica_no_failover: bool,
    /// cluster-migration-barrier.
    pub migration_barrier: u64,
    /// cluster-allow-replica-migration.
    pub allow_replica_migration: bool,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node_timeout: 15000,
            require_full_coverage: true,
            allow_reads_when_down: false,
            announce_hostname: None,
            announce_ip: None,
            port: 6379,
            cport: 16379,
            endpoint: Endpoint::Ip,
            replica_validity_factor: 10,
            repl_ping_period: 10,
            replica_no_failover: false,
            migration_barrier: 1,
            allow_replica_migration: true,
        }
    }
}

/// The cluster state.
#[derive(Debug)]
pub struct ClusterState {
    /// My name.
    pub myself: Name,
    /// currentEpoch.
    pub current_epoch: u64,
    /// lastVoteEpoch.
    pub last_vote_epoch: u64,
    /// Every known node, myself included.
    pub nodes: HashMap<Name, Node>,
    /// Owner of each slot.
    pub slots: Vec<Option<Name>>,
    /// Slots being migrated from me to another node.
    pub migrating: BTreeMap<u16, Name>,
    /// Slots being imported into me from another node.
    pub importing: BTreeMap<u16, Name>,
    /// `cluster_state:ok`.
    pub ok: bool,
    /// Number of masters serving at least one slot.
    pub size: usize,
    /// Forgotten nodes and until when (unix seconds) gossip may not re-add them.
    pub blacklist: HashMap<Name, u64>,
    /// Bus messages sent, by type.
    pub stats_sent: [u64; 11],
    /// Bus messages received, by type.
    pub stats_received: [u64; 11],
    /// Links freed because their send buffer went over `cluster-link-sendbuf-limit`.
    pub links_buffer_limit_exceeded: u64,
    /// Pending `todo` bits.
    pub todo: u32,
    /// Settings.
    pub settings: ClusterSettings,
    /// When the state was first evaluated (ms), for the start-up delay.
    first_call_time: u64,
    /// When we last found ourselves in a minority partition (ms).
    among_minority_time: u64,
    /// Bumped by every published change.
    pub generation: u64,
    /// Nodes just marked FAIL whose FAIL message is still to be broadcast.
    pub pending_fail: Vec<Name>,
    /// Slots this master lost to a newer claim while serving them (Redis's "dirty slots"):
    /// the shards delete their keys. Keys of any other slot served elsewhere stay, as in
    /// Redis (e.g. between `redis-cli --cluster fix`'s SETSLOT NODE and IMPORTING).
    pub lost: Vec<bool>,
    /// Elections, votes, manual failover and the role this node asked replication for.
    pub fo: super::failover::Failover,
}

/// Redis's delay before a restarted master declares the cluster ok.
const WRITABLE_DELAY_MS: u64 = 2000;

impl ClusterState {
    /// A brand-new node knowing only itself (a master with no slots).
    pub fn new(myself: Name, settings: ClusterSettings, now_ms: u64) -> ClusterState {
        let mut me = Node::new(myself, F::MYSELF | F::MASTER, now_ms);
        me.port = settings.port;
        me.cport = settings.cport;
        me.ip = settings.announce_ip.clone().unwrap_or_default();
        me.hostname = settings.announce_hostname.clone();
        let mut nodes = HashMap::new();
        nodes.insert(myself, me);
        ClusterState {
            myself,
            current_epoch: 0,
            last_vote_epoch: 0,
            nodes,
            slots: vec![None; SLOTS],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            lost: vec![false; SLOTS],
            ok: false,
            size: 0,
            blacklist: HashMap::new(),
            stats_sent: [0; 11],
            stats_received: [0; 11],
            links_buffer_limit_exceeded: 0,
            todo: todo::UPDATE_STATE,
            settings,
            first_call_time: 0,
            among_minority_time: 0,
            generation: 0,
            pending_fail: Vec::new(),
            fo: Default::default(),
        }
    }

    /// The state described by a parsed nodes.conf.
    pub fn from_conf(conf: &NodesConf, settings: ClusterSettings, now_ms: u64) -> Result<ClusterState, String> {
        let me_line = conf.nodes.iter().find(|n| n.flags & pflag::MYSELF != 0).ok_or("no myself line")?;
        let myself = parse_name(me_line.id.as_bytes()).ok_or("invalid node id")?;
        let mut st = ClusterState::new(myself, settings, now_ms);
        st.nodes.clear();
        for l in &conf.nodes {
            let name = parse_name(l.id.as_bytes()).ok_or_else(|| format!("invalid node id {}", l.id))?;
            let mut n = Node::new(name, from_print_flags(l.flags), now_ms);
            n.ip = l.ip.clone();
            n.port = l.port;
            n.cport = l.cport;
            n.hostname = l.hostname.clone();
            n.config_epoch = l.config_epoch;
            n.pong_received = if l.flags & pflag::MYSELF != 0 { 0 } else { l.pong_recv };
            n.ping_sent = 0;
            if l.flags & (pflag::FAIL) != 0 {
                n.fail_time = now_ms;
            }
            if let Some(m) = &l.master {
                n.slaveof = parse_name(m.as_bytes());
            }
            st.nodes.insert(name, n);
        }
        // A replica's master may be listed after it: create unknown masters as Redis does.
        // A master with a replica may later take one by replica migration (MIGRATE_TO).
        let masters: Vec<Name> = st.nodes.values().filter_map(|n| n.slaveof).collect();
        for m in masters {
            st.nodes.entry(m).or_insert_with(|| Node::new(m, F::MASTER, now_ms)).flags |= F::MIGRATE_TO;
        }
        for l in &conf.nodes {
            let name = parse_name(l.id.as_bytes()).unwrap_or(myself);
            for &(a, b) in &l.slots {
                for s in a..=b {
                    st.add_slot(s as usize, name);
                }
            }
            for (s, id) in &l.migrating {
                if let Some(t) = parse_name(id.as_bytes()) {
                    st.migrating.insert(*s, t);
                }
            }
            for (s, id) in &l.importing {
                if let Some(t) = parse_name(id.as_bytes()) {
                    st.importing.insert(*s, t);
                }
            }
        }
        st.current_epoch = conf.current_epoch;
        st.last_vote_epoch = conf.last_vote_epoch;
        st.refresh_myself_address();
        Ok(st)
    }

    /// Keeps myself's announced ports, IP and hostname those of the settings (at load, and
    /// after CONFIG SET of `cluster-announce-*`, as Redis's `clusterUpdateMyselfAnnouncedPorts`
    /// and `clusterUpdateMyselfHostname`); the next messages carry them to the other nodes.
    pub fn refresh_myself_address(&mut self) {
        let (port, cport, ip, host) = (
            self.settings.port,
            self.settings.cport,
            self.settings.announce_ip.clone(),
            self.settings.announce_hostname.clone(),
        );
        let myself = self.myself;
        if let Some(me) = self.nodes.get_mut(&myself) {
            me.port = port;
            me.cport = cport;
            if let Some(ip) = ip {
                me.ip = ip;
            }
            me.hostname = host;
        }
    }

    /// Myself.
    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }

    /// Myself, mutable.
    pub fn me_mut(&mut self) -> &mut Node {
        let n = self.myself;
        self.nodes.get_mut(&n).expect("myself is always known")
    }

    /// My master, when I am a replica.
    pub fn my_master(&self) -> Option<Name> {
        let me = self.me();
        if me.is_master() {
            None
        } else {
            me.slaveof
        }
    }

    /// Asks `commit` to do `bits`.
    pub fn want(&mut self, bits: u32) {
        self.todo |= bits;
    }

    // ---- slots --------------------------------------------------------------------------

    /// Assigns slot `s` to `name` (which must be known); false if it is already assigned.
    pub fn add_slot(&mut self, s: usize, name: Name) -> bool {
        if self.slots[s].is_some() {
            return false;
        }
        let Some(n) = self.nodes.get_mut(&name) else { return false };
        set_slot_bit(&mut n.slots, s);
        n.numslots += 1;
        self.slots[s] = Some(name);
        if name == self.myself {
            self.lost[s] = false;
        }
        true
    }

    /// Unassigns slot `s`; false if it was not assigned.
    pub fn del_slot(&mut self, s: usize) -> bool {
        let Some(owner) = self.slots[s].take() else { return false };
        if let Some(n) = self.nodes.get_mut(&owner) {
            if slot_bit(&n.slots, s) {
                n.slots[s / 8] &= !(1 << (s & 7));
                n.numslots -= 1;
            }
        }
        true
    }

    /// Unassigns every slot of `name`; returns how many.
    pub fn del_node_slots(&mut self, name: Name) -> usize {
        let mut n = 0;
        for s in 0..SLOTS {
            if self.slots[s] == Some(name) {
                self.del_slot(s);
                n += 1;
            }
        }
        n
    }

    // ---- nodes --------------------------------------------------------------------------

    /// Adds a node (replacing one of the same name).
    pub fn add_node(&mut self, node: Node) {
        self.nodes.insert(node.name, node);
    }

    /// Removes a node: its slots become unassigned, its failure reports and the slot marks
    /// that name it go, and its replicas lose their master (Redis's `clusterDelNode`).
    pub fn del_node(&mut self, name: Name) {
        if name == self.myself {
            return;
        }
        self.importing.retain(|_, n| *n != name);
        self.migrating.retain(|_, n| *n != name);
        self.del_node_slots(name);
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| *r != name);
            if n.slaveof == Some(name) && n.name != self.myself {
                n.slaveof = None;
            }
        }
        self.nodes.remove(&name);
    }

    /// Gives a handshake node its real name (first PONG on a link to it).
    pub fn rename_node(&mut self, old: Name, new: Name) {
        if let Some(mut n) = self.nodes.remove(&old) {
            n.name = new;
            self.nodes.insert(new, n);
        }
    }

    /// Starts a handshake with `ip:port` (CLUSTER MEET and gossip): false if one is already
    /// in progress with that address (Redis's `clusterStartHandshake`).
    pub fn start_handshake(&mut self, ip: &str, port: u16, cport: u16, now_ms: u64) -> bool {
        let dup = self
            .nodes
            .values()
            .any(|n| n.has(F::HANDSHAKE) && n.ip.eq_ignore_ascii_case(ip) && n.port == port && n.cport == cport);
        if dup {
            return false;
        }
        let mut n = Node::new(random_name(), F::HANDSHAKE | F::MEET, now_ms);
        n.ip = ip.to_string();
        n.port = port;
        n.cport = cport;
        self.add_node(n);
        true
    }

    /// Makes myself a replica of `master` (Redis's `clusterSetMaster`): a master gives up
    /// its slots and its migrating/importing marks, a manual failover in progress ends, and
    /// replication is asked to follow the new master (see `failover::Failover::wanted_role`).
    pub fn set_my_master(&mut self, master: Name) {
        let me = self.myself;
        if self.me().is_master() {
            self.del_node_slots(me);
            self.migrating.clear();
            self.importing.clear();
        }
        let n = self.me_mut();
        n.flags = (n.flags & !(F::MASTER | F::MIGRATE_TO)) | F::SLAVE;
        n.slaveof = Some(master);
        if let Some(m) = self.nodes.get_mut(&master) {
            m.flags |= F::MIGRATE_TO;
        }
        self.fo.reset_manual();
        self.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
    }

    /// Replicas of `master`.
    pub fn replicas_of(&self, master: &Name) -> Vec<&Node> {
        let mut v: Vec<&Node> =
            self.nodes.values().filter(|n| !n.is_master() && n.slaveof.as_ref() == Some(master)).collect();
        v.sort_by_key(|n| n.name);
        v
    }

    /// The highest configEpoch of any node.
    pub fn max_config_epoch(&self) -> u64 {
        self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0)
    }

    /// `clusterBumpConfigEpochWithoutConsensus`: true when my epoch changed.
    pub fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_config_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
            tracing::info!("New configEpoch set to {}", e);
            true
        } else {
            false
        }
    }

    /// Forgets a node id for 60 s (CLUSTER FORGET).
    pub fn blacklist_add(&mut self, name: Name, now_s: u64) {
        self.blacklist.retain(|_, until| *until >= now_s);
        self.blacklist.insert(name, now_s + 60);
    }

    /// Is `name` banned from gossip re-adding it?
    pub fn blacklisted(&self, name: &Name, now_s: u64) -> bool {
        self.blacklist.get(name).is_some_and(|&until| until >= now_s)
    }

    // ---- failure reports ----------------------------------------------------------------

    /// Number of fresh (younger than 2 × node-timeout) failure reports about `name`.
    pub fn failure_reports(&mut self, name: &Name, now_ms: u64) -> usize {
        let max_age = self.settings.node_timeout * 2;
        match self.nodes.get_mut(name) {
            Some(n) => {
                n.fail_reports.retain(|(_, t)| now_ms.saturating_sub(*t) <= max_age);
                n.fail_reports.len()
            }
            None => 0,
        }
    }

    // ---- state --------------------------------------------------------------------------

    /// Recomputes `cluster_state` and `cluster_size` (Redis's `clusterUpdateState`).
    pub fn update_state(&mut self, now_ms: u64) {
        if self.first_call_time == 0 {
            self.first_call_time = now_ms;
        }
        let me_master = self.me().is_master();
        if me_master && !self.ok && now_ms.saturating_sub(self.first_call_time) < WRITABLE_DELAY_MS {
            return;
        }
        let mut ok = true;
        if self.settings.require_full_coverage {
            // Every slot has at most one owner, so full coverage by non-failing nodes is the
            // sum of their slot counts (O(nodes), not O(slots), on every cron tick).
            let served: usize = self.nodes.values().filter(|n| !n.has(F::FAIL)).map(|n| n.numslots).sum();
            ok = served == SLOTS;
        }
        let mut size = 0;
        let mut reachable = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots > 0 {
                size += 1;
                if !n.has(F::FAIL | F::PFAIL) {
                    reachable += 1;
                }
            }
        }
        self.size = size;
        let quorum = size / 2 + 1;
        if reachable < quorum {
            ok = false;
            self.among_minority_time = now_ms;
        }
        if ok != self.ok {
            let rejoin = self.settings.node_timeout.clamp(500, 5000);
            if ok && me_master && now_ms.saturating_sub(self.among_minority_time) < rejoin {
                return;
            }
            tracing::info!("Cluster state changed: {}", if ok { "ok" } else { "fail" });
            self.ok = ok;
        }
    }

    // ---- description ----------------------------------------------------------------------

    /// A node's CLUSTER NODES line.
    pub fn describe(&self, n: &Node) -> NodeLine {
        let me = n.name == self.myself;
        // A replica shows its master's configEpoch.
        let epoch = if n.is_master() {
            n.config_epoch
        } else {
            n.slaveof.and_then(|m| self.nodes.get(&m)).map(|m| m.config_epoch).unwrap_or(n.config_epoch)
        };
        let hex = |x: &Name| name_str(x).to_string();
        NodeLine {
            id: hex(&n.name),
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            hostname: n.hostname.clone(),
            flags: to_print_flags(n.flags),
            master: if n.is_master() { None } else { n.slaveof.as_ref().map(hex) },
            ping_sent: n.ping_sent,
            pong_recv: n.pong_received,
            config_epoch: epoch,
            connected: me || n.link_connected,
            slots: ranges(|s| n.owns(s)),
            migrating: if me { self.migrating.iter().map(|(s, t)| (*s, hex(t))).collect() } else { Vec::new() },
            importing: if me { self.importing.iter().map(|(s, t)| (*s, hex(t))).collect() } else { Vec::new() },
        }
    }

    /// CLUSTER NODES text (every line ends with `\n`).
    pub fn nodes_text(&self) -> String {
        let mut s = String::new();
        for n in self.nodes_in_order() {
            s.push_str(&self.describe(n).format());
            s.push('\n');
        }
        s
    }

    /// Nodes in a stable order: myself first, then by name.
    pub fn nodes_in_order(&self) -> Vec<&Node> {
        let mut v: Vec<&Node> = self.nodes.values().collect();
        v.sort_by_key(|n| (n.name != self.myself, n.name));
        v
    }

    /// nodes.conf content.
    pub fn conf(&self) -> NodesConf {
        let nodes = self.nodes_in_order().into_iter().map(|n| self.describe(n)).collect();
        NodesConf { nodes, current_epoch: self.current_epoch, last_vote_epoch: self.last_vote_epoch }
    }
}

/// Internal flag bits and the printed-flag bits of `nodes.rs` they correspond to.
const PRINT_FLAGS: [(u16, u16); 8] = [
    (F::MYSELF, pflag::MYSELF),
    (F::MASTER, pflag::MASTER),
    (F::SLAVE, pflag::SLAVE),
    (F::PFAIL, pflag::PFAIL),
    (F::FAIL, pflag::FAIL),
    (F::HANDSHAKE, pflag::HANDSHAKE),
    (F::NOADDR, pflag::NOADDR),
    (F::NOFAILOVER, pflag::NOFAILOVER),
];

/// Converts internal flags to the printed-flag bits of `nodes.rs`.
pub fn to_print_flags(f: u16) -> u16 {
    PRINT_FLAGS.iter().filter(|(i, _)| f & i != 0).fold(0, |a, (_, p)| a | p)
}

/// Converts printed-flag bits back to internal flags.
pub fn from_print_flags(p: u16) -> u16 {
    PRINT_FLAGS.iter().filter(|(_, q)| p & q != 0).fold(0, |a, (i, _)| a | i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClusterSettings {
        ClusterSettings { port: 7000, cport: 17000, ..Default::default() }
    }

    #[test]
    fn new_node_lists_itself() {
        let st = ClusterState::new(random_name(), settings(), 1);
        let text = st.nodes_text();
        assert!(text.ends_with(" :7000@17000 myself,master - 0 0 0 connected\n"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn conf_round_trip_keeps_slots_and_epochs() {
        let mut st = ClusterState::new(random_name(), settings(), 1);
        let other = random_name();
        let mut n = Node::new(other, F::MASTER, 1);
        n.ip = "127.0.0.1".into();
        n.port = 7001;
        n.cport = 17001;
        n.config_epoch = 2;
        st.add_node(n);
        let me = st.myself;
        for s in 0..=5460 {
            assert!(st.add_slot(s, me));
        }
        assert!(!st.add_slot(0, other), "a slot is assigned once");
        st.add_slot(5461, other);
        st.importing.insert(7000, other);
        st.current_epoch = 5;
        let text = st.conf().format();
        let back = ClusterState::from_conf(&NodesConf::parse(&text).unwrap(), settings(), 2).unwrap();
        assert_eq!(back.myself, me);
        assert_eq!(back.current_epoch, 5);
        assert_eq!(back.me().numslots, 5461);
        assert_eq!(back.slots[5461], Some(other));
        assert_eq!(back.importing.get(&7000), Some(&other));
        assert_eq!(back.conf().format(), text);
    }

    #[test]
    fn state_needs_coverage_and_quorum() {
        let mut st = ClusterState::new(random_name(), settings(), 1);
        let me = st.myself;
        for s in 0..SLOTS - 1 {
            st.add_slot(s, me);
        }
        st.update_state(1);
        assert!(!st.ok, "a master waits before its first ok");
        st.update_state(10_000);
        assert!(!st.ok, "one slot uncovered");
        st.add_slot(SLOTS - 1, me);
        st.update_state(10_001);
        assert!(st.ok);
        assert_eq!(st.size, 1);
        st.del_slot(3);
        st.update_state(10_002);
        assert!(!st.ok);
        st.settings.require_full_coverage = false;
        st.update_state(20_000);
        assert!(st.ok);
    }

    #[test]
    fn del_node_frees_its_slots_and_replicas() {
        let mut st = ClusterState::new(random_name(), settings(), 1);
        let m = random_name();
        st.add_node(Node::new(m, F::MASTER, 1));
        let mut r = Node::new(random_name(), F::SLAVE, 1);
        r.slaveof = Some(m);
        let rname = r.name;
        st.add_node(r);
        st.add_slot(10, m);
        st.migrating.insert(11, m);
        st.del_node(m);
        assert_eq!(st.slots[10], None);
        assert!(st.migrating.is_empty());
        assert_eq!(st.nodes[&rname].slaveof, None);
    }
}
