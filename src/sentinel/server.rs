//! The Sentinel's own clients: accepting connections, parsing requests, and the commands a
//! Sentinel answers (Redis's sentinel command table): PING, SENTINEL, SUBSCRIBE and friends on
//! its event channels, PUBLISH (hellos sent straight to a Sentinel), INFO, ROLE, CLIENT,
//! AUTH, HELLO, COMMAND, SHUTDOWN, QUIT. Anything else gets Redis's unknown-command error.
//!
//! Each connection has a writer task fed by a channel, so event messages for subscribers and
//! replies leave in order without the reader awaiting writes under the state borrow.

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
    pub name: Option<String>,
    pub addr: String,
    pub authenticated: bool,
    pub resp3: bool,
    pub tx: UnboundedSender<Vec<u8>>,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub created: u64,
}

impl Client {
    fn send(&self, r: &Reply) {
        let mut out = Vec::new();
        r.encode(&mut out, self.resp3);
        let _ = self.tx.unbounded_send(out);
    }
}

/// Serves one client connection until it closes.
pub async fn serve(st: Shared, stream: crate::runtime::ClientStream) {
    let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (tx, mut rx) = unbounded::<Vec<u8>>();
    crate::runtime::spawn(async move {
        while let Some(b) = rx.next().await {
            if writer.write_all(&b).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.close().await;
    });
    let id = {
        let mut s = st.borrow_mut();
        s.next_client_id += 1;
        s.next_client_id
    };
    let authenticated = st.borrow().settings.requirepass.is_none();
    let mut c = Client {
        id,
        name: None,
        addr,
        authenticated,
        resp3: false,
        tx,
        channels: HashSet::new(),
        patterns: Vec::new(),
        created: super::state::now(),
    };
    let mut parser = RequestParser::default();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 16384];
    'conn: loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut reqs = Vec::new();
        let res = parser.parse(&mut buf, &ParseLimits::default(), &mut reqs);
        for r in reqs {
            if r.args.is_empty() {
                continue;
            }
            if !execute(&st, &mut c, &r.args) {
                break 'conn;
            }
        }
        if let Err(e) = res {
            c.send(&Reply::error(e.reply_text()));
            break;
        }
    }
    st.borrow_mut().subscribers.retain(|s| s.client_id != id);
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

fn wrong_args(name: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
}

/// Runs one command; false closes the connection.
fn execute(st: &Shared, c: &mut Client, args: &[Bytes]) -> bool {
    let name = s(&args[0]).to_ascii_lowercase();
    if !c.authenticated && name != "auth" && name != "hello" && name != "quit" {
        c.send(&Reply::error("NOAUTH Authentication required.".into()));
        return true;
    }
    let subscribed = !c.channels.is_empty() || !c.patterns.is_empty();
    if subscribed
        && !c.resp3
        && !matches!(
            name.as_str(),
            "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        c.send(&Reply::error(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )));
        return true;
    }
    let reply = match name.as_str() {
        "ping" => match args.len() {
            1 if subscribed => Reply::Array(vec![Reply::bulk(b"pong"), Reply::bulk(b"")]),
            1 => Reply::Status("PONG".into()),
            2 if subscribed => Reply::Array(vec![Reply::bulk(b"pong"), Reply::Bulk(args[1].clone())]),
            2 => Reply::Bulk(args[1].clone()),
            _ => wrong_args("ping"),
        },
        "quit" => {
            c.send(&Reply::Ok);
            return false;
        }
        "sentinel" => {
            if args.len() < 2 {
                wrong_args("sentinel")
            } else {
                let r = super::command::sentinel(st, args);
                st.borrow_mut().after();
                r
            }
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
            if args.len() != 3 {
                wrong_args("publish")
            } else if &args[1][..] != b"__sentinel__:hello" {
                Reply::error("ERR Only HELLO messages are accepted by Sentinel instances.".into())
            } else {
                let mut s = st.borrow_mut();
                s.process_hello(&String::from_utf8_lossy(&args[2]));
                s.after();
                Reply::Int(1)
            }
        }
        "subscribe" | "psubscribe" => {
            if args.len() < 2 {
                wrong_args(&name);
            } else {
                subscribe(st, c, &name, &args[1..]);
            }
            return true;
        }
        "unsubscribe" | "punsubscribe" => {
            unsubscribe(st, c, &name, &args[1..]);
            return true;
        }
        "auth" => match st.borrow().settings.requirepass.clone() {
            None => Reply::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                    .into(),
            ),
            Some(p) => {
                if args.last().is_some_and(|a| a[..] == *p.as_bytes()) && args.len() <= 3 {
                    c.authenticated = true;
                    Reply::Ok
                } else {
                    Reply::error("WRONGPASS invalid username-password pair or user is disabled.".into())
                }
            }
        },
        "hello" => hello(st, c, args),
        "client" => client(c, args),
        "command" => Reply::Array(Vec::new()),
        "shutdown" => {
            tracing::warn!("User requested shutdown...");
            let _ = st.borrow_mut().flush_config();
            tracing::warn!("Sentinel is now ready to exit, bye bye...");
            std::process::exit(0);
        }
        _ => unknown_command(args),
    };
    c.send(&reply);
    true
}

fn hello(st: &Shared, c: &mut Client, args: &[Bytes]) -> Reply {
    if let Some(v) = args.get(1) {
        match s(v).parse::<i64>() {
            Ok(2) => c.resp3 = false,
            Ok(3) => c.resp3 = true,
            _ => return Reply::error("NOPROTO unsupported protocol version".into()),
        }
    }
    let _ = st;
    Reply::Map(vec![
        (Reply::bulk(b"server"), Reply::bulk(b"redis")),
        (Reply::bulk(b"version"), Reply::bulk(b"7.0.15")),
        (Reply::bulk(b"proto"), Reply::Int(if c.resp3 { 3 } else { 2 })),
        (Reply::bulk(b"id"), Reply::Int(c.id as i64)),
        (Reply::bulk(b"mode"), Reply::bulk(b"sentinel")),
        (Reply::bulk(b"role"), Reply::bulk(b"master")),
        (Reply::bulk(b"modules"), Reply::Array(Vec::new())),
    ])
}

fn client(c: &mut Client, args: &[Bytes]) -> Reply {
    let sub = args.get(1).map(|a| s(a).to_ascii_lowercase()).unwrap_or_default();
    match (sub.as_str(), args.len()) {
        ("setname", 3) => {
            let n = s(&args[2]);
            if n.bytes().any(|b| b <= b' ' || b > b'~') {
                return Reply::error("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            c.name = Some(n).filter(|n| !n.is_empty());
            Reply::Ok
        }
        ("getname", 2) => c.name.as_ref().map(|n| Reply::bulk(n.as_bytes())).unwrap_or(Reply::Nil),
        ("id", 2) => Reply::Int(c.id as i64),
        ("info", 2) | ("list", 2) => {
            let age = super::state::now().saturating_sub(c.created) / 1000;
            let line = format!(
                "id={} addr={} name={} age={} db=0 sub={} psub={} cmd=client|{}\n",
                c.id,
                c.addr,
                c.name.clone().unwrap_or_default(),
                age,
                c.channels.len(),
                c.patterns.len(),
                sub
            );
            Reply::Bulk(Bytes::from(line))
        }
        ("kill", _) | ("setinfo", _) | ("reply", _) | ("no-evict", _) => Reply::Ok,
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            args.get(1).map(s).unwrap_or_default()
        )),
    }
}

fn sync_subscriber(st: &Shared, c: &Client) {
    let mut s = st.borrow_mut();
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
