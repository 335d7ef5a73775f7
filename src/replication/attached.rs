//! A replica attached to this master, as the master side sees it: where it is in its
//! synchronization, its REPLCONF facts, its ACKs, its position in the shared replication
//! buffer (`backlog`) and its queue to the writer task.

use super::backlog::Backlog;
use super::handoff::ReplicaFacts;
use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What a replica's writer task reads.
pub enum Out {
    /// Bytes to write (counted in the outbox's `pending` until written).
    Data(Bytes),
    /// This many stream bytes were copied from the shared buffer to the end of the writer's
    /// buffer (the replica's position is past them; counted in `pending` until written).
    Stream(usize),
    /// Close the connection once what came before is written.
    Close,
}

/// What goes through the channel.
enum Msg {
    Data(Bytes),
    Close,
    /// From here on, the stream: read from this buffer at the outbox's position.
    Stream(Rc<RefCell<Backlog>>),
    /// The stream grew while the writer waited.
    Wake,
}

/// A replica's queue to its writer task: the bytes sent before its stream (the sync's reply,
/// the snapshot's file), then its stream, read from the replication buffer shared with the
/// backlog and every other replica ([`Backlog`]) at its position, so that a replica holds no
/// copy of the stream of its own.
///
/// While the writer is behind (bytes pending), small pieces are copied into one tail buffer
/// instead of queued one by one, and what it holds is what `pending` says.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Msg>,
    /// Bytes that follow everything in the channel (see the type's doc).
    tail: Rc<RefCell<Tail>>,
    /// Bytes queued and not yet written (the writer subtracts what it wrote).
    pub pending: Rc<Cell<u64>>,
    /// Bytes ever queued.
    queued: Rc<Cell<u64>>,
    /// Offset of the next stream byte the replica needs (0: none yet). The master sets it
    /// where the replica's stream starts; the writer moves it on as it takes the bytes.
    pos: Rc<Cell<u64>>,
    /// The writer reads the stream.
    streaming: Rc<Cell<bool>>,
    /// The writer has written everything it had and waits on the channel.
    waiting: Rc<Cell<bool>>,
}

/// The writer's end of an [`Outbox`]: the channel's items, then the tail, then the stream.
#[derive(Debug)]
pub struct OutReceiver {
    rx: mpsc::UnboundedReceiver<Msg>,
    tail: Rc<RefCell<Tail>>,
    stream: Option<Rc<RefCell<Backlog>>>,
    pos: Rc<Cell<u64>>,
    waiting: Rc<Cell<bool>>,
    /// The outbox's counts: a piece of the stream taken is the writer's copy, pending until
    /// written (the memory ceiling leaves it out with the replica's output).
    pending: Rc<Cell<u64>>,
    queued: Rc<Cell<u64>>,
}

impl OutReceiver {
    /// Takes one message from the channel: Some(item) for the writer, None for one handled
    /// here.
    fn take(&mut self, m: Msg) -> Option<Out> {
        match m {
            Msg::Data(b) => Some(Out::Data(b)),
            Msg::Close => Some(Out::Close),
            Msg::Stream(b) => {
                self.stream = Some(b);
                None
            }
            Msg::Wake => None,
        }
    }

    /// The next item without waiting; `None` when nothing is queued. Stream bytes, when
    /// nothing else comes first, are appended to `buf`, at most `room` of them (none when
    /// `room` is 0: the writer empties its buffer first).
    pub fn try_recv(&mut self, buf: &mut Vec<u8>, room: usize) -> Option<Out> {
        while let Ok(m) = self.rx.try_recv() {
            if let Some(o) = self.take(m) {
                return Some(o);
            }
        }
        if let Some(t) = self.tail.borrow_mut().take() {
            return Some(Out::Data(t));
        }
        let stream = self.stream.as_ref()?;
        if room == 0 {
            return None;
        }
        let had = buf.len();
        let from = stream.borrow().read_into(self.pos.get(), buf, room);
        let n = buf.len() - had;
        if n == 0 {
            return None;
        }
        self.pos.set(from + n as u64);
        self.pending.set(self.pending.get() + n as u64);
        self.queued.set(self.queued.get() + n as u64);
        Some(Out::Stream(n))
    }

