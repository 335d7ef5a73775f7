//! The platform's `long double`, for INCRBYFLOAT and HINCRBYFLOAT.
//!
//! Redis adds these increments in C's long double (80-bit extended precision on x86-64),
//! parses them with `strtold` (so `1e400`, `0x10` and `  ` rules are the C library's) and
//! prints them with `%.17Lf` trimmed. f64 gives different digits for large or long values
//! (`INCRBYFLOAT k 3006.9` on `1e17`), so the arithmetic is done by a few C functions
//! (`long_double.c`, built by `build.rs`) on a value kept as 16 opaque bytes.

use std::os::raw::{c_char, c_int, c_longlong};

/// A long double value (opaque bytes, only the C side reads them).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct LongDouble {
    bytes: [u8; 16],
}

extern "C" {
    fn slotcore_ld_parse(s: *const c_char, len: usize, out: *mut LongDouble) -> c_int;
    fn slotcore_ld_from_i64(n: c_longlong, out: *mut LongDouble);
    fn slotcore_ld_add(a: *const LongDouble, b: *const LongDouble, out: *mut LongDouble);
    fn slotcore_ld_is_finite(a: *const LongDouble) -> c_int;
    fn slotcore_ld_format_human(a: *const LongDouble, buf: *mut c_char, len: usize) -> usize;
}

/// Longest text parsed or printed (Redis's `MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

impl LongDouble {
    const ZERO: LongDouble = LongDouble { bytes: [0; 16] };

    /// Parses like Redis's `string2ld`: the whole text, no leading space, not NaN, not out of
    /// range, under 5 KiB.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        let mut out = LongDouble::ZERO;
        // SAFETY: the pointer and length describe `text`; `out` is a valid, aligned value.
        let ok = unsafe { slotcore_ld_parse(text.as_ptr().cast(), text.len(), &mut out) };
        (ok == 1).then_some(out)
    }

    /// The exact value of an integer.
    pub fn from_i64(n: i64) -> LongDouble {
        let mut out = LongDouble::ZERO;
        // SAFETY: `out` is a valid, aligned value.
        unsafe { slotcore_ld_from_i64(n, &mut out) };
        out
    }

    /// `self + other`, rounded as the platform's long double.
    pub fn add(&self, other: &LongDouble) -> LongDouble {
        let mut out = LongDouble::ZERO;
        // SAFETY: all three are valid, aligned values.
        unsafe { slotcore_ld_add(self, other, &mut out) };
        out
    }

    /// Neither NaN nor infinite.
    pub fn is_finite(&self) -> bool {
        // SAFETY: `self` is a valid, aligned value.
        unsafe { slotcore_ld_is_finite(self) == 1 }
    }

    /// Redis's human form (`ld2string(.., LD_STR_HUMAN)`): `%.17Lf` without trailing zeros.
    pub fn to_human(&self) -> String {
        let mut buf = vec![0u8; MAX_CHARS];
        // SAFETY: the buffer is MAX_CHARS bytes long and the C side writes at most that many.
        let n = unsafe { slotcore_ld_format_human(self, buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(n);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn incr(a: &str, b: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().add(&LongDouble::parse(b.as_bytes()).unwrap()).to_human()
    }

    #[test]
    fn sums_print_as_redis() {
        // Values checked against redis-server 7.0 on x86-64.
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("1e17", "3006.9"), "100000000000003006.8984375");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
        assert_eq!(incr("0x10", "1"), "17");
        assert_eq!(incr("-1", "1"), "0");
        assert_eq!(incr("1e400", "0").len(), 401);
    }

    #[test]
    fn parse_refuses_what_redis_refuses() {
        for bad in ["", " 1", "1 ", "abc", "nan", "1e5000", "1.5x", "1\x002"] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(LongDouble::parse(&vec![b'1'; 5120]).is_none());
        assert!(LongDouble::parse(b"inf").is_some_and(|v| !v.is_finite()));
        assert_eq!(LongDouble::from_i64(i64::MIN).to_human(), "-9223372036854775808");
    }
}
