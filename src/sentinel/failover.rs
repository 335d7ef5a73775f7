//! Failover: leader election by the votes other Sentinels return to
//! `SENTINEL is-master-down-by-addr`, the state machine (wait start, select replica, REPLICAOF
//! NO ONE, wait promotion, reconfigure replicas `parallel-syncs` at a time, update config) and
//! the switch to the promoted replica. Redis's `sentinelFailover*` family, step for step.

use super::instance::{flag, period, Addr, FailoverState, Instance, Kind};
use super::state::{now, Level, State, Which};

/// `SENTINEL SIMULATE-FAILURE` crash.
pub fn sim_crash() -> ! {
    tracing::warn!("Sentinel CRASH because of SENTINEL simulate-failure");
    std::process::exit(99)
}

/// Queues Redis's safe reconfiguration transaction on instance `(mi, w)`: MULTI, SLAVEOF
/// host port (or NO ONE), CONFIG REWRITE, CLIENT KILL TYPE normal, CLIENT KILL TYPE pubsub,
/// EXEC. False when the link is down.
pub fn send_slaveof(st: &mut State, mi: usize, w: Which, addr: Option<&Addr>) -> bool {
    if st.inst(mi, w).disconnected() {
        return false;
    }
    let m = &st.masters[mi];
    let (host, port) = match addr {
        Some(a) => (a.ip.clone(), a.port.to_string()),
        None => ("NO".to_string(), "ONE".to_string()),
    };
    let c = |s: &str| m.map_command(s).into_bytes();
    let cmds: Vec<Vec<Vec<u8>>> = vec![
        vec![c("MULTI")],
        vec![c("SLAVEOF"), host.into_bytes(), port.into_bytes()],
        vec![c("CONFIG"), b"REWRITE".to_vec()],
        vec![c("CLIENT"), b"KILL".to_vec(), b"TYPE".to_vec(), b"normal".to_vec()],
        vec![c("CLIENT"), b"KILL".to_vec(), b"TYPE".to_vec(), b"pubsub".to_vec()],
        vec![c("EXEC")],
    ];
    st.inst_mut(mi, w).queued.extend(cmds.into_iter().map(|c| (Kind::Discard, c)));
    true
}

/// Redis's `sentinelStartFailoverIfNeeded` + `sentinelStartFailover`.
pub fn start_if_needed(st: &mut State, mi: usize) -> bool {
    let t = now();
    let m = &mut st.masters[mi];
    if m.inst.flags & flag::O_DOWN == 0 || m.inst.flags & flag::FAILOVER_IN_PROGRESS != 0 {
        return false;
    }
    if t.saturating_sub(m.failover_start_time) < m.failover_timeout * 2 {
        if m.failover_delay_logged != m.failover_start_time {
            m.failover_delay_logged = m.failover_start_time;
            let when = (m.failover_start_time + m.failover_timeout * 2) / 1000;
            tracing::warn!("Next failover delay: I will not start a failover before {}", ctime(when));
        }
        return false;
    }
    start(st, mi);
    true
}

/// Redis's `sentinelStartFailover`: a new epoch, then wait for the election.
pub fn start(st: &mut State, mi: usize) {
    let t = now();
    let m = &mut st.masters[mi];
    m.failover_state = FailoverState::WaitStart;
    m.inst.flags |= flag::FAILOVER_IN_PROGRESS;
    st.current_epoch += 1;
    let m = &mut st.masters[mi];
    m.failover_epoch = st.current_epoch;
    m.failover_start_time = t + fastrand::u64(0..period::MAX_DESYNC);
    m.failover_state_change_time = t;
    st.dirty = true;
    let e = st.current_epoch.to_string();
    st.master_event(mi, "+new-epoch", &e);
    let at = st.at(mi, Which::Master);
    st.event(Level::Warning, "+try-failover", &at);
}

