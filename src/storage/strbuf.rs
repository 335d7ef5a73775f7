//! Byte buffers that keep short contents inline: the bytes of string values ([`RawStr`], up to
//! [`INLINE_MAX`] bytes inside the value itself, like Redis's `embstr` keeps them next to the
//! object header) and of keys ([`KeyBytes`], up to [`KEY_INLINE_MAX`] bytes inside the table
//! node). Both are 24 and 16 bytes, so that a small key, its entry and a small string value fit
//! one 64-byte allocation (see `storage::db`).

/// A length that fits an inline buffer (0..=22). Being an enum of 23 values, it leaves the
/// other 233 byte values free for the compiler to tell the variants of the enclosing enum
/// apart, so [`RawStr`] and [`KeyBytes`] need no separate tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[rustfmt::skip]
#[allow(missing_docs)]
pub enum InlineLen {
    L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16, L17, L18, L19, L20, L21, L22,
}

#[rustfmt::skip]
const LENS: [InlineLen; 23] = {
    use InlineLen::*;
    [L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16, L17, L18, L19, L20, L21, L22]
};

impl InlineLen {
    /// The length `n` (at most 22).
    pub fn from_len(n: usize) -> InlineLen {
        LENS[n]
    }
}

/// The longest string value kept inline.
pub const INLINE_MAX: usize = 22;

/// The bytes of a string value: inline when short, an exactly sized heap slice when longer, and
/// a growable vector once a command has modified it in place (APPEND, SETRANGE, SETBIT and the
/// HyperLogLog commands), so repeated appends stay amortised O(1).
#[derive(Clone)]
pub enum RawStr {
    /// Up to [`INLINE_MAX`] bytes, stored in place.
    Inline(InlineLen, [u8; INLINE_MAX]),
    /// Longer contents, exactly sized.
    Exact(Box<[u8]>),
    /// Contents modified in place (boxed: keeps the value small).
    Grow(Box<Vec<u8>>),
}

const _: () = assert!(std::mem::size_of::<RawStr>() == 24);

/// `b` (at most `N` ≤ 24 bytes) in a zero-padded array, read with a few fixed-size loads
/// instead of a variable-length memcpy. The array is read back whole as the value moves into
/// its place, and a load that spans several of a memcpy's small stores waits for all of them
/// (a store-forwarding stall: most of the time of building a small string value in a profile
/// of pipelined SETs). Built in registers, the words are stored once, where they go.
#[inline(always)]
fn padded<const N: usize>(b: &[u8]) -> [u8; N] {
    const { assert!(N <= 24) };
    let n = b.len();
    debug_assert!(n <= N);
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(w) as u64
    };
    // Overlapping loads, shifted so that the bytes past `n` are zero.
    let (w0, w1, w2) = match n {
        16.. => (word(0), word(8), word(n - 8).checked_shr(((24 - n) * 8) as u32).unwrap_or(0)),
        8.. => (word(0), word(n - 8).checked_shr(((16 - n) * 8) as u32).unwrap_or(0), 0),
        4.. => (half(0) | half(n - 4) << ((n - 4) * 8), 0, 0),
        1.. => {
            let (a, m, z) = (b[0] as u64, b[n / 2] as u64, b[n - 1] as u64);
            (a | m << (n / 2 * 8) | z << ((n - 1) * 8), 0, 0)
        }
        0 => (0, 0, 0),
    };
    let mut all = [0u8; 24];
    all[..8].copy_from_slice(&w0.to_le_bytes());
    all[8..16].copy_from_slice(&w1.to_le_bytes());
    all[16..].copy_from_slice(&w2.to_le_bytes());
    let mut out = [0u8; N];
    out.copy_from_slice(&all[..N]);
    out
}

impl RawStr {
    /// A buffer holding a copy of `b`.
    pub fn from_slice(b: &[u8]) -> RawStr {
        if b.len() <= INLINE_MAX {
            RawStr::Inline(LENS[b.len()], padded(b))
        } else {
            RawStr::Exact(b.into())
        }
    }

