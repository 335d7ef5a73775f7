//! Conversions between Redis replies and Lua values, with Redis 7.0's rules.
//!
//! Reply -> Lua (what `redis.call` returns): the command's reply is encoded in the script's
//! protocol (RESP2 unless `redis.setresp(3)`) and parsed into Lua values as Redis's
//! `redisProtocolToLuaType` does: status -> `{ok=...}`, error -> `{err=...}`, integer ->
//! number, bulk -> string, null bulk / null array -> false (RESP3 null -> nil), array ->
//! table; in RESP3 map -> `{map={...}}`, set -> `{set={k=true}}`, double -> `{double=n}`,
//! boolean -> boolean, verbatim -> `{verbatim_string={format=,string=}}`, big number ->
//! `{big_number=...}`.
//!
//! Lua -> reply (what a script returns): string -> bulk, number -> integer (truncated),
//! boolean -> 1 / null (RESP2) or a boolean (RESP3), a table with `err` -> error, `ok` ->
//! status, `double`, `big_number`, `verbatim_string`, `map`, `set`, otherwise an array up to
//! the first nil; anything else -> null.

use crate::protocol::Reply;
use bytes::Bytes;
use mlua::{Lua, Table, Value};

/// Lua's `%.14g` number formatting (how Lua 5.1 turns numbers into strings).
pub fn fmt_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    crate::protocol::reply::format_g(n, 14)
}

/// An error table as Redis's `luaPushErrorBuff` builds it: "-CODE msg" keeps its code,
/// "msg" gets "ERR "; a trailing CRLF is trimmed.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(text))?)?;
    Ok(t)
}

/// The field Redis sets in the error table of a command's error (or refusal): the error was
/// counted in the stats when the command replied, not again when the script replies it.
const COUNTED: &str = "ignore_error_stats_update";

/// [`error_table`] for an error already counted in the stats.
pub fn counted_error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = error_table(lua, text)?;
    t.raw_set(COUNTED, true)?;
    Ok(t)
}

/// True for an error table marked as counted (the script's reply is that error).
pub fn is_counted_error(v: &Value) -> bool {
    let Value::Table(t) = v else { return false };
    matches!(t.raw_get::<Value>("err"), Ok(Value::String(_)))
        && matches!(t.raw_get::<Value>(COUNTED), Ok(Value::Boolean(true)))
}

fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match memchr::memchr(b' ', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let mut end = msg.len();
    while end > 0 && (msg[end - 1] == b'\r' || msg[end - 1] == b'\n') {
        end -= 1;
    }
    let mut start = 0;
    while start < end && (msg[start] == b'\r' || msg[start] == b'\n') {
        start += 1;
    }
    let mut out = code.to_vec();
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

thread_local! {
    /// The protocol of the client a script replies to (big numbers keep their type in RESP3).
    static CLIENT_RESP3: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets the protocol of the client the running script replies to.
pub fn set_client_resp3(on: bool) {
    CLIENT_RESP3.with(|c| c.set(on));
}

/// A command's reply as `redis.call` returns it.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    if let Some(v) = direct_to_lua(lua, reply, resp3)? {
        return Ok(v);
    }
    let mut buf = Vec::new();
    reply.encode(&mut buf, resp3);
    let mut pos = 0;
    parse(lua, &buf, &mut pos)
}

/// The commonest replies made into Lua values directly, exactly as [`parse`] makes them of
/// their RESP encoding (`None`: encode and parse this one).
fn direct_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Option<Value>> {
    Ok(Some(match reply {
        Reply::Int(n) => Value::Number(*n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::ShortBulk(b) => Value::String(lua.create_string(b.as_slice())?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Ok => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string("OK")?)?;
            Value::Table(t)
        }
        Reply::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
            }
            Value::Table(t)
        }
        _ => return Ok(None),
    }))
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos;
    let end = memchr::memmem::find(&buf[start..], b"\r\n").map(|i| start + i).unwrap_or(buf.len());
    *pos = (end + 2).min(buf.len());
    &buf[start..end]
}

