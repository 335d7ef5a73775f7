//! Forkless snapshots at run time: the RDB byte stream of a point-in-time snapshot, the BGSAVE
//! driver that writes it to the RDB file, and the save-point cron.
//!
//! [`SnapshotStream`] is the API BGSAVE, replication's full sync (`runtime::repl_master`) and
//! an AOF rewrite use: [`SnapshotStream::start`] claims the node's one snapshot and begins it
//! on every shard while all are held (that instant is the snapshot's point in time; each shard
//! pushes its `FeedItem::Mark` there), then [`SnapshotStream::next`] yields the RDB file's
//! bytes chunk by chunk, pulling each shard's slots one time-sliced step (at most about
//! [`STEP_BYTES`] or `STEP_MICROS`) at a time over the mesh, so the shards keep serving
//! between steps and nothing holds the whole file; the caller calls [`SnapshotStream::pace`]
//! between chunks.
//! [`SnapshotStream::with_repl`] / [`SnapshotStream::without_data`] shape a full sync's file.
//! [`SnapshotStream::end`] must be called once the stream is done or abandoned (it removes
//! the pre-write hooks).
//!
//! The BGSAVE driver runs on shard 0, in a task queue with a small share of the CPU and a
//! latency requirement of [`SNAPSHOT_LATENCY`] (so the executor polls client sockets at least
//! that often while a snapshot runs); every step is time-sliced (`STEP_MICROS`) and the driver
//! pauses after each ([`SnapshotStream::pace`]: until the shard's thread has spent seven times
//! the step on other work, in its own CPU time, while it has clients to serve, so the snapshot
//! takes at most about an eighth of a busy shard's CPU and still ends; a full sync's snapshot
//! pauses one step per step, half the CPU, as a replica without its data protects nothing), so
//! client work keeps priority: it takes the snapshots BGSAVE began
//! (`cmd::bgsave::take_jobs`), writes the stream to `temp-bgsave-<pid>.rdb` in about 1 MiB
//! writes through a save child process (`runtime::save_child`; a writer thread when the child
//! cannot start), then fsync, rename to `dbfilename`, fsync of the directory: Redis's
//! `rdbSave` steps, off the shard's thread. The writer thread and the child run at idle CPU
//! priority and get the normal class back when a block waits [`WRITER_STARVED`] for them.

use super::idle_writer::{Booster, IdleWriter};
use super::save_child;
use super::shard::Shard;
use crate::cmd::bgsave::{self, Outcome};
use crate::persist::file::ReplInfo;
use crate::persist::snapshot::{Plan, RdbStream, STEP_BYTES, STEP_MICROS};
use crate::protocol::Reply;
use bytes::Bytes;
use futures_lite::StreamExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes the driver gathers before one write to the file.
const WRITE_BYTES: usize = 1 << 20;
/// How long the snapshot's task queue may run before the shard's executor goes back to its
/// reactor (client sockets): the queue is created with this latency requirement, which makes
/// glommio's preemption timer fire this often while a snapshot runs.
pub const SNAPSHOT_LATENCY: Duration = Duration::from_micros(300);

/// How long one block may wait for the writer (a thread and a save child at idle CPU priority)
/// before both are moved back to the normal class for the rest of the save: a shard that keeps
/// its CPU busy would otherwise starve them and the save would not end.
const WRITER_STARVED: Duration = Duration::from_millis(200);

/// How often a long `rdb-key-save-delay` wait looks whether its save was abandoned.
const ABORT_POLL: Duration = Duration::from_millis(20);

/// The pause after a step when the shard served no client since its previous step.
const STEP_PAUSE: Duration = Duration::from_micros(20);
/// While clients keep a shard busy, the pause after a step lasts this many times the step
/// (measured with 1M keys under redis-benchmark: 7 gave a lower client p99 and p95 during the
/// save than 3, which gave a lower one than a fixed 20 µs pause).
const BUSY_RATIO: u32 = 7;
/// [`BUSY_RATIO`] for a full sync's snapshot: a replica without its data protects nothing, so
/// its snapshot takes a larger share of a busy shard than a BGSAVE's.
const FULL_SYNC_BUSY_RATIO: u32 = 1;

