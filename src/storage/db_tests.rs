//! Tests of `storage::db`.
use super::*;
use crate::storage::access_clock::lfu_minutes;
use crate::storage::value::StrValue;

fn s(v: &str) -> Value {
    Value::Str(StrValue::from_bytes(v.as_bytes()))
}

#[test]
fn prefetching_a_batch_changes_nothing() {
    let mut db = Db::new();
    let key = |i: usize| if i % 2 == 0 { format!("k{i}") } else { format!("a-long-key-of-more-than-15-bytes:{i}") };
    for i in 0..PREFETCH_MIN_KEYS + 10 {
        db.set(key(i).as_bytes(), s("v"), 0);
    }
    let batch: Vec<Vec<u8>> = [1usize, 2, 3, 1 << 20, 7, 7].iter().map(|&i| key(i).into_bytes()).collect();
    let with_empty: Vec<&[u8]> = batch.iter().map(|k| &k[..]).chain([&b""[..], &b"{x}y"[..]]).collect();
    db.prefetch_keys(with_empty.iter().copied());
    assert_eq!(db.len(), PREFETCH_MIN_KEYS + 10);
    for (i, k) in batch.iter().enumerate() {
        assert_eq!(db.get(k, 0).is_some(), i != 3, "{:?}", String::from_utf8_lossy(k));
    }
    // Below the threshold, and on an empty database, it returns at once.
    Db::new().prefetch_keys([&b"k1"[..]].into_iter());
}

#[test]
fn counts_follow_inserts_and_removes() {
    let mut db = Db::new();
    db.set(b"a", s("1"), 0);
    db.set(b"b", s("2"), u64::MAX);
    db.set(b"b", s("3"), 0);
    assert_eq!((db.len(), db.volatile_len()), (2, 0));
    db.set_expire(b"a", 10);
    assert_eq!(db.volatile_len(), 1);
    assert!(db.get(b"a", 11).is_none());
    assert_eq!((db.len(), db.volatile_len(), db.expired_keys), (1, 0, 1));
    assert!(db.remove(b"b").is_some());
    assert!(db.is_empty());
}

#[test]
fn get_or_create_finds_creates_and_expires() {
    let mut db = Db::new();
    let (e, created) = db.get_or_create(b"a", 1, || s("new"));
    assert!(created && matches!(&e.value, Value::Str(v) if v.to_bytes()[..] == b"new"[..]));
    let (e, created) = db.get_or_create(b"a", 1, || s("other"));
    assert!(!created && matches!(&e.value, Value::Str(v) if v.to_bytes()[..] == b"new"[..]));
    assert_eq!((db.len(), db.volatile_len()), (1, 0));
    // A key past its expiry is deleted and created again, without the expiry.
    db.set_expire(b"a", 10);
    let (e, created) = db.get_or_create(b"a", 11, || s("again"));
    assert!(created && e.expire_at == 0 && matches!(&e.value, Value::Str(v) if v.to_bytes()[..] == b"again"[..]));
    assert_eq!((db.len(), db.volatile_len(), db.expired_keys), (1, 0, 1));
    // A live key with an expiry keeps it.
    db.set_expire(b"a", 100);
    let (e, created) = db.get_or_create(b"a", 50, || s("no"));
    assert!(!created && e.expire_at == 100);
    assert!(db.get(b"a", 100).is_none());
    assert!(db.is_empty());
}

#[test]
fn lfu_counter_decays_per_minute() {
    let now = 1_700_000_000_000u64;
    let m = lfu_minutes(now);
    assert_eq!(lfu_counter((m << 8) | 7, now), 7);
    assert_eq!(lfu_counter(((m - 3) << 8) | 7, now), 4);
    assert_eq!(lfu_counter(((m - 10) << 8) | 5, now), 0);
}

#[test]
fn active_expiry_reclaims() {
    let mut db = Db::new();
    for i in 0..1000 {
        db.set(format!("k{i}").as_bytes(), s("v"), if i % 2 == 0 { 5 } else { 0 });
    }
    let mut total = 0;
    for _ in 0..100 {
        total += db.active_expire_step(10, 100).1;
    }
    assert_eq!(total, 500);
    assert_eq!(db.len(), 500);
    assert_eq!(db.volatile_len(), 0);
}

/// Every slot's expiry count equals its table's keys with an expiry, and the database's
/// counts are their sums.
fn assert_counts_consistent(db: &Db) {
    let (mut keys, mut volatile) = (0, 0);
    for (slot, t) in db.slots.iter() {
        assert_eq!(db.slots.volatile(slot) as usize, t.count_volatile(), "slot {slot}");
        keys += t.len();
        volatile += t.count_volatile();
    }
    assert_eq!((db.len(), db.volatile_len()), (keys, volatile));
}

#[test]
fn per_slot_expiry_counts_follow_every_change() {
    // Keys hashed into few slots (hash tags), so tables pass between their few and hash forms.
    let mut db = Db::new();
    let mut rng = crate::storage::test_rng::Rng(7);
    let key = |i: usize| format!("{{t{}}}k{}", i % 5, i).into_bytes();
    for step in 0..20_000usize {
        let k = key(rng.below(60));
        match rng.below(8) {
            0 | 1 => db.set(&k, s("v"), 0),
            2 => db.set(&k, s("v"), 10 + rng.below(50) as u64),
            3 => {
                db.set_expire(&k, if rng.below(2) == 0 { 0 } else { 5 + rng.below(50) as u64 });
            }
            4 => {
                db.remove(&k);
            }
            5 => {
                db.get(&k, 30);
            }
            6 => {
                db.active_expire_step(30, 8);
            }
            _ => {
                if step % 500 == 0 {
                    let slot = key_slot(&k);
                    if let Some(t) = db.take_slot(slot) {
                        assert_counts_consistent(&db);
                        db.put_slot(slot, t);
                    }
                }
            }
        }
        assert_counts_consistent(&db);
    }
    db.clear_slot(key_slot(&key(0)));
    assert_counts_consistent(&db);
    db.clear();
    assert_counts_consistent(&db);
    assert!(db.slots.iter().next().is_none());
}
