//! COMMAND in sentinel mode (COUNT, LIST with FILTERBY, INFO, DOCS, GETKEYS,
//! GETKEYSANDFLAGS, HELP) answered from Sentinel's own command table, and the checks Redis's
//! `processCommand` makes before a command runs (unknown command, unknown subcommand of a
//! container, arity), with Redis 7.0's texts.

use super::command_table::{Cmd, COMMANDS, D};
use crate::protocol::reply::Reply;
use bytes::Bytes;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The top-level command `name` (case-insensitive).
pub fn lookup(name: &[u8]) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Subcommand `name` of container `c`.
fn lookup_sub(c: &'static Cmd, name: &[u8]) -> Option<&'static Cmd> {
    c.subs.iter().find(|s| s.name.split('|').nth(1).is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(name)))
}

/// Redis's `lookupCommandBySds`: `name` or `container|sub`.
fn lookup_full(name: &[u8]) -> Option<&'static Cmd> {
    let text = lossy(name);
    let mut parts = text.split('|');
    let base = lookup(parts.next()?.as_bytes())?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) => lookup_sub(base, sub.as_bytes()),
        _ => None,
    }
}

/// Redis's `lookupCommand` on a request: a container with a subcommand argument resolves to
/// the subcommand.
fn resolve(args: &[Bytes]) -> Option<&'static Cmd> {
    let base = lookup(&args[0])?;
    if base.subs.is_empty() || args.len() < 2 {
        return Some(base);
    }
    lookup_sub(base, &args[1])
}

/// What `processCommand` rejects before running anything: unknown commands and subcommands and
/// wrong arities. Ok carries the command (or subcommand) that will run.
pub fn check(args: &[Bytes]) -> Result<&'static Cmd, Reply> {
    let Some(cmd) = resolve(args) else {
        if lookup(&args[0]).is_some() {
            return Err(Reply::error(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                clip(&lossy(&args[1])),
                lossy(&args[0]).to_ascii_uppercase()
            )));
        }
        let mut tail = String::new();
        for a in args.iter().skip(1) {
            if tail.len() >= 128 {
                break;
            }
            let room = 128 - tail.len();
            let a = lossy(a);
            tail.push_str(&format!("'{}' ", a.chars().take(room).collect::<String>()));
        }
        let text = format!("ERR unknown command '{}', with args beginning with: {}", clip(&lossy(&args[0])), tail);
        return Err(Reply::error(text.replace(['\r', '\n'], " ")));
    };
    let n = args.len() as i32;
    if (cmd.arity > 0 && cmd.arity != n) || n < -cmd.arity {
        return Err(Reply::error(format!("ERR wrong number of arguments for '{}' command", cmd.name)));
    }
    Ok(cmd)
}

fn clip(s: &str) -> String {
    s.chars().take(128).collect::<String>().replace(['\r', '\n'], " ")
}

/// Whether `cmd` carries command flag `flag` (`no_auth`, `pubsub`, ...).
pub fn has_flag(cmd: &Cmd, flag: &str) -> bool {
    cmd.flags.split_whitespace().any(|f| f == flag)
}

fn to_reply(d: &D) -> Reply {
    match d {
        D::S(s) => Reply::bulk(s.as_bytes()),
        D::T(s) => Reply::status(s),
        D::I(i) => Reply::Int(*i),
        D::A(v) => Reply::Array(v.iter().map(to_reply).collect()),
        D::Set(v) => Reply::Set(v.iter().map(to_reply).collect()),
        D::M(v) => Reply::Map(v.iter().map(|(k, v)| (Reply::bulk(k.as_bytes()), to_reply(v))).collect()),
    }
}

fn words(s: &'static str, status: bool) -> Reply {
    Reply::Set(
        s.split_whitespace().map(|w| if status { Reply::status(w) } else { Reply::bulk(w.as_bytes()) }).collect(),
    )
}

/// Redis's `addReplyCommandInfo`.
fn info_entry(c: &'static Cmd) -> Reply {
    let subs =
        if c.subs.is_empty() { Reply::Set(Vec::new()) } else { Reply::Array(c.subs.iter().map(info_entry).collect()) };
    Reply::Array(vec![
        Reply::bulk(c.name.as_bytes()),
        Reply::Int(c.arity as i64),
        words(c.flags, true),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        words(c.acl, true),
        words(c.tips, false),
        Reply::Set(Vec::new()),
        subs,
    ])
}

