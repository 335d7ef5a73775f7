//! The Sentinel's own clients: accepting connections, parsing requests, and the commands a
//! Sentinel answers (Redis's sentinel command table): PING, SENTINEL, SUBSCRIBE and friends on
//! its event channels, PUBLISH (hellos sent straight to a Sentinel), INFO, ROLE, CLIENT,
//! AUTH, HELLO, COMMAND, SHUTDOWN, QUIT. Anything else gets Redis's unknown-command error.
//!
//! Each connection has a writer task fed by a channel, so event messages for subscribers and
//! replies leave in order without the reader awaiting writes under the state borrow.

use super::clients::ClientEntry;
use super::state::{State, Subscriber};
use crate::protocol::reply::Reply;
use crate::protocol::request::{ParseLimits, RequestParser};
use bytes::{Bytes, BytesMut};
use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

type Shared = Rc<RefCell<State>>;

/// Encodes a pub/sub push (`message`/`pmessage`) as a RESP2 array of bulk strings.
pub fn push_message(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// One client's connection state.
pub struct Client {
    pub id: u64,
    pub addr: String,
    pub authenticated: bool,
    /// The ACL user this connection runs as.
    pub user: String,
    pub resp3: bool,
    pub tx: UnboundedSender<Vec<u8>>,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub created: u64,
}

impl Client {
    /// Sends a command's reply unless CLIENT REPLY OFF/SKIP says otherwise.
    fn reply(&self, st: &Shared, r: &Reply) {
        let mut s = st.borrow_mut();
        if matches!(r, Reply::Error(_)) {
            s.clients.total_errors += 1;
        }
        if let Some(e) = s.clients.map.get_mut(&self.id) {
            if e.reply_off {
                return;
            }
            if e.reply_skip {
                e.reply_skip = false;
                return;
            }
        }
        drop(s);
        self.send(r);
    }

    fn send(&self, r: &Reply) {
        let mut out = Vec::new();
        r.encode(&mut out, self.resp3);
        let _ = self.tx.unbounded_send(out);
    }
}

/// Serves one client connection until it closes.
pub async fn serve(st: Shared, stream: crate::runtime::ClientStream) {
    let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (tx, mut rx) = unbounded::<Vec<u8>>();
    let counted = st.clone();
    crate::runtime::spawn(async move {
        while let Some(b) = rx.next().await {
            if writer.write_all(&b).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            let mut s = counted.borrow_mut();
            s.clients.net_output_bytes += b.len() as u64;
            s.clients.writes_processed += 1;
        }
        let _ = writer.close().await;
    });
    let t = super::state::now();
    let (id, authenticated) = {
        let mut s = st.borrow_mut();
        s.next_client_id += 1;
        let id = s.next_client_id;
        let entry = ClientEntry {
            id,
            addr: addr.clone(),
            laddr,
            fd,
            created: t,
            last_interaction: t,
            user: "default".into(),
            redirect: -1,
            ..Default::default()
        };
        s.clients.map.insert(id, entry);
        s.clients.total_connections += 1;
        (id, s.users.default_is_open())
    };
    let mut c = Client {
        id,
        addr,
        authenticated,
        user: "default".into(),
        resp3: false,
        tx,
        channels: HashSet::new(),
        patterns: Vec::new(),
        created: t,
    };
    let mut parser = RequestParser::default();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 16384];
    'conn: loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut s = st.borrow_mut();
            s.clients.net_input_bytes += n as u64;
            s.clients.reads_processed += 1;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut reqs = Vec::new();
        let res = parser.parse(&mut buf, &ParseLimits::default(), &mut reqs);
        for r in reqs {
            if r.args.is_empty() {
                continue;
            }
            // CLIENT PAUSE holds every command until the pause ends.
            loop {
                let until = st.borrow().clients.paused();
                let Some(until) = until else { break };
                let wait = until.saturating_sub(super::state::now()).max(1);
                crate::runtime::sleep(std::time::Duration::from_millis(wait)).await;
            }
            if !execute(&st, &mut c, &r.args) {
                break 'conn;
            }
            if st.borrow().clients.map.get(&id).is_none_or(|e| e.killed) {
                break 'conn;
            }
        }
        if let Err(e) = res {
            c.send(&Reply::error(e.reply_text()));
            break;
        }
    }
    let mut s = st.borrow_mut();
    s.subscribers.retain(|s| s.client_id != id);
    s.clients.map.remove(&id);
}

