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

use super::{convert, Host, RunFlags};
use crate::protocol::Reply;
use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Thread, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment set-up, run once per interpreter. Frames of this chunk are skipped when an
/// error's script position is looked up.
const SETUP: &str = r#"
local rust = ...
rust.c_pcall = pcall
local error, type, select, unpack, tostring, setmetatable, rawget, rawset =
      error, type, select, unpack, tostring, setmetatable, rawget, rawset
local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local getinfo = debug.getinfo
local sethook, killed = rust.sethook, rust.killed

local function pack(...) return {n = select('#', ...), ...} end

-- pcall/xpcall as coroutines: the count hook may suspend code running inside them.
local function protected(f, handler, ...)
  if type(f) ~= 'function' then
    local mt = getmetatable(f)
    if not (mt and mt.__call) then
      local e = 'attempt to call a ' .. type(f) .. ' value'
      if handler then return false, handler(e) end
      return false, e
    end
  end
  local co = co_create(function(...) return f(...) end)
  local r = pack(co_resume(co, ...))
  while true do
    if not r[1] then
      -- A killed script cannot catch its own kill.
      if killed() then error(r[2], 0) end
      if handler then return false, handler(r[2]) end
      return false, r[2]
    end
    if co_status(co) == 'dead' then return unpack(r, 1, r.n) end
    r = pack(co_resume(co, co_yield(unpack(r, 2, r.n))))
  end
end
pcall = function(f, ...) return protected(f, nil, ...) end
xpcall = function(f, handler) return protected(f, handler) end

redis = {}
redis.call = rust.raising_call
redis.pcall = rust.protected_call
redis.sha1hex = rust.sha1hex
redis.error_reply = function(...)
  local msg = ...
  if select('#', ...) ~= 1 or type(msg) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if msg:sub(1, 1) ~= '-' then msg = '-' .. msg end
  return rust.errtable(msg)
end
redis.status_reply = function(...)
  local msg = ...
  if select('#', ...) ~= 1 or type(msg) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = msg}
end
redis.log = rust.log
redis.acl_check_cmd = rust.acl_check_cmd
redis.setresp = rust.setresp
redis.set_repl = rust.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = rust.breakpoint
redis.debug = rust.debug
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION_NUM = 0x07000f
redis.REDIS_VERSION = '7.0.15'
local loading = nil
local function regerr(msg) error({err = 'ERR ' .. msg}, 0) end
local known_flags = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
                     ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
