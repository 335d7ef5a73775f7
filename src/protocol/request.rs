//! The request parser: RESP2 multibulk frames and inline commands, incrementally.
//!
//! Behaviour follows Redis 7.0's `processMultibulkBuffer` / `processInlineBuffer`: the same
//! limits and the same protocol error texts. Arguments are zero-copy `Bytes` split off the
//! read buffer. A partially received multibulk keeps its progress in [`RequestParser`], so a
//! huge command arriving in many reads is scanned once.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request, and longest `*N` / `$N` header line, before a protocol error.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Largest multibulk argument count accepted before authentication.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Largest bulk length accepted before authentication.
const UNAUTH_MAX_BULK: i64 = 16384;

/// One parsed command: `args[0]` is the command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name and arguments, as sent.
    pub args: Vec<Bytes>,
}

/// Limits the parser enforces; they come from the config and the client's auth state.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: i64,
    /// Whether the client still has to authenticate (stricter limits apply).
    pub auth_required: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_bulk_len: 512 * 1024 * 1024, auth_required: false }
    }
}

/// A protocol error: the client gets `-ERR Protocol error: <text>` and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl ParseError {
    /// The error reply text Redis sends, e.g. `ERR Protocol error: invalid multibulk length`.
    pub fn reply_text(&self) -> String {
        format!("ERR Protocol error: {}", self.0)
    }
}

/// Progress through a multibulk frame that has not fully arrived yet.
#[derive(Debug, Default)]
struct Partial {
    /// Arguments still to read.
    remaining: usize,
    /// Length of the bulk being read, once its `$N` line was seen.
    bulk_len: Option<usize>,
    /// Arguments read so far.
    args: Vec<Bytes>,
    /// Their bytes.
    bytes: usize,
    /// The memory they hold (see [`Partial::own_args`]).
    held: usize,
    /// Arguments before this index own their memory.
    owned: usize,
}

/// Arguments shorter than this, of a request still arriving, are copied out of the read
/// buffer (see [`Partial::own_args`]); longer ones get a buffer of their own size anyway.
const OWN_BELOW: usize = 32 * 1024;
/// ... once the arguments received reach this many bytes.
const OWN_FROM: usize = 16 * 1024;

impl Partial {
    /// Called when the parser stops for more input in the middle of a request: the small
    /// arguments read so far are copied out of the read buffer, so that they do not keep it
    /// alive (a slice would pin each read's whole buffer while the connection reads into new
    /// ones: a request trickling in held about twice its size). Each argument is copied once.
    fn own_args(&mut self) {
        // A request straddling two reads of a pipeline is left as it is (its few arguments
        // pin one buffer for a moment); only a big request trickling in is worth the copies.
        if self.bytes < OWN_FROM {
            return;
        }
        for a in &mut self.args[self.owned..] {
            if a.len() < OWN_BELOW {
                *a = Bytes::copy_from_slice(a);
                self.held += crate::memory::clients::allocation_size(a.len());
            } else {
                self.held += a.len();
            }
        }
        self.owned = self.args.len();
    }
}

/// An incremental request parser for one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    partial: Option<Partial>,
    /// Scratch for the fast path: argument ranges and per-request argument counts.
    ranges: Vec<(usize, usize)>,
    counts: Vec<usize>,
    /// Argument vectors of requests already run, handed back by [`RequestParser::recycle`]:
    /// the fast path fills them instead of allocating one per request.
    spare: Vec<Vec<Bytes>>,
    /// Command names this connection sent lately, as interned static `Bytes`.
    names: NameCache,
}

/// Longest command name interned.
const NAME_MAX: usize = 24;
/// Most names a thread interns (a bound on what a client sending made-up names can cost).
const INTERN_MAX: usize = 512;
/// Names a connection remembers.
const NAME_SLOTS: usize = 4;

thread_local! {
    /// This thread's interned command names (leaked: at most INTERN_MAX short strings).
    static INTERNED: std::cell::RefCell<hashbrown::HashSet<&'static [u8]>> = Default::default();
}

