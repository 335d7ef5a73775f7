//! The ACL command family (Redis 7.0's `aclCommand`): SETUSER, GETUSER, DELUSER, LIST,
//! USERS, CAT, WHOAMI, LOG, GENPASS, DRYRUN, SAVE, LOAD, HELP. Users live in `crate::acl`;
//! commands that change them sweep every shard's clients afterwards (`acl::sweep_shard`).

use super::ctx::{reply, ClientCtx};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::{eq_ic, parse_i64};
use crate::acl::{self, commands::acl_table, commands::CATEGORIES, selector::Denied};
use crate::protocol::Reply;
use bytes::Bytes;
use std::cell::Cell;

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const ADM_CATS: &str = "@admin @slow @dangerous";

#[rustfmt::skip]
static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    spec("cat", -2, NOSCRIPT | LOADING | STALE, "@slow", Keys::None, Exec::Node(cat)),
    spec("deluser", -3, ADM, ADM_CATS, Keys::None, Exec::Node(deluser)),
    spec("dryrun", -4, ADM, ADM_CATS, Keys::None, Exec::Node(dryrun)),
    spec("genpass", -2, NOSCRIPT | LOADING | STALE, "@slow", Keys::None, Exec::Node(genpass)),
    spec("getuser", 3, ADM, ADM_CATS, Keys::None, Exec::Node(getuser)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
    spec("list", 2, ADM, ADM_CATS, Keys::None, Exec::Node(list)),
    spec("load", 2, ADM, ADM_CATS, Keys::None, Exec::Node(load)),
    spec("log", -2, ADM, ADM_CATS, Keys::None, Exec::Node(log)),
    spec("save", 2, ADM, ADM_CATS, Keys::None, Exec::Node(save)),
    spec("setuser", -3, ADM, ADM_CATS, Keys::None, Exec::Node(setuser)),
    spec("users", 2, ADM, ADM_CATS, Keys::None, Exec::Node(users)),
    spec("whoami", 2, NOSCRIPT | LOADING | STALE, "@slow", Keys::None, Exec::Node(whoami)),
];

/// The ACL family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: ACL_SUBCOMMANDS, ..spec("acl", -2, 0, "@slow", Keys::None, Exec::Container) },
];

thread_local! {
    /// The client running an ACL change on this shard: the sweep leaves it to close itself
    /// after its reply.
    static CALLER: Cell<u64> = const { Cell::new(0) };
}

fn syntax_error(sub: &[u8]) -> Plan {
    reply(Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    )))
}

/// After a change: close the clients it invalidated on every shard, then reply `r`.
fn sweep_then(ctx: &mut ClientCtx<'_>, r: Reply) -> Plan {
    CALLER.with(|c| c.set(ctx.client.id));
    Plan::AllShards {
        run: sweep_with_caller,
        merge: Box::new(move |ctx, _| {
            CALLER.with(|c| c.set(0));
            if acl::caller_gone(ctx.client) {
                ctx.client.close_after_reply = true;
            }
            r
        }),
    }
}

fn sweep_with_caller(shard: &mut super::ShardState, db: usize, _args: &[Bytes]) -> Reply {
    let me = CALLER.with(|c| c.get());
    acl::sweep_shard(shard, db, &[Bytes::from(me.to_string())])
}

fn setuser(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let name = &args[2];
    if acl::has_spaces(name) {
        return reply(Reply::err("ERR Usernames can't contain spaces or null characters"));
    }
    match acl::set_user(name, &args[3..]) {
        Ok(()) => sweep_then(ctx, Reply::Ok),
        Err(e) => reply(Reply::error(format!("ERR {e}"))),
    }
}

fn deluser(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args[2..].iter().any(|n| &n[..] == b"default") {
        return reply(Reply::err("ERR The 'default' user cannot be removed"));
    }
    let n = acl::del_users(&args[2..]);
    sweep_then(ctx, Reply::Int(n as i64))
}

fn selector_map(s: &acl::selector::Selector) -> Vec<(Reply, Reply)> {
    let b = |t: &str| Reply::bulk(t.as_bytes());
    vec![
        (b("commands"), b(&s.describe_commands())),
        (b("keys"), b(&s.keys_string())),
        (b("channels"), b(&s.channels_string())),
    ]
}

