//! The master client: a replica applies its master's stream as a client of its own (Redis's
//! `server.master`), through the ordinary dispatch on shard 0, so cross-shard commands,
//! MULTI/EXEC and SELECT behave exactly as for other clients.
//!
//! What differs from a socket client (`ClientState::master`):
//! - no reply is ever written to the master, except `REPLCONF ACK <offset>`: in answer to
//!   `REPLCONF GETACK` (with the offset *before* the GETACK command) and once a second;
//! - cluster redirects, `replica-read-only` and the other replica refusals do not apply;
//! - the processed offset advances by the byte length of each fully processed command and is
//!   published with `Replication::set_offset`; the bytes of processed commands are forwarded
//!   verbatim to the feed (`FeedItem::Raw`), so the backlog a replica keeps (sub-replicas or
//!   not, as Redis's `replicationFeedStreamFromMasterStream`) and its sub-replicas see the
//!   master's exact stream;
//! - `repl-timeout` seconds without a byte from the master end the link.

use super::input::{MAX_READ_CHUNK, READ_CHUNK};
use super::Conn;
use crate::cmd::ClientState;
use crate::protocol::request::{ParseLimits, Request};
use crate::replication::handshake;
use crate::runtime::shard::Shard;
use crate::runtime::ClientStream;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Error replies a master link or an AOF replay produced (INFO `unexpected_error_replies`).
pub static UNEXPECTED_ERROR_REPLIES: AtomicU64 = AtomicU64::new(0);

/// Who produced the error replies [`log_unexpected_errors`] reports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Master,
    Aof,
}

/// Redis's `afterErrorReply` for the master link and the AOF replay: each error reply the
/// stream's commands produced is logged as `== CRITICAL ==` with the command's name, counted,
/// and with `propagation-error-behavior panic` (or `panic-on-replicas` for a read-only
/// replica's master link) the process aborts, as Redis's `serverPanic`. `names` are the
/// lowercase command names of the requests whose replies `wbuf` holds, in order.
fn log_unexpected_errors(shard: &Shard, wbuf: &[u8], names: &[Option<Bytes>], source: Source) {
    // Most batches hold no error at all: skip the walk then.
    if !wbuf.contains(&b'-') {
        return;
    }
    let errors = top_level_errors(wbuf);
    if errors.is_empty() {
        return;
    }
    let cfg = shard.state.borrow().config.clone();
    let behavior = cfg.get("propagation-error-behavior").unwrap_or("ignore");
    let (from, to) = match source {
        Source::Master => ("replica", "master"),
        Source::Aof => ("server", "AOF-loading-client"),
    };
    for (i, text) in errors {
        // Redis logs an error its handler wrote without a code (`addReplyError`) without the
        // `ERR ` it sends, and a coded one (shared error objects) with its leading `-`; an
        // unknown command has no command name.
        let unknown = text.starts_with(b"ERR unknown command");
        let name = match names.get(i) {
            Some(Some(n)) if !unknown => String::from_utf8_lossy(n).to_lowercase(),
            _ => "<unknown>".to_string(),
        };
        let text = match text.strip_prefix(b"ERR ") {
            Some(rest) => String::from_utf8_lossy(&rest[..rest.len().min(4096)]).into_owned(),
            None => format!("-{}", String::from_utf8_lossy(&text[..text.len().min(4095)])),
        };
        tracing::warn!(
            "== CRITICAL == This {from} is sending an error to its {to}: '{text}' after processing the command '{name}'"
        );
        UNEXPECTED_ERROR_REPLIES.fetch_add(1, Ordering::Relaxed);
        let panic_in_replicas = source == Source::Master
            && cfg.get("replica-read-only") != Some("no")
            && matches!(behavior, "panic" | "panic-on-replicas");
        let panic_in_aof = source == Source::Aof && behavior == "panic";
        if panic_in_replicas || panic_in_aof {
            tracing::error!(
                "Guru Meditation: This {from} panicked sending an error to its {to} after processing the command '{name}'"
            );
            std::process::abort();
        }
    }
}

