//! The shutdown sequence shared by SHUTDOWN and SIGTERM/SIGINT (Redis 7.0's
//! `prepareForShutdown` / `finishShutdown`), and its grace period for replicas
//! (`shutdown-timeout`): unless NOW is given, a master with replicas that have not acknowledged
//! its whole stream pauses client writes and waits, up to `shutdown-timeout` seconds (0 = never
//! wait), for every replica's ACK offset to reach its own, then logs which replicas lag and lets
//! the shutdown go on (save, exit). With the replicas caught up, the cluster's failover of the
//! departed master loses nothing. While it waits, INFO shows `shutdown_in_milliseconds` and
//! SHUTDOWN ABORT cancels it (the waiting SHUTDOWN callers get Redis's error).

use crate::cmd::{NodeInfo, ShutdownArgs};
use crate::protocol::Reply;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// When the running grace period ends (ms since the epoch; 0: no shutdown waits).
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);
/// Shutdowns waiting for replicas now.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// Bumped by SHUTDOWN ABORT: the waits begun before it give up.
static ABORTS: AtomicU64 = AtomicU64::new(0);

/// INFO `shutdown_in_milliseconds`: the time left while a shutdown waits for replicas.
pub fn remaining_ms() -> Option<u64> {
    match DEADLINE_MS.load(Ordering::Acquire) {
        0 => None,
        d => Some(d.saturating_sub(crate::storage::now_ms())),
    }
}

/// SHUTDOWN ABORT: cancels the shutdowns waiting for replicas; false when none waits.
pub fn abort() -> bool {
    if WAITING.load(Ordering::Acquire) == 0 {
        return false;
    }
    ABORTS.fetch_add(1, Ordering::AcqRel);
    true
}

/// The error every failed or aborted SHUTDOWN answers.
pub const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// Runs the shutdown: waits for lagging replicas, stops a BGSAVE, refuses to exit while the
/// AOF writes its first base (unless FORCE), saves when asked to or when `save` points are
/// set (`save_parts` serializes the shards), then exits. Returns only when the shutdown
/// failed or was aborted, with the reply for the caller (writes are unpaused again).
/// `client`: a SHUTDOWN command waits (INFO counts it in `blocked_clients`), not a signal.
pub async fn run<F>(node: &NodeInfo, a: ShutdownArgs, client: bool, save_parts: impl FnOnce() -> F) -> Reply
where
    F: std::future::Future<Output = Vec<Reply>>,
{
    tracing::warn!("User requested shutdown...");
    let proceed = wait_for_replicas(node, a.now, client).await;
    let failed = || {
        crate::pause::unpause(crate::pause::Purpose::Shutdown);
        Reply::err(FAILED)
    };
    if !proceed {
        return failed();
    }
    let cfg = node.config();
    crate::runtime::snapshot::kill_bgsave().await;
    // A step that failed stops the shutdown unless FORCE, with Redis's lines either way.
    let stops = |anyway: &str, cant: &str| {
        if a.force {
            tracing::warn!("{}", anyway);
            return false;
        }
        tracing::warn!("{}", cant);
        tracing::warn!("Errors trying to shut down the server. Check the logs for more information.");
        true
    };
    if crate::runtime::aof::writing_first_base()
        && stops("Writing initial AOF. Exit anyway.", "Writing initial AOF, can't exit.")
    {
        return failed();
    }
    crate::runtime::aof::close_for_shutdown();
    // Never while a dataset is loading: the file would get half of it (Redis turns every
    // shutdown then into NOSAVE).
    let loading = crate::replication::role::loading();
    if !loading && (a.save || (!a.nosave && crate::cmd::save::has_save_points(&cfg))) {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        let parts = save_parts().await;
        if crate::cmd::save::write_snapshot(&cfg, parts).is_error()
            && stops("Error trying to save the DB. Exit anyway.", "Error trying to save the DB, can't exit.")
        {
            return failed();
        }
    }
    crate::process::shutdown_and_exit(0)
}

/// True when every attached replica acknowledged this node's whole stream.
fn in_sync(node: &NodeInfo) -> bool {
    let off = node.repl.offset();
    node.repl.with_status(|s| s.replicas.iter().all(|r| r.ack_offset == off))
}

/// Waits for lagging replicas before a shutdown (`now`: SHUTDOWN NOW skips the wait); false
/// when SHUTDOWN ABORT cancelled the wait. Writes stay paused afterwards: the process is about
/// to exit (a SHUTDOWN that fails unpauses).
async fn wait_for_replicas(node: &NodeInfo, now: bool, client: bool) -> bool {
    let secs = node.config().get("shutdown-timeout").and_then(|v| v.parse::<u64>().ok()).unwrap_or(10);
    if now || secs == 0 {
        return true;
    }
    // The offset must cover the writes answered before this SHUTDOWN (Redis's offset moves
    // before each reply): a write still on its way to the control core would otherwise read
    // as acknowledged, and the node would exit before its replica had it. Meanwhile it is
    // already a waiting shutdown, as in Redis, where SHUTDOWN blocks before any later command
    // runs: INFO counts the caller in `blocked_clients` and SHUTDOWN ABORT cancels it.
    let aborts = ABORTS.load(Ordering::Acquire);
    WAITING.fetch_add(1, Ordering::AcqRel);
    if client {
        node.blocked_clients.fetch_add(1, Ordering::AcqRel);
    }
    let done_waiting = || {
        if client {
            node.blocked_clients.fetch_sub(1, Ordering::AcqRel);
        }
        if WAITING.fetch_sub(1, Ordering::AcqRel) == 1 {
            DEADLINE_MS.store(0, Ordering::Release);
        }
    };
    node.repl.settled().await;
    if in_sync(node) || ABORTS.load(Ordering::Acquire) != aborts {
        done_waiting();
        return ABORTS.load(Ordering::Acquire) == aborts;
    }
    crate::pause::pause(crate::pause::Purpose::Shutdown, u64::MAX, crate::pause::Kind::Write);
    tracing::info!("Waiting for replicas before shutting down.");
    let deadline = crate::storage::now_ms() + secs * 1000;
    // Several SHUTDOWN callers share the first one's grace period, as Redis's one sequence.
    let _ = DEADLINE_MS.compare_exchange(0, deadline, Ordering::AcqRel, Ordering::Acquire);
    let deadline = DEADLINE_MS.load(Ordering::Acquire).max(1);
    let mut aborted = false;
    while crate::storage::now_ms() < deadline && !in_sync(node) {
        if ABORTS.load(Ordering::Acquire) != aborts {
            aborted = true;
            break;
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    done_waiting();
    if aborted || ABORTS.load(Ordering::Acquire) != aborts {
        return false;
    }
    let off = node.repl.offset();
    let now_s = crate::storage::now_ms() / 1000;
    node.repl.with_status(|s| {
        let mut lagging = 0;
        for r in s.replicas.iter().filter(|r| r.ack_offset != off) {
            lagging += 1;
            let lag = if r.state == "online" { now_s.saturating_sub(r.ack_time_ms / 1000) } else { 0 };
            tracing::warn!(
                "Lagging replica {}:{} reported offset {} behind master, lag={}, state={}.",
                r.ip,
                r.port,
                off.saturating_sub(r.ack_offset),
                lag,
                r.state
            );
        }
        if !s.replicas.is_empty() {
            tracing::info!(
                "{} of {} replicas are in sync when shutting down.",
                s.replicas.len() - lagging,
                s.replicas.len()
            );
        }
    });
    true
}
