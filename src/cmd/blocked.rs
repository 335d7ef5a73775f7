//! Clients blocked on this shard's keys (Redis's `blocking_keys` and `ready_keys`), and their
//! serving after writes (Redis's `handleClientsBlockedOnKeys`).
//!
//! Invariants:
//! - A waiter lives on the shard that owns its keys; one blocked call whose keys span shards
//!   has one waiter per owning shard, all sharing one [`BlockToken`].
//! - A waiter is served only after its token is claimed. Claiming takes the token's reply
//!   sender, so exactly one party (a shard serving it, the home shard timing it out, CLIENT
//!   UNBLOCK) ever answers a blocked call: when keys on two shards are pushed at once, only one
//!   pop happens. Waiters whose token was claimed elsewhere are dropped when met, and removed
//!   for good by the home shard's cleanup message.
//! - Waiters on one (db, key) are served in arrival order. A write signals the keys it touched;
//!   after the command, every signalled key is served while it holds data (a served BLMOVE
//!   may signal its destination in turn). Waiters of another type than the key's stay blocked.
//! - A waiter whose serving needs another shard (BLMOVE to a destination elsewhere) is woken
//!   with [`Wake::Retry`] instead: its home reruns the call atomically across both shards.

use super::blocking::{KeyState, Serve};
use super::ctx::{Ctx, ShardState};
use super::spec::{flags, CommandSpec};
use crate::protocol::Reply;
use bytes::Bytes;
use futures_channel::oneshot;
use hashbrown::{HashMap, HashSet};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// What wakes a blocked call.
#[derive(Debug)]
pub enum Wake {
    /// The call's final reply.
    Reply(Reply),
    /// Data arrived but serving needs several shards: run the call again.
    Retry,
}

/// One blocked call, shared by its waiters on every shard and by its home connection.
pub struct BlockToken {
    /// Unique id.
    pub id: u64,
    /// The blocked client.
    pub client: u64,
    slot: Mutex<Option<oneshot::Sender<Wake>>>,
}

impl std::fmt::Debug for BlockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockToken({}, client {})", self.id, self.client)
    }
}

impl BlockToken {
    /// A token for `client`, with the receiver its home waits on.
    pub fn new(client: u64) -> (Arc<BlockToken>, oneshot::Receiver<Wake>) {
        let (tx, rx) = oneshot::channel();
        let id = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        (Arc::new(BlockToken { id, client, slot: Mutex::new(Some(tx)) }), rx)
    }

    /// Claims the call: the one caller that gets the sender answers it.
    pub fn claim(&self) -> Option<oneshot::Sender<Wake>> {
        match self.slot.lock() {
            Ok(mut s) => s.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    /// True once someone claimed the call.
    pub fn is_claimed(&self) -> bool {
        match self.slot.lock() {
            Ok(s) => s.is_none(),
            Err(p) => p.into_inner().is_none(),
        }
    }
}

/// A blocked call's presence on one shard.
#[derive(Debug)]
pub struct Waiter {
    /// The call's token.
    pub token: Arc<BlockToken>,
    /// The client's database.
    pub db: usize,
    /// The call's keys owned by this shard, in argument order.
    pub keys: Vec<Bytes>,
    /// How to serve it.
    pub serve: Serve,
    /// False when serving needs another shard too (BLMOVE's destination lives elsewhere).
    pub local: bool,
}

/// The shard's blocked waiters.
#[derive(Default)]
pub struct Registry {
    waiters: HashMap<u64, Waiter>,
    /// key -> (db, waiting tokens in arrival order).
    by_key: HashMap<Bytes, Vec<(usize, VecDeque<u64>)>>,
    /// Keys signalled since the last serving, in signal order.
    ready: VecDeque<(usize, Bytes)>,
    /// The same keys, to signal each once without walking the queue (a node-wide run signals
    /// every waited key: with 1000 waiters that walk was half a million comparisons).
    ready_set: HashSet<(usize, Bytes)>,
    /// While set, writes only signal keys; serving waits for [`Registry::release`]. MULTI/EXEC
    /// (and scripts) will hold it so waiters are served after the whole transaction, as in
    /// Redis; blocking commands inside them run as their non-blocking form (their keyed
    /// handler's null reply), which needs nothing from here.
    held: bool,
}

impl Registry {
    /// True when nobody waits here.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Waiters registered here.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    fn insert(&mut self, w: Waiter) {
        let id = w.token.id;
        for k in &w.keys {
            let dbs = self.by_key.entry(k.clone()).or_default();
            match dbs.iter_mut().find(|(d, _)| *d == w.db) {
                Some((_, q)) => {
                    if !q.contains(&id) {
                        q.push_back(id);
                    }
                }
                None => dbs.push((w.db, VecDeque::from([id]))),
            }
        }
        self.waiters.insert(id, w);
    }

    /// Removes a waiter from every queue it is in.
    pub fn remove(&mut self, token: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&token)?;
        for k in &w.keys {
            let Some(dbs) = self.by_key.get_mut(k) else { continue };
            if let Some(i) = dbs.iter().position(|(d, _)| *d == w.db) {
                dbs[i].1.retain(|&t| t != token);
                if dbs[i].1.is_empty() {
                    dbs.swap_remove(i);
                }
            }
            if dbs.is_empty() {
                self.by_key.remove(k);
            }
        }
        Some(w)
    }

