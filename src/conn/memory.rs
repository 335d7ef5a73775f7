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
        c.obuf_cap = self.wbuf.capacity();
        c.argv_mem = argv_bytes;
        c.argv_held = self.parser.partial_memory().max(argv_bytes + argc * std::mem::size_of::<usize>());
        c.multi_mem = multi;
        crate::memory::clients::update(&mut c);
    }

    /// The reply buffer grew while replies were added: re-counts the client and evicts clients
    /// on this shard while over the limit. True when this client was closed, for its output
    /// limit or evicted (its output is dropped: nothing more is sent to it).
    pub(super) fn evicted_while_replying(&mut self, st: &mut crate::cmd::ShardState) -> bool {
        // The output-buffer limit goes first (as in Redis): a client it closes counts nothing,
        // and nobody is evicted for memory that is given back anyway.
        if self.obuf_over() {
            return true;
        }
        self.track_memory();
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
}
