//! The master side of replication at run time: the control core's merger task (drains the
//! feed into [`Master`], ticks it), each replica's reader (REPLCONF ACK) and writer tasks, and
//! the full-sync snapshot jobs shard 0 runs (a forkless `runtime::snapshot` stream, relayed to
//! the replicas chunk by chunk with backpressure).
//!
//! The state and every decision live in `replication::master` (no I/O there); this module
//! only moves bytes and time.

use crate::cmd::{bgsave, NodeInfo};
use crate::protocol::{ParseLimits, Request};
use crate::replication::feed::FeedItem;
use crate::replication::master::{Action, Master, Out, Settings};
use crate::replication::{SnapshotJob, SnapshotMsg};
use crate::runtime::shard::Shard;
use crate::runtime::snapshot::{self, SnapshotStream};
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::cell::{Cell, RefCell};
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Feed items merged before the stream is committed (bounds the latency of one batch).
const BATCH_ITEMS: usize = 4096;
/// After a drain the merger lets the feed gather this long before it drains again, so that
/// under a steady write load the shards' pushes do not wake the control core one batch at a
/// time (each wake is a cross-thread signal from the shard and a context switch, and each
/// drain a small write to every replica): the stream goes out in larger pieces, as Redis
/// writes its replicas' buffers once per event-loop turn. The first push after a quiet moment
/// is merged at once; under `appendfsync always` (replies wait for the fsync) it never waits.
const LINGER: Duration = Duration::from_micros(250);
/// Bytes one write to a replica gathers from small queued chunks (Redis writes a replica's
/// stream one 16 KB block at a time). A replica's writer and reader hold their buffers for
/// the link's life, counted by `maxmemory` as Redis counts a replica client's own buffers:
/// with 64 KB here and 16 KB for the reader, dropping a replica gave back 68 KB that the
/// ceiling had counted (Redis's own test allows 50 KB).
const WRITE_GATHER: usize = 16 * 1024;
/// Bytes one read of what a replica sends takes (REPLCONF ACKs).
const READ_CHUNK: usize = 1024;
/// Snapshot chunks in flight between shard 0's job and the control core.
const SNAPSHOT_QUEUE: usize = 4;
/// A snapshot's relay waits while a replica has more than this many bytes queued.
const SNAPSHOT_PENDING: u64 = 4 << 20;
/// Bytes read from the RDB file per chunk (disk target).
const SEND_CHUNK: usize = 1 << 20;

/// The control core's replication task: runs until the process exits.
pub async fn run(node: Arc<NodeInfo>) {
    let Some(mut feed) = node.repl.feed.take_receiver() else { return };
    let now = crate::storage::now_ms();
    let m = Rc::new(RefCell::new(Master::new(&node.repl, Settings::from_config(&node.config()), now)));
    m.borrow().publish(&node.repl);
    glommio::spawn_local(cron(node.clone(), m.clone())).detach();
    // A request taken after stream bytes of the same batch waits for the next one: the
    // replicas' writers take those bytes first (see below).
    let mut carried: Option<FeedItem> = None;
    loop {
        // The item is taken below, with the AOF's lock (a shard's round may take it first).
        if carried.is_none() {
            feed.ready().await;
        }
        {
            let now = crate::storage::now_ms();
            let mut mm = m.borrow_mut();
            let mut streamed = false;
            for _ in 0..BATCH_ITEMS {
                let Some(item) = carried.take().or_else(|| crate::runtime::aof::take(&mut feed)) else { break };
                if matches!(item, FeedItem::Control(_)) {
                    if streamed {
                        carried = Some(item);
                        break;
                    }
                    // A request (a replica's SYNC, WAIT) sees the settings as they are now, not
                    // as the last cron tick read them (e.g. a diskless delay set just before).
                    mm.set_settings(Settings::from_config(&node.config()));
                } else {
                    streamed = true;
                }
                mm.feed(&node.repl, item, now);
                // Its records are freed: they stop being left out of the memory count at the
                // next refresh. Settled once a batch, a refresh taken meanwhile saw up to 4096
                // records freed that were still left out, and the count fell short by them
                // until the refresh after it.
                node.repl.feed.settle();
            }
            mm.commit(&node.repl);
            crate::runtime::aof::commit(mm.takes_units());
        }
        run_actions(&node, &m);
        if carried.is_some() {
            // Redis writes to its replicas before it reads the next command: a PSYNC is judged
            // on a backlog trimmed of what the replicas have taken of the stream before it.
            futures_lite::future::yield_now().await;
            continue;
        }
        if !crate::aof::sync::must_wait() {
            glommio::timer::sleep(LINGER).await;
        }
    }
}

