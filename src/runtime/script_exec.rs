//! Runs a script (`Plan::Script`) on the client's home shard: hold the shards owning its
//! declared keys, run it in this shard's Lua interpreter, record its effects as one unit,
//! release.
//!
//! Two ways to run, chosen by where the keys live:
//! - **Direct**: every declared key is on this shard (always so with one shard). The script's
//!   commands run on this shard's state through `cmd::execute_keyed`, under its gate.
//! - **Copy**: the keys live on other shards (several shards, or a key on another shard). As
//!   for a multi-key command (`crate::transaction`): the shards are held, the keys copied into
//!   a scratch state, the script runs on the copy, the final state of the keys is written back.
//!
//! Undeclared keys: a command naming a key the run cannot reach (another
//! shard's key in Direct mode, a key not copied in Copy mode) stops the run before it has any
//! effect (every later command of that run is refused, its result discarded) and the script
//! runs again from the start, holding every shard, with that key copied too. What an
//! undeclared key on another shard costs: one discarded partial run and a run that stops the
//! whole node. In Direct mode a script that already wrote cannot be restarted: the command
//! fails with an error instead (declare the keys). In cluster mode keys must also be in a slot
//! this node serves, and in the slot of the declared keys unless the script may cross slots,
//! as in Redis (errors with Redis's texts otherwise).
//!
//! Effects: everything the script changed goes to the replication feed as one atomic unit
//! (wrapped in MULTI/EXEC), Redis 7.0's effects replication; the script itself is never
//! propagated.
//!
//! Busy scripts: the interpreter yields back here once the script ran past
//! `busy-reply-threshold`; this task then sleeps briefly so the shard serves its other
//! clients (who get BUSY) and SCRIPT KILL, and resumes the script.

use super::mesh::{HeldOp, HeldResult};
use super::shard::Shard;
use crate::cluster::view::{ClusterView, SlotRoute};
use crate::cmd::scripting::ScriptJob;
use crate::cmd::{self, ClientCtx, ClientState, Exec, Plan, ShardState};
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
enum Outcome {
    /// The script's reply, and the messages it published (delivered before the reply).
    Done(Reply, Vec<Published>),
    /// Run again holding every shard, with these keys copied too.
    Restart(Vec<Bytes>),
}

/// A PUBLISH / SPUBLISH a script ran: `[command, channel, message]`.
struct Published {
    sharded: bool,
    args: Vec<Bytes>,
}

const NON_LOCAL: &str = "Script attempted to access a non local key in a cluster node";
const CROSS_SLOT: &str = "Script attempted to access keys that do not hash to the same slot";
const RESTARTING: &str = "ERR internal: script restarting";

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
    if held.is_some() {
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
        let direct = !discard && (nshards == 1 || (targets == [shard.id] && extra.is_empty()));
        let outcome = if direct {
            run_direct(shard, client, &job, sha, flags, tx, debug).await
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
            }
        }
    }
    Reply::err("ERR script could not gather its keys")
}

/// What both hosts share: the script's cluster rules and the node-level commands.
struct Common {
    view: Arc<ClusterView>,
    slot: Option<u16>,
    allow_cross_slot: bool,
    client: ClientState,
    clock: crate::clock::Stamp,
    /// A key the run cannot reach: the run is abandoned (and restarted).
    restart: Option<Vec<Bytes>>,
    /// A write command ran.
    wrote: bool,
    /// Shards of the node.
    nshards: usize,
    /// CLIENT TRACKING: the caller's id and the declared keys to remember for it once the
    /// script runs a read-only command (see `cmd::tracking::ScriptTracking`).
    tracking: cmd::tracking::ScriptTracking,
    /// The messages published so far, delivered once the run ends (see [`deliver`]).
    published: Vec<Published>,
}

impl Common {
    /// `caller`: the client whose identity and ACL user the script's commands run with;
    fn new(shard: &Shard, job: &ScriptJob, flags: u32, db: usize, caller: &ClientState) -> Common {
        let view = shard.view.borrow().clone();
        // The slot of the declared keys matters in cluster mode only (`cluster_check`).
        let slot = if view.enabled { job.keys.first().map(|k| crate::cluster::key_slot(k)) } else { None };
        let client = ClientState::for_script(caller, db);
        Common {
            view,
            slot,
            // Scripts without a shebang keep Redis 6's freedom to touch several local slots.
            allow_cross_slot: flags & (script::sflags::ALLOW_CROSS_SLOT | script::sflags::EVAL_COMPAT) != 0,
            client,
            clock: crate::clock::Stamp::now(),
            restart: None,
            wrote: false,
            nshards: shard.nshards,
            tracking: Default::default(),
            published: Vec::new(),
        }
    }

