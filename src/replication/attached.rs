//! A replica attached to this master, as the master side sees it: where it is in its
//! synchronization, its REPLCONF facts, its ACKs, the stream held back for it (during its
//! snapshot, or until its first ACK after a diskless one) and its queue to the writer task.

use super::handoff::ReplicaFacts;
use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// What a replica's writer task reads.
pub enum Out {
    /// Bytes to write.
    Data(Bytes),
    /// Close the connection once what came before is written.
    Close,
}

/// A replica's queue to its writer task, with the bytes not yet written.
///
/// While the writer is behind (bytes pending), small pieces of the stream are copied into one
/// tail buffer instead of queued one by one: a replica that stops reading then holds about the
/// stream's bytes, not a queue node and a chunk header per write (100k single-command writes
/// held 10 MB more than their bytes), and what it holds is what `pending` says, which the
/// memory ceiling leaves out of its count. A writer that keeps up gets every piece at once.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    /// Stream bytes that follow everything in the channel (see the type's doc).
    tail: Rc<RefCell<Tail>>,
    /// Bytes queued and not yet written (the writer subtracts what it wrote).
    pub pending: Rc<Cell<u64>>,
    /// Bytes ever queued.
    queued: Rc<Cell<u64>>,
}

/// The writer's end of an [`Outbox`]: the channel's items, then the tail.
#[derive(Debug)]
pub struct OutReceiver {
    rx: mpsc::UnboundedReceiver<Out>,
    tail: Rc<RefCell<Tail>>,
}

impl OutReceiver {
    /// The next item without waiting; `None` when nothing is queued.
    pub fn try_recv(&mut self) -> Option<Out> {
        if let Ok(o) = self.rx.try_recv() {
            return Some(o);
        }
        self.tail.borrow_mut().take().map(Out::Data)
    }

    /// The next item; `None` once the outbox is gone and everything was taken.
    pub async fn next(&mut self) -> Option<Out> {
        if let Some(o) = self.try_recv() {
            return Some(o);
        }
        // Nothing pending: the next piece goes through the channel.
        futures_lite::StreamExt::next(&mut self.rx).await
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Data(b) => write!(f, "Data({})", b.len()),
            Out::Close => f.write_str("Close"),
        }
    }
}

/// Small pieces of the stream copied into buffers of [`TAIL_FULL`] bytes: a full buffer is
/// handed on whole and a new one started, so each buffer is one allocation of its size.
#[derive(Debug, Clone, Default)]
struct Tail(BytesMut);

impl Tail {
    /// Appends `b`; returns the previous buffer when `b` did not fit in it.
    fn push(&mut self, b: &[u8]) -> Option<Bytes> {
        let full = (!self.0.is_empty() && self.0.len() + b.len() > self.0.capacity()).then(|| self.take());
        if self.0.capacity() == 0 {
            self.0 = BytesMut::with_capacity(TAIL_FULL.max(b.len()));
        }
        self.0.extend_from_slice(b);
        full.flatten()
    }

    /// Adds a piece of the stream after what came before: a small one is copied into the
    /// buffer, a big one follows the buffer so far as it is; what is handed on goes to `emit`,
    /// in order.
    fn add(&mut self, b: &Bytes, mut emit: impl FnMut(Bytes)) {
        if b.len() < TAIL_PIECE {
            if let Some(full) = self.push(b) {
                emit(full);
            }
            return;
        }
        if let Some(t) = self.take() {
            emit(t);
        }
        emit(b.clone());
    }

    /// The buffer so far, if any; a new one starts with the next piece.
    fn take(&mut self) -> Option<Bytes> {
        (!self.0.is_empty()).then(|| std::mem::take(&mut self.0).freeze())
    }
}

/// Pieces below this size are copied into the tail while the writer is behind.
const TAIL_PIECE: usize = 4096;
/// A tail this big is handed to the channel as it is.
const TAIL_FULL: usize = 16 * 1024;

impl Outbox {
    /// A queue and its receiving end.
    pub fn new() -> (Outbox, OutReceiver) {
        let (tx, rx) = mpsc::unbounded();
        let tail = Rc::new(RefCell::new(Tail::default()));
        (
            Outbox { tx, tail: tail.clone(), pending: Rc::new(Cell::new(0)), queued: Rc::new(Cell::new(0)) },
            OutReceiver { rx, tail },
        )
    }

    /// Bytes the writer has written so far.
    pub(super) fn written(&self) -> u64 {
        self.queued.get() - self.pending.get()
    }

