//! The CLUSTER subcommands that only describe: INFO, NODES, MYID, SLOTS, SHARDS,
//! REPLICAS/SLAVES, COUNT-FAILURE-REPORTS, LINKS, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT and
//! HELP, with Redis 7.0's reply shapes (`clusterReplyMultiBulkSlots`, `clusterReplyShards`,
//! `addReplyClusterLinksDescription`, the CLUSTER INFO text).
//!
//! The state is read under the cluster lock; the two key-counting subcommands run on the shard
//! that owns the slot ([`Plan::OnSlot`]).

use super::cluster::{cluster_of, disabled};
use super::ctx::{reply, ClientCtx, ShardState};
use super::errors;
use super::spec::Plan;
use super::util::parse_i64;
use crate::cluster::bus::{MsgType, NodeFlags as F};
use crate::cluster::state::{name_str, ClusterState, Node};
use crate::cluster::SLOTS;
use crate::protocol::Reply;
use bytes::Bytes;

/// `cluster-preferred-endpoint-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The IP.
    Ip,
    /// The announced hostname.
    Hostname,
    /// Unknown (`unknown-endpoint`).
    Unknown,
}

fn endpoint_type(ctx: &ClientCtx<'_>) -> Endpoint {
    match ctx.node().config().get("cluster-preferred-endpoint-type") {
        Some("hostname") => Endpoint::Hostname,
        Some("unknown-endpoint") => Endpoint::Unknown,
        _ => Endpoint::Ip,
    }
}

fn s(t: &str) -> Reply {
    Reply::bulk(t.as_bytes())
}

fn hostname(n: &Node) -> Option<&str> {
    n.hostname.as_deref().filter(|h| !h.is_empty())
}

/// CLUSTER INFO text (`\r\n` line endings, fields in Redis's order).
pub fn info_text(st: &ClusterState) -> String {
    use std::fmt::Write as _;
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for owner in st.slots.iter().flatten() {
        let Some(n) = st.nodes.get(owner) else { continue };
        assigned += 1;
        if n.has(F::FAIL) {
            fail += 1;
        } else if n.has(F::PFAIL) {
            pfail += 1;
        } else {
            ok += 1;
        }
    }
    let me = st.me();
    let my_epoch = match st.my_master().and_then(|m| st.nodes.get(&m)) {
        Some(m) => m.config_epoch,
        None => me.config_epoch,
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:{}\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
        if st.ok { "ok" } else { "fail" },
        assigned,
        ok,
        pfail,
        fail,
        st.nodes.len(),
        st.size,
        st.current_epoch,
        my_epoch
    );
    for (counts, dir) in [(&st.stats_sent, "sent"), (&st.stats_received, "received")] {
        let mut total = 0u64;
        for (i, &n) in counts.iter().enumerate() {
            let Some(t) = MsgType::from_u16(i as u16) else { continue };
            if n == 0 {
                continue;
            }
            total += n;
            let _ = write!(out, "cluster_stats_messages_{}_{}:{}\r\n", t.stats_name(), dir, n);
        }
        let _ = write!(out, "cluster_stats_messages_{dir}:{total}\r\n");
    }
    let _ = write!(out, "total_cluster_links_buffer_limit_exceeded:{}\r\n", st.links_buffer_limit_exceeded);
    out
}

pub(super) fn info(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    reply(Reply::Verbatim(Bytes::from(c.with(|st| info_text(st)))))
}

pub(super) fn nodes(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    reply(Reply::Verbatim(Bytes::from(c.with(|st| st.nodes_text()))))
}

pub(super) fn myid(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    reply(c.with(|st| s(name_str(&st.myself))))
}

/// `addNodeToNodeReply`: `[endpoint, port, id, {extra endpoints}]`.
fn slots_node(n: &Node, ep: Endpoint) -> Reply {
    let host = hostname(n);
    let first = match ep {
        Endpoint::Ip => s(&n.ip),
        Endpoint::Hostname => s(host.unwrap_or("?")),
        Endpoint::Unknown => Reply::Nil,
    };
    let mut meta = Vec::new();
    if ep != Endpoint::Ip {
        meta.push((s("ip"), s(&n.ip)));
    }
    if let (true, Some(h)) = (ep != Endpoint::Hostname, host) {
        meta.push((s("hostname"), s(h)));
    }
    Reply::Array(vec![first, Reply::Int(n.port as i64), s(name_str(&n.name)), Reply::Map(meta)])
}

/// `isReplicaAvailable`: not failed, and it has replicated something (a replica reports 0
/// until its first sync is loaded, and again during every full sync). This node's own offset
/// is the one its bus messages carry (refreshed by the bus every cron and message).
fn replica_available(n: &Node) -> bool {
    !n.has(F::FAIL) && n.repl_offset != 0
}

