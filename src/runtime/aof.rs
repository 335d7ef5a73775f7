//! The AOF at run time: the control core's second sink of the merged feed, the start-up
//! replay, the rewrite driver on shard 0 and the AOF cron (`aof.c` minus the file format,
//! which lives in `crate::aof`).
//!
//! - [`observe`] / [`commit`] are called by the control core's merger for every feed item and
//!   after every merged batch: `Units` (and a replica's forwarded `Raw` stream, without its
//!   PINGs and REPLCONF) are encoded into the AOF's own stream and handed to the writer
//!   thread with the per-shard merged counts (`aof::sync`). State lives behind one lock
//!   (the control core's, or a shard taking its own round, below). The end of a rewrite is in
//!   [`rewrite`].
//! - Start-up: `main` parses the AOF before the shards start (`aof::load`); the base's keys
//!   are loaded like a start-up RDB, then shard 0 replays the commands as a master client
//!   ([`crate::conn::master::replay`]) while no shard accepts clients yet ([`startup`]); then
//!   the control core opens the last incr file (creating a base for an empty dataset, as
//!   Redis's `aofOpenIfNeededOnServerStart`), turns the feed on and lets shards accept.
//! - BGREWRITEAOF ([`request_rewrite`]): the control core arms the switch and asks shard 0's
//!   [`rewrite_driver`] for a forkless snapshot. At the snapshot's first feed mark the control
//!   core opens the next incr file (and persists the manifest listing it), so everything after
//!   the snapshot's point in time goes there; the driver writes the snapshot as
//!   `temp-rewriteaof-bg-<pid>.aof`; then the base is renamed into the directory, the manifest
//!   swapped and the superseded files deleted (unless `aof-disable-auto-gc`).
//! - A shard takes its own round's records ([`take_round`], the feed's round hook): it encodes
//!   and writes them itself, as Redis writes its AOF in `beforeSleep`, with whatever other
//!   shards queued before them, while the control core allows it (the AOF is on and not
//!   paused, and replication takes no records: no backlog, no replica, not a replica). Under
//!   `always` the writer's syncer thread fdatasyncs them while the shard goes on serving; the
//!   replies wait for that fdatasync (under `everysec` and `no`, for the write). Every thread
//!   pops the feed under this module's lock, so the file keeps the feed's order; a shard that
//!   finds the lock taken leaves its records to whoever holds it or to the control core; any
//!   item other than command records stops the shard and goes back to the control core, which
//!   decides again after its next merge. Only while the writer thread has nothing queued
//!   (`Writer::quick`), so that the bytes keep their order with its work. This saves the
//!   control core's two thread switches per round: with two shards and `appendfsync no`,
//!   `redis-benchmark -t set -P 1` went from 59.6k to 73.5k requests/s, the same as with the
//!   AOF off.
//! - `CONFIG SET appendonly yes` starts the AOF with a rewrite (`aof_state` WAIT_REWRITE:
//!   writes before the snapshot's mark are in the base and are not appended); `no` stops it.

mod rewrite;

use crate::aof::manifest::Manifest;
use crate::aof::writer::{Files, Job, Writer};
use crate::aof::{load, status, sync, Settings};
use crate::cmd::NodeInfo;
use crate::replication::feed::{Feed, FeedItem, Receiver, Unit};
use crate::replication::stream::StreamEncoder;
use crate::runtime::aof_base::{empty_base, write_base, BaseJob};
use crate::runtime::shard::Shard;
use crate::runtime::start_flag::StartFlag;
use bytes::BytesMut;
use futures_channel::mpsc;
use futures_lite::StreamExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Shards may accept clients (the AOF is loaded and open, or off).
static READY: StartFlag = StartFlag::new();
/// Shard 0 replayed the AOF's commands.
static REPLAYED: StartFlag = StartFlag::new();
/// What `main` loaded for the replay and the opening.
static LOADED: Mutex<Option<load::Loaded>> = Mutex::new(None);

/// Failed rewrites in a row from which automatic rewrites are limited.
const LIMIT_THRESHOLD: u64 = 3;
/// The longest wait between limited rewrites, in minutes.
const LIMIT_MAX_MIN: u64 = 60;

