//! Commands whose keys live on several shards: the shards owning the keys are held, the keys
//! copied here into a scratch state, the command run on that copy, and the results written
//! back before the shards are released (`Shard::run_spanning`).

use super::mesh::{HeldOp, HeldResult, RemoteCmd};
use super::shard::Shard;
use crate::cmd::{self, ShardState};
use crate::protocol::Reply;
use crate::transaction;
use bytes::Bytes;

impl Shard {
    /// Runs a keyed command whose keys live on several shards, atomically: hold the shards,
    /// copy the keys here, run the command on that copy, write the results back, release.
    ///
    /// `derived` (a `Keys::Derived` call that reads keys its data names): every shard is held,
    /// and after the argument keys are copied, the keys the spec's `more` names from that copy
    /// are copied too; they are only read, so only the argument keys are written back.
    pub async fn run_spanning(&self, db: usize, cmd: RemoteCmd, key_idx: &[usize], derived: bool) -> Reply {
        let shards = if derived { (0..self.nshards).collect() } else { self.shards_of(&cmd.args, key_idx) };
        let tx = match self.lock(&shards).await {
            Ok(tx) => tx,
            Err(e) => return e,
        };
        let reply = self.spanning_held(tx, db, cmd, key_idx, derived).await;
        self.unlock(tx, &shards).await;
        reply
    }

    /// CLIENT TRACKING: invalidates the keys a write on copies signalled (written back
    /// already), in the order it signalled them, as Redis's pushes come; consecutive keys of
    /// one shard go in one request.
    pub(crate) async fn invalidate_in_order(&self, tx: u64, writer: u64, keys: &[Bytes]) {
        let owner = |k: &Bytes| self.shard_of_slot(crate::cluster::key_slot(k));
        let mut rest = keys;
        while let Some(first) = rest.first() {
            let s = owner(first);
            let n = rest.iter().take_while(|k| owner(k) == s).count();
            let mut args = vec![Bytes::from(writer.to_string())];
            args.extend_from_slice(&rest[..n]);
            self.held(tx, s, HeldOp::Run { run: cmd::tracking::invalidate_here, db: 0, args }).await;
            rest = &rest[n..];
        }
    }

