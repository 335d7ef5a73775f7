//! Lua scripting as Redis 7.0 runs it: EVAL/EVALSHA/EVAL_RO/EVALSHA_RO and SCRIPT.
//!
//! Why `mlua` with a vendored Lua 5.1: Redis embeds Lua 5.1 and scripts written for it (integer
//! division, `unpack`, `setfenv`, `table.getn`) must behave the same; `mlua` is the maintained
//! Rust binding, and its `vendored` feature builds Lua 5.1.5 from source with the `cc` crate,
//! so a release build needs nothing beyond a C compiler (Debian `build-essential`), no system
//! Lua and no pkg-config.
//!
//! What this module owns:
//! - `vm`: one Lua interpreter per shard thread, created lazily on the first script; its
//!   environment (the libraries Redis gives scripts, the globals protection) and the compiled
//!   scripts by SHA1; the driver that runs a script as a coroutine, step by step.
//! - `convert`: Redis reply <-> Lua value conversions (RESP2 and RESP3 rules).
//! - `cjson`: the `cjson` and `bit` libraries; `cmsgpack`, `structlib`: `cmsgpack` and `struct`.
//! - the node-wide script cache (SCRIPT LOAD / EVALSHA see the same scripts from every shard)
//!   and the state of running scripts (busy, killed) that SCRIPT KILL and the BUSY check read.
//!
//! Invariants: a shard runs at most one script at a time (the script holds the shard's gate
//! for its whole run); a script never touches a shard it does not hold; once a script ran past
//! `busy-reply-threshold` every other client of the node gets `BUSY` until it ends or is
//! killed; a script that wrote cannot be killed.

pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod functions;
mod hook;
pub mod ldb;
mod redis_api;
pub mod structlib;
pub mod vm;
mod vm_memory;

use crate::protocol::Reply;
use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// `-NOSCRIPT`.
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
/// BUSY while an EVAL script runs past the threshold.
pub const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// BUSY while a function runs past the threshold.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
/// SCRIPT KILL with nothing running.
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
/// SCRIPT KILL of a script that wrote.
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

