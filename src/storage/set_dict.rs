//! The hash table of a set's `hashtable` encoding, built as Redis 7.0's `dict.c`: chained
//! buckets in a power-of-two table, grown at one element per bucket and shrunk under 10% fill,
//! rehashed incrementally (a bucket per operation) into a second table, scanned with the
//! reverse-binary cursor, and sampled as Redis samples (`dictGetSomeKeys`,
//! `dictGetFairRandomKey`). Built this way so that SSCAN cursors, SRANDMEMBER / SPOP
//! distributions and `DEBUG HTSTATS-KEY` behave as redis-server's do for the same operations.
//!
//! While a background save's child process runs, tables are not resized unless their fill is
//! extreme, as in Redis (`updateDictResizePolicy`): see [`set_resize_avoided`].

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Smallest table (`DICT_HT_INITIAL_SIZE`).
const INITIAL_SIZE: usize = 4;
/// Fill (elements per bucket) past which a table grows even while resizing is avoided.
const FORCE_RESIZE_RATIO: usize = 5;
/// Under this fill (percent) a table shrinks (`HASHTABLE_MIN_FILL`).
const MIN_FILL: usize = 10;
/// Entries `dictGetFairRandomKey` samples.
const FAIR_SAMPLE: usize = 15;

static RESIZE_AVOIDED: AtomicBool = AtomicBool::new(false);

/// Redis's `DICT_RESIZE_AVOID` while a save child runs: tables neither grow at 1:1 nor shrink,
/// and rehash only when the two tables differ five times or more in size.
pub fn set_resize_avoided(on: bool) {
    RESIZE_AVOIDED.store(on, Ordering::Relaxed);
}

fn resize_avoided() -> bool {
    RESIZE_AVOIDED.load(Ordering::Relaxed)
}

fn hash(m: &[u8]) -> u64 {
    static SEED: OnceLock<hashbrown::DefaultHashBuilder> = OnceLock::new();
    SEED.get_or_init(hashbrown::DefaultHashBuilder::default).hash_one(m)
}

struct Entry {
    member: Box<[u8]>,
    next: Link,
}

type Link = Option<Box<Entry>>;

/// A set's hash table (see the module documentation).
#[derive(Default)]
pub struct SetDict {
    tables: [Vec<Link>; 2],
    used: [usize; 2],
    /// The next bucket of table 0 to move into table 1 while rehashing.
    rehash_idx: Option<usize>,
}

fn empty_table(size: usize) -> Vec<Link> {
    let mut v = Vec::with_capacity(size);
    v.resize_with(size, || None);
    v
}

/// Frees a chain without recursion.
fn drop_chain(mut link: Link) {
    while let Some(mut e) = link {
        link = e.next.take();
    }
}

/// Table size for `n` elements (`_dictNextExp`).
fn next_size(n: usize) -> usize {
    n.max(INITIAL_SIZE).next_power_of_two()
}

fn rev(v: u64) -> u64 {
    v.reverse_bits()
}

impl Drop for SetDict {
    fn drop(&mut self) {
        for t in &mut self.tables {
            for b in t.iter_mut() {
                drop_chain(b.take());
            }
        }
    }
}

impl Clone for SetDict {
    /// The same buckets and chains in the same order.
    fn clone(&self) -> SetDict {
        let copy = |t: &Vec<Link>| {
            t.iter()
                .map(|b| {
                    let members: Vec<&[u8]> = Chain(b.as_deref()).collect();
                    let mut link: Link = None;
                    for m in members.into_iter().rev() {
                        link = Some(Box::new(Entry { member: m.into(), next: link }));
                    }
                    link
                })
                .collect()
        };
        SetDict { tables: [copy(&self.tables[0]), copy(&self.tables[1])], used: self.used, rehash_idx: self.rehash_idx }
    }
}

impl PartialEq for SetDict {
    fn eq(&self, other: &SetDict) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

impl std::fmt::Debug for SetDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

/// The members of one bucket's chain.
struct Chain<'a>(Option<&'a Entry>);

impl<'a> Iterator for Chain<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let e = self.0?;
        self.0 = e.next.as_deref();
        Some(&e.member)
    }
}

