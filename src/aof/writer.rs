//! The AOF writer thread: appends the encoded stream to the current incr file and keeps
//! `appendfsync` (`flushAppendOnlyFile`, `aof_background_fsync`), plus the file operations
//! that must stay in order with the appends (open the next incr file, persist the manifest,
//! install a rewritten base, delete history files).
//!
//! One plain thread, so neither the shards nor the control core ever block on the disk. Jobs
//! arrive over a channel; the thread takes every queued job at once, writes their bytes in one
//! write, and then:
//! - `always`: fdatasync, then publishes the durable counts (`aof::sync`), which releases
//!   the connections waiting on them: group commit;
//! - `everysec`: publishes at once; fdatasync when a second has passed since the last one
//!   (waiting for the next job at most until then), so at most about a second of writes plus
//!   one fsync's duration is at risk; a fsync longer than two seconds counts in
//!   `aof_delayed_fsync`, as Redis counts writes it had to force past a slow fsync;
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
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// DEBUG AOF-FLUSH-SLEEP: microseconds to sleep before each write (tests).
static FLUSH_SLEEP_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets the DEBUG AOF-FLUSH-SLEEP delay.
pub fn set_flush_sleep(us: u64) {
    FLUSH_SLEEP_US.store(us, Ordering::Relaxed);
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
}

/// The files the thread owns.
pub struct Files {
    /// The AOF's location.
    pub paths: Paths,
    /// The incr file appended to, and its name.
    pub file: Option<(File, String)>,
    /// Its size (the last good length).
    pub size: u64,
    policy: Fsync,
    /// `no-appendfsync-on-rewrite` with a rewrite running: skip fsyncs.
    pub skip_fsync: bool,
    unsynced: bool,
    last_fsync: Instant,
}

/// The handle the control core keeps.
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread.
    pub fn start(paths: Paths, policy: Fsync) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let files = Files {
            paths,
            file: None,
            size: 0,
            policy,
            skip_fsync: false,
            unsynced: false,
            last_fsync: Instant::now(),
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

fn fdatasync(f: &File) -> std::io::Result<()> {
    // SAFETY: a valid open fd owned by `f`.
    if unsafe { libc::fdatasync(f.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Files {
    /// Opens `name` for appending (created when missing); the previous file is fsynced and
    /// closed first.
    pub fn open(&mut self, name: &str) -> std::io::Result<()> {
        self.sync_now();
        let f = std::fs::OpenOptions::new().create(true).append(true).open(self.paths.file(name))?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some((f, name.to_string()));
        Ok(())
    }

    /// Closes the incr file after a final fsync.
    pub fn close(&mut self) {
        self.sync_now();
        self.file = None;
    }

    /// fsyncs now if anything is unsynced (before a switch of file or a stop).
    pub fn sync_now(&mut self) {
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
        match f.write_all(data) {
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

    fn fsync(&mut self) {
        let Some((f, _)) = &self.file else { return };
        if self.skip_fsync {
            return;
        }
        let start = Instant::now();
        status::FSYNC_PENDING.store(1, Ordering::Relaxed);
        let r = fdatasync(f);
        status::FSYNC_PENDING.store(0, Ordering::Relaxed);
        if start.elapsed() > Duration::from_secs(2) {
            status::DELAYED_FSYNC.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis.");
        }
        match r {
            Ok(()) => {
                self.unsynced = false;
                self.last_fsync = Instant::now();
            }
            Err(e) if self.policy == Fsync::Always => {
                tracing::warn!(
                    "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                    e
                );
                crate::process::shutdown_and_exit(1);
            }
            Err(e) => {
                tracing::warn!("Error syncing the AOF file: {}", e);
                sync::set_write_error(e.to_string());
            }
        }
    }
}

fn run(mut files: Files, rx: mpsc::Receiver<Job>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut done_counts: Vec<u64> = Vec::new();
    loop {
        let wait = match files.policy {
            Fsync::Everysec if files.unsynced => Duration::from_secs(1).saturating_sub(files.last_fsync.elapsed()),
            _ if !pending.is_empty() => Duration::from_secs(1),
            _ => Duration::from_secs(3600),
        };
        let first = match rx.recv_timeout(wait) {
            Ok(j) => Some(j),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                files.close();
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
                    flush(&mut files, &mut pending, &mut counts, &mut done_counts);
                    op(&mut files);
                }
                Job::Policy(p) => files.policy = p,
                Job::Stop(done) => stop = Some(done),
            }
        }
        flush(&mut files, &mut pending, &mut counts, &mut done_counts);
        if files.policy == Fsync::Everysec && files.unsynced && files.last_fsync.elapsed() >= Duration::from_secs(1) {
            files.fsync();
        }
        if let Some(done) = stop {
            files.close();
            done();
            return;
        }
    }
}

/// Writes what is pending and publishes the counts it completes.
fn flush(files: &mut Files, pending: &mut Vec<u8>, counts: &mut Vec<u64>, done: &mut Vec<u64>) {
    status::BUFFER_LEN.store(pending.len() as u64, Ordering::Relaxed);
    if !pending.is_empty() {
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
    }
    if !counts.is_empty() && counts != done {
        sync::publish(counts);
        *done = counts.clone();
    }
}
