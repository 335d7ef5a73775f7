//! Writing an AOF base file from a forkless snapshot (`rewriteAppendOnlyFile`), on shard 0:
//! the snapshot's RDB stream as is (`aof-use-rdb-preamble yes`, a `.base.rdb`) or turned into
//! commands (`no`, a `.base.aof`, see `aof::rewrite`), written to
//! `temp-rewriteaof-bg-<pid>.aof` in 1 MiB blocks on glommio's blocking pool, one paced
//! snapshot step at a time so the shard keeps serving its clients in between.
//!
//! `aof-rewrite-incremental-fsync yes` (Redis's rio autosync): the file is written in pieces
//! that end on 4 MiB boundaries; at each boundary the writeout of the last 4 MiB is started
//! (`sync_file_range` WRITE) and the one before it waited for, so the kernel never holds more
//! than about 8 MiB of the base's dirty pages and the final fsync has little left to do.

use super::shard::Shard;
use super::snapshot::{blocking, Part, SnapshotStream};
use crate::aof::rewrite::{self, Converter};
use bytes::BytesMut;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Bytes gathered before one write to the file.
const WRITE_BYTES: usize = 1 << 20;
/// `REDIS_AUTOSYNC_BYTES`.
pub const AUTOSYNC_BYTES: u64 = 4 << 20;

/// A rewrite started by `CONFIG SET appendonly yes` whose snapshot has not begun yet.
static BEGIN_PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Who waits for that snapshot's start ([`snapshot_begun`]).
static BEGIN_WAITERS: std::sync::Mutex<Vec<futures_channel::oneshot::Sender<()>>> = std::sync::Mutex::new(Vec::new());

fn waiters() -> std::sync::MutexGuard<'static, Vec<futures_channel::oneshot::Sender<()>>> {
    BEGIN_WAITERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// `CONFIG SET appendonly yes` started a rewrite: its reply waits for the snapshot's start
/// ([`snapshot_begun`]), as Redis's waits for the rewrite's fork. The point in time of the base
/// is then before any command that follows the reply: a script sent right after it cannot take
/// the shard first and hold the base up for as long as it runs (a SHUTDOWN meanwhile would find
/// the first base unwritten and refuse to exit).
pub fn expect_begin() {
    let _w = waiters();
    BEGIN_PENDING.store(true, std::sync::atomic::Ordering::Release);
}

/// The expected snapshot began, or the rewrite will not begin one: the waiters go on.
pub fn begin_settled() {
    let mut w = waiters();
    BEGIN_PENDING.store(false, std::sync::atomic::Ordering::Release);
    for tx in w.drain(..) {
        let _ = tx.send(());
    }
}

/// Waits (at most `limit`) until no rewrite's snapshot is expected to begin.
pub async fn snapshot_begun(limit: std::time::Duration) {
    let rx = {
        let mut w = waiters();
        if !BEGIN_PENDING.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        w.push(tx);
        rx
    };
    let begun = async {
        let _ = rx.await;
    };
    futures_lite::future::or(begun, glommio::timer::sleep(limit)).await;
}

/// What one base to write looks like.
#[derive(Debug, Clone)]
pub struct BaseJob {
    /// The temp file (in `dir`).
    pub temp: PathBuf,
    /// `aof-use-rdb-preamble`.
    pub rdb: bool,
    /// `aof-timestamp-enabled` (a command-form base starts with a `#TS:` line).
    pub timestamps: bool,
    /// `aof-rewrite-incremental-fsync`.
    pub incremental: bool,
    /// Set to stop the rewrite (`CONFIG SET appendonly no`), and when its child dies.
    pub abort: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The rewrite's number (its result is ignored if a later rewrite replaced it).
    pub generation: u64,
}

/// A file written with optional incremental writeout.
pub struct SyncedFile {
    file: File,
    written: u64,
    /// Bytes between writeouts; 0 = none.
    autosync: u64,
}

