//! A base file in command form (`aof-use-rdb-preamble no`): Redis's
//! `rewriteAppendOnlyFileRio`, fed with the keys of a point-in-time snapshot.
//!
//! The output is what redis-server 7.0 writes for the same dataset: an optional `#TS:` line,
//! one `FUNCTION LOAD` per library, then per non-empty database `SELECT <db>` and per key the
//! commands that rebuild it: `SET`; `RPUSH`, `SADD`, `ZADD` (score `%.17g`, then member) and
//! `HMSET` with at most 64 items each (`AOF_REWRITE_ITEMS_PER_CMD`); a stream as `XADD` per
//! entry (or `XADD key MAXLEN 0 0-1 x y` when empty), `XSETID .. ENTRIESADDED ..
//! MAXDELETEDID ..`, `XGROUP CREATE .. ENTRIESREAD ..` per group, then per consumer either
//! `XGROUP CREATECONSUMER` or one `XCLAIM .. 0 <id> TIME <ms> RETRYCOUNT <n> JUSTID FORCE`
//! per pending entry; a volatile key is followed by `PEXPIREAT key <ms>`.
//!
//! Pure: values in, bytes out.

use crate::protocol::reply::format_g17;
use crate::replication::stream::put_command;
use crate::storage::hash::HashValue;
use crate::storage::set::SetValue;
use crate::storage::stream::{Stream, StreamId};
use crate::storage::value::{StrValue, Value};
use bytes::{Bytes, BytesMut};

/// Items per variadic command (`AOF_REWRITE_ITEMS_PER_CMD`).
pub const ITEMS_PER_CMD: usize = 64;

/// The head of a command-form base: the `#TS:` annotation (with `aof-timestamp-enabled`) and
/// the function libraries.
pub fn put_head(out: &mut BytesMut, timestamp: Option<u64>, libraries: &[Vec<u8>]) {
    if let Some(ts) = timestamp {
        out.extend_from_slice(format!("#TS:{ts}\r\n").as_bytes());
    }
    for code in libraries {
        put_command(out, &[&b"FUNCTION"[..], b"LOAD", code]);
    }
}

/// `SELECT db`, written before the keys of each database.
pub fn put_select(out: &mut BytesMut, db: usize) {
    put_command(out, &[b"SELECT".to_vec(), db.to_string().into_bytes()]);
}

fn int(n: i64) -> Vec<u8> {
    itoa::Buffer::new().format(n).as_bytes().to_vec()
}

fn id(i: StreamId) -> Vec<u8> {
    format!("{}-{}", i.ms, i.seq).into_bytes()
}

/// Emits `name key` + items, `per` arguments per item, at most [`ITEMS_PER_CMD`] items per
/// command.
fn variadic(out: &mut BytesMut, name: &[u8], key: &[u8], items: impl Iterator<Item = Vec<Vec<u8>>>) {
    let mut argv: Vec<Vec<u8>> = Vec::new();
    let mut n = 0;
    for item in items {
        if n == 0 {
            argv.clear();
            argv.push(name.to_vec());
            argv.push(key.to_vec());
        }
        argv.extend(item);
        n += 1;
        if n == ITEMS_PER_CMD {
            put_command(out, &argv);
            n = 0;
        }
    }
    if n > 0 {
        put_command(out, &argv);
    }
}

fn put_stream(out: &mut BytesMut, key: &[u8], s: &Stream) {
    if s.length > 0 {
        for (eid, fields) in s.range(StreamId::MIN, StreamId::MAX, usize::MAX, false) {
            let mut argv: Vec<Bytes> = vec![Bytes::from_static(b"XADD"), Bytes::copy_from_slice(key), eid.to_bytes()];
            for (f, v) in fields {
                argv.push(f);
                argv.push(v);
            }
            put_command(out, &argv);
        }
    } else {
        put_command(out, &[&b"XADD"[..], key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    }
    put_command(
        out,
        &[
            b"XSETID".to_vec(),
            key.to_vec(),
            id(s.last_id),
            b"ENTRIESADDED".to_vec(),
            int(s.entries_added as i64),
            b"MAXDELETEDID".to_vec(),
            id(s.max_deleted_id),
        ],
    );
    for (gname, g) in &s.groups {
        let read = g.entries_read.map_or(-1, |n| n as i64);
        put_command(
            out,
            &[
                b"XGROUP".to_vec(),
                b"CREATE".to_vec(),
                key.to_vec(),
                gname.clone(),
                id(g.last_id),
                b"ENTRIESREAD".to_vec(),
                int(read),
            ],
        );
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                put_command(out, &[&b"XGROUP"[..], b"CREATECONSUMER", key, gname, cname]);
                continue;
            }
            for pid in &c.pel {
                let (time, count) = g.pel.get(pid).map_or((0, 0), |n| (n.delivery_time, n.delivery_count));
                put_command(
                    out,
                    &[
                        b"XCLAIM".to_vec(),
                        key.to_vec(),
                        gname.clone(),
                        cname.clone(),
                        b"0".to_vec(),
                        id(*pid),
                        b"TIME".to_vec(),
                        int(time as i64),
                        b"RETRYCOUNT".to_vec(),
                        int(count as i64),
                        b"JUSTID".to_vec(),
                        b"FORCE".to_vec(),
                    ],
                );
            }
        }
    }
}

