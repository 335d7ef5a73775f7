//! The standalone coordinated failover of a master to one of its replicas (FAILOVER, Redis
//! 7.0's `failoverCommand`, `updateFailoverStatus`, `abortFailover`).
//!
//! - `waiting-for-sync`: writes are paused (the failover purpose of [`crate::pause`]) while
//!   the target replica (or, without TO, the first replica found) acknowledges this master's
//!   whole stream. With a TIMEOUT that passes first, the failover is aborted, or with FORCE
//!   goes on anyway.
//! - `failover-in-progress`: this node follows the target, and its link's PSYNC carries
//!   `FAILOVER`, which makes the target a master before it answers; `+CONTINUE` or
//!   `+FULLRESYNC` end the failover (writes resume, and are refused as on any replica), an
//!   error reply aborts it: this node serves as a master again.
//! - `no-failover` otherwise (INFO replication `master_failover_state`).
//!
//! The state is process-wide: the command's shard starts the failover and drives the wait,
//! the replica link on shard 0 finishes it, INFO reads it.

use crate::cmd::NodeInfo;
use crate::pause::{Kind, Purpose};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Redis's `failover_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No failover.
    None = 0,
    /// Waiting for the target to catch up.
    WaitingForSync = 1,
    /// Handing over: this node follows the target.
    InProgress = 2,
}

impl State {
    /// INFO's `master_failover_state` value.
    pub fn name(self) -> &'static str {
        match self {
            State::None => "no-failover",
            State::WaitingForSync => "waiting-for-sync",
            State::InProgress => "failover-in-progress",
        }
    }
}

/// A failover's parameters (Redis's `target_replica_host`/`port`, `failover_end_time`,
/// `force_failover`).
#[derive(Debug, Default, Clone)]
struct Plan {
    target: Option<(String, u16)>,
    /// Unix ms after which the wait gives up (0: no TIMEOUT).
    end_ms: u64,
    force: bool,
}

static STATE: AtomicU8 = AtomicU8::new(0);
/// Bumped by each FAILOVER: a wait left over from an aborted one stops.
static GEN: AtomicU64 = AtomicU64::new(0);
static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

fn with_plan<R>(f: impl FnOnce(&mut Option<Plan>) -> R) -> R {
    match PLAN.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// The failover state now.
pub fn state() -> State {
    match STATE.load(Ordering::Acquire) {
        1 => State::WaitingForSync,
        2 => State::InProgress,
        _ => State::None,
    }
}

fn set_state(s: State) {
    STATE.store(s as u8, Ordering::Release);
}

/// Starts a failover (the command checked everything): pauses writes and starts the wait on
/// the calling shard's executor.
pub fn start(node: Arc<NodeInfo>, target: Option<(String, u16)>, timeout_ms: u64, force: bool) {
    match &target {
        Some((h, p)) => tracing::info!("FAILOVER requested to {}:{}.", h, p),
        None => tracing::info!("FAILOVER requested to any replica."),
    }
    let end_ms = if timeout_ms > 0 { crate::storage::now_ms() + timeout_ms } else { 0 };
    with_plan(|p| *p = Some(Plan { target, end_ms, force }));
    set_state(State::WaitingForSync);
    crate::pause::pause(Purpose::Failover, u64::MAX, Kind::Write);
    let gen = GEN.fetch_add(1, Ordering::AcqRel) + 1;
    glommio::spawn_local(drive(node, gen)).detach();
}

/// Redis's `clearFailoverState`: no failover, writes resume.
fn clear() {
    with_plan(|p| *p = None);
    set_state(State::None);
    crate::pause::unpause(Purpose::Failover);
}

/// Redis's `abortFailover`: logs why, serves as a master again if the handover had begun.
pub fn abort(node: &NodeInfo, why: &str) {
    let st = state();
    if st == State::None {
        return;
    }
    match with_plan(|p| p.as_ref().and_then(|p| p.target.clone())) {
        Some((h, port)) => tracing::info!("FAILOVER to {}:{} aborted: {}", h, port, why),
        None => tracing::info!("FAILOVER to any replica aborted: {}", why),
    }
    if st == State::InProgress {
        node.repl.promote();
    }
    clear();
}

/// The PSYNC a replica link sends, with `FAILOVER` while this node hands over to its target.
pub fn psync_command(replid: &str, offset: &str, failover: bool) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"PSYNC", replid.as_bytes(), offset.as_bytes()];
    if failover {
        args.push(b"FAILOVER");
    }
    super::handshake::encode(&args)
}

