//! Argument parsing helpers shared by the command families.

use super::errors;
use crate::protocol::request::string2ll;
use crate::protocol::Reply;

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Parses an i64 like Redis's `getLongLongFromObject` (strict: no spaces, no `+`).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    string2ll(arg)
}

/// Parses an i64 or returns Redis's "not an integer" error reply.
pub fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::err(errors::NOT_INTEGER))
}

/// Parses a float like Redis's `getLongDoubleFromObject`/`strtold`: no spaces, accepts `inf`,
/// rejects `nan`.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    // Plain digits (scores such as `0` or `12`): exact as an integer below 2^53.
    if (1..=15).contains(&arg.len()) && arg.iter().all(u8::is_ascii_digit) {
        return Some(arg.iter().fold(0u64, |n, &d| n * 10 + (d - b'0') as u64) as f64);
    }
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let named = |names: &[&str]| names.iter().any(|n| s.eq_ignore_ascii_case(n));
    let v: f64 = if named(&["inf", "+inf", "infinity", "+infinity"]) {
        f64::INFINITY
    } else if named(&["-inf", "-infinity"]) {
        f64::NEG_INFINITY
    } else {
        s.parse().ok()?
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// One page of a stable scan over a big collection: `items` are (hash, item) pairs of the
/// elements whose hash is above the cursor. Returns the next cursor (0 = done) and the page,
/// sorted by hash, at least `count` long (and at least 1/64 of `total`, so a full scan stays
/// linear), never splitting elements with equal hashes. Every element present for the whole
/// scan is returned at least once, whatever happens to the collection in between.
pub fn scan_page<T>(mut items: Vec<(u64, T)>, count: usize, total: usize) -> (u64, Vec<T>) {
    items.sort_unstable_by_key(|(h, _)| *h);
    let want = count.max(total / 64).max(1);
    let mut end = want.min(items.len());
    while end < items.len() && end > 0 && items[end].0 == items[end - 1].0 {
        end += 1;
    }
    let next = if end >= items.len() { 0 } else { items[end - 1].0 };
    items.truncate(end);
    (next, items.into_iter().map(|(_, t)| t).collect())
}

/// Key indexes of a `numkeys key [key ...]` command whose numkeys is at `at`; `zero` is the
/// error text for numkeys < 1 (Redis words it differently per command).
pub fn numkeys_at(args: &[bytes::Bytes], at: usize, zero: &str) -> Result<Vec<usize>, Reply> {
    let n = match parse_i64(&args[at]) {
        Some(n) if n > 0 => n as usize,
        Some(_) => return Err(Reply::error(zero.to_string())),
        None if zero.starts_with("ERR numkeys") => return Err(Reply::error(zero.to_string())),
        None => return Err(Reply::err(errors::NOT_INTEGER)),
    };
    if n > args.len() - at - 1 {
        return Err(Reply::err(if zero.starts_with("ERR numkeys") {
            "ERR Number of keys can't be greater than number of args"
        } else {
            errors::SYNTAX
        }));
    }
    Ok((at + 1..at + 1 + n).collect())
}

/// Glob matching as Redis's `stringmatchlen` (`*`, `?`, `[...]`, `[^...]`, ranges, `\` escapes).
///
/// Like Redis 7.0, a `*` whose rest of pattern matches nowhere in the rest of the string stops
/// every earlier `*` from trying longer matches, so nested stars stay polynomial.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    glob(pattern, s, nocase, 0, &mut false)
}

fn glob(mut p: &[u8], mut s: &[u8], nocase: bool, depth: usize, skip_longer: &mut bool) -> bool {
    if depth > 1000 {
        return false;
    }
    let lower = |c: u8| if nocase { c.to_ascii_lowercase() } else { c };
    while !p.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..=s.len() {
                    if glob(&p[1..], &s[i..], nocase, depth + 1, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                }
                // The rest matches nowhere after here: longer matches of earlier stars
                // cannot help either.
                *skip_longer = true;
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                if s.is_empty() {
                    return false;
                }
                p = &p[1..];
                let not = !p.is_empty() && p[0] == b'^';
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if lower(p[0]) == lower(s[0]) {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut a, mut b) = (lower(p[0]), lower(p[2]));
                        if a > b {
                            std::mem::swap(&mut a, &mut b);
                        }
                        let c = lower(s[0]);
                        if c >= a && c <= b {
                            matched = true;
                        }
                        p = &p[2..];
                    } else if lower(p[0]) == lower(s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                if p.is_empty() {
                    // Unterminated class: Redis treats the end of pattern as the end of class.
                    return s.is_empty();
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.is_empty() || lower(p[0]) != lower(s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if s.is_empty() || lower(c) != lower(s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"key:*", b"key:1", false));
        assert!(!glob_match(b"key:*", b"kex:1", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"a*b*c", b"axxbyyc", false));
        assert!(!glob_match(b"a*b*c", b"axxbyy", false));
        assert!(glob_match(b"*a*", b"bab", false));
    }

    #[test]
    fn nested_stars_stay_fast() {
        let s = [b'a'; 40];
        let t = std::time::Instant::now();
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &s, false));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"+Infinity"), Some(f64::INFINITY));
        // The plain-digits fast path agrees with the general parse.
        for d in ["0", "007", "12", "999999999999999", "9999999999999999", "123456789012345678901"] {
            assert_eq!(parse_f64(d.as_bytes()), d.parse::<f64>().ok(), "{d}");
        }
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b""), None);
    }
}
