//! Runs a script (`Plan::Script`) on the client's home shard: hold the shards owning its
//! declared keys, run it in this shard's Lua interpreter, record its effects as one unit,
//! release.
//!
//! Three ways to run, chosen by where the keys live and what the script turns out to need:
//! - **Direct**: every declared key is on this shard (always so with one shard). The script's
//!   commands run on this shard's state through `cmd::execute_keyed`, under its gate.
//! - **Copy**: the declared keys live on other shards. As for a multi-key command
//!   (`crate::transaction`): the shards owning them are held, the keys copied into a scratch
//!   state, the script runs on the copy, the final state of the keys is written back.
//! - **Whole node** (`script_node`): every shard is held and each command runs on the real
//!   shard owning its keys; node-wide commands fan out to the held shards.
//!
//! A run of the first two ways that meets a command it cannot serve there (a key of a shard it
//! does not hold or did not copy, or a node-wide command such as DBSIZE, KEYS, SCAN, FLUSHALL,
//! SWAPDB or INFO on a node of several shards) stops (every later command of that run is
//! refused, its result discarded), and the script runs again from the start on the whole
//! node. A Direct run that already wrote is undone first (`script_undo`); a Copy run only wrote
//! its copy. What that costs: one discarded partial run, and a run that stops the whole node.
//! A script inside EXEC runs on the whole node at once (EXEC holds every shard). In cluster
//! mode keys must also be in a slot this node serves, and in the slot of the declared keys
//! unless the script may cross slots, as in Redis (errors with Redis's texts otherwise).
//!
//! Effects: everything the script changed goes to the replication feed as one atomic unit
//! (wrapped in MULTI/EXEC), Redis 7.0's effects replication; the script itself is never
//! propagated.
//!
//! Busy scripts: the interpreter yields back here once the script ran past
//! `busy-reply-threshold`; this task then sleeps briefly so the shard serves its other
//! clients (who get BUSY) and SCRIPT KILL, and resumes the script.

use super::mesh::{HeldOp, HeldResult};
use super::script_common::{count_rejected, reads_derived, Common, Published, NON_LOCAL, NOT_ALLOWED, RESTARTING};
use super::script_undo::{self, Undo};
use super::shard::Shard;
use crate::cluster::redirect;
use crate::cmd::scripting::ScriptJob;
use crate::cmd::{self, ClientState, Exec, ShardState};
use crate::protocol::Reply;
use crate::replication::feed::Unit;
use crate::script::{self, ldb, vm, Host};
use crate::transaction;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How a run ended.
pub(super) enum Outcome {
    /// The script's reply, and the messages it published (delivered before the reply).
    Done(Reply, Vec<Published>),
    /// Run again holding every shard (on the real shards, or for a forked debugging session
    /// on a copy with these keys copied too).
    Restart(Vec<Bytes>),
}

/// Runs a script job for a client; `held`: the transaction holding every shard (EXEC).
///
/// A client in SCRIPT DEBUG mode runs its EVAL (outside MULTI) as a debugger session
/// (`script::ldb`): the connection closes after the reply, which ends the session.
pub(crate) async fn run(
    shard: &Rc<Shard>,
    client: &Rc<RefCell<ClientState>>,
    job: ScriptJob,
    held: Option<u64>,
) -> Reply {
    let mode = if held.is_none() { job.debug } else { ldb::Mode::Off };
    let command = job.argv.first().and_then(|a| cmd::lookup(a)).map(|s| s.name);
    if mode == ldb::Mode::Off {
        let reply = run_job(shard, client, job, held, &mut None).await;
        count_failed(shard, command, &reply);
        return reply;
    }
    let fd = client.borrow().fd;
    let mut session = Some(ldb::Session::start(fd, &job.body, mode == ldb::Mode::Forked));
    let reply = run_job(shard, client, job, held, &mut session).await;
    count_failed(shard, command, &reply);
    if let Some(s) = session {
        s.end();
    }
    let mut c = client.borrow_mut();
    c.lua_debug = ldb::Mode::Off;
    c.close_after_reply = true;
    reply
}

