//! A shard at run time: its state, its mesh senders, its gate, and the ways a connection gets a
//! command executed (inline when local, over the mesh when remote, under a transaction when the
//! command spans shards or the whole node).

use super::gate::Gate;
use super::mesh::{BatchAnswer, BatchDone, HeldDone, HeldOp, HeldResult, Msg, RemoteCmd};
use super::mesh_links::Senders;
use crate::cluster::redirect;
use crate::cluster::view::{ClusterView, SlotRoute};
use crate::cmd::{self, ShardFn, ShardState};
use crate::protocol::Reply;
use crate::replication::feed::{FeedItem, Unit};
use crate::transaction;
use bytes::Bytes;
use futures_channel::oneshot;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_TX: AtomicU64 = AtomicU64::new(1);

/// Tells storage whether an LFU `maxmemory-policy` is in force (OBJECT FREQ's counters).
fn apply_lfu(cfg: &crate::config::Config) {
    let lfu = cfg.get("maxmemory-policy").is_some_and(|p| p.ends_with("-lfu"));
    let num = |name: &str, default: u32| cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    crate::storage::db::set_lfu(lfu, num("lfu-log-factor", 10), num("lfu-decay-time", 1));
    crate::memory::apply_config(cfg);
}

/// One shard's runtime handle, shared (`Rc`) by its connection tasks.
pub struct Shard {
    /// Shard index (mesh peer id).
    pub id: usize,
    /// Number of data shards.
    pub nshards: usize,
    /// The shard's data and counters.
    pub state: RefCell<ShardState>,
    /// Senders to every peer.
    pub mesh: Senders,
    /// The transaction gate.
    pub gate: Gate,
    /// The routing snapshot: slot -> shard, and in cluster mode who serves each slot.
    pub view: RefCell<Arc<ClusterView>>,
    /// Config generation this shard's snapshot is from.
    config_gen: std::cell::Cell<u64>,
    /// `role::follow_epoch` as this shard last saw it.
    follow_epoch: std::cell::Cell<u64>,
    /// Changes made for transactions this shard coordinates, collected from the shards they
    /// hold; pushed to the feed as one unit before the shards are released.
    tx_units: RefCell<hashbrown::HashMap<u64, Vec<Unit>>>,
}

/// Error when a peer shard is gone (only during shutdown).
const PEER_GONE: &str = "ERR internal error: shard unavailable";

/// What clients blocked on keys get when this node starts following a master.
const UNBLOCKED_BY_ROLE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

impl Shard {
    /// A shard handle.
    pub fn new(id: usize, nshards: usize, state: ShardState, mesh: Senders) -> Shard {
        let gen = state.node.config_gen.load(Ordering::Acquire);
        apply_lfu(&state.config);
        crate::memory::register_thread();
        crate::memory::clients::register_shard(id);
        Shard {
            id,
            nshards,
            state: RefCell::new(state),
            mesh,
            gate: Gate::default(),
            view: RefCell::new(ClusterView::standalone_shared(nshards)),
            config_gen: std::cell::Cell::new(gen),
            follow_epoch: std::cell::Cell::new(crate::replication::role::follow_epoch()),
            tx_units: Default::default(),
        }
    }

