//! The key table of one hash slot: up to [`FEW`] entries kept in place, more in a hash table.
//!
//! A database keeps one table per slot (`storage::db`), so a keyspace of tens of thousands of
//! keys spreads over thousands of slots holding one, two or three keys each. A hash table
//! allocates its buckets and control bytes for even one entry (about 64 bytes beside the
//! entry), which made a small keyspace cost a third more than Redis's single dict per key.
//! Here a slot with few keys holds its entries (thin pointers) in the table's own bytes, with
//! no allocation; its lookups compare the keys one by one, which for three keys costs no more
//! than probing control bytes. A fourth entry moves them into a hash table; it moves back once
//! it holds [`BACK_TO_FEW`] or fewer (the gap keeps a slot hovering around one size from
//! converting back and forth). Both forms fit the same 32 bytes: the enum uses the hash
//! table's non-null control pointer as its tag.
//!
//! The API follows `hashbrown::HashTable`'s (a hash and an equality closure per call), with the
//! hash given as a closure: only the hash-table form computes it, so a lookup in a slot of few
//! keys (every slot of a small keyspace) hashes nothing.

use hashbrown::HashTable;

/// Entries kept in place.
pub const FEW: usize = 3;
/// A hash table with this many entries or fewer goes back to the few form.
const BACK_TO_FEW: usize = 2;

/// One slot's entries.
#[derive(Debug)]
pub enum KeyTable<T> {
    /// Up to [`FEW`] entries, packed at the front.
    Few([Option<T>; FEW]),
    /// More entries.
    Map(HashTable<T>),
}

impl<T> Default for KeyTable<T> {
    fn default() -> Self {
        KeyTable::Few([None, None, None])
    }
}

