//! The child process a background save writes its RDB file through, as Redis's BGSAVE has a
//! child: the snapshot is still encoded on the shards (no fork of the data), but its bytes go
//! down a pipe to a child process (this binary started with [`CHILD_ARG`]) that writes them to
//! the temp file and syncs it. So, as with redis-server, the save is a child of the server
//! (`pgrep -P`), killing that child aborts the save (`Background saving terminated by signal
//! N`, `rdb_last_bgsave_status:err`), and while it lives hash tables avoid resizing
//! ([`crate::storage::set_dict::set_resize_avoided`], Redis's `updateDictResizePolicy`).
//! BGREWRITEAOF writes its new base through such a child too ([`Registry::AofRewrite`]):
//! `CONFIG SET appendonly no` stops it as Redis's `killAppendOnlyChild`, and a killed child
//! fails the rewrite as in Redis.

use futures_channel::oneshot;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// The argument that makes this binary a save child.
pub const CHILD_ARG: &str = "--rdb-save-child";

/// Number of save children alive (the resize policy follows it).
static ALIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// The running BGSAVE child's pid (0: none).
static RUNNING_PID: AtomicU32 = AtomicU32::new(0);
/// The running AOF rewrite child's pid (0: none).
static AOF_PID: AtomicU32 = AtomicU32::new(0);

/// What a child writes, so it can be found and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// A BGSAVE's RDB file.
    Bgsave,
    /// A BGREWRITEAOF's new base.
    AofRewrite,
}

impl Registry {
    fn pid(self) -> &'static AtomicU32 {
        match self {
            Registry::Bgsave => &RUNNING_PID,
            Registry::AofRewrite => &AOF_PID,
        }
    }
}

/// Stops the running save child with SIGUSR1, as Redis's `killRDBChild` (the driver then ends
/// the save as killed, not failed).
pub fn kill_running() {
    kill(Registry::Bgsave);
}

/// The running AOF rewrite child's pid, if any.
pub fn aof_child() -> Option<u32> {
    Some(AOF_PID.load(Ordering::Acquire)).filter(|&p| p != 0)
}

/// Stops the running child of `registry` with SIGUSR1.
pub fn kill(registry: Registry) {
    let pid = registry.pid().load(Ordering::Acquire);
    if pid != 0 {
        // SAFETY: kill(2) has no memory effects. The pid is our child's: the waiter clears it
        // as soon as `wait` reaps the child (a pid is not reused before it is reaped, so only
        // that instant between reaping and clearing could name another process).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGUSR1);
        }
    }
}

/// The child side: copies standard input to standard output (the temp file), syncs it and
/// returns the exit code (0 when everything was written). `autosync` (the argument after
/// [`CHILD_ARG`], bytes): the writeout of the file is started every that many bytes, as
/// Redis's rio autosync (`aof-rewrite-incremental-fsync`). It runs at the idle CPU priority,
/// as the writer thread feeding it (`runtime::idle_writer`): its copies take no CPU time from
/// the shards, and the driver raises it back ([`SaveChild::boost`]) if it starves.
pub fn child_main(autosync: u64) -> i32 {
    super::idle_writer::lower_priority();
    let copied = (|| {
        use std::io::Read;
        use std::os::fd::AsFd;
        let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
        let mut out = super::aof_base::SyncedFile::new(std::fs::File::from(fd), autosync);
        let mut input = std::io::stdin().lock();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.write(&buf[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        out.finish().map(drop)
    })();
    match copied {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "rdb save child: {e}");
            1
        }
    }
}

/// A running save child.
pub struct SaveChild {
    pid: u32,
    /// Set once the child exited other than by finishing its file.
    gone: Arc<AtomicBool>,
    status: oneshot::Receiver<std::io::Result<ExitStatus>>,
}

