//! One Lua interpreter per shard thread, created on the first script the shard runs, and the
//! driver that runs a script as a coroutine, one step at a time.
//!
//! The environment is Redis 7.0's: the `base`, `table`, `string`, `math` libraries plus
//! `cjson` and `bit`; `redis.*` (call, pcall, error_reply, status_reply, sha1hex, log,
//! setresp, set_repl and the REPL_* constants, breakpoint/debug as no-ops); `dofile`,
//! `loadfile`, `print` and `debug` removed; the global table protected: reading an undefined
//! global and creating one are errors with Redis's texts.
//!
//! Why a coroutine: a script runs while its shard's event loop waits, so past
//! `busy-reply-threshold` the count hook (every 100000 instructions, as Redis) yields the
//! coroutine back to the runtime, which lets the shard answer its other clients (BUSY) and take
//! SCRIPT KILL before resuming. `pcall`/`xpcall` are replaced by coroutine-based versions so a
//! script spinning inside a `pcall` can still be suspended (Lua 5.1 cannot yield across a C
//! `pcall`). A yield is only attempted where Lua 5.1 allows it (no C call between the hook
//! and the coroutine's resume); elsewhere the hook lets the script go on.

use super::hook::{install_hook, set_load_hook};
use super::redis_api::{acl_check_cmd, redis_call, redis_log, redis_random};
use super::vm_memory::report_bytes;
pub use super::vm_memory::used_memory;
use super::{convert, Host, RunFlags};
use crate::protocol::Reply;
use bytes::Bytes;
use hashbrown::HashMap;
use mlua::{ffi, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Thread, Value};
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The environment set-up, run once per interpreter. Frames of this chunk are skipped when an
/// error's script position is looked up.
const SETUP: &str = include_str!("setup.lua");

/// A shard's interpreter.
struct Vm {
    lua: Lua,
    /// `errinfo(co, err)`: the error table of a script that failed in coroutine `co`.
    errinfo: Function,
    loadlib: Function,
    /// The read-only environment scripts run in.
    env: Table,
    /// The environment of function libraries (restricted while FUNCTION LOAD runs them).
    fenv: Table,
    /// Registered functions (a Lua table: name -> callback), for function registry
    /// generation `fgen`.
    funcs: Table,
    fgen: u64,
    /// Compiled scripts by SHA1 (a Lua table: SHA1 -> function) and their shebang flags,
    /// valid for SCRIPT FLUSH generation `gen`. The functions stay in Lua tables: every
    /// function value held on the Rust side takes a slot of mlua's reference stack, which
    /// holds about 8000, so a cache of Rust-held functions crashed the node at the 8000th
    /// distinct script.
    script_fns: Table,
    scripts: HashMap<String, u32>,
    gen: usize,
    /// The coroutine of the last script that ended normally, reused by the next run (a fresh
    /// one per run was most of a run's garbage).
    idle: Option<Thread>,
    /// A registry slot through which a value on a coroutine's stack is read as an mlua value.
    slot: mlua::RegistryKey,
    /// Scripts run since the last garbage-collection step.
    since_gc: u32,
    /// Keeps `redis_call` in the registry at [`RCALL`].
    _rcall: mlua::RegistryKey,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// The host of the step being run (set only for the duration of a step).
    pub(super) static HOST: Cell<Option<*mut dyn Host>> = const { Cell::new(None) };
    /// The state of the script being run on this thread.
    static CTX: RefCell<Option<RunCtx>> = const { RefCell::new(None) };
    /// `math.random`'s state, seeded randomly per thread.
    pub(super) static RNG: Cell<u64> = Cell::new(fastrand::u64(..));
}

