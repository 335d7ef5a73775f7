//! An RDB file with the replication aux fields (`repl-stream-db`, `repl-id`, `repl-offset`)
//! assembled in one piece from the shards' serialized parts (`cmd::save::serialize_shard`'s
//! per-database `[size, expires, bytes]`): what SAVE writes. A full sync does not use it: it
//! streams a forkless snapshot (`runtime::repl_master`, `runtime::snapshot`).

use crate::persist::file;
use crate::protocol::Reply;

/// Builds the file from the per-shard parts (`cmd::save::serialize_shard`'s per-database
/// `[size, expires, bytes]`).
pub fn assemble(parts: Vec<Reply>, repl: Option<&file::ReplInfo>) -> Vec<u8> {
    let mut per_db: Vec<(usize, usize, Vec<bytes::Bytes>)> = Vec::new();
    for p in parts {
        let Reply::Array(dbs) = p else { continue };
        if per_db.len() < dbs.len() {
            per_db.resize(dbs.len(), (0, 0, Vec::new()));
        }
        for (i, d) in dbs.into_iter().enumerate() {
            if let Reply::Array(v) = d {
                if let [Reply::Int(n), Reply::Int(x), Reply::Bulk(b)] = &v[..] {
                    per_db[i].0 += *n as usize;
                    per_db[i].1 += *x as usize;
                    per_db[i].2.push(b.clone());
                }
            }
        }
    }
    let size: usize = per_db.iter().flat_map(|d| d.2.iter()).map(|c| c.len()).sum();
    let mut out = Vec::with_capacity(size + 256);
    let now = crate::storage::now_ms();
    let used = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
    file::put_header_repl(&mut out, now / 1000, used, repl);
    for (db, (size, expires, chunks)) in per_db.into_iter().enumerate().filter(|(_, d)| d.0 > 0) {
        file::put_db(&mut out, db, size, expires);
        chunks.iter().for_each(|c| out.extend_from_slice(c));
    }
    file::finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn carries_repl_aux_and_loads() {
        let mut keys = Vec::new();
        file::put_key(
            &mut keys,
            b"k",
            &crate::storage::value::Value::Str(crate::storage::value::StrValue::from_bytes(b"v")),
            0,
            false,
        );
        let part = Reply::Array(vec![Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Bulk(Bytes::from(keys))])]);
        let info = file::ReplInfo { stream_db: 0, replid: "a".repeat(40), offset: 1234 };
        let rdb = assemble(vec![part], Some(&info));
        let hay = String::from_utf8_lossy(&rdb).into_owned();
        let pos = |s: &str| hay.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(pos("used-mem") < pos("repl-stream-db"));
        assert!(pos("repl-id") < pos("repl-offset") && pos("repl-offset") < pos("aof-base"));
        let loaded = file::load(&rdb, 0, 16).unwrap();
        assert_eq!(loaded.records.len(), 1);
    }
}
