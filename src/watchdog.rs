//! Redis's software watchdog (`watchdog-period`, in milliseconds; 0 = off): when one turn of a
//! serving thread's event loop runs longer than the period, the log gets Redis's
//! `--- WATCHDOG TIMER EXPIRED ---` and the stack trace of that thread, and the thread goes on
//! (the slow command completes normally). Redis arms an interval timer (SIGALRM) in its cron and
//! logs from the signal's handler; here every executor thread (each data shard and the control
//! executor) publishes its turns, and one watchdog thread looks at them:
//!
//! - Each executor's loop (the vendored glommio's `LocalExecutor::run`, see
//!   `ExecutorProxy::set_turn_beat`) stores the number of the turn it starts in its [`Beat`]
//!   (`turn << 1`), and `(turn << 1) | 1` when the turn ends idle: one relaxed store per turn,
//!   the only cost on the serving path, paid whether or not the watchdog is on.
//! - The watchdog thread, while the period is not 0, looks at every beat a few times per period;
//!   a beat that stayed at the same busy value for the whole period is a stalled turn: the thread
//!   gets SIGALRM (`tgkill`), once per turn. With the period at 0 the watchdog thread waits on a
//!   condition variable and burns no CPU (it is started by the first non-zero period).
//! - The SIGALRM handler runs on the stalled thread and only records, async-signal-safely, the
//!   interrupted instruction and the return addresses of its stack (`_Unwind_Backtrace`, as
//!   glibc's `backtrace` that Redis calls) into a static slot. The watchdog thread then resolves
//!   them to function names, files and lines and writes the report with `crate::crash`'s
//!   writers: resolving allocates, which a handler must not do (the stalled thread may be inside
//!   the allocator). It parses the binary's debug information, tens of MB while a report is
//!   written (used_memory shows them meanwhile), freed right after.
//!
//! As Redis, a period shorter than twice the cron's interval (`2 * (1000 / hz)` ms) is raised to
//! it when set (`config::registry::apply`), and SIGALRM is ignored while the period is 0.
//! A turn that runs many tasks (a busy shard: up to glommio's 100 ms preemption timer) is one
//! turn too, as one pass of Redis's event loop serves many clients.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// One executor thread's published turn.
pub struct Beat {
    /// `turn << 1` while a turn runs, `(turn << 1) | 1` once it ended idle.
    word: AtomicU64,
    /// The thread's kernel id (for `tgkill`).
    tid: libc::pid_t,
}

/// Every registered executor thread's beat (leaked: threads live as long as the process).
static BEATS: Mutex<Vec<&'static Beat>> = Mutex::new(Vec::new());

/// The period in ms (0 = off), and the watchdog thread's wake-up when it changes.
static PERIOD: Mutex<u64> = Mutex::new(0);
static PERIOD_CHANGED: Condvar = Condvar::new();
/// The watchdog thread was started.
static STARTED: std::sync::Once = std::sync::Once::new();

/// Registers the calling executor thread: its loop publishes its turns from now on.
pub fn register() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
    let beat: &'static Beat = Box::leak(Box::new(Beat { word: AtomicU64::new(0), tid }));
    BEATS.lock().unwrap_or_else(|p| p.into_inner()).push(beat);
    glommio::executor().set_turn_beat(Some(&beat.word));
}

/// Applies `watchdog-period` (ms, already raised to Redis's minimum): 0 stops the watchdog and
/// ignores SIGALRM; otherwise SIGALRM gets the handler and the watchdog thread checks turns.
pub fn set_period(ms: u64) {
    let handler: crate::crash::Handler = on_alarm;
    crate::crash::set_handler(libc::SIGALRM, (ms > 0).then_some(handler), libc::SA_RESTART);
    *PERIOD.lock().unwrap_or_else(|p| p.into_inner()) = ms;
    PERIOD_CHANGED.notify_all();
    if ms > 0 {
        STARTED.call_once(|| {
            if let Err(e) = std::thread::Builder::new().name("watchdog".into()).spawn(watch) {
                tracing::warn!("Can't start the software watchdog's thread: {}", e);
            }
        });
    }
}

/// The capture slot's states.
const FREE: u8 = 0;
/// The watchdog thread signalled a thread and waits for its capture.
const REQUESTED: u8 = 1;
/// A handler is writing the slot.
const FILLING: u8 = 2;
/// The slot holds a capture to report.
const FILLED: u8 = 3;

/// What a SIGALRM handler captured: one at a time (a SIGALRM that finds the slot busy is
/// dropped).
struct Capture {
    state: AtomicU8,
    /// The interrupted instruction (0: unknown).
    eip: AtomicUsize,
    len: AtomicUsize,
    ips: [AtomicUsize; crate::crash::MAX_FRAMES],
}

