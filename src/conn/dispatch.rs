//! Dispatch of a pipeline batch: command lookup and the checks that come before execution
//! (unknown command, arity, auth), routing to shards, and putting replies back in order.

use super::Conn;
use crate::cluster::redirect::{self, ClientFlags, SlotCheck};
use crate::cmd::ctx::ReplyMode;
use crate::cmd::{self, errors, flags, table, CommandSpec, Exec, Keys};
use crate::protocol::{Reply, Request};
use crate::runtime::mesh::RemoteCmd;
use bytes::Bytes;
use futures_channel::oneshot;

/// Where a request goes.
pub(super) enum Route {
    /// Answered without execution (an error before dispatch).
    Done(Reply),
    /// A keyed command whose keys all live on one shard (or that has no keys).
    Keyed { target: usize, cmd: RemoteCmd },
    /// A keyed command whose keys span shards, or that reads keys its data names on a node
    /// with several shards (boxed: rare, and `Route` is moved once per command).
    Spanning(Box<Spanning>),
    /// A node-level command.
    Node { spec: &'static CommandSpec, fullname: &'static str, args: Vec<Bytes> },
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH (see `conn::multi`).
    Tx { fullname: &'static str, args: Vec<Bytes> },
}

/// A [`Route::Spanning`] command.
pub(super) struct Spanning {
    pub(super) cmd: RemoteCmd,
    /// Its key argument indexes.
    pub(super) key_idx: Vec<usize>,
    /// It reads keys its data names (every shard is held).
    pub(super) derived: bool,
}

impl Route {
    /// Whether this is a keyed command that may block ([`Route::into_blocking`] takes it).
    fn may_block(&self) -> bool {
        match self {
            Route::Keyed { cmd, .. } => cmd.spec.has(flags::BLOCKING),
            Route::Spanning(s) => s.cmd.spec.has(flags::BLOCKING),
            _ => false,
        }
    }

    /// The command, when this is a keyed command that may block; else the route itself.
    fn into_blocking(self) -> Result<RemoteCmd, Route> {
        match self {
            Route::Keyed { cmd, .. } if cmd.spec.has(flags::BLOCKING) => Ok(cmd),
            Route::Spanning(s) if s.cmd.spec.has(flags::BLOCKING) => Ok(s.cmd),
            r => Err(r),
        }
    }
}

/// Work sent to other shards and not yet answered.
#[derive(Default)]
struct InFlight {
    /// Shards with outstanding work.
    targets: Vec<usize>,
    /// True while everything outstanding only reads.
    all_read: bool,
    /// Receivers with the request indexes they answer.
    waiting: Vec<(Vec<usize>, oneshot::Receiver<crate::runtime::mesh::BatchAnswer>)>,
    /// The batch being built for one remote shard.
    open: Option<(usize, Vec<usize>, Vec<RemoteCmd>)>,
    /// What leaves the arrived replies out of the ceiling's count until they are encoded.
    travelling: Vec<crate::memory::in_flight::Replies>,
}

impl InFlight {
    /// The arrived replies are in the reply buffer (and their copies freed): they count again,
    /// after this shard's count of used memory holds the frees.
    fn encoded(&mut self) {
        if !self.travelling.is_empty() {
            crate::memory::publish();
            self.travelling.clear();
        }
    }

    fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
    /// Can a command for `target` go out now without any client seeing reordered effects?
    fn compatible(&self, target: usize, read: bool) -> bool {
        self.is_empty() || (self.all_read && read) || (self.targets.len() == 1 && self.targets[0] == target)
    }
    fn note(&mut self, target: usize, read: bool) {
        if self.is_empty() {
            self.all_read = read;
        } else {
            self.all_read &= read;
        }
        if !self.targets.contains(&target) {
            self.targets.push(target);
        }
    }
}

/// MISCONF for writes (and PING, as Redis) after a failed background save, while
/// `stop-writes-on-bgsave-error` is on (one atomic load).
#[inline]
fn misconf(spec: &CommandSpec, checked: u32) -> Option<Reply> {
    let write = checked & flags::WRITE != 0;
    if crate::cmd::bgsave::writes_denied() && (write || spec.name == "ping") {
        return Some(Reply::err(crate::cmd::bgsave::MISCONF));
    }
    if !crate::aof::sync::write_ok() && (write || spec.name == "ping") {
        return crate::aof::sync::misconf().map(Reply::error);
    }
    None
}

impl Conn {
    /// Looks a request up and decides its route.
    fn route(&mut self, mut req: Request) -> Route {
        let args = std::mem::take(&mut req.args);
        // Pipelines mostly repeat one command: compare with the last one before the table.
        // The parser hands a name it saw lately as the same interned static bytes each time,
        // so the same address (of such a name) is the same command without comparing bytes.
        let name_at = args[0].as_ptr() as usize;
        let spec = match self.last_spec {
            Some((s, at)) if at == name_at && s.name.len() == args[0].len() => s,
            Some((s, _)) if s.name.as_bytes().eq_ignore_ascii_case(&args[0]) => {
                self.last_spec = Some((s, self.interned_at(&args[0])));
                s
            }
            _ => match table::lookup(&args[0]) {
                Some(s) => {
                    // Found under another name (`rename-command`): never cached, so that
                    // its old name stays unknown.
                    if s.name.as_bytes().eq_ignore_ascii_case(&args[0]) {
                        self.last_spec = Some((s, self.interned_at(&args[0])));
                    }
                    s
                }
                None => return Route::Done(Reply::error(errors::unknown_command(&args))),
            },
        };
        // Containers dispatch on their subcommand; a command with its own handler and
        // subcommands (COMMAND) runs its handler when called bare.
        let (spec, fullname) =
            if !spec.subcommands.is_empty() && (args.len() >= 2 || matches!(spec.exec, Exec::Container)) {
                if args.len() < 2 {
                    return self.rejected(Some(spec.name), Reply::error(errors::wrong_arity(spec.name)));
                }
                match table::lookup_sub(spec, &args[1]) {
                    Some(sub) => (sub, table::fullname(spec, Some(sub))),
                    None => return Route::Done(Reply::error(errors::unknown_subcommand(&args[1], spec.name))),
                }
            } else {
                (spec, spec.name)
            };
        if !spec.arity_ok(args.len()) {
            return self.rejected(Some(fullname), Reply::error(errors::wrong_arity(fullname)));
        }
        if spec.has(flags::PROTECTED) {
            let refused =
                cmd::protected_refusal(spec, fullname, &self.shard.state.borrow().config, &self.client.borrow().addr);
            if let Some(refused) = refused {
                return self.rejected(Some(fullname), refused);
            }
        }
        // A script ran past busy-reply-threshold: only allow-busy commands run (one load).
        // (While loading, -LOADING comes first, as in Redis's `processCommand`.)
        if !spec.has(flags::ALLOW_BUSY) && !crate::replication::role::loading() {
            if let Some(busy) = crate::script::busy_refusal() {
                return self.rejected(Some(fullname), busy);
            }
        }
        // EXEC is checked with the flags of what it queued (see `TxState::exec_flags`).
        let checked = if fullname == "exec" { self.tx.exec_flags(spec.flags) } else { spec.flags };
        if !self.client.borrow().authenticated && !spec.has(flags::NO_AUTH) && crate::acl::auth_required() {
            return self.rejected(Some(fullname), Reply::err(errors::NOAUTH));
        }
        // ACL: once per command, here on the home shard (the default user: one load).
        let refused = crate::acl::check_client(&mut self.client.borrow_mut(), spec, fullname, &args);
        if let Some(refused) = refused {
            return self.rejected(Some(fullname), refused);
        }
        // RESP2 subscribed mode (only clients that ever subscribed look further).
        if let Some(refused) = self.subscribed_refusal(fullname) {
            return self.rejected(Some(fullname), refused);
        }
        let cluster = self.shard.view.borrow().enabled;
        let master = self.client.borrow().master;
        if let Some(refused) = crate::replication::role::refuse(checked, cluster, master) {
            return self.rejected(Some(fullname), refused);
        }
        // min-replicas-to-write not met (one relaxed load).
        if checked & flags::WRITE != 0 && !self.client.borrow().master && crate::replication::master::writes_refused() {
            return self.rejected(Some(fullname), Reply::err(crate::replication::master::NOREPLICAS));
        }
        if super::monitor::active() && super::monitor::shown(spec, fullname) {
            let c = self.client.borrow();
            super::monitor::feed(c.db, &c.addr, &args);
        }
        // The master link is not redirected: it applies whatever its master sends.
        if cluster && !master {
            return self.route_cluster(spec, fullname, args);
        }
        if let Some(refused) = self.oom_refusal(spec, fullname) {
            return self.rejected(Some(fullname), refused);
        }
        if let Some(refused) = misconf(spec, checked) {
            return self.rejected(Some(fullname), refused);
        }
        match spec.exec {
            Exec::Keyed(_) => {
                let home = self.shard.id;
                let (client, remember) = self.tracking_marks(spec, fullname);
                // The common case, one key at argument 1, routes without allocating.
                if let Keys::Range { first: 1, last: 1, .. } = spec.keys {
                    let slot = crate::cluster::key_slot(&args[1]);
                    let target = self.shard.shard_of_slot(slot);
                    let cmd =
                        RemoteCmd { spec, fullname, args, check: SlotCheck::None, slot: Some(slot), client, remember };
                    return Route::Keyed { target, cmd };
                }
                let key_idx = match spec.key_indexes(&args) {
                    Ok(k) => k,
                    Err(e) => return self.rejected(Some(fullname), e),
                };
                let mut target = None;
                let mut spans = false;
                for &i in &key_idx {
                    let s = self.shard.shard_of_slot(crate::cluster::key_slot(&args[i]));
                    match target {
                        None => target = Some(s),
                        Some(t) if t != s => spans = true,
                        _ => {}
                    }
                }
                let derived = match spec.keys {
                    Keys::Derived { reads_more, .. } => self.shard.nshards > 1 && reads_more(&args),
                    _ => false,
                };
                let cmd = RemoteCmd { spec, fullname, args, check: SlotCheck::None, slot: None, client, remember };
                if spans || derived {
                    Route::Spanning(Box::new(Spanning { cmd, key_idx, derived }))
                } else {
                    Route::Keyed { target: target.unwrap_or(home), cmd }
                }
            }
            Exec::Node(_) | Exec::Container => Route::Node { spec, fullname, args },
        }
    }

