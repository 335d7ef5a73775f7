//! The connection's part of client eviction (`memory::clients`): once per turn of its loop it
//! publishes the memory it holds into its `ClientState` (query buffer, arguments of a request
//! not fully received, reply buffer, MULTI queue and watched keys), has the client counted
//! anew, and evicts clients node-wide while their total is at or over `maxmemory-clients`.

use super::Conn;

/// Redis's `PROTO_MBULK_BIG_ARG`: from this size an argument gets a query buffer of its own.
const BIG_ARG: usize = 32 * 1024;

impl Conn {
    /// Publishes this connection's memory and re-counts the client (Redis's
    /// `updateClientMemUsageAndBucket`). Cheap when nothing changed: a few loads and compares.
    pub(super) fn track_memory(&mut self) {
        self.track_memory_at(self.wbuf.capacity());
    }

    /// [`track_memory`](Self::track_memory) with the reply buffer counted at `obuf_cap`.
    fn track_memory_at(&mut self, obuf_cap: usize) {
        let (argv_bytes, argc) = self.parser.partial_args();
        let multi = self.tx.memory();
        let mut c = self.client.borrow_mut();
        // A big argument being received counts at its announced size, as Redis sizes its query
        // buffer for such an argument at once, exactly (here the room grows as it arrives, and
        // its allocation's growth reserve is not counted: counted, a client whose big argument
        // fits `maxmemory-clients` in Redis was evicted). Otherwise the buffer counts by its
        // allocation, as Redis's greedy query buffer does.
        let wanted = self.parser.wanted();
        c.qbuf_alloc = match wanted >= BIG_ARG {
            true => self.rbuf.initialised().max(wanted),
            false => self.rbuf.size(),
        };
        c.obuf_cap = obuf_cap;
        c.argv_mem = argv_bytes;
        c.argv_held = self.parser.partial_memory().max(argv_bytes + argc * std::mem::size_of::<usize>());
        c.multi_mem = multi;
        crate::memory::clients::update(&mut c);
    }

    /// The reply buffer grew while replies were added: re-counts the client and evicts clients
    /// on this shard while over the limit. True when this client was closed, for its output
    /// limit or evicted (its output is dropped: nothing more is sent to it).
    pub(super) fn evicted_while_replying(&mut self, st: &mut crate::cmd::ShardState) -> bool {
        self.evicted_at(st, self.wbuf.capacity())
    }

    /// [`evicted_while_replying`](Self::evicted_while_replying) with the reply buffer counted
    /// at `obuf_cap`.
    fn evicted_at(&mut self, st: &mut crate::cmd::ShardState, obuf_cap: usize) -> bool {
        // The output-buffer limit goes first (as in Redis): a client it closes counts nothing,
        // and nobody is evicted for memory that is given back anyway.
        if self.obuf_over() {
            return true;
        }
        self.track_memory_at(obuf_cap);
        crate::memory::clients::evict_local(st);
        if !self.client.borrow().killed {
            return false;
        }
        self.drop_output();
        self.wbuf = Vec::new();
        true
    }

    /// [`track_memory`](Self::track_memory), then client eviction when `maxmemory-clients` is
    /// set (Redis runs it before each command and before sleeping). True when this client is
    /// closing (evicted now, or killed before).
    pub(super) async fn track_memory_and_evict(&mut self) -> bool {
        self.track_memory();
        if crate::memory::clients::limit() != 0 {
            crate::memory::clients::evict(&self.shard).await;
        }
        self.client.borrow().killed
    }

    /// Makes room in the reply buffer for a big reply (client eviction on), counting the
    /// client at the grown size first and then growing it, its old allocation left out of the
    /// node's count while the bytes move (see `memory::in_flight::Moving`). True when this
    /// client was closed instead (evicted, or over its output limit).
    ///
    /// Grown by the encoding, the buffer was in the node's memory before it was in the
    /// client's: another shard reading the node's total in between (its thread runs at the
    /// same time) found the node over `maxmemory` with the clients under their limit, and
    /// evicted keys where Redis evicts the client (20 clients asking for a 100 KB value
    /// without reading; a buffer moving from 1.75 to 3.5 MB, both allocated).
    pub(super) fn grow_for_reply(&mut self, r: &crate::protocol::Reply) -> bool {
        let need = bulk_bytes(r);
        let (len, cap) = (self.wbuf.len(), self.wbuf.capacity());
        if need < GROW_FIRST || len + need <= cap {
            return false;
        }
        // As `Vec` grows: at least twice the old size.
        let grown = (len + need).max(cap.saturating_mul(2));
        let shard = self.shard.clone();
        if self.evicted_at(&mut shard.state.borrow_mut(), grown) {
            return true;
        }
        let _moving = crate::memory::in_flight::Moving::new(crate::memory::clients::allocation_size(cap));
        self.wbuf.reserve_exact(grown - len);
        false
    }
}

/// Replies with fewer bulk bytes than this grow the reply buffer as they are encoded.
const GROW_FIRST: usize = 16 * 1024;

/// A reply's encoded size as far as its bulk strings go (each with room for its header), the
/// bulk strings of an array's or set's elements included.
fn bulk_bytes(r: &crate::protocol::Reply) -> usize {
    use crate::protocol::Reply;
    const HEADER: usize = 32;
    let one = |r: &Reply| match r {
        Reply::Bulk(b) => b.len() + HEADER,
        _ => HEADER,
    };
    match r {
        Reply::Array(v) | Reply::Set(v) => HEADER + v.iter().map(one).sum::<usize>(),
        r => one(r),
    }
}
