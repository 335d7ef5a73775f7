//! The replication settings the master side acts on, read from the configuration at each
//! tick (so CONFIG SET applies within 100 ms).

/// Replication settings, read from the config at each tick.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `repl-backlog-size`.
    pub backlog_size: usize,
    /// `repl-backlog-ttl` (s).
    pub backlog_ttl: u64,
    /// `repl-ping-replica-period` (s).
    pub ping_period: u64,
    /// `repl-timeout` (s).
    pub timeout: u64,
    /// `repl-diskless-sync`.
    pub diskless: bool,
    /// `repl-diskless-sync-delay` (s).
    pub diskless_delay: u64,
    /// `repl-diskless-sync-max-replicas`.
    pub diskless_max: usize,
    /// `client-output-buffer-limit` replica class: hard, soft bytes, soft seconds.
    pub obuf: (u64, u64, u64),
    /// `min-replicas-to-write`.
    pub min_replicas: u64,
    /// `min-replicas-max-lag` (s).
    pub min_lag: u64,
}

impl Settings {
    /// From the configuration.
    pub fn from_config(cfg: &crate::config::Config) -> Settings {
        let num = |k: &str, d: u64| cfg.get(k).and_then(|v| v.parse::<i64>().ok()).map_or(d, |v| v.max(0) as u64);
        Settings {
            backlog_size: num("repl-backlog-size", 1 << 20).max(16 * 1024) as usize,
            backlog_ttl: num("repl-backlog-ttl", 3600),
            ping_period: num("repl-ping-replica-period", 10).max(1),
            timeout: num("repl-timeout", 60).max(1),
            diskless: cfg.get("repl-diskless-sync") != Some("no"),
            diskless_delay: num("repl-diskless-sync-delay", 5),
            diskless_max: num("repl-diskless-sync-max-replicas", 0) as usize,
            obuf: replica_obuf_limit(cfg.get("client-output-buffer-limit").unwrap_or("")),
            min_replicas: num("min-replicas-to-write", 0),
            min_lag: num("min-replicas-max-lag", 10),
        }
    }
}

/// The replica class of `client-output-buffer-limit` (default 256mb 64mb 60).
pub fn replica_obuf_limit(text: &str) -> (u64, u64, u64) {
    let words: Vec<&str> = text.split_whitespace().collect();
    for w in words.chunks(4) {
        if w.len() == 4 && (w[0].eq_ignore_ascii_case("replica") || w[0].eq_ignore_ascii_case("slave")) {
            let mem = |s: &str| crate::config::registry::parse_memory(s).unwrap_or(0);
            return (mem(w[1]), mem(w[2]), w[3].parse().unwrap_or(0));
        }
    }
    (256 << 20, 64 << 20, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obuf_limit_parsing() {
        assert_eq!(
            replica_obuf_limit("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
            (268435456, 67108864, 60)
        );
        assert_eq!(replica_obuf_limit("replica 1mb 0 0"), (1 << 20, 0, 0));
        assert_eq!(replica_obuf_limit(""), (256 << 20, 64 << 20, 60));
    }
}
