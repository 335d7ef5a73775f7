//! What Sentinel learns from instances: INFO replies (run id, role, replicas, the replica's
//! link and offset, promotion and reconfiguration progress), PING replies, hello messages
//! from other Sentinels (peer discovery, epochs, newer master configurations) and the other
//! Sentinels' answers to `SENTINEL is-master-down-by-addr`. Redis's
//! `sentinelRefreshInstanceInfo`, `sentinelProcessHelloMessage` and reply callbacks.

use super::failover;
use super::instance::{flag, period, Addr, FailoverState};
use super::resp::Value;
use super::state::{now, Level, State, Which};

impl State {
    /// A PING reply on instance `(mi, w)`.
    pub fn on_ping_reply(&mut self, mi: usize, w: Which, v: &Value) {
        let t = now();
        let i = self.inst_mut(mi, w);
        let ok = match v {
            Value::Status(s) => s == "PONG",
            Value::Error(e) => e.starts_with("LOADING") || e.starts_with("MASTERDOWN"),
            _ => false,
        };
        if ok {
            i.link.last_avail_time = t;
            i.link.act_ping_time = 0;
            if matches!(v, Value::Status(_)) {
                i.flags &= !flag::MASTER_REBOOT;
            }
        }
        i.link.last_pong_time = t;
    }

    /// A PUBLISH (hello) reply: an accepted publish counts as this period's hello.
    pub fn on_publish_reply(&mut self, mi: usize, w: Which, v: &Value) {
        if !matches!(v, Value::Error(_)) {
            self.inst_mut(mi, w).last_pub_time = now();
        }
    }

    /// The reply of a peer Sentinel to `SENTINEL is-master-down-by-addr`.
    pub fn on_is_master_down_reply(&mut self, mi: usize, w: Which, v: &Value) {
        let Value::Array(items) = v else { return };
        let (Some(Value::Int(down)), Some(Value::Bulk(leader)), Some(Value::Int(epoch))) =
            (items.first(), items.get(1), items.get(2))
        else {
            return;
        };
        if items.len() != 3 {
            return;
        }
        let t = now();
        let leader = String::from_utf8_lossy(leader).into_owned();
        let s = self.inst_mut(mi, w);
        s.last_master_down_reply_time = t;
        if *down == 1 {
            s.flags |= flag::MASTER_DOWN;
        } else {
            s.flags &= !flag::MASTER_DOWN;
        }
        if leader != "*" {
            if s.leader_epoch as i64 != *epoch {
                tracing::warn!("{} voted for {} {}", s.name, leader, epoch);
            }
            s.leader = Some(leader);
            s.leader_epoch = (*epoch).max(0) as u64;
        }
    }

