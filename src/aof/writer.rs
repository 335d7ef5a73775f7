//! The AOF writer thread: appends the encoded stream to the current incr file and keeps
//! `appendfsync` (`flushAppendOnlyFile`, `aof_background_fsync`), plus the file operations
//! that must stay in order with the appends (open the next incr file, persist the manifest,
//! install a rewritten base, delete history files).
//!
//! One plain thread, so neither the shards nor the control core ever wait for a fsync or a
//! file operation, and a second one for background fsyncs ([`Bio`], Redis's `BIO_AOF_FSYNC`
//! job). Jobs arrive over a channel; the thread takes every queued job at once, writes their
//! bytes in one write, and then:
//! - `always`: the bytes are written at once and the fdatasync is the syncer thread's
//!   ([`always_sync`]), which then publishes the durable counts (`aof::sync`) and so releases
//!   the connections waiting on them. Pipelined group commit: while one fdatasync runs, the
//!   shards go on serving and the writes they make meanwhile are written to the file; the
//!   syncer's next fdatasync covers all of them, whoever made them. It starts once as many
//!   writes wait as the last one covered, or one fdatasync's time after the last one ended,
//!   whichever comes first ([`gather`]), so the clients the last one released are in it. No
//!   serving thread ever waits for the disk (Redis's event loop waits for its fdatasync
//!   before it replies, and reads no new request meanwhile). The syncer is in `SCHED_BATCH`
//!   (`runtime::sched_class`): on a CPU it shares with a shard it runs when the shard waits
//!   for input (or at the end of the shard's time slice) instead of preempting it at every
//!   wake-up, which halved its CPU time per write and its fdatasyncs per write;
//! - `everysec`: publishes at once; about once a second (and at least once after the last
//!   write) it hands a fdatasync to the background thread. Redis's postponed-write rule: while
//!   that fsync is still running, a new write is postponed (its replies are released at once,
//!   as Redis replies without waiting for the postponed write), up to two seconds; then it is
//!   written anyway and `aof_delayed_fsync` counts it. So at most about two seconds of writes
//!   are at risk if the machine dies;
//! - `no`: publishes at once, never fsyncs.
//!
//! Direct appends: when the thread has nothing queued or pending and no fsync postpones the
//! write, [`Writer::append`] writes the bytes on the calling thread (the control core, or a
//! shard taking its own round under `always`, [`Writer::quick`]; as Redis writes its AOF on
//! its main thread), under the lock the thread holds while it works, so the order of bytes and
//! file operations is the same either way. That saves a thread hop per merged batch. Whatever
//! is not plain (a postponed write, a failed write to retry, DEBUG AOF-FLUSH-SLEEP) goes
//! through the thread.
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
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
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
    /// Under `always`: the room written ahead after `size` (`padding`).
    room: u64,
    policy: Fsync,
    /// `no-appendfsync-on-rewrite` with a rewrite running: skip fsyncs.
    pub skip_fsync: bool,
    unsynced: bool,
    last_fsync: Instant,
    /// A write waits for a running background fsync since then (`aof_flush_postponed_start`).
    postponed: Option<Instant>,
    bio: Bio,
}

/// What the writer thread works on, shared with [`Writer::append`]'s direct appends.
struct State {
    files: Files,
    /// Bytes not written yet (postponed, or to retry after a failed write).
    pending: Vec<u8>,
    /// The per-shard merged counts the bytes given so far complete.
    counts: Vec<u64>,
    /// The counts published last.
    done: Vec<u64>,
    /// The syncer thread waits on `wake` for work ([`always_sync`]).
    syncer_idle: bool,
    wake: Arc<Condvar>,
    /// The writer stopped: the syncer ends.
    stopped: bool,
    /// The sum of the counts the syncer's last fdatasync covered, and how many items that one
    /// added (its batch).
    synced_sum: u64,
    last_batch: u64,
    /// The syncer gathers the next batch ([`gather`]): writers wake it once the pending items
    /// reach `last_batch`.
    gathering: bool,
}

