//! What every way of running a script shares (`script_exec`, `script_node`): the command's
//! resolution and refusals (unknown, arity, `noscript`, ACL), Redis's cluster-mode key rules
//! for scripts, error counting, and the node-level commands a script may call that need no
//! shard but its own (the others are carried out by `script_node` on the held shards).

use super::shard::Shard;
use crate::clock::Stamp;
use crate::cluster::view::{ClusterView, SlotRoute};
use crate::cmd::scripting::ScriptJob;
use crate::cmd::{self, ClientCtx, ClientState, Exec, Plan, ShardState};
use crate::protocol::Reply;
use crate::replication::feed::Unit;
use crate::script;
use bytes::Bytes;
use std::sync::Arc;

/// A PUBLISH / SPUBLISH a script ran: `[command, channel, message]`.
pub(super) struct Published {
    pub(super) sharded: bool,
    pub(super) args: Vec<Bytes>,
}

pub(super) const NON_LOCAL: &str = "Script attempted to access a non local key in a cluster node";
const CROSS_SLOT: &str = "Script attempted to access keys that do not hash to the same slot";
const DOWN: &str = "Script attempted to execute a command while the cluster is down";
const DOWN_RO: &str = "Script attempted to execute a write command while the cluster is down and readonly";
pub(super) const RESTARTING: &str = "ERR internal: script restarting";
pub(super) const NOT_ALLOWED: &str = "ERR This Redis command is not allowed from script";

/// What every host shares: the script's cluster rules and the node-level commands.
pub(super) struct Common {
    pub(super) view: Arc<ClusterView>,
    pub(super) slot: Option<u16>,
    pub(super) allow_cross_slot: bool,
    /// The caller's ASKING (for this call) and READONLY flags, which the script's commands
    /// take in cluster mode.
    asking: bool,
    readonly: bool,
    pub(super) client: ClientState,
    pub(super) clock: crate::clock::Stamp,
    /// A key the run cannot reach: the run is abandoned (and restarted).
    pub(super) restart: Option<Vec<Bytes>>,
    /// A write command ran.
    pub(super) wrote: bool,
    /// Shards of the node.
    pub(super) nshards: usize,
    /// CLIENT TRACKING: the caller's id and the declared keys to remember for it once the
    /// script runs a read-only command (see `cmd::tracking::ScriptTracking`).
    pub(super) tracking: cmd::tracking::ScriptTracking,
    /// The messages published so far, delivered once the run ends (see [`deliver`]).
    pub(super) published: Vec<Published>,
}