    /// An INFO reply from master or replica `(mi, w)`.
    pub fn on_info(&mut self, mi: usize, w: Which, info: &str) {
        let t = now();
        let is_master = w == Which::Master;
        let mut role = 0u32;
        let mut new_replicas: Vec<Addr> = Vec::new();
        let mut rebooted = false;
        {
            let i = self.inst_mut(mi, w);
            i.info = info.to_string();
            i.master_link_down_time = 0;
            for l in info.split("\r\n") {
                if let Some(id) = l.strip_prefix("run_id:") {
                    if id.len() >= 40 {
                        let id = id[..40].to_string();
                        match &i.runid {
                            None => i.runid = Some(id),
                            Some(old) if *old != id => {
                                rebooted = true;
                                i.runid = Some(id);
                            }
                            _ => {}
                        }
                    }
                }
                if is_master && l.starts_with("slave") && l.as_bytes().get(5).is_some_and(|b| b.is_ascii_digit()) {
                    if let Some(a) = parse_slave_line(l) {
                        new_replicas.push(a);
                    }
                }
                if let Some(v) = l.strip_prefix("master_link_down_since_seconds:") {
                    i.master_link_down_time = v.trim().parse::<i64>().unwrap_or(0).saturating_mul(1000);
                }
                if l.starts_with("role:master") {
                    role = flag::MASTER;
                } else if l.starts_with("role:slave") {
                    role = flag::SLAVE;
                }
                if role == flag::SLAVE {
                    if let Some(h) = l.strip_prefix("master_host:") {
                        if i.slave_master_host.as_deref().is_none_or(|o| !o.eq_ignore_ascii_case(h)) {
                            i.slave_master_host = Some(h.to_string());
                            i.slave_conf_change_time = t;
                        }
                    }
                    if let Some(p) = l.strip_prefix("master_port:") {
                        let p: u16 = p.trim().parse().unwrap_or(0);
                        if i.slave_master_port != p {
                            i.slave_master_port = p;
                            i.slave_conf_change_time = t;
                        }
                    }
                    if let Some(s) = l.strip_prefix("master_link_status:") {
                        i.slave_master_link_up = s.eq_ignore_ascii_case("up");
                    }
                    if let Some(p) = l.strip_prefix("slave_priority:") {
                        i.slave_priority = p.trim().parse().unwrap_or(100);
                    }
                    if let Some(p) = l.strip_prefix("slave_repl_offset:") {
                        i.slave_repl_offset = p.trim().parse().unwrap_or(0);
                    }
                    if let Some(p) = l.strip_prefix("replica_announced:") {
                        i.replica_announced = p.trim().parse().unwrap_or(1);
                    }
                }
            }
            i.info_refresh = t;
        }
        if rebooted {
            let at = self.at(mi, w);
            self.event(Level::Notice, "+reboot", &at);
            let reboot_period = self.masters[mi].master_reboot_down_after_period;
            let i = self.inst_mut(mi, w);
            if i.flags & flag::MASTER != 0 && reboot_period != 0 {
                i.flags |= flag::MASTER_REBOOT;
                i.master_reboot_since_time = t;
            }
        }
        for a in new_replicas {
            let (ri, created) = self.add_replica(mi, a);
            if created {
                let at = self.at(mi, Which::Replica(ri));
                self.event(Level::Notice, "+slave", &at);
                self.dirty = true;
            }
        }
        let (kind, reported) = {
            let i = self.inst(mi, w);
            (i.flags & (flag::MASTER | flag::SLAVE), i.role_reported)
        };
        if role != reported {
            let i = self.inst_mut(mi, w);
            i.role_reported_time = t;
            i.role_reported = role;
            if role == flag::SLAVE {
                i.slave_conf_change_time = t;
            }
            let at = self.at(mi, w);
            let ev = if kind == role { "+role-change" } else { "-role-change" };
            let msg = format!("{} new reported role is {}", at, if role == flag::MASTER { "master" } else { "slave" });
            self.event(Level::Verbose, ev, &msg);
        }
        if self.tilt {
            return;
        }
        let Which::Replica(ri) = w else { return };
        if role == flag::MASTER {
            self.replica_reports_master(mi, ri, t);
        }
        if role == flag::SLAVE {
            self.replica_config_checks(mi, ri, t);
        }
    }

    /// A replica reports `role:master`: either the promotion we wait for, or a replica to
    /// turn back into one (`+convert-to-slave`).
    fn replica_reports_master(&mut self, mi: usize, ri: usize, t: u64) {
        let m = &self.masters[mi];
        let r = &m.replicas[ri];
        if r.flags & flag::PROMOTED != 0
            && m.inst.flags & flag::FAILOVER_IN_PROGRESS != 0
            && m.failover_state == FailoverState::WaitPromotion
        {
            let m = &mut self.masters[mi];
            m.config_epoch = m.failover_epoch;
            m.failover_state = FailoverState::ReconfSlaves;
            m.failover_state_change_time = t;
            self.dirty = true;
            self.after();
            let at = self.at(mi, Which::Replica(ri));
            self.event(Level::Warning, "+promoted-slave", &at);
            if self.simfailure_flags & 2 != 0 {
                failover::sim_crash();
            }
            let at = self.at(mi, Which::Master);
            self.event(Level::Warning, "+failover-state-reconf-slaves", &at);
            let (from, to) = (self.masters[mi].inst.addr.clone(), self.masters[mi].replicas[ri].addr.clone());
            self.client_reconfig_script(mi, true, &from, &to);
            self.force_hello_update(mi);
        } else {
            let wait = period::publish() * 4;
            if r.flags & flag::PROMOTED == 0
                && m.looks_sane(t)
                && r.no_down_for(wait, t)
                && t.saturating_sub(r.role_reported_time) > wait
            {
                let addr = m.inst.addr.clone();
                if failover::send_slaveof(self, mi, Which::Replica(ri), Some(&addr)) {
                    let at = self.at(mi, Which::Replica(ri));
                    self.event(Level::Notice, "+convert-to-slave", &at);
                }
            }
        }
    }

