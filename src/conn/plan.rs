//! Execution of node-level commands: call the handler with the client's context, then carry
//! out the plan it returns (fan-outs, sleeps, closing, shutdown, ...).

use super::Conn;
use crate::cmd::{self, ClientCtx, CommandSpec, Exec, Plan};
use crate::protocol::Reply;
use crate::runtime::mesh::{HeldOp, HeldResult};
use bytes::Bytes;

impl Conn {
    /// Runs a node-level command and returns its reply.
    pub(crate) async fn run_node(
        &mut self,
        spec: &'static CommandSpec,
        fullname: &'static str,
        args: Vec<Bytes>,
    ) -> Reply {
        self.run_node_in(spec, fullname, args, None).await
    }

    /// Runs a node-level command; `held` is the transaction holding every shard when the
    /// command runs inside EXEC (its shard work then runs under that hold, see `conn::multi`).
    pub(crate) async fn run_node_in(
        &mut self,
        spec: &'static CommandSpec,
        fullname: &'static str,
        args: Vec<Bytes>,
        held: Option<u64>,
    ) -> Reply {
        let Exec::Node(f) = spec.exec else {
            return Reply::err("ERR internal error: not a node command");
        };
        let start = crate::clock::Stamp::now();
        let plan = {
            let mut client = self.client.borrow_mut();
            let mut shard = self.shard.state.borrow_mut();
            let mut ctx = ClientCtx { client: &mut client, shard: &mut shard };
            f(&mut ctx, &args)
        };
        let atomic = !spec.has(cmd::flags::TOUCHES_ARBITRARY_KEYS);
        let reply = self.execute_plan(plan, &args, held, atomic).await;
        let usec = crate::clock::Stamp::now().micros_since(start);
        self.slowlog(&(spec.flags, &args[..]), usec);
        cmd::record_call(&mut self.shard.state.borrow_mut(), fullname, usec, &reply);
        // Inside EXEC, CLIENT LIST shows `cmd=exec` as in Redis.
        if held.is_none() {
            self.client.borrow_mut().last_cmd = fullname;
        }
        reply
    }

    /// Runs `run` on every shard: under `held` if given (all shards held), else holding them.
    async fn fan_out(
        &self,
        run: cmd::ShardFn,
        db: usize,
        args: &[Bytes],
        held: Option<u64>,
        atomic: bool,
    ) -> Vec<Reply> {
        let Some(tx) = held else { return self.shard.all_shards_as(run, db, args, atomic).await };
        let mut out = Vec::with_capacity(self.shard.nshards);
        for s in 0..self.shard.nshards {
            let op = HeldOp::Run { run, db, args: args.to_vec() };
            out.push(match self.shard.held(tx, s, op).await {
                HeldResult::Reply(r) => r,
                _ => Reply::err("ERR internal error: shard unavailable"),
            });
        }
        out
    }

