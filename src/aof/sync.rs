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
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[repr(align(64))]
struct Slot {
    durable: AtomicU64,
    /// The one waker of this shard's waiting connections that the writer wakes (the
    /// "leader"); it relays the news to the others on its own thread ([`Local`]).
    leader: Mutex<Option<Waker>>,
}

/// Static, not allocated on first use: a heap array made by the first write would count in
/// `used_memory` from then on (16 KB that a node without the AOF never needs).
static SLOTS: [Slot; MAX_SHARDS] =
    [const { Slot { durable: AtomicU64::new(0), leader: Mutex::new(None) } }; MAX_SHARDS];

fn slots() -> &'static [Slot] {
    &SLOTS
}

/// Connections wait for durability (AOF on with `appendfsync always`).
static ALWAYS: AtomicBool = AtomicBool::new(false);
/// The last write and fsync succeeded.
static WRITE_OK: AtomicBool = AtomicBool::new(true);
static WRITE_ERR: Mutex<String> = Mutex::new(String::new());
/// Shards that may have waiters (set once at start).
static SHARDS: AtomicU64 = AtomicU64::new(MAX_SHARDS as u64);
/// Bumped by every publish (and by turning waiting off): a shard's waiters re-check when it
/// moved since they last looked.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A shard thread's waiting connections: only the leader's waker crosses threads; the others
/// wait here and are woken by whichever waiter of this thread first sees a new generation.
#[derive(Default)]
struct Local {
    waiters: Vec<Waker>,
    seen: u64,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// Wakes this thread's waiters (local wakes, no cross-thread signal).
fn wake_local() {
    let ws = LOCAL.with(|l| std::mem::take(&mut l.borrow_mut().waiters));
    for w in ws {
        w.wake();
    }
}

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

/// One wake per shard with waiters: its leader's.
fn wake_all() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    for s in &slots()[..nshards()] {
        let w = s.leader.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// Shard `s`'s durable count.
pub fn durable(s: usize) -> u64 {
    slots().get(s).map_or(0, |x| x.durable.load(Ordering::Acquire))
}

/// Waits until every push made before this call is durable (or waiting is turned off).
/// `home` is the shard whose thread polls the wait.
pub fn wait_durable(feed: &Feed, home: usize) -> Wait {
    let targets: smallvec::SmallVec<[u64; 8]> = (0..nshards()).map(|s| feed.pushed(s)).collect();
    Wait { targets, home, leader: None }
}

/// The wait of [`wait_durable`].
pub struct Wait {
    targets: smallvec::SmallVec<[u64; 8]>,
    home: usize,
    /// The waker this wait left in its shard's slot, if it did.
    leader: Option<Waker>,
}

impl Wait {
    fn done(&self) -> bool {
        !must_wait() || self.targets.iter().enumerate().all(|(s, &t)| durable(s) >= t)
    }
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The first waiter polled after a publish relays it to the others of this thread.
        let generation = GENERATION.load(Ordering::Acquire);
        let relay = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            let new = l.seen != generation;
            l.seen = generation;
            new
        });
        if relay {
            wake_local();
        }
        if self.done() {
            return Poll::Ready(());
        }
        LOCAL.with(|l| l.borrow_mut().waiters.push(cx.waker().clone()));
        if let Some(slot) = slots().get(self.home) {
            let mut leader = slot.leader.lock().unwrap_or_else(|p| p.into_inner());
            if leader.is_none() {
                *leader = Some(cx.waker().clone());
                drop(leader);
                self.leader = Some(cx.waker().clone());
            }
        }
        // A publish between the first look and the registration is seen here.
        if self.done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Wait {
    /// A leader that ends (released, or its connection gone) takes its waker back out of the
    /// slot and wakes this thread's other waiters, so one of them takes over.
    fn drop(&mut self) {
        let Some(mine) = self.leader.take() else { return };
        if let Some(slot) = slots().get(self.home) {
            let mut leader = slot.leader.lock().unwrap_or_else(|p| p.into_inner());
            if leader.as_ref().is_some_and(|w| w.will_wake(&mine)) {
                *leader = None;
            }
        }
        wake_local();
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

    /// The tests share the module's statics.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn wait_covers_pushes_before_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Many connections of one shard wait at once, some giving up midway (a closed
    /// connection drops its wait, perhaps the one whose waker the writer holds): every wait
    /// still ends once its pushes are published, with one cross-thread wake per publish.
    #[test]
    fn every_waiter_of_a_shard_is_released() {
        use crate::replication::feed::FeedItem;
        use std::sync::Arc;
        use std::time::Duration;
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        set_shards(1);
        set_always(true);
        let feed = Arc::new(Feed::new());
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (feed, stop) = (feed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    publish(&[feed.pushed(0)]);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let shard = {
            let feed = feed.clone();
            std::thread::spawn(move || {
                let ex = glommio::LocalExecutorBuilder::default().make().expect("executor");
                ex.run(async move {
                    let tasks: Vec<_> = (0..64u64)
                        .map(|t| {
                            let feed = feed.clone();
                            glommio::spawn_local(async move {
                                for i in 0..40u64 {
                                    feed.push(FeedItem::Units { shard: 0, units: Vec::new(), atomic: false });
                                    let wait = wait_durable(&feed, 0);
                                    if (t + i) % 7 == 0 {
                                        // Gives up after a moment (its connection closed).
                                        let give_up = glommio::timer::sleep(Duration::from_micros(50 + t * 10));
                                        futures_lite::future::or(wait, async {
                                            give_up.await;
                                        })
                                        .await;
                                    } else {
                                        wait.await;
                                    }
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await;
                    }
                });
                let _ = done_tx.send(());
            })
        };
        let finished = done_rx.recv_timeout(Duration::from_secs(60)).is_ok();
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.join();
        set_always(false);
        assert!(finished, "waiters were left waiting after their pushes were published");
        let _ = shard.join();
    }
}
