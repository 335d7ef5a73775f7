//! The node-wide client pause (Redis 7.0's `pauseClients`): CLIENT PAUSE, SHUTDOWN waiting for
//! its replicas and a failover (manual cluster failover, standalone FAILOVER) each hold
//! ordinary clients' commands for a while, as a pause *purpose* with its own kind and end.
//!
//! - The effective pause is the strongest kind among the purposes still running (`All` over
//!   `Write`), until the furthest end among the purposes of that kind; when it ends the next
//!   strongest, if any, takes over (Redis's `updateClientPauseTypeAndEndTime`).
//! - A purpose paused again keeps the stronger kind and the later end of the two.
//! - `Write` holds writes and may-replicate commands; `All` holds every command. Replicas are
//!   never held (their links live on the control core); the master link of a replica is, as in
//!   Redis (its stream is read but not applied until the pause ends).
//! - While any pause is on, keys are not expired or evicted: lookups treat a logically
//!   expired key as missing without deleting it, the active expire cycle and eviction stop.
//!
//! The state is process-wide (as the replica-role flags): the shards, the storage layer and
//! the control core read it without a handle. The hot path is [`on`]: one relaxed load.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// What a pause holds (Redis's `pause_type`; ordered by strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Nothing.
    Off = 0,
    /// Writes and may-replicate commands (`CLIENT PAUSE ... WRITE`).
    Write = 1,
    /// Every command (`CLIENT PAUSE ... ALL`).
    All = 2,
}

/// Why the node pauses (Redis's `pause_purpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// CLIENT PAUSE / CLIENT UNPAUSE.
    ClientCommand = 0,
    /// SHUTDOWN waiting for its replicas to catch up.
    Shutdown = 1,
    /// A manual cluster failover or a standalone FAILOVER.
    Failover = 2,
}

const PURPOSES: usize = 3;

/// End (Unix ms, inclusive) of the effective pause; 0 when none is on.
static END: AtomicU64 = AtomicU64::new(0);
/// Kind of the effective pause (a `Kind` as u8).
static KIND: AtomicU8 = AtomicU8::new(0);
/// Bumped at every pause and unpause, so a held client looks again even when the kind and
/// end read the same after an unpause and a new pause.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Each purpose's pause: kind and end.
static PER: Mutex<[Option<(Kind, u64)>; PURPOSES]> = Mutex::new([None; PURPOSES]);

