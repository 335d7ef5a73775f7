//! Server commands: INFO (in info.rs), COMMAND, TIME, LASTSAVE, SHUTDOWN, MONITOR, SLOWLOG,
//! DEBUG.

use super::ctx::{reply, ClientCtx, ShardState};
use super::errors;
use super::spec::{flags, flags::*, spec, CommandSpec, Exec, Keys, Plan, ShutdownArgs};
use super::table;
use super::util::{eq_ic, parse_i64};
use crate::config::Enable;
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec("count", 2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_count), "server", "2.8.13", "Get total number of Redis commands"),
    spec("info", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_info), "server", "2.8.13", "Get array of specific Redis command details, or all when no argument is given."),
    spec("docs", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_docs), "server", "7.0.0", "Get array of specific Redis command documentation"),
    spec("list", -2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_list), "server", "7.0.0", "Get an array of Redis command names"),
    spec("getkeys", -4, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_getkeys), "server", "2.8.13", "Extract keys given a full Redis command"),
    spec("help", 2, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command_help), "server", "5.0.0", "Show helpful text about the different subcommands"),
];

#[rustfmt::skip]
static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_get), "server", "2.2.12", "Get the slow log's entries"),
    spec("len", 2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_len), "server", "2.2.12", "Get the slow log's length"),
    spec("reset", 2, ADMIN | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(slowlog_reset), "server", "2.2.12", "Clear all entries from the slow log"),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(slowlog_help), "server", "6.2.0", "Show helpful text about the different subcommands"),
];

#[rustfmt::skip]
static LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(latency_latest), "server", "2.8.13", "Return the latest latency samples for all events."),
    spec("history", 3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(latency_history), "server", "2.8.13", "Return timestamp-latency samples for the event."),
    spec("reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(latency_reset), "server", "2.8.13", "Reset latency data for one or more events."),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(latency_help), "server", "2.8.13", "Show helpful text about the different subcommands."),
];

/// The server family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("info", -1, LOADING | STALE, "@slow @dangerous", Keys::None, Exec::Node(super::info::info), "server", "1.0.0", "Get information and statistics about the server"),
    spec("time", 1, LOADING | STALE | FAST, "@fast", Keys::None, Exec::Node(time), "server", "2.6.0", "Return the current server time"),
    spec("lastsave", 1, LOADING | STALE | FAST, "@fast @dangerous", Keys::None, Exec::Node(lastsave), "server", "1.0.0", "Get the UNIX time stamp of the last successful save to disk"),
    spec("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, "@admin @slow @dangerous", Keys::None, Exec::Node(shutdown), "server", "1.0.0", "Synchronously save the dataset to disk and then shut down the server"),
    spec("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(monitor), "server", "1.0.0", "Listen for all requests received by the server in real time"),
    CommandSpec { subcommands: COMMAND_SUBCOMMANDS, ..spec("command", -1, LOADING | STALE, "@slow @connection", Keys::None, Exec::Node(command), "server", "2.8.13", "Get array of Redis command details") },
    CommandSpec { subcommands: SLOWLOG_SUBCOMMANDS, ..spec("slowlog", -2, 0, "@slow", Keys::None, Exec::Container, "server", "2.2.12", "A container for slow log commands") },
    CommandSpec { subcommands: LATENCY_SUBCOMMANDS, ..spec("latency", -2, 0, "@slow", Keys::None, Exec::Container, "server", "2.8.13", "A container for latency diagnostics commands") },
    spec("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED, "@admin @slow @dangerous", Keys::None, Exec::Node(debug), "server", "1.0.0", "A container for debugging commands"),
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
        Some(p) => table::fullname(p, Some(spec)).to_string(),
        None => spec.name.to_string(),
    };
    let (first, last, step) = spec.legacy_range();
    let acl = Reply::Set(spec.acl.split_whitespace().map(|c| Reply::Status(c.to_string().into())).collect());
    let subs = Reply::Array(spec.subcommands.iter().map(|s| command_entry(s, Some(spec))).collect());
    Reply::Array(vec![
        Reply::bulk_string(name),
        Reply::Int(spec.arity as i64),
        flag_set(spec),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        acl,
        Reply::Set(vec![]),
        Reply::Array(vec![]),
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
        args[2..].iter().map(|n| table::lookup(n).map_or(Reply::Nil, |s| command_entry(s, None))).collect(),
    ))
}

fn doc_entry(spec: &'static CommandSpec, fullname: &str) -> Reply {
    let s = |t: &str| Reply::bulk(t.as_bytes());
    let mut fields = vec![(s("summary"), s(spec.summary)), (s("since"), s(spec.since)), (s("group"), s(spec.group))];
    if !spec.complexity.is_empty() {
        fields.push((s("complexity"), s(spec.complexity)));
    }
    if let Some(args) = super::docs::arguments(fullname) {
        fields.push((s("arguments"), args));
    }
    if !spec.subcommands.is_empty() {
        fields.push((
            s("subcommands"),
            Reply::Map(
                spec.subcommands
                    .iter()
                    .map(|sub| {
                        let full = table::fullname(spec, Some(sub));
                        (Reply::bulk(full.as_bytes()), doc_entry(sub, full))
                    })
                    .collect(),
            ),
        ));
    }
    Reply::Map(fields)
}

fn command_docs(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let specs: Vec<&'static CommandSpec> = if args.len() == 2 {
        table::all().collect()
    } else {
        args[2..].iter().filter_map(|n| table::lookup(n)).collect()
    };
    reply(Reply::Map(specs.into_iter().map(|s| (Reply::bulk(s.name.as_bytes()), doc_entry(s, s.name))).collect()))
}

