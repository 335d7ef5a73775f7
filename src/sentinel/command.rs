//! The SENTINEL command family and Sentinel's INFO, with Redis 7.0's replies and error texts.

use super::failover;
use super::instance::{flag, Addr, Instance, Master};
use super::state::{now, Level, State, Which};
use crate::protocol::reply::Reply;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

fn s(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bulk(v: impl ToString) -> Reply {
    Reply::Bulk(Bytes::from(v.to_string()))
}

fn arity(sub: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for 'sentinel|{}' command", sub.to_ascii_lowercase()))
}

fn no_master() -> Reply {
    Reply::error("ERR No such master with that name".into())
}

/// Redis's `addReplySentinelRedisInstance`: one instance as a map.
fn instance_reply(st: &State, i: &Instance, m: Option<&Master>) -> Reply {
    let t = now();
    let mut f: Vec<(Reply, Reply)> = Vec::new();
    let mut put = |k: &str, v: Reply| f.push((bulk(k), v));
    put("name", bulk(&i.name));
    put("ip", bulk(st.announce(&i.addr)));
    put("port", bulk(i.addr.port));
    put("runid", bulk(i.runid.clone().unwrap_or_default()));
    put("flags", bulk(i.flags_text()));
    put("link-pending-commands", bulk(i.link.pending_commands));
    put("link-refcount", bulk(1));
    if let (Some(m), true) = (m, i.flags & flag::FAILOVER_IN_PROGRESS != 0) {
        put("failover-state", bulk(m.failover_state.name()));
    }
    put("last-ping-sent", bulk(if i.link.act_ping_time != 0 { t.saturating_sub(i.link.act_ping_time) } else { 0 }));
    put("last-ok-ping-reply", bulk(t.saturating_sub(i.link.last_avail_time)));
    put("last-ping-reply", bulk(t.saturating_sub(i.link.last_pong_time)));
    if i.flags & flag::S_DOWN != 0 {
        put("s-down-time", bulk(t.saturating_sub(i.s_down_since_time)));
    }
    if i.flags & flag::O_DOWN != 0 {
        put("o-down-time", bulk(t.saturating_sub(i.o_down_since_time)));
    }
    put("down-after-milliseconds", bulk(i.down_after_period));
    if i.flags & (flag::MASTER | flag::SLAVE) != 0 {
        put("info-refresh", bulk(if i.info_refresh == 0 { 0 } else { t.saturating_sub(i.info_refresh) }));
        put("role-reported", bulk(if i.role_reported == flag::MASTER { "master" } else { "slave" }));
        put("role-reported-time", bulk(t.saturating_sub(i.role_reported_time)));
    }
    if let (Some(m), true) = (m, i.flags & flag::MASTER != 0) {
        put("config-epoch", bulk(m.config_epoch));
        put("num-slaves", bulk(m.replicas.len()));
        put("num-other-sentinels", bulk(m.sentinels.len()));
        put("quorum", bulk(m.quorum));
        put("failover-timeout", bulk(m.failover_timeout));
        put("parallel-syncs", bulk(m.parallel_syncs));
        if let Some(sc) = &m.notification_script {
            put("notification-script", bulk(sc));
        }
        if let Some(sc) = &m.client_reconfig_script {
            put("client-reconfig-script", bulk(sc));
        }
    }
    if i.flags & flag::SLAVE != 0 {
        put("master-link-down-time", bulk(i.master_link_down_time));
        put("master-link-status", bulk(if i.slave_master_link_up { "ok" } else { "err" }));
        put("master-host", bulk(i.slave_master_host.clone().unwrap_or_else(|| "?".into())));
        put("master-port", bulk(i.slave_master_port));
        put("slave-priority", bulk(i.slave_priority));
        put("slave-repl-offset", bulk(i.slave_repl_offset));
        put("replica-announced", bulk(i.replica_announced));
    }
    if i.flags & flag::SENTINEL != 0 {
        put("last-hello-message", bulk(t.saturating_sub(i.last_hello_time)));
        put("voted-leader", bulk(i.leader.clone().unwrap_or_else(|| "?".into())));
        put("voted-leader-epoch", bulk(i.leader_epoch));
    }
    Reply::Map(f)
}

/// Runs `SENTINEL <sub> ...`.
pub fn sentinel(st: &Rc<RefCell<State>>, args: &[Bytes]) -> Reply {
    let sub = s(&args[1]).to_ascii_lowercase();
    let n = args.len();
    let mut st = st.borrow_mut();
    let master = |st: &State, i: usize| st.master_index(&s(&args[i]));
    match sub.as_str() {
        "masters" if n == 2 => Reply::Array(st.masters.iter().map(|m| instance_reply(&st, &m.inst, Some(m))).collect()),
        "master" if n == 3 => match master(&st, 2) {
            Some(mi) => instance_reply(&st, &st.masters[mi].inst, Some(&st.masters[mi])),
            None => no_master(),
        },
        "slaves" | "replicas" if n == 3 => match master(&st, 2) {
            // Replicas that say replica-announced no in their INFO are left out, as Redis does.
            Some(mi) => Reply::Array(
                st.masters[mi]
                    .replicas
                    .iter()
                    .filter(|r| r.replica_announced != 0)
                    .map(|r| instance_reply(&st, r, None))
                    .collect(),
            ),
            None => no_master(),
        },
        "sentinels" if n == 3 => match master(&st, 2) {
            Some(mi) => Reply::Array(st.masters[mi].sentinels.iter().map(|r| instance_reply(&st, r, None)).collect()),
            None => no_master(),
        },
        "myid" if n == 2 => bulk(&st.myid),
        "is-master-down-by-addr" if n == 6 => {
            let Ok(port) = s(&args[3]).parse::<i64>() else {
                return Reply::error("ERR value is not an integer or out of range".into());
            };
            let Ok(req_epoch) = s(&args[4]).parse::<i64>() else {
                return Reply::error("ERR value is not an integer or out of range".into());
            };
            let ip = s(&args[2]);
            let mi = st.masters.iter().position(|m| m.inst.addr.same_host(&ip) && m.inst.addr.port as i64 == port);
            let isdown = !st.tilt && mi.is_some_and(|mi| st.masters[mi].inst.flags & flag::S_DOWN != 0);
            let runid = s(&args[5]);
            let (leader, leader_epoch) = match mi {
                Some(mi) if runid != "*" => {
                    let (l, e) = st.vote_leader(mi, req_epoch.max(0) as u64, &runid);
                    st.after();
                    (l, e)
                }
                _ => (None, 0),
            };
            let leader_epoch = if leader.is_some() { leader_epoch } else { 0 };
            Reply::Array(vec![
                Reply::Int(isdown as i64),
                bulk(leader.unwrap_or_else(|| "*".into())),
                Reply::Int(leader_epoch as i64),
            ])
        }
        "reset" if n == 3 => {
            let pat = args[2].to_vec();
            let mut count = 0;
            for mi in 0..st.masters.len() {
                if crate::cmd::util::glob_match(&pat, st.masters[mi].name().as_bytes(), false) {
                    st.reset_master(mi, false, true);
                    count += 1;
                }
            }
            st.dirty = true;
            Reply::Int(count)
        }
        "get-master-addr-by-name" if n == 3 => match master(&st, 2) {
            Some(mi) => {
                let a = st.masters[mi].current_addr();
                Reply::Array(vec![bulk(st.announce(&a)), bulk(a.port)])
            }
            None => Reply::NilArray,
        },
        "failover" if n == 3 => {
            let Some(mi) = master(&st, 2) else { return no_master() };
            if st.masters[mi].inst.flags & flag::FAILOVER_IN_PROGRESS != 0 {
                return Reply::error("INPROG Failover already in progress".into());
            }
            if failover::select_replica(&st, mi).is_none() {
                return Reply::error("NOGOODSLAVE No suitable replica to promote".into());
            }
            tracing::warn!("Executing user requested FAILOVER of '{}'", st.masters[mi].name());
            failover::start(&mut st, mi);
            st.masters[mi].inst.flags |= flag::FORCE_FAILOVER;
            Reply::Ok
        }
        "pending-scripts" if n == 2 => st.scripts.pending_reply(),
        "monitor" if n == 6 => {
            let Ok(quorum) = s(&args[5]).parse::<i64>() else { return Reply::error("ERR Invalid quorum".into()) };
            let Ok(port) = s(&args[4]).parse::<i64>() else { return Reply::error("ERR Invalid port".into()) };
            if quorum <= 0 {
                return Reply::error("ERR Quorum must be 1 or greater.".into());
            }
            let ip = s(&args[3]);
            let resolvable =
                || std::net::ToSocketAddrs::to_socket_addrs(&(ip.as_str(), 0)).is_ok_and(|mut a| a.next().is_some());
            if ip.parse::<std::net::IpAddr>().is_err() && (!st.resolve_hostnames || !resolvable()) {
                return Reply::error("ERR Invalid IP address or hostname specified".into());
            }
            // Port 0 is accepted, as Redis's `createSentinelAddr` accepts it.
            if !(0..=65535).contains(&port) {
                return Reply::error("ERR Invalid port number.".into());
            }
            match st.add_master(&s(&args[2]), Addr { ip, port: port as u16 }, quorum as u32) {
                Ok(mi) => {
                    let reply = flush_reply(&mut st);
                    let at = st.at(mi, Which::Master);
                    st.event(Level::Warning, "+monitor", &format!("{at} quorum {quorum}"));
                    reply
                }
                Err(e) => Reply::error(format!("ERR {e}")),
            }
        }
        "flushconfig" if n == 2 => flush_reply(&mut st),
        "remove" if n == 3 => {
            let Some(mi) = master(&st, 2) else { return no_master() };
            let at = st.at(mi, Which::Master);
            st.event(Level::Warning, "-monitor", &at);
            st.masters.remove(mi);
            flush_reply(&mut st)
        }
        "ckquorum" if n == 3 => {
            let Some(mi) = master(&st, 2) else { return no_master() };
            let m = &st.masters[mi];
            let voters = m.sentinels.len() + 1;
            let usable = 1 + m.sentinels.iter().filter(|x| x.flags & (flag::S_DOWN | flag::O_DOWN) == 0).count();
            let noquorum = usable < m.quorum as usize;
            let noauth = usable < voters / 2 + 1;
            if !noquorum && !noauth {
                Reply::Status(
                    format!("OK {usable} usable Sentinels. Quorum and failover authorization can be reached").into(),
                )
            } else {
                let mut e = format!("NOQUORUM {usable} usable Sentinels. ");
                if noquorum {
                    e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
                }
                if noauth {
                    if noquorum {
                        e.push_str(". ");
                    }
                    e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
                }
                Reply::error(e)
            }
        }
        "set" if n >= 3 => set(&mut st, args),
        "config" if n >= 3 => config(&mut st, args),
        "info-cache" if n >= 2 => {
            let t = now();
            let mut out = Vec::new();
            for m in &st.masters {
                if n > 2 && !args[2..].iter().any(|a| s(a) == m.name()) {
                    continue;
                }
                let mut insts = vec![Reply::Array(vec![
                    Reply::Int(t.saturating_sub(m.inst.info_refresh) as i64),
                    bulk(&m.inst.info),
                ])];
                for r in &m.replicas {
                    insts.push(Reply::Array(vec![Reply::Int(t.saturating_sub(r.info_refresh) as i64), bulk(&r.info)]));
                }
                out.push(bulk(m.name()));
                out.push(Reply::Array(insts));
            }
            Reply::Array(out)
        }
        "simulate-failure" if n >= 3 => {
            st.simfailure_flags = 0;
            for a in &args[2..] {
                match s(a).to_ascii_lowercase().as_str() {
                    "crash-after-election" => {
                        st.simfailure_flags |= 1;
                        tracing::warn!("Failure simulation: this Sentinel will crash after being successfully elected as failover leader");
                    }
                    "crash-after-promotion" => {
                        st.simfailure_flags |= 2;
                        tracing::warn!("Failure simulation: this Sentinel will crash after promoting the selected replica to master");
                    }
                    "help" => return Reply::Array(vec![bulk("crash-after-election"), bulk("crash-after-promotion")]),
                    _ => return Reply::error("ERR Unknown failure simulation specified".into()),
                }
            }
            Reply::Ok
        }
        "debug" if n == 2 => {
            Reply::Map(super::instance::period::all().into_iter().map(|(k, v)| (bulk(k), bulk(v))).collect())
        }
        "debug" => {
            let mut j = 2;
            while j < n {
                let name = s(&args[j]);
                let Some(v) = args.get(j + 1).map(s) else {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for SENTINEL DEBUG '{name}'"
                    ));
                };
                let Some(ms) = v.parse::<u64>().ok().filter(|v| *v > 0) else {
                    return Reply::error(format!("ERR Invalid argument '{v}' for SENTINEL DEBUG '{name}'"));
                };
                if !super::instance::period::set(&name, ms) {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for SENTINEL DEBUG '{name}'"
                    ));
                }
                j += 2;
            }
            Reply::Ok
        }
        "help" if n == 2 => Reply::Array(
            [
                "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CKQUORUM <master-name>",
                "    Check if the current Sentinel configuration is able to reach the quorum",
                "    needed to failover a master and the majority needed to authorize the",
                "    failover.",
                "CONFIG SET <param> <value>",
                "    Set a global Sentinel configuration parameter.",
                "CONFIG GET <param>",
                "    Get global Sentinel configuration parameter.",
                "DEBUG [<param> <value> ...]",
                "    Show a list of configurable time parameters and their values (milliseconds).",
                "    Or update current configurable parameters values (one or more).",
                "GET-MASTER-ADDR-BY-NAME <master-name>",
                "    Return the ip and port number of the master with that name.",
                "FAILOVER <master-name>",
                "    Manually failover a master node without asking for agreement from other",
                "    Sentinels",
                "FLUSHCONFIG",
                "    Force Sentinel to rewrite its configuration on disk, including the current",
                "    Sentinel state.",
                "INFO-CACHE <master-name>",
                "    Return last cached INFO output from masters and all its replicas.",
                "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
                "    Check if the master specified by ip:port is down from current Sentinel's",
                "    point of view.",
                "MASTER <master-name>",
                "    Show the state and info of the specified master.",
                "MASTERS",
                "    Show a list of monitored masters and their state.",
                "MONITOR <name> <ip> <port> <quorum>",
                "    Start monitoring a new master with the specified name, ip, port and quorum.",
                "MYID",
                "    Return the ID of the Sentinel instance.",
                "PENDING-SCRIPTS",
                "    Get pending scripts information.",
                "REMOVE <master-name>",
                "    Remove master from Sentinel's monitor list.",
                "REPLICAS <master-name>",
                "    Show a list of replicas for this master and their state.",
                "RESET <pattern>",
                "    Reset masters for specific master name matching this pattern.",
                "SENTINELS <master-name>",
                "    Show a list of Sentinel instances for this master and their state.",
                "SET <master-name> <option> <value> [<option> <value> ...]",
                "    Set configuration parameters for certain masters.",
                "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
                "    Simulate a Sentinel crash.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::Status((*l).into()))
            .collect(),
        ),
        "masters"
        | "master"
        | "slaves"
        | "replicas"
        | "sentinels"
        | "is-master-down-by-addr"
        | "reset"
        | "get-master-addr-by-name"
        | "failover"
        | "pending-scripts"
        | "monitor"
        | "flushconfig"
        | "remove"
        | "ckquorum"
        | "set"
        | "config"
        | "simulate-failure" => arity(&sub),
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try SENTINEL HELP.", s(&args[1]))),
    }
}