/// Redis's `addReplyCommandDocs`.
fn docs_entry(c: &'static Cmd) -> Reply {
    let Reply::Map(mut fields) = to_reply(&c.docs) else { return Reply::Map(Vec::new()) };
    if !c.subs.is_empty() {
        fields.push((
            Reply::bulk(b"subcommands"),
            Reply::Map(c.subs.iter().map(|s| (Reply::bulk(s.name.as_bytes()), docs_entry(s))).collect()),
        ));
    }
    Reply::Map(fields)
}

/// The categories of a command as names without `@`.
fn in_category(c: &Cmd, cat: &str) -> bool {
    c.acl.split_whitespace().any(|a| a.trim_start_matches('@').eq_ignore_ascii_case(cat))
}

/// Runs `COMMAND [subcommand ...]` (arity already checked).
pub fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(COMMANDS.iter().map(info_entry).collect());
    }
    let sub = lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "count" => Reply::Int(COMMANDS.len() as i64),
        "list" => list(args),
        "info" if args.len() == 2 => Reply::Array(COMMANDS.iter().map(info_entry).collect()),
        "info" => Reply::Array(args[2..].iter().map(|n| lookup_full(n).map_or(Reply::Nil, info_entry)).collect()),
        "docs" => {
            let cmds: Vec<&'static Cmd> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup_full(n)).collect()
            };
            Reply::Map(cmds.into_iter().map(|c| (Reply::bulk(c.name.as_bytes()), docs_entry(c))).collect())
        }
        "getkeys" | "getkeysandflags" => match resolve(&args[2..]) {
            None => Reply::error("ERR Invalid command specified".into()),
            // No command a Sentinel runs takes keys.
            Some(_) => Reply::error("ERR The command has no key arguments".into()),
        },
        _ => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::status(l))
            .collect(),
        ),
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command and
/// subcommand name that passes the filter.
fn list(args: &[Bytes]) -> Reply {
    enum Filter {
        All,
        None,
        Cat(String),
        Pattern(Vec<u8>),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let kind = lossy(&args[3]).to_ascii_lowercase();
            match kind.as_str() {
                "module" => Filter::None,
                "aclcat" => Filter::Cat(lossy(&args[4])),
                "pattern" => Filter::Pattern(args[4].to_vec()),
                _ => return Reply::error("ERR syntax error".into()),
            }
        }
        _ => return Reply::error("ERR syntax error".into()),
    };
    let pass = |c: &Cmd| match &filter {
        Filter::All => true,
        Filter::None => false,
        Filter::Cat(cat) => in_category(c, cat),
        Filter::Pattern(p) => crate::cmd::util::glob_match(p, c.name.as_bytes(), true),
    };
    let mut out = Vec::new();
    for c in COMMANDS {
        if pass(c) {
            out.push(Reply::bulk(c.name.as_bytes()));
        }
        for s in c.subs {
            if pass(s) {
                out.push(Reply::bulk(s.name.as_bytes()));
            }
        }
    }
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn table_has_redis_sentinel_counts() {
        assert_eq!(COMMANDS.len(), 15);
        let Reply::Array(names) = list(&argv(&["command", "list"])) else { panic!() };
        assert_eq!(names.len(), 72);
        assert_eq!(lookup_full(b"SENTINEL|Myid").map(|c| c.arity), Some(2));
    }

    #[test]
    fn checks_use_redis_texts() {
        let e = |w: &[&str]| match check(&argv(w)) {
            Err(Reply::Error(t)) => t.to_string(),
            _ => String::new(),
        };
        assert_eq!(e(&["client", "nosuch"]), "ERR unknown subcommand 'nosuch'. Try CLIENT HELP.");
        assert_eq!(e(&["get", "k"]), "ERR unknown command 'get', with args beginning with: 'k' ");
        assert_eq!(e(&["sentinel", "masters", "x"]), "ERR wrong number of arguments for 'sentinel|masters' command");
        assert_eq!(e(&["client"]), "ERR wrong number of arguments for 'client' command");
        assert!(check(&argv(&["ping"])).is_ok());
    }
}
