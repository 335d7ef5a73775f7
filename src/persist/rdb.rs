//! RDB primitives (`rdb.c`): lengths, strings (integer and LZF forms), doubles, the CRC64.
//!
//! Lengths are big-endian, encoded integers and times little-endian. Every blob (listpack,
//! intset, ziplist) goes through the string encoding and may be LZF-compressed, so readers
//! always decode it via [`Reader::string`].

use super::{BadData, Result};
use crc::{Crc, Table, CRC_64_REDIS};

/// The RDB version slotcore writes (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Slice-by-16 tables (32 KiB): several times the byte-at-a-time table's speed, and a
/// snapshot checksums every byte of its file on the shard's loop (~30 MB for 1M short keys).
static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// The incremental CRC64's state ([`crc64_digest`]).
pub type Crc64Digest = crc::Digest<'static, u64, Table<16>>;

/// Redis's CRC64 (Jones polynomial, CRC-64/REDIS) of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// An incremental CRC64 (for files written piece by piece).
pub fn crc64_digest() -> Crc64Digest {
    CRC64.digest()
}

/// Appends a length (`rdbSaveLen`).
pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The integer form of `s` (`rdbTryIntegerEncoding`): canonical decimal text in int32 range.
fn as_int32(s: &[u8]) -> Option<i32> {
    if s.len() > 11 {
        return None;
    }
    let n = crate::protocol::request::string2ll(s)?;
    i32::try_from(n).ok()
}

/// Appends an integer in its shortest special encoding (it must fit in an i32).
fn put_int(out: &mut Vec<u8>, n: i32) {
    if let Ok(b) = i8::try_from(n) {
        out.extend_from_slice(&[0xC0 | ENC_INT8, b as u8]);
    } else if let Ok(h) = i16::try_from(n) {
        out.push(0xC0 | ENC_INT16);
        out.extend_from_slice(&h.to_le_bytes());
    } else {
        out.push(0xC0 | ENC_INT32);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Appends a string (`rdbSaveRawString`): integer form, else LZF when `compress` and it is
/// longer than 20 bytes and shrinks by at least 4, else length + bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if let Some(n) = as_int32(s) {
        return put_int(out, n);
    }
    if compress && s.len() > 20 {
        if let Some(c) = super::lzf::compress(s, s.len() - 4) {
            out.push(0xC0 | ENC_LZF);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends an integer as a string object (`rdbSaveLongLongAsStringObject`).
pub fn put_i64_string(out: &mut Vec<u8>, n: i64) {
    match i32::try_from(n) {
        Ok(v) => put_int(out, v),
        Err(_) => put_string(out, itoa::Buffer::new().format(n).as_bytes(), false),
    }
}

/// Appends a binary double (ZSET_2).
pub fn put_binary_double(out: &mut Vec<u8>, d: f64) {
    out.extend_from_slice(&d.to_le_bytes());
}

/// A length or a special string encoding, as the first byte(s) of a string say.
enum Len {
    Plain(u64),
    Special(u8),
}

/// A cursor over RDB bytes. Every read checks bounds.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(BadData::Corrupt);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn raw_len(&mut self) -> Result<Len> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3F) as u64),
            1 => Len::Plain((((b & 0x3F) as u64) << 8) | self.u8()? as u64),
            2 if b == 0x80 => Len::Plain(u32::from_be_bytes(self.array()?) as u64),
            2 if b == 0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
            2 => return Err(BadData::Corrupt),
            _ => Len::Special(b & 0x3F),
        })
    }

    /// A length (`rdbLoadLen`); a special encoding here is corrupt.
    pub fn length(&mut self) -> Result<u64> {
        match self.raw_len()? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => Err(BadData::Corrupt),
        }
    }

    /// A count of items that each take at least `min_bytes`, checked against the input left
    /// (so a bogus count cannot make us reserve memory).
    pub fn count(&mut self, min_bytes: usize) -> Result<usize> {
        let n = self.length()?;
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return Err(BadData::Corrupt);
        }
        Ok(n as usize)
    }

    /// A string in any of its encodings (`rdbGenericLoadStringObject`), as bytes.
    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.raw_len()? {
            Len::Plain(n) => Ok(self.take(usize::try_from(n).map_err(|_| BadData::Corrupt)?)?.to_vec()),
            Len::Special(ENC_INT8) => Ok(itoa_bytes(self.u8()? as i8 as i64)),
            Len::Special(ENC_INT16) => Ok(itoa_bytes(i16::from_le_bytes(self.array()?) as i64)),
            Len::Special(ENC_INT32) => Ok(itoa_bytes(i32::from_le_bytes(self.array()?) as i64)),
            Len::Special(ENC_LZF) => {
                let clen = self.length()?;
                let rawlen = self.length()?;
                let src = self.take(usize::try_from(clen).map_err(|_| BadData::Corrupt)?)?;
                lzf_decompress(src, rawlen)
            }
            Len::Special(_) => Err(BadData::Corrupt),
        }
    }

    /// An old-style text double (type 3 ZSET): length byte, then `%.17g` text; 253 = NaN,
    /// 254 = +inf, 255 = -inf.
    pub fn text_double(&mut self) -> Result<f64> {
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_double(self.take(n as usize)?).ok_or(BadData::Corrupt),
        }
    }

    /// A binary little-endian double (ZSET_2).
    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
}

