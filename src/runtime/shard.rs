//! A shard at run time: its state, its mesh senders, its gate, and the ways a connection gets a
//! command executed (inline when local, over the mesh when remote, under a transaction when the
//! command spans shards or the whole node).

use super::gate::Gate;
use super::mesh::{HeldOp, HeldResult, Msg, RemoteCmd};
use crate::cluster::slot::SLOTS;
use crate::cmd::{self, ShardFn, ShardState};
use crate::protocol::Reply;
use crate::transaction;
use bytes::Bytes;
use futures_channel::oneshot;
use glommio::channels::channel_mesh::Senders;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TX: AtomicU64 = AtomicU64::new(1);

/// The slot -> shard table of this node (a table, not a formula, so slots can move later).
pub fn default_slot_table(nshards: usize) -> Vec<u16> {
    (0..SLOTS).map(|s| (s * nshards / SLOTS) as u16).collect()
}

/// Tells storage whether an LFU `maxmemory-policy` is in force (OBJECT FREQ's counters).
fn apply_lfu(cfg: &crate::config::Config) {
    let lfu = cfg.get("maxmemory-policy").is_some_and(|p| p.ends_with("-lfu"));
    let num = |name: &str, default: u32| cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    crate::storage::db::set_lfu(lfu, num("lfu-log-factor", 10), num("lfu-decay-time", 1));
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
    pub mesh: Senders<Msg>,
    /// The transaction gate.
    pub gate: Gate,
    /// slot -> shard.
    pub slot_shard: Vec<u16>,
    /// Config generation this shard's snapshot is from.
    config_gen: std::cell::Cell<u64>,
}

/// Error when a peer shard is gone (only during shutdown).
const PEER_GONE: &str = "ERR internal error: shard unavailable";

impl Shard {
    /// A shard handle.
    pub fn new(id: usize, nshards: usize, state: ShardState, mesh: Senders<Msg>) -> Shard {
        let gen = state.node.config_gen.load(Ordering::Acquire);
        apply_lfu(&state.config);
        Shard {
            id,
            nshards,
            state: RefCell::new(state),
            mesh,
            gate: Gate::default(),
            slot_shard: default_slot_table(nshards),
            config_gen: std::cell::Cell::new(gen),
        }
    }