/// `replicationCron`: 10 ticks a second, the once-a-second work on every tenth.
async fn cron(node: Arc<NodeInfo>, m: Rc<RefCell<Master>>) {
    let mut n = 0u64;
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        let settings = Settings::from_config(&node.config());
        m.borrow_mut().tick(&node.repl, settings, crate::storage::now_ms(), n % 10 == 0);
        run_actions(&node, &m);
        // A replica's link pushes its master's stream quietly when only the backlog takes it.
        node.repl.feed.wake_if_queued();
        n += 1;
    }
}

fn run_actions(node: &Arc<NodeInfo>, m: &Rc<RefCell<Master>>) {
    let actions = m.borrow_mut().take_actions();
    for a in actions {
        match a {
            Action::Snapshot { id, exclude_data, disk, repl_info } => {
                let (tx, rx) = futures_channel::mpsc::channel(SNAPSHOT_QUEUE);
                node.repl.request_snapshot(SnapshotJob { id, exclude_data, disk, repl_info, out: tx });
                glommio::spawn_local(relay_snapshot(node.clone(), m.clone(), id, rx)).detach();
            }
            Action::Start { id, fd, rx, pending, leftover } => {
                // SAFETY: `fd` is a dup of the replica's socket handed over by its home shard;
                // from here these tasks own it.
                let stream = unsafe { glommio::net::TcpStream::from_raw_fd(fd) };
                let stream = crate::tls::MaybeTls::resume(stream, crate::tls::unpark(fd));
                let (r, w) = futures_lite::io::split(stream);
                glommio::spawn_local(writer(w, rx, pending, fd)).detach();
                glommio::spawn_local(reader(node.clone(), m.clone(), id, r, leftover)).detach();
            }
        }
    }
}

