//! The `cmsgpack` library Redis gives scripts (lua-cmsgpack 0.4 behaviour), written as Lua C
//! functions: `pack(...)`, `unpack(s)`, `unpack_one(s [, offset])`,
//! `unpack_limit(s, limit [, offset])`.
//!
//! Encoding rules (what makes the bytes match Redis's): a table whose keys are exactly the
//! integers 1..N is an array, any other table a map (in `next` order); tables nested deeper
//! than 16 levels become nil (so circular references terminate); a number that is an exact
//! 64-bit integer takes the smallest integer form, any other number a float32 when it
//! round-trips through one, else a float64; strings use the str8/16/32 forms; anything that
//! is not a string, boolean, number or table is nil. Decoding gives numbers for every integer
//! form (Lua 5.1 has only doubles) and tables for arrays (1-based) and maps.
//!
//! Invariant of the C functions here: no Rust value that owns memory is alive when an error
//! is raised (`lua_error` unwinds with a long jump): the work is done by inner functions that
//! return `Result`, and the outer function raises after dropping everything.

use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// Tables deeper than this are packed as nil.
const MAX_NESTING: u32 = 16;

/// Builds the `cmsgpack` table.
pub fn table(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    // SAFETY: the functions follow the Lua C API protocol (see the module invariant).
    unsafe {
        t.set("pack", lua.create_c_function(pack)?)?;
        t.set("unpack", lua.create_c_function(unpack)?)?;
        t.set("unpack_one", lua.create_c_function(unpack_one)?)?;
        t.set("unpack_limit", lua.create_c_function(unpack_limit)?)?;
    }
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// Raises `msg` as a Lua error string prefixed with the caller's position (`luaL_error`'s
/// form), after `msg` is dropped.
///
/// # Safety
/// `l` is the running thread; see the module invariant.
pub(crate) unsafe fn raise(l: *mut lua_State, msg: String) -> c_int {
    // SAFETY: pushing the position and a copy of the message, then raising them.
    unsafe {
        ffi::luaL_where(l, 1);
        ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        drop(msg);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

/// Pushes bytes as a Lua string.
unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: `b` is valid for its length.
    unsafe {
        ffi::lua_pushlstring(l, b.as_ptr() as *const _, b.len());
    }
}

// ---- encoding ------------------------------------------------------------------------------

fn put_len(out: &mut Vec<u8>, n: usize, fix: u8, fixmax: usize, small: Option<u8>, mid: u8, big: u8) {
    if n <= fixmax {
        out.push(fix | n as u8);
    } else if let Some(tag) = small.filter(|_| n <= 0xff) {
        out.extend_from_slice(&[tag, n as u8]);
    } else if n <= 0xffff {
        out.push(mid);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(big);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_number(out: &mut Vec<u8>, n: f64) {
    // An exact 64-bit integer (the range test keeps the cast exact).
    if n.is_finite() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) && (n as i64) as f64 == n {
        return put_int(out, n as i64);
    }
    let f = n as f32;
    if f as f64 == n || (n.is_nan() && f.is_nan()) {
        out.push(0xca);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_bits().to_be_bytes());
    }
}

/// True when the table at the top has exactly the keys 1..N.
unsafe fn is_array(l: *mut lua_State) -> bool {
    // SAFETY: iterating the table at -1 with `lua_next`; the stack is restored.
    unsafe {
        let top = ffi::lua_gettop(l);
        let (mut count, mut max) = (0i64, 0i64);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            ffi::lua_settop(l, -2);
            let n = ffi::lua_tonumber(l, -1);
            let int_like = n.is_finite() && (n as i32) as f64 == n;
            if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER || n <= 0.0 || !int_like {
                ffi::lua_settop(l, top);
                return false;
            }
            max = max.max(n as i64);
            count += 1;
        }
        ffi::lua_settop(l, top);
        max == count
    }
}

/// Encodes the value at the top of the stack and pops it.
unsafe fn encode_top(l: *mut lua_State, out: &mut Vec<u8>, level: u32) -> Result<(), String> {
    // SAFETY: reading the value at -1; tables are walked with raw accesses only.
    unsafe {
        let mut t = ffi::lua_type(l, -1);
        if t == ffi::LUA_TTABLE && level == MAX_NESTING {
            t = ffi::LUA_TNIL;
        }
        match t {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, -1, &mut len);
                put_len(out, len, 0xa0, 31, Some(0xd9), 0xda, 0xdb);
                out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
            }
            ffi::LUA_TBOOLEAN => out.push(if ffi::lua_toboolean(l, -1) != 0 { 0xc3 } else { 0xc2 }),
            ffi::LUA_TNUMBER => put_number(out, ffi::lua_tonumber(l, -1)),
            ffi::LUA_TTABLE => {
                if ffi::lua_checkstack(l, 3) == 0 {
                    return Err("stack overflow (in function mp_encode_lua_table)".into());
                }
                if is_array(l) {
                    let len = ffi::lua_objlen(l, -1);
                    put_len(out, len, 0x90, 15, None, 0xdc, 0xdd);
                    for j in 1..=len {
                        ffi::lua_rawgeti(l, -1, j as _);
                        encode_top(l, out, level + 1)?;
                    }
                } else {
                    let mut n = 0usize;
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, -2) != 0 {
                        ffi::lua_settop(l, -2);
                        n += 1;
                    }
                    put_len(out, n, 0x80, 15, None, 0xde, 0xdf);
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, -2) != 0 {
                        ffi::lua_pushvalue(l, -2);
                        encode_top(l, out, level + 1)?;
                        encode_top(l, out, level + 1)?;
                    }
                }
            }
            _ => out.push(0xc0),
        }
        ffi::lua_settop(l, -2);
        Ok(())
    }
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    // SAFETY: arguments are read in place; the result is pushed once.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n == 0 {
            return raise(l, "bad argument #0 to 'pack' (MessagePack pack needs input.)".into());
        }
        let mut out = Vec::new();
        let mut res = Ok(());
        for i in 1..=n {
            if ffi::lua_checkstack(l, 1) == 0 {
                res = Err("stack overflow (in function mp_check)".to_string());
                break;
            }
            ffi::lua_pushvalue(l, i);
            res = encode_top(l, &mut out, 0);
            if res.is_err() {
                break;
            }
        }
        match res {
            Ok(()) => {
                push_bytes(l, &out);
                drop(out);
                1
            }
            Err(e) => {
                drop(out);
                raise(l, e)
            }
        }
    }
}

