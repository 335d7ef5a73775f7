//! Consumer-group commands (t_stream.c): XGROUP CREATE / SETID / DESTROY / CREATECONSUMER /
//! DELCONSUMER / HELP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.
//!
//! XCLAIM and XAUTOCLAIM propagate one idempotent `XCLAIM .. FORCE JUSTID LASTID` per entry
//! they claimed or dropped (`stream_read::xclaim_argv`), never themselves; the others
//! propagate as sent when they changed something.

use super::ctx::{ClientCtx, Ctx};
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Plan, KEY1};
use super::stream::{
    event, get_stream, item_reply, new_event, parse_id, range_end, range_start, read_stream, strict_id,
};
use super::stream_read::{setid_argv, touch_consumer, xclaim_argv};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::stream::StreamId;
use crate::storage::stream_group::Group;
use crate::storage::Value;
use bytes::Bytes;

const KEY2: super::spec::Keys = keys(2, 2, 1);

/// XGROUP's subcommands.
#[rustfmt::skip]
static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    spec("create", -5, WRITE | DENYOOM, "@write @stream @slow", KEY2, Exec::Keyed(xgroup)),
    spec("setid", -5, WRITE, "@write @stream @slow", KEY2, Exec::Keyed(xgroup)),
    spec("destroy", 4, WRITE, "@write @stream @slow", KEY2, Exec::Keyed(xgroup)),
    spec("createconsumer", 5, WRITE | DENYOOM, "@write @stream @slow", KEY2, Exec::Keyed(xgroup)),
    spec("delconsumer", 5, WRITE, "@write @stream @slow", KEY2, Exec::Keyed(xgroup)),
    spec("help", 2, LOADING | STALE, "@stream @slow", super::spec::Keys::None, Exec::Node(xgroup_help)),
];

/// The consumer-group family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: XGROUP_SUBCOMMANDS, ..spec("xgroup", -2, 0, "@slow", super::spec::Keys::None, Exec::Container) },
    spec("xack", -4, WRITE | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xack)),
    spec("xpending", -3, READONLY, "@read @stream @slow", KEY1, Exec::Keyed(xpending)),
    spec("xclaim", -6, WRITE | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xclaim)),
    spec("xautoclaim", -6, WRITE | FAST, "@write @stream @fast", KEY1, Exec::Keyed(xautoclaim)),
];

