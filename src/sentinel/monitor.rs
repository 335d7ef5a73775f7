//! The periodic side of Sentinel: what each link sends when (INFO every 10 s, or every
//! second for replicas of a failing master; PING every second; a hello every 2 s; queued
//! commands), routing replies back to their handlers, and the timer (Redis's `sentinelTimer`):
//! TILT, SDOWN, ODOWN, starting a failover, asking the other Sentinels, the failover state
//! machine and the switch to the promoted replica.

use super::failover;
use super::instance::{flag, period, FailoverState, Kind};
use super::resp::Value;
use super::state::{now, Level, State, Which};

/// Where a link task connects, and how it introduces itself.
pub struct Target {
    pub ip: String,
    pub port: u16,
    pub auth: Option<(Option<String>, String)>,
    /// Masters and replicas get a Pub/Sub link; Sentinels do not.
    pub pubsub: bool,
    pub myid8: String,
}

/// A batch of commands for one link, each with its reply kind.
pub type Batch = Vec<(Kind, Vec<Vec<u8>>)>;

impl State {
    /// The address and credentials of instance `id`; None once it is gone.
    pub fn target(&self, id: u64) -> Option<Target> {
        let (mi, w) = self.find(id)?;
        let m = &self.masters[mi];
        let i = self.inst(mi, w);
        let auth = if w == Which::Sentinel(0) || matches!(w, Which::Sentinel(_)) {
            match &self.sentinel_pass {
                Some(p) => Some((self.sentinel_user.clone(), p.clone())),
                // Older configs: requirepass serves both ways.
                None => self.settings.requirepass.clone().map(|p| (None, p)),
            }
        } else {
            m.auth_pass.clone().map(|p| (m.auth_user.clone(), p))
        };
        Some(Target {
            ip: i.addr.ip.clone(),
            port: i.addr.port,
            auth,
            pubsub: !matches!(w, Which::Sentinel(_)),
            myid8: self.myid.chars().take(8).collect(),
        })
    }

    /// The command link of `id` came up (`local_ip` is its local address) or went down.
    pub fn link_state(&mut self, id: u64, pubsub: bool, up: bool, local_ip: String, fd: Option<i32>) {
        let Some((mi, w)) = self.find(id) else { return };
        let t = now();
        let l = &mut self.inst_mut(mi, w).link;
        if pubsub {
            l.pc_up = up;
            l.pc_fd = fd.filter(|_| up);
            l.close_pc = false;
            if up {
                l.pc_conn_time = t;
                l.pc_last_activity = t;
            }
        } else {
            l.cc_up = up;
            l.cc_fd = fd.filter(|_| up);
            l.close_cc = false;
            l.pending_commands = 0;
            if up {
                l.cc_conn_time = t;
                l.local_ip = local_ip;
            }
        }
    }

    /// A reconnection of `id`'s command link was tried: its PING is pending from now on if
    /// none was (Redis's `sentinelReconnectInstance` sends one as it connects).
    pub fn reconnect_attempted(&mut self, id: u64) {
        let Some((mi, w)) = self.find(id) else { return };
        let t = now();
        let l = &mut self.inst_mut(mi, w).link;
        if l.act_ping_time == 0 {
            l.act_ping_time = t;
        }
    }

    /// Redis's `dropInstanceConnections`: both connections of master `mi` and of its replicas
    /// (after its credentials changed), to be reopened with the new ones.
    pub fn drop_instance_connections(&mut self, mi: usize) {
        let m = &mut self.masters[mi];
        for i in std::iter::once(&mut m.inst).chain(m.replicas.iter_mut()) {
            i.link.close(false);
            i.link.close(true);
        }
    }

    /// Redis's `sentinelDropConnections`: the command connections to every other Sentinel
    /// (after sentinel-user/sentinel-pass changed). Returns how many were open.
    pub fn drop_sentinel_connections(&mut self) -> usize {
        let mut n = 0;
        for m in self.masters.iter_mut() {
            for s in m.sentinels.iter_mut() {
                n += s.link.cc_up as usize;
                s.link.close(false);
            }
        }
        n
    }

    /// Pub/Sub activity on `id`'s link.
    pub fn pubsub_activity(&mut self, id: u64) {
        if let Some((mi, w)) = self.find(id) {
            self.inst_mut(mi, w).link.pc_last_activity = now();
        }
    }

    /// Whether the timer asked to drop one of `id`'s connections (None: instance gone).
    pub fn must_close(&self, id: u64, pubsub: bool) -> Option<bool> {
        let (mi, w) = self.find(id)?;
        let l = &self.inst(mi, w).link;
        Some(if pubsub { l.close_pc } else { l.close_cc })
    }