/// The error replies among the top-level RESP2 replies in `buf`: (reply index, text without
/// the `-` and CRLF). Stops at anything it cannot walk.
fn top_level_errors(buf: &[u8]) -> Vec<(usize, &[u8])> {
    fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&buf[at..end], end + 2))
    }
    fn skip(buf: &[u8], at: usize) -> Option<usize> {
        let (head, next) = line(buf, at)?;
        let n = || std::str::from_utf8(head.get(1..)?).ok()?.parse::<i64>().ok();
        match head.first()? {
            b'+' | b'-' | b':' => Some(next),
            b'$' => match n()? {
                len if len < 0 => Some(next),
                len => Some(next + len as usize + 2),
            },
            b'*' => (0..n()?.max(0)).try_fold(next, |at, _| skip(buf, at)),
            _ => None,
        }
    }
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < buf.len() {
        if buf[at] == b'-' {
            match line(buf, at) {
                Some((text, _)) => out.push((i, &text[1..])),
                None => break,
            }
        }
        match skip(buf, at) {
            Some(next) => at = next,
            None => break,
        }
        i += 1;
    }
    out
}

/// The command names of `run` (shared, not copied), for [`log_unexpected_errors`].
fn command_names(run: &[Request]) -> Vec<Option<Bytes>> {
    run.iter().map(|r| r.args.first().cloned()).collect()
}

/// Where the master's stream starts.
pub struct MasterStart {
    /// The synced connection to the master.
    pub stream: ClientStream,
    /// Stream bytes already read during the sync (they follow the payload).
    pub pending: Vec<u8>,
    /// The database the stream starts in.
    pub db: usize,
    /// The offset of the first byte of `pending`.
    pub offset: u64,
    /// The master's address (for status updates and CLIENT LIST).
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// Send a `REPLCONF ACK` before anything else (after an EOF-marked transfer the master
    /// starts the stream on it: `repl_start_cmd_stream_on_ack`).
    pub ack_first: bool,
}

/// Where the stream stopped (the cached master for the next PSYNC).
#[derive(Debug, Clone, Copy)]
pub struct MasterEnd {
    /// Processed offset.
    pub offset: u64,
    /// The stream's selected database.
    pub db: usize,
}

/// The per-second duties the link owner does while the stream runs (status, config flags).
pub type Tick = Box<dyn Fn(u64, u64)>;

/// How often a link holding the stream behind a busy script looks whether it ended.
const BUSY_POLL: Duration = Duration::from_millis(10);

/// Applies the master's stream until the link ends; `tick(read_offset, processed)` runs after
/// every read and once a second.
pub async fn serve_master(shard: Rc<Shard>, start: MasterStart, tick: Tick) -> MasterEnd {
    let MasterStart { stream, pending, db, offset, host, port, ack_first } = start;
    let node = shard.state.borrow().node.clone();
    let id = node.next_client_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?:0".into());
    let mut state = ClientState::new(id, format!("{host}:{port}"), laddr, stream.as_raw_fd(), true);
    state.master = true;
    state.db = db;
    let _master_client = crate::storage::master_client(id);
    let client = Rc::new(RefCell::new(state));
    shard.state.borrow_mut().clients.insert(id, client.clone());
    let mut conn = Conn::new(stream, shard.clone(), client);
    let mut link = Link {
        processed: offset,
        read: offset + pending.len() as u64,
        raw: BytesMut::new(),
        raw_big: false,
        in_tx: false,
        tx_len: 0,
    };
    conn.rbuf.push(&pending);
    link.keep_raw(&pending);
    crate::replication::role::set_master_fd(conn.stream.as_raw_fd());
    let ended = conn.run_master(&mut link, &tick, ack_first).await;
    crate::replication::role::set_master_fd(-1);
    if let Err(e) = ended {
        tracing::warn!("Connection with master lost: {}", e);
    } else {
        tracing::warn!("Connection with master lost.");
    }
    conn.unwatch_all().await;
    shard.state.borrow_mut().clients.remove(&id);
    let db = conn.client.borrow().db;
    MasterEnd { offset: link.processed, db }
}

/// The stream's offsets and the bytes read and not yet processed.
struct Link {
    processed: u64,
    read: u64,
    raw: BytesMut,
    /// `raw` grew past [`MAX_READ_CHUNK`] since it was last given back.
    raw_big: bool,
    /// Inside a MULTI of the stream: its bytes so far (`tx_len`) are applied (queued) but not
    /// processed yet. As Redis's `reploff`, the offset moves past a transaction only at its
    /// EXEC (or DISCARD), so a link lost inside one resumes at its MULTI: the new link's client
    /// has no transaction open, and an offset inside it got `EXEC without MULTI`.
    in_tx: bool,
    tx_len: u64,
}

