//! The kernel scheduling classes of slotcore's helper threads.
//!
//! A shard runs in the normal class. Helper threads that share its CPU take a class that keeps
//! them from taking the CPU away from it at the wrong moment:
//! - `SCHED_IDLE` ([`to_idle`]): runs only in CPU time nothing else wants (snapshot writers,
//!   the save child's encoder), raised back ([`to_normal`]) if a shard never leaves any.
//! - `SCHED_BATCH` ([`to_batch`]): a fair share of the CPU as in the normal class, but waking
//!   up never preempts the running thread; it runs when that thread sleeps or its time slice
//!   ends. For threads woken very often by short events (the `appendfsync always` syncer,
//!   woken by each fdatasync's completion and each batch gathered), where preempting the shard
//!   every time costs two context switches for a few microseconds of work.

/// Puts thread (or process) `tid` (0: the calling thread) in the scheduling class `policy`.
fn set_policy(tid: i32, policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param; sched_setscheduler has no memory effects.
    if unsafe { libc::sched_setscheduler(tid, policy, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts thread `tid` (0: the calling thread) in `SCHED_IDLE`.
pub fn to_idle(tid: i32) -> std::io::Result<()> {
    set_policy(tid, libc::SCHED_IDLE)
}

/// Puts thread `tid` (0: the calling thread) in `SCHED_BATCH`.
pub fn to_batch(tid: i32) -> std::io::Result<()> {
    set_policy(tid, libc::SCHED_BATCH)
}

/// Puts thread `tid` (0: the calling thread) back in the normal class (`SCHED_OTHER`).
pub fn to_normal(tid: i32) -> std::io::Result<()> {
    set_policy(tid, libc::SCHED_OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class the calling thread is in.
    fn current() -> libc::c_int {
        // SAFETY: no arguments beyond the thread id; no memory effects.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn a_thread_moves_between_classes() {
        std::thread::spawn(|| {
            to_batch(0).expect("SCHED_BATCH needs no privilege");
            assert_eq!(current(), libc::SCHED_BATCH);
            to_idle(0).expect("SCHED_IDLE needs no privilege");
            assert_eq!(current(), libc::SCHED_IDLE);
            // Leaving SCHED_IDLE for the normal class is allowed to the thread itself since
            // Linux 2.6.39 when its nice value is within RLIMIT_NICE; it may be refused here.
            if to_normal(0).is_ok() {
                assert_eq!(current(), libc::SCHED_OTHER);
            }
        })
        .join()
        .expect("thread");
    }
}