    /// The shard owning a slot.
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        self.slot_shard[slot as usize] as usize
    }

    /// Refreshes this shard's config snapshot if CONFIG SET changed it (one atomic load).
    pub fn refresh_config(&self) {
        let node = self.state.borrow().node.clone();
        let gen = node.config_gen.load(Ordering::Acquire);
        if gen != self.config_gen.get() {
            self.config_gen.set(gen);
            let cfg = node.config();
            apply_lfu(&cfg);
            self.state.borrow_mut().config = cfg;
        }
    }

    // ---- inbound messages -------------------------------------------------------------

    /// Handles one message from a peer; never awaits.
    pub fn handle(&self, msg: Msg) {
        match msg {
            Msg::Batch { db, cmds, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Batch { db, cmds, reply });
                    return;
                }
                let replies = self.run_batch(db, &cmds);
                let _ = reply.send(replies);
            }
            Msg::Run { run, db, args, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Run { run, db, args, reply });
                    return;
                }
                crate::storage::tick_clock();
                let mut st = self.state.borrow_mut();
                let r = run(&mut st, db, &args);
                crate::cmd::blocked::after_keys(&mut st, None);
                let _ = reply.send(r);
            }
            Msg::Lock { tx, reply } => {
                if self.gate.try_take(tx) {
                    let _ = reply.send(());
                } else {
                    self.gate.defer(Msg::Lock { tx, reply });
                }
            }
            Msg::Held { tx, op, reply } => {
                if self.gate.holder() != Some(tx) {
                    tracing::warn!("transaction {} sent work to shard {} it does not hold", tx, self.id);
                }
                let _ = reply.send(self.run_held(op));
            }
            Msg::Unlock { tx } => {
                if self.gate.release(tx) {
                    self.after_release();
                }
            }
            Msg::Block { db, attempt, waiter, reply } => {
                if self.gate.holder().is_some() {
                    self.gate.defer(Msg::Block { db, attempt, waiter, reply });
                    return;
                }
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

    /// Replays deferred messages after the gate opened, until one takes it again.
    fn after_release(&self) {
        while self.gate.holder().is_none() {
            let Some(m) = self.gate.next_deferred() else { break };
            self.handle(m);
        }
        if self.gate.holder().is_none() {
            self.gate.wake_waiters();
        }
    }

    /// Runs keyed commands in order on this shard.
    pub fn run_batch(&self, db: usize, cmds: &[RemoteCmd]) -> Vec<Reply> {
        crate::storage::tick_clock();
        let mut clock = std::time::Instant::now();
        let mut st = self.state.borrow_mut();
        cmds.iter().map(|c| cmd::execute_keyed(&mut st, c.spec, c.fullname, &c.args, db, &mut clock)).collect()
    }

    /// Runs one keyed command here, once the gate is open (the caller ticked the clock).
    pub async fn run_local_one(&self, db: usize, cmd: &RemoteCmd, clock: &mut std::time::Instant) -> Reply {
        if self.gate.holder().is_some() {
            self.gate.wait_open().await;
            crate::storage::tick_clock();
        }
        let mut st = self.state.borrow_mut();
        cmd::execute_keyed(&mut st, cmd.spec, cmd.fullname, &cmd.args, db, clock)
    }

    fn run_held(&self, op: HeldOp) -> HeldResult {
        let mut st = self.state.borrow_mut();
        match op {
            HeldOp::Run { run, db, args } => {
                let r = run(&mut st, db, &args);
                crate::cmd::blocked::after_keys(&mut st, None);
                HeldResult::Reply(r)
            }
            HeldOp::Fetch { keys } => HeldResult::Entries(transaction::copy_out(&mut st.ks, &keys)),
            HeldOp::Apply { entries } => {
                let keys: Vec<Bytes> = entries.iter().map(|(_, k, _)| k.clone()).collect();
                transaction::apply(&mut st.ks, entries);
                crate::cmd::blocked::after_keys(&mut st, Some(&keys));
                HeldResult::Done
            }
        }
    }

    // ---- outbound: used by connections --------------------------------------------------

    /// Sends a batch to a remote shard; the receiver yields its replies.
    pub async fn send_batch(&self, to: usize, db: usize, cmds: Vec<RemoteCmd>) -> oneshot::Receiver<Vec<Reply>> {
        let (tx, rx) = oneshot::channel();
        // A failed send drops `tx`, so the receiver reports the peer as gone.
        let _ = self.mesh.send_to(to, Msg::Batch { db, cmds, reply: tx }).await;
        rx
    }

    /// Waits for replies of a batch sent with `send_batch`.
    pub async fn recv_batch(rx: oneshot::Receiver<Vec<Reply>>, n: usize) -> Vec<Reply> {
        match rx.await {
            Ok(r) => r,
            Err(_) => (0..n).map(|_| Reply::err(PEER_GONE)).collect(),
        }
    }

    /// Holds the given shards (ascending order), returning the transaction id.
    async fn lock(&self, shards: &[usize]) -> Result<u64, Reply> {
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

    async fn unlock(&self, tx: u64, shards: &[usize]) {
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

    async fn held(&self, tx: u64, shard: usize, op: HeldOp) -> HeldResult {
        if shard == self.id {
            return self.run_held(op);
        }
        let (otx, orx) = oneshot::channel();
        if self.mesh.send_to(shard, Msg::Held { tx, op, reply: otx }).await.is_err() {
            return HeldResult::Reply(Reply::err(PEER_GONE));
        }
        orx.await.unwrap_or(HeldResult::Reply(Reply::err(PEER_GONE)))
    }

    /// Runs `run` on one shard (here or over the mesh) once that shard's gate is open; no
    /// other shard is held.
    pub async fn on_shard(&self, target: usize, run: ShardFn, db: usize, args: Vec<Bytes>) -> Reply {
        if target == self.id {
            if self.gate.holder().is_some() {
                self.gate.wait_open().await;
            }
            crate::storage::tick_clock();
            let mut st = self.state.borrow_mut();
            let r = run(&mut st, db, &args);
            crate::cmd::blocked::after_keys(&mut st, None);
            return r;
        }
        let (tx, rx) = oneshot::channel();
        if self.mesh.send_to(target, Msg::Run { run, db, args, reply: tx }).await.is_err() {
            return Reply::err(PEER_GONE);
        }
        rx.await.unwrap_or_else(|_| Reply::err(PEER_GONE))
    }

    /// Runs `run` on every shard while all are held, returning the replies in shard order.
    pub async fn all_shards(&self, run: ShardFn, db: usize, args: &[Bytes]) -> Vec<Reply> {
        let shards: Vec<usize> = (0..self.nshards).collect();
        if self.nshards == 1 {
            self.gate.wait_open().await;
            let mut st = self.state.borrow_mut();
            let r = run(&mut st, db, args);
            crate::cmd::blocked::after_keys(&mut st, None);
            return vec![r];
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
        self.unlock(tx, &shards).await;
        out
    }

    /// Runs a keyed command whose keys live on several shards, atomically: hold the shards,
    /// copy the keys here, run the command on that copy, write the results back, release.
    pub async fn run_spanning(&self, db: usize, cmd: RemoteCmd, key_idx: &[usize]) -> Reply {
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); self.nshards];
        for &i in key_idx {
            let k = &cmd.args[i];
            let s = self.shard_of_slot(crate::cluster::key_slot(k));
            if !per_shard[s].contains(k) {
                per_shard[s].push(k.clone());
            }
        }
        let shards: Vec<usize> = (0..self.nshards).filter(|&s| !per_shard[s].is_empty()).collect();
        let tx = match self.lock(&shards).await {
            Ok(tx) => tx,
            Err(e) => return e,
        };
        // Copy the keys into a scratch shard state.
        let (config, node) = {
            let st = self.state.borrow();
            (st.config.clone(), st.node.clone())
        };
        let mut scratch = ShardState::new(self.id, config, node);
        for &s in &shards {
            let keys = std::mem::take(&mut per_shard[s]);
            if let HeldResult::Entries(entries) = self.held(tx, s, HeldOp::Fetch { keys: keys.clone() }).await {
                transaction::apply(&mut scratch.ks, entries);
            }
            per_shard[s] = keys;
        }
        crate::storage::tick_clock();
        let mut clock = std::time::Instant::now();
        let reply = cmd::execute_keyed(&mut scratch, cmd.spec, cmd.fullname, &cmd.args, db, &mut clock);
        if cmd.spec.has(cmd::flags::WRITE) {
            for &s in &shards {
                // Keys absent from the scratch copy are deleted at the owner.
                let all = transaction::final_states(&mut scratch.ks, &per_shard[s]);
                self.held(tx, s, HeldOp::Apply { entries: all }).await;
            }
        }
        // Stats of the scratch run count on this shard.
        {
            let mut st = self.state.borrow_mut();
            transaction::merge_stats(&mut st, &scratch);
        }
        self.unlock(tx, &shards).await;
        reply
    }
}