local register_function = function(...)
  if not loading then regerr('redis.register_function can only be called on FUNCTION LOAD command') end
  local n = select('#', ...)
  local name, cb, flags, desc
  if n == 1 then
    local t = ...
    if type(t) ~= 'table' then
      regerr('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    for k, v in pairs(t) do
      if type(k) ~= 'string' then regerr('named argument key given to redis.register_function is not a string') end
      if k == 'function_name' then
        if type(v) ~= 'string' then regerr('function_name argument given to redis.register_function must be a string') end
        name = v
      elseif k == 'description' then
        if type(v) ~= 'string' then regerr('description argument given to redis.register_function must be a string') end
        desc = v
      elseif k == 'callback' then
        if type(v) ~= 'function' then regerr('callback argument given to redis.register_function must be a function') end
        cb = v
      elseif k == 'flags' then
        if type(v) ~= 'table' then regerr('flags argument to redis.register_function must be a table representing function flags') end
        for _, f in ipairs(v) do
          if not known_flags[f] then regerr('unknown flag given') end
        end
        flags = v
      else
        regerr('unknown argument given to redis.register_function')
      end
    end
    if not name then regerr('redis.register_function must get a function name argument') end
    if not cb then regerr('redis.register_function must get a callback argument') end
  elseif n == 2 then
    name, cb = ...
    if type(name) ~= 'string' then regerr('first argument to redis.register_function must be a string') end
    if type(cb) ~= 'function' then regerr('second argument to redis.register_function must be a function') end
  else
    regerr('wrong number of arguments to redis.register_function')
  end
  local fl = {}
  for _, f in ipairs(flags or {}) do fl[#fl + 1] = f end
  loading[#loading + 1] = {name = name, cb = cb, flags = fl, desc = desc}
end
local c_pcall = rust.c_pcall
-- Runs a library's code, returning the functions it registered, or nil and the error.
local function loadlib(f)
  loading = {}
  rust.loadhook(true)
  local ok, e = c_pcall(f)
  rust.loadhook(false)
  local r = loading
  loading = nil
  if not ok then return nil, e end
  return r
end
cjson = rust.cjson
bit = rust.bit
cmsgpack = rust.cmsgpack
struct = rust.struct

math.random = rust.random
math.randomseed = rust.randomseed

-- Runs a compiled script in a fresh coroutine with the count hook installed.
local function start(f, ...)
  local a = pack(...)
  local co = co_create(function() return f(unpack(a, 1, a.n)) end)
  sethook(co)
  return co
end

-- One step: ('yield'), ('done', value) or ('error', errtable).
local function step(co, ...)
  local r = pack(co_resume(co, ...))
  if r[1] then
    if co_status(co) == 'dead' then return 'done', r[2] end
    return 'yield'
  end
  local err, info, level = r[2], nil, 0
  while true do
    info = getinfo(co, level, 'nSl')
    if not info then break end
    if info.what ~= 'C' and info.source ~= '=redis' then break end
    level = level + 1
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if info then
    rawset(err, 'source', info.source)
    rawset(err, 'line', info.currentline)
  end
  return 'error', err
end

dofile, loadfile, print, debug = nil, nil, nil, nil
-- Only source text may be loaded (precompiled chunks can crash the interpreter).
local orig_loadstring = loadstring
loadstring = function(s, ...)
  if type(s) == 'string' and s:byte(1) == 27 then return nil, 'binary chunks are not allowed' end
  return orig_loadstring(s, ...)
end
local G = _G
-- Read-only views: scripts see the globals and the libraries through proxies that refuse
-- writes (Redis 7.0 makes these tables read-only).
local readonly = setmetatable({}, {__mode = 'k'})
local orig_setmetatable, orig_rawset = setmetatable, rawset
local function deny() error('Attempt to modify a readonly table', 2) end
local function ro(t, index)
  local mt = {__index = index or t, __newindex = deny}
  -- getmetatable() shows a read-only view of the metatable itself.
  local mtview = orig_setmetatable({}, {__index = mt, __newindex = deny, __metatable = false})
  readonly[mtview] = true
  mt.__metatable = mtview
  local p = orig_setmetatable({}, mt)
  readonly[p] = true
  return p
end
_G.setmetatable = function(t, mt)
  if readonly[t] then deny() end
  return orig_setmetatable(t, mt)
end
_G.rawset = function(t, k, v)
  if readonly[t] then deny() end
  return orig_rawset(t, k, v)
end
redis = ro(redis)
cjson = ro(cjson)
bit = ro(bit)
cmsgpack = ro(cmsgpack)
struct = ro(struct)
local ENV = ro(G, function(_, k)
  local v = rawget(G, k)
  if v == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end
  return v
end)
orig_rawset(G, '_G', ENV)
-- What library code sees while FUNCTION LOAD runs it: only redis.register_function,
-- redis.log and the constants; its functions see the whole environment when called.
local function strict(t)
  return ro(t, function(_, k)
    local v = rawget(t, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end)
end
local LIBAPI = {redis = strict({
  register_function = register_function, log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM, REDIS_VERSION = redis.REDIS_VERSION})}
local FENV = orig_setmetatable({}, {__index = function(_, k)
  local v
  if loading then v = LIBAPI[k] else v = rawget(G, k) end
  if v == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end
  return v
end, __newindex = deny, __metatable = false})
readonly[FENV] = true
return start, step, loadlib, ENV, FENV
"#;

/// A shard's interpreter.
struct Vm {
    lua: Lua,
    start: Function,
    step: Function,
    loadlib: Function,
    /// The read-only environment scripts run in.
    env: Table,
    /// The environment of function libraries (restricted while FUNCTION LOAD runs them).
    fenv: Table,
    /// Registered functions (name -> callback), for function registry generation `fgen`.
    funcs: HashMap<String, Function>,
    fgen: u64,
    /// Compiled scripts by SHA1, valid for SCRIPT FLUSH generation `gen`.
    scripts: HashMap<String, Function>,
    gen: usize,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// The host of the step being run (set only for the duration of a step).
    static HOST: Cell<Option<*mut dyn Host>> = const { Cell::new(None) };
    /// The state of the script being run on this thread.
    static CTX: RefCell<Option<RunCtx>> = const { RefCell::new(None) };
    /// `math.random`'s state, seeded randomly per thread.
    static RNG: Cell<u64> = Cell::new(fastrand::u64(..));
}

/// The per-run state the Lua callbacks read.
struct RunCtx {
    resp3: bool,
    /// `redis.set_repl` flags (REPL_AOF 1 | REPL_REPLICA 2): which consumers of the change
    /// stream take the commands run from now on.
    repl: i64,
    db: usize,
    ro: bool,
    flags: u32,
    run: Arc<RunFlags>,
    started: Instant,
    last_yield: Instant,
    /// The hook asked for a yield at its last call.
    wants_yield: bool,
    /// Name in error messages (the SHA1 for EVAL).
    name: String,
}

fn ctx<R>(f: impl FnOnce(&mut RunCtx) -> R) -> Option<R> {
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
    lua.set_named_registry_value("__redis_rcall", call.clone())?;
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
        "sethook",
        lua.create_function(|_, co: Thread| {
            install_hook(co.to_pointer() as *mut mlua::ffi::lua_State);
            Ok(())
        })?,
    )?;
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
    let (start, step, loadlib, env, fenv): (Function, Function, Function, Table, Table) =
        lua.load(SETUP).set_name("=redis").call(rust)?;
    lua.set_named_registry_value(LDB_ENV.to_str().unwrap_or_default(), env.clone())?;
    Ok(Vm {
        lua,
        start,
        step,
        loadlib,
        env,
        fenv,
        funcs: HashMap::new(),
        fgen: u64::MAX,
        scripts: HashMap::new(),
        gen: super::flush_gen(),
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
            vm.gen = super::flush_gen();
        }
        f(vm)
    })
}

/// Compiles a script body into this thread's interpreter (if not already), returning its
/// SHA1 and flags; errors as Redis words them.
pub fn compile(body: &[u8]) -> Result<(String, u32), Reply> {
    compile_known(body, &super::sha1hex(body))
}

/// [`compile`] of a body whose SHA1 is known (EVALSHA, or EVAL after the cache computed it).
pub fn compile_known(body: &[u8], sha: &str) -> Result<(String, u32), Reply> {
    let (flags, skip) = super::shebang(body).map_err(|e| Reply::error(format!("ERR {e}")))?;
    let sha = sha.to_string();
    with_vm(|vm| {
        if !vm.scripts.contains_key(&sha) {
            let f = vm
                .lua
                .load(&body[skip..])
                .set_name("@user_script")
                .set_environment(vm.env.clone())
                .into_function()
                .map_err(|e| {
                    Reply::error(format!("ERR Error compiling script (new function): {}", lua_error_text(&e)))
                })?;
            vm.scripts.insert(sha.clone(), f);
            report_memory(&vm.lua);
        }
        Ok((sha, flags))
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

/// How a script run is configured.
pub struct RunSpec {
    /// SHA1 of the compiled script (see [`compile`]), or the function's name for FCALL.
    pub sha: String,
    /// FCALL: `sha` names a registered function, called with (KEYS, ARGV).
    pub function: bool,
    /// KEYS.
    pub keys: Vec<Bytes>,
    /// ARGV.
    pub args: Vec<Bytes>,
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
    co: Thread,
    first: bool,
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

/// Starts a run (KEYS/ARGV set, the coroutine created); run it with [`step`].
pub fn start(spec: RunSpec) -> Result<Running, Reply> {
    let co = with_vm(|vm| {
        if spec.function {
            sync_functions(vm).map_err(|e| Reply::error(format!("ERR {e}")))?;
        }
        let g = vm.lua.globals();
        let mk = |v: &[Bytes]| -> mlua::Result<Table> {
            let t = vm.lua.create_table_with_capacity(v.len(), 0)?;
            for (i, b) in v.iter().enumerate() {
                t.raw_set(i + 1, vm.lua.create_string(b)?)?;
            }
            Ok(t)
        };
        let err = |e: mlua::Error| Reply::error(format!("ERR {}", lua_error_text(&e)));
        if spec.function {
            let f = vm.funcs.get(&spec.sha).cloned().ok_or(Reply::err("ERR Function not found"))?;
            return vm
                .start
                .call::<Thread>((f, mk(&spec.keys).map_err(err)?, mk(&spec.args).map_err(err)?))
                .map_err(err);
        }
        let f = vm.scripts.get(&spec.sha).cloned().ok_or_else(|| Reply::err(super::NOSCRIPT))?;
        g.raw_set("KEYS", mk(&spec.keys).map_err(err)?).map_err(err)?;
        g.raw_set("ARGV", mk(&spec.args).map_err(err)?).map_err(err)?;
        vm.start.call::<Thread>(f).map_err(err)
    })?;
    let now = Instant::now();
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
            name: spec.sha.clone(),
        })
    });
    Ok(Running { co, first: true, counted_error: false })
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
    let _ = r.first;
    r.first = false;
    let res = with_vm(|vm| {
        vm.step
            .call::<(mlua::String, Value)>(r.co.clone())
            .map_err(|e| Reply::error(format!("ERR {}", lua_error_text(&e))))
    });
    HOST.with(|h| h.set(None));
    let (what, v) = match res {
        Ok(x) => x,
        Err(e) => return Step::Done(e),
    };
    let resp3 = ctx(|c| c.resp3).unwrap_or(false);
    let what = what.as_bytes();
    if &*what == b"yield" {
        return Step::Yield;
    }
    r.counted_error = convert::is_counted_error(&v);
    match &*what {
        b"done" => Step::Done(convert::lua_to_reply(&v, resp3, 0)),
        _ => Step::Done(convert::error_reply(&v, &script_name())),
    }
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
    static CALL_ARGS: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// Reads the call's arguments into `CALL_ARGS`, empties the stack and calls the Rust
/// `redis_call` (from the registry) with (raise, arguments ok); raises its error table when
/// it says so, else returns its value.
unsafe fn c_call(l: *mut mlua::ffi::lua_State, raise: bool) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: standard stack manipulation on the calling thread; the registry holds the
    // Rust function under this name since the interpreter was created. No Rust value that
    // needs dropping is alive when `lua_error` unwinds.
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
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"__redis_rcall".as_ptr());
        ffi::lua_pushboolean(l, raise as std::ffi::c_int);
        ffi::lua_pushboolean(l, ok as std::ffi::c_int);
        ffi::lua_call(l, 2, 2);
        let failed = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_settop(l, -2);
        if failed {
            ffi::lua_error(l);
        }
        1
    }
}

