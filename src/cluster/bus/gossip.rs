//! The cluster-bus protocol logic, sans-IO: what a node does with each message it receives
//! (Redis 7.0's `clusterProcessPacket` and `clusterProcessGossipSection`), what it sends
//! (`clusterBuildMessageHdr`, `clusterSendPing` with Redis's choice of gossip entries), and the
//! failure detector of `clusterCron` (PFAIL after node-timeout without a pong, FAIL when a
//! majority of slot-owning masters report it, FAIL broadcast and clearing).
//!
//! Every function works on a locked [`ClusterState`] and returns [`Effects`]: messages for the
//! IO layer (`runtime::bus`) to put on links. Nothing here does I/O or reads a clock: `now`
//! (ms) is passed in, which keeps the logic testable.

use super::codec::{slot_bit, Body, BusMessage, Extension, GossipEntry, Header, MsgType, SLOT_BYTES};
use super::NodeFlags as F;
use crate::cluster::failover;
use crate::cluster::state::{name_str, todo, ClusterState, Name, Node};
use crate::cluster::SLOTS;
use std::sync::atomic::{AtomicI64, Ordering};

/// `DEBUG DROP-CLUSTER-PACKET-FILTER <type>`: received bus messages of this type are counted
/// and then ignored, as Redis's testing aid does (-1, the default, drops nothing).
static DROP_PACKET_FILTER: AtomicI64 = AtomicI64::new(-1);

/// Sets the type [`process`] drops (-1: none).
pub fn set_drop_packet_filter(msg_type: i64) {
    DROP_PACKET_FILTER.store(msg_type, Ordering::Relaxed);
}

/// Failure reports older than node-timeout × this are ignored (`CLUSTER_FAIL_REPORT_VALIDITY_MULT`).
pub const FAIL_REPORT_VALIDITY_MULT: u64 = 2;
/// A FAIL master with slots is cleared after node-timeout × this (`CLUSTER_FAIL_UNDO_TIME_MULT`).
pub const FAIL_UNDO_TIME_MULT: u64 = 2;

/// What the IO layer must do after a call.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages for the link the packet arrived on.
    pub reply: Vec<BusMessage>,
    /// Messages for a node's outbound link.
    pub send: Vec<(Name, BusMessage)>,
    /// Messages for every node with an outbound link (not handshake nodes).
    pub broadcast: Vec<BusMessage>,
    /// Close the link the packet arrived on.
    pub close_link: bool,
    /// Close these nodes' outbound links (address changed, node removed, ...).
    pub drop_links: Vec<Name>,
    /// A handshake node got its real name: (old, new).
    pub renamed: Option<(Name, Name)>,
    /// A PUBLISH (false) or PUBLISHSHARD (true) from a known node, for local subscribers:
    /// (sharded, channel, message).
    pub publish: Option<(bool, Vec<u8>, Vec<u8>)>,
}

/// Where a packet came from.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    /// The node of an outbound link (None for an inbound link).
    pub node: Option<Name>,
    /// Peer IP of the connection.
    pub peer_ip: String,
    /// Our local IP on the connection.
    pub local_ip: String,
}

/// The header of a message from myself (`clusterBuildMessageHdr`).
pub fn header(st: &ClusterState, t: MsgType) -> Header {
    let me = st.me();
    // A replica announces its master's slots and configEpoch.
    let master = st.my_master().and_then(|m| st.nodes.get(&m));
    let mut h = Header::new(t, st.myself);
    h.port = st.settings.port;
    h.cport = st.settings.cport;
    h.flags = me.flags;
    h.current_epoch = st.current_epoch;
    match master {
        Some(m) => {
            h.myslots = m.slots.clone();
            h.config_epoch = m.config_epoch;
            h.slaveof = m.name;
        }
        None => {
            h.myslots = me.slots.clone();
            h.config_epoch = me.config_epoch;
            if let Some(s) = me.slaveof.filter(|_| !me.is_master()) {
                h.slaveof = s;
            }
        }
    }
    h.myip = st.settings.announce_ip.clone().unwrap_or_default();
    h.state = if st.ok { 0 } else { 1 };
    h.offset = me.repl_offset;
    // A master in a manual failover: writes are paused and `offset` is final.
    if me.is_master() && st.fo.paused_flag() {
        h.mflags[0] |= super::codec::mflags::PAUSED;
    }
    h
}

