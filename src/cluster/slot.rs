//! Hash slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM: poly 0x1021, init 0, no reflection) one byte at a time, built at
/// compile time. The `crc16` crate computes the same function; this table lets the untagged
/// case fold the `{` scan into the CRC loop, since every keyed command hashes its key.
const CRC_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// [`CRC_TABLE`] advanced by eight more zero bits: with it two bytes take two independent
/// lookups (`T1[hi] ^ T0[lo]`, by CRC linearity) instead of a chain of two, which halves the
/// latency-bound loop.
const CRC_TABLE2: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let v = CRC_TABLE[i];
        t[i] = (v << 8) ^ CRC_TABLE[(v >> 8) as usize];
        i += 1;
    }
    t
};

/// The hash slot of a key, as Redis's `keyHashSlot`: only the first `{` counts, with the first
/// `}` after it; an empty tag (`{}`) or a missing `}` hashes the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let mut crc = 0u16;
    let mut pairs = key.chunks_exact(2);
    for (i, p) in pairs.by_ref().enumerate() {
        if p[0] == b'{' || p[1] == b'{' {
            return tagged_slot(key, 2 * i + usize::from(p[0] != b'{'));
        }
        let x = crc ^ u16::from_be_bytes([p[0], p[1]]);
        crc = CRC_TABLE2[(x >> 8) as usize] ^ CRC_TABLE[(x & 0xFF) as usize];
    }
    if let [b] = pairs.remainder() {
        if *b == b'{' {
            return tagged_slot(key, key.len() - 1);
        }
        crc = (crc << 8) ^ CRC_TABLE[((crc >> 8) as u8 ^ b) as usize];
    }
    crc & 0x3FFF
}

/// The slot of a key with a `{` at `open`.
#[cold]
fn tagged_slot(key: &[u8], open: usize) -> u16 {
    let hashed = match memchr::memchr(b'}', &key[open + 1..]) {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
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

    #[test]
    fn table_matches_the_crc16_crate() {
        let mut key = Vec::new();
        for i in 0..2000u32 {
            key.push((i.wrapping_mul(2654435761) >> 13) as u8 & 0x7F | if i % 7 == 0 { 0x80 } else { 0 });
            let untagged: Vec<u8> = key.iter().map(|&b| if b == b'{' { b'x' } else { b }).collect();
            assert_eq!(key_slot(&untagged), crc16::State::<crc16::XMODEM>::calculate(&untagged) & 0x3FFF);
        }
    }
}
