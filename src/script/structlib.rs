//! The `struct` library Redis gives scripts (Roberto Ierusalimschy's `struct` 0.2 behaviour,
//! as Redis ships it), written as Lua C functions: `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)`.
//!
//! Format: `>` big endian, `<` little endian (the default: x86-64 is little endian), `!n`
//! maximum alignment (default 8), `x` a zero byte, `b/B` 1-byte, `h/H` 2-byte, `l/L` and `T`
//! 8-byte, `i/In` n-byte (default 4, at most 32) integers (lower case signed), `f` float,
//! `d` double, `cn` n characters (`c0`: the whole string when packing, the previous number
//! as length when unpacking), `s` a zero-terminated string, space ignored. Integers are
//! converted through a C `long` as the original (so values past 64 bits wrap the same way).
//!
//! The module invariant of `cmsgpack` holds here too: errors are raised only once nothing
//! owning memory is alive.

use super::cmsgpack::raise;
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, CStr};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

/// Builds the `struct` table.
pub fn table(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    // SAFETY: the functions follow the Lua C API protocol (see the module invariant).
    unsafe {
        t.set("pack", lua.create_c_function(pack)?)?;
        t.set("unpack", lua.create_c_function(unpack)?)?;
        t.set("size", lua.create_c_function(size)?)?;
    }
    Ok(t)
}

struct Fmt<'a> {
    f: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
    func: &'static str,
}

impl<'a> Fmt<'a> {
    fn new(f: &'a [u8], func: &'static str) -> Self {
        Fmt { f, i: 0, little: true, align: 1, func }
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.f.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn num(&mut self, default: usize) -> Result<usize, String> {
        if !self.f.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i64 = 0;
        while let Some(&d) = self.f.get(self.i).filter(|d| d.is_ascii_digit()) {
            let d = (d - b'0') as i64;
            if a > (i32::MAX / 10) as i64 || a * 10 > i32::MAX as i64 - d {
                return Err("integral size overflow".into());
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }

    /// The size of option `opt` (reading its number, if any).
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let sz = self.num(4)?;
                if sz > MAXINTSIZE {
                    return Err(format!("integral size {sz} is larger than limit of {MAXINTSIZE}"));
                }
                sz
            }
            _ => 0,
        })
    }

    fn to_align(&self, len: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }

    /// Endianness/alignment options; anything else is an invalid option.
    fn control(&mut self, opt: u8) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.num(MAXALIGN)?;
                if !(a > 0 && a & (a - 1) == 0) {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                self.align = a;
            }
            _ => return Err(format!("bad argument #1 to '{}' (invalid format option '{}')", self.func, opt as char)),
        }
        Ok(())
    }
}

/// The format string at index 1 (up to its first zero byte, as C reads it).
unsafe fn fmt_arg<'a>(l: *mut lua_State) -> &'a [u8] {
    // SAFETY: `luaL_checkstring` raises before anything is allocated; the string stays on
    // the stack for the whole call.
    unsafe { CStr::from_ptr(ffi::luaL_checklstring(l, 1, std::ptr::null_mut())).to_bytes() }
}

unsafe fn type_name(l: *mut lua_State, i: c_int) -> String {
    // SAFETY: `lua_typename` returns a static string.
    unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, i))).to_string_lossy().into_owned() }
}

unsafe fn number_arg(l: *mut lua_State, i: c_int) -> Result<f64, String> {
    // SAFETY: reading argument `i`.
    unsafe {
        if ffi::lua_isnumber(l, i) == 0 {
            return Err(format!("bad argument #{i} to 'pack' (number expected, got {})", type_name(l, i)));
        }
        Ok(ffi::lua_tonumber(l, i))
    }
}