fn command_list(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut names: Vec<&'static CommandSpec> = table::all().collect();
    if args.len() > 2 {
        if args.len() != 5 || !eq_ic(&args[2], "filterby") {
            return reply(Reply::err(errors::SYNTAX));
        }
        let v = String::from_utf8_lossy(&args[4]).to_ascii_lowercase();
        if eq_ic(&args[3], "aclcat") {
            names.retain(|s| s.acl.split_whitespace().any(|c| c.trim_start_matches('@') == v));
        } else if eq_ic(&args[3], "pattern") {
            names.retain(|s| super::util::glob_match(v.as_bytes(), s.name.as_bytes(), true));
        } else if eq_ic(&args[3], "module") {
            names.clear();
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
    }
    reply(Reply::Array(names.into_iter().map(|s| Reply::bulk(s.name.as_bytes())).collect()))
}

fn command_getkeys(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let cmd_args = &args[2..];
    let Some(mut spec) = table::lookup(&cmd_args[0]) else {
        return reply(Reply::err("ERR Invalid command specified"));
    };
    if matches!(spec.exec, Exec::Container) && cmd_args.len() > 1 {
        if let Some(sub) = table::lookup_sub(spec, &cmd_args[1]) {
            spec = sub;
        }
    }
    if !spec.arity_ok(cmd_args.len()) {
        return reply(Reply::err("ERR Invalid number of arguments specified for command"));
    }
    match spec.key_indexes(cmd_args) {
        Ok(k) if k.is_empty() => reply(Reply::err("ERR The command has no key arguments")),
        Ok(k) => reply(Reply::Array(k.into_iter().map(|i| Reply::Bulk(cmd_args[i].clone())).collect())),
        Err(e) => reply(e),
    }
}

fn help_lines(lines: &[&'static str]) -> Plan {
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
            // Newest first: by time, then id.
            let key = |r: &Reply| match r {
                Reply::Array(v) => match (&v[1], &v[0]) {
                    (Reply::Int(t), Reply::Int(id)) => (*t, *id),
                    _ => (0, 0),
                },
                _ => (0, 0),
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

/// Each shard returns, per database, the XOR of its keys' digests (empty string when empty).
fn debug_digest() -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        Reply::Array(
            shard
                .ks
                .dbs
                .iter()
                .map(|d| {
                    if d.is_empty() {
                        return Reply::bulk(b"");
                    }
                    let mut sum = [0u8; 20];
                    for slot in d.nonempty_slots_from(0) {
                        let Some(t) = d.slot_table(slot) else { continue };
                        for (k, e) in t.iter().filter(|(_, e)| !e.is_expired(now)) {
                            let kd = super::digest::key_digest(k, e);
                            for (s, x) in sum.iter_mut().zip(kd) {
                                *s ^= x;
                            }
                        }
                    }
                    Reply::bulk(&sum)
                })
                .collect(),
        )
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            let mut sums: Vec<Option<[u8; 20]>> = Vec::new();
            for r in replies {
                let Reply::Array(v) = r else { continue };
                if sums.len() < v.len() {
                    sums.resize(v.len(), None);
                }
                for (i, d) in v.iter().enumerate() {
                    if let Reply::Bulk(b) = d {
                        if b.len() == 20 {
                            let acc = sums[i].get_or_insert([0u8; 20]);
                            for (a, x) in acc.iter_mut().zip(b.iter()) {
                                *a ^= x;
                            }
                        }
                    }
                }
            }
            Reply::status_owned(super::digest::hex(&super::digest::combine(&sums)))
        }),
    }
}