/// The temp incr file the stream goes to while the AOF waits for its first base
/// (`getTempIncrAofName`).
fn temp_incr_name(prefix: &str) -> String {
    format!("temp-{prefix}.incr")
}

/// Requests for the control core's AOF task.
enum Event {
    /// BGREWRITEAOF, with its number (see [`REWRITE_REQUESTS`]).
    Rewrite(u64),
}

/// BGREWRITEAOF requests made so far: a request still on its way to the control core when the
/// rewrite is killed (`CONFIG SET appendonly no`, SHUTDOWN) is dropped when it arrives, as
/// Redis's kill of the child it forked before replying ends that rewrite.
static REWRITE_REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A channel whose receiver one task takes (`take`).
pub(super) struct Chan<T> {
    pub(super) tx: mpsc::UnboundedSender<T>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<T>>>,
}

impl<T> Chan<T> {
    pub(super) fn new() -> Chan<T> {
        let (tx, rx) = mpsc::unbounded();
        Chan { tx, rx: Mutex::new(Some(rx)) }
    }
    pub(super) fn take(&self) -> Option<mpsc::UnboundedReceiver<T>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn events() -> &'static Chan<Event> {
    static C: OnceLock<Chan<Event>> = OnceLock::new();
    C.get_or_init(Chan::new)
}

fn jobs() -> &'static Chan<BaseJob> {
    static C: OnceLock<Chan<BaseJob>> = OnceLock::new();
    C.get_or_init(Chan::new)
}

/// Keeps what the start-up load found for the replay and the opening.
pub fn stash(loaded: load::Loaded) {
    *LOADED.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
}

/// BGREWRITEAOF's reply text (`bgrewriteaofCommand`). `in_exec`: called inside EXEC, where
/// Redis only schedules the rewrite (the cron starts it after the transaction).
pub fn request_rewrite(node: &NodeInfo, in_exec: bool) -> Result<&'static str, &'static str> {
    let busy = in_exec || crate::cmd::bgsave::running() != 0;
    if busy && !status::REWRITING.load(Ordering::Acquire) {
        status::SCHEDULED.store(true, Ordering::Release);
        // A manual rewrite lifts the failure limit.
        status::REWRITE_FAILURES.store(0, Ordering::Relaxed);
    } else if status::REWRITING.swap(true, Ordering::AcqRel) {
        return Err("ERR Background append only file rewriting already in progress");
    } else {
        status::REWRITE_START.store(crate::aof::now_s(), Ordering::Relaxed);
        prepare_child(node);
    }
    if !in_exec {
        let n = REWRITE_REQUESTS.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = events().tx.unbounded_send(Event::Rewrite(n));
    }
    Ok(if busy {
        "Background append only file rewriting scheduled"
    } else {
        "Background append only file rewriting started"
    })
}

