//! Loading a full sync into every shard (`readSyncBulkPayload` after the transfer): the RDB
//! is parsed once on the link's shard, its keys are staged per owning shard (any number of
//! shards on either side: a key goes to the shard owning its slot here), and then, with every
//! shard held, each shard empties its databases and takes its keys. Other clients see the old
//! dataset or the new one, never a mix.
//!
//! A replica keeps keys that are already expired (Redis filters only when it is a master):
//! they are hidden from readers until the master's DEL arrives.

use crate::cmd::ShardState;
use crate::persist::file::{self, Loaded, Record};
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::Mutex;

/// Keys staged for each shard, taken by [`load_part`] on that shard.
static STAGED: Mutex<Vec<Vec<Record>>> = Mutex::new(Vec::new());

/// Parses the payload, keeping expired keys.
pub fn parse(buf: &[u8], databases: usize) -> Result<Loaded, String> {
    let loaded = file::load(buf, 0, databases)?;
    crate::script::functions::install(&loaded.functions)?;
    Ok(loaded)
}

/// Stages `records` for `nshards` shards, placing each by `shard_of(slot)`.
pub fn stage(records: Vec<Record>, nshards: usize, shard_of: impl Fn(u16) -> usize) {
    let mut per: Vec<Vec<Record>> = (0..nshards).map(|_| Vec::new()).collect();
    for r in records {
        let s = shard_of(crate::cluster::slot::key_slot(&r.key)).min(nshards - 1);
        per[s].push(r);
    }
    *STAGED.lock().unwrap_or_else(|p| p.into_inner()) = per;
}

/// Runs on every shard while all are held: empties its databases (Redis's `emptyData`, which
/// touches watched keys) and stores its staged keys. Replies the number stored.
pub fn load_part(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let mine = {
        let mut staged = STAGED.lock().unwrap_or_else(|p| p.into_inner());
        staged.get_mut(shard.id).map(std::mem::take).unwrap_or_default()
    };
    let mut removed = 0;
    for d in shard.ks.dbs.iter_mut() {
        removed += d.len() as u64;
        d.clear();
    }
    shard.changes.count(removed);
    let lru = crate::storage::db::lru_clock();
    let mut n = 0;
    for r in mine {
        if let Some(d) = shard.ks.dbs.get_mut(r.db) {
            d.insert(&r.key, crate::storage::Entry { value: r.value, expire_at: r.expire_at, lru });
            n += 1;
        }
    }
    Reply::Int(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{StrValue, Value};

    #[test]
    fn keys_go_to_the_shard_of_their_slot_and_expired_ones_stay() {
        let mut f = Vec::new();
        file::put_header(&mut f, 1, 1);
        file::put_db(&mut f, 0, 3, 1);
        for (k, exp) in [(&b"a"[..], 0), (b"b", 5), (b"c", 0)] {
            file::put_key(&mut f, k, &Value::Str(StrValue::Int(1)), exp, false);
        }
        file::finish(&mut f);
        let l = parse(&f, 16).unwrap();
        assert_eq!((l.records.len(), l.expired), (3, 0));
        stage(l.records, 2, |slot| (slot % 2) as usize);
        let staged = STAGED.lock().unwrap();
        for (i, part) in staged.iter().enumerate() {
            assert!(part.iter().all(|r| crate::cluster::slot::key_slot(&r.key) % 2 == i as u16));
        }
        assert_eq!(staged.iter().map(Vec::len).sum::<usize>(), 3);
    }
}
