//! Persistence formats: Redis 7.0's RDB (version 10) value codec, the DUMP payload, and RDB
//! files.
//!
//! Pure code: no I/O and no async, so it builds and tests without glommio. `rdb` holds the
//! length and string encodings (integer forms, LZF) and the CRC64; `listpack`, `intset` and
//! `ziplist` the packed containers; `value` encodes every slotcore value in the exact type and
//! encoding Redis 7.0 writes for it and decodes every type Redis 7.0 loads (including the legacy
//! ziplist and zipmap ones), choosing slotcore's own encodings by the same thresholds; `dump`
//! wraps a value into a DUMP payload and checks one.
//!
//! Invariants: decoding never panics and never trusts a length before checking it against the
//! input (corrupt input is [`BadData`]); every container is validated as deeply as Redis does
//! with `sanitize-dump-payload yes`.

pub mod disk;
pub mod dump;
pub mod file;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod snapshot;
pub mod stream;
pub mod value;
pub mod ziplist;

/// The input is not a valid encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadData {
    /// Malformed, truncated or inconsistent.
    Corrupt,
    /// Well formed but an empty collection (an RDB loader skips it, RESTORE refuses it).
    EmptyKey,
}

/// The name Redis's loader gives a compact encoding of RDB type `t` when its integrity check
/// fails ("Hash ziplist integrity check failed."); None for the other types.
pub fn compact_encoding_name(t: u8) -> Option<&'static str> {
    Some(match t {
        9 => "Zipmap",
        10 => "List ziplist",
        11 => "Intset",
        12 => "Zset ziplist",
        13 => "Hash ziplist",
        14 => "Ziplist",
        15 | 19 => "Stream listpack",
        16 => "Hash listpack",
        17 => "Zset listpack",
        18 => "Listpack",
        _ => return None,
    })
}

/// Decoding result.
pub type Result<T> = std::result::Result<T, BadData>;

/// `buf[from..from + n]`, or corrupt when out of bounds.
pub(crate) fn slice(buf: &[u8], from: usize, n: usize) -> Result<&[u8]> {
    from.checked_add(n).and_then(|end| buf.get(from..end)).ok_or(BadData::Corrupt)
}

/// A little-endian unsigned integer of up to 8 bytes.
pub(crate) fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64)
}

/// Sign-extends the low `bits` bits of `u`.
pub(crate) fn sext(u: u64, bits: u32) -> i64 {
    ((u << (64 - bits)) as i64) >> (64 - bits)
}
