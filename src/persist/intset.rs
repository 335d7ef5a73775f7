//! Intsets (`intset.c`), the blob of RDB type 11: u32 LE width (2, 4 or 8), u32 LE count, then
//! the members sorted ascending, little-endian at that width.

use super::{BadData, Result};
use crate::storage::intset::Intset;

/// Serializes a set of integers at its width.
pub fn encode(set: &Intset) -> Vec<u8> {
    let width = set.width();
    let mut out = Vec::with_capacity(8 + width * set.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(set.len() as u32).to_le_bytes());
    for n in set.iter() {
        out.extend_from_slice(&n.to_le_bytes()[..width]);
    }
    out
}

/// Validates an intset blob (`intsetValidateIntegrity` in deep mode: width, exact size,
/// strictly ascending members) and returns its members.
pub fn decode(blob: &[u8]) -> Result<Vec<i64>> {
    if blob.len() < 8 {
        return Err(BadData::Corrupt);
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || (count as u64) * (width as u64) + 8 != blob.len() as u64 {
        return Err(BadData::Corrupt);
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for c in blob[8..].chunks_exact(width) {
        let n = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&p| p >= n) {
            return Err(BadData::Corrupt);
        }
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_and_round_trip() {
        let mut s = Intset::default();
        for n in [3, 1, 2] {
            s.insert(n);
        }
        let blob = encode(&s);
        assert_eq!(blob, b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00");
        assert_eq!(decode(&blob), Ok(vec![1, 2, 3]));
        s.insert(1 << 40);
        assert_eq!(decode(&encode(&s)), Ok(vec![1, 2, 3, 1 << 40]));
    }

    #[test]
    fn corrupt_intsets_are_errors() {
        let good = b"\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00";
        assert!(decode(&good[..11]).is_err());
        assert!(decode(b"\x03\x00\x00\x00\x00\x00\x00\x00").is_err());
        assert!(decode(b"\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x01\x00").is_err());
        assert!(decode(b"\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x01\x00").is_err());
    }
}