    /// The shards (ascending) owning the keys at `key_idx`.
    pub fn shards_of(&self, args: &[Bytes], key_idx: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> =
            key_idx.iter().map(|&i| self.shard_of_slot(crate::cluster::key_slot(&args[i]))).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The body of [`Shard::run_spanning`] for a transaction `tx` that already holds every
    /// shard owning the keys (every shard when `derived`).
    pub(crate) async fn spanning_held(
        &self,
        tx: u64,
        db: usize,
        cmd: RemoteCmd,
        key_idx: &[usize],
        derived: bool,
    ) -> Reply {
        let mut per_shard = self.keys_by_shard(&cmd.args, key_idx);
        let shards: Vec<usize> = (0..self.nshards).filter(|&s| derived || !per_shard[s].is_empty()).collect();
        // Copy the keys into a scratch shard state.
        let mut scratch = self.scratch_state();
        for &s in &shards {
            let keys = std::mem::take(&mut per_shard[s]);
            if let HeldResult::Entries(entries) = self.held(tx, s, HeldOp::Fetch { keys: keys.clone() }).await {
                transaction::apply(&mut scratch.ks, entries);
            }
            per_shard[s] = keys;
        }
        if derived {
            for (s, keys) in self.derived_keys(&mut scratch, db, &cmd, &per_shard).into_iter().enumerate() {
                if keys.is_empty() {
                    continue;
                }
                if let HeldResult::Entries(entries) = self.held(tx, s, HeldOp::Fetch { keys }).await {
                    transaction::apply(&mut scratch.ks, entries);
                }
            }
        }
        crate::storage::tick_clock();
        let mut clock = crate::clock::Stamp::now();
        let _writer = cmd::tracking::Writer::set(cmd.client);
        let reply = cmd::execute_keyed(&mut scratch, cmd.spec, cmd.fullname, &cmd.args, cmd.slot, db, &mut clock);
        let signalled = scratch.tracking.signalled.take().map(Box::new);
        // A tracker's read remembers its keys where they live, as on one shard.
        if cmd.remember {
            let keys: Vec<Bytes> = key_idx.iter().map(|&i| cmd.args[i].clone()).collect();
            let shard_of = |k: &[u8]| self.shard_of_slot(crate::cluster::key_slot(k));
            for (s, args) in cmd::tracking::remember_requests(cmd.client, &keys, shards.iter().copied(), shard_of) {
                self.held(tx, s, HeldOp::Run { run: cmd::tracking::remember_here, db, args }).await;
            }
        }
        // The command's record (made on the copy) is the transaction's; the write-back below
        // records nothing of its own.
        let changes = scratch.take_changes();
        self.add_tx_changes(tx, changes);
        self.publish_scratch_notifications(&mut scratch);
        if cmd.spec.has(cmd::flags::WRITE) {
            for &s in &shards {
                // Keys absent from the scratch copy are deleted at the owner.
                let all = transaction::final_states(&mut scratch.ks, &per_shard[s]);
                let op = HeldOp::Apply { entries: all, writer: cmd.client, signalled: Some(Box::default()) };
                self.held(tx, s, op).await;
            }
            self.invalidate_in_order(tx, cmd.client, signalled.as_deref().map_or(&[], |v| v)).await;
        }
        self.merge_scratch_stats(&scratch);
        reply
    }

    /// The keys a `Keys::Derived` call names from the data copied into `scratch` (SORT's BY
    /// and GET keys), grouped by the shard owning them, less those `per_shard` copied already.
    pub(crate) fn derived_keys(
        &self,
        scratch: &mut cmd::ShardState,
        db: usize,
        cmd: &RemoteCmd,
        per_shard: &[Vec<Bytes>],
    ) -> Vec<Vec<Bytes>> {
        let mut extra: Vec<Vec<Bytes>> = vec![Vec::new(); self.nshards];
        if let cmd::Keys::Derived { more, .. } = cmd.spec.keys {
            for k in more(scratch, db, &cmd.args) {
                let s = self.shard_of_slot(crate::cluster::key_slot(&k));
                if !per_shard[s].contains(&k) && !extra[s].contains(&k) {
                    extra[s].push(k);
                }
            }
        }
        extra
    }

    /// The keys `args[idx]` grouped by the shard owning them, each once.
    pub(crate) fn keys_by_shard(&self, args: &[Bytes], idx: &[usize]) -> Vec<Vec<Bytes>> {
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); self.nshards];
        for &i in idx {
            let k = &args[i];
            let s = self.shard_of_slot(crate::cluster::key_slot(k));
            if !per_shard[s].contains(k) {
                per_shard[s].push(k.clone());
            }
        }
        per_shard
    }

    /// An empty shard state for work on copies of keys (a command spanning shards, a script
    /// run on copies), recording its changes as this shard would.
    pub(crate) fn scratch_state(&self) -> ShardState {
        let (config, node) = {
            let st = self.state.borrow();
            (st.config.clone(), st.node.clone())
        };
        let mut scratch = ShardState::new(self.id, config, node);
        scratch.tracking.signalled = Some(Vec::new());
        scratch.changes.set_recording(scratch.node.repl.feed.active() && !crate::replication::role::no_record());
        scratch
    }

    /// Publishes from this shard the keyspace notifications a scratch run queued.
    pub(crate) fn publish_scratch_notifications(&self, scratch: &mut ShardState) {
        if !scratch.notify.is_empty() {
            let mut st = self.state.borrow_mut();
            st.notify.absorb(&mut scratch.notify);
            crate::cmd::notify::publish_pending(&mut st);
        }
    }

    /// Counts a scratch run's command statistics and changes (the dirty counter) on this shard.
    pub(crate) fn merge_scratch_stats(&self, scratch: &ShardState) {
        let mut st = self.state.borrow_mut();
        transaction::merge_stats(&mut st, scratch);
        st.changes.count(scratch.changes.dirty());
    }
}