fn getuser(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(u) = acl::get(&args[2]) else { return reply(Reply::Nil) };
    let b = |t: &str| Reply::bulk(t.as_bytes());
    let mut m = vec![
        (b("flags"), Reply::Set(u.flag_names().into_iter().map(b).collect())),
        (b("passwords"), Reply::Array(u.passwords.iter().map(|p| b(p)).collect())),
    ];
    m.extend(selector_map(&u.selectors[0]));
    let sels = u.selectors[1..].iter().map(|s| Reply::Map(selector_map(s))).collect();
    m.push((b("selectors"), Reply::Array(sels)));
    reply(Reply::Map(m))
}

fn list(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Array(acl::user_lines().into_iter().map(Reply::bulk_string).collect()))
}

fn users(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Array(acl::all().iter().map(|u| Reply::Bulk(u.name.clone())).collect()))
}

fn whoami(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Bulk(ctx.client.user.name.clone()))
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &ClientCtx<'_>) -> Option<String> {
    ctx.shard.config.get("aclfile").filter(|f| !f.is_empty()).map(str::to_string)
}

fn load(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(path) = aclfile(ctx) else { return reply(Reply::err(NO_ACLFILE)) };
    match acl::load_file(&path) {
        Ok(()) => sweep_then(ctx, Reply::Ok),
        Err(e) => reply(Reply::error(format!("ERR {e}"))),
    }
}

fn save(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let Some(path) = aclfile(ctx) else { return reply(Reply::err(NO_ACLFILE)) };
    match acl::save_file(&path) {
        Ok(()) => reply(Reply::Ok),
        Err(_) => reply(Reply::err(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        )),
    }
}

fn cat(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match args.len() {
        2 => reply(Reply::Array(CATEGORIES.iter().map(|c| Reply::bulk(c.as_bytes())).collect())),
        3 => {
            let Some(bit) = acl::commands::category_bit(&args[2]) else {
                let c = &args[2][..args[2].len().min(128)];
                return reply(Reply::error(format!("ERR Unknown category '{}'", String::from_utf8_lossy(c))));
            };
            let t = acl_table();
            let names = t.cmds.iter().filter(|c| c.cats & bit != 0).map(|c| Reply::bulk(c.fullname.as_bytes()));
            reply(Reply::Array(names.collect()))
        }
        _ => syntax_error(&args[1]),
    }
}

fn genpass(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return syntax_error(&args[1]);
    }
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match parse_i64(a) {
            Some(n) => n,
            None => return reply(Reply::err(super::errors::NOT_INTEGER)),
        },
    };
    if bits <= 0 || bits > 4096 {
        return reply(Reply::err(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut rng = rand::thread_rng();
    let hex: String =
        (0..chars).map(|_| char::from(b"0123456789abcdef"[rand::Rng::gen_range(&mut rng, 0..16)])).collect();
    reply(Reply::bulk_string(hex))
}

fn log(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return syntax_error(&args[1]);
    }
    let mut count = 10;
    if let Some(a) = args.get(2) {
        if eq_ic(a, "reset") {
            acl::log::reset();
            return reply(Reply::Ok);
        }
        match parse_i64(a) {
            Some(n) => count = n.max(0) as usize,
            None => return reply(Reply::err(super::errors::NOT_INTEGER)),
        }
    }
    reply(acl::log::entries(count))
}

fn dryrun(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(u) = acl::get(&args[2]) else {
        return reply(Reply::error(format!("ERR User '{}' not found", String::from_utf8_lossy(&args[2]))));
    };
    let call = &args[3..];
    let not_found = || reply(Reply::error(format!("ERR Command '{}' not found", String::from_utf8_lossy(&call[0]))));
    let Some(top) = super::table::lookup(&call[0]) else { return not_found() };
    let (spec, fullname) = if !top.subcommands.is_empty() && call.len() >= 2 {
        match super::table::lookup_sub(top, &call[1]) {
            Some(s) => (s, super::table::fullname(top, Some(s))),
            None => return not_found(),
        }
    } else {
        (top, top.name)
    };
    if !spec.arity_ok(call.len()) {
        return reply(Reply::error(format!("ERR wrong number of arguments for '{fullname}' command")));
    }
    match u.check(fullname, spec.arity, call) {
        Ok(()) => reply(Reply::Ok),
        Err((why, pos)) => {
            let arg = |i: usize| String::from_utf8_lossy(&call[i]).into_owned();
            let text = match why {
                Denied::Command => format!("This user has no permissions to run the '{fullname}' command"),
                Denied::Key => format!("This user has no permissions to access the '{}' key", arg(pos)),
                Denied::Channel => format!("This user has no permissions to access the '{}' channel", arg(pos)),
            };
            reply(Reply::bulk_string(text))
        }
    }
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