impl Link {
    /// After a big command (a 32 MB SET grows both buffers to its size, or twice it), the
    /// query buffer and the raw copy are given back once fully processed; before, a replica
    /// kept them for the link's life, 150 MB after one 32 MB SET (its used_memory four times
    /// its master's), and more with each big write.
    ///
    /// The raw copy is judged by `raw_big`, not its capacity: once a big command is split off,
    /// what is left is a view of the allocation's last bytes (with a small capacity) that
    /// keeps the whole 40 MB allocation alive.
    fn release_if_idle_and_big(&mut self, rbuf: &mut super::input::InputBuf) {
        rbuf.release_if_idle_and_big();
        if self.raw.is_empty() && (self.raw_big || self.raw.capacity() > MAX_READ_CHUNK) {
            self.raw = BytesMut::new();
            self.raw_big = false;
        }
    }

    /// The bytes a command of `len` bytes lets the processed offset move by: none inside a
    /// transaction, the whole transaction at its EXEC or DISCARD (see `in_tx`).
    fn counted(&mut self, args: &[Bytes], len: u64) -> u64 {
        let is = |name: &str| args.first().is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()));
        if self.in_tx {
            self.tx_len += len;
            if is("exec") || is("discard") {
                self.in_tx = false;
                return std::mem::take(&mut self.tx_len);
            }
            return 0;
        }
        if is("multi") {
            self.in_tx = true;
            self.tx_len = len;
            return 0;
        }
        len
    }

    /// Appends read bytes to the raw copy.
    fn keep_raw(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
        self.raw_big |= self.raw.capacity() > MAX_READ_CHUNK;
    }
}

