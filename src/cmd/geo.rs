//! Geo commands (geo.c in Redis): positions stored in sorted sets whose scores are 52-bit
//! geohash cells (`storage::geohash`). GEOADD is ZADD of encoded positions; searches scan the
//! centre cell and its eight neighbours at a precision chosen from the search size, filter by
//! the exact distance, then sort and limit as Redis does.

use super::ctx::Ctx;
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Keys, KEY1};
use super::util::{eq_ic, parse_f64, parse_i64};
use super::zset::{get_z, read_z};
use crate::protocol::Reply;
use crate::storage::geohash::{self, Search, Shape};
use crate::storage::{Value, ZSetValue};
use bytes::Bytes;

/// GEORADIUS[BYMEMBER] key ... [STORE k] [STOREDIST k]: the source and the store targets.
fn georadius_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    let base = if args.first().is_some_and(|a| eq_ic(a, "georadius")) { 6 } else { 5 };
    let mut keys = vec![1];
    let mut i = base;
    while i + 1 < args.len() {
        if eq_ic(&args[i], "store") || eq_ic(&args[i], "storedist") {
            keys.push(i + 1);
            i += 1;
        }
        i += 1;
    }
    Ok(keys)
}

/// GEOSEARCHSTORE destination source ...
/// The geo family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("geoadd", -5, WRITE | DENYOOM, "@write @geo @slow", KEY1, Exec::Keyed(geoadd)),
    spec("geodist", -4, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(geodist)),
    spec("geohash", -2, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(geohash_cmd)),
    spec("geopos", -2, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(geopos)),
    spec("georadius", -6, WRITE | DENYOOM, "@write @geo @slow", Keys::Custom { legacy: (1, 1, 1), find: georadius_keys }, Exec::Keyed(georadius)),
    spec("georadius_ro", -6, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(georadius_ro)),
    spec("georadiusbymember", -5, WRITE | DENYOOM, "@write @geo @slow", Keys::Custom { legacy: (1, 1, 1), find: georadius_keys }, Exec::Keyed(georadiusbymember)),
    spec("georadiusbymember_ro", -5, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(georadiusbymember_ro)),
    spec("geosearch", -7, READONLY, "@read @geo @slow", KEY1, Exec::Keyed(geosearch)),
    spec("geosearchstore", -8, WRITE | DENYOOM, "@write @geo @slow", keys(1, 2, 1), Exec::Keyed(geosearchstore)),
];

/// A position argument pair, validated as Redis's `extractLongLatOrReply`.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Reply> {
    let (Some(x), Some(y)) = (parse_f64(lon), parse_f64(lat)) else { return Err(Reply::err(errors::NOT_FLOAT)) };
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x) || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y) {
        return Err(Reply::error(format!("ERR invalid longitude,latitude pair {x:.6},{y:.6}")));
    }
    Ok((x, y))
}

/// Meters per unit (M, KM, FT, MI).
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    if eq_ic(arg, "m") {
        Ok(1.0)
    } else if eq_ic(arg, "km") {
        Ok(1000.0)
    } else if eq_ic(arg, "ft") {
        Ok(0.3048)
    } else if eq_ic(arg, "mi") {
        Ok(1609.34)
    } else {
        Err(Reply::err("ERR unsupported unit provided. please use M, KM, FT, MI"))
    }
}

/// Redis's `fixedpoint_d2string(.., 4)`: rounded to the nearest 1/10000 (ties to even).
fn distance_text(d: f64) -> Reply {
    let scaled = (d * 10000.0).round_ties_even() as i64;
    let (sign, v) = if scaled < 0 { ("-", scaled.unsigned_abs()) } else { ("", scaled as u64) };
    Reply::Bulk(Bytes::from(format!("{sign}{}.{:04}", v / 10000, v % 10000)))
}

