//! Values in Redis 7.0's RDB encodings (`rdbSaveObject` / `rdbLoadObject`).
//!
//! Writing picks the type Redis 7.0 writes for the same encoding: strings 0; lists 18
//! (quicklist of listpack nodes, split as 7.0's quicklist splits them); hashes 16 (listpack) or
//! 4; sets 11 (intset) or 2; sorted sets 17 (listpack, ascending) or 5 (highest score first).
//! Reading accepts those plus the legacy 1, 3, 9, 10, 12, 13 and 14, and builds slotcore's own
//! encodings through the ordinary insert paths, so the usual thresholds decide them.

use super::listpack::{self, Elem};
use super::rdb::{self, put_len, put_string, Reader};
use super::{intset, ziplist, BadData, Result};
use crate::storage::hash::HashValue;
use crate::storage::list::{self, ListValue};
use crate::storage::set::SetValue;
use crate::storage::value::{StrValue, Value};
use crate::storage::zset::ZSetValue;

/// RDB object type codes (`rdb.h`).
pub mod types {
    /// String.
    pub const STRING: u8 = 0;
    /// Plain list (legacy).
    pub const LIST: u8 = 1;
    /// Hash-table set.
    pub const SET: u8 = 2;
    /// Sorted set with text scores (legacy).
    pub const ZSET: u8 = 3;
    /// Hash-table hash.
    pub const HASH: u8 = 4;
    /// Skiplist sorted set, binary scores.
    pub const ZSET_2: u8 = 5;
    /// Zipmap hash (legacy).
    pub const HASH_ZIPMAP: u8 = 9;
    /// Ziplist list (legacy).
    pub const LIST_ZIPLIST: u8 = 10;
    /// Intset set.
    pub const SET_INTSET: u8 = 11;
    /// Ziplist sorted set (legacy).
    pub const ZSET_ZIPLIST: u8 = 12;
    /// Ziplist hash (legacy).
    pub const HASH_ZIPLIST: u8 = 13;
    /// Quicklist of ziplists (legacy).
    pub const LIST_QUICKLIST: u8 = 14;
    /// Listpack hash.
    pub const HASH_LISTPACK: u8 = 16;
    /// Listpack sorted set.
    pub const ZSET_LISTPACK: u8 = 17;
    /// Quicklist of listpacks.
    pub const LIST_QUICKLIST_2: u8 = 18;
}
use types::*;

/// Quicklist node containers.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;
/// Elements this big get a plain node of their own (`packed_threshold`).
const PACKED_THRESHOLD: usize = 1 << 30;
/// Byte limits of fill -1..-5 and the safety limit of positive fills (`quicklist.c`).
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Bytes a new entry is assumed to add besides its own length (`SIZE_ESTIMATE_OVERHEAD`).
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

/// The type byte Redis 7.0 writes for `v`.
pub fn type_of(v: &Value) -> u8 {
    match v {
        Value::Str(_) => STRING,
        Value::List(_) => LIST_QUICKLIST_2,
        Value::Hash(HashValue::Listpack(_)) => HASH_LISTPACK,
        Value::Hash(HashValue::Table(_)) => HASH,
        Value::Set(SetValue::Intset(_)) => SET_INTSET,
        Value::Set(SetValue::Table(_)) => SET,
        Value::ZSet(ZSetValue::Small(_)) => ZSET_LISTPACK,
        Value::ZSet(ZSetValue::Big(_)) => ZSET_2,
        Value::Stream(_) => super::stream::STREAM_LISTPACKS_2,
    }
}

/// Redis's `d2string`: the text a listpack sorted set stores a score as.
pub fn d2string(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if d == 0.0 {
        if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        }
    } else if d > -4503599627370495.0 && d < 4503599627370496.0 && d == (d as i64) as f64 {
        itoa::Buffer::new().format(d as i64).to_string()
    } else {
        crate::protocol::reply::format_g17(d)
    }
}

/// Whether 7.0's quicklist lets an element of `sz` bytes join a node of `node_sz` bytes and
/// `count` entries (`_quicklistNodeAllowInsert`: an 8-byte overestimate per entry, then the
/// byte limit of a negative fill, or the safety limit and the count of a positive one).
fn allow_insert(node_sz: usize, count: usize, sz: usize, fill: i64) -> bool {
    let new_sz = node_sz + sz + SIZE_ESTIMATE_OVERHEAD;
    if fill < 0 {
        let level = ((fill.unsigned_abs() as usize) - 1).min(OPTIMIZATION_LEVEL.len() - 1);
        new_sz <= OPTIMIZATION_LEVEL[level]
    } else {
        new_sz <= SIZE_SAFETY_LIMIT && count < (fill as usize).max(1)
    }
}

