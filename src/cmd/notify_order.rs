//! Keyspace notifications in the order a client sees its replies.
//!
//! Redis writes a command's notifications into its subscribers' buffers before the command's
//! reply, so once a client has a reply, anything published after it (by any client) reaches
//! every subscriber after that command's events. Here a shard publishes to its own
//! subscribers at once and hands the rest to its forwarder task (`cmd::notify`), which carries
//! them to the other shards; a connection therefore waits, before it writes the replies of a
//! batch, until every batch of events handed to a forwarder before then has been taken by
//! every other shard ([`settled`]). Without this, a PUBLISH sent after the reply (or the
//! events of the next command, from another shard) could reach a subscriber first.
//!
//! Counters per shard: batches handed to its forwarder, and batches delivered everywhere; plus
//! a node-wide count of batches in flight, so the wait costs one load when none are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Poll, Waker};

struct Order {
    /// Per shard: batches handed to its forwarder.
    sent: Box<[AtomicU64]>,
    /// Per shard: batches every other shard has taken.
    done: Box<[AtomicU64]>,
    /// Batches handed to a forwarder and not yet delivered everywhere.
    in_flight: AtomicU64,
    /// Connections waiting for deliveries.
    waiters: Mutex<Vec<Waker>>,
}

static ORDER: OnceLock<Order> = OnceLock::new();

/// Sizes the counters for `shards` data shards (at start-up, before any shard runs).
pub fn init(shards: usize) {
    let zeros = || (0..shards).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
    let _ = ORDER.set(Order {
        sent: zeros(),
        done: zeros(),
        in_flight: AtomicU64::new(0),
        waiters: Mutex::new(Vec::new()),
    });
}

/// Shard `shard` hands a batch to its forwarder.
pub fn sent(shard: usize) {
    if let Some(o) = ORDER.get() {
        if let Some(c) = o.sent.get(shard) {
            o.in_flight.fetch_add(1, Ordering::SeqCst);
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Shard `shard`'s forwarder delivered `n` more batches to every other shard.
pub fn delivered(shard: usize, n: u64) {
    let Some(o) = ORDER.get() else { return };
    let Some(c) = o.done.get(shard) else { return };
    c.fetch_add(n, Ordering::SeqCst);
    o.in_flight.fetch_sub(n, Ordering::SeqCst);
    let waiters = std::mem::take(&mut *o.waiters.lock().unwrap_or_else(|p| p.into_inner()));
    for w in waiters {
        w.wake();
    }
}

/// Waits until every batch of events handed to a forwarder before this call has been
/// delivered to every shard (at once when none is in flight).
pub async fn settled() {
    let Some(o) = ORDER.get() else { return };
    if o.in_flight.load(Ordering::SeqCst) == 0 {
        return;
    }
    let want: Vec<u64> = o.sent.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let reached = || o.done.iter().zip(&want).all(|(d, &w)| d.load(Ordering::SeqCst) >= w);
    std::future::poll_fn(|cx| {
        if reached() {
            return Poll::Ready(());
        }
        o.waiters.lock().unwrap_or_else(|p| p.into_inner()).push(cx.waker().clone());
        // A delivery between the check and the registration woke nobody: look again.
        if reached() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
