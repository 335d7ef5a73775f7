//! A connection's pending replies (`Conn::wbuf`) and how they reach the socket.
//!
//! As Redis's output buffer, replies wait in memory while the socket does not take them: the
//! connection keeps reading and running the client's commands meanwhile (a client that writes
//! a long pipeline before reading any reply must not stall both sides), and the pending bytes
//! count against the output-buffer limits. `wsent` is how much of `wbuf`'s front is already
//! written; the written prefix is dropped once it is most of the buffer.

use super::Conn;
use crate::runtime::ClientStream;
use futures_lite::{AsyncRead, AsyncWrite};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A written prefix at least this long (and over half the buffer) is dropped.
const COMPACT_AT: usize = 64 * 1024;
/// Room an emptied reply buffer keeps (more is given back), as Redis's per-client buffer
/// shrinks to its peak use: under a `maxmemory` ceiling (where the room counts),
/// [`REPLY_ROOM_UNDER_CEILING`], else [`REPLY_ROOM`] (big replies do not reallocate it anew
/// each time).
const REPLY_ROOM: usize = 1 << 20;
/// Redis's smallest per-client reply buffer (`PROTO_REPLY_MIN_BYTES`). Keeping up to 16 KB
/// made a burst of invalidations (an eviction's, to 10 tracking clients) leave 160 KB more
/// counted once written, so the next command evicted more keys, whose invalidations grew the
/// buffers again: the node evicted every key (Redis's client tracking eviction test).
const REPLY_ROOM_UNDER_CEILING: usize = 1024;

/// What a wait for output and input ended with.
pub(super) enum Progress {
    /// Every pending reply was written.
    Written,
    /// This many bytes were read into `rbuf` (0: the client closed).
    Read(usize),
}

/// Writes `out[*n..]` while the socket takes it, advancing `n`: Ready once all of `out` is
/// written, Pending (the task is woken when there is room) when the socket is full.
pub(super) fn poll_write_out(
    stream: &mut ClientStream,
    cx: &mut Context<'_>,
    out: &[u8],
    n: &mut usize,
) -> Poll<std::io::Result<()>> {
    while *n < out.len() {
        match Pin::new(&mut *stream).poll_write(cx, &out[*n..]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(k)) => *n += k,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

impl Conn {
    /// Reply bytes not written yet.
    pub(crate) fn pending_output(&self) -> usize {
        self.wbuf.len() - self.wsent
    }

    /// Forgets every pending reply (the client is being closed, or never gets replies).
    pub(crate) fn drop_output(&mut self) {
        self.wbuf.clear();
        self.wsent = 0;
        self.show_omem();
    }

    /// Publishes the pending output to the client's CLIENT LIST entry when it changed (most
    /// writes leave nothing pending, as before: no borrow then).
    pub(super) fn show_omem(&mut self) {
        let p = self.pending_output();
        if p != self.omem_shown {
            self.omem_shown = p;
            let mut c = self.client.borrow_mut();
            c.omem = p;
            // A subscriber's limits count these bytes with the messages queued for it.
            if let Some(subs) = &c.pubsub {
                subs.outbox.set_unwritten(p);
            }
        }
    }

    /// Accounts `n` more bytes as written; clears the buffer when all are.
    pub(super) fn written(&mut self, n: usize) {
        if n == 0 {
            self.show_omem();
            return;
        }
        {
            let st = &mut self.shard.state.borrow_mut().stats;
            st.net_output_bytes += n as u64;
            st.writes_processed += 1;
        }
        self.wsent += n;
        if self.wsent == self.wbuf.len() {
            self.wbuf.clear();
            self.wsent = 0;
            let keep = if crate::memory::maxmemory() != 0 { REPLY_ROOM_UNDER_CEILING } else { REPLY_ROOM };
            if self.wbuf.capacity() > keep {
                self.wbuf.shrink_to(keep.min(super::input::READ_CHUNK));
            }
        } else if self.wsent >= COMPACT_AT && self.wsent * 2 >= self.wbuf.len() {
            self.wbuf.drain(..self.wsent);
            self.wsent = 0;
        }
        self.show_omem();
    }

    /// appendfsync always: no reply goes out before the writes merged so far are on disk.
    async fn durable(&self) {
        if crate::aof::sync::must_wait() {
            let node = self.shard.state.borrow().node.clone();
            crate::aof::sync::wait_durable(&node.repl.feed, self.shard.id).await;
        }
    }

    /// Writes what the socket takes now of the pending replies, without waiting for room.
    pub(super) async fn write_now(&mut self) -> std::io::Result<()> {
        if self.pending_output() == 0 {
            return Ok(());
        }
        // Checked here, outside the future: an `async fn` that has nothing to wait for still
        // builds and polls its state machine on every write.
        if crate::aof::sync::must_wait() {
            self.durable().await;
        }
        let (stream, out) = (&mut self.stream, &self.wbuf[self.wsent..]);
        let mut n = 0;
        // No room now: the rest waits (the waker left behind only causes one spurious poll of
        // this task later).
        let r = std::future::poll_fn(|cx| match poll_write_out(stream, cx, out, &mut n) {
            Poll::Pending => Poll::Ready(Ok(())),
            r => r,
        })
        .await;
        self.written(n);
        r
    }

    /// Writes pending replies and reads input at once; returns when every reply is written or
    /// when input came, whichever is first (Redis goes on reading a client whose replies wait).
    pub(super) async fn write_or_read(&mut self) -> std::io::Result<Progress> {
        let want = self.parser.wanted();
        let Conn { stream, wbuf, wsent, rbuf, .. } = self;
        let out = &wbuf[*wsent..];
        let mut n = 0;
        let r = std::future::poll_fn(|cx| match poll_write_out(stream, cx, out, &mut n) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Progress::Written)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Pin::new(&mut *stream).poll_read(cx, rbuf.spare(want)).map(|r| r.map(Progress::Read)),
        })
        .await;
        self.written(n);
        r
    }

    /// Waits until the pending replies are written (the output-buffer soft limit's time, when
    /// it runs, bounds the wait).
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.pending_output() == 0 {
            return Ok(());
        }
        self.durable().await;
        // Shown while the socket does not take them (a client that does not read).
        self.show_omem();
        let deadline = self.obuf_write_deadline();
        let (stream, out) = (&mut self.stream, &self.wbuf[self.wsent..]);
        let mut n = 0;
        let write = std::future::poll_fn(|cx| poll_write_out(stream, cx, out, &mut n));
        let r = match deadline {
            None => write.await,
            Some(d) => crate::runtime::with_timeout(d, write).await.unwrap_or_else(|| {
                // Still over the soft limit when its time ran out: closed, as Redis would.
                Err(std::io::ErrorKind::TimedOut.into())
            }),
        };
        self.written(n);
        if r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut) {
            self.obuf_close();
        }
        r
    }
}
