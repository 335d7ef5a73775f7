//! A file writer on a thread of its own at the kernel's idle CPU priority (`SCHED_IDLE`), for
//! snapshot files written while the node serves.
//!
//! A snapshot's bytes are encoded on the shard in short steps, but the `write(2)` calls that
//! copy ~100 MB into the page cache cost as much CPU again. On glommio's blocking pool those
//! calls run on a thread bound to the shard's CPU with the same priority as the shard, so the
//! kernel hands it time slices of several milliseconds while clients wait: client p99 during a
//! BGSAVE rose to 8x idle. At `SCHED_IDLE` the writer runs only in the CPU time the shard leaves
//! idle (and on any other idle CPU), so clients keep their latency and the save takes what is
//! left over. Chunks pass through a channel of one slot, so at most two chunks are in flight.
//! A shard that never leaves the CPU idle would starve such a writer, so the snapshot driver
//! raises it back to the normal class ([`IdleWriter::boost`]) once a chunk waited too long.

use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Raises an [`IdleWriter`]'s thread to the normal scheduling class.
pub struct Booster(Arc<AtomicI32>);

impl Booster {
    /// Moves the writer thread back to the normal scheduling class (it was starved).
    pub fn boost(&self) {
        raise_priority(self.0.load(Ordering::Acquire));
    }
}

/// A running writer thread for one file.
pub struct IdleWriter {
    tx: mpsc::Sender<Vec<u8>>,
    done: oneshot::Receiver<std::io::Result<()>>,
    /// The writer thread's kernel thread id, once it runs (0 before).
    tid: Arc<AtomicI32>,
}

/// Puts the calling thread in the `SCHED_IDLE` class (the save child calls it too).
pub fn lower_priority() {
    if let Err(e) = super::sched_class::to_idle(0) {
        tracing::debug!("could not lower the snapshot writer's priority: {}", e);
    }
}

/// Puts thread or process `tid` back in the normal class (`SCHED_OTHER`).
pub fn raise_priority(tid: i32) {
    if tid > 0 {
        if let Err(e) = super::sched_class::to_normal(tid) {
            tracing::debug!("could not raise the snapshot writer's priority: {}", e);
        }
    }
}

impl IdleWriter {
    /// Starts a writer thread appending to `file` (through its own handle on the same open
    /// file, so the offset is shared).
    pub fn start(file: &std::fs::File) -> std::io::Result<IdleWriter> {
        IdleWriter::start_sink(file.try_clone()?)
    }

    /// Starts a writer thread writing to `f` (a file, or the pipe to a save child).
    pub fn start_sink(mut f: impl Write + Send + 'static) -> std::io::Result<IdleWriter> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
        let (done_tx, done) = oneshot::channel();
        let tid = Arc::new(AtomicI32::new(0));
        let my_tid = tid.clone();
        std::thread::Builder::new().name("snapshot-writer".into()).spawn(move || {
            lower_priority();
            // SAFETY: gettid has no preconditions.
            my_tid.store(unsafe { libc::gettid() }, Ordering::Release);
            let r = futures_lite::future::block_on(async {
                while let Some(chunk) = rx.next().await {
                    f.write_all(&chunk)?;
                }
                Ok(())
            });
            let _ = done_tx.send(r);
        })?;
        Ok(IdleWriter { tx, done, tid })
    }

    /// A handle that moves the writer thread back to the normal scheduling class (when it
    /// starves), usable while [`IdleWriter::finish`] runs.
    pub fn booster(&self) -> Booster {
        Booster(self.tid.clone())
    }

    /// Queues `chunk`, waiting while the writer is behind. False when the writer stopped (a
    /// write failed: [`IdleWriter::finish`] says why).
    pub async fn write(&mut self, chunk: Vec<u8>) -> bool {
        if futures_lite::future::poll_fn(|cx| self.tx.poll_ready(cx)).await.is_err() {
            return false;
        }
        self.tx.start_send(chunk).is_ok()
    }

    /// Waits until every queued chunk is written; the first write error, if any.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.tx.close_channel();
        self.done.await.unwrap_or_else(|_| Err(std::io::Error::other("the snapshot writer thread ended early")))
    }
}
