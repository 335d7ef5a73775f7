//! FUNCTION (LOAD, LIST, DELETE, FLUSH, KILL, STATS, DUMP, RESTORE, HELP), FCALL and FCALL_RO.
//!
//! Libraries live in the node-wide registry (`crate::script::functions`); FUNCTION LOAD runs
//! the library once in the home shard's interpreter to learn what it registers, then every
//! shard's interpreter loads it on its next FCALL. Changes to the libraries are recorded in
//! the change stream as the command itself, so replicas and the AOF load the same libraries.

use super::ctx::{reply, ClientCtx};
use super::scripting::{numkeys_at_2, ScriptJob};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use crate::script::{self, functions, sflags};
use bytes::Bytes;

#[rustfmt::skip]
static FUNCTION_SUBS: &[CommandSpec] = &[
    spec("load", -3, WRITE | DENYOOM | NOSCRIPT, "@write @slow @scripting", Keys::None, Exec::Node(load)),
    spec("list", -2, NOSCRIPT, "@slow @scripting", Keys::None, Exec::Node(list)),
    spec("delete", 3, WRITE | NOSCRIPT, "@write @slow @scripting", Keys::None, Exec::Node(delete)),
    spec("flush", -2, WRITE | NOSCRIPT, "@write @slow @scripting", Keys::None, Exec::Node(flush)),
    spec("kill", 2, NOSCRIPT | ALLOW_BUSY, "@slow @scripting", Keys::None, Exec::Node(kill)),
    spec("stats", 2, NOSCRIPT | ALLOW_BUSY, "@slow @scripting", Keys::None, Exec::Node(stats)),
    spec("dump", 2, NOSCRIPT, "@slow @scripting", Keys::None, Exec::Node(dump)),
    spec("restore", -3, WRITE | DENYOOM | NOSCRIPT, "@write @slow @scripting", Keys::None, Exec::Node(restore)),
    spec("help", 2, LOADING | STALE, "@slow @scripting", Keys::None, Exec::Node(help)),
];

const FCALL_KEYS: Keys = Keys::Custom { legacy: (0, 0, 0), find: numkeys_at_2 };

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("fcall", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE, "@slow @scripting", FCALL_KEYS, Exec::Node(fcall)),
    spec("fcall_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, "@slow @scripting", FCALL_KEYS, Exec::Node(fcall_ro)),
    CommandSpec { subcommands: FUNCTION_SUBS, ..spec("function", -2, 0, "@slow", Keys::None, Exec::Container) },
];

fn fcall_generic(ctx: &mut ClientCtx<'_>, args: &[Bytes], ro: bool) -> Plan {
    let Some(f) = functions::find(&args[1]) else { return reply(Reply::err("ERR Function not found")) };
    if std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<i64>().ok()).is_none() {
        return reply(Reply::err("ERR Bad number of keys provided"));
    }
    let idx = match numkeys_at_2(args) {
        Ok(i) => i,
        Err(e) => return reply(e),
    };
    if f.flags & sflags::NO_CLUSTER != 0 && ctx.shard.node.cluster.is_some() {
        return reply(Reply::err("ERR Can not run script on cluster, 'no-cluster' flag is set."));
    }
    if let Some(e) = script::refuse_run(f.flags, ro, ctx.client.master) {
        return reply(e);
    }
    let keys = idx.iter().map(|&i| args[i].clone()).collect();
    let argv = args[3 + idx.len()..].to_vec();
    Plan::Script(Box::new(ScriptJob {
        sha: f.name,
        body: Bytes::new(),
        keys,
        args: argv,
        ro: ro || f.flags & sflags::NO_WRITES != 0,
        function: Some(f.flags),
        argv: args.to_vec(),
        debug: Default::default(),
        cluster_check: Default::default(),
        cluster_asking: false,
    }))
}

fn fcall(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    fcall_generic(ctx, args, true)
}

/// Records a library change in the change stream (database 0), as the command itself.
fn record(ctx: &mut ClientCtx<'_>, args: &[Bytes]) {
    ctx.shard.sync_recording();
    ctx.shard.changes.record(0, 1, vec![args.to_vec()]);
    ctx.shard.flush_changes();
}

/// Puts the libraries back as they were before a failed FUNCTION RESTORE (all or nothing, as
/// Redis).
fn put_back(saved: Vec<functions::Library>) {
    functions::flush();
    for lib in saved {
        let _ = functions::add(lib, true);
    }
}

/// Loads a library: Ok(name) or the error text (without `ERR `).
pub fn load_library(code: Bytes, replace: bool) -> Result<String, Reply> {
    let (_, name) = functions::metadata(&code).map_err(|e| Reply::error(format!("ERR {e}")))?;
    if !replace && functions::libraries().iter().any(|l| l.name == name) {
        return Err(Reply::error(format!("ERR Library '{name}' already exists")));
    }
    let funcs = script::vm::probe_library(&functions::body(&code))?;
    functions::add(functions::Library { name: name.clone(), code, funcs }, replace)
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    Ok(name)
}

fn load(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if args[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
            i += 1;
        } else {
            return reply(Reply::error(format!("ERR Unknown option given: {}", String::from_utf8_lossy(&args[i]))));
        }
    }
    if i >= args.len() {
        return reply(Reply::err("ERR Function code is missing"));
    }
    match load_library(args[i].clone(), replace) {
        Ok(name) => {
            record(ctx, args);
            reply(Reply::bulk_string(name))
        }
        Err(e) => reply(e),
    }
}