/// A coordinate as Redis's `addReplyHumanLongDouble`: `%.17Lf` without trailing zeros.
fn coord(v: f64) -> Reply {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    Reply::HumanDouble(Bytes::from(s))
}

fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut i) = (false, false, 2);
    while i < args.len() {
        if eq_ic(&args[i], "nx") {
            nx = true;
        } else if eq_ic(&args[i], "xx") {
            xx = true;
        } else if !eq_ic(&args[i], "ch") {
            break;
        }
        i += 1;
    }
    if (args.len() - i) % 3 != 0 || (xx && nx) {
        return Reply::err(errors::SYNTAX);
    }
    let mut zargs: Vec<Bytes> = vec![Bytes::from_static(b"zadd")];
    zargs.extend(args[1..i].iter().cloned());
    for t in args[i..].chunks(3) {
        let (lon, lat) = match lon_lat(&t[0], &t[1]) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(score) = geohash::score_of(lon, lat) else { return Reply::err(errors::NOT_FLOAT) };
        zargs.push(Bytes::from(score.to_string()));
        zargs.push(t[2].clone());
    }
    super::zset::zadd(ctx, &zargs)
}

fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let z = match read_z(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.as_ref().and_then(|z| z.score(m)).and_then(geohash::decode_score) {
                Some((lon, lat)) => Reply::Array(vec![coord(lon), coord(lat)]),
                None => Reply::NilArray,
            })
            .collect(),
    )
}

fn geohash_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let z = match read_z(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.as_ref().and_then(|z| z.score(m)).and_then(geohash::standard_geohash) {
                Some(h) => Reply::Bulk(Bytes::from(h)),
                None => Reply::Nil,
            })
            .collect(),
    )
}

fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => match unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        _ => return Reply::err(errors::SYNTAX),
    };
    let z = match read_z(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let (Some(a), Some(b)) = (z.score(&args[2]), z.score(&args[3])) else { return Reply::Nil };
    match (geohash::decode_score(a), geohash::decode_score(b)) {
        (Some((x1, y1)), Some((x2, y2))) => distance_text(geohash::distance(x1, y1, x2, y2) / to_meter),
        _ => Reply::Nil,
    }
}

/// Which search command runs (Redis's RADIUS_* / GEOSEARCH flags).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Radius { nostore: bool },
    ByMember { nostore: bool },
    Search,
    SearchStore,
}

fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::Radius { nostore: false })
}
fn georadius_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::Radius { nostore: true })
}
fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::ByMember { nostore: false })
}
fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::ByMember { nostore: true })
}
fn geosearch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::Search)
}
fn geosearchstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search(ctx, args, Kind::SearchStore)
}

/// Sort order of results.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    None,
    Asc,
    Desc,
}

/// A parsed search request.
struct Request {
    centre: Option<(f64, f64)>,
    shape: Option<(Shape, f64)>,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    any: bool,
    count: usize,
    order: Order,
    store: Option<(Bytes, bool)>,
}

