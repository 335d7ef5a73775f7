local rust = ...
rust.c_pcall = pcall
local c_pcall = pcall
local error, type, select, unpack, tostring, setmetatable, rawget, rawset =
      error, type, select, unpack, tostring, setmetatable, rawget, rawset
local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local getinfo = debug.getinfo
local killed = rust.killed

local function pack(...) return {n = select('#', ...), ...} end
-- The redis.* functions written in Rust: their errors are error tables with the bare text, as
-- Redis's luaPushError makes them (a library's, cjson's, are placed at the script's line).
local bare = {[rust.acl_check_cmd] = true, [rust.setresp] = true, [rust.set_repl] = true, [rust.sha1hex] = true,
              [rust.log] = true}

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
  if type(f) == 'function' and getinfo(f, 'S').what == 'C' then
    -- A C function cannot be suspended anyway: Lua's own pcall, so that an error it raises
    -- by level (`pcall(error, 'x')`) carries no position, as in Redis.
    local r = pack(c_pcall(f, ...))
    if not r[1] then
      if killed() then error(r[2], 0) end
      if bare[f] and type(r[2]) == 'userdata' then r[2] = rust.errtable(rust.errtext(r[2])) end
      if handler then return false, handler(r[2]) end
    end
    return unpack(r, 1, r.n)
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

-- The error table of a script that raised `err` in coroutine `co` (driven from Rust): the
-- position is that of the innermost frame of the script's own code.
local function errinfo(co, err)
  local info, level = nil, 0
  local raiser = getinfo(co, 0, 'f')
  while true do
    info = getinfo(co, level, 'nSl')
    if not info then break end
    if info.what ~= 'C' and info.source ~= '=redis' then break end
    level = level + 1
  end
  if type(err) == 'userdata' then
    -- Raised by a function written in Rust (see `bare`).
    local text = rust.errtext(err)
    if info and not (raiser and bare[raiser.func]) then
      text = info.short_src .. ':' .. info.currentline .. ': ' .. text
    end
    err = rust.errtable(text)
  elseif type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if info then
    rawset(err, 'source', info.source)
    rawset(err, 'line', info.currentline)
  end
  return err
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
return errinfo, loadlib, ENV, FENV
