//! DUMP and RESTORE / RESTORE-ASKING (`cluster.c dumpCommand`, `restoreCommand`).
//!
//! The payload codec is [`crate::persist::dump`]; this file holds the argument handling, with
//! Redis 7.0's order of checks: options, BUSYKEY, the TTL, the payload footer, the value.
//! Payloads are always validated deeply (as `sanitize-dump-payload yes`).

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, KEY1};
use super::util::{eq_ic, parse_i64};
use crate::persist::dump::{self, PayloadError};
use crate::protocol::Reply;
use crate::storage::db::{lfu_enabled, lru_clock};
use crate::storage::Entry;
use bytes::Bytes;

/// The DUMP/RESTORE family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dump", 2, READONLY, "@keyspace @read @slow", KEY1, Exec::Keyed(dump_cmd)),
    spec("restore", -4, WRITE | DENYOOM, "@keyspace @write @slow @dangerous", KEY1, Exec::Keyed(restore)),
    spec("restore-asking", -4, WRITE | DENYOOM | ASKING, "@keyspace @write @slow @dangerous", KEY1, Exec::Keyed(restore)),
];

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const BAD_TTL: &str = "ERR Invalid TTL value, must be >= 0";
const BAD_IDLETIME: &str = "ERR Invalid IDLETIME value, must be >= 0";
const BAD_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";

/// Logs (verbose) which compact encoding of a refused payload failed its checks, as Redis's
/// RESTORE logs the check that failed.
fn log_bad_payload(payload: &[u8]) {
    if let Some(what) = payload.first().and_then(|&t| crate::persist::compact_encoding_name(t)) {
        tracing::debug!("RESTORE payload refused: {} integrity check failed.", what);
    }
}
const BAD_DATA: &str = "ERR Bad data format";

/// Whether `rdbcompression` is on.
pub fn compression(ctx: &Ctx<'_>) -> bool {
    ctx.shard.config.get("rdbcompression") != Some("no")
}

fn dump_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let compress = compression(ctx);
    let now = ctx.now_ms;
    let payload = ctx.db().get(&args[1], now).map(|e| dump::create(&e.value, compress));
    ctx.count_lookup(&args[1], payload.is_some());
    match payload {
        Some(p) => Reply::Bulk(Bytes::from(p)),
        None => Reply::Nil,
    }
}

/// RESTORE's options.
#[derive(Default)]
struct Options {
    replace: bool,
    absttl: bool,
    idle: Option<i64>,
    freq: Option<i64>,
}

fn parse_options(args: &[Bytes]) -> Result<Options, Reply> {
    let mut o = Options::default();
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if eq_ic(&args[j], "replace") {
            o.replace = true;
        } else if eq_ic(&args[j], "absttl") {
            o.absttl = true;
        } else if eq_ic(&args[j], "idletime") && more && o.freq.is_none() {
            let v = parse_i64(&args[j + 1]).ok_or(Reply::err(errors::NOT_INTEGER))?;
            if v < 0 {
                return Err(Reply::err(BAD_IDLETIME));
            }
            o.idle = Some(v);
            j += 1;
        } else if eq_ic(&args[j], "freq") && more && o.idle.is_none() {
            let v = parse_i64(&args[j + 1]).ok_or(Reply::err(errors::NOT_INTEGER))?;
            if !(0..=255).contains(&v) {
                return Err(Reply::err(BAD_FREQ));
            }
            o.freq = Some(v);
            j += 1;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

/// The access word of a restored key (`objectSetLRUOrLFU`): FREQ under an LFU policy,
/// IDLETIME otherwise, else a fresh clock.
fn access_word(o: &Options) -> u32 {
    let clock = lru_clock();
    match (lfu_enabled(), o.freq, o.idle) {
        (true, Some(f), _) => (clock & !0xFF) | f as u32,
        (false, _, Some(idle)) => clock.saturating_sub(idle.min(u32::MAX as i64) as u32),
        _ => clock,
    }
}

fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let o = match parse_options(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    let now = ctx.now_ms;
    if !o.replace && ctx.db().get(key, now).is_some() {
        return Reply::err(BUSYKEY);
    }
    let Some(ttl) = parse_i64(&args[2]) else { return Reply::err(errors::NOT_INTEGER) };
    if ttl < 0 {
        return Reply::err(BAD_TTL);
    }
    let value = match dump::restore(&args[3]) {
        Ok(v) => v,
        Err(PayloadError::VersionOrChecksum) => return Reply::err(BAD_PAYLOAD),
        Err(PayloadError::BadData) => {
            log_bad_payload(&args[3]);
            return Reply::err(BAD_DATA);
        }
    };
    if o.replace {
        ctx.db().remove(key);
    }
    let expire_at = match ttl {
        0 => 0,
        t if o.absttl => t as u64,
        t => (now as i64).saturating_add(t) as u64,
    };
    // Already expired: nothing is stored, except on a replica, which keeps what its master
    // sent until the master's DEL (`checkAlreadyExpired`).
    if expire_at != 0 && expire_at <= now && !crate::storage::replica_expiry() {
        return Reply::Ok;
    }
    let lru = access_word(&o);
    ctx.db().insert(key, Entry { value, expire_at, lru });
    Reply::Ok
}