    /// Resolves the command; Ok(spec, fullname) or an error text.
    fn resolve(&self, args: &[Bytes]) -> Result<(&'static cmd::CommandSpec, &'static str), String> {
        let Some((spec, fullname)) = resolve_known(args) else {
            return Err("Unknown Redis command called from script".into());
        };
        if !spec.arity_ok(args.len()) {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        if spec.has(cmd::flags::NOSCRIPT) && !script::deny_disabled() {
            return Err("This Redis command is not allowed from script".into());
        }
        crate::acl::check_script(&self.client, spec, fullname, args)?;
        Ok((spec, fullname))
    }

    /// Whether the caller's ACL user may run `args` (nothing is logged), as Redis's
    /// `redis.acl_check_cmd`.
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        const INVALID: &str = "Invalid command passed to redis.acl_check_cmd()";
        let (spec, fullname) = resolve_known(args).ok_or(INVALID)?;
        let user = &self.client.user;
        Ok(user.allows_all || spec.has(cmd::flags::NO_AUTH) || user.check(fullname, spec.arity, args).is_ok())
    }

    /// Cluster-mode checks of a command's keys (Redis's `scriptVerifyClusterState`).
    fn cluster_check(&mut self, args: &[Bytes], idx: &[usize]) -> Result<(), String> {
        if !self.view.enabled {
            return Ok(());
        }
        let mut slot = None;
        for &i in idx {
            let s = crate::cluster::key_slot(&args[i]);
            if slot.is_some_and(|x| x != s) {
                return Err(NON_LOCAL.into());
            }
            slot = Some(s);
        }
        let Some(s) = slot else { return Ok(()) };
        if !matches!(self.view.route[s as usize], SlotRoute::Mine { .. }) {
            return Err(NON_LOCAL.into());
        }
        if !self.allow_cross_slot {
            match self.slot {
                None => self.slot = Some(s),
                Some(x) if x != s => return Err(CROSS_SLOT.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Counts what a command of the script gave in the stats, as Redis counts the errors of its
    /// script client: an error reply in errorstats (its calls were counted by the command), a
    /// refusal (`Err`) in errorstats and as a rejected call of the command.
    fn count(&self, st: &mut ShardState, args: &[Bytes], r: &Result<Reply, String>) {
        match r {
            Ok(reply) => cmd::record_error(st, reply),
            Err(text) if text != RESTARTING => {
                cmd::record_error(st, &refusal_reply(text));
                cmd::record_rejected(st, cmd::table::resolve(args).map(|(_, name)| name));
            }
            Err(_) => {}
        }
    }

    /// A node-level command, run with the script's client on `st` (replies only).
    fn node(
        &mut self,
        st: &mut ShardState,
        spec: &'static cmd::CommandSpec,
        fullname: &'static str,
        db: &mut usize,
        args: &[Bytes],
    ) -> Reply {
        let Exec::Node(f) = spec.exec else { return Reply::err("ERR internal error: not a node command") };
        let start = std::time::Instant::now();
        let reply = self.node_plan(st, f, db, args);
        cmd::record_call(st, fullname, start.elapsed().as_micros() as u64, &reply);
        reply
    }

    fn node_plan(&mut self, st: &mut ShardState, f: cmd::spec::NodeFn, db: &mut usize, args: &[Bytes]) -> Reply {
        self.client.db = *db;
        let plan = {
            let mut ctx = ClientCtx { client: &mut self.client, shard: st };
            f(&mut ctx, args)
        };
        *db = self.client.db;
        let plan = match plan {
            Plan::AfterFeed(inner) => *inner,
            p => p,
        };
        match plan {
            Plan::Reply(r) => r,
            // Node-wide commands (INFO, ...) when this shard is the whole node.
            Plan::AllShards { run, merge } if self.nshards == 1 => {
                let r = run(st, *db, args);
                let mut ctx = ClientCtx { client: &mut self.client, shard: st };
                merge(&mut ctx, vec![r])
            }
            // PUBLISH / SPUBLISH: the script runs on its shard alone, so the message waits for
            // the run's end to reach every shard; the receivers are counted now, over the node.
            // Outside cluster mode it goes to replicas (not the AOF) with the script's other
            // effects, as Redis propagates it from a script.
            Plan::Publish { sharded } => {
                let n = st.node.pubsub.receivers(sharded, &args[1]);
                if st.node.cluster.is_none() {
                    st.changes.record_to(*db, vec![args.to_vec()], Unit::TO_REPLICAS);
                }
                self.published.push(Published { sharded, args: args.to_vec() });
                Reply::Int(n as i64)
            }
            // DEBUG SLEEP: the whole script waits, as Redis's single thread does.
            Plan::Sleep(d, r) => {
                super::control_freeze::freeze_control(d);
                std::thread::sleep(d);
                r
            }
            _ => Reply::err("ERR This Redis command is not allowed from script"),
        }
    }
}

struct DirectHost<'a> {
    shard: &'a Shard,
    c: Common,
}

impl Host for DirectHost<'_> {
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        self.c.acl_allows(args)
    }

    fn rejected(&mut self, command: Option<&'static str>, text: &str) {
        count_rejected(&mut self.shard.state.borrow_mut(), command, text);
    }

    fn call(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        let r = self.run(db, args, resp3, repl);
        self.c.count(&mut self.shard.state.borrow_mut(), args, &r);
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
        self.c.cluster_check(args, &idx)?;
        // A shard channel (SPUBLISH) names no key: it is delivered on every shard.
        let foreign: Vec<Bytes> = if self.c.nshards == 1 || spec.has(cmd::flags::PUBSUB) {
            Vec::new()
        } else {
            idx.iter()
                .filter(|&&i| self.shard.shard_of_slot(crate::cluster::key_slot(&args[i])) != self.shard.id)
                .map(|&i| args[i].clone())
                .collect()
        };
        if !foreign.is_empty() {
            // (In cluster mode only a script without declared keys, or one allowed to cross
            // slots, gets here: the key is in a slot of this node, which Redis serves.)
            if self.c.wrote {
                return Err(NON_LOCAL.into());
            }
            self.c.restart = Some(foreign);
            return Err(RESTARTING.into());
        }
        let mut st = self.shard.state.borrow_mut();
        st.changes.set_excluded(Unit::TO_ALL & !repl);
        let _writer = cmd::tracking::Writer::set(self.c.tracking.caller);
        let r = match spec.exec {
            Exec::Keyed(_) => cmd::execute_keyed(&mut st, spec, fullname, args, None, *db, &mut self.c.clock),
            _ => self.c.node(&mut st, spec, fullname, db, args),
        };
        st.changes.set_excluded(0);
        crate::conn::monitor::feed_script_call(*db, spec, args);
        self.c.tracking.after(&mut st, spec);
        if spec.has(cmd::flags::WRITE) {
            self.c.wrote = true;
        }
        Ok(r)
    }
}

struct CopyHost<'a> {
    shard: &'a Shard,
    st: &'a mut ShardState,
    copied: &'a HashSet<Bytes>,
    c: Common,
}

