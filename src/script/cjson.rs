//! The `cjson` and `bit` libraries Redis gives scripts (lua-cjson 2.1 and LuaBitOp 1.0
//! behaviour: `cjson.encode`/`decode`/`null`, `bit.band`/`bor`/`bxor`/`bnot`/`lshift`/
//! `rshift`/`arshift`/`rol`/`ror`/`bswap`/`tobit`/`tohex`).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use std::cell::Cell;

const MAX_DEPTH: usize = 1000;

thread_local! {
    /// `cjson.encode_max_depth`, `cjson.decode_max_depth`, `cjson.encode_invalid_numbers`.
    static ENC_DEPTH: Cell<usize> = const { Cell::new(MAX_DEPTH) };
    static DEC_DEPTH: Cell<usize> = const { Cell::new(MAX_DEPTH) };
    static ENC_INVALID: Cell<bool> = const { Cell::new(false) };
}

/// A `cjson.*_max_depth` setter: sets the depth when given one (1..2^31), returns it.
fn depth_setting(
    cell: &'static std::thread::LocalKey<Cell<usize>>,
) -> impl Fn(&Lua, MultiValue) -> mlua::Result<usize> {
    move |_, args: MultiValue| {
        match args.front() {
            None | Some(Value::Nil) => {}
            Some(v) => {
                let n = match v {
                    Value::Integer(i) => *i as f64,
                    Value::Number(n) => *n,
                    Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0),
                    _ => 0.0,
                };
                if !(1.0..=i32::MAX as f64).contains(&n) {
                    return Err(mlua::Error::runtime(
                        "bad argument #1 to '?' (expected integer between 1 and 2147483647)",
                    ));
                }
                cell.with(|c| c.set(n as usize));
            }
        }
        Ok(cell.with(|c| c.get()))
    }
}

/// `cjson.null`.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub fn cjson_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|_, v: Value| {
            let mut out = Vec::new();
            encode(&v, &mut out, 0).map_err(mlua::Error::runtime)?;
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let b = s.as_bytes();
            let mut p = Parser { b: &b, i: 0, depth: 0 };
            p.ws();
            let v = p.value(lua)?;
            p.ws();
            if p.i < p.b.len() {
                return Err(p.err("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    t.set("null", null())?;
    t.set("encode_keep_buffer", lua.create_function(|_, _: MultiValue| Ok(true))?)?;
    t.set("encode_max_depth", lua.create_function(depth_setting(&ENC_DEPTH))?)?;
    t.set("decode_max_depth", lua.create_function(depth_setting(&DEC_DEPTH))?)?;
    t.set("encode_number_precision", lua.create_function(|_, _: MultiValue| Ok(14))?)?;
    t.set(
        "encode_invalid_numbers",
        lua.create_function(|_, v: Option<Value>| {
            match v {
                Some(Value::Boolean(b)) => ENC_INVALID.with(|c| c.set(b)),
                Some(Value::String(s)) if &*s.as_bytes() == b"on" => ENC_INVALID.with(|c| c.set(true)),
                Some(Value::String(s)) if &*s.as_bytes() == b"off" => ENC_INVALID.with(|c| c.set(false)),
                _ => {}
            }
            Ok(ENC_INVALID.with(|c| c.get()))
        })?,
    )?;
    t.set("decode_invalid_numbers", lua.create_function(|_, _: MultiValue| Ok(true))?)?;
    t.set("encode_sparse_array", lua.create_function(|_, _: MultiValue| Ok((false, 2, 10)))?)?;
    Ok(t)
}

fn encode_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_num(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if (n.is_nan() || n.is_infinite()) && ENC_INVALID.with(|c| c.get()) {
        let t: &[u8] = if n.is_nan() {
            b"nan"
        } else if n > 0.0 {
            b"inf"
        } else {
            b"-inf"
        };
        out.extend_from_slice(t);
        return Ok(());
    }
    if n.is_nan() || n.is_infinite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(super::convert::fmt_number(n).as_bytes());
    Ok(())
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_num(*i as f64, out)?,
        Value::Number(n) => encode_num(*n, out)?,
        Value::String(s) => encode_str(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > ENC_DEPTH.with(|c| c.get()) {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            // Array when every key is a positive integer (lua-cjson's lua_array_length).
            let mut max = 0usize;
            let mut items = 0usize;
            let mut array = true;
            for (k, _) in t.pairs::<Value, Value>().flatten() {
                let idx = match k {
                    Value::Integer(i) if i >= 1 => Some(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
                    _ => None,
                };
                match idx {
                    Some(i) => {
                        max = max.max(i);
                        items += 1;
                    }
                    None => {
                        array = false;
                        break;
                    }
                }
            }
            if array && max > 0 && max > items * 2 && max > 10 {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            if array && max > 0 {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    encode(&v, out, depth + 1)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for (k, v) in t.pairs::<Value, Value>().flatten() {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => encode_str(&s.as_bytes(), out),
                        Value::Integer(i) => encode_str((*i as f64).to_string().as_bytes(), out),
                        Value::Number(n) => encode_str(super::convert::fmt_number(*n).as_bytes(), out),
                        _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                    }
                    out.push(b':');
                    encode(&v, out, depth + 1)?;
                }
                out.push(b'}');
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &str, found: &str) -> mlua::Error {
        mlua::Error::runtime(format!("Expected {expected} but found {found} at character {}", self.i + 1))
    }
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let Some(&c) = self.b.get(self.i) else { return Err(self.err("value", "the end")) };
        match c {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > DEC_DEPTH.with(|c| c.get()) {
                    return Err(mlua::Error::runtime(format!(
                        "Found too many nested data structures ({}) at character {}",
                        self.depth,
                        self.i + 1
                    )));
                }
                let t = lua.create_table()?;
                self.i += 1;
                self.ws();
                let close = if c == b'{' { b'}' } else { b']' };
                if self.b.get(self.i) == Some(&close) {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                let mut n = 1;
                loop {
                    self.ws();
                    if c == b'{' {
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err("object key string", "invalid token"));
                        }
                        let k = self.string(lua)?;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.err("colon", "invalid token"));
                        }
                        self.i += 1;
                        self.ws();
                        let v = self.value(lua)?;
                        t.raw_set(k, v)?;
                    } else {
                        let v = self.value(lua)?;
                        t.raw_set(n, v)?;
                        n += 1;
                    }
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(x) if *x == close => {
                            self.i += 1;
                            break;
                        }
                        _ => {
                            let what = if c == b'{' { "comma or object end" } else { "comma or array end" };
                            return Err(self.err(what, "invalid token"));
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(t))
            }
            b'"' => Ok(Value::String(self.string(lua)?)),
            b't' if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(null())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                let s = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
                match s.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.i = start;
                        Err(self.err("value", "invalid number"))
                    }
                }
            }
            _ => Err(self.err("value", "invalid token")),
        }
    }
    fn string(&mut self, lua: &Lua) -> mlua::Result<mlua::String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else { return Err(self.err("string end", "the end")) };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else { return Err(self.err("string end", "the end")) };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = |p: &Self, at: usize| {
                                p.b.get(at..at + 4)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                            };
                            let Some(mut cp) = hex(self, self.i) else {
                                return Err(self.err("string", "invalid unicode escape code"));
                            };
                            self.i += 4;
                            if (0xD800..0xDC00).contains(&cp) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                                if let Some(lo) = hex(self, self.i + 2) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff);
                                    self.i += 6;
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("string", "invalid escape code")),
                    }
                }
                c => out.push(c),
            }
        }
        lua.create_string(&out)
    }
}

