//! The AOF writer thread: appends the encoded stream to the current incr file and keeps
//! `appendfsync` (`flushAppendOnlyFile`, `aof_background_fsync`), plus the file operations
//! that must stay in order with the appends (open the next incr file, persist the manifest,
//! install a rewritten base, delete history files).
//!
//! One plain thread, so neither the shards nor the control core ever block on the disk, and a
//! second one for background fsyncs ([`Bio`], Redis's `BIO_AOF_FSYNC` job). Jobs arrive over a
//! channel; the thread takes every queued job at once, writes their bytes in one write, and
//! then:
//! - `always`: fdatasync on this thread, then publishes the durable counts (`aof::sync`),
//!   which releases the connections waiting on them: group commit (what was merged while the
//!   previous fdatasync ran shares the next one; yielding the CPU first to widen the batch
//!   halved the fdatasyncs but cost throughput on a busy machine, see bench/RESULTS.md);
//! - `everysec`: publishes at once; about once a second (and at least once after the last
//!   write) it hands a fdatasync to the background thread. Redis's postponed-write rule: while
//!   that fsync is still running, a new write is postponed (its replies are released at once,
//!   as Redis replies without waiting for the postponed write), up to two seconds; then it is
//!   written anyway and `aof_delayed_fsync` counts it. So at most about two seconds of writes
//!   are at risk if the machine dies;
//! - `no`: publishes at once, never fsyncs.
//!
//! Errors: a failed write under `always` exits the process, as Redis does (replies waiting on
//! it are never sent); otherwise the file is cut back to its last good size, the bytes are kept
//! and retried every second, and `aof_last_write_status` is err (writes get MISCONF) until a
//! retry succeeds. A failed fsync under `always` exits too; under `everysec` it is reported the
//! same way.

use super::manifest::Manifest;
use super::{status, sync, Fsync, Paths};
use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// DEBUG AOF-FLUSH-SLEEP: microseconds to sleep before each write (tests).
static FLUSH_SLEEP_US: AtomicU64 = AtomicU64::new(0);
/// DEBUG AOF-FSYNC-SLEEP: microseconds each background fsync takes longer (tests of the
/// postponed-write rule, standing for a busy disk).
static FSYNC_SLEEP_US: AtomicU64 = AtomicU64::new(0);

/// How long a write may be postponed behind a running background fsync.
const MAX_POSTPONE: Duration = Duration::from_secs(2);

/// Sets the DEBUG AOF-FLUSH-SLEEP delay.
pub fn set_flush_sleep(us: u64) {
    FLUSH_SLEEP_US.store(us, Ordering::Relaxed);
}

/// Sets the DEBUG AOF-FSYNC-SLEEP delay.
pub fn set_fsync_sleep(us: u64) {
    FSYNC_SLEEP_US.store(us, Ordering::Relaxed);
}

/// A file operation run on the writer thread in order with the appends.
pub type Op = Box<dyn FnOnce(&mut Files) + Send>;

/// What the writer thread is asked.
pub enum Job {
    /// Bytes to append, and the per-shard merged counts they complete.
    Append(Bytes, Vec<u64>),
    /// A file operation (after the bytes queued before it are written).
    Op(Op),
    /// A new fsync policy.
    Policy(Fsync),
    /// Stop: write what is queued, fsync, close, and end the thread.
    Stop(Box<dyn FnOnce() + Send>),
    /// A background fsync ended (a postponed write may go now).
    Synced,
}

/// The background fsync thread (`bio.c`'s `BIO_AOF_FSYNC` and `BIO_CLOSE_AOF`).
struct Bio {
    tx: mpsc::Sender<(Arc<File>, bool)>,
}

impl Bio {
    fn start(wake: mpsc::Sender<Job>) -> std::io::Result<Bio> {
        let (tx, rx) = mpsc::channel::<(Arc<File>, bool)>();
        std::thread::Builder::new().name("aof-fsync".into()).spawn(move || {
            while let Ok((f, counted)) = rx.recv() {
                let sleep = FSYNC_SLEEP_US.load(Ordering::Relaxed);
                if sleep > 0 && counted {
                    std::thread::sleep(Duration::from_micros(sleep));
                }
                if let Err(e) = fdatasync(&f) {
                    if counted {
                        tracing::warn!("Error syncing the AOF file: {}", e);
                        sync::set_write_error(e.to_string());
                    }
                }
                drop(f);
                if counted {
                    status::FSYNC_PENDING.fetch_sub(1, Ordering::AcqRel);
                    let _ = wake.send(Job::Synced);
                }
            }
        })?;
        Ok(Bio { tx })
    }