/// Script flags (`#!lua flags=...`).
pub mod sflags {
    /// No shebang: Redis 6 compatible script.
    pub const EVAL_COMPAT: u32 = 1 << 0;
    /// `no-writes`.
    pub const NO_WRITES: u32 = 1 << 1;
    /// `allow-oom`.
    pub const ALLOW_OOM: u32 = 1 << 2;
    /// `allow-stale`.
    pub const ALLOW_STALE: u32 = 1 << 3;
    /// `no-cluster`.
    pub const NO_CLUSTER: u32 = 1 << 4;
    /// `allow-cross-slot-keys`.
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 5;
    /// Names as scripts spell them.
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// Parses a script's shebang line: (flags, length of the shebang line), or the error text
/// (without the `ERR ` prefix).
pub fn shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflags::EVAL_COMPAT, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else { return Err("Invalid script shebang".into()) };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else { return Err("Invalid engine in script shebang".into()) };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for p in parts {
        let Some(list) = p.strip_prefix("flags=") else { return Err(format!("Unknown lua shebang option: {p}")) };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            match sflags::NAMES.iter().find(|(_, n)| *n == f) {
                Some((bit, _)) => flags |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((flags, end))
}

/// SHA1 of a script body, 40 lower-case hex digits (Redis's `sha1hex`).
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// The node-wide script cache: SHA1 -> body. Every shard's VM compiles from here lazily.
fn cache() -> &'static Mutex<HashMap<String, Bytes>> {
    static C: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Bumped by SCRIPT FLUSH: shard VMs drop their compiled scripts when it moved.
static FLUSH_GEN: AtomicUsize = AtomicUsize::new(0);

/// Adds a script to the cache, returning its SHA1.
pub fn cache_add(body: Bytes) -> String {
    let sha = sha1hex(&body);
    lock(cache()).entry(sha.clone()).or_insert(body);
    sha
}

/// The body of a cached script (`sha` in any case).
pub fn cache_get(sha: &[u8]) -> Option<Bytes> {
    cache_lookup(&String::from_utf8_lossy(sha).to_ascii_lowercase())
}

/// The body of a cached script by its lower-case SHA1.
pub fn cache_lookup(sha: &str) -> Option<Bytes> {
    lock(cache()).get(sha).cloned()
}

/// Forgets every cached script (SCRIPT FLUSH).
pub fn cache_flush() {
    lock(cache()).clear();
    FLUSH_GEN.fetch_add(1, Ordering::AcqRel);
}

/// Number of cached scripts and their total body size (INFO memory).
pub fn cache_stats() -> (usize, usize) {
    let c = lock(cache());
    (c.len(), c.values().map(|b| b.len()).sum())
}

/// The bytes of the EVAL scripts' cache and of the function libraries' code (MEMORY STATS's
/// `lua.caches` and `functions.caches`, counted in the memory overhead).
pub fn caches_memory() -> (u64, u64) {
    (cache_stats().1 as u64, functions::code_bytes() as u64)
}

/// The scripting lines of INFO memory, in Redis 7.0's order (`used_memory_lua` ..
/// `used_memory_scripts_human`). One interpreter per shard runs both scripts and functions,
/// so its size is reported as the eval VM's and the functions VM line is 0; the caches are
/// the bodies of the cached scripts and the code of the loaded libraries.
pub fn info_memory_fields(human: impl Fn(u64) -> String) -> String {
    let vm = vm::used_memory() as u64;
    let (scripts, eval_bytes) = cache_stats();
    let (libs, funcs) = functions::counts();
    let func_bytes = functions::code_bytes() as u64;
    let eval_bytes = eval_bytes as u64;
    format!(
        "used_memory_lua:{vm}\r\nused_memory_vm_eval:{vm}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{eval_bytes}\r\nnumber_of_cached_scripts:{scripts}\r\nnumber_of_functions:{funcs}\r\nnumber_of_libraries:{libs}\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:{vm}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{func_bytes}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\n",
        human(vm),
        human(vm),
        eval_bytes + func_bytes,
        human(eval_bytes + func_bytes)
    )
}

/// The current SCRIPT FLUSH generation.
pub fn flush_gen() -> usize {
    FLUSH_GEN.load(Ordering::Acquire)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The shared state of one running script (the shard running it and SCRIPT KILL read it).
#[derive(Debug, Default)]
pub struct RunFlags {
    /// Ran past `busy-reply-threshold`.
    pub timed_out: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked it to stop.
    pub killed: AtomicBool,
    /// It executed a write command.
    pub wrote: AtomicBool,
    /// An EVAL script (false: a function).
    pub eval: bool,
    /// Sent by our master (never killable).
    pub from_master: bool,
    /// The function's name (FUNCTION STATS).
    pub name: String,
    /// The command that runs it.
    pub command: Vec<Bytes>,
    /// When it started.
    pub started: Option<std::time::Instant>,
}

fn running() -> &'static Mutex<Vec<Arc<RunFlags>>> {
    static R: OnceLock<Mutex<Vec<Arc<RunFlags>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Number of timed-out scripts (the BUSY check reads only this).
static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);

/// Registers a script run (`name` and `command` are kept for a function only: FUNCTION STATS
/// shows them).
pub fn run_begin(eval: bool, from_master: bool, name: &str, command: &[Bytes]) -> Arc<RunFlags> {
    let (name, command) = if eval { ("", &[][..]) } else { (name, command) };
    let f = Arc::new(RunFlags {
        eval,
        from_master,
        name: name.to_string(),
        command: command.to_vec(),
        started: Some(std::time::Instant::now()),
        ..Default::default()
    });
    lock(running()).push(f.clone());
    f
}

/// Marks a run as past the busy threshold (once).
pub fn run_timed_out(f: &RunFlags) {
    if !f.timed_out.swap(true, Ordering::AcqRel) {
        TIMED_OUT.fetch_add(1, Ordering::AcqRel);
        tracing::warn!(
            "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command.",
            busy_threshold_ms(),
            if f.eval { "SCRIPT KILL" } else { "FUNCTION KILL" }
        );
    }
}

/// Unregisters a run.
pub fn run_end(f: &Arc<RunFlags>) {
    lock(running()).retain(|r| !Arc::ptr_eq(r, f));
    if f.timed_out.load(Ordering::Acquire) {
        TIMED_OUT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A script runs past the busy threshold (Redis's `isInsideYieldingLongCommand`).
#[inline]
pub fn busy() -> bool {
    TIMED_OUT.load(Ordering::Relaxed) != 0
}

/// The BUSY error for a command without `allow-busy` while a script is timed out.
#[inline]
pub fn busy_refusal() -> Option<Reply> {
    if !busy() {
        return None;
    }
    let eval = lock(running()).iter().any(|r| r.eval && r.timed_out.load(Ordering::Relaxed));
    Some(Reply::err(if eval { BUSY_EVAL } else { BUSY_FUNCTION }))
}

/// The running function: (name, command, milliseconds so far), for FUNCTION STATS.
pub fn running_function() -> Option<(String, Vec<Bytes>, u64)> {
    let runs = lock(running());
    let r = runs.iter().find(|r| !r.eval)?;
    let ms = r.started.map(|s| s.elapsed().as_millis() as u64).unwrap_or(0);
    Some((r.name.clone(), r.command.clone(), ms))
}

/// SCRIPT KILL (`eval`) or FUNCTION KILL.
pub fn kill(eval: bool) -> Reply {
    let runs = lock(running());
    let Some(r) = runs.iter().find(|r| r.timed_out.load(Ordering::Acquire)).or(runs.first()) else {
        return Reply::err(NOTBUSY);
    };
    if r.from_master {
        return Reply::err("UNKILLABLE The busy script was sent by a master instance in the context of replication and cannot be killed.");
    }
    if r.wrote.load(Ordering::Acquire) {
        return Reply::err(UNKILLABLE);
    }
    if eval && !r.eval {
        return Reply::err(BUSY_FUNCTION);
    }
    if !eval && r.eval {
        return Reply::err(BUSY_EVAL);
    }
    r.killed.store(true, Ordering::Release);
    Reply::Ok
}

/// `busy-reply-threshold` (alias `lua-time-limit`) in milliseconds, as last configured.
static BUSY_MS: AtomicUsize = AtomicUsize::new(5000);

/// The busy threshold in ms.
pub fn busy_threshold_ms() -> u64 {
    BUSY_MS.load(Ordering::Relaxed) as u64
}

/// [`apply_config`] of a shard's configuration snapshot, when it is not the one this thread
/// applied last (snapshots are replaced, never changed, by CONFIG SET; the one held here
/// cannot be freed and its address reused meanwhile).
pub fn refresh_config(cfg: &Arc<crate::config::Config>) {
    thread_local! {
        static APPLIED: std::cell::RefCell<Option<Arc<crate::config::Config>>> = const { std::cell::RefCell::new(None) };
    }
    APPLIED.with(|a| {
        let mut a = a.borrow_mut();
        if a.as_ref().is_some_and(|c| Arc::ptr_eq(c, cfg)) {
            return;
        }
        apply_config(cfg);
        *a = Some(cfg.clone());
    });
}

/// Reads `busy-reply-threshold` / `lua-time-limit` from a config snapshot.
pub fn apply_config(cfg: &crate::config::Config) {
    // Two names for one setting: the one moved from its default wins.
    let lua = cfg.get("lua-time-limit").filter(|v| *v != "5000");
    let v = lua.or_else(|| cfg.get("busy-reply-threshold"));
    if let Some(ms) = v.and_then(|v| v.parse::<usize>().ok()) {
        BUSY_MS.store(ms, Ordering::Relaxed);
    }
}

/// `DEBUG SET-DISABLE-DENY-SCRIPTS`: scripts may call commands flagged `noscript`.
static DENY_DISABLED: AtomicBool = AtomicBool::new(false);

/// Sets `DEBUG SET-DISABLE-DENY-SCRIPTS`.
pub fn set_deny_disabled(on: bool) {
    DENY_DISABLED.store(on, Ordering::Relaxed);
}

/// True when scripts may call `noscript` commands (a debugging switch).
pub fn deny_disabled() -> bool {
    DENY_DISABLED.load(Ordering::Relaxed)
}

/// `DEBUG PROTOCOL <type>`: one reply of each RESP type, for the caller's protocol (`resp3`).
pub fn debug_protocol(name: &[u8], resp3: bool) -> Reply {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    const BIG: &str = "1234567999999999999999999999999999999";
    if is("string") {
        Reply::Bulk(Bytes::from_static(b"Hello World"))
    } else if is("integer") {
        Reply::Int(12345)
    } else if is("double") {
        Reply::HumanDouble(Bytes::from_static(b"3.141"))
    } else if is("bignum") {
        if resp3 {
            Reply::Raw(Bytes::from(format!("({BIG}\r\n")))
        } else {
            Reply::Bulk(Bytes::from_static(BIG.as_bytes()))
        }
    } else if is("null") {
        Reply::Nil
    } else if is("array") {
        Reply::Array((0..3).map(Reply::Int).collect())
    } else if is("set") {
        Reply::Set((0..3).map(Reply::Int).collect())
    } else if is("map") {
        Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect())
    } else if is("attrib") {
        let real = "$39\r\nSome real reply following the attribute\r\n";
        if resp3 {
            Reply::Raw(Bytes::from(format!("|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n{real}")))
        } else {
            Reply::Raw(Bytes::from(real))
        }
    } else if is("push") {
        if !resp3 {
            return Reply::err("ERR RESP2 is not supported by this command");
        }
        Reply::Raw(Bytes::from_static(
            b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n",
        ))
    } else if is("true") {
        Reply::Bool(true)
    } else if is("false") {
        Reply::Bool(false)
    } else if is("verbatim") {
        Reply::Verbatim(Bytes::from_static(b"This is a verbatim\nstring"))
    } else {
        Reply::err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
    }
}

/// The refusal of a script run before it starts (Redis's `scriptPrepareForRun`): stale
/// replica, read-only replica, a write script through `*_RO`. `master`: the caller is our
/// master's link.
pub fn refuse_run(flags: u32, ro: bool, master: bool) -> Option<Reply> {
    use crate::replication::role;
    let stale = role::stale() && !master;
    if flags & sflags::EVAL_COMPAT != 0 {
        return stale.then(|| Reply::err(role::MASTERDOWN_ERR));
    }
    // A script with flags is refused as a command with the flags they imply would be, in
    // Redis's `processCommand` order: over maxmemory (unless allow-oom or no-writes), then as a
    // write command (min-replicas, read-only replica), then on a stale replica (unless
    // allow-stale).
    let writes = flags & sflags::NO_WRITES == 0;
    if !master {
        if writes && flags & sflags::ALLOW_OOM == 0 && crate::memory::evict::pre_command_oom() {
            return Some(Reply::err(crate::memory::OOM));
        }
        if writes && crate::replication::master::writes_refused() {
            return Some(Reply::err(crate::replication::master::NOREPLICAS));
        }
        if writes && role::read_only_replica() {
            return Some(Reply::err(role::READONLY_ERR));
        }
        if stale && flags & sflags::ALLOW_STALE == 0 {
            return Some(Reply::err(role::MASTERDOWN_ERR));
        }
    }
    if writes && ro {
        return Some(Reply::err("ERR Can not execute a script with write flag using *_ro command."));
    }
    None
}

/// What a script run can reach: its commands execute through this (a shard's state under
/// the script's hold, or a scratch copy of the keys of several shards).
pub trait Host {
    /// Runs one command for `redis.call`/`redis.pcall` in database `db`; the reply, or an
    /// error text to raise as it is (Redis's "-CODE msg" or "msg" forms).
    /// `resp3`: the protocol the script set with `redis.setresp`; `repl`: where the command's
    /// effects go, `redis.set_repl`'s flags (`REPL_AOF` 1 | `REPL_REPLICA` 2, the bits of
    /// `Unit::TO_*`).
    fn call(&mut self, db: &mut usize, args: &[Bytes], resp3: bool, repl: u8) -> Result<Reply, String>;
    /// Counts a command the script's own rules refused before it ran (`command`, when known):
    /// its error in errorstats and a rejected call (Redis's `scriptCall` error path).
    fn rejected(&mut self, command: Option<&'static str>, text: &str);
    /// `redis.acl_check_cmd`: whether the caller's ACL user may run `args`; an error text for
    /// an unknown command.
    fn acl_allows(&self, args: &[Bytes]) -> Result<bool, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_forms() {
        assert_eq!(shebang(b"return 1"), Ok((sflags::EVAL_COMPAT, 0)));
        assert_eq!(
            shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((sflags::NO_WRITES | sflags::ALLOW_OOM, 31))
        );
        assert_eq!(shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert!(shebang(b"#!py\n").unwrap_err().starts_with("Unexpected engine"));
        assert!(shebang(b"#!lua flags=bad\n").unwrap_err().starts_with("Unexpected flag"));
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
