//! Replies as values, and their encoding in RESP2 or RESP3.
//!
//! A `Reply` is `Send` so that a shard can compute it and hand it back over the mesh to the
//! connection's home shard, which encodes it with the connection's protocol version.

use bytes::Bytes;
use std::borrow::Cow;

/// One reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A status reply such as `+PONG` (without the `+` and CRLF).
    Status(Cow<'static, str>),
    /// An error reply; the text is everything after `-` (e.g. `ERR syntax error`).
    Error(Cow<'static, str>),
    /// `:n`
    Int(i64),
    /// `$n\r\n...`
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NilArray,
    /// An array of replies.
    Array(Vec<Reply>),
    /// A map: a flat array of 2N items in RESP2, `%N` in RESP3.
    Map(Vec<(Reply, Reply)>),
    /// Pairs: a flat array of 2N items in RESP2, an array of N two-element arrays in RESP3
    /// (HRANDFIELD/ZRANDMEMBER ... WITH*).
    Pairs(Vec<(Reply, Reply)>),
    /// A keyed map: an array of N two-element arrays in RESP2, `%N` in RESP3 (XREAD).
    KeyedMap(Vec<(Reply, Reply)>),
    /// A set: an array in RESP2, `~N` in RESP3.
    Set(Vec<Reply>),
    /// A double: a bulk string in RESP2, `,` in RESP3 (formatted like Redis 7.0: `%.17g`).
    Double(f64),
    /// A boolean: `:1`/`:0` in RESP2, `#t`/`#f` in RESP3.
    Bool(bool),
    /// A double already formatted (GEOPOS's `%.17Lf` coordinates): a bulk string in RESP2,
    /// `,` in RESP3.
    HumanDouble(Bytes),
    /// Verbatim text (`=N\r\ntxt:...` in RESP3, a bulk string in RESP2).
    Verbatim(Bytes),
    /// An out-of-band push (`>N` in RESP3, an array in RESP2), used by pub/sub and MONITOR.
    Push(Vec<Reply>),
    /// Bytes already encoded in RESP (the same in both protocols).
    Raw(Bytes),
    /// A short bulk string held inline (no allocation): GET's reply for small values.
    /// Encodes exactly as [`Reply::Bulk`] with the same bytes.
    ShortBulk(ShortBytes),
}

/// Up to [`ShortBytes::CAP`] bytes stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortBytes {
    len: u8,
    data: [u8; ShortBytes::CAP],
}