/// The per-run state the Lua callbacks read.
pub(super) struct RunCtx {
    pub(super) resp3: bool,
    /// `redis.set_repl` flags (REPL_AOF 1 | REPL_REPLICA 2): which consumers of the change
    /// stream take the commands run from now on.
    pub(super) repl: i64,
    pub(super) db: usize,
    pub(super) ro: bool,
    pub(super) flags: u32,
    pub(super) run: Arc<RunFlags>,
    pub(super) started: Instant,
    pub(super) last_yield: Instant,
    /// The hook asked for a yield at its last call.
    pub(super) wants_yield: bool,
    /// Name in error messages (the SHA1 for EVAL).
    pub(super) name: String,
}

pub(super) fn ctx<R>(f: impl FnOnce(&mut RunCtx) -> R) -> Option<R> {
    CTX.with(|c| c.borrow_mut().as_mut().map(f))
}

fn new_vm() -> mlua::Result<Vm> {
    // SAFETY: the debug library is loaded only for the set-up chunk, which keeps
    // `debug.getinfo` in a local and removes the global before any script runs.
    let lua = unsafe {
        Lua::unsafe_new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, LuaOptions::new())
    };
    let rust = lua.create_table()?;
    let call = lua.create_function(redis_call)?;
    let rcall = lua.create_registry_value(call.clone())?;
    RCALL.with(|r| r.set(rcall.id()));
    rust.set("call", call)?;
    // SAFETY: `raising_call` follows the Lua C API protocol (see its doc).
    rust.set("raising_call", unsafe { lua.create_c_function(raising_call)? })?;
    // SAFETY: as `raising_call`.
    rust.set("protected_call", unsafe { lua.create_c_function(protected_call)? })?;
    // SAFETY: as `raising_call`.
    lua.set_named_registry_value(LDB_CALL.to_str().unwrap_or_default(), unsafe {
        lua.create_c_function(raising_call)?
    })?;
    rust.set("acl_check_cmd", lua.create_function(acl_check_cmd)?)?;
    rust.set("breakpoint", lua.create_function(|_, ()| Ok(super::ldb::breakpoint()))?)?;
    // SAFETY: `debug_fn` follows the Lua C API protocol (see its doc).
    rust.set("debug", unsafe { lua.create_c_function(super::ldb::debug_fn)? })?;
    rust.set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("wrong number of arguments"));
            }
            let s = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Integer(i)) => i.to_string().into_bytes(),
                Some(Value::Number(n)) => convert::fmt_number(*n).into_bytes(),
                _ => Vec::new(),
            };
            Ok(super::sha1hex(&s))
        })?,
    )?;
    // The text of an error a Rust function raised (as `pcall` caught it).
    rust.set(
        "errtext",
        lua.create_function(|_, v: Value| {
            Ok(match v {
                Value::Error(e) => lua_error_text(&e),
                Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                other => format!("{other:?}"),
            })
        })?,
    )?;
    rust.set("errtable", lua.create_function(|lua, msg: mlua::String| convert::error_table(lua, &msg.as_bytes()))?)?;
    rust.set("log", lua.create_function(redis_log)?)?;
    rust.set(
        "killed",
        lua.create_function(|_, ()| Ok(ctx(|c| c.run.killed.load(Ordering::Acquire)).unwrap_or(false)))?,
    )?;
    // SAFETY: `set_load_hook` follows the Lua C API protocol (see its doc).
    rust.set("loadhook", unsafe { lua.create_c_function(set_load_hook)? })?;
    rust.set(
        "setresp",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("redis.setresp() requires one argument."));
            }
            let v = match args.front() {
                Some(Value::Integer(i)) => *i,
                Some(Value::Number(n)) => *n as i64,
                _ => 0,
            };
            if v != 2 && v != 3 {
                return Err(mlua::Error::runtime("RESP version must be 2 or 3."));
            }
            ctx(|c| c.resp3 = v == 3);
            Ok(())
        })?,
    )?;
    rust.set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("redis.set_repl() requires two arguments."));
            }
            let v = match args.front() {
                Some(Value::Integer(i)) => *i,
                Some(Value::Number(n)) => *n as i64,
                _ => -1,
            };
            if !(0..=3).contains(&v) {
                return Err(mlua::Error::runtime(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            ctx(|c| c.repl = v);
            Ok(())
        })?,
    )?;
    rust.set("random", lua.create_function(redis_random)?)?;
    rust.set(
        "randomseed",
        lua.create_function(|_, seed: Option<f64>| {
            RNG.with(|r| r.set(seed.unwrap_or(0.0) as i64 as u64));
            Ok(())
        })?,
    )?;
    rust.set("cjson", super::cjson::cjson_table(&lua)?)?;
    rust.set("bit", super::cjson::bit_table(&lua)?)?;
    rust.set("cmsgpack", super::cmsgpack::table(&lua)?)?;
    rust.set("struct", super::structlib::table(&lua)?)?;
    let (errinfo, loadlib, env, fenv): (Function, Function, Table, Table) =
        lua.load(SETUP).set_name("=redis").call(rust)?;
    lua.set_named_registry_value(LDB_ENV.to_str().unwrap_or_default(), env.clone())?;
    let slot = lua.create_registry_value(false)?;
    // The set-up's own garbage (its compiled chunk, about a third of the heap) goes now, not
    // over the first scripts' collection steps.
    lua.gc_collect()?;
    let (funcs, script_fns) = (lua.create_table()?, lua.create_table()?);
    Ok(Vm {
        lua,
        errinfo,
        loadlib,
        env,
        fenv,
        funcs,
        fgen: u64::MAX,
        script_fns,
        scripts: HashMap::new(),
        gen: super::flush_gen(),
        idle: None,
        slot,
        since_gc: 0,
        _rcall: rcall,
    })
}

