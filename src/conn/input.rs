//! A connection's query buffer: received bytes waiting to be parsed, followed by spare room
//! that socket reads fill.
//!
//! Reads need an initialised `&mut [u8]`. Zeroing 16 KB before every read (what
//! `BytesMut::resize` does) cost more than parsing a 16-command pipeline, so the spare room is
//! kept between reads: the buffer's length covers the received bytes *and* the spare, and
//! `filled` says where the received bytes end. The spare is zeroed again only when it runs low,
//! once per `READ_CHUNK`-ish of input instead of once per read. Parsing splits the spare off,
//! lets the parser consume whole requests from the front (zero-copy `Bytes`), and joins the
//! spare back, which is O(1) because the two halves stay contiguous.
//!
//! The room starts small ([`FIRST_CHUNK`]): most clients send requests of a few dozen bytes,
//! and an idle connection should not hold (and have touched) a 16 KB buffer. A read that
//! fills the whole room doubles the next one, up to [`READ_CHUNK`], so a client that
//! pipelines gets full-size reads after a few of them and keeps them.

use crate::protocol::request::{ParseError, ParseLimits, Request, RequestParser};
use bytes::BytesMut;

/// Bytes read per socket read once a connection has shown it sends that much at a time.
pub const READ_CHUNK: usize = 16 * 1024;
/// A new connection's read size.
pub const FIRST_CHUNK: usize = 1024;
/// Largest single read while receiving a big bulk string.
pub const MAX_READ_CHUNK: usize = 1 << 20;

/// Received bytes followed by initialised spare room.
pub struct InputBuf {
    buf: BytesMut,
    filled: usize,
    /// The usual read size: [`FIRST_CHUNK`], doubled by each read that fills the room, up to
    /// [`READ_CHUNK`].
    chunk: usize,
    /// The buffer grew past [`MAX_READ_CHUNK`] (a big bulk string) since it was last given
    /// back. Its `capacity()` cannot tell: once the big argument is split off, what is left
    /// is a view of the allocation's last bytes, with a small capacity, that still keeps the
    /// whole allocation.
    big: bool,
}

impl InputBuf {
    /// An empty buffer (nothing allocated before the first read).
    pub fn new() -> InputBuf {
        InputBuf { buf: BytesMut::new(), filled: 0, chunk: FIRST_CHUNK, big: false }
    }

    /// Bytes received and not parsed yet.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// The buffer's size as it is allocated: received bytes, the room after them, and what
    /// its growth reserved beyond that (Redis counts its query buffer's allocation). Counted
    /// without the reserve, a client with a half-received request of 250 arguments of 1000
    /// bytes held 16 KB more than CLIENT LIST's `tot-mem` (a 32 KB buffer shown as 17 KB), and
    /// thirty of them made a node evict keys before clients reached `maxmemory-clients`.
    pub fn size(&self) -> usize {
        self.buf.capacity()
    }

    /// Received bytes and the initialised room after them (without the allocation's growth
    /// reserve, see [`size`](Self::size)).
    pub fn initialised(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is waiting to be parsed.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Room for the next read. `wanted` is the parser's hint (a big bulk's whole size): the
    /// room grows towards it in bounded steps, so a client announcing a huge bulk and sending
    /// nothing costs little memory.
    pub fn spare(&mut self, wanted: usize) -> &mut [u8] {
        let want = wanted.saturating_sub(self.filled).clamp(self.chunk, MAX_READ_CHUNK);
        let spare = self.buf.len() - self.filled;
        // Re-zeroed to a full read's worth when below half of one (a client's usual batch
        // then fits one read; a batch that fills the room doubles the chunk, see `commit`).
        if spare < self.chunk / 2 || (wanted > self.filled + spare && spare < want) {
            self.buf.truncate(self.filled);
            self.buf.resize(self.filled + want, 0);
            self.big |= self.buf.capacity() > MAX_READ_CHUNK;
        }
        &mut self.buf[self.filled..]
    }

    /// Marks `n` bytes of the room returned by [`spare`](Self::spare) as received.
    pub fn commit(&mut self, n: usize) {
        let room = self.buf.len() - self.filled;
        if n >= room && self.chunk < READ_CHUNK {
            // The room was too small for what the client had sent: more is likely waiting.
            self.chunk *= 2;
        }
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// Takes the bytes received and not parsed yet.
    pub fn take_all(&mut self) -> Vec<u8> {
        let v = self.buf[..self.filled].to_vec();
        self.filled = 0;
        v
    }

    /// Gives a big buffer back once everything in it is parsed (a big bulk string grew it, as
    /// Redis trims a query buffer left large and idle): true when it did.
    pub fn release_if_idle_and_big(&mut self) -> bool {
        if self.filled != 0 || !(self.big || self.buf.capacity() > MAX_READ_CHUNK) {
            return false;
        }
        *self = InputBuf::new();
        true
    }

    /// Appends bytes received elsewhere (while the client was blocked).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.truncate(self.filled);
        self.buf.extend_from_slice(data);
        self.filled = self.buf.len();
        self.big |= self.buf.capacity() > MAX_READ_CHUNK;
    }

