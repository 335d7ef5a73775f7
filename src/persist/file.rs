//! RDB files (`rdbSaveRio` / `rdbLoadRioWithLoadingCtx`), version 10: `REDIS0010`, aux fields,
//! per non-empty database `FE db FB size expires` then its keys (`FC ms` before a key with an
//! expiry), `FF`, CRC64 LE of everything before it. Pure encoding and decoding; the caller
//! does the I/O.

use super::rdb::{self, crc64, put_len, put_string, Reader, RDB_VERSION};
use super::value::{put_value, read_value, type_of};
use super::BadData;
use crate::storage::value::Value;

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

/// Appends the magic and the aux fields Redis 7.0 writes (without replication info).
pub fn put_header(out: &mut Vec<u8>, ctime_s: u64, used_mem: u64) {
    put_header_repl(out, ctime_s, used_mem, None)
}

/// The replication facts an RDB for a replica carries (`rdbPopulateSaveInfo`): aux
/// `repl-stream-db`, `repl-id`, `repl-offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplInfo {
    /// Database the stream has selected at the snapshot.
    pub stream_db: usize,
    /// The master's replication id.
    pub replid: String,
    /// The master's offset at the snapshot.
    pub offset: u64,
}

/// Appends the magic and the aux fields, with the replication facts when given (in Redis's
/// order: after `used-mem`, before `aof-base`).
pub fn put_header_repl(out: &mut Vec<u8>, ctime_s: u64, used_mem: u64, repl: Option<&ReplInfo>) {
    out.extend_from_slice(format!("REDIS{:04}", RDB_VERSION).as_bytes());
    let aux = |out: &mut Vec<u8>, k: &[u8]| {
        out.push(OP_AUX);
        put_string(out, k, false);
    };
    aux(out, b"redis-ver");
    put_string(out, b"7.0.15", false);
    aux(out, b"redis-bits");
    rdb::put_i64_string(out, 64);
    aux(out, b"ctime");
    rdb::put_i64_string(out, ctime_s as i64);
    aux(out, b"used-mem");
    rdb::put_i64_string(out, used_mem as i64);
    if let Some(r) = repl {
        aux(out, b"repl-stream-db");
        rdb::put_i64_string(out, r.stream_db as i64);
        aux(out, b"repl-id");
        put_string(out, r.replid.as_bytes(), false);
        aux(out, b"repl-offset");
        rdb::put_i64_string(out, r.offset as i64);
    }
    aux(out, b"aof-base");
    rdb::put_i64_string(out, 0);
    // The function libraries follow the aux fields, as in Redis's `rdbSaveRio`.
    out.extend_from_slice(&crate::script::functions::rdb_records());
}

/// Appends SELECTDB and RESIZEDB for a database with `size` keys, `expires` of them volatile.
pub fn put_db(out: &mut Vec<u8>, db: usize, size: usize, expires: usize) {
    out.push(OP_SELECTDB);
    put_len(out, db as u64);
    out.push(OP_RESIZEDB);
    put_len(out, size as u64);
    put_len(out, expires as u64);
}

/// Appends one key (`rdbSaveKeyValuePair`).
pub fn put_key(out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: u64, compress: bool) {
    if expire_at != 0 {
        out.push(OP_EXPIRETIME_MS);
        out.extend_from_slice(&expire_at.to_le_bytes());
    }
    out.push(type_of(value));
    put_string(out, key, compress);
    put_value(out, value, compress);
}

/// `rdbchecksum` (on unless set to `no`).
static CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Takes `rdbchecksum` from a configuration snapshot.
pub fn apply_config(cfg: &crate::config::Config) {
    CHECKSUM.store(cfg.get("rdbchecksum") != Some("no"), std::sync::atomic::Ordering::Relaxed);
}

/// True unless `rdbchecksum no`: files get a CRC64 and loads verify it. Without it a file
/// ends with eight zero bytes, which any loader (redis-server's too) takes as "not checked".
pub fn checksum_enabled() -> bool {
    CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
}

/// Appends EOF and the checksum.
pub fn finish(out: &mut Vec<u8>) {
    out.push(OP_EOF);
    let crc = if checksum_enabled() { crc64(out) } else { 0 };
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes a run of keys as [`put_key`] writes them (no database opcodes), expired or not:
/// (key, value, expire_at).
pub fn load_keys(buf: &[u8]) -> Result<Vec<(Vec<u8>, Value, u64)>, BadData> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let mut t = r.u8()?;
        let mut expire_at = 0;
        if t == OP_EXPIRETIME_MS {
            expire_at = u64::from_le_bytes(r.array()?);
            t = r.u8()?;
        }
        let key = r.string()?;
        out.push((key, read_value(&mut r, t)?, expire_at));
    }
    Ok(out)
}

/// One loaded key.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Database number.
    pub db: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
    /// Absolute expiry (Unix ms), 0 = none.
    pub expire_at: u64,
}

