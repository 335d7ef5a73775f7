//! Loading a full sync into every shard (`readSyncBulkPayload` after the transfer): the RDB
//! is parsed once off the shards' threads (so every shard keeps answering: `-LOADING`, or the
//! old data under async loading), its keys are staged per owning shard (any number of shards
//! on either side: a key goes to the shard owning its slot here), and then, with every shard
//! held, each shard swaps its databases for its keys. Other clients see the old dataset or
//! the new one, never a mix. The old tables are dropped on a background thread when
//! `replica-lazy-flush yes` or with `repl-diskless-load swapdb` (Redis frees them with a
//! lazyfree job in both cases), on the shard otherwise.
//!
//! A replica keeps keys that are already expired (Redis filters only when it is a master):
//! they are hidden from readers until the master's DEL arrives.

use crate::cmd::ShardState;
use crate::persist::file::{self, Loaded, Record};
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Keys staged for each shard, taken by [`load_part`] on that shard.
static STAGED: Mutex<Vec<Vec<Record>>> = Mutex::new(Vec::new());
/// Whether [`load_part`] and [`empty_part`] free the old tables on a background thread.
static FREE_IN_BACKGROUND: AtomicBool = AtomicBool::new(false);

/// Parses the payload, keeping expired keys; the function libraries are installed by
/// [`install_functions`] on a shard's thread once the parse succeeded.
pub fn parse(buf: &[u8], databases: usize) -> Result<Loaded, String> {
    // The first line of the reason (a bad checksum's has the start-up's exit lines after it).
    file::load(buf, 0, databases).map_err(|e| e.lines().next().unwrap_or_default().to_string())
}

/// Replaces the function libraries with the payload's.
pub fn install_functions(loaded: &Loaded) -> Result<(), String> {
    crate::script::functions::install(&loaded.functions)
}

/// Redis's `key-load-delay` after each loaded key (`debugDelay`): `delay` µs; a negative
/// value sleeps 1 µs once every `-delay` keys on average.
pub fn key_load_delay(delay: i64) {
    if delay > 0 {
        std::thread::sleep(std::time::Duration::from_micros(delay as u64));
    } else if delay < 0 && rand::random::<u64>() % delay.unsigned_abs() == 0 {
        std::thread::sleep(std::time::Duration::from_micros(1));
    }
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

/// Sets whether the next [`load_part`] / [`empty_part`] frees the old data in the background.
pub fn set_free_in_background(on: bool) {
    FREE_IN_BACKGROUND.store(on, Ordering::Relaxed);
}

/// Empties the shard's databases (Redis's `emptyData`, which touches watched keys), freeing
/// the old tables on a background thread when asked to. Returns the number of keys removed.
fn empty_databases(shard: &mut ShardState) -> u64 {
    let background = FREE_IN_BACKGROUND.load(Ordering::Relaxed);
    let removed = shard.ks.dbs.iter_mut().map(|d| crate::storage::lazyfree::empty_db(d, background)).sum();
    shard.changes.count(removed);
    removed
}

/// Runs on every shard while all are held: empties its databases and stores its staged keys.
/// Replies the number stored.
pub fn load_part(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    let mine = {
        let mut staged = STAGED.lock().unwrap_or_else(|p| p.into_inner());
        staged.get_mut(shard.id).map(std::mem::take).unwrap_or_default()
    };
    empty_databases(shard);
    // The master's keys (`Db::load`): their expiries are the master's to enforce (its DELs).
    let lru = crate::storage::db::lru_clock();
    let mut n = 0;
    for r in mine {
        if let Some(d) = shard.ks.dbs.get_mut(r.db) {
            d.load(&r.key, crate::storage::Entry { value: r.value, expire_at: r.expire_at, lru });
            n += 1;
        }
    }
    Reply::Int(n)
}

/// Runs on every shard: empties its databases (a failed load without `swapdb` leaves the
/// replica empty, as Redis, which flushed before loading). Replies the number removed.
pub fn empty_part(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Int(empty_databases(shard) as i64)
}

/// Runs on every shard: the number of keys it holds in every database.
pub fn count_part(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Int(shard.ks.dbs.iter().map(|d| d.len() as i64).sum())
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