fn with_vm<R>(f: impl FnOnce(&mut Vm) -> Result<R, Reply>) -> Result<R, Reply> {
    VM.with(|v| {
        let mut v = v.borrow_mut();
        if v.is_none() {
            match new_vm() {
                Ok(vm) => *v = Some(vm),
                Err(e) => return Err(Reply::error(format!("ERR Error creating the Lua interpreter: {e}"))),
            }
        }
        let vm = v.as_mut().ok_or_else(|| Reply::err("ERR no Lua interpreter"))?;
        if vm.gen != super::flush_gen() {
            vm.scripts.clear();
            if let Ok(t) = vm.lua.create_table() {
                vm.script_fns = t;
            }
            vm.gen = super::flush_gen();
            // Redis frees its whole interpreter on SCRIPT FLUSH: the compiled scripts'
            // memory goes at once here too.
            let _ = vm.lua.gc_collect();
            report_memory(&vm.lua);
        }
        f(vm)
    })
}

/// Compiles a script body into this thread's interpreter (if not already), returning its
/// SHA1 and flags; errors as Redis words them.
pub fn compile(body: &[u8]) -> Result<(String, u32), Reply> {
    let sha = super::sha1hex(body);
    let flags = compile_known(body, &sha)?;
    Ok((sha, flags))
}

/// [`compile`] of a body whose SHA1 is known (EVALSHA, or EVAL after the cache computed it):
/// its flags.
pub fn compile_known(body: &[u8], sha: &str) -> Result<u32, Reply> {
    with_vm(|vm| {
        if let Some(flags) = vm.scripts.get(sha) {
            return Ok(*flags);
        }
        let (flags, skip) = super::shebang(body).map_err(|e| Reply::error(format!("ERR {e}")))?;
        let f = vm
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_environment(vm.env.clone())
            .into_function()
            .map_err(|e| Reply::error(format!("ERR Error compiling script (new function): {}", lua_error_text(&e))))?;
        vm.script_fns.raw_set(sha, f).map_err(|e| Reply::error(format!("ERR {}", lua_error_text(&e))))?;
        vm.scripts.insert(sha.to_string(), flags);
        report_memory(&vm.lua);
        Ok(flags)
    })
}