impl SetDict {
    /// An empty table sized for `n` members (`dictExpand` of a new dict).
    pub fn with_capacity(n: usize) -> SetDict {
        let mut d = SetDict::default();
        if n > 0 {
            d.expand(n);
        }
        d
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.used[0] + self.used[1]
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Buckets of both tables (`dictSlots`).
    fn slots(&self) -> usize {
        self.tables[0].len() + self.tables[1].len()
    }

    /// `_dictExpand`: false when refused (rehashing, too small, or the same size).
    fn expand(&mut self, size: usize) -> bool {
        if self.rehashing() || self.used[0] > size {
            return false;
        }
        let new = next_size(size);
        if new == self.tables[0].len() {
            return false;
        }
        if self.tables[0].is_empty() {
            self.tables[0] = empty_table(new);
            return true;
        }
        self.tables[1] = empty_table(new);
        self.rehash_idx = Some(0);
        true
    }

    /// `dictRehash`: moves up to `n` buckets (visiting at most `n * 10` empty ones); true while
    /// more remain.
    fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else { return false };
        let (s0, s1) = (self.tables[0].len(), self.tables[1].len());
        if resize_avoided() && s0.max(s1) / s0.min(s1) < FORCE_RESIZE_RATIO {
            return false;
        }
        let mut empty_visits = n * 10;
        let mask1 = s1 - 1;
        for _ in 0..n {
            if self.used[0] == 0 {
                break;
            }
            while self.tables[0][idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            let mut link = self.tables[0][idx].take();
            while let Some(mut e) = link {
                link = e.next.take();
                let h = (hash(&e.member) as usize) & mask1;
                e.next = self.tables[1][h].take();
                self.tables[1][h] = Some(e);
                self.used[0] -= 1;
                self.used[1] += 1;
            }
            idx += 1;
        }
        if self.used[0] == 0 {
            self.tables[0] = std::mem::take(&mut self.tables[1]);
            self.used = [self.used[1], 0];
            self.rehash_idx = None;
            return false;
        }
        self.rehash_idx = Some(idx);
        true
    }

    fn rehash_step(&mut self) {
        if self.rehashing() {
            self.rehash(1);
        }
    }

    /// `_dictExpandIfNeeded`.
    fn expand_if_needed(&mut self) {
        if self.rehashing() {
            return;
        }
        let size = self.tables[0].len();
        if size == 0 {
            self.expand(INITIAL_SIZE);
            return;
        }
        let used = self.used[0];
        if (!resize_avoided() && used >= size) || used / size > FORCE_RESIZE_RATIO {
            self.expand(used + 1);
        }
    }

    fn find(&self, m: &[u8], h: u64) -> bool {
        for t in 0..2 {
            let table = &self.tables[t];
            if table.is_empty() {
                break;
            }
            if Chain(table[(h as usize) & (table.len() - 1)].as_deref()).any(|x| x == m) {
                return true;
            }
            if !self.rehashing() {
                break;
            }
        }
        false
    }

    /// True if `m` is a member (a lookup without Redis's rehash step, so it can share).
    pub fn contains(&self, m: &[u8]) -> bool {
        !self.is_empty() && self.find(m, hash(m))
    }

    /// Adds a member at the head of its bucket (`dictAdd`); true if it was new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        self.rehash_step();
        self.expand_if_needed();
        let h = hash(m);
        if self.find(m, h) {
            return false;
        }
        let t = self.rehashing() as usize;
        let idx = (h as usize) & (self.tables[t].len() - 1);
        let next = self.tables[t][idx].take();
        self.tables[t][idx] = Some(Box::new(Entry { member: m.into(), next }));
        self.used[t] += 1;
        true
    }

