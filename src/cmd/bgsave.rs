//! BGSAVE, the save points and the node's background-save status (`rdb.c rdbSaveBackground`,
//! `bgsaveCommand`, `serverCron`'s save-point check, `writeCommandsDeniedByDiskError`).
//!
//! No fork: a BGSAVE starts a point-in-time snapshot on every shard at once (every shard held,
//! so no transaction straddles the start; see `storage::snap` for the pre-write hook) and
//! replies only then; the runtime's snapshot driver (`runtime::snapshot`) then pulls the
//! shards' RDB chunks step by step between client work and writes them to a temp file, fsync,
//! rename. This module owns the parts that do not await: the command, the per-shard functions
//! the driver runs ([`begin_shard`], [`step_shard`], [`end_shard`]), the status INFO and
//! MISCONF read, and the save-point rule.
//!
//! Invariants: at most one snapshot runs at a time (claimed with [`claim`], released by
//! [`finished`]); while a save point or BGSAVE failed and `stop-writes-on-bgsave-error` is
//! on, [`writes_denied`] is true until a save succeeds.

use super::ctx::{ClientCtx, ShardState};
use super::spec::Plan;
use crate::config::Config;
use crate::persist::snapshot::{self, Plan as SnapPlan};
use crate::protocol::Reply;
use bytes::Bytes;
use futures_channel::mpsc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Redis's MISCONF error (without the leading `-`).
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
/// BGSAVE (or SAVE) while a background save runs.
pub const IN_PROGRESS_ERR: &str = "ERR Background save already in progress";
/// Seconds to wait after a failed BGSAVE before a save point may try again
/// (`CONFIG_BGSAVE_RETRY_DELAY`).
pub const RETRY_DELAY_S: u64 = 5;

/// The id of the running snapshot (0 = none).
static RUNNING: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// A BGSAVE (to the RDB file) runs (INFO `rdb_bgsave_in_progress`).
static BGSAVE: AtomicBool = AtomicBool::new(false);
static START_S: AtomicU64 = AtomicU64::new(0);
static LAST_OK: AtomicBool = AtomicBool::new(true);
static LAST_TIME_S: AtomicI64 = AtomicI64::new(-1);
static LAST_TRY_S: AtomicU64 = AtomicU64::new(0);
/// A full sync's diskless snapshot runs since these Unix seconds (0 = none): INFO counts it in
/// `rdb_bgsave_in_progress`, as Redis counts its RDB child writing to the replicas' sockets.
static SYNC_START_S: AtomicU64 = AtomicU64::new(0);
/// BGSAVE SCHEDULE asked for a save the cron starts.
static SCHEDULED: AtomicBool = AtomicBool::new(false);
/// SHUTDOWN asked the running BGSAVE to stop (Redis kills its child).
static KILLED: AtomicBool = AtomicBool::new(false);
/// Writes are refused with MISCONF (kept up to date by [`refresh_denied`]).
static DENIED: AtomicBool = AtomicBool::new(false);

/// Snapshots begun by BGSAVE, for the runtime's driver.
struct Jobs {
    tx: mpsc::UnboundedSender<Result<SnapPlan, String>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Result<SnapPlan, String>>>>,
}

fn jobs() -> &'static Jobs {
    static JOBS: OnceLock<Jobs> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::unbounded();
        Jobs { tx, rx: Mutex::new(Some(rx)) }
    })
}

/// The begun snapshots to write to the RDB file (taken once, by the driver).
pub fn take_jobs() -> Option<mpsc::UnboundedReceiver<Result<SnapPlan, String>>> {
    match jobs().rx.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    }
}

fn now_s() -> u64 {
    crate::storage::now_ms() / 1000
}

/// Claims the node's one snapshot; None when one runs already.
pub fn claim() -> Option<u64> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    RUNNING.compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| id)
}

/// A fresh snapshot id (unique across BGSAVEs and full syncs, so feed marks never mix).
pub fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Claims the node's one snapshot under an id from [`new_id`]; false when one runs already.
pub fn claim_as(id: u64) -> bool {
    RUNNING.compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// The running snapshot's id (0 = none).
pub fn running() -> u64 {
    RUNNING.load(Ordering::Acquire)
}

/// Releases the claim of snapshot `id` (a snapshot that did not become a BGSAVE).
pub fn release(id: u64) {
    let _ = RUNNING.compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire);
}