/// A shutdown with the AOF on: what was merged is written, the room written ahead is cut off
/// and the file fdatasync'ed before the process exits (Redis's `prepareForShutdown`).
pub fn close_for_shutdown() {
    let done = with(|c| {
        if c.state == State::Off {
            return None;
        }
        c.commit();
        let w = c.writer.as_ref()?;
        let (tx, rx) = std::sync::mpsc::channel();
        w.send(Job::Op(Box::new(move |f| {
            f.finish();
            let _ = tx.send(());
        })));
        Some(rx)
    });
    if let Some(rx) = done.flatten() {
        tracing::info!("Calling fsync() on the AOF file.");
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
}

/// The temp file a rewrite writes its base to (`temp-rewriteaof-bg-<pid>.aof`, in `dir`).
pub fn rewrite_temp() -> PathBuf {
    PathBuf::from(format!("temp-rewriteaof-bg-{}.aof", std::process::id()))
}

/// Starts the rewrite's child before the command replies (see `save_child::prepare_aof`).
fn prepare_child(node: &NodeInfo) {
    let incremental = Settings::from_config(&node.config()).incremental_fsync;
    let autosync = if incremental { crate::runtime::aof_base::AUTOSYNC_BYTES } else { 0 };
    crate::runtime::save_child::prepare_aof(&rewrite_temp(), autosync);
}

/// CONFIG SET changed the configuration: the AOF task looks at it now. Turning `appendonly`
/// on or off shows in INFO at once, as in Redis (`startAppendOnly` starts the rewrite before
/// replying); inside EXEC (`in_exec`) the rewrite is scheduled instead, as Redis does.
/// True when the AOF was turned on and its rewrite started: the reply waits for the snapshot's
/// start (`aof_base::snapshot_begun`).
pub fn config_changed(node: &NodeInfo, in_exec: bool) -> bool {
    let settings = Settings::from_config(&node.config());
    crate::aof::padding::set_enabled(settings.preallocate);
    let on = settings.enabled;
    let changed = on != status::ENABLED.swap(on, Ordering::AcqRel);
    let mut begins = false;
    if changed && !on {
        // `stopAppendOnly` kills a running rewrite before CONFIG SET replies.
        // The manifest naming the killed rewrite's incr file is on disk before the reply.
        let persisted = with(|c| {
            c.kill_rewrite();
            c.writer_barrier()
        });
        if let Some(rx) = persisted.flatten() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }
    if changed && on && !status::REWRITING.load(Ordering::Acquire) {
        if crate::cmd::bgsave::running() != 0 {
            tracing::warn!("AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
            status::SCHEDULED.store(true, Ordering::Release);
        } else if in_exec {
            tracing::warn!(
                "AOF was enabled during a transaction. An AOF background was scheduled to start when possible."
            );
            status::SCHEDULED.store(true, Ordering::Release);
        } else {
            status::REWRITING.store(true, Ordering::Release);
            status::REWRITE_START.store(crate::aof::now_s(), Ordering::Relaxed);
            crate::runtime::aof_base::expect_begin();
            prepare_child(node);
            begins = true;
        }
    }
    // `aof-disable-auto-gc no` drops the history from the manifest before CONFIG SET
    // replies, as Redis's apply function (the files go in the background).
    let gc = with(|c| {
        let turned_on = c.settings.no_gc && !settings.no_gc;
        c.settings.no_gc = settings.no_gc;
        if turned_on {
            c.gc_history()
        } else {
            None
        }
    });
    if let Some(rx) = gc.flatten() {
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
    // Through the feed, so writes after this CONFIG SET's reply follow the change.
    node.repl.feed.push(FeedItem::Control(Box::new(|| {
        with(|c| c.tick());
    })));
    begins
}

/// True while the AOF, turned on at run time, waits for its first base (Redis's
/// `AOF_WAIT_REWRITE`): a shutdown then cannot leave a usable AOF behind.
pub fn writing_first_base() -> bool {
    // CONFIG SET appendonly yes sets `ENABLED` before it replies; the control core turns the
    // state to Wait a moment later, through the feed: either way the first base is pending.
    with(|c| c.state == State::Wait || (c.state == State::Off && status::ENABLED.load(Ordering::Acquire)))
        .unwrap_or(false)
}

/// A replica loaded its master's dataset (`restartAOFAfterSYNC`): with the AOF on, it is
/// stopped and started again, so a new base holds the synced data and the incr file the
/// stream that follows. Through the feed, so it lands before the stream after the sync.
pub fn restart_after_sync(node: &NodeInfo) {
    node.repl.feed.push(FeedItem::Control(Box::new(|| {
        with(|c| {
            if c.state != State::Off {
                let m = c.manifest.clone();
                c.stop();
                c.start_with(Some(m));
            }
        });
    })));
}

// ---- shards --------------------------------------------------------------------------------

/// Every shard, before it accepts clients: shard 0 replays the loaded commands; all wait
/// until the AOF is open, then start recording.
pub async fn startup(shard: &Rc<Shard>) {
    if shard.id == 0 {
        let cmds = LOADED.lock().unwrap_or_else(|p| p.into_inner()).as_mut().map(|l| std::mem::take(&mut l.cmds));
        if let Some(cmds) = cmds.filter(|c| !c.is_empty()) {
            // As Redis while loading: nothing expires until the load is done.
            let was = crate::storage::replica_expiry();
            crate::storage::set_replica_expiry(true);
            crate::conn::master::replay(shard.clone(), cmds).await;
            crate::storage::set_replica_expiry(was);
        }
        REPLAYED.set();
        tracing::debug!("AOF replay done on shard 0");
    }
    READY.wait().await;
    shard.state.borrow_mut().flush_changes();
}

/// Shard 0's rewrite driver: writes every snapshot asked for as the new base's temp file.
pub async fn rewrite_driver(shard: Rc<Shard>) {
    let Some(mut rx) = jobs().take() else { return };
    let node = shard.state.borrow().node.clone();
    while let Some(job) = rx.next().await {
        let generation = job.generation;
        let r = write_base(&shard, job).await;
        // Through the feed, after the snapshot's marks: a rewrite that fails right after
        // its marks were pushed still switched to its new incr file (as Redis's failed
        // rewrites leave theirs), and its result is judged against the mark it saw.
        node.repl.feed.push(FeedItem::Control(Box::new(move || {
            with(|c| c.rewrite_done(generation, r));
        })));
    }
}

// ---- control core --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    /// Turned on at run time: waiting for the first rewrite.
    Wait,
    On,
}

struct Ctl {
    node: Arc<NodeInfo>,
    settings: Settings,
    state: State,
    writer: Option<Writer>,
    manifest: Manifest,
    enc: StreamEncoder,
    buf: BytesMut,
    consumed: Vec<u64>,
    sent: Vec<u64>,
    /// Highest snapshot id whose mark went by.
    max_mark: u64,
    /// Switch to a new incr file at the next mark of a newer snapshot.
    armed: bool,
    /// The snapshot whose mark the running rewrite switched at.
    switched_at: Option<u64>,
    rewrite_start: Option<Instant>,
    /// Database a replica's forwarded stream selected.
    raw_db: usize,
    last_ts: u64,
    /// The running rewrite writes an RDB base.
    rewrite_rdb: bool,
    /// The running rewrite's number and its stop flag (see [`Ctl::kill_rewrite`]).
    rewrite_gen: u64,
    rewrite_abort: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// `aofRewriteLimited`'s state: the current delay and when it ends.
    limit_delay_min: u64,
    limit_until: Option<Instant>,
    /// DEBUG LOADAOF runs: merged items are not appended.
    paused: bool,
    /// BGREWRITEAOF requests up to this number were killed before they started.
    killed_requests: u64,
    /// The shard may take its rounds' records itself ([`take_round`]); set by the control
    /// core after a merge, cleared when any item but command records is popped.
    inline: bool,
}

/// The AOF's state: the control core's, lent to a shard for a round ([`take_round`]).
static CTL: Mutex<Option<Ctl>> = Mutex::new(None);

fn lock_ctl() -> std::sync::MutexGuard<'static, Option<Ctl>> {
    CTL.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut Ctl) -> R) -> Option<R> {
    lock_ctl().as_mut().map(f)
}

