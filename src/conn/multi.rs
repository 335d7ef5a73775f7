//! MULTI/EXEC/DISCARD/WATCH/UNWATCH on the connection: queueing, and EXEC's atomic run.
//!
//! **Queueing.** While in MULTI every routed request passes [`Conn::tx_filter`]: a request
//! refused before execution (unknown command, arity, NOAUTH, a cluster MOVED/ASK/CLUSTERDOWN/
//! CROSSSLOT check) keeps its error and flags the transaction (EXEC then replies EXECABORT); a
//! `no-multi` command is refused the same way; MULTI/EXEC/DISCARD/WATCH, QUIT and RESET run at
//! once; everything else is queued and answered `+QUEUED`.
//!
//! **WATCH.** The shard owning a watched key records the watcher (`storage::watch`); this
//! connection remembers which shards it registered with. Every write path of the owning shard
//! touches watched keys (including lazy and active expiry, FLUSHDB/FLUSHALL, SWAPDB, dropped
//! slots), so any client on any shard invalidates the watch.
//!
//! **EXEC.** The transaction holds, through the shard gates (ascending order, FIFO, see
//! `runtime::gate`), every shard its queued keyed commands touch plus every shard holding a
//! watched key, or every shard if a node-level command is queued. Under that hold it checks
//! (and forgets) the watches, then runs the queued commands in order: consecutive commands for
//! one shard go as one `HeldOp::Keyed`, multi-key commands spanning shards as in
//! `Shard::run_spanning`, node-level commands on the home shard with their shard work run
//! through the hold (`Conn::run_node_in`). Then it releases.
//!
//! What is atomic: no other client's command runs on a held shard between the watch check and
//! the last queued command, so other clients see all or nothing of the keyspace effects, and a
//! watch check is never stale. What is not: node-level state outside the shards (CONFIG SET's
//! node config, the cluster state that `CLUSTER` subcommands change on the control core) is
//! changed when its command runs, and may be read by other clients' node-level commands on
//! other shards while the EXEC is still running (Redis, single-threaded, shows it at once).
//! Inside EXEC, a node-level plan must not take gates or wait for shard work outside the hold
//! (it would wait on itself): plans run through `execute_plan` with `held` set, and any new
//! plan variant must honour it.
//!
//! Blocking commands: while EXEC runs, `ClientState::multi` is `Some`, and is the hook for
//! blocking commands (BLPOP & co.) to behave as their non-blocking forms, as Redis's
//! deny-blocking EXEC clients do.
//!
//! Cluster mode: EXEC refuses queued keys of more than one slot with CROSSSLOT (discarding the
//! transaction); per-slot migration checks run on the owning shard for each command.

use super::dispatch::Route;
use super::Conn;
use crate::cluster::redirect::{self, ClientFlags};
use crate::cmd::{self, flags, multi as m, CommandSpec, Exec};
use crate::protocol::Reply;
use crate::runtime::mesh::{HeldOp, HeldResult, RemoteCmd};
use bytes::Bytes;

/// A queued command.
pub(crate) enum Queued {
    /// A keyed command, with the indexes of its keys.
    Keyed(RemoteCmd, Vec<usize>),
    /// A node-level command.
    Node { spec: &'static CommandSpec, fullname: &'static str, args: Vec<Bytes> },
}

impl Queued {
    /// The queued command's spec.
    fn spec(&self) -> &'static CommandSpec {
        match self {
            Queued::Keyed(cmd, _) => cmd.spec,
            Queued::Node { spec, .. } => spec,
        }
    }

    /// The queued command's spec and arguments.
    fn command(&self) -> (&'static CommandSpec, &[Bytes]) {
        match self {
            Queued::Keyed(cmd, _) => (cmd.spec, &cmd.args),
            Queued::Node { spec, args, .. } => (spec, args),
        }
    }
}