/// One point found.
struct Found {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Parses a search's arguments in Redis's order of checks (the source's position and the
/// radius first for GEORADIUS*, then the options left to right).
fn parse(z: Option<&ZSetValue>, args: &[Bytes], kind: Kind) -> Result<Request, Reply> {
    let mut r = Request {
        centre: None,
        shape: None,
        withdist: false,
        withhash: false,
        withcoord: false,
        any: false,
        count: 0,
        order: Order::None,
        store: None,
    };
    let radius_at = |i: usize| -> Result<(Shape, f64), Reply> {
        let Some(d) = parse_f64(&args[i]) else { return Err(Reply::err("ERR need numeric radius")) };
        if d < 0.0 {
            return Err(Reply::err("ERR radius cannot be negative"));
        }
        Ok((Shape::Radius(d), unit(&args[i + 1])?))
    };
    let member_pos = |m: &[u8]| -> Result<(f64, f64), Reply> {
        z.and_then(|z| z.score(m))
            .and_then(geohash::decode_score)
            .ok_or_else(|| Reply::err("ERR could not decode requested zset member"))
    };
    let base = match kind {
        Kind::Radius { .. } => {
            r.centre = Some(lon_lat(&args[2], &args[3])?);
            r.shape = Some(radius_at(4)?);
            6
        }
        Kind::ByMember { .. } if z.is_none() => 5,
        Kind::ByMember { .. } => {
            r.centre = Some(member_pos(&args[2])?);
            r.shape = Some(radius_at(3)?);
            5
        }
        Kind::Search => 2,
        Kind::SearchStore => {
            r.store = Some((args[1].clone(), false));
            3
        }
    };
    let search = matches!(kind, Kind::Search | Kind::SearchStore);
    let nostore = matches!(kind, Kind::Radius { nostore: true } | Kind::ByMember { nostore: true });
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut i = base;
    let left = |i: usize| args.len() - i - 1;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "withdist") {
            r.withdist = true;
        } else if eq_ic(a, "withhash") {
            r.withhash = true;
        } else if eq_ic(a, "withcoord") {
            r.withcoord = true;
        } else if eq_ic(a, "any") {
            r.any = true;
        } else if eq_ic(a, "asc") {
            r.order = Order::Asc;
        } else if eq_ic(a, "desc") {
            r.order = Order::Desc;
        } else if eq_ic(a, "count") && left(i) >= 1 {
            let n = parse_i64(&args[i + 1]).ok_or_else(|| Reply::err(errors::NOT_INTEGER))?;
            if n <= 0 {
                return Err(Reply::err("ERR COUNT must be > 0"));
            }
            r.count = n as usize;
            i += 1;
        } else if (eq_ic(a, "store") || eq_ic(a, "storedist")) && left(i) >= 1 && !nostore && !search {
            r.store = Some((args[i + 1].clone(), eq_ic(a, "storedist")));
            i += 1;
        } else if eq_ic(a, "storedist") && kind == Kind::SearchStore {
            r.store = Some((args[1].clone(), true));
        } else if eq_ic(a, "frommember") && left(i) >= 1 && search && !fromloc {
            if z.is_some() {
                r.centre = Some(member_pos(&args[i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if eq_ic(a, "fromlonlat") && left(i) >= 2 && search && !frommember {
            r.centre = Some(lon_lat(&args[i + 1], &args[i + 2])?);
            fromloc = true;
            i += 2;
        } else if eq_ic(a, "byradius") && left(i) >= 2 && search && !bybox {
            r.shape = Some(radius_at(i + 1)?);
            byradius = true;
            i += 2;
        } else if eq_ic(a, "bybox") && left(i) >= 3 && search && !byradius {
            let w = parse_f64(&args[i + 1]).ok_or_else(|| Reply::err("ERR need numeric width"))?;
            let h = parse_f64(&args[i + 2]).ok_or_else(|| Reply::err("ERR need numeric height"))?;
            if w < 0.0 || h < 0.0 {
                return Err(Reply::err("ERR height or width cannot be negative"));
            }
            r.shape = Some((Shape::Box(w, h), unit(&args[i + 3])?));
            bybox = true;
            i += 3;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        i += 1;
    }
    if r.store.is_some() && (r.withdist || r.withhash || r.withcoord) {
        let what = if kind == Kind::SearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(Reply::error(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if search && !(frommember || fromloc) {
        return Err(Reply::error(format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if search && !(byradius || bybox) {
        return Err(Reply::error(format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if r.any && r.count == 0 {
        return Err(Reply::err("ERR the ANY argument requires COUNT argument"));
    }
    Ok(r)
}

/// Points of `z` inside the search, scanning the nine cells in Redis's order; stops at `limit`
/// points when non-zero (COUNT ... ANY).
fn points(z: &ZSetValue, s: &Search, limit: usize) -> Vec<Found> {
    let cells = geohash::areas(s);
    let mut out = Vec::new();
    let mut last = 0usize;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() || (last != 0 && *cell == cells[last]) {
            continue;
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*cell);
        let start = z.count_below(min as f64, false);
        for (m, score) in z.range(start, usize::MAX) {
            if score >= max as f64 {
                break;
            }
            if let Some((lon, lat)) = geohash::decode_score(score) {
                if let Some(dist) = geohash::within(s, lon, lat) {
                    out.push(Found { member: m.to_vec(), score, lon, lat, dist });
                }
            }
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
        last = i;
    }
    out
}

fn search(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> Reply {
    let src = if kind == Kind::SearchStore { 2 } else { 1 };
    let req = {
        let z = match read_z(ctx, &args[src]) {
            Ok(z) => z,
            Err(e) => return e,
        };
        match parse(z.as_deref(), args, kind) {
            Ok(r) => r,
            Err(e) => return e,
        }
    };
    let found = {
        let Ok(Some(z)) = get_z(ctx, &args[src]) else {
            return match req.store {
                Some((key, _)) => {
                    ctx.db().remove(&key);
                    Reply::Int(0)
                }
                None => Reply::Array(Vec::new()),
            };
        };
        let (Some((lon, lat)), Some((shape, conversion))) = (req.centre, req.shape) else {
            return Reply::Array(Vec::new());
        };
        let s = Search { lon, lat, shape, conversion };
        let mut found = points(z, &s, if req.any { req.count } else { 0 });
        let order = if req.count != 0 && req.order == Order::None && !req.any { Order::Asc } else { req.order };
        match order {
            Order::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
            Order::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
            Order::None => {}
        }
        if req.count != 0 {
            found.truncate(req.count);
        }
        for f in found.iter_mut() {
            f.dist /= conversion;
        }
        found
    };
    match req.store {
        None => reply(found, &req),
        Some((key, storedist)) => {
            let n = found.len();
            if n == 0 {
                ctx.db().remove(&key);
            } else {
                let mut z = ZSetValue::default();
                for f in &found {
                    z.insert(&f.member, if storedist { f.dist } else { f.score });
                }
                ctx.db().set(&key, Value::ZSet(z), 0);
            }
            Reply::Int(n as i64)
        }
    }
}

fn reply(found: Vec<Found>, req: &Request) -> Reply {
    let options = req.withdist || req.withhash || req.withcoord;
    Reply::Array(
        found
            .into_iter()
            .map(|f| {
                let member = Reply::Bulk(Bytes::from(f.member));
                if !options {
                    return member;
                }
                let mut item = vec![member];
                if req.withdist {
                    item.push(distance_text(f.dist));
                }
                if req.withhash {
                    item.push(Reply::Int(f.score as i64));
                }
                if req.withcoord {
                    item.push(Reply::Array(vec![coord(f.lon), coord(f.lat)]));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats_match_redis() {
        assert_eq!(distance_text(166274.15156960033), Reply::Bulk(Bytes::from("166274.1516")));
        assert_eq!(distance_text(0.0), Reply::Bulk(Bytes::from("0.0000")));
        assert_eq!(coord(13.361389338970184), Reply::HumanDouble(Bytes::from("13.36138933897018433")));
        assert_eq!(coord(-1.5), Reply::HumanDouble(Bytes::from("-1.5")));
    }

    #[test]
    fn store_targets_are_keys() {
        let a = |v: &[&str]| v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect::<Vec<_>>();
        let args = a(&["georadius", "src", "1", "2", "3", "km", "STORE", "dst", "STOREDIST", "d2"]);
        assert_eq!(georadius_keys(&args).expect("keys"), vec![1, 7, 9]);
        let args = a(&["GEORADIUSBYMEMBER", "src", "m", "3", "km", "store", "dst"]);
        assert_eq!(georadius_keys(&args).expect("keys"), vec![1, 6]);
    }
}
