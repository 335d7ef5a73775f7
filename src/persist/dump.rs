//! DUMP payloads (`cluster.c createDumpPayload` / `verifyDumpPayload`): type byte, value body,
//! RDB version as u16 LE, then the CRC64 (LE) of everything before it.

use super::rdb::{crc64, Reader, RDB_VERSION};
use super::value::{put_value, read_value, type_of};
use super::BadData;
use crate::storage::value::Value;

/// Why a payload was refused, in RESTORE's order of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a version above ours, or a CRC mismatch (a zero CRC included).
    VersionOrChecksum,
    /// The value does not parse or validate.
    BadData,
}

/// The DUMP payload of `v`.
pub fn create(v: &Value, compress: bool) -> Vec<u8> {
    let mut out = vec![type_of(v)];
    put_value(&mut out, v, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: payloads' CRC64 is not checked (a testing aid for
/// corrupt payloads; the version still is).
static SKIP_CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether DEBUG SET-SKIP-CHECKSUM-VALIDATION is on (RDB files skip their check too).
pub fn skip_checksum() -> bool {
    SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets DEBUG SET-SKIP-CHECKSUM-VALIDATION.
pub fn set_skip_checksum(on: bool) {
    SKIP_CHECKSUM.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Checks the footer of a payload (`verifyDumpPayload`).
pub fn verify(p: &[u8]) -> Result<(), PayloadError> {
    if p.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let footer = &p[p.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    if SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    if u64::from_le_bytes(crc) != crc64(&p[..p.len() - 8]) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(())
}

/// Verifies and decodes a payload. As in Redis, the value is read from the start of the whole
/// payload and whatever follows it is ignored.
pub fn restore(p: &[u8]) -> Result<Value, PayloadError> {
    verify(p)?;
    let mut r = Reader::new(p);
    let decode = |r: &mut Reader| -> Result<Value, BadData> {
        let t = r.u8()?;
        read_value(r, t)
    };
    decode(&mut r).map_err(|_| PayloadError::BadData)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::StrValue;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn captured_string_payloads() {
        let int = Value::Str(StrValue::Int(12345));
        assert_eq!(create(&int, true), hex("00 c1 39 30 0a 00 9d 94 ea 27 93 fc 08 b9"));
        let s = Value::Str(StrValue::from_bytes(b"hello"));
        assert_eq!(create(&s, true), hex("00 05 68 65 6c 6c 6f 0a 00 63 72 df 76 65 34 20 0a"));
        let neg = Value::Str(StrValue::Int(-5));
        assert_eq!(create(&neg, true), hex("00 c0 fb 0a 00 49c4c6f4d7263f68"));
        let big = Value::Str(StrValue::Int(1234567890123));
        assert_eq!(&create(&big, true)[..15], b"\x00\x0d1234567890123");
        let a40 = Value::Str(StrValue::from_bytes(&[b'a'; 40]));
        assert_eq!(&create(&a40, true)[..15], &hex("00 c3 09 28 0161 61e0 1b00 0161 61 0a00")[..]);
        for v in [int, s, neg, big, a40] {
            assert_eq!(restore(&create(&v, true)), Ok(v.clone()));
            assert_eq!(restore(&create(&v, false)), Ok(v));
        }
    }

    #[test]
    fn footer_checks() {
        let p = hex("00 c1 39 30 0a 00 9d 94 ea 27 93 fc 08 b9");
        assert_eq!(verify(&p[..9]), Err(PayloadError::VersionOrChecksum));
        let mut bad = p.clone();
        bad[13] ^= 1;
        assert_eq!(verify(&bad), Err(PayloadError::VersionOrChecksum));
        let mut zero = p.clone();
        zero[6..].fill(0);
        assert_eq!(verify(&zero), Err(PayloadError::VersionOrChecksum));
        // Version 11 with a correct CRC is still refused; version 9 is accepted.
        for (v, ok) in [(11u8, false), (9, true)] {
            let mut q = p[..6].to_vec();
            q[4] = v;
            let crc = crc64(&q);
            q.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(verify(&q).is_ok(), ok);
        }
        // Bytes after the value are ignored (as Redis does); an unknown type is bad data.
        for (body, ok) in [("00 c1 39 30 00", true), ("08 00", false)] {
            let mut q = hex(body);
            q.extend_from_slice(&[10, 0]);
            let crc = crc64(&q);
            q.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(restore(&q).is_ok(), ok);
        }
    }
}
