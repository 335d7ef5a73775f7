//! SHUTDOWN's grace period for replicas (Redis 7.0's `shutdown-timeout`): unless NOW is given,
//! a master with replicas that have not acknowledged its whole stream pauses client writes and
//! waits, up to `shutdown-timeout` seconds (0 = never wait), for every replica's ACK offset to
//! reach its own, then logs which replicas lag and lets the shutdown go on (save, exit). With
//! the replicas caught up, the cluster's failover of the departed master loses nothing.

use crate::cmd::NodeInfo;
use std::time::Duration;

/// True when every attached replica acknowledged this node's whole stream.
fn in_sync(node: &NodeInfo) -> bool {
    let off = node.repl.offset();
    node.repl.with_status(|s| s.replicas.iter().all(|r| r.ack_offset == off))
}

/// Waits for lagging replicas before a shutdown (`now`: SHUTDOWN NOW skips the wait). Writes
/// stay paused afterwards: the process is about to exit (a SHUTDOWN that fails unpauses).
pub async fn wait_for_replicas(node: &NodeInfo, now: bool) {
    let secs = node.config().get("shutdown-timeout").and_then(|v| v.parse::<u64>().ok()).unwrap_or(10);
    if now || secs == 0 || in_sync(node) {
        return;
    }
    crate::pause::pause(crate::pause::Purpose::Shutdown, u64::MAX, crate::pause::Kind::Write);
    tracing::info!("Waiting for replicas before shutting down.");
    let deadline = crate::storage::now_ms() + secs * 1000;
    while crate::storage::now_ms() < deadline && !in_sync(node) {
        glommio::timer::sleep(Duration::from_millis(10)).await;
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
}