/// A connection's transaction state.
#[derive(Default)]
pub(crate) struct TxState {
    /// The queue, while in MULTI.
    queue: Option<Vec<Queued>>,
    /// A command failed to queue: EXEC replies EXECABORT.
    dirty: bool,
    /// The queued commands' argument bytes (Redis's `mstate.argv_len_sums`).
    queued_bytes: usize,
    /// Watched (database, key) pairs, to skip duplicates.
    watched: Vec<(usize, Bytes)>,
    /// Shards holding watched keys, ascending.
    watch_shards: Vec<usize>,
    /// EXEC was refused before it ran (BUSY, NOREPLICAS, MASTERDOWN, ...): the refusal, which
    /// EXEC answers as EXECABORT while discarding the transaction.
    pub(super) abort: Option<Reply>,
}

impl TxState {
    /// Whether the connection is in MULTI (its commands are queued).
    pub(super) fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// The flags EXEC is checked with before it runs (Redis's `mstate.cmd_flags` and
    /// `cmd_inv_flags`): its own, plus WRITE / DENYOOM / MAY_REPLICATE when a queued command
    /// has them, and without STALE / LOADING when a queued command lacks them.
    pub(super) fn exec_flags(&self, own: u32) -> u32 {
        let Some(q) = self.queue.as_ref() else { return own };
        let mut f = own;
        for c in q {
            let s = c.spec().flags;
            f |= s & (flags::WRITE | flags::DENYOOM | flags::MAY_REPLICATE);
            f &= !(!s & (flags::STALE | flags::LOADING));
        }
        f
    }

    /// Redis's `multiStateMemOverhead` (CLIENT LIST `multi-mem`): the queued commands'
    /// arguments and entries, and the watched keys' entries.
    pub(super) fn memory(&self) -> usize {
        use crate::memory::clients::{QUEUED_CMD_BYTES, WATCHED_KEY_BYTES};
        let queue = self.queue.as_ref().map_or(0, |q| q.capacity() * QUEUED_CMD_BYTES + self.queued_bytes);
        queue + self.watched.len() * WATCHED_KEY_BYTES
    }

    /// True when a queued command writes (EXEC is then held by a write pause, as Redis's
    /// `CLIENT_PAUSE_WRITE` holds a transaction with write commands).
    pub(super) fn queues_writes(&self) -> bool {
        self.queue.as_ref().is_some_and(|q| {
            q.iter().any(|c| {
                let (spec, args) = c.command();
                crate::cmd::scripting::may_replicate(spec, args)
            })
        })
    }
}

impl Conn {
    /// Applies MULTI's rules to a routed request: returns the route to run now, or the
    /// reply of a queued or refused request.
    pub(super) fn tx_filter(&mut self, route: Route) -> Route {
        let in_multi = self.tx.queue.is_some();
        let (spec, fullname) = match &route {
            Route::Done(_) => {
                self.tx.dirty |= in_multi;
                return route;
            }
            Route::Keyed { cmd, .. } => (cmd.spec, cmd.fullname),
            Route::Spanning(s) => (s.cmd.spec, s.cmd.fullname),
            Route::Node { spec, fullname, .. } => (*spec, *fullname),
            Route::Tx { .. } => return route,
        };
        if fullname != "unwatch" && m::is_transaction_command(fullname) {
            let Route::Node { args, .. } = route else { return route };
            return Route::Tx { fullname, args };
        }
        if !in_multi {
            if fullname == "unwatch" {
                let Route::Node { args, .. } = route else { return route };
                return Route::Tx { fullname, args };
            }
            return route;
        }
        if spec.has(flags::NO_MULTI) {
            self.tx.dirty = true;
            cmd::record_rejected(&mut self.shard.state.borrow_mut(), Some(fullname));
            return Route::Done(Reply::err(m::NOT_ALLOWED));
        }
        if fullname == "quit" || fullname == "reset" {
            return route;
        }
        let queued = match route {
            Route::Keyed { cmd, .. } => {
                let idx = cmd.spec.key_indexes(&cmd.args).unwrap_or_default();
                Queued::Keyed(cmd, idx)
            }
            Route::Spanning(s) => Queued::Keyed(s.cmd, s.key_idx),
            Route::Node { spec, fullname, args } => Queued::Node { spec, fullname, args },
            other => return other,
        };
        let Some(q) = self.tx.queue.as_mut() else { return Route::Done(Reply::err(m::EXEC_WITHOUT)) };
        let args = queued.command().1;
        self.tx.queued_bytes += args.iter().map(|a| a.len() + 8).sum::<usize>();
        q.push(queued);
        self.client.borrow_mut().multi = Some(q.len());
        Route::Done(Reply::status("QUEUED"))
    }

