//! Configuration: redis.conf parsing, typed settings, and the CONFIG GET/SET/REWRITE registry.
//!
//! `Config` holds the typed settings slotcore acts on plus the current value of every directive
//! Redis 7.0 knows (`values`, for CONFIG GET/REWRITE). `parse` turns a config file and a
//! redis-server style command line into a `Config`, with Redis's fatal error format.

pub mod directives;
pub mod parse;
pub mod registry;

use std::collections::BTreeMap;

/// `enable-debug-command` / `enable-protected-configs` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enable {
    /// Refused.
    No,
    /// Allowed.
    Yes,
    /// Allowed from loopback clients only.
    Local,
}

impl Enable {
    /// Whether a client at `addr` (`ip:port`, or a unix socket path) may use what this guards
    /// (Redis's `allowProtectedAction`: `local` means a loopback or unix socket connection).
    pub fn allows(self, addr: &str) -> bool {
        match self {
            Enable::Yes => true,
            Enable::Local => addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with('/'),
            Enable::No => false,
        }
    }
}

/// Log verbosity, as Redis's `loglevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `verbose`
    Verbose,
    /// `notice`
    Notice,
    /// `warning`
    Warning,
}

/// The typed settings slotcore acts on. Everything else redis.conf may say is kept verbatim in
/// the registry (for CONFIG GET/REWRITE) and logged once as not acted upon.
#[derive(Debug, Clone)]
pub struct Config {
    /// `bind` addresses.
    pub bind: Vec<String>,
    /// `port`.
    pub port: u16,
    /// `protected-mode`.
    pub protected_mode: bool,
    /// `requirepass`; None = no password.
    pub requirepass: Option<Vec<u8>>,
    /// `timeout` in seconds (0 = never).
    pub timeout: u64,
    /// `tcp-backlog`.
    pub tcp_backlog: i32,
    /// `tcp-keepalive` in seconds.
    pub tcp_keepalive: u32,
    /// `maxclients`.
    pub maxclients: usize,
    /// `daemonize`.
    pub daemonize: bool,
    /// `pidfile`.
    pub pidfile: String,
    /// `unixsocket`: the path of the Unix domain socket clients may connect to ("" = none).
    pub unixsocket: String,
    /// `unixsocketperm`: the socket file's permission bits (0: left to the umask).
    pub unixsocketperm: u32,
    /// `logfile` (empty = stdout).
    pub logfile: String,
    /// `loglevel`.
    pub loglevel: LogLevel,
    /// `dir`.
    pub dir: String,
    /// `databases`.
    pub databases: usize,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: i64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: u64,
    /// `hz`.
    pub hz: u32,
    /// `always-show-logo`.
    pub always_show_logo: bool,
    /// `enable-debug-command`.
    pub enable_debug_command: Enable,
    /// `enable-module-command`.
    pub enable_module_command: Enable,
    /// `enable-protected-configs` (CONFIG SET of `dir` and `dbfilename`).
    pub enable_protected_configs: Enable,
    /// `slowlog-log-slower-than` (µs; negative disables).
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` (ms; 0 disables).
    pub latency_monitor_threshold: u64,
    /// `latency-tracking`: per-command latency histograms.
    pub latency_tracking: bool,
    /// `latency-tracking-info-percentiles`.
    pub latency_percentiles: Vec<f64>,
    /// `list-max-listpack-size` (alias `list-max-ziplist-size`): quicklist node fill.
    pub list_max_listpack_size: i64,
    /// slotcore: number of data shards (0 = one per available core minus the bus core).
    pub shards: usize,
    /// slotcore: explicit CPU list for shards.
    pub shard_cores: Vec<usize>,
    /// slotcore: CPU for the control (bus) core.
    pub bus_core: Option<usize>,
    /// slotcore: pin executors to CPUs.
    pub pin_cores: bool,
    /// slotcore: spin before parking, in microseconds (0 = park at once).
    pub busy_poll_us: u64,
    /// `cluster-enabled`.
    pub cluster_enabled: bool,
    /// `notify-keyspace-events` as class flags (CONFIG GET shows Redis's normalised letters,
    /// which drop `n` next to `A`; the flags keep it, as Redis's do).
    pub notify_keyspace_events: u32,
    /// Current value of every directive (canonical name -> CONFIG GET text).
    pub values: BTreeMap<&'static str, String>,
    /// `user` lines of redis.conf: `[name, rules...]` (loaded into ACL at start-up).
    pub users: Vec<Vec<String>>,
    /// `rename-command old new` lines, in order (applied at start-up).
    pub renamed_commands: Vec<(String, String)>,
    /// `loadmodule path [args]` lines' paths (refused at start-up: see `cmd::module`).
    pub load_modules: Vec<String>,
}

impl Config {
    /// The CONFIG GET text of a directive (canonical name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `watchdog-period` in ms (0 = off), as raised to Redis's minimum when it was set.
    pub fn watchdog_period(&self) -> u64 {
        self.get("watchdog-period").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["*".into(), "-::*".into()],
            port: 6379,
            protected_mode: true,
            requirepass: None,
            timeout: 0,
            tcp_backlog: 511,
            tcp_keepalive: 300,
            maxclients: 10000,
            daemonize: false,
            pidfile: String::new(),
            unixsocket: String::new(),
            unixsocketperm: 0,
            logfile: String::new(),
            loglevel: LogLevel::Notice,
            dir: ".".into(),
            databases: 16,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            hz: 10,
            always_show_logo: false,
            enable_debug_command: Enable::No,
            enable_module_command: Enable::No,
            enable_protected_configs: Enable::No,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            latency_percentiles: vec![50.0, 99.0, 99.9],
            list_max_listpack_size: -2,
            shards: 0,
            shard_cores: Vec::new(),
            bus_core: None,
            pin_cores: true,
            busy_poll_us: 0,
            notify_keyspace_events: 0,
            cluster_enabled: false,
            values: registry::all().map(|d| (d.name, d.default.to_string())).collect(),
            users: Vec::new(),
            renamed_commands: Vec::new(),
            load_modules: Vec::new(),
        }
    }
}