impl Ctl {
    /// Writes what was merged so far, then stops appending until resumed; `done` fires once
    /// the writer has written everything before.
    fn pause(&mut self, done: futures_channel::oneshot::Sender<()>) {
        self.commit();
        self.paused = true;
        match &self.writer {
            Some(w) => w.send(Job::Op(Box::new(move |_| {
                let _ = done.send(());
            }))),
            None => {
                let _ = done.send(());
            }
        }
    }

    /// DEBUG LOADAOF is done: appending resumes, with the sequence numbers of the manifest it
    /// read (`aofLoadManifestFromDisk`).
    fn resume(&mut self, manifest: Option<Manifest>) {
        self.paused = false;
        if let Some(m) = manifest {
            if self.state == State::On && m.last_incr().map(|i| &i.name) == self.manifest.last_incr().map(|i| &i.name) {
                self.manifest = m;
            }
        }
    }

    fn writing(&self) -> bool {
        if self.paused {
            return false;
        }
        self.state == State::On || (self.state == State::Wait && self.switched_at.is_some())
    }

    fn timestamp(&mut self) {
        if self.settings.timestamps {
            let now = crate::aof::now_s();
            if now != self.last_ts {
                self.last_ts = now;
                self.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
    }

    fn observe(&mut self, item: &FeedItem) {
        match item {
            FeedItem::Units { shard, units, atomic } => {
                if let Some(c) = self.consumed.get_mut(*shard) {
                    *c += 1;
                }
                if self.writing() {
                    self.timestamp();
                    self.enc.put_units_for(&mut self.buf, units, *atomic, Unit::TO_AOF);
                }
            }
            FeedItem::Raw(b) if self.writing() => {
                for argv in load::split_commands(b.clone()) {
                    let is = |w: &[u8]| argv[0].eq_ignore_ascii_case(w);
                    if is(b"select") {
                        self.raw_db = argv.get(1).and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()).unwrap_or(0);
                    } else if !is(b"ping") && !is(b"replconf") {
                        self.timestamp();
                        self.enc.put_units(&mut self.buf, &[Unit::new(self.raw_db, vec![argv])], false);
                    }
                }
            }
            FeedItem::Mark { snapshot, .. } => {
                if self.armed && *snapshot > self.max_mark {
                    self.switch(*snapshot);
                }
                self.max_mark = self.max_mark.max(*snapshot);
            }
            _ => {}
        }
    }

    fn commit(&mut self) {
        if self.buf.is_empty() && self.consumed == self.sent {
            return;
        }
        match &self.writer {
            Some(w) => {
                w.append(self.buf.split().freeze(), self.consumed.clone());
            }
            None => {
                self.buf.clear();
                sync::publish(&self.consumed);
            }
        }
        self.sent.clone_from(&self.consumed);
    }

    fn op(&self, f: impl FnOnce(&mut Files) + Send + 'static) {
        if let Some(w) = &self.writer {
            w.send(Job::Op(Box::new(f)));
        }
    }

    /// At the rewrite's snapshot mark: the next incr file takes the stream from here.
    fn switch(&mut self, snapshot: u64) {
        self.commit();
        self.armed = false;
        self.switched_at = Some(snapshot);
        self.enc.reset_db();
        // While the AOF waits for its first base, the stream goes to a temp incr file that
        // only the rewrite's success names in the manifest (`openNewIncrAofForAppend`).
        let name = if self.state == State::On {
            self.manifest.new_incr(&self.settings.paths.prefix)
        } else {
            temp_incr_name(&self.settings.paths.prefix)
        };
        let persist = (self.state == State::On).then(|| self.manifest.clone());
        self.op(move |f| {
            if let Err(e) = f.open(&name) {
                tracing::warn!("Can't open the append-only file {}: {}", name, e);
                sync::set_write_error(e.to_string());
                return;
            }
            if let Some(m) = persist {
                if let Err(e) = crate::aof::writer::persist_manifest(&f.paths, &m) {
                    tracing::warn!("{}", e);
                }
            }
            tracing::info!("Creating AOF incr file {} on background rewrite", name);
        });
    }

    /// Replies wait for the AOF while it is on: written (as Redis writes before it replies)
    /// or, under `always`, fdatasync'ed (the writer publishes by that rule).
    fn set_always(&self) {
        sync::set_always(self.state == State::On);
    }

    fn start_rewrite(&mut self) {
        if self.rewrite_start.is_some() {
            status::SCHEDULED.store(false, Ordering::Release);
            crate::runtime::aof_base::begin_settled();
            return;
        }
        if crate::cmd::bgsave::running() != 0 {
            crate::runtime::aof_base::begin_settled();
            crate::runtime::save_child::discard_prepared_aof();
            status::REWRITING.store(false, Ordering::Release);
            status::SCHEDULED.store(true, Ordering::Release);
            return;
        }
        status::SCHEDULED.store(false, Ordering::Release);
        status::REWRITING.store(true, Ordering::Release);
        status::REWRITE_START.store(crate::aof::now_s(), Ordering::Relaxed);
        self.rewrite_start = Some(Instant::now());
        self.armed = self.state != State::Off;
        self.switched_at = None;
        if self.settings.no_fsync_on_rewrite {
            self.op(|f| f.skip_fsync = true);
        }
        tracing::info!("Background append only file rewriting started");
        // INFO `aof_rewrites` and `total_forks` count rewrites started, as Redis's forks.
        status::REWRITES.fetch_add(1, Ordering::Relaxed);
        self.rewrite_gen += 1;
        let abort = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.rewrite_abort = Some(abort.clone());
        let job = BaseJob {
            temp: rewrite_temp(),
            rdb: self.settings.rdb_preamble,
            timestamps: self.settings.timestamps,
            incremental: self.settings.incremental_fsync,
            abort,
            generation: self.rewrite_gen,
        };
        self.rewrite_rdb = job.rdb;
        let _ = jobs().tx.unbounded_send(job);
    }

    /// Opens the AOF at start-up (`aofOpenIfNeededOnServerStart`).
    fn open_at_start(&mut self, loaded: Option<load::Loaded>) -> Result<(), String> {
        let paths = self.settings.paths.clone();
        let (mut m, base_size, total) = match loaded {
            Some(l) => (l.manifest.unwrap_or_default(), l.base_size, l.total_size),
            None => (Manifest::default(), 0, 0),
        };
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| format!("Can't open or create append-only dir {}: {e}", paths.dir.display()))?;
        let (mut base_size, mut total) = (base_size, total);
        if m.base.is_none() && m.incr.is_empty() {
            let name = m.new_base(&paths.prefix, self.settings.rdb_preamble);
            let data = empty_base(self.settings.rdb_preamble, self.settings.timestamps);
            base_size = data.len() as u64;
            total = base_size;
            crate::persist::disk::write_atomic(&paths.file(&name), &data)
                .map_err(|e| format!("Can't create the AOF base file {name}: {e}"))?;
            tracing::info!("Creating AOF base file {} on server start", name);
        }
        let created = m.incr.is_empty();
        let name = match m.last_incr() {
            Some(i) => i.name.clone(),
            None => m.new_incr(&paths.prefix),
        };
        let history: Vec<String> = m.history.iter().map(|h| h.name.clone()).collect();
        if !self.settings.no_gc && !history.is_empty() {
            for h in &history {
                tracing::info!("Removing the history file {} in the background", h);
                let _ = std::fs::remove_file(paths.file(h));
            }
            m.history.clear();
        }
        crate::aof::writer::persist_manifest(&paths, &m)?;
        let writer = Writer::start(paths.clone(), self.settings.fsync).map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::channel();
        let n = name.clone();
        writer.send(Job::Op(Box::new(move |f| {
            let _ = tx.send(f.open(&n).map_err(|e| e.to_string()));
        })));
        rx.recv().map_err(|e| e.to_string())?.map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
        if created {
            tracing::info!("Creating AOF incr file {} on server start", name);
        } else {
            tracing::info!("Opening AOF incr file {} on server start", name);
        }
        status::CURRENT_SIZE.store(total, Ordering::Relaxed);
        status::BASE_SIZE.store(base_size, Ordering::Relaxed);
        self.writer = Some(writer);
        self.manifest = m;
        self.turn_on(State::On);
        Ok(())
    }