    /// A replica reports `role:slave`: fix a wrong master, follow reconfiguration progress.
    fn replica_config_checks(&mut self, mi: usize, ri: usize, t: u64) {
        let m = &self.masters[mi];
        let r = &m.replicas[ri];
        let wrong = r.slave_master_port != m.inst.addr.port
            || !r.slave_master_host.as_deref().is_some_and(|h| m.inst.addr.same_host(h));
        if wrong {
            let wait = m.failover_timeout;
            if m.looks_sane(t) && r.no_down_for(wait, t) && t.saturating_sub(r.slave_conf_change_time) > wait {
                let addr = m.inst.addr.clone();
                if failover::send_slaveof(self, mi, Which::Replica(ri), Some(&addr)) {
                    let at = self.at(mi, Which::Replica(ri));
                    self.event(Level::Notice, "+fix-slave-config", &at);
                }
            }
        }
        let m = &self.masters[mi];
        let r = &m.replicas[ri];
        if r.flags & (flag::RECONF_SENT | flag::RECONF_INPROG) == 0 {
            return;
        }
        let Some(p) = m.promoted_replica().map(|p| p.addr.clone()) else { return };
        if r.flags & flag::RECONF_SENT != 0
            && r.slave_master_host.as_deref().is_some_and(|h| p.same_host(h))
            && r.slave_master_port == p.port
        {
            let r = &mut self.masters[mi].replicas[ri];
            r.flags &= !flag::RECONF_SENT;
            r.flags |= flag::RECONF_INPROG;
            let at = self.at(mi, Which::Replica(ri));
            self.event(Level::Notice, "+slave-reconf-inprog", &at);
        }
        let r = &mut self.masters[mi].replicas[ri];
        if r.flags & flag::RECONF_INPROG != 0 && r.slave_master_link_up {
            r.flags &= !flag::RECONF_INPROG;
            r.flags |= flag::RECONF_DONE;
            let at = self.at(mi, Which::Replica(ri));
            self.event(Level::Notice, "+slave-reconf-done", &at);
        }
    }

    /// Redis's `sentinelForceHelloUpdateForMaster`: hellos go out on the next tick.
    pub fn force_hello_update(&mut self, mi: usize) {
        let m = &mut self.masters[mi];
        for i in std::iter::once(&mut m.inst).chain(m.replicas.iter_mut()).chain(m.sentinels.iter_mut()) {
            i.last_pub_time = i.last_pub_time.saturating_sub(period::publish() + 1);
        }
    }