    pub(super) fn send(&self, b: Bytes) {
        let behind = self.pending.get() > 0;
        self.pending.set(self.pending.get() + b.len() as u64);
        self.queued.set(self.queued.get() + b.len() as u64);
        if !behind {
            // Nothing pending, so the tail is empty: straight to the writer.
            let _ = self.tx.unbounded_send(Out::Data(b));
            return;
        }
        self.tail.borrow_mut().add(&b, |c| {
            let _ = self.tx.unbounded_send(Out::Data(c));
        });
    }

    pub(super) fn close(&self) {
        if let Some(t) = self.tail.borrow_mut().take() {
            let _ = self.tx.unbounded_send(Out::Data(t));
        }
        let _ = self.tx.unbounded_send(Out::Close);
    }
}

/// Where a replica is in its synchronization (`SLAVE_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Waiting for a snapshot to start.
    WaitStart,
    /// Its snapshot was started (id); the stream after the mark is held for it.
    WaitEnd(u64),
    /// RDB queued, streaming.
    Online,
}

#[derive(Debug)]
pub(super) struct Replica {
    pub(super) id: u64,
    pub(super) fd: i32,
    pub(super) addr: String,
    pub(super) laddr: String,
    pub(super) name: String,
    pub(super) db: usize,
    pub(super) created_ms: u64,
    pub(super) facts: ReplicaFacts,
    pub(super) pre_psync: bool,
    pub(super) state: State,
    /// Time it asked for a sync (the diskless delay counts from it).
    pub(super) asked_ms: u64,
    pub(super) ack_offset: u64,
    pub(super) ack_time_ms: u64,
    /// Stream held back (during the snapshot, or until the first ACK after a diskless one).
    pub(super) held: Held,
    /// Diskless: the stream starts with the first ACK.
    pub(super) start_on_ack: bool,
    /// Offset of its snapshot (`psync_initial_offset`).
    pub(super) initial_offset: u64,
    pub(super) out: Outbox,
    /// Since when the output is over the soft limit.
    pub(super) soft_since_ms: Option<u64>,
    /// During a diskless transfer: bytes written when the cron last saw the writer progress,
    /// and since when it has not (`repl_last_partial_write`).
    pub(super) stalled: Option<(u64, u64)>,
}

impl Replica {
    pub(super) fn ip(&self) -> String {
        self.facts.ip_address.clone().unwrap_or_else(|| peer_ip(&self.addr))
    }

    pub(super) fn name(&self) -> String {
        format!("{}:{}", self.ip(), self.facts.listening_port)
    }

    pub(super) fn output_bytes(&self) -> u64 {
        self.out.pending.get() + self.held.bytes
    }

    /// Sends or holds stream bytes.
    pub(super) fn stream(&mut self, b: &Bytes) {
        match self.state {
            State::WaitStart => {}
            State::WaitEnd(_) => self.hold(b),
            State::Online if self.start_on_ack || !self.held.is_empty() => self.hold(b),
            State::Online => self.out.send(b.clone()),
        }
    }

    pub(super) fn hold(&mut self, b: &Bytes) {
        if !self.facts.rdb_only {
            self.held.push(b);
        }
    }

    pub(super) fn release_held(&mut self) {
        for b in self.held.take() {
            self.out.send(b);
        }
    }
}

/// Stream held back for a replica, small pieces copied into one tail (as [`Outbox`] does
/// while its writer is behind): a held stream of many single-command writes costs its
/// bytes, not a queue entry per write.
#[derive(Debug, Clone, Default)]
pub(super) struct Held {
    chunks: VecDeque<Bytes>,
    tail: Tail,
    /// Bytes held.
    pub(super) bytes: u64,
}

impl Held {
    fn push(&mut self, b: &Bytes) {
        self.bytes += b.len() as u64;
        let chunks = &mut self.chunks;
        self.tail.add(b, |c| chunks.push_back(c));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    pub(super) fn clear(&mut self) {
        *self = Held::default();
    }

    /// Everything held, in order; the hold is empty afterwards.
    fn take(&mut self) -> impl Iterator<Item = Bytes> {
        let mut chunks = std::mem::take(&mut self.chunks);
        chunks.extend(self.tail.take());
        self.bytes = 0;
        chunks.into_iter()
    }
}

fn peer_ip(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}

/// Asks a replica's tasks to end: the writer stops after what is queued, the socket is shut
/// down so the reader wakes.
pub(super) fn close_replica(r: &Replica) {
    r.out.close();
    // SAFETY: the fd is the replica's socket, owned by its tasks until they end (they end
    // after this); shutdown only wakes pending I/O.
    unsafe {
        libc::shutdown(r.fd, libc::SHUT_RDWR);
    }
}