impl Host for CopyHost<'_> {
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        self.c.acl_allows(args)
    }

    fn rejected(&mut self, command: Option<&'static str>, text: &str) {
        count_rejected(&mut self.shard.state.borrow_mut(), command, text);
    }

    fn call(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String> {
        let r = self.run(db, args, resp3, repl);
        // Errors are counted on the real shard (the scratch state's command stats are merged
        // into it when the run ends).
        self.c.count(&mut self.shard.state.borrow_mut(), args, &r);
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
        self.c.cluster_check(args, &idx)?;
        let missing: Vec<Bytes> = if spec.has(cmd::flags::PUBSUB) {
            Vec::new()
        } else {
            idx.iter().filter(|&&i| !self.copied.contains(&args[i])).map(|&i| args[i].clone()).collect()
        };
        if !missing.is_empty() {
            self.c.restart = Some(missing);
            return Err(RESTARTING.into());
        }
        self.st.changes.set_excluded(Unit::TO_ALL & !repl);
        let r = match spec.exec {
            Exec::Keyed(_) => cmd::execute_keyed(self.st, spec, fullname, args, None, *db, &mut self.c.clock),
            _ => self.c.node(self.st, spec, fullname, db, args),
        };
        self.st.changes.set_excluded(0);
        crate::conn::monitor::feed_script_call(*db, spec, args);
        if spec.has(cmd::flags::WRITE) {
            self.c.wrote = true;
        }
        Ok(r)
    }
}