    /// The next item (stream bytes into `buf`, as [`OutReceiver::try_recv`]); `None` once the
    /// outbox is gone and everything was taken.
    pub async fn next(&mut self, buf: &mut Vec<u8>, room: usize) -> Option<Out> {
        loop {
            if let Some(o) = self.try_recv(buf, room) {
                return Some(o);
            }
            // Nothing pending: the next piece, or a wake for the stream, comes through the
            // channel.
            self.waiting.set(true);
            let m = futures_lite::StreamExt::next(&mut self.rx).await;
            self.waiting.set(false);
            if let Some(o) = self.take(m?) {
                return Some(o);
            }
        }
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Data(b) => write!(f, "Data({})", b.len()),
            Out::Stream(n) => write!(f, "Stream({n})"),
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

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Data(b) => write!(f, "Data({})", b.len()),
            Msg::Close => f.write_str("Close"),
            Msg::Stream(_) => f.write_str("Stream"),
            Msg::Wake => f.write_str("Wake"),
        }
    }
}

impl Outbox {
    /// A queue and its receiving end.
    pub fn new() -> (Outbox, OutReceiver) {
        let (tx, rx) = mpsc::unbounded();
        let tail = Rc::new(RefCell::new(Tail::default()));
        let pos = Rc::new(Cell::new(0));
        let waiting = Rc::new(Cell::new(false));
        let pending = Rc::new(Cell::new(0));
        let queued = Rc::new(Cell::new(0));
        (
            Outbox {
                tx,
                tail: tail.clone(),
                pending: pending.clone(),
                queued: queued.clone(),
                pos: pos.clone(),
                streaming: Rc::new(Cell::new(false)),
                waiting: waiting.clone(),
            },
            OutReceiver { rx, tail, stream: None, pos, waiting, pending, queued },
        )
    }

    /// Offset of the next stream byte the replica needs, if its stream has a start.
    pub(super) fn position(&self) -> Option<u64> {
        Some(self.pos.get()).filter(|&p| p > 0)
    }

    /// The replica's stream starts at offset `off` (its blocks are kept from here).
    pub(super) fn pin(&self, off: u64) {
        self.pos.set(off.max(1));
    }

    /// The writer starts on the stream at the pinned position, after what was sent before.
    pub(super) fn start_stream(&self, buf: &Rc<RefCell<Backlog>>) {
        if self.streaming.replace(true) {
            return;
        }
        self.flush_tail();
        let _ = self.tx.unbounded_send(Msg::Stream(buf.clone()));
    }

    /// The stream grew: wakes the writer if it waits for it.
    pub(super) fn kick(&self) {
        if self.streaming.get() && self.waiting.replace(false) {
            let _ = self.tx.unbounded_send(Msg::Wake);
        }
    }

    fn flush_tail(&self) {
        if let Some(t) = self.tail.borrow_mut().take() {
            let _ = self.tx.unbounded_send(Msg::Data(t));
        }
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
            let _ = self.tx.unbounded_send(Msg::Data(b));
            return;
        }
        self.tail.borrow_mut().add(&b, |c| {
            let _ = self.tx.unbounded_send(Msg::Data(c));
        });
    }

    pub(super) fn close(&self) {
        self.flush_tail();
        let _ = self.tx.unbounded_send(Msg::Close);
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

    /// Its output as Redis counts it: what is queued for it besides the stream, and the
    /// blocks of the shared buffer it references (see [`Backlog::referenced_from`]).
    pub(super) fn output_bytes(&self, buf: Option<&Backlog>) -> u64 {
        let stream = match (self.out.position(), buf) {
            (Some(p), Some(b)) => b.referenced_from(p),
            _ => 0,
        };
        self.out.pending.get() + stream
    }

    /// Its stream starts at offset `off` and is held back (during its snapshot, or until its
    /// first ACK after a diskless one): the shared buffer keeps it from there.
    pub(super) fn hold_from(&mut self, off: u64) {
        if !self.facts.rdb_only {
            self.out.pin(off);
        }
    }

    /// The writer starts on the stream held back for it.
    pub(super) fn release_held(&mut self, buf: &Rc<RefCell<Backlog>>) {
        if self.out.position().is_some() {
            self.out.start_stream(buf);
        }
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
