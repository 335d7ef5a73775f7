//! The feed: how the shards' change streams reach the control core.
//!
//! Every shard records the changes it makes to its keyspace (see `storage::changes`) and, while
//! the feed is active (replicas attached, a backlog kept, or the AOF on), pushes them here as
//! [`FeedItem`]s. The feed is one lock-free multi-producer queue drained by the control core,
//! which merges it into the node's single replication stream (one offset space, SELECT
//! injected, atomic units wrapped in MULTI/EXEC). Pushing never waits and takes no lock.
//!
//! Ordering: the queue is linearizable, so when a push happens-before another (a cross-shard
//! transaction pushes its unit before it releases the shards it held), the merged stream keeps
//! that order; pushes of independent shards interleave in arrival order, which is a valid
//! order because they touch disjoint keys.

use bytes::Bytes;
use futures_channel::mpsc;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// Most shards whose pushes [`Feed::pushed`] counts.
pub const MAX_SHARDS: usize = 256;

/// A counter on its own cache line (each shard bumps only its own).
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// Who keeps the feed on (a bit each).
const BY_REPLICATION: u8 = 1;
const BY_AOF: u8 = 2;

/// One command as propagated: its arguments (already rewritten into Redis's propagation form).
pub type Argv = Vec<Bytes>;

/// Commands that must be applied together: one command execution on one shard (a command
/// plus the lazy-expiry DELs it caused), or every part of a cross-shard transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The database the commands ran in.
    pub db: usize,
    /// The commands, in order. More than one is wrapped in MULTI/EXEC by the merger.
    pub cmds: Vec<Argv>,
    /// Where the unit goes: [`Unit::TO_AOF`] | [`Unit::TO_REPLICAS`] ([`Unit::TO_ALL`] but for
    /// a script's commands run under `redis.set_repl`).
    pub to: u8,
}

impl Unit {
    /// The AOF takes the unit (Redis's `PROPAGATE_AOF`, `redis.REPL_AOF`).
    pub const TO_AOF: u8 = 1;
    /// Replicas and the backlog take it (`PROPAGATE_REPL`, `redis.REPL_REPLICA`).
    pub const TO_REPLICAS: u8 = 2;
    /// Both.
    pub const TO_ALL: u8 = 3;

    /// A unit for every consumer.
    pub fn new(db: usize, cmds: Vec<Argv>) -> Unit {
        Unit { db, cmds, to: Unit::TO_ALL }
    }
}

/// What the shards send the control core.
pub enum FeedItem {
    /// Units one shard applied, in order. `atomic`: they are one transaction (EXEC, or a
    /// command whose keys span shards), wrapped in one MULTI/EXEC whatever their count.
    Units {
        /// The shard that pushed them (the coordinator, for a transaction).
        shard: usize,
        /// The units.
        units: Vec<Unit>,
        /// One transaction.
        atomic: bool,
    },
    /// Shard `shard` took its part of snapshot `snapshot` at this point of the feed: its
    /// records before this mark are in the snapshot, those after it are not.
    Mark {
        /// The shard.
        shard: usize,
        /// Which snapshot.
        snapshot: u64,
    },
    /// A replica forwards its master's stream byte for byte (offsets stay identical down a
    /// chain of replicas).
    Raw(Bytes),
    /// A request for the control core (WAIT, attach a replica, ...); it arrives after every
    /// item pushed before it.
    Control(Box<dyn FnOnce() + Send>),
}

/// The shards -> control core queue.
pub struct Feed {
    /// `BY_REPLICATION | BY_AOF` bits.
    active: AtomicU8,
    /// Per shard: `Units` items that shard pushed (bumped after the push, by the pushing
    /// thread, so a count read after a reply covers the reply's changes).
    pushed: Box<[Padded]>,
    tx: mpsc::UnboundedSender<FeedItem>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<FeedItem>>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("active", &self.active()).finish()
    }
}

impl std::fmt::Debug for FeedItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedItem::Units { shard, units, atomic } => write!(f, "Units({shard}, {units:?}, {atomic})"),
            FeedItem::Mark { shard, snapshot } => write!(f, "Mark({shard}, {snapshot})"),
            FeedItem::Raw(b) => write!(f, "Raw({} bytes)", b.len()),
            FeedItem::Control(_) => f.write_str("Control"),
        }
    }
}

impl Feed {
    /// An inactive feed.
    pub fn new() -> Feed {
        let (tx, rx) = mpsc::unbounded();
        let pushed = (0..MAX_SHARDS).map(|_| Padded::default()).collect();
        Feed { active: AtomicU8::new(0), pushed, tx, rx: Mutex::new(Some(rx)) }
    }

    /// True while someone consumes the stream; shards skip encoding records otherwise (the
    /// dirty counter still counts).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// Turns recording on or off (the control core does, when the first replica attaches, a
    /// backlog is created, or the AOF is turned on).
    pub fn set_active(&self, on: bool) {
        self.set_bit(BY_REPLICATION, on);
    }

    /// Turns recording on or off for the AOF (independently of replication's need).
    pub fn set_aof(&self, on: bool) {
        self.set_bit(BY_AOF, on);
    }

    fn set_bit(&self, bit: u8, on: bool) {
        let now = if on {
            self.active.fetch_or(bit, Ordering::AcqRel) | bit
        } else {
            self.active.fetch_and(!bit, Ordering::AcqRel) & !bit
        };
        crate::storage::set_expired_logging(now != 0);
    }

    /// Pushes an item; never waits.
    pub fn push(&self, item: FeedItem) {
        let counted = match &item {
            FeedItem::Units { shard, .. } => self.pushed.get(*shard),
            _ => None,
        };
        let _ = self.tx.unbounded_send(item);
        if let Some(c) = counted {
            c.0.fetch_add(1, Ordering::Release);
        }
    }

    /// How many `Units` items shard `shard` pushed so far.
    #[inline]
    pub fn pushed(&self, shard: usize) -> u64 {
        self.pushed.get(shard).map_or(0, |c| c.0.load(Ordering::Acquire))
    }

    /// The receiving end, taken once by the control core.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<FeedItem>> {
        match self.rx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}