fn gossip_entry(n: &Node) -> GossipEntry {
    GossipEntry {
        nodename: n.name,
        ping_sent: (n.ping_sent / 1000) as u32,
        pong_received: (n.pong_received / 1000) as u32,
        ip: n.ip.clone(),
        port: n.port,
        cport: n.cport,
        flags: n.flags,
        pport: n.pport,
    }
}

/// A PING, PONG or MEET with gossip about other nodes (`clusterSendPing`): max(3, N/10)
/// random nodes (at most N - 2), skipping myself, PFAIL, handshake, noaddr and
/// link-less slot-less nodes, plus every PFAIL node. A PING sets `ping_sent` of `to`.
pub fn ping(st: &mut ClusterState, t: MsgType, to: Option<Name>, now: u64) -> BusMessage {
    let known = st.nodes.len();
    let freshnodes = known.saturating_sub(2);
    let wanted = (known / 10).max(3).min(freshnodes);
    let mut candidates: Vec<&Node> = st
        .nodes
        .values()
        .filter(|n| {
            n.name != st.myself && !n.has(F::PFAIL | F::HANDSHAKE | F::NOADDR) && (n.link_connected || n.numslots != 0)
        })
        .collect();
    fastrand::shuffle(&mut candidates);
    let mut entries: Vec<GossipEntry> = candidates.iter().take(wanted).map(|n| gossip_entry(n)).collect();
    entries.extend(st.nodes.values().filter(|n| n.has(F::PFAIL) && n.name != st.myself).map(gossip_entry));
    let mut extensions = Vec::new();
    if let Some(h) = st.settings.announce_hostname.clone().filter(|h| !h.is_empty()) {
        extensions.push(Extension::Hostname(h));
    }
    if t == MsgType::Ping {
        if let Some(n) = to.and_then(|n| st.nodes.get_mut(&n)) {
            n.ping_sent = now;
        }
    }
    BusMessage { header: header(st, t), body: Body::Gossip { entries, extensions } }
}

/// A FAIL message about `node`.
pub fn fail_message(st: &ClusterState, node: Name) -> BusMessage {
    BusMessage { header: header(st, MsgType::Fail), body: Body::Fail { nodename: node } }
}

/// An UPDATE message telling about `node`'s slots and epoch.
pub fn update_message(st: &ClusterState, node: &Node) -> BusMessage {
    BusMessage {
        header: header(st, MsgType::Update),
        body: Body::Update { config_epoch: node.config_epoch, nodename: node.name, slots: node.slots.clone() },
    }
}