/// The failed call of EVAL/FCALL... whose error reply was counted already (see [`counted`]):
/// where replies are counted it is not seen as an error.
fn count_failed(shard: &Shard, command: Option<&'static str>, reply: &Reply) {
    if let (true, Some(name)) = (is_counted(reply), command) {
        shard.state.borrow_mut().stats.cmdstats.get(name).failed_calls += 1;
    }
}

/// `debug`: the debugger session (the script runs on a scratch copy whose effects are
/// discarded when the session is a forked one).
async fn run_job(
    shard: &Rc<Shard>,
    client: &Rc<RefCell<ClientState>>,
    job: ScriptJob,
    held: Option<u64>,
    debug: &mut Option<ldb::Session>,
) -> Reply {
    let discard = job.debug == ldb::Mode::Forked && debug.is_some();
    script::refresh_config(&shard.state.borrow().config);
    // Compile in this shard's interpreter first: a syntax error replies before any hold.
    let flags = match job.function {
        Some(flags) => flags,
        None => match vm::compile_known(&job.body, &job.sha) {
            Ok(x) => x,
            Err(e) => return e,
        },
    };
    let sha = job.sha.as_str();
    let nshards = shard.nshards;
    let mut extra: Vec<Bytes> = Vec::new();
    let mut targets: Vec<usize> = if nshards == 1 {
        vec![shard.id]
    } else {
        job.keys.iter().map(|k| shard.shard_of_slot(crate::cluster::key_slot(k))).collect()
    };
    targets.sort_unstable();
    targets.dedup();
    if targets.is_empty() {
        targets.push(shard.id);
    }
    // Inside EXEC every shard is held already: the script runs on the whole node at once.
    // A script that once could not be undone on this shard (`script_undo`) starts there too.
    let mut whole = (held.is_some() || script_undo::needs_node(&job.sha)) && nshards > 1;
    if whole || held.is_some() {
        targets = (0..nshards).collect();
    }
    for _ in 0..64 {
        let tx = match held {
            Some(tx) => tx,
            None => match shard.lock(&targets).await {
                Ok(tx) => tx,
                Err(e) => return e,
            },
        };
        let direct = !discard && (nshards == 1 || (targets == [shard.id] && !whole));
        let outcome = if direct {
            run_direct(shard, client, &job, sha, flags, tx, debug).await
        } else if whole && !discard {
            super::script_node::run(shard, client, &job, sha, flags, tx, debug).await
        } else {
            let copy = CopyRun { targets: &targets, extra: &extra, discard };
            run_copy(shard, client, &job, sha, flags, tx, copy, debug).await
        };
        if held.is_none() {
            shard.unlock(tx, &targets).await;
        }
        match outcome {
            Outcome::Done(r, published) => {
                deliver(shard, held, published).await;
                return r;
            }
            Outcome::Restart(keys) => {
                for k in keys {
                    if !extra.contains(&k) {
                        extra.push(k);
                    }
                }
                targets = (0..nshards).collect();
                whole = true;
            }
        }
    }
    Reply::err("ERR script could not gather its keys")
}

struct DirectHost<'a> {
    shard: &'a Shard,
    c: Common,
    /// On a node of several shards: what the run wrote, to undo it when the script turns out
    /// to need the whole node (`script_undo`).
    undo: Option<Undo>,
    /// The script's SHA1 (FCALL: the function's name).
    sha: String,
}

impl Host for DirectHost<'_> {
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

