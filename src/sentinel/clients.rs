//! The Sentinel's client registry and the CLIENT subcommands a Sentinel allows (Redis 7.0's
//! sentinel command table): ID, INFO, LIST, KILL (old and filter forms), SETNAME, GETNAME,
//! PAUSE/UNPAUSE, REPLY, NO-EVICT, TRACKING/CACHING/GETREDIR/TRACKINGINFO, UNBLOCK, HELP.
//!
//! Invariants: every open client connection has one [`ClientEntry`] (added when accepted,
//! removed when its task ends); `fd` stays valid while the entry exists, so CLIENT KILL can
//! shut the socket down to end the connection's pending read.

use super::state::now;
use crate::protocol::reply::Reply;
use bytes::Bytes;
use std::collections::BTreeMap;

/// What CLIENT LIST shows of one connection, kept current by its task.
#[derive(Clone, Debug, Default)]
pub struct ClientEntry {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: Option<String>,
    pub created: u64,
    pub last_interaction: u64,
    pub user: String,
    pub sub: usize,
    pub psub: usize,
    pub last_cmd: String,
    pub resp3: bool,
    pub no_evict: bool,
    /// Client-side caching state (CLIENT TRACKING): on, the redirect id, and the mode words.
    pub tracking: bool,
    pub redirect: i64,
    pub tracking_flags: Vec<&'static str>,
    /// CLIENT REPLY OFF / SKIP.
    pub reply_off: bool,
    pub reply_skip: bool,
    /// CLIENT CACHING YES/NO for the next command.
    pub caching: Option<bool>,
    /// Marked by CLIENT KILL: the connection closes after the current reply.
    pub killed: bool,
}

impl ClientEntry {
    /// Redis's `catClientInfoString` (fields Sentinel can know; memory figures are ours).
    pub fn info_line(&self, qbuf: usize) -> String {
        let t = now();
        let mut flags = String::new();
        if self.sub + self.psub > 0 {
            flags.push('P');
        }
        if self.tracking {
            flags.push('t');
        }
        if self.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub=0 multi=-1 qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user={} redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name.clone().unwrap_or_default(),
            t.saturating_sub(self.created) / 1000,
            t.saturating_sub(self.last_interaction) / 1000,
            flags,
            self.sub,
            self.psub,
            qbuf,
            16384usize.saturating_sub(qbuf),
            16384 + qbuf,
            if self.last_cmd.is_empty() { "NULL" } else { &self.last_cmd },
            self.user,
            if self.tracking { self.redirect } else { -1 },
            if self.resp3 { 3 } else { 2 }
        )
    }
}

/// All client connections, and the CLIENT PAUSE state.
#[derive(Default)]
pub struct Clients {
    pub map: BTreeMap<u64, ClientEntry>,
    /// CLIENT PAUSE: commands wait until this time (ms; 0 = not paused).
    pub pause_until: u64,
    /// INFO stats: connections accepted, commands run, error replies sent.
    pub total_connections: u64,
    pub total_commands: u64,
    pub total_errors: u64,
    /// INFO stats: bytes read from and written to clients, and the reads and writes.
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// INFO's instantaneous metrics (sampled by the Sentinel timer).
    pub instant: crate::cmd::instant::Sampler,
}

impl Clients {
    /// The instant commands may run again, if a pause is in force now.
    pub fn paused(&self) -> Option<u64> {
        (self.pause_until > now()).then_some(self.pause_until)
    }

    /// Shuts client `id`'s socket down (its task then ends and removes the entry).
    fn kill(&mut self, id: u64) {
        if let Some(e) = self.map.get_mut(&id) {
            e.killed = true;
            // SAFETY: the entry exists, so its task still owns the socket (see module docs).
            unsafe { libc::shutdown(e.fd, libc::SHUT_RD) };
        }
    }

    /// Kills every connection authenticated as `user` (ACL SETUSER off / DELUSER).
    pub fn kill_user(&mut self, user: &str, except: Option<u64>) {
        let ids: Vec<u64> =
            self.map.values().filter(|e| e.user == user && Some(e.id) != except).map(|e| e.id).collect();
        for id in ids {
            self.kill(id);
        }
    }
}

fn s(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn syntax() -> Reply {
    Reply::error("ERR syntax error".into())
}

/// Client types of CLIENT LIST/KILL TYPE: a Sentinel has no replicas or masters among its
/// clients, so only `pubsub` and `normal` can match.
fn client_type(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Some("normal"),
        "slave" | "replica" => Some("replica"),
        "master" => Some("master"),
        "pubsub" => Some("pubsub"),
        _ => None,
    }
}

fn type_of(e: &ClientEntry) -> &'static str {
    if e.sub + e.psub > 0 {
        "pubsub"
    } else {
        "normal"
    }
}

