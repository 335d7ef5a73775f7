//! LZF compression with liblzf's output limit, as Redis calls it (`lzf_compress(in, len, out,
//! len - 4)` in `rdbSaveLzfStringObject`). liblzf gives up as soon as the output *might* pass
//! the limit, so whether a string is stored compressed depends on the limit, not only on the
//! final size; the `lzf` crate only offers a limit equal to the input length. This is that
//! crate's port of liblzf 3.6 (Copyright (c) 2014 Jan-Erik Rediger, BSD-3-Clause) with the
//! limit as a parameter. Decompression uses the crate.

const HLOG: usize = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const MAX_LIT: usize = 1 << 5;

fn first(p: &[u8], i: usize) -> u32 {
    ((p[i] as u32) << 8) | p[i + 1] as u32
}

fn next(v: u32, p: &[u8], i: usize) -> u32 {
    (v << 8) | p[i + 2] as u32
}

fn idx(h: u32) -> usize {
    let h = h as u64;
    ((h.wrapping_shr(8).wrapping_sub(h * 5)) & (HSIZE as u64 - 1)) as usize
}

/// Copies one literal byte, closing the run when it reaches its maximum length.
fn literal(out: &mut [u8], op: &mut usize, lit: &mut usize, b: u8) {
    *lit += 1;
    out[*op] = b;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit as u8).wrapping_sub(1);
        *lit = 0;
        *op += 1;
    }
}

/// liblzf's hash table, kept per thread: a fresh zeroed table per call costs a 512 KiB
/// allocation and its page faults, far more than compressing a short string. Entries carry
/// the call's generation in their high half; an entry of an older call reads as 0, so every
/// call sees exactly the zeroed table it would have had.
struct Table {
    gen: u64,
    slots: Vec<u64>,
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = const { std::cell::RefCell::new(Table { gen: 0, slots: Vec::new() }) };
}

/// Compresses `data` into at most `limit` bytes, or None when liblzf would give up.
pub fn compress(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let n = data.len();
    if n < 2 || limit == 0 || n as u64 >= 1 << 32 {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.slots.is_empty() || t.gen >= u32::MAX as u64 {
            t.slots = vec![0; HSIZE];
            t.gen = 0;
        }
        t.gen += 1;
        let gen = t.gen;
        compress_with(data, limit, &mut t.slots, gen)
    })
}

/// A table entry of generation `gen` (older ones read as 0).
#[inline]
fn get(htab: &[u64], slot: usize, gen: u64) -> usize {
    let e = htab[slot];
    if e >> 32 == gen {
        (e & 0xFFFF_FFFF) as usize
    } else {
        0
    }
}

fn compress_with(data: &[u8], limit: usize, htab: &mut [u64], gen: u64) -> Option<Vec<u8>> {
    let n = data.len();
    let mut out = vec![0u8; limit];
    let tag = gen << 32;
    let (mut op, mut lit, mut ip) = (1usize, 0usize, 0usize);
    let mut hval = first(data, ip);
    while ip + 2 < n {
        hval = next(hval, data, ip);
        let slot = idx(hval);
        let r = get(htab, slot, gen);
        htab[slot] = tag | ip as u64;
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if off < MAX_OFF && ip + 4 < n && r > 0 && data[r..r + 3] == data[ip..ip + 3] {
            let maxlen = (n - ip - 2).min(MAX_REF);
            // Room for the back reference, checked before the run is closed (as liblzf): a
            // literal run that just filled up may have moved `op` one past the limit.
            if op - usize::from(lit == 0) + 3 + 1 >= limit {
                return None;
            }
            // Stop the literal run (undo it if empty).
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            if lit == 0 {
                op -= 1;
            }
            let mut len = 3;
            while len < maxlen && data[r + len] == data[ip + len] {
                len += 1;
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out[op] = (off >> 8) as u8 + (len << 5) as u8;
                op += 1;
            } else {
                out[op] = (off >> 8) as u8 + (7 << 5);
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 2;
            lit = 0;
            ip += len - 1;
            if ip >= n {
                break;
            }
            hval = first(data, ip);
            hval = next(hval, data, ip);
            htab[idx(hval)] = tag | ip as u64;
            ip += 1;
            hval = next(hval, data, ip);
            htab[idx(hval)] = tag | ip as u64;
            ip += 1;
        } else {
            if op >= limit {
                return None;
            }
            literal(&mut out, &mut op, &mut lit, data[ip]);
            ip += 1;
        }
    }
    if op + 3 > limit {
        return None;
    }
    while ip < n {
        literal(&mut out, &mut op, &mut lit, data[ip]);
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        op -= 1;
    }
    out.truncate(op);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_and_round_trips() {
        let a40 = [b'a'; 40];
        assert_eq!(compress(&a40, 36), Some(vec![0x01, 0x61, 0x61, 0xe0, 0x1b, 0x00, 0x01, 0x61, 0x61]));
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(50);
        for data in [&a40[..], &text, b"abcabcabcabcabcabcabcabcabc"] {
            let c = compress(data, data.len() - 4).unwrap();
            assert_eq!(lzf::decompress(&c, data.len()).unwrap(), data);
        }
        assert_eq!(compress(b"abcdefghijklmnopqrstuvwxyz", 22), None);
    }

    /// Every output limit, on inputs mixing literal runs of every length with matches: never
    /// a panic, and whatever is returned decompresses to the input within the limit.
    #[test]
    fn any_limit_is_safe() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..400 {
            let mut data = Vec::new();
            while data.len() < 40 + case % 90 {
                let r = rnd();
                if r % 3 == 0 && data.len() > 8 {
                    let from = (r >> 8) as usize % (data.len() - 4);
                    let len = 3 + (r >> 24) as usize % 6;
                    for k in 0..len {
                        let b = data[from + k % (data.len() - from)];
                        data.push(b);
                    }
                } else {
                    let run = 1 + (r >> 8) as usize % 40;
                    data.extend((0..run).map(|_| rnd() as u8));
                }
            }
            for limit in 1..data.len() + 8 {
                if let Some(c) = compress(&data, limit) {
                    assert!(c.len() <= limit);
                    assert_eq!(lzf::decompress(&c, data.len()).unwrap(), data, "case {case} limit {limit}");
                }
            }
        }
    }
}