/// The message of a Lua error without mlua's decorations.
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// How a script run is configured (KEYS and ARGV borrowed from the job: they are only copied
/// into Lua strings).
pub struct RunSpec<'a> {
    /// SHA1 of the compiled script (see [`compile`]), or the function's name for FCALL.
    pub sha: String,
    /// FCALL: `sha` names a registered function, called with (KEYS, ARGV).
    pub function: bool,
    /// KEYS.
    pub keys: &'a [Bytes],
    /// ARGV.
    pub args: &'a [Bytes],
    /// The client's database.
    pub db: usize,
    /// EVAL_RO / EVALSHA_RO, or `no-writes`.
    pub ro: bool,
    /// Script flags.
    pub flags: u32,
    /// The shared run state.
    pub run: Arc<RunFlags>,
}

/// A script in progress on this thread.
pub struct Running {
    /// The coroutine running the script (the script's function at the base of its stack).
    co: Thread,
    /// Values on the coroutine's stack for its next resume (FCALL's KEYS and ARGV at the
    /// first one).
    nargs: std::ffi::c_int,
    /// The script ended normally: its coroutine can run the next script.
    reusable: bool,
    /// The script ended with an error reply already counted in errorstats (a command's error
    /// or refusal raised by `redis.call`, or returned from `redis.pcall`): the caller must not
    /// count it again (Redis's `ERR_REPLY_FLAG_NO_STATS_UPDATE`).
    pub counted_error: bool,
}

/// What one step of a script did.
pub enum Step {
    /// Suspended by the hook: resume after letting the event loop run.
    Yield,
    /// Finished with this reply (success or error), converted for the caller's protocol.
    Done(Reply),
}

/// The raw state of a coroutine.
fn state_of(co: &Thread) -> *mut ffi::lua_State {
    co.to_pointer() as *mut ffi::lua_State
}

