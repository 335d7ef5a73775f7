//! The cluster bus at run time, on the control executor: the listener on the bus port, one
//! outbound link per known node (connect, first PING or MEET, reconnect), inbound links, and
//! the 100 ms cron. The protocol itself is `cluster::bus::gossip` (sans-IO); this file only
//! moves bytes and timers.
//!
//! Each link is a reader task and a writer task over one socket (`futures_lite::io::split`);
//! messages for a link go through an unbounded local queue, so processing a packet never
//! awaits. Closing a link shuts the socket down, which ends both tasks.

use crate::cluster::bus::codec::{BusMessage, DecodeError, MsgType};
use crate::cluster::bus::gossip::{self, Effects, LinkInfo};
use crate::cluster::bus::NodeFlags as F;
use crate::cluster::failover::ReplView;
use crate::cluster::state::{name_str, ClusterState, Name};
use crate::cluster::Cluster;
use crate::cmd::NodeInfo;
use futures_channel::mpsc;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use glommio::net::{TcpListener, TcpStream};
use hashbrown::HashMap;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Cron period (Redis runs clusterCron 10 times a second).
const CRON_MS: u64 = 100;
/// How long an inbound peer may take over its TLS handshake (tls-cluster).
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Largest bus message accepted (bigger `totlen` closes the link).
const MAX_MESSAGE: usize = 1 << 30;

/// A link's writer queue and the bytes in it not written yet (Redis's send buffer, which
/// `cluster-link-sendbuf-limit` bounds).
#[derive(Clone)]
struct LinkTx {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Rc<std::cell::Cell<usize>>,
}

impl LinkTx {
    /// A queue and the receiver its writer task takes.
    fn new() -> (LinkTx, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded();
        (LinkTx { tx, queued: Rc::default() }, rx)
    }

    fn send(&self, m: Vec<u8>) {
        let n = m.len();
        if self.tx.unbounded_send(m).is_ok() {
            self.queued.set(self.queued.get() + n);
        }
    }
}

/// An outbound link to a node.
struct OutLink {
    /// Distinguishes successive links to the same node.
    id: u64,
    /// Writer queue (None while connecting).
    tx: Option<LinkTx>,
    /// Socket fd once connected (to shut it down).
    fd: Option<i32>,
    /// When the link was created (ms).
    created: u64,
    /// The node's current name (changes when a handshake completes).
    name: Rc<RefCell<Name>>,
}

/// An inbound link once a message on it named its node.
struct InLink {
    id: u64,
    fd: i32,
    queued: Rc<std::cell::Cell<usize>>,
}

#[derive(Default)]
struct Links {
    out: HashMap<Name, OutLink>,
    /// Inbound links by the node they come from (one per node, as Redis keeps it).
    inbound: HashMap<Name, InLink>,
    next_id: u64,
}

