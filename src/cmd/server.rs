//! Server commands: INFO (in info.rs), COMMAND, TIME, LASTSAVE, SHUTDOWN, MONITOR, SLOWLOG
//! (LATENCY is in latency.rs, DEBUG in debug.rs).

use super::ctx::{reply, ClientCtx, ShardState};
use super::errors;
use super::meta;
use super::spec::{flags, flags::*, spec, CommandSpec, Exec, Keys, Plan, ShutdownArgs};
use super::table;
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec("count", 2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_count)),
    spec("info", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_info)),
    spec("docs", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_docs)),
    spec("list", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_list)),
    spec("getkeys", -4, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_getkeys)),
    spec("getkeysandflags", -4, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_getkeysandflags)),
    spec("help", 2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_help)),
];

#[rustfmt::skip]
static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_get)),
    spec("len", 2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_len)),
    spec("reset", 2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_reset)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(slowlog_help)),
];

/// The server family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("info", -1, LOADING | STALE, "@slow @dangerous", Keys::None, Exec::Node(super::info::info)),
    spec("time", 1, LOADING | STALE | FAST, "@fast", Keys::None, Exec::Node(time)),
    spec("lolwut", -1, READONLY | FAST, "@read @fast", Keys::None, Exec::Node(super::lolwut::lolwut)),
    spec("lastsave", 1, LOADING | STALE | FAST, "@admin @fast @dangerous", Keys::None, Exec::Node(lastsave)),
    spec("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, "@admin @slow @dangerous", Keys::None, Exec::Node(shutdown)),
    spec("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(monitor)),
    CommandSpec { subcommands: COMMAND_SUBCOMMANDS, ..spec("command", -1, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command)) },
    CommandSpec { subcommands: SLOWLOG_SUBCOMMANDS, ..spec("slowlog", -2, 0, "@slow", Keys::None, Exec::Container) },
    CommandSpec { subcommands: super::latency::SUBCOMMANDS, ..spec("latency", -2, 0, "@slow", Keys::None, Exec::Container) },
    spec("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED, "@admin @slow @dangerous", Keys::None, Exec::Node(super::debug::debug)),
];

fn time(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    reply(Reply::Array(vec![Reply::bulk_int(d.as_secs() as i64), Reply::bulk_int(d.subsec_micros() as i64)]))
}

fn lastsave(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Int(super::save::last_save(ctx.node().start_ms / 1000) as i64))
}

fn shutdown(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut a = ShutdownArgs::default();
    let mut abort = false;
    for w in &args[1..] {
        if eq_ic(w, "nosave") {
            a.nosave = true;
        } else if eq_ic(w, "save") {
            a.save = true;
        } else if eq_ic(w, "now") {
            a.now = true;
        } else if eq_ic(w, "force") {
            a.force = true;
        } else if eq_ic(w, "abort") {
            abort = true;
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
    }
    if (a.nosave && a.save) || (abort && (a.nosave || a.save || a.now || a.force)) {
        return reply(Reply::err(errors::SYNTAX));
    }
    if abort {
        if crate::runtime::shutdown_wait::abort() || crate::process::cancel_shutdown_request() {
            tracing::info!("Shutdown manually aborted.");
            return reply(Reply::Ok);
        }
        return reply(Reply::err("ERR No shutdown in progress."));
    }
    Plan::Shutdown(a)
}

fn monitor(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Monitor
}

// ---- COMMAND -------------------------------------------------------------------------------

fn flag_set(spec: &CommandSpec) -> Reply {
    let mut v: Vec<Reply> = flags::NAMES.iter().filter(|(b, _)| spec.has(*b)).map(|(_, n)| Reply::status(n)).collect();
    if matches!(spec.keys, Keys::Custom { .. } | Keys::Derived { .. }) {
        v.push(Reply::status("movablekeys"));
    }
    Reply::Set(v)
}

fn command_entry(spec: &'static CommandSpec, parent: Option<&'static CommandSpec>) -> Reply {
    let name = match parent {
        Some(p) => table::fullname(p, Some(spec)),
        None => spec.name,
    };
    let (first, last, step) = spec.legacy_range();
    let acl = Reply::Set(spec.acl.split_whitespace().map(|c| Reply::Status(c.to_string().into())).collect());
    // Redis answers a command without subcommands (or key specs) with an empty set.
    let subs = if spec.subcommands.is_empty() {
        Reply::Set(vec![])
    } else {
        Reply::Array(spec.subcommands.iter().map(|s| command_entry(s, Some(spec))).collect())
    };
    Reply::Array(vec![
        Reply::bulk(name.as_bytes()),
        Reply::Int(spec.arity as i64),
        flag_set(spec),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        acl,
        meta::tips_reply(name),
        meta::key_specs_reply(name),
        subs,
    ])
}

fn command(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Array(table::all().map(|s| command_entry(s, None)).collect()))
}