fn s(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Redis's unknown-command error text.
fn unknown_command(args: &[Bytes]) -> Reply {
    let mut tail = String::new();
    for a in args.iter().skip(1) {
        tail.push_str(&format!("'{}' ", s(a)));
    }
    Reply::error(format!("ERR unknown command '{}', with args beginning with: {}", s(&args[0]), tail))
}

/// Runs one command; false closes the connection.
fn execute(st: &Shared, c: &mut Client, args: &[Bytes]) -> bool {
    // QUIT is answered before the command table is consulted, as Redis 7.0 does.
    if args[0].eq_ignore_ascii_case(b"quit") {
        c.send(&Reply::Ok);
        return false;
    }
    let cmd = match super::introspection::check(args) {
        Ok(cmd) => cmd,
        Err(e) => {
            c.reply(st, &e);
            return true;
        }
    };
    let name = s(&args[0]).to_ascii_lowercase();
    {
        let mut s = st.borrow_mut();
        let auth_required = !c.authenticated && !s.users.default_is_open();
        s.clients.total_commands += 1;
        if let Some(e) = s.clients.map.get_mut(&c.id) {
            e.last_interaction = super::state::now();
            e.last_cmd = cmd.name.to_string();
        }
        if auth_required && !super::introspection::has_flag(cmd, "no_auth") {
            drop(s);
            c.reply(st, &Reply::error("NOAUTH Authentication required.".into()));
            return true;
        }
        if !super::introspection::has_flag(cmd, "no_auth")
            && !s.users.users.get(&c.user).is_some_and(|u| u.can_run(cmd))
        {
            let info = s.clients.map.get(&c.id).map(|e| e.info_line(0)).unwrap_or_default();
            s.users.log_failure("command", cmd.name, &c.user, info);
            drop(s);
            c.reply(
                st,
                &Reply::error(format!("NOPERM this user has no permissions to run the '{}' command", cmd.name)),
            );
            return true;
        }
        if matches!(name.as_str(), "subscribe" | "psubscribe" | "publish") {
            let targets = if name == "publish" { &args[1..2] } else { &args[1..] };
            let user = s.users.users.get(&c.user);
            if !targets.iter().all(|t| user.is_some_and(|u| u.can_use_channel(t, name == "psubscribe"))) {
                let info = s.clients.map.get(&c.id).map(|e| e.info_line(0)).unwrap_or_default();
                s.users.log_failure("channel", &String::from_utf8_lossy(&targets[0]), &c.user, info);
                drop(s);
                c.reply(
                    st,
                    &Reply::error(
                        "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
                    ),
                );
                return true;
            }
        }
    }
    let subscribed = !c.channels.is_empty() || !c.patterns.is_empty();
    if subscribed
        && !c.resp3
        && !matches!(
            name.as_str(),
            "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        c.reply(
            st,
            &Reply::error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.name
            )),
        );
        return true;
    }
    let reply = match name.as_str() {
        "ping" => match args.len() {
            1 if subscribed => Reply::Array(vec![Reply::bulk(b"pong"), Reply::bulk(b"")]),
            1 => Reply::Status("PONG".into()),
            2 if subscribed => Reply::Array(vec![Reply::bulk(b"pong"), Reply::Bulk(args[1].clone())]),
            2 => Reply::Bulk(args[1].clone()),
            // PING takes one message at most (its own check, past the arity's).
            _ => Reply::error("ERR wrong number of arguments for 'ping' command".into()),
        },
        "sentinel" => {
            let r = super::command::sentinel(st, args);
            st.borrow_mut().after();
            r
        }
        "info" => Reply::Bulk(Bytes::from(super::command::info(&st.borrow(), &args[1..]))),
        "role" => {
            let s = st.borrow();
            Reply::Array(vec![
                Reply::bulk(b"sentinel"),
                Reply::Array(s.masters.iter().map(|m| Reply::bulk(m.name().as_bytes())).collect()),
            ])
        }
        "publish" => {
            if &args[1][..] != b"__sentinel__:hello" {
                Reply::error("ERR Only HELLO messages are accepted by Sentinel instances.".into())
            } else {
                let mut s = st.borrow_mut();
                s.process_hello(&String::from_utf8_lossy(&args[2]));
                s.after();
                Reply::Int(1)
            }
        }
        "subscribe" | "psubscribe" => {
            subscribe(st, c, &name, &args[1..]);
            return true;
        }
        "unsubscribe" | "punsubscribe" => {
            unsubscribe(st, c, &name, &args[1..]);
            return true;
        }
        "auth" => {
            if args.len() > 3 {
                Reply::error("ERR syntax error".into())
            } else {
                let (user, pass) =
                    if args.len() == 3 { (s(&args[1]), &args[2]) } else { ("default".to_string(), &args[1]) };
                if args.len() == 2 && st.borrow().users.default_is_open() {
                    Reply::error(
                        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                            .into(),
                    )
                } else {
                    authenticate(st, c, &user, pass)
                }
            }
        }
        "hello" => hello(st, c, args),
        "client" => {
            let mut s = st.borrow_mut();
            let s = &mut *s;
            let users = &s.users;
            super::clients::client(&mut s.clients, c.id, args, &|u| users.users.contains_key(u))
        }
        "command" => super::introspection::command(args),
        "acl" => {
            let mut s = st.borrow_mut();
            let (r, kill) = super::acl::acl(&mut s.users, &c.user, args);
            for u in kill {
                s.clients.kill_user(&u, None);
            }
            r
        }
        "shutdown" => {
            if let Some(e) = shutdown_args_error(args) {
                c.reply(st, &e);
                return true;
            }
            tracing::warn!("User requested shutdown...");
            let _ = st.borrow_mut().flush_config();
            tracing::warn!("Sentinel is now ready to exit, bye bye...");
            std::process::exit(0);
        }
        _ => unknown_command(args),
    };
    if let Some(e) = st.borrow_mut().clients.map.get_mut(&c.id) {
        e.resp3 = c.resp3;
    }
    c.reply(st, &reply);
    true
}