/// The last few command names of a connection, as `Bytes` over interned static memory.
///
/// Every argument sliced from the read buffer costs an atomic increment and, when the request
/// has run, an atomic decrement of the buffer's reference count; a pipelined GET spends about
/// as much on those as on its lookup. A name a connection repeats is instead given as a static
/// `Bytes`, which is cloned and dropped without touching any count.
#[derive(Debug, Default)]
struct NameCache {
    slots: [Option<&'static [u8]>; NAME_SLOTS],
    next: usize,
}

impl NameCache {
    /// `name` as interned static memory when it is (or can be) interned. The caller makes the
    /// `Bytes` with `Bytes::from_static`, built in registers: a `Bytes` cloned through its
    /// vtable comes back through memory and is read back at once, a store-forwarding stall
    /// on every request.
    #[inline]
    fn get(&mut self, name: &[u8]) -> Option<&'static [u8]> {
        for &s in self.slots.iter().flatten() {
            // Names are a few bytes: compared in place rather than through a `memcmp` call.
            if s.len() == name.len() && s.iter().zip(name).all(|(a, b)| a == b) {
                return Some(s);
            }
        }
        if name.len() > NAME_MAX {
            return None;
        }
        let interned = INTERNED.with(|set| {
            let mut set = set.borrow_mut();
            if let Some(&s) = set.get(name) {
                return Some(s);
            }
            if set.len() >= INTERN_MAX {
                return None;
            }
            let s: &'static [u8] = Box::leak(name.to_vec().into_boxed_slice());
            set.insert(s);
            Some(s)
        })?;
        self.slots[self.next] = Some(interned);
        self.next = (self.next + 1) % NAME_SLOTS;
        Some(interned)
    }
}

/// Most argument vectors kept for reuse (a 16-deep pipeline reuses them all), and the largest
/// capacity kept: at most 4 KB per connection.
const SPARE_VECS: usize = 16;
const SPARE_MAX_CAP: usize = 8;

/// Most arguments a request may have to take the fast path.
const FAST_MAX_ARGS: usize = 1024;

/// Reads a header line's number at `at` (just after `*` or `$`) when it is a plain decimal
/// followed by CRLF; returns it and the position after the CRLF. Anything else (signs,
/// leading zeros, missing bytes) is left to the exact slow path.
#[inline]
fn plain_number(buf: &[u8], mut at: usize) -> Option<(usize, usize)> {
    // One or two digits (argument counts, and the lengths of names and of most keys), read
    // without the loop.
    if let Some(&[a, b, c, _]) = buf.get(at..at + 4) {
        if a.is_ascii_digit() {
            if b == b'\r' {
                return Some(((a - b'0') as usize, at + 3));
            }
            if a != b'0' && b.is_ascii_digit() && c == b'\r' {
                return Some(((a - b'0') as usize * 10 + (b - b'0') as usize, at + 4));
            }
        }
    }
    let first = *buf.get(at)?;
    if !first.is_ascii_digit() {
        return None;
    }
    let mut n = (first - b'0') as usize;
    at += 1;
    loop {
        let c = *buf.get(at)?;
        if c == b'\r' {
            break;
        }
        if !c.is_ascii_digit() || n == 0 || n > 100_000_000 {
            return None;
        }
        n = n * 10 + (c - b'0') as usize;
        at += 1;
    }
    // Redis reads the byte after '\r' as '\n' without checking it.
    if at + 1 >= buf.len() {
        return None;
    }
    Some((n, at + 2))
}

impl RequestParser {
    /// Scans one complete, well-formed multibulk request at the start of `buf` without
    /// consuming anything, pushing its argument ranges; returns its length. `None` (with
    /// nothing pushed) when the request is incomplete or unusual in any way: the slow path
    /// then handles it with Redis's exact errors and partial-progress bookkeeping.
    fn scan_fast(&mut self, buf: &[u8], base: usize, limits: &ParseLimits) -> Option<usize> {
        if buf.first() != Some(&b'*') {
            return None;
        }
        let (n, mut at) = plain_number(buf, 1)?;
        let max_args = if limits.auth_required { UNAUTH_MAX_MULTIBULK as usize } else { FAST_MAX_ARGS };
        if n == 0 || n > max_args {
            return None;
        }
        let max_bulk =
            if limits.auth_required { UNAUTH_MAX_BULK.min(limits.max_bulk_len) } else { limits.max_bulk_len };
        let mark = self.ranges.len();
        for _ in 0..n {
            let ok = buf.get(at) == Some(&b'$')
                && match plain_number(buf, at + 1) {
                    Some((len, from)) if len as i64 <= max_bulk && from + len + 2 <= buf.len() => {
                        self.ranges.push((base + from, base + from + len));
                        at = from + len + 2;
                        true
                    }
                    _ => false,
                };
            if !ok {
                self.ranges.truncate(mark);
                return None;
            }
        }
        self.counts.push(n);
        Some(at)
    }

