//! CLIENT TRACKING bookkeeping (Redis 7.0's `tracking.c` state, split over the shards).
//!
//! - The node keeps one [`Directory`] (on `NodeInfo`): the mode of every tracking client
//!   (redirect, BCAST and its prefixes, NOLOOP) and the [`Inbox`] of every client that receives
//!   invalidations (trackers and the clients they redirect to). Any shard pushes into any
//!   inbox; the client's connection waits on it next to its socket (wakers cross threads).
//! - Each shard keeps a [`Table`] (on `ShardState`): for the keys it owns, the ids of the
//!   clients that read them in default mode, and the keys written during the current operation
//!   that BCAST clients must hear about (sent once per operation, as Redis sends them once per
//!   event-loop iteration).
//!
//! Invariants: a client id appears at most once per key of a table; an id in a table whose
//! client stopped tracking (or switched to BCAST) is skipped and dropped when the key is
//! invalidated, as in Redis. The directory lock is never held while a shard's state is
//! borrowed by someone else, and only taken while some client tracks ([`Directory::active`]).

use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// One message for a client's connection.
#[derive(Debug, Clone)]
pub enum Push {
    /// `invalidate` with these keys (None: the whole keyspace, after FLUSHDB/FLUSHALL).
    /// `redirected` says it reaches the client as a redirect target.
    Invalidate { keys: Option<Vec<Bytes>>, redirected: bool },
    /// `tracking-redir-broken <id>`: the redirect target is gone (RESP3 trackers only).
    RedirBroken(u64),
}

