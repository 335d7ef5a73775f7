//! The replica side of PSYNC2 (`replication.c`: `replicationSetMaster`, `syncWithMaster`,
//! `readSyncBulkPayload`, `replicationCacheMaster`, `replicationUnsetMaster`), run on shard 0.
//!
//! Two tasks share a small control block:
//! - the listener takes role requests ([`super::RoleRequest`]) in order, records the target
//!   and closes the live link's socket when the target changes, so the link stops at once
//!   (never in the middle of a command: the master client notices between batches);
//! - the link loop connects to the target, handshakes (PING, AUTH, REPLCONF listening-port /
//!   ip-address / capa eof psync2), asks PSYNC with the cached master (its replid and
//!   offset + 1) or `? -1`, loads a full sync into every shard ([`super::load`]), then applies
//!   the stream as the master client (`conn::master`) until the link drops, caches the master
//!   and reconnects at once (after a failed attempt, one second later, as `replicationCron`).
//!
//! Role changes: becoming a replica caches this node's own history as the master to PSYNC
//! with (a demoted master resumes partially), turns replica expiry on (keys expire only by
//! the master's DEL) and stops the shards recording their own executions (the master's stream
//! is forwarded verbatim instead). Becoming a master shifts the replication id (replid2 = the
//! old one, valid up to offset + 1), keeps the data and expires keys again.
//!
//! In cluster mode the cluster state says whom to follow: a watcher follows the master of
//! this node in it (start-up from nodes.conf, CLUSTER REPLICATE, a failover elsewhere) and
//! promotes when the state makes this node a master.

use super::handshake::{self, BulkHeader, PsyncReply};
use super::{load, role, MasterLinkStatus, RoleRequest};
use crate::cmd::NodeInfo;
use crate::conn::master::{serve_master, MasterStart};
use crate::protocol::Reply;
use crate::runtime::shard::Shard;
use crate::runtime::ClientStream;
use futures_channel::{mpsc, oneshot};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod full_sync;
use full_sync::full_sync;

/// The master history to PSYNC with (Redis's `server.cached_master`).
#[derive(Debug, Clone)]
struct Cached {
    replid: String,
    offset: u64,
    db: usize,
}

/// What the listener and the link loop share.
#[derive(Default)]
struct Ctl {
    /// The master to follow (None: be a master).
    target: Option<(String, u16)>,
    /// Bumped on every change of `target`.
    gen: u64,
    /// The live link's socket, closed when the target changes.
    fd: Option<i32>,
    /// Wakes the link loop waiting for a change.
    wake: Option<oneshot::Sender<()>>,
}