/// Ends the run on this thread (after its last step).
pub fn finish(_r: Running) -> (usize, bool) {
    let out = CTX.with(|c| c.borrow_mut().take().map(|c| (c.db, c.run.wrote.load(Ordering::Acquire))));
    with_vm(|vm| {
        let _ = vm.lua.globals().raw_set("KEYS", Value::Nil);
        let _ = vm.lua.globals().raw_set("ARGV", Value::Nil);
        // A step of garbage collection per script: it keeps the interpreter small (Redis's
        // suite expects under 100 KB after 10000 scripts), at a CPU cost per EVALSHA (see
        // bench/RESULTS.md).
        let _ = vm.lua.gc_step_kbytes(10);
        report_memory(&vm.lua);
        Ok(())
    })
    .ok();
    out.unwrap_or((0, false))
}

/// Bytes held by every shard's interpreter, each as it last reported (INFO memory).
static LUA_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// What this thread's interpreter last added to [`LUA_BYTES`].
    static REPORTED: Cell<usize> = const { Cell::new(0) };
}

/// Publishes this thread's interpreter size into the node-wide total.
fn report_memory(lua: &Lua) {
    let now = lua.used_memory();
    let old = REPORTED.with(|r| r.replace(now));
    if now >= old {
        LUA_BYTES.fetch_add(now - old, Ordering::Relaxed);
    } else {
        LUA_BYTES.fetch_sub(old - now, Ordering::Relaxed);
    }
}