/// The replication facts among a file's aux fields, when all three are there (a restarted
/// replica resumes from them).
pub fn repl_info_from_aux(aux: &[(Vec<u8>, Vec<u8>)]) -> Option<ReplInfo> {
    let get = |k: &[u8]| aux.iter().find(|(n, _)| n == k).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    Some(ReplInfo {
        stream_db: get(b"repl-stream-db")?.parse().ok()?,
        replid: get(b"repl-id")?,
        offset: get(b"repl-offset")?.parse().ok()?,
    })
}

/// What a load found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The keys, in file order.
    pub records: Vec<Record>,
    /// Keys dropped because they had expired.
    pub expired: usize,
    /// Those keys' (database, name), in file order (a restarted master deletes them in its
    /// replication stream, as Redis feeds DELs while loading).
    pub expired_keys: Vec<(usize, Vec<u8>)>,
    /// Empty collections skipped.
    pub empty: usize,
    /// The aux fields (name, value), in file order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes the RDB took, checksum included (an AOF's command tail may follow).
    pub len: usize,
    /// Function libraries' code (`RDB_OPCODE_FUNCTION2`), in file order.
    pub functions: Vec<Vec<u8>>,
}

fn corrupt(_: BadData) -> String {
    "Short read or OOM loading DB. Unrecoverable error, aborting now.".into()
}

/// A value of type `t` at `offset` that failed its checks: which compact encoding, as Redis
/// names it, then Redis's closing line (one log line each).
fn corrupt_value(t: u8, offset: usize) -> String {
    let Some(what) = super::compact_encoding_name(t) else { return corrupt(BadData::Corrupt) };
    format!(
        "Internal error in RDB reading offset {offset} -> {what} integrity check failed.\nTerminating server after rdb file reading failure."
    )
}

