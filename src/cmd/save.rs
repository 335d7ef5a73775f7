//! SAVE and LASTSAVE, and loading the RDB file at start-up (`rdb.c rdbSave` / `rdbLoad`).
//!
//! SAVE holds every shard at once (a [`Plan::AllShards`]), so the snapshot is point-in-time
//! consistent: each shard serializes its keys per database, and the home shard concatenates
//! them into one RDB v10 file written atomically as `dir/dbfilename` (the process runs in
//! `dir`). Like Redis's SAVE, it blocks the node while it runs.

use super::ctx::{ClientCtx, ShardState};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::config::Config;
use crate::persist::{disk, file};
use crate::protocol::Reply;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The SAVE family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, "@admin @slow @dangerous", Keys::None, Exec::Node(super::bgsave::bgsave)),
    spec("save", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, "@admin @slow @dangerous", Keys::None, Exec::Node(save)),
];

/// Unix seconds of the last successful save (0 = none yet).
static LAST_SAVE: AtomicU64 = AtomicU64::new(0);
/// Keys loaded / dropped as expired by the start-up load.
static LOAD_KEYS_LOADED: AtomicU64 = AtomicU64::new(0);
static LOAD_KEYS_EXPIRED: AtomicU64 = AtomicU64::new(0);

/// The RDB lines of INFO persistence from `rdb_bgsave_in_progress` on, in Redis's order
/// (`rdb_changes_since_last_save` comes before them).
pub fn info_rdb_fields(start_s: u64) -> String {
    let (running, status, last_time, current, saves) = super::bgsave::info_status();
    format!(
        "rdb_bgsave_in_progress:{running}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{status}\r\nrdb_last_bgsave_time_sec:{last_time}\r\nrdb_current_bgsave_time_sec:{current}\r\nrdb_saves:{saves}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        last_save(start_s),
        LOAD_KEYS_EXPIRED.load(Ordering::Relaxed),
        LOAD_KEYS_LOADED.load(Ordering::Relaxed),
    )
}

/// LASTSAVE's value: the last successful save, else `start_s` (as Redis, which counts the
/// start as a save).
pub fn last_save(start_s: u64) -> u64 {
    match LAST_SAVE.load(Ordering::Relaxed) {
        0 => start_s,
        t => t,
    }
}

/// Records the counts of a start-up load (INFO `rdb_last_load_keys_*`; the AOF's base too).
pub fn set_load_counts(loaded: u64, expired: u64) {
    LOAD_KEYS_LOADED.store(loaded, Ordering::Relaxed);
    LOAD_KEYS_EXPIRED.store(expired, Ordering::Relaxed);
}

/// Records a successful save now (LASTSAVE, the save points' clock).
pub fn mark_saved() {
    LAST_SAVE.store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
}

/// Whether `save` names any save point (SHUTDOWN without NOSAVE then saves, as in Redis).
pub fn has_save_points(cfg: &Config) -> bool {
    cfg.get("save").is_some_and(|s| !s.trim().is_empty())
}

pub(crate) fn rdb_path(cfg: &Config) -> PathBuf {
    PathBuf::from(cfg.get("dbfilename").unwrap_or("dump.rdb"))
}

/// One shard's keys: per database `[size, expires, bytes]`; shard 0's part of a master with a
/// backlog ends with the save's replication info ([`is_repl_marker`]).
pub fn serialize_shard(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let compress = shard.config.get("rdbcompression") != Some("no");
    // Redis's `rdbSave` resets the dirty counter (the shards are held, so nothing changes
    // until the file is written).
    let dirty = shard.changes.dirty();
    shard.changes.saved(dirty);
    let dbs = shard.ks.dbs.iter().map(|d| {
        let (mut out, mut size, mut expires) = (Vec::new(), 0i64, 0i64);
        for slot in d.nonempty_slots_from(0) {
            let Some(t) = d.slot_table(slot) else { continue };
            // Keys past their expiry are written too, as Redis's `rdbSave` does (the loader
            // drops them, counting `rdb_last_load_keys_expired`; a replica keeps them).
            for (k, e) in t.iter() {
                file::put_key(&mut out, k, &e.value, e.expire_at, compress);
                size += 1;
                expires += (e.expire_at != 0) as i64;
            }
        }
        Reply::Array(vec![Reply::Int(size), Reply::Int(expires), Reply::Bulk(Bytes::from(out))])
    });
    let mut dbs: Vec<Reply> = dbs.collect();
    // The stream position the saved data stands at (all shards are held: shard 0 asks for
    // everyone).
    if shard.id == 0 {
        if let Some(i) = save_position(shard) {
            dbs.push(repl_marker(&i));
        }
    }
    Reply::Array(dbs)
}

/// What a save whose data is cut now records about replication (Redis's
/// `rdbPopulateSaveInfo`): a master with a backlog its own stream's position (asked of the
/// control core), a replica where it is in its master's stream (the master link publishes
/// that after each run it applied). Call on shard 0 while every shard is held, so the
/// position matches the data.
pub fn save_position(shard: &ShardState) -> Option<file::ReplInfo> {
    if shard.node.repl.is_replica() {
        let i = crate::replication::role::save_info()?;
        return Some(file::ReplInfo { stream_db: i.stream_db, replid: i.replid, offset: i.offset });
    }
    crate::replication::master::restart::save_mark(&shard.node.repl)
}

/// The element [`save_position`] adds to shard 0's part of a save or a BGSAVE's report.
pub fn position_marker(shard: &ShardState) -> Option<Reply> {
    (shard.id == 0).then(|| save_position(shard)).flatten().map(|i| repl_marker(&i))
}

