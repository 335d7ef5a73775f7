//! Hash slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// The hash slot of a key, as Redis's `keyHashSlot`: only the first `{` counts, with the first
/// `}` after it; an empty tag (`{}`) or a missing `}` hashes the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match memchr::memchr(b'{', key) {
        Some(open) => match memchr::memchr(b'}', &key[open + 1..]) {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) & 0x3FFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_live_redis() {
        let cases: &[(&[u8], u16)] = &[
            (b"name", 5798),
            (b"age", 741),
            (b"1", 9842),
            (b"key:{hash_tag}:111", 2515),
            (b"123456789", 12739),
            (b"{user1000}.following", 3443),
            (b"{}a", 10875),
            (b"{a}{b}", 15495),
            (b"a{}{b}", 15033),
            (b"foo{{bar}}zap", 4015),
            (b"{a", 10276),
            (b"a}", 5921),
            (b"{}", 15257),
            (b"", 0),
            (b"}{a}", 15495),
        ];
        for (k, s) in cases {
            assert_eq!(key_slot(k), *s, "key {:?}", String::from_utf8_lossy(k));
        }
    }
}