    /// Routing in cluster mode: the redirect checks, then the slot's shard (all keys of a
    /// command that passes share one slot, so one shard).
    fn route_cluster(&mut self, spec: &'static CommandSpec, fullname: &'static str, args: Vec<Bytes>) -> Route {
        // SSUBSCRIBE / SUNSUBSCRIBE / SPUBLISH: the shard channels are the keys, and a replica
        // serves its master's slots for them without READONLY (Redis's `is_pubsubshard`).
        let shard_pubsub =
            matches!(spec.exec, Exec::Node(_)) && spec.has(flags::PUBSUB) && !matches!(spec.keys, Keys::None);
        let flags = {
            let mut c = self.client.borrow_mut();
            let f = ClientFlags { readonly: c.readonly || shard_pubsub, asking: c.asking };
            // ASKING is one-shot: it covers the next command only, or every command queued in
            // a transaction (cleared when it ends).
            if spec.name != "asking" && c.multi.is_none() {
                c.asking = false;
            }
            f
        };
        // Node-level commands with keys (MIGRATE, WATCH) are checked like keyed ones.
        let key_idx = match (spec.exec, &spec.keys) {
            _ if shard_pubsub => spec.key_indexes(&args).unwrap_or_default(),
            (Exec::Keyed(_), _) | (Exec::Node(_), Keys::Range { .. } | Keys::Custom { .. }) => {
                match spec.key_indexes(&args) {
                    Ok(k) => k,
                    Err(e) => return self.rejected(Some(fullname), e),
                }
            }
            _ => Vec::new(),
        };
        let view = self.shard.view.borrow().clone();
        let check = match redirect::check(&view, flags, spec, &args, &key_idx) {
            Ok(c) => c,
            Err(e) => return self.rejected(Some(fullname), e),
        };
        if let Some(refused) = self.oom_refusal(spec, fullname) {
            return self.rejected(Some(fullname), refused);
        }
        if let Some(refused) = misconf(spec, spec.flags) {
            return self.rejected(Some(fullname), refused);
        }
        if key_idx.is_empty() && view.replica && spec.has(flags::WRITE) {
            return self.rejected(Some(fullname), Reply::err(redirect::READONLY));
        }
        // A script's declared keys are checked where they live when it runs, as a keyed
        // command's (shard channels never are, as in Redis; MIGRATE and WATCH have no
        // script job and leave it unused).
        self.script_check = match spec.exec {
            Exec::Node(_) if !shard_pubsub => check.clone().over_key_list(),
            _ => redirect::SlotCheck::None,
        };
        self.script_asking = flags.asking;
        match spec.exec {
            Exec::Keyed(_) => {
                let (target, slot) = match key_idx.first() {
                    Some(&i) => {
                        let slot = crate::cluster::key_slot(&args[i]);
                        (view.shard_of(slot), (i == 1).then_some(slot))
                    }
                    None => (self.shard.id, None),
                };
                let (client, remember) = self.tracking_marks(spec, fullname);
                Route::Keyed { target, cmd: RemoteCmd { spec, fullname, args, check, slot, client, remember } }
            }
            Exec::Node(_) | Exec::Container => Route::Node { spec, fullname, args },
        }
    }