/// The PSYNC could not be sent: a handover aborts (`syncWithMaster`). Returns `err`.
pub fn write_failed(node: &NodeInfo, failover: bool, err: String) -> String {
    if failover {
        abort(node, "Write error to failover target");
    }
    err
}

/// The target's answer to PSYNC ... FAILOVER (`syncWithMaster`): `+CONTINUE` or
/// `+FULLRESYNC` ends the failover; anything else aborts it and ends the link attempt.
pub fn psync_answered(node: &NodeInfo, reply: &super::handshake::PsyncReply, line: &str) -> Result<(), String> {
    use super::handshake::PsyncReply;
    let accepted = matches!(reply, PsyncReply::Continue { .. } | PsyncReply::Full { .. });
    if state() == State::InProgress {
        if accepted {
            clear();
        } else {
            abort(node, "Failover target rejected psync request");
        }
    }
    if accepted {
        Ok(())
    } else {
        Err(format!("Unexpected reply to PSYNC FAILOVER from the target: {line}"))
    }
}

/// True while this node hands over to its target (the link's PSYNC carries `FAILOVER`).
pub fn handing_over() -> bool {
    state() == State::InProgress
}

/// The replica `host:port` among the attached ones (Redis's `findReplica`: the announced or
/// peer address, case-insensitively, and the listening port): its state and ack offset.
pub fn find_replica(node: &NodeInfo, host: &str, port: u16) -> Option<(&'static str, u64)> {
    node.repl.with_status(|s| {
        s.replicas.iter().find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == port).map(|r| (r.state, r.ack_offset))
    })
}

/// Redis's `updateFailoverStatus`, every few milliseconds while waiting for the sync.
async fn drive(node: Arc<NodeInfo>, gen: u64) {
    let mine = || state() == State::WaitingForSync && GEN.load(Ordering::Acquire) == gen;
    while mine() {
        // The offset covers every write accepted before the pause.
        node.repl.settled().await;
        if !mine() {
            return;
        }
        let Some(plan) = with_plan(|p| p.clone()) else { return };
        let now = crate::storage::now_ms();
        if plan.end_ms > 0 && plan.end_ms <= now {
            if plan.force {
                if let Some((h, p)) = plan.target {
                    tracing::info!("FAILOVER to {}:{} time out exceeded, failing over.", h, p);
                    hand_over(&node, &h, p);
                    return;
                }
            }
            abort(&node, "Replica never caught up before timeout");
            return;
        }
        let offset = node.repl.offset();
        let synced = match &plan.target {
            Some((h, p)) => find_replica(&node, h, *p).is_some_and(|(_, ack)| ack == offset).then(|| (h.clone(), *p)),
            None => node
                .repl
                .with_status(|s| s.replicas.iter().find(|r| r.ack_offset == offset).map(|r| (r.ip.clone(), r.port))),
        };
        if let Some((h, p)) = synced {
            with_plan(|pl| {
                if let Some(pl) = pl.as_mut() {
                    pl.target = Some((h.clone(), p));
                }
            });
            tracing::info!("Failover target {}:{} is synced, failing over.", h, p);
            hand_over(&node, &h, p);
            return;
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// Follows the target: the link's PSYNC will carry `FAILOVER`.
fn hand_over(node: &NodeInfo, host: &str, port: u16) {
    set_state(State::InProgress);
    node.repl.follow(host, port);
}
