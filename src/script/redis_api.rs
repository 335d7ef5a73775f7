//! The `redis.*` functions implemented in Rust: `call`/`pcall`, `acl_check_cmd`, `log` and
//! the deterministic `math.random`.

use super::convert;
use super::vm::{ctx, CALL_ARGS, HOST, RNG};
use crate::protocol::Reply;
use bytes::Bytes;
use mlua::{Lua, MultiValue, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a `redis.call`/`pcall` gave, before it is made a Lua value.
pub(super) enum CallOut {
    /// The command ran: its reply, for a script speaking RESP3 or not.
    Reply(Reply, bool),
    /// The call was malformed or made outside a run (an error table, not counted).
    Fail(String),
    /// The command was refused before it ran (an error table counted in errorstats already).
    Refused(String),
}

thread_local! {
    /// A call's outcome waiting for [`redis_call`] to make it a Lua value.
    pub(super) static PENDING: std::cell::RefCell<Option<CallOut>> = const { std::cell::RefCell::new(None) };
}

/// `redis.call` / `redis.pcall` without the Lua side: runs the command in `CALL_ARGS`
/// (`ok`: its arguments were all strings or numbers).
pub(super) fn run_call(ok: bool) -> CallOut {
    let fail = |text: &str| -> CallOut {
        if super::ldb::logging() {
            super::ldb::log(format!("<error> {text}").into_bytes());
        }
        CallOut::Fail(text.to_string())
    };
    if !ok {
        return fail("Lua redis lib command arguments must be strings or integers");
    }
    let argv = CALL_ARGS.with(|a| std::mem::take(&mut *a.borrow_mut()));
    let out = run_argv(&argv, fail);
    // The vector goes back for the next call (its capacity kept).
    CALL_ARGS.with(|a| {
        let mut a = a.borrow_mut();
        if a.capacity() == 0 {
            let mut argv = argv;
            argv.clear();
            *a = argv;
        }
    });
    out
}

fn run_argv(argv: &[Bytes], fail: impl Fn(&str) -> CallOut) -> CallOut {
    if argv.is_empty() {
        return fail("Please specify at least one argument for this redis lib call");
    }
    if super::ldb::logging() {
        super::ldb::log_command(argv);
    }
    let Some(host) = HOST.with(|h| h.get()) else {
        return fail("redis.call/pcall can only be called inside a script invocation");
    };
    let Some(mut db) = ctx(|c| c.db) else {
        return fail("redis.call/pcall can only be called inside a script invocation");
    };
    // SAFETY: set by `step` for the duration of the resume that is calling us.
    let host = unsafe { &mut *host };
    // A command refused before it runs (Redis's `scriptCall` errors): counted in errorstats
    // and as the command's rejected call now, so the script's error is not counted again.
    let mut refuse = |name: Option<&'static str>, text: &str| -> CallOut {
        host.rejected(name, text);
        if super::ldb::logging() {
            super::ldb::log(format!("<error> {text}").into_bytes());
        }
        CallOut::Refused(text.to_string())
    };
    // The subcommand's flags are the ones checked (XGROUP CREATE writes, XGROUP does not).
    let resolved = crate::cmd::table::resolve(argv);
    if let Some(e) = blocking_refusal(argv) {
        return refuse(resolved.map(|(_, name)| name), &e);
    }
    // The run's state the checks and the call read, in one look.
    let Some((ro, flags_, run, resp3, repl, started)) =
        ctx(|c| (c.ro, c.flags, c.run.clone(), c.resp3, (c.repl & 3) as u8, c.started))
    else {
        return fail("redis.call/pcall can only be called inside a script invocation");
    };
    // Checks of the script's own rules before the command runs.
    if let Some((spec, name)) = resolved {
        let mut fail = |text: &str| refuse(Some(name), text);
        use crate::cmd::flags;
        let writes = spec.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE);
        if spec.has(flags::NOSCRIPT) && spec.arity_ok(argv.len()) && !super::deny_disabled() {
            return fail("This Redis command is not allowed from script");
        }
        if ro && writes && spec.arity_ok(argv.len()) {
            return fail("Write commands are not allowed from read-only scripts.");
        }
        if !run.from_master && spec.arity_ok(argv.len()) {
            use crate::replication::role;
            if role::stale() && !spec.has(flags::STALE) {
                return fail("Can not execute the command on a stale replica");
            }
            if role::read_only_replica() && spec.has(flags::WRITE) && !run.wrote.load(Ordering::Acquire) {
                return fail("-READONLY You can't write against a read only replica.");
            }
        }
        // The node's state may refuse a first write (Redis's `scriptVerifyWriteCommandAllow`):
        // a failed background save or AOF write, then min-replicas-to-write not met.
        if spec.has(flags::WRITE) && spec.arity_ok(argv.len()) && !run.wrote.load(Ordering::Acquire) {
            if crate::cmd::bgsave::writes_denied() {
                return fail(&format!("-{}", crate::cmd::bgsave::MISCONF));
            }
            if let Some(m) = crate::aof::sync::misconf() {
                return fail(&format!("-{m}"));
            }
            if crate::replication::master::writes_refused() {
                return fail(&format!("-{}", crate::replication::master::NOREPLICAS));
            }
        }
        // maxmemory: a script that started over the ceiling may not make its first write.
        if spec.has(flags::DENYOOM)
            && flags_ & super::sflags::ALLOW_OOM == 0
            && !run.wrote.load(Ordering::Acquire)
            && crate::memory::evict::pre_command_oom()
        {
            return fail(&format!("-{}", crate::memory::OOM));
        }
        if spec.has(flags::WRITE) && spec.arity_ok(argv.len()) {
            run.wrote.store(true, Ordering::Release);
        }
    }
    // A script busy in commands (few Lua instructions between them) is timed out here too.
    if started.elapsed() >= Duration::from_millis(super::busy_threshold_ms()) {
        super::run_timed_out(&run);
    }
    let result = host.call(&mut db, argv, resp3, repl);
    ctx(|c| c.db = db);
    match result {
        Ok(reply) => {
            if super::ldb::logging() {
                let mut resp = Vec::new();
                reply.encode(&mut resp, resp3);
                if reply.is_error() {
                    let mut e = b"<error> ".to_vec();
                    e.extend_from_slice(resp.strip_suffix(b"\r\n").unwrap_or(&resp));
                    super::ldb::log(e);
                }
                super::ldb::log_reply(&resp);
            }
            CallOut::Reply(reply, resp3)
        }
        // The host counted its refusal.
        Err(text) => {
            if super::ldb::logging() {
                super::ldb::log(format!("<error> {text}").into_bytes());
            }
            CallOut::Refused(text)
        }
    }
}