    /// The address of `name` when it is one of the parser's interned names (which live as
    /// long as the process and never change), else 0 (never an address).
    fn interned_at(&self, name: &[u8]) -> usize {
        if self.parser.is_interned(name) {
            name.as_ptr() as usize
        } else {
            0
        }
    }

    /// The client's id and whether the command's keys are remembered for CLIENT TRACKING.
    fn tracking_marks(&self, spec: &CommandSpec, fullname: &str) -> (u64, bool) {
        let mut c = self.client.borrow_mut();
        let remember = c.tracking.is_some() && cmd::tracking::remember_for(&mut c, spec, fullname);
        (c.id, remember)
    }

    /// `maxmemory` (Redis's `processCommand` step): evicts on the home shard if the node is
    /// over the ceiling, then refuses a `denyoom` command, or anything but EXEC/DISCARD/QUIT/
    /// RESET inside MULTI, when it is still over (EXEC itself is checked in `conn::multi`).
    /// The master link is never refused. One relaxed load while `maxmemory` is 0.
    #[inline]
    fn oom_refusal(&mut self, spec: &CommandSpec, fullname: &str) -> Option<Reply> {
        if crate::memory::maxmemory() == 0 {
            return None;
        }
        self.oom_refusal_over(spec, fullname)
    }

    #[cold]
    fn oom_refusal_over(&mut self, spec: &CommandSpec, fullname: &str) -> Option<Reply> {
        if self.client.borrow().master {
            return None;
        }
        let oom = if self.shard.gate.holder().is_some() {
            // A transaction holds this shard's keys: no eviction under it.
            crate::memory::used_for_evict() > crate::memory::maxmemory() && !crate::memory::replica_ignores()
        } else {
            let ran = self.evicted_node_wide.take();
            let oom = crate::memory::evict::before_command(&mut self.shard.state.borrow_mut(), ran);
            self.take_early_pushes();
            oom
        };
        let in_multi = self.client.borrow().multi.is_some();
        let reject =
            spec.has(flags::DENYOOM) || (in_multi && !matches!(fullname, "exec" | "discard" | "quit" | "reset"));
        (oom && reject).then(|| Reply::err(crate::memory::OOM))
    }

    /// Redis writes the invalidations of keys evicted before a command into the caller's
    /// output buffer at once, so a tracking client reads them before that command's reply:
    /// they are taken from its inbox here and written ahead of the reply by `dispatch_batch`.
    fn take_early_pushes(&mut self) {
        let c = self.client.borrow();
        let Some(t) = c.tracking.as_ref() else { return };
        let pushes = t.inbox.take();
        let subscribed = crate::cmd::pubsub::subscribed(&c);
        for p in &pushes {
            p.encode(&mut self.early_pushes, c.resp3, subscribed);
        }
    }

    fn rejected(&mut self, fullname: Option<&'static str>, reply: Reply) -> Route {
        cmd::record_rejected(&mut self.shard.state.borrow_mut(), fullname);
        // A refused EXEC discards the transaction (`conn::multi`), as Redis's `rejectCommand`.
        if fullname == Some("exec") {
            self.tx.abort = Some(reply);
            return Route::Tx { fullname: "exec", args: Vec::new() };
        }
        Route::Done(reply)
    }

    /// A pipeline is about to run: starts loading its keys' table entries together (see
    /// `Db::prefetch_keys`; it only acts in large keyspaces).
    pub(crate) fn prefetch_batch(&self, reqs: &[Request]) {
        if reqs.len() > 1 {
            let db = self.client.borrow().db;
            let st = self.shard.state.borrow();
            if let Some(d) = st.ks.dbs.get(db) {
                d.prefetch_keys(reqs.iter().filter_map(|r| r.args.get(1)).map(|k| &k[..]));
            }
        }
    }

