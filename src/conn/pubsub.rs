//! A subscribed connection: it waits on its socket and on its outbox at once, and writes the
//! messages published to it as soon as they arrive (`message` / `pmessage` / `smessage`,
//! push frames in RESP3). Connections that never subscribed do not come here.

use super::Conn;
use crate::cmd::pubsub;
use crate::cmd::pubsub_reg::{Delivery, Outbox};
use futures_lite::AsyncRead;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// What woke a subscribed connection.
enum Woke {
    Input(std::io::Result<usize>),
    Messages(VecDeque<Delivery>),
    Tracking(Vec<crate::cmd::tracking_reg::Push>),
    /// Every pending reply was written (or the write failed).
    Written(std::io::Result<()>),
}

impl Conn {
    /// The client's outbox while it is subscribed (one borrow and an Option check for
    /// others). Once it unsubscribed from everything, what is still queued goes into the
    /// output buffer and the outbox is forgotten: the client is an ordinary one again (idle
    /// timeout included).
    pub(super) fn outbox(&mut self) -> Option<Rc<Outbox>> {
        let mut c = self.client.borrow_mut();
        let subs = c.pubsub.as_ref()?;
        // A client that tracks (or receives invalidations) keeps waiting on its inbox too.
        if subs.total() > 0 || c.tracking.is_some() {
            return Some(subs.outbox.clone());
        }
        let q = subs.outbox.take_now();
        let resp3 = c.resp3;
        c.pubsub = None;
        drop(c);
        for d in &q {
            d.encode(&mut self.wbuf, resp3);
        }
        None
    }

    /// A PUBLISH's reply, preceded by the messages waiting for this very client (a RESP3
    /// subscriber publishing to itself gets them first, as from Redis's output buffer).
    pub(super) fn own_messages_then(&self, reply: crate::protocol::Reply) -> crate::protocol::Reply {
        let Some(ob) = self.client.borrow().pubsub.as_ref().map(|p| p.outbox.clone()) else { return reply };
        let q = ob.take_now();
        if q.is_empty() || ob.overflowed.get() {
            return reply;
        }
        let resp3 = self.client.borrow().resp3;
        let mut out = Vec::new();
        for d in &q {
            d.encode(&mut out, resp3);
        }
        reply.encode(&mut out, resp3);
        crate::protocol::Reply::Raw(out.into())
    }

    /// The refusal of a command a RESP2 client may not run while subscribed.
    pub(super) fn subscribed_refusal(&self, fullname: &str) -> Option<crate::protocol::Reply> {
        let c = self.client.borrow();
        c.pubsub.as_ref()?;
        if c.resp3 || !crate::cmd::pubsub::subscribed(&c) || pubsub::ALLOWED_WHILE_SUBSCRIBED.contains(&fullname) {
            return None;
        }
        Some(pubsub::not_allowed(fullname))
    }

    /// Reads input, takes published messages and writes pending replies, whichever comes
    /// first. Returns the bytes read into `rbuf`, or None when only output moved. Messages go
    /// into the output buffer and out as the socket takes them, so that a subscriber that
    /// does not read sees its pending output grow (CLIENT LIST `omem`) up to the limits of
    /// `client-output-buffer-limit pubsub`, over which it is closed (at once for the hard
    /// limit, when the soft limit's seconds run out even if nothing more is published).
    pub(super) async fn read_or_push(&mut self, ob: &Outbox) -> std::io::Result<Option<usize>> {
        let soft_deadline = match self.pending_output() {
            0 => None,
            _ => ob.soft_deadline(),
        };
        let client = self.client.clone();
        let want = self.parser.wanted();
        let mut n = 0;
        let woke = {
            let Conn { stream, wbuf, wsent, rbuf, .. } = self;
            let out = &wbuf[*wsent..];
            let n = &mut n;
            let wait = futures_lite::future::poll_fn(|cx| {
                // The inbox is looked up at every poll: the client may become a receiver
                // while it waits (its outbox is nudged then).
                let inbox = client.borrow().tracking.as_ref().map(|t| t.inbox.clone());
                if let Some(Poll::Ready(p)) = inbox.map(|ib| ib.poll_take(cx.waker())) {
                    return Poll::Ready(Woke::Tracking(p));
                }
                if let Some(q) = ob.take_or_wait(cx.waker()) {
                    return Poll::Ready(Woke::Messages(q));
                }
                if !out.is_empty() {
                    if let Poll::Ready(r) = super::output::poll_write_out(stream, cx, out, n) {
                        return Poll::Ready(Woke::Written(r));
                    }
                }
                Pin::new(&mut *stream).poll_read(cx, rbuf.spare(want)).map(Woke::Input)
            });
            match soft_deadline {
                None => Some(wait.await),
                Some(end_s) => {
                    let left = (end_s * 1000).saturating_sub(crate::storage::now_ms()).max(1);
                    crate::runtime::with_timeout(Duration::from_millis(left), wait).await
                }
            }
        };
        self.written(n);
        let Some(woke) = woke else {
            // The soft limit's time may have run out with nothing published meanwhile (the
            // clock the limits read is brought to now first).
            crate::storage::tick_clock();
            if ob.check_limits() {
                self.obuf_close();
            }
            return Ok(None);
        };
        match woke {
            Woke::Input(r) => r.map(Some),
            Woke::Written(r) => r.map(|_| None),
            Woke::Messages(q) => {
                if ob.overflowed.get() {
                    self.obuf_close();
                    return Ok(None);
                }
                let resp3 = self.client.borrow().resp3;
                for d in &q {
                    d.encode(&mut self.wbuf, resp3);
                }
                // What the socket takes now goes at once, so that a steady stream of messages
                // cannot keep the writes waiting.
                self.write_now().await?;
                self.show_omem();
                Ok(None)
            }
            Woke::Tracking(pushes) => {
                let (resp3, subscribed) = {
                    let c = self.client.borrow();
                    (c.resp3, pubsub::subscribed(&c))
                };
                for p in &pushes {
                    p.encode(&mut self.wbuf, resp3, subscribed);
                }
                self.write_now().await?;
                self.show_omem();
                if ob.check_limits() {
                    self.obuf_close();
                }
                Ok(None)
            }
        }
    }
}