/// Pushes `items` on `l`'s stack as a Lua array of strings (KEYS, ARGV).
///
/// # Safety
/// `l` is a coroutine of this thread's interpreter that is not running, with room for two
/// more values.
unsafe fn push_array(l: *mut ffi::lua_State, items: &[Bytes]) {
    // SAFETY: per the function's contract; every push is popped by the `rawseti` after it.
    unsafe {
        ffi::lua_createtable(l, items.len().try_into().unwrap_or(i32::MAX), 0);
        for (i, b) in items.iter().enumerate() {
            ffi::lua_pushlstring(l, b.as_ptr() as *const std::ffi::c_char, b.len());
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
    }
}

/// Starts a run: the script's function on a coroutine (the last finished one, else a new
/// one) with the count hook installed, KEYS/ARGV set; run it with [`step`].
pub fn start(spec: RunSpec<'_>) -> Result<Running, Reply> {
    let (co, nargs) = with_vm(|vm| {
        let err = |e: mlua::Error| Reply::error(format!("ERR {}", lua_error_text(&e)));
        let f = if spec.function {
            sync_functions(vm).map_err(|e| Reply::error(format!("ERR {e}")))?;
            vm.funcs
                .raw_get::<Option<Function>>(&*spec.sha)
                .map_err(err)?
                .ok_or(Reply::err("ERR Function not found"))?
        } else {
            vm.script_fns
                .raw_get::<Option<Function>>(&*spec.sha)
                .map_err(err)?
                .ok_or_else(|| Reply::err(super::NOSCRIPT))?
        };
        let co = match vm.idle.take() {
            Some(co) => co,
            None => vm.lua.create_thread(f.clone()).map_err(err)?,
        };
        co.reset(f).map_err(err)?;
        let l = state_of(&co);
        install_hook(l);
        // SAFETY: `l` is a new or finished coroutine of this interpreter holding only the
        // script's function; the globals table has no metatable (`rawset` is what a script's
        // own `rawset(_G...)` would do, minus the read-only check).
        unsafe {
            if ffi::lua_checkstack(l, 4) == 0 {
                return Err(Reply::err("ERR Lua stack overflow"));
            }
            push_array(l, spec.keys);
            push_array(l, spec.args);
            if spec.function {
                return Ok((co, 2));
            }
            ffi::lua_pushlstring(l, c"ARGV".as_ptr(), 4);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
            ffi::lua_pushlstring(l, c"KEYS".as_ptr(), 4);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
        }
        Ok((co, 0))
    })?;
    let now = spec.run.started.unwrap_or_else(Instant::now);
    CTX.with(|c| {
        *c.borrow_mut() = Some(RunCtx {
            resp3: false,
            repl: 3,
            db: spec.db,
            ro: spec.ro,
            flags: spec.flags,
            run: spec.run,
            started: now,
            last_yield: now,
            wants_yield: false,
            name: spec.sha,
        })
    });
    Ok(Running { co, nargs, reusable: false, counted_error: false })
}

/// Runs the script until it yields or ends, its commands going through `host`.
/// `resp3_client`: the caller's protocol (for the reply of the script).
pub fn step(r: &mut Running, host: &mut dyn Host, resp3_client: bool) -> Step {
    convert::set_client_resp3(resp3_client);
    // SAFETY: the pointer is only dereferenced by `redis_call` while this function runs
    // (it is cleared before returning), and `host` outlives this call.
    let host: *mut (dyn Host + '_) = host;
    let host: *mut dyn Host = unsafe { std::mem::transmute::<*mut (dyn Host + '_), *mut dyn Host>(host) };
    HOST.with(|h| h.set(Some(host)));
    let l = state_of(&r.co);
    let nargs = std::mem::take(&mut r.nargs);
    // SAFETY: `l` is the run's coroutine, new (its function and arguments on its stack) or
    // suspended by a yield (its stack emptied), and not running: this is `coroutine.resume`.
    let status = unsafe { ffi::lua_resume_(l, nargs) };
    HOST.with(|h| h.set(None));
    let resp3 = ctx(|c| c.resp3).unwrap_or(false);
    match status {
        ffi::LUA_YIELD => {
            // SAFETY: drops the values yielded (none the script sees), as `coroutine.resume`
            // moves them off the coroutine.
            unsafe { ffi::lua_settop(l, 0) };
            Step::Yield
        }
        ffi::LUA_OK => {
            r.reusable = true;
            // SAFETY: the finished coroutine holds the script's results from index 1.
            let reply = match unsafe { plain_result(l, resp3) } {
                Some(reply) => reply,
                None => match with_vm(|vm| {
                    // SAFETY: as above; index 1 is a table.
                    unsafe { ffi::lua_pushvalue(l, 1) };
                    take_top(vm, l)
                }) {
                    Ok(v) => {
                        r.counted_error = convert::is_counted_error(&v);
                        convert::lua_to_reply(&v, resp3, 0)
                    }
                    Err(e) => e,
                },
            };
            // SAFETY: the results are not needed any more; an empty finished coroutine is
            // what `Thread::reset` takes for the next script.
            unsafe { ffi::lua_settop(l, 0) };
            Step::Done(reply)
        }
        _ => {
            let v = with_vm(|vm| {
                let err = take_top(vm, l)?;
                vm.errinfo
                    .call::<Value>((r.co.clone(), err))
                    .map_err(|e| Reply::error(format!("ERR {}", lua_error_text(&e))))
            });
            match v {
                Ok(v) => {
                    r.counted_error = convert::is_counted_error(&v);
                    Step::Done(convert::error_reply(&v, &script_name()))
                }
                Err(e) => Step::Done(e),
            }
        }
    }
}

/// The reply to a script's first result when it is not a table (no Lua value made for it),
/// with [`convert::lua_to_reply`]'s rules; `None` for a table.
///
/// # Safety
/// `l` is a finished coroutine whose stack holds the script's results.
unsafe fn plain_result(l: *mut ffi::lua_State, resp3: bool) -> Option<Reply> {
    // SAFETY: reads of index 1 of `l`'s stack, which exists when the top is not 0.
    unsafe {
        if ffi::lua_gettop(l) == 0 {
            return Some(Reply::Nil);
        }
        Some(match ffi::lua_type(l, 1) {
            ffi::LUA_TNUMBER => {
                let n = ffi::lua_tonumber(l, 1);
                Reply::Int(if n.is_nan() { i64::MIN } else { n as i64 })
            }
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, 1, &mut len);
                Reply::Bulk(Bytes::copy_from_slice(std::slice::from_raw_parts(p as *const u8, len)))
            }
            ffi::LUA_TBOOLEAN => match ffi::lua_toboolean(l, 1) != 0 {
                b if resp3 => Reply::Bool(b),
                true => Reply::Int(1),
                false => Reply::Nil,
            },
            ffi::LUA_TTABLE => return None,
            _ => Reply::Nil,
        })
    }
}

/// Pops the value on top of coroutine `l`'s stack as an mlua value (through the registry
/// slot, which is then cleared).
fn take_top(vm: &Vm, l: *mut ffi::lua_State) -> Result<Value, Reply> {
    let id = vm.slot.id() as ffi::lua_Integer;
    // SAFETY: `l` has a value on top; the slot is an existing registry entry, so setting it
    // allocates nothing.
    unsafe { ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, id) };
    let v = vm.lua.registry_value::<Value>(&vm.slot);
    // SAFETY: as above, with a value pushed for it.
    unsafe {
        ffi::lua_pushboolean(l, 0);
        ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, id);
    }
    v.map_err(|e| Reply::error(format!("ERR {}", lua_error_text(&e))))
}

