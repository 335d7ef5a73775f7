//! The instances a Sentinel watches: monitored masters, their replicas and the other Sentinels
//! that watch the same master, with Redis's flags, link timings and failover fields.
//!
//! Invariants: an instance is found by its unique `id` (link tasks hold the id and exit once no
//! instance carries it: an instance that is reset or removed gets a new id). Replicas are keyed
//! by `ip:port`, Sentinels by `ip:port` too, masters by name. All times are Unix milliseconds.

/// Instance flags, with Redis's `SRI_*` meaning.
pub mod flag {
    pub const MASTER: u32 = 1 << 0;
    pub const SLAVE: u32 = 1 << 1;
    pub const SENTINEL: u32 = 1 << 2;
    pub const S_DOWN: u32 = 1 << 3;
    pub const O_DOWN: u32 = 1 << 4;
    pub const MASTER_DOWN: u32 = 1 << 5;
    pub const FAILOVER_IN_PROGRESS: u32 = 1 << 6;
    pub const PROMOTED: u32 = 1 << 7;
    pub const RECONF_SENT: u32 = 1 << 8;
    pub const RECONF_INPROG: u32 = 1 << 9;
    pub const RECONF_DONE: u32 = 1 << 10;
    pub const FORCE_FAILOVER: u32 = 1 << 11;
    pub const SCRIPT_KILL_SENT: u32 = 1 << 12;
    /// A master seen restarting (new run id) while `master-reboot-down-after-period` is set:
    /// down once that long passes without a PONG.
    pub const MASTER_REBOOT: u32 = 1 << 13;
}

/// Sentinel's timings (milliseconds): Redis's defaults, changeable with SENTINEL DEBUG.
pub mod period {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    macro_rules! knobs {
        ($(($stat:ident, $get:ident, $name:literal, $v:expr)),* $(,)?) => {
            $(static $stat: AtomicU64 = AtomicU64::new($v);
              #[doc = concat!("`", $name, "`")]
              pub fn $get() -> u64 { $stat.load(Relaxed) })*
            /// Sets the knob SENTINEL DEBUG calls `name`; false if there is no such knob.
            pub fn set(name: &str, v: u64) -> bool {
                match name.to_ascii_lowercase().as_str() {
                    $($name => { $stat.store(v, Relaxed); true })*
                    _ => false,
                }
            }
            /// Every knob with its SENTINEL DEBUG name, upper-cased as Redis shows them.
            pub fn all() -> Vec<(String, u64)> {
                vec![$(($name.to_ascii_uppercase(), $stat.load(Relaxed))),*]
            }
        };
    }

    knobs!(
        (INFO, info, "info-period", 10_000),
        (PING, ping, "ping-period", 1000),
        (ASK, ask, "ask-period", 1000),
        (PUBLISH, publish, "publish-period", 2000),
        (DEFAULT_DOWN_AFTER, default_down_after, "default-down-after", 30_000),
        (DEFAULT_FAILOVER_TIMEOUT, default_failover_timeout, "default-failover-timeout", 180_000),
        (TILT_TRIGGER, tilt_trigger, "tilt-trigger", 2000),
        (TILT_PERIOD, tilt_period, "tilt-period", 30_000),
        (SLAVE_RECONF_TIMEOUT, slave_reconf_timeout, "slave-reconf-timeout", 10_000),
        (MIN_LINK_RECONNECT, min_link_reconnect, "min-link-reconnect-period", 15_000),
        (ELECTION_TIMEOUT, election_timeout, "election-timeout", 10_000),
        (SCRIPT_MAX_RUNTIME, script_max_runtime, "script-max-runtime", 60_000),
        (SCRIPT_RETRY_DELAY, script_retry_delay, "script-retry-delay", 30_000),
    );

    /// The random spread of failover start times.
    pub const MAX_DESYNC: u64 = 1000;
}

/// The failover state machine's states (`SENTINEL_FAILOVER_STATE_*`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    /// The name SENTINEL MASTER shows in `failover-state`.
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoone => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// An instance's network address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub ip: String,
    pub port: u16,
}