/// SHUTDOWN's options, checked as Redis's `shutdownCommand`: an unknown word, ABORT with
/// another option, or SAVE with NOSAVE is a syntax error; ABORT alone finds nothing to abort
/// (a Sentinel has no replicas to wait for, so a shutdown never stays in progress).
fn shutdown_args_error(args: &[Bytes]) -> Option<Reply> {
    let (mut abort, mut save, mut nosave, mut other) = (false, false, false, false);
    for a in &args[1..] {
        match String::from_utf8_lossy(a).to_ascii_lowercase().as_str() {
            "nosave" => nosave = true,
            "save" => save = true,
            "now" | "force" => other = true,
            "abort" => abort = true,
            _ => return Some(Reply::error("ERR syntax error".into())),
        }
    }
    if (abort && (save || nosave || other)) || (save && nosave) {
        return Some(Reply::error("ERR syntax error".into()));
    }
    abort.then(|| Reply::error("ERR No shutdown in progress.".into()))
}

/// AUTH / HELLO ... AUTH: logs `c` in as `user` when the password matches.
fn authenticate(st: &Shared, c: &mut Client, user: &str, pass: &[u8]) -> Reply {
    let mut s = st.borrow_mut();
    if s.users.check(user, pass) {
        c.authenticated = true;
        c.user = user.to_string();
        if let Some(e) = s.clients.map.get_mut(&c.id) {
            e.user = user.to_string();
        }
        Reply::Ok
    } else {
        let info = s.clients.map.get(&c.id).map(|e| e.info_line(0)).unwrap_or_default();
        s.users.log_failure("auth", "AUTH", user, info);
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.".into())
    }
}