fn command_count(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Int(table::count() as i64))
}

fn command_info(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() == 2 {
        return command(_ctx, args);
    }
    reply(Reply::Array(
        args[2..]
            .iter()
            .map(|n| table::lookup_full(n).map_or(Reply::Nil, |(s, parent)| command_entry(s, parent)))
            .collect(),
    ))
}

fn command_docs(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // (spec, full name): `config|get` for a subcommand asked by that name.
    let specs: Vec<(&'static CommandSpec, &'static str)> = if args.len() == 2 {
        table::all().map(|s| (s, s.name)).collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|n| table::lookup_full(n))
            .map(|(s, parent)| (s, parent.map_or(s.name, |p| table::fullname(p, Some(s)))))
            .collect()
    };
    reply(Reply::Map(
        specs.into_iter().map(|(s, full)| (Reply::bulk(full.as_bytes()), meta::docs_reply(s, full))).collect(),
    ))
}

fn command_list(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // Every command and subcommand, by full name (`config|get`).
    let mut names: Vec<(&'static str, &'static CommandSpec)> = table::all()
        .flat_map(|s| {
            std::iter::once((s.name, s))
                .chain(s.subcommands.iter().map(move |sub| (table::fullname(s, Some(sub)), sub)))
        })
        .collect();
    if args.len() > 2 {
        if args.len() != 5 || !eq_ic(&args[2], "filterby") {
            return reply(Reply::err(errors::SYNTAX));
        }
        let v = String::from_utf8_lossy(&args[4]).to_ascii_lowercase();
        if eq_ic(&args[3], "aclcat") {
            names.retain(|(_, s)| s.acl.split_whitespace().any(|c| c.trim_start_matches('@') == v));
        } else if eq_ic(&args[3], "pattern") {
            names.retain(|(n, _)| super::util::glob_match(v.as_bytes(), n.as_bytes(), true));
        } else if eq_ic(&args[3], "module") {
            names.clear();
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
    }
    reply(Reply::Array(names.into_iter().map(|(n, _)| Reply::bulk(n.as_bytes())).collect()))
}

/// The command COMMAND GETKEYS / GETKEYSANDFLAGS asks about, or the error Redis replies.
fn getkeys_target(cmd_args: &[Bytes]) -> Result<(&'static CommandSpec, String), Plan> {
    let Some(parent) = table::lookup(&cmd_args[0]) else {
        return Err(reply(Reply::err("ERR Invalid command specified")));
    };
    let mut spec = parent;
    let mut fullname = parent.name.to_string();
    if !parent.subcommands.is_empty() && cmd_args.len() > 1 {
        match table::lookup_sub(parent, &cmd_args[1]) {
            Some(sub) => {
                spec = sub;
                fullname = table::fullname(parent, Some(sub)).to_string();
            }
            None => return Err(reply(Reply::err("ERR Invalid command specified"))),
        }
    }
    // Redis's `doesCommandHaveKeys`: a key spec that is not NOT_KEY (shard channels are not keys).
    if matches!(spec.keys, Keys::None) || !crate::acl::keys::has_keys(&fullname) {
        return Err(reply(Reply::err("ERR The command has no key arguments")));
    }
    if !spec.arity_ok(cmd_args.len()) {
        return Err(reply(Reply::err("ERR Invalid number of arguments specified for command")));
    }
    Ok((spec, fullname))
}

/// COMMAND GETKEYS: the keys COMMAND GETKEYSANDFLAGS finds, without their flags.
fn command_getkeys(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match command_getkeysandflags(ctx, args) {
        Plan::Reply(Reply::Array(v)) => reply(Reply::Array(
            v.into_iter()
                .filter_map(|e| match e {
                    Reply::Array(mut kf) if !kf.is_empty() => Some(kf.swap_remove(0)),
                    _ => None,
                })
                .collect(),
        )),
        p => p,
    }
}

/// COMMAND GETKEYSANDFLAGS: each key with its key-spec flags, found as Redis's
/// `getKeysFromCommandWithSpecs` finds them (the ACL's key walk over `cmd::meta`'s key specs).
fn command_getkeysandflags(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    use crate::acl::keys;
    let cmd_args = &args[2..];
    let (spec, fullname) = match getkeys_target(cmd_args) {
        Ok(t) => t,
        Err(p) => return p,
    };
    let found = keys::keys_with_flags(&fullname, spec.arity, cmd_args);
    if found.is_empty() {
        return if spec.has(flags::NO_MANDATORY_KEYS) {
            reply(Reply::Array(Vec::new()))
        } else {
            reply(Reply::err("ERR Invalid arguments specified for command"))
        };
    }
    let entry =
        |(pos, f): (usize, u16)| Reply::Array(vec![Reply::Bulk(cmd_args[pos].clone()), meta::key_flags_reply(f)]);
    reply(Reply::Array(found.into_iter().map(entry).collect()))
}

pub(super) fn help_lines(lines: &[&'static str]) -> Plan {
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}

fn command_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    help_lines(&[
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
    ])
}

// ---- SLOWLOG -------------------------------------------------------------------------------

fn slowlog_get(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let count = match args.get(2) {
        None => 10,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= -1 => n,
            _ => return reply(Reply::err("ERR count should be greater than or equal to -1")),
        },
    };
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        Reply::Array(
            shard
                .slowlog
                .iter()
                .map(|e| {
                    Reply::Array(vec![
                        Reply::Int(e.id as i64),
                        Reply::Int(e.time as i64),
                        Reply::Int(e.duration_us as i64),
                        Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                        Reply::bulk(e.addr.as_bytes()),
                        Reply::bulk(e.name.as_bytes()),
                    ])
                })
                .collect(),
        )
    }
    Plan::AllShards {
        run,
        merge: Box::new(move |_, replies| {
            let mut all: Vec<Reply> =
                replies.into_iter().flat_map(|r| if let Reply::Array(v) = r { v } else { vec![] }).collect();
            // Newest first: ids are node-wide, in recording order.
            let key = |r: &Reply| match r {
                Reply::Array(v) => match &v[0] {
                    Reply::Int(id) => *id,
                    _ => 0,
                },
                _ => 0,
            };
            all.sort_by_key(|r| std::cmp::Reverse(key(r)));
            if count >= 0 {
                all.truncate(count as usize);
            }
            Reply::Array(all)
        }),
    }
}

fn slowlog_len(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        Reply::Int(shard.slowlog.len() as i64)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, r| Reply::Int(r.iter().map(|x| if let Reply::Int(n) = x { *n } else { 0 }).sum())),
    }
}

fn slowlog_reset(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        shard.slowlog.clear();
        Reply::Ok
    }
    Plan::AllShards { run, merge: Box::new(|_, _| Reply::Ok) }
}

fn slowlog_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    help_lines(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ])
}
