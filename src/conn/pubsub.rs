//! A subscribed connection: it waits on its socket and on its outbox at once, and writes the
//! messages published to it as soon as they arrive (`message` / `pmessage` / `smessage`,
//! push frames in RESP3). Connections that never subscribed do not come here.

use super::Conn;
use crate::cmd::pubsub;
use crate::cmd::pubsub_reg::{Delivery, Outbox};
use std::collections::VecDeque;
use std::rc::Rc;

/// What woke a subscribed connection.
enum Woke {
    Input(std::io::Result<usize>),
    Messages(VecDeque<Delivery>),
    Tracking(Vec<crate::cmd::tracking_reg::Push>),
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

    /// Reads input or writes published messages, whichever comes first. Returns the bytes
    /// read into `rbuf`, or None when only messages were written. A subscriber whose queue
    /// went over `client-output-buffer-limit pubsub` is closed, as Redis does.
    pub(super) async fn read_or_push(&mut self, ob: &Outbox) -> std::io::Result<Option<usize>> {
        let client = self.client.clone();
        let woke = {
            let want = self.parser.wanted();
            let read =
                async { Woke::Input(futures_lite::AsyncReadExt::read(&mut self.stream, self.rbuf.spare(want)).await) };
            let msgs = async { Woke::Messages(ob.next().await) };
            // The inbox is looked up at every poll: the client may become a receiver while it
            // waits (its outbox is nudged then).
            let pushes = futures_lite::future::poll_fn(|cx| {
                let inbox = client.borrow().tracking.as_ref().map(|t| t.inbox.clone());
                match inbox {
                    Some(ib) => ib.poll_take(cx.waker()).map(Woke::Tracking),
                    None => std::task::Poll::Pending,
                }
            });
            futures_lite::future::or(pushes, futures_lite::future::or(msgs, read)).await
        };
        match woke {
            Woke::Input(r) => r.map(Some),
            Woke::Messages(q) => {
                if ob.overflowed.get() {
                    self.client.borrow_mut().close_after_reply = true;
                    return Ok(None);
                }
                let resp3 = self.client.borrow().resp3;
                for d in &q {
                    d.encode(&mut self.wbuf, resp3);
                }
                self.flush().await?;
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
                self.flush().await?;
                Ok(None)
            }
        }
    }
}
