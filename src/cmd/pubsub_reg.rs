//! Pub/Sub bookkeeping.
//!
//! - Each subscribed client owns an [`Outbox`]: the messages published to it and not yet
//!   written. Its connection task waits on it next to the socket (`conn::pubsub`).
//! - Each shard keeps a [`Registry`] of the subscriptions of the clients whose home it is:
//!   channel / pattern / shard channel -> the subscribers' outboxes. Delivering a message on a
//!   shard looks only at that registry, so PUBLISH fans out to every shard.
//! - The node keeps a [`NodeIndex`]: how many subscriptions each channel, pattern and shard
//!   channel has over all shards. It answers PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARD* and
//!   INFO without a fan-out, and is only touched by (un)subscribing, never by PUBLISH. It also
//!   counts a script's PUBLISH receivers (the script cannot wait for the shards' counts).

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::Waker;

/// The kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: a channel.
    Channel,
    /// PSUBSCRIBE: a glob pattern.
    Pattern,
    /// SSUBSCRIBE: a shard channel.
    Shard,
}

/// One message waiting for a subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What matched.
    pub kind: Kind,
    /// The pattern that matched (pmessage only).
    pub pattern: Option<Bytes>,
    /// The channel published to.
    pub channel: Bytes,
    /// The message.
    pub message: Bytes,
    /// Not a message: the `sunsubscribe` of `channel` this node sends when it stops serving
    /// the channel's slot, with the client's shard channels left (`message` is empty).
    pub unsubscribed: Option<u64>,
}

impl Delivery {
    /// Bytes it holds (for the output buffer limit).
    fn size(&self) -> usize {
        self.channel.len() + self.message.len() + self.pattern.as_ref().map_or(0, |p| p.len()) + 32
    }

    /// The `message` / `pmessage` / `smessage` frame.
    pub fn encode(&self, out: &mut Vec<u8>, resp3: bool) {
        use crate::protocol::Reply;
        let mut items = Vec::with_capacity(4);
        if let Some(left) = self.unsubscribed {
            items.push(Reply::Bulk(Bytes::from_static(b"sunsubscribe")));
            items.push(Reply::Bulk(self.channel.clone()));
            items.push(Reply::Int(left as i64));
            Reply::Push(items).encode(out, resp3);
            return;
        }
        match self.kind {
            Kind::Channel => items.push(Reply::Bulk(Bytes::from_static(b"message"))),
            Kind::Shard => items.push(Reply::Bulk(Bytes::from_static(b"smessage"))),
            Kind::Pattern => {
                items.push(Reply::Bulk(Bytes::from_static(b"pmessage")));
                items.push(Reply::Bulk(self.pattern.clone().unwrap_or_default()));
            }
        }
        items.push(Reply::Bulk(self.channel.clone()));
        items.push(Reply::Bulk(self.message.clone()));
        Reply::Push(items).encode(out, resp3);
    }
}

/// A subscriber's queue of undelivered messages (local to its home shard).
///
/// Its bytes, and the bytes its connection has encoded and not written yet (`unwritten`,
/// published by the connection), are the client's output buffer for
/// `client-output-buffer-limit pubsub`: checked at every message queued, as Redis checks a
/// client's limits whenever a reply is added, and by the connection while nothing arrives.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: RefCell<VecDeque<Delivery>>,
    bytes: Cell<usize>,
    /// Reply bytes the connection holds and the socket has not taken yet.
    unwritten: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    /// Set when the output went over a limit: the connection closes.
    pub overflowed: Cell<bool>,
    /// The subscriber's socket, shut down on overflow so that a connection stuck writing to
    /// a client that does not read ends too. Its registrations are removed before the
    /// socket is closed (on the same thread), so the fd is never a reused one.
    fd: Option<i32>,
    /// Since when the output has been over the pubsub class's soft limit.
    soft: Cell<crate::memory::obuf::SoftClock>,
}

impl Outbox {
    /// The outbox of the client whose socket is `fd`.
    pub fn for_socket(fd: i32) -> Outbox {
        Outbox { fd: Some(fd), ..Default::default() }
    }

    /// Bytes queued here and not yet taken by the connection (CLIENT LIST counts them in
    /// `omem` with the connection's own).
    pub fn queued_bytes(&self) -> usize {
        self.bytes.get()
    }

    /// The connection's pending reply bytes, as they change.
    pub fn set_unwritten(&self, n: usize) {
        self.unwritten.set(n);
    }