/// Processes one decoded message (Redis's `clusterProcessPacket`).
pub fn process(st: &mut ClusterState, link: &LinkInfo, msg: &BusMessage, now: u64) -> Effects {
    let mut fx = Effects::default();
    let h = &msg.header;
    let t = h.msg_type;
    st.stats_received[t as usize] += 1;
    if t as i64 == DROP_PACKET_FILTER.load(Ordering::Relaxed) {
        tracing::warn!("Dropping packet that matches debug drop filter");
        return fx;
    }
    let sender_known = st.nodes.get(&h.sender).is_some_and(|n| !n.has(F::HANDSHAKE));
    let sender = if sender_known { Some(h.sender) } else { None };
    if let Some(s) = sender {
        let n = st.nodes.get_mut(&s).expect("known sender");
        n.data_received = now;
        if h.current_epoch > st.current_epoch {
            st.current_epoch = h.current_epoch;
            st.want(todo::SAVE_CONFIG);
        }
        let n = st.nodes.get_mut(&s).expect("known sender");
        if h.config_epoch > n.config_epoch && !h.is_replica() {
            n.config_epoch = h.config_epoch;
            st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
        }
        let n = st.nodes.get_mut(&s).expect("known sender");
        n.repl_offset = h.offset;
        failover::on_master_header(st, s, h);
    }

    match t {
        MsgType::Ping | MsgType::Pong | MsgType::Meet => process_gossip_msg(st, link, msg, sender, now, &mut fx),
        MsgType::Fail => {
            if let (Some(s), Body::Fail { nodename }) = (sender, &msg.body) {
                let me = st.myself;
                if let Some(failing) = st.nodes.get_mut(nodename) {
                    if !failing.has(F::FAIL) && failing.name != me {
                        tracing::info!("FAIL message received from {} about {}", name_str(&s), name_str(nodename));
                        failing.flags |= F::FAIL;
                        failing.flags &= !F::PFAIL;
                        failing.fail_time = now;
                        st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
                    }
                }
            }
        }
        MsgType::Update => {
            if let (Some(_), Body::Update { config_epoch, nodename, slots }) = (sender, &msg.body) {
                let Some(n) = st.nodes.get(nodename) else { return fx };
                if n.config_epoch >= *config_epoch {
                    return fx;
                }
                let name = n.name;
                if !n.is_master() {
                    set_node_as_master(st, name);
                }
                if let Some(n) = st.nodes.get_mut(&name) {
                    n.config_epoch = *config_epoch;
                }
                update_slots_config_with(st, name, *config_epoch, slots);
                st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
            }
        }
        MsgType::Publish | MsgType::PublishShard => {
            // Redis ignores messages from nodes it does not know.
            if let (Some(_), Body::Publish { channel, message }) = (sender, &msg.body) {
                fx.publish = Some((t == MsgType::PublishShard, channel.clone(), message.clone()));
            }
        }
        MsgType::FailoverAuthRequest => {
            if let Some(s) = sender {
                failover::on_auth_request(st, s, h, now, &mut fx);
            }
        }
        MsgType::FailoverAuthAck => {
            if let Some(s) = sender {
                failover::on_auth_ack(st, s, h);
            }
        }
        MsgType::MfStart => {
            if let Some(s) = sender {
                failover::on_mfstart(st, s, now);
            }
        }
        // Module messages are counted only.
        _ => {}
    }
    fx
}

