//! Messages carried by the channel mesh between shards.
//!
//! Rules (see notes on glommio's bounded mesh): replies never travel over the mesh (they use
//! oneshot channels), and a shard's drain tasks never await a mesh send.

use crate::cmd::{CommandSpec, ShardFn};
use crate::protocol::Reply;
use bytes::Bytes;
use futures_channel::oneshot;

/// A keyed command sent to the shard owning its keys.
pub struct RemoteCmd {
    /// The command (or subcommand) spec.
    pub spec: &'static CommandSpec,
    /// Its full name for stats (`get`, `object|encoding`).
    pub fullname: &'static str,
    /// Name and arguments.
    pub args: Vec<Bytes>,
    /// Cluster-mode check the owning shard runs first (migrating / importing slots).
    pub check: crate::cluster::redirect::SlotCheck,
    /// The slot of `args[1]` when routing computed it (saves hashing the key again).
    pub slot: Option<u16>,
    /// The issuing client's id (0: none), for CLIENT TRACKING's NOLOOP and remembering.
    pub client: u64,
    /// CLIENT TRACKING: remember the keys for `client` after running (see `cmd::tracking`).
    pub remember: bool,
}

pub use crate::cmd::blocked::Waiter;
pub use crate::transaction::KeyCopy;

impl RemoteCmd {
    /// The command's flags and arguments (for SLOWLOG).
    pub fn spec_flags_args(&self) -> (u32, &[Bytes]) {
        (self.spec.flags, &self.args)
    }
}

/// What a held shard answers: the result, the changes its work recorded, its notifications,
/// and the keys it wrote for BCAST trackers (with their writers).
pub type HeldDone = (HeldResult, Vec<crate::replication::feed::Unit>, Vec<(Bytes, Bytes)>, Vec<(Bytes, u64)>);

/// What a shard answers for a [`Msg::Batch`]: one reply per command, and the commands that
/// ran long enough for the issuing client's shard to note (usually none).
pub type BatchDone = (Vec<Reply>, Vec<crate::cmd::slowlog::SlowNote>);

/// What a [`Msg::Batch`] answers: its [`BatchDone`], and the replies' bytes left out of the
/// ceiling's count while they travel (see `memory::in_flight`).
pub type BatchAnswer = (BatchDone, crate::memory::in_flight::Replies);

/// A message to a shard.
pub enum Msg {
    /// Serve a client socket another shard accepted (`balance`): the fd is the receiver's now.
    Adopt {
        /// The connected socket, registered with no poller.
        fd: i32,
        /// Accepted on `tls-port` (the TLS handshake comes first).
        tls: bool,
    },
    /// Run consecutive pipelined commands of one client, in order, in database `db`.
    Batch {
        /// Selected database.
        db: usize,
        /// Commands.
        cmds: Vec<RemoteCmd>,
        /// One reply per command, and the commands that SLOWLOG or the latency monitor
        /// should note.
        reply: oneshot::Sender<BatchAnswer>,
    },
    /// Run a function on this shard once its gate is open (deferred while a transaction holds
    /// it), e.g. one step of SCAN.
    Run {
        /// The function.
        run: ShardFn,
        /// Client's database.
        db: usize,
        /// Arguments.
        args: Vec<Bytes>,
        /// Its reply.
        reply: oneshot::Sender<Reply>,
    },
    /// As `Run` (in database 0), for a function that creates no key: a read (the save cron's
    /// change count, the liveness probe) or a Pub/Sub delivery. Nothing is signalled to the
    /// shard's blocked clients afterwards, which after a `Run` walks every key they wait on.
    Look {
        /// The function.
        run: ShardFn,
        /// Arguments.
        args: Vec<Bytes>,
        /// Its reply.
        reply: oneshot::Sender<Reply>,
    },
    /// As `Look`, for one step (or the end) of a running snapshot (`runtime::snapshot`), run
    /// at once even while a transaction or a busy script holds the gate: a step reads only the
    /// keys as they were at the snapshot's start (a key changed since was saved before its
    /// change), so it cannot see a transaction's middle, and it records nothing. A snapshot
    /// begun before a script so goes on while the script runs, as Redis's forked child does.
    Frozen {
        /// The function.
        run: ShardFn,
        /// Arguments.
        args: Vec<Bytes>,
        /// Its reply.
        reply: oneshot::Sender<Reply>,
    },
    /// Hold the shard for transaction `tx` (granted in arrival order).
    Lock {
        /// Transaction id.
        tx: u64,
        /// Sent once the shard is held.
        reply: oneshot::Sender<()>,
    },
    /// Work done for the transaction that holds the shard.
    Held {
        /// Transaction id (must be the holder).
        tx: u64,
        /// What to do.
        op: HeldOp,
        /// The result, with the changes the work recorded (for the transaction's unit) and
        /// its keyspace notifications (published by the coordinator, in command order).
        reply: oneshot::Sender<HeldDone>,
    },
    /// Release the shard.
    Unlock {
        /// Transaction id.
        tx: u64,
    },
    /// A blocking call: run its non-blocking attempt (if any) and, when that found nothing,
    /// register its waiter here. The reply is the attempt's (a null when only registering).
    Block {
        /// Client's database.
        db: usize,
        /// The call to attempt first (None: register only) and the waiter to register; boxed,
        /// so that this rare message does not size every slot of the mesh's channels.
        call: Box<(Option<RemoteCmd>, Waiter)>,
        /// The attempt's reply, sent once the waiter is registered.
        reply: oneshot::Sender<Reply>,
    },
    /// Drop a blocked call's waiter (its home timed out, was served elsewhere, or went away).
    Unblock {
        /// The call's token id.
        token: u64,
    },
}

/// Work for a held shard.
pub enum HeldOp {
    /// Run a fan-out function.
    Run {
        /// The function.
        run: ShardFn,
        /// Client's database.
        db: usize,
        /// Arguments.
        args: Vec<Bytes>,
    },
    /// Copy out these keys from every database (expired keys are reclaimed, not copied).
    Fetch {
        /// Keys.
        keys: Vec<Bytes>,
    },
    /// Store these final states (None = delete).
    Apply {
        /// Final states.
        entries: Vec<KeyCopy>,
        /// The client whose write this is (0: none), for CLIENT TRACKING's NOLOOP.
        writer: u64,
        /// The keys the write signalled (`Table::signalled`), None: every key written back.
        /// (Boxed: it would size every mesh slot.)
        signalled: Option<Box<Vec<Bytes>>>,
    },
    /// Run one keyed command of a script, at the script's time.
    Script {
        /// Client's database.
        db: usize,
        /// The command (boxed, as `Msg::Block`'s call: it would size every mesh slot).
        cmd: Box<RemoteCmd>,
        /// The script's clock (ms): expiry as of the script's start.
        ms: u64,
    },
    /// Run keyed commands in order (EXEC's queued commands for this shard).
    Keyed {
        /// Client's database.
        db: usize,
        /// Commands.
        cmds: Vec<RemoteCmd>,
    },
}

/// Result of a [`HeldOp`].
pub enum HeldResult {
    /// From `Run`.
    Reply(Reply),
    /// From `Fetch`.
    Entries(Vec<KeyCopy>),
    /// From `Apply`.
    Done,
    /// From `Keyed`: one reply per command, and the commands that ran long enough for
    /// SLOWLOG or the latency monitor (the client's shard records them).
    Replies(BatchDone),
}
