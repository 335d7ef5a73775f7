//! Streams in RDB (`rdbSaveObject` / `rdbLoadObject` for `OBJ_STREAM`): type 19
//! (`RDB_TYPE_STREAM_LISTPACKS_2`, what Redis 7.0 writes) and the older 15 on load.
//!
//! Layout: node count, then per node its 16-byte big-endian master ID and its listpack
//! (`count | deleted | nfields | fields.. | 0`, then per entry `flags | ms-delta | seq-delta |
//! [nfields | fields..] values.. | lp-count`); length, last ID, (19: first ID, max deleted ID,
//! entries added); groups: name, last ID, (19: entries read), PEL (raw ID, ms time, count),
//! consumers (name, seen time, raw IDs of their PEL).

use super::listpack::{self, Elem};
use super::rdb::{put_len, put_string, Reader};
use super::{BadData, Result};
use crate::storage::stream::{Node, NodeEntry, Stream, StreamId, FLAG_SAMEFIELDS};
use crate::storage::stream_group::{Consumer, Group, Nack};
use crate::storage::value::Value;

/// `RDB_TYPE_STREAM_LISTPACKS` (5.0 - 6.2).
pub const STREAM_LISTPACKS: u8 = 15;
/// `RDB_TYPE_STREAM_LISTPACKS_2` (7.0).
pub const STREAM_LISTPACKS_2: u8 = 19;

/// Redis's `SCG_INVALID_ENTRIES_READ` as written (-1 as an unsigned length).
const INVALID_ENTRIES_READ: u64 = u64::MAX;

/// The listpack Redis keeps for `node` (master ID `master`).
pub fn node_listpack(master: StreamId, node: &Node) -> Vec<u8> {
    let mut w = listpack::Writer::new();
    w.push_int(node.live as i64);
    w.push_int(node.deleted as i64);
    w.push_int(node.master.len() as i64);
    for f in &node.master {
        w.push(f);
    }
    w.push_int(0);
    for e in &node.entries {
        w.push_int(e.flags as i64);
        w.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
        w.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
        let same = e.flags & FLAG_SAMEFIELDS != 0;
        if !same {
            w.push_int(e.nfields as i64);
        }
        let pairs = e.pairs(&node.master);
        for (f, v) in &pairs {
            if !same {
                w.push(f);
            }
            w.push(v);
        }
        let mut lp_count = e.nfields as i64 + 3;
        if !same {
            lp_count += e.nfields as i64 + 1;
        }
        w.push_int(lp_count);
    }
    w.finish()
}

/// Appends a stream's body (type 19).
pub fn put_stream(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    put_len(out, s.nodes.len() as u64);
    for (k, node) in &s.nodes {
        put_string(out, &k.encode(), compress);
        put_string(out, &node_listpack(*k, node), compress);
    }
    for v in [
        s.length,
        s.last_id.ms,
        s.last_id.seq,
        s.first_id.ms,
        s.first_id.seq,
        s.max_deleted_id.ms,
        s.max_deleted_id.seq,
        s.entries_added,
    ] {
        put_len(out, v);
    }
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        put_len(out, g.entries_read.unwrap_or(INVALID_ENTRIES_READ));
        put_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id.encode());
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            put_len(out, n.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.encode());
            }
        }
    }
}

fn int(e: Option<&Elem>) -> Result<i64> {
    match e {
        Some(Elem::Int(n)) => Ok(*n),
        Some(Elem::Str(s)) => crate::protocol::request::string2ll(s).ok_or(BadData::Corrupt),
        None => Err(BadData::Corrupt),
    }
}

/// Parses one node's listpack (master ID `master`) as `streamValidateListpackIntegrity` deep.
pub fn parse_node(master: StreamId, blob: &[u8]) -> Result<Node> {
    let els = listpack::parse(blob)?;
    let mut it = els.iter();
    let live = int(it.next())?;
    let deleted = int(it.next())?;
    let nmaster = int(it.next())?;
    if live < 0 || deleted < 0 || nmaster < 0 {
        return Err(BadData::Corrupt);
    }
    // Each master field is one element: never reserve more than the listpack holds.
    let mut masterf = Vec::with_capacity((nmaster as usize).min(els.len()));
    for _ in 0..nmaster {
        masterf.push(it.next().ok_or(BadData::Corrupt)?.to_vec().into_boxed_slice());
    }
    if int(it.next())? != 0 {
        return Err(BadData::Corrupt);
    }
    let mut entries = Vec::new();
    let (mut seen_live, mut seen_deleted) = (0, 0);
    for _ in 0..(live + deleted) {
        let flags = int(it.next())?;
        let ms = master.ms.wrapping_add(int(it.next())? as u64);
        let seq = master.seq.wrapping_add(int(it.next())? as u64);
        let same = flags & FLAG_SAMEFIELDS as i64 != 0;
        let (n, mut extra) = if same { (nmaster, 3) } else { (int(it.next())?, 3) };
        if n < 0 {
            return Err(BadData::Corrupt);
        }
        let mut items: Vec<Vec<u8>> = Vec::new();
        if same {
            for _ in 0..n {
                items.push(it.next().ok_or(BadData::Corrupt)?.to_vec());
            }
        } else {
            extra += n + 1;
            for _ in 0..(2 * n) {
                items.push(it.next().ok_or(BadData::Corrupt)?.to_vec());
            }
        }
        if int(it.next())? != n + extra {
            return Err(BadData::Corrupt);
        }
        let refs: Vec<&[u8]> = items.iter().map(|v| &v[..]).collect();
        let mut data = Vec::new();
        for r in &refs {
            data.extend_from_slice(&(r.len() as u32).to_le_bytes());
            data.extend_from_slice(r);
        }
        if flags & crate::storage::stream::FLAG_DELETED as i64 != 0 {
            seen_deleted += 1;
        } else {
            seen_live += 1;
        }
        entries.push(NodeEntry {
            id: StreamId::new(ms, seq),
            flags: flags as u8,
            data: data.into_boxed_slice(),
            nfields: n as u32,
        });
    }
    if it.next().is_some() || seen_live != live || seen_deleted != deleted || live == 0 && deleted == 0 {
        return Err(BadData::Corrupt);
    }
    if entries.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(BadData::Corrupt);
    }
    Ok(Node { master: masterf, entries, live: live as u64, deleted: deleted as u64, lp_bytes: blob.len() })
}