impl SaveChild {
    /// Starts a child of `registry` writing what its pipe receives to `file` (writeout every
    /// `autosync` bytes, 0: none); returns it and the pipe. `gone` is set if the child exits
    /// other than by finishing its file. Blocking (process creation): call it from a blocking
    /// thread.
    pub fn spawn_for(
        registry: Registry,
        file: &std::fs::File,
        autosync: u64,
        gone: Arc<AtomicBool>,
    ) -> std::io::Result<(SaveChild, ChildStdin)> {
        let mut child = Command::new("/proc/self/exe")
            .arg(CHILD_ARG)
            .arg(autosync.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(pipe) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("no pipe to the save child"));
        };
        let pid = child.id();
        crate::oom_score_adj::child_started(pid);
        let (tx, status) = oneshot::channel();
        let flag = gone.clone();
        adjust_alive(1);
        let running = registry.pid();
        running.store(pid, Ordering::Release);
        let waiter = std::thread::Builder::new().name("save-child-wait".into()).spawn(move || {
            let st = child.wait();
            let _ = running.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Acquire);
            if !st.as_ref().is_ok_and(|s| s.success()) {
                flag.store(true, Ordering::Release);
            }
            adjust_alive(-1);
            let _ = tx.send(st);
        });
        if let Err(e) = waiter {
            // The closure (and the child in it) is gone: once its pipe is dropped the child
            // exits (unreaped: this only happens when no thread can start at all); the save
            // is written from this process instead.
            let _ = running.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Acquire);
            adjust_alive(-1);
            return Err(e);
        }
        Ok((SaveChild { pid, gone, status }, pipe))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Moves the child back to the normal scheduling class (it was starved).
    pub fn boost(&self) {
        super::idle_writer::raise_priority(self.pid as i32);
    }

    /// The flag set when the child dies before finishing (the snapshot stops on it).
    pub fn gone(&self) -> Arc<AtomicBool> {
        self.gone.clone()
    }

    /// Waits for the child's exit (its pipe must be closed first); None when it wrote and
    /// synced the whole file, otherwise the failure as Redis logs it.
    pub async fn finish(self) -> Option<String> {
        match self.ended().await {
            ChildEnd::Done => None,
            ChildEnd::Signal(sig) => Some(format!("Background saving terminated by signal {sig}")),
            ChildEnd::Error(e) if e.is_empty() => Some("Background saving error".to_string()),
            ChildEnd::Error(e) => Some(format!("Background saving error: {e}")),
        }
    }

    /// Waits for the child's exit (its pipe must be closed first).
    pub async fn ended(self) -> ChildEnd {
        match self.status.await {
            Ok(Ok(s)) if s.success() => ChildEnd::Done,
            Ok(Ok(s)) => match s.signal() {
                Some(sig) => ChildEnd::Signal(sig),
                None => ChildEnd::Error(String::new()),
            },
            Ok(Err(e)) => ChildEnd::Error(e.to_string()),
            Err(_) => ChildEnd::Error("the save child was lost".to_string()),
        }
    }
}

/// How a save child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEnd {
    /// It wrote and synced the whole file.
    Done,
    /// Killed by this signal.
    Signal(i32),
    /// It failed (its stderr says why; the text, when the wait itself failed).
    Error(String),
}

/// A child started before its command replied (BGSAVE, BGREWRITEAOF, `CONFIG SET appendonly
/// yes`: so, as with Redis's fork, it exists when the client hears "started"), with its temp
/// file and that file's path, until the save or rewrite takes it.
type Prepared = (std::fs::File, SaveChild, ChildStdin, std::path::PathBuf);

fn prepared(registry: Registry) -> &'static std::sync::Mutex<Option<Prepared>> {
    static P: [std::sync::Mutex<Option<Prepared>>; 2] = [std::sync::Mutex::new(None), std::sync::Mutex::new(None)];
    &P[registry as usize]
}

/// Creates the temp file `path` and starts a child of `registry` writing it (writeout every
/// `autosync` bytes), kept for [`take_prepared`]; the child's pid.
fn prepare_for(registry: Registry, path: &std::path::Path, autosync: u64) -> std::io::Result<u32> {
    let f = std::fs::File::create(path)?;
    let (c, p) = SaveChild::spawn_for(registry, &f, autosync, Arc::new(AtomicBool::new(false)))?;
    let pid = c.pid();
    // BGSAVE's file is named after its child, `temp-<child pid>.rdb`, as Redis's child names it.
    let path = match registry {
        Registry::Bgsave => {
            let named = path.with_file_name(format!("temp-{pid}.rdb"));
            if std::fs::rename(path, &named).is_ok() {
                named
            } else {
                path.to_path_buf()
            }
        }
        Registry::AofRewrite => path.to_path_buf(),
    };
    let old = prepared(registry).lock().unwrap_or_else(|e| e.into_inner()).replace((f, c, p, path));
    drop(old);
    Ok(pid)
}

/// BGSAVE: creates the temp file `path` and starts the child that will write it. The child's
/// pid, or None when it could not start (the save is then written from this process, logged).
pub fn prepare(path: &std::path::Path) -> Option<u32> {
    prepare_for(Registry::Bgsave, path, 0)
        .inspect_err(|e| tracing::warn!("Can't start the save child process: {} (saving from the server process)", e))
        .ok()
}

/// BGREWRITEAOF: creates the rewrite's temp file `path` and starts its child; failures are
/// logged and the rewrite starts its own child later.
pub fn prepare_aof(path: &std::path::Path, autosync: u64) {
    if let Err(e) = prepare_for(Registry::AofRewrite, path, autosync) {
        tracing::warn!("Can't start the AOF rewrite child process: {}", e);
    }
}

/// The child a command started for `registry`, if any.
pub fn take_prepared(registry: Registry) -> Option<Prepared> {
    prepared(registry).lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Drops a prepared rewrite child nobody will use (its pipe closes: it exits) and its file;
/// the child's pid, if there was one.
pub fn discard_prepared_aof() -> Option<u32> {
    let (_, child, _, path) = take_prepared(Registry::AofRewrite)?;
    let _ = std::fs::remove_file(path);
    Some(child.pid())
}

fn adjust_alive(d: isize) {
    let n = if d > 0 { ALIVE.fetch_add(1, Ordering::AcqRel) + 1 } else { ALIVE.fetch_sub(1, Ordering::AcqRel) - 1 };
    crate::storage::set_dict::set_resize_avoided(n > 0);
}