/// True while a BGSAVE runs.
pub fn in_progress() -> bool {
    BGSAVE.load(Ordering::Acquire)
}

/// A full sync's diskless snapshot runs while the returned guard lives.
pub fn sync_snapshot_running() -> SyncSnapshot {
    SYNC_START_S.store(now_s().max(1), Ordering::Release);
    SyncSnapshot(())
}

/// See [`sync_snapshot_running`].
pub struct SyncSnapshot(());

impl Drop for SyncSnapshot {
    fn drop(&mut self) {
        SYNC_START_S.store(0, Ordering::Release);
    }
}

/// Marks a claimed snapshot as the BGSAVE (Redis's `rdbSaveBackground` bookkeeping).
pub fn mark_started() {
    SAVES.fetch_add(1, Ordering::Relaxed);
    STARTED.fetch_add(1, Ordering::Relaxed);
    LAST_TRY_S.store(now_s(), Ordering::Relaxed);
    START_S.store(now_s(), Ordering::Relaxed);
    KILLED.store(false, Ordering::Release);
    BGSAVE.store(true, Ordering::Release);
}

/// Counts a save (SAVE or BGSAVE; INFO `rdb_saves`).
pub fn count_save() {
    SAVES.fetch_add(1, Ordering::Relaxed);
}
static SAVES: AtomicU64 = AtomicU64::new(0);
/// BGSAVEs started (part of INFO `total_forks`).
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Background jobs Redis would fork for: BGSAVEs started and AOF rewrites done (INFO
/// `total_forks`; slotcore writes them from a thread without forking).
pub fn background_jobs() -> u64 {
    STARTED.load(Ordering::Relaxed) + crate::aof::status::REWRITES.load(Ordering::Relaxed)
}

/// How a BGSAVE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file was written.
    Saved,
    /// Writing it failed.
    Failed,
    /// SHUTDOWN stopped it (not an error, as Redis's SIGUSR1 kill).
    Killed,
}

/// The driver's end of a BGSAVE: logs as Redis's parent does, updates the status and
/// releases the snapshot.
pub fn finished(outcome: Outcome, cfg: &Config) {
    match outcome {
        Outcome::Saved => {
            tracing::info!("Background saving terminated with success");
            super::save::mark_saved();
            LAST_OK.store(true, Ordering::Relaxed);
        }
        Outcome::Failed => {
            tracing::warn!("Background saving error");
            LAST_OK.store(false, Ordering::Relaxed);
        }
        Outcome::Killed => tracing::warn!("Background saving terminated by signal 10"),
    }
    LAST_TIME_S.store(now_s().saturating_sub(START_S.load(Ordering::Relaxed)) as i64, Ordering::Relaxed);
    BGSAVE.store(false, Ordering::Release);
    KILLED.store(false, Ordering::Release);
    RUNNING.store(0, Ordering::Release);
    refresh_denied(cfg);
}

/// A synchronous save succeeded: the last save status is ok again (as Redis's `rdbSave`).
pub fn sync_saved(cfg: &Config) {
    LAST_OK.store(true, Ordering::Relaxed);
    refresh_denied(cfg);
}

/// SHUTDOWN: asks the running BGSAVE to stop; true if one runs (the caller waits for
/// [`in_progress`] to turn false before it saves).
pub fn kill() -> bool {
    if !in_progress() {
        return false;
    }
    tracing::warn!("There is a child saving an .rdb. Killing it!");
    KILLED.store(true, Ordering::Release);
    crate::runtime::save_child::kill_running();
    true
}

/// Stops the running BGSAVE, if any, without SHUTDOWN's log line (Redis's `killRDBChild`):
/// FLUSHALL with save points, or a full sync's save to disk that no replica waits for any
/// more while no save point is set. The driver then ends it as killed and removes its temp
/// file.
pub fn stop_running() {
    if in_progress() {
        KILLED.store(true, Ordering::Release);
        crate::runtime::save_child::kill_running();
    }
}