impl Addr {
    /// `ip:port`, the key replicas and Sentinels are stored under.
    pub fn key(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
    /// Whether `host` names the same host (case-insensitive, as Redis compares).
    pub fn same_host(&self, host: &str) -> bool {
        self.ip.eq_ignore_ascii_case(host)
    }
}

/// The state of the command and Pub/Sub connections to one instance.
#[derive(Clone, Debug, Default)]
pub struct LinkState {
    /// The command connection is up.
    pub cc_up: bool,
    pub pc_up: bool,
    pub cc_conn_time: u64,
    pub pc_conn_time: u64,
    pub pc_last_activity: u64,
    /// Time of the oldest PING not answered yet (0 = none pending).
    pub act_ping_time: u64,
    pub last_ping_time: u64,
    /// Last time a PING got an acceptable reply.
    pub last_avail_time: u64,
    /// Last time any reply to PING arrived.
    pub last_pong_time: u64,
    pub pending_commands: u64,
    /// The local address of the command connection (the hello's announced IP).
    pub local_ip: String,
    /// Ask the link task to drop the command connection.
    pub close_cc: bool,
    pub close_pc: bool,
    /// The sockets of the live connections, so that a close request wakes a task waiting on a
    /// read (cleared by the task before it drops the socket).
    pub cc_fd: Option<i32>,
    pub pc_fd: Option<i32>,
}

impl LinkState {
    /// A fresh link, as Redis's `createInstanceLink`.
    pub fn new(now: u64) -> LinkState {
        LinkState { act_ping_time: now, last_avail_time: now, last_pong_time: now, ..Default::default() }
    }

    /// Redis's `instanceLinkCloseConnection`: asks the task of the command (or Pub/Sub)
    /// connection to drop it, and shuts the socket down so a pending read ends now.
    pub fn close(&mut self, pubsub: bool) {
        let fd = if pubsub {
            self.close_pc = self.pc_up;
            self.pc_fd
        } else {
            self.close_cc = self.cc_up;
            self.cc_fd
        };
        if let Some(fd) = fd {
            // SAFETY: `fd` is the socket of a connection whose task still owns it (the task
            // clears the field before dropping the socket, on this same thread).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// One monitored master, replica or other Sentinel.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: u64,
    pub flags: u32,
    /// Masters: their name; replicas: `ip:port`; Sentinels: their run id.
    pub name: String,
    pub addr: Addr,
    pub runid: Option<String>,
    pub link: LinkState,
    pub last_pub_time: u64,
    pub last_hello_time: u64,
    pub last_master_down_reply_time: u64,
    pub s_down_since_time: u64,
    pub o_down_since_time: u64,
    /// When the master was seen restarting (with [`flag::MASTER_REBOOT`]).
    pub master_reboot_since_time: u64,
    pub down_after_period: u64,
    pub info_refresh: u64,
    pub info: String,
    pub role_reported: u32,
    pub role_reported_time: u64,
    pub slave_conf_change_time: u64,
    /// INFO's `master_link_down_since_seconds` in ms; -1000 for a replica whose link never
    /// came up (its INFO says -1), as Redis keeps it.
    pub master_link_down_time: i64,
    pub slave_priority: i64,
    pub replica_announced: i64,
    pub slave_reconf_sent_time: u64,
    pub slave_master_host: Option<String>,
    pub slave_master_port: u16,
    pub slave_master_link_up: bool,
    pub slave_repl_offset: u64,
    /// Sentinels: the leader this Sentinel voted for, and the vote's epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
    /// Commands queued for the link task to send, with what their replies mean.
    pub queued: Vec<(Kind, Vec<Vec<u8>>)>,
}

/// What a command sent on an instance link is, so its reply reaches the right handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Ping,
    Info,
    Publish,
    IsMasterDown,
    /// Replies not looked at (AUTH, CLIENT SETNAME, the SLAVEOF transaction).
    Discard,
}

impl Instance {
    /// A new instance of kind `kind` (a `flag::MASTER|SLAVE|SENTINEL`).
    pub fn new(id: u64, kind: u32, name: String, addr: Addr, down_after: u64, now: u64) -> Instance {
        Instance {
            id,
            flags: kind,
            name,
            addr,
            runid: None,
            link: LinkState::new(now),
            last_pub_time: now,
            last_hello_time: now,
            last_master_down_reply_time: now,
            s_down_since_time: 0,
            o_down_since_time: 0,
            master_reboot_since_time: 0,
            down_after_period: down_after,
            info_refresh: 0,
            info: String::new(),
            role_reported: kind & (flag::MASTER | flag::SLAVE),
            role_reported_time: now,
            slave_conf_change_time: now,
            master_link_down_time: 0,
            slave_priority: 100,
            replica_announced: 1,
            slave_reconf_sent_time: 0,
            slave_master_host: None,
            slave_master_port: 0,
            slave_master_link_up: false,
            slave_repl_offset: 0,
            leader: None,
            leader_epoch: 0,
            queued: Vec::new(),
        }
    }

    /// "master", "slave" or "sentinel", as events print it.
    pub fn type_name(&self) -> &'static str {
        if self.flags & flag::MASTER != 0 {
            "master"
        } else if self.flags & flag::SLAVE != 0 {
            "slave"
        } else {
            "sentinel"
        }
    }

    /// Whether the command link is down.
    pub fn disconnected(&self) -> bool {
        // As Redis's `link->disconnected`: masters and replicas need both connections.
        !self.link.cc_up || (self.flags & flag::SENTINEL == 0 && !self.link.pc_up)
    }