/// The Lua value of the call outcome in [`PENDING`] (raise: `redis.call`, whose failed
/// command raises): (value, raise it).
pub(super) fn redis_call(lua: &Lua, raise: bool) -> mlua::Result<(Value, bool)> {
    let out = PENDING.with(|p| p.borrow_mut().take());
    match out {
        Some(CallOut::Reply(reply, resp3)) => {
            let failed = reply.is_error() && raise;
            Ok((convert::reply_to_lua(lua, &reply, resp3)?, failed))
        }
        Some(CallOut::Fail(text)) => Ok((Value::Table(convert::error_table(lua, text.as_bytes())?), raise)),
        Some(CallOut::Refused(text)) => Ok((Value::Table(convert::counted_error_table(lua, text.as_bytes())?), raise)),
        None => Ok((
            Value::Table(convert::error_table(lua, b"redis.call/pcall can only be called inside a script invocation")?),
            raise,
        )),
    }
}

/// `redis.acl_check_cmd(command, args...)`: may the caller's user run it?
pub(super) fn acl_check_cmd(_: &Lua, args: MultiValue) -> mlua::Result<bool> {
    let mut argv = Vec::with_capacity(args.len());
    for v in args.iter() {
        match v {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => argv.push(Bytes::from(i.to_string())),
            Value::Number(n) => argv.push(Bytes::from(crate::protocol::reply::format_g(*n, 17))),
            _ => return Err(mlua::Error::runtime("Lua redis lib command arguments must be strings or integers")),
        }
    }
    if argv.is_empty() {
        return Err(mlua::Error::runtime("Please specify at least one argument for this redis lib call"));
    }
    let Some(host) = HOST.with(|h| h.get()) else {
        return Err(mlua::Error::runtime("redis.acl_check_cmd can only be called inside a script invocation"));
    };
    // SAFETY: set by `step` for the duration of the resume that is calling us.
    let host = unsafe { &*host };
    host.acl_allows(&argv).map_err(mlua::Error::runtime)
}