/// SENTINEL SET <master> <option> <value> ...
/// Redis's `sentinelFlushConfigAndReply`: writes sentinel.conf now; +OK, or an error when it
/// could not be written (the cause is in the log).
fn flush_reply(st: &mut State) -> Reply {
    match st.flush_config() {
        Ok(()) => Reply::Ok,
        Err(_) => Reply::error("ERR Failed to save config file. Check server logs.".into()),
    }
}

/// SENTINEL SET: options applied in order until one is bad; when any was applied the
/// config file is written (and, if all were good, the reply tells whether that worked).
fn set(st: &mut State, args: &[Bytes]) -> Reply {
    let mut changes = false;
    let reply = apply_set(st, args, &mut changes);
    if !changes {
        return reply;
    }
    if matches!(reply, Reply::Ok) {
        return flush_reply(st);
    }
    let _ = st.flush_config();
    reply
}

fn apply_set(st: &mut State, args: &[Bytes], changes: &mut bool) -> Reply {
    let Some(mi) = st.master_index(&s(&args[2])) else { return no_master() };
    let mut j = 3;
    while j < args.len() {
        let option = s(&args[j]).to_ascii_lowercase();
        let more = args.len() - j - 1;
        let val = args.get(j + 1).map(s).unwrap_or_default();
        let badfmt = |v: &str| Reply::error(format!("ERR Invalid argument '{}' for SENTINEL SET '{}'", v, option));
        let num = || val.parse::<i64>().ok().filter(|v| *v > 0);
        let m = &mut st.masters[mi];
        let mut used = 2;
        match option.as_str() {
            "down-after-milliseconds" if more > 0 => {
                let Some(v) = num() else { return badfmt(&val) };
                m.inst.down_after_period = v as u64;
                for r in m.replicas.iter_mut().chain(m.sentinels.iter_mut()) {
                    r.down_after_period = v as u64;
                }
            }
            "failover-timeout" if more > 0 => {
                let Some(v) = num() else { return badfmt(&val) };
                m.failover_timeout = v as u64;
            }
            "parallel-syncs" if more > 0 => {
                let Some(v) = num() else { return badfmt(&val) };
                m.parallel_syncs = v as u32;
            }
            "quorum" if more > 0 => {
                let Some(v) = num() else { return badfmt(&val) };
                m.quorum = v as u32;
            }
            "master-reboot-down-after-period" if more > 0 => {
                let Some(v) = val.parse::<i64>().ok().filter(|v| *v >= 0) else { return badfmt(&val) };
                m.master_reboot_down_after_period = v as u64;
            }
            "auth-pass" if more > 0 => {
                m.auth_pass = Some(val.clone()).filter(|v| !v.is_empty());
                st.drop_instance_connections(mi);
            }
            "auth-user" if more > 0 => {
                m.auth_user = Some(val.clone()).filter(|v| !v.is_empty());
                st.drop_instance_connections(mi);
            }
            "notification-script" | "client-reconfig-script" if more > 0 => {
                if st.deny_scripts_reconfig {
                    return Reply::error(
                        "ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your Sentinel configuration"
                            .into(),
                    );
                }
                if !val.is_empty() && !super::scripts::executable(&val) {
                    return Reply::error(if option == "notification-script" {
                        "ERR Notification script seems non existing or non executable".into()
                    } else {
                        "ERR Client reconfiguration script seems non existing or non executable".into()
                    });
                }
                let v = Some(val.clone()).filter(|v| !v.is_empty());
                if option == "notification-script" {
                    m.notification_script = v;
                } else {
                    m.client_reconfig_script = v;
                }
            }
            "rename-command" if more > 1 => {
                let (a, b) = (val.clone(), s(&args[j + 2]));
                m.renamed.retain(|(x, _)| !x.eq_ignore_ascii_case(&a));
                if !a.eq_ignore_ascii_case(&b) {
                    m.renamed.push((a, b));
                }
                used = 3;
            }
            _ => {
                return Reply::error(format!(
                    "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                    s(&args[j])
                ));
            }
        }
        *changes = true;
        let at = st.at(mi, Which::Master);
        let redacted = option == "auth-pass";
        let shown: Vec<String> = args[j + 1..j + used].iter().map(s).collect();
        let shown = if redacted { "******".to_string() } else { shown.join(" ") };
        st.event(Level::Warning, "+set", &format!("{} {} {}", at, s(&args[j]), shown));
        j += used;
    }
    Reply::Ok
}