fn put_list(out: &mut Vec<u8>, l: &ListValue, compress: bool) {
    enum Node<'a> {
        Plain(&'a [u8]),
        Packed(listpack::Writer),
    }
    let fill = list::fill();
    let mut nodes: Vec<Node> = Vec::new();
    for e in l.iter() {
        if e.len() >= PACKED_THRESHOLD {
            nodes.push(Node::Plain(e));
            continue;
        }
        match nodes.last_mut() {
            Some(Node::Packed(w)) if allow_insert(w.bytes(), w.count(), e.len(), fill) => w.push(e),
            _ => {
                let mut w = listpack::Writer::new();
                w.push(e);
                nodes.push(Node::Packed(w));
            }
        }
    }
    put_len(out, nodes.len() as u64);
    for n in nodes {
        match n {
            Node::Plain(e) => {
                put_len(out, CONTAINER_PLAIN);
                put_string(out, e, compress);
            }
            Node::Packed(w) => {
                put_len(out, CONTAINER_PACKED);
                put_string(out, &w.finish(), compress);
            }
        }
    }
}

/// Appends the body of `v` (what follows the type byte), `rdbcompression` on or off.
pub fn put_value(out: &mut Vec<u8>, v: &Value, compress: bool) {
    match v {
        Value::Str(StrValue::Int(n)) => rdb::put_i64_string(out, *n),
        Value::Str(StrValue::Raw(s)) => put_string(out, s, compress),
        Value::List(l) => put_list(out, l, compress),
        Value::Hash(HashValue::Listpack(p)) => {
            let mut w = listpack::Writer::new();
            for (f, x) in p.iter() {
                w.push(f);
                w.push(x);
            }
            put_string(out, &w.finish(), compress);
        }
        Value::Hash(h @ HashValue::Table(_)) => {
            put_len(out, h.len() as u64);
            for (f, x) in h.iter() {
                put_string(out, f, compress);
                put_string(out, x, compress);
            }
        }
        Value::Set(SetValue::Intset(s)) => put_string(out, &intset::encode(s), compress),
        Value::Set(SetValue::Table(t)) => {
            put_len(out, t.len() as u64);
            for m in t.iter() {
                put_string(out, m, compress);
            }
        }
        Value::ZSet(z @ ZSetValue::Small(_)) => {
            let mut w = listpack::Writer::new();
            for (m, s) in z.iter() {
                w.push(m);
                w.push(d2string(s).as_bytes());
            }
            put_string(out, &w.finish(), compress);
        }
        Value::ZSet(z @ ZSetValue::Big(_)) => {
            put_len(out, z.len() as u64);
            for (m, s) in z.iter().rev() {
                put_string(out, m, compress);
                rdb::put_binary_double(out, s);
            }
        }
        Value::Stream(s) => super::stream::put_stream(out, s, compress),
    }
}

fn non_empty(v: Value, len: usize) -> Result<Value> {
    if len == 0 {
        Err(BadData::EmptyKey)
    } else {
        Ok(v)
    }
}

/// Builds a list from elements.
fn list_from(els: impl IntoIterator<Item = Vec<u8>>) -> Result<Value> {
    let mut l = ListValue::new();
    for e in els {
        l.push_back(&e);
    }
    let n = l.len();
    non_empty(Value::List(Box::new(l)), n)
}