/// Memory of the Lua interpreters of all shards (`used_memory_lua`), as of their last run.
pub fn used_memory() -> usize {
    LUA_BYTES.load(Ordering::Relaxed)
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

/// `redis.call` / `redis.pcall`: (raise, arguments ok) -> (value, failed); the command is in
/// `CALL_ARGS`.
fn redis_call(lua: &Lua, (raise, ok): (bool, bool)) -> mlua::Result<(Value, bool)> {
    let fail = |lua: &Lua, text: &str| -> mlua::Result<(Value, bool)> {
        if super::ldb::logging() {
            super::ldb::log(format!("<error> {text}").into_bytes());
        }
        Ok((Value::Table(convert::error_table(lua, text.as_bytes())?), raise))
    };
    if !ok {
        return fail(lua, "Lua redis lib command arguments must be strings or integers");
    }
    let argv = CALL_ARGS.with(|a| std::mem::take(&mut *a.borrow_mut()));
    if argv.is_empty() {
        return fail(lua, "Please specify at least one argument for this redis lib call");
    }
    if super::ldb::logging() {
        super::ldb::log_command(&argv);
    }
    let Some(host) = HOST.with(|h| h.get()) else {
        return fail(lua, "redis.call/pcall can only be called inside a script invocation");
    };
    let Some(mut db) = ctx(|c| c.db) else {
        return fail(lua, "redis.call/pcall can only be called inside a script invocation");
    };
    // SAFETY: set by `step` for the duration of the resume that is calling us.
    let host = unsafe { &mut *host };
    // A command refused before it runs (Redis's `scriptCall` errors): counted in errorstats
    // and as the command's rejected call now, so the script's error is not counted again.
    let mut refuse = |lua: &Lua, name: Option<&'static str>, text: &str| -> mlua::Result<(Value, bool)> {
        host.rejected(name, text);
        if super::ldb::logging() {
            super::ldb::log(format!("<error> {text}").into_bytes());
        }
        Ok((Value::Table(convert::counted_error_table(lua, text.as_bytes())?), raise))
    };
    let spec = crate::cmd::lookup(&argv[0]);
    if let Some(e) = blocking_refusal(&argv) {
        return refuse(lua, spec.map(|s| s.name), &e);
    }
    // Checks of the script's own rules before the command runs.
    if let Some(spec) = spec {
        let mut fail = |lua: &Lua, text: &str| refuse(lua, Some(spec.name), text);
        use crate::cmd::flags;
        let (ro, flags_, run) = ctx(|c| (c.ro, c.flags, c.run.clone())).unwrap_or((false, 0, Default::default()));
        let _ = flags_;
        let writes = spec.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE);
        if spec.has(flags::NOSCRIPT) && spec.arity_ok(argv.len()) && !super::deny_disabled() {
            return fail(lua, "This Redis command is not allowed from script");
        }
        if ro && writes && spec.arity_ok(argv.len()) {
            return fail(lua, "Write commands are not allowed from read-only scripts.");
        }
        if !run.from_master && spec.arity_ok(argv.len()) {
            use crate::replication::role;
            if role::stale() && !spec.has(flags::STALE) {
                return fail(lua, "Can not execute the command on a stale replica");
            }
            if role::read_only_replica() && spec.has(flags::WRITE) && !run.wrote.load(Ordering::Acquire) {
                return fail(lua, "-READONLY You can't write against a read only replica.");
            }
        }
        // The node's state may refuse a first write (Redis's `scriptVerifyWriteCommandAllow`):
        // a failed background save or AOF write, then min-replicas-to-write not met.
        if spec.has(flags::WRITE) && spec.arity_ok(argv.len()) && !run.wrote.load(Ordering::Acquire) {
            if crate::cmd::bgsave::writes_denied() {
                return fail(lua, &format!("-{}", crate::cmd::bgsave::MISCONF));
            }
            if let Some(m) = crate::aof::sync::misconf() {
                return fail(lua, &format!("-{m}"));
            }
            if crate::replication::master::writes_refused() {
                return fail(lua, &format!("-{}", crate::replication::master::NOREPLICAS));
            }
        }
        // maxmemory: a script that started over the ceiling may not make its first write.
        if spec.has(flags::DENYOOM)
            && flags_ & super::sflags::ALLOW_OOM == 0
            && !run.wrote.load(Ordering::Acquire)
            && crate::memory::evict::pre_command_oom()
        {
            return fail(lua, &format!("-{}", crate::memory::OOM));
        }
        if spec.has(flags::WRITE) && spec.arity_ok(argv.len()) {
            run.wrote.store(true, Ordering::Release);
        }
    }
    // A script busy in commands (few Lua instructions between them) is timed out here too.
    ctx(|c| {
        if c.started.elapsed() >= Duration::from_millis(super::busy_threshold_ms()) {
            super::run_timed_out(&c.run);
        }
    });
    let resp3 = ctx(|c| c.resp3).unwrap_or(false);
    let repl = ctx(|c| (c.repl & 3) as u8).unwrap_or(3);
    let result = host.call(&mut db, &argv, resp3, repl);
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
            let failed = reply.is_error() && raise;
            Ok((convert::reply_to_lua(lua, &reply, resp3)?, failed))
        }
        // The host counted its refusal.
        Err(text) => {
            if super::ldb::logging() {
                super::ldb::log(format!("<error> {text}").into_bytes());
            }
            Ok((Value::Table(convert::counted_error_table(lua, text.as_bytes())?), raise))
        }
    }
}