impl Links {
    fn close(&mut self, name: &Name) {
        if let Some(l) = self.out.remove(name) {
            if let Some(fd) = l.fd {
                // SAFETY: shutting down a socket fd the link task still owns; both its tasks
                // then see EOF/errors and end, dropping the stream.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
        }
    }
    /// Shuts down the inbound link from `name` (its task then ends and forgets it).
    fn close_inbound(&mut self, name: &Name) {
        if let Some(l) = self.inbound.get(name) {
            // SAFETY: as in `close`: the socket is still owned by the inbound task.
            unsafe { libc::shutdown(l.fd, libc::SHUT_RDWR) };
        }
    }
    fn age(&self, name: &Name, now: u64) -> Option<u64> {
        self.out.get(name).filter(|l| l.tx.is_some()).map(|l| now.saturating_sub(l.created))
    }
}

struct Bus {
    cluster: Arc<Cluster>,
    node: Arc<NodeInfo>,
    /// Shards answering the control core (a stuck shard silences the bus).
    live: Rc<super::liveness::Liveness>,
    /// cluster-node-timeout as of the last cron tick (ms).
    node_timeout: std::cell::Cell<u64>,
    links: RefCell<Links>,
    /// PUBLISH / PUBLISHSHARD received from other nodes, for this node's shards.
    deliver: mpsc::UnboundedSender<super::bus_publish::Publish>,
}

/// Runs the bus until the process exits. `mesh` reaches the `nshards` data shards.
pub async fn run(
    cluster: Arc<Cluster>,
    node: Arc<NodeInfo>,
    listen_fds: Vec<i32>,
    mesh: crate::runtime::mesh_links::Senders,
    nshards: usize,
) {
    let (deliver, inbound) = mpsc::unbounded();
    let mesh = Rc::new(mesh);
    let live = Rc::new(super::liveness::Liveness::new(nshards));
    glommio::spawn_local(live.clone().run(mesh.clone())).detach();
    let node_timeout = std::cell::Cell::new(crate::cluster::settings(&node.config()).node_timeout);
    let bus = Rc::new(Bus { cluster, node, live, node_timeout, links: RefCell::new(Links::default()), deliver });
    glommio::spawn_local(super::bus_publish::deliver_loop(inbound, mesh, nshards)).detach();
    let outgoing = super::bus_publish::outgoing();
    let b = bus.clone();
    glommio::spawn_local(async move {
        let mut outgoing = outgoing;
        while let Some(item) = outgoing.next().await {
            match item {
                super::bus_publish::ToBus::Publish(p) => b.send_publish(p),
                super::bus_publish::ToBus::KillLinks { node, to, from } => b.kill_links(&node, to, from),
            }
        }
    })
    .detach();
    for fd in listen_fds {
        glommio::spawn_local(accept_loop(bus.clone(), fd)).detach();
    }
    let mut iteration = 0u64;
    loop {
        glommio::timer::sleep(Duration::from_millis(CRON_MS)).await;
        bus.cron(iteration);
        iteration += 1;
    }
}

async fn accept_loop(bus: Rc<Bus>, fd: i32) {
    // SAFETY: the fd is a listening socket handed to the control executor alone.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(inbound(bus.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!("Error accepting cluster node: {}", e);
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn ip_of<E>(a: Result<std::net::SocketAddr, E>) -> String {
    a.map(|a| match a.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_else(|| v6.to_string()),
        ip => ip.to_string(),
    })
    .unwrap_or_default()
}

/// Reads messages off a link until it closes; `on_msg` handles each one and says whether
/// the link must close.
async fn read_loop(
    mut r: impl futures_lite::AsyncRead + Unpin,
    mut on_msg: impl FnMut(Result<BusMessage, DecodeError>) -> bool,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let len = match BusMessage::peek_len(&buf) {
                None => break,
                Some(Err(_)) => return, // bad signature or length: close the link
                Some(Ok(l)) if l > MAX_MESSAGE => return,
                Some(Ok(l)) => l,
            };
            if buf.len() < len {
                break;
            }
            let decoded = BusMessage::decode(&buf[..len]);
            buf.drain(..len);
            if on_msg(decoded) {
                return;
            }
        }
    }
}