impl DirectHost<'_> {
    fn run(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        self.c.client.resp3 = resp3;
        if self.c.restart.is_some() {
            return Err(RESTARTING.into());
        }
        let (spec, fullname) = self.c.resolve(args)?;
        let idx = match spec.key_indexes(args) {
            Ok(i) => i,
            Err(e) => return Ok(e),
        };
        self.c.cluster_check(spec, args, &idx)?;
        // A shard channel (SPUBLISH) names no key: it is delivered on every shard.
        let foreign: Vec<Bytes> = if self.c.nshards == 1 || spec.has(cmd::flags::PUBSUB) {
            Vec::new()
        } else {
            idx.iter()
                .filter(|&&i| self.shard.shard_of_slot(crate::cluster::key_slot(&args[i])) != self.shard.id)
                .map(|&i| args[i].clone())
                .collect()
        };
        // (In cluster mode only a script without declared keys, or one allowed to cross
        // slots, gets here: the key is in a slot of this node, which Redis serves.)
        if !foreign.is_empty() || reads_derived(spec, args, self.c.nshards) {
            return Err(self.need_node());
        }
        let mut st = self.shard.state.borrow_mut();
        if let (true, Some(undo)) = (spec.has(cmd::flags::WRITE), self.undo.as_mut()) {
            undo.before_write(&mut st, args, &idx);
        }
        st.changes.set_excluded(Unit::TO_ALL & !repl);
        let _writer = cmd::tracking::Writer::set(self.c.tracking.caller);
        let r = match spec.exec {
            Exec::Keyed(_) => cmd::execute_keyed(&mut st, spec, fullname, args, None, *db, &mut self.c.clock),
            _ => match self.c.node(&mut st, spec, fullname, db, args) {
                Ok(r) => r,
                Err(plan) if self.c.nshards == 1 => {
                    drop(st);
                    let r = self.whole_node(plan, fullname, *db, args, repl);
                    st = self.shard.state.borrow_mut();
                    r
                }
                Err(_) => {
                    st.changes.set_excluded(0);
                    drop(st);
                    return Err(self.need_node());
                }
            },
        };
        st.changes.set_excluded(0);
        crate::conn::monitor::feed_script_call(*db, spec, args);
        self.c.tracking.after(&mut st, spec);
        if spec.has(cmd::flags::WRITE) {
            self.c.wrote = true;
        }
        Ok(r)
    }

    /// The script needs the whole node: this run stops (what it wrote undone) and the script
    /// runs again holding every shard. The error text stops the run.
    fn need_node(&mut self) -> String {
        if self.c.wrote {
            match self.undo.take() {
                Some(undo) if undo.possible() => undo.undo(&mut self.shard.state.borrow_mut()),
                // Written keys too big to have been copied: the run goes on, this command fails
                // (the script's next runs start on the whole node).
                _ => {
                    script_undo::remember_needs_node(&self.sha);
                    return NON_LOCAL.into();
                }
            }
        }
        self.c.published.clear();
        self.c.restart = Some(Vec::new());
        RESTARTING.into()
    }

    /// A node-wide plan when this shard is the whole node.
    fn whole_node(&mut self, plan: cmd::Plan, fullname: &'static str, db: usize, args: &[Bytes], repl: u8) -> Reply {
        let start = std::time::Instant::now();
        let shard = self.shard;
        let mut on = |_: usize, run: cmd::ShardFn, db: usize, a: Vec<Bytes>| {
            let mut st = shard.state.borrow_mut();
            st.changes.set_excluded(Unit::TO_ALL & !repl);
            let r = run(&mut st, db, &a);
            st.changes.set_excluded(0);
            crate::cmd::blocked::after_keys(&mut st, None);
            r
        };
        let reply = super::script_node::carry_out(&mut self.c, shard, plan, db, args, &mut on);
        cmd::record_call(&mut shard.state.borrow_mut(), fullname, start.elapsed().as_micros() as u64, &reply);
        reply
    }
}

struct CopyHost<'a> {
    shard: &'a Shard,
    st: &'a mut ShardState,
    copied: &'a HashSet<Bytes>,
    /// A forked debugging session (its run cannot move to the real shards).
    discard: bool,
    c: Common,
    /// The declared keys its caller remembers (CLIENT TRACKING) once the script read.
    remember: Option<Vec<Bytes>>,
}

