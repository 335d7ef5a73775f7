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
//!
//! Waking the control core: a push goes into the queue at once, but a shard's command records
//! ([`Feed::push_batched`]) wake the control core once per round of the shard's executor, not
//! once per command: the first such push of a round wakes the shard's own [`batch_waker`]
//! task (a local wake), which runs after the tasks already ready (the other connections served
//! in the same round) and then wakes the control core. So the merge, the AOF's write and the
//! replicas' stream take a round's records at once, with one cross-thread wake, as Redis
//! writes its AOF once per event-loop turn. A replica's link pushes its master's stream
//! without waking the control core while only the backlog takes it ([`Feed::push_quiet`]):
//! those bytes are taken in with the next item that wakes it, or at its next tick (at most
//! 100 ms later; [`Feed::wake_if_queued`]). Every other push wakes the control core at once.
//!
//! Taking a round's records on the shard: the batch waker first offers the queue to a hook
//! (the AOF's, while no replica or backlog takes the records: it writes the round's records on
//! the shard's own thread, as Redis does before it sleeps, so the replies need no trip through
//! the control core). Whoever pops does so under one lock with what it records (the AOF's), so
//! the merged order stays the queue's; an item the hook cannot take is put back in front
//! ([`Feed::put_back`]) for the control core, which is woken only when something is left for
//! it.
//!
//! The records on their way are left out of what `maxmemory` counts (they are the stream the
//! replicas and the AOF take, which Redis writes straight into its replication and AOF
//! buffers, both left out of its count beyond the backlog's size): a push adds an estimate of
//! their heap bytes ([`units_bytes`]) to the pushing thread's share of the records in flight
//! (`memory::feed_sent`), and the thread that took them gives it back with
//! [`Feed::settle`], once it has freed them and published its allocation counters. Behind a
//! replica that stopped reading, the control core lagged the shards by hundreds of records
//! (over 200 KB) and the shards evicted keys for them.

use bytes::Bytes;
use crossbeam_queue::SegQueue;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

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
    queue: SegQueue<FeedItem>,
    /// An item put back by a round's hook: it comes before everything in `queue`.
    front: Mutex<Option<FeedItem>>,
    /// `front` holds an item (checked before locking it).
    has_front: AtomicBool,
    /// The consumer's waker, while it waits for an item.
    waker: Mutex<Option<Waker>>,
    /// The consumer registered `waker` and found the queue empty.
    parked: AtomicBool,
    /// The receiving end was taken.
    taken: AtomicBool,
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
        let pushed = (0..MAX_SHARDS).map(|_| Padded::default()).collect();
        Feed {
            active: AtomicU8::new(0),
            pushed,
            queue: SegQueue::new(),
            front: Mutex::new(None),
            has_front: AtomicBool::new(false),
            waker: Mutex::new(None),
            parked: AtomicBool::new(false),
            taken: AtomicBool::new(false),
        }
    }

    /// True while someone consumes the stream; shards skip encoding records otherwise (the
    /// dirty counter still counts).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// True while the AOF takes the stream.
    #[inline]
    pub fn aof_on(&self) -> bool {
        self.active.load(Ordering::Relaxed) & BY_AOF != 0
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

    /// Pushes an item and wakes the control core; never waits.
    pub fn push(&self, item: FeedItem) {
        self.enqueue(item);
        self.wake();
    }

    /// Pushes an item without waking the control core: it is taken in order with the next item
    /// that wakes it, or at the control core's next tick ([`Feed::wake_if_queued`]).
    pub fn push_quiet(&self, item: FeedItem) {
        self.enqueue(item);
    }

    /// Wakes the control core when items wait (its cron does, every tick, for the items
    /// pushed quietly).
    pub fn wake_if_queued(&self) {
        if !self.is_empty() {
            self.wake();
        }
    }

    /// Pushes a shard's command records: the control core is woken once this round of the
    /// calling thread's executor ends (by its [`batch_waker`]), or at once on a thread
    /// without one.
    pub fn push_batched(&self, item: FeedItem) {
        self.enqueue(item);
        let deferred = BATCH.with(|b| {
            if let Some(w) = b.waker.take() {
                b.owed.set(true);
                w.wake();
                true
            } else {
                b.owed.get()
            }
        });
        if !deferred {
            self.wake();
        }
    }

    fn enqueue(&self, mut item: FeedItem) {
        let counted = match &mut item {
            FeedItem::Units { shard, units, .. } => {
                if crate::memory::maxmemory() != 0 {
                    // This thread's counters are published before the copies are made: a
                    // first publication after a refresh takes what the thread holds then as
                    // its base, and copies made before it would be left out of the count
                    // while their estimate is left out of it too.
                    crate::memory::publish();
                    compact(units);
                }
                crate::memory::feed_sent(units_bytes(units));
                self.pushed.get(*shard)
            }
            _ => None,
        };
        self.queue.push(item);
        if let Some(c) = counted {
            c.0.fetch_add(1, Ordering::Release);
        }
    }

    /// Wakes the consumer if it waits.
    fn wake(&self) {
        // Pairs with the fence in `Receiver::poll_recv`: either the consumer sees the item
        // pushed before this, or this sees it parked.
        fence(Ordering::SeqCst);
        if self.parked.swap(false, Ordering::AcqRel) {
            let w = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// The next item: one put back first, else the queue's. Callers pop under the lock that
    /// orders what they record (the control core's merger, or a round's hook), and call
    /// [`Feed::settle`] once they have freed what they took.
    pub fn pop(&self) -> Option<FeedItem> {
        let mut item = None;
        if self.has_front.load(Ordering::Acquire) {
            item = self.front.lock().unwrap_or_else(|p| p.into_inner()).take();
            self.has_front.store(false, Ordering::Release);
        }
        let item = item.or_else(|| self.queue.pop());
        if let Some(FeedItem::Units { units, .. }) = &item {
            TAKEN.with(|t| t.set(t.get() + units_bytes(units)));
        }
        item
    }

    /// After the calling thread freed the records it popped: they stop being left out of the
    /// memory count (its allocation counters are published first, so the count never holds
    /// them twice; see the module's doc).
    pub fn settle(&self) {
        let bytes = TAKEN.with(|t| t.replace(0));
        if bytes > 0 {
            crate::memory::feed_freed(bytes);
        }
    }

    /// Puts an item just popped back in front of the queue, for the control core (at most one
    /// at a time: a hook stops at the first item it cannot take, and takes none until the
    /// control core has seen it), and wakes the control core.
    pub fn put_back(&self, item: FeedItem) {
        if let FeedItem::Units { units, .. } = &item {
            TAKEN.with(|t| t.set(t.get().saturating_sub(units_bytes(units))));
        }
        *self.front.lock().unwrap_or_else(|p| p.into_inner()) = Some(item);
        self.has_front.store(true, Ordering::Release);
        self.wake();
    }

    /// Nothing is queued.
    fn is_empty(&self) -> bool {
        !self.has_front.load(Ordering::Acquire) && self.queue.is_empty()
    }

    /// How many `Units` items shard `shard` pushed so far.
    #[inline]
    pub fn pushed(&self, shard: usize) -> u64 {
        self.pushed.get(shard).map_or(0, |c| c.0.load(Ordering::Acquire))
    }

    /// The receiving end, taken once by the control core.
    pub fn take_receiver(&self) -> Option<Receiver<'_>> {
        (!self.taken.swap(true, Ordering::AcqRel)).then_some(Receiver { feed: self })
    }
}

/// The control core's end of the feed.
pub struct Receiver<'a> {
    feed: &'a Feed,
}