    /// Runs MULTI, EXEC, DISCARD, WATCH or UNWATCH (outside a queue).
    pub(super) async fn run_tx(&mut self, fullname: &'static str, args: Vec<Bytes>) -> Reply {
        // A refused EXEC (counted as rejected, not as a call) discards the transaction.
        if let Some(reason) = self.tx.abort.take() {
            self.end_multi();
            self.unwatch_all().await;
            return m::exec_abort(&reason);
        }
        let start = std::time::Instant::now();
        let reply = match fullname {
            "multi" if self.tx.queue.is_some() => Reply::err(m::NESTED),
            "multi" => {
                self.tx.queue = Some(Vec::new());
                self.tx.dirty = false;
                self.client.borrow_mut().multi = Some(0);
                Reply::Ok
            }
            "discard" if self.tx.queue.is_none() => Reply::err(m::DISCARD_WITHOUT),
            "discard" => {
                self.end_multi();
                self.unwatch_all().await;
                Reply::Ok
            }
            "watch" => self.watch(&args).await,
            "unwatch" => {
                self.unwatch_all().await;
                Reply::Ok
            }
            _ => self.exec().await,
        };
        let usec = start.elapsed().as_micros() as u64;
        // MULTI, WATCH, UNWATCH and DISCARD go into SLOWLOG as any command (EXEC's flags
        // keep it out: its commands are noted one by one).
        if let Some(spec) = cmd::table::lookup(fullname.as_bytes()) {
            self.slowlog(&(spec.flags, &args[..]), usec);
        }
        cmd::record_call(&mut self.shard.state.borrow_mut(), fullname, usec, &reply);
        self.client.borrow_mut().last_cmd = fullname;
        reply
    }

    /// After a node-level command ran outside EXEC: RESET also ends the transaction and
    /// forgets the watches.
    pub(super) async fn tx_after_node(&mut self, fullname: &str) {
        if fullname == "reset" {
            self.end_multi();
            self.unwatch_all().await;
        }
    }

    fn end_multi(&mut self) {
        self.tx.queue = None;
        self.tx.queued_bytes = 0;
        self.tx.dirty = false;
        let mut c = self.client.borrow_mut();
        c.multi = None;
        c.asking = false;
    }

