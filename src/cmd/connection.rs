//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, and the CLIENT family.

use super::ctx::{reply, ClientCtx, ClientState, ReplyMode, ShardState};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("id", 2, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_id)),
    spec("getname", 2, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_getname)),
    spec("setname", 3, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_setname)),
    spec("list", -2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(client_list)),
    spec("info", 2, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_info)),
    spec("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(client_kill)),
    spec("pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(super::client_pause::client_pause)),
    spec("unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(super::client_pause::client_unpause)),
    spec("no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(client_no_evict)),
    spec("reply", 3, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_reply)),
    spec("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous @connection", Keys::None, Exec::Node(client_unblock)),
    spec("help", 2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(client_help)),
    spec("tracking", -3, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(super::tracking::client_tracking)),
    spec("caching", 3, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(super::tracking::client_caching)),
    spec("getredir", 2, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(super::tracking::client_getredir)),
    spec("trackinginfo", 2, NOSCRIPT | LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(super::tracking::client_trackinginfo)),
];

/// The connection family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST, "@fast @connection", Keys::None, Exec::Node(ping)),
    spec("echo", 2, LOADING | STALE | FAST, "@fast @connection", Keys::None, Exec::Node(echo)),
    spec("quit", -1, ALLOW_BUSY | NO_AUTH | LOADING | STALE | FAST | NOSCRIPT, "@fast @connection", Keys::None, Exec::Node(quit)),
    spec("select", 2, LOADING | STALE | FAST, "@fast @connection", Keys::None, Exec::Node(select)),
    spec("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "@fast @connection", Keys::None, Exec::Node(auth)),
    spec("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "@fast @connection", Keys::None, Exec::Node(hello)),
    spec("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "@fast @connection", Keys::None, Exec::Node(reset)),
    CommandSpec { subcommands: CLIENT_SUBCOMMANDS, ..spec("client", -2, 0, "@slow", Keys::None, Exec::Container) },
];

fn ping(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // A subscribed RESP2 client gets `pong` and the argument as an array.
    if !ctx.client.resp3 && super::pubsub::subscribed(ctx.client) && args.len() <= 2 {
        let arg = args.get(1).cloned().unwrap_or_default();
        return reply(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"pong")), Reply::Bulk(arg)]));
    }
    match args.len() {
        1 => reply(Reply::status("PONG")),
        2 => reply(Reply::Bulk(args[1].clone())),
        _ => reply(Reply::error(errors::wrong_arity("ping"))),
    }
}

fn echo(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    reply(Reply::Bulk(args[1].clone()))
}

fn quit(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Close(Reply::Ok)
}

fn select(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match parse_i64(&args[1]) {
        None => reply(Reply::err(errors::NOT_INTEGER)),
        Some(n) if n != 0 && ctx.node().cluster.is_some() => {
            reply(Reply::err("ERR SELECT is not allowed in cluster mode"))
        }
        Some(n) if n < 0 || n as usize >= ctx.shard.config.databases => reply(Reply::err(errors::DB_INDEX)),
        Some(n) => {
            ctx.client.db = n as usize;
            reply(Reply::Ok)
        }
    }
}

/// Authenticates the client as `user` (None: default) with `pass` (Redis's
/// `ACLAuthenticateUser`); a failure is logged in ACL LOG.
fn check_password(ctx: &mut ClientCtx<'_>, command: &Bytes, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let name = user.unwrap_or(b"default");
    match crate::acl::authenticate(name, pass) {
        Some(u) => {
            ctx.client.acl_gen = crate::acl::generation();
            ctx.client.user = u;
            ctx.client.authenticated = true;
            Ok(())
        }
        None => {
            crate::acl::log::add_auth_failure(ctx.client, command, name);
            Err(Reply::err(errors::WRONGPASS))
        }
    }
}

fn auth(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1][..]), &args[2]),
        _ => return reply(Reply::err(errors::SYNTAX)),
    };
    if user.is_none() && crate::acl::default().nopass {
        return reply(Reply::err(errors::AUTH_NOPASS));
    }
    match check_password(ctx, &args[0], user, pass) {
        Ok(()) => reply(Reply::Ok),
        Err(e) => {
            tracing::debug!("AUTH failed for client {}", ctx.client.addr);
            reply(e)
        }
    }
}

