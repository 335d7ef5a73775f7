//! Bitmap commands on string values (bitops.c in Redis): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP. Bit 0 is the most significant bit of the first byte.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::{Entry, StrValue, Value};
use bytes::Bytes;

/// The bitmap family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("setbit", 4, WRITE | DENYOOM, "@write @bitmap @slow", KEY1, Exec::Keyed(setbit), "bitmap", "2.2.0", "Sets or clears the bit at offset in the string value stored at key"),
    spec("getbit", 3, READONLY | FAST, "@read @bitmap @fast", KEY1, Exec::Keyed(getbit), "bitmap", "2.2.0", "Returns the bit value at offset in the string value stored at key"),
    spec("bitcount", -2, READONLY, "@read @bitmap @slow", KEY1, Exec::Keyed(bitcount), "bitmap", "2.6.0", "Count set bits in a string"),
    spec("bitpos", -3, READONLY, "@read @bitmap @slow", KEY1, Exec::Keyed(bitpos), "bitmap", "2.8.7", "Find first bit set or clear in a string"),
    spec("bitop", -4, WRITE | DENYOOM, "@write @bitmap @slow", keys(2, -1, 1), Exec::Keyed(bitop), "bitmap", "2.6.0", "Perform bitwise operations between strings"),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// The string at `key` as bytes: Ok(None) when missing, WRONGTYPE for another type.
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s.to_bytes())),
        Some(_) => Err(Reply::err(errors::WRONGTYPE)),
    }
}

fn bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= 0 && (n as u64) >> 3 < ctx.shard.config.proto_max_bulk_len as u64 && n < (1 << 32) => {
            Ok(n as u64)
        }
        _ => Err(Reply::err(BAD_OFFSET)),
    }
}

fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let off = match bit_offset(ctx, &args[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Reply::err("ERR bit is not an integer or out of range"),
    };
    let now = ctx.now_ms;
    match ctx.db().get(&args[1], now) {
        None => ctx.db().set(&args[1], Value::Str(StrValue::Raw(Vec::new())), 0),
        Some(Entry { value: Value::Str(_), .. }) => {}
        Some(_) => return Reply::err(errors::WRONGTYPE),
    }
    let Some(Entry { value: Value::Str(s), .. }) = ctx.db().get(&args[1], now) else { return Reply::Int(0) };
    let v = s.make_raw();
    let byte = (off >> 3) as usize;
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (off & 7);
    let old = v[byte] & mask != 0;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    Reply::Int(old as i64)
}

fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let off = match bit_offset(ctx, &args[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match read(ctx, &args[1]) {
        Ok(Some(v)) => {
            let byte = (off >> 3) as usize;
            Reply::Int(v.get(byte).is_some_and(|b| b & (0x80 >> (off & 7)) != 0) as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

/// Normalises (start, end) over `len` units like Redis's bitcount/bitpos; None when empty.
fn norm(mut start: i64, mut end: i64, len: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    (start <= end && len > 0).then_some((start, end))
}

fn bit_at(v: &[u8], i: i64) -> bool {
    v[(i >> 3) as usize] & (0x80 >> (i & 7)) != 0
}

/// Parses the optional unit argument (BYTE default, BIT).
fn unit(arg: Option<&Bytes>) -> Result<bool, Reply> {
    match arg {
        None => Ok(false),
        Some(a) if eq_ic(a, "byte") => Ok(false),
        Some(a) if eq_ic(a, "bit") => Ok(true),
        Some(_) => Err(Reply::err(errors::SYNTAX)),
    }
}

fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let (Some(s), Some(e)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return Reply::err(errors::NOT_INTEGER);
            };
            match unit(args.get(4)) {
                Ok(bits) => Some((s, e, bits)),
                Err(e) => return e,
            }
        }
        _ => return Reply::err(errors::SYNTAX),
    };
    let v = match read(ctx, &args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let n = match range {
        None => v.iter().map(|b| b.count_ones() as i64).sum(),
        Some((s, e, false)) => match norm(s, e, v.len() as i64) {
            Some((s, e)) => v[s as usize..=e as usize].iter().map(|b| b.count_ones() as i64).sum(),
            None => 0,
        },
        Some((s, e, true)) => match norm(s, e, v.len() as i64 * 8) {
            Some((s, e)) => (s..=e).filter(|&i| bit_at(&v, i)).count() as i64,
            None => 0,
        },
    };
    Reply::Int(n)
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let want = match &args[2][..] {
        b"1" => true,
        b"0" => false,
        _ => {
            return if parse_i64(&args[2]).is_none() {
                Reply::err(errors::NOT_INTEGER)
            } else {
                Reply::err("ERR The bit argument must be 1 or 0.")
            }
        }
    };
    if args.len() > 6 {
        return Reply::err(errors::SYNTAX);
    }
    let start = match args.get(3).map(|a| parse_i64(a)) {
        None => 0,
        Some(Some(n)) => n,
        Some(None) => return Reply::err(errors::NOT_INTEGER),
    };
    let end = match args.get(4).map(|a| parse_i64(a)) {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => return Reply::err(errors::NOT_INTEGER),
    };
    let bits = match unit(args.get(5)) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let v = match read(ctx, &args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Int(if want { -1 } else { 0 }),
        Err(e) => return e,
    };
    let len = if bits { v.len() as i64 * 8 } else { v.len() as i64 };
    let Some((s, e)) = norm(start, end.unwrap_or(-1), len) else { return Reply::Int(-1) };
    let (first_bit, last_bit) = if bits { (s, e) } else { (s * 8, e * 8 + 7) };
    for i in first_bit..=last_bit {
        if bit_at(&v, i) == want {
            return Reply::Int(i);
        }
    }
    // Looking for a clear bit with no explicit end: the string is padded with zeros.
    if !want && end.is_none() {
        return Reply::Int(last_bit + 1);
    }
    Reply::Int(-1)
}

fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let op = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    if !["and", "or", "xor", "not"].contains(&op.as_str()) {
        return Reply::err(errors::SYNTAX);
    }
    if op == "not" && args.len() != 4 {
        return Reply::err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut srcs = Vec::new();
    for k in &args[3..] {
        match read(ctx, k) {
            Ok(v) => srcs.push(v.unwrap_or_default()),
            Err(e) => return e,
        }
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![0u8; maxlen];
    for (i, o) in out.iter_mut().enumerate() {
        let byte = |s: &Bytes| s.get(i).copied().unwrap_or(0);
        *o = match op.as_str() {
            "not" => !byte(&srcs[0]),
            "and" => srcs.iter().fold(0xff, |a, s| a & byte(s)),
            "or" => srcs.iter().fold(0, |a, s| a | byte(s)),
            _ => srcs.iter().fold(0, |a, s| a ^ byte(s)),
        };
    }
    ctx.db().remove(&args[2]);
    if !out.is_empty() {
        ctx.db().set(&args[2], Value::Str(StrValue::Raw(out)), 0);
    }
    Reply::Int(maxlen as i64)
}
