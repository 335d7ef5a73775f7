//! Listpacks (`listpack.c`): the packed container of RDB types 16, 17 and 18.
//!
//! Layout: u32 LE total bytes, u16 LE count (65535 = unknown), entries, `FF`. An entry is
//! `<encoding+data><backlen>`; elements that parse as an int64 are always stored as integers.
//! [`parse`] validates as `lpValidateIntegrity` does in deep mode (sizes, every entry, the
//! back-lengths, the count) and returns the elements.

use super::{le, sext, slice, BadData, Result};
use crate::protocol::request::string2ll;

const HEADER: usize = 6;
const EOF: u8 = 0xFF;

/// A listpack being built.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty listpack.
    pub fn new() -> Writer {
        Writer { buf: vec![0; HEADER], count: 0 }
    }

    /// Bytes the finished listpack will take (`lpBytes`).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Number of elements.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends an element, as an integer when it is one.
    pub fn push(&mut self, e: &[u8]) {
        match string2ll(e) {
            Some(n) if e.len() <= 20 => self.push_int(n),
            _ => self.push_str(e),
        }
    }

    /// Appends an integer element.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1FFF;
            b.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
        } else if let Ok(h) = i16::try_from(v) {
            b.push(0xF1);
            b.extend_from_slice(&h.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            b.push(0xF2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            b.push(0xF3);
            b.extend_from_slice(&w.to_le_bytes());
        } else {
            b.push(0xF4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Appends a string element verbatim (no integer conversion).
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if s.len() < 64 {
            b.push(0x80 | s.len() as u8);
        } else if s.len() < 4096 {
            b.extend_from_slice(&[0xE0 | (s.len() >> 8) as u8, s.len() as u8]);
        } else {
            b.push(0xF0);
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        let mut bl = [0u8; 5];
        let n = encode_backlen(l, &mut bl);
        self.buf.extend_from_slice(&bl[..n]);
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// `lpEncodeBacklen`: 7 bits a byte, most significant first, every byte after the first
/// flagged with 0x80.
fn encode_backlen(l: usize, buf: &mut [u8; 5]) -> usize {
    let n = match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    for (i, b) in buf.iter_mut().take(n).enumerate() {
        let shift = 7 * (n - 1 - i);
        *b = ((l >> shift) & 127) as u8 | if i > 0 { 128 } else { 0 };
    }
    n
}

/// One element of a listpack.
#[derive(Debug, Clone, PartialEq)]
pub enum Elem<'a> {
    /// An integer entry.
    Int(i64),
    /// A string entry.
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element as bytes (integers in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(*n).as_bytes().to_vec(),
            Elem::Str(s) => s.to_vec(),
        }
    }
}

/// Decodes the entry at `p` of `lp`: (element, size of encoding + data).
fn entry(lp: &[u8], p: usize) -> Result<(Elem<'_>, usize)> {
    let get = |from: usize, n: usize| slice(lp, from, n);
    let b = lp[p];
    Ok(if b & 0x80 == 0 {
        (Elem::Int(b as i64), 1)
    } else if b & 0xC0 == 0x80 {
        let n = (b & 0x3F) as usize;
        (Elem::Str(get(p + 1, n)?), 1 + n)
    } else if b & 0xE0 == 0xC0 {
        let u = (((b & 0x1F) as u64) << 8) | get(p + 1, 1)?[0] as u64;
        (Elem::Int(sext(u, 13)), 2)
    } else if b & 0xF0 == 0xE0 {
        let n = (((b & 0x0F) as usize) << 8) | get(p + 1, 1)?[0] as usize;
        (Elem::Str(get(p + 2, n)?), 2 + n)
    } else {
        match b {
            0xF0 => {
                let n = le(get(p + 1, 4)?) as usize;
                (Elem::Str(get(p + 5, n)?), 5 + n)
            }
            0xF1 => (Elem::Int(sext(le(get(p + 1, 2)?), 16)), 3),
            0xF2 => (Elem::Int(sext(le(get(p + 1, 3)?), 24)), 4),
            0xF3 => (Elem::Int(sext(le(get(p + 1, 4)?), 32)), 5),
            0xF4 => (Elem::Int(le(get(p + 1, 8)?) as i64), 9),
            _ => return Err(BadData::Corrupt),
        }
    })
}

/// Validates a listpack and returns its elements.
pub fn parse(lp: &[u8]) -> Result<Vec<Elem<'_>>> {
    if lp.len() < HEADER + 1 || le(&lp[..4]) as usize != lp.len() || lp[lp.len() - 1] != EOF {
        return Err(BadData::Corrupt);
    }
    let count = le(&lp[4..6]) as usize;
    let end = lp.len() - 1;
    let mut out = Vec::new();
    let mut p = HEADER;
    while p < end {
        let (e, l) = entry(&lp[..end], p)?;
        let mut bl = [0u8; 5];
        let n = encode_backlen(l, &mut bl);
        if lp.get(p + l..p + l + n) != Some(&bl[..n]) || p + l + n > end {
            return Err(BadData::Corrupt);
        }
        out.push(e);
        p += l + n;
    }
    if count != 65535 && count != out.len() {
        return Err(BadData::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_capture() {
        let mut w = Writer::new();
        for e in [&b"f1"[..], b"v1", b"f2", b"2"] {
            w.push(e);
        }
        let lp = w.finish();
        let want = b"\x15\x00\x00\x00\x04\x00\x82f1\x03\x82v1\x03\x82f2\x03\x02\x01\xff";
        assert_eq!(lp, want);
        let got: Vec<Vec<u8>> = parse(&lp).unwrap().iter().map(Elem::to_vec).collect();
        assert_eq!(got, [&b"f1"[..], b"v1", b"f2", b"2"]);
    }

    #[test]
    fn every_encoding_round_trips() {
        let ints =
            [0i64, 127, 128, -1, -4096, 4095, 4096, -32768, 32767, 1 << 20, -(1 << 23), 1 << 30, i64::MIN, i64::MAX];
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let mut w = Writer::new();
        for n in ints {
            w.push_int(n);
        }
        w.push(b"hello");
        w.push(&mid);
        w.push(&long);
        w.push(b"007");
        let lp = w.finish();
        let els = parse(&lp).unwrap();
        for (i, n) in ints.iter().enumerate() {
            assert_eq!(els[i], Elem::Int(*n));
        }
        assert_eq!(els[ints.len()], Elem::Str(b"hello"));
        assert_eq!(els[ints.len() + 1], Elem::Str(&mid));
        assert_eq!(els[ints.len() + 2], Elem::Str(&long));
        assert_eq!(els[ints.len() + 3], Elem::Str(b"007"));
    }

    #[test]
    fn corrupt_listpacks_are_errors() {
        let mut w = Writer::new();
        w.push(b"abc");
        w.push_int(1000);
        let lp = w.finish();
        for cut in 0..lp.len() {
            assert!(parse(&lp[..cut]).is_err());
        }
        let mut bad = lp.clone();
        bad[4] = 3; // wrong count
        assert!(parse(&bad).is_err());
        let mut bad = lp.clone();
        bad[10] = 9; // wrong backlen
        assert!(parse(&bad).is_err());
        let mut bad = lp;
        bad[6] = 0xF5; // bad encoding
        assert!(parse(&bad).is_err());
    }
}