/// `ctime()`-style text (`Sat Mar 13 21:54:02 2021`, UTC).
fn ctime(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let t = crate::logging::format_time(secs, 0);
    // "dd Mon yyyy hh:mm:ss.000" -> "Www Mon dd hh:mm:ss yyyy"
    let p: Vec<&str> = t.split(' ').collect();
    let day = DAYS[((secs / 86400) % 7) as usize];
    if p.len() == 4 {
        let d: u32 = p[0].parse().unwrap_or(0);
        format!("{} {} {:2} {} {}", day, p[1], d, &p[3][..8], p[2])
    } else {
        t
    }
}

/// Redis's `sentinelGetLeader`: the Sentinel with an absolute majority of the known voters
/// (and at least `quorum` votes) at `epoch`, voting here for the most voted one (or self).
pub fn get_leader(st: &mut State, mi: usize, epoch: u64) -> Option<String> {
    let m = &st.masters[mi];
    let voters = m.sentinels.len() as u64 + 1;
    let mut counters: Vec<(String, u64)> = Vec::new();
    let incr = |c: &mut Vec<(String, u64)>, id: &str| -> u64 {
        if let Some(e) = c.iter_mut().find(|(k, _)| k == id) {
            e.1 += 1;
            e.1
        } else {
            c.push((id.to_string(), 1));
            1
        }
    };
    for s in &m.sentinels {
        if let Some(l) = &s.leader {
            if s.leader_epoch == st.current_epoch {
                incr(&mut counters, l);
            }
        }
    }
    let mut winner: Option<String> = None;
    let mut max_votes = 0;
    for (k, v) in &counters {
        if *v > max_votes {
            max_votes = *v;
            winner = Some(k.clone());
        }
    }
    let candidate = winner.clone().unwrap_or_else(|| st.myid.clone());
    let (myvote, leader_epoch) = st.vote_leader(mi, epoch, &candidate);
    if let Some(v) = myvote.filter(|_| leader_epoch == epoch) {
        let votes = incr(&mut counters, &v);
        if votes > max_votes {
            max_votes = votes;
            winner = Some(v);
        }
    }
    let quorum = st.masters[mi].quorum as u64;
    winner.filter(|_| max_votes > voters / 2 && max_votes >= quorum)
}

/// Redis's `sentinelSelectSlave`.
pub fn select_replica(st: &State, mi: usize) -> Option<usize> {
    let t = now();
    let m = &st.masters[mi];
    let mut max_down = 0;
    if m.inst.flags & flag::S_DOWN != 0 {
        max_down += t.saturating_sub(m.inst.s_down_since_time);
    }
    max_down += m.inst.down_after_period * 10;
    let validity = if m.inst.flags & flag::S_DOWN != 0 { period::ping() * 5 } else { period::info() * 3 };
    let mut cands: Vec<(usize, &Instance)> = m
        .replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.flags & (flag::S_DOWN | flag::O_DOWN) == 0
                && !r.disconnected()
                && t.saturating_sub(r.link.last_avail_time) <= period::ping() * 5
                && r.slave_priority != 0
                && t.saturating_sub(r.info_refresh) <= validity
                && r.master_link_down_time <= max_down as i64
        })
        .collect();
    cands.sort_by(|(_, a), (_, b)| {
        a.slave_priority.cmp(&b.slave_priority).then(b.slave_repl_offset.cmp(&a.slave_repl_offset)).then_with(
            || match (&a.runid, &b.runid) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
            },
        )
    });
    cands.first().map(|(i, _)| *i)
}

/// Redis's `sentinelAbortFailover`.
pub fn abort(st: &mut State, mi: usize) {
    let m = &mut st.masters[mi];
    m.inst.flags &= !(flag::FAILOVER_IN_PROGRESS | flag::FORCE_FAILOVER);
    m.failover_state = FailoverState::None;
    m.failover_state_change_time = now();
    if let Some(key) = m.promoted.take() {
        if let Some(r) = m.replica_mut(&key) {
            r.flags &= !flag::PROMOTED;
        }
    }
}

