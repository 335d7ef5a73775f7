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
    spec("setbit", 4, WRITE | DENYOOM, "@write @bitmap @slow", KEY1, Exec::Keyed(setbit)),
    spec("getbit", 3, READONLY | FAST, "@read @bitmap @fast", KEY1, Exec::Keyed(getbit)),
    spec("bitcount", -2, READONLY, "@read @bitmap @slow", KEY1, Exec::Keyed(bitcount)),
    spec("bitpos", -3, READONLY, "@read @bitmap @slow", KEY1, Exec::Keyed(bitpos)),
    spec("bitfield", -2, WRITE | DENYOOM, "@write @bitmap @slow", KEY1, Exec::Keyed(bitfield)),
    spec("bitfield_ro", -2, READONLY | FAST, "@read @bitmap @fast", KEY1, Exec::Keyed(bitfield_ro)),
    spec("bitop", -4, WRITE | DENYOOM, "@write @bitmap @slow", keys(2, -1, 1), Exec::Keyed(bitop)),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// The string at `key` as bytes: Ok(None) when missing, WRONGTYPE for another type. A read
/// lookup (counted, `keymiss`: see `Ctx::read_entry`) unless `for_write`.
fn read_as(ctx: &mut Ctx<'_>, key: &[u8], for_write: bool) -> Result<Option<Bytes>, Reply> {
    let now = ctx.now_ms;
    let e = if for_write { ctx.db().get(key, now) } else { ctx.read_entry(key) };
    match e {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s.to_bytes())),
        Some(_) => Err(Reply::err(errors::WRONGTYPE)),
    }
}

/// [`read_as`] for a read.
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    read_as(ctx, key, false)
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
    let mut grown = false;
    match ctx.db().get(&args[1], now) {
        None => {
            ctx.db().set(&args[1], Value::Str(StrValue::raw(Vec::new())), 0);
            grown = true;
        }
        Some(Entry { value: Value::Str(_), .. }) => {}
        Some(_) => return Reply::err(errors::WRONGTYPE),
    }
    let Some(Entry { value: Value::Str(s), .. }) = ctx.db().get(&args[1], now) else { return Reply::Int(0) };
    let v = s.make_raw();
    let byte = (off >> 3) as usize;
    if v.len() <= byte {
        v.resize(byte + 1, 0);
        grown = true;
    }
    let mask = 0x80u8 >> (off & 7);
    let old = v[byte] & mask != 0;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    // Redis counts a change only when the key was created or grew, or the bit flips.
    ctx.dirty((grown || old != on) as u64);
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
        // Both from the end and crossed: empty before any clamping (BITPOS clamps first).
        Some((s, e, _)) if s < 0 && e < 0 && s > e => 0,
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
        ctx.db().set(&args[2], Value::Str(StrValue::built(out)), 0);
    }
    Reply::Int(maxlen as i64)
}

// ---- BITFIELD ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Set(i64),
    Incr(i64),
}

struct Field {
    op: Op,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn parse_type(a: &[u8]) -> Option<(bool, u32)> {
    let signed = match a.first()? {
        b'i' | b'I' => true,
        b'u' | b'U' => false,
        _ => return None,
    };
    let bits: u32 = std::str::from_utf8(&a[1..]).ok()?.parse().ok()?;
    let ok = if signed { (1..=64).contains(&bits) } else { (1..=63).contains(&bits) };
    ok.then_some((signed, bits))
}

fn parse_offset(ctx: &Ctx<'_>, a: &[u8], bits: u32) -> Result<u64, Reply> {
    let (mul, num) = match a.first() {
        Some(b'#') => (bits as i64, &a[1..]),
        _ => (1, a),
    };
    match parse_i64(num).and_then(|n| n.checked_mul(mul)) {
        Some(n)
            if n >= 0
                && ((n as u64) + bits as u64) >> 3 < ctx.shard.config.proto_max_bulk_len as u64
                && n < (1 << 32) =>
        {
            Ok(n as u64)
        }
        _ => Err(Reply::err(BAD_OFFSET)),
    }
}

fn parse_fields(ctx: &Ctx<'_>, args: &[Bytes], read_only: bool) -> Result<Vec<Field>, Reply> {
    let mut out = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let left = args.len() - i - 1;
        if eq_ic(a, "get") && left >= 2 {
            let (signed, bits) = parse_type(&args[i + 1]).ok_or(Reply::err(BAD_TYPE))?;
            let offset = parse_offset(ctx, &args[i + 2], bits)?;
            out.push(Field { op: Op::Get, signed, bits, offset, overflow });
            i += 3;
        } else if (eq_ic(a, "set") || eq_ic(a, "incrby")) && left >= 3 {
            if read_only {
                return Err(Reply::err("ERR BITFIELD_RO only supports the GET subcommand"));
            }
            let (signed, bits) = parse_type(&args[i + 1]).ok_or(Reply::err(BAD_TYPE))?;
            let offset = parse_offset(ctx, &args[i + 2], bits)?;
            let v = parse_i64(&args[i + 3]).ok_or(Reply::err(errors::NOT_INTEGER))?;
            let op = if eq_ic(a, "set") { Op::Set(v) } else { Op::Incr(v) };
            out.push(Field { op, signed, bits, offset, overflow });
            i += 4;
        } else if eq_ic(a, "overflow") && left >= 1 {
            if read_only {
                return Err(Reply::err("ERR BITFIELD_RO only supports the GET subcommand"));
            }
            let o = &args[i + 1];
            overflow = if eq_ic(o, "wrap") {
                Overflow::Wrap
            } else if eq_ic(o, "sat") {
                Overflow::Sat
            } else if eq_ic(o, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err("ERR Invalid OVERFLOW type specified"));
            };
            i += 2;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
    }
    Ok(out)
}