    /// Executes a batch of parsed requests and appends their replies, in order, to `wbuf`.
    ///
    /// The rare, large awaits (node commands, transactions, blocking and spanning commands)
    /// are boxed: this future is built and moved (copied) once per batch, so it is kept small
    /// rather than as large as the largest of them.
    pub(crate) async fn dispatch_batch<I>(&mut self, reqs: I)
    where
        I: IntoIterator<Item = Request>,
        I::IntoIter: ExactSizeIterator,
    {
        let reqs = reqs.into_iter();
        let n = reqs.len();
        // Batches are mostly one request (-P 1) or a few dozen: no allocation for those.
        let mut replies: smallvec::SmallVec<[Option<Reply>; 16]> = smallvec::SmallVec::new();
        replies.resize_with(n, || None);
        // From a whole inline array when it fits: one store, no fill loop (or memset call).
        let mut suppress: smallvec::SmallVec<[bool; 16]> = match n <= 16 {
            true => smallvec::SmallVec::from_buf_and_len([false; 16], n),
            false => smallvec::smallvec![false; n],
        };
        let mut fl = InFlight::default();
        let home = self.shard.id;
        let mut db = self.client.borrow().db;
        let now = crate::storage::tick_clock();
        self.client.borrow_mut().last_interaction_ms = now;
        let mut clock = crate::clock::Stamp::now();
        // Replies before this index were already encoded (a blocking command flushed them).
        let mut done = 0;
        // Requests before this index ran; the rest (after QUIT) are dropped.
        let mut end = n;
        for (i, req) in reqs.into_iter().enumerate() {
            // Replies count against the output-buffer limit as they are produced.
            if self.encode_ready(&mut replies[..i], &suppress, &mut done) {
                return;
            }
            suppress[i] = {
                let mut c = self.client.borrow_mut();
                // After QUIT (or CLIENT KILL of itself) the client's further input is not run,
                // as Redis stops processing a CLOSE_AFTER_REPLY client's query buffer.
                if c.close_after_reply {
                    end = i;
                    break;
                }
                match c.reply_mode {
                    ReplyMode::On => false,
                    ReplyMode::Off => true,
                    ReplyMode::Skip => {
                        c.reply_mode = ReplyMode::On;
                        true
                    }
                }
            };
            // The node's pause (CLIENT PAUSE, a failover, SHUTDOWN waiting for replicas) holds
            // this request until it ends, and routes it afterwards (the slots may have moved
            // meanwhile). One relaxed load while no pause is on.
            if crate::pause::on() && self.held_by_pause(&req, now) {
                self.settle(&mut fl, &mut replies, db).await;
                self.encode_replies(&mut replies[done..i], &suppress[done..i]);
                done = i;
                let _ = Box::pin(self.flush()).await;
                Box::pin(self.wait_unpaused(&req)).await;
                if self.client.borrow().killed {
                    return;
                }
                self.shard.refresh_cluster();
                clock = crate::clock::Stamp::now();
            }
            // `maxmemory` on a node of several shards: keys on the other shards are evicted
            // for this command too, before it runs (the command's own check then runs no
            // second cycle). One relaxed load while `maxmemory` is 0.
            self.evicted_node_wide = None;
            if crate::memory::maxmemory() != 0 && self.shard.nshards > 1 && !self.client.borrow().master {
                self.evicted_node_wide = Box::pin(crate::memory::evict::before_command_node_wide(&self.shard)).await;
            }
            let mut route = self.route(req);
            if !self.early_pushes.is_empty() {
                // Invalidations of keys evicted just now go out after the earlier replies.
                self.settle(&mut fl, &mut replies, db).await;
                self.encode_replies(&mut replies[done..i], &suppress[done..i]);
                done = i;
                let early = std::mem::take(&mut self.early_pushes);
                self.wbuf.extend_from_slice(&early);
            }
            // (Un)subscribe confirmations are pushed even under CLIENT REPLY OFF/SKIP, as Redis.
            if let Route::Node { spec, .. } = &route {
                if suppress[i] && spec.has(flags::PUBSUB) && spec.name.ends_with("subscribe") {
                    suppress[i] = false;
                }
            }
            // Outside MULTI a keyed command passes the transaction filter as it is. The route is
            // only looked at, not moved, on that common path: moving the struct `route` just
            // wrote reads it back whole, which waits for those writes (a store-forwarding stall
            // on every request).
            if self.tx.in_multi() || !matches!(route, Route::Keyed { .. } | Route::Spanning(_)) {
                route = self.tx_filter(route);
            }
            if route.may_block() {
                match std::mem::replace(&mut route, Route::Done(Reply::Ok)).into_blocking() {
                    Ok(cmd) => {
                        // Earlier replies go out first: the client may wait a long time here.
                        self.settle(&mut fl, &mut replies, db).await;
                        self.encode_replies(&mut replies[done..i], &suppress[done..i]);
                        fl.encoded();
                        done = i;
                        let _ = Box::pin(self.flush()).await;
                        replies[i] = Some(Box::pin(self.run_blocking(db, cmd)).await);
                        if self.client.borrow().killed {
                            return;
                        }
                        crate::storage::tick_clock();
                        clock = crate::clock::Stamp::now();
                        continue;
                    }
                    Err(r) => route = r,
                }
            }
            match route {
                Route::Done(r) => replies[i] = Some(r),
                Route::Tx { fullname, args } => {
                    self.settle(&mut fl, &mut replies, db).await;
                    replies[i] = Some(Box::pin(self.run_tx(fullname, args)).await);
                    db = self.client.borrow().db;
                    crate::storage::tick_clock();
                    clock = crate::clock::Stamp::now();
                }
                Route::Keyed { target, cmd } => {
                    let read = !cmd.spec.has(flags::WRITE);
                    if !fl.compatible(target, read) {
                        self.settle(&mut fl, &mut replies, db).await;
                        clock = crate::clock::Stamp::now();
                    }
                    if target == home {
                        if fl.open.is_some() {
                            self.send_open(&mut fl, db).await;
                        }
                        let r = match self.shard.run_local_now(db, &cmd, &mut clock) {
                            Some(r) => r,
                            None => self.shard.run_local_one(db, &cmd, &mut clock).await,
                        };
                        if done == i {
                            // Every earlier reply is out: this one goes straight to the buffer
                            // (the next turn's `encode_ready` checks the output limits).
                            done = i + 1;
                            self.encode_reply(r, suppress[i]);
                        } else {
                            replies[i] = Some(r);
                        }
                        // The time execute_keyed measured from `clock` (0 when refused).
                        let usec = self.shard.state.borrow().stats.last_call_usec;
                        self.slowlog(&cmd.spec_flags_args(), usec);
                        self.parser.recycle(cmd.args);
                        if !fl.is_empty() {
                            fl.note(target, read);
                        }
                    } else {
                        if fl.open.as_ref().is_some_and(|(t, _, _)| *t != target) {
                            self.send_open(&mut fl, db).await;
                        }
                        let open = fl.open.get_or_insert_with(|| (target, Vec::new(), Vec::new()));
                        open.1.push(i);
                        open.2.push(cmd);
                        fl.note(target, read);
                    }
                }
                Route::Spanning(s) => {
                    self.settle(&mut fl, &mut replies, db).await;
                    let Spanning { cmd, key_idx, derived } = *s;
                    let noted = (cmd.spec.flags, cmd.args.clone());
                    let start = crate::clock::Stamp::now();
                    replies[i] = Some(Box::pin(self.shard.run_spanning(db, cmd, &key_idx, derived)).await);
                    clock = crate::clock::Stamp::now();
                    // A command over keys of several shards is noted as a whole, for the time
                    // it took from here.
                    self.slowlog(&(noted.0, &noted.1[..]), clock.micros_since(start));
                }
                Route::Node { spec, fullname, args } => {
                    self.settle(&mut fl, &mut replies, db).await;
                    // SYNC/PSYNC need a fresh reply stream (`clientHasPendingReplies`).
                    if (fullname == "sync" || fullname == "psync")
                        && (!self.wbuf.is_empty() || suppress[done..i].iter().any(|s| !s))
                    {
                        replies[i] = Some(Reply::err("ERR SYNC and PSYNC are invalid with pending output"));
                        continue;
                    }
                    if fullname == "psync" && args.get(3).is_some_and(|a| a.eq_ignore_ascii_case(b"failover")) {
                        let node = self.shard.state.borrow().node.clone();
                        crate::replication::role::drain_master_link(&node.repl).await;
                    }
                    crate::memory::node_command_started();
                    replies[i] = Some(Box::pin(self.run_node(spec, fullname, args)).await);
                    if self.handoff.is_some() {
                        return;
                    }
                    Box::pin(self.tx_after_node(fullname)).await;
                    if fullname == "client|reply" {
                        // ON always answers; OFF and SKIP never do.
                        suppress[i] = self.client.borrow().reply_mode != ReplyMode::On;
                    }
                    db = self.client.borrow().db;
                    crate::storage::tick_clock();
                    clock = crate::clock::Stamp::now();
                }
            }
        }
        if !fl.is_empty() {
            self.settle(&mut fl, &mut replies, db).await;
        }
        self.encode_replies(&mut replies[done..end], &suppress[done..end]);
        fl.encoded();
        self.obuf_over();
    }