    /// The fast path: every complete, plain request at the front of `buf` is split off in one
    /// piece and its arguments are slices of it. Returns how many requests it took.
    fn parse_fast(&mut self, buf: &mut BytesMut, limits: &ParseLimits, out: &mut Vec<Request>) -> usize {
        let mut pos = 0;
        self.ranges.clear();
        self.counts.clear();
        while let Some(len) = self.scan_fast(&buf[pos..], pos, limits) {
            pos += len;
        }
        if pos == 0 {
            return 0;
        }
        let chunk = buf.split_to(pos).freeze();
        let mut ranges = self.ranges.iter();
        for &n in &self.counts {
            let mut args = self.spare.pop().unwrap_or_default();
            if let Some(&(a, b)) = ranges.next() {
                match self.names.get(&chunk[a..b]) {
                    Some(name) => args.push(Bytes::from_static(name)),
                    None => args.push(chunk.slice(a..b)),
                }
            }
            args.extend(ranges.by_ref().take(n - 1).map(|&(a, b)| chunk.slice(a..b)));
            out.push(Request { args });
        }
        self.counts.len()
    }
}

impl RequestParser {
    /// Whether `name` is (by address) one of the interned names this parser hands out: such
    /// bytes are static, so their address stands for them.
    pub fn is_interned(&self, name: &[u8]) -> bool {
        self.names.slots.iter().flatten().any(|s| s.as_ptr() == name.as_ptr() && s.len() == name.len())
    }

    /// Takes back the argument vector of a request that ran, for a later request to reuse
    /// (its arguments are dropped now).
    #[inline]
    pub fn recycle(&mut self, mut args: Vec<Bytes>) {
        if self.spare.len() < SPARE_VECS && args.capacity() <= SPARE_MAX_CAP && args.capacity() > 0 {
            args.clear();
            self.spare.push(args);
        }
    }

    /// The arguments of a request not fully received: their bytes and their count (Redis's
    /// `argv_len_sum` and `argc` while a multibulk request is being read).
    pub fn partial_args(&self) -> (usize, usize) {
        self.partial.as_ref().map_or((0, 0), |p| (p.bytes, p.args.len()))
    }

    /// The memory those arguments hold: their allocations and their slots in the vector.
    pub fn partial_memory(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.held + p.args.capacity() * std::mem::size_of::<Bytes>())
    }

    /// Bytes the parser needs in the buffer to make progress on a big bulk (a read-size hint).
    pub fn wanted(&self) -> usize {
        match &self.partial {
            Some(Partial { bulk_len: Some(n), .. }) => n + 2,
            _ => 0,
        }
    }

    /// Parses every complete request in `buf` into `out`, consuming their bytes.
    /// Returns an error for malformed input; requests parsed before it are still in `out`.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
        out: &mut Vec<Request>,
    ) -> Result<(), ParseError> {
        loop {
            if self.partial.is_none() {
                if buf.is_empty() {
                    return Ok(());
                }
                if self.parse_fast(buf, limits, out) > 0 {
                    continue;
                }
                if buf[0] != b'*' {
                    match parse_inline(buf)? {
                        Some(Some(req)) => {
                            out.push(req);
                            continue;
                        }
                        Some(None) => continue, // empty line
                        None => return Ok(()),
                    }
                }
                // Multibulk header.
                let Some(line) = find_crlf(buf) else {
                    if buf.len() > PROTO_INLINE_MAX_SIZE {
                        return Err(ParseError("too big mbulk count string"));
                    }
                    return Ok(());
                };
                let n = match string2ll(&buf[1..line]) {
                    Some(n) if n <= i32::MAX as i64 => n,
                    _ => return Err(ParseError("invalid multibulk length")),
                };
                if n > UNAUTH_MAX_MULTIBULK && limits.auth_required {
                    return Err(ParseError("unauthenticated multibulk length"));
                }
                buf.advance(line + 2);
                if n <= 0 {
                    continue;
                }
                let n = n as usize;
                self.partial = Some(Partial {
                    remaining: n,
                    bulk_len: None,
                    args: Vec::with_capacity(n.min(1024)),
                    ..Default::default()
                });
            }
            let Some(p) = self.partial.as_mut() else { continue };
            while p.remaining > 0 {
                let len = match p.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(line) = find_crlf(buf) else {
                            if buf.len() > PROTO_INLINE_MAX_SIZE {
                                return Err(ParseError("too big bulk count string"));
                            }
                            p.own_args();
                            return Ok(());
                        };
                        if buf[0] != b'$' {
                            return Err(ParseError(expected_dollar(buf[0])));
                        }
                        let len = match string2ll(&buf[1..line]) {
                            Some(l) if l >= 0 && l <= limits.max_bulk_len => l,
                            _ => return Err(ParseError("invalid bulk length")),
                        };
                        if len > UNAUTH_MAX_BULK && limits.auth_required {
                            return Err(ParseError("unauthenticated bulk length"));
                        }
                        buf.advance(line + 2);
                        let len = len as usize;
                        p.bulk_len = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    p.own_args();
                    // The caller grows its buffer (`wanted` is the hint). Reserving here
                    // reallocated and copied the whole partial bulk on every read when the
                    // buffer's spare room was split off (a connection's query buffer): a 32 MB
                    // SET in a master's stream, read 16 KB at a time, took a replica 30 s.
                    return Ok(());
                }
                let arg = buf.split_to(len).freeze();
                // Like Redis, the two bytes after the payload are skipped unchecked.
                buf.advance(2);
                p.bytes += arg.len();
                p.args.push(arg);
                p.bulk_len = None;
                p.remaining -= 1;
            }
            if let Some(p) = self.partial.take() {
                out.push(Request { args: p.args });
            }
        }
    }
}

