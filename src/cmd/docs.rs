//! Argument documentation for COMMAND DOCS (what redis-cli 7 turns into hints), written as the
//! syntax line of each command and expanded into Redis's argument structures:
//! `lower` words are arguments (`key`-named ones have type key), `UPPER` words are tokens (a
//! token followed by an argument becomes that argument's token), `[...]` is optional,
//! `a|b` inside brackets or parentheses is a choice, `...` after an item makes it repeatable.

use crate::protocol::Reply;

/// Syntax lines by full command name (arguments after the name).
#[rustfmt::skip]
static SYNTAX: &[(&str, &str)] = &[
    ("get", "key"),
    ("set", "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"),
    ("setnx", "key value"),
    ("setex", "key seconds value"),
    ("psetex", "key milliseconds value"),
    ("getset", "key value"),
    ("getdel", "key"),
    ("getex", "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]"),
    ("mget", "key..."),
    ("mset", "(key value)..."),
    ("msetnx", "(key value)..."),
    ("append", "key value"),
    ("strlen", "key"),
    ("incr", "key"),
    ("decr", "key"),
    ("incrby", "key increment"),
    ("decrby", "key decrement"),
    ("incrbyfloat", "key increment"),
    ("getrange", "key start end"),
    ("substr", "key start end"),
    ("setrange", "key offset value"),
    ("lcs", "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]"),
    ("del", "key..."),
    ("unlink", "key..."),
    ("exists", "key..."),
    ("touch", "key..."),
    ("type", "key"),
    ("expire", "key seconds [NX|XX|GT|LT]"),
    ("pexpire", "key milliseconds [NX|XX|GT|LT]"),
    ("expireat", "key unix-time-seconds [NX|XX|GT|LT]"),
    ("pexpireat", "key unix-time-milliseconds [NX|XX|GT|LT]"),
    ("ttl", "key"),
    ("pttl", "key"),
    ("expiretime", "key"),
    ("pexpiretime", "key"),
    ("persist", "key"),
    ("rename", "key newkey"),
    ("renamenx", "key newkey"),
    ("copy", "source destination [DB destination-db] [REPLACE]"),
    ("move", "key db"),
    ("object|encoding", "key"),
    ("object|refcount", "key"),
    ("object|idletime", "key"),
    ("object|freq", "key"),
    ("keys", "pattern"),
    ("scan", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    ("flushdb", "[ASYNC|SYNC]"),
    ("flushall", "[ASYNC|SYNC]"),
    ("swapdb", "index1 index2"),
    ("ping", "[message]"),
    ("echo", "message"),
    ("select", "index"),
    ("auth", "[username] password"),
    ("hello", "[protover [AUTH username password] [SETNAME clientname]]"),
    ("client|setname", "connection-name"),
    ("client|list", "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id...]"),
    ("client|kill", "[ip:port] [ID client-id] [TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME YES|NO]"),
    ("client|no-evict", "ON|OFF"),
    ("client|reply", "ON|OFF|SKIP"),
    ("client|unblock", "client-id [TIMEOUT|ERROR]"),
    ("client|pause", "timeout [WRITE|ALL]"),
    ("failover", "[TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]"),
    ("blpop", "key... timeout"),
    ("brpop", "key... timeout"),
    ("brpoplpush", "source destination timeout"),
    ("blmove", "source destination LEFT|RIGHT LEFT|RIGHT timeout"),
    ("blmpop", "timeout numkeys key... LEFT|RIGHT [COUNT count]"),
    ("bzpopmin", "key... timeout"),
    ("bzpopmax", "key... timeout"),
    ("bzmpop", "timeout numkeys key... MIN|MAX [COUNT count]"),
    ("info", "[section...]"),
    ("shutdown", "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]"),
    ("command|info", "[command-name...]"),
    ("command|docs", "[command-name...]"),
    ("command|list", "[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]"),
    ("command|getkeys", "command arg..."),
    ("command|getkeysandflags", "command arg..."),
    ("slowlog|get", "[count]"),
    ("latency|history", "event"),
    ("lolwut", "[VERSION version]"),
    ("latency|reset", "[event...]"),
    ("latency|histogram", "[command...]"),
    ("config|get", "parameter..."),
    ("config|set", "(parameter value)..."),
    ("debug", "subcommand [argument...]"),
];

/// The syntax line of a command, if documented.
pub fn syntax(fullname: &str) -> Option<&'static str> {
    SYNTAX.iter().find(|(n, _)| *n == fullname).map(|(_, s)| *s)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open(char),
    Close,
    Bar,
    Dots,
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<Tok>| {
        if !w.is_empty() {
            out.push(Tok::Word(std::mem::take(w)));
        }
    };
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' | '(' => {
                flush(&mut word, &mut out);
                out.push(Tok::Open(c));
            }
            ']' | ')' => {
                flush(&mut word, &mut out);
                out.push(Tok::Close);
            }
            '|' => {
                flush(&mut word, &mut out);
                out.push(Tok::Bar);
            }
            '.' if chars.peek() == Some(&'.') => {
                chars.next();
                chars.next();
                flush(&mut word, &mut out);
                out.push(Tok::Dots);
            }
            ' ' => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One documented argument.
#[derive(Debug, Clone, PartialEq)]
struct Arg {
    name: String,
    kind: &'static str,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    children: Vec<Arg>,
}

fn leaf(word: &str) -> Arg {
    let upper = word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase());
    if upper {
        return Arg {
            name: word.to_ascii_lowercase(),
            kind: "pure-token",
            token: Some(word.to_string()),
            optional: false,
            multiple: false,
            children: vec![],
        };
    }
    let kind = if word == "key"
        || word.ends_with("key")
        || word == "source"
        || word == "destination"
        || word.starts_with("key")
    {
        "key"
    } else if [
        "seconds",
        "milliseconds",
        "count",
        "offset",
        "start",
        "end",
        "increment",
        "decrement",
        "index",
        "db",
        "cursor",
        "protover",
        "client-id",
        "index1",
        "index2",
        "destination-db",
        "min-match-len",
        "version",
    ]
    .contains(&word)
        || word.starts_with("unix-time")
    {
        "integer"
    } else {
        "string"
    };
    Arg { name: word.to_string(), kind, token: None, optional: false, multiple: false, children: vec![] }
}