    /// Defers serving until [`release`](Registry::release) (for work that must look atomic).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Ends [`hold`](Registry::hold); the caller then runs [`serve_ready`].
    pub fn release(&mut self) {
        self.held = false;
    }

    /// True while serving is deferred by [`hold`](Registry::hold).
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Signals `key` in every database where someone waits on it.
    pub fn signal_key(&mut self, key: &[u8]) {
        let Some((stored, dbs)) = self.by_key.get_key_value(key) else { return };
        for (d, _) in dbs {
            let entry = (*d, stored.clone());
            if self.ready_set.insert(entry.clone()) {
                self.ready.push_back(entry);
            }
        }
    }

    /// The next signalled key, in signal order.
    fn next_ready(&mut self) -> Option<(usize, Bytes)> {
        let next = self.ready.pop_front()?;
        self.ready_set.remove(&next);
        Some(next)
    }

    /// Signals every key someone waits on (after node-wide work such as SWAPDB).
    pub fn signal_all(&mut self) {
        let all: Vec<Bytes> = self.by_key.keys().cloned().collect();
        for k in all {
            self.signal_key(&k);
        }
    }
}

/// Registers a waiter, serving it at once if one of its keys already holds data (a push may
/// have landed between its home's attempt and this registration). Returns true if served.
pub fn register(st: &mut ShardState, w: Waiter) -> bool {
    if w.token.is_claimed() {
        return true;
    }
    let mut w = w;
    let (id, db) = (w.token.id, w.db);
    let mut ctx = Ctx::new(st, db, crate::storage::cached_ms());
    if let Serve::Stream(sw) = &mut w.serve {
        // `$` means the stream's last ID as the reader blocks.
        super::stream_read::resolve(&mut ctx, sw);
    }
    let ready = w.keys.iter().find(|k| matches!(w.serve.state(&mut ctx, k), KeyState::Ready)).cloned();
    st.blocked.insert(w);
    if let Some(k) = ready {
        st.blocked.signal_key_db(db, &k);
        serve_ready(st);
        return !st.blocked.waiters.contains_key(&id);
    }
    false
}

impl Registry {
    fn signal_key_db(&mut self, db: usize, key: &[u8]) {
        let entry = (db, Bytes::copy_from_slice(key));
        if self.ready_set.insert(entry.clone()) {
            self.ready.push_back(entry);
        }
    }
}

/// Removes a waiter (its home gave up: timeout, disconnect, served elsewhere).
pub fn cancel(st: &mut ShardState, token: u64) {
    st.blocked.remove(token);
}

/// After a keyed write: signals its keys and serves what became ready.
#[inline]
pub fn after_write(st: &mut ShardState, spec: &'static CommandSpec, args: &[Bytes]) {
    if !st.blocked.is_empty() && spec.has(flags::WRITE) {
        signal_written(st, spec, args);
    }
}

#[cold]
fn signal_written(st: &mut ShardState, spec: &'static CommandSpec, args: &[Bytes]) {
    if let Ok(idx) = spec.key_indexes(args) {
        for i in idx {
            st.blocked.signal_key(&args[i]);
        }
    }
    serve_ready(st);
}

/// After work that may have created any key (transaction write-back, SWAPDB, FLUSHALL, ...).
pub fn after_keys(st: &mut ShardState, keys: Option<&[Bytes]>) {
    if st.blocked.is_empty() {
        return;
    }
    match keys {
        Some(ks) => ks.iter().for_each(|k| st.blocked.signal_key(k)),
        None => st.blocked.signal_all(),
    }
    serve_ready(st);
}