    async fn watch(&mut self, args: &[Bytes]) -> Reply {
        if self.tx.queue.is_some() {
            return Reply::err(m::WATCH_INSIDE);
        }
        let key_idx: Vec<usize> = (1..args.len()).collect();
        let view = self.shard.view.borrow().clone();
        if view.enabled {
            let flags_ = ClientFlags { readonly: self.client.borrow().readonly, asking: false };
            let Some(spec) = cmd::lookup(b"watch") else { return Reply::err("ERR internal error: no WATCH") };
            if let Err(e) = redirect::check(&view, flags_, spec, args, &key_idx) {
                return e;
            }
        }
        let (id, db) = {
            let c = self.client.borrow();
            (c.id, c.db)
        };
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); self.shard.nshards];
        for k in &args[1..] {
            if self.tx.watched.iter().any(|(d, w)| *d == db && w == k) {
                continue;
            }
            self.tx.watched.push((db, k.clone()));
            per_shard[self.shard.shard_of_slot(crate::cluster::key_slot(k))].push(k.clone());
        }
        for (s, keys) in per_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let mut a = Vec::with_capacity(keys.len() + 1);
            a.push(Bytes::from(id.to_string()));
            a.extend(keys);
            let r = self.shard.on_shard(s, m::shard_watch, db, a).await;
            if let Err(pos) = self.tx.watch_shards.binary_search(&s) {
                self.tx.watch_shards.insert(pos, s);
            }
            if r.is_error() {
                return r;
            }
        }
        Reply::Ok
    }

    /// Forgets every watch of this client (UNWATCH, DISCARD, RESET, failed EXEC, disconnect).
    pub(crate) async fn unwatch_all(&mut self) {
        self.tx.watched.clear();
        let id = Bytes::from(self.client.borrow().id.to_string());
        for s in std::mem::take(&mut self.tx.watch_shards) {
            self.shard.on_shard(s, m::shard_unwatch, 0, vec![id.clone()]).await;
        }
    }

    async fn exec(&mut self) -> Reply {
        let Some(queue) = self.tx.queue.take() else { return Reply::err(m::EXEC_WITHOUT) };
        self.tx.queued_bytes = 0;
        // maxmemory: a transaction with a denyoom command is refused as a whole when the node
        // was over the ceiling as EXEC arrived (Redis's `execCommandAbort`).
        if crate::memory::evict::pre_command_oom() && queue.iter().any(|q| q.spec().has(flags::DENYOOM)) {
            self.end_multi();
            self.unwatch_all().await;
            return m::exec_abort(&Reply::err(crate::memory::OOM));
        }
        if self.tx.dirty {
            self.end_multi();
            self.unwatch_all().await;
            return Reply::err(m::EXECABORT);
        }
        let master = self.client.borrow().master;
        if let Some(refused) = crate::cmd::scripting::exec_refusal(queue.iter().map(Queued::command), master) {
            self.end_multi();
            self.unwatch_all().await;
            return refused;
        }
        let view = self.shard.view.borrow().clone();
        if view.enabled && !self.client.borrow().master {
            let mut slot = None;
            for q in &queue {
                let Queued::Keyed(c, idx) = q else { continue };
                for &i in idx {
                    let s = crate::cluster::key_slot(&c.args[i]);
                    if slot.is_some_and(|x| x != s) {
                        self.end_multi();
                        self.unwatch_all().await;
                        return Reply::err(redirect::CROSSSLOT);
                    }
                    slot = Some(s);
                }
            }
        }
        self.client.borrow_mut().last_cmd = "exec";
        // Node-level commands, and SORT reading pattern keys on other shards, hold every shard.
        let has_node = queue.iter().any(|q| match q {
            Queued::Node { .. } => true,
            Queued::Keyed(c, _) => self.reads_derived(c),
        });
        let mut shards: Vec<usize> = if has_node {
            (0..self.shard.nshards).collect()
        } else {
            let mut v = self.tx.watch_shards.clone();
            for q in &queue {
                if let Queued::Keyed(c, idx) = q {
                    v.extend(self.shard.shards_of(&c.args, idx));
                    if idx.is_empty() {
                        v.push(self.shard.id);
                    }
                }
            }
            v
        };
        shards.sort_unstable();
        shards.dedup();
        let tx = match self.shard.lock(&shards).await {
            Ok(tx) => tx,
            Err(e) => {
                self.end_multi();
                self.unwatch_all().await;
                return e;
            }
        };
        // Check (and forget) the watches under the hold, at the time of now (the hold may have
        // been waited for): each shard judges expiry by this time, not by its own clock, which
        // was last set by whatever it ran before (an idle shard's may be long past).
        self.tx.watched.clear();
        let id = Bytes::from(self.client.borrow().id.to_string());
        let now = Bytes::from(crate::storage::tick_clock().to_string());
        let mut touched = false;
        for s in std::mem::take(&mut self.tx.watch_shards) {
            let op = HeldOp::Run { run: m::shard_watch_check, db: 0, args: vec![id.clone(), now.clone()] };
            touched |= !matches!(self.shard.held(tx, s, op).await, HeldResult::Reply(Reply::Int(0)));
        }
        let reply = if touched { Reply::NilArray } else { Reply::Array(self.run_queue(tx, queue).await) };
        // Errors of queued commands count in INFO errorstats as if sent alone (EXEC's own
        // array is not an error).
        if let Reply::Array(v) = &reply {
            let mut st = self.shard.state.borrow_mut();
            v.iter().for_each(|r| cmd::record_error(&mut st, r));
        }
        self.shard.unlock(tx, &shards).await;
        self.end_multi();
        reply
    }

    /// A `Keys::Derived` command (SORT ... BY/GET) that reads keys on other shards.
    fn reads_derived(&self, c: &RemoteCmd) -> bool {
        match c.spec.keys {
            crate::cmd::Keys::Derived { reads_more, .. } => self.shard.nshards > 1 && reads_more(&c.args),
            _ => false,
        }
    }

    /// Runs the queued commands in order while `tx` holds every shard they touch.
    async fn run_queue(&mut self, tx: u64, queue: Vec<Queued>) -> Vec<Reply> {
        let mut out = Vec::with_capacity(queue.len());
        // Consecutive keyed commands for one shard, sent together.
        let mut open: Option<(usize, Vec<RemoteCmd>)> = None;
        for q in queue {
            let db = self.client.borrow().db;
            // ACL rules may have changed since the command was queued.
            if let Some(refused) = self.acl_refused_at_exec(&q) {
                self.flush_open(tx, db, &mut open, &mut out).await;
                out.push(refused);
                continue;
            }
            match q {
                Queued::Keyed(c, idx) => {
                    let shards = self.shard.shards_of(&c.args, &idx);
                    if self.reads_derived(&c) {
                        self.flush_open(tx, db, &mut open, &mut out).await;
                        out.push(self.spanning_in_exec(tx, db, c, &idx, true).await);
                        continue;
                    }
                    match shards.len() {
                        0 | 1 => {
                            let target = shards.first().copied().unwrap_or(self.shard.id);
                            if open.as_ref().is_some_and(|(t, _)| *t != target) {
                                self.flush_open(tx, db, &mut open, &mut out).await;
                            }
                            open.get_or_insert_with(|| (target, Vec::new())).1.push(c);
                        }
                        _ => {
                            self.flush_open(tx, db, &mut open, &mut out).await;
                            out.push(self.spanning_in_exec(tx, db, c, &idx, false).await);
                        }
                    }
                }
                Queued::Node { spec, fullname, args } => {
                    self.flush_open(tx, db, &mut open, &mut out).await;
                    if !matches!(spec.exec, Exec::Node(_)) {
                        out.push(Reply::err("ERR internal error: not a node command"));
                        continue;
                    }
                    out.push(self.run_node_in(spec, fullname, args, Some(tx)).await);
                }
            }
        }
        let db = self.client.borrow().db;
        self.flush_open(tx, db, &mut open, &mut out).await;
        out
    }

    /// Runs a queued command over keys of several shards under the hold; it is noted in
    /// SLOWLOG as a whole, as outside a transaction.
    async fn spanning_in_exec(&self, tx: u64, db: usize, c: RemoteCmd, idx: &[usize], derived: bool) -> Reply {
        let noted = (c.spec.flags, c.args.clone());
        let start = crate::clock::Stamp::now();
        let r = self.shard.spanning_held(tx, db, c, idx, derived).await;
        self.slowlog(&(noted.0, &noted.1[..]), crate::clock::Stamp::now().micros_since(start));
        r
    }

    fn acl_refused_at_exec(&self, q: &Queued) -> Option<Reply> {
        let (spec, fullname, args) = match q {
            Queued::Keyed(c, _) => (c.spec, c.fullname, &c.args[..]),
            Queued::Node { spec, fullname, args } => (*spec, *fullname, &args[..]),
        };
        crate::acl::check_at_exec(&mut self.client.borrow_mut(), spec, fullname, args)
    }

    async fn flush_open(&self, tx: u64, db: usize, open: &mut Option<(usize, Vec<RemoteCmd>)>, out: &mut Vec<Reply>) {
        let Some((target, cmds)) = open.take() else { return };
        let n = cmds.len();
        match self.shard.held(tx, target, HeldOp::Keyed { db, cmds }).await {
            HeldResult::Replies((r, slow)) => {
                out.extend(r);
                // Each command of the transaction is noted as if sent alone (EXEC itself is
                // not), the ones run on other shards with this client's details.
                for n in slow {
                    self.slowlog(&(n.flags, &n.args[..]), n.usec);
                }
            }
            HeldResult::Reply(e) => out.extend((0..n).map(|_| e.clone())),
            _ => out.extend((0..n).map(|_| Reply::err("ERR internal error: shard unavailable"))),
        }
    }
}