/// Parses a sequence until a closing bracket or the end; alternatives separated by `|`.
fn parse_seq(toks: &[Tok], i: &mut usize) -> Vec<Vec<Arg>> {
    let mut alts: Vec<Vec<Arg>> = vec![Vec::new()];
    while *i < toks.len() {
        match &toks[*i] {
            Tok::Close => {
                *i += 1;
                break;
            }
            Tok::Bar => {
                alts.push(Vec::new());
                *i += 1;
            }
            Tok::Dots => {
                if let Some(last) = alts.last_mut().and_then(|a| a.last_mut()) {
                    last.multiple = true;
                }
                *i += 1;
            }
            Tok::Open(c) => {
                let optional = *c == '[';
                *i += 1;
                let inner = parse_seq(toks, i);
                let mut a = group(inner);
                a.optional = optional;
                if let Some(v) = alts.last_mut() {
                    v.push(a);
                }
            }
            Tok::Word(w) => {
                *i += 1;
                let mut a = leaf(w);
                // A token followed by an argument in the same sequence documents that argument.
                if a.kind == "pure-token" {
                    if let Some(Tok::Word(next)) = toks.get(*i) {
                        let n = leaf(next);
                        if n.kind != "pure-token" {
                            *i += 1;
                            a = Arg { token: a.token, ..n };
                        }
                    }
                }
                if let Some(v) = alts.last_mut() {
                    v.push(a);
                }
            }
        }
    }
    alts
}

/// A bracketed group: one item stays itself, a sequence becomes a block, choices a oneof.
fn group(mut alts: Vec<Vec<Arg>>) -> Arg {
    if alts.len() == 1 {
        let mut seq = alts.pop().unwrap_or_default();
        if seq.len() == 1 {
            return seq.pop().unwrap_or_else(|| leaf("arg"));
        }
        let name = seq.iter().map(|a| a.name.clone()).collect::<Vec<_>>().join("-");
        return Arg { name, kind: "block", token: None, optional: false, multiple: false, children: seq };
    }
    let children: Vec<Arg> = alts.into_iter().map(|seq| group(vec![seq])).collect();
    let name = children.iter().map(|a| a.name.clone()).collect::<Vec<_>>().join("-");
    Arg { name, kind: "oneof", token: None, optional: false, multiple: false, children }
}

fn to_reply(a: &Arg) -> Reply {
    let s = |t: &str| Reply::bulk(t.as_bytes());
    let mut m = vec![(s("name"), s(&a.name)), (s("type"), s(a.kind))];
    if let Some(t) = &a.token {
        m.push((s("token"), s(t)));
    }
    let mut flags = Vec::new();
    if a.optional {
        flags.push(Reply::status("optional"));
    }
    if a.multiple {
        flags.push(Reply::status("multiple"));
    }
    if !flags.is_empty() {
        m.push((s("flags"), Reply::Set(flags)));
    }
    if !a.children.is_empty() {
        m.push((s("arguments"), Reply::Array(a.children.iter().map(to_reply).collect())));
    }
    Reply::Map(m)
}

/// The `arguments` entry of COMMAND DOCS for a command, if documented.
pub fn arguments(fullname: &str) -> Option<Reply> {
    let toks = lex(syntax(fullname)?);
    let mut i = 0;
    let mut alts = parse_seq(&toks, &mut i);
    let args = if alts.len() == 1 { alts.pop().unwrap_or_default() } else { vec![group(alts)] };
    Some(Reply::Array(args.iter().map(to_reply).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_syntax_expands_like_redis() {
        let toks = lex(syntax("set").unwrap());
        let mut i = 0;
        let args = parse_seq(&toks, &mut i).pop().unwrap();
        assert_eq!(args[0].kind, "key");
        assert_eq!(args[1].name, "value");
        assert_eq!(args[2].kind, "oneof");
        assert!(args[2].optional);
        assert_eq!(args[2].children[0].token.as_deref(), Some("NX"));
        let expiry = &args[4];
        assert_eq!(expiry.children[0].name, "seconds");
        assert_eq!(expiry.children[0].token.as_deref(), Some("EX"));
        assert_eq!(expiry.children[4].kind, "pure-token");
        let mset = lex(syntax("mset").unwrap());
        let mut i = 0;
        let a = parse_seq(&mset, &mut i).pop().unwrap();
        assert_eq!(a[0].kind, "block");
        assert!(a[0].multiple);
    }
}