/// CLUSTER SLOTS reply: one entry per run of slots with the same owner.
pub fn slots_reply(st: &ClusterState, ep: Endpoint) -> Reply {
    let mut out = Vec::new();
    let mut s0 = 0;
    while s0 < SLOTS {
        let Some(owner) = st.slots[s0] else {
            s0 += 1;
            continue;
        };
        let mut end = s0;
        while end + 1 < SLOTS && st.slots[end + 1] == Some(owner) {
            end += 1;
        }
        if let Some(n) = st.nodes.get(&owner) {
            let mut e = vec![Reply::Int(s0 as i64), Reply::Int(end as i64), slots_node(n, ep)];
            for r in st.replicas_of(&owner) {
                if replica_available(r) {
                    e.push(slots_node(r, ep));
                }
            }
            out.push(Reply::Array(e));
        }
        s0 = end + 1;
    }
    Reply::Array(out)
}

pub(super) fn slots(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let ep = endpoint_type(ctx);
    reply(c.with(|st| slots_reply(st, ep)))
}

/// `addNodeDetailsToShardReply`.
fn shard_node(n: &Node, ep: Endpoint) -> Reply {
    let mut m = vec![(s("id"), s(name_str(&n.name)))];
    if n.port != 0 {
        m.push((s("port"), Reply::Int(n.port as i64)));
    }
    m.push((s("ip"), s(&n.ip)));
    let endpoint = match ep {
        Endpoint::Ip => n.ip.as_str(),
        Endpoint::Hostname => hostname(n).unwrap_or("?"),
        Endpoint::Unknown => "",
    };
    m.push((s("endpoint"), s(endpoint)));
    if let Some(h) = hostname(n) {
        m.push((s("hostname"), s(h)));
    }
    // This node's own: the one its bus messages carry (see `replica_available`).
    let offset = n.repl_offset;
    let replica = !n.is_master();
    m.push((s("role"), s(if replica { "replica" } else { "master" })));
    m.push((s("replication-offset"), Reply::Int(offset as i64)));
    let health = if n.has(F::FAIL) {
        "fail"
    } else if replica && offset == 0 {
        "loading"
    } else {
        "online"
    };
    m.push((s("health"), s(health)));
    Reply::Map(m)
}

/// CLUSTER SHARDS reply: one map per master, slot ranges flattened.
pub fn shards_reply(st: &ClusterState, ep: Endpoint) -> Reply {
    let mut out = Vec::new();
    for n in st.nodes_in_order().into_iter().filter(|n| n.is_master()) {
        let ranges = crate::cluster::nodes::ranges(|x| st.slots[x] == Some(n.name));
        let flat = ranges.iter().flat_map(|&(a, b)| [Reply::Int(a as i64), Reply::Int(b as i64)]).collect();
        let mut nodes = vec![shard_node(n, ep)];
        nodes.extend(st.replicas_of(&n.name).into_iter().map(|r| shard_node(r, ep)));
        out.push(Reply::Map(vec![(s("slots"), Reply::Array(flat)), (s("nodes"), Reply::Array(nodes))]));
    }
    Reply::Array(out)
}

pub(super) fn shards(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let ep = endpoint_type(ctx);
    reply(c.with(|st| shards_reply(st, ep)))
}

pub(super) fn replicas(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    reply(c.with(|st| match st.lookup_or_err(&args[2]) {
        Err(e) => Reply::error(e),
        Ok(n) if st.nodes[&n].has(F::SLAVE) => Reply::err("ERR The specified node is not a master"),
        Ok(n) => Reply::Array(st.replicas_of(&n).into_iter().map(|r| s(&st.describe(r).format())).collect()),
    }))
}

pub(super) fn count_failure_reports(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let now = crate::storage::now_ms();
    reply(c.with(|st| match st.lookup_or_err(&args[2]) {
        Err(e) => Reply::error(e),
        Ok(n) => Reply::Int(st.failure_reports(&n, now) as i64),
    }))
}

/// CLUSTER LINKS: every bus link, per node the one we opened (`to`) and the one it opened
/// to us (`from`), as Redis's `addReplyClusterLinksDescription`. The send buffer is what the
/// link's writer has not written yet (as of the bus's last cron); a link with some waits to
/// write too (`rw`).
pub(super) fn links(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(c) = cluster_of(ctx) else { return disabled() };
    let link = |dir: &str, name: &str, ctime: u64, queued: usize| {
        Reply::Map(vec![
            (s("direction"), s(dir)),
            (s("node"), s(name)),
            (s("create-time"), Reply::Int(ctime as i64)),
            (s("events"), s(if queued > 0 { "rw" } else { "r" })),
            (s("send-buffer-allocated"), Reply::Int(queued as i64)),
            (s("send-buffer-used"), Reply::Int(queued as i64)),
        ])
    };
    reply(c.with(|st| {
        let mut links = Vec::new();
        for n in st.nodes_in_order() {
            if n.name == st.myself {
                continue;
            }
            if n.link_connected {
                links.push(link("to", name_str(&n.name), n.link_ctime, n.link_queued));
            }
            if n.inbound_ctime != 0 {
                links.push(link("from", name_str(&n.name), n.inbound_ctime, n.inbound_queued));
            }
        }
        Reply::Array(links)
    }))
}

pub(super) fn keyslot(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    reply(Reply::Int(crate::cluster::key_slot(&args[2]) as i64))
}

