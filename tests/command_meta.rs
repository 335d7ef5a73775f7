//! COMMAND INFO, COMMAND DOCS, COMMAND GETKEYS and COMMAND GETKEYSANDFLAGS side by side with a
//! real redis-server: every command and subcommand of COMMAND LIST, in RESP2 and RESP3, reply
//! for reply. The only freedom taken is order where Redis has none: redis-server lists a
//! container's subcommands (and COMMAND / COMMAND DOCS without names list every command) in its
//! hash table's order, which changes from one run to the next, so those are compared sorted.

mod common;
use common::{assert_same, Raw, Server};

/// Commands whose COMMAND INFO or COMMAND DOCS are allowed to differ from redis-server's, with
/// the reason. Empty: every command and subcommand slotcore has replies exactly as Redis 7.0.15.
const EXCEPTIONS: &[(&str, &str)] = &[];

/// A parsed reply, types kept (a RESP3 set is not an array, a map not a set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(String),
    Nil,
    Array(Vec<V>),
    Set(Vec<V>),
    Map(Vec<(V, V)>),
    Other(String),
}

fn parse(s: &str) -> V {
    let mut pos = 0;
    let v = parse_at(s.as_bytes(), &mut pos);
    assert_eq!(pos, s.len(), "trailing bytes after a reply: {s:?}");
    v
}