/// The error reply a refusal text stands for (`-CODE msg`, or a bare message meaning `ERR`).
fn refusal_reply(text: &str) -> Reply {
    match text.strip_prefix('-') {
        Some(t) => Reply::error(t.to_string()),
        None => Reply::error(format!("ERR {text}")),
    }
}

/// A refused command of a script: its error in errorstats, a rejected call of the command.
fn count_rejected(st: &mut ShardState, command: Option<&'static str>, text: &str) {
    cmd::record_error(st, &refusal_reply(text));
    cmd::record_rejected(st, command);
}

/// Starts the run with the debugger session (if any) active on this thread.
fn start_run(spec: vm::RunSpec<'_>, debug: &mut Option<ldb::Session>) -> Result<vm::Running, Reply> {
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
async fn drive(run: vm::Running, host: &mut dyn Host, resp3: bool, debug: &mut Option<ldb::Session>) -> Reply {
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

fn spec_for<'a>(job: &'a ScriptJob, sha: &str, flags: u32, db: usize, run: Arc<script::RunFlags>) -> vm::RunSpec<'a> {
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
    let mut host = DirectHost { shard, c: Common::new(shard, job, flags, db, &client.borrow()) };
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
    let (config, node) = {
        let st = shard.state.borrow();
        (st.config.clone(), st.node.clone())
    };
    let mut scratch = ShardState::new(shard.id, config, node);
    scratch.changes.set_recording(scratch.node.repl.feed.active() && !crate::replication::role::no_record());
    for &s in targets {
        if per_shard[s].is_empty() {
            continue;
        }
        if let HeldResult::Entries(entries) = shard.held(tx, s, HeldOp::Fetch { keys: per_shard[s].clone() }).await {
            transaction::apply(&mut scratch.ks, entries);
        }
    }
    crate::storage::tick_clock();
    let flags_run = script::run_begin(job.function.is_none(), master, &job.sha, &job.argv);
    let running = match start_run(spec_for(job, sha, flags, db, flags_run.clone()), debug) {
        Ok(r) => r,
        Err(e) => {
            script::run_end(&flags_run);
            return Outcome::Done(e, Vec::new());
        }
    };
    let common = Common::new(shard, job, flags, db, &client.borrow());
    let mut host = CopyHost { shard, st: &mut scratch, copied: &copied, c: common };
    let reply = drive(running, &mut host, resp3, debug).await;
    script::run_end(&flags_run);
    let (restart, wrote, published) = (host.c.restart.take(), host.c.wrote, std::mem::take(&mut host.c.published));
    if let Some(keys) = restart {
        return Outcome::Restart(keys);
    }
    // A forked debugging session's messages go nowhere, as from Redis's forked child.
    if discard {
        return Outcome::Done(reply, Vec::new());
    }
    let changes = scratch.take_changes();
    shard.add_tx_changes(tx, changes);
    if !scratch.notify.is_empty() {
        let mut st = shard.state.borrow_mut();
        st.notify.absorb(&mut scratch.notify);
        crate::cmd::notify::publish_pending(&mut st);
    }
    if wrote {
        for &s in targets {
            if per_shard[s].is_empty() {
                continue;
            }
            let all = transaction::final_states(&mut scratch.ks, &per_shard[s]);
            shard.held(tx, s, HeldOp::Apply { entries: all }).await;
        }
    }
    {
        let mut st = shard.state.borrow_mut();
        transaction::merge_stats(&mut st, &scratch);
        st.changes.count(scratch.changes.dirty());
    }
    Outcome::Done(reply, published)
}

/// The command a script's `args` call, as [`cmd::table::resolve`], None as well for an unknown
/// subcommand (a bare container resolves, and fails its arity; COMMAND runs bare).
fn resolve_known(args: &[Bytes]) -> Option<(&'static cmd::CommandSpec, &'static str)> {
    cmd::table::resolve(args).filter(|(spec, _)| spec.subcommands.is_empty() || args.len() < 2)
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