/// `strtod` on the whole of `s` (no trailing garbage, no empty input).
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    }
}

fn itoa_bytes(n: i64) -> Vec<u8> {
    itoa::Buffer::new().format(n).as_bytes().to_vec()
}

/// LZF-decompresses `src`, which must expand to exactly `rawlen` bytes.
pub fn lzf_decompress(src: &[u8], rawlen: u64) -> Result<Vec<u8>> {
    // A back-reference of 3 input bytes expands to at most 264 bytes, so anything claiming
    // more is corrupt; checked before allocating.
    if rawlen == 0 || rawlen > (src.len() as u64).saturating_mul(90) + 32 {
        return Err(BadData::Corrupt);
    }
    let out = lzf::decompress(src, rawlen as usize).map_err(|_| BadData::Corrupt)?;
    if out.len() as u64 != rawlen {
        return Err(BadData::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0u64, 63, 64, 16383, 16384, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            assert_eq!(Reader::new(&out).length(), Ok(n));
        }
        let mut out = Vec::new();
        put_len(&mut out, 300);
        assert_eq!(out, [0x41, 0x2c]);
    }

    #[test]
    fn string_encodings() {
        let enc = |s: &[u8]| {
            let mut out = Vec::new();
            put_string(&mut out, s, true);
            out
        };
        assert_eq!(enc(b"7"), [0xc0, 7]);
        assert_eq!(enc(b"-5"), [0xc0, 0xfb]);
        assert_eq!(enc(b"12345"), [0xc1, 0x39, 0x30]);
        assert_eq!(enc(b"1234567890123"), b"\x0d1234567890123");
        assert_eq!(enc(b"007"), b"\x03007");
        assert_eq!(enc(b"hello"), b"\x05hello");
        // Captured from Redis 7.0: 40 x 'a'.
        assert_eq!(enc(&[b'a'; 40]), [0xc3, 0x09, 0x28, 0x01, 0x61, 0x61, 0xe0, 0x1b, 0x00, 0x01, 0x61, 0x61]);
        for s in [&b"7"[..], b"-5", b"12345", b"-2147483648", b"hello", &[b'a'; 40], &[b'x'; 100000]] {
            assert_eq!(Reader::new(&enc(s)).string().as_deref(), Ok(s));
        }
        let mut out = Vec::new();
        put_i64_string(&mut out, 1234567890123);
        assert_eq!(out, b"\x0d1234567890123");
    }

    #[test]
    fn corrupt_strings_are_errors() {
        for bad in [
            &b""[..],
            b"\x05hel",
            b"\xc1\x01",
            b"\xc3\x09\x28\x01\x61",
            b"\xc3\x02\x7f\x01\x61",
            b"\xc3\x03\x28\xe0\x1b\x00",
            b"\xc4",
            b"\x82",
            b"\x81\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert_eq!(Reader::new(bad).string(), Err(BadData::Corrupt), "{bad:?}");
        }
    }
}