impl Host for CopyHost<'_> {
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        self.c.acl_allows(args)
    }

    fn rejected(&mut self, command: Option<&'static str>, text: &str) {
        count_rejected(&mut self.shard.state.borrow_mut(), command, text);
    }

    fn call(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        let start = crate::clock::Stamp::now();
        let r = self.run(db, args, resp3, repl);
        // Errors are counted on the real shard (the scratch state's command stats are merged
        // into it when the run ends).
        self.c.count(&mut self.shard.state.borrow_mut(), args, &r, start);
        r
    }
}

impl CopyHost<'_> {
    fn run(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        self.c.client.resp3 = resp3;
        if self.c.restart.is_some() {
            return Err(RESTARTING.into());
        }
        let (spec, fullname) = self.c.resolve(args)?;
        let idx = match spec.key_indexes(args) {
            Ok(i) => i,
            Err(e) => return Ok(e),
        };
        self.c.cluster_check(spec, args, &idx)?;
        let missing: Vec<Bytes> = if spec.has(cmd::flags::PUBSUB) {
            Vec::new()
        } else {
            idx.iter().filter(|&&i| !self.copied.contains(&args[i])).map(|&i| args[i].clone()).collect()
        };
        if !missing.is_empty() {
            self.c.restart = Some(missing);
            return Err(RESTARTING.into());
        }
        if reads_derived(spec, args, self.c.nshards) {
            // Keys its data names may live anywhere: the whole node (a forked debugging
            // session has its copy only).
            if self.discard {
                return Ok(Reply::err(NOT_ALLOWED));
            }
            self.c.restart = Some(Vec::new());
            return Err(RESTARTING.into());
        }
        self.st.changes.set_excluded(Unit::TO_ALL & !repl);
        let r = match spec.exec {
            Exec::Keyed(_) => cmd::execute_keyed(self.st, spec, fullname, args, None, *db, &mut self.c.clock),
            _ => match self.c.node(self.st, spec, fullname, db, args) {
                Ok(r) => r,
                // A forked debugging session runs on its copy only.
                Err(_) if self.discard => Reply::err(NOT_ALLOWED),
                Err(_) => {
                    self.st.changes.set_excluded(0);
                    self.c.restart = Some(Vec::new());
                    return Err(RESTARTING.into());
                }
            },
        };
        self.st.changes.set_excluded(0);
        crate::conn::monitor::feed_script_call(*db, spec, args);
        if spec.has(cmd::flags::WRITE) {
            self.c.wrote = true;
        }
        if let Some(keys) = self.c.tracking.take_on_read(spec) {
            self.remember = Some(keys);
        }
        Ok(r)
    }
}

/// Starts the run with the debugger session (if any) active on this thread.
pub(super) fn start_run(spec: vm::RunSpec<'_>, debug: &mut Option<ldb::Session>) -> Result<vm::Running, Reply> {
    if let Some(s) = debug.take() {
        ldb::activate(s);
    }
    let r = vm::start(spec);
    if r.is_err() {
        *debug = ldb::deactivate();
    }
    r
}

/// Drives the script to its end through `host`, letting the event loop run while it is busy;
/// takes the debugger session back from the thread at the end.
pub(super) async fn drive(
    run: vm::Running,
    host: &mut dyn Host,
    resp3: bool,
    debug: &mut Option<ldb::Session>,
) -> Reply {
    let mut run = run;
    let mut reply = loop {
        match vm::step(&mut run, host, resp3) {
            vm::Step::Done(r) => break r,
            vm::Step::Yield => glommio::timer::sleep(Duration::from_millis(1)).await,
        }
    };
    if run.counted_error && reply.is_error() {
        reply = counted(reply);
    }
    vm::finish(run);
    if let Some(s) = ldb::deactivate() {
        *debug = Some(s);
    }
    reply
}

