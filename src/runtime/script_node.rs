//! A script run on the whole node (the third way of `script_exec`): every shard is held by
//! the run's transaction, and each command the script calls runs on the real shard that owns
//! what it touches, as Redis runs it on its one keyspace.
//!
//! A script gets here when it needs more than the shards it started with: a node-wide command
//! (DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHDB, FLUSHALL, SWAPDB, INFO, ...: any plan that is not a
//! single shard's) on a node of several shards, or a key of another shard that was not declared.
//! The first run stops there (its writes undone, see `script_undo`) and the script runs again
//! from the start here; a script inside EXEC starts here, since EXEC holds every shard already.
//!
//! How a command runs:
//! - keys all on one shard (or none): on that shard, this one directly, another one through the
//!   hold (`Shard::held_now`);
//! - keys on several shards: as a multi-key command (`crate::transaction`), the keys copied
//!   here, the command run on the copy, the final states written back;
//! - node-level plans: the fan-out goes to every held shard, SCAN walks the slots shard by
//!   shard, and the merge runs here with the script's client.
//!
//! The shards' answers come back while this thread waits (the script cannot return to the event
//! loop in the middle of a command). This cannot deadlock: every shard waited for is held by
//! this run, so it serves nothing but held work, which needs no other shard.
//!
//! Effects: each command's changes join the transaction's in the order the commands ran (those
//! made here too), so the merged stream has the whole script as one MULTI/EXEC unit, pushed
//! before the shards are released; `redis.set_repl` leaves consumers out of each command's
//! records here, whichever shard recorded them.

use super::mesh::{HeldOp, HeldResult, RemoteCmd};
use super::script_common::{count_rejected, reads_derived, Common};
use super::script_exec::{drive, spec_for, start_run, Outcome};
use super::shard::Shard;
use crate::cluster::redirect::SlotCheck;
use crate::cmd::scripting::ScriptJob;
use crate::cmd::{self, ClientCtx, ClientState, Exec, Plan, ShardFn};
use crate::protocol::Reply;
use crate::replication::feed::Unit;
use crate::script::{self, ldb, Host};
use crate::transaction;
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;

/// Runs the script with every shard held by `tx`.
pub(super) async fn run(
    shard: &Rc<Shard>,
    client: &Rc<RefCell<ClientState>>,
    job: &ScriptJob,
    sha: &str,
    flags: u32,
    tx: u64,
    debug: &mut Option<ldb::Session>,
) -> Outcome {
    let (db, resp3, master) = {
        let c = client.borrow();
        (c.db, c.resp3, c.master)
    };
    let ms = crate::storage::tick_clock();
    // Anything recorded before the script is not part of its unit.
    shard.state.borrow_mut().flush_changes();
    let flags_run = script::run_begin(job.function.is_none(), master, &job.sha, &job.argv);
    let running = match start_run(spec_for(job, sha, flags, db, flags_run.clone()), debug) {
        Ok(r) => r,
        Err(e) => {
            script::run_end(&flags_run);
            return Outcome::Done(e, Vec::new());
        }
    };
    let mut c = Common::new(shard, job, flags, db, &client.borrow());
    c.tracking = cmd::tracking::ScriptTracking::for_caller(&mut client.borrow_mut(), job);
    let mut host = NodeHost { shard, tx, c, ms };
    let reply = drive(running, &mut host, resp3, debug).await;
    script::run_end(&flags_run);
    // What the last commands here recorded joins the unit.
    let changes = shard.state.borrow_mut().take_changes();
    shard.add_tx_changes(tx, changes);
    Outcome::Done(reply, host.c.published)
}

struct NodeHost<'a> {
    shard: &'a Shard,
    tx: u64,
    c: Common,
    /// The script's clock (ms), frozen for the whole run as in Redis.
    ms: u64,
}

impl Host for NodeHost<'_> {
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        self.c.acl_allows(args)
    }

    fn rejected(&mut self, command: Option<&'static str>, text: &str) {
        count_rejected(&mut self.shard.state.borrow_mut(), command, text);
    }

    fn call(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        let start = crate::clock::Stamp::now();
        let r = self.run(db, args, resp3, repl);
        self.c.count(&mut self.shard.state.borrow_mut(), args, &r, start);
        r
    }
}

