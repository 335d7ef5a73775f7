//! The replication buffer (Redis 7.0's `replBufBlock` list, `feedReplicationBuffer`,
//! `incrementalTrimReplicationBacklog`): one chain of blocks holding the stream's recent bytes,
//! shared by the backlog and by every replica, so that the stream is held once however many
//! replicas wait for it or read it.
//!
//! - The backlog is the whole chain: it lets a replica that lost its link continue from its
//!   offset (`+CONTINUE`) from any byte the chain still holds.
//! - A replica is a position in the chain (the offset of the next byte it needs, see
//!   `attached::Outbox`): its writer copies from there and moves it on; blocks before the
//!   lowest position of any replica are not needed by a replica any more.
//! - [`Backlog::trim`] drops the oldest blocks while the chain holds more than
//!   `repl-backlog-size` bytes without them and no replica needs them, a bounded number per call
//!   (as Redis's incremental trim). A replica that does not read (a slow link, a stopped
//!   process, one waiting for its snapshot) so makes the backlog outgrow its size, and partial
//!   resyncs can use that longer history; once it goes, the chain is trimmed back.
//! - Blocks are allocated at least 16 KB (small writes fill them) and at most
//!   `max(16 KB, repl-backlog-size / 16)` (a big write spans several, so one old byte does not
//!   keep a huge block alive), as Redis's. Memory ([`Backlog::mem`], INFO
//!   `mem_total_replication_buffers`) and a replica's output ([`Backlog::referenced_from`],
//!   CLIENT LIST `omem`, the output-buffer limits) count whole blocks, as Redis's do.
//!
//! Offsets are Redis's: the stream's first byte has offset 1, `master_repl_offset` is the
//! offset of the last byte written. The chain holds the bytes
//! `first_byte_offset() .. first_byte_offset() + histlen()`. A backlog created at
//! `master_repl_offset = N` starts empty with `first_byte_offset = N + 1`.
//!
//! Pure: no I/O.

use bytes::Bytes;
use std::collections::VecDeque;

/// The smallest block (Redis's `PROTO_REPLY_CHUNK_BYTES`).
const BLOCK_MIN_BYTES: usize = 16 * 1024;
/// What a block costs besides its bytes (its entry in the chain), counted with them.
pub const BLOCK_OVERHEAD_BYTES: u64 = std::mem::size_of::<Block>() as u64;
/// Blocks [`Backlog::trim`] drops per call at most (Redis's beforeSleep trims
/// 10 × `REPL_BACKLOG_TRIM_BLOCKS_PER_CALL`).
pub const TRIM_BLOCKS_PER_CALL: usize = 640;

#[derive(Debug)]
struct Block {
    /// Offset of its first byte.
    start: u64,
    /// Capacity of every block up to and including this one, since the chain began (a
    /// replica's referenced bytes are a difference of two of these).
    alloc_end: u64,
    /// Its bytes; never grows past the capacity it was made with.
    data: Vec<u8>,
}

/// The shared chain of the stream's recent bytes (see the module's doc).
#[derive(Debug)]
pub struct Backlog {
    blocks: VecDeque<Block>,
    /// Offset of the oldest byte held.
    first: u64,
    /// Offset of the last byte written (`master_repl_offset`).
    end: u64,
    /// `repl-backlog-size`.
    size: usize,
    /// Capacity of every block ever made (see `Block::alloc_end`).
    alloc_total: u64,
    /// Capacity and overhead of the blocks held.
    mem: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes for a stream whose last byte has offset `end`.
    pub fn new(size: usize, end: u64) -> Backlog {
        Backlog { blocks: VecDeque::new(), first: end + 1, end, size: size.max(1), alloc_total: 0, mem: 0 }
    }

    /// `repl_backlog_size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held (`repl_backlog_histlen`): at least `size` once that much was written, more
    /// while a replica needs older bytes.
    pub fn histlen(&self) -> usize {
        (self.end + 1 - self.first) as usize
    }

