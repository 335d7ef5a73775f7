//! The directive registry: lookup by name or alias, value validation with Redis's messages, and
//! the typed effect of the directives slotcore acts on.

use super::{directives, Config, Enable, LogLevel};
use hashbrown::HashMap;
use std::sync::OnceLock;

/// How a directive's value is checked.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// yes / no
    Bool,
    /// An integer.
    Int,
    /// A memory amount (`1gb`, `512mb`, `100k`, plain bytes).
    Memory,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Any text (possibly several words).
    Str,
}

/// One directive.
#[derive(Debug)]
pub struct Directive {
    /// Canonical name.
    pub name: &'static str,
    /// Default value as CONFIG GET shows it.
    pub default: &'static str,
    /// Value kind.
    pub kind: Kind,
    /// Settable with CONFIG SET.
    pub mutable: bool,
    /// slotcore acts on it.
    pub acted: bool,
}

fn table() -> &'static HashMap<&'static str, &'static Directive> {
    static T: OnceLock<HashMap<&'static str, &'static Directive>> = OnceLock::new();
    T.get_or_init(|| directives::DIRECTIVES.iter().map(|d| (d.name, d)).collect())
}

/// Whether `name` is one of Redis's hidden directives (testing aids that CONFIG GET shows
/// only when asked by exact name).
pub fn is_hidden(name: &str) -> bool {
    directives::HIDDEN.contains(&name)
}

/// Every directive.
pub fn all() -> impl Iterator<Item = &'static Directive> {
    directives::DIRECTIVES.iter()
}

/// Looks a directive up by name or alias, case-insensitively.
pub fn find(name: &str) -> Option<&'static Directive> {
    let lower = name.to_ascii_lowercase();
    let canon = directives::ALIASES.iter().find(|(a, _)| *a == lower).map_or(lower.as_str(), |(_, c)| *c);
    table().get(canon).copied()
}

/// Parses a memory value like Redis's `memtoull`: digits with an optional k/kb/m/mb/g/gb suffix.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// `save`'s arguments as Redis's `setConfigSaveOption` takes them: `""` alone clears the
/// points; one non-empty argument is split on spaces (`--save "3600 1 300 100"`); then
/// (seconds >= 1, changes >= 0) pairs, printed back as numbers (`getConfigSaveOption`).
fn normalize_save(args: &[String]) -> Result<String, String> {
    let split: Vec<String>;
    let args = match args {
        // `save ""`, and a bare `save` line (no arguments: an even count, as Redis accepts it).
        [] => return Ok(String::new()),
        [one] if one.is_empty() => return Ok(String::new()),
        [one] => {
            split = one.split_whitespace().map(String::from).collect();
            &split[..]
        }
        _ => args,
    };
    const INVALID: &str = "Invalid save parameters";
    if args.len() % 2 != 0 {
        return Err(INVALID.into());
    }
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        // strtoll: leading blanks and a sign are accepted, nothing may follow the digits.
        let t = a.trim_start();
        let v: i64 = t.strip_prefix('+').unwrap_or(t).parse().map_err(|_| INVALID.to_string())?;
        if (i % 2 == 0 && v < 1) || (i % 2 == 1 && v < 0) {
            return Err(INVALID.into());
        }
        out.push(v.to_string());
    }
    Ok(out.join(" "))
}