/// Runs `CLIENT <sub> ...` for client `me` (arity already checked against the table).
/// `users` tells whether a user name exists (CLIENT KILL USER).
pub fn client(clients: &mut Clients, me: u64, args: &[Bytes], user_exists: &dyn Fn(&str) -> bool) -> Reply {
    let sub = s(&args[1]).to_ascii_lowercase();
    let n = args.len();
    match sub.as_str() {
        "id" => Reply::Int(me as i64),
        "info" => {
            let line = clients.map.get(&me).map(|e| e.info_line(0)).unwrap_or_default();
            Reply::Verbatim(Bytes::from(format!("{line}\n")))
        }
        "list" => {
            let mut ty: Option<&str> = None;
            let mut ids: Option<Vec<u64>> = None;
            if n == 4 && args[2].eq_ignore_ascii_case(b"type") {
                match client_type(&s(&args[3])) {
                    Some(t) => ty = Some(t),
                    None => return Reply::error(format!("ERR Unknown client type '{}'", s(&args[3]))),
                }
            } else if n > 3 && args[2].eq_ignore_ascii_case(b"id") {
                let mut v = Vec::new();
                for a in &args[3..] {
                    match s(a).parse::<i64>() {
                        Ok(i) if i > 0 => v.push(i as u64),
                        _ => return Reply::error("ERR Invalid client ID".into()),
                    }
                }
                ids = Some(v);
            } else if n != 2 {
                return syntax();
            }
            let mut out = String::new();
            for e in clients.map.values() {
                if ty.is_some_and(|t| t != type_of(e)) || ids.as_ref().is_some_and(|v| !v.contains(&e.id)) {
                    continue;
                }
                out.push_str(&e.info_line(0));
                out.push('\n');
            }
            Reply::Verbatim(Bytes::from(out))
        }
        "kill" => kill(clients, me, args, user_exists),
        "setname" => {
            let name = s(&args[2]);
            if name.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
                return Reply::error("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            if let Some(e) = clients.map.get_mut(&me) {
                e.name = Some(name).filter(|n| !n.is_empty());
            }
            Reply::Ok
        }
        "getname" => {
            clients.map.get(&me).and_then(|e| e.name.clone()).map_or(Reply::Nil, |n| Reply::bulk(n.as_bytes()))
        }
        "unpause" => {
            clients.pause_until = 0;
            Reply::Ok
        }
        "pause" => {
            let Ok(ms) = s(&args[2]).parse::<i64>() else {
                return Reply::error("ERR timeout is not an integer or out of range".into());
            };
            if ms < 0 {
                return Reply::error("ERR timeout is negative".into());
            }
            match args.get(3).map(|a| s(a).to_ascii_lowercase()) {
                // A Sentinel runs no write commands: a WRITE pause holds nothing back.
                Some(m) if m == "write" && n == 4 => {}
                Some(m) if m == "all" && n == 4 => clients.pause_until = clients.pause_until.max(now() + ms as u64),
                None => clients.pause_until = clients.pause_until.max(now() + ms as u64),
                _ => return syntax(),
            }
            Reply::Ok
        }
        "reply" => {
            let Some(e) = clients.map.get_mut(&me) else { return Reply::Ok };
            match s(&args[2]).to_ascii_lowercase().as_str() {
                "on" => {
                    e.reply_off = false;
                    e.reply_skip = false;
                    Reply::Ok
                }
                "off" => {
                    e.reply_off = true;
                    Reply::Ok
                }
                "skip" => {
                    if !e.reply_off {
                        e.reply_skip = true;
                    }
                    Reply::Ok
                }
                _ => syntax(),
            }
        }
        "no-evict" => {
            let on = match s(&args[2]).to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return syntax(),
            };
            if let Some(e) = clients.map.get_mut(&me) {
                e.no_evict = on;
            }
            Reply::Ok
        }
        "unblock" => match s(&args[2]).parse::<i64>() {
            // No Sentinel command blocks, so no client is ever unblocked.
            Ok(_)
                if n == 3
                    || (n == 4
                        && (args[3].eq_ignore_ascii_case(b"timeout") || args[3].eq_ignore_ascii_case(b"error"))) =>
            {
                Reply::Int(0)
            }
            Ok(_) => Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into()),
            Err(_) => Reply::error("ERR value is not an integer or out of range".into()),
        },
        "tracking" => tracking(clients, me, args),
        "caching" => {
            let Some(e) = clients.map.get_mut(&me) else { return Reply::Ok };
            if !e.tracking {
                return Reply::error(
                    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into(),
                );
            }
            let optin = e.tracking_flags.contains(&"optin");
            let optout = e.tracking_flags.contains(&"optout");
            match s(&args[2]).to_ascii_lowercase().as_str() {
                "yes" if optin => e.caching = Some(true),
                "no" if optout => e.caching = Some(false),
                "yes" => {
                    return Reply::error(
                        "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.".into(),
                    )
                }
                "no" => {
                    return Reply::error(
                        "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.".into(),
                    )
                }
                _ => return syntax(),
            }
            Reply::Ok
        }
        "getredir" => match clients.map.get(&me) {
            Some(e) if e.tracking => Reply::Int(e.redirect),
            _ => Reply::Int(-1),
        },
        "trackinginfo" => {
            let e = clients.map.get(&me).cloned().unwrap_or_default();
            let mut flags: Vec<Reply> = Vec::new();
            if !e.tracking {
                flags.push(Reply::bulk(b"off"));
            } else {
                flags.push(Reply::bulk(b"on"));
                for f in &e.tracking_flags {
                    flags.push(Reply::bulk(f.as_bytes()));
                }
                if let Some(c) = e.caching {
                    flags.push(Reply::bulk(if c { b"caching-yes".as_slice() } else { b"caching-no".as_slice() }));
                }
            }
            Reply::Map(vec![
                (Reply::bulk(b"flags"), Reply::Set(flags)),
                (Reply::bulk(b"redirect"), Reply::Int(if e.tracking { e.redirect } else { -1 })),
                (Reply::bulk(b"prefixes"), Reply::Array(Vec::new())),
            ])
        }
        _ => Reply::Array(HELP.iter().map(|l| Reply::status(l)).collect()),
    }
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP].
/// A Sentinel holds no keys, so tracking never produces an invalidation; the state is kept
/// for CLIENT TRACKINGINFO / GETREDIR / CACHING as Redis keeps it.
fn tracking(clients: &mut Clients, me: u64, args: &[Bytes]) -> Reply {
    let on = match s(&args[2]).to_ascii_lowercase().as_str() {
        "on" => true,
        "off" => false,
        _ => return syntax(),
    };
    let mut redirect = 0i64;
    let mut flags: Vec<&'static str> = Vec::new();
    let mut prefixes = false;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        match s(&args[j]).to_ascii_lowercase().as_str() {
            "redirect" if more => {
                let Ok(id) = s(&args[j + 1]).parse::<i64>() else {
                    return Reply::error("ERR value is not an integer or out of range".into());
                };
                if id != me as i64 && !clients.map.contains_key(&(id as u64)) {
                    return Reply::error("ERR The client ID you want redirect to does not exist".into());
                }
                redirect = id;
                j += 1;
            }
            "bcast" => flags.push("bcast"),
            "optin" => flags.push("optin"),
            "optout" => flags.push("optout"),
            "noloop" => flags.push("noloop"),
            "prefix" if more => {
                prefixes = true;
                j += 1;
            }
            _ => return syntax(),
        }
        j += 1;
    }
    if prefixes && !flags.contains(&"bcast") {
        return Reply::error("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if flags.contains(&"optin") && flags.contains(&"optout") {
        return Reply::error("ERR You can't use both OPTIN and OPTOUT options".into());
    }
    let Some(e) = clients.map.get_mut(&me) else { return Reply::Ok };
    e.tracking = on;
    e.redirect = if on { redirect } else { -1 };
    e.tracking_flags = if on { flags } else { Vec::new() };
    e.caching = None;
    Reply::Ok
}

