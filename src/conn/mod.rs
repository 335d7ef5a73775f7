//! A client's life on its home shard: read -> parse -> dispatch a pipeline batch -> write.
//!
//! Replies go out in request order whatever shard produced them. Consecutive pipelined commands
//! for one remote shard travel as one mesh message. A command is dispatched while earlier ones
//! are still in flight only when that cannot be observed: all of them only read, or all of them
//! go to the same shard (whose channel is FIFO). Anything else waits for what is in flight, so a
//! client's writes become visible to others in the order it sent them.

pub mod blocking;
pub mod dispatch;
pub mod input;
pub mod master;
mod memory;
pub mod migrate;
pub mod monitor;
pub mod multi;
mod output;
mod pause;
pub mod plan;
pub mod pubsub;
mod release;

use crate::cmd::ClientState;
use crate::protocol::request::{ParseLimits, RequestParser};
use crate::protocol::Reply;
use crate::runtime::shard::Shard;
use crate::runtime::ClientStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use input::InputBuf;

/// Redis 7.0's protected-mode refusal.
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// What woke a MONITOR connection.
enum Either {
    Input(std::io::Result<usize>),
    Line(Option<bytes::Bytes>),
}

/// A client protected mode lets in: from 127.0.0.1 or ::1 exactly, as Redis 7.0 (another
/// address of 127.0.0.0/8, such as 127.0.0.2, is refused).
fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST),
    }
}