    /// A hello message (from a Pub/Sub link or a PUBLISH sent to this Sentinel).
    pub fn process_hello(&mut self, hello: &str) {
        let tok: Vec<&str> = hello.split(',').collect();
        if tok.len() != 8 || hello.contains(&self.myid) {
            return;
        }
        let Some(mi) = self.master_index(tok[4]) else { return };
        let port: u16 = tok[1].parse().unwrap_or(0);
        let master_port: u16 = tok[6].parse().unwrap_or(0);
        let current_epoch: u64 = tok[3].parse().unwrap_or(0);
        let master_config_epoch: u64 = tok[7].parse().unwrap_or(0);
        let (ip, runid) = (tok[0], tok[2]);
        let find = |st: &State| {
            st.masters[mi]
                .sentinels
                .iter()
                .position(|s| s.addr.same_host(ip) && s.addr.port == port && s.runid.as_deref() == Some(runid))
        };
        let mut si = find(self);
        if si.is_none() {
            // Drop this runid's old address, and any other Sentinel that had this address.
            let before = self.masters[mi].sentinels.len();
            self.masters[mi].sentinels.retain(|s| s.runid.as_deref() != Some(runid));
            let removed = before != self.masters[mi].sentinels.len();
            if removed {
                let at = self.at(mi, Which::Master);
                self.event(Level::Notice, "+sentinel-address-switch", &format!("{at} ip {ip} port {port} for {runid}"));
            } else if let Some(o) =
                self.masters[mi].sentinels.iter().position(|s| s.addr.same_host(ip) && s.addr.port == port)
            {
                let at = self.at(mi, Which::Sentinel(o));
                self.event(Level::Notice, "+sentinel-invalid-addr", &at);
                let obsolete = self.masters[mi].sentinels[o].runid.clone();
                for m in self.masters.iter_mut() {
                    m.sentinels.retain(|s| s.runid != obsolete);
                }
            }
            let n = self.add_sentinel(mi, Addr { ip: ip.to_string(), port }, runid);
            if !removed {
                let at = self.at(mi, Which::Sentinel(n));
                self.event(Level::Notice, "+sentinel", &at);
            }
            self.dirty = true;
            si = Some(n);
        }
        if current_epoch > self.current_epoch {
            self.current_epoch = current_epoch;
            self.dirty = true;
            self.master_event(mi, "+new-epoch", &current_epoch.to_string());
        }
        let Some(si) = si else { return };
        if self.masters[mi].config_epoch < master_config_epoch {
            self.masters[mi].config_epoch = master_config_epoch;
            self.dirty = true;
            let m = &self.masters[mi];
            if master_port != m.inst.addr.port || !m.inst.addr.same_host(tok[5]) {
                let at = self.at(mi, Which::Sentinel(si));
                self.event(Level::Warning, "+config-update-from", &at);
                let m = &self.masters[mi];
                let msg = format!("{} {} {} {} {}", m.name(), m.inst.addr.ip, m.inst.addr.port, tok[5], master_port);
                self.master_event(mi, "+switch-master", &msg);
                let from = self.masters[mi].inst.addr.clone();
                self.reset_master_and_change_address(mi, tok[5], master_port);
                let to = self.masters[mi].inst.addr.clone();
                self.client_reconfig_script(mi, false, &from, &to);
            }
        }
        if let Some(s) = self.masters[mi].sentinels.get_mut(si) {
            s.last_hello_time = now();
        }
    }
}

/// The address in an INFO `slaveN:` line (`ip=..,port=..` or the old `ip,port,state`).
fn parse_slave_line(l: &str) -> Option<Addr> {
    let body = &l[l.find(':')? + 1..];
    if body.contains("ip=") {
        let mut ip = None;
        let mut port = None;
        for kv in body.split(',') {
            if let Some(v) = kv.strip_prefix("ip=") {
                ip = Some(v.to_string());
            } else if let Some(v) = kv.strip_prefix("port=") {
                port = v.parse().ok();
            }
        }
        Some(Addr { ip: ip?, port: port? })
    } else {
        let mut it = body.split(',');
        let ip = it.next()?.to_string();
        let port = it.next()?.parse().ok()?;
        Some(Addr { ip, port })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slave_lines() {
        let a = super::parse_slave_line("slave0:ip=127.0.0.1,port=6380,state=online,offset=1,lag=0").unwrap();
        assert_eq!((a.ip.as_str(), a.port), ("127.0.0.1", 6380));
        let a = super::parse_slave_line("slave1:10.0.0.1,7000,online").unwrap();
        assert_eq!(a.port, 7000);
    }
}