unsafe fn pack_into(l: *mut lua_State, out: &mut Vec<u8>) -> Result<(), String> {
    // SAFETY: reads arguments in place.
    unsafe {
        let mut f = Fmt::new(fmt_arg(l), "pack");
        let mut arg: c_int = 2;
        let mut total = 0usize;
        while let Some(opt) = f.next() {
            let mut size = f.size(opt)?;
            let pad = f.to_align(total, opt, size);
            total += pad;
            out.resize(out.len() + pad, 0);
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = number_arg(l, arg)?;
                    arg += 1;
                    let mut v: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                    let mut buf = [0u8; MAXINTSIZE];
                    for b in buf.iter_mut().take(size) {
                        *b = v as u8;
                        v >>= 8;
                    }
                    if !f.little {
                        buf[..size].reverse();
                    }
                    out.extend_from_slice(&buf[..size]);
                }
                b'x' => out.push(0),
                b'f' => {
                    let v = number_arg(l, arg)? as f32;
                    arg += 1;
                    out.extend_from_slice(&if f.little { v.to_le_bytes() } else { v.to_be_bytes() });
                }
                b'd' => {
                    let v = number_arg(l, arg)?;
                    arg += 1;
                    out.extend_from_slice(&if f.little { v.to_le_bytes() } else { v.to_be_bytes() });
                }
                b'c' | b's' => {
                    if ffi::lua_isstring(l, arg) == 0 {
                        return Err(format!(
                            "bad argument #{arg} to 'pack' (string expected, got {})",
                            type_name(l, arg)
                        ));
                    }
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(l, arg, &mut len);
                    arg += 1;
                    if size == 0 {
                        size = len;
                    }
                    if len < size {
                        return Err(format!("bad argument #{arg} to 'pack' (string too short)"));
                    }
                    out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, size));
                    if opt == b's' {
                        out.push(0);
                        size += 1;
                    }
                }
                _ => f.control(opt)?,
            }
            total += size;
        }
        Ok(())
    }
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    // SAFETY: see the module invariant.
    unsafe {
        let mut out = Vec::new();
        match pack_into(l, &mut out) {
            Ok(()) => {
                ffi::lua_pushlstring(l, out.as_ptr() as *const _, out.len());
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

fn get_int(b: &[u8], little: bool, signed: bool) -> f64 {
    let size = b.len();
    let mut v: u64 = 0;
    if little {
        for &x in b.iter().rev() {
            v = (v << 8) | x as u64;
        }
    } else {
        for &x in b {
            v = (v << 8) | x as u64;
        }
    }
    if !signed {
        return v as f64;
    }
    // The shift count wraps past 63 as the x86-64 shift instruction does.
    let mask = u64::MAX.wrapping_shl((size * 8).wrapping_sub(1) as u32);
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe fn unpack_onto(l: *mut lua_State, data: &[u8], mut pos: usize) -> Result<c_int, String> {
    // SAFETY: pushes the results; `data` lives on the stack (argument 2).
    unsafe {
        let mut f = Fmt::new(fmt_arg(l), "unpack");
        let ld = data.len();
        let mut n: c_int = 0;
        let short = || "bad argument #2 to 'unpack' (data string too short)".to_string();
        while let Some(opt) = f.next() {
            let mut size = f.size(opt)?;
            pos += f.to_align(pos, opt, size);
            if !(size <= ld && pos <= ld - size) {
                return Err(short());
            }
            if ffi::lua_checkstack(l, 2) == 0 {
                return Err("stack overflow (too many results)".into());
            }
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    ffi::lua_pushnumber(l, get_int(&data[pos..pos + size], f.little, opt.is_ascii_lowercase()));
                    n += 1;
                }
                b'x' => {}
                b'f' => {
                    let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                    let v = if f.little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) };
                    ffi::lua_pushnumber(l, v as f64);
                    n += 1;
                }
                b'd' => {
                    let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                    let v = if f.little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) };
                    ffi::lua_pushnumber(l, v);
                    n += 1;
                }
                b'c' => {
                    if size == 0 {
                        if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                            return Err("format 'c0' needs a previous size".into());
                        }
                        size = ffi::lua_tonumber(l, -1) as usize;
                        ffi::lua_settop(l, -2);
                        n -= 1;
                        if !(size <= ld && pos <= ld - size) {
                            return Err(short());
                        }
                    }
                    ffi::lua_pushlstring(l, data[pos..].as_ptr() as *const _, size);
                    n += 1;
                }
                b's' => {
                    let Some(e) = memchr::memchr(0, &data[pos..]) else {
                        return Err("unfinished string in data".into());
                    };
                    ffi::lua_pushlstring(l, data[pos..].as_ptr() as *const _, e);
                    size = e + 1;
                    n += 1;
                }
                _ => f.control(opt)?,
            }
            pos += size;
        }
        ffi::lua_pushinteger(l, (pos + 1) as _);
        Ok(n + 1)
    }
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is allocated.
    unsafe {
        let _ = fmt_arg(l);
        let mut ld = 0usize;
        let p = ffi::luaL_checklstring(l, 2, &mut ld);
        let pos = ffi::luaL_optinteger(l, 3, 1) as i64;
        if pos <= 0 {
            return raise(l, "bad argument #3 to 'unpack' (offset must be 1 or greater)".into());
        }
        let data = std::slice::from_raw_parts(p as *const u8, ld);
        match unpack_onto(l, data, pos as usize - 1) {
            Ok(n) => n,
            Err(e) => raise(l, e),
        }
    }
}

fn size_of(fmt: &[u8]) -> Result<usize, String> {
    let mut f = Fmt::new(fmt, "size");
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos += f.to_align(pos, opt, size);
        if opt == b's' {
            return Err("bad argument #1 to 'size' (option 's' has no fixed size)".into());
        }
        if opt == b'c' && size == 0 {
            return Err("bad argument #1 to 'size' (option 'c0' has no fixed size)".into());
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt)?;
        }
        pos += size;
    }
    Ok(pos)
}

unsafe extern "C-unwind" fn size(l: *mut lua_State) -> c_int {
    // SAFETY: see the module invariant.
    unsafe {
        match size_of(fmt_arg(l)) {
            Ok(n) => {
                ffi::lua_pushinteger(l, n as _);
                1
            }
            Err(e) => raise(l, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ints() {
        assert_eq!(size_of(b">iBhLd"), Ok(4 + 1 + 2 + 8 + 8));
        assert_eq!(size_of(b"!4 b i"), Ok(8));
        assert!(size_of(b"s").is_err());
        assert_eq!(get_int(&[0xff, 0xfe], false, true), -2.0);
        assert_eq!(get_int(&[0xff, 0xfe], true, false), 0xfeff as f64);
    }
}