    /// Parses every complete request into `out`, consuming their bytes.
    pub fn parse(
        &mut self,
        parser: &mut RequestParser,
        limits: &ParseLimits,
        out: &mut Vec<Request>,
    ) -> Result<(), ParseError> {
        let spare = self.buf.split_off(self.filled);
        let parsed = parser.parse(&mut self.buf, limits, out);
        self.filled = self.buf.len();
        self.buf.unsplit(spare);
        parsed
    }
}

impl Default for InputBuf {
    fn default() -> Self {
        InputBuf::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut InputBuf, data: &[u8]) {
        let room = b.spare(0);
        room[..data.len()].copy_from_slice(data);
        b.commit(data.len());
    }

    #[test]
    fn requests_split_across_reads_and_spare_reused() {
        let mut b = InputBuf::new();
        let mut p = RequestParser::default();
        let mut out = Vec::new();
        let lim = ParseLimits::default();
        feed(&mut b, b"*1\r\n$4\r\nPI");
        b.parse(&mut p, &lim, &mut out).unwrap();
        assert!(out.is_empty());
        // The header lines went into the parser's progress; the partial payload stays.
        assert_eq!(b.len(), 2);
        feed(&mut b, b"NG\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n");
        b.parse(&mut p, &lim, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].args[0][..], b"PING");
        assert_eq!(&out[1].args[1][..], b"x");
        assert!(b.is_empty());
        // Many small reads: the spare is reused, and re-zeroed when low, without losing bytes.
        out.clear();
        for _ in 0..5000 {
            feed(&mut b, b"*1\r\n$4\r\nPING\r\n");
            b.parse(&mut p, &lim, &mut out).unwrap();
        }
        assert_eq!(out.len(), 5000);
        assert!(out.iter().all(|r| &r.args[0][..] == b"PING"));
    }

    #[test]
    fn the_room_starts_small_and_grows_with_full_reads() {
        let mut b = InputBuf::new();
        assert_eq!(b.buf.capacity(), 0, "nothing allocated before the first read");
        assert_eq!(b.spare(0).len(), FIRST_CHUNK);
        // A small request leaves the chunk as it is.
        feed(&mut b, b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(b.chunk, FIRST_CHUNK);
        let mut p = RequestParser::default();
        let (lim, mut out) = (ParseLimits::default(), Vec::new());
        b.parse(&mut p, &lim, &mut out).unwrap();
        // A deep pipeline fills the room read after read: the chunk doubles up to READ_CHUNK.
        let req = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let pipeline: Vec<u8> = req.iter().copied().cycle().take(req.len() * 2000).collect();
        let mut sent = &pipeline[..];
        let mut reads = 0;
        while !sent.is_empty() {
            let room = b.spare(0);
            let n = room.len().min(sent.len());
            room[..n].copy_from_slice(&sent[..n]);
            b.commit(n);
            sent = &sent[n..];
            b.parse(&mut p, &lim, &mut out).unwrap();
            reads += 1;
        }
        assert_eq!(out.len(), 2001);
        assert_eq!(b.chunk, READ_CHUNK);
        assert!(reads < 20, "{} bytes in {reads} reads", pipeline.len());
    }

    #[test]
    fn push_goes_before_the_spare() {
        let mut b = InputBuf::new();
        let mut p = RequestParser::default();
        let mut out = Vec::new();
        feed(&mut b, b"*1\r\n$4\r\n");
        b.push(b"PING\r\n");
        b.parse(&mut p, &ParseLimits::default(), &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn big_bulk_grows_the_room() {
        let mut b = InputBuf::new();
        let mut p = RequestParser::default();
        let mut out = Vec::new();
        let lim = ParseLimits::default();
        let n = 300_000;
        let mut frame = format!("*2\r\n$3\r\nSET\r\n${n}\r\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'a', n));
        frame.extend_from_slice(b"\r\n");
        let mut at = 0;
        while at < frame.len() {
            let room = b.spare(p.wanted());
            let k = room.len().min(frame.len() - at);
            room[..k].copy_from_slice(&frame[at..at + k]);
            b.commit(k);
            at += k;
            b.parse(&mut p, &lim, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].args[1].len(), n);
    }
}