/// The handle the control core keeps.
pub struct Writer {
    tx: mpsc::Sender<Job>,
    state: Arc<Mutex<State>>,
    /// Jobs sent to the thread and not finished yet.
    queued: Arc<AtomicU64>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
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
            room: 0,
            policy,
            skip_fsync: false,
            unsynced: false,
            last_fsync: Instant::now(),
            postponed: None,
            bio,
        };
        let state = Arc::new(Mutex::new(State {
            files,
            pending: Vec::new(),
            counts: Vec::new(),
            done: Vec::new(),
            syncer_idle: false,
            wake: Arc::new(Condvar::new()),
            stopped: false,
            synced_sum: 0,
            last_batch: 0,
            gathering: false,
        }));
        let queued = Arc::new(AtomicU64::new(0));
        let st = state.clone();
        std::thread::Builder::new().name("aof-always-sync".into()).spawn(move || {
            // Woken by every fdatasync's completion and every gathered batch, for a few
            // microseconds of work each: it must not preempt the shard it shares a CPU with
            // (two context switches each time); it runs when the shard waits for input.
            if let Err(e) = crate::runtime::sched_class::to_batch(0) {
                tracing::debug!("could not put the AOF syncer in SCHED_BATCH: {}", e);
            }
            always_sync(&st)
        })?;
        let (st, q) = (state.clone(), queued.clone());
        if let Err(e) = std::thread::Builder::new().name("aof-writer".into()).spawn(move || run(&st, &q, rx)) {
            lock(&state).stop();
            return Err(e);
        }
        Ok(Writer { tx, state, queued })
    }

    /// An `always` append now would be written by the caller: nothing is queued for the
    /// thread. A shard takes its own rounds only then (`runtime::aof::take_round`): it writes
    /// them itself, which costs less than the control core's thread switches, and the syncer
    /// fdatasyncs them while the shard goes on serving.
    pub fn quick(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Queues a job (never waits).
    pub fn send(&self, job: Job) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.tx.send(job);
    }

    /// Appends merged bytes that complete the per-shard `counts`: written here when the
    /// thread is idle and the write is a plain one (see the module's doc), else queued.
    pub fn append(&self, data: Bytes, counts: Vec<u64>) {
        // Counted jobs come only from the AOF's owner (the control core, or a shard holding the
        // AOF's lock), so with none queued the thread holds the lock only briefly (timing its
        // wait, or writing a postponed batch).
        if self.queued.load(Ordering::Acquire) == 0 {
            let mut st = lock(&self.state);
            if let Some(wake) = st.append_here(&data, &counts) {
                drop(st);
                if wake {
                    // The thread times the next everysec fsync, or retries a failed write.
                    let _ = self.tx.send(Job::Synced);
                }
                return;
            }
        }
        self.send(Job::Append(data, counts));
    }
}

impl State {
    /// Under `always`, after a write (or with counts to publish): the syncer publishes once an
    /// fdatasync covers what was written, woken here when it waits. With no file, or no fsync
    /// wanted during a rewrite (`no-appendfsync-on-rewrite`), the counts are published now.
    fn settle_always(&mut self) {
        if !self.files.syncer_publishes() {
            publish(&self.counts, &mut self.done);
            return;
        }
        if self.syncer_idle && (self.files.unsynced || self.counts != self.done) {
            self.syncer_idle = false;
            self.wake.notify_one();
        } else {
            self.wake_gatherer();
        }
    }

    /// Wakes the gathering syncer once its batch is complete ([`gather`]).
    fn wake_gatherer(&mut self) {
        if self.gathering && self.pending_items() >= self.last_batch {
            self.gathering = false;
            // The syncer is the condvar's only waiter but in tests.
            self.wake.notify_all();
        }
    }

    /// Items written since the syncer's last fdatasync started.
    fn pending_items(&self) -> u64 {
        self.counts.iter().sum::<u64>().saturating_sub(self.synced_sum)
    }