/// Parses everything complete in `buf` with a fresh parser (handy for tests and one-shot input).
pub fn parse_requests(buf: &mut BytesMut, limits: &ParseLimits, out: &mut Vec<Request>) -> Result<(), ParseError> {
    RequestParser::default().parse(buf, limits, out)
}

fn expected_dollar(got: u8) -> &'static str {
    // The byte is part of the message in Redis ("expected '$', got 'x'"); keep a static table.
    static MSGS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let msgs = MSGS.get_or_init(|| {
        (0u8..=255)
            .map(|c| {
                let s = format!("expected '$', got '{}'", c as char);
                &*Box::leak(s.into_boxed_str())
            })
            .collect()
    });
    msgs[got as usize]
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    // Redis looks for '\r' and then requires the byte after it (it reads it as '\n').
    let pos = memchr::memchr(b'\r', buf)?;
    if pos + 1 < buf.len() {
        Some(pos)
    } else {
        None
    }
}

/// Inline command: `Some(Some(req))` parsed, `Some(None)` empty line skipped, `None` incomplete.
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Option<Request>>, ParseError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > PROTO_INLINE_MAX_SIZE {
            return Err(ParseError("too big inline request"));
        }
        return Ok(None);
    };
    let mut end = nl;
    if end > 0 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    let args = split_args(&buf[..end]).ok_or(ParseError("unbalanced quotes in request"))?;
    buf.advance(nl + 1);
    if args.is_empty() {
        return Ok(Some(None));
    }
    Ok(Some(Some(Request { args: args.into_iter().map(Bytes::from).collect() })))
}