fn hello(st: &Shared, c: &mut Client, args: &[Bytes]) -> Reply {
    let mut proto = None;
    if let Some(v) = args.get(1) {
        match s(v).parse::<i64>() {
            Ok(v @ 2..=3) => proto = Some(v == 3),
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version".into()),
            Err(_) => return Reply::error("ERR Protocol version is not an integer or out of range".into()),
        }
    }
    let mut j = 2;
    let mut setname = None;
    while j < args.len() {
        let more = args.len() - j - 1;
        if args[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
            let r = authenticate(st, c, &s(&args[j + 1]), &args[j + 2]);
            if matches!(r, Reply::Error(_)) {
                return r;
            }
            j += 3;
        } else if args[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
            setname = Some(s(&args[j + 1]));
            j += 2;
        } else {
            return Reply::error(format!("ERR Syntax error in HELLO option '{}'", s(&args[j])));
        }
    }
    if !c.authenticated && !st.borrow().users.default_is_open() {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(n) = setname {
        let r = super::clients::client(
            &mut st.borrow_mut().clients,
            c.id,
            &[Bytes::from_static(b"client"), Bytes::from_static(b"setname"), Bytes::from(n)],
            &|_| false,
        );
        if matches!(r, Reply::Error(_)) {
            return r;
        }
    }
    if let Some(p) = proto {
        c.resp3 = p;
    }
    Reply::Map(vec![
        (Reply::bulk(b"server"), Reply::bulk(b"redis")),
        (Reply::bulk(b"version"), Reply::bulk(b"7.0.15")),
        (Reply::bulk(b"proto"), Reply::Int(if c.resp3 { 3 } else { 2 })),
        (Reply::bulk(b"id"), Reply::Int(c.id as i64)),
        // Sentinel's HELLO has no role field, as Redis's.
        (Reply::bulk(b"mode"), Reply::bulk(b"sentinel")),
        (Reply::bulk(b"modules"), Reply::Array(Vec::new())),
    ])
}

fn sync_subscriber(st: &Shared, c: &Client) {
    let mut s = st.borrow_mut();
    if let Some(e) = s.clients.map.get_mut(&c.id) {
        e.sub = c.channels.len();
        e.psub = c.patterns.len();
    }
    s.subscribers.retain(|x| x.client_id != c.id);
    if !c.channels.is_empty() || !c.patterns.is_empty() {
        s.subscribers.push(Subscriber {
            client_id: c.id,
            channels: c.channels.clone(),
            patterns: c.patterns.clone(),
            tx: c.tx.clone(),
        });
    }
}

fn count(c: &Client) -> i64 {
    (c.channels.len() + c.patterns.len()) as i64
}

fn sub_reply(c: &Client, kind: &str, target: Option<&[u8]>) {
    let target = target.map(|t| Reply::Bulk(Bytes::copy_from_slice(t))).unwrap_or(Reply::Nil);
    let items = vec![Reply::bulk(kind.as_bytes()), target, Reply::Int(count(c))];
    c.send(&if c.resp3 { Reply::Push(items) } else { Reply::Array(items) });
}

fn subscribe(st: &Shared, c: &mut Client, name: &str, targets: &[Bytes]) {
    for t in targets {
        if name == "subscribe" {
            c.channels.insert(t.to_vec());
        } else if !c.patterns.iter().any(|p| p[..] == t[..]) {
            c.patterns.push(t.to_vec());
        }
        sub_reply(c, name, Some(t));
    }
    sync_subscriber(st, c);
}

fn unsubscribe(st: &Shared, c: &mut Client, name: &str, targets: &[Bytes]) {
    let all: Vec<Vec<u8>> = if targets.is_empty() {
        if name == "unsubscribe" {
            c.channels.iter().cloned().collect()
        } else {
            c.patterns.clone()
        }
    } else {
        targets.iter().map(|t| t.to_vec()).collect()
    };
    if all.is_empty() {
        sub_reply(c, name, None);
    }
    for t in all {
        if name == "unsubscribe" {
            c.channels.remove(&t);
        } else {
            c.patterns.retain(|p| *p != t);
        }
        sub_reply(c, name, Some(&t));
    }
    sync_subscriber(st, c);
}