/// The commands that rebuild one key (`rewriteAppendOnlyFileRio`'s loop body).
pub fn put_key(out: &mut BytesMut, key: &[u8], value: &Value, expire_at: u64) {
    match value {
        Value::Str(StrValue::Int(n)) => put_command(out, &[&b"SET"[..], key, &int(*n)]),
        Value::Str(StrValue::Raw(s)) => put_command(out, &[&b"SET"[..], key, s]),
        Value::List(l) => variadic(out, b"RPUSH", key, l.iter().map(|e| vec![e.to_vec()])),
        Value::Set(SetValue::Intset(s)) => variadic(out, b"SADD", key, s.iter().map(|n| vec![int(n)])),
        Value::Set(SetValue::Table(t)) => variadic(out, b"SADD", key, t.iter().map(|m| vec![m.to_vec()])),
        Value::ZSet(z) => {
            let items = z.iter().map(|(m, s)| vec![format_g17(s).into_bytes(), m.to_vec()]);
            variadic(out, b"ZADD", key, items)
        }
        Value::Hash(h) => {
            let items = HashValue::iter(h).map(|(f, v)| vec![f.to_vec(), v.to_vec()]);
            variadic(out, b"HMSET", key, items)
        }
        Value::Stream(s) => put_stream(out, key, s),
    }
    if expire_at != 0 {
        put_command(out, &[&b"PEXPIREAT"[..], key, &int(expire_at as i64)]);
    }
}

/// Turns a snapshot's RDB stream into the command form, piece by piece: the caller passes
/// each database start and each run of keys as the snapshot yields them.
#[derive(Default)]
pub struct Converter {
    db: Option<usize>,
    selected: Option<usize>,
}

impl Converter {
    /// A new database begins.
    pub fn database(&mut self, db: usize) {
        self.db = Some(db);
    }

    /// A run of keys of the current database (RDB key encoding, as the shards serialize).
    pub fn keys(&mut self, out: &mut BytesMut, run: &[u8]) -> Result<(), String> {
        let keys = crate::persist::file::load_keys(run).map_err(|e| format!("{e:?}"))?;
        let db = self.db.unwrap_or(0);
        if !keys.is_empty() && self.selected != Some(db) {
            put_select(out, db);
            self.selected = Some(db);
        }
        for (k, v, exp) in keys {
            put_key(out, &k, &v, exp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::zset::ZSetValue;

    fn text(b: &BytesMut) -> String {
        String::from_utf8_lossy(b).replace("\r\n", " ")
    }

    #[test]
    fn strings_lists_and_expiry() {
        let mut out = BytesMut::new();
        put_key(&mut out, b"k", &Value::Str(StrValue::Int(7)), 0);
        assert_eq!(text(&out), "*3 $3 SET $1 k $1 7 ");
        let mut l = crate::storage::list::ListValue::new();
        for i in 0..65 {
            l.push_back(i.to_string().as_bytes());
        }
        let mut out = BytesMut::new();
        put_key(&mut out, b"l", &Value::List(Box::new(l)), 1234);
        let t = text(&out);
        assert!(t.starts_with("*66 $5 RPUSH $1 l $1 0 "), "{t}");
        assert!(t.contains("*3 $5 RPUSH $1 l $2 64 "), "{t}");
        assert!(t.ends_with("*3 $9 PEXPIREAT $1 l $4 1234 "), "{t}");
    }

    #[test]
    fn zset_scores_as_redis_prints_them() {
        let mut z = ZSetValue::default();
        z.insert(b"a", 1.5);
        z.insert(b"b", 0.1);
        let mut out = BytesMut::new();
        put_key(&mut out, b"z", &Value::ZSet(z), 0);
        assert_eq!(text(&out), "*6 $4 ZADD $1 z $19 0.10000000000000001 $1 b $3 1.5 $1 a ");
    }
}