fn raw_id(r: &mut Reader) -> Result<StreamId> {
    let b = r.array::<16>()?;
    StreamId::decode(&b).ok_or(BadData::Corrupt)
}

fn ms_time(r: &mut Reader) -> Result<u64> {
    Ok(u64::from_le_bytes(r.array::<8>()?))
}

/// Reads a stream body of type 15 or 19.
pub fn read_stream(r: &mut Reader, t: u8) -> Result<Value> {
    let mut s = Stream::new();
    let nodes = r.count(2)?;
    for _ in 0..nodes {
        let key = r.string()?;
        let master = StreamId::decode(&key).ok_or(BadData::Corrupt)?;
        let blob = r.string()?;
        let node = parse_node(master, &blob)?;
        if s.nodes.insert(master, node).is_some() {
            return Err(BadData::Corrupt);
        }
    }
    s.length = r.length()?;
    s.last_id = StreamId::new(r.length()?, r.length()?);
    if t == STREAM_LISTPACKS_2 {
        s.first_id = StreamId::new(r.length()?, r.length()?);
        s.max_deleted_id = StreamId::new(r.length()?, r.length()?);
        s.entries_added = r.length()?;
    } else {
        s.entries_added = s.length;
        s.first_id = s.edge_id(false).unwrap_or_default();
    }
    let live: u64 = s.nodes.values().map(|n| n.live).sum();
    if live != s.length {
        return Err(BadData::Corrupt);
    }
    let groups = r.count(1)?;
    for _ in 0..groups {
        let name = r.string()?;
        let last_id = StreamId::new(r.length()?, r.length()?);
        let entries_read = if t == STREAM_LISTPACKS_2 {
            match r.length()? {
                INVALID_ENTRIES_READ => None,
                n => Some(n),
            }
        } else {
            s.estimate_distance(last_id)
        };
        let mut g = Group::new(last_id, entries_read);
        let pel = r.count(1)?;
        for _ in 0..pel {
            let id = raw_id(r)?;
            let delivery_time = ms_time(r)?;
            let delivery_count = r.length()?;
            let nack = Nack { delivery_time, delivery_count, consumer: Vec::new() };
            if g.pel.insert(id, nack).is_some() {
                return Err(BadData::Corrupt);
            }
        }
        let consumers = r.count(1)?;
        for _ in 0..consumers {
            let cname = r.string()?;
            if g.consumers.contains_key(&cname) {
                return Err(BadData::Corrupt);
            }
            let seen_time = ms_time(r)?;
            let mut c = Consumer { seen_time, pel: Default::default() };
            let n = r.count(1)?;
            for _ in 0..n {
                let id = raw_id(r)?;
                let nack = g.pel.get_mut(&id).ok_or(BadData::Corrupt)?;
                if !nack.consumer.is_empty() {
                    return Err(BadData::Corrupt);
                }
                nack.consumer = cname.clone();
                c.pel.insert(id);
            }
            g.consumers.insert(cname, c);
        }
        // Every PEL entry needs an owner (Redis's deep check; a shallow load would crash later).
        if g.pel.values().any(|n| n.consumer.is_empty()) {
            return Err(BadData::Corrupt);
        }
        if s.groups.insert(name, g).is_some() {
            return Err(BadData::Corrupt);
        }
    }
    Ok(Value::Stream(Box::new(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::listpack::Writer;

    #[test]
    fn a_huge_master_field_count_is_corrupt_not_an_allocation() {
        let mut w = Writer::new();
        for n in [1, 0, 1 << 60] {
            w.push_int(n);
        }
        w.push(b"f");
        assert_eq!(parse_node(StreamId { ms: 1, seq: 0 }, &w.finish()).err(), Some(BadData::Corrupt));
    }
}