impl<T> KeyTable<T> {
    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            KeyTable::Few(a) => a.iter().take_while(|e| e.is_some()).count(),
            KeyTable::Map(m) => m.len(),
        }
    }

    /// True without entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        match self {
            KeyTable::Few(a) => a[0].is_none(),
            KeyTable::Map(m) => m.is_empty(),
        }
    }

    /// True when the table holds no entries and no memory.
    pub fn is_released(&self) -> bool {
        match self {
            KeyTable::Few(a) => a[0].is_none(),
            KeyTable::Map(m) => m.capacity() == 0,
        }
    }

    /// The entry `eq` accepts.
    #[inline]
    pub fn find(&self, hash: impl FnOnce() -> u64, mut eq: impl FnMut(&T) -> bool) -> Option<&T> {
        match self {
            KeyTable::Few(a) => a.iter().map_while(Option::as_ref).find(|e| eq(e)),
            KeyTable::Map(m) => m.find(hash(), eq),
        }
    }

    /// The entry `eq` accepts, to change.
    #[inline]
    pub fn find_mut(&mut self, hash: impl FnOnce() -> u64, mut eq: impl FnMut(&T) -> bool) -> Option<&mut T> {
        match self {
            KeyTable::Few(a) => a.iter_mut().map_while(Option::as_mut).find(|e| eq(e)),
            KeyTable::Map(m) => m.find_mut(hash(), eq),
        }
    }

    /// The entry `eq` accepts (and false), or a new one made by `make` (and true).
    #[inline]
    pub fn find_or_insert(
        &mut self,
        hash: impl FnOnce() -> u64,
        mut eq: impl FnMut(&T) -> bool,
        hasher: impl Fn(&T) -> u64,
        make: impl FnOnce() -> T,
    ) -> (&mut T, bool) {
        // Where the key is in the few form, or where a new one would go (None: a hash table).
        let few = match self {
            KeyTable::Few(a) => {
                let n = a.iter().take_while(|e| e.is_some()).count();
                Some(a[..n].iter().position(|e| e.as_ref().is_some_and(&mut eq)).ok_or(n))
            }
            KeyTable::Map(_) => None,
        };
        match few {
            Some(Ok(i)) => {
                let KeyTable::Few(a) = self else { unreachable!("the few form") };
                return (a[i].as_mut().expect("a found entry is present"), false);
            }
            Some(Err(n)) if n < FEW => {
                let KeyTable::Few(a) = self else { unreachable!("the few form") };
                return (a[n].insert(make()), true);
            }
            Some(Err(_)) => self.grow(&hasher),
            None => {}
        }
        let KeyTable::Map(m) = self else { unreachable!("grown into a hash table") };
        match m.entry(hash(), eq, hasher) {
            hashbrown::hash_table::Entry::Occupied(o) => (o.into_mut(), false),
            hashbrown::hash_table::Entry::Vacant(v) => (v.insert(make()).into_mut(), true),
        }
    }

    /// Moves a full few form into a hash table.
    #[cold]
    fn grow(&mut self, hasher: &impl Fn(&T) -> u64) {
        let KeyTable::Few(a) = self else { return };
        let mut m = HashTable::with_capacity(FEW + 1);
        for e in a.iter_mut().filter_map(Option::take) {
            m.insert_unique(hasher(&e), e, hasher);
        }
        *self = KeyTable::Map(m);
    }

    /// Removes and returns the entry `eq` accepts, then gives memory back ([`KeyTable::fit`]).
    pub fn remove(
        &mut self,
        hash: impl FnOnce() -> u64,
        mut eq: impl FnMut(&T) -> bool,
        hasher: impl Fn(&T) -> u64,
    ) -> Option<T> {
        let removed = match self {
            KeyTable::Few(a) => {
                let n = a.iter().take_while(|e| e.is_some()).count();
                let i = a[..n].iter().position(|e| e.as_ref().is_some_and(&mut eq))?;
                // Keep the entries packed: the last one takes the removed one's place.
                a.swap(i, n - 1);
                a[n - 1].take()
            }
            KeyTable::Map(m) => m.find_entry(hash(), eq).ok().map(|o| o.remove().0),
        };
        if removed.is_some() {
            self.fit(hasher);
        }
        removed
    }

    /// Keeps the entries `keep` accepts (it may change them), then gives memory back.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool, hasher: impl Fn(&T) -> u64) {
        match self {
            KeyTable::Few(a) => {
                let mut kept = 0;
                for i in 0..FEW {
                    let Some(mut e) = a[i].take() else { break };
                    if keep(&mut e) {
                        a[kept] = Some(e);
                        kept += 1;
                    }
                }
            }
            KeyTable::Map(m) => m.retain(keep),
        }
        self.fit(hasher);
    }

    /// Gives memory back after removals, as Redis shrinks a dict whose fill fell under 10%:
    /// a hash table down to [`BACK_TO_FEW`] entries goes back to the few form (an emptied one
    /// so frees its buckets), and one filled under 1/8 of its capacity is rehashed to about
    /// twice its entries (the hysteresis with growth at 7/8 keeps a table that shrinks and
    /// grows around one size from rehashing back and forth). A table's memory counts toward
    /// `maxmemory`, and eviction could not get under the ceiling if deleting keys never
    /// returned it.
    #[inline]
    pub fn fit(&mut self, hasher: impl Fn(&T) -> u64) {
        let KeyTable::Map(m) = self else { return };
        let (len, cap) = (m.len(), m.capacity());
        if len <= BACK_TO_FEW {
            let mut a = [None, None, None];
            for (slot, e) in a.iter_mut().zip(m.drain()) {
                *slot = Some(e);
            }
            *self = KeyTable::Few(a);
        } else if cap > 28 && len * 8 < cap {
            m.shrink_to(len * 2, hasher);
        }
    }

    /// Every entry, in no particular order.
    #[inline]
    pub fn iter(&self) -> Iter<'_, T> {
        match self {
            KeyTable::Few(a) => Iter::Few(a.iter()),
            KeyTable::Map(m) => Iter::Map(m.iter()),
        }
    }
}

