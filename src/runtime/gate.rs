//! The shard gate: while a cross-shard transaction holds a shard, nothing else runs there.
//!
//! Remote messages that arrive while the gate is held are deferred in arrival order and replayed
//! on release; local connections wait (asynchronously) for the gate to open. Transactions take
//! gates in ascending shard order, so two transactions can never wait on each other.

use super::mesh::Msg;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::Waker;

/// A shard's gate.
#[derive(Default)]
pub struct Gate {
    holder: Cell<Option<u64>>,
    deferred: RefCell<VecDeque<Msg>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Gate {
    /// The transaction holding the gate, if any.
    pub fn holder(&self) -> Option<u64> {
        self.holder.get()
    }

    /// Takes the gate if it is free.
    pub fn try_take(&self, tx: u64) -> bool {
        if self.holder.get().is_none() {
            self.holder.set(Some(tx));
            true
        } else {
            false
        }
    }

    /// Releases the gate held by `tx`; returns false if `tx` did not hold it.
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
        self.deferred.borrow_mut().pop_front()
    }

    /// Wakes local connections waiting for the gate.
    pub fn wake_waiters(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Waits until the gate is open (not held).
    pub async fn wait_open(&self) {
        std::future::poll_fn(|cx| {
            if self.holder.get().is_none() {
                std::task::Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// Waits until the gate is free, then takes it for `tx`.
    pub async fn take(&self, tx: u64) {
        loop {
            self.wait_open().await;
            if self.try_take(tx) {
                return;
            }
        }
    }
}