/// The longest pause after a step, in multiples of the pause wanted (see
/// [`SnapshotStream::pace`]).
const PAUSE_CAP: u32 = 4;

/// The calling thread's CPU time (None if the clock cannot be read).
fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; clock_gettime has no other memory effects.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The time spent since `wall` and `cpu` were read: this thread's CPU time when `cpu` is known
/// (a thread the kernel preempted for another process did not spend that time), else wall time.
fn spent_since(wall: std::time::Instant, cpu: Option<Duration>) -> Duration {
    match (cpu, thread_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall.elapsed(),
    }
}

/// One piece of a snapshot's RDB stream, by what it holds.
pub enum Part {
    /// The signature, aux fields and function libraries.
    Header(Bytes),
    /// A database begins (SELECTDB and RESIZEDB of database `.0`).
    Database(usize, Bytes),
    /// A run of whole keys of the current database, in RDB key encoding.
    Keys(Bytes),
    /// EOF and the checksum.
    End(Bytes),
}

impl Part {
    /// The piece's bytes.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Part::Header(b) | Part::Database(_, b) | Part::Keys(b) | Part::End(b) => b,
        }
    }
}

/// Redis's `rdb-key-save-delay` (a testing aid) for `keys` keys just encoded: `delay` µs per
/// key, or with a negative value a 1 µs pause for one key in `-delay` on average (Redis's
/// `debugDelay`). The value is read when the snapshot begins, as Redis's child has its own
/// copy of the configuration.
/// A set `abort` flag (the save child died) ends the wait early.
async fn key_save_delay(delay: i64, keys: u64, abort: Option<&AtomicBool>) {
    if delay > 0 && keys > 0 {
        let total = Duration::from_micros((delay as u64).saturating_mul(keys));
        let Some(abort) = abort else {
            glommio::timer::sleep(total).await;
            return;
        };
        let end = std::time::Instant::now() + total;
        while !abort.load(Ordering::Acquire) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            glommio::timer::sleep(left.min(ABORT_POLL)).await;
        }
    } else if delay < 0 && keys > 0 {
        let hits = (0..keys).filter(|_| rand::random::<u64>() % delay.unsigned_abs() == 0).count();
        if hits > 0 {
            glommio::timer::sleep(Duration::from_micros(hits as u64)).await;
        }
    }
}

enum Stage {
    Header,
    /// Index into the databases to write, and the shard being pulled.
    Db(usize, usize, bool),
    Finish,
    Done,
}

/// A running snapshot read as RDB bytes.
pub struct SnapshotStream {
    plan: Plan,
    dbs: Vec<usize>,
    rdb: RdbStream,
    extra_aux: Vec<(Vec<u8>, Vec<u8>)>,
    repl: Option<ReplInfo>,
    stage: Stage,
    /// `rdb-key-save-delay` as it was when the stream's header was produced.
    key_delay_us: i64,
    /// Set when whatever consumes the stream is gone (a killed save child).
    abort: Option<Arc<AtomicBool>>,
    /// Keys the current shard's database reported saved so far (steps report totals).
    keys_seen: u64,
    /// Per shard: its command count at its last step (clients were active since when it grew).
    commands: Vec<u64>,
    /// How long the last step took, and whether its shard served commands since the one before.
    last_step: (Duration, bool),
    /// Whether the last step ran on the thread that drives the stream (its pause can then be
    /// measured in that thread's CPU time, see [`SnapshotStream::pace`]).
    step_here: bool,
    /// The pause after a step while clients keep its shard busy, in multiples of the step.
    busy_ratio: u32,
}

impl SnapshotStream {
    /// Claims the node's snapshot and begins it on every shard (all held at once); `extra_aux`
    /// are aux fields to add to the header (e.g. `repl-id`, `repl-offset` for a full sync).
    /// Fails when another snapshot runs.
    pub async fn start(shard: &Shard, extra_aux: Vec<(Vec<u8>, Vec<u8>)>) -> Result<SnapshotStream, Reply> {
        let Some(id) = bgsave::claim() else {
            return Err(Reply::err("ERR Another child process is active (AOF?)"));
        };
        let parts = shard.all_shards(bgsave::begin_shard, 0, &[]).await;
        match bgsave::plan_of(id, &parts) {
            Ok(plan) => Ok(SnapshotStream::from_plan(plan, extra_aux)),
            Err(e) => {
                end_on_shards(shard, id, None).await;
                bgsave::release(id);
                Err(e)
            }
        }
    }