fn parse_at(b: &[u8], pos: &mut usize) -> V {
    let end = b[*pos..].windows(2).position(|w| w == b"\r\n").map(|i| *pos + i).expect("a CRLF-terminated line");
    let line = String::from_utf8_lossy(&b[*pos + 1..end]).into_owned();
    let kind = b[*pos];
    *pos = end + 2;
    let n = || line.parse::<i64>().expect("a length");
    let items = |pos: &mut usize, k: i64| (0..k).map(|_| parse_at(b, pos)).collect::<Vec<_>>();
    match kind {
        b'+' => V::Status(line),
        b'-' => V::Error(line),
        b':' => V::Int(n()),
        b'_' => V::Nil,
        b'$' if n() < 0 => V::Nil,
        b'*' if n() < 0 => V::Nil,
        b'$' => {
            let len = n() as usize;
            let v = String::from_utf8_lossy(&b[*pos..*pos + len]).into_owned();
            *pos += len + 2;
            V::Bulk(v)
        }
        b'*' => V::Array(items(pos, n())),
        b'~' => V::Set(items(pos, n())),
        b'%' => {
            let flat = items(pos, n() * 2);
            V::Map(flat.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
        }
        _ => V::Other(line),
    }
}

/// A map's pairs, from a RESP3 map or a RESP2 flat array.
fn pairs(v: &V) -> Vec<(V, V)> {
    match v {
        V::Map(p) => p.clone(),
        V::Array(a) => a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn rebuild_map(like: &V, p: Vec<(V, V)>) -> V {
    match like {
        V::Map(_) => V::Map(p),
        _ => V::Array(p.into_iter().flat_map(|(k, v)| [k, v]).collect()),
    }
}

/// A COMMAND INFO entry with its subcommands (10th element) sorted.
fn norm_info_entry(v: V) -> V {
    match v {
        V::Array(mut e) if e.len() == 10 => {
            if let V::Array(subs) = &mut e[9] {
                let mut s: Vec<V> = std::mem::take(subs).into_iter().map(norm_info_entry).collect();
                s.sort();
                *subs = s;
            }
            V::Array(e)
        }
        other => other,
    }
}

/// A COMMAND DOCS entry (the map after a name) with its `subcommands` map sorted by name.
fn norm_docs_entry(v: V) -> V {
    let p = pairs(&v)
        .into_iter()
        .map(|(k, val)| {
            if k == V::Bulk("subcommands".into()) {
                let like = val.clone();
                (k, rebuild_map(&like, norm_docs_map(&val)))
            } else {
                (k, val)
            }
        })
        .collect();
    rebuild_map(&v, p)
}

/// The `name -> entry` pairs of a COMMAND DOCS reply, sorted by name, entries normalised.
fn norm_docs_map(v: &V) -> Vec<(V, V)> {
    let mut p: Vec<(V, V)> = pairs(v).into_iter().map(|(k, e)| (k, norm_docs_entry(e))).collect();
    p.sort();
    p
}

fn norm_info(v: V) -> V {
    match v {
        V::Array(a) => {
            let mut a: Vec<V> = a.into_iter().map(norm_info_entry).collect();
            a.sort();
            V::Array(a)
        }
        other => other,
    }
}

fn norm_docs(v: V) -> V {
    let like = v.clone();
    rebuild_map(&like, norm_docs_map(&v))
}

fn list(c: &mut Raw) -> Vec<String> {
    let mut names: Vec<String> = match parse(&c.cmd(&["COMMAND", "LIST"])) {
        V::Array(a) | V::Set(a) => a
            .into_iter()
            .map(|n| match n {
                V::Bulk(s) => s,
                other => panic!("COMMAND LIST gave {other:?}"),
            })
            .collect(),
        other => panic!("COMMAND LIST gave {other:?}"),
    };
    names.sort();
    names
}

/// Every command and subcommand's COMMAND INFO and COMMAND DOCS, one by one, then all at
/// once, in RESP2 and RESP3.
#[test]
fn command_info_and_docs_match_redis_for_every_command() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    for proto in ["2", "3"] {
        let (mut a, mut b) = (sc.raw(), rs.raw());
        if proto == "3" {
            a.cmd(&["HELLO", "3"]);
            b.cmd(&["HELLO", "3"]);
        }
        let names = list(&mut b);
        assert_eq!(list(&mut a), names, "COMMAND LIST differs");
        assert!(names.len() > 300, "only {} commands listed", names.len());
        let mut compared = 0;
        let mut differing = Vec::new();
        for name in &names {
            let excused = EXCEPTIONS.iter().any(|(n, _)| n == name);
            for (what, norm) in [("INFO", norm_info as fn(V) -> V), ("DOCS", norm_docs)] {
                let ra = norm(parse(&a.cmd(&["COMMAND", what, name])));
                let rb = norm(parse(&b.cmd(&["COMMAND", what, name])));
                compared += 1;
                if ra != rb && !excused {
                    differing.push(format!("COMMAND {what} {name} (RESP{proto}):\n slotcore {ra:?}\n redis    {rb:?}"));
                }
            }
        }
        assert!(differing.is_empty(), "{} of {compared} replies differ:\n{}", differing.len(), differing.join("\n"));
        // Several names at once, unknown ones included (COMMAND INFO: nil; DOCS: left out).
        for what in ["INFO", "DOCS"] {
            let args = ["COMMAND", what, "get", "nosuchcommand", "config|get", "client", "config|nosuch", "zadd"];
            let norm = if what == "INFO" { norm_info as fn(V) -> V } else { norm_docs };
            assert_eq!(norm(parse(&a.cmd(&args))), norm(parse(&b.cmd(&args))), "{args:?} RESP{proto}");
        }
        // Everything, in the order of neither.
        for args in [&["COMMAND"][..], &["COMMAND", "INFO"], &["COMMAND", "DOCS"]] {
            let norm = if args.len() == 2 && args[1] == "DOCS" { norm_docs as fn(V) -> V } else { norm_info };
            let (ra, rb) = (norm(parse(&a.cmd(args))), norm(parse(&b.cmd(args))));
            assert!(ra == rb, "{args:?} RESP{proto} differs");
        }
        assert_same(&mut a, &mut b, &[&["COMMAND", "COUNT"]]);
    }
    for (name, why) in EXCEPTIONS {
        assert!(!why.is_empty(), "exception {name} without a reason");
    }
}

/// redis-cli 7 prints COMMAND DOCS / COMMAND INFO of SET, ZADD, CLIENT KILL and XADD as for
/// redis-server (and builds its hints from them).
#[test]
fn redis_cli_prints_docs_as_for_redis() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    for args in [
        &["COMMAND", "DOCS", "set"][..],
        &["COMMAND", "DOCS", "zadd"],
        &["COMMAND", "DOCS", "client|kill"],
        &["COMMAND", "DOCS", "xadd"],
        &["COMMAND", "DOCS", "migrate"],
        &["COMMAND", "INFO", "set"],
        &["COMMAND", "INFO", "keys"],
        &["COMMAND", "INFO", "georadius"],
    ] {
        for proto in [&[][..], &["-3"]] {
            let full: Vec<&str> = proto.iter().chain(args).copied().collect();
            let (a, b) = (sc.cli(&full), rs.cli(&full));
            assert!(!b.is_empty(), "redis-cli {full:?} printed nothing");
            assert_eq!(a, b, "redis-cli {full:?}");
        }
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS walk the same key specs as redis-server: flags that
/// depend on the arguments (SET ... GET, SORT ... STORE), keys after a keyword (XREADGROUP's
/// STREAMS, GEORADIUS's STORE), numkeys (EVAL, ZUNIONSTORE) and MIGRATE's KEYS.
#[test]
fn getkeys_and_flags_match_redis() {
    let sc = Server::slotcore(&[]);
    let rs = Server::redis(&[]);
    let (mut a, mut b) = (sc.raw(), rs.raw());
    let calls: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["SET", "k", "v", "EX", "10", "GET"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["SORT", "k", "BY", "w*", "GET", "#", "STORE", "d"],
        &["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "a", "b"],
        &["MIGRATE", "h", "1", "k", "0", "5", "COPY"],
        &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", "s2", ">", ">"],
        &["EVAL", "return 1", "2", "a", "b", "c"],
        &["EVAL", "return 1", "3", "a"],
        &["FCALL_RO", "f", "1", "a"],
        &["ZUNIONSTORE", "d", "2", "a", "b", "AGGREGATE", "MAX"],
        &["ZUNIONSTORE", "d", "3", "a"],
        &["GEORADIUS", "k", "0", "0", "1", "km", "STOREDIST", "d"],
        &["GEORADIUSBYMEMBER", "k", "m", "1", "km", "STORE", "d"],
        &["GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYBOX", "1", "1", "km"],
        &["BLMPOP", "0", "2", "a", "b", "LEFT"],
        &["XREAD", "STREAMS", "a", "b", "0", "0"],
        &["SINTERCARD", "2", "a", "b"],
        &["BITOP", "AND", "d", "a", "b"],
        &["OBJECT", "ENCODING", "k"],
        &["MEMORY", "USAGE", "k"],
        &["SPUBLISH", "ch", "m"],
        &["PING"],
        &["GET"],
    ];
    for proto in ["2", "3"] {
        if proto == "3" {
            a.cmd(&["HELLO", "3"]);
            b.cmd(&["HELLO", "3"]);
        }
        for call in calls {
            for sub in ["GETKEYSANDFLAGS", "GETKEYS"] {
                let full: Vec<&str> = ["COMMAND", sub].iter().chain(call.iter()).copied().collect();
                assert_same(&mut a, &mut b, &[&full]);
            }
        }
    }
}