fn process_gossip_msg(
    st: &mut ClusterState,
    link: &LinkInfo,
    msg: &BusMessage,
    sender: Option<Name>,
    now: u64,
    fx: &mut Effects,
) {
    let h = &msg.header;
    let t = h.msg_type;
    let Body::Gossip { entries, extensions } = &msg.body else { return };
    if t == MsgType::Ping || t == MsgType::Meet {
        // Learn my own IP from the connection unless it is announced.
        if st.settings.announce_ip.is_none() && (t == MsgType::Meet || st.me().ip.is_empty()) {
            let ip = link.local_ip.clone();
            if !ip.is_empty() && st.me().ip != ip {
                tracing::info!("IP address for this node updated to {}", ip);
                st.me_mut().ip = ip;
                st.want(todo::SAVE_CONFIG);
            }
        }
        if sender.is_none() && t == MsgType::Meet {
            // A MEET from a node we do not know: add it in handshake state; our own ping to it
            // will learn its name.
            let mut n = Node::new(crate::cluster::state::random_name(), F::HANDSHAKE, now);
            n.ip = if h.myip.is_empty() { link.peer_ip.clone() } else { h.myip.clone() };
            n.port = h.port;
            n.cport = h.cport;
            n.pport = h.pport;
            st.add_node(n);
            st.want(todo::SAVE_CONFIG);
            process_gossip_section(st, None, entries, now);
        }
        // Every PING and MEET gets a PONG.
        fx.reply.push(ping(st, MsgType::Pong, None, now));
    }

    if let Some(link_node) = link.node {
        let Some(ln) = st.nodes.get(&link_node) else { return };
        if ln.has(F::HANDSHAKE) {
            if t != MsgType::Pong {
                return;
            }
            if let Some(s) = sender {
                // We already know this node under its real name: refresh its address and drop
                // the handshake entry.
                update_address(st, s, link, h, fx);
                st.del_node(link_node);
                fx.drop_links.push(link_node);
                st.want(todo::SAVE_CONFIG);
                return;
            }
            st.rename_node(link_node, h.sender);
            tracing::debug!("Handshake with node {} completed.", name_str(&h.sender));
            if let Some(n) = st.nodes.get_mut(&h.sender) {
                n.flags &= !F::HANDSHAKE;
                n.flags |= h.flags & (F::MASTER | F::SLAVE);
            }
            fx.renamed = Some((link_node, h.sender));
            st.want(todo::SAVE_CONFIG);
        } else if ln.name != h.sender {
            tracing::debug!(
                "PONG contains mismatching sender ID. About node {} added {} ms ago, having flags {}",
                name_str(&ln.name),
                now.saturating_sub(ln.ctime),
                ln.flags
            );
            let n = st.nodes.get_mut(&link_node).expect("link node");
            n.flags |= F::NOADDR;
            n.ip.clear();
            n.port = 0;
            n.cport = 0;
            fx.close_link = true;
            st.want(todo::SAVE_CONFIG);
            return;
        }
    }

    // Re-read the sender: a handshake may just have completed.
    let sender = sender.or_else(|| if fx.renamed.is_some() { Some(h.sender) } else { None });

    if let Some(s) = sender {
        let n = st.nodes.get_mut(&s).expect("sender");
        if h.flags & F::NOFAILOVER != 0 {
            n.flags |= F::NOFAILOVER;
        } else {
            n.flags &= !F::NOFAILOVER;
        }
        // The hostname extension; its absence clears the hostname.
        let host = extensions.iter().find_map(|e| match e {
            Extension::Hostname(h) if !h.is_empty() => Some(h.clone()),
            _ => None,
        });
        if n.hostname != host {
            n.hostname = host;
            st.want(todo::SAVE_CONFIG);
        }
        if t == MsgType::Ping {
            update_address(st, s, link, h, fx);
        }
    }

    // A PONG on our link: the node is alive.
    if let (Some(ln), MsgType::Pong) = (link.node.map(|n| fx.renamed.map(|r| r.1).unwrap_or(n)), t) {
        if let Some(n) = st.nodes.get_mut(&ln) {
            n.pong_received = now;
            n.ping_sent = 0;
            if n.has(F::PFAIL) {
                n.flags &= !F::PFAIL;
                st.want(todo::UPDATE_STATE);
            } else if n.has(F::FAIL) {
                clear_failure_if_needed(st, ln, now);
            }
        }
    }

    let Some(s) = sender else { return };

    // Role: master, or replica of `slaveof`.
    if !h.is_replica() {
        set_node_as_master(st, s);
    } else {
        let n = st.nodes.get_mut(&s).expect("sender");
        if n.is_master() {
            tracing::info!("Node {} is now a replica of {}", name_str(&s), name_str(&h.slaveof));
            st.del_node_slots(s);
            let n = st.nodes.get_mut(&s).expect("sender");
            n.flags &= !(F::MASTER | F::MIGRATE_TO);
            n.flags |= F::SLAVE;
            st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
        }
        let n = st.nodes.get_mut(&s).expect("sender");
        if n.slaveof != Some(h.slaveof) && st.nodes.contains_key(&h.slaveof) {
            let n = st.nodes.get_mut(&s).expect("sender");
            n.slaveof = Some(h.slaveof);
            // `clusterNodeAddSlave`: a master that had a replica may get one by migration.
            if let Some(m) = st.nodes.get_mut(&h.slaveof) {
                m.flags |= F::MIGRATE_TO;
            }
            st.want(todo::SAVE_CONFIG);
        }
    }

    // Slots: a master announcing slots differently from what we know.
    let sender_master = if h.is_replica() { Some(h.slaveof) } else { Some(s) };
    let dirty = sender_master.and_then(|m| st.nodes.get(&m)).map(|m| m.slots[..] != h.myslots[..]).unwrap_or(false);
    if !h.is_replica() && dirty {
        update_slots_config_with(st, s, h.config_epoch, &h.myslots);
    }
    // The sender claims a slot whose owner has a newer epoch: tell it (first such slot only).
    if dirty {
        for j in 0..SLOTS {
            if !slot_bit(&h.myslots, j) {
                continue;
            }
            let Some(owner) = st.slots[j] else { continue };
            if owner == s {
                continue;
            }
            if let Some(o) = st.nodes.get(&owner) {
                if o.config_epoch > h.config_epoch {
                    let m = update_message(st, o);
                    st.stats_sent[MsgType::Update as usize] += 1;
                    fx.send.push((s, m));
                    break;
                }
            }
        }
    }
    // configEpoch collision between two masters.
    if !h.is_replica() && st.me().is_master() {
        handle_epoch_collision(st, s);
    }
    process_gossip_section(st, Some(s), entries, now);
}

