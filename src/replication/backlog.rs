//! The replication backlog: the last `repl-backlog-size` bytes of the stream, so that a
//! replica that lost its link can continue from its offset (`+CONTINUE`) instead of a full
//! resync.
//!
//! Offsets are Redis's: the stream's first byte has offset 1, `master_repl_offset` is the
//! offset of the last byte written. The backlog holds the bytes
//! `first_byte_offset() .. first_byte_offset() + histlen()`. A backlog created at
//! `master_repl_offset = N` starts empty with `first_byte_offset = N + 1`.
//!
//! Pure: a circular buffer, no I/O.

/// A circular buffer of the stream's most recent bytes.
#[derive(Debug)]
pub struct Backlog {
    buf: Vec<u8>,
    /// Where the next byte goes.
    idx: usize,
    /// Bytes held (at most `buf.len()`).
    histlen: usize,
    /// Offset of the last byte written (`master_repl_offset`).
    end: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes for a stream whose last byte has offset `end`.
    pub fn new(size: usize, end: u64) -> Backlog {
        Backlog { buf: vec![0; size.max(1)], idx: 0, histlen: 0, end }
    }

    /// Capacity in bytes (`repl_backlog_size`).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// Offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte_offset(&self) -> u64 {
        self.end + 1 - self.histlen as u64
    }

    /// Offset of the last byte written.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends stream bytes.
    pub fn append(&mut self, mut data: &[u8]) {
        self.end += data.len() as u64;
        let size = self.buf.len();
        if data.len() > size {
            data = &data[data.len() - size..];
        }
        while !data.is_empty() {
            let n = (size - self.idx).min(data.len());
            self.buf[self.idx..self.idx + n].copy_from_slice(&data[..n]);
            self.idx = (self.idx + n) % size;
            self.histlen = (self.histlen + n).min(size);
            data = &data[n..];
        }
    }

    /// True when a replica asking to continue at `off` (the offset of the first byte it lacks)
    /// can be served from here.
    pub fn covers(&self, off: u64) -> bool {
        off >= self.first_byte_offset() && off <= self.first_byte_offset() + self.histlen as u64
    }

    /// The bytes from offset `off` to the end (empty when `off` is just past the end); None
    /// when `off` is not covered.
    pub fn tail_from(&self, off: u64) -> Option<Vec<u8>> {
        if !self.covers(off) {
            return None;
        }
        let size = self.buf.len();
        let skip = (off - self.first_byte_offset()) as usize;
        let mut len = self.histlen - skip;
        let mut j = (self.idx + size - self.histlen + skip) % size;
        let mut out = Vec::with_capacity(len);
        while len > 0 {
            let n = (size - j).min(len);
            out.extend_from_slice(&self.buf[j..j + n]);
            j = (j + n) % size;
            len -= n;
        }
        Some(out)
    }

    /// Changes the capacity, keeping the most recent bytes that fit.
    pub fn resize(&mut self, size: usize) {
        let size = size.max(1);
        if size == self.buf.len() {
            return;
        }
        let keep = self.histlen.min(size);
        let data = self.tail_from(self.end + 1 - keep as u64).unwrap_or_default();
        let end = self.end;
        *self = Backlog::new(size, end - data.len() as u64);
        self.append(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_serves_tails() {
        let mut b = Backlog::new(8, 100);
        assert_eq!((b.first_byte_offset(), b.histlen()), (101, 0));
        assert_eq!(b.tail_from(101), Some(vec![]));
        assert_eq!(b.tail_from(102), None);
        b.append(b"abcde");
        assert_eq!(b.tail_from(103).unwrap(), b"cde");
        b.append(b"fghijk");
        // Holds the last 8 bytes: d..k, offsets 104..=111.
        assert_eq!((b.first_byte_offset(), b.histlen(), b.end()), (104, 8, 111));
        assert_eq!(b.tail_from(104).unwrap(), b"defghijk");
        assert_eq!(b.tail_from(110).unwrap(), b"jk");
        assert_eq!(b.tail_from(112).unwrap(), b"");
        assert!(!b.covers(103));
        b.append(b"0123456789xyz");
        assert_eq!(b.tail_from(b.first_byte_offset()).unwrap(), b"56789xyz");
        b.resize(4);
        assert_eq!(b.tail_from(b.first_byte_offset()).unwrap(), b"9xyz");
        b.resize(16);
        b.append(b"!");
        assert_eq!(b.tail_from(b.first_byte_offset()).unwrap(), b"9xyz!");
        assert_eq!(b.end(), 125);
    }
}