impl ShortBytes {
    /// The most bytes held inline (keeps `Reply` at its size).
    pub const CAP: usize = 22;
    /// The bytes, if they fit.
    pub fn new(b: &[u8]) -> Option<ShortBytes> {
        if b.len() > Self::CAP {
            return None;
        }
        let mut data = [0u8; Self::CAP];
        data[..b.len()].copy_from_slice(b);
        Some(ShortBytes { len: b.len() as u8, data })
    }
    /// The bytes held.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl std::fmt::Debug for ShortBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

impl Reply {
    /// An error reply from a static text.
    pub const fn err(text: &'static str) -> Reply {
        Reply::Error(Cow::Borrowed(text))
    }
    /// An error reply from an owned text.
    pub fn error(text: String) -> Reply {
        Reply::Error(Cow::Owned(text))
    }
    /// A status reply from a static text.
    pub const fn status(text: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(text))
    }
    /// A status reply from an owned string.
    pub fn status_owned(text: String) -> Reply {
        Reply::Status(Cow::Owned(text))
    }
    /// A bulk reply copied from a byte slice.
    pub fn bulk(b: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b))
    }
    /// A bulk reply copied from a byte slice, held inline when short (for replies that go
    /// straight to the client: nothing matches on the variant).
    pub fn bulk_inline(b: &[u8]) -> Reply {
        match ShortBytes::new(b) {
            Some(s) => Reply::ShortBulk(s),
            None => Reply::bulk(b),
        }
    }
    /// A bulk reply holding the decimal form of an integer.
    pub fn bulk_int(n: i64) -> Reply {
        let mut b = itoa::Buffer::new();
        Reply::Bulk(Bytes::copy_from_slice(b.format(n).as_bytes()))
    }
    /// A bulk reply from an owned string.
    pub fn bulk_string(s: String) -> Reply {
        Reply::Bulk(Bytes::from(s))
    }
    /// True for error replies.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends this reply's RESP encoding to `out`; `resp3` selects the protocol version.
    pub fn encode(&self, out: &mut Vec<u8>, resp3: bool) {
        match self {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Status(s) => {
                out.push(b'+');
                push_line_safe(out, s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(s) => {
                out.push(b'-');
                push_line_safe(out, s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Int(n) => {
                let mut line = Line::new(b':');
                line.signed(*n);
                line.crlf();
                out.extend_from_slice(line.as_bytes());
            }
            Reply::Bulk(b) => encode_bulk(out, b),
            Reply::ShortBulk(b) => encode_bulk(out, b.as_slice()),
            Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
            Reply::Array(items) => {
                push_header(out, b'*', items.len());
                for r in items {
                    r.encode(out, resp3);
                }
            }
            Reply::Set(items) => {
                push_header(out, if resp3 { b'~' } else { b'*' }, items.len());
                for r in items {
                    r.encode(out, resp3);
                }
            }
            Reply::Push(items) => {
                push_header(out, if resp3 { b'>' } else { b'*' }, items.len());
                for r in items {
                    r.encode(out, resp3);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    push_header(out, b'%', pairs.len());
                } else {
                    push_header(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::KeyedMap(pairs) => {
                push_header(out, if resp3 { b'%' } else { b'*' }, pairs.len());
                for (k, v) in pairs {
                    if !resp3 {
                        push_header(out, b'*', 2);
                    }
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Pairs(pairs) => {
                if resp3 {
                    push_header(out, b'*', pairs.len());
                    for (k, v) in pairs {
                        push_header(out, b'*', 2);
                        k.encode(out, resp3);
                        v.encode(out, resp3);
                    }
                } else {
                    push_header(out, b'*', pairs.len() * 2);
                    for (k, v) in pairs {
                        k.encode(out, resp3);
                        v.encode(out, resp3);
                    }
                }
            }
            Reply::Double(d) => {
                let s = format_double(*d);
                if resp3 {
                    out.push(b',');
                    out.extend_from_slice(s.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode_bulk(out, s.as_bytes());
                }
            }
            Reply::HumanDouble(s) => {
                if resp3 {
                    out.push(b',');
                    out.extend_from_slice(s);
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode_bulk(out, s);
                }
            }
            Reply::Bool(b) => {
                if resp3 {
                    out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Reply::Verbatim(b) => {
                if resp3 {
                    push_header(out, b'=', b.len() + 4);
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode_bulk(out, b);
                }
            }
            Reply::Raw(b) => out.extend_from_slice(b),
        }
    }
}

/// `$<len>\r\n<payload>\r\n` with one capacity check: every GET's reply is one of these.
fn encode_bulk(out: &mut Vec<u8>, b: &[u8]) {
    let head = Line::header(b'$', b.len());
    let head = head.as_bytes();
    out.reserve(head.len() + b.len() + 2);
    out.extend_from_slice(head);
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.extend_from_slice(Line::header(kind, n).as_bytes());
}

/// A reply's type byte, a number and CRLF, assembled on the stack so that they reach the
/// output buffer in one copy (a type byte, at most 20 digits and a sign, CRLF).
struct Line {
    buf: [u8; 24],
    len: usize,
}

impl Line {
    #[inline]
    fn new(kind: u8) -> Line {
        let mut buf = [0u8; 24];
        buf[0] = kind;
        Line { buf, len: 1 }
    }

    /// `<kind><n>\r\n`: an aggregate's or a bulk string's header.
    #[inline]
    fn header(kind: u8, n: usize) -> Line {
        let mut line = Line::new(kind);
        line.number(n as u64);
        line.crlf();
        line
    }

    #[inline]
    fn number(&mut self, n: u64) {
        if n < 10 {
            self.buf[self.len] = b'0' + n as u8;
            self.len += 1;
        } else {
            let mut digits = itoa::Buffer::new();
            let d = digits.format(n).as_bytes();
            self.buf[self.len..self.len + d.len()].copy_from_slice(d);
            self.len += d.len();
        }
    }

    #[inline]
    fn signed(&mut self, n: i64) {
        if n < 0 {
            self.buf[self.len] = b'-';
            self.len += 1;
        }
        self.number(n.unsigned_abs());
    }

    #[inline]
    fn crlf(&mut self) {
        self.buf[self.len] = b'\r';
        self.buf[self.len + 1] = b'\n';
        self.len += 2;
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Status and error lines must not contain CR or LF (Redis replaces them with spaces).
fn push_line_safe(out: &mut Vec<u8>, s: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', s).is_none() {
        out.extend_from_slice(s);
    } else {
        out.extend(s.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
    }
}

/// Formats a double as Redis 7.0's `addReplyDouble` does: `inf`, `-inf`, `nan`, else `%.17g`.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g17(d)
}

/// `printf("%.17g", d)` for finite `d`.
pub fn format_g17(d: f64) -> String {
    format_g(d, 17)
}

/// `printf("%.<prec>g", d)` for finite `d`.
pub fn format_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let prec = prec.max(1);
    // Scientific form with prec significant digits tells us the exponent after rounding.
    let sci = format!("{:.*e}", prec - 1, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, d);
        trim_fraction_zeros(&fixed).to_string()
    }
}

fn trim_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> String {
        let mut v = Vec::new();
        r.encode(&mut v, resp3);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        assert_eq!(enc(&Reply::Ok, false), "+OK\r\n");
        assert_eq!(enc(&Reply::Nil, false), "$-1\r\n");
        assert_eq!(enc(&Reply::Nil, true), "_\r\n");
        assert_eq!(enc(&Reply::Int(-3), false), ":-3\r\n");
        assert_eq!(enc(&Reply::bulk(b"hi"), false), "$2\r\nhi\r\n");
        let m = Reply::Map(vec![(Reply::bulk(b"a"), Reply::Int(1))]);
        assert_eq!(enc(&m, false), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Double(1.5), false), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(&Reply::err("ERR a\r\nb"), false), "-ERR a  b\r\n");
    }

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_g17(3.0), "3");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_g17(-2.5), "-2.5");
        assert_eq!(format_g17(123456789.0), "123456789");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_g(10.5, 17), "10.5");
    }
}