/// Updates a node's address from a packet if it changed (`nodeUpdateAddressIfNeeded`).
fn update_address(st: &mut ClusterState, name: Name, link: &LinkInfo, h: &Header, fx: &mut Effects) {
    if name == st.myself {
        return;
    }
    let ip = if h.myip.is_empty() { link.peer_ip.clone() } else { h.myip.clone() };
    let Some(n) = st.nodes.get_mut(&name) else { return };
    if n.ip == ip && n.port == h.port && n.cport == h.cport && n.pport == h.pport {
        return;
    }
    n.ip = ip;
    n.port = h.port;
    n.cport = h.cport;
    n.pport = h.pport;
    n.flags &= !F::NOADDR;
    tracing::info!("Address updated for node {} (), now {}:{}", name_str(&name), n.ip, n.port);
    fx.drop_links.push(name);
    st.want(todo::SAVE_CONFIG);
}

/// Marks a node as a master (`clusterSetNodeAsMaster`); a promoted replica may later take a
/// replica by migration (MIGRATE_TO).
fn set_node_as_master(st: &mut ClusterState, name: Name) {
    let me = st.myself;
    let Some(n) = st.nodes.get_mut(&name) else { return };
    if n.is_master() {
        return;
    }
    if n.slaveof.is_some() && name != me {
        n.flags |= F::MIGRATE_TO;
    }
    n.flags &= !F::SLAVE;
    n.flags |= F::MASTER;
    n.slaveof = None;
    st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE);
}