/// XREAD/XREADGROUP with BLOCK cannot run from a script.
fn blocking_refusal(argv: &[Bytes]) -> Option<String> {
    let name = &argv[0];
    if !(name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup")) {
        return None;
    }
    let block =
        argv[1..].iter().take_while(|a| !a.eq_ignore_ascii_case(b"streams")).any(|a| a.eq_ignore_ascii_case(b"block"));
    block.then(|| format!("{} command is not allowed with BLOCK option from scripts", String::from_utf8_lossy(name)))
}

/// `redis.log(level, ...)`.
pub(super) fn redis_log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(mlua::Error::runtime("redis.log() requires two arguments or more."));
    }
    let level = match args.front() {
        Some(Value::Integer(i)) => *i,
        Some(Value::Number(n)) => *n as i64,
        Some(Value::String(s)) => match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => n as i64,
            None => return Err(mlua::Error::runtime("First argument must be a number (log level).")),
        },
        _ => return Err(mlua::Error::runtime("First argument must be a number (log level).")),
    };
    if !(0..=3).contains(&level) {
        return Err(mlua::Error::runtime("Invalid debug level."));
    }
    let mut parts = Vec::new();
    for v in args.iter().skip(1) {
        match v {
            Value::String(s) => parts.push(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Value::Integer(i) => parts.push(i.to_string()),
            Value::Number(n) => parts.push(convert::fmt_number(*n)),
            _ => {}
        }
    }
    let msg = parts.join(" ");
    match level {
        0 => tracing::debug!("{}", msg),
        1 => tracing::debug!("{}", msg),
        2 => tracing::info!("{}", msg),
        _ => tracing::warn!("{}", msg),
    }
    Ok(())
}

/// `math.random` with Redis's semantics (a PRNG reseeded for every script, so EVAL scripts
/// are deterministic unless they seed it).
pub(super) fn redis_random(_: &Lua, args: MultiValue) -> mlua::Result<f64> {
    // Not reset between scripts (Redis 7.0 replicates effects, so scripts need not be
    // deterministic): seeded once per interpreter, `math.randomseed` reseeds it.
    let r = RNG.with(|c| {
        // xorshift64*
        let mut x = c.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    });
    let num = |v: Option<&Value>| match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        _ => None,
    };
    match args.len() {
        0 => Ok(r),
        1 => {
            let u = num(args.front()).unwrap_or(1.0).floor();
            if u < 1.0 {
                return Err(mlua::Error::runtime("bad argument #1 to 'random' (interval is empty)"));
            }
            Ok((r * u).floor() + 1.0)
        }
        _ => {
            let l = num(args.front()).unwrap_or(1.0).floor();
            let u = num(args.get(1)).unwrap_or(1.0).floor();
            if l > u {
                return Err(mlua::Error::runtime("bad argument #2 to 'random' (interval is empty)"));
            }
            Ok((r * (u - l + 1.0)).floor() + l)
        }
    }
}