fn hello(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut proto = if ctx.client.resp3 { 3 } else { 2 };
    let mut i = 1;
    if args.len() > 1 {
        match parse_i64(&args[1]) {
            Some(v @ 2..=3) => proto = v,
            Some(_) => return reply(Reply::err("NOPROTO unsupported protocol version")),
            None => return reply(Reply::err("ERR Protocol version is not an integer or out of range")),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq_ic(&args[i], "auth") && more >= 2 {
            if let Err(e) = check_password(ctx, &args[0], Some(&args[i + 1]), &args[i + 2]) {
                return reply(e);
            }
            i += 3;
        } else if eq_ic(&args[i], "setname") && more >= 1 {
            if let Err(e) = validate_name(&args[i + 1]) {
                return reply(e);
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return reply(Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if !ctx.client.authenticated {
        return reply(Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = name {
        ctx.client.name = if n.is_empty() { None } else { Some(n) };
    }
    ctx.client.resp3 = proto == 3;
    let s = |t: &str| Reply::bulk(t.as_bytes());
    reply(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s("7.0.15")),
        (s("proto"), Reply::Int(proto)),
        (s("id"), Reply::Int(ctx.client.id as i64)),
        (s("mode"), s(if ctx.node().cluster.is_some() { "cluster" } else { "standalone" })),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(vec![])),
    ]))
}

fn reset(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    super::tracking::reset(ctx);
    super::pubsub::drop_all(ctx.shard, ctx.client);
    let c = &mut *ctx.client;
    c.db = 0;
    c.resp3 = false;
    c.name = None;
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.readonly = false;
    c.asking = false;
    c.acl_gen = crate::acl::generation();
    c.user = crate::acl::default();
    c.authenticated = crate::acl::default_autologin();
    reply(Reply::status("RESET"))
}

fn validate_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

fn client_id(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Int(ctx.client.id as i64))
}

fn client_getname(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(ctx.client.name.clone().map_or(Reply::Nil, Reply::Bulk))
}

fn client_setname(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if let Err(e) = validate_name(&args[2]) {
        return reply(e);
    }
    ctx.client.name = if args[2].is_empty() { None } else { Some(args[2].clone()) };
    reply(Reply::Ok)
}

/// Whether a client is of a CLIENT LIST / KILL `TYPE`.
fn is_type(c: &ClientState, t: &[u8]) -> bool {
    if c.master {
        return eq_ic(t, "master");
    }
    eq_ic(t, if super::pubsub::subscribed(c) { "pubsub" } else { "normal" })
}

/// The query buffer's size as CLIENT LIST shows it (`qbuf` + `qbuf-free`), in Redis's terms:
/// a client that read lately holds at least a full read's room ([`READ_CHUNK`], Redis's
/// read size), more while a big argument was being received (the room grows to hold it);
/// one idle for over 2 seconds with nothing pending holds none, as Redis frees an idle
/// client's query buffer. (A connection here starts with a smaller room and keeps it while
/// idle.)
///
/// [`READ_CHUNK`]: crate::conn::input::READ_CHUNK
fn query_buffer_size(c: &ClientState, idle_s: u64) -> usize {
    if c.qbuf == 0 && idle_s > 2 {
        return 0;
    }
    c.qbuf_room.max(crate::conn::input::READ_CHUNK).max(c.qbuf)
}

/// One CLIENT LIST line, in Redis 7.0's field order.
pub fn client_line(c: &ClientState, now_ms: u64) -> String {
    let idle_s = now_ms.saturating_sub(c.last_interaction_ms) / 1000;
    let qbuf_size = query_buffer_size(c, idle_s);
    let omem = c.output_bytes();
    // Redis's order: S/O, M, P, x, b, t, R, B, d, c, u, A, U, r, e.
    let mut flags = String::new();
    if c.monitor {
        flags.push('O');
    }
    if c.master {
        flags.push('M');
    }
    if super::pubsub::subscribed(c) {
        flags.push('P');
    }
    if c.multi.is_some() {
        flags.push('x');
    }
    if c.blocked.is_some() || c.paused {
        flags.push('b');
    }
    let tracking = c.tracking.as_deref().filter(|t| t.on);
    if tracking.is_some() {
        flags.push('t');
    }
    if tracking.is_some_and(|t| t.bcast) {
        flags.push('B');
    }
    if c.unix {
        flags.push('U');
    }
    if c.readonly {
        flags.push('r');
    }
    if c.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs=16384 rbp=0 obl=0 oll={} omem={} tot-mem={} events={} cmd={} user={} redir=-1 resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        c.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
        now_ms.saturating_sub(c.created_ms) / 1000,
        idle_s,
        flags,
        c.db,
        c.pubsub.as_ref().map_or(0, |s| s.channels.len()),
        c.pubsub.as_ref().map_or(0, |s| s.patterns.len()),
        c.pubsub.as_ref().map_or(0, |s| s.shard.len()),
        c.multi.map_or(-1, |n| n as i64),
        c.qbuf,
        qbuf_size - c.qbuf,
        c.argv_mem,
        c.multi_mem,
        // One growable reply buffer: what waits for the socket shows as one reply block.
        usize::from(omem > 0),
        omem,
        // The figure client eviction counts (`memory::clients`), as of the connection's last
        // turn; computed now for a client not counted (the master link).
        crate::memory::clients::shown(c),
        // Redis waits for writability (`w`) while replies are pending.
        if omem > 0 { "rw" } else { "r" },
        c.last_cmd,
        String::from_utf8_lossy(&c.user.name),
        if c.resp3 { 3 } else { 2 }
    )
}

fn client_info(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let mut line = client_line(ctx.client, crate::storage::now_ms());
    // Inside EXEC (`multi` is set) Redis shows the EXEC.
    if ctx.client.multi.is_none() {
        line = line.replace(&format!("cmd={}", ctx.client.last_cmd), "cmd=client|info");
    }
    line.push('\n');
    reply(Reply::Verbatim(Bytes::from(line)))
}

fn client_list(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // Validate the filters here so errors come back without a fan-out.
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|w| eq_ic(t, w)) {
                return reply(Reply::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(t))));
            }
            i += 2;
        } else if eq_ic(&args[i], "id") && i + 1 < args.len() {
            for a in &args[i + 1..] {
                if !matches!(parse_i64(a), Some(n) if n > 0) {
                    return reply(Reply::err("ERR Invalid client ID"));
                }
            }
            i = args.len();
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
    }
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let mut ids: Option<Vec<u64>> = None;
        let mut of_type: Option<&Bytes> = None;
        let mut i = 2;
        while i < args.len() {
            if eq_ic(&args[i], "type") {
                of_type = Some(&args[i + 1]);
                i += 2;
            } else {
                ids = Some(args[i + 1..].iter().filter_map(|a| parse_i64(a)).map(|n| n as u64).collect());
                i = args.len();
            }
        }
        let mut lines: Vec<(u64, String)> = shard
            .clients
            .values()
            .map(|c| c.borrow())
            // A killed client (or one over its output-buffer limit) is gone for Redis (freed
            // at once); its task here may not have run yet (on another shard, in particular).
            .filter(|c| !c.closing())
            .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) && of_type.is_none_or(|t| is_type(c, t)))
            .map(|c| (c.id, client_line(&c, now)))
            .collect();
        // Replicas live on the control core; shard 0 lists them.
        if shard.id == 0 && of_type.is_none_or(|t| eq_ic(t, "replica") || eq_ic(t, "slave")) {
            let replicas = shard.node.repl.with_status(|s| s.replicas.clone());
            for r in replicas.iter().filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id))) {
                lines.push((r.id, replica_line(r, now, "replconf")));
            }
        }
        lines.sort();
        Reply::Array(lines.into_iter().map(|(_, l)| Reply::bulk_string(l)).collect())
    }
    Plan::AllShards {
        run,
        merge: Box::new(|ctx, replies| {
            let me = ctx.client.id;
            let mut lines: Vec<(u64, String)> = Vec::new();
            for r in replies {
                if let Reply::Array(v) = r {
                    for l in v {
                        if let Reply::Bulk(b) = l {
                            let s = String::from_utf8_lossy(&b).into_owned();
                            let id =
                                s.split(' ').next().and_then(|f| f.strip_prefix("id=")).and_then(|n| n.parse().ok());
                            let id = id.unwrap_or(0);
                            // The caller's own line shows the command being run.
                            let s = if id == me { set_cmd_field(&s, "client|list") } else { s };
                            lines.push((id, s));
                        }
                    }
                }
            }
            lines.sort();
            let mut text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
            if text.is_empty() {
                text.push('\n');
            }
            Reply::Verbatim(Bytes::from(text))
        }),
    }
}