async fn write_loop(
    mut w: impl futures_lite::AsyncWrite + Unpin,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Rc<std::cell::Cell<usize>>,
    fd: i32,
) {
    while let Some(m) = rx.next().await {
        if w.write_all(&m).await.is_err() {
            break;
        }
        queued.set(queued.get().saturating_sub(m.len()));
    }
    // SAFETY: shutting down our own socket so the reader ends too.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

async fn inbound(bus: Rc<Bus>, stream: TcpStream) {
    let fd = stream.as_raw_fd();
    let _ = stream.set_nodelay(true);
    let info = LinkInfo { node: None, peer_ip: ip_of(stream.peer_addr()), local_ip: ip_of(stream.local_addr()) };
    let tls = crate::tls::cluster(&bus.node.config());
    let stream = match crate::runtime::with_timeout(TLS_HANDSHAKE, crate::tls::server_side(stream, tls)).await {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::warn!("Error accepting cluster node connection: {}", crate::tls::describe(&e));
            return;
        }
        None => {
            tracing::warn!("Error accepting cluster node connection: TLS handshake timed out");
            return;
        }
    };
    let (r, w) = futures_lite::io::split(stream);
    let (tx, rx) = LinkTx::new();
    let writer = glommio::spawn_local(write_loop(w, rx, tx.queued.clone(), fd));
    let id = {
        let mut links = bus.links.borrow_mut();
        links.next_id += 1;
        links.next_id
    };
    let created = Bus::now();
    let mut from: Option<Name> = None;
    read_loop(r, |m| {
        let sender = m.as_ref().ok().map(|m| m.header.sender);
        let close = bus.on_message(&info, m, &tx);
        if from.is_none() {
            from = sender.and_then(|s| bus.adopt_inbound(s, id, fd, created, &tx.queued));
        }
        close
    })
    .await;
    if let Some(n) = from {
        bus.inbound_down(&n, id);
    }
    drop(tx);
    let _ = writer.await;
}

impl Bus {
    fn now() -> u64 {
        crate::storage::now_ms()
    }