impl Conn {
    async fn run_master(&mut self, link: &mut Link, tick: &Tick, ack_first: bool) -> std::io::Result<()> {
        if ack_first {
            self.stream.write_all(&handshake::ack(link.processed)).await?;
        }
        let mut reqs = Vec::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_ack = Instant::now();
        let mut last_io = Instant::now();
        loop {
            self.shard.refresh_config();
            let (limits, timeout) = {
                let st = self.shard.state.borrow();
                let t = st.config.get("repl-timeout").and_then(|v| v.parse().ok()).unwrap_or(60u64);
                (ParseLimits { max_bulk_len: st.config.proto_max_bulk_len, auth_required: false }, t)
            };
            self.shard.refresh_cluster();
            // While a script is busy the stream is read but not applied (its commands would
            // only get -BUSY): it is applied once the script ends, as Redis does.
            let busy = crate::script::busy();
            if !busy {
                let parsed = self.rbuf.parse(&mut self.parser, &limits, &mut reqs);
                if !reqs.is_empty() {
                    self.apply_stream(std::mem::take(&mut reqs), link).await?;
                    link.release_if_idle_and_big(&mut self.rbuf);
                }
                if let Err(e) = parsed {
                    return Err(std::io::Error::other(format!("protocol error from master: {}", e.0)));
                }
            }
            if self.client.borrow().killed {
                return Ok(());
            }
            let mut wait = Duration::from_secs(1).saturating_sub(last_ack.elapsed()).max(Duration::from_millis(1));
            if busy {
                wait = wait.min(BUSY_POLL);
            }
            // Within a big bulk string, reads of up to 1 MB (16 KB reads of a 32 MB SET were
            // 2048 turns of this loop); the read buffer goes back to 16 KB after it.
            let want = self.parser.wanted().saturating_sub(self.rbuf.len()).clamp(READ_CHUNK, MAX_READ_CHUNK);
            if buf.len() != want && (buf.len() < want || self.parser.wanted() == 0) {
                buf = vec![0u8; want];
            }
            match crate::runtime::with_timeout(wait, self.stream.read(&mut buf)).await {
                Some(Ok(0)) => return Ok(()),
                Some(Ok(n)) => {
                    self.rbuf.push(&buf[..n]);
                    link.keep_raw(&buf[..n]);
                    link.read += n as u64;
                    last_io = Instant::now();
                    self.client.borrow_mut().last_interaction_ms = crate::storage::now_ms();
                    // Redis counts the master link's bytes apart (`total_net_repl_input_bytes`).
                    crate::cmd::instant::NET_REPL_INPUT.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    tick(link.read, link.processed);
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
            if last_ack.elapsed() >= Duration::from_secs(1) {
                last_ack = Instant::now();
                self.stream.write_all(&handshake::ack(link.processed)).await?;
                tick(link.read, link.processed);
            }
            if timeout > 0 && last_io.elapsed() > Duration::from_secs(timeout) {
                tracing::warn!("MASTER timeout: no data nor PING received...");
                return Ok(());
            }
        }
    }

    /// Applies parsed commands of the stream; `REPLCONF GETACK` is answered here with the
    /// offset before it (the commands before it are applied first).
    async fn apply_stream(&mut self, reqs: Vec<Request>, link: &mut Link) -> std::io::Result<()> {
        let mut run: Vec<Request> = Vec::new();
        let mut run_len = 0;
        for req in reqs {
            let len = handshake::request_len(&req.args);
            if handshake::is_getack(&req.args) {
                self.apply_run(std::mem::take(&mut run), run_len, link).await;
                run_len = 0;
                self.stream.write_all(&handshake::ack(link.processed)).await?;
                self.processed(len, link);
            } else {
                run_len += link.counted(&req.args, len);
                run.push(req);
            }
        }
        self.apply_run(run, run_len, link).await;
        Ok(())
    }

    async fn apply_run(&mut self, run: Vec<Request>, len: u64, link: &mut Link) {
        if run.is_empty() {
            return;
        }
        let names = command_names(&run);
        // Saves meanwhile record no stream position (the run is neither before nor after).
        let _applying = crate::replication::role::applying();
        // Every request of the run is applied (a CLIENT KILL of the link takes effect after
        // it): `processed` below counts all of them, and the next PSYNC starts after them.
        self.dispatch_batch(run).await;
        // The master never gets replies; errors are logged.
        log_unexpected_errors(&self.shard, &self.wbuf, &names, Source::Master);
        self.wbuf.clear();
        self.processed(len, link);
    }

    /// `len` more bytes of the stream are processed: publish the offset, forward the bytes.
    fn processed(&mut self, len: u64, link: &mut Link) {
        link.processed += len;
        let n = (len as usize).min(link.raw.len());
        let bytes = link.raw.split_to(n).freeze();
        let node = self.shard.state.borrow().node.clone();
        node.repl.push_raw(bytes, link.processed);
        crate::replication::role::set_save_position(self.client.borrow().db, link.processed);
    }
}

/// Replays commands read from the AOF at start-up as a master client on `shard` (Redis's fake
/// AOF client): the same dispatch as a master's stream, replies dropped, nothing forwarded.
pub async fn replay(shard: Rc<Shard>, cmds: Vec<Vec<bytes::Bytes>>) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        tracing::warn!("AOF replay: socketpair failed: {}", std::io::Error::last_os_error());
        return;
    }
    // The stream end is never read or written (a master client's replies are dropped), it
    // only gives the connection its type.
    let stream = match ClientStream::adopt(fds[0]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("AOF replay: {}", e);
            // SAFETY: the other end of the pair, owned here and not used elsewhere.
            unsafe { libc::close(fds[1]) };
            return;
        }
    };
    let node = shard.state.borrow().node.clone();
    let id = node.next_client_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut state = ClientState::new(id, "aof".into(), "aof".into(), fds[0], true);
    state.master = true;
    let _master_client = crate::storage::master_client(id);
    let client = Rc::new(RefCell::new(state));
    shard.state.borrow_mut().clients.insert(id, client.clone());
    let mut conn = Conn::new(stream, shard.clone(), client);
    let mut it = cmds.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<Request> = it.by_ref().take(1024).map(|args| Request { args }).collect();
        let names = command_names(&batch);
        conn.dispatch_batch(batch).await;
        log_unexpected_errors(&shard, &conn.wbuf, &names, Source::Aof);
        conn.wbuf.clear();
    }
    shard.state.borrow_mut().clients.remove(&id);
    // SAFETY: the other end of the pair, owned here and not used elsewhere.
    unsafe {
        libc::close(fds[1]);
    }
}