/// An error reply already counted in errorstats, kept from being counted again where replies
/// are counted: sent pre-encoded (errors encode the same in RESP2 and RESP3). [`run`] counts
/// the script command's failed call for it.
fn counted(reply: Reply) -> Reply {
    let mut out = Vec::new();
    reply.encode(&mut out, false);
    Reply::Raw(Bytes::from(out))
}

/// True for a reply made by [`counted`].
fn is_counted(reply: &Reply) -> bool {
    matches!(reply, Reply::Raw(b) if b.starts_with(b"-"))
}

pub(super) fn spec_for<'a>(
    job: &'a ScriptJob,
    sha: &str,
    flags: u32,
    db: usize,
    run: Arc<script::RunFlags>,
) -> vm::RunSpec<'a> {
    vm::RunSpec {
        sha: sha.to_string(),
        function: job.function.is_some(),
        keys: &job.keys,
        args: &job.args,
        db,
        ro: job.ro,
        flags,
        run,
    }
}

async fn run_direct(
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
    crate::storage::tick_clock();
    // Cluster mode, during a slot migration: the keys are here, under the script's hold.
    let now_ms = crate::storage::cached_ms();
    if let Some(e) = redirect::precheck(&mut shard.state.borrow_mut(), &job.cluster_check, db, &job.keys, now_ms) {
        return Outcome::Done(e, Vec::new());
    }
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
    // Clients blocked on keys the script writes are served after it ends, as in Redis (the
    // script may give the event loop a turn while it runs).
    let was_held = {
        let mut st = shard.state.borrow_mut();
        let held = st.blocked.is_held();
        st.blocked.hold();
        held
    };
    let undo = (shard.nshards > 1).then(Undo::default);
    let c = Common::new(shard, job, flags, db, &client.borrow());
    let mut host = DirectHost { shard, c, undo, sha: job.sha.clone() };
    host.c.tracking = cmd::tracking::ScriptTracking::for_caller(&mut client.borrow_mut(), job);
    let reply = drive(running, &mut host, resp3, debug).await;
    script::run_end(&flags_run);
    let changes = shard.state.borrow_mut().take_changes();
    shard.add_tx_changes(tx, changes);
    let mut st = shard.state.borrow_mut();
    if !was_held {
        st.blocked.release();
    }
    crate::cmd::blocked::after_keys(&mut st, None);
    drop(st);
    match host.c.restart {
        Some(keys) => Outcome::Restart(keys),
        None => Outcome::Done(reply, host.c.published),
    }
}

/// Where a copied run's keys come from, and whether its effects are kept.
struct CopyRun<'a> {
    targets: &'a [usize],
    extra: &'a [Bytes],
    /// A forked debugger session: nothing the script changed is kept.
    discard: bool,
}