    /// The stream of a snapshot already begun on every shard.
    pub fn from_plan(plan: Plan, extra_aux: Vec<(Vec<u8>, Vec<u8>)>) -> SnapshotStream {
        let dbs = plan.databases();
        SnapshotStream {
            plan,
            dbs,
            rdb: RdbStream::new(),
            extra_aux,
            repl: None,
            stage: Stage::Header,
            key_delay_us: 0,
            abort: None,
            keys_seen: 0,
            commands: Vec::new(),
            last_step: (Duration::ZERO, false),
            step_here: false,
            busy_ratio: BUSY_RATIO,
        }
    }

    /// Records a step of shard `s` that took `took`, the shard having served `commands` in all.
    fn note_step(&mut self, s: usize, took: Duration, commands: u64) {
        if self.commands.len() <= s {
            self.commands.resize(s + 1, u64::MAX);
        }
        let before = std::mem::replace(&mut self.commands[s], commands);
        self.last_step = (took, before != u64::MAX && commands != before);
    }

    /// The pause after a step, which lets the shard's executor serve clients before the next
    /// one: sleeping (rather than yielding) takes the snapshot's task queue off the run queue,
    /// so the executor polls its reactor and runs every client task that became ready first
    /// (yielding only when the queue's time slice is used up measured 2x worse client p99
    /// under load: the snapshot then runs whole slices whenever clients are momentarily idle).
    /// While clients keep the shard busy the pause lasts until the shard's thread has spent
    /// [`BUSY_RATIO`] times the step on other work, so the snapshot takes at most a fixed
    /// share of the shard's CPU (and still that share: it always ends). That is measured in
    /// the thread's CPU time when the step ran on this thread: the shard shares its CPU (with
    /// the clients' own processes, say), so a pause of `BUSY_RATIO` times the step in wall time
    /// gave the steps ~20% of the shard's CPU instead of an eighth under redis-benchmark on
    /// the same CPU. The pause lasts at most [`PAUSE_CAP`] times that in wall time (a shard
    /// that gets little CPU still saves). When the shard served nobody since its previous step,
    /// the pause is only [`STEP_PAUSE`].
    pub async fn pace(&self) {
        let (took, busy) = self.last_step;
        if !busy {
            glommio::timer::sleep(STEP_PAUSE).await;
            return;
        }
        let want = (took * self.busy_ratio).max(STEP_PAUSE);
        let cpu0 = thread_cpu();
        let began = std::time::Instant::now();
        glommio::timer::sleep(want).await;
        if !self.step_here {
            return;
        }
        let (Some(cpu0), cap) = (cpu0, want * PAUSE_CAP) else { return };
        loop {
            let used = thread_cpu().map_or(want, |c| c.saturating_sub(cpu0));
            let waited = began.elapsed();
            if used >= want || waited >= cap {
                return;
            }
            glommio::timer::sleep((want - used).max(STEP_PAUSE).min(cap - waited)).await;
        }
    }

    /// Stops waiting out `rdb-key-save-delay` once `flag` is set.
    pub(crate) fn abort_on(&mut self, flag: Arc<AtomicBool>) {
        self.abort = Some(flag);
    }

    /// Adds the replication aux fields of a full sync (`repl-stream-db`, `repl-id`,
    /// `repl-offset`, in Redis's place); call before the first [`SnapshotStream::next`].
    pub fn with_repl(mut self, info: ReplInfo) -> SnapshotStream {
        self.repl = Some(info);
        self.busy_ratio = FULL_SYNC_BUSY_RATIO;
        self
    }

    /// Leaves the keys out (`rdb-filter-only`): the file has no database; call before the
    /// first [`SnapshotStream::next`].
    pub fn without_data(mut self) -> SnapshotStream {
        self.dbs.clear();
        self
    }

