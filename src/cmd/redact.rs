//! Arguments hidden from SLOWLOG and MONITOR (Redis's `redactClientCommandArgument`):
//! passwords and user definitions are shown as `(redacted)`.

use super::util::eq_ic;
use bytes::Bytes;

/// What a hidden argument is shown as.
pub const REDACTED: &[u8] = b"(redacted)";

/// Configuration parameters whose values are never shown.
const SENSITIVE_CONFIGS: &[&str] = &["masterauth", "masteruser", "requirepass"];

/// The positions of `args` (a whole command line) that are hidden.
fn positions(args: &[Bytes]) -> Vec<usize> {
    let Some(name) = args.first() else { return Vec::new() };
    let sub = |s: &str| args.get(1).is_some_and(|a| eq_ic(a, s));
    let n = args.len();
    if eq_ic(name, "acl") && sub("setuser") && n >= 3 {
        return (2..n).collect();
    }
    if eq_ic(name, "auth") && n <= 3 {
        return (1..n).collect();
    }
    if eq_ic(name, "config") && sub("set") {
        return (2..n)
            .step_by(2)
            .filter(|&j| j + 1 < n && SENSITIVE_CONFIGS.iter().any(|c| eq_ic(&args[j], c)))
            .map(|j| j + 1)
            .collect();
    }
    let mut out = Vec::new();
    if eq_ic(name, "hello") {
        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        let mut j = 2;
        while j < n {
            let more = n - 1 - j;
            if eq_ic(&args[j], "auth") && more >= 2 {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else if eq_ic(&args[j], "setname") && more >= 1 {
                j += 2;
            } else {
                break;
            }
        }
    } else if eq_ic(name, "migrate") {
        // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ...]
        let mut j = 6;
        while j < n {
            let more = n - 1 - j;
            if eq_ic(&args[j], "auth") && more >= 1 {
                out.push(j + 1);
                j += 2;
            } else if eq_ic(&args[j], "auth2") && more >= 2 {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else if eq_ic(&args[j], "copy") || eq_ic(&args[j], "replace") {
                j += 1;
            } else {
                break;
            }
        }
    }
    out
}

/// `args` with their sensitive arguments replaced, or None when nothing is hidden.
pub fn redacted(args: &[Bytes]) -> Option<Vec<Bytes>> {
    let hide = positions(args);
    if hide.is_empty() {
        return None;
    }
    let mut v = args.to_vec();
    for j in hide {
        v[j] = Bytes::from_static(REDACTED);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(line: &str) -> String {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        let v = redacted(&args).unwrap_or(args);
        v.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn hides_secrets_only() {
        assert_eq!(shown("acl setuser u +get +set"), "acl setuser (redacted) (redacted) (redacted)");
        assert_eq!(shown("config set masterauth x maxmemory 1"), "config set masterauth (redacted) maxmemory 1");
        assert_eq!(shown("config set slowlog-log-slower-than 0"), "config set slowlog-log-slower-than 0");
        assert_eq!(shown("auth a b"), "auth (redacted) (redacted)");
        assert_eq!(shown("auth a b c"), "auth a b c");
        assert_eq!(shown("hello 2 AUTH u p SETNAME n"), "hello 2 AUTH (redacted) (redacted) SETNAME n");
        assert_eq!(shown("migrate h 1 key 9 5000"), "migrate h 1 key 9 5000");
        assert_eq!(shown("migrate h 1 key 9 5000 AUTH pw"), "migrate h 1 key 9 5000 AUTH (redacted)");
        assert_eq!(
            shown("migrate h 1 key 9 5000 COPY AUTH2 u pw"),
            "migrate h 1 key 9 5000 COPY AUTH2 (redacted) (redacted)"
        );
        assert_eq!(shown("get k"), "get k");
    }
}
