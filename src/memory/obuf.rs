//! `client-output-buffer-limit`: the three client classes (normal, replica, pubsub), each with
//! a hard limit and a soft limit held for some seconds (Redis's `checkClientOutputBufferLimits`),
//! the directive's parsing and normalised text, and the decision whether a client's pending
//! output has gone over. The connection code measures its own pending output and asks
//! [`SoftClock::over`]; a client over its class's limit is closed with Redis's log line
//! ([`log_closing`]).
//!
//! Invariants: the limits are node-wide and follow the configuration snapshot
//! ([`apply_config`]); a limit of 0 is off; the replica class's hard limit is never below
//! `repl-backlog-size` (as Redis), which the replication master applies on its side.

use std::sync::atomic::{AtomicU64, Ordering};

/// A client class for output limits (Redis's `getClientType` for buffers: masters count as
/// normal clients, MONITOR clients too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Ordinary clients (and MONITOR, and the master link).
    Normal = 0,
    /// Replicas attached to this master.
    Replica = 1,
    /// Clients in Pub/Sub mode.
    Pubsub = 2,
}

/// One class's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// Close at once at this many bytes (0 = off).
    pub hard: u64,
    /// Close after staying at or above this many bytes ...
    pub soft: u64,
    /// ... for longer than this many seconds.
    pub soft_secs: u64,
}

/// Redis 7.0's defaults: normal 0 0 0, replica 256mb 64mb 60, pubsub 32mb 8mb 60.
pub const DEFAULTS: [Limit; 3] = [
    Limit { hard: 0, soft: 0, soft_secs: 0 },
    Limit { hard: 256 << 20, soft: 64 << 20, soft_secs: 60 },
    Limit { hard: 32 << 20, soft: 8 << 20, soft_secs: 60 },
];

/// Redis's error texts for a bad value.
const WRONG_ARGS: &str = "Wrong number of arguments in buffer limit configuration.";
const BAD_CLASS: &str = "Invalid client class specified in buffer limit configuration.";
const BAD_NUMBER: &str = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";

fn class_by_name(name: &str) -> Option<Class> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Some(Class::Normal),
        "slave" | "replica" => Some(Class::Replica),
        "pubsub" => Some(Class::Pubsub),
        _ => None,
    }
}

/// Parses the full normalised text (or any list of class groups) on top of `base`.
/// Either every group is valid and applied, or none is (as Redis).
pub fn parse_onto(base: [Limit; 3], text: &str) -> Result<[Limit; 3], &'static str> {
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.len() % 4 != 0 {
        return Err(WRONG_ARGS);
    }
    let mut out = base;
    for g in words.chunks(4) {
        let class = class_by_name(g[0]).ok_or(BAD_CLASS)?;
        let hard = crate::config::registry::parse_memory(g[1]).ok_or(BAD_NUMBER)?;
        let soft = crate::config::registry::parse_memory(g[2]).ok_or(BAD_NUMBER)?;
        let secs: i64 = g[3].parse().map_err(|_| BAD_NUMBER)?;
        if secs < 0 {
            return Err(BAD_NUMBER);
        }
        out[class as usize] = Limit { hard, soft, soft_secs: secs as u64 };
    }
    Ok(out)
}

/// The text CONFIG GET shows: all three classes, in bytes, as Redis prints them.
pub fn format(l: &[Limit; 3]) -> String {
    let names = ["normal", "slave", "pubsub"];
    let parts: Vec<String> =
        (0..3).map(|i| format!("{} {} {} {}", names[i], l[i].hard, l[i].soft, l[i].soft_secs)).collect();
    parts.join(" ")
}

/// CONFIG SET / a redis.conf line: the classes given replace those in `current` (the
/// directive's present text); returns the new normalised text.
pub fn merge(current: &str, given: &str) -> Result<String, &'static str> {
    let base = parse_onto(DEFAULTS, current).unwrap_or(DEFAULTS);
    parse_onto(base, given).map(|l| format(&l))
}

#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicU64 = AtomicU64::new(0);
static LIMITS: [[AtomicU64; 3]; 3] = [[Z; 3], [Z; 3], [Z; 3]];

/// Takes the limits from the directive's normalised text.
pub fn apply_config(text: &str) {
    let l = parse_onto(DEFAULTS, text).unwrap_or(DEFAULTS);
    for (i, lim) in l.iter().enumerate() {
        LIMITS[i][0].store(lim.hard, Ordering::Relaxed);
        LIMITS[i][1].store(lim.soft, Ordering::Relaxed);
        LIMITS[i][2].store(lim.soft_secs, Ordering::Relaxed);
    }
}