    /// Encodes the replies that are ready, in order, from `done` on; then checks the
    /// output-buffer limit. True when the client went over it (it is being closed).
    fn encode_ready(&mut self, replies: &mut [Option<Reply>], suppress: &[bool], done: &mut usize) -> bool {
        let start = *done;
        let end = start + replies[start..].iter().take_while(|r| r.is_some()).count();
        if end > start {
            self.encode_replies(&mut replies[start..end], &suppress[start..end]);
            *done = end;
        }
        self.obuf_over()
    }

    /// Records a command in the home shard's SLOWLOG if it ran longer than the threshold.
    pub(crate) fn slowlog(&self, (flags_, args): &(u32, &[Bytes]), usec: u64) {
        cmd::slowlog::record(&mut self.shard.state.borrow_mut(), &self.client.borrow(), *flags_, args, usec);
    }

    /// Sends the open remote batch, if any.
    async fn send_open(&mut self, fl: &mut InFlight, db: usize) {
        if let Some((target, idx, cmds)) = fl.open.take() {
            let rx = self.shard.send_batch(target, db, cmds).await;
            fl.waiting.push((idx, rx));
        }
    }

    /// Sends what is open and waits for everything in flight.
    async fn settle(&mut self, fl: &mut InFlight, replies: &mut [Option<Reply>], db: usize) {
        self.send_open(fl, db).await;
        for (idx, rx) in fl.waiting.drain(..) {
            let ((got, slow), travelling) = crate::runtime::shard::Shard::recv_batch_travelling(rx, idx.len()).await;
            fl.travelling.push(travelling);
            for (i, r) in idx.into_iter().zip(got) {
                replies[i] = Some(r);
            }
            // The commands that ran long on the other shard go into this client's SLOWLOG as
            // those run here do.
            for n in slow {
                cmd::slowlog::record(
                    &mut self.shard.state.borrow_mut(),
                    &self.client.borrow(),
                    n.flags,
                    &n.args,
                    n.usec,
                );
            }
        }
        fl.targets.clear();
        fl.all_read = true;
    }

