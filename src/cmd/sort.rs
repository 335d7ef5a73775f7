//! SORT and SORT_RO (sort.c in Redis): sort a list, set or sorted set numerically or
//! lexicographically, by the elements or by keys a `BY` pattern names, with `LIMIT`, `GET`
//! patterns (`#`, `key*`, `hash*->field`) and `STORE` into a list.
//!
//! Keys: the sorted key and the STORE destination are declared like any multi-key command.
//! The keys BY and GET patterns name are only known from the data, so SORT declares them as
//! derived keys ([`Keys::Derived`]): on a node with one shard they are read in place; on a node
//! with several shards a call that uses such a pattern holds every shard, copies the sorted key,
//! then the keys its patterns name, runs on that copy and writes back the destination only (see
//! `crate::transaction`). Pattern keys are only read, so nothing of theirs is written back. With
//! `cluster-enabled yes`, BY and GET patterns are refused as in Redis.

use super::ctx::{Ctx, ShardState};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::Value;
use bytes::Bytes;
use std::cmp::Ordering;

/// The sort family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sort", -2, WRITE | DENYOOM, "@write @set @sortedset @list @slow @dangerous", Keys::Derived { legacy: (1, 1, 1), find: sort_keys, reads_more: uses_patterns, more: pattern_keys }, Exec::Keyed(sort)),
    spec("sort_ro", -2, READONLY, "@read @set @sortedset @list @slow @dangerous", Keys::Derived { legacy: (1, 1, 1), find: sort_ro_keys, reads_more: uses_patterns, more: pattern_keys }, Exec::Keyed(sort_ro)),
];

/// Parsed options.
struct Opts {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    /// Argument index of the STORE destination.
    store: Option<usize>,
    by: Option<Bytes>,
    /// BY a pattern without `*`: keep the native order.
    dontsort: bool,
    gets: Vec<Bytes>,
}

/// Parses the options after the key, as Redis does (the last STORE/BY wins).
fn parse(args: &[Bytes], readonly: bool, cluster: bool) -> Result<Opts, Reply> {
    let mut o =
        Opts { desc: false, alpha: false, limit: None, store: None, by: None, dontsort: false, gets: Vec::new() };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            let start = parse_i64(&args[j + 1]).ok_or(Reply::err(errors::NOT_INTEGER))?;
            let count = parse_i64(&args[j + 2]).ok_or(Reply::err(errors::NOT_INTEGER))?;
            o.limit = Some((start, count));
            j += 2;
        } else if !readonly && eq_ic(a, "store") && left >= 1 {
            o.store = Some(j + 1);
            j += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let pat = &args[j + 1];
            if !pat.contains(&b'*') {
                o.dontsort = true;
            } else if cluster {
                return Err(Reply::err("ERR BY option of SORT denied in Cluster mode."));
            }
            o.by = Some(pat.clone());
            j += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            if cluster {
                return Err(Reply::err("ERR GET option of SORT denied in Cluster mode."));
            }
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

/// SORT's keys: the sorted key and the STORE destination. When the options parse, the
/// destination is the one SORT will write; otherwise Redis's `sortGetKeys` scan is used (the
/// command then fails before writing anything).
fn sort_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    if let Ok(o) = parse(args, false, false) {
        return Ok(std::iter::once(1).chain(o.store).collect());
    }
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "limit") {
            i += 2;
        } else if eq_ic(a, "get") || eq_ic(a, "by") {
            i += 1;
        } else if eq_ic(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    Ok(std::iter::once(1).chain(store).collect())
}

fn sort_ro_keys(_args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    Ok(vec![1])
}

/// True when the call reads keys named by patterns (BY with `*` that is not ignored, or a GET
/// other than `#`).
fn uses_patterns(args: &[Bytes]) -> bool {
    let Ok(o) = parse(args, false, false) else { return false };
    let by = o.by.as_ref().is_some_and(|p| p.contains(&b'*'));
    by || o.gets.iter().any(|g| &g[..] != b"#" && g.contains(&b'*'))
}