fn list(_: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut with_code = false;
    let mut pattern: Option<Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        if !with_code && args[i].eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && args[i].eq_ignore_ascii_case(b"libraryname") {
            if i + 1 >= args.len() {
                return reply(Reply::err("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(args[i].clone());
        } else {
            return reply(Reply::error(format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]))));
        }
        i += 1;
    }
    let bulk = |s: &str| Reply::bulk(s.as_bytes());
    let mut out = Vec::new();
    for lib in functions::libraries() {
        if let Some(p) = &pattern {
            if !crate::cmd::util::glob_match(p, lib.name.as_bytes(), true) {
                continue;
            }
        }
        let funcs = lib
            .funcs
            .iter()
            .map(|f| {
                let flags = sflags::NAMES.iter().filter(|(b, _)| f.flags & b != 0).map(|(_, n)| bulk(n)).collect();
                Reply::Map(vec![
                    (bulk("name"), bulk(&f.name)),
                    (bulk("description"), f.desc.as_deref().map(bulk).unwrap_or(Reply::Nil)),
                    (bulk("flags"), Reply::Set(flags)),
                ])
            })
            .collect();
        let mut m = vec![
            (bulk("library_name"), bulk(&lib.name)),
            (bulk("engine"), bulk("LUA")),
            (bulk("functions"), Reply::Array(funcs)),
        ];
        if with_code {
            m.push((bulk("library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(m));
    }
    reply(Reply::Array(out))
}

fn delete(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if !functions::delete(&args[2]) {
        return reply(Reply::err("ERR Library not found"));
    }
    record(ctx, args);
    reply(Reply::Ok)
}

/// Redis's reply to a subcommand called with too many arguments.
fn syntax(sub: &str) -> Plan {
    reply(Reply::error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP.")))
}

fn flush(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return syntax("flush");
    }
    if args.get(2).is_some_and(|m| !m.eq_ignore_ascii_case(b"sync") && !m.eq_ignore_ascii_case(b"async")) {
        return reply(Reply::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    functions::flush();
    record(ctx, args);
    reply(Reply::Ok)
}

fn kill(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    reply(script::kill(false))
}

fn stats(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    let (libs, funcs) = functions::counts();
    let bulk = |s: &str| Reply::bulk(s.as_bytes());
    let running = match script::running_function() {
        Some((name, cmd, ms)) => Reply::Map(vec![
            (bulk("name"), bulk(&name)),
            (bulk("command"), Reply::Array(cmd.into_iter().map(Reply::Bulk).collect())),
            (bulk("duration_ms"), Reply::Int(ms as i64)),
        ]),
        None => Reply::Nil,
    };
    let lua = Reply::Map(vec![
        (bulk("libraries_count"), Reply::Int(libs as i64)),
        (bulk("functions_count"), Reply::Int(funcs as i64)),
    ]);
    reply(Reply::Map(vec![(bulk("running_script"), running), (bulk("engines"), Reply::Map(vec![(bulk("LUA"), lua)]))]))
}

fn dump(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    let mut out = functions::rdb_records();
    out.extend_from_slice(&10u16.to_le_bytes());
    let crc = crate::persist::rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    reply(Reply::Bulk(Bytes::from(out)))
}

fn restore(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 4 {
        return syntax("restore");
    }
    let policy = match args.get(3) {
        None => "append",
        Some(p) if p.eq_ignore_ascii_case(b"append") => "append",
        Some(p) if p.eq_ignore_ascii_case(b"replace") => "replace",
        Some(p) if p.eq_ignore_ascii_case(b"flush") => "flush",
        Some(_) => {
            return reply(Reply::err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
    };
    let p = &args[2];
    if p.len() < 10 {
        return reply(Reply::err("ERR DUMP payload version or checksum are wrong"));
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let crc = crate::persist::rdb::crc64(&p[..p.len() - 8]);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > 10 || crc.to_le_bytes() != footer[2..] {
        return reply(Reply::err("ERR DUMP payload version or checksum are wrong"));
    }
    let mut codes = Vec::new();
    let mut r = crate::persist::rdb::Reader::new(body);
    while r.remaining() > 0 {
        match r.u8() {
            Ok(functions::OPCODE_FUNCTION2) => match r.string() {
                Ok(code) => codes.push(Bytes::from(code)),
                Err(_) => return reply(Reply::err("ERR failed loading the given functions payload")),
            },
            Ok(_) => return reply(Reply::err("ERR given type is not a function")),
            Err(_) => return reply(Reply::err("ERR can not read data type")),
        }
    }
    let saved = functions::libraries();
    if policy == "flush" {
        functions::flush();
    }
    for code in codes {
        // A library already there is reported without quotes here (Redis's restore wording).
        if let Ok((_, name)) = functions::metadata(&code) {
            if policy != "replace" && functions::libraries().iter().any(|l| l.name == name) {
                put_back(saved);
                return reply(Reply::error(format!("ERR Library {name} already exists")));
            }
        }
        if let Err(e) = load_library(code, policy == "replace") {
            put_back(saved);
            return reply(e);
        }
    }
    record(ctx, args);
    reply(Reply::Ok)
}

fn help(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    let lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "DELETE <LIBRARY NAME>",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "FLUSH [ASYNC|SYNC]",
        "KILL",
        "STATS",
        "DUMP",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