fn script_name() -> String {
    ctx(|c| c.name.clone()).unwrap_or_default()
}

/// `redis.call` as a C function (so a script's `return redis.call(...)` keeps its frame for
/// error positions): raises the error table of a failed command, as Redis's
/// `luaRedisCallCommand`.
unsafe extern "C-unwind" fn raising_call(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: see `c_call`.
    unsafe { c_call(l, true) }
}

/// `redis.pcall`: returns the error table of a failed command.
unsafe extern "C-unwind" fn protected_call(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: see `c_call`.
    unsafe { c_call(l, false) }
}

thread_local! {
    /// The arguments of the `redis.call`/`pcall` being made (read off the Lua stack directly,
    /// so a call with thousands of arguments needs no Lua stack beyond its own).
    pub(super) static CALL_ARGS: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// The registry index of the Rust `redis_call` (which makes a call's outcome a Lua value).
    static RCALL: Cell<std::ffi::c_int> = const { Cell::new(0) };
}

/// Reads the call's arguments into `CALL_ARGS`, empties the stack and runs the command
/// (`redis_api::run_call`). A number, string or nil reply is pushed here directly; any other
/// outcome is made a Lua value by the Rust `redis_call` (from the registry), called with
/// (raise); its error table is raised when it says so, else returned.
unsafe fn c_call(l: *mut mlua::ffi::lua_State, raise: bool) -> std::ffi::c_int {
    use super::redis_api::{run_call, CallOut, PENDING};
    use mlua::ffi;
    // SAFETY: standard stack manipulation on the calling thread; the registry holds the
    // Rust function at `RCALL` since the interpreter was created. No Rust value that needs
    // dropping is alive when a Lua error unwinds (a reply pushed here is `ManuallyDrop`).
    unsafe {
        let n = ffi::lua_gettop(l);
        let ok = CALL_ARGS.with(|a| {
            let mut a = a.borrow_mut();
            a.clear();
            for i in 1..=n {
                match ffi::lua_type(l, i) {
                    ffi::LUA_TSTRING => {
                        let mut len = 0usize;
                        let p = ffi::lua_tolstring(l, i, &mut len);
                        a.push(Bytes::copy_from_slice(std::slice::from_raw_parts(p as *const u8, len)));
                    }
                    ffi::LUA_TNUMBER => {
                        let v = ffi::lua_tonumber(l, i);
                        a.push(Bytes::from(crate::protocol::reply::format_g(v, 17)));
                    }
                    _ => return false,
                }
            }
            true
        });
        ffi::lua_settop(l, 0);
        let out = std::mem::ManuallyDrop::new(run_call(ok));
        if let CallOut::Reply(reply, resp3) = &*out {
            // As `convert::reply_to_lua` makes them.
            let pushed = match reply {
                Reply::Int(v) => {
                    ffi::lua_pushnumber(l, *v as ffi::lua_Number);
                    true
                }
                Reply::Bulk(b) => {
                    ffi::lua_pushlstring(l, b.as_ptr() as *const std::ffi::c_char, b.len());
                    true
                }
                Reply::ShortBulk(b) => {
                    let b = b.as_slice();
                    ffi::lua_pushlstring(l, b.as_ptr() as *const std::ffi::c_char, b.len());
                    true
                }
                Reply::Nil | Reply::NilArray if *resp3 => {
                    ffi::lua_pushnil(l);
                    true
                }
                Reply::Nil | Reply::NilArray => {
                    ffi::lua_pushboolean(l, 0);
                    true
                }
                _ => false,
            };
            if pushed {
                drop(std::mem::ManuallyDrop::into_inner(out));
                return 1;
            }
        }
        PENDING.with(|p| *p.borrow_mut() = Some(std::mem::ManuallyDrop::into_inner(out)));
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, RCALL.with(|r| r.get()) as ffi::lua_Integer);
        ffi::lua_pushboolean(l, raise as std::ffi::c_int);
        ffi::lua_call(l, 1, 2);
        let failed = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_settop(l, -2);
        if failed {
            ffi::lua_error(l);
        }
        1
    }
}