// ---- decoding ------------------------------------------------------------------------------

enum DecErr {
    /// Input ends inside a value.
    Eof,
    /// A byte that starts no known type.
    BadFormat,
    /// The Lua stack cannot take more values.
    Stack,
}

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cursor<'_> {
    fn need(&self, n: usize) -> Result<&[u8], DecErr> {
        self.b.get(self.p..self.p.checked_add(n).ok_or(DecErr::Eof)?).ok_or(DecErr::Eof)
    }
    fn be(&self, at: usize, n: usize) -> Result<u64, DecErr> {
        let s = self.need(at + n)?;
        Ok(s[at..].iter().fold(0u64, |a, &x| (a << 8) | x as u64))
    }
}

/// Decodes one value and pushes it.
unsafe fn decode_one(l: *mut lua_State, c: &mut Cursor<'_>) -> Result<(), DecErr> {
    // SAFETY: pushes exactly one value on success; on error the stack may hold partial values
    // (the caller raises).
    unsafe {
        let tag = *c.need(1)?.first().ok_or(DecErr::Eof)?;
        if ffi::lua_checkstack(l, 1) == 0 {
            return Err(DecErr::Stack);
        }
        let num = |l, v: f64| ffi::lua_pushnumber(l, v);
        match tag {
            0xcc..=0xcf => {
                let n = 1usize << (tag - 0xcc);
                let v = c.be(1, n)?;
                num(l, v as i64 as f64);
                c.p += 1 + n;
            }
            0xd0..=0xd3 => {
                let n = 1usize << (tag - 0xd0);
                let v = c.be(1, n)?;
                let shift = 64 - 8 * n as u32;
                num(l, (((v << shift) as i64) >> shift) as f64);
                c.p += 1 + n;
            }
            0xc0 => {
                ffi::lua_pushnil(l);
                c.p += 1;
            }
            0xc2 | 0xc3 => {
                ffi::lua_pushboolean(l, (tag == 0xc3) as c_int);
                c.p += 1;
            }
            0xca => {
                let v = c.be(1, 4)?;
                num(l, f32::from_bits(v as u32) as f64);
                c.p += 5;
            }
            0xcb => {
                let v = c.be(1, 8)?;
                num(l, f64::from_bits(v));
                c.p += 9;
            }
            0xd9..=0xdb => {
                let h = 1usize << (tag - 0xd9);
                let len = c.be(1, h)? as usize;
                let s = c.need(1 + h + len)?;
                push_bytes(l, &s[1 + h..]);
                c.p += 1 + h + len;
            }
            0xdc | 0xdd => {
                let h = if tag == 0xdc { 2 } else { 4 };
                let len = c.be(1, h)? as usize;
                c.p += 1 + h;
                decode_array(l, c, len)?;
            }
            0xde | 0xdf => {
                let h = if tag == 0xde { 2 } else { 4 };
                let len = c.be(1, h)? as usize;
                c.p += 1 + h;
                decode_map(l, c, len)?;
            }
            t if t & 0x80 == 0 => {
                num(l, t as f64);
                c.p += 1;
            }
            t if t & 0xe0 == 0xe0 => {
                num(l, t as i8 as f64);
                c.p += 1;
            }
            t if t & 0xe0 == 0xa0 => {
                let len = (t & 0x1f) as usize;
                let s = c.need(1 + len)?;
                push_bytes(l, &s[1..]);
                c.p += 1 + len;
            }
            t if t & 0xf0 == 0x90 => {
                c.p += 1;
                decode_array(l, c, (t & 0xf) as usize)?;
            }
            t if t & 0xf0 == 0x80 => {
                c.p += 1;
                decode_map(l, c, (t & 0xf) as usize)?;
            }
            _ => return Err(DecErr::BadFormat),
        }
        Ok(())
    }
}