/// DIGEST-VALUE: the value digest of each key, from whichever shard holds it.
fn debug_digest_value(args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let d = &mut shard.ks.dbs[db];
        Reply::Array(
            args[2..]
                .iter()
                .map(|k| d.get_notouch(k, now).map_or(Reply::Nil, |e| Reply::bulk(&super::digest::value_digest(e))))
                .collect(),
        )
    }
    let n = args.len() - 2;
    Plan::AllShards {
        run,
        merge: Box::new(move |_, replies| {
            let mut out = vec![[0u8; 20]; n];
            for r in replies {
                let Reply::Array(v) = r else { continue };
                for (i, d) in v.iter().enumerate().take(n) {
                    if let Reply::Bulk(b) = d {
                        out[i].copy_from_slice(&b[..20.min(b.len())]);
                    }
                }
            }
            Reply::Array(out.iter().map(|d| Reply::status_owned(super::digest::hex(d))).collect())
        }),
    }
}

/// DEBUG OBJECT: low-level facts about a key. `serializedlength` is the length of the value's
/// RDB string encoding without compression (slotcore has no RDB writer yet).
fn debug_object(_args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let Some(e) = shard.ks.dbs[db].get_notouch(&args[2], now) else { return Reply::Nil };
        let ser = match &e.value {
            crate::storage::Value::Str(crate::storage::StrValue::Int(n)) if i32::try_from(*n).is_ok() => {
                if (-128..128).contains(n) {
                    2
                } else if (-32768..32768).contains(n) {
                    3
                } else {
                    5
                }
            }
            v => {
                let len = match v {
                    crate::storage::Value::Str(s) => s.len(),
                    crate::storage::Value::Hash(h) => h.heap_size(),
                    crate::storage::Value::Set(s) => s.heap_size(),
                    crate::storage::Value::List(l) => l.iter().map(|e| e.len() + 1).sum(),
                    crate::storage::Value::ZSet(z) => z.heap_size(),
                };
                len + if len < 64 {
                    1
                } else if len < 16384 {
                    2
                } else {
                    5
                }
            }
        };
        let idle = ((now / 1000) as u32).saturating_sub(e.lru);
        // Redis 7.0 adds the quicklist's shape for lists (no node compression here).
        let ql = match &e.value {
            crate::storage::Value::List(l) => format!(
                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{}",
                l.node_count(),
                l.len() as f64 / l.node_count().max(1) as f64,
                crate::storage::list::fill(),
                l.packed_bytes()
            ),
            _ => String::new(),
        };
        Reply::status_owned(format!(
            "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{}",
            e as *const _,
            e.value.encoding(),
            ser,
            e.lru & 0xFF_FFFF,
            idle,
            ql
        ))
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            replies.into_iter().find(|r| !matches!(r, Reply::Nil)).unwrap_or(Reply::err("ERR no such key"))
        }),
    }
}

// ---- LATENCY -------------------------------------------------------------------------------

/// Per-shard latency data as (event, [time, ms]..., max) replies, merged at home.
fn latency_dump(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Array(
        shard
            .latency
            .iter()
            .map(|(name, e)| {
                let mut v = vec![Reply::bulk(name.as_bytes()), Reply::Int(e.max as i64)];
                for (t, ms) in &e.samples {
                    v.push(Reply::Int(*t as i64));
                    v.push(Reply::Int(*ms as i64));
                }
                Reply::Array(v)
            })
            .collect(),
    )
}