/// Validates and normalises a directive's arguments into the text CONFIG GET shows.
/// The error is Redis's reason text (e.g. "argument couldn't be parsed into an integer").
pub fn normalize(d: &Directive, args: &[String]) -> Result<String, String> {
    match d.name {
        // Redis's class letters (validated here; `apply` keeps the flags and shows them in
        // Redis's normalised order).
        "notify-keyspace-events" => {
            if args.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            return match crate::cmd::notify::parse_flags(&args[0]) {
                Some(_) => Ok(args[0].clone()),
                None => Err(crate::cmd::notify::BAD_CLASS.into()),
            };
        }
        // Multi-word values.
        "save" => return normalize_save(args),
        "shutdown-on-sigint" | "shutdown-on-sigterm" => return normalize_shutdown_flags(args),
        // Validated here; `apply` merges the classes given into the current three.
        "client-output-buffer-limit" => {
            let given = args.join(" ");
            return crate::memory::obuf::merge("", &given).map(|_| given).map_err(String::from);
        }
        "replicaof" => return normalize_replicaof(args),
        "latency-tracking-info-percentiles" => return normalize_percentiles(args),
        "oom-score-adj-values" => {
            // A config file's single quoted argument holds the three words (Redis splits it).
            let split;
            let words = match args {
                [one] if !one.is_empty() => {
                    split = crate::protocol::request::split_args(one.as_bytes())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|w| String::from_utf8_lossy(&w).into_owned())
                        .collect::<Vec<_>>();
                    &split[..]
                }
                _ => args,
            };
            let v = crate::oom_score_adj::parse_values(words)?;
            return Ok(format!("{} {} {}", v[0], v[1], v[2]));
        }
        "bind" | "shard-cores" => {
            if d.name == "shard-cores" && parse_cpu_list(&args.join(",")).is_none() {
                return Err("argument must be a CPU list like 0-3,6".into());
            }
            return Ok(args.join(" "));
        }
        _ => {}
    }
    if args.len() != 1 {
        return Err("wrong number of arguments".into());
    }
    let v = &args[0];
    match d.kind {
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int if d.name == "unixsocketperm" => match u32::from_str_radix(v, 8) {
            Ok(n) if n <= 0o777 => Ok(format!("{n:o}")),
            Ok(_) => Err("argument must be between 0 and 777 inclusive".into()),
            Err(_) => Err("argument couldn't be parsed as an octal number".into()),
        },
        Kind::Int => {
            v.parse::<i64>().map(|n| n.to_string()).map_err(|_| "argument couldn't be parsed into an integer".into())
        }
        Kind::Memory => {
            if d.name == "maxmemory-clients" && v.len() > 1 && v.ends_with('%') {
                // Redis's percent form: a non-negative integer, at most 100.
                return match v[..v.len() - 1].parse::<i64>() {
                    Ok(p) if (0..=100).contains(&p) => Ok(format!("{p}%")),
                    Ok(p) if p > 100 => Err("percentage argument must be less or equal to 100".into()),
                    _ => Err("argument must be a memory or percent value".into()),
                };
            }
            let what = if d.name == "maxmemory-clients" { "memory or percent" } else { "memory" };
            parse_memory(v).map(|n| n.to_string()).ok_or_else(|| format!("argument must be a {what} value"))
        }
        Kind::Enum(words) => {
            let l = v.to_ascii_lowercase();
            if words.contains(&l.as_str()) {
                Ok(l)
            } else {
                Err(format!("argument(s) must be one of the following: {}", words.join(", ")))
            }
        }
        Kind::Str => Ok(v.clone()),
    }
}

/// `replicaof <host> <port>` (or `no one`) with Redis's checks of the port.
fn normalize_replicaof(args: &[String]) -> Result<String, String> {
    let [host, port] = args else { return Err("Bad directive or wrong number of arguments".into()) };
    let no_one = host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one");
    if !no_one && !matches!(port.parse::<i64>(), Ok(p) if (0..=65535).contains(&p)) {
        return Err("Invalid master port".into());
    }
    Ok(args.join(" "))
}