    fn turn_on(&mut self, state: State) {
        self.state = state;
        self.enc.reset_db();
        status::ENABLED.store(true, Ordering::Release);
        self.node.repl.feed.set_aof(true);
        self.set_always();
    }

    /// `CONFIG SET appendonly yes` (`startAppendOnly`): a rewrite writes the base.
    fn start(&mut self) {
        self.start_with(None);
    }

    /// [`Ctl::start`] with the manifest already known (else it is read from disk).
    fn start_with(&mut self, known: Option<Manifest>) {
        // A rewrite running with the AOF off (BGREWRITEAOF) is not accumulating the stream
        // this start needs: it is replaced.
        if self.rewrite_start.is_some() {
            tracing::warn!("AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now.");
            self.kill_rewrite();
        }
        let paths = self.settings.paths.clone();
        let m = match known.map_or_else(|| load::read_manifest(&paths), Ok) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{}", e);
                Manifest::default()
            }
        };
        if let Err(e) = std::fs::create_dir_all(&paths.dir) {
            tracing::warn!("Can't open or create append-only dir {}: {}", paths.dir.display(), e);
            crate::runtime::aof_base::begin_settled();
            return;
        }
        match Writer::start(paths, self.settings.fsync) {
            Ok(w) => self.writer = Some(w),
            Err(e) => {
                tracing::warn!("Redis needs to enable the AOF but can't start the writer: {}", e);
                crate::runtime::aof_base::begin_settled();
                return;
            }
        }
        self.manifest = m;
        self.sent.clear();
        self.turn_on(State::Wait);
        status::CURRENT_SIZE.store(0, Ordering::Relaxed);
        self.start_rewrite();
    }

    /// `killAppendOnlyChild`: stops the running rewrite, if any; its result will be ignored.
    /// Not a failure (its child gets SIGUSR1).
    fn kill_rewrite(&mut self) {
        if self.rewrite_start.take().is_none() {
            // A rewrite that replied "started" (its child is prepared) and has not reached the
            // control core yet ends here too: its request is dropped when it arrives.
            self.killed_requests = REWRITE_REQUESTS.load(Ordering::Acquire);
            status::SCHEDULED.store(false, Ordering::Release);
            crate::runtime::aof_base::begin_settled();
            if status::REWRITING.swap(false, Ordering::AcqRel) {
                let pid = crate::runtime::save_child::discard_prepared_aof().unwrap_or(0);
                tracing::info!("Killing running AOF rewrite child: {}", pid);
                // Redis had forked it (INFO `aof_rewrites`) and opened its new incr file.
                status::REWRITES.fetch_add(1, Ordering::Relaxed);
                if self.state == State::On {
                    self.switch(self.max_mark);
                    self.switched_at = None;
                }
            }
            return;
        }
        let pid = crate::runtime::save_child::aof_child().unwrap_or(0);
        tracing::info!("Killing running AOF rewrite child: {}", pid);
        if let Some(a) = self.rewrite_abort.take() {
            a.store(true, Ordering::Release);
        }
        crate::runtime::save_child::kill(crate::runtime::save_child::Registry::AofRewrite);
        self.rewrite_gen += 1;
        // Redis opened the rewrite's new incr file before its fork: it stays after the kill
        // (here the switch waits for the snapshot's mark, which may not have passed yet).
        if self.armed && self.state == State::On {
            self.switch(self.max_mark);
        }
        self.armed = false;
        self.switched_at = None;
        self.op(|f| f.skip_fsync = false);
        status::REWRITING.store(false, Ordering::Release);
    }

    /// `CONFIG SET appendonly no` (`stopAppendOnly`).
    fn stop(&mut self) {
        self.kill_rewrite();
        self.commit();
        self.state = State::Off;
        self.armed = false;
        self.switched_at = None;
        self.node.repl.feed.set_aof(false);
        sync::set_always(false);
        status::ENABLED.store(false, Ordering::Release);
        if let Some(w) = self.writer.take() {
            w.send(Job::Stop(Box::new(|| {})));
        }
        sync::publish(&self.consumed);
    }

    /// Hears once the writer has done every file operation queued before (None without one).
    fn writer_barrier(&self) -> Option<std::sync::mpsc::Receiver<()>> {
        self.writer.as_ref()?;
        let (tx, rx) = std::sync::mpsc::channel();
        self.op(move |_| {
            let _ = tx.send(());
        });
        Some(rx)
    }

    /// `aofDelHistoryFiles`: the manifest without its history files, persisted by the writer
    /// (in its order with the file operations before), then the files removed. The receiver
    /// hears once the manifest is persisted; None when there was no history.
    fn gc_history(&mut self) -> Option<std::sync::mpsc::Receiver<()>> {
        if self.state == State::Off || self.manifest.history.is_empty() {
            return None;
        }
        let names: Vec<String> = self.manifest.history.drain(..).map(|h| h.name).collect();
        let m = self.manifest.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.op(move |f| {
            if let Err(e) = crate::aof::writer::persist_manifest(&f.paths, &m) {
                tracing::warn!("{}", e);
            }
            let _ = tx.send(());
            for n in &names {
                tracing::info!("Removing the history file {} in the background", n);
                let _ = std::fs::remove_file(f.paths.file(n));
            }
        });
        Some(rx)
    }

    /// The cron's look at the configuration and the rewrite triggers.
    fn tick(&mut self) {
        let s = Settings::from_config(&self.node.config());
        let old = std::mem::replace(&mut self.settings, s.clone());
        if s.fsync != old.fsync {
            if let Some(w) = &self.writer {
                w.send(Job::Policy(s.fsync));
            }
            self.set_always();
        }
        if old.no_gc && !s.no_gc {
            self.gc_history();
        }
        match (self.state, s.enabled) {
            (State::Off, true) => self.start(),
            (State::Wait | State::On, false) => self.stop(),
            _ => {}
        }
        if status::SCHEDULED.load(Ordering::Acquire)
            && self.rewrite_start.is_none()
            && crate::cmd::bgsave::running() == 0
            && !self.limited()
        {
            self.start_rewrite();
        }
        if self.state == State::On && self.rewrite_start.is_none() && s.auto_pct > 0 {
            let cur = status::CURRENT_SIZE.load(Ordering::Relaxed);
            let base = status::BASE_SIZE.load(Ordering::Relaxed).max(1);
            let growth = (cur * 100 / base).saturating_sub(100);
            if cur > s.auto_min && growth >= s.auto_pct && crate::cmd::bgsave::running() == 0 && !self.limited() {
                tracing::info!("Starting automatic rewriting of AOF on {}% growth", growth);
                self.start_rewrite();
            }
        }
    }
}

