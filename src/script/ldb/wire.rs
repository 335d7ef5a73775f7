//! The debugging client's socket, read and written directly while the shard thread is held:
//! the debugger's command parser and bounded blocking I/O.

use super::SEND_TIMEOUT_MS;
use std::ffi::c_int;
use std::os::fd::RawFd;

/// What the command buffer holds.
pub(super) enum Parsed {
    Command(Vec<Vec<u8>>),
    More,
    Error,
}

/// C's `atoi` (leading blanks, a sign, digits).
pub(super) fn atoi(b: &[u8]) -> i32 {
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let neg = i < b.len() && b[i] == b'-';
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = (v * 10 + (b[i] - b'0') as i64).min(i32::MAX as i64 + 1);
        i += 1;
    }
    (if neg { -v } else { v }).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// `\r\n` from `from`, searched as C's `strstr` does (not past a NUL byte).
pub(super) fn find_crlf(b: &[u8], from: usize) -> Option<usize> {
    let end = b[from..].iter().position(|&c| c == 0).map_or(b.len(), |z| from + z);
    b[from..end].windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// Parses one command (an array of bulk strings of 1..=1024 bytes, at most 1024 of them),
/// as forgiving as Redis's debugger parser.
pub(super) fn parse_command(b: &[u8]) -> Parsed {
    if b.is_empty() {
        return Parsed::More;
    }
    let zero = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let Some(star) = b[..zero].iter().position(|&c| c == b'*') else { return Parsed::Error };
    let Some(eol) = find_crlf(b, star) else { return Parsed::More };
    let argc = atoi(&b[star + 1..eol]);
    if argc <= 0 || argc > 1024 {
        return Parsed::Error;
    }
    let mut p = eol + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        if p >= b.len() || b[p] == 0 {
            return Parsed::More;
        }
        if b[p] != b'$' {
            return Parsed::Error;
        }
        let Some(eol) = find_crlf(b, p) else { return Parsed::More };
        let len = atoi(&b[p + 1..eol]);
        if len <= 0 || len > 1024 {
            return Parsed::Error;
        }
        let start = eol + 2;
        let len = len as usize;
        if start + len + 2 > b.len() {
            return Parsed::More;
        }
        argv.push(b[start..start + len].to_vec());
        p = start + len;
        if &b[p..p + 2] != b"\r\n" {
            return Parsed::Error;
        }
        p += 2;
    }
    Parsed::Command(argv)
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn poll(fd: RawFd, events: i16, timeout_ms: c_int) -> bool {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// Writes all of `buf`, waiting up to the send timeout whenever the socket is full.
pub(super) fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer to the client's socket.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const _, buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error().kind();
        let again = matches!(err, std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted);
        if n < 0 && again && poll(fd, libc::POLLOUT, SEND_TIMEOUT_MS) {
            continue;
        }
        return;
    }
}

/// Reads what the client sent, waiting for it; 0 when the connection is closed or failed.
pub(super) fn read_some(fd: RawFd, buf: &mut [u8]) -> usize {
    if fd < 0 {
        return 0;
    }
    loop {
        // SAFETY: reading into a valid buffer from the client's socket.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut _, buf.len()) };
        if n > 0 {
            return n as usize;
        }
        if n == 0 {
            return 0;
        }
        let err = std::io::Error::last_os_error().kind();
        match err {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => {
                poll(fd, libc::POLLIN, 1000);
            }
            _ => return 0,
        }
    }
}