/// Writes a replica's queue to its socket; on an error or `Close`, shuts the socket down so
/// the reader ends too. Small pieces and the stream (copied from the shared buffer straight
/// into it) gather in one buffer of [`WRITE_GATHER`] bytes, made once: a replica's writer
/// allocates nothing per write, so what it holds is what INFO counts for it.
async fn writer(
    mut w: impl futures_lite::AsyncWrite + Unpin,
    mut rx: crate::replication::attached::OutReceiver,
    pending: Rc<Cell<u64>>,
    fd: i32,
) {
    let mut gather = Vec::with_capacity(WRITE_GATHER);
    loop {
        if gather.len() >= WRITE_GATHER && !flush_gather(&mut w, &mut gather, &pending).await {
            break;
        }
        let room = WRITE_GATHER - gather.len();
        let item = if gather.is_empty() {
            rx.next(&mut gather, room).await
        } else {
            match rx.try_recv(&mut gather, room) {
                Some(o) => Some(o),
                None => {
                    // Nothing more for now: write what gathered, then wait.
                    if !flush_gather(&mut w, &mut gather, &pending).await {
                        break;
                    }
                    continue;
                }
            }
        };
        match item {
            // The outbox is gone and everything was taken.
            None => break,
            Some(Out::Close) => {
                let _ = flush_gather(&mut w, &mut gather, &pending).await;
                break;
            }
            Some(Out::Stream(_)) => {}
            Some(Out::Data(b)) if b.len() >= WRITE_GATHER => {
                if !flush_gather(&mut w, &mut gather, &pending).await || !write_counted(&mut w, &b, &pending).await {
                    break;
                }
            }
            Some(Out::Data(b)) => {
                if gather.len() + b.len() > WRITE_GATHER && !flush_gather(&mut w, &mut gather, &pending).await {
                    break;
                }
                gather.extend_from_slice(&b);
            }
        }
    }
    // SAFETY: the reader half still owns the fd, so it is open; shutdown wakes its read.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

async fn flush_gather(
    w: &mut (impl futures_lite::AsyncWrite + Unpin),
    gather: &mut Vec<u8>,
    pending: &Cell<u64>,
) -> bool {
    if gather.is_empty() {
        return true;
    }
    let ok = write_counted(w, gather, pending).await;
    gather.clear();
    ok
}

/// Writes all of `buf`, taking every partial write off `pending` as it happens (the master's
/// cron reads progress from it, as Redis's `repl_last_partial_write`); false on an error.
async fn write_counted(w: &mut (impl futures_lite::AsyncWrite + Unpin), buf: &[u8], pending: &Cell<u64>) -> bool {
    let mut off = 0;
    while off < buf.len() {
        match w.write(&buf[off..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                off += n;
                pending.set(pending.get().saturating_sub(n as u64));
                crate::cmd::instant::NET_REPL_OUTPUT.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    true
}

/// Reads what a replica sends (REPLCONF ACK, newlines while it loads) until it goes away.
async fn reader(
    node: Arc<NodeInfo>,
    m: Rc<RefCell<Master>>,
    id: u64,
    mut r: impl futures_lite::AsyncRead + Unpin,
    leftover: Vec<u8>,
) {
    let mut buf = BytesMut::from(&leftover[..]);
    let mut parser = crate::protocol::request::RequestParser::default();
    let limits = ParseLimits::default();
    let mut reqs: Vec<Request> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let parsed = parser.parse(&mut buf, &limits, &mut reqs);
        for req in reqs.drain(..) {
            on_request(&node, &m, id, &req.args);
        }
        if parsed.is_err() {
            break;
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    m.borrow_mut().remove(&node.repl, id, crate::storage::now_ms());
}

/// A command from a replica: REPLCONF ACK (Redis answers nothing to it, nor to GETACK);
/// anything else would be answered, and drops the replica.
fn on_request(node: &NodeInfo, m: &RefCell<Master>, id: u64, args: &[Bytes]) {
    let is = |i: usize, w: &str| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()));
    let now = crate::storage::now_ms();
    if is(0, "replconf") && is(1, "ack") {
        let off = args.get(2).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse::<i64>().ok());
        if let Some(off) = off {
            m.borrow_mut().ack(&node.repl, id, off.max(0) as u64, now);
        }
        return;
    }
    if is(0, "replconf") && is(1, "getack") {
        return;
    }
    use crate::cmd::spec::flags;
    let (name, keyspace) = match crate::cmd::table::resolve(args) {
        Some((spec, full)) => (full, spec.flags & (flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) != 0),
        None => ("<unknown>", false),
    };
    m.borrow_mut().drop_rogue(&node.repl, id, name, keyspace, now);
}

/// Passes snapshot `id`'s file from shard 0's job to its replicas, pausing while one of them
/// has more than [`SNAPSHOT_PENDING`] bytes unwritten (the job waits in turn: the bounded
/// channel), and ends the snapshot in [`Master`] when the file is complete or cannot be.
async fn relay_snapshot(
    node: Arc<NodeInfo>,
    m: Rc<RefCell<Master>>,
    id: u64,
    mut rx: futures_channel::mpsc::Receiver<SnapshotMsg>,
) {
    const GONE: &str = "no replica waits for it";
    let mut result = Err("the snapshot job ended early".to_string());
    'relay: loop {
        // The replicas may all leave while the job produces nothing for long (a save to disk,
        // `rdb-key-save-delay`): looked at every 100 ms, as Redis kills its RDB child when the
        // last replica waiting for it goes.
        let next = futures_lite::future::or(async { Some(rx.next().await) }, async {
            loop {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                m.borrow().snapshot_pending(id)?;
            }
        })
        .await;
        match next {
            Some(Some(SnapshotMsg::Len(n))) => m.borrow_mut().snapshot_len(id, n),
            Some(Some(SnapshotMsg::Data(b))) => m.borrow_mut().snapshot_data(id, b),
            Some(Some(SnapshotMsg::End(r))) => {
                result = r;
                break;
            }
            Some(None) => break,
            None => {
                result = Err(GONE.to_string());
                break;
            }
        }
        loop {
            let pending = m.borrow().snapshot_pending(id);
            match pending {
                None => {
                    result = Err(GONE.to_string());
                    break 'relay;
                }
                Some(p) if p > SNAPSHOT_PENDING => glommio::timer::sleep(Duration::from_millis(1)).await,
                Some(_) => break,
            }
        }
    }
    // Closing the channel stops the job if it still runs (a save to disk goes on while save
    // points are set: its file is the node's RDB).
    drop(rx);
    m.borrow_mut().snapshot_end(&node.repl, id, result);
    run_actions(&node, &m);
}

/// Shard 0's side: runs the full-sync snapshot jobs the control core asks for, one at a time
/// (in the snapshot task queue, below client work).
pub async fn snapshot_jobs(shard: Rc<Shard>) {
    let node = shard.state.borrow().node.clone();
    let Some(mut jobs) = node.repl.take_snapshot_receiver() else { return };
    while let Some(job) = jobs.next().await {
        let mut out = job.out.clone();
        let r = run_job(&shard, job).await;
        let _ = send(&mut out, SnapshotMsg::End(r)).await;
    }
}

/// One full-sync snapshot: claims the node's snapshot (waiting for a running BGSAVE to end),
/// begins it on every shard at once (each pushes its feed mark there: the forkless
/// snapshot's point in time), waits for the mark's offset, then streams the file.
async fn run_job(shard: &Shard, job: SnapshotJob) -> Result<(), String> {
    let SnapshotJob { id, exclude_data, disk, repl_info, mut out } = job;
    while !bgsave::claim_as(id) {
        if out.is_closed() {
            return Err("abandoned".into());
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    let parts = shard.all_shards(bgsave::begin_shard, 0, &[]).await;
    let plan = match bgsave::plan_of(id, &parts) {
        Ok(p) => p,
        Err(e) => {
            snapshot::end_on_shards(shard, id, None).await;
            bgsave::release(id);
            return Err(format!("{e:?}"));
        }
    };
    let mut stream = SnapshotStream::from_plan(plan, Vec::new());
    let Ok(info) = repl_info.await else {
        stream.end(shard, false).await;
        return Err("abandoned".into());
    };
    stream = stream.with_repl(info);
    if exclude_data {
        stream = stream.without_data();
    }
    if disk {
        return send_file(shard, stream, &mut out).await;
    }
    // Diskless: the file's bytes go to the replicas' sockets as the shards produce them.
    let _running = bgsave::sync_snapshot_running();
    let mut failure = None;
    loop {
        match stream.next(shard).await {
            Some(Ok(b)) => {
                if send(&mut out, SnapshotMsg::Data(b)).await.is_err() {
                    failure = Some("abandoned".to_string());
                    break;
                }
            }
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            None => break,
        }
        stream.pace().await;
    }
    stream.end(shard, false).await;
    failure.map_or(Ok(()), Err)
}

/// Disk target (Redis's `rdbSaveBackground` for SYNC): writes the RDB file as a BGSAVE does,
/// then sends it, its length first.
async fn send_file(
    shard: &Shard,
    stream: SnapshotStream,
    out: &mut futures_channel::mpsc::Sender<SnapshotMsg>,
) -> Result<(), String> {
    shard.refresh_config();
    let cfg = shard.state.borrow().config.clone();
    bgsave::mark_started();
    tracing::info!("Background saving started");
    // No replica waits for the file any more (the relay closed the channel) and no save point
    // is set: the save is not needed, and stops (Redis kills its RDB child then). With save
    // points it goes on: the file is the node's RDB.
    let unneeded = async {
        loop {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            if out.is_closed() && !crate::cmd::save::has_save_points(&shard.state.borrow().config) {
                bgsave::stop_running();
                return std::future::pending().await;
            }
        }
    };
    let (outcome, file) = futures_lite::future::or(snapshot::write_file(shard, stream, &cfg, true), unneeded).await;
    bgsave::finished(outcome, &cfg);
    let Some(file) = file.filter(|_| outcome == bgsave::Outcome::Saved) else {
        return Err("Background saving error".into());
    };
    let len = snapshot::blocking(move || file.metadata().map(|m| (m.len(), file))).await;
    let (len, mut file) = len.map_err(|e| format!("reading the RDB file: {e}"))?;
    send(out, SnapshotMsg::Len(len)).await.map_err(|_| "abandoned".to_string())?;
    let mut left = len;
    while left > 0 {
        let (f, r) = snapshot::blocking(move || {
            let mut buf = vec![0u8; (left as usize).min(SEND_CHUNK)];
            let r = std::io::Read::read_exact(&mut file, &mut buf).map(|_| buf);
            (file, r)
        })
        .await;
        file = f;
        let buf = r.map_err(|e| format!("reading the RDB file: {e}"))?;
        left -= buf.len() as u64;
        send(out, SnapshotMsg::Data(Bytes::from(buf))).await.map_err(|_| "abandoned".to_string())?;
    }
    crate::replication::remove_sync_rdb_without_persistence(&cfg);
    Ok(())
}

/// Sends on the bounded channel, waiting for room; fails once the relay is gone.
async fn send(out: &mut futures_channel::mpsc::Sender<SnapshotMsg>, msg: SnapshotMsg) -> Result<(), ()> {
    futures_lite::future::poll_fn(|cx| out.poll_ready(cx)).await.map_err(|_| ())?;
    out.start_send(msg).map_err(|_| ())
}