static CAPTURE: Capture = Capture {
    state: AtomicU8::new(FREE),
    eip: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    ips: [const { AtomicUsize::new(0) }; crate::crash::MAX_FRAMES],
};

/// The SIGALRM handler: records the interrupted instruction and the stack's return addresses.
/// Async-signal-safe: atomics, and `_Unwind_Backtrace` (which allocates nothing).
extern "C" fn on_alarm(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let s = &CAPTURE.state;
    let take = |from| s.compare_exchange(from, FILLING, Ordering::Acquire, Ordering::Relaxed).is_ok();
    if !take(REQUESTED) && !take(FREE) {
        return;
    }
    // SAFETY: the errno location of this thread; restored so the interrupted code sees its own.
    let errno = unsafe { *libc::__errno_location() };
    CAPTURE.eip.store(crate::crash::interrupted_ip(ctx), Ordering::Relaxed);
    let mut n = 0;
    // SAFETY: no other thread unwinds through this slot (the state is FILLING), and the
    // callback only stores into atomics.
    unsafe {
        backtrace::trace_unsynchronized(|f| {
            CAPTURE.ips[n].store(f.ip() as usize, Ordering::Relaxed);
            n += 1;
            n < crate::crash::MAX_FRAMES
        });
    }
    CAPTURE.len.store(n, Ordering::Relaxed);
    s.store(FILLED, Ordering::Release);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// What the watchdog thread last saw of one beat.
struct Seen {
    word: u64,
    since: Instant,
    signalled: bool,
}

/// The watchdog thread: waits while the period is 0, else checks every beat four times per
/// period (at least every 100 ms) and reports what handlers captured.
fn watch() {
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        let period = {
            let mut p = PERIOD.lock().unwrap_or_else(|p| p.into_inner());
            while *p == 0 {
                seen.clear();
                p = PERIOD_CHANGED.wait(p).unwrap_or_else(|p| p.into_inner());
            }
            let period = *p;
            let tick = Duration::from_millis((period / 4).clamp(1, 100));
            let (p, _) = PERIOD_CHANGED.wait_timeout(p, tick).unwrap_or_else(|p| p.into_inner());
            *p
        };
        if period == 0 {
            continue;
        }
        // A SIGALRM from outside (kill -ALRM) is reported too, as Redis's handler does.
        if CAPTURE.state.load(Ordering::Acquire) == FILLED {
            report();
        }
        let beats: Vec<&'static Beat> = BEATS.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = Instant::now();
        for (i, beat) in beats.iter().enumerate() {
            let word = beat.word.load(Ordering::Relaxed);
            if i >= seen.len() {
                seen.push(Seen { word, since: now, signalled: false });
                continue;
            }
            let s = &mut seen[i];
            if s.word != word {
                *s = Seen { word, since: now, signalled: false };
                continue;
            }
            let idle = word & 1 == 1;
            if idle || s.signalled || now.duration_since(s.since) < Duration::from_millis(period) {
                continue;
            }
            s.signalled = true;
            signal(beat.tid);
        }
    }
}

/// Sends SIGALRM to thread `tid` and reports its capture (waits up to a second for it).
fn signal(tid: libc::pid_t) {
    let s = &CAPTURE.state;
    if s.compare_exchange(FREE, REQUESTED, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return;
    }
    // SAFETY: tgkill on a thread of this process; a thread that ended makes it fail (ESRCH).
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGALRM) } == 0;
    let deadline = Instant::now() + Duration::from_secs(1);
    while sent && s.load(Ordering::Acquire) != FILLED && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    if s.compare_exchange(REQUESTED, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        // Not delivered in time (or the period went to 0 meanwhile and SIGALRM is ignored).
        return;
    }
    while s.load(Ordering::Acquire) == FILLING {
        std::thread::yield_now();
    }
    report();
}

/// Writes Redis's watchdog report of the captured stack and frees the slot.
fn report() {
    let eip = CAPTURE.eip.load(Ordering::Relaxed);
    let n = CAPTURE.len.load(Ordering::Relaxed).min(crate::crash::MAX_FRAMES);
    let ips: Vec<usize> = CAPTURE.ips[..n].iter().map(|a| a.load(Ordering::Relaxed)).collect();
    CAPTURE.state.store(FREE, Ordering::Release);
    crate::crash::handler_line("\n--- WATCHDOG TIMER EXPIRED ---");
    crate::crash::write_trace(eip, &ips);
    crate::crash::handler_line("--------\n");
    // The parsed debug information (tens of MB for this binary, counted in used_memory) is not
    // kept for the next report.
    backtrace::clear_symbol_cache();
}