    /// Starts loading the first cache line of the bytes when they are on the heap (a snapshot
    /// walk reads many values one after another; see `SlotTable::iter_ids_prefetched`).
    #[inline]
    pub fn prefetch(&self) {
        match self {
            RawStr::Inline(..) => {}
            RawStr::Exact(b) => prefetch_read(b.as_ptr()),
            RawStr::Grow(v) => prefetch_read(v.as_ptr()),
        }
    }

    /// The bytes as a growable vector, converting to the [`RawStr::Grow`] form first.
    pub fn make_vec(&mut self) -> &mut Vec<u8> {
        if !matches!(self, RawStr::Grow(_)) {
            let v = match std::mem::replace(self, RawStr::Inline(InlineLen::L0, [0; INLINE_MAX])) {
                RawStr::Exact(b) => b.into_vec(),
                other => other.to_vec(),
            };
            *self = RawStr::Grow(Box::new(v));
        }
        match self {
            RawStr::Grow(v) => v,
            _ => unreachable!("converted above"),
        }
    }

    /// Heap bytes owned by the buffer.
    pub fn heap_size(&self) -> usize {
        match self {
            RawStr::Inline(..) => 0,
            RawStr::Exact(b) => b.len(),
            RawStr::Grow(v) => v.capacity() + std::mem::size_of::<Vec<u8>>(),
        }
    }
}

impl From<Vec<u8>> for RawStr {
    fn from(v: Vec<u8>) -> RawStr {
        if v.len() <= INLINE_MAX {
            RawStr::from_slice(&v)
        } else {
            RawStr::Exact(v.into_boxed_slice())
        }
    }
}

impl std::ops::Deref for RawStr {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            RawStr::Inline(n, b) => &b[..*n as usize],
            RawStr::Exact(b) => b,
            RawStr::Grow(v) => v,
        }
    }
}

impl PartialEq for RawStr {
    fn eq(&self, other: &RawStr) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for RawStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self))
    }
}

/// The longest key kept inline in its table node.
pub const KEY_INLINE_MAX: usize = 15;

/// The bytes of a key: inline up to [`KEY_INLINE_MAX`] bytes, else behind one thin pointer
/// (keeping the type at 16 bytes).
#[derive(Clone)]
pub enum KeyBytes {
    /// Up to [`KEY_INLINE_MAX`] bytes, stored in place.
    Inline(InlineLen, [u8; KEY_INLINE_MAX]),
    /// Longer keys.
    Heap(HeapKey),
}

const _: () = assert!(std::mem::size_of::<KeyBytes>() == 16);

impl KeyBytes {
    /// A copy of `k`.
    pub fn new(k: &[u8]) -> KeyBytes {
        if k.len() <= KEY_INLINE_MAX {
            KeyBytes::Inline(LENS[k.len()], padded(k))
        } else {
            KeyBytes::Heap(HeapKey::new(k))
        }
    }

    /// Heap bytes owned by the key.
    pub fn heap_size(&self) -> usize {
        match self {
            KeyBytes::Inline(..) => 0,
            KeyBytes::Heap(b) => HeapKey::HEADER + b.len(),
        }
    }
}

impl std::ops::Deref for KeyBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            KeyBytes::Inline(n, b) => &b[..*n as usize],
            KeyBytes::Heap(b) => b,
        }
    }
}

/// A long key's bytes in one allocation, its length first (as Redis's `sds` header), behind a
/// thin pointer: comparing a stored key costs one memory access where a `Box<Box<[u8]>>`
/// cost two (the table lookup's last cache miss, see `storage::db`).
pub struct HeapKey(std::ptr::NonNull<u8>);

// SAFETY: a HeapKey owns its allocation exclusively and never shares it; its bytes are only
// read through `&self`, like a `Box<[u8]>`.
unsafe impl Send for HeapKey {}
// SAFETY: as above; no interior mutability.
unsafe impl Sync for HeapKey {}

impl HeapKey {
    /// Bytes of the length header.
    pub const HEADER: usize = 4;

    fn layout(len: usize) -> std::alloc::Layout {
        // A key is at most `proto-max-bulk-len` (under 4 GiB): the length fits the header.
        std::alloc::Layout::from_size_align(Self::HEADER + len, 1).expect("key length fits a layout")
    }