    /// Redis's `sentinelRedisInstanceNoDownFor`.
    pub fn no_down_for(&self, ms: u64, now: u64) -> bool {
        let most_recent = self.s_down_since_time.max(self.o_down_since_time);
        most_recent == 0 || now.saturating_sub(most_recent) > ms
    }

    /// The comma-separated flags SENTINEL MASTER(S)/REPLICAS show.
    pub fn flags_text(&self) -> String {
        let names: [(u32, &str); 13] = [
            (flag::S_DOWN, "s_down"),
            (flag::O_DOWN, "o_down"),
            (flag::MASTER, "master"),
            (flag::SLAVE, "slave"),
            (flag::SENTINEL, "sentinel"),
            (0, "disconnected"),
            (flag::MASTER_DOWN, "master_down"),
            (flag::FAILOVER_IN_PROGRESS, "failover_in_progress"),
            (flag::PROMOTED, "promoted"),
            (flag::RECONF_SENT, "reconf_sent"),
            (flag::RECONF_INPROG, "reconf_inprog"),
            (flag::RECONF_DONE, "reconf_done"),
            (flag::FORCE_FAILOVER, "force_failover"),
        ];
        let mut out: Vec<&str> = Vec::new();
        for (f, n) in names {
            let on = if f == 0 { self.disconnected() } else { self.flags & f != 0 };
            if on {
                out.push(n);
            }
        }
        if self.flags & flag::SCRIPT_KILL_SENT != 0 {
            out.push("script_kill_sent");
        }
        out.join(",")
    }
}

/// A monitored master with its replicas, the other Sentinels and the failover fields.
#[derive(Clone, Debug)]
pub struct Master {
    pub inst: Instance,
    pub quorum: u32,
    pub failover_timeout: u64,
    pub parallel_syncs: u32,
    pub auth_pass: Option<String>,
    pub auth_user: Option<String>,
    pub notification_script: Option<String>,
    pub client_reconfig_script: Option<String>,
    pub master_reboot_down_after_period: u64,
    pub config_epoch: u64,
    /// This Sentinel's vote for the failover leader of this master, and its epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
    pub failover_epoch: u64,
    pub failover_state: FailoverState,
    pub failover_state_change_time: u64,
    pub failover_start_time: u64,
    pub failover_delay_logged: u64,
    /// The `ip:port` key of the replica being promoted.
    pub promoted: Option<String>,
    pub replicas: Vec<Instance>,
    pub sentinels: Vec<Instance>,
    /// `rename-command` pairs (original name, renamed).
    pub renamed: Vec<(String, String)>,
}

impl Master {
    /// A new master record with Redis's defaults.
    pub fn new(inst: Instance, quorum: u32) -> Master {
        Master {
            inst,
            quorum,
            failover_timeout: period::default_failover_timeout(),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
            notification_script: None,
            client_reconfig_script: None,
            master_reboot_down_after_period: 0,
            config_epoch: 0,
            leader: None,
            leader_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            failover_delay_logged: 0,
            promoted: None,
            replicas: Vec::new(),
            sentinels: Vec::new(),
            renamed: Vec::new(),
        }
    }

    /// The master's name.
    pub fn name(&self) -> &str {
        &self.inst.name
    }

    /// Redis's `sentinelGetCurrentMasterAddress`: the promoted replica's address once the
    /// failover reached reconfiguration, else the master's.
    pub fn current_addr(&self) -> Addr {
        if self.inst.flags & flag::FAILOVER_IN_PROGRESS != 0 && self.failover_state >= FailoverState::ReconfSlaves {
            if let Some(p) = self.promoted_replica() {
                return p.addr.clone();
            }
        }
        self.inst.addr.clone()
    }

    /// The replica being promoted, if any.
    pub fn promoted_replica(&self) -> Option<&Instance> {
        let key = self.promoted.as_ref()?;
        self.replicas.iter().find(|r| &r.name == key)
    }

    /// A replica by `ip:port`.
    pub fn replica_mut(&mut self, key: &str) -> Option<&mut Instance> {
        self.replicas.iter_mut().find(|r| r.name == key)
    }

    /// Redis's `sentinelMasterLooksSane`.
    pub fn looks_sane(&self, now: u64) -> bool {
        self.inst.flags & flag::MASTER != 0
            && self.inst.role_reported == flag::MASTER
            && self.inst.flags & (flag::S_DOWN | flag::O_DOWN) == 0
            && now.saturating_sub(self.inst.info_refresh) < period::info() * 2
    }

    /// The name the instance knows `cmd` under (`rename-command`).
    pub fn map_command(&self, cmd: &str) -> String {
        self.renamed
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(cmd))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| cmd.to_string())
    }
}
