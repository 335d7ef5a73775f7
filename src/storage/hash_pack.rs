//! The small-hash (`listpack`) encoding of hashes: one exactly-sized byte buffer of
//! (field, value) entries in insertion order, like Redis's listpack. Every operation is a linear
//! scan, which is what Redis does too and is cheap at the default limits (512 fields of at most
//! 64 bytes, `hash-max-listpack-*`).
//!
//! Entry layout: `flen | field | vlen | value`, each length a LEB128 varint (1 byte up to 127,
//! 2 up to 16383, ...), so the limits can be raised as far as Redis allows. Fields and values
//! are kept as their exact bytes (no integer re-encoding: readers get `&[u8]` slices straight
//! out of the buffer). Invariants: fields are unique; the buffer has no slack (a `Box<[u8]>`,
//! resized on every change as Redis's listpack is reallocated).

/// A packed insertion-ordered run of (field, value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HashPack {
    buf: Box<[u8]>,
    len: u32,
}

/// Reads the varint at `off`: (value, offset after it).
fn read_len(buf: &[u8], mut off: usize) -> (usize, usize) {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = buf[off];
        off += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return (n, off);
        }
        shift += 7;
    }
}

/// Appends `n` as a varint.
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes the entry at `off`: (field, value, offset of the value's length, next offset).
fn at(buf: &[u8], off: usize) -> (&[u8], &[u8], usize, usize) {
    let (fl, p) = read_len(buf, off);
    let f = &buf[p..p + fl];
    let vo = p + fl;
    let (vl, q) = read_len(buf, vo);
    (f, &buf[q..q + vl], vo, q + vl)
}

impl HashPack {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (entry offset, value length-byte offset, next offset) of a field.
    fn find(&self, field: &[u8]) -> Option<(usize, usize, usize)> {
        let mut off = 0;
        while off < self.buf.len() {
            let (f, _, vo, next) = at(&self.buf, off);
            if f == field {
                return Some((off, vo, next));
            }
            off = next;
        }
        None
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|(off, _, _)| at(&self.buf, off).1)
    }

    /// Replaces bytes `start..end` of the buffer with `with`, reallocating to the exact size.
    fn splice(&mut self, start: usize, end: usize, with: &[&[u8]]) {
        let add: usize = with.iter().map(|s| s.len()).sum();
        let mut out = Vec::with_capacity(self.buf.len() - (end - start) + add);
        out.extend_from_slice(&self.buf[..start]);
        for s in with {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&self.buf[end..]);
        self.buf = out.into_boxed_slice();
    }

    /// Sets a field (appended at the end when new); returns true if it was new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let mut vlen = Vec::with_capacity(3);
        put_len(&mut vlen, value.len());
        match self.find(field) {
            Some((off, vo, next)) => {
                if at(&self.buf, off).1.len() == value.len() {
                    self.buf[next - value.len()..next].copy_from_slice(value);
                } else {
                    self.splice(vo, next, &[&vlen, value]);
                }
                false
            }
            None => {
                let mut flen = Vec::with_capacity(3);
                put_len(&mut flen, field.len());
                let end = self.buf.len();
                self.splice(end, end, &[&flen, field, &vlen, value]);
                self.len += 1;
                true
            }
        }
    }

    /// Removes a field; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some((off, _, next)) => {
                self.splice(off, next, &[]);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// All pairs in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, off: 0 }
    }

    /// Bytes of the packed buffer (its whole heap allocation).
    pub fn heap_size(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator over a pack's (field, value) pairs in insertion order.
pub struct Iter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.off >= self.buf.len() {
            return None;
        }
        let (f, v, _, next) = at(self.buf, self.off);
        self.off = next;
        Some((f, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_rng::Rng;

    fn bytes(r: &mut Rng, max: usize) -> Vec<u8> {
        let n = r.below(max + 1);
        (0..n).map(|_| b"ab\x00\xff1"[r.below(5)]).collect()
    }

    fn check(p: &HashPack, model: &[(Vec<u8>, Vec<u8>)]) {
        assert_eq!(p.len(), model.len());
        assert_eq!(p.is_empty(), model.is_empty());
        let got: Vec<(&[u8], &[u8])> = p.iter().collect();
        let want: Vec<(&[u8], &[u8])> = model.iter().map(|(f, v)| (&f[..], &v[..])).collect();
        assert_eq!(got, want);
        for (f, v) in model {
            assert_eq!(p.get(f), Some(&v[..]));
        }
        let varint = |n: usize| {
            if n < 128 {
                1
            } else if n < 16384 {
                2
            } else {
                3
            }
        };
        let size: usize = model.iter().map(|(f, v)| varint(f.len()) + f.len() + varint(v.len()) + v.len()).sum();
        assert_eq!(p.heap_size(), size);
    }

    #[test]
    fn random_operations_match_a_vec_model() {
        for seed in 1..40u64 {
            let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut p = HashPack::default();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let maxlen = if seed % 3 == 0 { 300 } else { 4 };
            for _ in 0..600 {
                let f = bytes(&mut r, maxlen.min(3));
                match r.below(4) {
                    0 | 1 => {
                        let v = bytes(&mut r, maxlen);
                        let new = match model.iter_mut().find(|(x, _)| *x == f) {
                            Some(e) => {
                                e.1 = v.clone();
                                false
                            }
                            None => {
                                model.push((f.clone(), v.clone()));
                                true
                            }
                        };
                        assert_eq!(p.set(&f, &v), new);
                    }
                    2 => {
                        let pos = model.iter().position(|(x, _)| *x == f);
                        if let Some(i) = pos {
                            model.remove(i);
                        }
                        assert_eq!(p.remove(&f), pos.is_some());
                    }
                    _ => {
                        let want = model.iter().find(|(x, _)| *x == f).map(|(_, v)| &v[..]);
                        assert_eq!(p.get(&f), want);
                    }
                }
                check(&p, &model);
            }
        }
    }

    #[test]
    fn empty_field_and_value_and_max_lengths() {
        let mut p = HashPack::default();
        assert!(p.set(b"", b""));
        assert!(p.set(&[7u8; 255], &[9u8; 255]));
        assert!(!p.set(b"", b"x"));
        assert_eq!(p.get(b""), Some(&b"x"[..]));
        assert_eq!(p.get(&[7u8; 255]), Some(&[9u8; 255][..]));
        assert!(p.set(b"big", &vec![3u8; 70000]));
        assert_eq!(p.get(b"big").map(|v| v.len()), Some(70000));
        assert!(!p.set(b"big", b"small"));
        assert_eq!(p.get(b"big"), Some(&b"small"[..]));
        assert!(p.remove(b"big"));
        assert!(p.remove(&[7u8; 255]));
        assert!(!p.remove(&[7u8; 255]));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![(&b""[..], &b"x"[..])]);
    }
}
