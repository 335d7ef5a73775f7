//! The append-only file: Redis 7.0's multi-part AOF (a manifest, one base file and incr files
//! in `dir/<appenddirname>/`), kept from the merged change stream of the shards.
//!
//! Who does what:
//! - the control core merges the feed (`runtime::repl_master`) and hands every item to
//!   `runtime::aof`, which encodes it a second time in Redis's AOF form (its own SELECT
//!   tracking, MULTI/EXEC for atomic units, optional `#TS:` annotations) and gives the bytes, in
//!   batches, to the writer ([`writer`]: under `no`/`everysec` an idle writer's bytes are
//!   written by the control core itself, else by the writer thread);
//! - the writer thread appends them to the current incr file and fsyncs by `appendfsync`;
//!   after each batch it publishes, per shard, how many of the shard's feed pushes are on
//!   disk ([`sync`]);
//! - with `appendfsync always` a connection waits, before writing its replies, until every
//!   push made before the wait is durable (group commit: one fdatasync covers every write
//!   merged before it, from every shard);
//! - BGREWRITEAOF takes a forkless snapshot (`runtime::snapshot::SnapshotStream`) on shard 0;
//!   the control core switches to a new incr file at the snapshot's feed mark, so the new base
//!   plus the new incr file hold every write; then the manifest is swapped.
//! - [`load`] reads the AOF at start-up; [`manifest`] is the manifest's format.
//!
//! Invariant: an incr file never holds a write that is also in the base listed before it,
//! and every write after the base's point in time is in an incr file listed after it.

pub mod load;
pub mod manifest;
pub mod padding;
pub mod rewrite;
pub mod sync;
pub mod writer;

use crate::config::Config;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fdatasync before any reply of a write is sent.
    Always,
    /// fdatasync about once a second, off the shards.
    Everysec,
    /// Leave it to the OS.
    No,
}

/// Where the AOF lives (relative to `dir`, where the process runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `appenddirname`.
    pub dir: PathBuf,
    /// `appendfilename`: the prefix of every file name.
    pub prefix: String,
}

impl Paths {
    /// A file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The manifest's name.
    pub fn manifest_name(&self) -> String {
        format!("{}.manifest", self.prefix)
    }

    /// The manifest's path.
    pub fn manifest(&self) -> PathBuf {
        self.file(&self.manifest_name())
    }
}

/// The AOF directives.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `appendonly`.
    pub enabled: bool,
    /// `appendfsync`.
    pub fsync: Fsync,
    /// `appenddirname` / `appendfilename`.
    pub paths: Paths,
    /// `aof-load-truncated`.
    pub load_truncated: bool,
    /// `aof-timestamp-enabled`.
    pub timestamps: bool,
    /// `aof-disable-auto-gc`.
    pub no_gc: bool,
    /// `auto-aof-rewrite-percentage`.
    pub auto_pct: u64,
    /// `auto-aof-rewrite-min-size`.
    pub auto_min: u64,
    /// `no-appendfsync-on-rewrite`.
    pub no_fsync_on_rewrite: bool,
    /// `aof-use-rdb-preamble`: bases are RDB files (`.base.rdb`), else commands (`.base.aof`).
    pub rdb_preamble: bool,
    /// `aof-rewrite-incremental-fsync`: a base being written is flushed every 4 MiB.
    pub incremental_fsync: bool,
    /// `aof-preallocate` (slotcore's): room written ahead under `always` (`padding`).
    pub preallocate: bool,
}