/// CLIENT KILL ip:port | CLIENT KILL <filter> <value> ...
fn kill(clients: &mut Clients, me: u64, args: &[Bytes], user_exists: &dyn Fn(&str) -> bool) -> Reply {
    let n = args.len();
    let (mut addr, mut laddr, mut user, mut ty, mut id) = (None, None, None, None, 0u64);
    let mut skipme = true;
    if n == 3 {
        addr = Some(s(&args[2]));
        skipme = false;
    } else {
        let mut i = 2;
        while i < n {
            if i + 1 >= n {
                return syntax();
            }
            let v = s(&args[i + 1]);
            match s(&args[i]).to_ascii_lowercase().as_str() {
                "id" => match v.parse::<i64>() {
                    Ok(x) if x >= 1 => id = x as u64,
                    _ => return Reply::error("ERR client-id should be greater than 0".into()),
                },
                "type" => match client_type(&v) {
                    Some(t) => ty = Some(t),
                    None => return Reply::error(format!("ERR Unknown client type '{v}'")),
                },
                "addr" => addr = Some(v),
                "laddr" => laddr = Some(v),
                "user" => {
                    if !user_exists(&v) {
                        return Reply::error(format!("ERR No such user '{v}'"));
                    }
                    user = Some(v);
                }
                "skipme" => match v.to_ascii_lowercase().as_str() {
                    "yes" => skipme = true,
                    "no" => skipme = false,
                    _ => return syntax(),
                },
                _ => return syntax(),
            }
            i += 2;
        }
    }
    let victims: Vec<u64> = clients
        .map
        .values()
        .filter(|e| addr.as_ref().is_none_or(|a| *a == e.addr))
        .filter(|e| laddr.as_ref().is_none_or(|a| *a == e.laddr))
        .filter(|e| ty.is_none_or(|t| t == type_of(e)))
        .filter(|e| id == 0 || e.id == id)
        .filter(|e| user.as_ref().is_none_or(|u| *u == e.user))
        .filter(|e| !(skipme && e.id == me))
        .map(|e| e.id)
        .collect();
    for v in &victims {
        if *v == me {
            // Redis closes the caller after the reply: mark it, its task closes it.
            if let Some(e) = clients.map.get_mut(&me) {
                e.killed = true;
            }
        } else {
            clients.kill(*v);
        }
    }
    if n == 3 {
        if victims.is_empty() {
            Reply::error("ERR No such client".into())
        } else {
            Reply::Ok
        }
    } else {
        Reply::Int(victims.len() as i64)
    }
}

static HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];