impl Ctl {
    fn changed(&mut self) {
        self.gen += 1;
        if let Some(fd) = self.fd.take() {
            // SAFETY: `fd` is the live link's socket, owned by a task of this thread that
            // clears it from here before closing it; shutdown only wakes its pending read.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
        if let Some(w) = self.wake.take() {
            let _ = w.send(());
        }
    }
}

/// How one link attempt ended.
enum Outcome {
    /// It never got synced: retry in a second.
    Failed,
    /// A synced link dropped: reconnect at once.
    Lost,
}

/// The replica-link task (shard 0): takes the role receiver, follows `replicaof` from the
/// config (or the cluster state), and runs the link loop forever.
pub async fn run(shard: Rc<Shard>) {
    let node = shard.state.borrow().node.clone();
    let Some(rx) = node.repl.take_role_receiver() else { return };
    let ctl = Rc::new(RefCell::new(Ctl::default()));
    crate::runtime::spawn(listen(rx, ctl.clone()));
    let loaded = role::take_loaded_info();
    let cfg = node.config();
    let mut cached = None;
    if node.cluster.is_some() {
        crate::runtime::spawn(watch_cluster(node.clone()));
    } else if let Some((host, port)) = cfg.get("replicaof").and_then(parse_replicaof) {
        node.repl.follow(&host, port);
    }
    let starts_replica = match &node.cluster {
        Some(c) => c.with(|st| !st.me().is_master()),
        None => node.repl.is_replica(),
    };
    if let (true, Some(info)) = (starts_replica, loaded) {
        // A restarted replica resumes from the history its RDB file recorded.
        node.repl.with_status(|s| s.replid = info.replid.clone());
        node.repl.set_offset(info.offset);
        cached = Some(Cached { replid: info.replid, offset: info.offset, db: info.stream_db });
    }
    link_loop(shard, node, ctl, cached).await;
}

/// `replicaof` as the config holds it: "host port".
fn parse_replicaof(v: &str) -> Option<(String, u16)> {
    let mut it = v.split_ascii_whitespace();
    let host = it.next()?.to_string();
    let port = it.next()?.parse().ok()?;
    Some((host, port))
}

async fn listen(mut rx: mpsc::UnboundedReceiver<RoleRequest>, ctl: Rc<RefCell<Ctl>>) {
    while let Some(req) = rx.next().await {
        let mut c = ctl.borrow_mut();
        let target = match req {
            RoleRequest::Follow { host, port } => Some((host, port)),
            RoleRequest::Promote => None,
        };
        if c.target != target {
            c.target = target;
            c.changed();
        }
    }
}

/// Cluster mode: follows the cluster state's view of this node's role (on changes only, so
/// explicit requests made by the failover code are not undone by a stale view).
async fn watch_cluster(node: Arc<NodeInfo>) {
    let Some(cluster) = node.cluster.clone() else { return };
    let mut last: Option<Option<(String, u16)>> = None;
    loop {
        let now = cluster.with(|st| {
            let me = st.me();
            if me.is_master() {
                return Some(None);
            }
            let m = me.slaveof.and_then(|m| st.nodes.get(&m))?;
            (!m.ip.is_empty() && m.port != 0).then(|| Some((m.ip.clone(), m.port)))
        });
        if let Some(now) = now {
            if last.as_ref() != Some(&now) {
                match &now {
                    Some((ip, port)) => {
                        node.repl.follow(ip, *port);
                    }
                    None => {
                        node.repl.promote();
                    }
                }
                last = Some(now);
            }
        }
        crate::runtime::sleep(Duration::from_millis(100)).await;
    }
}

async fn link_loop(shard: Rc<Shard>, node: Arc<NodeInfo>, ctl: Rc<RefCell<Ctl>>, mut cached: Option<Cached>) {
    let mut replica = false;
    loop {
        let (gen, target) = {
            let c = ctl.borrow();
            (c.gen, c.target.clone())
        };
        let Some((host, port)) = target else {
            if replica {
                become_master();
                replica = false;
                cached = None;
            }
            wait_change(&ctl, gen, None).await;
            continue;
        };
        if !replica {
            become_replica(&node, &mut cached);
            replica = true;
        }
        let outcome = attempt(&shard, &node, &ctl, gen, &host, port, &mut cached).await;
        ctl.borrow_mut().fd = None;
        set_link(&node, &host, port, |m| {
            if m.state == "connected" {
                m.down_since_ms = crate::storage::now_ms();
            }
            m.state = "connect";
            m.sync_in_progress = false;
        });
        refresh_flags(&node, false);
        if let Outcome::Failed = outcome {
            wait_change(&ctl, gen, Some(Duration::from_secs(1))).await;
        }
    }
}

/// Waits until the target changes (or `limit` passes).
/// Waits while a DEBUG SLEEP holds the node.
async fn asleep_wait() {
    while crate::runtime::control_freeze::asleep() {
        crate::runtime::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_change(ctl: &Rc<RefCell<Ctl>>, gen: u64, limit: Option<Duration>) {
    let rx = {
        let mut c = ctl.borrow_mut();
        if c.gen != gen {
            return;
        }
        let (tx, rx) = oneshot::channel();
        c.wake = Some(tx);
        rx
    };
    match limit {
        Some(d) => {
            crate::runtime::with_timeout(d, rx).await;
        }
        None => {
            let _ = rx.await;
        }
    }
}

/// Redis's `replicationSetMaster` on a master: cache our own history to PSYNC with.
fn become_replica(node: &NodeInfo, cached: &mut Option<Cached>) {
    crate::storage::set_replica_expiry(true);
    role::set_no_record(true);
    refresh_flags(node, false);
    let replid = node.repl.with_status(|s| s.replid.clone());
    if cached.is_none() {
        *cached = Some(Cached { replid: replid.clone(), offset: node.repl.offset(), db: 0 });
    }
    role::set_save_position(cached.as_ref().map_or(0, |c| c.db), node.repl.offset());
    role::set_save_id(Some(replid));
}

/// The rest of Redis's `replicationUnsetMaster` once the link is dropped (the replication id
/// was shifted by [`super::Replication::promote`]): keep the data, record as a master.
fn become_master() {
    crate::storage::set_replica_expiry(false);
    role::set_no_record(false);
    role::set_load_held(false);
    role::set_loading(false);
    role::set_stale(false);
    role::set_save_id(None);
}

/// Keeps the role flags in step with the config (`replica-read-only`,
/// `replica-serve-stale-data`) and the link (`up`).
fn refresh_flags(node: &NodeInfo, up: bool) {
    let cfg = node.config();
    role::set_read_only(cfg.get("replica-read-only") != Some("no"));
    role::set_stale(!up && node.repl.is_replica() && cfg.get("replica-serve-stale-data") == Some("no"));
}

/// Changes the link status if it still describes `host:port` (a newer target wins).
fn set_link(node: &NodeInfo, host: &str, port: u16, f: impl FnOnce(&mut MasterLinkStatus)) {
    node.repl.with_status(|s| {
        if let Some(m) = s.master.as_mut().filter(|m| m.host == host && m.port == port) {
            f(m)
        }
    });
}

/// A buffered connection for the handshake and the transfer.
struct LinkIo {
    stream: ClientStream,
    buf: Vec<u8>,
    timeout: Duration,
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")
}

impl LinkIo {
    /// Reads more into `buf`.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = vec![0u8; 64 << 10];
        match crate::runtime::with_timeout(self.timeout, self.stream.read(&mut chunk)).await {
            None => Err(timed_out()),
            Some(Ok(0)) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection lost")),
            Some(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                crate::cmd::instant::NET_REPL_INPUT.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                Ok(n)
            }
            Some(Err(e)) => Err(e),
        }
    }

    /// One reply line, without its CRLF.
    async fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(String::from_utf8_lossy(&l).into_owned());
            }
            if self.buf.len() > 64 << 10 {
                return Err(std::io::Error::other("reply line too long"));
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

/// One connection to the master, from connect to the end of the stream.
async fn attempt(
    shard: &Rc<Shard>,
    node: &Arc<NodeInfo>,
    ctl: &Rc<RefCell<Ctl>>,
    gen: u64,
    host: &str,
    port: u16,
    cached: &mut Option<Cached>,
) -> Outcome {
    // DEBUG SLEEP stops the node, this link's reconnection included, as it stops Redis's
    // replication cron.
    asleep_wait().await;
    let cfg = node.config();
    let timeout = Duration::from_secs(cfg.get("repl-timeout").and_then(|v| v.parse().ok()).unwrap_or(60).max(1));
    tracing::info!("Connecting to MASTER {}:{}", host, port);
    set_link(node, host, port, |m| m.state = "connecting");
    tracing::info!("MASTER <-> REPLICA sync started");
    let stream = match crate::runtime::connect(host, port, timeout).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("Error condition on socket for SYNC: {}", e);
            return Outcome::Failed;
        }
    };
    // tls-replication: the handshake runs before anything else is said.
    let stream = match stream {
        crate::tls::MaybeTls::Plain(s) if crate::tls::replication(&cfg) => {
            match crate::runtime::with_timeout(timeout, crate::tls::connect(s, host)).await {
                Some(Ok(t)) => crate::tls::MaybeTls::Tls(Box::new(t)),
                Some(Err(e)) => {
                    tracing::warn!("Error condition on socket for SYNC: {}", crate::tls::describe(&e));
                    return Outcome::Failed;
                }
                None => {
                    tracing::warn!("Timeout connecting to the MASTER...");
                    return Outcome::Failed;
                }
            }
        }
        s => s,
    };
    {
        let mut c = ctl.borrow_mut();
        if c.gen != gen {
            return Outcome::Failed;
        }
        c.fd = Some(stream.as_raw_fd());
    }
    asleep_wait().await;
    tracing::info!("Non blocking connect for SYNC fired the event.");
    set_link(node, host, port, |m| m.state = "handshake");
    let mut io = LinkIo { stream, buf: Vec::new(), timeout };
    let synced = match handshake_and_sync(shard, node, &mut io, host, port, cached).await {
        Ok(s) => s,
        Err(e) => {
            if !e.is_empty() {
                tracing::warn!("{}", e);
            }
            return Outcome::Failed;
        }
    };
    if ctl.borrow().gen != gen {
        return Outcome::Lost;
    }
    let Synced { db, offset, pending, ack_first, full } = synced;
    // The backlog keeps the master's stream from here on (before the link forwards its first
    // byte: both go through the feed, in this order).
    node.repl.master_stream_starts(offset, full);
    set_link(node, host, port, |m| {
        m.state = "connected";
        m.down_since_ms = 0;
        m.sync_in_progress = false;
        m.last_io_ms = crate::storage::now_ms();
        m.read_offset = offset + pending.len() as u64;
    });
    refresh_flags(node, true);
    let tick_node = node.clone();
    let (h, p) = (host.to_string(), port);
    let last_flags = std::cell::Cell::new(Instant::now());
    let tick = Box::new(move |read: u64, _processed: u64| {
        set_link(&tick_node, &h, p, |m| {
            m.last_io_ms = crate::storage::now_ms();
            m.read_offset = read;
        });
        if last_flags.get().elapsed() >= Duration::from_secs(1) {
            last_flags.set(Instant::now());
            refresh_flags(&tick_node, true);
        }
    });
    // As Redis: the link is connected (sub-replicas may SYNC) before the first ACK, which
    // makes the master report this replica online, goes out (`serve_master` sends it).
    let start = MasterStart { stream: io.stream, pending, db, offset, host: host.to_string(), port, ack_first };
    let end = serve_master(shard.clone(), start, tick).await;
    let replid = node.repl.with_status(|s| s.replid.clone());
    tracing::info!("Caching the disconnected master state.");
    *cached = Some(Cached { replid, offset: end.offset, db: end.db });
    Outcome::Lost
}

/// Where the stream starts after a successful sync.
struct Synced {
    db: usize,
    offset: u64,
    pending: Vec<u8>,
    /// An EOF-marked transfer: the master starts the stream on the first ACK
    /// (`repl_start_cmd_stream_on_ack`), sent once the link shows connected.
    ack_first: bool,
    /// A full resync: the stream starts a new history at `offset`.
    full: bool,
}

/// The handshake, PSYNC, and (for a full resync) the transfer and load. Err: the text to log.
async fn handshake_and_sync(
    shard: &Rc<Shard>,
    node: &Arc<NodeInfo>,
    io: &mut LinkIo,
    host: &str,
    port: u16,
    cached: &mut Option<Cached>,
) -> Result<Synced, String> {
    let io_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            "Timeout connecting to the MASTER...".to_string()
        } else {
            format!("I/O error trying to sync with MASTER: {}", crate::tls::describe(&e))
        }
    };
    io.send(&handshake::encode(&[b"PING"])).await.map_err(io_err)?;
    let pong = io.line().await.map_err(io_err)?;
    if !pong.starts_with('+')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    tracing::info!("Master replied to PING, replication can continue...");
    let cfg = node.config();
    let conf = |k: &str| cfg.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let mut out = Vec::new();
    let auth = conf("masterauth");
    if let Some(pass) = &auth {
        match conf("masteruser") {
            Some(user) => out.extend(handshake::encode(&[b"AUTH", user.as_bytes(), pass.as_bytes()])),
            None => out.extend(handshake::encode(&[b"AUTH", pass.as_bytes()])),
        }
    }
    let announce_port = cfg.get("replica-announce-port").and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
    let tls_port = if crate::tls::replication(&cfg) { crate::tls::port(&cfg) } else { 0 };
    let listen_port = [announce_port, tls_port, cfg.port].into_iter().find(|&p| p != 0).unwrap_or(0);
    out.extend(handshake::encode(&[b"REPLCONF", b"listening-port", listen_port.to_string().as_bytes()]));
    let announce_ip = conf("replica-announce-ip");
    if let Some(ip) = &announce_ip {
        out.extend(handshake::encode(&[b"REPLCONF", b"ip-address", ip.as_bytes()]));
    }
    out.extend(handshake::encode(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]));
    io.send(&out).await.map_err(io_err)?;
    if auth.is_some() {
        let r = io.line().await.map_err(io_err)?;
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    let r = io.line().await.map_err(io_err)?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF listening-port: {}", r);
    }
    if announce_ip.is_some() {
        let r = io.line().await.map_err(io_err)?;
        if r.starts_with('-') {
            tracing::info!("(Non critical) Master does not understand REPLCONF ip-address: {}", r);
        }
    }
    let r = io.line().await.map_err(io_err)?;
    if r.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF capa: {}", r);
    }
    let (id, off) = match cached.as_ref() {
        Some(c) => {
            let off = (c.offset + 1).to_string();
            tracing::info!("Trying a partial resynchronization (request {}:{}).", c.replid, off);
            (c.replid.clone(), off)
        }
        None => {
            tracing::info!("Partial resynchronization not possible (no cached master)");
            ("?".to_string(), "-1".to_string())
        }
    };
    // A master handing over to this target asks it to take over first (FAILOVER).
    let failover = super::failover::handing_over();
    let sent = io.send(&super::failover::psync_command(&id, &off, failover)).await;
    sent.map_err(|e| super::failover::write_failed(node, failover, io_err(e)))?;
    let reply = loop {
        // Newlines are the master's keepalives before it answers.
        // Silence past repl-timeout is Redis's handshake timeout (`replicationCron`); a link
        // that ends before the reply is its "did not reply".
        let l = io.line().await.map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => io_err(e),
            _ => "Master did not reply to PSYNC, will try later".to_string(),
        })?;
        if !l.is_empty() {
            break l;
        }
    };
    let parsed = handshake::parse_psync_reply(&reply);
    if failover {
        super::failover::psync_answered(node, &parsed, &reply)?;
    }
    let (master_id, offset) = match parsed {
        PsyncReply::Continue { replid } => {
            tracing::info!("Successful partial resynchronization with master.");
            let Some(c) = cached.as_mut() else { return Err("PSYNC continued without a cached master".into()) };
            if let Some(new) = replid.filter(|n| *n != c.replid) {
                tracing::warn!("Master replication ID changed to {}", new);
                let off = node.repl.offset();
                node.repl.with_status(|s| {
                    s.replid2 = std::mem::replace(&mut s.replid, new.clone());
                    s.second_offset = off as i64 + 1;
                });
                c.replid = new.clone();
                role::set_save_id(Some(new));
                // Our own replicas are disconnected now, before the link counts as up (they
                // reconnect and continue under the new id), as Redis does on this reply.
                node.repl.merged().await;
            }
            tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            let pending = std::mem::take(&mut io.buf);
            return Ok(Synced { db: c.db, offset: c.offset, pending, ack_first: false, full: false });
        }
        PsyncReply::Full { replid, offset } => {
            let id = replid.unwrap_or_else(|| {
                tracing::warn!("Master replied with wrong +FULLRESYNC syntax.");
                "0".repeat(handshake::ID_LEN)
            });
            tracing::info!("Full resync from master: {}:{}", id, offset);
            (id, offset)
        }
        PsyncReply::TryLater(e) => {
            return Err(format!("Master is currently unable to PSYNC but should be in the future: {e}"));
        }
        PsyncReply::NotSupported(e) => {
            if e.starts_with("-ERR") {
                tracing::info!("Master does not support PSYNC or is in error state (reply: {})", e);
            } else {
                tracing::warn!("Unexpected reply to PSYNC from master: {}", e);
            }
            tracing::info!("Retrying with SYNC...");
            io.send(b"SYNC\r\n").await.map_err(|e| format!("I/O error writing to MASTER: {e}"))?;
            (super::random_replid(), 0)
        }
    };
    // Full resync: the cached history is dropped once the new master's data starts to replace
    // ours (Redis's `replicationAttachToNewMaster`): a transfer that fails before that (the
    // new master died) leaves it, so a later PSYNC to the old master can still continue.
    let attached = std::cell::Cell::new(false);
    let r = full_sync(shard, node, io, (host, port), (master_id, offset), &attached).await;
    if attached.get() || r.is_ok() {
        *cached = None;
    }
    r
}
