//! Durability points shared by the writer thread and the shards' connections
//! (`appendfsync always` kept honestly, with group commit).
//!
//! The feed counts, per shard, the `Units` items each shard pushed (`Feed::pushed`, bumped by
//! the pushing thread after the push). The control core counts what it merged per shard and
//! hands those counts to the writer thread with the bytes; once the bytes are written (and
//! fdatasync'ed, under `always`) the writer publishes them here as the durable counts.
//!
//! A connection about to write replies, while [`must_wait`] is true, reads every shard's
//! pushed count and waits until every durable count reaches it ([`wait_durable`]). A write's
//! push happens before its reply reaches the connection, so its count is covered: no client
//! sees a reply before the write behind it (and any write merged before it) is on disk. One
//! fdatasync covers every write merged before it, whoever made it. Only connections that wait
//! touch their home shard's waker list; other shards' paths are unaffected.
//!
//! Failures: [`set_write_error`] turns `aof_last_write_status` to err and makes writes answer
//! MISCONF until a later write succeeds.

use crate::replication::feed::{Feed, MAX_SHARDS};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
#[repr(align(64))]
struct Slot {
    durable: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
}

fn slots() -> &'static [Slot] {
    static SLOTS: OnceLock<Vec<Slot>> = OnceLock::new();
    SLOTS.get_or_init(|| (0..MAX_SHARDS).map(|_| Slot::default()).collect())
}

/// Connections wait for durability (AOF on with `appendfsync always`).
static ALWAYS: AtomicBool = AtomicBool::new(false);
/// The last write and fsync succeeded.
static WRITE_OK: AtomicBool = AtomicBool::new(true);
static WRITE_ERR: Mutex<String> = Mutex::new(String::new());
/// Shards that may have waiters (set once at start).
static SHARDS: AtomicU64 = AtomicU64::new(MAX_SHARDS as u64);

/// Records the node's shard count (wakes scan only those).
pub fn set_shards(n: usize) {
    SHARDS.store(n.min(MAX_SHARDS) as u64, Ordering::Relaxed);
}

fn nshards() -> usize {
    SHARDS.load(Ordering::Relaxed) as usize
}

/// True while replies of writes must wait for the AOF's fdatasync (one atomic load).
#[inline]
pub fn must_wait() -> bool {
    ALWAYS.load(Ordering::Acquire)
}

/// Turns waiting on or off; off releases every waiter.
pub fn set_always(on: bool) {
    ALWAYS.store(on, Ordering::Release);
    if !on {
        wake_all();
    }
}

/// Publishes durable counts (the writer thread, after its write and fsync) and wakes waiters.
pub fn publish(counts: &[u64]) {
    let mut any = false;
    for (s, &c) in counts.iter().enumerate().take(MAX_SHARDS) {
        let d = &slots()[s].durable;
        if d.load(Ordering::Relaxed) < c {
            d.store(c, Ordering::Release);
            any = true;
        }
    }
    if any {
        wake_all();
    }
}

fn wake_all() {
    for s in &slots()[..nshards()] {
        let ws = std::mem::take(&mut *s.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in ws {
            w.wake();
        }
    }
}

/// Shard `s`'s durable count.
pub fn durable(s: usize) -> u64 {
    slots().get(s).map_or(0, |x| x.durable.load(Ordering::Acquire))
}

/// Waits until every push made before this call is durable (or waiting is turned off).
pub fn wait_durable(feed: &Feed, home: usize) -> Wait {
    let targets: smallvec::SmallVec<[u64; 8]> = (0..nshards()).map(|s| feed.pushed(s)).collect();
    Wait { targets, home }
}

/// The wait of [`wait_durable`].
pub struct Wait {
    targets: smallvec::SmallVec<[u64; 8]>,
    home: usize,
}

impl Wait {
    fn done(&self) -> bool {
        !must_wait() || self.targets.iter().enumerate().all(|(s, &t)| durable(s) >= t)
    }
}

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done() {
            return Poll::Ready(());
        }
        if let Some(slot) = slots().get(self.home) {
            slot.waiters.lock().unwrap_or_else(|p| p.into_inner()).push(cx.waker().clone());
        }
        if self.done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// `aof_last_write_status` is ok.
#[inline]
pub fn write_ok() -> bool {
    WRITE_OK.load(Ordering::Relaxed)
}

/// A write or fsync failed with `err` (strerror text).
pub fn set_write_error(err: String) {
    *WRITE_ERR.lock().unwrap_or_else(|p| p.into_inner()) = err;
    WRITE_OK.store(false, Ordering::Relaxed);
}

/// Writes succeed again (`AOF write error looks solved`).
pub fn set_write_ok() {
    WRITE_OK.store(true, Ordering::Relaxed);
}

/// The MISCONF error writes get while the AOF cannot be written.
pub fn misconf() -> Option<String> {
    if write_ok() {
        return None;
    }
    let e = WRITE_ERR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Some(format!("MISCONF Errors writing to the AOF file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_covers_pushes_before_it() {
        let feed = Feed::new();
        set_shards(2);
        set_always(true);
        feed.push(crate::replication::feed::FeedItem::Units { shard: 1, units: Vec::new(), atomic: false });
        let w = wait_durable(&feed, 0);
        assert!(!w.done());
        publish(&[durable(0), feed.pushed(1)]);
        assert!(w.done());
        set_always(false);
    }
}