    /// Removes a member (`dictDelete`); true if it was there. The caller shrinks the table
    /// with [`SetDict::shrink_if_sparse`] as Redis's `setTypeRemove` does.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        if self.is_empty() {
            return false;
        }
        self.rehash_step();
        let h = hash(m);
        for t in 0..2 {
            let mask = self.tables[t].len() - 1;
            let mut cur = &mut self.tables[t][(h as usize) & mask];
            loop {
                match cur {
                    None => break,
                    Some(e) if *e.member == *m => {
                        let next = e.next.take();
                        *cur = next;
                        self.used[t] -= 1;
                        return true;
                    }
                    Some(e) => cur = &mut e.next,
                }
            }
            if !self.rehashing() {
                break;
            }
        }
        false
    }

    /// `htNeedsResize` + `dictResize`: starts shrinking a table filled under 10%.
    pub fn shrink_if_sparse(&mut self) {
        let (size, used) = (self.slots(), self.len());
        if size > INITIAL_SIZE && used * 100 / size < MIN_FILL && !resize_avoided() && !self.rehashing() {
            self.expand(self.used[0].max(INITIAL_SIZE));
        }
    }

    /// Every member, table by table, bucket by bucket, chain order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.tables.iter().flat_map(|t| t.iter().flat_map(|b| Chain(b.as_deref())))
    }

    /// `dictGetRandomKey`: a random bucket, then a random member of its chain.
    fn random_member(&mut self) -> Option<&[u8]> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let bucket = if let Some(idx) = self.rehash_idx {
            let s0 = self.tables[0].len();
            loop {
                let h = idx + fastrand::usize(..self.slots() - idx);
                let b = if h >= s0 { &self.tables[1][h - s0] } else { &self.tables[0][h] };
                if b.is_some() {
                    break b;
                }
            }
        } else {
            let mask = self.tables[0].len() - 1;
            loop {
                let b = &self.tables[0][fastrand::usize(..) & mask];
                if b.is_some() {
                    break b;
                }
            }
        };
        let n = Chain(bucket.as_deref()).count();
        Chain(bucket.as_deref()).nth(fastrand::usize(..n))
    }

    /// `dictGetSomeKeys`: up to `count` members from a random run of buckets (whole chains,
    /// reservoir-sampled past `count`), with up to `count` rehash steps first.
    fn some_members(&mut self, count: usize) -> Vec<&[u8]> {
        let count = count.min(self.len());
        let mut maxsteps = count * 10;
        for _ in 0..count {
            if !self.rehashing() {
                break;
            }
            self.rehash(1);
        }
        let rehash_idx = self.rehash_idx;
        let tables = if rehash_idx.is_some() { 2 } else { 1 };
        let mut maxmask = self.tables[0].len().wrapping_sub(1);
        if tables > 1 {
            maxmask = maxmask.max(self.tables[1].len() - 1);
        }
        let mut out: Vec<&[u8]> = Vec::with_capacity(count);
        let mut stored = 0usize;
        if count == 0 {
            return out;
        }
        let mut i = fastrand::usize(..) & maxmask;
        let mut emptylen = 0usize;
        while stored < count && maxsteps > 0 {
            maxsteps -= 1;
            for j in 0..tables {
                if let (2, 0, Some(idx)) = (tables, j, rehash_idx) {
                    if i < idx {
                        if i >= self.tables[1].len() {
                            i = idx;
                        } else {
                            continue;
                        }
                    }
                }
                if i >= self.tables[j].len() {
                    continue;
                }
                let bucket = self.tables[j][i].as_deref();
                if bucket.is_none() {
                    emptylen += 1;
                    if emptylen >= 5 && emptylen > count {
                        i = fastrand::usize(..) & maxmask;
                        emptylen = 0;
                    }
                } else {
                    emptylen = 0;
                    for m in Chain(bucket) {
                        if stored < count {
                            out.push(m);
                        } else {
                            let r = fastrand::usize(..=stored);
                            if r < count {
                                out[r] = m;
                            }
                        }
                        stored += 1;
                    }
                    if stored >= count {
                        return out;
                    }
                }
            }
            i = (i + 1) & maxmask;
        }
        out
    }

    /// `dictGetFairRandomKey`: one of a sample of [`FAIR_SAMPLE`] members, so members of long
    /// chains are not favoured; None only when empty.
    pub fn fair_random(&mut self) -> Option<Vec<u8>> {
        let sample = self.some_members(FAIR_SAMPLE);
        if !sample.is_empty() {
            return Some(sample[fastrand::usize(..sample.len())].to_vec());
        }
        self.random_member().map(<[u8]>::to_vec)
    }

    /// `dictScan`: calls `f` for the members of the buckets at `cursor` (in both tables while
    /// rehashing); returns the next cursor, 0 when the scan is complete.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        if !self.rehashing() {
            let m0 = (self.tables[0].len() - 1) as u64;
            Chain(self.tables[0][(v & m0) as usize].as_deref()).for_each(&mut f);
            v |= !m0;
            return rev(rev(v).wrapping_add(1));
        }
        let (small, big) = if self.tables[0].len() > self.tables[1].len() {
            (&self.tables[1], &self.tables[0])
        } else {
            (&self.tables[0], &self.tables[1])
        };
        let (m0, m1) = ((small.len() - 1) as u64, (big.len() - 1) as u64);
        Chain(small[(v & m0) as usize].as_deref()).for_each(&mut f);
        loop {
            Chain(big[(v & m1) as usize].as_deref()).for_each(&mut f);
            v |= !m1;
            v = rev(rev(v).wrapping_add(1));
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        v
    }

    /// Redis's `dictGetStats` text for one table (`_dictGetStatsHt`).
    fn table_stats(&self, t: usize, out: &mut String) {
        use std::fmt::Write;
        let name = if t == 0 { "main hash table" } else { "rehashing target" };
        if self.used[t] == 0 {
            let _ = write!(out, "Hash table {t} stats ({name}):\nNo stats available for empty dictionaries\n");
            return;
        }
        const VECTLEN: usize = 50;
        let mut clvector = [0usize; VECTLEN];
        let (mut slots, mut maxchain, mut total) = (0usize, 0usize, 0usize);
        for b in &self.tables[t] {
            let len = Chain(b.as_deref()).count();
            clvector[len.min(VECTLEN - 1)] += 1;
            if len == 0 {
                continue;
            }
            slots += 1;
            maxchain = maxchain.max(len);
            total += len;
        }
        let size = self.tables[t].len();
        let _ = write!(
            out,
            "Hash table {t} stats ({name}):\n table size: {size}\n number of elements: {}\n different slots: {slots}\n \
             max chain length: {maxchain}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n \
             Chain length distribution:\n",
            self.used[t],
            (total as f32 / slots as f32) as f64,
            (self.used[t] as f32 / slots as f32) as f64,
        );
        for (i, n) in clvector.iter().enumerate().take(VECTLEN - 1) {
            if *n > 0 {
                let _ = writeln!(out, "   {i}: {n} ({:.2}%)", ((*n as f32 / size as f32) * 100.0) as f64);
            }
        }
    }

    /// `DEBUG HTSTATS-KEY`'s text (`dictGetStats`): the main table, and the rehashing target
    /// while rehashing; cut at Redis's 4 KB buffer.
    pub fn stats(&self) -> String {
        let mut out = String::new();
        self.table_stats(0, &mut out);
        if self.rehashing() {
            self.table_stats(1, &mut out);
        }
        out.truncate(4095);
        out
    }

    /// Approximate heap bytes: the bucket arrays, one entry per member and its bytes.
    pub fn heap_size(&self) -> usize {
        self.slots() * 8 + self.iter().map(|m| m.len() + 32).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resize policy is process-wide: tests that depend on it run one at a time.
    static POLICY: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn filled(n: usize) -> SetDict {
        let mut d = SetDict::default();
        for i in 0..n {
            assert!(d.insert(format!("m:{i}").as_bytes()));
        }
        d
    }

    fn finish_rehash(d: &mut SetDict) {
        while d.rehash(100) {}
    }

    #[test]
    fn grows_shrinks_and_keeps_members() {
        let _g = POLICY.lock();
        let mut d = filled(1000);
        finish_rehash(&mut d);
        assert_eq!(d.len(), 1000);
        assert_eq!(d.tables[0].len(), 1024);
        assert!(!d.insert(b"m:5") && d.contains(b"m:999") && !d.contains(b"m:1000"));
        for i in 0..950 {
            assert!(d.remove(format!("m:{i}").as_bytes()));
            d.shrink_if_sparse();
        }
        finish_rehash(&mut d);
        assert_eq!(d.len(), 50);
        assert!(d.tables[0].len() <= 128, "{}", d.tables[0].len());
        let mut all: Vec<Vec<u8>> = d.iter().map(<[u8]>::to_vec).collect();
        all.sort();
        let mut want: Vec<Vec<u8>> = (950..1000).map(|i| format!("m:{i}").into_bytes()).collect();
        want.sort();
        assert_eq!(all, want);
        assert_eq!(d.clone(), d);
    }

    #[test]
    fn scan_visits_every_member_while_rehashing() {
        let _g = POLICY.lock();
        let mut d = filled(300);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut rounds = 0;
        loop {
            // Keep the table changing size under the scan.
            d.insert(format!("x:{rounds}").as_bytes());
            cursor = d.scan(cursor, |m| {
                seen.insert(m.to_vec());
            });
            rounds += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..300 {
            assert!(seen.contains(format!("m:{i}").as_bytes()), "m:{i} missed");
        }
    }

    #[test]
    fn avoided_resize_keeps_the_table_and_stats_say_so() {
        let _g = POLICY.lock();
        let mut d = filled(64);
        finish_rehash(&mut d);
        set_resize_avoided(true);
        for i in 0..60 {
            d.remove(format!("m:{i}").as_bytes());
            d.shrink_if_sparse();
        }
        assert!(!d.rehashing());
        set_resize_avoided(false);
        d.remove(b"m:60");
        d.shrink_if_sparse();
        assert!(d.rehashing());
        let s = d.stats();
        assert!(
            s.starts_with("Hash table 0 stats (main hash table):\n table size: 64\n number of elements: 3\n"),
            "{s}"
        );
        assert!(
            s.contains("Hash table 1 stats (rehashing target):\nNo stats available for empty dictionaries\n"),
            "{s}"
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(d.fair_random().unwrap_or_default());
        }
        assert_eq!(seen.len(), 3);
    }
}