/// SENTINEL CONFIG GET <pattern> / SET <option> <value>.
fn config(st: &mut State, args: &[Bytes]) -> Reply {
    let sub = s(&args[2]).to_ascii_lowercase();
    if sub == "get" && args.len() == 4 {
        let pat = args[3].to_vec();
        let items: Vec<(&str, String)> = vec![
            ("resolve-hostnames", if st.resolve_hostnames { "yes" } else { "no" }.into()),
            ("announce-hostnames", if st.announce_hostnames { "yes" } else { "no" }.into()),
            ("announce-ip", st.announce_ip.clone().unwrap_or_default()),
            ("announce-port", st.announce_port.to_string()),
            ("sentinel-user", st.sentinel_user.clone().unwrap_or_default()),
            ("sentinel-pass", st.sentinel_pass.clone().unwrap_or_default()),
        ];
        return Reply::Map(
            items
                .into_iter()
                .filter(|(k, _)| crate::cmd::util::glob_match(&pat, k.as_bytes(), true))
                .map(|(k, v)| (bulk(k), bulk(v)))
                .collect(),
        );
    }
    if sub == "set" && args.len() == 5 {
        let (o, v) = (s(&args[3]).to_ascii_lowercase(), s(&args[4]));
        let bad = || Reply::error(format!("ERR Invalid value '{}' to SENTINEL CONFIG SET '{}'", v, s(&args[3])));
        let yn = match v.to_ascii_lowercase().as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        match o.as_str() {
            "resolve-hostnames" => {
                st.resolve_hostnames = match yn {
                    Some(b) => b,
                    None => return bad(),
                }
            }
            "announce-hostnames" => {
                st.announce_hostnames = match yn {
                    Some(b) => b,
                    None => return bad(),
                }
            }
            "announce-ip" => st.announce_ip = Some(v.clone()).filter(|v| !v.is_empty()),
            "announce-port" => match v.parse::<u16>() {
                Ok(p) => st.announce_port = p,
                Err(_) => return bad(),
            },
            "sentinel-user" => st.sentinel_user = Some(v.clone()).filter(|v| !v.is_empty()),
            "sentinel-pass" => st.sentinel_pass = Some(v.clone()).filter(|v| !v.is_empty()),
            _ => return Reply::error(format!("ERR Invalid argument '{}' to SENTINEL CONFIG SET", s(&args[3]))),
        }
        let reply = flush_reply(st);
        // New credentials for the other Sentinels: reconnect with them.
        if o == "sentinel-user" || o == "sentinel-pass" {
            st.drop_sentinel_connections();
        }
        return reply;
    }
    Reply::error("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.".into())
}

