//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH, KILL).
//!
//! The handlers check the arguments and the script cache and return a [`Plan::Script`]; the
//! runtime runs it (`runtime::script_exec`): it holds the shards owning the declared keys, runs
//! the script in the shard's Lua interpreter (`crate::script`) and records the script's
//! effects as one unit. Scripts are cached node-wide, so EVALSHA works on any shard.

use super::ctx::{reply, ClientCtx};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use crate::script::{self, ldb, sflags};
use bytes::Bytes;

/// A script for the runtime to run.
#[derive(Debug)]
pub struct ScriptJob {
    /// SHA1 of the body (lower case).
    pub sha: String,
    /// The body (always known: EVALSHA takes it from the node-wide cache).
    pub body: Bytes,
    /// Declared keys.
    pub keys: Vec<Bytes>,
    /// ARGV.
    pub args: Vec<Bytes>,
    /// EVAL_RO / EVALSHA_RO.
    pub ro: bool,
    /// FCALL / FCALL_RO: the function's flags (`sha` is then its name).
    pub function: Option<u32>,
    /// The command as called (FUNCTION STATS shows it); only its name for EVAL & co.
    pub argv: Vec<Bytes>,
    /// SCRIPT DEBUG of the caller (EVAL only): run as a debugger session.
    pub debug: ldb::Mode,
    /// Cluster mode, a slot being migrated or imported: what the shard owning the declared
    /// keys checks when the script is about to run (ASK / TRYAGAIN for missing keys, as
    /// for a keyed command); its key indexes are into `keys`.
    pub cluster_check: crate::cluster::redirect::SlotCheck,
    /// Cluster mode: ASKING was in effect for the call, so the script's commands may use a
    /// slot being imported, as Redis's script client takes the caller's flag.
    pub cluster_asking: bool,
}

#[rustfmt::skip]
static SCRIPT_SUBS: &[CommandSpec] = &[
    spec("load", 3, NOSCRIPT | STALE, "@slow @scripting", Keys::None, Exec::Node(script_load)),
    spec("exists", -3, NOSCRIPT, "@slow @scripting", Keys::None, Exec::Node(script_exists)),
    spec("flush", -2, NOSCRIPT, "@slow @scripting", Keys::None, Exec::Node(script_flush)),
    spec("debug", 3, NOSCRIPT, "@slow @scripting", Keys::None, Exec::Node(script_debug)),
    spec("kill", 2, NOSCRIPT | ALLOW_BUSY, "@slow @scripting", Keys::None, Exec::Node(script_kill)),
    spec("help", 2, LOADING | STALE, "@slow @scripting", Keys::None, Exec::Node(script_help)),
];

const EVAL_KEYS: Keys = Keys::Custom { legacy: (0, 0, 0), find: numkeys_at_2 };

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("eval", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE, "@slow @scripting", EVAL_KEYS, Exec::Node(eval)),
    spec("evalsha", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE, "@slow @scripting", EVAL_KEYS, Exec::Node(evalsha)),
    spec("eval_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, "@slow @scripting", EVAL_KEYS, Exec::Node(eval_ro)),
    spec("evalsha_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY, "@slow @scripting", EVAL_KEYS, Exec::Node(evalsha_ro)),
    CommandSpec { subcommands: SCRIPT_SUBS, ..spec("script", -2, 0, "@slow", Keys::None, Exec::Container) },
];

/// Key indexes of EVAL-style commands: `numkeys` at argument 2, the keys after it.
pub fn numkeys_at_2(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    let n = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(Reply::err("ERR value is not an integer or out of range"))?;
    if n < 0 {
        return Err(Reply::err("ERR Number of keys can't be negative"));
    }
    if n as usize > args.len() - 3 {
        return Err(Reply::err("ERR Number of keys can't be greater than number of args"));
    }
    Ok((3..3 + n as usize).collect())
}

fn job(ctx: &mut ClientCtx<'_>, args: &[Bytes], body: Bytes, sha: String, ro: bool, debug: ldb::Mode) -> Plan {
    let idx = match numkeys_at_2(args) {
        Ok(i) => i,
        Err(e) => return reply(e),
    };
    let (flags, _) = match script::shebang(&body) {
        Ok(f) => f,
        Err(e) => return reply(Reply::error(format!("ERR {e}"))),
    };
    if flags & sflags::EVAL_COMPAT == 0 {
        let cluster = ctx.shard.node.cluster.is_some();
        if flags & sflags::NO_CLUSTER != 0 && cluster {
            return reply(Reply::err("ERR Can not run script on cluster, 'no-cluster' flag is set."));
        }
    }
    if let Some(e) = script::refuse_run(flags, ro, ctx.client.master) {
        return reply(e);
    }
    let keys = idx.iter().map(|&i| args[i].clone()).collect();
    let argv = args[3 + idx.len()..].to_vec();
    Plan::Script(Box::new(ScriptJob {
        sha,
        body,
        keys,
        args: argv,
        ro: ro || flags & sflags::NO_WRITES != 0,
        function: None,
        argv: vec![args[0].clone()],
        debug,
        cluster_check: Default::default(),
        cluster_asking: false,
    }))
}

/// Whether a command counts as a write where Redis looks at a command's flags before running
/// it (`getCommandFlags`): its own flag, or for EVAL/EVALSHA/FCALL the flags of the script or
/// function (a script with a shebang and without `no-writes`; a script without a shebang is
/// not flagged).
pub fn may_write(spec: &CommandSpec, args: &[Bytes]) -> bool {
    spec.has(WRITE) || script_flags(spec, args).is_some_and(|f| f & (sflags::EVAL_COMPAT | sflags::NO_WRITES) == 0)
}

/// Whether a write pause holds a command (Redis's `is_may_replicate_command` on
/// `getCommandFlags`): a write or may-replicate command; a script or function that declares
/// its flags by them (held unless `no-writes`), EVAL/EVALSHA without a shebang (or of an
/// unknown script) as may-replicate.
pub fn may_replicate(spec: &CommandSpec, args: &[Bytes]) -> bool {
    match script_flags(spec, args) {
        Some(f) if f & sflags::EVAL_COMPAT == 0 => f & sflags::NO_WRITES == 0,
        _ => spec.has(WRITE) || spec.has(MAY_REPLICATE),
    }
}

/// The flags of the script or function EVAL/EVALSHA/FCALL would run, when known.
fn script_flags(spec: &CommandSpec, args: &[Bytes]) -> Option<u32> {
    match spec.name {
        "eval" => args.get(1).and_then(|b| script::shebang(b).ok()).map(|(f, _)| f),
        "evalsha" => {
            args.get(1).and_then(|s| script::cache_get(s)).and_then(|b| script::shebang(&b).ok()).map(|(f, _)| f)
        }
        "fcall" => args.get(1).and_then(|n| script::functions::find(n)).map(|f| f.flags),
        _ => None,
    }
}

/// EXEC on a read-only replica of a transaction that may write (scripts by their flags):
/// the whole transaction is refused, as Redis's `processCommand` does for EXEC.
pub fn exec_refusal<'a>(
    mut queued: impl Iterator<Item = (&'static CommandSpec, &'a [Bytes])>,
    master: bool,
) -> Option<Reply> {
    if master || !crate::replication::role::read_only_replica() {
        return None;
    }
    queued.any(|(spec, args)| may_write(spec, args)).then(|| {
        Reply::error(format!("EXECABORT Transaction discarded because of: {}", crate::replication::role::READONLY_ERR))
    })
}