/// A replica's CLIENT LIST line (flag `S`; its connection lives on the control core), with
/// `cmd` as its last command.
pub(crate) fn replica_line(r: &crate::replication::ReplicaStatus, now_ms: u64, cmd: &str) -> String {
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=S db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp=2",
        r.id,
        r.addr,
        r.laddr,
        r.fd,
        r.name,
        now_ms.saturating_sub(r.created_ms) / 1000,
        now_ms.saturating_sub(r.ack_time_ms) / 1000,
        r.db,
        r.output_bytes,
        1024 + r.output_bytes,
        cmd
    )
}

/// Whether a replica matches CLIENT KILL's filters (`filters` after `CLIENT KILL`).
fn replica_matches(r: &crate::replication::ReplicaStatus, filters: &[Bytes], me: u64) -> bool {
    if filters.len() == 1 {
        return r.addr.as_bytes() == &filters[0][..];
    }
    let mut skipme = true;
    let mut ok = true;
    for pair in filters.chunks(2) {
        let (k, v) = (&pair[0], &pair[1]);
        if eq_ic(k, "id") {
            ok &= parse_i64(v) == Some(r.id as i64);
        } else if eq_ic(k, "addr") {
            ok &= r.addr.as_bytes() == &v[..];
        } else if eq_ic(k, "laddr") {
            ok &= r.laddr.as_bytes() == &v[..];
        } else if eq_ic(k, "type") {
            ok &= eq_ic(v, "replica") || eq_ic(v, "slave");
        } else if eq_ic(k, "user") {
            ok &= eq_ic(v, "default");
        } else if eq_ic(k, "skipme") {
            skipme = eq_ic(v, "yes");
        }
    }
    ok && !(skipme && r.id == me)
}