/// True when SHUTDOWN asked the running BGSAVE to stop.
pub fn killed() -> bool {
    KILLED.load(Ordering::Acquire)
}

/// Recomputes [`writes_denied`] (after a save, and when the configuration may have changed).
pub fn refresh_denied(cfg: &Config) {
    let deny = !LAST_OK.load(Ordering::Relaxed)
        && cfg.get("stop-writes-on-bgsave-error") != Some("no")
        && super::save::has_save_points(cfg);
    DENIED.store(deny, Ordering::Relaxed);
}

/// True when write commands (and PING) must be refused with [`MISCONF`] (one atomic load).
#[inline]
pub fn writes_denied() -> bool {
    DENIED.load(Ordering::Relaxed)
}

/// The background-save lines of INFO persistence after `rdb_last_save_time`'s neighbours, as
/// Redis prints them: (`rdb_bgsave_in_progress`, `rdb_last_bgsave_status`,
/// `rdb_last_bgsave_time_sec`, `rdb_current_bgsave_time_sec`, `rdb_saves`).
pub fn info_status() -> (u8, &'static str, i64, i64, u64) {
    let sync_start = SYNC_START_S.load(Ordering::Acquire);
    let current = if in_progress() {
        now_s().saturating_sub(START_S.load(Ordering::Relaxed)) as i64
    } else if sync_start != 0 {
        now_s().saturating_sub(sync_start) as i64
    } else {
        -1
    };
    (
        (current >= 0) as u8,
        if LAST_OK.load(Ordering::Relaxed) { "ok" } else { "err" },
        LAST_TIME_S.load(Ordering::Relaxed),
        current,
        SAVES.load(Ordering::Relaxed),
    )
}

// ---- the command --------------------------------------------------------------------------