/// Merges shard dumps into event -> (max, samples by time, worst per second).
fn merge_latency(
    replies: Vec<Reply>,
) -> std::collections::BTreeMap<String, (i64, std::collections::BTreeMap<i64, i64>)> {
    let mut out: std::collections::BTreeMap<String, (i64, std::collections::BTreeMap<i64, i64>)> = Default::default();
    for r in replies {
        let Reply::Array(events) = r else { continue };
        for ev in events {
            let Reply::Array(v) = ev else { continue };
            let (Some(Reply::Bulk(name)), Some(Reply::Int(max))) = (v.first(), v.get(1)) else { continue };
            let e = out.entry(String::from_utf8_lossy(name).into_owned()).or_default();
            e.0 = e.0.max(*max);
            for pair in v[2..].chunks(2) {
                if let [Reply::Int(t), Reply::Int(ms)] = pair {
                    let s = e.1.entry(*t).or_default();
                    *s = (*s).max(*ms);
                }
            }
        }
    }
    out
}

fn latency_latest(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::AllShards {
        run: latency_dump,
        merge: Box::new(|_, replies| {
            Reply::Array(
                merge_latency(replies)
                    .into_iter()
                    .filter_map(|(name, (max, samples))| {
                        let (t, ms) = samples.iter().next_back()?;
                        Some(Reply::Array(vec![
                            Reply::bulk(name.as_bytes()),
                            Reply::Int(*t),
                            Reply::Int(*ms),
                            Reply::Int(max),
                        ]))
                    })
                    .collect(),
            )
        }),
    }
}

fn latency_history(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let event = String::from_utf8_lossy(&args[2]).into_owned();
    Plan::AllShards {
        run: latency_dump,
        merge: Box::new(move |_, replies| {
            let all = merge_latency(replies);
            let samples = all.get(&event).map(|e| e.1.clone()).unwrap_or_default();
            Reply::Array(samples.into_iter().map(|(t, ms)| Reply::Array(vec![Reply::Int(t), Reply::Int(ms)])).collect())
        }),
    }
}

fn latency_reset(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let before = shard.latency.len();
        if args.len() == 2 {
            shard.latency.clear();
        } else {
            shard.latency.retain(|k, _| !args[2..].iter().any(|a| a.eq_ignore_ascii_case(k.as_bytes())));
        }
        Reply::Int((before - shard.latency.len()) as i64)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, r| {
            Reply::Int(r.iter().map(|x| if let Reply::Int(n) = x { *n } else { 0 }).max().unwrap_or(0))
        }),
    }
}

fn latency_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    help_lines(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HELP",
        "    Prints this help.",
    ])
}

// ---- DEBUG ---------------------------------------------------------------------------------

/// Redis 7.0's refusal when DEBUG is not enabled.
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn debug(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let allowed = match ctx.shard.config.enable_debug_command {
        Enable::Yes => true,
        Enable::Local => ctx.client.addr.starts_with("127.") || ctx.client.addr.starts_with("[::1]"),
        Enable::No => false,
    };
    if !allowed {
        return reply(Reply::err(DEBUG_NOT_ALLOWED));
    }
    let sub = &args[1];
    if eq_ic(sub, "sleep") && args.len() == 3 {
        let secs = super::util::parse_f64(&args[2]).unwrap_or(0.0).max(0.0);
        return Plan::Sleep(std::time::Duration::from_secs_f64(secs), Reply::Ok);
    }
    if eq_ic(sub, "set-active-expire") && args.len() == 3 {
        let on = parse_i64(&args[2]).unwrap_or(1) != 0;
        crate::storage::set_active_expire(on);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "digest") && args.len() == 2 {
        return debug_digest();
    }
    if eq_ic(sub, "reload") && args.len() == 2 {
        return super::save::debug_reload();
    }
    if eq_ic(sub, "loadaof") && args.len() == 2 {
        return crate::runtime::aof::debug_loadaof();
    }
    if eq_ic(sub, "aof-flush-sleep") && args.len() == 3 {
        let us = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        crate::aof::writer::set_flush_sleep(us);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "digest-value") {
        return debug_digest_value(args);
    }
    if eq_ic(sub, "object") && args.len() == 3 {
        return debug_object(args);
    }
    if eq_ic(sub, "help") {
        return help_lines(&[
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "RELOAD",
            "    Save the RDB on disk and reload it back to memory.",
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "HELP",
            "    Prints this help.",
        ]);
    }
    reply(Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    )))
}
