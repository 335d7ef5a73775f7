//! The whole state of one Sentinel: its id and epoch, the monitored masters (with replicas and
//! peer Sentinels), TILT, the subscribers of its event channels, and the config file it keeps
//! in step. Lives in one `Rc<RefCell<State>>` on the Sentinel's single thread; nothing here
//! awaits, so a borrow never spans I/O.
//!
//! Invariants: every state change that Redis persists sets `dirty`, and the caller of a
//! top-level operation calls [`State::after`] which writes sentinel.conf before any reply
//! that depends on it leaves (votes and epochs are on disk before they are announced).

use super::config::{self, Settings};
use super::instance::{flag, period, Addr, FailoverState, Instance, Master};
use futures_channel::mpsc::UnboundedSender;
use std::collections::HashSet;

/// Event levels, as Redis's `LL_*` used by `sentinelEvent`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Verbose,
    Notice,
    Warning,
}

/// Where in a master an instance sits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    Master,
    Replica(usize),
    Sentinel(usize),
}

/// A client subscribed to Sentinel's event channels.
pub struct Subscriber {
    pub client_id: u64,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub tx: UnboundedSender<Vec<u8>>,
}

/// The Sentinel's state.
pub struct State {
    pub settings: Settings,
    pub myid: String,
    pub current_epoch: u64,
    pub masters: Vec<Master>,
    pub announce_ip: Option<String>,
    pub announce_port: u16,
    pub deny_scripts_reconfig: bool,
    pub resolve_hostnames: bool,
    pub announce_hostnames: bool,
    pub sentinel_user: Option<String>,
    pub sentinel_pass: Option<String>,
    pub tilt: bool,
    pub tilt_start_time: u64,
    pub previous_time: u64,
    pub simfailure_flags: u64,
    pub subscribers: Vec<Subscriber>,
    /// Instance ids whose link tasks must be started.
    pub new_links: Vec<u64>,
    /// Command links waiting out their tick, woken early when commands are queued for them
    /// (a vote request must leave at once, as Redis sends it from its timer).
    pub link_wakers: std::collections::HashMap<u64, std::task::Waker>,
    pub next_id: u64,
    pub dirty: bool,
    pub next_client_id: u64,
    pub start_ms: u64,
    pub run_id: String,
    pub shutdown: bool,
    /// Client connections (CLIENT LIST/KILL) and the CLIENT PAUSE state.
    pub clients: super::clients::Clients,
    /// ACL users.
    pub users: super::acl::Users,
    /// Notification and client-reconfig scripts waiting or running.
    pub scripts: super::scripts::Scripts,
}

/// Random 40 hex digits (run ids and Sentinel ids).
pub fn random_hex40() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Milliseconds since the epoch.
pub fn now() -> u64 {
    crate::storage::now_ms()
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| "Invalid argument".to_string())
}

impl State {
    /// An empty Sentinel with `settings`.
    pub fn new(settings: Settings) -> State {
        let t = now();
        let mut users = super::acl::Users::default();
        if let (Some(p), Some(d)) = (&settings.requirepass, users.users.get_mut("default")) {
            // requirepass is the default user's password, as in Redis.
            d.nopass = false;
            d.passwords = vec![super::acl::sha256_hex(p.as_bytes())];
        }
        State {
            settings,
            myid: String::new(),
            current_epoch: 0,
            masters: Vec::new(),
            announce_ip: None,
            announce_port: 0,
            deny_scripts_reconfig: true,
            resolve_hostnames: false,
            announce_hostnames: false,
            sentinel_user: None,
            sentinel_pass: None,
            tilt: false,
            tilt_start_time: 0,
            previous_time: t,
            simfailure_flags: 0,
            subscribers: Vec::new(),
            new_links: Vec::new(),
            link_wakers: std::collections::HashMap::new(),
            next_id: 1,
            dirty: false,
            next_client_id: 1,
            start_ms: t,
            run_id: random_hex40(),
            shutdown: false,
            clients: Default::default(),
            users,
            scripts: Default::default(),
        }
    }