    /// The snapshot's id.
    pub fn id(&self) -> u64 {
        self.plan.id
    }

    /// Bytes produced so far.
    pub fn bytes(&self) -> u64 {
        self.rdb.len()
    }

    /// The next bytes of the RDB file; None once the file is complete. An error means the
    /// snapshot cannot complete (a shard lost its database); call [`SnapshotStream::end`].
    pub async fn next(&mut self, shard: &Shard) -> Option<Result<Bytes, String>> {
        self.next_part(shard).await.map(|r| r.map(Part::into_bytes))
    }

    /// As [`SnapshotStream::next`], saying what the bytes hold (the AOF rewrite turns the
    /// key runs into commands).
    pub async fn next_part(&mut self, shard: &Shard) -> Option<Result<Part, String>> {
        loop {
            match self.stage {
                Stage::Header => {
                    // A CONFIG SET made on another shard's connection reaches this shard's
                    // copy at its next command: look now, the stream may be all it runs.
                    shard.refresh_config();
                    self.key_delay_us =
                        shard.state.borrow().config.get("rdb-key-save-delay").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let used = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
                    let now = crate::storage::now_ms() / 1000;
                    let b = self.rdb.header_repl(now, used, self.repl.as_ref(), &self.extra_aux);
                    self.stage = if self.dbs.is_empty() { Stage::Finish } else { Stage::Db(0, 0, false) };
                    return Some(Ok(Part::Header(Bytes::from(b))));
                }
                Stage::Db(i, s, started) => {
                    let db = self.dbs[i];
                    if !started {
                        let (size, expires) = self.plan.dbs[db];
                        self.stage = Stage::Db(i, s, true);
                        self.keys_seen = 0;
                        return Some(Ok(Part::Database(db, Bytes::from(self.rdb.database(db, size, expires)))));
                    }
                    // With `rdb-key-save-delay` a step takes one slot at a time and the stream
                    // waits that long per key after it (off the shard: clients are served).
                    let budget = if self.key_delay_us != 0 { 1 } else { STEP_BYTES };
                    let args = [self.plan.id.to_string(), db.to_string(), budget.to_string(), STEP_MICROS.to_string()];
                    let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
                    let began = std::time::Instant::now();
                    self.step_here = s == shard.id;
                    let cpu_began = if self.step_here { thread_cpu() } else { None };
                    let r = on_frozen(shard, s, bgsave::step_shard, args).await;
                    // A step on this thread counts in its CPU time; another shard's in wall time.
                    let took = spent_since(began, cpu_began);
                    let (bytes, done) = match r {
                        Reply::Array(v) => match &v[..] {
                            [Reply::Bulk(b), Reply::Int(d), Reply::Int(keys), Reply::Int(cmds)] => {
                                self.note_step(s, took, *cmds as u64);
                                let (total, seen) = (*keys as u64, self.keys_seen);
                                self.keys_seen = total;
                                key_save_delay(self.key_delay_us, total.saturating_sub(seen), self.abort.as_deref())
                                    .await;
                                (b.clone(), *d != 0)
                            }
                            _ => return Some(Err("bad snapshot step reply".into())),
                        },
                        Reply::Error(e) => return Some(Err(e.to_string())),
                        _ => return Some(Err("bad snapshot step reply".into())),
                    };
                    if done {
                        self.stage = match (s + 1 < shard.nshards, i + 1 < self.dbs.len()) {
                            (true, _) => {
                                self.keys_seen = 0;
                                Stage::Db(i, s + 1, true)
                            }
                            (false, true) => Stage::Db(i + 1, 0, false),
                            (false, false) => Stage::Finish,
                        };
                    }
                    if !bytes.is_empty() {
                        // The checksum is the step's work too: the pause is paced on both.
                        let (wall, cpu) = (std::time::Instant::now(), thread_cpu());
                        self.rdb.pass(&bytes);
                        self.last_step.0 += spent_since(wall, cpu);
                        return Some(Ok(Part::Keys(bytes)));
                    }
                }
                Stage::Finish => {
                    self.stage = Stage::Done;
                    return Some(Ok(Part::End(Bytes::from(self.rdb.finish()))));
                }
                Stage::Done => return None,
            }
        }
    }