fn num(b: &[u8]) -> i64 {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn parse(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    if *pos >= buf.len() {
        return Ok(Value::Nil);
    }
    let kind = buf[*pos];
    *pos += 1;
    let l = line(buf, pos);
    let str_of = |pos: &mut usize, n: usize| -> &[u8] {
        let s = &buf[(*pos).min(buf.len())..(*pos + n).min(buf.len())];
        *pos = (*pos + n + 2).min(buf.len());
        s
    };
    Ok(match kind {
        b'|' => {
            // An attribute: not exposed to scripts, the reply follows it.
            for _ in 0..num(l).max(0) * 2 {
                parse(lua, buf, pos)?;
            }
            return parse(lua, buf, pos);
        }
        b'+' => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(l)?)?;
            Value::Table(t)
        }
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(l)?)?;
            t.raw_set(COUNTED, true)?;
            Value::Table(t)
        }
        b':' => Value::Number(num(l) as f64),
        b'$' => {
            let n = num(l);
            if n < 0 {
                Value::Boolean(false)
            } else {
                Value::String(lua.create_string(str_of(pos, n as usize))?)
            }
        }
        b'*' | b'>' => {
            let n = num(l);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table_with_capacity(n as usize, 0)?;
            for i in 0..n as usize {
                let v = parse(lua, buf, pos)?;
                t.raw_set(i + 1, v)?;
            }
            Value::Table(t)
        }
        b'%' => {
            let n = num(l).max(0) as usize;
            let m = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, buf, pos)?;
                let v = parse(lua, buf, pos)?;
                m.raw_set(k, v)?;
            }
            let t = lua.create_table()?;
            t.raw_set("map", m)?;
            Value::Table(t)
        }
        b'~' => {
            let n = num(l).max(0) as usize;
            let s = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, buf, pos)?;
                s.raw_set(k, true)?;
            }
            let t = lua.create_table()?;
            t.raw_set("set", s)?;
            Value::Table(t)
        }
        b',' => {
            let s = std::str::from_utf8(l).unwrap_or("0");
            let d = match s {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                _ => s.parse().unwrap_or(0.0),
            };
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        b'#' => Value::Boolean(l == b"t"),
        b'_' => Value::Nil,
        b'(' => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(l)?)?;
            Value::Table(t)
        }
        b'=' => {
            let s = str_of(pos, num(l).max(0) as usize);
            let (fmt, text) = if s.len() >= 4 && s[3] == b':' { (&s[..3], &s[4..]) } else { (&b"txt"[..], s) };
            let v = lua.create_table()?;
            v.raw_set("format", lua.create_string(fmt)?)?;
            v.raw_set("string", lua.create_string(text)?)?;
            let t = lua.create_table()?;
            t.raw_set("verbatim_string", v)?;
            Value::Table(t)
        }
        _ => Value::Nil,
    })
}

/// The deepest table nesting a script reply may have.
const MAX_DEPTH: usize = 1000;

fn clean_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

/// What a script returned, as the reply to its caller. `resp3`: the script's protocol.
pub fn lua_to_reply(v: &Value, resp3: bool, depth: usize) -> Reply {
    if depth > MAX_DEPTH {
        return Reply::err("ERR reached lua stack limit");
    }
    match v {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(if n.is_nan() { i64::MIN } else { *n as i64 }),
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        let msg = clean_line(&e.as_bytes());
        return Reply::error(msg.strip_prefix('-').map(str::to_string).unwrap_or(msg));
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        return Reply::status_owned(clean_line(&s.as_bytes()));
    }
    if let Ok(v @ (Value::Number(_) | Value::Integer(_))) = t.raw_get::<Value>("double") {
        let d = match v {
            Value::Number(n) => n,
            Value::Integer(i) => i as f64,
            _ => 0.0,
        };
        return Reply::Double(d);
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let n = clean_line(&s.as_bytes());
        if CLIENT_RESP3.with(|c| c.get()) {
            return Reply::Raw(Bytes::from(format!("({n}\r\n")));
        }
        return Reply::Bulk(Bytes::from(n));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            let _ = f;
            return Reply::Verbatim(Bytes::copy_from_slice(&s.as_bytes()));
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let mut out = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            out.push((lua_to_reply(&k, resp3, depth + 1), lua_to_reply(&v, resp3, depth + 1)));
        }
        return Reply::Map(out);
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let mut out = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            out.push(lua_to_reply(&k, resp3, depth + 1));
        }
        return Reply::Set(out);
    }
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => out.push(lua_to_reply(&v, resp3, depth + 1)),
        }
        i += 1;
    }
    Reply::Array(out)
}