/// A connection being served.
pub struct Conn {
    pub(crate) stream: ClientStream,
    pub(crate) shard: Rc<Shard>,
    pub(crate) client: Rc<RefCell<ClientState>>,
    parser: RequestParser,
    rbuf: InputBuf,
    pub(crate) wbuf: Vec<u8>,
    /// How much of `wbuf`'s front is already written (see `output`).
    wsent: usize,
    /// The pending output last shown in the client's CLIENT LIST entry.
    omem_shown: usize,
    /// The last command looked up, and the address of the interned name it was sent as
    /// (0 when not interned; see `Conn::route`).
    last_spec: Option<(&'static crate::cmd::CommandSpec, usize)>,
    /// Bytes were read into `rbuf` while blocked and are not parsed yet.
    pub(crate) pending_input: bool,
    /// MULTI queue and WATCH registrations.
    tx: multi::TxState,
    /// Set by SYNC/PSYNC: the socket goes to the control core after this batch.
    pub(crate) handoff: Option<Box<crate::replication::master::Attach>>,
    /// Since when the output has been over its class's soft limit (see `memory::obuf`).
    obuf_clock: crate::memory::obuf::SoftClock,
    /// Invalidations of keys evicted before this client's current command, which go out
    /// before its reply (see `Conn::oom_refusal`).
    early_pushes: Vec<u8>,
    /// The eviction cycle of the command about to run already ran node-wide (see
    /// `memory::evict::before_command_node_wide`), and whether the node was still out of
    /// memory after it: the command's own check takes that instead of a second cycle.
    evicted_node_wide: Option<bool>,
    /// Cluster mode: the slot check of the script command routed last, for its job (see
    /// `ScriptJob::cluster_check`).
    pub(crate) script_check: crate::cluster::redirect::SlotCheck,
    /// ... and whether ASKING was in effect for it.
    pub(crate) script_asking: bool,
    /// Set by MONITOR: the lines fed since the command ran, before the connection turned to
    /// streaming them (see `run_monitor`).
    pub(crate) monitor_rx: Option<futures_channel::mpsc::UnboundedReceiver<bytes::Bytes>>,
}

/// Serves one accepted connection until it closes.
pub async fn serve(mut stream: ClientStream, shard: Rc<Shard>) {
    let fd = stream.as_raw_fd();
    // This shard may have been idle since a CONFIG SET made on another shard's connection
    // (`protected-mode`, `maxclients`, ...): a new client is admitted by the settings of now.
    shard.refresh_config();
    let (cfg, node) = {
        let st = shard.state.borrow();
        (st.config.clone(), st.node.clone())
    };
    let unix = crate::runtime::listener::is_unix_socket(fd);
    if !unix {
        crate::runtime::listener::tune_client(fd, cfg.tcp_keepalive);
    }
    let peer = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    let connected = node.connected_clients.fetch_add(1, Ordering::AcqRel) + 1;
    if connected > cfg.maxclients {
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        node.connected_clients.fetch_sub(1, Ordering::AcqRel);
        shard.state.borrow_mut().stats.rejected_connections += 1;
        return;
    }
    if cfg.protected_mode && crate::acl::default_autologin() && peer.as_ref().is_some_and(|p| !is_loopback(p)) {
        tracing::warn!("Possible SECURITY ATTACK detected. It looks like somebody is sending a client connection from {:?} while in protected mode.", peer);
        let _ = stream.write_all(PROTECTED_MODE_DENIED).await;
        node.connected_clients.fetch_sub(1, Ordering::AcqRel);
        shard.state.borrow_mut().stats.rejected_connections += 1;
        return;
    }
    let id = node.next_client_id.fetch_add(1, Ordering::Relaxed);
    let fmt = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "?:0".into());
    // A Unix socket client shows the socket's path as both addresses, as in Redis.
    let (addr, laddr) = match unix {
        true => (format!("{}:0", cfg.unixsocket), format!("{}:0", cfg.unixsocket)),
        false => (fmt(peer), fmt(local)),
    };
    let mut state = ClientState::new(id, addr, laddr, fd, crate::acl::default_autologin());
    state.unix = unix;
    let client = Rc::new(RefCell::new(state));
    {
        let mut st = shard.state.borrow_mut();
        st.clients.insert(id, client.clone());
        st.stats.total_connections_received += 1;
    }
    let mut conn = Conn::new(stream, shard.clone(), client);
    if let Err(e) = conn.run().await {
        tracing::debug!("client {} closed: {}", id, e);
    }
    // A subscriber closed by a publisher's message over its limit (its socket shut down)
    // may have ended on the write error: Redis's log line is written here then.
    if conn.client.borrow().closing() {
        conn.obuf_close();
    }
    if conn.monitor_rx.take().is_some() {
        monitor::unregister(id);
    }
    conn.unwatch_all().await;
    let evicted_mem = crate::memory::clients::forget(&mut conn.client.borrow_mut());
    {
        let mut st = shard.state.borrow_mut();
        crate::cmd::pubsub::drop_all(&mut st, &mut conn.client.borrow_mut());
        st.clients.remove(&id);
    }
    crate::cmd::tracking::gone(&node, id);
    node.connected_clients.fetch_sub(1, Ordering::AcqRel);
    // Its buffers go before the ceiling's count is told.
    drop(conn);
    crate::memory::clients::closed(evicted_mem);
}

impl Conn {
    /// The output-buffer class of this client and its limits now (`memory::obuf`).
    fn obuf_limit(&self) -> crate::memory::obuf::Limit {
        use crate::memory::obuf::{limit, Class};
        let c = self.client.borrow();
        limit(if c.pubsub.is_some() && !c.monitor { Class::Pubsub } else { Class::Normal })
    }

    /// Redis's `closeClientOnOutputBufferLimitReached` on the pending output (`wbuf`): a
    /// client over its class's hard limit, or over the soft limit for too long, gets no more
    /// replies and is closed (true). The master link is never closed for this.
    #[inline]
    pub(crate) fn obuf_over(&mut self) -> bool {
        // The common case in one borrow and two loads: a normal client, no normal-class limit
        // (checked after every reply).
        let subscriber = {
            let c = self.client.borrow();
            c.pubsub.is_some() && !c.monitor
        };
        if !subscriber {
            let l = crate::memory::obuf::limit(crate::memory::obuf::Class::Normal);
            if l.hard == 0 && l.soft == 0 {
                return false;
            }
        }
        self.obuf_over_limits()
    }