    /// Ends the snapshot on every shard and releases it; `saved`: the stream reached its
    /// destination, so each shard's changes up to the start count as saved.
    pub async fn end(self, shard: &Shard, saved: bool) {
        end_on_shards(shard, self.plan.id, saved.then_some(&self.plan.dirty[..])).await;
        bgsave::release(self.plan.id);
    }
}

/// Ends snapshot `id` on every shard; `dirty`: per shard, the changes to mark as saved.
pub(crate) async fn end_on_shards(shard: &Shard, id: u64, dirty: Option<&[u64]>) {
    for s in 0..shard.nshards {
        let d = dirty.and_then(|d| d.get(s)).map_or(-1, |&d| d as i64);
        let args = vec![Bytes::from(id.to_string()), Bytes::from(d.to_string())];
        on_frozen(shard, s, bgsave::end_shard, args).await;
    }
}

/// Runs `run`, one step or the end of a running snapshot, on shard `target` at once, whoever
/// holds its gate (see `Msg::Frozen`): a busy script or a transaction waiting on another
/// shard does not hold the snapshot up, as it does not hold up Redis's forked child (a
/// SHUTDOWN during a busy script then finds the first AOF base written, or stops a BGSAVE
/// at once).
pub(crate) async fn on_frozen(shard: &Shard, target: usize, run: crate::cmd::ShardFn, args: Vec<Bytes>) -> Reply {
    if target == shard.id {
        return frozen_here(shard, run, &args);
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let gone = || Reply::err("ERR internal error: shard unavailable");
    if shard.mesh.send_to(target, super::mesh::Msg::Frozen { run, args, reply: tx }).await.is_err() {
        return gone();
    }
    rx.await.unwrap_or_else(|_| gone())
}

/// [`on_frozen`] on this shard. Nothing else: no clock tick (a script running meanwhile keeps
/// its time), no flush of recorded changes (a script's or a transaction's stay one unit), no
/// signal to blocked clients (a step creates no key).
pub(crate) fn frozen_here(shard: &Shard, run: crate::cmd::ShardFn, args: &[Bytes]) -> Reply {
    run(&mut shard.state.borrow_mut(), 0, args)
}

/// The temp file a BGSAVE writes (renamed to `dbfilename` when complete).
/// The temp file a BGSAVE writes before renaming it into place.
pub(crate) fn temp_path() -> PathBuf {
    PathBuf::from(format!("temp-bgsave-{}.rdb", std::process::id()))
}

/// Runs a blocking file operation on glommio's blocking thread.
pub(crate) async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
}

/// Shard 0's BGSAVE driver: writes every snapshot BGSAVE begins to the RDB file.
pub async fn bgsave_driver(shard: Rc<Shard>) {
    let Some(mut jobs) = bgsave::take_jobs() else { return };
    while let Some(job) = jobs.next().await {
        shard.refresh_config();
        let cfg = shard.state.borrow().config.clone();
        let outcome = match job {
            Ok(plan) => {
                let repl = plan.repl.clone();
                let mut stream = SnapshotStream::from_plan(plan, Vec::new());
                if let Some(info) = repl {
                    stream = stream.with_repl(info);
                }
                write_file(&shard, stream, &cfg, false).await.0
            }
            Err(e) => {
                if let Some((.., path)) = save_child::take_prepared(save_child::Registry::Bgsave) {
                    let _ = std::fs::remove_file(path);
                }
                tracing::warn!("Background saving could not start: {}", e);
                let id = bgsave::running();
                end_on_shards(&shard, id, None).await;
                Outcome::Failed
            }
        };
        bgsave::finished(outcome, &cfg);
    }
}

