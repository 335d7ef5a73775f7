//! One wake-up per shard for the clients held before their command runs: by the node's pause
//! (CLIENT PAUSE, a failover, SHUTDOWN waiting for replicas) or while the node holds every
//! client (a small full sync's load, DEBUG SLEEP).
//!
//! A held client awaits [`next_change`] and then looks again whether it is still held. One
//! watcher task per shard, running only while some client of the shard waits, reads the
//! node's hold state (the pause's generation and kind, the node-wide hold) when it starts
//! (so a change between a client's check and the watcher's start is never missed), whenever
//! a change is announced from any thread, and when the pause's end passes; it wakes every
//! waiter when the state changed. Held clients therefore cost nothing while they wait: each
//! used to poll on its own 2 ms timer, and 2000 clients held by a CLIENT PAUSE kept a shard
//! 43% busy (redis-server: 0.2%).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The watcher's second way out: it looks at the hold state at least this often.
const SLOW: Duration = Duration::from_millis(100);

/// The shard's waiting clients.
#[derive(Default)]
struct Waiters {
    /// One slot per waiting future (its latest waker, taken when woken).
    slots: Vec<Option<Waker>>,
    /// Slots free for reuse.
    free: Vec<usize>,
    /// Futures holding a slot.
    live: usize,
    /// Bumped at each change the watcher saw; a future completes once it moved.
    generation: u64,
    /// Whether the watcher task runs.
    watching: bool,
}

thread_local! {
    static WAITERS: RefCell<Waiters> = RefCell::new(Waiters::default());
}

/// What decides whether a client is held, read from the node-wide state.
fn hold_state() -> (u64, crate::pause::Kind, bool) {
    let now = crate::storage::tick_clock();
    (crate::pause::generation(), crate::pause::kind(now), super::pause::node_held())
}

/// Completes at the next change of the node's hold state (or the watcher's first look).
pub(super) fn next_change() -> Change {
    Change { slot: None, generation: WAITERS.with(|w| w.borrow().generation) }
}

/// See [`next_change`].
pub(super) struct Change {
    slot: Option<usize>,
    generation: u64,
}

impl Future for Change {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let start = WAITERS.with(|w| {
            let mut w = w.borrow_mut();
            if w.generation != self.generation {
                return None;
            }
            match self.slot {
                Some(i) => match &mut w.slots[i] {
                    Some(k) if k.will_wake(cx.waker()) => {}
                    s => *s = Some(cx.waker().clone()),
                },
                None => {
                    let waker = Some(cx.waker().clone());
                    let i = match w.free.pop() {
                        Some(i) => {
                            w.slots[i] = waker;
                            i
                        }
                        None => {
                            w.slots.push(waker);
                            w.slots.len() - 1
                        }
                    };
                    w.live += 1;
                    self.slot = Some(i);
                }
            }
            Some(!std::mem::replace(&mut w.watching, true))
        });
        match start {
            None => {
                self.free_slot();
                Poll::Ready(())
            }
            Some(start) => {
                if start {
                    glommio::spawn_local(watch()).detach();
                }
                Poll::Pending
            }
        }
    }
}

impl Change {
    fn free_slot(&mut self) {
        if let Some(i) = self.slot.take() {
            WAITERS.with(|w| {
                let mut w = w.borrow_mut();
                w.slots[i] = None;
                w.free.push(i);
                w.live -= 1;
            });
        }
    }
}

impl Drop for Change {
    fn drop(&mut self) {
        self.free_slot();
    }
}

/// The shard's watcher: runs while futures wait and wakes them all at each change it sees. It
/// sleeps until a change is announced ([`crate::pause::hold_changed`], from any thread), the
/// pause's end passes, or [`SLOW`] (a second way out).
async fn watch() {
    let mut last = None;
    loop {
        // The count of announcements is read before the state: a change after this read is
        // announced after it, and ends the wait below.
        let seen = crate::pause::hold_changes();
        let now = hold_state();
        if last != Some(now) {
            last = Some(now);
            let woken: Vec<Waker> = WAITERS.with(|w| {
                let mut w = w.borrow_mut();
                w.generation += 1;
                w.slots.iter_mut().filter_map(Option::take).collect()
            });
            woken.into_iter().for_each(Waker::wake);
        }
        let idle = WAITERS.with(|w| {
            let mut w = w.borrow_mut();
            if w.live == 0 {
                w.watching = false;
            }
            w.live == 0
        });
        if idle {
            return;
        }
        let wait = match crate::pause::end_ms() {
            0 | u64::MAX => SLOW,
            end => Duration::from_millis(end.saturating_sub(crate::storage::tick_clock()) + 1).min(SLOW),
        };
        let announced = crate::pause::next_hold_change(seen);
        futures_lite::future::or(announced, crate::runtime::sleep(wait)).await;
    }
}
