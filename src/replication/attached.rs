//! A replica attached to this master, as the master side sees it: where it is in its
//! synchronization, its REPLCONF facts, its ACKs, the stream held back for it (during its
//! snapshot, or until its first ACK after a diskless one) and its queue to the writer task.

use super::handoff::ReplicaFacts;
use bytes::Bytes;
use futures_channel::mpsc;
use std::cell::Cell;
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
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    /// Bytes queued and not yet written (the writer subtracts what it wrote).
    pub pending: Rc<Cell<u64>>,
    /// Bytes ever queued.
    queued: Rc<Cell<u64>>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Data(b) => write!(f, "Data({})", b.len()),
            Out::Close => f.write_str("Close"),
        }
    }
}

impl Outbox {
    /// A queue and its receiving end.
    pub fn new() -> (Outbox, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded();
        (Outbox { tx, pending: Rc::new(Cell::new(0)), queued: Rc::new(Cell::new(0)) }, rx)
    }

    /// Bytes the writer has written so far.
    pub(super) fn written(&self) -> u64 {
        self.queued.get() - self.pending.get()
    }

    pub(super) fn send(&self, b: Bytes) {
        self.pending.set(self.pending.get() + b.len() as u64);
        self.queued.set(self.queued.get() + b.len() as u64);
        let _ = self.tx.unbounded_send(Out::Data(b));
    }

    pub(super) fn close(&self) {
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
    pub(super) held: VecDeque<Bytes>,
    pub(super) held_bytes: u64,
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
        self.out.pending.get() + self.held_bytes
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
            self.held_bytes += b.len() as u64;
            self.held.push_back(b.clone());
        }
    }

    pub(super) fn release_held(&mut self) {
        while let Some(b) = self.held.pop_front() {
            self.out.send(b);
        }
        self.held_bytes = 0;
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