    /// Carries out a plan. Inside EXEC (`held`), every shard is held by the transaction, so
    /// shard work goes through the hold instead of taking gates again.
    /// `atomic` false (a command that touches arbitrary keys): what a fan-out over every shard
    /// changed reaches replicas and the AOF as separate commands.
    async fn execute_plan(&mut self, plan: Plan, args: &[Bytes], held: Option<u64>, atomic: bool) -> Reply {
        match plan {
            Plan::Reply(r) => r,
            Plan::AfterFeed(inner) => {
                let node = self.shard.state.borrow().node.clone();
                node.repl.settled().await;
                Box::pin(self.execute_plan(*inner, args, held, atomic)).await
            }
            Plan::AfterSnapshotBegins(inner) => {
                crate::runtime::aof_base::snapshot_begun(std::time::Duration::from_secs(5)).await;
                Box::pin(self.execute_plan(*inner, args, held, atomic)).await
            }
            Plan::AllShards { run, merge } => {
                let db = self.client.borrow().db;
                let replies = self.fan_out(run, db, args, held, atomic).await;
                let mut client = self.client.borrow_mut();
                let mut shard = self.shard.state.borrow_mut();
                let mut ctx = ClientCtx { client: &mut client, shard: &mut shard };
                merge(&mut ctx, replies)
            }
            Plan::OnSlot { slot, run, then } => {
                let db = self.client.borrow().db;
                let target = self.shard.shard_of_slot(slot);
                let r = self.shard.on_shard(target, run, db, args.to_vec()).await;
                let mut client = self.client.borrow_mut();
                let mut shard = self.shard.state.borrow_mut();
                let mut ctx = ClientCtx { client: &mut client, shard: &mut shard };
                then(&mut ctx, r)
            }
            Plan::Scan { cursor, count, run } => self.run_scan(cursor, count, run, args, held).await,
            Plan::Sleep(d, r) => {
                // DEBUG SLEEP stops the node as it stops Redis: every shard is held meanwhile, and
                // the control executor is frozen (`runtime::control_freeze`).
                if held.is_some() {
                    let _asleep = crate::runtime::control_freeze::Asleep::begin();
                    crate::runtime::control_freeze::freeze_control(d);
                    crate::runtime::sleep(d).await;
                    return r;
                }
                // Asleep before the shards are locked: a command another shard reads meanwhile
                // (sent after this one) waits for the end, as on Redis's one thread, instead of
                // running before the lock reaches its shard.
                let _asleep = crate::runtime::control_freeze::Asleep::begin();
                let all: Vec<usize> = (0..self.shard.nshards).collect();
                match self.shard.lock(&all).await {
                    Ok(tx) => {
                        crate::runtime::control_freeze::freeze_control(d);
                        crate::runtime::sleep(d).await;
                        self.shard.unlock(tx, &all).await;
                        r
                    }
                    Err(e) => e,
                }
            }
            Plan::Close(r) => {
                self.client.borrow_mut().close_after_reply = true;
                r
            }
            Plan::KillClients { run, old_form } => {
                let me = self.client.borrow().id;
                let mut with_me = args.to_vec();
                with_me.push(Bytes::from(me.to_string()));
                let db = self.client.borrow().db;
                let replies = self.fan_out(run, db, &with_me, held, atomic).await;
                let n: i64 = replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum();
                match (old_form, n) {
                    (true, 0) => Reply::err("ERR No such client"),
                    (true, _) => Reply::Ok,
                    (false, n) => Reply::Int(n),
                }
            }
            Plan::Publish { sharded } => {
                let run = if sharded { cmd::pubsub::deliver_shard } else { cmd::pubsub::deliver };
                let replies = match held {
                    Some(_) => self.fan_out(run, 0, args, held, atomic).await,
                    None => self.shard.each_shard(run, args).await,
                };
                if self.shard.view.borrow().enabled {
                    crate::runtime::bus_publish::forward(sharded, args[1].clone(), args[2].clone());
                }
                let n = Reply::Int(replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum());
                self.own_messages_then(n)
            }
            // Redis refuses MONITOR for deny-blocking clients, which EXEC's are.
            Plan::Monitor if held.is_some() => Reply::err(cmd::multi::MONITOR_IN_EXEC),
            Plan::Script(mut job) => {
                // Routed just before (a queued script of EXEC was routed when queued).
                let check = std::mem::take(&mut self.script_check);
                if held.is_none() {
                    job.cluster_check = check;
                    job.cluster_asking = self.script_asking;
                }
                let r = crate::runtime::script_exec::run(&self.shard, &self.client, *job, held).await;
                // What the script published to this very client comes first (see PUBLISH).
                self.own_messages_then(r)
            }
            Plan::Monitor => {
                // The monitor is registered now, as Redis adds it to its monitors when the
                // command runs: a command that any connection, of any shard, runs after the
                // client has read this +OK is fed to it (registering only once the +OK was
                // written let another shard run such a command unseen meanwhile).
                let id = {
                    let mut c = self.client.borrow_mut();
                    c.monitor = true;
                    c.id
                };
                if self.monitor_rx.is_none() {
                    self.monitor_rx = Some(super::monitor::register(id));
                }
                Reply::Ok
            }
            Plan::Migrate(job) => self.run_migrate(*job, held).await,
            Plan::Later(rx) => rx.await.unwrap_or_else(|_| Reply::err("ERR internal error: no reply")),
            Plan::Replicate(attach) => {
                // A transaction pushes its records to the feed as it releases its shards: pass
                // every shard's gate first, so the control core takes this replica after them.
                // A replica whose link a CLIENT KILL inside EXEC closed then asks after that
                // EXEC's writes, as in Redis, where nothing runs in the middle of an EXEC.
                if held.is_none() {
                    self.shard.all_shards_as(cmd::replication::pass_shard, 0, &[], false).await;
                }
                // Nothing more is written here: the control core answers +FULLRESYNC/+CONTINUE.
                self.handoff = Some(attach);
                Reply::Raw(Bytes::new())
            }
            Plan::Shutdown(a) => {
                let node = self.shard.state.borrow().node.clone();
                let save = || self.fan_out(cmd::save::serialize_shard, 0, args, held, atomic);
                crate::runtime::shutdown_wait::run(&node, a, true, save).await
            }
        }
    }
}

impl Conn {
    /// Executes a [`Plan::Scan`]: walks the slots from `cursor`, handing each shard's run of
    /// consecutive slots to that shard, until `count` keys were examined or the slots ran out.
    async fn run_scan(
        &mut self,
        cursor: usize,
        count: usize,
        run: cmd::ShardFn,
        args: &[Bytes],
        held: Option<u64>,
    ) -> Reply {
        let db = self.client.borrow().db;
        let mut walk = cmd::scan_walk::ScanWalk::new(cursor, count);
        while let Some((owner, a)) = walk.next(|slot| self.shard.shard_of_slot(slot), args) {
            let r = match held {
                Some(tx) => match self.shard.held(tx, owner, HeldOp::Run { run, db, args: a }).await {
                    HeldResult::Reply(r) => r,
                    _ => Reply::err("ERR internal error: shard unavailable"),
                },
                None => self.shard.on_shard(owner, run, db, a).await,
            };
            if let Err(e) = walk.take(r) {
                return e;
            }
        }
        walk.reply()
    }
}