/// Sentinel's INFO: the server, clients, stats, cpu and sentinel sections (the default and
/// "all" set in sentinel mode), or the ones named.
pub fn info(st: &State, args: &[Bytes]) -> String {
    let want: Vec<String> = args.iter().map(|a| s(a).to_ascii_lowercase()).collect();
    let all = want.is_empty() || want.iter().any(|w| w == "all" || w == "everything" || w == "default");
    let has = |n: &str| all || want.iter().any(|w| w == n);
    let mut out: Vec<String> = Vec::new();
    let t = now();
    if has("server") {
        let up = t.saturating_sub(st.start_ms) / 1000;
        out.push(format!(
            "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:sentinel\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
            std::env::consts::OS,
            std::process::id(),
            st.run_id,
            st.settings.port,
            t * 1000,
            up,
            up / 86400,
            (t / 1000) & ((1 << 24) - 1),
            std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
            st.settings.config_file
        ));
    }
    let c = &st.clients;
    if has("clients") {
        out.push(format!(
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:10000\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
            c.map.len(),
            c.map.values().filter(|e| e.tracking).count()
        ));
    }
    if has("stats") {
        let channels: HashSet<&Vec<u8>> = st.subscribers.iter().flat_map(|x| x.channels.iter()).collect();
        let patterns: usize = st.subscribers.iter().map(|x| x.patterns.len()).sum();
        let rates = c.instant.rates();
        out.push(format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:0\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:0\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:0\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
            c.total_connections,
            c.total_commands,
            rates[0],
            c.net_input_bytes,
            c.net_output_bytes,
            rates[1] as f64 / 1024.0,
            rates[2] as f64 / 1024.0,
            channels.len(),
            patterns,
            c.total_errors,
            c.reads_processed,
            c.writes_processed
        ));
    }
    if has("cpu") {
        // SAFETY: getrusage fills a plain struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let mut ch: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ch) };
        // Sentinel's one thread is its main thread.
        let mut th: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut th) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        out.push(format!(
            "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:{:.6}\r\nused_cpu_user_children:{:.6}\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
            tv(ru.ru_stime),
            tv(ru.ru_utime),
            tv(ch.ru_stime),
            tv(ch.ru_utime),
            tv(th.ru_stime),
            tv(th.ru_utime)
        ));
    }
    if has("sentinel") {
        let mut sec = format!(
            "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:{}\r\nsentinel_tilt_since_seconds:{}\r\nsentinel_running_scripts:{}\r\nsentinel_scripts_queue_length:{}\r\nsentinel_simulate_failure_flags:{}\r\n",
            st.masters.len(),
            st.tilt as u8,
            if st.tilt { (t.saturating_sub(st.tilt_start_time) / 1000) as i64 } else { -1 },
            st.scripts.running(),
            st.scripts.queue.len(),
            st.simfailure_flags
        );
        for (i, m) in st.masters.iter().enumerate() {
            let status = if m.inst.flags & flag::O_DOWN != 0 {
                "odown"
            } else if m.inst.flags & flag::S_DOWN != 0 {
                "sdown"
            } else {
                "ok"
            };
            sec.push_str(&format!(
                "master{}:name={},status={},address={}:{},slaves={},sentinels={}\r\n",
                i,
                m.name(),
                status,
                st.announce(&m.inst.addr),
                m.inst.addr.port,
                m.replicas.len(),
                m.sentinels.len() + 1
            ));
        }
        out.push(sec);
    }
    out.join("\r\n")
}