    /// Ends the syncer (the writer stopped).
    fn stop(&mut self) {
        self.stopped = true;
        self.wake.notify_one();
    }

    /// A direct append: None when the write is not a plain one (the thread does it); else
    /// whether the thread must look at the files (an everysec fsync to time, a write to retry).
    fn append_here(&mut self, data: &[u8], counts: &[u64]) -> Option<bool> {
        let f = &self.files;
        let plain = match f.policy {
            Fsync::Everysec => !fsync_in_progress(),
            Fsync::Always | Fsync::No => true,
        };
        if !plain || !self.pending.is_empty() || f.postponed.is_some() || FLUSH_SLEEP_US.load(Ordering::Relaxed) > 0 {
            return None;
        }
        counts.clone_into(&mut self.counts);
        let was_unsynced = self.files.unsynced;
        if !self.files.write(data) {
            self.pending.extend_from_slice(data);
            status::BUFFER_LEN.store(self.pending.len() as u64, Ordering::Relaxed);
            return Some(true);
        }
        if self.files.policy == Fsync::Always {
            // The replies wait for the syncer's fdatasync, which publishes after it.
            self.settle_always();
            return Some(false);
        }
        publish(&self.counts, &mut self.done);
        self.files.fsync();
        Some(!was_unsynced && self.files.unsynced)
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

/// The syncer thread (`appendfsync always`): whenever bytes are written and not fdatasync'ed,
/// or counts wait to be published, it gathers a batch ([`gather`]), takes the current file
/// and counts under the lock, fdatasyncs without it (writes go on meanwhile) and publishes
/// the counts, which releases the replies of every write those counts cover. A file closed meanwhile was fdatasync'ed by
/// its close. A failed fdatasync exits, as Redis does under `always`.
fn always_sync(state: &Mutex<State>) {
    let mut last_end: Option<Instant> = None;
    let mut last_took = Duration::ZERO;
    let mut st = lock(state);
    loop {
        if st.stopped {
            return;
        }
        let due = st.files.syncer_publishes() && (st.files.unsynced || st.counts != st.done);
        if !due {
            st.syncer_idle = true;
            let wake = st.wake.clone();
            st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        if let Some(end) = last_end {
            st = gather(st, end + last_took);
        }
        let counts = st.counts.clone();
        let sum: u64 = counts.iter().sum();
        st.last_batch = sum.saturating_sub(st.synced_sum);
        st.synced_sum = sum;
        let file = st.files.file.as_ref().filter(|_| st.files.unsynced).map(|(f, _)| f.clone());
        st.files.unsynced = false;
        drop(st);
        if let Some(f) = file {
            let started = Instant::now();
            let r = fdatasync(&f);
            let now = Instant::now();
            last_took = (now - started).min(Duration::from_millis(2));
            last_end = Some(now);
            if let Err(e) = r {
                tracing::warn!(
                    "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                    e
                );
                crate::process::shutdown_and_exit(1);
            }
        }
        st = lock(state);
        st.files.last_fsync = Instant::now();
        publish(&counts, &mut st.done);
    }
}

/// The syncer's gathering before an fdatasync: it waits until as many items are written and
/// not yet covered as the last fdatasync covered, or until `deadline` (one fdatasync's time
/// after the last one ended), whichever comes first. Closed-loop clients released by the last
/// fdatasync are back within that time; starting at once would cover the few that came back
/// first and leave the others to a fdatasync of their own, and every fdatasync costs about as
/// much CPU here as ten writes. A load that shrank waits at most one fdatasync's time once,
/// then the target is the new batch; a lone client's write finds its target (1) met at once.
fn gather<'a>(mut st: MutexGuard<'a, State>, deadline: Instant) -> MutexGuard<'a, State> {
    while !st.stopped && st.pending_items() < st.last_batch {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        st.gathering = true;
        let wake = st.wake.clone();
        st = wake.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        st.gathering = false;
    }
    st
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
    /// Under `always`, with a file and fsyncs wanted: counts are published by the syncer
    /// ([`always_sync`]) once an fdatasync covers their bytes, by nobody else.
    fn syncer_publishes(&self) -> bool {
        self.policy == Fsync::Always && self.file.is_some() && !self.skip_fsync
    }

    /// Opens `name` for appending (created when missing); the previous file is fsynced and
    /// closed in the background (`aof_background_fsync_and_close`). Room left after the last
    /// command (a kill under `always`) is cut off.
    pub fn open(&mut self, name: &str) -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.paths.file(name))?;
        let size = super::padding::logical_len(&f)?;
        if size < f.metadata()?.len() {
            f.set_len(size)?;
        }
        self.close();
        self.size = size;
        self.room = 0;
        self.file = Some((Arc::new(f), name.to_string()));
        self.last_fsync = Instant::now();
        Ok(())
    }

    /// Closes the incr file; an unsynced one is fsynced first, in the background (under
    /// `always`, here: the syncer publishes counts that cover its bytes, and fdatasyncs only
    /// the current file).
    pub fn close(&mut self) {
        self.cut_room();
        if self.policy == Fsync::Always && self.unsynced {
            self.sync_now();
        }
        if let Some((f, _)) = self.file.take() {
            if self.unsynced {
                self.bio.fsync_and_close(f);
            }
        }
        self.unsynced = false;
    }

    /// Before the process exits: the room cut off and everything fdatasync'ed.
    pub fn finish(&mut self) {
        self.cut_room();
        self.sync_now();
    }

    /// fsyncs now, on this thread, if anything is unsynced (before a stop or a close).
    fn sync_now(&mut self) {
        if let Some((f, _)) = &self.file {
            if self.unsynced {
                let _ = fdatasync(f);
            }
        }
        self.unsynced = false;
        self.last_fsync = Instant::now();
    }

    /// Cuts the room off the file (closing it, or leaving `always`).
    pub fn cut_room(&mut self) {
        if self.room == 0 {
            return;
        }
        self.room = 0;
        if let Some((f, name)) = &self.file {
            if let Err(e) = f.set_len(self.size) {
                tracing::warn!("Error truncating the AOF file {}: {}", name, e);
            }
            self.unsynced = true;
        }
    }

    fn write(&mut self, data: &[u8]) -> bool {
        let ahead = self.policy == Fsync::Always && super::padding::enabled();
        if !ahead {
            self.cut_room();
        }
        let Some((f, name)) = &mut self.file else { return true };
        let len = data.len() as u64;
        let res = (|| {
            use std::os::unix::fs::FileExt;
            if ahead {
                while self.room < len + super::padding::MIN_LEFT {
                    self.room += super::padding::extend(f, self.size + self.room, self.room)?;
                }
            }
            f.write_all_at(data, self.size)?;
            self.room = self.room.saturating_sub(len);
            Ok::<(), std::io::Error>(())
        })();
        match res {
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
                self.room = 0;
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
            // The syncer's ([`always_sync`]).
            Fsync::Always => {}
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

fn run(state: &Mutex<State>, queued: &AtomicU64, rx: mpsc::Receiver<Job>) {
    loop {
        let wait = {
            let st = lock(state);
            let files = &st.files;
            if let Some(p) = files.postponed {
                MAX_POSTPONE.saturating_sub(p.elapsed())
            } else {
                match files.policy {
                    Fsync::Everysec if files.unsynced => {
                        Duration::from_secs(1).saturating_sub(files.last_fsync.elapsed())
                    }
                    _ if !st.pending.is_empty() => Duration::from_secs(1),
                    _ => Duration::from_secs(3600),
                }
            }
        };
        let first = match rx.recv_timeout(wait) {
            Ok(j) => Some(j),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut st = lock(state);
                st.files.finish();
                st.stop();
                return;
            }
        };
        let mut jobs: Vec<Job> = first.into_iter().collect();
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        // `Synced` comes from the fsync thread or a direct append, not through `send`.
        let taken = jobs.iter().filter(|j| !matches!(j, Job::Synced)).count() as u64;
        let mut st = lock(state);
        let st = &mut *st;
        let mut stop = None;
        for job in jobs {
            match job {
                Job::Append(b, c) => {
                    st.pending.extend_from_slice(&b);
                    st.counts = c;
                }
                Job::Op(op) => {
                    flush(&mut st.files, &mut st.pending, &st.counts, &mut st.done, true);
                    op(&mut st.files);
                }
                Job::Policy(p) => {
                    st.files.policy = p;
                    if p != Fsync::Always {
                        st.files.cut_room();
                    }
                }
                Job::Stop(done) => stop = Some(done),
                Job::Synced => {}
            }
        }
        flush(&mut st.files, &mut st.pending, &st.counts, &mut st.done, stop.is_some());
        if st.pending.is_empty() {
            st.files.fsync();
        }
        if st.files.policy == Fsync::Always {
            st.settle_always();
        }
        queued.fetch_sub(taken, Ordering::AcqRel);
        if let Some(done) = stop {
            st.files.finish();
            publish(&st.counts, &mut st.done);
            st.files.file = None;
            st.stop();
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
    } else {
        files.postponed = None;
    }
    // Under `always` the syncer publishes once an fdatasync covers the bytes (the caller
    // settles with it).
    if !files.syncer_publishes() {
        publish(counts, done);
    }
}

fn publish(counts: &[u64], done: &mut Vec<u64>) {
    if !counts.is_empty() && counts != &done[..] {
        sync::publish(counts);
        *done = counts.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> Paths {
        let dir = std::env::temp_dir().join(format!("slotcore-writer-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Paths { dir, prefix: "appendonly.aof".into() }
    }

    /// Runs `f` on the writer thread and waits for it (and for every job before it), then
    /// until the thread counted its jobs done (it decrements after the work), so that the
    /// next `append` finds the writer idle.
    fn on_thread(w: &Writer, f: impl FnOnce(&mut Files) + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        w.send(Job::Op(Box::new(move |files| {
            f(files);
            let _ = tx.send(());
        })));
        rx.recv_timeout(Duration::from_secs(10)).expect("the writer thread answers");
        let until = Instant::now() + Duration::from_secs(10);
        while w.queued.load(Ordering::Acquire) != 0 {
            assert!(Instant::now() < until, "the writer thread counts its jobs done within 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The file's commands (without the room written ahead under `always`).
    fn read(paths: &Paths, name: &str) -> String {
        let all = std::fs::read(paths.file(name)).unwrap_or_default();
        let end = crate::aof::padding::padding_start(&all);
        String::from_utf8(all[..end].to_vec()).unwrap_or_default()
    }

    /// Under `no` and `everysec` an idle writer's appends are written before `append`
    /// returns (on the caller's thread); the order with file operations is kept.
    #[test]
    fn idle_appends_are_written_by_the_caller_in_order_with_file_operations() {
        for policy in [Fsync::No, Fsync::Everysec] {
            let paths = scratch(&format!("{policy:?}"));
            let w = Writer::start(paths.clone(), policy).expect("writer");
            on_thread(&w, |f| f.open("a.incr.aof").expect("open"));
            w.append(Bytes::from_static(b"one\n"), Vec::new());
            assert_eq!(read(&paths, "a.incr.aof"), "one\n", "{policy:?}: written when append returned");
            // Queued behind a file operation, later bytes go to the next file.
            w.send(Job::Op(Box::new(|f| f.open("b.incr.aof").expect("open"))));
            w.append(Bytes::from_static(b"two\n"), Vec::new());
            on_thread(&w, |_| {});
            w.append(Bytes::from_static(b"three\n"), Vec::new());
            on_thread(&w, |_| {});
            assert_eq!(read(&paths, "a.incr.aof"), "one\n");
            assert_eq!(read(&paths, "b.incr.aof"), "two\nthree\n");
            w.send(Job::Stop(Box::new(|| {})));
            let _ = std::fs::remove_dir_all(&paths.dir);
        }
    }

    /// Under `always` the caller writes the bytes before `append` returns; the syncer thread
    /// fdatasyncs them and only then publishes their counts (also across a file switch).
    #[test]
    fn always_appends_are_written_by_the_caller_and_published_after_the_syncers_fdatasync() {
        let paths = scratch("always");
        let w = Writer::start(paths.clone(), Fsync::Always).expect("writer");
        on_thread(&w, |f| f.open("a.incr.aof").expect("open"));
        // A shard index no other test publishes (the durable counts are process-wide).
        let shard = 201;
        let counts = |n: u64| {
            let mut c = vec![0; shard + 1];
            c[shard] = n;
            c
        };
        let durable_reaches = |n: u64| {
            let until = Instant::now() + Duration::from_secs(10);
            while sync::durable(shard) < n {
                assert!(Instant::now() < until, "count {n} published within 10 s");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let mut text = String::new();
        for n in 1..=3u64 {
            w.append(Bytes::from(format!("{n}\n")), counts(n));
            text.push_str(&format!("{n}\n"));
            assert_eq!(read(&paths, "a.incr.aof"), text, "written when append returned");
            durable_reaches(n);
            assert!(!lock(&w.state).files.unsynced, "fdatasync'ed before count {n} was published");
        }
        // Written, then the file switches before the syncer looks: the close fdatasyncs it.
        {
            let mut st = lock(&w.state);
            assert_eq!(st.append_here(b"4\n", &counts(4)), Some(false));
            st.files.open("b.incr.aof").expect("open");
            assert!(!st.files.unsynced, "the closed file was fdatasync'ed");
        }
        durable_reaches(4);
        w.append(Bytes::from_static(b"5\n"), counts(5));
        durable_reaches(5);
        assert_eq!(
            std::fs::read(paths.file("a.incr.aof")).unwrap_or_default(),
            b"1\n2\n3\n4\n",
            "closed: no room left"
        );
        assert_eq!(read(&paths, "b.incr.aof"), "5\n");
        w.send(Job::Stop(Box::new(|| {})));
        let _ = std::fs::remove_dir_all(&paths.dir);
    }

    /// The syncer's gathering ends when as many items as the last batch wait (woken by the
    /// writer that reached the target, long before the deadline), or at the deadline. (A
    /// writer under `no`, whose syncer never runs, lends its state.)
    #[test]
    fn gathering_ends_at_the_last_batchs_size_or_at_the_deadline() {
        let paths = scratch("gather");
        let w = Writer::start(paths.clone(), Fsync::No).expect("writer");
        {
            let mut st = lock(&w.state);
            st.counts = vec![11];
            st.synced_sum = 10;
            st.last_batch = 3;
        }
        // The deadline passed: no wait, though only 1 item is pending.
        let started = Instant::now();
        let st = gather(lock(&w.state), Instant::now());
        assert_eq!(st.pending_items(), 1);
        drop(st);
        assert!(started.elapsed() < Duration::from_secs(1));
        // A far deadline: two more items from another thread end the wait.
        let state = w.state.clone();
        let writer = std::thread::spawn(move || {
            for n in [12, 13] {
                std::thread::sleep(Duration::from_millis(20));
                let mut st = lock(&state);
                st.counts = vec![n];
                st.wake_gatherer();
            }
        });
        let started = Instant::now();
        let st = gather(lock(&w.state), Instant::now() + Duration::from_secs(30));
        assert_eq!(st.pending_items(), 3, "woken once the batch's size was reached");
        drop(st);
        assert!(started.elapsed() < Duration::from_secs(10), "woken, not timed out");
        let _ = writer.join();
        w.send(Job::Stop(Box::new(|| {})));
        let _ = std::fs::remove_dir_all(&paths.dir);
    }
}
