//! The dataset's load at start-up (the RDB file, or the AOF with `appendonly yes`) while the
//! listeners already answer, as Redis serves events during `loadDataFromDisk`: clients get
//! `-LOADING` for every command without the `loading` flag (INFO, CONFIG, CLIENT, SHUTDOWN...
//! run), INFO persistence shows `loading:1` with the load's progress, and SHUTDOWN or SIGTERM
//! meanwhile exit without saving (a save would overwrite the file with half of it).
//!
//! The file is read and parsed on a thread of its own; the shards take their keys when it is
//! done and then pass their usual start-up (the AOF's replay, the cluster's slot claims). What
//! is no larger than `loading-process-events-interval-bytes` loads before any client is
//! accepted, as Redis handles no event before that many bytes are read.

use super::start_flag::StartFlag;
use crate::cluster::Cluster;
use crate::cmd::ctx::NodeInfo;
use crate::config::Config;
use crate::persist::file::Record;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Set when the loaded records are in place for the shards to take.
static DONE: StartFlag = StartFlag::new();
/// True while a load runs beside the listeners (the shards accept before it is done).
static BACKGROUND: AtomicBool = AtomicBool::new(false);
/// Redis's `loading_start_time` (unix seconds), `loading_total_bytes`, `loading_loaded_bytes`.
static START_S: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static DONE_BYTES: AtomicU64 = AtomicU64::new(0);

/// The loaded records, shared by the shards (each takes the keys of its slots).
pub type Records = Arc<Mutex<Vec<Record>>>;

/// `loading-process-events-interval-bytes`: Redis's loader serves clients once per this many
/// bytes read, so a load no bigger is never seen by them.
pub fn events_interval(cfg: &Config) -> usize {
    cfg.get("loading-process-events-interval-bytes").and_then(|v| v.parse().ok()).unwrap_or(2 * 1024 * 1024)
}

/// Starts the load: returns the records' holder, filled now for a small file, or later by the
/// loader thread (`loaded().await` tells the shards when). Errors are fatal, as in Redis.
pub fn begin(cfg: &Arc<Config>, node: &Arc<NodeInfo>) -> Result<Records, String> {
    let records: Records = Default::default();
    let size = size_to_load(cfg);
    // The progress fields are set before `loading:1` shows (INFO could otherwise show a load
    // of 0 bytes until the loader thread starts, as a loaded test run did).
    START_S.store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
    TOTAL.store(size, Ordering::Relaxed);
    if size <= events_interval(cfg) as u64 {
        let loaded = load(cfg, node, size)?;
        *lock(&records) = loaded;
        DONE.set();
        return Ok(records);
    }
    BACKGROUND.store(true, Ordering::Release);
    crate::replication::role::set_loading(true);
    let (cfg, out, node) = (cfg.clone(), records.clone(), node.clone());
    std::thread::Builder::new()
        .name("slotcore-load".into())
        .spawn(move || match load(&cfg, &node, size) {
            Ok(loaded) => {
                *lock(&out) = loaded;
                DONE.set();
            }
            Err(e) => {
                crate::process::log_fatal(&e);
                crate::process::shutdown_and_exit(1);
            }
        })
        .map_err(|e| format!("starting the loader thread: {e}"))?;
    Ok(records)
}

/// Waits until the loaded records are in place.
pub async fn loaded() {
    DONE.wait().await
}

/// True when the shards accept clients while the load runs.
pub fn in_background() -> bool {
    BACKGROUND.load(Ordering::Acquire)
}

/// Called once every shard has taken its keys and passed its start-up: the load is over.
pub fn finished() {
    if BACKGROUND.swap(false, Ordering::AcqRel) {
        crate::replication::role::set_loading(false);
    }
}