/// The iterator of [`KeyTable::iter`].
pub enum Iter<'a, T> {
    /// Over the few form.
    Few(std::slice::Iter<'a, Option<T>>),
    /// Over a hash table.
    Map(hashbrown::hash_table::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Few(i) => i.next()?.as_ref(),
            Iter::Map(i) => i.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn h(v: &u64) -> u64 {
        hashbrown::DefaultHashBuilder::default().hash_one(v)
    }

    fn fixed_hasher() -> impl Fn(&u64) -> u64 {
        let b = hashbrown::DefaultHashBuilder::default();
        move |v: &u64| b.hash_one(v)
    }

    fn sorted(t: &KeyTable<u64>) -> Vec<u64> {
        let mut v: Vec<u64> = t.iter().copied().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn both_forms_fit_the_bytes_of_a_hash_table() {
        assert_eq!(std::mem::size_of::<KeyTable<Box<u64>>>(), std::mem::size_of::<HashTable<Box<u64>>>());
    }

    #[test]
    fn entries_move_to_a_hash_table_past_the_few_and_back_when_down_to_two() {
        let hs = fixed_hasher();
        let mut t = KeyTable::default();
        for v in 0..FEW as u64 {
            let (_, created) = t.find_or_insert(|| hs(&v), |e| *e == v, &hs, || v);
            assert!(created);
        }
        assert!(matches!(t, KeyTable::Few(_)) && t.len() == FEW);
        let (e, created) = t.find_or_insert(|| hs(&1), |e| *e == 1, &hs, || 99);
        assert!(!created && *e == 1, "an existing entry is found, not made again");
        t.find_or_insert(|| hs(&10), |e| *e == 10, &hs, || 10);
        assert!(matches!(t, KeyTable::Map(_)) && t.len() == 4);
        for v in [0u64, 1, 2, 10] {
            assert_eq!(t.find(|| hs(&v), |e| *e == v), Some(&v));
        }
        assert_eq!(t.remove(|| hs(&0), |e| *e == 0, &hs), Some(0));
        assert!(matches!(t, KeyTable::Map(_)), "three entries stay in the hash table");
        assert_eq!(t.remove(|| hs(&10), |e| *e == 10, &hs), Some(10));
        assert!(matches!(t, KeyTable::Few(_)));
        assert_eq!(sorted(&t), vec![1, 2]);
        assert_eq!(t.remove(|| hs(&7), |e| *e == 7, &hs), None);
        assert_eq!(t.remove(|| hs(&1), |e| *e == 1, &hs), Some(1));
        assert_eq!(t.remove(|| hs(&2), |e| *e == 2, &hs), Some(2));
        assert!(t.is_empty() && t.is_released());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn the_few_form_stays_packed_through_removals_and_retain() {
        let hs = fixed_hasher();
        let mut t = KeyTable::default();
        for v in [5u64, 6, 7] {
            t.find_or_insert(|| h(&v), |e| *e == v, &hs, || v);
        }
        assert_eq!(t.remove(|| h(&5), |e| *e == 5, &hs), Some(5));
        assert_eq!(t.len(), 2);
        assert_eq!(t.find(|| 0, |e| *e == 7), Some(&7));
        t.find_or_insert(|| h(&8), |e| *e == 8, &hs, || 8);
        assert_eq!(sorted(&t), vec![6, 7, 8]);
        t.retain(|e| *e != 7, &hs);
        assert_eq!(sorted(&t), vec![6, 8]);
        assert_eq!(t.len(), 2);
        t.retain(|_| false, &hs);
        assert!(t.is_empty());
    }

    #[test]
    fn a_large_table_matches_a_model_through_inserts_and_removals() {
        let hs = fixed_hasher();
        let mut t = KeyTable::default();
        let mut model = std::collections::BTreeSet::new();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x % 300;
            if x % 3 == 0 {
                assert_eq!(t.remove(|| hs(&v), |e| *e == v, &hs).is_some(), model.remove(&v));
            } else {
                let (_, created) = t.find_or_insert(|| hs(&v), |e| *e == v, &hs, || v);
                assert_eq!(created, model.insert(v));
            }
            assert_eq!(t.len(), model.len());
        }
        assert_eq!(sorted(&t), model.iter().copied().collect::<Vec<_>>());
        t.retain(|e| *e % 2 == 0, &hs);
        model.retain(|e| *e % 2 == 0);
        assert_eq!(sorted(&t), model.iter().copied().collect::<Vec<_>>());
        let first = model.iter().next().copied().unwrap_or(0);
        if let Some(e) = t.find_mut(|| hs(&first), |e| *e == first) {
            *e = 1_000_000;
        }
        assert!(t.iter().any(|e| *e == 1_000_000), "find_mut changes the stored entry");
    }
}