    /// `aof_background_fsync`: counted in `aof_pending_bio_fsync`.
    fn fsync(&self, f: Arc<File>) {
        status::FSYNC_PENDING.fetch_add(1, Ordering::AcqRel);
        if self.tx.send((f, true)).is_err() {
            status::FSYNC_PENDING.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// `aof_background_fsync_and_close`: the file closes when the fsync is done.
    fn fsync_and_close(&self, f: Arc<File>) {
        let _ = self.tx.send((f, false));
    }
}

/// True while a background fsync is queued or running (`aofFsyncInProgress`).
fn fsync_in_progress() -> bool {
    status::FSYNC_PENDING.load(Ordering::Acquire) != 0
}

/// The files the thread owns.
pub struct Files {
    /// The AOF's location.
    pub paths: Paths,
    /// The incr file appended to, and its name.
    pub file: Option<(Arc<File>, String)>,
    /// Its size (the last good length).
    pub size: u64,
    policy: Fsync,
    /// `no-appendfsync-on-rewrite` with a rewrite running: skip fsyncs.
    pub skip_fsync: bool,
    unsynced: bool,
    last_fsync: Instant,
    /// A write waits for a running background fsync since then (`aof_flush_postponed_start`).
    postponed: Option<Instant>,
    bio: Bio,
}

/// The handle the control core keeps.
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread (and its background fsync thread).
    pub fn start(paths: Paths, policy: Fsync) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let bio = Bio::start(tx.clone())?;
        let files = Files {
            paths,
            file: None,
            size: 0,
            policy,
            skip_fsync: false,
            unsynced: false,
            last_fsync: Instant::now(),
            postponed: None,
            bio,
        };
        std::thread::Builder::new().name("aof-writer".into()).spawn(move || run(files, rx))?;
        Ok(Writer { tx })
    }

    /// Queues a job (never waits).
    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}

/// Writes the manifest atomically: `temp-<name>` in the directory, fsync, rename, fsync of the
/// directory (`persistAofManifest`).
pub fn persist_manifest(paths: &Paths, m: &Manifest) -> Result<(), String> {
    let name = paths.manifest_name();
    let tmp = paths.file(&format!("temp-{name}"));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(m.to_text().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, paths.manifest())?;
        File::open(&paths.dir)?.sync_all()
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("Can't persist the AOF manifest file {name}: {e}")
    })
}