    /// Encodes replies in order, honouring CLIENT REPLY OFF/SKIP and counting errors.
    fn encode_replies(&mut self, replies: &mut [Option<Reply>], suppress: &[bool]) {
        for (r, &skip) in replies.iter_mut().zip(suppress) {
            let r = r.take().unwrap_or_else(|| Reply::err("ERR internal error: missing reply"));
            if !self.encode_reply(r, skip) {
                return;
            }
        }
    }

    /// Encodes one reply (unless `skip`) and counts it if it is an error. False when the
    /// client was closed by it (no later reply is encoded).
    #[inline]
    fn encode_reply(&mut self, r: Reply, skip: bool) -> bool {
        if let Reply::Error(e) = &r {
            if e == crate::memory::obuf::OVER_LIMIT {
                // A reply that cannot fit the output buffer: the client is closed without
                // it, as Redis closes a client whose reply overcame its limit.
                self.obuf_close();
                return false;
            }
            cmd::record_error(&mut self.shard.state.borrow_mut(), &r);
        }
        if !skip {
            if crate::memory::clients::limit() != 0 && self.grow_for_reply(&r) {
                return false;
            }
            let cap = self.wbuf.capacity();
            r.encode(&mut self.wbuf, self.client.borrow().resp3);
            // Client eviction counts the reply buffer as it grows (Redis counts a client's
            // memory after each command), so one batch of big replies cannot go far past the
            // limit.
            if self.wbuf.capacity() != cap && crate::memory::clients::limit() != 0 {
                let shard = self.shard.clone();
                let mut st = shard.state.borrow_mut();
                if self.evicted_while_replying(&mut st) {
                    return false;
                }
            }
        }
        true
    }
}