    /// A copy of `k` (at most `u32::MAX` bytes, as every key the protocol accepts).
    pub fn new(k: &[u8]) -> HeapKey {
        let len = u32::try_from(k.len()).expect("a key is shorter than 4 GiB");
        let layout = Self::layout(k.len());
        // SAFETY: the layout is non-zero sized (the header); the allocation is checked for
        // null, then the header and exactly `k.len()` bytes after it are written.
        unsafe {
            let p = std::alloc::alloc(layout);
            let Some(p) = std::ptr::NonNull::new(p) else { std::alloc::handle_alloc_error(layout) };
            std::ptr::copy_nonoverlapping(len.to_ne_bytes().as_ptr(), p.as_ptr(), Self::HEADER);
            std::ptr::copy_nonoverlapping(k.as_ptr(), p.as_ptr().add(Self::HEADER), k.len());
            HeapKey(p)
        }
    }

    /// Starts loading the key's first cache line (see `Db::prefetch_keys`).
    #[inline]
    pub fn prefetch(&self) {
        prefetch_read(self.0.as_ptr());
    }

    #[inline]
    fn stored_len(&self) -> usize {
        let mut h = [0u8; Self::HEADER];
        // SAFETY: the allocation starts with the 4-byte header written by `new`.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), h.as_mut_ptr(), Self::HEADER) };
        u32::from_ne_bytes(h) as usize
    }
}

impl std::ops::Deref for HeapKey {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `new` wrote `stored_len()` bytes right after the header, and they live as
        // long as `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(Self::HEADER), self.stored_len()) }
    }
}

impl Clone for HeapKey {
    fn clone(&self) -> HeapKey {
        HeapKey::new(self)
    }
}

impl Drop for HeapKey {
    fn drop(&mut self) {
        // SAFETY: allocated by `new` with this very layout (the header holds the length).
        unsafe { std::alloc::dealloc(self.0.as_ptr(), Self::layout(self.stored_len())) }
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self))
    }
}

/// Starts loading the cache line at `p` (a hint: never faults, whatever the address).
#[inline(always)]
pub(crate) fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no architectural effect; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_str_keeps_bytes_in_every_form() {
        for n in [0usize, 1, 21, 22, 23, 44, 100] {
            let b: Vec<u8> = (0..n as u8).collect();
            let mut r = RawStr::from(b.clone());
            assert_eq!(&r[..], &b[..]);
            assert_eq!(matches!(r, RawStr::Inline(..)), n <= INLINE_MAX);
            assert_eq!(r, RawStr::from_slice(&b));
            r.make_vec().push(7);
            assert!(matches!(r, RawStr::Grow(_)));
            assert_eq!(r.len(), n + 1);
            assert_eq!(r[n], 7);
        }
    }

    #[test]
    fn padded_copies_every_length_and_zeroes_the_rest() {
        for n in 0..=24usize {
            let b: Vec<u8> = (0..n).map(|x| 0xa0 ^ x as u8).collect();
            let p: [u8; 24] = padded(&b);
            assert_eq!(&p[..n], &b[..], "length {n}");
            assert!(p[n..].iter().all(|&x| x == 0), "length {n}");
            if n <= INLINE_MAX {
                let q: [u8; INLINE_MAX] = padded(&b);
                assert_eq!(&q[..n], &b[..]);
                assert!(q[n..].iter().all(|&x| x == 0));
            }
        }
    }

    #[test]
    fn key_bytes_inline_and_heap() {
        for n in [0usize, 8, 15, 16, 40, 300, 70_000] {
            let b: Vec<u8> = (0..n).map(|x| (x as u8) ^ 0x5a).collect();
            let k = KeyBytes::new(&b);
            assert_eq!(&k[..], &b[..]);
            assert_eq!(matches!(k, KeyBytes::Inline(..)), n <= KEY_INLINE_MAX);
            let c = k.clone();
            drop(k);
            assert_eq!(&c[..], &b[..]);
            assert_eq!(c.heap_size(), if n <= KEY_INLINE_MAX { 0 } else { n + HeapKey::HEADER });
        }
    }
}