    /// Redis's `sentinelSendPeriodicCommands` (plus queued commands) for link `id`.
    pub fn due_commands(&mut self, id: u64) -> Option<Batch> {
        let (mi, w) = self.find(id)?;
        let t = now();
        let master_failing = self.masters[mi].inst.flags & (flag::O_DOWN | flag::FAILOVER_IN_PROGRESS) != 0;
        let ma = self.masters[mi].current_addr();
        let ma = super::instance::Addr { ip: self.announce(&ma), port: ma.port };
        let (mname, config_epoch) = (self.masters[mi].name().to_string(), self.masters[mi].config_epoch);
        let port = if self.announce_port != 0 { self.announce_port } else { self.settings.port };
        let announce = self.announce_ip.clone();
        let (myid, epoch) = (self.myid.clone(), self.current_epoch);
        let map = |c: &str| self.masters[mi].map_command(c).into_bytes();
        let (c_info, c_ping, c_pub) = (map("INFO"), map("PING"), map("PUBLISH"));
        let i = self.inst_mut(mi, w);
        let mut batch: Batch = std::mem::take(&mut i.queued);
        let info_period = if i.flags & flag::SLAVE != 0 && (master_failing || i.master_link_down_time != 0) {
            1000
        } else {
            period::info()
        };
        let ping_period = i.down_after_period.min(period::ping());
        if i.flags & flag::SENTINEL == 0 && (i.info_refresh == 0 || t.saturating_sub(i.info_refresh) > info_period) {
            batch.push((Kind::Info, vec![c_info]));
        }
        if t.saturating_sub(i.link.last_pong_time) > ping_period
            && t.saturating_sub(i.link.last_ping_time) > ping_period / 2
        {
            batch.push((Kind::Ping, vec![c_ping]));
            i.link.last_ping_time = t;
            if i.link.act_ping_time == 0 {
                i.link.act_ping_time = t;
            }
        }
        if t.saturating_sub(i.last_pub_time) > period::publish() {
            let ip = announce.unwrap_or_else(|| i.link.local_ip.clone());
            let payload =
                format!("{},{},{},{},{},{},{},{}", ip, port, myid, epoch, mname, ma.ip, ma.port, config_epoch);
            batch.push((Kind::Publish, vec![c_pub, b"__sentinel__:hello".to_vec(), payload.into_bytes()]));
        }
        i.link.pending_commands = batch.len() as u64;
        Some(batch)
    }

    /// Routes one reply from link `id`.
    pub fn on_reply(&mut self, id: u64, kind: Kind, v: &Value) {
        let Some((mi, w)) = self.find(id) else { return };
        match kind {
            Kind::Ping => self.on_ping_reply(mi, w, v),
            Kind::Publish => self.on_publish_reply(mi, w, v),
            Kind::IsMasterDown => self.on_is_master_down_reply(mi, w, v),
            Kind::Info => {
                if let Value::Bulk(b) = v {
                    let text = String::from_utf8_lossy(b).into_owned();
                    self.on_info(mi, w, &text);
                }
            }
            Kind::Discard => {}
        }
        if let Some((mi, w)) = self.find(id) {
            let l = &mut self.inst_mut(mi, w).link;
            l.pending_commands = l.pending_commands.saturating_sub(1);
        }
    }

    /// One run of Redis's `sentinelTimer`.
    pub fn tick(&mut self) {
        let t = now();
        let delta = t as i64 - self.previous_time as i64;
        if delta < 0 || delta as u64 > period::tilt_trigger() {
            self.tilt = true;
            self.tilt_start_time = t;
            self.event(Level::Warning, "+tilt", "#tilt mode entered");
        }
        self.previous_time = t;
        let mut switch = Vec::new();
        for mi in 0..self.masters.len() {
            if self.tilt {
                if t.saturating_sub(self.tilt_start_time) < period::tilt_period() {
                    continue;
                }
                self.tilt = false;
                self.event(Level::Warning, "-tilt", "#tilt mode exited");
            }
            self.check_sdown(mi, Which::Master, t);
            for ri in 0..self.masters[mi].replicas.len() {
                self.check_sdown(mi, Which::Replica(ri), t);
            }
            for si in 0..self.masters[mi].sentinels.len() {
                self.check_sdown(mi, Which::Sentinel(si), t);
            }
            self.check_odown(mi, t);
            if failover::start_if_needed(self, mi) {
                self.ask_other_sentinels(mi, true, t);
            }
            failover::state_machine(self, mi);
            self.ask_other_sentinels(mi, false, t);
            if self.masters[mi].failover_state == FailoverState::UpdateConfig {
                switch.push(mi);
            }
        }
        for mi in switch {
            failover::switch_to_promoted(self, mi);
        }
        for (warning, kind, msg) in self.scripts.tick() {
            self.event(if warning { Level::Warning } else { Level::Verbose }, kind, &msg);
        }
        self.after();
    }