/// The slot argument of COUNTKEYSINSLOT / GETKEYSINSLOT, already validated by the handler.
fn slot_at(args: &[Bytes]) -> u16 {
    parse_i64(&args[2]).map_or(0, |s| s.clamp(0, SLOTS as i64 - 1) as u16)
}

fn count_in_slot(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    Reply::Int(shard.ks.dbs[0].slot_len(slot_at(args)) as i64)
}

pub(super) fn countkeysinslot(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    match parse_i64(&args[2]) {
        None => reply(Reply::err(errors::NOT_INTEGER)),
        Some(x) if !(0..SLOTS as i64).contains(&x) => reply(Reply::err("ERR Invalid slot")),
        Some(x) => Plan::OnSlot { slot: x as u16, run: count_in_slot, then: Box::new(|_, r| r) },
    }
}

fn keys_in_slot(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let max = args.get(3).and_then(|a| parse_i64(a)).unwrap_or(0).max(0) as usize;
    let keys = match shard.ks.dbs[0].slot_table(slot_at(args)) {
        Some(t) => t.iter().take(max).map(|(k, _)| Reply::bulk(k)).collect(),
        None => Vec::new(),
    };
    Reply::Array(keys)
}

pub(super) fn getkeysinslot(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    let (Some(slot), Some(max)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return reply(Reply::err(errors::NOT_INTEGER));
    };
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return reply(Reply::err("ERR Invalid slot or number of keys"));
    }
    Plan::OnSlot { slot: slot as u16, run: keys_in_slot, then: Box::new(|_, r| r) }
}

pub(super) fn help(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if cluster_of(ctx).is_none() {
        return disabled();
    }
    const LINES: &[&str] = &[
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ADDSLOTS <slot> [<slot> ...]",
        "    Assign slots to current node.",
        "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Assign slots which are between <start-slot> and <end-slot> to current node.",
        "BUMPEPOCH",
        "    Advance the cluster config epoch.",
        "COUNT-FAILURE-REPORTS <node-id>",
        "    Return number of failure reports for <node-id>.",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "DELSLOTS <slot> [<slot> ...]",
        "    Delete slots information from current node.",
        "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
        "FAILOVER [FORCE|TAKEOVER]",
        "    Promote current replica node to being a master.",
        "FORGET <node-id>",
        "    Remove a node from the cluster.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "FLUSHSLOTS",
        "    Delete current node own slots information.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MEET <ip> <port> [<bus-port>]",
        "    Connect nodes into a working cluster.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "REPLICATE <node-id>",
        "    Configure current node as replica to <node-id>.",
        "RESET [HARD|SOFT]",
        "    Reset current node (default: soft).",
        "SET-CONFIG-EPOCH <epoch>",
        "    Set config epoch of current node.",
        "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
        "    Set slot state.",
        "REPLICAS <node-id>",
        "    Return <node-id> replicas.",
        "SAVECONFIG",
        "    Force saving cluster configuration on disk.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "LINKS",
        "    Return information about all network links between this node and its peers.",
        "    Output format is an array where each array element is a map containing attributes of a link",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(LINES.iter().map(|l| Reply::status(l)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::{random_name, ClusterSettings};

    #[test]
    fn info_lists_nonzero_message_counters_in_type_order() {
        let mut st = ClusterState::new(random_name(), ClusterSettings::default(), 1);
        st.stats_sent[MsgType::Pong as usize] = 3;
        st.stats_sent[MsgType::Ping as usize] = 2;
        st.stats_sent[MsgType::PublishShard as usize] = 1;
        st.stats_received[MsgType::Meet as usize] = 1;
        st.stats_received[MsgType::FailoverAuthAck as usize] = 4;
        let text = info_text(&st);
        let want = "cluster_stats_messages_ping_sent:2\r\ncluster_stats_messages_pong_sent:3\r\ncluster_stats_messages_publishshard_sent:1\r\ncluster_stats_messages_sent:6\r\ncluster_stats_messages_meet_received:1\r\ncluster_stats_messages_auth-ack_received:4\r\ncluster_stats_messages_received:5\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n";
        assert!(text.ends_with(want), "{text}");
        assert!(text.starts_with("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"), "{text}");
    }

    #[test]
    fn slots_pfail_and_fail_are_counted_by_owner_flags() {
        let mut st = ClusterState::new(random_name(), ClusterSettings::default(), 1);
        let (a, b) = (random_name(), random_name());
        st.add_node(Node::new(a, F::MASTER | F::PFAIL, 1));
        st.add_node(Node::new(b, F::MASTER | F::FAIL, 1));
        let me = st.myself;
        st.add_slot(0, me);
        st.add_slot(1, a);
        st.add_slot(2, b);
        st.add_slot(3, b);
        let text = info_text(&st);
        assert!(
            text.contains("cluster_slots_assigned:4\r\ncluster_slots_ok:1\r\ncluster_slots_pfail:1\r\ncluster_slots_fail:2\r\ncluster_known_nodes:3\r\n"),
            "{text}"
        );
    }
}