/// Serves waiters on signalled keys, in arrival order, while the keys hold data.
pub fn serve_ready(st: &mut ShardState) {
    if st.blocked.held || st.blocked.ready.is_empty() {
        return;
    }
    // The real time, as Redis's `handleClientsBlockedOnKeys` runs outside any command's
    // frozen clock: a key that expired during the write that signalled it (a DEBUG SLEEP
    // inside EXEC) serves nobody.
    let now = crate::storage::tick_clock();
    while let Some((db, key)) = st.blocked.next_ready() {
        let queue: Vec<u64> = match st.blocked.by_key.get(&key).and_then(|v| v.iter().find(|(d, _)| *d == db)) {
            Some((_, q)) => q.iter().copied().collect(),
            None => continue,
        };
        for id in queue {
            let Some(w) = st.blocked.waiters.get(&id) else { continue };
            if w.token.is_claimed() {
                st.blocked.remove(id);
                continue;
            }
            let serve = w.serve.clone();
            let mut ctx = Ctx::new(st, db, now);
            match serve.state(&mut ctx, &key) {
                KeyState::Ready => {}
                // Another type: this waiter keeps waiting, others may want it.
                KeyState::WrongType => continue,
                // A stream reader waits for entries past its own ID: the next may want these.
                KeyState::Empty if serve.keeps_data() => continue,
                KeyState::Empty => break,
            }
            let Some(w) = st.blocked.remove(id) else { continue };
            let Some(tx) = w.token.claim() else { continue };
            if !w.local {
                let _ = tx.send(Wake::Retry);
                continue;
            }
            let mut ctx = Ctx::new(st, db, now);
            let reply = w.serve.from_key(&mut ctx, &key);
            if let Serve::Move { dst, .. } = &w.serve {
                st.blocked.signal_key_db(db, dst);
            }
            let _ = tx.send(Wake::Reply(reply));
        }
    }
}

/// After the cluster view changed (Redis's `clusterRedirectBlockedClientIfNeeded`): a waiter
/// whose slot this node no longer serves, nor imports, is answered `-MOVED` to the new owner
/// (`-CLUSTERDOWN Hash slot not served` when nobody serves it), and every waiter gets
/// `-CLUSTERDOWN The cluster is down` while the cluster is down, since the write that would
/// serve it may never come. A read (XREAD) on a replica of the slot's owner keeps waiting,
/// as a READONLY client's would.
pub fn redirect_after_cluster_change(st: &mut ShardState, view: &crate::cluster::view::ClusterView) {
    use crate::cluster::redirect;
    use crate::cluster::view::SlotRoute;
    if st.blocked.is_empty() || !view.enabled {
        return;
    }
    let mut answers: Vec<(u64, Reply)> = Vec::new();
    for (&id, w) in &st.blocked.waiters {
        let Some(key) = w.keys.first() else { continue };
        let slot = crate::cluster::key_slot(key);
        let reply = if !view.ok {
            Reply::err(redirect::DOWN)
        } else {
            match view.route[slot as usize] {
                SlotRoute::Mine { .. } | SlotRoute::Other { importing: true, .. } => continue,
                SlotRoute::Other { my_master: true, .. }
                    if view.replica && matches!(&w.serve, Serve::Stream(s) if s.group.is_none()) =>
                {
                    continue
                }
                SlotRoute::Other { addr, .. } => redirect::moved(slot, &view.addrs[addr as usize]),
                SlotRoute::Unassigned => Reply::err(redirect::UNBOUND),
            }
        };
        answers.push((id, reply));
    }
    answer(st, answers);
}

/// Removes each waiter and answers its call with the reply given for it (unless already
/// claimed elsewhere).
fn answer(st: &mut ShardState, answers: Vec<(u64, Reply)>) {
    for (id, reply) in answers {
        let Some(w) = st.blocked.remove(id) else { continue };
        if let Some(tx) = w.token.claim() {
            let _ = tx.send(Wake::Reply(reply));
        }
    }
}

/// Answers every waiter here with the error `text` (Redis's `disconnectAllBlockedClients`
/// when the node turns replica: the master's stream must not serve them).
pub fn unblock_all(st: &mut ShardState, text: &'static str) {
    let answers = st.blocked.waiters.keys().map(|&id| (id, Reply::err(text))).collect();
    answer(st, answers);
}