    /// Offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte_offset(&self) -> u64 {
        self.first
    }

    /// Offset of the last byte written.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The memory the chain holds (`mem_total_replication_buffers`): its blocks' capacity and
    /// their entries.
    pub fn mem(&self) -> u64 {
        // The entries' room the queue holds beyond its blocks is the chain's memory too.
        self.mem + (self.blocks.capacity() - self.blocks.len()) as u64 * BLOCK_OVERHEAD_BYTES
    }

    /// The capacity of a new block made for `left` more bytes: at least [`BLOCK_MIN_BYTES`],
    /// at most a sixteenth of the backlog's size.
    fn block_capacity(&self, left: usize) -> usize {
        left.clamp(BLOCK_MIN_BYTES, (self.size / 16).max(BLOCK_MIN_BYTES))
    }

    /// Appends stream bytes: into the last block while it has room, then into new ones.
    pub fn append(&mut self, mut data: &[u8]) {
        self.end += data.len() as u64;
        while !data.is_empty() {
            if let Some(last) = self.blocks.back_mut() {
                let n = (last.data.capacity() - last.data.len()).min(data.len());
                last.data.extend_from_slice(&data[..n]);
                data = &data[n..];
                if data.is_empty() {
                    break;
                }
            }
            let cap = self.block_capacity(data.len());
            let block = Vec::with_capacity(cap);
            let start = self.end + 1 - data.len() as u64;
            self.alloc_total += block.capacity() as u64;
            self.mem += block.capacity() as u64 + BLOCK_OVERHEAD_BYTES;
            self.blocks.push_back(Block { start, alloc_end: self.alloc_total, data: block });
        }
    }

    /// True when a replica asking to continue at `off` (the offset of the first byte it lacks)
    /// can be served from here.
    pub fn covers(&self, off: u64) -> bool {
        off >= self.first && off <= self.end + 1
    }

    /// Index of the block holding offset `off` (held: `first <= off <= end`).
    fn block_of(&self, off: u64) -> usize {
        self.blocks.partition_point(|b| b.start <= off).saturating_sub(1)
    }

    /// Up to `max` bytes from offset `off` on (from the oldest byte held if `off` is older),
    /// copied out; returns where they start. Empty when `off` is past the end.
    pub fn read(&self, off: u64, max: usize) -> (u64, Bytes) {
        let mut out = Vec::new();
        let from = self.read_into(off, &mut out, max);
        (from, Bytes::from(out))
    }

    /// [`Backlog::read`] appending to `out` (a replica's writer copies straight into its write
    /// buffer, so no copy of the stream is allocated on the way); returns where the bytes
    /// start.
    pub fn read_into(&self, off: u64, out: &mut Vec<u8>, max: usize) -> u64 {
        let off = off.max(self.first);
        if off > self.end || self.blocks.is_empty() {
            return off;
        }
        let len = ((self.end + 1 - off) as usize).min(max);
        out.reserve(len);
        let mut i = self.block_of(off);
        let mut skip = (off - self.blocks[i].start) as usize;
        let mut left = len;
        while left > 0 {
            let b = &self.blocks[i].data[skip..];
            let n = b.len().min(left);
            out.extend_from_slice(&b[..n]);
            left -= n;
            i += 1;
            skip = 0;
        }
        off
    }

    /// The bytes from offset `off` to the end (empty when `off` is just past the end); None
    /// when `off` is not covered.
    pub fn tail_from(&self, off: u64) -> Option<Vec<u8>> {
        if !self.covers(off) {
            return None;
        }
        Some(self.read(off, usize::MAX).1.to_vec())
    }

    /// What a replica whose next byte is at `off` references, as Redis counts a replica's
    /// output buffer: every block from the one holding that byte (the last one, when it has
    /// everything) to the end, whole, with their entries.
    pub fn referenced_from(&self, off: u64) -> u64 {
        let Some(last) = self.blocks.back() else { return 0 };
        let i = self.block_of(off.clamp(self.first, self.end));
        let b = &self.blocks[i];
        let blocks = (self.blocks.len() - i) as u64;
        last.alloc_end - (b.alloc_end - b.data.capacity() as u64) + blocks * BLOCK_OVERHEAD_BYTES
    }

    /// Drops the oldest blocks no replica needs (`needed`: the lowest offset a replica still
    /// needs, `u64::MAX` for none) while what remains holds more than `size` bytes, at most
    /// `max_blocks` of them; the last block always stays. Returns how many went.
    pub fn trim(&mut self, needed: u64, max_blocks: usize) -> usize {
        let mut n = 0;
        while n < max_blocks && self.blocks.len() > 1 {
            let b = &self.blocks[0];
            let len = b.data.len();
            if b.start + len as u64 > needed || self.histlen() - len <= self.size {
                break;
            }
            self.mem -= b.data.capacity() as u64 + BLOCK_OVERHEAD_BYTES;
            self.first += len as u64;
            self.blocks.pop_front();
            n += 1;
        }
        // The queue gives back the room a long chain needed once it is mostly empty (its
        // spare entries count in `mem`, as the blocks Redis frees from its list).
        if n > 0 && self.blocks.capacity() > 16 && self.blocks.len() * 4 < self.blocks.capacity() {
            self.blocks.shrink_to(self.blocks.len() * 2);
        }
        n
    }

    /// Takes a new `repl-backlog-size`: a smaller one trims the chain as it is trimmed after
    /// every write (the caller's next [`Backlog::trim`]), a larger one keeps more from now on.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
    }

    /// Forgets everything held: the stream goes on after offset `end`.
    pub fn reset(&mut self, end: u64) {
        *self = Backlog::new(self.size, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &Backlog) -> Vec<u8> {
        b.tail_from(b.first_byte_offset()).unwrap()
    }

    /// The queue's unused entries, counted in `mem`.
    fn slack(b: &Backlog) -> u64 {
        (b.blocks.capacity() - b.blocks.len()) as u64 * BLOCK_OVERHEAD_BYTES
    }

    #[test]
    fn serves_tails_and_trims_to_its_size() {
        let mut b = Backlog::new(8, 100);
        assert_eq!((b.first_byte_offset(), b.histlen(), b.mem()), (101, 0, 0));
        assert_eq!(b.tail_from(101), Some(vec![]));
        assert_eq!(b.tail_from(102), None);
        b.append(b"abcde");
        assert_eq!(b.tail_from(103).unwrap(), b"cde");
        b.append(b"fghijk");
        assert_eq!((b.first_byte_offset(), b.histlen(), b.end()), (101, 11, 111));
        // One block of 16 KB holds it all: nothing to trim (the last block always stays).
        assert_eq!(b.trim(u64::MAX, 10), 0);
        assert_eq!(b.mem(), 16384 + BLOCK_OVERHEAD_BYTES + slack(&b));
        // Fill the block and start two more: the older ones go once no replica needs them.
        b.append(&vec![b'x'; 16384 * 2]);
        assert_eq!(b.histlen(), 11 + 32768);
        assert_eq!(b.trim(101 + 16383, 10), 0, "a replica needs the first block's last byte");
        assert_eq!(b.trim(101 + 16384, 10), 1);
        assert_eq!(b.first_byte_offset(), 101 + 16384);
        assert_eq!(b.trim(u64::MAX, 10), 1);
        assert_eq!((b.histlen(), b.mem()), (11, 16384 + BLOCK_OVERHEAD_BYTES + slack(&b)));
        assert_eq!(all(&b), vec![b'x'; 11]);
        assert!(!b.covers(101));
    }

    #[test]
    fn a_trimmed_chain_gives_back_its_queue_room() {
        let mut b = Backlog::new(16 * 1024, 0);
        for _ in 0..1000 {
            b.append(&vec![b'x'; 16 * 1024]);
        }
        let long = b.mem();
        while b.trim(u64::MAX, 640) > 0 {}
        assert!(slack(&b) <= 2 * BLOCK_OVERHEAD_BYTES, "{} spare entries", slack(&b) / BLOCK_OVERHEAD_BYTES);
        assert!(b.mem() < long / 200, "{} bytes left of {long}", b.mem());
    }

    #[test]
    fn big_writes_span_blocks_of_a_sixteenth_of_the_size() {
        let mut b = Backlog::new(1 << 20, 0);
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        b.append(&data);
        // Four blocks of 64 KB and one of what was left.
        let last = 300_000 - 4 * 65536;
        assert_eq!(b.mem(), 4 * 65536 + last + 5 * BLOCK_OVERHEAD_BYTES + slack(&b));
        assert_eq!(all(&b), data);
        let (from, part) = b.read(65530, 20);
        assert_eq!((from, &part[..]), (65530, &data[65529..65549]));
        // A replica with everything references the last block; one at the start, all five.
        assert_eq!(b.referenced_from(300_001), last + BLOCK_OVERHEAD_BYTES);
        assert_eq!(b.referenced_from(1), b.mem() - slack(&b));
        assert_eq!(b.referenced_from(65537), 3 * 65536 + last + 4 * BLOCK_OVERHEAD_BYTES);
        b.reset(500);
        assert_eq!((b.first_byte_offset(), b.histlen(), b.mem(), b.referenced_from(501)), (501, 0, 0, 0));
    }
}