impl Push {
    /// Appends the frame for a client in RESP3 (`resp3`) or RESP2, subscribed or not;
    /// nothing when Redis would send nothing (a RESP2 client hears invalidations only as a
    /// subscribed redirect target, on `__redis__:invalidate`).
    pub fn encode(&self, out: &mut Vec<u8>, resp3: bool, subscribed: bool) {
        match self {
            Push::RedirBroken(id) if resp3 => {
                out.extend_from_slice(format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n").as_bytes());
            }
            Push::RedirBroken(_) => {}
            Push::Invalidate { keys, redirected } => {
                if resp3 {
                    out.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
                } else if *redirected && subscribed {
                    out.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
                } else {
                    return;
                }
                match keys {
                    None if resp3 => out.extend_from_slice(b"_\r\n"),
                    None => out.extend_from_slice(b"$-1\r\n"),
                    Some(keys) => {
                        out.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
                        for k in keys {
                            out.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
                            out.extend_from_slice(k);
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                }
            }
        }
    }
}

/// A client's queue of tracking messages, filled by any shard.
#[derive(Debug, Default)]
pub struct Inbox {
    q: Mutex<(Vec<Push>, Option<Waker>)>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, (Vec<Push>, Option<Waker>)> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message and wakes the connection.
    pub fn push(&self, p: Push) {
        let waker = {
            let mut q = self.lock();
            q.0.push(p);
            q.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Takes what is queued.
    pub fn take(&self) -> Vec<Push> {
        std::mem::take(&mut self.lock().0)
    }

    /// Takes what is queued, or registers `waker` for the next push.
    pub fn poll_take(&self, waker: &Waker) -> Poll<Vec<Push>> {
        let mut q = self.lock();
        if q.0.is_empty() {
            q.1 = Some(waker.clone());
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut q.0))
        }
    }
}

/// The mode of one tracking client.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// REDIRECT id (0: none).
    pub redirect: u64,
    /// BCAST mode.
    pub bcast: bool,
    /// OPTIN mode.
    pub optin: bool,
    /// OPTOUT mode.
    pub optout: bool,
    /// NOLOOP: no invalidations for the client's own writes.
    pub noloop: bool,
    /// BCAST prefixes (the empty prefix when none was given).
    pub prefixes: Vec<Bytes>,
    /// The redirect target went away.
    pub broken: bool,
}

/// The node's tracking clients and inboxes.
#[derive(Debug, Default)]
pub struct Directory {
    inner: Mutex<Dir>,
    /// Tracking clients (INFO tracking_clients); 0 means every hook returns at once.
    trackers: AtomicUsize,
    /// BCAST trackers.
    bcasts: AtomicUsize,
    /// Keys in the shards' tables (INFO tracking_total_keys).
    pub total_keys: AtomicUsize,
    /// Client ids in the shards' tables (INFO tracking_total_items).
    pub total_items: AtomicUsize,
}

#[derive(Debug, Default)]
struct Dir {
    trackers: HashMap<u64, Tracker>,
    inboxes: HashMap<u64, Arc<Inbox>>,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, Dir> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while some client tracks.
    #[inline]
    pub fn active(&self) -> bool {
        self.trackers.load(Ordering::Relaxed) > 0
    }

    /// True while some client tracks in BCAST mode.
    #[inline]
    pub fn has_bcast(&self) -> bool {
        self.bcasts.load(Ordering::Relaxed) > 0
    }

    /// Tracking clients.
    pub fn trackers(&self) -> usize {
        self.trackers.load(Ordering::Relaxed)
    }

    /// Distinct BCAST prefixes over all clients (INFO tracking_total_prefixes).
    pub fn total_prefixes(&self) -> usize {
        let d = self.lock();
        let mut all: Vec<&Bytes> = d.trackers.values().filter(|t| t.bcast).flat_map(|t| t.prefixes.iter()).collect();
        all.sort();
        all.dedup();
        all.len()
    }

    /// The inbox of client `id`, created on first use.
    pub fn inbox(&self, id: u64) -> Arc<Inbox> {
        self.lock().inboxes.entry(id).or_default().clone()
    }

    /// True when client `id` has an inbox (it is connected and tracks or receives).
    pub fn has_inbox(&self, id: u64) -> bool {
        self.lock().inboxes.contains_key(&id)
    }

    /// Sets (or replaces) the mode of tracking client `id`.
    pub fn enable(&self, id: u64, t: Tracker) {
        let bcast = t.bcast;
        let old = self.lock().trackers.insert(id, t);
        if old.is_none() {
            self.trackers.fetch_add(1, Ordering::Relaxed);
        }
        self.count_bcast(old.as_ref());
        if bcast {
            self.bcasts.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_bcast(&self, old: Option<&Tracker>) {
        if old.is_some_and(|o| o.bcast) {
            self.bcasts.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Client `id` stops tracking.
    pub fn disable(&self, id: u64) {
        let old = self.lock().trackers.remove(&id);
        if old.is_some() {
            self.trackers.fetch_sub(1, Ordering::Relaxed);
        }
        self.count_bcast(old.as_ref());
    }

    /// The mode of client `id`, if it tracks.
    pub fn tracker(&self, id: u64) -> Option<Tracker> {
        self.lock().trackers.get(&id).cloned()
    }

    /// Client `id` disconnected: it stops tracking and receiving.
    pub fn gone(&self, id: u64) {
        let old = {
            let mut d = self.lock();
            d.inboxes.remove(&id);
            d.trackers.remove(&id)
        };
        if old.is_some() {
            self.trackers.fetch_sub(1, Ordering::Relaxed);
        }
        self.count_bcast(old.as_ref());
    }

    /// Sends `keys` (None: everything) to default-mode tracker `id`, or to its redirect
    /// target; a gone target marks the redirect broken and tells the tracker.
    /// `bcast_msg` selects BCAST trackers instead of default-mode ones.
    pub fn send(&self, id: u64, keys: Option<Vec<Bytes>>, bcast_msg: bool) {
        let mut d = self.lock();
        let Some(t) = d.trackers.get(&id) else { return };
        if keys.is_some() && t.bcast != bcast_msg {
            return;
        }
        if t.redirect != 0 {
            let redirect = t.redirect;
            if let Some(ib) = d.inboxes.get(&redirect) {
                ib.push(Push::Invalidate { keys, redirected: true });
            } else {
                if let Some(t) = d.trackers.get_mut(&id) {
                    t.broken = true;
                }
                if let Some(ib) = d.inboxes.get(&id) {
                    ib.push(Push::RedirBroken(redirect));
                }
            }
        } else if let Some(ib) = d.inboxes.get(&id) {
            ib.push(Push::Invalidate { keys, redirected: false });
        }
    }

    /// Every tracking client (for FLUSHDB/FLUSHALL).
    pub fn all_trackers(&self) -> Vec<u64> {
        self.lock().trackers.keys().copied().collect()
    }

    /// BCAST prefixes in order, each with its clients (id, NOLOOP).
    pub fn bcast_prefixes(&self) -> std::collections::BTreeMap<Bytes, Vec<(u64, bool)>> {
        let mut m: std::collections::BTreeMap<Bytes, Vec<(u64, bool)>> = Default::default();
        for (&id, t) in self.lock().trackers.iter().filter(|(_, t)| t.bcast) {
            for p in &t.prefixes {
                m.entry(p.clone()).or_default().push((id, t.noloop));
            }
        }
        m
    }

    /// Whether tracker `id` has NOLOOP.
    pub fn noloop(&self, id: u64) -> bool {
        self.lock().trackers.get(&id).is_some_and(|t| t.noloop)
    }
}

/// One shard's tracking table.
#[derive(Debug, Default)]
pub struct Table {
    /// Key -> ids of the clients that read it.
    pub keys: HashMap<Bytes, Vec<u64>>,
    /// BCAST: (key, writer id) written during the current operation.
    pub bcast: Vec<(Bytes, u64)>,
    /// On a scratch state (work on copies of other shards' keys): the keys its writes
    /// signalled, which alone are invalidated where the copies are written back.
    pub signalled: Option<Vec<Bytes>>,
}