    /// Handles one message from a link; true when the link must close.
    fn on_message(&self, info: &LinkInfo, m: Result<BusMessage, DecodeError>, reply: &LinkTx) -> bool {
        let msg = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("Dropping malformed cluster bus message: {:?}", e);
                return false;
            }
        };
        let now = Self::now();
        if self.live.stuck(now, self.node_timeout.get()).is_some() {
            // A stuck shard: this node must look dead to the cluster (see runtime::liveness).
            return false;
        }
        let view = ReplView::read(&self.node.repl);
        let close = self.cluster.with(|st| {
            view.apply(st);
            let mut fx = gossip::process(st, info, &msg, now);
            if let Some((sharded, channel, message)) = fx.publish.take() {
                let p = super::bus_publish::Publish { sharded, channel: channel.into(), message: message.into() };
                let _ = self.deliver.unbounded_send(p);
            }
            self.finish(st, &mut fx, now);
            self.dispatch(st, fx, Some(reply))
        });
        self.cluster.sync_repl(&self.node.repl);
        close
    }

    /// Sends a local PUBLISH to every node (PUBLISHSHARD: to the other nodes of my shard
    /// group, master and replicas), as Redis's `clusterSendPublish`.
    fn send_publish(&self, p: super::bus_publish::Publish) {
        use crate::cluster::bus::codec::Body;
        self.cluster.with(|st| {
            let t = if p.sharded { MsgType::PublishShard } else { MsgType::Publish };
            let m = BusMessage {
                header: gossip::header(st, t),
                body: Body::Publish { channel: p.channel.to_vec(), message: p.message.to_vec() },
            };
            let group: Option<Vec<Name>> = p.sharded.then(|| {
                let master = if st.me().is_master() { Some(st.myself) } else { st.me().slaveof };
                st.nodes
                    .values()
                    .filter(|n| Some(n.name) == master || (n.slaveof.is_some() && n.slaveof == master))
                    .map(|n| n.name)
                    .collect()
            });
            let bytes = m.encode();
            let links = self.links.borrow();
            for (name, l) in links.out.iter() {
                let Some(tx) = &l.tx else { continue };
                if group.as_ref().is_some_and(|g| !g.contains(name)) {
                    continue;
                }
                if st.nodes.get(name).is_some_and(|n| !n.has(F::HANDSHAKE)) {
                    st.stats_sent[t as usize] += 1;
                    tx.send(bytes.clone());
                }
            }
        })
    }

    /// Adds the election step, FAIL and PONG broadcasts owed after a change.
    fn finish(&self, st: &mut ClusterState, fx: &mut Effects, now: u64) {
        gossip::drain_pending(st, now, fx);
    }

    /// Puts effects on links; returns whether the current link must close.
    fn dispatch(&self, st: &mut ClusterState, fx: Effects, reply: Option<&LinkTx>) -> bool {
        let mut links = self.links.borrow_mut();
        if let Some((old, new)) = fx.renamed {
            if let Some(l) = links.out.remove(&old) {
                *l.name.borrow_mut() = new;
                if let Some(prev) = links.out.insert(new, l) {
                    if let Some(fd) = prev.fd {
                        // SAFETY: see Links::close.
                        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                    }
                }
            }
        }
        let mut count = |t: MsgType| st.stats_sent[t as usize] += 1;
        if let Some(r) = reply {
            for m in &fx.reply {
                count(m.header.msg_type);
                r.send(m.encode());
            }
        }
        for (n, m) in &fx.send {
            if let Some(tx) = links.out.get(n).and_then(|l| l.tx.as_ref()) {
                count(m.header.msg_type);
                tx.send(m.encode());
            }
        }
        for m in &fx.broadcast {
            let bytes = m.encode();
            for (name, l) in links.out.iter() {
                let Some(tx) = &l.tx else { continue };
                if st.nodes.get(name).is_some_and(|n| !n.has(F::HANDSHAKE)) {
                    st.stats_sent[m.header.msg_type as usize] += 1;
                    tx.send(bytes.clone());
                }
            }
        }
        for n in &fx.drop_links {
            links.close(n);
            if let Some(node) = st.nodes.get_mut(n) {
                node.link_connected = false;
            }
        }
        fx.close_link
    }

    fn cron(self: &Rc<Self>, iteration: u64) {
        let now = Self::now();
        let cfg = self.node.config();
        let settings = crate::cluster::settings(&cfg);
        self.node_timeout.set(settings.node_timeout);
        if self.live.stuck(now, settings.node_timeout).is_some() {
            return;
        }
        let mut connect: Vec<(Name, String, u16, u64)> = Vec::new();
        let view = ReplView::read(&self.node.repl);
        let sendbuf_limit =
            cfg.get("cluster-link-sendbuf-limit").and_then(crate::config::registry::parse_memory).unwrap_or(0) as usize;
        self.cluster.with(|st| {
            // Keep what CONFIG SET may change, but never the identity of myself.
            let s = &mut st.settings;
            s.node_timeout = settings.node_timeout;
            s.require_full_coverage = settings.require_full_coverage;
            s.allow_reads_when_down = settings.allow_reads_when_down;
            s.replica_validity_factor = settings.replica_validity_factor;
            s.repl_ping_period = settings.repl_ping_period;
            s.replica_no_failover = settings.replica_no_failover;
            s.migration_barrier = settings.migration_barrier;
            s.allow_replica_migration = settings.allow_replica_migration;
            view.apply(st);
            self.limit_send_buffers(st, sendbuf_limit);
            // Links to nodes that are gone.
            {
                let mut links = self.links.borrow_mut();
                let gone: Vec<Name> = links.out.keys().filter(|n| !st.nodes.contains_key(*n)).copied().collect();
                for n in gone {
                    links.close(&n);
                }
                let gone: Vec<Name> = links.inbound.keys().filter(|n| !st.nodes.contains_key(*n)).copied().collect();
                for n in gone {
                    links.close_inbound(&n);
                }
            }
            let plan = {
                let links = self.links.borrow();
                gossip::cron(st, now, iteration, &|n| links.age(n, now))
            };
            let mut fx = plan.fx;
            {
                let mut links = self.links.borrow_mut();
                for n in plan.reconnect {
                    links.close(&n);
                }
            }
            self.finish(st, &mut fx, now);
            self.dispatch(st, fx, None);
            // New outbound links.
            let mut links = self.links.borrow_mut();
            for n in st.nodes.values_mut() {
                if n.name == st.myself || n.has(F::NOADDR) || n.ip.is_empty() || n.cport == 0 {
                    continue;
                }
                if links.out.contains_key(&n.name) {
                    continue;
                }
                n.link_connected = false;
                links.next_id += 1;
                let id = links.next_id;
                links.out.insert(
                    n.name,
                    OutLink { id, tx: None, fd: None, created: now, name: Rc::new(RefCell::new(n.name)) },
                );
                connect.push((n.name, n.ip.clone(), n.cport, id));
            }
        });
        self.cluster.sync_repl(&self.node.repl);
        let timeout = Duration::from_millis(settings.node_timeout.clamp(100, 5000));
        for (name, ip, cport, id) in connect {
            glommio::spawn_local(outbound(self.clone(), name, ip, cport, id, timeout)).detach();
        }
    }

    /// `cluster-link-sendbuf-limit`: a link whose writer is behind by more bytes is freed (an
    /// outbound one is made again), with Redis's log line and count; the send buffers are
    /// published for CLUSTER LINKS.
    fn limit_send_buffers(&self, st: &mut ClusterState, limit: usize) {
        let mut links = self.links.borrow_mut();
        if limit != 0 {
            let out_queued = |l: &OutLink| l.tx.as_ref().map_or(0, |t| t.queued.get());
            let over: Vec<(&str, Name, usize)> = (links.out.iter().map(|(n, l)| ("to", *n, out_queued(l))))
                .chain(links.inbound.iter().map(|(n, l)| ("from", *n, l.queued.get())))
                .filter(|&(_, _, q)| q > limit)
                .collect();
            for (dir, n, used) in over {
                tracing::warn!(
                    "Freeing cluster link({} node {}, used memory: {}) due to exceeding send buffer memory limit.",
                    dir,
                    name_str(&n),
                    used
                );
                if dir == "to" {
                    links.close(&n);
                    if let Some(node) = st.nodes.get_mut(&n) {
                        node.link_connected = false;
                    }
                } else {
                    links.close_inbound(&n);
                }
                st.links_buffer_limit_exceeded += 1;
            }
        }
        for n in st.nodes.values_mut() {
            n.link_queued = links.out.get(&n.name).and_then(|l| l.tx.as_ref()).map_or(0, |t| t.queued.get());
            n.inbound_queued = links.inbound.get(&n.name).map_or(0, |l| l.queued.get());
        }
    }

    /// Removes the outbound link `id` of the node now called `name`, if it is still current.
    /// Names an inbound link after the known node a message on it came from (Redis's
    /// `setClusterNodeToInboundClusterLink`): an older inbound link from that node is closed.
    fn adopt_inbound(
        &self,
        sender: Name,
        id: u64,
        fd: i32,
        created: u64,
        queued: &Rc<std::cell::Cell<usize>>,
    ) -> Option<Name> {
        let known = self.cluster.with(|st| match st.nodes.get_mut(&sender) {
            Some(n) if !n.has(F::HANDSHAKE) && sender != st.myself => {
                n.inbound_ctime = created;
                true
            }
            _ => false,
        });
        if !known {
            return None;
        }
        let mut links = self.links.borrow_mut();
        if links.inbound.get(&sender).is_some_and(|l| l.id != id) {
            tracing::debug!("Replacing inbound link fd from node {} with fd {}", name_str(&sender), fd);
            links.close_inbound(&sender);
        }
        links.inbound.insert(sender, InLink { id, fd, queued: queued.clone() });
        Some(sender)
    }

    /// An inbound link ended: forgets it unless a newer one replaced it.
    fn inbound_down(&self, name: &Name, id: u64) {
        let mut links = self.links.borrow_mut();
        if links.inbound.get(name).is_some_and(|l| l.id == id) {
            links.inbound.remove(name);
            drop(links);
            self.cluster.with(|st| {
                if let Some(n) = st.nodes.get_mut(name) {
                    n.inbound_ctime = 0;
                }
            });
        }
    }

    /// DEBUG CLUSTERLINK KILL: closes the link to and/or from `node`; the cron reconnects
    /// the outbound one and the peer reconnects its own, as after any lost link.
    fn kill_links(&self, node: &Name, to: bool, from: bool) {
        let mut links = self.links.borrow_mut();
        if to {
            links.close(node);
        }
        if from {
            links.close_inbound(node);
        }
        drop(links);
        if to {
            self.cluster.with(|st| {
                if let Some(n) = st.nodes.get_mut(node) {
                    n.link_connected = false;
                }
            });
        }
    }

    fn link_down(&self, name: &Rc<RefCell<Name>>, id: u64) {
        let n = *name.borrow();
        let mut links = self.links.borrow_mut();
        if links.out.get(&n).is_some_and(|l| l.id == id) {
            links.out.remove(&n);
            drop(links);
            self.cluster.with(|st| {
                if let Some(node) = st.nodes.get_mut(&n) {
                    node.link_connected = false;
                }
            });
        }
    }
}