unsafe fn decode_array(l: *mut lua_State, c: &mut Cursor<'_>, len: usize) -> Result<(), DecErr> {
    // SAFETY: a new table at the top, filled with 1..len.
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        for i in 1..=len {
            decode_one(l, c)?;
            ffi::lua_rawseti(l, -2, i as _);
        }
        Ok(())
    }
}

unsafe fn decode_map(l: *mut lua_State, c: &mut Cursor<'_>, len: usize) -> Result<(), DecErr> {
    // SAFETY: a new table at the top, filled with key/value pairs (a nil key is skipped, as
    // setting it would raise).
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        for _ in 0..len {
            decode_one(l, c)?;
            decode_one(l, c)?;
            if ffi::lua_type(l, -2) == ffi::LUA_TNIL
                || (ffi::lua_type(l, -2) == ffi::LUA_TNUMBER && ffi::lua_tonumber(l, -2).is_nan())
            {
                ffi::lua_settop(l, -3);
                continue;
            }
            ffi::lua_rawset(l, -3);
        }
        Ok(())
    }
}

/// Decodes up to `limit` values (0 with offset 0: all) from the string at index 1 starting at
/// `offset`; with a limit, the next offset (-1 at the end) is returned first.
unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> c_int {
    // SAFETY: the input string stays on the stack (index 1) while it is read.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        let all = limit == 0 && offset == 0;
        if offset < 0 || limit < 0 {
            return raise(l, format!("Invalid request to unpack with offset of {offset} and limit of {len}."));
        }
        if offset as usize > len {
            return raise(l, format!("Start offset {offset} greater than input length {len}."));
        }
        let limit = if all { i32::MAX as i64 } else { limit };
        let input = std::slice::from_raw_parts(p as *const u8, len);
        let mut c = Cursor { b: input, p: offset as usize };
        let mut cnt: c_int = 0;
        while c.p < len && (cnt as i64) < limit {
            if let Err(e) = decode_one(l, &mut c) {
                let msg = match e {
                    DecErr::Eof => "Missing bytes in input.",
                    DecErr::BadFormat => "Bad data format in input.",
                    DecErr::Stack => {
                        "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
                    }
                };
                return raise(l, msg.to_string());
            }
            cnt += 1;
        }
        if !all {
            if ffi::lua_checkstack(l, 1) == 0 {
                return raise(l, "stack overflow (in function mp_unpack_full)".into());
            }
            ffi::lua_pushinteger(l, if c.p >= len { -1 } else { c.p as _ });
            ffi::lua_insert(l, 2);
            cnt += 1;
        }
        cnt
    }
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // SAFETY: see `unpack_full`.
    unsafe { unpack_full(l, 0, 0) }
}

unsafe extern "C-unwind" fn unpack_one(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is allocated.
    unsafe {
        let offset = ffi::luaL_optinteger(l, 2, 0) as i64;
        ffi::lua_settop(l, 1);
        unpack_full(l, 1, offset)
    }
}

unsafe extern "C-unwind" fn unpack_limit(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is allocated.
    unsafe {
        let limit = ffi::luaL_checkinteger(l, 2) as i64;
        let offset = ffi::luaL_optinteger(l, 3, 0) as i64;
        ffi::lua_settop(l, 1);
        unpack_full(l, limit, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_forms() {
        let enc = |n: f64| {
            let mut v = Vec::new();
            put_number(&mut v, n);
            v
        };
        assert_eq!(enc(0.1), [0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]);
        assert_eq!(enc(-1099511627776.0), [0xd3, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(enc(1.5), [0xca, 0x3f, 0xc0, 0x00, 0x00]);
        assert_eq!(enc(5.0), [5]);
        assert_eq!(enc(-1.0), [0xff]);
        assert_eq!(enc(200.0), [0xcc, 200]);
        assert_eq!(enc(-200.0), [0xd1, 0xff, 0x38]);
    }
}
