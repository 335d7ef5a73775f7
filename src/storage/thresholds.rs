//! Node-wide encoding thresholds of the small encodings, as the config sets them
//! (`hash-max-listpack-entries`/`-value`, `zset-max-listpack-entries`/`-value`,
//! `set-max-intset-entries`, `list-max-listpack-size`; the `*-ziplist-*` names are aliases).
//! A value converts when an insert crosses a threshold in force at that moment, as Redis's
//! `hashTypeTryConversion`/`zsetAdd`/`setTypeAdd` read `server.*` each time; loading (RDB,
//! RESTORE) builds values by inserting, so it follows them too.
//!
//! One relaxed atomic load per check; set at start-up and by every CONFIG SET.

use crate::config::Config;
use std::sync::atomic::{AtomicUsize, Ordering};

static HASH_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_VALUE: AtomicUsize = AtomicUsize::new(64);
static ZSET_ENTRIES: AtomicUsize = AtomicUsize::new(128);
static ZSET_VALUE: AtomicUsize = AtomicUsize::new(64);
static INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(512);

/// Installs the thresholds of `cfg` (values CONFIG GET shows; an unparsable one keeps the
/// previous threshold, which cannot happen for a config the registry accepted).
pub fn apply(cfg: &Config) {
    let set = |slot: &AtomicUsize, name: &str| {
        if let Some(n) = cfg.get(name).and_then(|v| v.parse::<usize>().ok()) {
            slot.store(n, Ordering::Relaxed);
        }
    };
    set(&HASH_ENTRIES, "hash-max-listpack-entries");
    set(&HASH_VALUE, "hash-max-listpack-value");
    set(&ZSET_ENTRIES, "zset-max-listpack-entries");
    set(&ZSET_VALUE, "zset-max-listpack-value");
    set(&INTSET_ENTRIES, "set-max-intset-entries");
    super::list::set_fill(cfg.list_max_listpack_size);
}

/// Most fields a `listpack` hash holds.
#[inline]
pub fn hash_entries() -> usize {
    HASH_ENTRIES.load(Ordering::Relaxed)
}

/// Longest field or value a `listpack` hash holds.
#[inline]
pub fn hash_value() -> usize {
    HASH_VALUE.load(Ordering::Relaxed)
}

/// Most members a `listpack` sorted set holds.
#[inline]
pub fn zset_entries() -> usize {
    ZSET_ENTRIES.load(Ordering::Relaxed)
}

/// Longest member a `listpack` sorted set holds (at most what the packed encoding's one-byte
/// lengths allow: a `zset-max-listpack-value` above it behaves as that cap).
#[inline]
pub fn zset_value() -> usize {
    ZSET_VALUE.load(Ordering::Relaxed).min(super::zset_pack::MAX_MEMBER)
}

/// Most members an `intset` holds.
#[inline]
pub fn intset_entries() -> usize {
    INTSET_ENTRIES.load(Ordering::Relaxed)
}