fn sync_range(f: &File, from: u64, len: u64, flags: libc::c_uint) -> std::io::Result<()> {
    // SAFETY: a valid open fd owned by `f`; offsets within the written file.
    let r = unsafe { libc::sync_file_range(f.as_raw_fd(), from as i64, len as i64, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl SyncedFile {
    /// Wraps `file`; `autosync` 0 turns the incremental writeout off.
    pub fn new(file: File, autosync: u64) -> SyncedFile {
        SyncedFile { file, written: 0, autosync }
    }

    /// Appends `data` (`rioFileWrite` with autosync).
    pub fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        if self.autosync == 0 {
            self.written += data.len() as u64;
            return self.file.write_all(data);
        }
        while !data.is_empty() {
            let room = (self.autosync - self.written % self.autosync) as usize;
            let n = room.min(data.len());
            self.file.write_all(&data[..n])?;
            self.written += n as u64;
            data = &data[n..];
            if self.written % self.autosync == 0 {
                let a = self.autosync;
                sync_range(&self.file, self.written - a, a, libc::SYNC_FILE_RANGE_WRITE)?;
                if self.written >= 2 * a {
                    let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                    sync_range(&self.file, self.written - 2 * a, a, all)?;
                }
            }
        }
        Ok(())
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// True before the first byte.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// fsync, giving the file back.
    pub fn finish(self) -> std::io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

/// An empty dataset's base (`aofOpenIfNeededOnServerStart` on an empty start): an RDB with
/// `aof-base 1`, or, in command form, nothing but the `#TS:` line.
pub fn empty_base(rdb: bool, timestamps: bool) -> Vec<u8> {
    if !rdb {
        let mut out = BytesMut::new();
        let libs: Vec<Vec<u8>> = crate::script::functions::libraries().into_iter().map(|l| l.code.to_vec()).collect();
        rewrite::put_head(&mut out, timestamps.then(crate::aof::now_s), &libs);
        return out.to_vec();
    }
    let mut out = Vec::new();
    crate::persist::file::put_header(&mut out, crate::aof::now_s(), 0);
    out.push(0xFA);
    crate::persist::rdb::put_string(&mut out, b"aof-base", false);
    crate::persist::rdb::put_string(&mut out, b"1", false);
    crate::persist::file::finish(&mut out);
    out
}

/// Why a base could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFailure {
    /// The rewrite failed (the reason, logged).
    Error(String),
    /// The child writing the file was killed by this signal (SIGUSR1: stopped on purpose).
    Signal(i32),
}

/// Where the base's bytes go: the pipe to a rewrite child (Redis's AOF rewrite child), or the
/// file itself when no child could start.
enum Sink {
    Child(crate::runtime::save_child::SaveChild, super::idle_writer::IdleWriter),
    File(Option<SyncedFile>),
}

impl Sink {
    /// Creates the temp file and the child writing it, or takes the ones the command made
    /// (blocking: call from a blocking thread).
    fn open(job: &BaseJob) -> std::io::Result<Sink> {
        use crate::runtime::save_child::{Registry, SaveChild};
        let autosync = if job.incremental { AUTOSYNC_BYTES } else { 0 };
        let (file, started) = match crate::runtime::save_child::take_prepared(Registry::AofRewrite) {
            Some((file, child, pipe, _)) => (file, Ok((child, pipe))),
            None => {
                let file = File::create(&job.temp)?;
                let started = SaveChild::spawn_for(Registry::AofRewrite, &file, autosync, job.abort.clone());
                (file, started)
            }
        };
        match started {
            Ok((child, pipe)) => match super::idle_writer::IdleWriter::start_sink(pipe) {
                Ok(w) => return Ok(Sink::Child(child, w)),
                Err(e) => tracing::warn!("Can't start the AOF rewrite writer: {} (writing from the server)", e),
            },
            Err(e) => tracing::warn!("Can't start the AOF rewrite child process: {} (writing from the server)", e),
        }
        Ok(Sink::File(Some(SyncedFile::new(file, autosync))))
    }

    /// Set once the child died (the snapshot stops waiting out `rdb-key-save-delay`).
    fn gone(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        match self {
            Sink::Child(c, _) => Some(c.gone()),
            Sink::File(_) => None,
        }
    }

    /// Appends `data`; false once the child is gone.
    async fn write(&mut self, data: bytes::Bytes) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("Write error writing append only file on disk: {e}");
        match self {
            Sink::Child(_, w) => match w.write(data.to_vec()).await {
                true => Ok(()),
                false => Err(String::new()),
            },
            Sink::File(slot) => {
                let Some(mut f) = slot.take() else { return Err(String::new()) };
                let (f, r) = blocking(move || {
                    let r = f.write(&data);
                    (f, r)
                })
                .await;
                *slot = Some(f);
                r.map_err(fail)
            }
        }
    }

    /// Flushes and syncs the file (the child exits once its pipe is closed).
    async fn finish(self) -> Result<(), BaseFailure> {
        use crate::runtime::save_child::ChildEnd;
        match self {
            Sink::Child(child, w) => {
                let written = w.finish().await;
                match child.ended().await {
                    ChildEnd::Done => written.map_err(|e| BaseFailure::Error(format!("Write error: {e}"))),
                    ChildEnd::Signal(sig) => Err(BaseFailure::Signal(sig)),
                    ChildEnd::Error(e) => Err(BaseFailure::Error(e)),
                }
            }
            Sink::File(None) => Err(BaseFailure::Error(String::new())),
            Sink::File(Some(f)) => {
                blocking(move || f.finish()).await.map(drop).map_err(|e| BaseFailure::Error(format!("fsync: {e}")))
            }
        }
    }
}

/// Writes the base of a new forkless snapshot to `job.temp` (fsynced) through a rewrite
/// child; returns the snapshot's id, the temp file and its size. On failure the temp file is
/// gone.
pub async fn write_base(shard: &Shard, job: BaseJob) -> Result<(u64, PathBuf, u64), BaseFailure> {
    use std::sync::atomic::Ordering;
    if job.abort.load(Ordering::Acquire) {
        // Stopped before it began.
        begin_settled();
        crate::runtime::save_child::discard_prepared_aof();
        return Err(BaseFailure::Signal(libc::SIGUSR1));
    }
    let aux = vec![(b"aof-base".to_vec(), b"1".to_vec())];
    let started = SnapshotStream::start(shard, aux).await;
    begin_settled();
    let mut stream = match started {
        Ok(s) => s,
        Err(e) => {
            crate::runtime::save_child::discard_prepared_aof();
            return Err(BaseFailure::Error(format!("{e:?}")));
        }
    };
    let id = stream.id();
    let j = job.clone();
    let opened = blocking(move || Sink::open(&j)).await;
    stream.abort_on(opened.as_ref().ok().and_then(Sink::gone).unwrap_or_else(|| job.abort.clone()));
    let mut sink = match opened {
        Ok(s) => s,
        Err(e) => {
            stream.end(shard, false).await;
            let _ = std::fs::remove_file(&job.temp);
            return Err(BaseFailure::Error(format!(
                "Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {e}"
            )));
        }
    };
    let mut conv = Converter::default();
    let mut out = BytesMut::with_capacity(WRITE_BYTES);
    let mut failure = None;
    let mut size = 0u64;
    loop {
        if job.abort.load(Ordering::Acquire) {
            break;
        }
        let part = stream.next_part(shard).await;
        // Clients first: one time-sliced step, then the shard serves what became ready.
        stream.pace().await;
        let last = part.is_none();
        match part {
            None => {}
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            Some(Ok(p)) if job.rdb => out.extend_from_slice(&p.into_bytes()),
            Some(Ok(Part::Header(_))) => {
                let libs: Vec<Vec<u8>> =
                    crate::script::functions::libraries().into_iter().map(|l| l.code.to_vec()).collect();
                rewrite::put_head(&mut out, job.timestamps.then(crate::aof::now_s), &libs);
            }
            Some(Ok(Part::Database(db, _))) => conv.database(db),
            Some(Ok(Part::Keys(run))) => {
                if let Err(e) = conv.keys(&mut out, &run) {
                    failure = Some(format!("Error converting the snapshot to commands: {e}"));
                    break;
                }
            }
            Some(Ok(Part::End(_))) => {}
        }
        if out.len() >= WRITE_BYTES || (last && !out.is_empty()) {
            let data = out.split().freeze();
            size += data.len() as u64;
            if let Err(e) = sink.write(data).await {
                // An empty reason: the child is gone, its exit says why.
                failure = Some(e).filter(|e| !e.is_empty());
                break;
            }
        }
        if last {
            break;
        }
    }
    stream.end(shard, false).await;
    let ended = sink.finish().await;
    let r = match (failure, ended) {
        (Some(e), _) => Err(BaseFailure::Error(e)),
        (None, Err(f)) => Err(f),
        // Stopped on purpose before the child took the last bytes.
        (None, Ok(())) if job.abort.load(Ordering::Acquire) => Err(BaseFailure::Signal(libc::SIGUSR1)),
        (None, Ok(())) => Ok((id, job.temp.clone(), size)),
    };
    if r.is_err() {
        let temp = job.temp.clone();
        let _ = blocking(move || std::fs::remove_file(temp)).await;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_writeout_keeps_every_byte() {
        let path = std::env::temp_dir().join(format!("slotcore-synced-{}", std::process::id()));
        let mut f = SyncedFile::new(File::create(&path).unwrap(), 4096);
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(3000) {
            f.write(chunk).unwrap();
        }
        assert_eq!(f.len(), data.len() as u64);
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let _ = std::fs::remove_file(&path);
    }
}
