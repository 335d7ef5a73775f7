//! DEBUG DIGEST / DIGEST-VALUE: Redis's dataset digest (`debug.c computeDatasetDigest`), byte
//! for byte, so a slotcore dataset can be compared with a real redis-server's.
//!
//! Per key: `d = mix(0, key)`, then `mix(d, htonl(type))`, then the value is mixed in (`mix(d, value)` for strings), then
//! `"!!expire!!"` is xored in for keys with a TTL, and `d` is xored into the database's sum.
//! Per non-empty database, in order: `final = mix(final, htonl(db))`, then `final ^= sum`.
//! XOR makes the per-key part order-independent, so shards compute their sums separately.

use crate::storage::{Entry, StrValue, Value};

/// A 20-byte digest.
pub type Digest = [u8; 20];

fn sha1(data: &[&[u8]]) -> Digest {
    let mut h = sha1_smol::Sha1::new();
    for d in data {
        h.update(d);
    }
    h.digest().bytes()
}

/// `xorDigest`: digest ^= SHA1(data).
pub fn xor_digest(digest: &mut Digest, data: &[u8]) {
    let h = sha1(&[data]);
    for (d, x) in digest.iter_mut().zip(h) {
        *d ^= x;
    }
}

/// `mixDigest`: digest = SHA1(digest ^ SHA1(data)).
pub fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(&[&digest[..]]);
}

/// The digest of a value (`xorObjectDigest` into a zero digest), TTL marker included.
pub fn value_digest(entry: &Entry) -> Digest {
    let mut d = [0u8; 20];
    mix_value(&mut d, entry);
    d
}

/// Redis's object type codes (`OBJ_STRING` = 0, ...), mixed in first.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

fn mix_value(d: &mut Digest, entry: &Entry) {
    mix_digest(d, &type_code(&entry.value).to_be_bytes());
    match &entry.value {
        Value::Str(StrValue::Int(n)) => mix_digest(d, itoa::Buffer::new().format(*n).as_bytes()),
        Value::Str(StrValue::Raw(v)) => mix_digest(d, v),
        // Lists are ordered: elements are mixed in turn.
        Value::List(l) => {
            for e in l.iter() {
                mix_digest(d, e);
            }
        }
        // Members with scores (printed as Redis 7.0's %.17g) are xored in.
        Value::ZSet(z) => {
            for (m, s) in z.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, m);
                mix_digest(&mut e, crate::protocol::reply::format_double(s).as_bytes());
                xor_digest(d, &e);
            }
        }
        // Members are unordered: each member's SHA1 is xored in.
        Value::Set(set) => {
            for m in set.members() {
                xor_digest(d, &m);
            }
        }
        // Fields are unordered: each (field, value) digest is xored in.
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, f);
                mix_digest(&mut e, v);
                xor_digest(d, &e);
            }
        }
        // Entries in ID order: `<ms>.<seq>`, then each field and value.
        Value::Stream(s) => {
            for (id, pairs) in
                s.range(crate::storage::stream::StreamId::MIN, crate::storage::stream::StreamId::MAX, 0, false)
            {
                mix_digest(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (f, v) in pairs {
                    mix_digest(d, &f);
                    mix_digest(d, &v);
                }
            }
        }
    }
    if entry.expire_at != 0 {
        xor_digest(d, b"!!expire!!");
    }
}

/// What one key contributes to its database's sum: SHA1 of its key+value digest (Redis's
/// `xorDigest(final, digest, 20)` xors the SHA1 of the 20 bytes, not the bytes themselves).
pub fn key_digest(key: &[u8], entry: &Entry) -> Digest {
    let mut d = [0u8; 20];
    mix_digest(&mut d, key);
    mix_value(&mut d, entry);
    sha1(&[&d[..]])
}

/// Combines per-database sums (None = empty database) into the dataset digest.
pub fn combine(db_sums: &[Option<Digest>]) -> Digest {
    let mut fin = [0u8; 20];
    for (db, sum) in db_sums.iter().enumerate() {
        let Some(sum) = sum else { continue };
        mix_digest(&mut fin, &(db as u32).to_be_bytes());
        for (f, s) in fin.iter_mut().zip(sum) {
            *f ^= s;
        }
    }
    fin
}

/// Hex form.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