/// Scripts between two steps of garbage collection, and the size of a step in KB (Redis's
/// `LUA_GC_CYCLE_PERIOD`: a 50 KB step every 50 scripts).
const GC_PERIOD: u32 = 50;

/// Ends the run on this thread (after its last step).
pub fn finish(r: Running) -> (usize, bool) {
    let out = CTX.with(|c| c.borrow_mut().take().map(|c| (c.db, c.run.wrote.load(Ordering::Acquire))));
    with_vm(|vm| {
        let l = state_of(&r.co);
        // SAFETY: the coroutine is not running; two pushes, each popped by `rawset`.
        unsafe {
            if ffi::lua_checkstack(l, 2) != 0 {
                for name in [c"KEYS", c"ARGV"] {
                    ffi::lua_pushlstring(l, name.as_ptr(), 4);
                    ffi::lua_pushnil(l);
                    ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
                }
            }
        }
        if r.reusable {
            vm.idle = Some(r.co);
        }
        vm.since_gc += 1;
        if vm.since_gc >= GC_PERIOD {
            vm.since_gc = 0;
            let _ = vm.lua.gc_step_kbytes(GC_PERIOD as std::ffi::c_int);
        }
        report_memory(&vm.lua);
        Ok(())
    })
    .ok();
    out.unwrap_or((0, false))
}

/// Publishes this thread's interpreter size into the node-wide total.
fn report_memory(lua: &Lua) {
    report_bytes(lua.used_memory());
}

/// SCRIPT FLUSH, on each shard: Redis frees its interpreter, so the scripts compiled before
/// leave `used_memory_lua` at once. This thread's interpreter goes (the next script here makes
/// a new one, and loads the function libraries into it again). One with a run in progress (a
/// debugging session waiting for its client) stays: the flush's generation empties its cache
/// at its next use, as before.
pub fn release_after_flush() {
    if CTX.with(|c| c.borrow().is_some()) {
        return;
    }
    let gone = VM.with(|v| v.try_borrow_mut().ok().and_then(|mut v| v.take()));
    if gone.is_some() {
        drop(gone);
        report_bytes(0);
    }
}

/// A script is running on this thread (its commands see this while they run).
pub fn in_script() -> bool {
    HOST.with(|h| h.get().is_some())
}

/// Where the debugger finds `redis.call` in the registry.
pub(super) const LDB_CALL: &std::ffi::CStr = c"__redis_ldb_call";
/// Where the debugger finds the scripts' environment in the registry.
pub(super) const LDB_ENV: &std::ffi::CStr = c"__redis_ldb_env";