fn promoted_index(st: &State, mi: usize) -> Option<usize> {
    let m = &st.masters[mi];
    let key = m.promoted.as_ref()?;
    m.replicas.iter().position(|r| &r.name == key)
}

/// One step of the failover state machine for master `mi`.
pub fn state_machine(st: &mut State, mi: usize) {
    let t = now();
    if st.masters[mi].inst.flags & flag::FAILOVER_IN_PROGRESS == 0 {
        return;
    }
    match st.masters[mi].failover_state {
        FailoverState::WaitStart => {
            let epoch = st.masters[mi].failover_epoch;
            let leader = get_leader(st, mi, epoch);
            let is_leader = leader.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(&st.myid));
            let m = &st.masters[mi];
            if !is_leader && m.inst.flags & flag::FORCE_FAILOVER == 0 {
                let election_timeout = period::election_timeout().min(m.failover_timeout);
                if t.saturating_sub(m.failover_start_time) > election_timeout && t > m.failover_start_time {
                    let at = st.at(mi, Which::Master);
                    st.event(Level::Warning, "-failover-abort-not-elected", &at);
                    abort(st, mi);
                }
                return;
            }
            let at = st.at(mi, Which::Master);
            st.event(Level::Warning, "+elected-leader", &at);
            if st.simfailure_flags & 1 != 0 {
                sim_crash();
            }
            let m = &mut st.masters[mi];
            m.failover_state = FailoverState::SelectSlave;
            m.failover_state_change_time = t;
            st.event(Level::Warning, "+failover-state-select-slave", &at);
        }
        FailoverState::SelectSlave => match select_replica(st, mi) {
            None => {
                let at = st.at(mi, Which::Master);
                st.event(Level::Warning, "-failover-abort-no-good-slave", &at);
                abort(st, mi);
            }
            Some(ri) => {
                let at = st.at(mi, Which::Replica(ri));
                st.event(Level::Warning, "+selected-slave", &at);
                let m = &mut st.masters[mi];
                m.replicas[ri].flags |= flag::PROMOTED;
                m.promoted = Some(m.replicas[ri].name.clone());
                m.failover_state = FailoverState::SendSlaveofNoone;
                m.failover_state_change_time = t;
                st.event(Level::Notice, "+failover-state-send-slaveof-noone", &at);
            }
        },
        FailoverState::SendSlaveofNoone => {
            let Some(ri) = promoted_index(st, mi) else {
                abort(st, mi);
                return;
            };
            if st.masters[mi].replicas[ri].disconnected() {
                if t.saturating_sub(st.masters[mi].failover_state_change_time) > st.masters[mi].failover_timeout {
                    let at = st.at(mi, Which::Master);
                    st.event(Level::Warning, "-failover-abort-slave-timeout", &at);
                    abort(st, mi);
                }
                return;
            }
            if send_slaveof(st, mi, Which::Replica(ri), None) {
                let at = st.at(mi, Which::Replica(ri));
                st.event(Level::Notice, "+failover-state-wait-promotion", &at);
                let m = &mut st.masters[mi];
                m.failover_state = FailoverState::WaitPromotion;
                m.failover_state_change_time = t;
            }
        }
        FailoverState::WaitPromotion => {
            let m = &st.masters[mi];
            if t.saturating_sub(m.failover_state_change_time) > m.failover_timeout {
                let at = st.at(mi, Which::Master);
                st.event(Level::Warning, "-failover-abort-slave-timeout", &at);
                abort(st, mi);
            }
        }
        FailoverState::ReconfSlaves => reconf_next_replica(st, mi),
        FailoverState::None | FailoverState::UpdateConfig => {}
    }
}

