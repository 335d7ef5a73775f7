//! A cheap monotonic stamp for timing commands.
//!
//! Every command's duration feeds INFO commandstats, the latency histograms, SLOWLOG and the
//! latency monitor, so a shard reads a clock once per command. Through the vDSO that read
//! costs about as much as a pipelined GET's whole lookup (3-4% of a shard's CPU at `-P 16`);
//! the CPU's time-stamp counter costs a fraction of it. It is used only where the kernel says
//! the counter ticks at one constant rate on every CPU and never stops (`constant_tsc` and
//! `nonstop_tsc`); its rate is measured against the monotonic clock once at start-up
//! ([`calibrate`]). Anywhere else a stamp is the monotonic clock itself.
//!
//! The same counter extrapolates the wall clock that a shard caches once per batch of
//! commands ([`wall_ms`]): at `-P 1` that read is once per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in time, comparable only with stamps of the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

/// Microseconds per counter tick, times 2^32 (0: the counter is not used).
static US_PER_TICK_FP: AtomicU64 = AtomicU64::new(0);
/// The monotonic clock's zero for the fallback.
static EPOCH: OnceLock<Instant> = OnceLock::new();

const FP_SHIFT: u32 = 32;

/// Decides once whether stamps come from the time-stamp counter, and measures its rate
/// (about 5 ms). Called at start-up before any shard runs; without it stamps use the
/// monotonic clock.
pub fn calibrate() {
    EPOCH.get_or_init(Instant::now);
    #[cfg(target_arch = "x86_64")]
    {
        if !invariant_counter() {
            return;
        }
        let (t0, c0) = (Instant::now(), read_counter());
        std::thread::sleep(Duration::from_millis(5));
        let (t1, c1) = (Instant::now(), read_counter());
        let us = t1.duration_since(t0).as_nanos() as u64 / 1000;
        if us == 0 || c1 <= c0 {
            return;
        }
        let ticks = c1 - c0;
        // Below 100 MHz something is off (a counter that does not tick at the CPU's rate).
        if ticks / us >= 100 {
            let fp = ((us as u128) << FP_SHIFT) / ticks as u128;
            US_PER_TICK_FP.store(fp as u64, Ordering::Relaxed);
        }
    }
}

/// The kernel reports a constant-rate, never-stopping time-stamp counter.
#[cfg(target_arch = "x86_64")]
fn invariant_counter() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else { return false };
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_counter() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl Stamp {
    /// Now.
    #[inline]
    pub fn now() -> Stamp {
        #[cfg(target_arch = "x86_64")]
        if US_PER_TICK_FP.load(Ordering::Relaxed) != 0 {
            return Stamp(read_counter());
        }
        let epoch = *EPOCH.get_or_init(Instant::now);
        Stamp(Instant::now().saturating_duration_since(epoch).as_nanos() as u64)
    }

    /// Whole microseconds since a fixed point of this process's life (monotonic).
    #[inline]
    pub fn micros(self) -> u64 {
        self.micros_since(Stamp(0))
    }

    /// Whole microseconds from `earlier` to `self` (0 if `earlier` is later).
    #[inline]
    pub fn micros_since(self, earlier: Stamp) -> u64 {
        let d = self.0.saturating_sub(earlier.0);
        match US_PER_TICK_FP.load(Ordering::Relaxed) {
            0 => d / 1000,
            fp => ((d as u128 * fp as u128) >> FP_SHIFT) as u64,
        }
    }
}

/// How long a thread's wall-clock reading is extrapolated with the counter before the real
/// clock is read again, in microseconds.
const WALL_REBASE_US: u64 = 1000;

thread_local! {
    /// The counter and the wall clock (µs since the Unix epoch) at this thread's last real
    /// wall-clock read; `None` until the first.
    static WALL_BASE: std::cell::Cell<Option<(u64, u64)>> = const { std::cell::Cell::new(None) };
}

/// Milliseconds since the Unix epoch, as `storage::now_ms`, but read through the vDSO at most
/// once per millisecond per thread: in between, the counter's ticks since the last real read
/// are added to it. The counter and the kernel's wall clock run at one rate (the kernel's clock
/// is that counter scaled), so the figure stays within a few microseconds of the real clock,
/// and a clock step (`settimeofday`, NTP) is seen within a millisecond. Where the counter is
/// not used, every call reads the clock.
#[inline]
pub fn wall_ms() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let fp = US_PER_TICK_FP.load(Ordering::Relaxed);
        if fp != 0 {
            let now = read_counter();
            if let Some((tsc, us)) = WALL_BASE.with(|b| b.get()) {
                let d = ((now.saturating_sub(tsc) as u128 * fp as u128) >> FP_SHIFT) as u64;
                if now >= tsc && d < WALL_REBASE_US {
                    return (us + d) / 1000;
                }
            }
            let us = wall_us_exact();
            WALL_BASE.with(|b| b.set(Some((now, us))));
            return us / 1000;
        }
    }
    wall_us_exact() / 1000
}

/// Microseconds since the Unix epoch, from the real clock (0 before 1970).
fn wall_us_exact() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_the_monotonic_clock() {
        calibrate();
        let (s0, t0) = (Stamp::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (s1, t1) = (Stamp::now(), Instant::now());
        let want = t1.duration_since(t0).as_micros() as i64;
        let got = s1.micros_since(s0) as i64;
        // Within 2% (and 200 µs of scheduling noise).
        assert!((got - want).abs() <= want / 50 + 200, "stamp {got} µs, clock {want} µs");
        assert_eq!(s0.micros_since(s1), 0);
    }

    #[test]
    fn wall_ms_follows_the_real_clock() {
        calibrate();
        for _ in 0..2000 {
            let before = wall_us_exact() / 1000;
            let got = wall_ms();
            let after = wall_us_exact() / 1000;
            // Extrapolation stays within a millisecond of the real clock.
            assert!(got + 1 >= before && got <= after + 1, "{before} <= {got} <= {after}");
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}