/// INFO persistence's progress lines while `loading:1` (Redis's `loading_*` fields).
pub fn info_lines() -> String {
    let (total, done) = (TOTAL.load(Ordering::Relaxed), DONE_BYTES.load(Ordering::Relaxed));
    let start = START_S.load(Ordering::Relaxed);
    let perc = if total > 0 { done as f64 / total as f64 * 100.0 } else { 0.0 };
    let remaining = total.saturating_sub(done).max(1);
    let elapsed = (crate::storage::now_ms() / 1000).saturating_sub(start);
    let eta = if elapsed == 0 { 1 } else { elapsed * remaining / (done + 1) };
    format!(
        "loading_start_time:{start}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{done}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n"
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes the load will read: the RDB file, or every file of the AOF (its directory and a 6.x
/// single file).
fn size_to_load(cfg: &Config) -> u64 {
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let settings = crate::aof::Settings::from_config(cfg);
    if !settings.enabled {
        return len(&crate::cmd::save::rdb_path(cfg));
    }
    let paths = &settings.paths;
    let dir: u64 = std::fs::read_dir(&paths.dir)
        .map(|entries| entries.flatten().map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum())
        .unwrap_or(0);
    dir + len(std::path::Path::new(&paths.prefix))
}

/// The load itself (RDB or AOF), then the cluster's claims of the loaded keys' slots. A node
/// that starts as a master continues the replication history its RDB file recorded.
fn load(cfg: &Config, node: &NodeInfo, size: u64) -> Result<Vec<Record>, String> {
    let cluster = node.cluster.as_deref();
    let settings = crate::aof::Settings::from_config(cfg);
    let master = starts_as_master(cfg, cluster);
    if !master {
        // A replica expires nothing itself from the start (its master's DELs do), not only
        // once its link is set up: the keys its RDB or AOF brings stay, as Redis's.
        crate::storage::set_replica_expiry(true);
    }
    let records = if settings.enabled {
        let mut l = match crate::aof::load::load_at_startup(&settings, cfg.databases) {
            Ok(l) => l,
            Err(e) => {
                // As Redis: the reason is the last line of the log, then exit(1).
                tracing::warn!("{}", e);
                std::process::exit(1)
            }
        };
        let records = std::mem::take(&mut l.records);
        if let Some(c) = cluster {
            c.change(|st| crate::cluster::data_check::claim_before_replay(st, &records, &l.cmds))?;
        }
        super::aof::stash(l);
        records
    } else {
        let (records, expired) = crate::cmd::save::load_at_startup(cfg, master)?;
        if master {
            if let Some(info) = crate::replication::role::take_loaded_info() {
                let unlink = cfg.get("lazyfree-lazy-expire") == Some("yes");
                crate::replication::master::restart::resume_as_master(&node.repl, info, &expired, unlink);
            }
        }
        records
    };
    key_load_delay(cfg, &records, size);
    DONE_BYTES.store(size, Ordering::Relaxed);
    if let Some(c) = cluster.filter(|_| !settings.enabled) {
        c.change(|st| crate::cluster::data_check::claim_slots_with_keys(st, &records))?;
    }
    Ok(records)
}

/// Whether the node starts as a master: no `replicaof` (standalone), or a master in its
/// nodes.conf (cluster).
fn starts_as_master(cfg: &Config, cluster: Option<&Cluster>) -> bool {
    match cluster {
        Some(c) => c.with(|st| st.me().is_master()),
        None => cfg.get("replicaof").is_none_or(|v| v.trim().is_empty()),
    }
}

/// `key-load-delay` (a testing aid, as Redis's `debugDelay` after each loaded key): the keys
/// are parsed already, so the delay runs after them, moving the progress figures as it goes.
fn key_load_delay(cfg: &Config, records: &[Record], size: u64) {
    let delay: i64 = cfg.get("key-load-delay").and_then(|v| v.parse().ok()).unwrap_or(0);
    if delay == 0 || records.is_empty() {
        return;
    }
    let n = records.len() as u64;
    for i in 0..n {
        crate::replication::load::key_load_delay(delay);
        if i % 1024 == 0 {
            DONE_BYTES.store(size * i / n, Ordering::Relaxed);
        }
    }
}