/// DEBUG LOADAOF (`aof_load`): writes what was merged so far, then stops appending until
/// [`resume`]; `done` fires once the writer has written everything before. On the control
/// core, through the feed.
pub(super) fn pause(done: futures_channel::oneshot::Sender<()>) {
    // Not set up yet: nothing to pause (`done` is dropped, which ends the wait).
    with(|c| c.pause(done));
}

/// DEBUG LOADAOF is done: appending resumes (see [`Ctl::resume`]).
pub(super) fn resume(manifest: Option<Manifest>) {
    with(|c| c.resume(manifest));
}

/// The merger's next feed item, recorded here before the replication master takes it.
pub fn take(rx: &mut Receiver<'_>) -> Option<FeedItem> {
    let mut g = lock_ctl();
    let item = rx.try_recv()?;
    if let Some(c) = g.as_mut() {
        if !matches!(item, FeedItem::Units { .. }) {
            // What it changes is seen by the control core's next decision.
            c.inline = false;
        }
        c.observe(&item);
    }
    Some(item)
}

/// The merger's hook: after a merged batch. `repl_takes_units`: replication needs the
/// command records (`Master::takes_units`), so the shard may not take them.
pub fn commit(repl_takes_units: bool) {
    with(|c| {
        c.commit();
        c.inline = !repl_takes_units && c.state == State::On && !c.paused && sync::must_wait();
    });
}