    /// Whether the output with `extra` more bytes is over the pubsub class's limits (`hard`
    /// replaces the class's hard limit; the soft limit's clock runs). Over: the queue is
    /// dropped, the client marked for closing and its socket shut down.
    fn over_limit(&self, extra: usize, hard: Option<u64>) -> bool {
        if self.overflowed.get() {
            return true;
        }
        let mut l = crate::memory::obuf::limit(crate::memory::obuf::Class::Pubsub);
        if let Some(h) = hard {
            l.hard = h;
        }
        if l.hard == 0 && l.soft == 0 {
            return false;
        }
        let used = (self.bytes.get() + self.unwritten.get() + extra) as u64;
        let mut clock = self.soft.get();
        let over = clock.over(l, used, crate::storage::cached_ms() / 1000);
        self.soft.set(clock);
        if over {
            self.overflowed.set(true);
            self.bytes.set(self.bytes.get() + extra);
            self.queue.borrow_mut().clear();
            if let Some(fd) = self.fd {
                // SAFETY: shutting down (not closing) the live socket of a registered
                // subscriber; its connection task then sees the error and ends.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
            self.nudge();
        }
        over
    }

    /// The connection's check of the output as it is now (nothing queued meanwhile: the soft
    /// limit's time may still run out). True when the client is to be closed.
    pub fn check_limits(&self) -> bool {
        self.over_limit(0, None)
    }

    /// When the soft limit will have been held long enough (Unix seconds), if it is running.
    pub fn soft_deadline(&self) -> Option<u64> {
        self.soft.get().deadline(crate::memory::obuf::limit(crate::memory::obuf::Class::Pubsub))
    }

    /// Queues a message and wakes the connection. Over `limit` bytes (0 = no limit), or over
    /// the soft limit for too long, the message is dropped and the client marked for closing,
    /// as Redis closes a client over `client-output-buffer-limit pubsub`.
    pub fn push(&self, d: Delivery, limit: usize) {
        let size = d.size();
        if self.over_limit(size, Some(limit as u64)) {
            return;
        }
        self.bytes.set(self.bytes.get() + size);
        self.queue.borrow_mut().push_back(d);
        self.nudge();
    }

    /// Takes everything queued; when empty (and not overflowed) registers `waker` and returns
    /// None.
    pub fn take_or_wait(&self, waker: &Waker) -> Option<VecDeque<Delivery>> {
        if self.overflowed.get() {
            return Some(VecDeque::new());
        }
        if !self.queue.borrow().is_empty() {
            return Some(self.take_now());
        }
        *self.waker.borrow_mut() = Some(waker.clone());
        None
    }

    /// Wakes the connection waiting on this outbox (with nothing to deliver: its client just
    /// became a receiver of CLIENT TRACKING messages, its wait starts over with its inbox).
    pub fn nudge(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Takes whatever is queued now.
    pub fn take_now(&self) -> VecDeque<Delivery> {
        self.bytes.set(0);
        std::mem::take(&mut *self.queue.borrow_mut())
    }
}

/// A client's subscriptions (on `ClientState`, created by its first subscription).
#[derive(Debug)]
pub struct Subs {
    /// Where its messages go.
    pub outbox: Rc<Outbox>,
    /// SUBSCRIBE channels.
    pub channels: HashSet<Bytes>,
    /// PSUBSCRIBE patterns.
    pub patterns: HashSet<Bytes>,
    /// SSUBSCRIBE shard channels.
    pub shard: HashSet<Bytes>,
}

impl Subs {
    /// No subscriptions yet, for the client whose socket is `fd`.
    pub fn new(fd: i32) -> Subs {
        Subs {
            outbox: Rc::new(Outbox::for_socket(fd)),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard: HashSet::new(),
        }
    }

    /// The set of one kind.
    pub fn set(&mut self, k: Kind) -> &mut HashSet<Bytes> {
        match k {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Subscriptions of every kind (nonzero means subscribed mode).
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }
}

/// Subscribers of one name on one shard: (client id, outbox).
type Subscribers = Vec<(u64, Rc<Outbox>)>;

/// A shard's subscriptions.
#[derive(Debug, Default)]
pub struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
    shard: HashMap<Bytes, Subscribers>,
}

impl Registry {
    fn map(&mut self, k: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match k {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Adds a subscription (the caller checked that the client did not have it).
    pub fn add(&mut self, k: Kind, name: &Bytes, id: u64, outbox: &Rc<Outbox>) {
        self.map(k).entry(name.clone()).or_default().push((id, outbox.clone()));
    }

    /// Removes a subscription.
    pub fn remove(&mut self, k: Kind, name: &[u8], id: u64) {
        let m = self.map(k);
        if let Some(v) = m.get_mut(name) {
            v.retain(|(i, _)| *i != id);
            if v.is_empty() {
                m.remove(name);
            }
        }
    }

    /// Delivers a PUBLISH (channel subscribers, then matching patterns) here; returns the
    /// number of receivers.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, limit: usize) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for (_, o) in subs {
                let d = Delivery {
                    kind: Kind::Channel,
                    pattern: None,
                    channel: channel.clone(),
                    message: message.clone(),
                    unsubscribed: None,
                };
                o.push(d, limit);
                n += 1;
            }
        }
        for (pat, subs) in &self.patterns {
            if !crate::cmd::util::glob_match(pat, channel, false) {
                continue;
            }
            for (_, o) in subs {
                let d = Delivery {
                    kind: Kind::Pattern,
                    pattern: Some(pat.clone()),
                    channel: channel.clone(),
                    message: message.clone(),
                    unsubscribed: None,
                };
                o.push(d, limit);
                n += 1;
            }
        }
        n
    }

    /// The shard channels with subscribers here.
    pub fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.shard.keys()
    }