/// The words of `shutdown-on-sigint`/`-sigterm` with their bits, in Redis's table order.
const SHUTDOWN_FLAGS: [(&str, u8); 5] = [("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)];

/// `shutdown-on-sigint`/`-sigterm`: any of the flag words, as separate arguments or one
/// spaced argument, shown as Redis shows them (table order, `default` when none).
/// `latency-tracking-info-percentiles`: numbers within 0..=100 (none is allowed), shown as
/// Redis prints them (`50 99 99.9`).
fn normalize_percentiles(args: &[String]) -> Result<String, String> {
    let mut out = Vec::new();
    for w in args.iter().flat_map(|a| a.split_whitespace()) {
        let p: f64 = w.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !p.is_finite() {
            return Err("Invalid latency-tracking-info-percentiles parameters".into());
        }
        if !(0.0..=100.0).contains(&p) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        out.push(p.to_string());
    }
    Ok(out.join(" "))
}

fn normalize_shutdown_flags(args: &[String]) -> Result<String, String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let bad = || {
        let names: Vec<&str> = SHUTDOWN_FLAGS.iter().map(|(n, _)| *n).collect();
        format!("argument(s) must be one of the following: {}", names.join(", "))
    };
    if words.is_empty() {
        return Err(bad());
    }
    let mut bits = 0u8;
    for w in words {
        let (_, b) = SHUTDOWN_FLAGS.iter().find(|(n, _)| n.eq_ignore_ascii_case(w)).ok_or_else(bad)?;
        bits |= b;
    }
    if bits & 1 != 0 && bits & 2 != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    if bits == 0 {
        return Ok("default".into());
    }
    let names: Vec<&str> = SHUTDOWN_FLAGS.iter().filter(|(_, b)| *b != 0 && bits & b == *b).map(|(n, _)| *n).collect();
    Ok(names.join(" "))
}

/// Parses `0-3,6` into CPU ids.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Applies a normalised value to the typed settings (for directives slotcore acts on) and
/// records it for CONFIG GET. Range checks that Redis does are done here.
pub fn apply(cfg: &mut Config, d: &Directive, value: &str) -> Result<(), String> {
    let int = || value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string());
    let range = |n: i64, lo: i64, hi: i64| {
        if n < lo || n > hi {
            Err(format!("argument must be between {lo} and {hi} inclusive"))
        } else {
            Ok(n)
        }
    };
    let yes = value == "yes";
    match d.name {
        "bind" => cfg.bind = value.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
        "port" => cfg.port = range(int()?, 0, 65535)? as u16,
        "tls-port" | "cluster-announce-tls-port" => {
            range(int()?, 0, 65535)?;
        }
        // Encoding thresholds (applied by `storage::thresholds`), Redis's size_t range.
        "hash-max-listpack-entries" | "zset-max-listpack-entries" | "set-max-intset-entries" => {
            range(int()?, 0, i64::MAX)?;
        }
        // Redis's `isValidAnnouncedHostname`.
        "cluster-announce-hostname" if value.len() >= 256 => {
            return Err("Hostnames must be less than 256 characters".into());
        }
        "cluster-announce-hostname" if !value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') => {
            return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
        }
        "proc-title-template" if !crate::proctitle::valid(value) => {
            return Err("template format is invalid or contains unknown variables".into());
        }
        "protected-mode" => cfg.protected_mode = yes,
        "requirepass" => {
            cfg.requirepass = if value.is_empty() { None } else { Some(value.as_bytes().to_vec()) };
            crate::acl::set_default_password(cfg.requirepass.as_deref());
        }
        "acl-pubsub-default" => crate::acl::set_pubsub_default(value == "allchannels"),
        "acllog-max-len" => crate::acl::log::set_max_len(range(int()?, 0, i32::MAX as i64)? as usize),
        "timeout" => cfg.timeout = range(int()?, 0, i32::MAX as i64)? as u64,
        "tcp-backlog" => cfg.tcp_backlog = range(int()?, 0, i32::MAX as i64)? as i32,
        "tcp-keepalive" => cfg.tcp_keepalive = range(int()?, 0, i32::MAX as i64)? as u32,
        "maxclients" => cfg.maxclients = range(int()?, 1, u32::MAX as i64)? as usize,
        "daemonize" => cfg.daemonize = yes,
        "pidfile" => cfg.pidfile = value.to_string(),
        "unixsocket" => cfg.unixsocket = value.to_string(),
        "unixsocketperm" => cfg.unixsocketperm = u32::from_str_radix(value, 8).unwrap_or(0),
        "logfile" => cfg.logfile = value.to_string(),
        "loglevel" => {
            cfg.loglevel = match value {
                "debug" => LogLevel::Debug,
                "verbose" => LogLevel::Verbose,
                "warning" => LogLevel::Warning,
                _ => LogLevel::Notice,
            }
        }
        "dir" => cfg.dir = value.to_string(),
        "databases" => cfg.databases = range(int()?, 1, i32::MAX as i64)? as usize,
        "proto-max-bulk-len" => cfg.proto_max_bulk_len = range(int()?, 1024 * 1024, i64::MAX)?,
        "client-query-buffer-limit" => {
            cfg.client_query_buffer_limit = range(int()?, 1024 * 1024, i64::MAX)? as u64;
        }
        "hz" => cfg.hz = range(int()?, 0, i32::MAX as i64)?.clamp(1, 500) as u32,
        "watchdog-period" => {
            // As Redis's `applyWatchdogPeriod`: a period under twice the cron's interval is
            // raised to it (CONFIG GET shows the raised value); `crate::watchdog` applies it.
            let ms = range(int()?, 0, i32::MAX as i64)?;
            let min = 2 * (1000 / i64::from(cfg.hz.max(1)));
            let ms = if ms > 0 { ms.max(min) } else { 0 };
            cfg.values.insert(d.name, ms.to_string());
            return Ok(());
        }
        "always-show-logo" => cfg.always_show_logo = yes,
        "enable-debug-command" => {
            cfg.enable_debug_command = match value {
                "yes" => Enable::Yes,
                "local" => Enable::Local,
                _ => Enable::No,
            }
        }
        "enable-module-command" => {
            cfg.enable_module_command = match value {
                "yes" => Enable::Yes,
                "local" => Enable::Local,
                _ => Enable::No,
            }
        }
        "enable-protected-configs" => {
            cfg.enable_protected_configs = match value {
                "yes" => Enable::Yes,
                "local" => Enable::Local,
                _ => Enable::No,
            }
        }
        "slowlog-log-slower-than" => cfg.slowlog_log_slower_than = int()?,
        "slowlog-max-len" => cfg.slowlog_max_len = range(int()?, 0, i64::MAX)? as usize,
        "latency-monitor-threshold" => cfg.latency_monitor_threshold = range(int()?, 0, i64::MAX)? as u64,
        "latency-tracking" => cfg.latency_tracking = yes,
        "latency-tracking-info-percentiles" => {
            cfg.latency_percentiles = value.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        }
        "list-max-listpack-size" => cfg.list_max_listpack_size = range(int()?, i32::MIN as i64, i32::MAX as i64)?,
        "cluster-enabled" => cfg.cluster_enabled = yes,
        "shards" => cfg.shards = range(int()?, 0, 1024)? as usize,
        "shard-cores" => cfg.shard_cores = parse_cpu_list(&value.replace(' ', ",")).unwrap_or_default(),
        "bus-core" => {
            cfg.bus_core = if value.is_empty() { None } else { Some(range(int()?, 0, 4096)? as usize) };
        }
        "pin-cores" => cfg.pin_cores = yes,
        "busy-poll-us" => cfg.busy_poll_us = range(int()?, 0, 1_000_000)? as u64,
        "client-output-buffer-limit" => {
            let current = cfg.get(d.name).unwrap_or("").to_string();
            let merged = crate::memory::obuf::merge(&current, value)?;
            cfg.values.insert(d.name, merged);
            return Ok(());
        }
        "notify-keyspace-events" => {
            let f = crate::cmd::notify::parse_flags(value).ok_or_else(|| crate::cmd::notify::BAD_CLASS.to_string())?;
            cfg.notify_keyspace_events = f;
            cfg.values.insert(d.name, crate::cmd::notify::flags_to_string(f));
            return Ok(());
        }
        _ => {}
    }
    cfg.values.insert(d.name, value.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_values() {
        assert_eq!(find("slaveof").map(|d| d.name), Some("replicaof"));
        assert_eq!(find("PORT").map(|d| d.name), Some("port"));
        assert!(find("bogus").is_none());
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100k"), Some(100_000));
        assert_eq!(parse_memory("10x"), None);
        let maxmem = find("maxmemory").unwrap();
        assert_eq!(normalize(maxmem, &["2mb".into()]), Ok("2097152".into()));
        let port = find("port").unwrap();
        assert_eq!(normalize(port, &["abc".into()]), Err("argument couldn't be parsed into an integer".into()));
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
    }

    #[test]
    fn shutdown_flags_as_redis_shows_them() {
        let d = find("shutdown-on-sigint").unwrap();
        let n = |a: &[&str]| normalize(d, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["nosave", "force", "now"]), Ok("nosave now force".into()));
        assert_eq!(n(&["nosave force"]), Ok("nosave force".into()));
        assert_eq!(n(&["DEFAULT"]), Ok("default".into()));
        assert_eq!(n(&["save", "nosave"]), Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into()));
        let bad = Err("argument(s) must be one of the following: default, save, nosave, now, force".to_string());
        assert_eq!(n(&[]), bad);
        assert_eq!(n(&["later"]), bad);
    }

    #[test]
    fn maxmemory_clients_percent_as_redis() {
        let d = find("maxmemory-clients").unwrap();
        let n = |a: &str| normalize(d, &[a.to_string()]);
        assert_eq!(n("10%"), Ok("10%".into()));
        assert_eq!(n("100%"), Ok("100%".into()));
        assert_eq!(n("200%"), Err("percentage argument must be less or equal to 100".into()));
        assert_eq!(n("x%"), Err("argument must be a memory or percent value".into()));
        assert_eq!(n("%"), Err("argument must be a memory or percent value".into()));
        assert_eq!(n("1mb"), Ok("1048576".into()));
    }

    #[test]
    fn replicaof_needs_a_host_and_a_port() {
        let d = find("slaveof").unwrap();
        let n = |a: &[&str]| normalize(d, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["127.0.0.1", "6380"]), Ok("127.0.0.1 6380".into()));
        assert_eq!(n(&["no", "one"]), Ok("no one".into()));
        assert_eq!(n(&["127.0.0.1", "abc"]), Err("Invalid master port".into()));
        assert_eq!(n(&["127.0.0.1", "65536"]), Err("Invalid master port".into()));
        assert_eq!(n(&["--127.0.0.1"]), Err("Bad directive or wrong number of arguments".into()));
    }

    #[test]
    fn save_forms_are_redis_s() {
        let save = find("save").unwrap();
        let n = |a: &[&str]| normalize(save, &a.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["3600 1 300 100"]), Ok("3600 1 300 100".into()));
        assert_eq!(n(&["3600", "1", "300", "100"]), Ok("3600 1 300 100".into()));
        assert_eq!(n(&[""]), Ok("".into()));
        assert_eq!(n(&[]), Ok("".into()));
        assert_eq!(n(&["0900", "+1"]), Ok("900 1".into()));
        assert_eq!(n(&["60", "0"]), Ok("60 0".into()));
        for bad in [&["0", "1"][..], &["60"], &["60", "-1"], &["60", "1x"], &["3600 1 300"]] {
            assert_eq!(n(bad), Err("Invalid save parameters".into()));
        }
    }
}