impl Common {
    /// `caller`: the client whose identity and ACL user the script's commands run with;
    pub(super) fn new(shard: &Shard, job: &ScriptJob, flags: u32, db: usize, caller: &ClientState) -> Common {
        let view = shard.view.borrow().clone();
        // The slot of the declared keys matters in cluster mode only (`cluster_check`).
        let slot = if view.enabled { job.keys.first().map(|k| crate::cluster::key_slot(k)) } else { None };
        let client = ClientState::for_script(caller, db);
        Common {
            view,
            slot,
            // Scripts without a shebang keep Redis 6's freedom to touch several local slots.
            allow_cross_slot: flags & (script::sflags::ALLOW_CROSS_SLOT | script::sflags::EVAL_COMPAT) != 0,
            asking: job.cluster_asking,
            readonly: caller.readonly,
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
    pub(super) fn resolve(&self, args: &[Bytes]) -> Result<(&'static cmd::CommandSpec, &'static str), String> {
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
    pub(super) fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String> {
        const INVALID: &str = "Invalid command passed to redis.acl_check_cmd()";
        let (spec, fullname) = resolve_known(args).ok_or(INVALID)?;
        let user = &self.client.user;
        Ok(user.allows_all || spec.has(cmd::flags::NO_AUTH) || user.check(fullname, spec.arity, args).is_ok())
    }

    /// Cluster-mode checks of a command's keys (Redis's `scriptVerifyClusterState`): the
    /// command's slot must be served here, as for the caller's own command with its ASKING
    /// and READONLY flags, and the cluster up (or down with reads allowed, for a read).
    pub(super) fn cluster_check(
        &mut self,
        spec: &cmd::CommandSpec,
        args: &[Bytes],
        idx: &[usize],
    ) -> Result<(), String> {
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
        let write = spec.has(cmd::flags::WRITE);
        let route = self.view.route[s as usize];
        if route == SlotRoute::Unassigned {
            return Err(NON_LOCAL.into());
        }
        if !self.view.ok {
            if !self.view.allow_reads_when_down {
                return Err(DOWN.into());
            }
            if write {
                return Err(DOWN_RO.into());
            }
        }
        let served = match route {
            SlotRoute::Mine { .. } => true,
            SlotRoute::Other { importing, my_master, .. } => {
                (importing && self.asking) || (self.readonly && !write && self.view.replica && my_master)
            }
            SlotRoute::Unassigned => false,
        };
        if !served {
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
    /// refusal (`Err`) in errorstats and as a rejected call of the command. A command that ran
    /// (since `start`) goes into SLOWLOG and the latency monitor when it ran long.
    pub(super) fn count(&self, st: &mut ShardState, args: &[Bytes], r: &Result<Reply, String>, start: Stamp) {
        match r {
            Ok(reply) => {
                cmd::record_error(st, reply);
                cmd::slowlog::record_script_call(st, args, Stamp::now().micros_since(start));
            }
            Err(text) if text != RESTARTING => {
                cmd::record_error(st, &refusal_reply(text));
                cmd::record_rejected(st, cmd::table::resolve(args).map(|(_, name)| name));
            }
            Err(_) => {}
        }
    }

    /// A node-level command, run with the script's client on `st`: its reply, or the plan
    /// when it needs shards besides this one (`script_node` carries it out; the call is not
    /// counted then).
    pub(super) fn node(
        &mut self,
        st: &mut ShardState,
        spec: &'static cmd::CommandSpec,
        fullname: &'static str,
        db: &mut usize,
        args: &[Bytes],
    ) -> Result<Reply, Plan> {
        let Exec::Node(f) = spec.exec else { return Ok(Reply::err("ERR internal error: not a node command")) };
        let start = std::time::Instant::now();
        let reply = self.node_plan(st, f, db, args)?;
        cmd::record_call(st, fullname, start.elapsed().as_micros() as u64, &reply);
        Ok(reply)
    }

    /// Calls the handler with the script's client, and carries out the plans one shard can.
    pub(super) fn node_plan(
        &mut self,
        st: &mut ShardState,
        f: cmd::spec::NodeFn,
        db: &mut usize,
        args: &[Bytes],
    ) -> Result<Reply, Plan> {
        self.client.db = *db;
        let plan = {
            let mut ctx = ClientCtx { client: &mut self.client, shard: st };
            f(&mut ctx, args)
        };
        *db = self.client.db;
        let plan = match plan {
            // (A script holds its shard: the rewrite's snapshot begins after the script.)
            Plan::AfterFeed(inner) | Plan::AfterSnapshotBegins(inner) => *inner,
            p => p,
        };
        Ok(match plan {
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
            p @ (Plan::AllShards { .. } | Plan::OnSlot { .. } | Plan::Scan { .. }) => return Err(p),
            _ => Reply::err(NOT_ALLOWED),
        })
    }
}

/// The error reply a refusal text stands for (`-CODE msg`, or a bare message meaning `ERR`).
pub(super) fn refusal_reply(text: &str) -> Reply {
    match text.strip_prefix('-') {
        Some(t) => Reply::error(t.to_string()),
        None => Reply::error(format!("ERR {text}")),
    }
}

/// A refused command of a script: its error in errorstats, a rejected call of the command.
pub(super) fn count_rejected(st: &mut ShardState, command: Option<&'static str>, text: &str) {
    cmd::record_error(st, &refusal_reply(text));
    cmd::record_rejected(st, command);
}

/// The command a script's `args` call, as [`cmd::table::resolve`], None as well for an unknown
/// subcommand (a bare container resolves, and fails its arity; COMMAND runs bare).
pub(super) fn resolve_known(args: &[Bytes]) -> Option<(&'static cmd::CommandSpec, &'static str)> {
    cmd::table::resolve(args).filter(|(spec, _)| spec.subcommands.is_empty() || args.len() < 2)
}

/// Whether `args` (a call of `spec`) reads keys its data names on a node of several shards
/// (SORT ... BY/GET): such a call needs every shard, as a node-wide command does.
pub(super) fn reads_derived(spec: &cmd::CommandSpec, args: &[Bytes], nshards: usize) -> bool {
    matches!(spec.keys, cmd::Keys::Derived { reads_more, .. } if nshards > 1 && reads_more(args))
}
