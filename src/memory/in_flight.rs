//! Memory on its way from one shard to another's clients, left out of the ceiling's count
//! until it arrives: the invalidations of evicted keys, and the replies of a batch of
//! commands run for another shard's client ([`Replies`]).
//!
//! Redis puts a reply into its client's output buffer at once, where client eviction
//! (`maxmemory-clients`) sees it; here a reply built on the key's shard travels to the
//! client's shard first, and until that shard has run it is in the node's memory but in no
//! client's. With four shards, twenty clients reading a 100 KB value (Redis's client-eviction
//! scenario under an 11 MB ceiling) had megabytes of replies travelling, and keys were evicted
//! for them before any client reached the limit. The replies stay left out until the client's
//! connection has put them in its reply buffer (counted by client eviction), not only until they
//! arrive: a batch of twenty arrived replies (2 MB) waited there for the connection to write
//! them while another shard read the node's total. A reply buffer that grows is counted at its
//! new size before it moves, and the old one is left out while both exist ([`Moving`]).
//!
//! An eviction cycle tells the trackers of each key it evicts (Redis signals an evicted key as
//! modified), and the messages count in the node's memory until the trackers' connections
//! write them out. Redis writes every client's pending output before it reads the next
//! command, so the next command's eviction cycle does not see them. Here a tracker may live on
//! another shard, whose thread may not have run yet when the next command arrives (on a busy
//! machine, or when it shares a CPU with the evicting shard): that command's cycle saw the
//! messages and evicted as many keys again for them (Redis's client-tracking scenario: 30 keys
//! evicted by one cycle, 60 to 90 with four shards).
//!
//! So each cycle measures what telling the trackers of an evicted key allocated on its thread
//! (the key's copy that every message shares, the messages, less the tracking entry freed),
//! keeps a handle on the key's copy, and leaves those bytes out of the count
//! ([`left_out`]) until no message holds the copy any more (every tracker's connection took
//! its message), which the shard checks before its next cycle ([`settle`]).
//!
//! Invariants: an entry's bytes are in [`LEFT_OUT`] exactly while the entry is in this
//! thread's list; the list is bounded ([`MAX_ENTRIES`] entries, [`MAX_BYTES`] bytes: past
//! them the oldest entries count again), so connections that do not take their messages (one
//! blocked in BLPOP, say) hold back a bounded amount.

use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};

/// At most this many evicted keys' messages per shard are left out at once...
const MAX_ENTRIES: usize = 4096;
/// ... holding at most this many bytes.
const MAX_BYTES: i64 = 1 << 20;

/// Bytes left out of the count, every shard's entries together.
static LEFT_OUT: AtomicI64 = AtomicI64::new(0);
/// Bytes of replies travelling between shards.
static REPLIES: AtomicI64 = AtomicI64::new(0);
/// Bytes of reply buffers being moved to a bigger allocation (see [`Moving`]).
static MOVING: AtomicI64 = AtomicI64::new(0);

/// Leaves out a connection's reply buffer while it moves to a bigger allocation (both are
/// allocated until the bytes are copied): client eviction counts the client at the new
/// capacity before the move, so the count of used memory holds the old buffer nowhere else.
pub struct Moving(i64);

impl Moving {
    /// Leaves out `bytes` (the old buffer's allocation) until dropped.
    pub fn new(bytes: usize) -> Moving {
        MOVING.fetch_add(bytes as i64, Ordering::Relaxed);
        Moving(bytes as i64)
    }
}

impl Drop for Moving {
    fn drop(&mut self) {
        MOVING.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// The replies of one batch while they travel: their bulk strings' bytes are left out of the
/// count from when the running shard made them until the client's shard takes them (or they
/// are dropped on the way), exactly once (on drop).
#[derive(Debug)]
pub struct Replies(i64);

impl Replies {
    /// Nothing left out.
    pub fn none() -> Replies {
        Replies(0)
    }

    /// Leaves out the bulk strings of `replies` (and of arrays of them), while `maxmemory` is
    /// set; the running shard has published its count with them.
    pub fn of(replies: &[crate::protocol::Reply]) -> Replies {
        use crate::protocol::Reply;
        if super::maxmemory() == 0 {
            return Replies(0);
        }
        let bulk = |r: &Reply| match r {
            Reply::Bulk(b) => b.len(),
            _ => 0,
        };
        let bytes: usize = replies
            .iter()
            .map(|r| match r {
                Reply::Array(v) => v.iter().map(bulk).sum(),
                r => bulk(r),
            })
            .sum();
        if bytes > 0 {
            REPLIES.fetch_add(bytes as i64, Ordering::Relaxed);
        }
        Replies(bytes as i64)
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        if self.0 > 0 {
            REPLIES.fetch_sub(self.0, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// This shard's entries: the shared copy of an evicted key its messages carry, and the
    /// bytes telling its trackers allocated.
    static ENTRIES: RefCell<VecDeque<(Bytes, i64)>> = const { RefCell::new(VecDeque::new()) };
    /// The sum of this shard's entries' bytes.
    static MINE: Cell<i64> = const { Cell::new(0) };
}

/// Leaves out `bytes` (what telling the trackers of an evicted key allocated on this thread)
/// while any message still holds `copy` (the key's copy those messages share).
pub fn add(copy: Bytes, bytes: i64) {
    if bytes <= 0 || copy.is_unique() {
        return;
    }
    ENTRIES.with(|e| {
        let mut e = e.borrow_mut();
        let mut mine = MINE.get() + bytes;
        while e.len() >= MAX_ENTRIES || (mine > MAX_BYTES && !e.is_empty()) {
            let Some((_, old)) = e.pop_front() else { break };
            mine -= old;
            LEFT_OUT.fetch_sub(old, Ordering::Relaxed);
        }
        MINE.set(mine);
        e.push_back((copy, bytes));
    });
    LEFT_OUT.fetch_add(bytes, Ordering::Relaxed);
}

/// Counts again the entries whose messages were all taken (their copy is held here only);
/// the copies are freed here. Cheap when the list is empty (one thread-local borrow).
pub fn settle() {
    ENTRIES.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_empty() {
            return;
        }
        let mut back = 0;
        e.retain(|(copy, bytes)| {
            let held = !copy.is_unique();
            if !held {
                back += bytes;
            }
            held
        });
        if back > 0 {
            MINE.set(MINE.get() - back);
            LEFT_OUT.fetch_sub(back, Ordering::Relaxed);
        }
    });
}

/// Bytes of evicted keys' invalidations not yet taken by their trackers (every shard's), of
/// replies travelling between shards, and of reply buffers being moved.
pub fn left_out() -> u64 {
    (LEFT_OUT.load(Ordering::Relaxed) + REPLIES.load(Ordering::Relaxed) + MOVING.load(Ordering::Relaxed)).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_count_again_once_every_message_is_taken() {
        let copy = Bytes::copy_from_slice(b"key");
        let message = copy.clone();
        let before = left_out();
        add(copy, 100);
        assert_eq!(left_out(), before + 100);
        settle();
        assert_eq!(left_out(), before + 100, "a message still holds the copy");
        drop(message);
        settle();
        assert_eq!(left_out(), before);
        // A copy no message holds is not left out at all.
        add(Bytes::copy_from_slice(b"k"), 50);
        assert_eq!(left_out(), before);
    }
}