impl<'a> Receiver<'a> {
    /// The next item, if one is queued.
    pub fn try_recv(&mut self) -> Option<FeedItem> {
        self.feed.pop()
    }

    /// Waits for the next item.
    pub async fn recv(&mut self) -> FeedItem {
        loop {
            self.ready().await;
            if let Some(item) = self.feed.pop() {
                return item;
            }
        }
    }

    /// Waits until an item is queued (without taking it: a round's hook may take it first).
    pub fn ready(&self) -> impl Future<Output = ()> + use<'a> {
        let feed = self.feed;
        std::future::poll_fn(move |cx| {
            if !feed.is_empty() {
                return Poll::Ready(());
            }
            *feed.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            feed.parked.store(true, Ordering::Release);
            fence(Ordering::SeqCst);
            if feed.is_empty() {
                Poll::Pending
            } else {
                feed.parked.store(false, Ordering::Release);
                Poll::Ready(())
            }
        })
    }
}

/// A thread's batched wake ([`Feed::push_batched`]).
#[derive(Default)]
struct Batch {
    /// The batch waker task, while it waits for a push.
    waker: Cell<Option<Waker>>,
    /// A batched push waits for the control core's wake.
    owed: Cell<bool>,
}

thread_local! {
    static BATCH: Batch = Batch::default();
    /// Bytes of the records this thread popped since its last [`Feed::settle`].
    static TAKEN: Cell<usize> = const { Cell::new(0) };
}

/// An estimate of the heap bytes `units` hold in the feed: the queue's slot, their vectors
/// and the arguments' bytes, each as the allocator sizes it (an argument sliced from a query
/// buffer counts its own bytes, not the buffer's: see [`compact`]). The same records give the
/// same estimate at the push and at the pop.
pub fn units_bytes(units: &Vec<Unit>) -> usize {
    use crate::memory::clients::allocation_size;
    use std::mem::size_of;
    let data = |a: &Argv| {
        let total: usize = a.iter().map(Bytes::len).sum();
        if total == 0 || total > COMPACT_MAX {
            return total;
        }
        // One buffer (see `compact`), and the header of its shared slices.
        allocation_size(total) + if a.len() > 1 { allocation_size(SHARED_HEADER) } else { 0 }
    };
    let argv = |a: &Argv| allocation_size(a.capacity() * size_of::<Bytes>()) + data(a);
    let unit =
        |u: &Unit| allocation_size(u.cmds.capacity() * size_of::<Argv>()) + u.cmds.iter().map(argv).sum::<usize>();
    // A queue slot: the item and its state word.
    let slot = size_of::<FeedItem>() + size_of::<usize>();
    slot + allocation_size(units.capacity() * size_of::<Unit>()) + units.iter().map(unit).sum::<usize>()
}