/// `redis.acl_check_cmd(command, args...)`: may the caller's user run it?
fn acl_check_cmd(_: &Lua, args: MultiValue) -> mlua::Result<bool> {
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
fn redis_log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
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
fn redis_random(_: &Lua, args: MultiValue) -> mlua::Result<f64> {
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

// ---- the count hook ---------------------------------------------------------------------

/// The head of Lua 5.1.5's `lua_State` (lstate.h), up to the C-call counters the hook reads to
/// know whether a yield is allowed (`lua_yield`'s own test).
#[repr(C)]
struct StateHead {
    next: *mut std::ffi::c_void,
    tt: u8,
    marked: u8,
    status: u8,
    top: *mut std::ffi::c_void,
    base: *mut std::ffi::c_void,
    l_g: *mut std::ffi::c_void,
    ci: *mut std::ffi::c_void,
    savedpc: *mut std::ffi::c_void,
    stack_last: *mut std::ffi::c_void,
    stack: *mut std::ffi::c_void,
    end_ci: *mut std::ffi::c_void,
    base_ci: *mut std::ffi::c_void,
    stacksize: std::ffi::c_int,
    size_ci: std::ffi::c_int,
    n_ccalls: u16,
    base_ccalls: u16,
}

/// Instructions between two runs of the count hook: finer than Redis's 100000, since a busy
/// script here must also give its shard's other clients a turn soon after the threshold.
const HOOK_EVERY: std::ffi::c_int = 1_000;
/// Once timed out, the script gives the event loop a turn this often.
const YIELD_EVERY: Duration = Duration::from_millis(10);

fn install_hook(l: *mut mlua::ffi::lua_State) {
    if super::ldb::active() {
        super::ldb::install(l);
        return;
    }
    // SAFETY: `l` is a live coroutine of this thread's interpreter (just created by the
    // set-up chunk); coroutines it creates inherit the hook.
    unsafe { mlua::ffi::lua_sethook(l, Some(hook), mlua::ffi::LUA_MASKCOUNT, HOOK_EVERY) };
}

enum HookAct {
    Continue,
    Yield,
    Kill,
}

unsafe extern "C-unwind" fn hook(l: *mut mlua::ffi::lua_State, _ar: *mut mlua::ffi::lua_Debug) {
    let act = ctx(|c| {
        if c.run.killed.load(Ordering::Acquire) {
            return HookAct::Kill;
        }
        let now = Instant::now();
        if now.duration_since(c.started) >= Duration::from_millis(super::busy_threshold_ms()) {
            super::run_timed_out(&c.run);
            if now.duration_since(c.last_yield) >= YIELD_EVERY {
                c.last_yield = now;
                c.wants_yield = true;
                return HookAct::Yield;
            }
        }
        HookAct::Continue
    })
    .unwrap_or(HookAct::Continue);
    match act {
        HookAct::Continue => {}
        HookAct::Yield => {
            // SAFETY: `l` is the running coroutine; its head matches Lua 5.1.5's layout.
            let head = unsafe { &*(l as *const StateHead) };
            if head.n_ccalls <= head.base_ccalls {
                // SAFETY: a count hook may yield in Lua 5.1 when no C call is in between.
                unsafe { mlua::ffi::lua_yield(l, 0) };
            }
        }
        HookAct::Kill => {
            // SAFETY: raising from a hook is how Redis stops a killed script; from now on the
            // hook fires at every instruction so a `pcall` cannot swallow the kill for long.
            unsafe {
                mlua::ffi::lua_sethook(l, Some(hook), mlua::ffi::LUA_MASKCOUNT, 1);
                mlua::ffi::lua_pushstring(l, c"Script killed by user with SCRIPT KILL...".as_ptr());
                mlua::ffi::lua_error(l);
            }
        }
    }
}

/// FUNCTION LOAD's time limit for running a library's code.
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

thread_local! {
    static LOAD_START: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// `rust.loadhook(on)`: installs (or removes) the FUNCTION LOAD timeout hook on the running
/// thread; coroutines the library creates inherit it.
unsafe extern "C-unwind" fn set_load_hook(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: `l` is the calling thread; reading argument 1 and setting its hook.
    unsafe {
        if mlua::ffi::lua_toboolean(l, 1) != 0 {
            LOAD_START.with(|s| s.set(Some(Instant::now())));
            mlua::ffi::lua_sethook(l, Some(load_hook), mlua::ffi::LUA_MASKCOUNT, HOOK_EVERY);
        } else {
            LOAD_START.with(|s| s.set(None));
            mlua::ffi::lua_sethook(l, None, 0, 0);
        }
    }
    0
}

unsafe extern "C-unwind" fn load_hook(l: *mut mlua::ffi::lua_State, ar: *mut mlua::ffi::lua_Debug) {
    let late = LOAD_START.with(|s| s.get()).is_some_and(|t| t.elapsed() > LOAD_TIMEOUT);
    // SAFETY: `ar` is the hook's activation record; "S" fills its source.
    let ours = unsafe {
        mlua::ffi::lua_getinfo(l, c"S".as_ptr(), ar);
        let src = (*ar).source;
        !src.is_null() && std::ffi::CStr::from_ptr(src).to_bytes() == b"=redis"
    };
    if late && !ours {
        // SAFETY: raising from a hook stops the library's code, as Redis does; the hook now
        // fires at every line so a `pcall` cannot swallow the timeout for long.
        unsafe {
            mlua::ffi::lua_sethook(l, Some(load_hook), mlua::ffi::LUA_MASKLINE, 0);
            mlua::ffi::lua_pushstring(l, c"FUNCTION LOAD timeout".as_ptr());
            mlua::ffi::lua_error(l);
        }
    }
}

// ---- functions -----------------------------------------------------------------------------

/// A function a library registered: (name, callback, flags, description).
type Registered = (String, Function, u32, Option<String>);

/// Runs a library's code (shebang line blanked) in `vm`, returning what it registered.
fn run_library(vm: &Vm, code: &[u8]) -> Result<Vec<Registered>, String> {
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
        let cb: Function = entry.raw_get("cb").map_err(|e| lua_error_text(&e))?;
        let desc: Option<String> = entry.raw_get("desc").unwrap_or(None);
        let mut flags = 0;
        if let Ok(fl) = entry.raw_get::<Table>("flags") {
            for f in fl.sequence_values::<String>().flatten() {
                if let Some((bit, _)) = super::sflags::NAMES.iter().find(|(_, n)| *n == f) {
                    flags |= bit;
                }
            }
        }
        out.push((name, cb, flags, desc));
    }
    Ok(out)
}

/// Loads a library's code in this thread's interpreter to learn what it registers (FUNCTION
/// LOAD validates here before the library joins the node-wide registry).
pub fn probe_library(code: &[u8]) -> Result<Vec<super::functions::FuncMeta>, Reply> {
    with_vm(|vm| {
        let regs = run_library(vm, code).map_err(|e| Reply::error(format!("ERR {e}")))?;
        Ok(regs.into_iter().map(|(name, _, flags, desc)| super::functions::FuncMeta { name, flags, desc }).collect())
    })
}

/// Brings this interpreter's functions up to the node-wide registry.
fn sync_functions(vm: &mut Vm) -> Result<(), String> {
    let (gen, libs) = super::functions::snapshot();
    if vm.fgen == gen {
        return Ok(());
    }
    vm.funcs.clear();
    for code in libs {
        for (name, cb, _, _) in run_library(vm, &code)? {
            vm.funcs.insert(name, cb);
        }
    }
    vm.fgen = gen;
    Ok(())
}