fn set_cmd_field(line: &str, cmd: &str) -> String {
    line.split(' ')
        .map(|f| if f.starts_with("cmd=") { format!("cmd={cmd}") } else { f.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// CLIENT KILL: the old form `CLIENT KILL ip:port` and the filter form. Each shard shuts down the
/// sockets of its matching clients (the connection task then ends on its own).
fn client_kill(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let old_form = args.len() == 3;
    if !old_form {
        if args.len() % 2 != 0 {
            return reply(Reply::err(errors::SYNTAX));
        }
        for pair in args[2..].chunks(2) {
            let (k, v) = (&pair[0], &pair[1]);
            if eq_ic(k, "id") {
                if !matches!(parse_i64(v), Some(n) if n > 0) {
                    return reply(Reply::err("ERR client-id should be greater than 0"));
                }
            } else if eq_ic(k, "type") {
                if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|w| eq_ic(v, w)) {
                    return reply(Reply::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(v))));
                }
            } else if eq_ic(k, "skipme") {
                if !eq_ic(v, "yes") && !eq_ic(v, "no") {
                    return reply(Reply::err(errors::SYNTAX));
                }
            } else if eq_ic(k, "user") {
                if crate::acl::get(v).is_none() {
                    return reply(Reply::error(format!("ERR No such user '{}'", String::from_utf8_lossy(v))));
                }
            } else if !(eq_ic(k, "addr") || eq_ic(k, "laddr")) {
                return reply(Reply::err(errors::SYNTAX));
            }
        }
    }
    let _ = ctx;
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        // args: client kill <filters...>, plus the caller's id appended by the merge-side wrapper.
        let Some((me_arg, filters)) = args.split_last() else { return Reply::Int(0) };
        let me: u64 = std::str::from_utf8(me_arg).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        let filters = &filters[2..];
        let mut killed = 0;
        for c in shard.clients.values() {
            let mut c = c.borrow_mut();
            let matches = if filters.len() == 1 {
                c.addr.as_bytes() == &filters[0][..]
            } else {
                let mut skipme = true;
                let mut ok = true;
                for pair in filters.chunks(2) {
                    let (k, v) = (&pair[0], &pair[1]);
                    if eq_ic(k, "id") {
                        ok &= parse_i64(v) == Some(c.id as i64);
                    } else if eq_ic(k, "addr") {
                        ok &= c.addr.as_bytes() == &v[..];
                    } else if eq_ic(k, "laddr") {
                        ok &= c.laddr.as_bytes() == &v[..];
                    } else if eq_ic(k, "type") {
                        ok &= is_type(&c, v);
                    } else if eq_ic(k, "user") {
                        ok &= c.user.name[..] == v[..];
                    } else if eq_ic(k, "skipme") {
                        skipme = eq_ic(v, "yes");
                    }
                }
                ok && !(skipme && c.id == me)
            };
            if matches && c.id == me {
                // The caller itself gets its reply first, then its connection closes (Redis's
                // CLIENT_CLOSE_AFTER_REPLY).
                if !c.close_after_reply {
                    c.close_after_reply = true;
                    killed += 1;
                }
            } else if matches && !c.killed {
                c.killed = true;
                // SAFETY: the fd belongs to a live connection of this shard; shutdown only wakes
                // its pending read, the connection task closes the socket itself.
                unsafe {
                    libc::shutdown(c.fd, libc::SHUT_RDWR);
                }
                killed += 1;
            }
        }
        if shard.id == 0 {
            // Replicas (on the control core): their fd stays open while they are listed, and
            // the lock is held across the shutdown.
            shard.node.repl.with_status(|s| {
                for r in s.replicas.iter().filter(|r| replica_matches(r, filters, me)) {
                    // SAFETY: a listed replica's fd is open (see `ReplicaStatus::fd`); shutdown
                    // only wakes its tasks, which then close it.
                    unsafe {
                        libc::shutdown(r.fd, libc::SHUT_RDWR);
                    }
                    killed += 1;
                }
            });
        }
        Reply::Int(killed)
    }
    Plan::KillClients { run, old_form }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: answers the blocked call of client `id`, wherever its
