//! Load-only legacy containers: ziplists (`ziplist.c`, RDB types 10, 12, 13 and 14) and
//! zipmaps (`zipmap.c`, type 9). Both are validated as Redis does in deep mode.

use super::{le, sext, slice, BadData, Result};

const HEADER: usize = 10;

/// Validates a ziplist and returns its elements as bytes (integers in decimal).
pub fn parse(zl: &[u8]) -> Result<Vec<Vec<u8>>> {
    if zl.len() < HEADER + 1 || le(&zl[..4]) as usize != zl.len() || zl[zl.len() - 1] != 0xFF {
        return Err(BadData::Corrupt);
    }
    let tail = le(&zl[4..8]) as usize;
    let count = le(&zl[8..10]) as usize;
    let end = zl.len() - 1;
    let get = |from: usize, n: usize| slice(&zl[..end], from, n);
    let mut out = Vec::new();
    let (mut p, mut prev_size, mut last) = (HEADER, 0usize, HEADER);
    while p < end {
        let start = p;
        let (prevlen, h) = if zl[p] < 254 {
            (zl[p] as usize, 1)
        } else if zl[p] == 254 {
            (le(get(p + 1, 4)?) as usize, 5)
        } else {
            return Err(BadData::Corrupt);
        };
        if prevlen != prev_size {
            return Err(BadData::Corrupt);
        }
        p += h;
        let b = get(p, 1)?[0];
        let (elem, size): (Vec<u8>, usize) = match b >> 6 {
            0 => {
                let n = (b & 0x3F) as usize;
                (get(p + 1, n)?.to_vec(), 1 + n)
            }
            1 => {
                let n = (((b & 0x3F) as usize) << 8) | get(p + 1, 1)?[0] as usize;
                (get(p + 2, n)?.to_vec(), 2 + n)
            }
            2 if b == 0x80 => {
                let n = u32::from_be_bytes(get(p + 1, 4)?.try_into().map_err(|_| BadData::Corrupt)?) as usize;
                (get(p + 5, n)?.to_vec(), 5 + n)
            }
            2 => return Err(BadData::Corrupt),
            _ => {
                let (v, n) = match b {
                    0xC0 => (sext(le(get(p + 1, 2)?), 16), 2),
                    0xD0 => (sext(le(get(p + 1, 4)?), 32), 4),
                    0xE0 => (le(get(p + 1, 8)?) as i64, 8),
                    0xF0 => (sext(le(get(p + 1, 3)?), 24), 3),
                    0xFE => (sext(le(get(p + 1, 1)?), 8), 1),
                    0xF1..=0xFD => ((b & 0x0F) as i64 - 1, 0),
                    _ => return Err(BadData::Corrupt),
                };
                (itoa::Buffer::new().format(v).as_bytes().to_vec(), 1 + n)
            }
        };
        p += size;
        prev_size = p - start;
        last = start;
        out.push(elem);
    }
    if tail != last || (count != 65535 && count != out.len()) {
        return Err(BadData::Corrupt);
    }
    Ok(out)
}

/// Validates a zipmap and returns its (key, value) pairs.
pub fn parse_zipmap(zm: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut p = 1usize;
    let get = |from: usize, n: usize| slice(zm, from, n);
    let len_at = |p: usize| -> Result<(usize, usize)> {
        match get(p, 1)?[0] {
            254 => Ok((le(get(p + 1, 4)?) as usize, 5)),
            255 => Err(BadData::Corrupt),
            n => Ok((n as usize, 1)),
        }
    };
    get(0, 1)?;
    let mut out = Vec::new();
    loop {
        if get(p, 1)?[0] == 255 {
            if p + 1 != zm.len() {
                return Err(BadData::Corrupt);
            }
            break;
        }
        let (kl, h) = len_at(p)?;
        let key = get(p + h, kl)?.to_vec();
        p += h + kl;
        let (vl, h) = len_at(p)?;
        let free = get(p + h, 1)?[0] as usize;
        let val = get(p + h + 1, vl)?.to_vec();
        p += h + 1 + vl;
        get(p, free)?;
        p += free;
        out.push((key, val));
    }
    let declared = zm[0] as usize;
    if declared < 254 && declared != out.len() {
        return Err(BadData::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ziplist the way Redis 6 does.
    fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let (mut prev, mut last) = (0usize, HEADER);
        for e in entries {
            let start = HEADER + body.len();
            last = start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(254);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match std::str::from_utf8(e).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(v @ 0..=12) => body.push(0xF1 + v as u8),
                Some(v) if i16::try_from(v).is_ok() => {
                    body.push(0xC0);
                    body.extend_from_slice(&(v as i16).to_le_bytes());
                }
                Some(v) => {
                    body.push(0xE0);
                    body.extend_from_slice(&v.to_le_bytes());
                }
                None if e.len() < 64 => {
                    body.push(e.len() as u8);
                    body.extend_from_slice(e);
                }
                None => {
                    body.push(0x40 | (e.len() >> 8) as u8);
                    body.push(e.len() as u8);
                    body.extend_from_slice(e);
                }
            }
            prev = HEADER + body.len() - start;
        }
        let total = HEADER + body.len() + 1;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    #[test]
    fn ziplists_parse() {
        let long = vec![b'z'; 300];
        let els: Vec<&[u8]> = vec![b"a", b"5", b"-300", b"123456789012", &long, b"b"];
        let zl = ziplist(&els);
        let got = parse(&zl).unwrap();
        assert_eq!(got.iter().map(|v| &v[..]).collect::<Vec<_>>(), els);
        for cut in 0..zl.len() {
            assert!(parse(&zl[..cut]).is_err());
        }
        let mut bad = zl.clone();
        bad[8] = 9;
        assert!(parse(&bad).is_err());
        assert_eq!(parse(&ziplist(&[])), Ok(vec![]));
    }

    #[test]
    fn zipmaps_parse() {
        let zm = b"\x02\x03foo\x03\x00bar\x01k\x02\x01vvX\xff";
        let got = parse_zipmap(zm).unwrap();
        assert_eq!(got, vec![(b"foo".to_vec(), b"bar".to_vec()), (b"k".to_vec(), b"vv".to_vec())]);
        for cut in 0..zm.len() {
            assert!(parse_zipmap(&zm[..cut]).is_err());
        }
    }
}