/// The replication info inside a shard's part (after its databases).
fn repl_marker(i: &file::ReplInfo) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from_static(REPL_MARKER)),
        Reply::Int(i.stream_db as i64),
        Reply::Bulk(Bytes::from(i.replid.clone())),
        Reply::Int(i.offset as i64),
    ])
}

const REPL_MARKER: &[u8] = b"repl-info";

/// True for the replication info element of a shard's part (not a database).
pub fn is_repl_marker(d: &Reply) -> bool {
    matches!(d, Reply::Array(v) if matches!(v.first(), Some(Reply::Bulk(b)) if b.as_ref() == REPL_MARKER))
}

/// Removes the replication info from the parts and returns it.
fn take_repl_marker(parts: &mut [Reply]) -> Option<file::ReplInfo> {
    let mut found = None;
    for p in parts.iter_mut() {
        let Reply::Array(dbs) = p else { continue };
        if let Some(pos) = dbs.iter().position(is_repl_marker) {
            found = marker_info(&dbs.remove(pos));
        }
    }
    found
}

/// Builds the file from the shards' parts. A master with a backlog records its stream
/// position, a replica where it is in its master's stream (shard 0's part carries it, see
/// [`save_position`]): either resumes from there after a restart.
fn assemble(mut parts: Vec<Reply>) -> Vec<u8> {
    let repl = take_repl_marker(&mut parts);
    crate::replication::snapshot::assemble(parts, repl.as_ref())
}

/// The replication info of a position marker ([`position_marker`]).
pub fn marker_info(d: &Reply) -> Option<file::ReplInfo> {
    let Reply::Array(v) = d else { return None };
    match &v[..] {
        [Reply::Bulk(tag), Reply::Int(db), Reply::Bulk(id), Reply::Int(off)] if tag.as_ref() == REPL_MARKER => {
            Some(file::ReplInfo {
                stream_db: *db as usize,
                replid: String::from_utf8_lossy(id).into_owned(),
                offset: *off as u64,
            })
        }
        _ => None,
    }
}

/// Writes the snapshot; logs like Redis. Replies +OK or -ERR.
pub fn write_snapshot(cfg: &Config, parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    // `rdb-key-save-delay` (a testing aid) holds a foreground save too, as in Redis.
    let delay: i64 = cfg.get("rdb-key-save-delay").and_then(|v| v.parse().ok()).unwrap_or(0);
    let pause = match delay {
        d if d > 0 => std::time::Duration::from_micros((d as u64).saturating_mul(key_count(&parts))),
        _ => std::time::Duration::ZERO,
    };
    let data = assemble(parts);
    match disk::write_atomic_paced(&rdb_path(cfg), &disk::save_temp_name(), &data, pause) {
        Ok(()) => {
            tracing::info!("DB saved on disk");
            mark_saved();
            super::bgsave::sync_saved(cfg);
            Reply::Ok
        }
        Err(e) => {
            tracing::warn!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                disk::save_temp_name(),
                cfg.dir,
                e
            );
            Reply::err("ERR")
        }
    }
}

/// Keys in the shards' serialized parts (`[size, expires, bytes]` per database).
fn key_count(parts: &[Reply]) -> u64 {
    let size = |db: &Reply| match db {
        Reply::Array(v) => match v.first() {
            Some(Reply::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    };
    parts.iter().map(|p| if let Reply::Array(dbs) = p { dbs.iter().map(size).sum() } else { 0 }).sum()
}

fn save(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    if super::bgsave::in_progress() {
        return Plan::Reply(Reply::err(super::bgsave::IN_PROGRESS_ERR));
    }
    super::bgsave::count_save();
    Plan::AllShards { run: serialize_shard, merge: Box::new(|ctx, parts| write_snapshot(&ctx.shard.config, parts)) }
}

/// What the start-up load of the RDB file gives: the keys, and the (database, key) of those
/// dropped as expired.
pub type StartupLoad = (Vec<file::Record>, Vec<(usize, Vec<u8>)>);

/// Reads and parses `dir/dbfilename` at start-up (the process already runs in `dir`); logs
/// Redis's lines. Ok(empty) when there is no file.
/// `master`: the node starts as a master, which drops the keys that expired meanwhile; a
/// replica keeps them for its master's DELs, as Redis's `iAmMaster` rule.
pub fn load_at_startup(cfg: &Config, master: bool) -> Result<StartupLoad, String> {
    let path = rdb_path(cfg);
    let start = Instant::now();
    let Some(buf) = disk::read_if_exists(&path).map_err(|e| format!("Fatal error loading the DB: {e}. Exiting."))?
    else {
        return Ok(Default::default());
    };
    let now_ms = if master { crate::storage::now_ms() } else { 0 };
    let mut loaded = file::load(&buf, now_ms, cfg.databases)?;
    crate::script::functions::install(&loaded.functions)?;
    if loaded.empty > 0 {
        tracing::warn!(
            "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
            loaded.records.len(),
            loaded.expired,
            loaded.empty
        );
    } else {
        tracing::info!("Done loading RDB, keys loaded: {}, keys expired: {}.", loaded.records.len(), loaded.expired);
    }
    tracing::info!("DB loaded from disk: {:.3} seconds", start.elapsed().as_secs_f64());
    let repl = file::repl_info_from_aux(&loaded.aux).map(|a| crate::replication::role::SaveInfo {
        stream_db: a.stream_db,
        replid: a.replid,
        offset: a.offset,
    });
    crate::replication::role::set_loaded_info(repl);
    LOAD_KEYS_LOADED.store(loaded.records.len() as u64, Ordering::Relaxed);
    LOAD_KEYS_EXPIRED.store(loaded.expired as u64, Ordering::Relaxed);
    Ok((loaded.records, std::mem::take(&mut loaded.expired_keys)))
}
