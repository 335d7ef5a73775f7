//! Replies shown to the debugging client in readable form (Redis's `ldbRedisProtocolToHuman`).

use crate::conn::monitor::repr;

/// Appends the RESP reply at the start of `r` in readable form; returns the bytes it used.
pub(super) fn human(out: &mut Vec<u8>, r: &[u8]) -> usize {
    let Some(&kind) = r.first() else { return 0 };
    let Some(eol) = r.windows(2).position(|w| w == b"\r\n") else { return r.len() };
    let head = &r[1..eol];
    let next = eol + 2;
    let count = || std::str::from_utf8(head).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let quoted = |b: &[u8], out: &mut Vec<u8>| {
        let mut s = String::new();
        repr(&mut s, b);
        out.extend_from_slice(s.as_bytes());
    };
    match kind {
        b':' => {
            out.extend_from_slice(head);
            next
        }
        b'$' => {
            let n = count();
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return next;
            }
            let end = (next + n as usize).min(r.len());
            quoted(&r[next..end], out);
            (end + 2).min(r.len())
        }
        b'+' | b'-' => {
            quoted(&r[..eol], out);
            next
        }
        b'*' | b'~' | b'%' => {
            let n = count();
            if kind == b'*' && n < 0 {
                out.extend_from_slice(b"NULL");
                return next;
            }
            let (open, close) = match kind {
                b'*' => (&b"["[..], b"]"),
                b'~' => (&b"~("[..], b")"),
                _ => (&b"{"[..], b"}"),
            };
            out.extend_from_slice(open);
            let mut p = next;
            for j in 0..n {
                p += human(out, &r[p.min(r.len())..]);
                if kind == b'%' {
                    out.extend_from_slice(b" => ");
                    p += human(out, &r[p.min(r.len())..]);
                }
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.extend_from_slice(close);
            p
        }
        b'_' => {
            out.extend_from_slice(b"(null)");
            next
        }
        b'#' => {
            out.extend_from_slice(if head.first() == Some(&b't') { b"#true" } else { b"#false" });
            next
        }
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(head);
            next
        }
        _ => r.len(),
    }
}
