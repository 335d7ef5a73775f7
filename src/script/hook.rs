//! The interpreter's hooks: the count hook that lets a long script yield to its shard's event
//! loop (and stops a killed one), and FUNCTION LOAD's time limit.

use super::vm::ctx;
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

pub(super) fn install_hook(l: *mut mlua::ffi::lua_State) {
    if super::ldb::active() {
        super::ldb::install(l);
        return;
    }
    // SAFETY: `l` is a live coroutine of this thread's interpreter (the one a run is about to
    // start on); coroutines it creates inherit the hook.
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
pub(super) unsafe extern "C-unwind" fn set_load_hook(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
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