/// A shard's round hook (see the module's doc): takes the command records queued in the feed
/// and writes them (the syncer fdatasyncs them under `always`) while the control core allows
/// it; stops at any other item, which goes back to the control core. Never waits for the
/// control core.
pub fn take_round(feed: &Feed) {
    let Ok(mut g) = CTL.try_lock() else { return };
    let Some(c) = g.as_mut().filter(|c| c.inline && c.writer.as_ref().is_some_and(Writer::quick)) else { return };
    let mut took = false;
    while let Some(item) = feed.pop() {
        if !matches!(item, FeedItem::Units { .. }) {
            c.inline = false;
            feed.put_back(item);
            break;
        }
        c.observe(&item);
        took = true;
    }
    if took {
        c.commit();
    }
}

/// The control core's AOF task: opens the AOF after the start-up replay, then runs the cron
/// and the events.
pub async fn run(node: Arc<NodeInfo>) {
    sync::set_shards(node.shards);
    let settings = Settings::from_config(&node.config());
    crate::aof::padding::set_enabled(settings.preallocate);
    let ctl = Ctl {
        node: node.clone(),
        settings: settings.clone(),
        state: State::Off,
        writer: None,
        manifest: Manifest::default(),
        enc: StreamEncoder::default(),
        buf: BytesMut::new(),
        consumed: vec![0; node.shards],
        sent: vec![0; node.shards],
        max_mark: 0,
        armed: false,
        switched_at: None,
        rewrite_start: None,
        raw_db: 0,
        last_ts: 0,
        rewrite_rdb: true,
        rewrite_gen: 0,
        rewrite_abort: None,
        killed_requests: 0,
        limit_delay_min: 0,
        limit_until: None,
        paused: false,
        inline: false,
    };
    *lock_ctl() = Some(ctl);
    REPLAYED.wait().await;
    if settings.enabled {
        let loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Err(e)) = with(|c| c.open_at_start(loaded)) {
            tracing::warn!("{}", e);
            crate::process::shutdown_and_exit(1);
        }
    }
    READY.set();
    tracing::debug!("AOF start-up done on the control core");
    glommio::spawn_local(async {
        let Some(mut rx) = events().take() else { return };
        while let Some(ev) = rx.next().await {
            with(|c| match ev {
                Event::Rewrite(n) if n <= c.killed_requests => {}
                Event::Rewrite(_) => c.start_rewrite(),
            });
        }
    })
    .detach();
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        with(|c| c.tick());
    }
}