/// The running script was killed (SCRIPT KILL).
pub(super) fn killed() -> bool {
    ctx(|c| c.run.killed.load(Ordering::Acquire)).unwrap_or(false)
}

/// The script's run time counts from now (after the debugger let it go on).
pub(super) fn restart_clock() {
    ctx(|c| {
        c.started = Instant::now();
        c.last_yield = c.started;
    });
}

/// True when the hook asked to yield at its last call (the runtime then lets others run).
pub fn timed_out() -> bool {
    ctx(|c| c.run.timed_out.load(Ordering::Relaxed)).unwrap_or(false)
}

// ---- functions -----------------------------------------------------------------------------

/// A function a library registered: (name, flags, description).
type Registered = (String, u32, Option<String>);

/// Runs a library's code (shebang line blanked) in `vm`, returning what it registered; with
/// `into`, each callback goes into that table under its name. (Callbacks stay on the Lua
/// side: each function value held in Rust takes one of the ~8000 slots of the binding's
/// reference stack, and a library may register more functions than that.)
fn run_library(vm: &Vm, code: &[u8], into: Option<&Table>) -> Result<Vec<Registered>, String> {
    let f = vm
        .lua
        .load(code)
        .set_name("@user_function")
        .set_environment(vm.fenv.clone())
        .into_function()
        .map_err(|e| format!("Error compiling function: {}", lua_error_text(&e)))?;
    let (list, err): (Value, Value) = vm.loadlib.call(f).map_err(|e| lua_error_text(&e))?;
    let Value::Table(list) = list else {
        let msg = match err {
            Value::Table(t) => match t.raw_get::<Value>("err") {
                Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                _ => "ERR unknown error".into(),
            },
            Value::String(s) => format!("ERR {}", String::from_utf8_lossy(&s.as_bytes())),
            other => format!("ERR {other:?}"),
        };
        return Err(format!("Error registering functions: {msg}"));
    };
    let mut out = Vec::new();
    for entry in list.sequence_values::<Table>() {
        let entry = entry.map_err(|e| lua_error_text(&e))?;
        let name: String = entry.raw_get("name").map_err(|e| lua_error_text(&e))?;
        if let Some(t) = into {
            let cb: Value = entry.raw_get("cb").map_err(|e| lua_error_text(&e))?;
            t.raw_set(name.as_str(), cb).map_err(|e| lua_error_text(&e))?;
        }
        let desc: Option<String> = entry.raw_get("desc").unwrap_or(None);
        let mut flags = 0;
        if let Ok(fl) = entry.raw_get::<Table>("flags") {
            for f in fl.sequence_values::<String>().flatten() {
                if let Some((bit, _)) = super::sflags::NAMES.iter().find(|(_, n)| *n == f) {
                    flags |= bit;
                }
            }
        }
        out.push((name, flags, desc));
    }
    Ok(out)
}

/// Loads a library's code in this thread's interpreter to learn what it registers (FUNCTION
/// LOAD validates here before the library joins the node-wide registry).
pub fn probe_library(code: &[u8]) -> Result<Vec<super::functions::FuncMeta>, Reply> {
    with_vm(|vm| {
        let regs = run_library(vm, code, None).map_err(|e| Reply::error(format!("ERR {e}")))?;
        Ok(regs.into_iter().map(|(name, flags, desc)| super::functions::FuncMeta { name, flags, desc }).collect())
    })
}

/// Brings this interpreter's functions up to the node-wide registry.
fn sync_functions(vm: &mut Vm) -> Result<(), String> {
    let (gen, libs) = super::functions::snapshot();
    if vm.fgen == gen {
        return Ok(());
    }
    vm.funcs = vm.lua.create_table().map_err(|e| lua_error_text(&e))?;
    for code in libs {
        run_library(vm, &code, Some(&vm.funcs))?;
    }
    vm.fgen = gen;
    Ok(())
}