fn with_per<R>(f: impl FnOnce(&mut [Option<(Kind, u64)>; PURPOSES]) -> R) -> R {
    match PER.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// Drops the purposes that ended and publishes the effective kind and end.
fn recompute(per: &mut [Option<(Kind, u64)>; PURPOSES], now_ms: u64) {
    let mut kind = Kind::Off;
    for p in per.iter_mut() {
        match *p {
            Some((_, end)) if end < now_ms => *p = None,
            Some((k, _)) => kind = kind.max(k),
            None => {}
        }
    }
    let end = per.iter().flatten().filter(|(k, _)| *k == kind).map(|&(_, e)| e).max().unwrap_or(0);
    KIND.store(kind as u8, Ordering::Release);
    END.store(if kind == Kind::Off { 0 } else { end.max(1) }, Ordering::Release);
}

/// Pauses for `purpose` until `end_ms` (Unix ms; `u64::MAX`: until unpaused). An end in the
/// past pauses nothing.
pub fn pause(purpose: Purpose, end_ms: u64, kind: Kind) {
    let now = crate::storage::now_ms();
    with_per(|per| {
        let slot = &mut per[purpose as usize];
        *slot = Some(match *slot {
            Some((k, e)) => (k.max(kind), e.max(end_ms)),
            None => (kind, end_ms),
        });
        recompute(per, now);
    });
    GENERATION.fetch_add(1, Ordering::Release);
    hold_changed();
}

/// Ends `purpose`'s pause (the others go on).
pub fn unpause(purpose: Purpose) {
    let now = crate::storage::now_ms();
    with_per(|per| {
        per[purpose as usize] = None;
        recompute(per, now);
    });
    GENERATION.fetch_add(1, Ordering::Release);
    hold_changed();
}

/// Counts the pauses and unpauses so far (see [`GENERATION`]).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// End (Unix ms) of the effective pause; 0 when none is on, `u64::MAX` until unpaused.
pub fn end_ms() -> u64 {
    END.load(Ordering::Acquire)
}

/// Announcements of a change in what holds clients' commands.
static HOLD_CHANGES: AtomicU64 = AtomicU64::new(0);
/// The shards' watchers of held clients waiting for the next announcement.
static HOLD_WATCHERS: Mutex<Vec<Waker>> = Mutex::new(Vec::new());

/// Announces, from any thread, that what holds clients' commands may have changed: this pause,
/// a full sync's load ([`crate::replication::role::set_load_held`]) or a DEBUG SLEEP's end.
/// Wakes each shard's watcher of held clients.
pub fn hold_changed() {
    HOLD_CHANGES.fetch_add(1, Ordering::AcqRel);
    let watchers = std::mem::take(&mut *HOLD_WATCHERS.lock().unwrap_or_else(|p| p.into_inner()));
    watchers.into_iter().for_each(Waker::wake);
}

/// The count of announcements so far.
pub fn hold_changes() -> u64 {
    HOLD_CHANGES.load(Ordering::Acquire)
}

/// Completes once an announcement follows the count `seen`.
pub async fn next_hold_change(seen: u64) {
    futures_lite::future::poll_fn(|cx| {
        if hold_changes() != seen {
            return Poll::Ready(());
        }
        let mut watchers = HOLD_WATCHERS.lock().unwrap_or_else(|p| p.into_inner());
        if !watchers.iter().any(|w| w.will_wake(cx.waker())) {
            watchers.push(cx.waker().clone());
        }
        // Checked again under the lock: an announcement in between has either taken this
        // waker or counted before this load.
        if hold_changes() != seen {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// True when a pause may be on (it may have just ended): the per-command check, one relaxed
/// load; [`kind`] tells for sure.
#[inline]
pub fn on() -> bool {
    END.load(Ordering::Relaxed) != 0
}

/// The effective pause now (a pause whose end passed is dropped here, as Redis's
/// `checkClientPauseTimeoutAndReturnIfPaused`).
pub fn kind(now_ms: u64) -> Kind {
    let end = END.load(Ordering::Acquire);
    if end == 0 {
        return Kind::Off;
    }
    if end < now_ms {
        with_per(|per| recompute(per, now_ms));
    }
    match KIND.load(Ordering::Acquire) {
        2 => Kind::All,
        1 => Kind::Write,
        _ => Kind::Off,
    }
}

/// True while any pause is on: keys are then neither expired nor evicted.
#[inline]
pub fn paused(now_ms: u64) -> bool {
    on() && kind(now_ms) != Kind::Off
}

/// True while `purpose` pauses (whatever the others do).
pub fn purpose_on(purpose: Purpose, now_ms: u64) -> bool {
    with_per(|per| per[purpose as usize].is_some_and(|(_, end)| end >= now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_kind_wins_then_the_next_takes_over() {
        let now = crate::storage::now_ms();
        pause(Purpose::Failover, u64::MAX, Kind::Write);
        assert_eq!(kind(now), Kind::Write);
        pause(Purpose::ClientCommand, now + 50, Kind::All);
        assert_eq!(kind(now), Kind::All);
        assert_eq!(END.load(Ordering::Relaxed), now + 50);
        // Past the client pause's end: the failover's write pause is left.
        assert_eq!(kind(now + 51), Kind::Write);
        // A weaker pause of the same purpose does not weaken it.
        pause(Purpose::ClientCommand, now + 10, Kind::Write);
        pause(Purpose::ClientCommand, now + 5, Kind::All);
        assert_eq!(kind(now), Kind::All);
        unpause(Purpose::ClientCommand);
        assert_eq!(kind(now), Kind::Write);
        unpause(Purpose::Failover);
        assert_eq!(kind(now), Kind::Off);
        assert!(!on());
    }
}