#[allow(clippy::too_many_arguments)]
async fn run_copy(
    shard: &Rc<Shard>,
    client: &Rc<RefCell<ClientState>>,
    job: &ScriptJob,
    sha: &str,
    flags: u32,
    tx: u64,
    copy: CopyRun<'_>,
    debug: &mut Option<ldb::Session>,
) -> Outcome {
    let CopyRun { targets, extra, discard } = copy;
    let (db, resp3, master) = {
        let c = client.borrow();
        (c.db, c.resp3, c.master)
    };
    let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); shard.nshards];
    let mut copied = HashSet::new();
    for k in job.keys.iter().chain(extra) {
        if copied.insert(k.clone()) {
            per_shard[shard.shard_of_slot(crate::cluster::key_slot(k))].push(k.clone());
        }
    }
    let mut scratch = shard.scratch_state();
    for &s in targets {
        if per_shard[s].is_empty() {
            continue;
        }
        if let HeldResult::Entries(entries) = shard.held(tx, s, HeldOp::Fetch { keys: per_shard[s].clone() }).await {
            transaction::apply(&mut scratch.ks, entries);
        }
    }
    crate::storage::tick_clock();
    // Cluster mode, during a slot migration: the copy holds whichever declared keys exist on
    // their (held) shard.
    let now_ms = crate::storage::cached_ms();
    if let Some(e) = redirect::precheck(&mut scratch, &job.cluster_check, db, &job.keys, now_ms) {
        return Outcome::Done(e, Vec::new());
    }
    let flags_run = script::run_begin(job.function.is_none(), master, &job.sha, &job.argv);
    let running = match start_run(spec_for(job, sha, flags, db, flags_run.clone()), debug) {
        Ok(r) => r,
        Err(e) => {
            script::run_end(&flags_run);
            return Outcome::Done(e, Vec::new());
        }
    };
    let mut common = Common::new(shard, job, flags, db, &client.borrow());
    common.tracking = cmd::tracking::ScriptTracking::for_caller(&mut client.borrow_mut(), job);
    let mut host = CopyHost { shard, st: &mut scratch, copied: &copied, discard, c: common, remember: None };
    let reply = drive(running, &mut host, resp3, debug).await;
    script::run_end(&flags_run);
    let (restart, wrote, published) = (host.c.restart.take(), host.c.wrote, std::mem::take(&mut host.c.published));
    let remember = host.remember.take();
    if let Some(keys) = restart {
        return Outcome::Restart(keys);
    }
    // A forked debugging session's messages go nowhere, as from Redis's forked child.
    if discard {
        return Outcome::Done(reply, Vec::new());
    }
    let changes = scratch.take_changes();
    shard.add_tx_changes(tx, changes);
    shard.publish_scratch_notifications(&mut scratch);
    // The script's writes are its caller's (NOLOOP), as in a Direct run.
    let writer = client.borrow().id;
    // The script read: its caller remembers the declared keys where they live, before the
    // script's writes come back (they invalidate them, as in a Direct run).
    if let Some(keys) = remember {
        let shard_of = |k: &[u8]| shard.shard_of_slot(crate::cluster::key_slot(k));
        for (s, args) in cmd::tracking::remember_requests(writer, &keys, targets.iter().copied(), shard_of) {
            shard.held(tx, s, HeldOp::Run { run: cmd::tracking::remember_here, db, args }).await;
        }
    }
    if wrote {
        for &s in targets {
            if per_shard[s].is_empty() {
                continue;
            }
            let all = transaction::final_states(&mut scratch.ks, &per_shard[s]);
            shard.held(tx, s, HeldOp::Apply { entries: all, writer, signalled: Some(Box::default()) }).await;
        }
        let mut signalled = scratch.tracking.signalled.take().unwrap_or_default();
        signalled.retain(|k| per_shard.iter().any(|keys| keys.contains(k)));
        shard.invalidate_in_order(tx, writer, &signalled).await;
    }
    shard.merge_scratch_stats(&scratch);
    Outcome::Done(reply, published)
}

/// Delivers the messages a script published, in order, to the subscribers of every shard
/// (under the transaction's hold inside EXEC), and in cluster mode to the other nodes; before
/// the script's reply goes out, as Redis's subscribers have them before the caller's reply.
async fn deliver(shard: &Rc<Shard>, held: Option<u64>, published: Vec<Published>) {
    if published.is_empty() {
        return;
    }
    let mut batch = Vec::with_capacity(1 + published.len() * 3);
    batch.push(Bytes::from_static(b"publish"));
    for p in &published {
        batch.push(Bytes::from_static(if p.sharded { b"s" } else { b"p" }));
        batch.extend_from_slice(&p.args[1..3]);
    }
    let run = cmd::pubsub::deliver_batch;
    match held {
        Some(tx) => {
            for s in 0..shard.nshards {
                shard.held(tx, s, HeldOp::Run { run, db: 0, args: batch.clone() }).await;
            }
        }
        None => {
            shard.each_shard(run, &batch).await;
        }
    }
    if shard.view.borrow().enabled {
        for p in published {
            let mut a = p.args.into_iter().skip(1);
            if let (Some(channel), Some(message)) = (a.next(), a.next()) {
                super::bus_publish::forward(p.sharded, channel, message);
            }
        }
    }
}