/// Rebinds slots that `sender` claims with a newer epoch (`clusterUpdateSlotsConfigWith`); if
/// that takes every slot of my master (or mine), I become the sender's replica (with
/// `cluster-allow-replica-migration`, or when the sender took exactly our slots); a replica
/// whose master became a replica follows its grandmaster.
pub fn update_slots_config_with(st: &mut ClusterState, sender: Name, epoch: u64, slots: &[u8; SLOT_BYTES]) {
    if sender == st.myself {
        tracing::warn!("Discarding UPDATE message about myself.");
        return;
    }
    let cur_master = if st.me().is_master() { Some(st.myself) } else { st.me().slaveof };
    let mut new_master = None;
    let mut sender_slots = 0;
    let mut migrated_our_slots = 0;
    for j in 0..SLOTS {
        if !slot_bit(slots, j) {
            continue;
        }
        sender_slots += 1;
        let owner = st.slots[j];
        if owner == Some(sender) || st.importing.contains_key(&(j as u16)) {
            continue;
        }
        let stale = match owner.and_then(|o| st.nodes.get(&o)) {
            None => true,
            Some(o) => o.config_epoch < epoch,
        };
        if stale {
            if owner == Some(st.myself) {
                st.lost[j] = true;
            }
            if owner.is_some() && owner == cur_master {
                new_master = Some(sender);
                migrated_our_slots += 1;
            }
            st.del_slot(j);
            st.add_slot(j, sender);
            st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
        }
    }
    let cur_empty = cur_master.and_then(|m| st.nodes.get(&m)).is_some_and(|m| m.numslots == 0);
    let allowed = st.settings.allow_replica_migration || sender_slots == migrated_our_slots;
    let grandmaster = st
        .me()
        .slaveof
        .filter(|_| !st.me().is_master())
        .and_then(|m| st.nodes.get(&m))
        .filter(|m| !m.is_master())
        .and_then(|m| m.slaveof)
        .filter(|g| *g != st.myself && st.nodes.contains_key(g));
    if let (Some(nm), true, true) = (new_master, cur_empty, allowed) {
        tracing::warn!("Configuration change detected. Reconfiguring myself as a replica of {}", name_str(&nm));
        st.set_my_master(nm);
        st.want(todo::FSYNC_CONFIG | todo::BROADCAST_PONG);
    } else if let Some(g) = grandmaster {
        tracing::warn!("I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}", name_str(&g));
        st.set_my_master(g);
        st.want(todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG);
    }
}

fn handle_epoch_collision(st: &mut ClusterState, sender: Name) {
    let Some(s) = st.nodes.get(&sender) else { return };
    let me = st.me();
    if s.config_epoch != me.config_epoch || !s.is_master() || !me.is_master() {
        return;
    }
    // Only the node with the smaller id moves.
    if sender <= st.myself {
        return;
    }
    st.current_epoch += 1;
    let e = st.current_epoch;
    st.me_mut().config_epoch = e;
    st.want(todo::SAVE_CONFIG | todo::FSYNC_CONFIG);
    tracing::warn!("WARNING: configEpoch collision with node {}. configEpoch set to {}", name_str(&sender), e);
}

/// `clusterProcessGossipSection`.
fn process_gossip_section(st: &mut ClusterState, sender: Option<Name>, entries: &[GossipEntry], now: u64) {
    let sender_is_master = sender.and_then(|s| st.nodes.get(&s)).is_some_and(|n| n.is_master());
    for g in entries {
        if st.nodes.contains_key(&g.nodename) {
            let name = g.nodename;
            if let (Some(s), true) = (sender, sender_is_master) {
                if name != st.myself {
                    let n = st.nodes.get_mut(&name).expect("known");
                    if g.flags & (F::FAIL | F::PFAIL) != 0 {
                        match n.fail_reports.iter_mut().find(|(r, _)| *r == s) {
                            Some(r) => r.1 = now,
                            None => {
                                n.fail_reports.push((s, now));
                                tracing::debug!(
                                    "Node {} reported node {} as not reachable.",
                                    name_str(&s),
                                    name_str(&name)
                                );
                            }
                        }
                        mark_failing_if_needed(st, name, now);
                    } else {
                        n.fail_reports.retain(|(r, _)| *r != s);
                    }
                }
            }
            let reports = st.failure_reports(&name, now);
            let n = st.nodes.get_mut(&name).expect("known");
            if g.flags & (F::FAIL | F::PFAIL) == 0 && n.ping_sent == 0 && reports == 0 {
                let pongtime = g.pong_received as u64 * 1000;
                if pongtime <= now + 500 && pongtime > n.pong_received {
                    n.pong_received = pongtime;
                }
            }
            if n.has(F::FAIL | F::PFAIL)
                && g.flags & (F::NOADDR | F::FAIL | F::PFAIL) == 0
                && name != st.myself
                && (!n.ip.eq_ignore_ascii_case(&g.ip) || n.port != g.port || n.cport != g.cport)
                && !g.ip.is_empty()
            {
                n.ip = g.ip.clone();
                n.port = g.port;
                n.cport = g.cport;
                n.pport = g.pport;
                n.flags &= !F::NOADDR;
                n.link_connected = false;
            }
        } else if sender.is_some()
            && g.flags & F::NOADDR == 0
            && !st.blacklisted(&g.nodename, now / 1000)
            && g.nodename.iter().all(|c| c.is_ascii_hexdigit())
        {
            let mut n = Node::new(g.nodename, g.flags & !(F::MYSELF | F::PFAIL | F::FAIL | F::MEET), now);
            n.ip = g.ip.clone();
            n.port = g.port;
            n.cport = g.cport;
            n.pport = g.pport;
            if n.flags & (F::MASTER | F::SLAVE) == 0 {
                n.flags |= F::MASTER;
            }
            st.add_node(n);
            st.want(todo::SAVE_CONFIG);
        }
    }
}