impl Settings {
    /// Reads them from the config.
    pub fn from_config(cfg: &Config) -> Settings {
        let yes = |k: &str, d: bool| cfg.get(k).map_or(d, |v| v == "yes");
        let num = |k: &str, d: u64| cfg.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Settings {
            enabled: yes("appendonly", false),
            fsync: match cfg.get("appendfsync") {
                Some("always") => Fsync::Always,
                Some("no") => Fsync::No,
                _ => Fsync::Everysec,
            },
            paths: Paths {
                dir: PathBuf::from(cfg.get("appenddirname").unwrap_or("appendonlydir")),
                prefix: cfg.get("appendfilename").unwrap_or("appendonly.aof").to_string(),
            },
            load_truncated: yes("aof-load-truncated", true),
            timestamps: yes("aof-timestamp-enabled", false),
            no_gc: yes("aof-disable-auto-gc", false),
            auto_pct: num("auto-aof-rewrite-percentage", 100),
            auto_min: cfg
                .get("auto-aof-rewrite-min-size")
                .and_then(crate::config::registry::parse_memory)
                .unwrap_or(64 << 20),
            no_fsync_on_rewrite: yes("no-appendfsync-on-rewrite", false),
            rdb_preamble: yes("aof-use-rdb-preamble", true),
            incremental_fsync: yes("aof-rewrite-incremental-fsync", true),
            preallocate: yes("aof-preallocate", true),
        }
    }
}

/// Node-wide AOF status for INFO and the commands (written by the control core and the
/// writer thread).
pub mod status {
    use super::*;

    /// `aof_state != AOF_OFF`.
    pub static ENABLED: AtomicBool = AtomicBool::new(false);
    /// A rewrite is running.
    pub static REWRITING: AtomicBool = AtomicBool::new(false);
    /// A rewrite waits for another snapshot to end.
    pub static SCHEDULED: AtomicBool = AtomicBool::new(false);
    /// Unix seconds the running rewrite started.
    pub static REWRITE_START: AtomicU64 = AtomicU64::new(0);
    /// Seconds the last rewrite took (-1: none yet).
    pub static LAST_REWRITE_SECS: AtomicI64 = AtomicI64::new(-1);
    /// The last rewrite succeeded.
    pub static LAST_REWRITE_OK: AtomicBool = AtomicBool::new(true);
    /// Rewrites done.
    pub static REWRITES: AtomicU64 = AtomicU64::new(0);
    /// Failed rewrites in a row.
    pub static REWRITE_FAILURES: AtomicU64 = AtomicU64::new(0);
    /// Size of the base plus incr files.
    pub static CURRENT_SIZE: AtomicU64 = AtomicU64::new(0);
    /// Size of the AOF at the last rewrite (or start).
    pub static BASE_SIZE: AtomicU64 = AtomicU64::new(0);
    /// Bytes encoded and not written yet.
    pub static BUFFER_LEN: AtomicU64 = AtomicU64::new(0);
    /// Times a write waited for a slow fsync (`aof_delayed_fsync`).
    pub static DELAYED_FSYNC: AtomicU64 = AtomicU64::new(0);
    /// A fsync is running on the writer thread.
    pub static FSYNC_PENDING: AtomicU64 = AtomicU64::new(0);
}

/// Unix seconds now.
pub fn now_s() -> u64 {
    crate::storage::now_ms() / 1000
}

/// The AOF lines of INFO persistence, from `aof_enabled` on, in Redis's order.
pub fn info_fields() -> String {
    use status::*;
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let b = |a: &AtomicBool| a.load(Ordering::Relaxed) as u8;
    let rewriting = REWRITING.load(Ordering::Relaxed);
    let current = if rewriting { now_s().saturating_sub(l(&REWRITE_START)) as i64 } else { -1 };
    let mut s = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        b(&ENABLED),
        rewriting as u8,
        b(&SCHEDULED),
        LAST_REWRITE_SECS.load(Ordering::Relaxed),
        current,
        if LAST_REWRITE_OK.load(Ordering::Relaxed) { "ok" } else { "err" },
        l(&REWRITES),
        l(&REWRITE_FAILURES),
        if sync::write_ok() { "ok" } else { "err" },
    );
    if ENABLED.load(Ordering::Relaxed) {
        s.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:{}\r\naof_delayed_fsync:{}\r\n",
            l(&CURRENT_SIZE),
            l(&BASE_SIZE),
            b(&SCHEDULED),
            l(&BUFFER_LEN),
            l(&FSYNC_PENDING),
            l(&DELAYED_FSYNC)
        ));
    }
    s
}
