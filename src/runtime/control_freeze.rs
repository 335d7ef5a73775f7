//! DEBUG SLEEP stops the whole node, as it stops Redis's one thread: the sleeping command holds
//! every data shard's lock, and the control executor (cluster bus, the replication master side,
//! the AOF's merge) is frozen here for the same time, so replicas and the other nodes hear
//! nothing from the node meanwhile (no keepalive newlines, no PINGs, no gossip). Clients'
//! commands that need no shard (PING, CLIENT LIST, ...) wait too ([`asleep`]): Redis serves
//! nothing during the sleep, and afterwards serves what queued meanwhile.

use futures_channel::mpsc;
use futures_lite::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The queue to the control executor's freezer (set once it runs).
static FREEZER: Mutex<Option<mpsc::UnboundedSender<Duration>>> = Mutex::new(None);

/// Freezes the control executor's thread for `d` (a no-op before it runs or for zero).
pub fn freeze_control(d: Duration) {
    if d.is_zero() {
        return;
    }
    if let Some(tx) = FREEZER.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        let _ = tx.unbounded_send(d);
    }
}

/// The freezer task of the control executor: each request blocks the thread, so none of its
/// tasks runs meanwhile.
pub async fn run() {
    let (tx, mut rx) = mpsc::unbounded();
    *FREEZER.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    while let Some(d) = rx.next().await {
        std::thread::sleep(d);
    }
}

/// DEBUG SLEEPs running now.
static SLEEPING: AtomicUsize = AtomicUsize::new(0);

/// True while a DEBUG SLEEP runs: clients' new commands wait for its end.
#[inline]
pub fn asleep() -> bool {
    SLEEPING.load(Ordering::Relaxed) != 0
}

/// A DEBUG SLEEP in progress (its end, also when its task is dropped, wakes the node).
pub struct Asleep(());

impl Asleep {
    /// Marks the node asleep until the value is dropped.
    pub fn begin() -> Asleep {
        SLEEPING.fetch_add(1, Ordering::AcqRel);
        Asleep(())
    }
}

impl Drop for Asleep {
    fn drop(&mut self) {
        SLEEPING.fetch_sub(1, Ordering::AcqRel);
        crate::pause::hold_changed();
    }
}