async fn outbound(bus: Rc<Bus>, name: Name, ip: String, cport: u16, id: u64, timeout: Duration) {
    let addr = format!("{ip}:{cport}");
    let name_cell = match bus.links.borrow().out.get(&name) {
        Some(l) if l.id == id => l.name.clone(),
        _ => return,
    };
    let stream = match crate::runtime::outbound::connect(&ip, cport, timeout).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("Unable to connect to Cluster Node [{}]: {}", addr, e);
            // As Redis: with no ping pending, failure detection could not start, so count
            // the attempt as a ping sent now.
            let now = Bus::now();
            let current = *name_cell.borrow();
            bus.cluster.with(|st| {
                if let Some(n) = st.nodes.get_mut(&current) {
                    if n.ping_sent == 0 {
                        n.ping_sent = now;
                    }
                }
            });
            bus.link_down(&name_cell, id);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let mut info = LinkInfo { node: None, peer_ip: ip_of(stream.peer_addr()), local_ip: ip_of(stream.local_addr()) };
    let tls = crate::tls::cluster(&bus.node.config());
    let stream = match crate::runtime::with_timeout(timeout, crate::tls::client_side(stream, &ip, tls)).await {
        Some(Ok(s)) => s,
        failed => {
            let why = match failed {
                Some(Err(e)) => crate::tls::describe(&e),
                _ => "TLS handshake timed out".into(),
            };
            tracing::debug!("Connection with Node at {} failed: {}", addr, why);
            bus.link_down(&name_cell, id);
            return;
        }
    };
    let (r, w) = futures_lite::io::split(stream);
    let (tx, rx) = LinkTx::new();
    {
        let mut links = bus.links.borrow_mut();
        let current = *name_cell.borrow();
        match links.out.get_mut(&current) {
            Some(l) if l.id == id => {
                l.tx = Some(tx.clone());
                l.fd = Some(fd);
                l.created = Bus::now();
            }
            _ => return,
        }
    }
    // The first message: MEET for a node we were told to meet, else PING.
    let now = Bus::now();
    bus.cluster.with(|st| {
        let current = *name_cell.borrow();
        let Some(n) = st.nodes.get_mut(&current) else { return };
        n.link_connected = true;
        n.link_ctime = now;
        let meet = n.has(F::MEET);
        n.flags &= !F::MEET;
        let old_ping = n.ping_sent;
        let t = if meet { MsgType::Meet } else { MsgType::Ping };
        let m = gossip::ping(st, t, Some(current), now);
        if let Some(n) = st.nodes.get_mut(&current) {
            if old_ping != 0 {
                n.ping_sent = old_ping;
            } else {
                n.ping_sent = now;
            }
        }
        st.stats_sent[t as usize] += 1;
        tx.send(m.encode());
        tracing::debug!("Connected to cluster node {} at {}", name_str(&current), addr);
    });
    let writer = glommio::spawn_local(write_loop(w, rx, tx.queued.clone(), fd));
    read_loop(r, |m| {
        // The node's name changes when its handshake completes.
        info.node = Some(*name_cell.borrow());
        bus.on_message(&info, m, &tx)
    })
    .await;
    drop(tx);
    bus.link_down(&name_cell, id);
    let _ = writer.await;
}
