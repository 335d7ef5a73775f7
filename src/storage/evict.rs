//! Choosing the key to evict (Redis's `evict.c`, the keyspace half): the eviction pool of
//! the best candidates seen so far, filled by sampling `maxmemory-samples` keys of every
//! database, and the random pick of the `*-random` policies. No I/O; the cycle that deletes,
//! counts and propagates lives in `memory::evict`.
//!
//! Scores follow Redis: the higher, the better a candidate. LRU: idle time in milliseconds
//! (the entry's access clock is in seconds); LFU: `255 - counter` after decay; volatile-ttl:
//! `u64::MAX - expire_at`. The pool keeps up to [`POOL_SIZE`] entries in ascending order and
//! survives between cycles, so good candidates seen earlier are still evicted first; a pooled
//! key that has gone since (or lost its expiry under a volatile policy) is a ghost and is
//! skipped.

use super::db::{lfu_counter, Db, Entry, Keyspace};
use crate::memory::Policy;

/// Entries in the eviction pool (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

#[derive(Debug)]
struct Candidate {
    score: u64,
    db: usize,
    key: Box<[u8]>,
}

/// The eviction pool: best candidates, ascending by score (the best is last).
#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Candidate>,
    /// Where the random policies look first (Redis's `next_db`).
    next_db: usize,
}

impl Pool {
    /// Number of pooled candidates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when no candidate is pooled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts a candidate as Redis's `evictionPoolPopulate` does: into a free place, or in
    /// place of the worst candidate when it beats it.
    fn insert(&mut self, score: u64, db: usize, key: &[u8]) {
        let k = self.entries.iter().take_while(|c| c.score < score).count();
        if self.entries.len() < POOL_SIZE {
            self.entries.insert(k, Candidate { score, db, key: key.into() });
        } else if k > 0 {
            self.entries.remove(0);
            self.entries.insert(k - 1, Candidate { score, db, key: key.into() });
        }
    }

    /// Samples `samples` keys of `db` into the pool.
    fn populate(&mut self, dbid: usize, db: &Db, policy: Policy, samples: usize, now_ms: u64) {
        let mut found: Vec<(u64, Box<[u8]>)> = Vec::with_capacity(samples);
        db.sample_keys(policy.volatile_only(), samples, |k, e| found.push((score(policy, e, now_ms), k.into())));
        for (s, k) in found {
            // Redis pools a key sampled twice twice; the second pick finds a ghost. Keeping one
            // copy is the same choice with less waste.
            if !self.entries.iter().any(|c| c.db == dbid && *c.key == *k) {
                self.insert(s, dbid, &k);
            }
        }
    }
}

/// A candidate's score under `policy` (higher = evict first).
pub fn score(policy: Policy, e: &Entry, now_ms: u64) -> u64 {
    match policy {
        Policy::AllkeysLfu | Policy::VolatileLfu => 255 - lfu_counter(e.lru, now_ms).min(255) as u64,
        Policy::VolatileTtl => u64::MAX - e.expire_at,
        // The LRU clock is seconds truncated to 32 bits (see `db::lru_clock`).
        _ => ((now_ms / 1000) as u32).wrapping_sub(e.lru) as u64 * 1000,
    }
}

/// Picks the next key to evict under `policy`, or None when no database has a candidate.
pub fn pick(ks: &Keyspace, pool: &mut Pool, policy: Policy, samples: usize, now_ms: u64) -> Option<(usize, Box<[u8]>)> {
    let volatile = policy.volatile_only();
    let candidates = |db: &Db| if volatile { db.volatile_len() } else { db.len() };
    match policy {
        Policy::NoEviction => None,
        Policy::AllkeysRandom | Policy::VolatileRandom => {
            let n = ks.dbs.len();
            for _ in 0..n {
                pool.next_db = (pool.next_db + 1) % n;
                let db = &ks.dbs[pool.next_db];
                if candidates(db) == 0 {
                    continue;
                }
                let mut got = None;
                db.sample_keys(volatile, 1, |k, _| got = Some(Box::<[u8]>::from(k)));
                if let Some(k) = got {
                    return Some((pool.next_db, k));
                }
            }
            None
        }
        _ => loop {
            let mut total = 0;
            for (i, db) in ks.dbs.iter().enumerate() {
                let n = candidates(db);
                if n > 0 {
                    pool.populate(i, db, policy, samples, now_ms);
                    total += n;
                }
            }
            if total == 0 || pool.is_empty() {
                return None;
            }
            // Best first; ghosts are dropped on the way.
            while let Some(c) = pool.entries.pop() {
                let live = ks.dbs.get(c.db).is_some_and(|db| {
                    if volatile {
                        db.expire_of(&c.key).is_some_and(|t| t != 0)
                    } else {
                        db.exists_even_expired(&c.key)
                    }
                });
                if live {
                    return Some((c.db, c.key));
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::value::{StrValue, Value};

    fn v() -> Value {
        Value::Str(StrValue::from_bytes(b"x"))
    }

    #[test]
    fn pool_keeps_the_best_in_order() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.insert(i * 7 % 41, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let scores: Vec<u64> = p.entries.iter().map(|c| c.score).collect();
        assert!(scores.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*scores.last().unwrap(), 40);
    }

    #[test]
    fn volatile_policies_only_pick_volatile_keys() {
        let mut ks = Keyspace::new(2);
        for i in 0..100 {
            ks.dbs[1].set(format!("p{i}").as_bytes(), v(), 0);
        }
        ks.dbs[1].set(b"t", v(), u64::MAX - 1);
        let mut pool = Pool::default();
        for policy in [Policy::VolatileLru, Policy::VolatileTtl, Policy::VolatileRandom, Policy::VolatileLfu] {
            assert_eq!(pick(&ks, &mut pool, policy, 5, 1000).map(|(d, k)| (d, k.to_vec())), Some((1, b"t".to_vec())));
        }
        ks.dbs[1].remove(b"t");
        assert!(pick(&ks, &mut pool, Policy::VolatileLru, 5, 1000).is_none());
        assert!(pick(&ks, &mut pool, Policy::AllkeysRandom, 5, 1000).is_some());
    }

    #[test]
    fn ttl_prefers_the_nearest_expiry() {
        let mut ks = Keyspace::new(1);
        for i in 1..=50u64 {
            ks.dbs[0].set(format!("k{i}").as_bytes(), v(), 1_000_000 + i);
        }
        let mut pool = Pool::default();
        // With every key sampled, the nearest expiry wins.
        let (_, k) = pick(&ks, &mut pool, Policy::VolatileTtl, 64, 0).unwrap();
        assert_eq!(&*k, b"k1");
    }
}