fn xgroup_help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    const LINES: &[&str] = &[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ];
    super::ctx::reply(Reply::Array(LINES.iter().map(|l| Reply::status(l)).collect()))
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
pub fn sub_syntax(args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).into_owned();
    let cmd = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    Reply::error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."))
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let opt = &args[1];
    let create = eq_ic(opt, "create");
    let setid = eq_ic(opt, "setid");
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    let mut i = 5;
    while i < args.len() {
        if create && eq_ic(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && eq_ic(&args[i], "entriesread") && i + 1 < args.len() {
            match parse_i64(&args[i + 1]) {
                None => return Reply::err(errors::NOT_INTEGER),
                Some(-1) => entries_read = None,
                Some(n) if n < 0 => return Reply::err("ERR value for ENTRIESREAD must be positive or -1"),
                Some(n) => entries_read = Some(n as u64),
            }
            i += 2;
        } else {
            return sub_syntax(args);
        }
    }
    let (key, gname) = (&args[2], &args[3]);
    let exists = match get_stream(ctx, key) {
        Err(e) => return e,
        Ok(s) => s.map(|s| s.groups.contains_key(&gname[..])),
    };
    if !mkstream {
        match exists {
            None => {
                return Reply::err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
            }
            Some(false) if setid || eq_ic(opt, "createconsumer") || eq_ic(opt, "delconsumer") => {
                return Reply::error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    lossy(gname),
                    lossy(key)
                ))
            }
            _ => {}
        }
    }
    let now = ctx.now_ms;
    let verbatim = |ctx: &mut Ctx<'_>, n: u64| {
        ctx.dirty(n);
        ctx.propagate = Some(if n > 0 { vec![args.to_vec()] } else { Vec::new() });
    };
    if create && (5..=8).contains(&args.len()) {
        let id = if &args[4][..] == b"$" {
            match get_stream(ctx, key) {
                Ok(Some(s)) => s.last_id,
                _ => StreamId::MIN,
            }
        } else {
            match strict_id(&args[4]) {
                Ok(id) => id,
                Err(e) => return e,
            }
        };
        let mut created = false;
        if exists.is_none() {
            ctx.db().set(key, Value::Stream(Box::default()), 0);
            created = true;
        }
        let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Nil };
        if s.groups.contains_key(&gname[..]) {
            verbatim(ctx, created as u64);
            if created {
                new_event(ctx, key);
            }
            return Reply::err("BUSYGROUP Consumer Group name already exists");
        }
        s.groups.insert(gname.to_vec(), Group::new(id, entries_read));
        if created {
            new_event(ctx, key);
        }
        event(ctx, "xgroup-create", key);
        verbatim(ctx, 1);
        Reply::Ok
    } else if setid && (args.len() == 5 || args.len() == 7) {
        let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Nil };
        let id = if &args[4][..] == b"$" {
            s.last_id
        } else {
            match parse_id(&args[4], 0, false, false) {
                Ok((id, _)) => id,
                Err(e) => return e,
            }
        };
        if let Some(g) = s.groups.get_mut(&gname[..]) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        event(ctx, "xgroup-setid", key);
        verbatim(ctx, 1);
        Reply::Ok
    } else if eq_ic(opt, "destroy") && args.len() == 4 {
        let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Int(0) };
        if s.groups.remove(&gname[..]).is_none() {
            verbatim(ctx, 0);
            return Reply::Int(0);
        }
        event(ctx, "xgroup-destroy", key);
        verbatim(ctx, 1);
        Reply::Int(1)
    } else if eq_ic(opt, "createconsumer") && args.len() == 5 {
        let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Int(0) };
        let created = s.groups.get_mut(&gname[..]).is_some_and(|g| g.create_consumer(&args[4], now));
        if created {
            event(ctx, "xgroup-createconsumer", key);
        }
        verbatim(ctx, created as u64);
        Reply::Int(created as i64)
    } else if eq_ic(opt, "delconsumer") && args.len() == 5 {
        let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Int(0) };
        let pending = s.groups.get_mut(&gname[..]).and_then(|g| g.delete_consumer(&args[4]));
        if pending.is_some() {
            event(ctx, "xgroup-delconsumer", key);
        }
        verbatim(ctx, pending.is_some() as u64);
        Reply::Int(pending.unwrap_or(0) as i64)
    } else {
        sub_syntax(args)
    }
}

fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_stream(ctx, &args[1]) {
        Err(e) => return e,
        Ok(Some(s)) if s.groups.contains_key(&args[2][..]) => {}
        Ok(_) => return Reply::Int(0),
    }
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let Ok(Some(s)) = get_stream(ctx, &args[1]) else { return Reply::Int(0) };
    let Some(g) = s.groups.get_mut(&args[2][..]) else { return Reply::Int(0) };
    let n = ids.into_iter().filter(|id| g.ack(*id)).count() as u64;
    ctx.dirty(n);
    ctx.propagate = Some(if n > 0 { vec![args.to_vec()] } else { Vec::new() });
    Reply::Int(n as i64)
}

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!("NOGROUP No such key '{}' or consumer group '{}'", lossy(key), lossy(group)))
}

fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Reply::err(errors::SYNTAX);
    }
    let (mut start, mut end, mut count, mut minidle) = (StreamId::MIN, StreamId::MAX, 0i64, 0i64);
    let mut consumer = None;
    if argc >= 6 {
        let mut si = 3;
        if eq_ic(&args[3], "idle") {
            minidle = match parse_i64(&args[4]) {
                Some(n) => n,
                None => return Reply::err(errors::NOT_INTEGER),
            };
            if argc < 8 {
                return Reply::err(errors::SYNTAX);
            }
            si += 2;
        }
        count = match parse_i64(&args[si + 2]) {
            Some(n) => n.max(0),
            None => return Reply::err(errors::NOT_INTEGER),
        };
        start = match range_start(&args[si]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        end = match range_end(&args[si + 1]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if si + 3 < argc {
            consumer = Some(args[si + 3].clone());
        }
    }
    let now = ctx.now_ms;
    let s = match read_stream(ctx, &args[1]) {
        Err(e) => return e,
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(&args[2][..])) else { return nogroup(&args[1], &args[2]) };
    if argc == 3 {
        if g.pel.is_empty() {
            return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
        }
        let first = g.pel.keys().next().copied().unwrap_or_default();
        let last = g.pel.keys().next_back().copied().unwrap_or_default();
        let per: Vec<Reply> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Reply::Array(vec![
                    Reply::Bulk(Bytes::copy_from_slice(n)),
                    Reply::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return Reply::Array(vec![
            Reply::Int(g.pel.len() as i64),
            Reply::Bulk(first.to_bytes()),
            Reply::Bulk(last.to_bytes()),
            Reply::Array(per),
        ]);
    }
    let ids: Vec<StreamId> = match &consumer {
        Some(c) => match g.consumers.get(&c[..]) {
            Some(c) => c.pel.range(start..).copied().collect(),
            None => return Reply::Array(vec![]),
        },
        None => g.pel.range(start..).map(|(k, _)| *k).collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        let idle = now as i64 - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            Reply::Bulk(id.to_bytes()),
            Reply::Bulk(Bytes::copy_from_slice(&n.consumer)),
            Reply::Int(idle.max(0)),
            Reply::Int(n.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

fn int_msg(arg: &[u8], msg: &'static str) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::err(msg))
}

fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    match read_stream(ctx, key) {
        Err(e) => return e,
        Ok(Some(s)) if s.groups.contains_key(&gname[..]) => {}
        Ok(_) => return nogroup(key, gname),
    }
    let minidle = match int_msg(&args[4], "ERR Invalid min-idle-time argument for XCLAIM") {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match strict_id(&args[j]) {
            Ok(id) => ids.push((id, args[j].clone())),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms as i64;
    let (mut force, mut justid) = (false, false);
    let mut retry: i64 = -1;
    let mut dtime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let o = &args[j];
        if eq_ic(o, "force") {
            force = true;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else if eq_ic(o, "idle") && more > 0 {
            j += 1;
            dtime = match int_msg(&args[j], "ERR Invalid IDLE option argument for XCLAIM") {
                Ok(n) => now - n,
                Err(e) => return e,
            };
        } else if eq_ic(o, "time") && more > 0 {
            j += 1;
            dtime = match int_msg(&args[j], "ERR Invalid TIME option argument for XCLAIM") {
                Ok(n) => n,
                Err(e) => return e,
            };
        } else if eq_ic(o, "retrycount") && more > 0 {
            j += 1;
            retry = match int_msg(&args[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM") {
                Ok(n) => n,
                Err(e) => return e,
            };
        } else if eq_ic(o, "lastid") && more > 0 {
            j += 1;
            last_id = match strict_id(&args[j]) {
                Ok(v) => v,
                Err(e) => return e,
            };
        } else {
            return Reply::error(format!("ERR Unrecognized XCLAIM option '{}'", lossy(o)));
        }
        j += 1;
    }
    let Ok(Some(s)) = get_stream(ctx, key) else { return Reply::Nil };
    let mut propagate_last = false;
    if let Some(g) = s.groups.get_mut(&gname[..]) {
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last = true;
        }
    }
    let dtime = if dtime == -1 || dtime < 0 || dtime > now { now } else { dtime } as u64;
    let mut props = Vec::new();
    let mut dirty = 0u64;
    let mut out = Vec::new();
    let mut have_consumer = false;
    for (id, _arg) in ids {
        let Ok(Some(s)) = get_stream(ctx, key) else { break };
        let exists = s.exists(id);
        let Some(g) = s.groups.get_mut(&gname[..]) else { break };
        let had = g.pel.get(&id).map(|n| (n.consumer.clone(), n.delivery_time, n.delivery_count));
        if !exists {
            if had.is_some() {
                props.extend(xclaim_argv(key, gname, s, id));
                propagate_last = false;
                dirty += 1;
                if let Some(g) = s.groups.get_mut(&gname[..]) {
                    g.ack(id);
                }
            }
            continue;
        }
        let owned = had.is_some();
        let (_, dt, cnt) = match had {
            Some(h) => h,
            None if force => (Vec::new(), now as u64, 1),
            None => continue,
        };
        if owned && minidle > 0 && (now - dt as i64) < minidle {
            continue;
        }
        if !have_consumer {
            dirty += touch_consumer(ctx, key, gname, cname, false, &mut props);
            have_consumer = true;
        }
        let Ok(Some(s)) = get_stream(ctx, key) else { break };
        let new_count = if retry >= 0 {
            retry as u64
        } else if !justid {
            cnt + 1
        } else {
            cnt
        };
        if let Some(g) = s.groups.get_mut(&gname[..]) {
            g.assign(id, cname, dtime, Some(new_count));
        }
        if justid {
            out.push(Reply::Bulk(id.to_bytes()));
        } else if let Some((_, pairs)) = s.get(id) {
            out.push(item_reply(id, pairs));
        }
        props.extend(xclaim_argv(key, gname, s, id));
        propagate_last = false;
        dirty += 1;
    }
    if propagate_last {
        if let Ok(Some(s)) = get_stream(ctx, key) {
            props.extend(setid_argv(key, gname, s));
        }
        dirty += 1;
    }
    ctx.dirty(dirty);
    ctx.propagate = Some(props);
    Reply::Array(out)
}

fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    let minidle = match int_msg(&args[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM") {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let start = match range_start(&args[5]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(&args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match parse_i64(&args[j + 1]) {
                Some(n) if (1..=max).contains(&n) => n,
                _ => return Reply::err("ERR COUNT must be > 0"),
            };
            j += 1;
        } else if eq_ic(&args[j], "justid") {
            justid = true;
        } else {
            return Reply::err(errors::SYNTAX);
        }
        j += 1;
    }
    match read_stream(ctx, key) {
        Err(e) => return e,
        Ok(Some(s)) if s.groups.contains_key(&gname[..]) => {}
        Ok(_) => return nogroup(key, gname),
    }
    let now = ctx.now_ms;
    let mut attempts = count.saturating_mul(10);
    let mut props = Vec::new();
    let mut dirty = 0u64;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut have_consumer = false;
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    loop {
        let Ok(Some(s)) = get_stream(ctx, key) else { break };
        let Some(g) = s.groups.get(&gname[..]) else { break };
        let Some((&id, n)) = g.pel.range(cursor..).next() else {
            next = None;
            break;
        };
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let dt = n.delivery_time;
        if !s.exists(id) {
            props.extend(xclaim_argv(key, gname, s, id));
            dirty += 1;
            if let Some(g) = s.groups.get_mut(&gname[..]) {
                g.ack(id);
            }
            deleted.push(Reply::Bulk(id.to_bytes()));
            count -= 1;
        } else if minidle > 0 && (now as i64 - dt as i64) < minidle {
            // Not idle enough.
        } else {
            if !have_consumer {
                dirty += touch_consumer(ctx, key, gname, cname, false, &mut props);
                have_consumer = true;
            }
            let Ok(Some(s)) = get_stream(ctx, key) else { break };
            if let Some(g) = s.groups.get_mut(&gname[..]) {
                let cnt = g.pel.get(&id).map_or(1, |n| n.delivery_count);
                g.assign(id, cname, now, Some(if justid { cnt } else { cnt + 1 }));
            }
            if justid {
                claimed.push(Reply::Bulk(id.to_bytes()));
            } else if let Some((_, pairs)) = s.get(id) {
                claimed.push(item_reply(id, pairs));
            }
            props.extend(xclaim_argv(key, gname, s, id));
            dirty += 1;
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    ctx.dirty(dirty);
    ctx.propagate = Some(props);
    Reply::Array(vec![Reply::Bulk(next.unwrap_or_default().to_bytes()), Reply::Array(claimed), Reply::Array(deleted)])
}
