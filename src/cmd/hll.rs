//! HyperLogLog commands (hyperloglog.c in Redis): PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! A HyperLogLog is a string value holding Redis's exact bytes (`crate::storage::hll`), so GET,
//! SET, DUMP and replication see what Redis would. Multi-key PFCOUNT and PFMERGE declare all
//! their keys, so the runtime runs them atomically when the keys live on different shards.
//! PFCOUNT of one key stores the computed cardinality in the value's cache, as Redis does.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::eq_ic;
use crate::protocol::Reply;
use crate::storage::hll::{self, Corrupt, Encoding};
use crate::storage::{StrValue, Value};
use bytes::Bytes;

/// A string that is not a HyperLogLog (Redis sends it with its own `WRONGTYPE` prefix).
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// A sparse HyperLogLog whose opcodes are broken.
const INVALID: &str = "INVALIDOBJ Corrupted HLL object detected";

/// The HyperLogLog family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("pfadd", -2, WRITE | DENYOOM | FAST, "@write @hyperloglog @fast", KEY1, Exec::Keyed(pfadd)),
    spec("pfcount", -2, READONLY | MAY_REPLICATE, "@read @hyperloglog @slow", keys(1, -1, 1), Exec::Keyed(pfcount)),
    spec("pfmerge", -2, WRITE | DENYOOM, "@write @hyperloglog @slow", keys(1, -1, 1), Exec::Keyed(pfmerge)),
    spec("pfdebug", 3, WRITE | DENYOOM | ADMIN, "@write @hyperloglog @admin @slow @dangerous", keys(2, 2, 1), Exec::Keyed(pfdebug)),
    spec("pfselftest", 1, ADMIN, "@hyperloglog @admin @slow @dangerous", Keys::None, Exec::Keyed(pfselftest)),
];

/// `hll-sparse-max-bytes`: the largest sparse value before it turns dense.
fn sparse_max(ctx: &Ctx<'_>) -> usize {
    ctx.shard.config.get("hll-sparse-max-bytes").and_then(|v| v.parse().ok()).unwrap_or(3000)
}

/// The HyperLogLog bytes stored at `key` (None if absent), or the error Redis gives for a key
/// of another type or a string that is not a HyperLogLog.
fn lookup<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Vec<u8>>, Reply> {
    lookup_as(ctx, key, false)
}

/// [`lookup`] as a read lookup (counted, `keymiss`: see `Ctx::read_entry`): PFCOUNT's keys and
/// PFMERGE's, the destination included, as Redis reads them.
fn read_hll<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Vec<u8>>, Reply> {
    lookup_as(ctx, key, true)
}

/// A read lookup (as [`read_hll`]) that leaves the value as stored: PFCOUNT of several keys
/// and PFMERGE's keys, which Redis reads without unsharing them (an `embstr` HyperLogLog,
/// made by RESTORE or COPY, stays `embstr`, also when PFMERGE then fails on a later key).
fn peek_hll<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a [u8]>, Reply> {
    match ctx.read_entry(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(StrValue::Raw(v)) if hll::check(v) => Ok(Some(&v[..])),
            Value::Str(_) => Err(Reply::err(NOT_HLL)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

fn lookup_as<'a>(ctx: &'a mut Ctx<'_>, key: &[u8], counted: bool) -> Result<Option<&'a mut Vec<u8>>, Reply> {
    let now = ctx.now_ms;
    let e = if counted { ctx.read_entry(key) } else { ctx.db().get(key, now) };
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Str(StrValue::Raw(v)) if hll::check(v) => Ok(Some(v.make_vec())),
            Value::Str(_) => Err(Reply::err(NOT_HLL)),
            _ => Err(Reply::err(errors::WRONGTYPE)),
        },
    }
}

/// Like [`lookup`], creating an empty HyperLogLog when the key is absent; the flag says
/// whether it was created.
fn lookup_or_create<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<(&'a mut Vec<u8>, bool), Reply> {
    let created = lookup(ctx, key)?.is_none();
    if created {
        ctx.db().set(key, Value::Str(StrValue::raw(hll::new_sparse())), 0);
    }
    let v = lookup(ctx, key)?.ok_or(Reply::err("ERR internal error: HyperLogLog vanished"))?;
    Ok((v, created))
}

fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let max = sparse_max(ctx);
    let (v, created) = match lookup_or_create(ctx, &args[1]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    // Redis's `updated`: one for creating the key, one per element that changed a register.
    let mut updated = created as u64;
    for ele in &args[2..] {
        match hll::add(v, ele, max) {
            Ok(changed) => updated += changed as u64,
            Err(Corrupt) => return Reply::err(INVALID),
        }
    }
    if updated > 0 {
        hll::invalidate(v);
    }
    ctx.dirty(updated);
    Reply::Int((updated > 0) as i64)
}

fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        // The cardinality of the union, leaving every key as it is.
        let mut regs = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            match peek_hll(ctx, key) {
                Ok(Some(v)) => {
                    if hll::merge_into(&mut regs, v).is_err() {
                        return Reply::err(INVALID);
                    }
                }
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        return Reply::Int(hll::count_registers(&regs) as i64);
    }
    match read_hll(ctx, &args[1]) {
        Ok(None) => Reply::Int(0),
        Ok(Some(v)) => match hll::cached(v) {
            Some(card) => Reply::Int(card as i64),
            None => match hll::count(v) {
                Ok(card) => {
                    hll::set_cached(v, card);
                    // Writing the cache is a change Redis counts (and propagates).
                    ctx.dirty(1);
                    Reply::Int(card as i64)
                }
                Err(Corrupt) => Reply::err(INVALID),
            },
        },
        Err(e) => e,
    }
}

fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut regs = vec![0u8; hll::REGISTERS];
    let mut dense = false;
    for key in &args[1..] {
        match peek_hll(ctx, key) {
            Ok(Some(v)) => {
                dense |= hll::encoding(v) == Encoding::Dense;
                if hll::merge_into(&mut regs, v).is_err() {
                    return Reply::err(INVALID);
                }
            }
            Ok(None) => {}
            Err(e) => return e,
        }
    }
    let max = sparse_max(ctx);
    let (dst, _) = match lookup_or_create(ctx, &args[1]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    if dense && hll::to_dense(dst).is_err() {
        return Reply::err(INVALID);
    }
    for (i, &r) in regs.iter().enumerate() {
        // The destination was merged above, so it is valid: no register update can fail.
        if r != 0 && hll::set_register(dst, i, r, max).is_err() {
            return Reply::err(INVALID);
        }
    }
    hll::invalidate(dst);
    Reply::status("OK")
}

fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let v = match lookup(ctx, &args[2]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::err("ERR The specified key does not exist"),
        Err(e) => return e,
    };
    let sub = &args[1];
    if eq_ic(sub, "getreg") {
        if hll::to_dense(v).is_err() {
            return Reply::err(INVALID);
        }
        let regs = &v[hll::HDR_SIZE..];
        Reply::Array((0..hll::REGISTERS).map(|i| Reply::Int(hll::dense_get(regs, i) as i64)).collect())
    } else if eq_ic(sub, "decode") {
        match hll::encoding(v) {
            Encoding::Sparse => Reply::bulk_string(hll::decode(v)),
            Encoding::Dense => Reply::err("ERR HLL encoding is not sparse"),
        }
    } else if eq_ic(sub, "encoding") {
        Reply::status(match hll::encoding(v) {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        })
    } else if eq_ic(sub, "todense") {
        match hll::to_dense(v) {
            Ok(converted) => Reply::Int(converted as i64),
            Err(Corrupt) => Reply::err(INVALID),
        }
    } else {
        Reply::error(format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub)))
    }
}

/// PFSELFTEST: Redis's two checks, with a smaller budget so the shard stalls for milliseconds,
/// not seconds: 16 rounds of random dense registers read back unchanged (Redis: 1000), and
/// unique elements added to a sparse and a dense HyperLogLog up to 1,000,000 (Redis: 10^7),
/// checking at each power of ten that both agree, that small ones stay sparse and that the
/// error stays within six standard errors.
fn pfselftest(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR_SIZE];
    let mut expect = vec![0u8; hll::REGISTERS];
    for _ in 0..16 {
        for (i, e) in expect.iter_mut().enumerate() {
            *e = fastrand::u8(..64);
            hll::dense_set(&mut regs, i, *e);
        }
        for (i, &e) in expect.iter().enumerate() {
            let got = hll::dense_get(&regs, i);
            if got != e {
                return Reply::error(format!("TESTFAILED Register {i} should be {e} but is {got}"));
            }
        }
    }
    let max = sparse_max(ctx);
    let mut dense = hll::new_sparse();
    let mut sparse = hll::new_sparse();
    if hll::to_dense(&mut dense).is_err() {
        return Reply::err("TESTFAILED dense conversion");
    }
    let relerr = 1.04 / (hll::REGISTERS as f64).sqrt();
    let seed = fastrand::u64(..);
    let mut checkpoint = 1u64;
    for j in 1..=1_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let added = hll::add(&mut dense, &ele, max).and(hll::add(&mut sparse, &ele, max));
        if added.is_err() {
            return Reply::err("TESTFAILED corrupted while adding");
        }
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max / 2 && hll::encoding(&sparse) != Encoding::Sparse {
            return Reply::err("TESTFAILED sparse encoding not used");
        }
        let (Ok(a), Ok(b)) = (hll::count(&dense), hll::count(&sparse)) else {
            return Reply::err("TESTFAILED corrupted while counting");
        };
        if a != b {
            return Reply::err("TESTFAILED dense/sparse disagree");
        }
        let maxerr = if j == 10 { 1 } else { (relerr * 6.0 * checkpoint as f64).ceil() as u64 };
        let abserr = checkpoint.abs_diff(a);
        if abserr > maxerr {
            return Reply::error(format!("TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"));
        }
        checkpoint *= 10;
    }
    Reply::status("OK")
}