fn eval_generic(ctx: &mut ClientCtx<'_>, args: &[Bytes], ro: bool) -> Plan {
    let body = args[1].clone();
    let sha = script::cache_add(body.clone());
    let debug = ctx.client.lua_debug;
    job(ctx, args, body, sha, ro, debug)
}

fn evalsha_generic(ctx: &mut ClientCtx<'_>, args: &[Bytes], ro: bool) -> Plan {
    if args[1].len() != 40 {
        return reply(Reply::err(script::NOSCRIPT));
    }
    if ctx.client.lua_debug != ldb::Mode::Off {
        return reply(Reply::err("ERR Please use EVAL instead of EVALSHA for debugging"));
    }
    // A SHA1 that is not text cannot be in the cache.
    let Ok(sha) = std::str::from_utf8(&args[1]).map(str::to_ascii_lowercase) else {
        return reply(Reply::err(script::NOSCRIPT));
    };
    let Some(body) = script::cache_lookup(&sha) else { return reply(Reply::err(script::NOSCRIPT)) };
    job(ctx, args, body, sha, ro, ldb::Mode::Off)
}

fn eval(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    eval_generic(ctx, args, false)
}

fn eval_ro(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    eval_generic(ctx, args, true)
}

fn evalsha(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    evalsha_generic(ctx, args, false)
}

fn evalsha_ro(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    evalsha_generic(ctx, args, true)
}

fn script_load(_: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // Compiled here so a syntax error is reported at load time, as Redis does.
    if let Err(e) = script::vm::compile(&args[2]) {
        return reply(e);
    }
    reply(Reply::bulk_string(script::cache_add(args[2].clone())))
}

fn script_exists(_: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    reply(Reply::Array(args[2..].iter().map(|s| Reply::Int(script::cache_get(s).is_some() as i64)).collect()))
}

fn script_flush(_: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return reply(Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    if let Some(mode) = args.get(2) {
        if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
            return reply(Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
        }
    }
    script::cache_flush();
    // Every shard lets its interpreter go now, not at its next script: an idle shard's
    // compiled scripts stayed counted in `used_memory_lua` until then.
    Plan::AllShards { run: release_interpreter, merge: Box::new(|_, _| Reply::Ok) }
}

fn release_interpreter(_: &mut super::ShardState, _: usize, _: &[Bytes]) -> Reply {
    script::vm::release_after_flush();
    Reply::Ok
}

fn script_kill(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    reply(script::kill(true))
}

/// SCRIPT DEBUG YES|SYNC|NO.
fn script_debug(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mode = &args[2];
    ctx.client.lua_debug = if mode.eq_ignore_ascii_case(b"no") {
        ldb::Mode::Off
    } else if mode.eq_ignore_ascii_case(b"yes") {
        ldb::Mode::Forked
    } else if mode.eq_ignore_ascii_case(b"sync") {
        ldb::Mode::Sync
    } else {
        return reply(Reply::err("ERR Use SCRIPT DEBUG YES/SYNC/NO"));
    };
    reply(Reply::Ok)
}

fn script_help(_: &mut ClientCtx<'_>, _: &[Bytes]) -> Plan {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}