fn read_bits(v: &[u8], offset: u64, bits: u32) -> u64 {
    let mut x = 0u64;
    for i in 0..bits as u64 {
        let pos = offset + i;
        let bit = v.get((pos >> 3) as usize).is_some_and(|b| b & (0x80 >> (pos & 7)) != 0);
        x = (x << 1) | bit as u64;
    }
    x
}

fn write_bits(v: &mut Vec<u8>, offset: u64, bits: u32, x: u64) {
    let need = ((offset + bits as u64 + 7) >> 3) as usize;
    if v.len() < need {
        v.resize(need, 0);
    }
    for i in 0..bits as u64 {
        let pos = offset + i;
        let bit = (x >> (bits as u64 - 1 - i)) & 1 == 1;
        let mask = 0x80u8 >> (pos & 7);
        if bit {
            v[(pos >> 3) as usize] |= mask;
        } else {
            v[(pos >> 3) as usize] &= !mask;
        }
    }
}

/// The value of raw bits as the field's type.
fn as_value(x: u64, signed: bool, bits: u32) -> i128 {
    if signed && bits < 128 && (x >> (bits - 1)) & 1 == 1 {
        x as i128 - (1i128 << bits)
    } else {
        x as i128
    }
}

/// Applies the overflow policy; None = FAIL.
fn fit(v: i128, signed: bool, bits: u32, ov: Overflow) -> Option<i128> {
    let (min, max) =
        if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    if v >= min && v <= max {
        return Some(v);
    }
    match ov {
        Overflow::Fail => None,
        Overflow::Sat => Some(if v < min { min } else { max }),
        Overflow::Wrap => {
            let m = 1i128 << bits;
            let w = v.rem_euclid(m);
            Some(if signed && w > max { w - m } else { w })
        }
    }
}

fn run_bitfield(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> Reply {
    let fields = match parse_fields(ctx, args, read_only) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let writes = fields.iter().any(|f| !matches!(f.op, Op::Get));
    // Redis looks the key up for writing (uncounted) when some operation writes.
    let mut data = match read_as(ctx, &args[1], writes) {
        Ok(v) => v.map(|b| b.to_vec()),
        Err(e) => return e,
    };
    let existed = data.is_some();
    let buf = data.get_or_insert_with(Vec::new);
    let len_before = buf.len();
    // Like Redis, a BITFIELD with writes sizes the string for its highest write first, even if
    // an OVERFLOW FAIL then stops every write.
    if let Some(end) = fields.iter().filter(|f| !matches!(f.op, Op::Get)).map(|f| f.offset + f.bits as u64).max() {
        let need = end.div_ceil(8) as usize;
        if buf.len() < need {
            buf.resize(need, 0);
        }
    }
    // Redis's `changes`: writes that created or grew the string, or changed the field.
    let grown = writes && (!existed || buf.len() != len_before);
    let mut changes = 0u64;
    let mut out = Vec::with_capacity(fields.len());
    for f in &fields {
        let cur = as_value(read_bits(buf, f.offset, f.bits), f.signed, f.bits);
        match f.op {
            Op::Get => out.push(Reply::Int(cur as i64)),
            Op::Set(v) => match fit(v as i128, f.signed, f.bits, f.overflow) {
                Some(n) => {
                    let old = read_bits(buf, f.offset, f.bits);
                    write_bits(buf, f.offset, f.bits, n as u64 & mask(f.bits));
                    changes += (grown || old != n as u64 & mask(f.bits)) as u64;
                    out.push(Reply::Int(cur as i64));
                }
                None => out.push(Reply::Nil),
            },
            Op::Incr(by) => match fit(cur + by as i128, f.signed, f.bits, f.overflow) {
                Some(n) => {
                    let old = read_bits(buf, f.offset, f.bits);
                    write_bits(buf, f.offset, f.bits, n as u64 & mask(f.bits));
                    changes += (grown || old != n as u64 & mask(f.bits)) as u64;
                    out.push(Reply::Int(n as i64));
                }
                None => out.push(Reply::Nil),
            },
        }
    }
    if !read_only {
        ctx.dirty(changes);
    }
    // The string is stored (created at its new size) even when OVERFLOW FAIL stopped every
    // write, as Redis's lookup for writing creates it; only real changes count.
    if writes {
        let now = ctx.now_ms;
        let expire = if existed { ctx.db().get_notouch(&args[1], now).map_or(0, |e| e.expire_at) } else { 0 };
        ctx.db().set(&args[1], Value::Str(StrValue::built(std::mem::take(buf))), expire);
    }
    Reply::Array(out)
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run_bitfield(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run_bitfield(ctx, args, true)
}