/// Redis's `sentinelFailoverReconfNextSlave` (then `sentinelFailoverDetectEnd`).
fn reconf_next_replica(st: &mut State, mi: usize) {
    let t = now();
    let Some(pi) = promoted_index(st, mi) else { return };
    let paddr = st.masters[mi].replicas[pi].addr.clone();
    let mut in_progress =
        st.masters[mi].replicas.iter().filter(|r| r.flags & (flag::RECONF_SENT | flag::RECONF_INPROG) != 0).count()
            as u32;
    let n = st.masters[mi].replicas.len();
    for ri in 0..n {
        if in_progress >= st.masters[mi].parallel_syncs {
            break;
        }
        let r = &st.masters[mi].replicas[ri];
        if r.flags & (flag::PROMOTED | flag::RECONF_DONE) != 0 {
            continue;
        }
        if r.flags & flag::RECONF_SENT != 0
            && t.saturating_sub(r.slave_reconf_sent_time) > period::slave_reconf_timeout()
        {
            let at = st.at(mi, Which::Replica(ri));
            st.event(Level::Notice, "-slave-reconf-sent-timeout", &at);
            let r = &mut st.masters[mi].replicas[ri];
            r.flags &= !flag::RECONF_SENT;
            r.flags |= flag::RECONF_DONE;
        }
        let r = &st.masters[mi].replicas[ri];
        if r.flags & (flag::RECONF_SENT | flag::RECONF_INPROG) != 0 || r.disconnected() {
            continue;
        }
        if send_slaveof(st, mi, Which::Replica(ri), Some(&paddr)) {
            let r = &mut st.masters[mi].replicas[ri];
            r.flags |= flag::RECONF_SENT;
            r.slave_reconf_sent_time = t;
            let at = st.at(mi, Which::Replica(ri));
            st.event(Level::Notice, "+slave-reconf-sent", &at);
            in_progress += 1;
        }
    }
    detect_end(st, mi, pi, &paddr);
}

/// Redis's `sentinelFailoverDetectEnd`.
fn detect_end(st: &mut State, mi: usize, pi: usize, paddr: &Addr) {
    let t = now();
    let m = &st.masters[mi];
    if m.replicas[pi].flags & flag::S_DOWN != 0 {
        return;
    }
    let elapsed = t.saturating_sub(m.failover_state_change_time);
    let mut not_reconfigured =
        m.replicas.iter().filter(|r| r.flags & (flag::PROMOTED | flag::RECONF_DONE | flag::S_DOWN) == 0).count();
    let mut timeout = false;
    let at = st.at(mi, Which::Master);
    if elapsed > m.failover_timeout {
        not_reconfigured = 0;
        timeout = true;
        st.event(Level::Warning, "+failover-end-for-timeout", &at);
    }
    if not_reconfigured == 0 {
        st.event(Level::Warning, "+failover-end", &at);
        let m = &mut st.masters[mi];
        m.failover_state = FailoverState::UpdateConfig;
        m.failover_state_change_time = t;
    }
    if timeout {
        for ri in 0..st.masters[mi].replicas.len() {
            let r = &st.masters[mi].replicas[ri];
            if r.flags & (flag::PROMOTED | flag::RECONF_DONE | flag::RECONF_SENT) != 0 || r.disconnected() {
                continue;
            }
            if send_slaveof(st, mi, Which::Replica(ri), Some(paddr)) {
                let at = st.at(mi, Which::Replica(ri));
                st.event(Level::Notice, "+slave-reconf-sent-be", &at);
                st.masters[mi].replicas[ri].flags |= flag::RECONF_SENT;
            }
        }
    }
}

/// Redis's `sentinelFailoverSwitchToPromotedSlave`.
pub fn switch_to_promoted(st: &mut State, mi: usize) {
    let m = &st.masters[mi];
    let to = m.promoted_replica().map(|r| r.addr.clone()).unwrap_or_else(|| m.inst.addr.clone());
    let msg = format!("{} {} {} {} {}", m.name(), m.inst.addr.ip, m.inst.addr.port, to.ip, to.port);
    st.master_event(mi, "+switch-master", &msg);
    st.reset_master_and_change_address(mi, &to.ip, to.port);
}
