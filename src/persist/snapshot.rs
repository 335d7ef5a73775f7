//! A point-in-time snapshot as a stream of RDB bytes, sans-IO.
//!
//! The shards serialize their slots incrementally (see `storage::snap` for the pre-write hook
//! that keeps the point in time); this module owns the pieces that do not depend on where the
//! bytes come from or go to:
//! - [`encode_key`]: one key in RDB v10 key encoding (the shards' [`KeyEncoder`]);
//! - [`Plan`]: what the shards reported when the snapshot began (per-database sizes, dirty
//!   counters), merged into the order the stream visits (database by database, shard by
//!   shard inside each database);
//! - [`RdbStream`]: the file framing around the shards' chunks, with the running CRC64, so a
//!   writer (a file, a replica's socket) never holds more than one chunk.
//!
//! The stream's bytes are a valid RDB file: `REDIS0010`, aux fields (plus optional extra ones
//! such as `repl-stream-db`/`repl-id`/`repl-offset` for a full sync), per non-empty database
//! `FE db FB size expires` then its keys, `FF`, CRC64. The RESIZEDB sizes are those at the
//! start (Redis's loader only uses them as hints).
//!
//! [`KeyEncoder`]: crate::storage::snap::KeyEncoder

use super::file;
use super::rdb::{crc64_digest, put_string, Crc64Digest};
use crate::storage::Entry;

/// Bytes a shard serializes per step (whole slots, so a step may return more).
pub const STEP_BYTES: usize = 64 << 10;

/// The time slice of one step on a shard's loop, in µs: a step stops after the slot during
/// which it ran out (so client work never waits for more than about this long).
pub const STEP_MICROS: u64 = 50;

/// Appends one key in RDB key encoding (the shards' [`KeyEncoder`]).
pub fn encode_key(out: &mut Vec<u8>, key: &[u8], entry: &Entry, compress: bool) {
    file::put_key(out, key, &entry.value, entry.expire_at, compress);
}

/// What every shard reported when the snapshot began, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Snapshot id.
    pub id: u64,
    /// Per database index: (keys, keys with an expiry) at the start, summed over shards.
    pub dbs: Vec<(u64, u64)>,
    /// Per shard: its dirty counter at the start (marked as saved when the save succeeds).
    pub dirty: Vec<u64>,
    /// The replication position the file records (a BGSAVE's: `repl-id`, `repl-offset`,
    /// `repl-stream-db`), taken at the snapshot's point in time.
    pub repl: Option<file::ReplInfo>,
}

impl Plan {
    /// Adds one shard's report (shard order): its dirty counter and per database
    /// (keys, expires).
    pub fn add_shard(&mut self, dirty: u64, dbs: &[(u64, u64)]) {
        self.dirty.push(dirty);
        if self.dbs.len() < dbs.len() {
            self.dbs.resize(dbs.len(), (0, 0));
        }
        for (i, (n, x)) in dbs.iter().enumerate() {
            self.dbs[i].0 += n;
            self.dbs[i].1 += x;
        }
    }

    /// The databases the stream visits (those with keys at the start), in order.
    pub fn databases(&self) -> Vec<usize> {
        self.dbs.iter().enumerate().filter(|(_, d)| d.0 > 0).map(|(i, _)| i).collect()
    }
}

/// The framing of one RDB stream and its running checksum.
pub struct RdbStream {
    crc: Crc64Digest,
    bytes: u64,
}

impl Default for RdbStream {
    fn default() -> Self {
        RdbStream::new()
    }
}

impl std::fmt::Debug for RdbStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbStream").field("bytes", &self.bytes).finish()
    }
}

impl RdbStream {
    /// A stream with nothing written yet.
    pub fn new() -> RdbStream {
        RdbStream { crc: crc64_digest(), bytes: 0 }
    }

    /// Bytes produced so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// True before anything was produced.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Passes bytes through the checksum (every byte of the stream goes through here).
    pub fn pass(&mut self, b: &[u8]) {
        self.crc.update(b);
        self.bytes += b.len() as u64;
    }

    /// The magic and aux fields; `extra` aux fields follow Redis's own (e.g. the replication
    /// ones for a full sync).
    pub fn header(&mut self, ctime_s: u64, used_mem: u64, extra: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        self.header_repl(ctime_s, used_mem, None, extra)
    }

    /// [`RdbStream::header`] with the replication aux fields of a full sync, in Redis's order
    /// (`repl-stream-db`, `repl-id`, `repl-offset` after `used-mem`).
    pub fn header_repl(
        &mut self,
        ctime_s: u64,
        used_mem: u64,
        repl: Option<&file::ReplInfo>,
        extra: &[(Vec<u8>, Vec<u8>)],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        file::put_header_repl(&mut out, ctime_s, used_mem, repl);
        for (k, v) in extra {
            out.push(0xFA);
            put_string(&mut out, k, false);
            put_string(&mut out, v, false);
        }
        self.pass(&out);
        out
    }

    /// SELECTDB and RESIZEDB before a database's keys.
    pub fn database(&mut self, db: usize, size: u64, expires: u64) -> Vec<u8> {
        let mut out = Vec::new();
        file::put_db(&mut out, db, size as usize, expires as usize);
        self.pass(&out);
        out
    }

    /// EOF and the checksum (the stream's last bytes).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = vec![0xFF];
        self.crc.update(&out);
        let crc = std::mem::replace(&mut self.crc, crc64_digest()).finalize();
        let crc = if super::file::checksum_enabled() { crc } else { 0 };
        out.extend_from_slice(&crc.to_le_bytes());
        self.bytes += out.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{StrValue, Value};
    use crate::storage::Db;

    #[test]
    fn streamed_file_equals_one_piece_file() {
        let mut db = Db::new();
        for i in 0..300 {
            db.set(format!("key:{i}").as_bytes(), Value::Str(StrValue::from_bytes(b"value")), 0);
        }
        db.snapshot_begin(1, 0, true, encode_key);
        let mut s = RdbStream::new();
        let mut all = s.header(1_700_000_000, 1 << 20, &[(b"repl-offset".to_vec(), b"0".to_vec())]);
        all.extend(s.database(0, 300, 0));
        loop {
            let (b, done) = db.snapshot_step(100);
            s.pass(&b);
            all.extend(b);
            if done {
                break;
            }
        }
        all.extend(s.finish());
        assert_eq!(s.len(), all.len() as u64);
        let loaded = file::load(&all, 0, 16).unwrap();
        assert_eq!(loaded.records.len(), 300);
        // Same checksum as computing it over the whole file at once.
        let n = all.len();
        assert_eq!(super::super::rdb::crc64(&all[..n - 8]).to_le_bytes(), all[n - 8..]);
    }

    #[test]
    fn plan_sums_shards() {
        let mut p = Plan { id: 3, ..Default::default() };
        p.add_shard(10, &[(5, 1), (0, 0)]);
        p.add_shard(7, &[(2, 0), (0, 0), (4, 4)]);
        assert_eq!(p.dbs, vec![(7, 1), (0, 0), (4, 4)]);
        assert_eq!(p.databases(), vec![0, 2]);
        assert_eq!(p.dirty, vec![10, 7]);
    }
}