    #[cold]
    fn obuf_over_limits(&mut self) -> bool {
        if let Some(ob) = self.subscriber_outbox() {
            // A subscriber's output is its pending replies and its queued messages together.
            self.show_omem();
            if ob.check_limits() {
                self.obuf_close();
                return true;
            }
            return false;
        }
        let l = self.obuf_limit();
        if l.hard == 0 && l.soft == 0 {
            return false;
        }
        let now_s = crate::storage::cached_ms() / 1000;
        if !self.obuf_clock.over(l, self.pending_output() as u64, now_s) || self.client.borrow().master {
            return false;
        }
        self.obuf_close();
        true
    }

    /// The outbox of a client in the pubsub class of the output limits (None for others).
    fn subscriber_outbox(&self) -> Option<Rc<crate::cmd::pubsub_reg::Outbox>> {
        let c = self.client.borrow();
        c.pubsub.as_ref().filter(|_| !c.monitor).map(|s| s.outbox.clone())
    }

    /// Drops the pending output and marks the client closed, with Redis's log line (once).
    pub(crate) fn obuf_close(&mut self) {
        if self.client.borrow().killed {
            return;
        }
        let line = crate::cmd::connection::client_line(&self.client.borrow(), crate::storage::cached_ms());
        crate::memory::obuf::log_closing(&line);
        self.drop_output();
        self.wbuf = Vec::new();
        self.client.borrow_mut().killed = true;
    }

    /// How long a write of the pending output may take: unbounded, unless the output is over
    /// the soft limit, whose remaining time then bounds it (a client that stops reading
    /// cannot pin its buffer past the soft limit's seconds).
    fn obuf_write_deadline(&mut self) -> Option<Duration> {
        if let Some(ob) = self.subscriber_outbox() {
            ob.check_limits();
            let end_ms = ob.soft_deadline()? * 1000;
            let now_ms = crate::storage::now_ms();
            return Some(Duration::from_millis(end_ms.saturating_sub(now_ms).max(1)));
        }
        let l = self.obuf_limit();
        let pending = self.pending_output() as u64;
        if l.soft == 0 || pending < l.soft || self.client.borrow().master {
            return None;
        }
        let now_ms = crate::storage::now_ms();
        self.obuf_clock.over(l, pending, now_ms / 1000);
        let end_ms = self.obuf_clock.deadline(l)? * 1000;
        Some(Duration::from_millis(end_ms.saturating_sub(now_ms).max(1)))
    }

    /// A connection over `stream` for `client`, whose home is `shard`.
    pub(crate) fn new(stream: ClientStream, shard: Rc<Shard>, client: Rc<RefCell<ClientState>>) -> Conn {
        client.borrow_mut().conn_bytes = std::mem::size_of::<Conn>();
        Conn {
            stream,
            shard,
            client,
            parser: RequestParser::default(),
            rbuf: InputBuf::new(),
            // Grown by the first replies to what the client's batches need (most need a few
            // hundred bytes): an idle connection does not hold a 16 KB reply buffer.
            wbuf: Vec::new(),
            wsent: 0,
            omem_shown: 0,
            pending_input: false,
            last_spec: None,
            tx: multi::TxState::default(),
            handoff: None,
            obuf_clock: Default::default(),
            early_pushes: Vec::new(),
            evicted_node_wide: None,
            script_check: Default::default(),
            script_asking: false,
            monitor_rx: None,
        }
    }