impl NodeHost<'_> {
    fn run(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        self.c.client.resp3 = resp3;
        let (spec, fullname) = self.c.resolve(args)?;
        let idx = match spec.key_indexes(args) {
            Ok(i) => i,
            Err(e) => return Ok(e),
        };
        self.c.cluster_check(spec, args, &idx)?;
        let excluded = Unit::TO_ALL & !repl;
        let r = match spec.exec {
            Exec::Keyed(_) => {
                // A shard channel (SPUBLISH) names no key: it is delivered on every shard.
                let owners = if spec.has(cmd::flags::PUBSUB) { Vec::new() } else { self.shard.shards_of(args, &idx) };
                let one = RemoteCmd {
                    spec,
                    fullname,
                    args: args.to_vec(),
                    check: SlotCheck::None,
                    slot: None,
                    client: self.c.tracking.caller,
                    remember: false,
                };
                let ms = self.ms;
                if reads_derived(spec, args, self.shard.nshards) {
                    // SORT ... BY/GET: the keys its data names may live on any shard.
                    let all: Vec<usize> = (0..self.shard.nshards).collect();
                    self.spanning(one, &idx, *db, &all, excluded, true)
                } else {
                    match owners[..] {
                        [] => self.held(self.shard.id, HeldOp::Script { db: *db, cmd: Box::new(one), ms }, excluded),
                        [s] => self.held(s, HeldOp::Script { db: *db, cmd: Box::new(one), ms }, excluded),
                        _ => self.spanning(one, &idx, *db, &owners, excluded, false),
                    }
                }
            }
            _ => self.node(spec, fullname, db, args, excluded),
        };
        // The script read: its caller remembers the declared keys on their shards.
        if let Some(keys) = self.c.tracking.take_on_read(spec) {
            let shard_of = |k: &[u8]| self.shard.shard_of_slot(crate::cluster::key_slot(k));
            let caller = self.c.tracking.caller;
            for (s, args) in cmd::tracking::remember_requests(caller, &keys, 0..self.shard.nshards, shard_of) {
                self.held(s, HeldOp::Run { run: cmd::tracking::remember_here, db: *db, args }, 0);
            }
        }
        crate::conn::monitor::feed_script_call(*db, spec, args);
        if spec.has(cmd::flags::WRITE) {
            self.c.wrote = true;
        }
        Ok(r)
    }

    /// Runs `op` on held shard `s`, its records without the consumers in `excluded`.
    fn held(&self, s: usize, op: HeldOp, excluded: u8) -> Reply {
        // What this shard recorded so far goes first, so the unit keeps the commands' order.
        let changes = self.shard.state.borrow_mut().take_changes();
        self.shard.add_tx_changes(self.tx, changes);
        match self.shard.held_now_to(self.tx, s, op, excluded) {
            HeldResult::Reply(r) => r,
            _ => Reply::err("ERR internal error: shard unavailable"),
        }
    }

    /// A keyed command whose keys live on several shards: copied here, run on the copy,
    /// written back (as `Shard::spanning_held`, waiting on this thread). `derived`: the keys
    /// the copied data names are copied too (only read, never written back).
    fn spanning(
        &self,
        one: RemoteCmd,
        idx: &[usize],
        db: usize,
        owners: &[usize],
        excluded: u8,
        derived: bool,
    ) -> Reply {
        let shard = self.shard;
        let per_shard = shard.keys_by_shard(&one.args, idx);
        let mut scratch = shard.scratch_state();
        for &s in owners {
            let keys = per_shard[s].clone();
            if keys.is_empty() {
                continue;
            }
            if let HeldResult::Entries(entries) = shard.held_now_to(self.tx, s, HeldOp::Fetch { keys }, 0) {
                transaction::apply(&mut scratch.ks, entries);
            }
        }
        if derived {
            for (s, keys) in shard.derived_keys(&mut scratch, db, &one, &per_shard).into_iter().enumerate() {
                if keys.is_empty() {
                    continue;
                }
                if let HeldResult::Entries(entries) = shard.held_now_to(self.tx, s, HeldOp::Fetch { keys }, 0) {
                    transaction::apply(&mut scratch.ks, entries);
                }
            }
        }
        let mut clock = crate::clock::Stamp::now();
        let _writer = cmd::tracking::Writer::set(one.client);
        scratch.changes.set_excluded(excluded);
        let reply = cmd::execute_keyed(&mut scratch, one.spec, one.fullname, &one.args, None, db, &mut clock);
        let changes = shard.state.borrow_mut().take_changes();
        shard.add_tx_changes(self.tx, changes);
        shard.add_tx_changes(self.tx, scratch.take_changes());
        shard.publish_scratch_notifications(&mut scratch);
        if one.spec.has(cmd::flags::WRITE) {
            for &s in owners {
                let entries = transaction::final_states(&mut scratch.ks, &per_shard[s]);
                let signalled = scratch.tracking.signalled.clone().map(Box::new);
                shard.held_now_to(self.tx, s, HeldOp::Apply { entries, writer: one.client, signalled }, 0);
            }
        }
        shard.merge_scratch_stats(&scratch);
        reply
    }

    /// A node-level command: its handler runs here with the script's client; the plans that
    /// need other shards are carried out on the held shards.
    fn node(
        &mut self,
        spec: &'static cmd::CommandSpec,
        fullname: &'static str,
        db: &mut usize,
        args: &[Bytes],
        excluded: u8,
    ) -> Reply {
        let start = std::time::Instant::now();
        let plan = {
            let mut st = self.shard.state.borrow_mut();
            st.changes.set_excluded(excluded);
            let r = self.c.node(&mut st, spec, fullname, db, args);
            st.changes.set_excluded(0);
            r
        };
        let plan = match plan {
            Ok(r) => return r,
            Err(plan) => plan,
        };
        let (shard, tx) = (self.shard, self.tx);
        let mut on = |s: usize, run: ShardFn, db: usize, a: Vec<Bytes>| {
            let changes = shard.state.borrow_mut().take_changes();
            shard.add_tx_changes(tx, changes);
            match shard.held_now_to(tx, s, HeldOp::Run { run, db, args: a }, excluded) {
                HeldResult::Reply(r) => r,
                _ => Reply::err("ERR internal error: shard unavailable"),
            }
        };
        let reply = carry_out(&mut self.c, shard, plan, *db, args, &mut on);
        cmd::record_call(&mut shard.state.borrow_mut(), fullname, start.elapsed().as_micros() as u64, &reply);
        reply
    }
}