/// home shard is, with its timeout reply or the UNBLOCKED error.
fn client_unblock(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 4 {
        let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).into_owned();
        return reply(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
        )));
    }
    if parse_i64(&args[2]).is_none() {
        return reply(Reply::err(errors::NOT_INTEGER));
    }
    if let Some(r) = args.get(3) {
        if !eq_ic(r, "timeout") && !eq_ic(r, "error") {
            return reply(Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"));
        }
    }
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let id = parse_i64(&args[2]).unwrap_or(0);
        let error = args.get(3).is_some_and(|r| eq_ic(r, "error"));
        let Some(c) = u64::try_from(id).ok().and_then(|id| shard.clients.get(&id)) else { return Reply::Int(0) };
        let Some(b) = c.borrow().blocked.clone() else { return Reply::Int(0) };
        let Some(tx) = b.token.claim() else { return Reply::Int(0) };
        let r = if error { Reply::err(super::blocking::UNBLOCKED) } else { b.timeout_reply };
        let _ = tx.send(super::blocked::Wake::Reply(r));
        Reply::Int(1)
    }
    let merge: super::spec::MergeFn = Box::new(|_ctx: &mut ClientCtx<'_>, replies: Vec<Reply>| {
        Reply::Int(replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum())
    });
    Plan::AllShards { run, merge }
}

fn client_no_evict(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if eq_ic(&args[2], "on") {
        ctx.client.no_evict = true;
    } else if eq_ic(&args[2], "off") {
        ctx.client.no_evict = false;
    } else {
        return reply(Reply::err(errors::SYNTAX));
    }
    reply(Reply::Ok)
}

fn client_reply(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    ctx.client.reply_mode = if eq_ic(&args[2], "on") {
        ReplyMode::On
    } else if eq_ic(&args[2], "off") {
        ReplyMode::Off
    } else if eq_ic(&args[2], "skip") {
        ReplyMode::Skip
    } else {
        return reply(Reply::err(errors::SYNTAX));
    };
    reply(Reply::Ok)
}

fn client_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
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
        "    * ID <client-id>",
        "      Kill connections by client id.",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