/// BGSAVE [SCHEDULE].
pub fn bgsave(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 2 || (args.len() == 2 && !args[1].eq_ignore_ascii_case(b"schedule")) {
        return Plan::Reply(Reply::err(super::errors::SYNTAX));
    }
    if in_progress() || SYNC_START_S.load(Ordering::Acquire) != 0 {
        return Plan::Reply(Reply::err(IN_PROGRESS_ERR));
    }
    // Inside EXEC (the client is still in its MULTI state while the queue runs), Redis 7.0
    // schedules the save for its cron instead of starting it.
    if ctx.client.multi.is_some() {
        SCHEDULED.store(true, Ordering::Release);
        return Plan::Reply(Reply::status("Background saving scheduled"));
    }
    let Some(_id) = claim() else {
        // Another snapshot (a replica's full sync) runs: SCHEDULE waits for it.
        if args.len() == 2 {
            SCHEDULED.store(true, Ordering::Release);
            return Plan::Reply(Reply::status("Background saving scheduled"));
        }
        return Plan::Reply(Reply::err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."));
    };
    Plan::AllShards {
        run: begin_file_shard,
        merge: Box::new(|_ctx, parts| match begun(parts) {
            Ok(()) => Reply::status("Background saving started"),
            Err(e) => e,
        }),
    }
}

/// After [`begin_shard`] ran on every shard (in shard order) for the claimed snapshot: hands
/// the snapshot to the driver as a BGSAVE.
pub fn begun(parts: Vec<Reply>) -> Result<(), Reply> {
    let plan = plan_of(running(), &parts);
    mark_started();
    // The save child starts now, as Redis forks inside BGSAVE: it exists when the reply goes out.
    let child =
        if plan.is_ok() { crate::runtime::save_child::prepare(&crate::runtime::snapshot::temp_path()) } else { None };
    match child {
        Some(pid) => tracing::info!("Background saving started by pid {}", pid),
        None => tracing::info!("Background saving started"),
    }
    let failed = plan.is_err();
    let _ = jobs().tx.unbounded_send(plan.map_err(|e| match e {
        Reply::Error(t) => t.to_string(),
        _ => "bad snapshot report".to_string(),
    }));
    if failed {
        return Err(Reply::err("ERR"));
    }
    Ok(())
}

/// The merged reports of [`begin_shard`], or the first error.
pub fn plan_of(id: u64, parts: &[Reply]) -> Result<SnapPlan, Reply> {
    let mut plan = SnapPlan { id, ..Default::default() };
    for p in parts {
        let Reply::Array(v) = p else { return Err(p.clone()) };
        let (Some(Reply::Int(dirty)), Some(Reply::Array(dbs))) = (v.first(), v.get(1)) else {
            return Err(Reply::err("ERR internal error: bad snapshot report"));
        };
        let sizes: Vec<(u64, u64)> = dbs
            .chunks(2)
            .map(|c| match c {
                [Reply::Int(n), Reply::Int(x)] => (*n as u64, *x as u64),
                _ => (0, 0),
            })
            .collect();
        plan.add_shard(*dirty as u64, &sizes);
        if let Some(info) = v.get(2).and_then(super::save::marker_info) {
            plan.repl = Some(info);
        }
    }
    Ok(plan)
}

// ---- per-shard functions the driver runs --------------------------------------------------

/// Starts the running snapshot ([`running`]) on this shard: every database gets the pre-write
/// hook; pushes the shard's feed mark. Replies `[dirty, [keys, expires]*]`.
pub fn begin_shard(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let id = running();
    if id == 0 {
        return Reply::err("ERR internal error: no snapshot claimed");
    }
    let compress = shard.config.get("rdbcompression") != Some("no");
    let mut sizes = Vec::with_capacity(shard.ks.dbs.len() * 2);
    for (i, d) in shard.ks.dbs.iter_mut().enumerate() {
        d.snapshot_begin(id, i, compress, snapshot::encode_key);
        sizes.push(Reply::Int(d.len() as i64));
        sizes.push(Reply::Int(d.volatile_len() as i64));
    }
    // From the mark on, the shard records every change (a replica's stream starts there).
    let recording = shard.node.repl.feed.active() && !crate::replication::role::no_record();
    if shard.changes.recording() != recording {
        shard.changes.set_recording(recording);
    }
    if shard.node.repl.feed.active() {
        shard.node.repl.feed.push(crate::replication::feed::FeedItem::Mark { shard: shard.id, snapshot: id });
    }
    Reply::Array(vec![Reply::Int(shard.changes.dirty() as i64), Reply::Array(sizes)])
}

/// [`begin_shard`] for a snapshot written to the RDB file (BGSAVE, the save points): shard 0's
/// report also carries the replication position the file records (`cmd::save::save_position`),
/// taken while every shard is held, at the snapshot's point in time.
pub fn begin_file_shard(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let mut r = begin_shard(shard, db, args);
    if let (Reply::Array(v), Some(m)) = (&mut r, super::save::position_marker(shard)) {
        v.push(m);
    }
    r
}

fn num(a: Option<&Bytes>) -> Option<i64> {
    std::str::from_utf8(a?).ok()?.parse().ok()
}

/// `[id, db, budget, micros?]`: the next bytes of database `db` (its index at the start) of
/// snapshot `id` on this shard, at most about `budget` bytes or `micros` µs of work (whole
/// slots). Replies `[bytes, done, keys]` (`keys`: how many keys the step encoded).
pub fn step_shard(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let (Some(id), Some(db), Some(budget)) = (num(args.first()), num(args.get(1)), num(args.get(2))) else {
        return Reply::err("ERR internal error: bad snapshot step");
    };
    let want = Some((id as u64, db as usize));
    let Some(d) = shard.ks.dbs.iter_mut().find(|d| d.snapshot_of() == want) else {
        return Reply::err("ERR snapshot aborted: its database is gone");
    };
    let until = num(args.get(3)).map(|us| std::time::Instant::now() + std::time::Duration::from_micros(us as u64));
    let (bytes, done) = d.snapshot_step_timed(budget.max(1) as usize, until);
    // Every key saved so far, those the pre-write hook saved between steps included (the
    // stream paces `rdb-key-save-delay` by the growth of this count).
    let keys = d.snapshot_keys();
    // The shard's command count: the driver paces the steps slower while clients are active.
    let cmds = shard.stats.total_commands as i64;
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(bytes)),
        Reply::Int(done as i64),
        Reply::Int(keys as i64),
        Reply::Int(cmds),
    ])
}

