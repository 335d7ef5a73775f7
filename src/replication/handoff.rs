//! What the shards hand the control core's master side: a would-be replica's REPLCONF facts
//! and its socket (SYNC/PSYNC), WAIT requests, and where a replica's master link starts
//! applying the stream. They travel through the feed as `FeedItem::Control` closures, so each
//! arrives after everything its sender pushed before (a WAIT after the client's writes, the
//! stream's start before its first byte).

use super::feed::FeedItem;
use super::Replication;
use crate::protocol::Reply;
use futures_channel::oneshot;
use std::cell::RefCell;

/// What a would-be replica told us with REPLCONF before SYNC/PSYNC.
#[derive(Debug, Clone, Default)]
pub struct ReplicaFacts {
    /// `listening-port`.
    pub listening_port: u16,
    /// `ip-address`.
    pub ip_address: Option<String>,
    /// `capa eof`: understands the diskless `$EOF:` framing.
    pub capa_eof: bool,
    /// `capa psync2`: understands `+CONTINUE <replid>`.
    pub capa_psync2: bool,
    /// `rdb-only 1`: wants the RDB only, no stream (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// `rdb-filter-only` given: the RDB leaves the data out (functions are not kept here).
    pub exclude_data: bool,
}

/// A connection that sent SYNC or PSYNC, handed by its home shard to the control core.
#[derive(Debug)]
pub struct Attach {
    /// Client id.
    pub id: u64,
    /// The socket (a dup owned by the receiver).
    pub fd: i32,
    /// Peer `ip:port`.
    pub addr: String,
    /// Local `ip:port`.
    pub laddr: String,
    /// CLIENT SETNAME.
    pub name: String,
    /// Selected database.
    pub db: usize,
    /// Connection time (Unix ms).
    pub created_ms: u64,
    /// REPLCONF facts.
    pub facts: ReplicaFacts,
    /// PSYNC's (replid, offset); None for SYNC.
    pub psync: Option<(String, i64)>,
    /// Input read after the command and not parsed.
    pub leftover: Vec<u8>,
}

/// WAIT numreplicas timeout, pushed through the feed after the client's writes.
#[derive(Debug)]
pub struct WaitRequest {
    /// Replicas wanted.
    pub numreplicas: i64,
    /// Timeout in ms (0 = forever).
    pub timeout_ms: u64,
    /// Inside EXEC: answer at once.
    pub no_block: bool,
    /// The answer.
    pub reply: oneshot::Sender<Reply>,
}

/// Requests shards send the control core through the feed (`FeedItem::Control`).
#[derive(Debug)]
pub enum Request {
    /// SYNC/PSYNC: attach a replica.
    Attach(Box<Attach>),
    /// WAIT.
    Wait(WaitRequest),
    /// A save asks what it records about replication at its point of the stream.
    SaveMark(std::sync::mpsc::Sender<Option<crate::persist::file::ReplInfo>>),
    /// A restarted master continues its saved history.
    Restore(super::master::restart::Restore),
    /// A replica's link starts (or resumes) applying its master's stream.
    MasterStream(super::master::replica_backlog::MasterStream),
}

thread_local! {
    /// Requests delivered by `FeedItem::Control` closures on the control core.
    static INBOX: RefCell<Vec<Request>> = const { RefCell::new(Vec::new()) };
}

/// Sends a request to the control core through the feed, after everything this thread
/// pushed before.
pub fn send(repl: &Replication, req: Request) {
    repl.feed.push(FeedItem::Control(Box::new(move || INBOX.with(|i| i.borrow_mut().push(req)))));
}

/// The requests the `Control` closures just delivered (on the control core).
pub fn take_inbox() -> Vec<Request> {
    INBOX.with(|i| std::mem::take(&mut *i.borrow_mut()))
}
