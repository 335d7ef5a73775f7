//! The master side of replication at run time: the control core's merger task (drains the
//! feed into [`Master`], ticks it), each replica's reader (REPLCONF ACK) and writer tasks, and
//! the snapshot jobs shard 0 runs for full resyncs.
//!
//! The state and every decision live in `replication::master` (no I/O there); this module
//! only moves bytes and time.

use crate::cmd::{NodeInfo, ShardState};
use crate::protocol::{ParseLimits, Reply, Request};
use crate::replication::feed::FeedItem;
use crate::replication::master::{Action, Master, Out, Settings};
use crate::replication::SnapshotJob;
use crate::runtime::mesh::{HeldOp, HeldResult};
use crate::runtime::shard::Shard;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::cell::{Cell, RefCell};
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Feed items merged before the stream is committed (bounds the latency of one batch).
const BATCH_ITEMS: usize = 4096;
/// Bytes one write to a replica gathers from small queued chunks.
const WRITE_GATHER: usize = 64 * 1024;

/// The control core's replication task: runs until the process exits.
pub async fn run(node: Arc<NodeInfo>) {
    let Some(mut feed) = node.repl.feed.take_receiver() else { return };
    let now = crate::storage::now_ms();
    let m = Rc::new(RefCell::new(Master::new(&node.repl, Settings::from_config(&node.config()), now)));
    m.borrow().publish(&node.repl);
    glommio::spawn_local(cron(node.clone(), m.clone())).detach();
    while let Some(item) = feed.next().await {
        {
            let now = crate::storage::now_ms();
            let mut mm = m.borrow_mut();
            crate::runtime::aof::observe(&item);
            mm.feed(&node.repl, item, now);
            for _ in 0..BATCH_ITEMS {
                match feed.try_recv() {
                    Ok(item) => {
                        crate::runtime::aof::observe(&item);
                        mm.feed(&node.repl, item, now)
                    }
                    _ => break,
                }
            }
            mm.commit(&node.repl);
            crate::runtime::aof::commit();
        }
        run_actions(&node, &m);
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
        n += 1;
    }
}

fn run_actions(node: &Arc<NodeInfo>, m: &Rc<RefCell<Master>>) {
    let actions = m.borrow_mut().take_actions();
    for a in actions {
        match a {
            Action::Snapshot { id, exclude_data } => {
                let (tx, rx) = futures_channel::oneshot::channel();
                node.repl.request_snapshot(SnapshotJob { id, exclude_data, reply: tx });
                let (node, m) = (node.clone(), m.clone());
                glommio::spawn_local(async move {
                    let parts = rx.await.unwrap_or_else(|_| vec![Reply::err("ERR snapshot failed")]);
                    m.borrow_mut().snapshot_ready(&node.repl, id, parts);
                    run_actions(&node, &m);
                })
                .detach();
            }
            Action::Start { id, fd, rx, pending, leftover } => {
                // SAFETY: `fd` is a dup of the replica's socket handed over by its home shard;
                // from here these tasks own it.
                let stream = unsafe { glommio::net::TcpStream::from_raw_fd(fd) };
                let (r, w) = futures_lite::io::split(stream);
                glommio::spawn_local(writer(w, rx, pending, fd)).detach();
                glommio::spawn_local(reader(node.clone(), m.clone(), id, r, leftover)).detach();
            }
        }
    }
}

/// Writes a replica's queue to its socket; on an error or `Close`, shuts the socket down so
/// the reader ends too.
async fn writer(
    mut w: impl futures_lite::AsyncWrite + Unpin,
    mut rx: futures_channel::mpsc::UnboundedReceiver<Out>,
    pending: Rc<Cell<u64>>,
    fd: i32,
) {
    let mut gather = Vec::with_capacity(WRITE_GATHER);
    'outer: while let Some(first) = rx.next().await {
        let mut queue = vec![first];
        while let Ok(o) = rx.try_recv() {
            queue.push(o);
        }
        let mut close = false;
        for o in queue {
            match o {
                Out::Close => {
                    close = true;
                    break;
                }
                Out::Data(b) if b.len() >= WRITE_GATHER => {
                    if !flush_gather(&mut w, &mut gather, &pending).await || w.write_all(&b).await.is_err() {
                        break 'outer;
                    }
                    pending.set(pending.get().saturating_sub(b.len() as u64));
                }
                Out::Data(b) => {
                    gather.extend_from_slice(&b);
                    if gather.len() >= WRITE_GATHER && !flush_gather(&mut w, &mut gather, &pending).await {
                        break 'outer;
                    }
                }
            }
        }
        if !flush_gather(&mut w, &mut gather, &pending).await || close {
            break;
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
    let ok = w.write_all(gather).await.is_ok();
    pending.set(pending.get().saturating_sub(gather.len() as u64));
    gather.clear();
    ok
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
    let mut chunk = vec![0u8; 16 * 1024];
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

/// A command from a replica: only REPLCONF ACK matters (Redis answers nothing to it).
fn on_request(node: &NodeInfo, m: &RefCell<Master>, id: u64, args: &[Bytes]) {
    let is = |i: usize, w: &str| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()));
    if is(0, "replconf") && is(1, "ack") {
        let off = args.get(2).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse::<i64>().ok());
        if let Some(off) = off {
            m.borrow_mut().ack(&node.repl, id, off.max(0) as u64, crate::storage::now_ms());
        }
    }
}

/// Shard 0's side: runs the snapshot jobs the control core asks for, one at a time.
pub async fn snapshot_jobs(shard: Rc<Shard>) {
    let node = shard.state.borrow().node.clone();
    let Some(mut jobs) = node.repl.take_snapshot_receiver() else { return };
    while let Some(job) = jobs.next().await {
        let parts = take_snapshot(&shard, job.id, job.exclude_data).await;
        let _ = job.reply.send(parts);
    }
}

/// Takes snapshot `id`: every shard held, each serializes its keys, the mark goes into the
/// feed while all are still held, then they are released. This is the one function a
/// forkless snapshot replaces (it must push the mark at the snapshot's point in time).
pub async fn take_snapshot(shard: &Shard, id: u64, exclude_data: bool) -> Vec<Reply> {
    let all: Vec<usize> = (0..shard.nshards).collect();
    let tx = match shard.lock(&all).await {
        Ok(tx) => tx,
        Err(e) => return vec![e],
    };
    let run: crate::cmd::ShardFn = if exclude_data { empty_part } else { snapshot_part };
    let mut parts = Vec::with_capacity(all.len());
    for &s in &all {
        parts.push(match shard.held(tx, s, HeldOp::Run { run, db: 0, args: Vec::new() }).await {
            HeldResult::Reply(r) => r,
            _ => Reply::err("ERR internal error: shard unavailable"),
        });
    }
    let node = shard.state.borrow().node.clone();
    node.repl.feed.push(FeedItem::Mark { shard: shard.id, snapshot: id });
    shard.unlock(tx, &all).await;
    parts
}

/// One shard's part; from here on the shard records every change (the feed is active), so
/// nothing after the mark is missing from the stream.
fn snapshot_part(st: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let on = st.node.repl.feed.active();
    st.changes.set_recording(on);
    crate::cmd::save::serialize_shard(st, db, args)
}

fn empty_part(st: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let on = st.node.repl.feed.active();
    st.changes.set_recording(on);
    Reply::Array(Vec::new())
}
