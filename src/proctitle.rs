//! The process title (`proc-title-template`, `set-proc-title`), as Redis's `setproctitle`
//! shows it in `ps` and `/proc/<pid>/cmdline`.
//!
//! Linux keeps a process's command line in its own memory: the argv strings, followed by the
//! environment strings. [`init`] (at start-up, before any other thread exists) copies the
//! environment strings to the heap and points `environ` at the copies, which frees the whole
//! argv+environment run for the title; [`set`] writes the title there, padded with NULs. When
//! the title overwrites the last byte of the original argv run, the kernel reads the command
//! line up to the title's NUL (its setproctitle rule). The original arguments must be read
//! before (`main` collects them first).
//!
//! Template variables as Redis 7.0's: `{title}` (argv[0]), `{listen-addr}` (first bind
//! address and port), `{server-mode}` (`[cluster]` or empty), `{config-file}`, `{port}`,
//! `{tls-port}`, `{unixsocket}`; `{{` is a literal `{`; the result is trimmed of spaces.

use crate::config::Config;
use std::sync::Mutex;

/// The writable run of memory the kernel shows as the command line.
#[derive(Clone, Copy)]
struct Area {
    start: usize,
    len: usize,
}

static AREA: Mutex<Option<Area>> = Mutex::new(None);
static ARGV0: Mutex<String> = Mutex::new(String::new());

extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Fields 48-51 of `/proc/self/stat`: arg_start, arg_end, env_start, env_end.
fn command_line_bounds() -> Option<(usize, usize, usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<usize> = rest.split_whitespace().skip(45).take(4).filter_map(|v| v.parse().ok()).collect();
    match f[..] {
        [a, b, c, d] if a < b && b <= c && c <= d => Some((a, b, c, d)),
        _ => None,
    }
}

/// Prepares the title area. Call once, first thing in `main`, while the process has one
/// thread; `argv0` is the program name as executed.
pub fn init(argv0: &str) {
    if let Ok(mut a) = ARGV0.lock() {
        *a = argv0.to_string();
    }
    let Some((arg_start, arg_end, env_start, env_end)) = command_line_bounds() else { return };
    // SAFETY: single-threaded start-up; `environ` is a NULL-terminated array of C strings,
    // each duplicated with strdup before the array is swapped for the copies (leaked: they
    // live as long as the process, as the originals did).
    let end = unsafe {
        let mut copies: Vec<*mut libc::c_char> = Vec::new();
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let dup = libc::strdup(*p);
            if dup.is_null() {
                return;
            }
            copies.push(dup);
            p = p.add(1);
        }
        copies.push(std::ptr::null_mut());
        environ = Box::leak(copies.into_boxed_slice()).as_mut_ptr();
        // The environment strings follow the arguments directly on Linux; use them only then.
        if env_start == arg_end || env_start == arg_end + 1 {
            env_end
        } else {
            arg_end
        }
    };
    if let Ok(mut a) = AREA.lock() {
        *a = Some(Area { start: arg_start, len: end - arg_start });
    }
}

/// Expands `template` (None: a malformed template or an unknown variable).
pub fn expand(template: &str, title: &str, cfg: &Config, config_file: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return None;
        }
        if let Some(r) = after.strip_prefix('{') {
            out.push('{');
            rest = r;
            continue;
        }
        let close = after.find('}')?;
        let tls_port = cfg.get("tls-port").unwrap_or("0");
        let value = match &after[..close] {
            "title" => title.to_string(),
            "listen-addr" => {
                let port = if cfg.port != 0 { cfg.port.to_string() } else { tls_port.to_string() };
                if port != "0" {
                    format!("{}:{}", cfg.bind.first().map(String::as_str).unwrap_or("*"), port)
                } else {
                    format!("unixsocket:{}", cfg.get("unixsocket").unwrap_or(""))
                }
            }
            "server-mode" => if cfg.cluster_enabled { "[cluster]" } else { "" }.to_string(),
            "config-file" => if config_file.is_empty() { "-" } else { config_file }.to_string(),
            "port" => cfg.port.to_string(),
            "tls-port" => tls_port.to_string(),
            "unixsocket" => cfg.get("unixsocket").unwrap_or("").to_string(),
            _ => return None,
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out.trim_matches(' ').to_string())
}

/// Redis's check of a template: it expands, to something not empty.
pub fn valid(template: &str) -> bool {
    expand(template, "", &Config::default(), "").is_some_and(|t| !t.is_empty())
}

/// Sets the title from `cfg`'s template (nothing with `set-proc-title no`, or before [`init`]).
pub fn apply(cfg: &Config, config_file: &str) {
    if cfg.get("set-proc-title") == Some("no") {
        return;
    }
    let argv0 = ARGV0.lock().map(|a| a.clone()).unwrap_or_default();
    let template = cfg.get("proc-title-template").unwrap_or("{title} {listen-addr} {server-mode}");
    if let Some(title) = expand(template, &argv0, cfg, config_file) {
        set(&title);
    }
}

/// Writes `title` over the command line (cut to the room there is), padded with NULs.
fn set(title: &str) {
    let Ok(area) = AREA.lock() else { return };
    let Some(a) = *area else { return };
    let n = title.len().min(a.len.saturating_sub(1));
    // SAFETY: `a` is the argv+environment run of this process's initial stack, which nothing
    // reads any more (the arguments were collected and the environment moved in `init`);
    // the lock keeps writers apart.
    unsafe {
        let p = a.start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, a.len - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_as_redis() {
        let cfg = Config { port: 7000, bind: vec!["127.0.0.1".into()], ..Default::default() };
        let t = |tpl: &str| expand(tpl, "/bin/srv", &cfg, "/etc/r.conf");
        assert_eq!(t("{title} {listen-addr} {server-mode}").as_deref(), Some("/bin/srv 127.0.0.1:7000"));
        assert_eq!(t("X {{port} {port} {config-file}").as_deref(), Some("X {port} 7000 /etc/r.conf"));
        assert_eq!(t("{nope}"), None);
        assert_eq!(t("{title"), None);
        assert_eq!(t("a {"), None);
        assert!(valid("{title}x"));
        assert!(!valid("{title}"));
        assert!(!valid("  "));
    }
}