/// PFAIL -> FAIL once enough masters agree (`markNodeAsFailingIfNeeded`).
fn mark_failing_if_needed(st: &mut ClusterState, name: Name, now: u64) {
    let quorum = st.size / 2 + 1;
    let Some(n) = st.nodes.get(&name) else { return };
    if !n.has(F::PFAIL) || n.has(F::FAIL) {
        return;
    }
    let mut failures = st.failure_reports(&name, now);
    if st.me().is_master() {
        failures += 1;
    }
    if failures < quorum {
        return;
    }
    tracing::info!("Marking node {} as failing (quorum reached).", name_str(&name));
    let n = st.nodes.get_mut(&name).expect("known");
    n.flags &= !F::PFAIL;
    n.flags |= F::FAIL;
    n.fail_time = now;
    st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    if st.me().is_master() {
        st.pending_fail.push(name);
    }
}

/// Clears FAIL when it is safe (`clearNodeFailureIfNeeded`).
fn clear_failure_if_needed(st: &mut ClusterState, name: Name, now: u64) {
    let timeout = st.settings.node_timeout;
    let Some(n) = st.nodes.get_mut(&name) else { return };
    if !n.has(F::FAIL) {
        return;
    }
    if !n.is_master() || n.numslots == 0 {
        tracing::info!(
            "Clear FAIL state for node {}: {} is reachable again.",
            name_str(&name),
            if n.is_master() { "master without slots" } else { "replica" }
        );
        n.flags &= !F::FAIL;
        st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    } else if now.saturating_sub(n.fail_time) > timeout * FAIL_UNDO_TIME_MULT {
        tracing::info!(
            "Clear FAIL state for node {}: is reachable again and nobody is serving its slots after some time.",
            name_str(&name)
        );
        n.flags &= !F::FAIL;
        st.want(todo::UPDATE_STATE | todo::SAVE_CONFIG);
    }
}

/// What the cron wants from the IO layer besides messages.
#[derive(Debug, Default)]
pub struct CronPlan {
    /// Messages to put on nodes' links, and broadcasts.
    pub fx: Effects,
    /// Nodes whose outbound link should be freed and re-created.
    pub reconnect: Vec<Name>,
}