/// The limits of a class now in force.
#[inline]
pub fn limit(class: Class) -> Limit {
    let a = &LIMITS[class as usize];
    Limit {
        hard: a[0].load(Ordering::Relaxed),
        soft: a[1].load(Ordering::Relaxed),
        soft_secs: a[2].load(Ordering::Relaxed),
    }
}

/// A client's soft-limit clock (Redis's `obuf_soft_limit_reached_time`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SoftClock {
    since_s: u64,
}

impl SoftClock {
    /// Redis's `checkClientOutputBufferLimits`: true when `used` pending bytes reach the
    /// class's hard limit, or have stayed at or above its soft limit for more than its
    /// seconds (first seen now: the clock starts). Below the soft limit the clock resets.
    pub fn over(&mut self, l: Limit, used: u64, now_s: u64) -> bool {
        let hard = l.hard != 0 && used >= l.hard;
        let mut soft = l.soft != 0 && used >= l.soft;
        if soft {
            if self.since_s == 0 {
                self.since_s = now_s.max(1);
                soft = false;
            } else if now_s.saturating_sub(self.since_s) <= l.soft_secs {
                soft = false;
            }
        } else {
            self.since_s = 0;
        }
        hard || soft
    }

    /// When the soft limit will have been held long enough (Unix seconds), if it is running.
    pub fn deadline(&self, l: Limit) -> Option<u64> {
        (self.since_s != 0 && l.soft != 0).then(|| self.since_s + l.soft_secs + 1)
    }
}

/// Redis's warning when it drops a client for its output buffer (`info` is CLIENT LIST's
/// line for it).
/// The reply a command returns instead of one that cannot fit: the connection closes the
/// client without answering (see [`reply_overflows`]); nested (EXEC, scripts) it reads as
/// this error.
pub const OVER_LIMIT: &str = "ERR reply exceeds the client output buffer limit";

/// Whether a reply of `entries` items of about `avg_bytes` each cannot be held: over a normal
/// client's hard output-buffer limit (Redis stops producing such a reply and closes the
/// client: SRANDMEMBER/HRANDFIELD/ZRANDMEMBER with a huge negative count), or, without a
/// limit, over half of the machine's memory (Redis would run out of memory producing it).
pub fn reply_overflows(entries: u64, avg_bytes: u64) -> bool {
    let need = entries.saturating_mul(avg_bytes.saturating_add(16));
    let hard = limit(Class::Normal).hard;
    if hard > 0 {
        return need > hard;
    }
    static HALF_RAM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let half = *HALF_RAM.get_or_init(|| match super::total_system_memory() {
        0 => u64::MAX,
        total => total / 2,
    });
    need > half
}

pub fn log_closing(info: &str) {
    tracing::warn!("Client {} scheduled to be closed ASAP for overcoming of output buffer limits.", info);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_TEXT: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

    #[test]
    fn set_merges_classes_and_prints_all_three() {
        assert_eq!(format(&DEFAULTS), DEFAULT_TEXT);
        assert_eq!(
            merge(DEFAULT_TEXT, "normal 32mb 0 0"),
            Ok("normal 33554432 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".into())
        );
        assert_eq!(
            merge(DEFAULT_TEXT, "replica 1mb 2mb 3 pubsub 0 0 0"),
            Ok("normal 0 0 0 slave 1048576 2097152 3 pubsub 0 0 0".into())
        );
        assert_eq!(merge(DEFAULT_TEXT, "normal 1 2"), Err(WRONG_ARGS));
        assert_eq!(merge(DEFAULT_TEXT, "master 1 2 3"), Err(BAD_CLASS));
        assert_eq!(merge(DEFAULT_TEXT, "normal 1x 2 3"), Err(BAD_NUMBER));
        assert_eq!(merge(DEFAULT_TEXT, "normal 1 2 -3"), Err(BAD_NUMBER));
        // All or nothing.
        assert_eq!(merge(DEFAULT_TEXT, "normal 1 2 3 bogus 1 2 3"), Err(BAD_CLASS));
    }

    #[test]
    fn soft_limit_needs_time() {
        let l = Limit { hard: 100, soft: 10, soft_secs: 2 };
        let mut c = SoftClock::default();
        assert!(!c.over(l, 5, 1000));
        assert!(!c.over(l, 20, 1000));
        assert!(!c.over(l, 20, 1002));
        assert!(c.over(l, 20, 1003));
        let mut c = SoftClock::default();
        assert!(!c.over(l, 20, 1000));
        assert!(!c.over(l, 5, 1001));
        assert!(!c.over(l, 20, 1003));
        assert!(c.over(l, 100, 1003));
    }
}