/// Parses a whole RDB file. Keys already expired at `now_ms` are dropped (as a master does;
/// a replica passes 0 and keeps them); a database number of `databases` or more is an error.
pub fn load(buf: &[u8], now_ms: u64, databases: usize) -> Result<Loaded, String> {
    if buf.len() < 9 || &buf[..5] != b"REDIS" {
        return Err("Wrong signature trying to load DB from file".into());
    }
    let ver: u32 = std::str::from_utf8(&buf[5..9]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if !(1..=RDB_VERSION as u32).contains(&ver) {
        return Err(format!("Can't handle RDB format version {ver}"));
    }
    let mut r = Reader::new(&buf[9..]);
    let mut out = Loaded::default();
    let (mut db, mut expire_at) = (0usize, 0u64);
    loop {
        let op = r.u8().map_err(corrupt)?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => {
                db = r.length().map_err(corrupt)? as usize;
                if db >= databases {
                    return Err(format!("FATAL: Data file was created with a Redis server configured to handle more than {databases} databases. Exiting"));
                }
            }
            OP_RESIZEDB => {
                r.length().map_err(corrupt)?;
                r.length().map_err(corrupt)?;
            }
            OP_AUX => {
                let k = r.string().map_err(corrupt)?;
                let v = r.string().map_err(corrupt)?;
                out.aux.push((k, v));
            }
            OP_EXPIRETIME_MS => expire_at = u64::from_le_bytes(r.array().map_err(corrupt)?),
            OP_EXPIRETIME => expire_at = u32::from_le_bytes(r.array().map_err(corrupt)?) as u64 * 1000,
            OP_IDLE => {
                r.length().map_err(corrupt)?;
            }
            OP_FREQ => {
                r.u8().map_err(corrupt)?;
            }
            OP_FUNCTION2 => out.functions.push(r.string().map_err(corrupt)?),
            OP_FUNCTION => return Err("Pre-release function format not supported.".into()),
            OP_MODULE_AUX => return Err("The RDB file holds module data, which slotcore does not support".into()),
            t => {
                let key = r.string().map_err(corrupt)?;
                match read_value(&mut r, t) {
                    Ok(value) if expire_at != 0 && expire_at <= now_ms => {
                        drop(value);
                        out.expired += 1;
                        out.expired_keys.push((db, key));
                    }
                    Ok(value) => out.records.push(Record { db, key, value, expire_at }),
                    Err(BadData::EmptyKey) => {
                        tracing::warn!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(&key));
                        out.empty += 1;
                    }
                    Err(BadData::Corrupt) => return Err(corrupt_value(t, 9 + r.pos())),
                }
                expire_at = 0;
            }
        }
    }
    let end = 9 + r.pos();
    if ver >= 5 {
        let stored = buf.get(end..end + 8).ok_or_else(|| corrupt(BadData::Corrupt))?;
        let mut c = [0u8; 8];
        c.copy_from_slice(stored);
        let stored = u64::from_le_bytes(c);
        if stored == 0 && checksum_enabled() {
            tracing::info!("RDB file was saved with checksum disabled: no check performed.");
        }
        // With `rdbchecksum no` the load does not compute it either (as Redis).
        let check = stored != 0 && checksum_enabled() && !super::dump::skip_checksum();
        let expected = if check { crc64(&buf[..end]) } else { stored };
        if stored != expected {
            // Redis's three log lines for a bad checksum (one per line of the error).
            return Err(format!(
                "Wrong RDB checksum expected: ({expected:x}) but got ({stored:x}). Aborting now.\n\
                 Internal error in RDB reading offset 0, function at rdb.c:3225 -> RDB CRC error\n\
                 Terminating server after rdb file reading failure."
            ));
        }
        out.len = end + 8;
    } else {
        out.len = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::StrValue;

    #[test]
    fn captured_file_loads() {
        // SAVE of db0: i=7, e=v (PXAT 4102444800000), s=hello; db1: k1=x, by Redis 7.0.
        let mut f = b"REDIS0010\xfa\x09redis-ver\x067.0.15\xfa\x0aredis-bits\xc0\x40".to_vec();
        f.extend_from_slice(
            b"\xfa\x05ctime\xc2\xe5\x94\x02\x6b\xfa\x08used-mem\xc2\xc8\xb9\x11\x00\xfa\x08aof-base\xc0\x00",
        );
        f.extend_from_slice(b"\xfe\x00\xfb\x03\x01\x00\x01i\xc0\x07\xfc\x00\xd8\xc3\x2c\xbb\x03\x00\x00\x00\x01e\x01v");
        f.extend_from_slice(b"\x00\x01s\x05hello\xfe\x01\xfb\x01\x00\x00\x02k1\x01x\xff");
        f.extend_from_slice(&[0x27, 0xd8, 0xf7, 0xb1, 0x31, 0xfc, 0xc1, 0x5d]);
        assert_eq!(f.len(), 133);
        let l = load(&f, 0, 16).unwrap();
        let keys: Vec<(usize, &[u8], u64)> = l.records.iter().map(|r| (r.db, &r.key[..], r.expire_at)).collect();
        assert_eq!(keys, [(0, &b"i"[..], 0), (0, b"e", 4102444800000), (0, b"s", 0), (1, b"k1", 0)]);
        // Re-encoded the same way, the key section is byte for byte Redis's.
        let mut ours = Vec::new();
        put_db(&mut ours, 0, 3, 1);
        for r in &l.records[..3] {
            put_key(&mut ours, &r.key, &r.value, r.expire_at, true);
        }
        let at = f.windows(2).position(|w| w == b"\xfe\x00").unwrap();
        assert_eq!(&f[at..at + ours.len()], &ours[..]);
        // Expired keys are dropped; a bad CRC, a newer version, too few databases fail.
        assert_eq!(load(&f, 4102444800001, 16).unwrap().expired, 1);
        let mut bad = f.clone();
        bad[132] ^= 1;
        assert!(load(&bad, 0, 16).is_err());
        let mut zero = f.clone();
        zero[125..].fill(0);
        assert!(load(&zero, 0, 16).is_ok());
        assert!(load(&f, 0, 1).is_err());
        let mut v11 = f.clone();
        v11[8] = b'1';
        assert!(load(&v11, 0, 16).is_err());
        for cut in 0..f.len() - 8 {
            assert!(load(&f[..cut], 0, 16).is_err());
        }
    }

    #[test]
    fn written_file_round_trips() {
        let mut f = Vec::new();
        put_header(&mut f, 1700000000, 1 << 20);
        put_db(&mut f, 3, 1, 1);
        put_key(&mut f, b"k", &Value::Str(StrValue::from_bytes(&[b'z'; 100])), 9_000_000_000_000, true);
        finish(&mut f);
        let l = load(&f, 0, 16).unwrap();
        let mut keys = Vec::new();
        put_key(&mut keys, b"a", &l.records[0].value, 5, false);
        put_key(&mut keys, b"b", &Value::Str(StrValue::Int(1)), 0, true);
        let back = load_keys(&keys).unwrap();
        assert_eq!((back[0].2, &back[1].0[..]), (5, &b"b"[..]));
        assert!(load_keys(&keys[..keys.len() - 1]).is_err());
        assert_eq!(l.records.len(), 1);
        assert_eq!((l.records[0].db, l.records[0].expire_at), (3, 9_000_000_000_000));
        assert_eq!(l.records[0].value, Value::Str(StrValue::from_bytes(&[b'z'; 100])));
        assert!(repl_info_from_aux(&l.aux).is_none());
    }

    #[test]
    fn replication_aux_round_trips() {
        let mut f = Vec::new();
        let info = ReplInfo { stream_db: 2, replid: "f".repeat(40), offset: 1234567 };
        put_header_repl(&mut f, 1700000000, 1 << 20, Some(&info));
        finish(&mut f);
        let l = load(&f, 0, 16).unwrap();
        let back = repl_info_from_aux(&l.aux).unwrap();
        assert_eq!((back.stream_db, back.replid, back.offset), (2, "f".repeat(40), 1234567));
        let names: Vec<&[u8]> = l.aux.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(names[4..], [&b"repl-stream-db"[..], b"repl-id", b"repl-offset", b"aof-base"]);
    }
}