/// Splits a line into arguments like Redis's `sdssplitargs`: spaces separate, `"..."` with C
/// escapes (`\n`, `\xHH`, ...) and `'...'` with `\'` group. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis splits a C string: a NUL byte ends the line.
    let line = &line[..memchr::memchr(0, line).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut inq = false; // inside "double quotes"
        let mut insq = false; // inside 'single quotes'
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}
fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}
fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Redis's `string2ll`: an optional `-`, no `+`, no leading zeros, no spaces, fits in i64.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || digits[0] < b'1' || digits[0] > b'9' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Request>, Result<(), ParseError>, usize) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        let r = parse_requests(&mut buf, &ParseLimits::default(), &mut out);
        (out, r, buf.len())
    }

    #[test]
    fn repeated_and_made_up_command_names_parse_the_same() {
        let mut p = RequestParser::default();
        let mut out = Vec::new();
        // More distinct names than a connection remembers or a thread interns.
        for i in 0..(INTERN_MAX + 40) {
            let name = if i % 3 == 0 { "GET".to_string() } else { format!("N{i}") };
            let mut buf = BytesMut::from(format!("*2\r\n${}\r\n{name}\r\n$1\r\nk\r\n", name.len()).as_bytes());
            p.parse(&mut buf, &ParseLimits::default(), &mut out).unwrap();
            let r = out.pop().unwrap();
            assert_eq!(args(&r), vec![name.as_bytes(), b"k"]);
            p.recycle(r.args);
        }
        let long = "X".repeat(NAME_MAX + 1);
        let mut buf = BytesMut::from(format!("*1\r\n${}\r\n{long}\r\n", long.len()).as_bytes());
        p.parse(&mut buf, &ParseLimits::default(), &mut out).unwrap();
        assert_eq!(args(&out[0]), vec![long.as_bytes()]);
    }

    fn args(r: &Request) -> Vec<&[u8]> {
        r.args.iter().map(|a| &a[..]).collect()
    }

    #[test]
    fn multibulk_and_pipeline() {
        let (reqs, r, left) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI");
        assert!(r.is_ok());
        assert_eq!(reqs.len(), 2);
        assert_eq!(args(&reqs[0]), vec![&b"GET"[..], b"k"]);
        assert_eq!(left, 2);
    }

    #[test]
    fn inline_commands() {
        let (reqs, r, _) = parse_all(b"PING\r\n\r\nset a \"b c\\x41\" 'd\\'e'\n");
        assert!(r.is_ok());
        assert_eq!(reqs.len(), 2);
        assert_eq!(args(&reqs[1]), vec![&b"set"[..], b"a", b"b cA", b"d'e"]);
    }

    #[test]
    fn nul_ends_an_inline_line() {
        let (reqs, r, _) = parse_all(b"set a\0b c\r\n\0\r\n\"x\0\"\r\n");
        assert_eq!(reqs.len(), 1);
        assert_eq!(args(&reqs[0]), vec![&b"set"[..], b"a"]);
        assert_eq!(r, Err(ParseError("unbalanced quotes in request")));
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(parse_all(b"*abc\r\n").1, Err(ParseError("invalid multibulk length")));
        assert_eq!(parse_all(b"*1\r\n+x\r\n").1, Err(ParseError("expected '$', got '+'")));
        assert_eq!(parse_all(b"*1\r\n$-5\r\n").1, Err(ParseError("invalid bulk length")));
        assert_eq!(parse_all(b"set \"a\n").1, Err(ParseError("unbalanced quotes in request")));
        assert_eq!(parse_all(b"set \"a\"b\n").1, Err(ParseError("unbalanced quotes in request")));
        let big = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(parse_all(&big).1, Err(ParseError("too big inline request")));
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING\r\n*0\r\n*1\r\n$4\r\nECHO\r\n";
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            parser.parse(&mut buf, &ParseLimits::default(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 3);
        assert_eq!(args(&out[0]), vec![&b"SET"[..], b"key", b"value"]);
        assert_eq!(args(&out[2]), vec![&b"ECHO"[..]]);
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"12"), Some(12));
        assert_eq!(string2ll(b"-12"), Some(-12));
        assert_eq!(string2ll(b"012"), None);
        assert_eq!(string2ll(b"+1"), None);
        assert_eq!(string2ll(b" 1"), None);
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775808"), None);
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = ParseLimits { auth_required: true, ..Default::default() };
        let mut out = Vec::new();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(parse_requests(&mut buf, &limits, &mut out), Err(ParseError("unauthenticated multibulk length")));
    }

    #[test]
    fn a_big_request_trickling_in_owns_its_arguments() {
        let mut p = RequestParser::default();
        let (lim, mut out) = (ParseLimits::default(), Vec::new());
        let arg = [b'x'; 1000];
        let mut frame = b"*40\r\n".to_vec();
        for _ in 0..30 {
            frame.extend_from_slice(b"$1000\r\n");
            frame.extend_from_slice(&arg);
            frame.extend_from_slice(b"\r\n");
        }
        let mut buf = BytesMut::from(&frame[..]);
        let start = buf.as_ptr() as usize;
        p.parse(&mut buf, &lim, &mut out).unwrap();
        assert!(out.is_empty());
        // 30 arguments of 1000 bytes: copied out (each in a 1 KB allocation), not slices of
        // the read buffer.
        assert_eq!(p.partial_args(), (30_000, 30));
        assert!(p.partial_memory() >= 30 * 1024, "{}", p.partial_memory());
        let whole = start..start + frame.len();
        let partial = p.partial.as_ref().unwrap();
        assert!(partial.args.iter().all(|a| !whole.contains(&(a.as_ptr() as usize))));
        // A small request cut in two is left as it is.
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..]);
        p.parse(&mut buf, &lim, &mut out).unwrap();
        assert_eq!(p.partial_memory(), 3 * std::mem::size_of::<Bytes>());
    }
}