    async fn run(&mut self) -> std::io::Result<()> {
        let mut reqs = Vec::new();
        loop {
            if self.client.borrow().killed {
                return Ok(());
            }
            self.shard.refresh_config();
            // Client eviction (`maxmemory-clients`) after what the last turn read, ran or wrote.
            if self.track_memory_and_evict().await {
                return Ok(());
            }
            let timeout = self.shard.state.borrow().config.timeout;
            // Input that arrived while the client was blocked is parsed before reading more.
            if !std::mem::take(&mut self.pending_input) {
                // Read more input; a subscriber also waits for its messages (no idle timeout,
                // as Redis exempts Pub/Sub clients).
                let n = match self.outbox() {
                    Some(ob) => match self.read_or_push(&ob).await {
                        Ok(Some(n)) => Ok(n),
                        Ok(None) if self.client.borrow().close_after_reply => return Ok(()),
                        Ok(None) => continue,
                        Err(e) => Err(e),
                    },
                    // Replies the socket did not take yet: written while more input is read
                    // (bounded by the output-buffer soft limit's time when it runs).
                    None if self.pending_output() > 0 => match self.obuf_write_deadline() {
                        None => match self.write_or_read().await {
                            Ok(output::Progress::Written) => continue,
                            Ok(output::Progress::Read(n)) => Ok(n),
                            Err(e) => Err(e),
                        },
                        Some(d) => match crate::runtime::with_timeout(d, self.write_or_read()).await {
                            Some(Ok(output::Progress::Written)) => continue,
                            Some(Ok(output::Progress::Read(n))) => Ok(n),
                            Some(Err(e)) => Err(e),
                            None => {
                                self.obuf_close();
                                return Ok(());
                            }
                        },
                    },
                    None => self.read_input(timeout).await,
                };
                let n = match n {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        tracing::debug!("Closing idle client");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                self.rbuf.commit(n);
                {
                    let st = &mut self.shard.state.borrow_mut().stats;
                    st.net_input_bytes += n as u64;
                    st.reads_processed += 1;
                }
            }
            // The read may have waited long: commands run with the settings of now (a CONFIG
            // SET on a connection of another shard meanwhile must count, as `lua-time-limit`
            // for the script this input starts) and route by the cluster view of now (a
            // SETSLOT meanwhile), not of before the wait.
            self.shard.refresh_config();
            let (limits, qlimit) = {
                let st = self.shard.state.borrow();
                let c = self.client.borrow();
                (
                    ParseLimits { max_bulk_len: st.config.proto_max_bulk_len, auth_required: !c.authenticated },
                    st.config.client_query_buffer_limit,
                )
            };
            if self.rbuf.len() as u64 > qlimit {
                tracing::warn!("Closing client that reached max query buffer length");
                return Ok(());
            }
            // As Redis's query buffer, the bytes of the commands being run count until the batch
            // is done (CLIENT LIST shows a command's own bytes in `qbuf`).
            {
                let mut c = self.client.borrow_mut();
                c.qbuf = self.rbuf.len();
                c.qbuf_room = self.rbuf.size();
            }
            let parsed = self.rbuf.parse(&mut self.parser, &limits, &mut reqs);
            if !reqs.is_empty() {
                if pause::node_held() && !self.client.borrow().master {
                    self.wait_node_released().await;
                }
                self.prefetch_batch(&reqs);
                self.dispatch_batch(reqs.drain(..)).await;
                // The batch's keyspace notifications (and BCAST invalidations) reach every
                // subscriber before its replies reach this client, as in Redis.
                self.shard.state.borrow_mut().flush_changes();
                crate::cmd::notify_order::settled().await;
                // A buffer a big bulk string grew goes back once it is all parsed (as Redis
                // gives a big argument's query buffer away with it).
                self.rbuf.release_if_idle_and_big();
                // The batch's replies count before other connections run their commands (for
                // the key and client eviction that those may run).
                if crate::memory::maxmemory() != 0 || crate::memory::clients::limit() != 0 {
                    self.track_memory();
                }
            }
            self.client.borrow_mut().qbuf = self.rbuf.len();
            if let Some(attach) = self.handoff.take() {
                self.hand_off(attach);
                return Ok(());
            }
            // After QUIT nothing more is read, a protocol error in what follows included.
            let quit = self.client.borrow().close_after_reply;
            if let (Err(e), false) = (parsed, quit) {
                tracing::debug!("Protocol error ({}) from client: {}", e.0, self.client.borrow().addr);
                Reply::error(e.reply_text()).encode(&mut self.wbuf, false);
                self.client.borrow_mut().close_after_reply = true;
            }
            let (closing, monitor, subscriber) = {
                let c = self.client.borrow();
                (c.close_after_reply, c.monitor, c.pubsub.is_some())
            };
            if closing || monitor {
                self.flush().await?;
            } else if subscriber {
                // The rest goes out while the subscriber waits for input and messages.
                self.write_now().await?;
            } else {
                // The other connections woken with this one run their batches first, so that
                // replies leave in one burst per round, as Redis writes them all before it
                // sleeps: a client then wakes once for many replies instead of once per
                // reply, and each send here finds it awake more often (waking a sleeping
                // thread is most of a loopback send's cost).
                // When every connection woken has read already, there is nobody to wait for.
                if self.pending_output() > 0 && crate::runtime::netpoll::others_woken() {
                    crate::runtime::netpoll::yield_to_woken().await;
                }
                // What the socket does not take now goes out while the next input is read.
                self.write_now().await?;
            }
            if closing {
                return Ok(());
            }
            if self.client.borrow().monitor && !self.run_monitor().await? {
                return Ok(());
            }
        }
    }

    /// Reads more input; a TimedOut error after `timeout` idle seconds (0 = never).
    async fn read_input(&mut self, timeout: u64) -> std::io::Result<usize> {
        let read = self.stream.read(self.rbuf.spare(self.parser.wanted()));
        if timeout > 0 && !self.client.borrow().monitor {
            match crate::runtime::with_timeout(Duration::from_secs(timeout), read).await {
                Some(r) => r,
                None => Err(std::io::ErrorKind::TimedOut.into()),
            }
        } else {
            read.await
        }
    }

    /// A MONITOR connection: stream fed lines until the client quits or goes away (false), or
    /// sends RESET (true: its input then runs as usual, RESET leaving the monitor mode).
    async fn run_monitor(&mut self) -> std::io::Result<bool> {
        use futures_lite::StreamExt;
        let id = self.client.borrow().id;
        // Registered when MONITOR ran, before its +OK left.
        let mut rx = match self.monitor_rx.take() {
            Some(rx) => rx,
            None => monitor::register(id),
        };
        let result = loop {
            let mut buf = [0u8; 512];
            let next = {
                let read = async { Either::Input(self.stream.read(&mut buf).await) };
                let line = async { Either::Line(rx.next().await) };
                futures_lite::future::or(line, read).await
            };
            match next {
                Either::Line(Some(l)) => {
                    if let Err(e) = self.stream.write_all(&l).await {
                        break Err(e);
                    }
                }
                Either::Line(None) => break Ok(false),
                Either::Input(Ok(0)) | Either::Input(Err(_)) => break Ok(false),
                Either::Input(Ok(n)) => {
                    // A monitor may only QUIT or RESET; everything else is ignored as in Redis.
                    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    if text.contains("quit") {
                        let _ = self.stream.write_all(b"+OK\r\n").await;
                        break Ok(false);
                    }
                    if text.contains("reset") {
                        self.rbuf.push(&buf[..n]);
                        self.pending_input = true;
                        self.client.borrow_mut().monitor = false;
                        break Ok(true);
                    }
                }
            }
        };
        monitor::unregister(id);
        result
    }

    /// SYNC/PSYNC: hands a dup of the socket, with the input not parsed yet, to the control
    /// core; this connection task then ends without writing anything more.
    fn hand_off(&mut self, mut attach: Box<crate::replication::master::Attach>) {
        // SAFETY: the fd is this connection's live socket; the dup is owned by the receiver.
        let fd = unsafe { libc::dup(self.stream.as_raw_fd()) };
        if fd < 0 {
            tracing::warn!("SYNC failed: dup of the replica socket: {}", std::io::Error::last_os_error());
            return;
        }
        attach.fd = fd;
        if let Some(session) = self.stream.take_session() {
            crate::tls::park(fd, session);
        }
        attach.leftover = self.rbuf.take_all();
        let node = self.shard.state.borrow().node.clone();
        crate::replication::master::send(&node.repl, crate::replication::master::Request::Attach(attach));
    }
}