/// Pulls `stream` to its end (or until `stop()` says so), writing it in 1 MiB blocks from a
/// writer thread at idle CPU priority ([`IdleWriter`]) to `pipe` (a save child's) or else to
/// `file` (glommio's blocking pool if that thread cannot start), one paced step at a time so
/// the shard serves its clients in between (BGSAVE and a disk-target full sync write this
/// way). A block that waits more than [`WRITER_STARVED`] for the writer moves the writer and
/// `child` back to the normal CPU class. Returns the file and the first failure: the stream's
/// own, or `"{write_error}: {io error}"`.
async fn drain_to_file(
    shard: &Shard,
    stream: &mut SnapshotStream,
    mut file: std::fs::File,
    pipe: Option<(&save_child::SaveChild, std::process::ChildStdin)>,
    write_error: &'static str,
    stop: impl Fn() -> bool,
) -> (std::fs::File, Option<String>) {
    let (child, pipe) = pipe.unzip();
    let mut boosted = false;
    use std::io::Write;
    let mut writer = match pipe {
        Some(p) => IdleWriter::start_sink(p).ok(),
        None => IdleWriter::start(&file).ok(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BYTES);
    let mut failure = None;
    loop {
        if stop() {
            break;
        }
        let chunk = stream.next(shard).await;
        // Clients first: one time-sliced step, then the shard serves what became ready.
        stream.pace().await;
        let last = chunk.is_none();
        match chunk {
            Some(Ok(b)) => buf.extend_from_slice(&b),
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            None => {}
        }
        if buf.len() >= WRITE_BYTES || (last && !buf.is_empty()) {
            let data = std::mem::replace(&mut buf, Vec::with_capacity(WRITE_BYTES));
            match writer.as_mut() {
                Some(w) => {
                    let waited = std::time::Instant::now();
                    if !w.write(data).await {
                        break;
                    }
                    if !boosted && waited.elapsed() > WRITER_STARVED {
                        boosted = true;
                        boost(&w.booster(), child);
                    }
                }
                None => {
                    let (f, r) = blocking(move || {
                        let r = file.write_all(&data);
                        (file, r)
                    })
                    .await;
                    file = f;
                    if let Err(e) = r {
                        return (file, Some(format!("{write_error}: {e}")));
                    }
                }
            }
        }
        if last {
            break;
        }
    }
    if let Some(w) = writer {
        // The last blocks too: a writer still starved after WRITER_STARVED gets its CPU back.
        let booster = w.booster();
        let late = async {
            glommio::timer::sleep(WRITER_STARVED).await;
            if !boosted {
                boost(&booster, child);
            }
            std::future::pending::<()>().await
        };
        let r = futures_lite::future::or(w.finish(), async {
            late.await;
            Ok(())
        });
        if let Err(e) = r.await {
            failure.get_or_insert(format!("{write_error}: {e}"));
        }
    }
    (file, failure)
}

/// Moves a starved snapshot writer thread and save child back to the normal CPU class.
fn boost(w: &Booster, child: Option<&save_child::SaveChild>) {
    tracing::debug!("snapshot writer starved: back to normal CPU priority");
    w.boost();
    if let Some(c) = child {
        c.boost();
    }
}

/// Writes one snapshot to the temp file, then into place; ends the snapshot. With `keep`, also
/// returns a read handle on the file written (a disk-target full sync sends it; the handle
/// stays valid whatever renames follow).
pub(crate) async fn write_file(
    shard: &Shard,
    mut stream: SnapshotStream,
    cfg: &crate::config::Config,
    keep: bool,
) -> (Outcome, Option<std::fs::File>) {
    let mut tmp = temp_path();
    let target = PathBuf::from(cfg.get("dbfilename").unwrap_or("dump.rdb"));
    // A BGSAVE's child was started with its temp file by the command; a full sync writes itself.
    let prepared = if keep { None } else { save_child::take_prepared(save_child::Registry::Bgsave) };
    let mut child = None;
    let opened = if let Some((f, c, p, path)) = prepared {
        tmp = path;
        child = Some((c, p));
        Ok((f, None))
    } else {
        let tmp = tmp.clone();
        blocking(move || {
            let f = std::fs::File::create(&tmp)?;
            let r = if keep { Some(std::fs::File::open(&tmp)?) } else { None };
            Ok::<_, std::io::Error>((f, r))
        })
        .await
    };
    let (file, reader) = match opened {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                tmp.display(),
                cfg.dir,
                e
            );
            stream.end(shard, false).await;
            return (Outcome::Failed, None);
        }
    };
    let pipe = child.as_ref().map(|(c, _)| {
        stream.abort_on(c.gone());
        c.gone()
    });
    let (child, pipe_end) = match child {
        Some((c, p)) => (Some(c), Some(p)),
        None => (None, None),
    };
    let gone = move || pipe.as_ref().is_some_and(|g| g.load(Ordering::Acquire));
    let stop = || bgsave::killed() || gone();
    let piped = child.as_ref().zip(pipe_end);
    let (file, mut failure) =
        drain_to_file(shard, &mut stream, file, piped, "Write error saving DB on disk", stop).await;
    // The pipe is closed: the child syncs the file and exits (or was killed: the save failed).
    if let Some(c) = child {
        if let Some(e) = c.finish().await {
            failure = Some(e);
        }
    }
    if bgsave::killed() {
        drop(file);
        let _ = blocking(move || std::fs::remove_file(tmp)).await;
        stream.end(shard, false).await;
        return (Outcome::Killed, None);
    }
    if failure.is_none() {
        let (tmp2, target2) = (tmp.clone(), target.clone());
        let r = blocking(move || -> Result<(), String> {
            file.sync_all().map_err(|e| format!("Write error saving DB on disk(fsync): {e}"))?;
            drop(file);
            if bgsave::killed() {
                // FLUSHALL or SHUTDOWN stopped the save while it synced: its data must not
                // replace what they save.
                let _ = std::fs::remove_file(&tmp2);
                return Ok(());
            }
            std::fs::rename(&tmp2, &target2).map_err(|e| {
                format!(
                    "Error moving temp DB file {} on the final destination {}: {e}",
                    tmp2.display(),
                    target2.display()
                )
            })?;
            let dir = target2.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("Write error saving DB on disk(fsyncFileDir): {e}"))
        })
        .await;
        failure = r.err();
    }
    if failure.is_none() && bgsave::killed() {
        stream.end(shard, false).await;
        return (Outcome::Killed, None);
    }
    match failure {
        None => {
            tracing::info!("DB saved on disk");
            stream.end(shard, true).await;
            (Outcome::Saved, reader)
        }
        Some(e) => {
            tracing::warn!("{}", e);
            let _ = blocking(move || std::fs::remove_file(tmp)).await;
            stream.end(shard, false).await;
            (Outcome::Failed, None)
        }
    }
}