    /// The shard owning a slot (with one shard, this one, without looking).
    #[inline]
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        if self.nshards == 1 {
            return 0;
        }
        self.view.borrow().shard_of(slot)
    }

    /// Swaps in the newest cluster view if one was published (one atomic load), and drops
    /// this shard's keys in slots it no longer keeps (lost to another node, or now placed on
    /// another shard), as Redis deletes keys of slots it lost.
    ///
    /// Called at least once per connection turn: the unchanged case is this inline check, the
    /// swap is out of line (its stack frame cost every call while it was one function).
    #[inline]
    pub fn refresh_cluster(&self) {
        let changed = {
            let st = self.state.borrow();
            let Some(cluster) = st.node.cluster.as_ref() else { return };
            cluster.generation.load(Ordering::Acquire) != self.view.borrow().generation
        };
        if changed {
            self.swap_cluster_view();
        }
    }

    #[cold]
    #[inline(never)]
    fn swap_cluster_view(&self) {
        let v = {
            let st = self.state.borrow();
            let Some(cluster) = st.node.cluster.as_ref() else { return };
            cluster.view()
        };
        let mut st = self.state.borrow_mut();
        let mut dropped = 0;
        for db in st.ks.dbs.iter_mut() {
            let stale: Vec<u16> =
                db.nonempty_slots_from(0).filter(|&s| !v.keep[s as usize] || v.shard_of(s) != self.id).collect();
            for s in stale {
                dropped += db.clear_slot(s);
            }
        }
        if dropped > 0 {
            tracing::info!("Deleted {} keys in slots this shard no longer serves", dropped);
        }
        crate::cmd::blocked::redirect_after_cluster_change(&mut st, &v);
        // Shard channels of slots no longer served here (or by this replica's master) end.
        let old = self.view.borrow().clone();
        let served = |view: &ClusterView, s: u16| {
            view.enabled
                && matches!(view.route[s as usize], SlotRoute::Mine { .. } | SlotRoute::Other { my_master: true, .. })
        };
        crate::cmd::pubsub::drop_shard_channels(&mut st, |s| served(&old, s) && !served(&v, s));
        *self.view.borrow_mut() = v;
    }

    /// Refreshes this shard's config snapshot if CONFIG SET changed it (one atomic load).
    #[inline]
    pub fn refresh_config(&self) {
        self.refresh_cluster();
        // Set to follow a master since the last look: clients blocked here while this node was
        // a master are answered now, before anything of the master's stream runs here.
        let epoch = crate::replication::role::follow_epoch();
        if epoch != self.follow_epoch.get() {
            self.follow_epoch.set(epoch);
            self.unblock_for_role();
        }
        // One atomic load per call (no reference-count traffic on the node) while unchanged.
        let gen = self.state.borrow().node.config_gen.load(Ordering::Acquire);
        if gen != self.config_gen.get() {
            self.config_gen.set(gen);
            self.apply_config();
        }
    }

    #[cold]
    #[inline(never)]
    fn unblock_for_role(&self) {
        crate::cmd::blocked::unblock_all(&mut self.state.borrow_mut(), UNBLOCKED_BY_ROLE);
    }

    #[cold]
    #[inline(never)]
    fn apply_config(&self) {
        let cfg = self.state.borrow().node.config();
        apply_lfu(&cfg);
        self.state.borrow_mut().config = cfg;
    }

    // ---- inbound messages -------------------------------------------------------------

    /// Handles one message from a peer; never awaits.
    pub fn handle(&self, msg: Msg) {
        // The growth the work below makes is measured from here (see `publish_memory`).
        publish_memory();
        match msg {
            Msg::Adopt { fd, .. } => {
                // The inbound loop serves these (it holds the `Rc` a connection needs).
                tracing::warn!("shard {} got a client socket outside its inbound loop: closed", self.id);
                drop(super::balance::Assigned::on(self.id));
                // SAFETY: the fd was handed to this shard and is registered nowhere.
                unsafe { libc::close(fd) };
            }
            Msg::Batch { db, cmds, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Batch { db, cmds, reply });
                    return;
                }
                let replies = self.run_batch(db, &cmds);
                let travelling = crate::memory::in_flight::Replies::of(&replies.0);
                let _ = reply.send((replies, travelling));
            }
            Msg::Run { run, db, args, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Run { run, db, args, reply });
                    return;
                }
                let _ = reply.send(self.run_remote(run, db, &args, true));
            }
            Msg::Look { run, args, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Look { run, args, reply });
                    return;
                }
                let _ = reply.send(self.run_remote(run, 0, &args, false));
            }
            Msg::Frozen { run, args, reply } => {
                let _ = reply.send(super::snapshot::frozen_here(self, run, &args));
            }
            Msg::Lock { tx, reply } => self.gate.lock_remote(tx, reply),
            Msg::Held { tx, op, reply } => {
                if self.gate.holder() != Some(tx) {
                    tracing::warn!("transaction {} sent work to shard {} it does not hold", tx, self.id);
                }
                let r = self.run_held(op);
                let mut st = self.state.borrow_mut();
                let changes = st.take_changes();
                let events = st.notify.take();
                // The keys written here for BCAST trackers go out from the coordinator with the
                // rest of the transaction's, before its reply (left here, they would wait for
                // this shard's next operation).
                let bcast = std::mem::take(&mut st.tracking.bcast);
                drop(st);
                publish_memory();
                let _ = reply.send((r, changes, events, bcast));
            }
            Msg::Unlock { tx } => {
                if self.gate.release(tx) {
                    self.after_release();
                }
            }
            Msg::Block { db, call, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Block { db, call, reply });
                    return;
                }
                let (attempt, waiter) = *call;
                let _ = reply.send(self.block_here(db, attempt, waiter));
            }
            Msg::Unblock { token } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Unblock { token });
                    return;
                }
                crate::cmd::blocked::cancel(&mut self.state.borrow_mut(), token);
            }
        }
    }

    /// After the gate opened: runs the work deferred while it was held, then hands the gate to
    /// the next taker in line.
    fn after_release(&self) {
        {
            // Blocked clients are served after the whole transaction, as in Redis.
            let mut st = self.state.borrow_mut();
            if st.blocked.is_held() {
                st.blocked.release();
                crate::cmd::blocked::serve_ready(&mut st);
                st.flush_changes();
            }
        }
        while let Some(m) = self.gate.next_deferred() {
            self.handle(m);
        }
        self.gate.hand_on();
    }

    /// Runs another thread's `run` here (the gate is open); `signal`: then signals the keys
    /// blocked clients wait on (a `Msg::Run`, which may have created any key).
    fn run_remote(&self, run: ShardFn, db: usize, args: &[Bytes], signal: bool) -> Reply {
        crate::storage::tick_clock();
        let mut st = self.state.borrow_mut();
        let r = run(&mut st, db, args);
        if signal {
            crate::cmd::blocked::after_keys(&mut st, None);
        }
        st.flush_changes();
        drop(st);
        publish_memory();
        r
    }

    /// Runs `f` here once the gate is open. When a transaction holds the gate, this waits in
    /// line like a transaction (see `gate`), so it cannot be starved.
    pub(crate) async fn when_open<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.gate.holder().is_none() {
            let r = f();
            self.state.borrow_mut().flush_changes();
            return r;
        }
        let tx = NEXT_TX.fetch_add(1, Ordering::Relaxed);
        self.gate.take(tx).await;
        crate::storage::tick_clock();
        let r = f();
        self.state.borrow_mut().flush_changes();
        if self.gate.release(tx) {
            self.after_release();
        }
        r
    }

    /// Runs keyed commands in order on this shard.
    /// The commands that ran long enough for SLOWLOG or the latency monitor are returned
    /// with their time: the issuing client's shard records them with the client's details.
    pub fn run_batch(&self, db: usize, cmds: &[RemoteCmd]) -> BatchDone {
        // A CONFIG SET on another shard applies here before the next command, not at the
        // next timer tick (one atomic load).
        self.refresh_config();
        crate::storage::tick_clock();
        let mut clock = crate::clock::Stamp::now();
        let mut st = self.state.borrow_mut();
        if cmds.len() > 1 {
            if let Some(d) = st.ks.dbs.get(db) {
                d.prefetch_keys(cmds.iter().filter_map(|c| c.args.get(1)).map(|k| &k[..]));
            }
        }
        let done = Self::execute_all(&mut st, cmds, db, &mut clock);
        st.flush_changes();
        drop(st);
        publish_memory();
        done
    }

    /// Runs keyed commands in order; their replies, and notes of those that ran long enough
    /// for SLOWLOG or the latency monitor (the issuing client's shard records them).
    fn execute_all(st: &mut ShardState, cmds: &[RemoteCmd], db: usize, clock: &mut crate::clock::Stamp) -> BatchDone {
        let mut slow = Vec::new();
        let replies = cmds
            .iter()
            .map(|c| {
                let r = Self::execute(st, c, db, clock);
                let usec = st.stats.last_call_usec;
                if crate::cmd::slowlog::noteworthy(st, usec) {
                    slow.push(crate::cmd::slowlog::SlowNote::of(c, usec));
                }
                r
            })
            .collect();
        (replies, slow)
    }

    /// Runs a keyed command here at once when no transaction holds this shard (the common
    /// case, without the future of [`Shard::run_local_one`]); `None` when one does.
    #[inline]
    pub fn run_local_now(&self, db: usize, cmd: &RemoteCmd, clock: &mut crate::clock::Stamp) -> Option<Reply> {
        if self.gate.holder().is_some() {
            return None;
        }
        let mut st = self.state.borrow_mut();
        let r = Self::execute(&mut st, cmd, db, clock);
        st.flush_changes();
        Some(r)
    }

    /// Runs one keyed command here, once the gate is open (the caller ticked the clock).
    /// `clock` advances to the command's end; its duration is in `stats.last_call_usec`.
    pub async fn run_local_one(&self, db: usize, cmd: &RemoteCmd, clock: &mut crate::clock::Stamp) -> Reply {
        self.when_open(|| Self::execute(&mut self.state.borrow_mut(), cmd, db, clock)).await
    }

    /// Runs one keyed command on this shard, after its cluster-mode check.
    pub(crate) fn execute(st: &mut ShardState, c: &RemoteCmd, db: usize, clock: &mut crate::clock::Stamp) -> Reply {
        if let Some(refused) = redirect::precheck(st, &c.check, db, &c.args, crate::storage::cached_ms()) {
            st.stats.last_call_usec = 0;
            return refused;
        }
        let _writer = cmd::tracking::Writer::set(c.client);
        let reply = cmd::execute_keyed(st, c.spec, c.fullname, &c.args, c.slot, db, clock);
        if c.remember {
            cmd::tracking::remember(st, c.spec, &c.args, c.client);
        }
        reply
    }

    fn run_held(&self, op: HeldOp) -> HeldResult {
        // A CONFIG SET made on another shard counts here from the transaction's first command
        // (SLOWLOG's threshold, limits), as in `run_batch`.
        self.refresh_config();
        let mut st = self.state.borrow_mut();
        st.blocked.hold();
        match op {
            HeldOp::Run { run, db, args } => {
                let r = run(&mut st, db, &args);
                crate::cmd::blocked::after_keys(&mut st, None);
                HeldResult::Reply(r)
            }
            HeldOp::Fetch { keys } => HeldResult::Entries(transaction::copy_out(&mut st.ks, &keys)),
            HeldOp::Apply { entries, writer, signalled } => {
                let mut keys: Vec<Bytes> = entries.iter().map(|(_, k, _)| k.clone()).collect();
                transaction::apply(&mut st.ks, entries);
                crate::cmd::blocked::after_keys(&mut st, Some(&keys));
                // The writer is the client of the command or script that made these states
                // (on its own shard's thread), so a NOLOOP tracker does not hear of its own
                // write when the keys live on another shard.
                let _writer = cmd::tracking::Writer::set(writer);
                keys.retain(|k| signalled.as_ref().is_none_or(|s| s.contains(k)));
                crate::cmd::tracking::written_keys(&mut st, &keys);
                HeldResult::Done
            }
            HeldOp::Script { db, cmd, ms } => {
                crate::storage::set_clock(ms);
                let mut clock = crate::clock::Stamp::now();
                HeldResult::Reply(Self::execute(&mut st, &cmd, db, &mut clock))
            }
            HeldOp::Keyed { db, cmds } => {
                crate::storage::tick_clock();
                let mut clock = crate::clock::Stamp::now();
                HeldResult::Replies(Self::execute_all(&mut st, &cmds, db, &mut clock))
            }
        }
    }

    // ---- outbound: used by connections --------------------------------------------------

    /// Sends a batch to a remote shard; the receiver yields its replies.
    pub async fn send_batch(&self, to: usize, db: usize, cmds: Vec<RemoteCmd>) -> oneshot::Receiver<BatchAnswer> {
        let (tx, rx) = oneshot::channel();
        // A failed send drops `tx`, so the receiver reports the peer as gone.
        let _ = self.mesh.send_to(to, Msg::Batch { db, cmds, reply: tx }).await;
        rx
    }

    /// Waits for replies of a batch sent with `send_batch`.
    pub async fn recv_batch(rx: oneshot::Receiver<BatchAnswer>, n: usize) -> BatchDone {
        // The replies are this shard's now: they count again (`travelling` is dropped).
        Self::recv_batch_travelling(rx, n).await.0
    }

    /// [`recv_batch`](Self::recv_batch), and what leaves the replies' bytes out of the
    /// ceiling's count: the caller drops it once it has put them in its client's reply buffer.
    pub async fn recv_batch_travelling(
        rx: oneshot::Receiver<BatchAnswer>,
        n: usize,
    ) -> (BatchDone, crate::memory::in_flight::Replies) {
        match rx.await {
            Ok(answer) => answer,
            Err(_) => (
                ((0..n).map(|_| Reply::err(PEER_GONE)).collect(), Vec::new()),
                crate::memory::in_flight::Replies::none(),
            ),
        }
    }

    /// Holds the given shards (ascending order, no duplicates), returning the transaction id.
    pub(crate) async fn lock(&self, shards: &[usize]) -> Result<u64, Reply> {
        let tx = NEXT_TX.fetch_add(1, Ordering::Relaxed);
        for &s in shards {
            if s == self.id {
                self.gate.take(tx).await;
            } else {
                let (otx, orx) = oneshot::channel();
                if self.mesh.send_to(s, Msg::Lock { tx, reply: otx }).await.is_err() || orx.await.is_err() {
                    self.unlock(tx, shards).await;
                    return Err(Reply::err(PEER_GONE));
                }
            }
        }
        Ok(tx)
    }

    pub(crate) async fn unlock(&self, tx: u64, shards: &[usize]) {
        self.unlock_as(tx, shards, true).await
    }

    /// [`unlock`](Self::unlock); `atomic` false pushes the changes as separate units.
    pub(crate) async fn unlock_as(&self, tx: u64, shards: &[usize], atomic: bool) {
        // The transaction's changes go to the feed (as one unit when `atomic`) while its
        // shards are still held, so nothing a released shard does next can be merged before
        // them.
        if let Some(units) = self.tx_units.borrow_mut().remove(&tx) {
            if !units.is_empty() {
                self.state.borrow().node.repl.feed.push(FeedItem::Units { shard: self.id, units, atomic });
            }
        }
        for &s in shards {
            if s == self.id {
                if self.gate.release(tx) {
                    self.after_release();
                }
            } else {
                let _ = self.mesh.send_to(s, Msg::Unlock { tx }).await;
            }
        }
    }

    /// Runs `op` on a shard held by `tx` (here directly, else over the mesh).
    pub(crate) async fn held(&self, tx: u64, shard: usize, op: HeldOp) -> HeldResult {
        if shard == self.id {
            return self.held_here(tx, op, 0);
        }
        let (otx, orx) = oneshot::channel();
        if self.mesh.send_to(shard, Msg::Held { tx, op, reply: otx }).await.is_err() {
            return HeldResult::Reply(Reply::err(PEER_GONE));
        }
        self.held_done(tx, orx.await.ok(), 0)
    }

    /// As [`Shard::held`], without returning to the event loop: this thread waits for the
    /// held shard's answer. Only for a caller holding `shard` (whose loop then serves nothing
    /// this one could be waiting for): a script's command run on the real shards
    /// (`script_node`). The records of the work leave out the consumers in `excluded`
    /// (`Unit::TO_*` bits, a script's `redis.set_repl`).
    pub(crate) fn held_now_to(&self, tx: u64, shard: usize, op: HeldOp, excluded: u8) -> HeldResult {
        if shard == self.id {
            return self.held_here(tx, op, excluded);
        }
        let (otx, orx) = oneshot::channel();
        if !self.mesh.send_now(shard, Msg::Held { tx, op, reply: otx }) {
            return HeldResult::Reply(Reply::err(PEER_GONE));
        }
        self.held_done(tx, futures_lite::future::block_on(orx).ok(), excluded)
    }

    /// A held op on this very shard; its changes join the transaction's.
    fn held_here(&self, tx: u64, op: HeldOp, excluded: u8) -> HeldResult {
        let r = self.run_held(op);
        let mut st = self.state.borrow_mut();
        let changes = st.take_changes();
        crate::cmd::notify::publish_pending(&mut st);
        drop(st);
        self.add_tx_changes(tx, leave_out(changes, excluded));
        r
    }

    /// A held shard's answer (None: it went away), its changes joined to the transaction's.
    fn held_done(&self, tx: u64, done: Option<HeldDone>, excluded: u8) -> HeldResult {
        let Some((r, changes, events, bcast)) = done else { return HeldResult::Reply(Reply::err(PEER_GONE)) };
        self.add_tx_changes(tx, leave_out(changes, excluded));
        // Sent with this shard's own when the connection's batch ends (`flush_changes`), in
        // one message per prefix as one shard's would be.
        if !bcast.is_empty() {
            self.state.borrow_mut().tracking.bcast.extend(bcast);
        }
        // The held shard's notifications go out from here, after those of the work this
        // transaction did before, so a subscriber sees them in command order.
        if !events.is_empty() {
            let mut st = self.state.borrow_mut();
            st.notify.extend(events);
            crate::cmd::notify::publish_pending(&mut st);
        }
        r
    }

    /// Appends changes made for transaction `tx` (in the order its work ran).
    pub(crate) fn add_tx_changes(&self, tx: u64, changes: Vec<Unit>) {
        if !changes.is_empty() {
            self.tx_units.borrow_mut().entry(tx).or_default().extend(changes);
        }
    }

    /// Runs `run` on one shard (here or over the mesh) once that shard's gate is open; no
    /// other shard is held.
    pub async fn on_shard(&self, target: usize, run: ShardFn, db: usize, args: Vec<Bytes>) -> Reply {
        if target == self.id {
            crate::storage::tick_clock();
            return self
                .when_open(|| {
                    let mut st = self.state.borrow_mut();
                    let r = run(&mut st, db, &args);
                    crate::cmd::blocked::after_keys(&mut st, None);
                    r
                })
                .await;
        }
        let (tx, rx) = oneshot::channel();
        if self.mesh.send_to(target, Msg::Run { run, db, args, reply: tx }).await.is_err() {
            return Reply::err(PEER_GONE);
        }
        rx.await.unwrap_or_else(|_| Reply::err(PEER_GONE))
    }

    /// Runs `run`, which creates no key (see [`Msg::Look`]), on every shard, none of them
    /// held (each once its gate is open), returning the replies. The requests go out before
    /// any is awaited; one connection's calls reach each shard in the order it made them (the
    /// mesh channels are FIFO).
    pub async fn each_shard(&self, run: ShardFn, args: &[Bytes]) -> Vec<Reply> {
        let mut waiting = Vec::with_capacity(self.nshards);
        for s in (0..self.nshards).filter(|&s| s != self.id) {
            let (tx, rx) = oneshot::channel();
            let sent = self.mesh.send_to(s, Msg::Look { run, args: args.to_vec(), reply: tx }).await;
            waiting.push((sent.is_ok(), rx));
        }
        let mut out = vec![self.when_open(|| run(&mut self.state.borrow_mut(), 0, args)).await];
        for (sent, rx) in waiting {
            out.push(match (sent, rx.await) {
                (true, Ok(r)) => r,
                _ => Reply::err(PEER_GONE),
            });
        }
        out
    }

    /// Runs `run` on every shard while all are held, returning the replies in shard order.
    pub async fn all_shards(&self, run: ShardFn, db: usize, args: &[Bytes]) -> Vec<Reply> {
        self.all_shards_as(run, db, args, true).await
    }

    /// [`all_shards`](Self::all_shards); `atomic` false: what the shards recorded reaches
    /// the feed as separate units, not one transaction (a command that touches arbitrary keys).
    pub async fn all_shards_as(&self, run: ShardFn, db: usize, args: &[Bytes], atomic: bool) -> Vec<Reply> {
        let shards: Vec<usize> = (0..self.nshards).collect();
        if self.nshards == 1 {
            return vec![
                self.when_open(|| {
                    let mut st = self.state.borrow_mut();
                    let r = run(&mut st, db, args);
                    crate::cmd::blocked::after_keys(&mut st, None);
                    r
                })
                .await,
            ];
        }
        let tx = match self.lock(&shards).await {
            Ok(tx) => tx,
            Err(e) => return vec![e],
        };
        let mut out = Vec::with_capacity(self.nshards);
        for &s in &shards {
            let op = HeldOp::Run { run, db, args: args.to_vec() };
            out.push(match self.held(tx, s, op).await {
                HeldResult::Reply(r) => r,
                _ => Reply::err(PEER_GONE),
            });
        }
        self.unlock_as(tx, &shards, atomic).await;
        out
    }
}

/// `units` without the consumers in `excluded` (`Unit::TO_*` bits); units left with none go.
fn leave_out(mut units: Vec<Unit>, excluded: u8) -> Vec<Unit> {
    if excluded != 0 {
        units.retain_mut(|u| {
            u.to &= !excluded;
            u.to != 0
        });
    }
    units
}

/// Under `maxmemory`, a shard that runs another shard's work publishes its memory growth
/// before it starts and again before it answers: the caller's next command checks the ceiling
/// on its own shard, which sees this one's growth only as last published, and a shard's first
/// publication after the count's last base is where its growth starts from (so what the work
/// allocated would be left out until the next base without the first). One relaxed load while
/// `maxmemory` is 0.
#[inline]
fn publish_memory() {
    if crate::memory::maxmemory() != 0 {
        crate::memory::publish();
    }
}