/// One run of the failure detector and pinger (`clusterCron`, every 100 ms). `iteration`
/// counts calls; `linked(n)` tells whether `n` has an established outbound link.
pub fn cron(st: &mut ClusterState, now: u64, iteration: u64, link_age: &dyn Fn(&Name) -> Option<u64>) -> CronPlan {
    let mut plan = CronPlan::default();
    let timeout = st.settings.node_timeout;
    let handshake_timeout = timeout.max(1000);
    // Handshakes that never completed.
    let stale: Vec<Name> = st
        .nodes
        .values()
        .filter(|n| n.has(F::HANDSHAKE) && now.saturating_sub(n.ctime) > handshake_timeout)
        .map(|n| n.name)
        .collect();
    for n in stale {
        st.del_node(n);
        plan.fx.drop_links.push(n);
    }
    // Every second, ping the node with the oldest pong among five random ones.
    if iteration % 10 == 0 {
        let mut cands: Vec<&Node> = st
            .nodes
            .values()
            .filter(|n| n.name != st.myself && n.ping_sent == 0 && !n.has(F::HANDSHAKE) && link_age(&n.name).is_some())
            .collect();
        fastrand::shuffle(&mut cands);
        if let Some(target) = cands.iter().take(5).min_by_key(|n| n.pong_received).map(|n| n.name) {
            let m = ping(st, MsgType::Ping, Some(target), now);
            plan.fx.send.push((target, m));
        }
    }
    let names: Vec<Name> = st.nodes.keys().copied().collect();
    let mut update = false;
    for name in names {
        if name == st.myself {
            continue;
        }
        let Some(n) = st.nodes.get(&name) else { continue };
        if n.has(F::NOADDR | F::HANDSHAKE) {
            continue;
        }
        let age = link_age(&name);
        // A link with a ping pending for half the timeout and no data: reconnect.
        if let Some(age) = age {
            if age > timeout
                && n.ping_sent != 0
                && now.saturating_sub(n.ping_sent) > timeout / 2
                && now.saturating_sub(n.data_received) > timeout / 2
            {
                plan.reconnect.push(name);
            }
        }
        if age.is_some() && n.ping_sent == 0 && now.saturating_sub(n.pong_received) > timeout / 2 {
            let m = ping(st, MsgType::Ping, Some(name), now);
            plan.fx.send.push((name, m));
            continue;
        }
        let n = st.nodes.get(&name).expect("known");
        if n.ping_sent == 0 {
            continue;
        }
        let delay = now.saturating_sub(n.ping_sent).min(now.saturating_sub(n.data_received));
        if delay > timeout && !n.has(F::PFAIL | F::FAIL) {
            tracing::debug!("*** NODE {} possibly failing", name_str(&name));
            st.nodes.get_mut(&name).expect("known").flags |= F::PFAIL;
            update = true;
        }
    }
    if update {
        // Push the news at once (a PONG carries every PFAIL node in its gossip and, unlike a
        // PING, leaves the receivers' pending-ping times alone): the other masters' reports
        // meet within a cron tick instead of at their next scheduled ping, so FAIL follows
        // PFAIL by ~100 ms rather than up to node-timeout/2. Redis waits for the next ping.
        st.want(todo::UPDATE_STATE | todo::BROADCAST_PONG);
    }
    // PFAIL nodes may now have enough reports.
    let pfail: Vec<Name> = st.nodes.values().filter(|n| n.has(F::PFAIL)).map(|n| n.name).collect();
    for n in pfail {
        mark_failing_if_needed(st, n, now);
    }
    failover::cron(st, now, &mut plan.fx);
    st.want(todo::UPDATE_STATE);
    plan
}

/// Messages owed after processing: the election step an event asked for (and a pending
/// MFSTART), FAIL broadcasts for nodes just marked failing, and the PONG broadcast a
/// configuration change asked for.
pub fn drain_pending(st: &mut ClusterState, now: u64, fx: &mut Effects) {
    failover::before_sleep(st, now, fx);
    let broadcast_pong = st.todo & todo::BROADCAST_PONG != 0;
    st.todo &= !todo::BROADCAST_PONG;
    for n in std::mem::take(&mut st.pending_fail) {
        fx.broadcast.push(fail_message(st, n));
    }
    if broadcast_pong {
        fx.broadcast.push(ping(st, MsgType::Pong, None, now));
    }
}
