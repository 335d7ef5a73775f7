//! The shard gate: while a cross-shard transaction holds a shard, nothing else runs there.
//!
//! Invariants:
//! - At most one holder at a time. Transactions take gates in ascending shard order, so two
//!   transactions can never wait on each other.
//! - Takers are served in arrival order (FIFO), whether they are remote (`Msg::Lock` from
//!   another shard) or local (a connection of this shard). A local command that only needs the
//!   gate open queues as a taker too, for the instant its synchronous run takes, so a stream of
//!   transactions cannot starve it.
//! - While the gate is held, other remote work (`Msg::Batch`, `Msg::Run`, `Msg::Look`) is deferred in arrival
//!   order; when the gate is released, deferred work runs first, then the gate passes directly
//!   to the next taker. The gate is never open while a taker waits.
//! - The one exception: a running snapshot's steps (`Msg::Frozen`) read only what the keys
//!   were at its start, so they run at once whoever holds the gate.

use super::mesh::Msg;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;

/// Someone waiting to hold the gate.
enum Taker {
    /// A transaction coordinated by another shard; told over its oneshot.
    Remote { tx: u64, reply: oneshot::Sender<()> },
    /// A connection of this shard; woken when the gate is handed to it.
    Local { tx: u64, waker: Rc<Cell<Option<Waker>>> },
}

/// A shard's gate.
#[derive(Default)]
pub struct Gate {
    holder: Cell<Option<u64>>,
    deferred: RefCell<VecDeque<Msg>>,
    takers: RefCell<VecDeque<Taker>>,
}

impl Gate {
    /// The transaction holding the gate, if any.
    pub fn holder(&self) -> Option<u64> {
        self.holder.get()
    }

    /// Grants the gate to a remote transaction now if free, else queues it.
    pub fn lock_remote(&self, tx: u64, reply: oneshot::Sender<()>) {
        if self.holder.get().is_none() {
            self.holder.set(Some(tx));
            if reply.send(()).is_err() {
                // The coordinator is gone; nobody will release.
                self.holder.set(None);
            }
        } else {
            self.takers.borrow_mut().push_back(Taker::Remote { tx, reply });
        }
    }

    /// Releases the gate held by `tx`; returns false if `tx` did not hold it. The caller then
    /// replays deferred work and hands the gate on with [`Gate::next_deferred`] and
    /// [`Gate::hand_on`].
    pub fn release(&self, tx: u64) -> bool {
        if self.holder.get() == Some(tx) {
            self.holder.set(None);
            true
        } else {
            false
        }
    }

    /// Queues a message until the gate opens.
    pub fn defer(&self, msg: Msg) {
        self.deferred.borrow_mut().push_back(msg);
    }

    /// Takes the next deferred message (when the gate is open).
    pub fn next_deferred(&self) -> Option<Msg> {
        if self.holder.get().is_some() {
            return None;
        }
        self.deferred.borrow_mut().pop_front()
    }

    /// Passes the open gate to the next taker in line, if any.
    pub fn hand_on(&self) {
        while self.holder.get().is_none() {
            let Some(t) = self.takers.borrow_mut().pop_front() else { return };
            match t {
                Taker::Remote { tx, reply } => {
                    self.holder.set(Some(tx));
                    if reply.send(()).is_err() {
                        self.holder.set(None);
                    }
                }
                Taker::Local { tx, waker } => {
                    self.holder.set(Some(tx));
                    if let Some(w) = waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    /// Waits in line until the gate is held for `tx` (taken at once when free).
    pub async fn take(&self, tx: u64) {
        if self.holder.get().is_none() {
            self.holder.set(Some(tx));
            return;
        }
        let waker: Rc<Cell<Option<Waker>>> = Rc::new(Cell::new(None));
        self.takers.borrow_mut().push_back(Taker::Local { tx, waker: waker.clone() });
        std::future::poll_fn(|cx| {
            if self.holder.get() == Some(tx) {
                std::task::Poll::Ready(())
            } else {
                waker.set(Some(cx.waker().clone()));
                std::task::Poll::Pending
            }
        })
        .await
    }
}