    /// Redis's `sentinelCheckSubjectivelyDown`.
    fn check_sdown(&mut self, mi: usize, w: Which, t: u64) {
        let reboot_period = self.masters[mi].master_reboot_down_after_period;
        let i = self.inst_mut(mi, w);
        let elapsed = if i.link.act_ping_time != 0 {
            t.saturating_sub(i.link.act_ping_time)
        } else if !i.link.cc_up {
            t.saturating_sub(i.link.last_avail_time)
        } else {
            0
        };
        if i.link.cc_up
            && t.saturating_sub(i.link.cc_conn_time) > period::min_link_reconnect()
            && i.link.act_ping_time != 0
            && t.saturating_sub(i.link.act_ping_time) > i.down_after_period / 2
            && t.saturating_sub(i.link.last_pong_time) > i.down_after_period / 2
        {
            i.link.close(false);
        }
        if i.link.pc_up
            && t.saturating_sub(i.link.pc_conn_time) > period::min_link_reconnect()
            && t.saturating_sub(i.link.pc_last_activity) > period::publish() * 3
        {
            i.link.close(true);
        }
        let down = elapsed > i.down_after_period
            || (i.flags & flag::MASTER != 0
                && i.role_reported == flag::SLAVE
                && t.saturating_sub(i.role_reported_time) > i.down_after_period + period::info() * 2)
            || (i.flags & flag::MASTER_REBOOT != 0 && t.saturating_sub(i.master_reboot_since_time) > reboot_period);
        if down {
            if i.flags & flag::S_DOWN == 0 {
                i.s_down_since_time = t;
                i.flags |= flag::S_DOWN;
                let at = self.at(mi, w);
                self.event(Level::Warning, "+sdown", &at);
            }
        } else if i.flags & flag::S_DOWN != 0 {
            i.flags &= !(flag::S_DOWN | flag::SCRIPT_KILL_SENT);
            let at = self.at(mi, w);
            self.event(Level::Warning, "-sdown", &at);
        }
    }

    /// Redis's `sentinelCheckObjectivelyDown`.
    fn check_odown(&mut self, mi: usize, t: u64) {
        let m = &self.masters[mi];
        let mut quorum = 0;
        let mut odown = false;
        if m.inst.flags & flag::S_DOWN != 0 {
            quorum = 1 + m.sentinels.iter().filter(|s| s.flags & flag::MASTER_DOWN != 0).count() as u32;
            odown = quorum >= m.quorum;
        }
        let mq = m.quorum;
        let m = &mut self.masters[mi];
        if odown {
            if m.inst.flags & flag::O_DOWN == 0 {
                m.inst.flags |= flag::O_DOWN;
                m.inst.o_down_since_time = t;
                let at = self.at(mi, Which::Master);
                self.event(Level::Warning, "+odown", &format!("{at} #quorum {quorum}/{mq}"));
            }
        } else if m.inst.flags & flag::O_DOWN != 0 {
            m.inst.flags &= !flag::O_DOWN;
            let at = self.at(mi, Which::Master);
            self.event(Level::Warning, "-odown", &at);
        }
    }

    /// Redis's `sentinelAskMasterStateToOtherSentinels`.
    fn ask_other_sentinels(&mut self, mi: usize, forced: bool, t: u64) {
        let m = &self.masters[mi];
        let sdown = m.inst.flags & flag::S_DOWN != 0;
        let runid = if m.failover_state > FailoverState::None { self.myid.clone() } else { "*".to_string() };
        let cmd = m.map_command("SENTINEL");
        let argv: Vec<Vec<u8>> = vec![
            cmd.into_bytes(),
            b"is-master-down-by-addr".to_vec(),
            m.inst.addr.ip.clone().into_bytes(),
            m.inst.addr.port.to_string().into_bytes(),
            self.current_epoch.to_string().into_bytes(),
            runid.into_bytes(),
        ];
        for s in self.masters[mi].sentinels.iter_mut() {
            if t.saturating_sub(s.last_master_down_reply_time) > period::ask() * 5 {
                s.flags &= !flag::MASTER_DOWN;
                s.leader = None;
            }
            if !sdown || s.disconnected() {
                continue;
            }
            if !forced && t.saturating_sub(s.last_master_down_reply_time) < period::ask() {
                continue;
            }
            if s.queued.iter().any(|(k, _)| *k == Kind::IsMasterDown) {
                continue;
            }
            s.queued.push((Kind::IsMasterDown, argv.clone()));
        }
    }
}
