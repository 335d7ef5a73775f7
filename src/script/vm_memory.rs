//! `used_memory_lua`: the size of every shard's interpreter, as each last reported it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held by every shard's interpreter, each as it last reported (INFO memory).
static LUA_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// What this thread's interpreter last added to [`LUA_BYTES`].
    static REPORTED: Cell<usize> = const { Cell::new(0) };
}

/// Publishes `now` as this thread's interpreter size (0: it has none).
pub(super) fn report_bytes(now: usize) {
    let old = REPORTED.with(|r| r.replace(now));
    if now >= old {
        LUA_BYTES.fetch_add(now - old, Ordering::Relaxed);
    } else {
        LUA_BYTES.fetch_sub(old - now, Ordering::Relaxed);
    }
}

/// Memory of the Lua interpreters of all shards (`used_memory_lua`), as of their last run.
pub fn used_memory() -> usize {
    LUA_BYTES.load(Ordering::Relaxed)
}