/// Runs a plan's shard work through `on(shard, run, db, args)` and merges the answers here with
/// the script's client (`conn::plan` does the same for a client, awaiting each shard).
pub(super) fn carry_out(
    c: &mut Common,
    home: &Shard,
    plan: Plan,
    db: usize,
    args: &[Bytes],
    on: &mut dyn FnMut(usize, ShardFn, usize, Vec<Bytes>) -> Reply,
) -> Reply {
    match plan {
        Plan::AllShards { run, merge } => {
            let replies: Vec<Reply> = (0..home.nshards).map(|s| on(s, run, db, args.to_vec())).collect();
            let mut st = home.state.borrow_mut();
            let mut ctx = ClientCtx { client: &mut c.client, shard: &mut st };
            merge(&mut ctx, replies)
        }
        Plan::OnSlot { slot, run, then } => {
            let r = on(home.shard_of_slot(slot), run, db, args.to_vec());
            let mut st = home.state.borrow_mut();
            let mut ctx = ClientCtx { client: &mut c.client, shard: &mut st };
            then(&mut ctx, r)
        }
        Plan::Scan { cursor, count, run } => scan(home, cursor, count, run, db, args, on),
        _ => Reply::err(super::script_common::NOT_ALLOWED),
    }
}

/// A [`Plan::Scan`], shard by shard through `on`.
fn scan(
    home: &Shard,
    cursor: usize,
    count: usize,
    run: ShardFn,
    db: usize,
    args: &[Bytes],
    on: &mut dyn FnMut(usize, ShardFn, usize, Vec<Bytes>) -> Reply,
) -> Reply {
    let mut walk = cmd::scan_walk::ScanWalk::new(cursor, count);
    while let Some((owner, a)) = walk.next(|slot| home.shard_of_slot(slot), args) {
        if let Err(e) = walk.take(on(owner, run, db, a)) {
            return e;
        }
    }
    walk.reply()
}