/// `[id, dirty]`: ends snapshot `id` on this shard; a `dirty` of 0 or more (the shard's
/// counter at the start) marks those changes as saved.
pub fn end_shard(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let id = num(args.first()).unwrap_or(0) as u64;
    for d in shard.ks.dbs.iter_mut().filter(|d| d.snapshot_of().is_some_and(|s| s.0 == id)) {
        d.snapshot_end();
    }
    if let Some(dirty) = num(args.get(1)).filter(|&d| d >= 0) {
        shard.changes.saved(dirty as u64);
    }
    Reply::Ok
}

/// This shard's changes since the last save.
pub fn since_save_shard(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Int(shard.changes.since_save() as i64)
}

/// Counts every change so far as saved (`server.dirty = 0` after DEBUG LOADAOF).
pub fn forget_changes_shard(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let dirty = shard.changes.dirty();
    shard.changes.saved(dirty);
    Reply::Ok
}

// ---- save points ----------------------------------------------------------------------------

/// The `save` setting's (seconds, changes) pairs.
pub fn save_points(cfg: &Config) -> Vec<(u64, u64)> {
    let w: Vec<u64> = cfg.get("save").unwrap_or("").split_whitespace().filter_map(|x| x.parse().ok()).collect();
    w.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

/// Redis's cron rule: the first point with at least `changes` changes and more than `seconds`
/// since the last successful save, unless the last BGSAVE failed less than
/// [`RETRY_DELAY_S`] ago.
pub fn due(
    points: &[(u64, u64)],
    dirty: u64,
    now_s: u64,
    last_save_s: u64,
    last_try_s: u64,
    last_ok: bool,
) -> Option<(u64, u64)> {
    let retry_ok = last_ok || now_s.saturating_sub(last_try_s) > RETRY_DELAY_S;
    points
        .iter()
        .copied()
        .find(|&(secs, changes)| dirty >= changes && now_s.saturating_sub(last_save_s) > secs && retry_ok)
}

/// What the cron should start now, given the node's changes since the last save: a point
/// that is due, or a scheduled BGSAVE (`(0, 0)`).
pub fn cron_check(cfg: &Config, dirty: u64, start_s: u64) -> Option<(u64, u64)> {
    refresh_denied(cfg);
    if in_progress() || running() != 0 {
        return None;
    }
    let (now, last_try, ok) = (now_s(), LAST_TRY_S.load(Ordering::Relaxed), LAST_OK.load(Ordering::Relaxed));
    if SCHEDULED.load(Ordering::Acquire) && (ok || now.saturating_sub(last_try) > RETRY_DELAY_S) {
        SCHEDULED.store(false, Ordering::Release);
        return Some((0, 0));
    }
    due(&save_points(cfg), dirty, now, super::save::last_save(start_s), last_try, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_point_rule_is_redis_s() {
        let p = [(3600, 1), (300, 100), (60, 10000)];
        // Nothing changed: never.
        assert_eq!(due(&p, 0, 10_000, 0, 0, true), None);
        // One change, an hour and a second after the last save.
        assert_eq!(due(&p, 1, 3601, 0, 0, true), Some((3600, 1)));
        assert_eq!(due(&p, 1, 3600, 0, 0, true), None);
        assert_eq!(due(&p, 100, 301, 0, 0, true), Some((300, 100)));
        // After a failed BGSAVE, wait more than 5 s from its start.
        assert_eq!(due(&[(1, 1)], 5, 100, 0, 97, false), None);
        assert_eq!(due(&[(1, 1)], 5, 103, 0, 97, false), Some((1, 1)));
    }

    #[test]
    fn reports_merge_into_a_plan() {
        let part = |dirty: i64, sizes: &[i64]| {
            Reply::Array(vec![Reply::Int(dirty), Reply::Array(sizes.iter().map(|&n| Reply::Int(n)).collect())])
        };
        let plan = plan_of(9, &[part(4, &[10, 2, 0, 0]), part(6, &[5, 0, 1, 1])]).unwrap();
        assert_eq!((plan.id, plan.dbs.clone(), plan.dirty.clone()), (9, vec![(15, 2), (1, 1)], vec![4, 6]));
        assert!(plan_of(9, &[Reply::err("ERR x")]).is_err());
    }
}