/// The `bit` table (32-bit operations on numbers, LuaBitOp).
pub fn bit_table(lua: &Lua) -> mlua::Result<Table> {
    fn tobit(v: &Value) -> i32 {
        let n = match v {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0),
            _ => 0.0,
        };
        // LuaBitOp: add 2^52+2^51 and take the low 32 bits (rounds to nearest).
        let b = n + 6755399441055744.0;
        b.to_bits() as u32 as i32
    }
    let t = lua.create_table()?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let mut it = args.iter();
            let mut acc = it.next().map(tobit).unwrap_or(0);
            for v in it {
                acc = f(acc, tobit(v));
            }
            Ok(acc as f64)
        })
    };
    t.set("band", fold(lua, |a, b| a & b)?)?;
    t.set("bor", fold(lua, |a, b| a | b)?)?;
    t.set("bxor", fold(lua, |a, b| a ^ b)?)?;
    t.set("tobit", lua.create_function(|_, v: Value| Ok(tobit(&v) as f64))?)?;
    t.set("bnot", lua.create_function(|_, v: Value| Ok(!tobit(&v) as f64))?)?;
    t.set("bswap", lua.create_function(|_, v: Value| Ok(tobit(&v).swap_bytes() as f64))?)?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (a, n): (Value, Value)| Ok(f(tobit(&a), (tobit(&n) & 31) as u32) as f64))
    };
    t.set("lshift", shift(lua, |a, n| ((a as u32) << n) as i32)?)?;
    t.set("rshift", shift(lua, |a, n| ((a as u32) >> n) as i32)?)?;
    t.set("arshift", shift(lua, |a, n| a >> n)?)?;
    t.set("rol", shift(lua, |a, n| (a as u32).rotate_left(n) as i32)?)?;
    t.set("ror", shift(lua, |a, n| (a as u32).rotate_right(n) as i32)?)?;
    t.set(
        "tohex",
        lua.create_function(|_, (a, n): (Value, Option<Value>)| {
            let mut n = n.map(|v| tobit(&v)).unwrap_or(8);
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(1, 8) as usize;
            let x = tobit(&a) as u32;
            let s = if upper { format!("{:08X}", x) } else { format!("{:08x}", x) };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
