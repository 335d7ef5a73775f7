//! A one-way start-up flag one executor sets and others wait for.
//!
//! The waiters are woken through their wakers (glommio delivers a wake from another thread to
//! the sleeping executor), not by polling on timers: under load a node was seen to hang in
//! start-up with every executor parked in the kernel while its 1 ms polling timer was armed.
//! A slow timer stays as a second way out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Set once; every waiter, before or after, then proceeds.
pub struct StartFlag {
    set: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Default for StartFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl StartFlag {
    /// A flag not set yet.
    pub const fn new() -> StartFlag {
        StartFlag { set: AtomicBool::new(false), waiters: Mutex::new(Vec::new()) }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            w.wake();
        }
    }

    /// Waits until the flag is set.
    pub async fn wait(&self) {
        let woken = futures_lite::future::poll_fn(|cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            // Checked again under the lock: a `set` in between has either seen this waker or
            // stored the flag before this load.
            if self.is_set() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let polled = async {
            while !self.is_set() {
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        };
        futures_lite::future::or(woken, polled).await;
    }
}

#[cfg(test)]
mod tests {
    use super::StartFlag;

    #[test]
    fn a_waiter_on_another_executor_is_woken() {
        static FLAG: StartFlag = StartFlag::new();
        let waiter = std::thread::spawn(|| {
            glommio::LocalExecutorBuilder::default().make().map(|ex| ex.run(FLAG.wait())).is_ok()
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        FLAG.set();
        assert!(waiter.join().unwrap_or(false));
        assert!(FLAG.is_set());
    }
}