/// The keys the patterns of a call name, from the elements of the sorted key in `db`.
fn pattern_keys(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Vec<Bytes> {
    let Ok(o) = parse(args, false, false) else { return Vec::new() };
    let now = crate::storage::cached_ms();
    let Some(elements) =
        shard.ks.dbs.get_mut(db).and_then(|d| d.get_notouch(&args[1], now)).and_then(|e| elements(&e.value))
    else {
        return Vec::new();
    };
    let pats: Vec<&Bytes> = o.by.iter().chain(o.gets.iter()).collect();
    let mut out: Vec<Bytes> = Vec::new();
    let mut seen = hashbrown::HashSet::new();
    for e in &elements {
        for p in &pats {
            if let Some((key, _)) = substitute(p, e) {
                if seen.insert(key.clone()) {
                    out.push(Bytes::from(key));
                }
            }
        }
    }
    out
}

/// The elements of a list, set or sorted set (sorted sets ascending), None for other types.
fn elements(v: &Value) -> Option<Vec<Vec<u8>>> {
    match v {
        Value::List(l) => Some(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => Some(s.members()),
        Value::ZSet(z) => Some(z.iter().map(|(m, _)| m.to_vec()).collect()),
        _ => None,
    }
}

/// The key (and hash field) a pattern names for an element; None for `#` or a pattern without
/// `*`. The field is what follows the first `->` after the `*`, when not empty.
fn substitute(pat: &[u8], ele: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if pat == b"#" {
        return None;
    }
    let star = pat.iter().position(|&c| c == b'*')?;
    let after = &pat[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&a| a + 2 < after.len());
    let (post, field) = match arrow {
        Some(a) => (&after[..a], Some(after[a + 2..].to_vec())),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pat.len() + ele.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(ele);
    key.extend_from_slice(post);
    Some((key, field))
}

/// The value a pattern gives for an element (Redis's `lookupKeyByPattern`): the element for
/// `#`, a string key's value, a hash field's value, or None.
fn lookup_pattern(ctx: &mut Ctx<'_>, pat: &[u8], ele: &[u8]) -> Option<Vec<u8>> {
    if pat == b"#" {
        return Some(ele.to_vec());
    }
    let (key, field) = substitute(pat, ele)?;
    // A read lookup, counted (and `keymiss`) as Redis counts it.
    let e = ctx.read_entry(&key)?;
    match (&e.value, field) {
        (Value::Hash(h), Some(f)) => h.get(&f).map(<[u8]>::to_vec),
        (Value::Str(s), None) => Some(s.to_bytes().to_vec()),
        _ => None,
    }
}

/// An element with what it sorts by.
struct Item {
    ele: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the looked-up value (None sorts first).
    cmp: Option<Vec<u8>>,
}

fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run(ctx, args, true)
}

fn run(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> Reply {
    let cluster = ctx.shard.config.cluster_enabled;
    let mut o = match parse(args, readonly, cluster) {
        Ok(o) => o,
        Err(e) => return e,
    };
    // Load the elements in their native order (sorted sets ascending by score).
    let (mut items, kind) = match ctx.read_entry(&args[1]) {
        None => (Vec::new(), Kind::List),
        Some(e) => {
            let kind = match &mut e.value {
                Value::List(_) => Kind::List,
                Value::Set(_) => Kind::Set,
                Value::ZSet(z) => {
                    // Redis converts the sorted set to a skiplist before sorting it.
                    z.make_skiplist();
                    Kind::ZSet
                }
                _ => return Reply::err(errors::WRONGTYPE),
            };
            let eles = elements(&e.value).unwrap_or_default();
            (eles.into_iter().map(|ele| Item { ele, score: 0.0, cmp: None }).collect::<Vec<_>>(), kind)
        }
    };
    // A set has no order of its own: STORE (or nosort) of a set, or a script's, sorts it
    // alphabetically (replicas and the AOF must see the same order).
    if o.dontsort && kind == Kind::Set && (o.store.is_some() || crate::script::vm::in_script()) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = items.len() as i64;
    let (mut start, mut end) = limits(o.limit, len);
    if o.dontsort {
        // Native order, reversed by DESC for lists and sorted sets (not for sets).
        if o.desc && kind != Kind::Set {
            items.reverse();
        }
        if end >= start {
            items.truncate((end + 1) as usize);
            items.drain(..start as usize);
        } else {
            items.clear();
        }
        end -= start;
        start = 0;
    } else if let Err(e) = score_items(ctx, &mut items, &o) {
        return e;
    } else {
        let by = o.by.is_some();
        let store = o.store.is_some();
        items.sort_by(|a, b| {
            let c = compare(a, b, o.alpha, by, store);
            if o.desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    let range = if end >= start { &items[start as usize..=end as usize] } else { &items[..0] };
    match o.store {
        None => {
            let mut out = Vec::new();
            for it in range {
                if o.gets.is_empty() {
                    out.push(Reply::Bulk(Bytes::from(it.ele.clone())));
                }
                for g in &o.gets {
                    out.push(lookup_pattern(ctx, g, &it.ele).map_or(Reply::Nil, |v| Reply::Bulk(Bytes::from(v))));
                }
            }
            Reply::Array(out)
        }
        Some(at) => {
            let mut list = crate::storage::ListValue::new();
            for it in range {
                if o.gets.is_empty() {
                    list.push_back(&it.ele);
                }
                for g in &o.gets {
                    list.push_back(&lookup_pattern(ctx, g, &it.ele).unwrap_or_default());
                }
            }
            let n = list.len() as i64;
            if list.is_empty() {
                ctx.db().remove(&args[at]);
            } else {
                ctx.db().set(&args[at], Value::List(Box::new(list)), 0);
            }
            Reply::Int(n)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// Redis's LIMIT arithmetic: the inclusive output range `start..=end` (empty when end < start).
fn limits(limit: Option<(i64, i64)>, len: i64) -> (i64, i64) {
    let (ls, lc) = limit.unwrap_or((0, -1));
    let start = ls.max(0).min(len);
    let count = lc.max(-1).min(len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    if start >= len {
        return (len - 1, len - 2);
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// Fills each item's sort key: its BY value (or itself) as a number, or for ALPHA with BY the
/// BY value itself. Numbers that do not convert fail the whole command (after every element was
/// looked at, as in Redis).
fn score_items(ctx: &mut Ctx<'_>, items: &mut [Item], o: &Opts) -> Result<(), Reply> {
    let mut bad = false;
    for it in items.iter_mut() {
        let by = match &o.by {
            Some(p) => match lookup_pattern(ctx, p, &it.ele) {
                Some(v) => v,
                None => continue,
            },
            None => {
                if o.alpha {
                    continue;
                }
                it.ele.clone()
            }
        };
        if o.alpha {
            it.cmp = Some(by);
        } else {
            match strtod_whole(&by) {
                Some(s) => it.score = s,
                None => bad = true,
            }
        }
    }
    if bad {
        return Err(Reply::err("ERR One or more scores can't be converted into double"));
    }
    Ok(())
}

/// Redis's `sortCompare` (ascending): numbers with ties broken by the elements' bytes; ALPHA
/// by the BY values (absent first) or by the elements.
fn compare(a: &Item, b: &Item, alpha: bool, by: bool, store: bool) -> Ordering {
    if !alpha {
        return a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.ele.cmp(&b.ele));
    }
    if by {
        return match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => collate(x, y, store),
        };
    }
    collate(&a.ele, &b.ele, store)
}

/// ALPHA comparison: bytes when storing (Redis's `compareStringObjects`), otherwise `strcoll`,
/// which in the C locale redis-server runs with compares bytes up to the first NUL.
fn collate(a: &[u8], b: &[u8], store: bool) -> Ordering {
    if store {
        a.cmp(b)
    } else {
        c_str(a).cmp(c_str(b))
    }
}

fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// C's `strtod` over the whole string (up to a NUL, like Redis's C string): leading spaces, a
/// sign, decimal or hexadecimal digits with an exponent, `inf`/`infinity`; None when something
/// is left over, for NaN, and for values out of range (`ERANGE`).
pub fn strtod_whole(b: &[u8]) -> Option<f64> {
    let s = c_str(b);
    let mut i = s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
    let body = &s[i..];
    if body.is_empty() {
        // Nothing converted: strtod returns 0 and points at the (empty) rest.
        return Some(0.0);
    }
    let neg = body[0] == b'-';
    if matches!(body[0], b'+' | b'-') {
        i += 1;
    }
    let rest = &s[i..];
    let sign = if neg { -1.0 } else { 1.0 };
    let lower: Vec<u8> = rest.iter().map(u8::to_ascii_lowercase).collect();
    if lower == b"inf" || lower == b"infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower.starts_with(b"nan") {
        return None;
    }
    if lower.starts_with(b"0x") && lower.len() > 2 {
        return hex_float(&lower[2..]).map(|v| sign * v);
    }
    // Decimal: digits [. digits] [e [sign] digits], all of it.
    let digits = |t: &[u8]| t.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(rest);
    let mut p = int;
    let mut frac = 0;
    if rest.get(p) == Some(&b'.') {
        frac = digits(&rest[p + 1..]);
        p += 1 + frac;
    }
    if int + frac == 0 {
        // No number at all: strtod converts nothing, so the rest is not empty.
        return None;
    }
    if matches!(rest.get(p), Some(b'e' | b'E')) {
        let mut q = p + 1;
        if matches!(rest.get(q), Some(b'+' | b'-')) {
            q += 1;
        }
        let exp = digits(&rest[q..]);
        if exp > 0 {
            p = q + exp;
        }
    }
    if p != rest.len() {
        return None;
    }
    let v: f64 = std::str::from_utf8(rest).ok()?.parse().ok()?;
    let nonzero = rest.iter().take_while(|c| **c != b'e' && **c != b'E').any(|c| matches!(c, b'1'..=b'9'));
    range_checked(v, nonzero).map(|v| sign * v)
}

/// ERANGE: overflow to infinity, or a nonzero number that underflows to zero or a subnormal.
fn range_checked(v: f64, nonzero: bool) -> Option<f64> {
    if v.is_infinite() || (nonzero && v.abs() < f64::MIN_POSITIVE) {
        None
    } else {
        Some(v)
    }
}

/// A hexadecimal float body after `0x`: hex digits [. hex digits] [p [sign] decimal digits].
fn hex_float(t: &[u8]) -> Option<f64> {
    let hexd = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    let int = hexd(t);
    let mut p = int;
    let mut frac = 0;
    if t.get(p) == Some(&b'.') {
        frac = hexd(&t[p + 1..]);
        p += 1 + frac;
    }
    if int + frac == 0 {
        // "0x" alone converts the "0" and leaves "x...": not a whole number.
        return None;
    }
    let frac_digits = if frac > 0 { &t[int + 1..int + 1 + frac] } else { &t[..0] };
    let mut mant = 0f64;
    for &c in t[..int].iter().chain(frac_digits) {
        mant = mant * 16.0 + (c as char).to_digit(16)? as f64;
    }
    let nonzero = mant != 0.0;
    let mut exp: i64 = -4 * frac as i64;
    if t.get(p) == Some(&b'p') {
        let mut q = p + 1;
        let neg = t.get(q) == Some(&b'-');
        if matches!(t.get(q), Some(b'+' | b'-')) {
            q += 1;
        }
        let n = t[q..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            let e: i64 = std::str::from_utf8(&t[q..q + n]).ok()?.parse().unwrap_or(i64::MAX / 2);
            exp += if neg { -e } else { e };
            p = q + n;
        }
    }
    if p != t.len() {
        return None;
    }
    let v = mant * 2f64.powi(exp.clamp(-4000, 4000) as i32);
    range_checked(v, nonzero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_c() {
        assert_eq!(strtod_whole(b"1.5"), Some(1.5));
        assert_eq!(strtod_whole(b"  -2e3"), Some(-2000.0));
        assert_eq!(strtod_whole(b""), Some(0.0));
        assert_eq!(strtod_whole(b"0x10"), Some(16.0));
        assert_eq!(strtod_whole(b"0x1.8p1"), Some(3.0));
        assert_eq!(strtod_whole(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod_whole(b".5"), Some(0.5));
        assert_eq!(strtod_whole(b"5."), Some(5.0));
        assert_eq!(strtod_whole(b"1e"), None);
        assert_eq!(strtod_whole(b"nan"), None);
        assert_eq!(strtod_whole(b"abc"), None);
        assert_eq!(strtod_whole(b"1 "), None);
        assert_eq!(strtod_whole(b"1e400"), None);
        assert_eq!(strtod_whole(b"1e-400"), None);
        assert_eq!(strtod_whole(b"0e-400"), Some(0.0));
        assert_eq!(strtod_whole(b"3\0junk"), Some(3.0));
    }

    #[test]
    fn patterns() {
        assert_eq!(substitute(b"w_*", b"a"), Some((b"w_a".to_vec(), None)));
        assert_eq!(substitute(b"h_*->f", b"a"), Some((b"h_a".to_vec(), Some(b"f".to_vec()))));
        assert_eq!(substitute(b"h_*->", b"a"), Some((b"h_a->".to_vec(), None)));
        assert_eq!(substitute(b"nostar", b"a"), None);
        assert_eq!(substitute(b"#", b"a"), None);
    }

    #[test]
    fn limit_math() {
        assert_eq!(limits(None, 5), (0, 4));
        assert_eq!(limits(Some((1, 2)), 5), (1, 2));
        assert_eq!(limits(Some((10, 2)), 5), (4, 3));
        assert_eq!(limits(Some((-3, 100)), 5), (0, 4));
        assert_eq!(limits(Some((0, 0)), 5), (0, -1));
        assert_eq!(limits(None, 0), (-1, -2));
    }
}