/// fdatasync(2) (`redis_fsync` on Linux).
pub fn fdatasync(f: &File) -> std::io::Result<()> {
    // SAFETY: a valid open fd owned by `f`.
    if unsafe { libc::fdatasync(f.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Files {
    /// Opens `name` for appending (created when missing); the previous file is fsynced and
    /// closed in the background (`aof_background_fsync_and_close`).
    pub fn open(&mut self, name: &str) -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(self.paths.file(name))?;
        self.close();
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some((Arc::new(f), name.to_string()));
        self.last_fsync = Instant::now();
        Ok(())
    }

    /// Closes the incr file; an unsynced one is fsynced first, in the background.
    pub fn close(&mut self) {
        if let Some((f, _)) = self.file.take() {
            if self.unsynced {
                self.bio.fsync_and_close(f);
            }
        }
        self.unsynced = false;
    }

    /// fsyncs now, on this thread, if anything is unsynced (before a stop).
    fn sync_now(&mut self) {
        if let Some((f, _)) = &self.file {
            if self.unsynced {
                let _ = fdatasync(f);
            }
        }
        self.unsynced = false;
        self.last_fsync = Instant::now();
    }

    fn write(&mut self, data: &[u8]) -> bool {
        let Some((f, name)) = &mut self.file else { return true };
        match (&**f).write_all(data) {
            Ok(()) => {
                if !sync::write_ok() {
                    tracing::warn!("AOF write error looks solved, Redis can write again.");
                    sync::set_write_ok();
                }
                self.size += data.len() as u64;
                status::CURRENT_SIZE.fetch_add(data.len() as u64, Ordering::Relaxed);
                self.unsynced = true;
                true
            }
            Err(e) => {
                if self.policy == Fsync::Always {
                    tracing::warn!(
                        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
                    );
                    crate::process::shutdown_and_exit(1);
                }
                tracing::warn!("Error writing to the AOF file {}: {}", name, e);
                let _ = f.set_len(self.size);
                sync::set_write_error(e.to_string());
                false
            }
        }
    }

    /// The fsync the policy asks for after a write (or while idle with unsynced bytes).
    fn fsync(&mut self) {
        let Some((f, _)) = &self.file else { return };
        if self.skip_fsync || !self.unsynced {
            return;
        }
        match self.policy {
            Fsync::Always => match fdatasync(f) {
                Ok(()) => {
                    self.unsynced = false;
                    self.last_fsync = Instant::now();
                }
                Err(e) => {
                    tracing::warn!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                        e
                    );
                    crate::process::shutdown_and_exit(1);
                }
            },
            Fsync::Everysec if self.last_fsync.elapsed() >= Duration::from_secs(1) => {
                if !fsync_in_progress() {
                    self.bio.fsync(f.clone());
                    self.unsynced = false;
                }
                self.last_fsync = Instant::now();
            }
            _ => {}
        }
    }
}

fn run(mut files: Files, rx: mpsc::Receiver<Job>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut done_counts: Vec<u64> = Vec::new();
    loop {
        let wait = if let Some(p) = files.postponed {
            MAX_POSTPONE.saturating_sub(p.elapsed())
        } else {
            match files.policy {
                Fsync::Everysec if files.unsynced => Duration::from_secs(1).saturating_sub(files.last_fsync.elapsed()),
                _ if !pending.is_empty() => Duration::from_secs(1),
                _ => Duration::from_secs(3600),
            }
        };
        let first = match rx.recv_timeout(wait) {
            Ok(j) => Some(j),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                files.sync_now();
                return;
            }
        };
        let mut jobs: Vec<Job> = first.into_iter().collect();
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let mut stop = None;
        for job in jobs {
            match job {
                Job::Append(b, c) => {
                    pending.extend_from_slice(&b);
                    counts = c;
                }
                Job::Op(op) => {
                    flush(&mut files, &mut pending, &counts, &mut done_counts, true);
                    op(&mut files);
                }
                Job::Policy(p) => files.policy = p,
                Job::Stop(done) => stop = Some(done),
                Job::Synced => {}
            }
        }
        flush(&mut files, &mut pending, &counts, &mut done_counts, stop.is_some());
        if pending.is_empty() {
            files.fsync();
        }
        if let Some(done) = stop {
            files.sync_now();
            files.file = None;
            done();
            return;
        }
    }
}

/// Writes what is pending (unless Redis's everysec rule postpones it) and publishes the
/// counts it completes; `force`: write even behind a running background fsync.
fn flush(files: &mut Files, pending: &mut Vec<u8>, counts: &[u64], done: &mut Vec<u64>, force: bool) {
    status::BUFFER_LEN.store(pending.len() as u64, Ordering::Relaxed);
    if !pending.is_empty() {
        if files.policy == Fsync::Everysec && !force && fsync_in_progress() {
            match files.postponed {
                None => {
                    files.postponed = Some(Instant::now());
                    publish(counts, done);
                    return;
                }
                Some(t) if t.elapsed() < MAX_POSTPONE => {
                    publish(counts, done);
                    return;
                }
                Some(_) => {
                    status::DELAYED_FSYNC.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis.");
                }
            }
        }
        files.postponed = None;
        let sleep = FLUSH_SLEEP_US.load(Ordering::Relaxed);
        if sleep > 0 {
            std::thread::sleep(Duration::from_micros(sleep));
        }
        if !files.write(pending) {
            return;
        }
        pending.clear();
        status::BUFFER_LEN.store(0, Ordering::Relaxed);
        if files.policy == Fsync::Always {
            files.fsync();
        }
    } else {
        files.postponed = None;
    }
    publish(counts, done);
}

fn publish(counts: &[u64], done: &mut Vec<u64>) {
    if !counts.is_empty() && counts != &done[..] {
        sync::publish(counts);
        *done = counts.to_vec();
    }
}
