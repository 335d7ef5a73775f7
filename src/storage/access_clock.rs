//! The access clock each entry keeps (`Entry::lru`): seconds for LRU eviction and OBJECT
//! IDLETIME, or under an LFU `maxmemory-policy` Redis's `minutes << 8 | counter` word.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The access clock of a new entry (from the cached clock): seconds since the epoch truncated
/// to 32 bits, or under an LFU `maxmemory-policy` Redis's `minutes << 8 | LFU_INIT_VAL`.
pub fn lru_clock() -> u32 {
    let now = super::cached_ms();
    if lfu_enabled() {
        (lfu_minutes(now) << 8) | LFU_INIT_VAL
    } else {
        (now / 1000) as u32
    }
}

// ---- LFU mode (maxmemory-policy *-lfu): Entry::lru holds Redis's LFU word ----------------

static LFU: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);
/// Counter of a new key (Redis's `LFU_INIT_VAL`).
const LFU_INIT_VAL: u32 = 5;

/// Selects how accesses update `Entry::lru` (node-wide, like the config it follows): seconds
/// for LRU, or for an LFU policy Redis's `minutes << 8 | counter` with a logarithmic counter
/// (`lfu-log-factor`) that decays by one every `lfu-decay-time` minutes. As in Redis, entries
/// keep their word when the policy switches and take some time to adjust.
pub fn set_lfu(on: bool, log_factor: u32, decay_time: u32) {
    LFU_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    LFU_DECAY_TIME.store(decay_time, Ordering::Relaxed);
    LFU.store(on, Ordering::Relaxed);
}

/// True under an LFU policy.
pub fn lfu_enabled() -> bool {
    LFU.load(Ordering::Relaxed)
}

pub(super) fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The decayed LFU counter of an LFU word (Redis's `LFUDecrAndReturn`), as OBJECT FREQ shows.
pub fn lfu_counter(word: u32, now_ms: u64) -> u32 {
    let (ldt, counter) = ((word >> 8) & 0xFFFF, word & 0xFF);
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt { now - ldt } else { 65535 - ldt + now };
    let decay = LFU_DECAY_TIME.load(Ordering::Relaxed);
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// The access clock after an access at `now_ms` (Redis's `updateLFU` under LFU).
pub(super) fn touched(word: u32, now_ms: u64) -> u32 {
    if !lfu_enabled() {
        return (now_ms / 1000) as u32;
    }
    let mut counter = lfu_counter(word, now_ms);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * LFU_LOG_FACTOR.load(Ordering::Relaxed) as f64 + 1.0);
        if fastrand::f64() < p {
            counter += 1;
        }
    }
    (lfu_minutes(now_ms) << 8) | counter
}