/// The reply to a script that raised `v` (Redis's `luaCallFunction` error path):
/// "<err> script: <name>, on <source>:<line>." when the position is known.
pub fn error_reply(v: &Value, name: &str) -> Reply {
    let Value::Table(t) = v else {
        let msg = match v {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "execution failure".into(),
        };
        return Reply::error(format!("ERR Error running script {name}, {msg:.100}"));
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => String::new(),
    };
    let source = match t.raw_get::<Value>("source") {
        Ok(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        _ => None,
    };
    let line = match t.raw_get::<Value>("line") {
        Ok(Value::Integer(i)) => Some(i.to_string()),
        Ok(Value::Number(n)) => Some(fmt_number(n)),
        _ => None,
    };
    let mut text = clean_line(msg.as_bytes());
    if let (Some(s), Some(l)) = (source, line) {
        text.push_str(&format!(" script: {name}, on {s}:{l}."));
    }
    Reply::error(text.strip_prefix('-').map(str::to_string).unwrap_or(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deep equality of two converted replies (tables compared key by key).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Table(x), Value::Table(y)) => {
                let xs: Vec<(Value, Value)> = x.pairs().flatten().collect();
                let ys: Vec<(Value, Value)> = y.pairs().flatten().collect();
                xs.len() == ys.len() && xs.iter().all(|(k, v)| ys.iter().any(|(k2, v2)| same(k, k2) && same(v, v2)))
            }
            (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
            _ => a == b,
        }
    }

    #[test]
    fn direct_conversion_matches_resp_parsing() {
        let lua = Lua::new();
        let bulk = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
        let replies = vec![
            Reply::Int(-42),
            Reply::Int(i64::MAX),
            bulk(""),
            bulk("a\r\nb"),
            Reply::ShortBulk(crate::protocol::reply::ShortBytes::new(b"short").unwrap()),
            Reply::Nil,
            Reply::NilArray,
            Reply::Ok,
            Reply::Array(vec![]),
            Reply::Array(vec![Reply::Int(1), bulk("x"), Reply::Nil, Reply::Array(vec![Reply::Ok, Reply::NilArray])]),
            Reply::Array(vec![Reply::Double(1.5), Reply::status("QUEUED"), Reply::err("ERR x"), Reply::Bool(true)]),
        ];
        for resp3 in [false, true] {
            for r in &replies {
                let fast = reply_to_lua(&lua, r, resp3).unwrap();
                let mut buf = Vec::new();
                r.encode(&mut buf, resp3);
                let slow = parse(&lua, &buf, &mut 0).unwrap();
                assert!(same(&fast, &slow), "{r:?} resp3={resp3}: {fast:?} vs {slow:?}");
            }
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(error_text(b"-WRONGTYPE Operation against"), b"WRONGTYPE Operation against");
        assert_eq!(
            error_text(b"Unknown Redis command called from script"),
            b"ERR Unknown Redis command called from script"
        );
        assert_eq!(error_text(b"-NOSCRIPT x\r\n"), b"NOSCRIPT x");
        assert_eq!(fmt_number(3.0), "3");
        assert_eq!(fmt_number(0.1), "0.1");
        assert_eq!(fmt_number(1e20), "1e+20");
    }
}