    /// The subscribers of a shard channel here.
    pub fn shard_subscribers(&self, channel: &[u8]) -> Subscribers {
        self.shard.get(channel).cloned().unwrap_or_default()
    }

    /// Delivers an SPUBLISH here; returns the number of receivers.
    pub fn publish_shard(&self, channel: &Bytes, message: &Bytes, limit: usize) -> usize {
        let Some(subs) = self.shard.get(channel) else { return 0 };
        for (_, o) in subs {
            o.push(
                Delivery {
                    kind: Kind::Shard,
                    pattern: None,
                    channel: channel.clone(),
                    message: message.clone(),
                    unsubscribed: None,
                },
                limit,
            );
        }
        subs.len()
    }
}

/// Subscription counts over the whole node.
#[derive(Debug, Default)]
pub struct NodeIndex {
    inner: Mutex<[HashMap<Bytes, u64>; 3]>,
}

fn slot(k: Kind) -> usize {
    match k {
        Kind::Channel => 0,
        Kind::Pattern => 1,
        Kind::Shard => 2,
    }
}

impl NodeIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, [HashMap<Bytes, u64>; 3]> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more subscriber of `name`.
    pub fn add(&self, k: Kind, name: &Bytes) {
        *self.lock()[slot(k)].entry(name.clone()).or_default() += 1;
    }

    /// One subscriber of `name` fewer.
    pub fn remove(&self, k: Kind, name: &[u8]) {
        let mut g = self.lock();
        let m = &mut g[slot(k)];
        if let Some(n) = m.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                m.remove(name);
            }
        }
    }

    /// Names with at least one subscriber, filtered by an optional glob pattern.
    pub fn names(&self, k: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let g = self.lock();
        g[slot(k)]
            .keys()
            .filter(|n| pattern.is_none_or(|p| crate::cmd::util::glob_match(p, n, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name`.
    pub fn count(&self, k: Kind, name: &[u8]) -> u64 {
        self.lock()[slot(k)].get(name).copied().unwrap_or(0)
    }

    /// The receivers a PUBLISH (`sharded`: SPUBLISH) to `channel` reaches over the node, as
    /// the shards' [`Registry::publish`] would count them together: the channel's subscribers
    /// plus each matching pattern's (a script's PUBLISH, which cannot wait for the shards).
    pub fn receivers(&self, sharded: bool, channel: &[u8]) -> u64 {
        let g = self.lock();
        if sharded {
            return g[slot(Kind::Shard)].get(channel).copied().unwrap_or(0);
        }
        let direct = g[slot(Kind::Channel)].get(channel).copied().unwrap_or(0);
        let patterns = &g[slot(Kind::Pattern)];
        direct
            + patterns
                .iter()
                .filter(|(p, _)| crate::cmd::util::glob_match(p, channel, false))
                .map(|(_, n)| *n)
                .sum::<u64>()
    }

    /// Number of names with subscribers.
    pub fn len(&self, k: Kind) -> usize {
        self.lock()[slot(k)].len()
    }
}