/// Starts a BGSAVE from the cron (a save point was reached, or BGSAVE SCHEDULE).
async fn start_bgsave(shard: &Shard) {
    if bgsave::claim().is_none() {
        return;
    }
    let parts = shard.all_shards(bgsave::begin_file_shard, 0, &[]).await;
    let _ = bgsave::begun(parts);
}

/// Shard 0's save-point cron (Redis checks in `serverCron`): ten times a second, sums the
/// shards' changes since the last save and starts a BGSAVE when a `save` point is reached.
pub async fn save_cron(shard: Rc<Shard>) {
    let start_s = shard.state.borrow().node.start_ms / 1000;
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        shard.refresh_config();
        let cfg = shard.state.borrow().config.clone();
        if bgsave::in_progress() || bgsave::running() != 0 {
            continue;
        }
        let dirty = if bgsave::save_points(&cfg).is_empty() {
            0
        } else {
            let parts = shard.each_shard(bgsave::since_save_shard, &[]).await;
            parts.iter().map(|r| if let Reply::Int(n) = r { *n as u64 } else { 0 }).sum()
        };
        match bgsave::cron_check(&cfg, dirty, start_s) {
            Some((0, 0)) => start_bgsave(&shard).await,
            Some((secs, changes)) => {
                tracing::info!("{} changes in {} seconds. Saving...", changes, secs);
                start_bgsave(&shard).await;
            }
            None => {}
        }
    }
}

/// SHUTDOWN and SIGTERM during a BGSAVE: stop it (Redis kills its child) and wait until its
/// temp file is gone, so the synchronous save that follows is the last to write the file.
pub async fn kill_bgsave() {
    if !bgsave::kill() {
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bgsave::in_progress() && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}