/// What `bytes` allocates for a buffer whose slices are shared (its pointer, capacity and
/// reference count).
const SHARED_HEADER: usize = 3 * std::mem::size_of::<usize>();

/// A command whose arguments hold at most this many bytes in all is copied by [`compact`].
const COMPACT_MAX: usize = 16 * 1024;

/// Copies each small command's arguments into one buffer of its own. A command's arguments
/// are slices of the connection's query buffer (up to 16 KB, shared by the requests read into
/// it): records on their way to the control core kept whole buffers alive, up to twice what
/// they hold, and all of it beyond what the feed's estimate leaves out of the memory count
/// (behind a stopped replica, the shards evicted keys for them). A big argument is most of the
/// buffer it was read into, and is not copied.
fn compact(units: &mut [Unit]) {
    for argv in units.iter_mut().flat_map(|u| u.cmds.iter_mut()) {
        let total: usize = argv.iter().map(Bytes::len).sum();
        if total == 0 || total > COMPACT_MAX {
            continue;
        }
        let mut buf = bytes::BytesMut::with_capacity(total);
        for a in argv.iter() {
            buf.extend_from_slice(a);
        }
        let mut buf = buf.freeze();
        for a in argv.iter_mut() {
            *a = buf.split_to(a.len());
        }
    }
}

/// A shard's task that wakes the control core once per round in which the shard pushed
/// command records (see the module's doc), after offering the queue to `take_here` (a hook
/// that may pop and record items on this thread). Runs until the executor ends.
pub async fn batch_waker(feed: &Feed, take_here: impl Fn(&Feed)) {
    loop {
        WaitOwed.await;
        take_here(feed);
        feed.settle();
        if !feed.is_empty() {
            feed.wake();
        }
    }
}

/// Ready once a batched push of this thread owes the control core a wake.
struct WaitOwed;

impl Future for WaitOwed {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        BATCH.with(|b| {
            if b.owed.replace(false) {
                Poll::Ready(())
            } else {
                b.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(shard: usize) -> FeedItem {
        FeedItem::Units { shard, units: Vec::new(), atomic: false }
    }

    /// Batched pushes of one round reach the consumer when the round ends, in push order with
    /// the immediate pushes around them; an immediate push wakes it at once.
    #[test]
    fn batched_pushes_wake_the_consumer_once_a_round() {
        use std::rc::Rc;
        use std::time::Duration;
        let ex = glommio::LocalExecutorBuilder::default().make().expect("executor");
        ex.run(async {
            let feed = Rc::new(Feed::new());
            let got = Rc::new(std::cell::RefCell::new(Vec::new()));
            let f = feed.clone();
            glommio::spawn_local(async move { batch_waker(&f, |_| {}).await }).detach();
            let (f, g) = (feed.clone(), got.clone());
            glommio::spawn_local(async move {
                let mut rx = f.take_receiver().expect("receiver");
                loop {
                    let item = rx.recv().await;
                    g.borrow_mut().push(format!("{item:?}"));
                }
            })
            .detach();
            let settle = || glommio::timer::sleep(Duration::from_millis(5));
            settle().await;
            feed.push_batched(units(0));
            feed.push_batched(units(1));
            // Still this round: the consumer was not woken.
            assert!(feed.parked.load(Ordering::Acquire));
            settle().await;
            assert_eq!(got.borrow().len(), 2);
            assert_eq!((feed.pushed(0), feed.pushed(1)), (1, 1));
            feed.push_batched(units(0));
            feed.push(FeedItem::Raw(Bytes::from_static(b"x")));
            assert!(!feed.parked.load(Ordering::Acquire));
            feed.push_batched(units(0));
            settle().await;
            assert_eq!(
                *got.borrow(),
                [
                    "Units(0, [], false)",
                    "Units(1, [], false)",
                    "Units(0, [], false)",
                    "Raw(1 bytes)",
                    "Units(0, [], false)"
                ]
            );
        });
    }

    /// A thread without a batch waker wakes the consumer at once.
    #[test]
    fn batched_push_without_a_waker_task_is_immediate() {
        let feed = Feed::new();
        let mut rx = feed.take_receiver().expect("receiver");
        assert!(feed.take_receiver().is_none());
        feed.push_batched(units(3));
        assert_eq!(feed.pushed(3), 1);
        assert!(rx.try_recv().is_some());
        assert!(rx.try_recv().is_none());
    }
}