/// Builds a hash from pairs; duplicate fields are corrupt.
fn hash_from(pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Value> {
    let mut h = HashValue::default();
    for (f, v) in pairs {
        if h.get(&f).is_some() {
            return Err(BadData::Corrupt);
        }
        h.set(&f, &v);
    }
    let n = h.len();
    non_empty(Value::Hash(h), n)
}

/// Builds a set; duplicate members are corrupt.
fn set_from(members: impl IntoIterator<Item = Vec<u8>>) -> Result<Value> {
    let mut s = SetValue::default();
    for m in members {
        if !s.add(&m) {
            return Err(BadData::Corrupt);
        }
    }
    let n = s.len();
    non_empty(Value::Set(s), n)
}

/// Builds a sorted set; duplicate members and NaN scores are corrupt.
fn zset_from(pairs: impl IntoIterator<Item = (Vec<u8>, f64)>) -> Result<Value> {
    let mut z = ZSetValue::default();
    for (m, s) in pairs {
        if s.is_nan() || z.insert(&m, s).is_some() {
            return Err(BadData::Corrupt);
        }
    }
    let n = z.len();
    non_empty(Value::ZSet(z), n)
}

/// Splits a flat run into pairs; an odd count is corrupt.
fn pairs<T>(v: Vec<T>) -> Result<Vec<(T, T)>> {
    if v.len() % 2 != 0 {
        return Err(BadData::Corrupt);
    }
    let mut out = Vec::with_capacity(v.len() / 2);
    let mut it = v.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn score_of(e: &[u8]) -> Result<f64> {
    rdb::parse_double(e).ok_or(BadData::Corrupt)
}

fn lp_score(e: &Elem) -> Result<f64> {
    match e {
        Elem::Int(n) => Ok(*n as f64),
        Elem::Str(s) => score_of(s),
    }
}

fn read_list_quicklist2(r: &mut Reader) -> Result<Value> {
    let nodes = r.count(2)?;
    let mut els = Vec::new();
    for _ in 0..nodes {
        let container = r.length()?;
        let blob = r.string()?;
        // A node is never empty (Redis refuses `encoded_len == 0` for both containers).
        if blob.is_empty() {
            return Err(BadData::Corrupt);
        }
        match container {
            CONTAINER_PLAIN => els.push(blob),
            CONTAINER_PACKED => els.extend(listpack::parse(&blob)?.iter().map(Elem::to_vec)),
            _ => return Err(BadData::Corrupt),
        }
    }
    list_from(els)
}

/// Reads the body of a value of RDB type `t`.
pub fn read_value(r: &mut Reader, t: u8) -> Result<Value> {
    match t {
        STRING => Ok(Value::Str(StrValue::from_bytes(&r.string()?))),
        LIST => {
            let n = r.count(1)?;
            let els = (0..n).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
            list_from(els)
        }
        SET => {
            let n = r.count(1)?;
            let els = (0..n).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
            set_from(els)
        }
        ZSET | ZSET_2 => {
            let n = r.count(2)?;
            let mut els = Vec::new();
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == ZSET { r.text_double()? } else { r.binary_double()? };
                els.push((m, s));
            }
            zset_from(els)
        }
        HASH => {
            let n = r.count(2)?;
            let els = (0..n).map(|_| Ok((r.string()?, r.string()?))).collect::<Result<Vec<_>>>()?;
            hash_from(els)
        }
        HASH_ZIPMAP => hash_from(ziplist::parse_zipmap(&r.string()?)?),
        LIST_ZIPLIST => list_from(ziplist::parse(&r.string()?)?),
        SET_INTSET => {
            let members = intset::decode(&r.string()?)?;
            set_from(members.into_iter().map(|n| itoa::Buffer::new().format(n).as_bytes().to_vec()))
        }
        ZSET_ZIPLIST => {
            let ps = pairs(ziplist::parse(&r.string()?)?)?;
            zset_from(ps.into_iter().map(|(m, s)| Ok((m, score_of(&s)?))).collect::<Result<Vec<_>>>()?)
        }
        HASH_ZIPLIST => hash_from(pairs(ziplist::parse(&r.string()?)?)?),
        LIST_QUICKLIST => {
            let nodes = r.count(1)?;
            let mut els = Vec::new();
            for _ in 0..nodes {
                els.extend(ziplist::parse(&r.string()?)?);
            }
            list_from(els)
        }
        HASH_LISTPACK => {
            let blob = r.string()?;
            let ps = pairs(listpack::parse(&blob)?)?;
            hash_from(ps.into_iter().map(|(f, v)| (f.to_vec(), v.to_vec())))
        }
        ZSET_LISTPACK => {
            let blob = r.string()?;
            let ps = pairs(listpack::parse(&blob)?)?;
            zset_from(ps.into_iter().map(|(m, s)| Ok((m.to_vec(), lp_score(&s)?))).collect::<Result<Vec<_>>>()?)
        }
        LIST_QUICKLIST_2 => read_list_quicklist2(r),
        super::stream::STREAM_LISTPACKS | super::stream::STREAM_LISTPACKS_2 => super::stream::read_stream(r, t),
        _ => Err(BadData::Corrupt),
    }
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