    /// A fresh instance id (and a link task to start for it).
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.new_links.push(id);
        id
    }

    /// The master called `name`.
    pub fn master_index(&self, name: &str) -> Option<usize> {
        self.masters.iter().position(|m| m.name() == name)
    }

    /// Finds an instance by id.
    pub fn find(&self, id: u64) -> Option<(usize, Which)> {
        for (mi, m) in self.masters.iter().enumerate() {
            if m.inst.id == id {
                return Some((mi, Which::Master));
            }
            if let Some(i) = m.replicas.iter().position(|r| r.id == id) {
                return Some((mi, Which::Replica(i)));
            }
            if let Some(i) = m.sentinels.iter().position(|r| r.id == id) {
                return Some((mi, Which::Sentinel(i)));
            }
        }
        None
    }

    /// The instance at `(mi, w)`.
    pub fn inst(&self, mi: usize, w: Which) -> &Instance {
        let m = &self.masters[mi];
        match w {
            Which::Master => &m.inst,
            Which::Replica(i) => &m.replicas[i],
            Which::Sentinel(i) => &m.sentinels[i],
        }
    }

    /// The instance at `(mi, w)`, mutably.
    pub fn inst_mut(&mut self, mi: usize, w: Which) -> &mut Instance {
        let m = &mut self.masters[mi];
        match w {
            Which::Master => &mut m.inst,
            Which::Replica(i) => &mut m.replicas[i],
            Which::Sentinel(i) => &mut m.sentinels[i],
        }
    }

    /// Redis's `%@`: `<type> <name> <ip> <port>` plus ` @ <master> <ip> <port>` for
    /// replicas and Sentinels.
    pub fn at(&self, mi: usize, w: Which) -> String {
        let m = &self.masters[mi];
        let i = self.inst(mi, w);
        let mut s = format!("{} {} {} {}", i.type_name(), i.name, self.announce(&i.addr), i.addr.port);
        if w != Which::Master {
            s.push_str(&format!(" @ {} {} {}", m.name(), self.announce(&m.inst.addr), m.inst.addr.port));
        }
        s
    }

    /// Redis's `announceSentinelAddr`: an instance's host as given (a hostname, with
    /// announce-hostnames yes) or its IP address (a hostname resolved, as Redis resolves it
    /// when resolve-hostnames is on).
    pub fn announce(&self, a: &Addr) -> String {
        if self.announce_hostnames || a.ip.parse::<std::net::IpAddr>().is_ok() {
            return a.ip.clone();
        }
        std::net::ToSocketAddrs::to_socket_addrs(&(a.ip.as_str(), a.port))
            .ok()
            .and_then(|mut it| it.next())
            .map(|sa| sa.ip().to_string())
            .unwrap_or_else(|| a.ip.clone())
    }

    /// Logs an event and publishes it on the channel named after its type.
    pub fn event(&mut self, level: Level, kind: &str, msg: &str) {
        match level {
            Level::Warning => tracing::warn!("{} {}", kind, msg),
            Level::Notice => tracing::info!("{} {}", kind, msg),
            Level::Verbose => tracing::debug!("{} {}", kind, msg),
        }
        self.publish(kind.as_bytes(), msg.as_bytes());
        if level == Level::Warning {
            // The master an instance event concerns: `master <name> ...` or `... @ <name> ...`.
            let master = match msg.split_once(" @ ") {
                Some((_, tail)) => tail.split(' ').next(),
                None => msg.strip_prefix("master ").and_then(|t| t.split(' ').next()),
            };
            if let Some(mi) = master.and_then(|m| self.master_index(m)) {
                self.notify_script(mi, kind, msg);
            }
        }
    }

    /// An event about master `mi` whose text does not name it (`+new-epoch`,
    /// `+vote-for-leader`, `+switch-master`): logged and published as [`State::event`], and
    /// handed to the master's notification script.
    pub fn master_event(&mut self, mi: usize, kind: &str, msg: &str) {
        tracing::warn!("{} {}", kind, msg);
        self.publish(kind.as_bytes(), msg.as_bytes());
        self.notify_script(mi, kind, msg);
    }

    fn notify_script(&mut self, mi: usize, kind: &str, msg: &str) {
        if let Some(path) = self.masters[mi].notification_script.clone() {
            self.scripts.schedule(&path, &[kind, msg]);
        }
    }

    /// Redis's `sentinelCallClientReconfScript` (state `start`).
    pub fn client_reconfig_script(&mut self, mi: usize, leader: bool, from: &Addr, to: &Addr) {
        let m = &self.masters[mi];
        let Some(path) = m.client_reconfig_script.clone() else { return };
        let (fp, tp) = (from.port.to_string(), to.port.to_string());
        let name = m.name().to_string();
        let role = if leader { "leader" } else { "observer" };
        self.scripts.schedule(&path, &[&name, role, "start", &from.ip, &fp, &to.ip, &tp]);
    }

    /// Delivers a message to the Sentinel's own subscribers; returns how many got it.
    pub fn publish(&mut self, channel: &[u8], msg: &[u8]) -> usize {
        let mut n = 0;
        self.subscribers.retain(|s| !s.tx.is_closed());
        for s in &self.subscribers {
            if s.channels.contains(channel) {
                let mut out = Vec::new();
                super::server::push_message(&mut out, &[b"message", channel, msg]);
                let _ = s.tx.unbounded_send(out);
                n += 1;
            }
            for p in &s.patterns {
                if crate::cmd::util::glob_match(p, channel, false) {
                    let mut out = Vec::new();
                    super::server::push_message(&mut out, &[b"pmessage", p, channel, msg]);
                    let _ = s.tx.unbounded_send(out);
                    n += 1;
                }
            }
        }
        n
    }

    /// Adds a replica `addr` to master `mi` unless known; returns its index.
    pub fn add_replica(&mut self, mi: usize, addr: Addr) -> (usize, bool) {
        let key = addr.key();
        if let Some(i) = self.masters[mi].replicas.iter().position(|r| r.name == key) {
            return (i, false);
        }
        let id = self.alloc_id();
        let down_after = self.masters[mi].inst.down_after_period;
        self.masters[mi].replicas.push(Instance::new(id, flag::SLAVE, key, addr, down_after, now()));
        (self.masters[mi].replicas.len() - 1, true)
    }

    /// Adds a Sentinel peer to master `mi`; returns its index.
    pub fn add_sentinel(&mut self, mi: usize, addr: Addr, runid: &str) -> usize {
        let id = self.alloc_id();
        let down_after = self.masters[mi].inst.down_after_period;
        let mut s = Instance::new(id, flag::SENTINEL, runid.to_string(), addr, down_after, now());
        s.runid = Some(runid.to_string());
        self.masters[mi].sentinels.push(s);
        self.masters[mi].sentinels.len() - 1
    }

    /// Adds a monitored master (SENTINEL MONITOR / `sentinel monitor`).
    pub fn add_master(&mut self, name: &str, addr: Addr, quorum: u32) -> Result<usize, String> {
        if self.master_index(name).is_some() {
            return Err("Duplicate master name.".into());
        }
        let id = self.alloc_id();
        let inst = Instance::new(id, flag::MASTER, name.to_string(), addr, period::default_down_after(), now());
        self.masters.push(Master::new(inst, quorum));
        Ok(self.masters.len() - 1)
    }

    /// Redis's `sentinelResetMaster`; `keep_sentinels` = SENTINEL_RESET_NO_SENTINELS.
    pub fn reset_master(&mut self, mi: usize, keep_sentinels: bool, generate_event: bool) {
        let t = now();
        let id = self.alloc_id();
        let m = &mut self.masters[mi];
        m.replicas.clear();
        if !keep_sentinels {
            m.sentinels.clear();
        }
        m.inst.id = id;
        m.inst.link = super::instance::LinkState::new(t);
        m.inst.flags &= flag::MASTER;
        m.leader = None;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = 0;
        m.failover_start_time = 0;
        m.promoted = None;
        m.inst.runid = None;
        m.inst.slave_master_host = None;
        m.inst.info_refresh = 0;
        m.inst.queued.clear();
        m.inst.role_reported_time = t;
        m.inst.role_reported = flag::MASTER;
        if generate_event {
            let at = self.at(mi, Which::Master);
            self.event(Level::Warning, "+reset-master", &at);
        }
    }

    /// Redis's `sentinelResetMasterAndChangeAddress`.
    pub fn reset_master_and_change_address(&mut self, mi: usize, ip: &str, port: u16) {
        let newaddr = Addr { ip: ip.to_string(), port };
        let m = &self.masters[mi];
        let mut keep: Vec<Addr> = m
            .replicas
            .iter()
            .filter(|r| !(r.addr.same_host(ip) && r.addr.port == port))
            .map(|r| r.addr.clone())
            .collect();
        if !(m.inst.addr.same_host(ip) && m.inst.addr.port == port) {
            keep.push(m.inst.addr.clone());
        }
        self.reset_master(mi, true, false);
        let m = &mut self.masters[mi];
        m.inst.addr = newaddr;
        m.inst.o_down_since_time = 0;
        m.inst.s_down_since_time = 0;
        for a in keep {
            let (ri, _) = self.add_replica(mi, a);
            let at = self.at(mi, Which::Replica(ri));
            self.event(Level::Notice, "+slave", &at);
        }
        self.dirty = true;
    }

    /// Redis's `sentinelVoteLeader`: the vote for `req_runid` at `req_epoch` (or the vote
    /// already given), with its epoch.
    pub fn vote_leader(&mut self, mi: usize, req_epoch: u64, req_runid: &str) -> (Option<String>, u64) {
        if req_epoch > self.current_epoch {
            self.current_epoch = req_epoch;
            self.dirty = true;
            let msg = format!("{}", self.current_epoch);
            self.master_event(mi, "+new-epoch", &msg);
        }
        let m = &mut self.masters[mi];
        if m.leader_epoch < req_epoch && self.current_epoch <= req_epoch {
            m.leader = Some(req_runid.to_string());
            m.leader_epoch = self.current_epoch;
            self.dirty = true;
            let msg = format!("{} {}", req_runid, m.leader_epoch);
            if !req_runid.eq_ignore_ascii_case(&self.myid) {
                m.failover_start_time = now() + fastrand::u64(0..period::MAX_DESYNC);
            }
            self.master_event(mi, "+vote-for-leader", &msg);
        }
        let m = &self.masters[mi];
        (m.leader.clone(), m.leader_epoch)
    }

    /// Applies one `sentinel ...` config directive (argv without `sentinel`).
    pub fn apply_directive(&mut self, a: &[String]) -> Result<(), String> {
        let sub = a[0].to_ascii_lowercase();
        let n = a.len();
        let need_master = |st: &State, name: &str| {
            st.master_index(name).ok_or_else(|| "No such master with specified name.".to_string())
        };
        match (sub.as_str(), n) {
            ("monitor", 5) => {
                let quorum: i64 = a[4].parse().map_err(|_| "Invalid argument".to_string())?;
                if quorum <= 0 {
                    return Err("Quorum must be 1 or greater.".into());
                }
                let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
                self.add_master(&a[1], Addr { ip: a[2].clone(), port }, quorum as u32)?;
            }
            ("down-after-milliseconds", 3) => {
                let mi = need_master(self, &a[1])?;
                let v = parse_u64(&a[2])?;
                if v == 0 {
                    return Err("Invalid argument".into());
                }
                self.masters[mi].inst.down_after_period = v;
                let m = &mut self.masters[mi];
                for r in m.replicas.iter_mut().chain(m.sentinels.iter_mut()) {
                    r.down_after_period = v;
                }
            }
            ("failover-timeout", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].failover_timeout = parse_u64(&a[2])?.max(1);
            }
            ("parallel-syncs", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].parallel_syncs = a[2].parse().map_err(|_| "Invalid argument".to_string())?;
            }
            ("notification-script", 3) | ("client-reconfig-script", 3) => {
                let mi = need_master(self, &a[1])?;
                if self.deny_scripts_reconfig {
                    // Accepted from the file (Redis checks the script is executable).
                }
                let m = &mut self.masters[mi];
                if sub == "notification-script" {
                    m.notification_script = Some(a[2].clone());
                } else {
                    m.client_reconfig_script = Some(a[2].clone());
                }
            }
            ("auth-pass", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].auth_pass = Some(a[2].clone()).filter(|s| !s.is_empty());
            }
            ("auth-user", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].auth_user = Some(a[2].clone()).filter(|s| !s.is_empty());
            }
            ("master-reboot-down-after-period", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].master_reboot_down_after_period = parse_u64(&a[2])?;
            }
            ("config-epoch", 3) => {
                let mi = need_master(self, &a[1])?;
                let e = parse_u64(&a[2])?;
                self.masters[mi].config_epoch = e;
                if e > self.current_epoch {
                    self.current_epoch = e;
                }
            }
            ("leader-epoch", 3) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].leader_epoch = parse_u64(&a[2])?;
            }
            ("known-slave", 4) | ("known-replica", 4) => {
                let mi = need_master(self, &a[1])?;
                let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
                self.add_replica(mi, Addr { ip: a[2].clone(), port });
            }
            ("known-sentinel", 4) | ("known-sentinel", 5) => {
                let mi = need_master(self, &a[1])?;
                let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
                let runid = a.get(4).cloned().unwrap_or_default();
                if runid.is_empty() {
                    return Err("Wrong number of arguments for sentinel known-sentinel".into());
                }
                self.add_sentinel(mi, Addr { ip: a[2].clone(), port }, &runid);
            }
            ("rename-command", 4) => {
                let mi = need_master(self, &a[1])?;
                self.masters[mi].renamed.push((a[2].clone(), a[3].clone()));
            }
            ("current-epoch", 2) => {
                let e = parse_u64(&a[1])?;
                if e > self.current_epoch {
                    self.current_epoch = e;
                }
            }
            ("myid", 2) => {
                if a[1].len() != 40 {
                    return Err("Malformed Sentinel id in myid option.".into());
                }
                self.myid = a[1].clone();
            }
            ("announce-ip", 2) => self.announce_ip = Some(a[1].clone()).filter(|s| !s.is_empty()),
            ("announce-port", 2) => self.announce_port = a[1].parse().map_err(|_| "Invalid port number".to_string())?,
            ("deny-scripts-reconfig", 2) => {
                self.deny_scripts_reconfig =
                    yes_no(&a[1]).ok_or("Please specify yes or no for the deny-scripts-reconfig options.")?
            }
            ("resolve-hostnames", 2) => {
                self.resolve_hostnames =
                    yes_no(&a[1]).ok_or("Please specify yes or no for the resolve-hostnames option.")?
            }
            ("announce-hostnames", 2) => {
                self.announce_hostnames =
                    yes_no(&a[1]).ok_or("Please specify yes or no for the announce-hostnames option.")?
            }
            ("sentinel-user", 2) => self.sentinel_user = Some(a[1].clone()).filter(|s| !s.is_empty()),
            ("sentinel-pass", 2) => self.sentinel_pass = Some(a[1].clone()).filter(|s| !s.is_empty()),
            _ => return Err("Unrecognized sentinel configuration statement.".into()),
        }
        Ok(())
    }

    /// The lines Redis's config rewrite generates for a Sentinel, `(key, line)` in order.
    pub fn generate_config(&self) -> Vec<(String, String)> {
        let mut g: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, l: String| g.push((k.to_string(), l));
        let s = &self.settings;
        if s.port != 6379 {
            put("port", format!("port {}", s.port));
        }
        if !s.bind.is_empty() {
            put("bind", format!("bind {}", s.bind.join(" ")));
        }
        if s.daemonize {
            put("daemonize", "daemonize yes".into());
        }
        if !s.pidfile.is_empty() {
            put("pidfile", format!("pidfile {}", config::repr(&s.pidfile)));
        }
        if !s.logfile.is_empty() {
            put("logfile", format!("logfile {}", config::repr(&s.logfile)));
        }
        let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        put("dir", format!("dir {}", config::repr(&cwd)));
        put("protected-mode", "protected-mode no".into());
        put("latency-tracking-info-percentiles", "latency-tracking-info-percentiles 50 99 99.9".into());
        put("user", "user default on nopass ~* &* +@all".into());
        put("sentinel myid", format!("sentinel myid {}", self.myid));
        if !self.deny_scripts_reconfig {
            put("sentinel deny-scripts-reconfig", "sentinel deny-scripts-reconfig no".into());
        }
        if self.resolve_hostnames {
            put("sentinel resolve-hostnames", "sentinel resolve-hostnames yes".into());
        }
        if self.announce_hostnames {
            put("sentinel announce-hostnames", "sentinel announce-hostnames yes".into());
        }
        for m in &self.masters {
            let name = m.name();
            let ma = m.current_addr();
            put("sentinel monitor", format!("sentinel monitor {} {} {} {}", name, ma.ip, ma.port, m.quorum));
            if m.inst.down_after_period != period::default_down_after() {
                put(
                    "sentinel down-after-milliseconds",
                    format!("sentinel down-after-milliseconds {} {}", name, m.inst.down_after_period),
                );
            }
            if m.failover_timeout != period::default_failover_timeout() {
                put("sentinel failover-timeout", format!("sentinel failover-timeout {} {}", name, m.failover_timeout));
            }
            if m.parallel_syncs != 1 {
                put("sentinel parallel-syncs", format!("sentinel parallel-syncs {} {}", name, m.parallel_syncs));
            }
            if let Some(sc) = &m.notification_script {
                put("sentinel notification-script", format!("sentinel notification-script {name} {sc}"));
            }
            if let Some(sc) = &m.client_reconfig_script {
                put("sentinel client-reconfig-script", format!("sentinel client-reconfig-script {name} {sc}"));
            }
            if let Some(p) = &m.auth_pass {
                put("sentinel auth-pass", format!("sentinel auth-pass {name} {p}"));
            }
            if let Some(u) = &m.auth_user {
                put("sentinel auth-user", format!("sentinel auth-user {name} {u}"));
            }
            if m.master_reboot_down_after_period != 0 {
                put(
                    "sentinel master-reboot-down-after-period",
                    format!("sentinel master-reboot-down-after-period {} {}", name, m.master_reboot_down_after_period),
                );
            }
            put("sentinel config-epoch", format!("sentinel config-epoch {} {}", name, m.config_epoch));
            put("sentinel leader-epoch", format!("sentinel leader-epoch {} {}", name, m.leader_epoch));
            for r in &m.replicas {
                let a = if r.addr == ma { &m.inst.addr } else { &r.addr };
                put("sentinel known-replica", format!("sentinel known-replica {} {} {}", name, a.ip, a.port));
            }
            for s in &m.sentinels {
                if let Some(id) = &s.runid {
                    put(
                        "sentinel known-sentinel",
                        format!("sentinel known-sentinel {} {} {} {}", name, s.addr.ip, s.addr.port, id),
                    );
                }
            }
            for (a, b) in &m.renamed {
                put("sentinel rename-command", format!("sentinel rename-command {name} {a} {b}"));
            }
        }
        put("sentinel current-epoch", format!("sentinel current-epoch {}", self.current_epoch));
        if let Some(ip) = &self.announce_ip {
            put("sentinel announce-ip", format!("sentinel announce-ip {}", config::repr(ip)));
        }
        if self.announce_port != 0 {
            put("sentinel announce-port", format!("sentinel announce-port {}", self.announce_port));
        }
        if let Some(u) = &self.sentinel_user {
            put("sentinel sentinel-user", format!("sentinel sentinel-user {u}"));
        }
        if let Some(p) = &self.sentinel_pass {
            put("sentinel sentinel-pass", format!("sentinel sentinel-pass {p}"));
        }
        g
    }

    /// Redis's `sentinelFlushConfig`: rewrites sentinel.conf now.
    pub fn flush_config(&mut self) -> Result<(), String> {
        self.dirty = false;
        let path = self.settings.config_file.clone();
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let managed: HashSet<String> = [
            "port",
            "bind",
            "daemonize",
            "pidfile",
            "logfile",
            "dir",
            "protected-mode",
            "latency-tracking-info-percentiles",
            "user",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let text = config::rewrite_text(&old, &self.generate_config(), &managed);
        match config::write_atomic(&path, &text) {
            Ok(()) => {
                tracing::info!("Sentinel new configuration saved on disk");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("WARNING: Sentinel was not able to save the new configuration on disk!!!: {}", e);
                Err(e.to_string())
            }
        }
    }

    /// Ends a top-level operation: writes the config file if the state changed.
    pub fn after(&mut self) {
        if self.dirty {
            let _ = self.flush_config();
        }
        self.wake_links_with_queued();
    }

    /// Wakes the command links that have commands queued.
    fn wake_links_with_queued(&mut self) {
        if self.link_wakers.is_empty() {
            return;
        }
        let due: Vec<u64> = self
            .link_wakers
            .keys()
            .copied()
            .filter(|&id| self.find(id).is_none_or(|(mi, w)| !self.inst(mi, w).queued.is_empty()))
            .collect();
        for id in due {
            if let Some(w) = self.link_wakers.remove(&id) {
                w.wake();
            }
        }
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}
