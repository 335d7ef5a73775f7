//! The `intset` encoding of small all-integer sets: a sorted vector of distinct integers at the
//! narrowest width that holds every member (int16, int32 or int64: 2, 4 or 8 bytes a member),
//! like Redis's intset. A member too wide for the current width widens the whole set; removing
//! it never narrows the set back (Redis does not downgrade either). The vector is kept exactly
//! sized (Redis reallocates its intset on every add and remove), so a set of 10 small integers
//! costs 20 bytes of heap. Lookups are binary searches.

/// A sorted set of distinct integers at one width.
#[derive(Debug, Clone, PartialEq)]
pub enum Intset {
    /// Every member fits an i16.
    I16(Vec<i16>),
    /// Every member fits an i32.
    I32(Vec<i32>),
    /// Anything wider.
    I64(Vec<i64>),
}

impl Default for Intset {
    fn default() -> Self {
        Intset::I16(Vec::new())
    }
}

/// Runs `$e` with `$v` bound to the vector, whatever the width.
macro_rules! each {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            Intset::I16($v) => $e,
            Intset::I32($v) => $e,
            Intset::I64($v) => $e,
        }
    };
}

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(i) => {
            v.reserve_exact(1);
            v.insert(i, x);
            true
        }
    }
}

fn remove_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(i) => {
            v.remove(i);
            v.shrink_to_fit();
            true
        }
        Err(_) => false,
    }
}

fn bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

// `each!` expands one body for every width: for i64 its conversions are the identity.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
impl Intset {
    /// Number of members.
    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th smallest member (`i < len`).
    pub fn get(&self, i: usize) -> i64 {
        each!(self, v => v[i] as i64)
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// True if `n` is a member.
    pub fn contains(&self, n: i64) -> bool {
        each!(self, v => n.try_into().is_ok_and(|x| v.binary_search(&x).is_ok()))
    }

    /// Adds `n`, widening the set first if `n` does not fit its width; true if it was new.
    pub fn insert(&mut self, n: i64) -> bool {
        if let Some(new) = each!(self, v => n.try_into().ok().map(|x| insert_sorted(v, x))) {
            return new;
        }
        // Too wide for every member so far, so new: widen to the width `n` needs.
        let all: Vec<i64> = self.iter().collect();
        *self = if i32::try_from(n).is_ok() {
            Intset::I32(all.iter().map(|&x| x as i32).collect())
        } else {
            Intset::I64(all)
        };
        self.insert(n)
    }

    /// Removes `n`; true if it was a member.
    pub fn remove(&mut self, n: i64) -> bool {
        each!(self, v => n.try_into().is_ok_and(|x| remove_sorted(v, x)))
    }

    /// Bytes per member: 2, 4 or 8.
    pub fn width(&self) -> usize {
        match self {
            Intset::I16(_) => 2,
            Intset::I32(_) => 4,
            Intset::I64(_) => 8,
        }
    }

    /// Heap bytes of the vector.
    pub fn heap_size(&self) -> usize {
        each!(self, v => bytes(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn widens_on_demand_and_never_narrows() {
        let mut s = Intset::default();
        for n in [5, -3, 32767, -32768] {
            assert!(s.insert(n));
        }
        assert!(!s.insert(5));
        assert_eq!((s.width(), s.heap_size()), (2, 8));
        assert!(s.insert(32768));
        assert_eq!(s.width(), 4);
        assert!(s.insert(-(1 << 40)));
        assert_eq!(s.width(), 8);
        assert!(s.remove(-(1 << 40)) && s.remove(32768));
        assert_eq!(s.width(), 8, "no downgrade");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-32768, -3, 5, 32767]);
        assert!(!s.remove(1 << 40) && !s.contains(1 << 40) && s.contains(-3));
        let mut s = Intset::default();
        assert!(s.insert(i64::MIN) && s.insert(i64::MAX));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![i64::MIN, i64::MAX]);
        let mut s = Intset::default();
        assert!(!s.contains(1 << 20) && !s.remove(1 << 20));
        assert!(s.insert(-(1 << 20)));
        assert_eq!(s.width(), 4);
    }

    #[test]
    fn random_operations_match_a_btreeset() {
        let mut rng = crate::storage::test_rng::Rng(0x2545_F491_4F6C_DD1D);
        let mut next = move || rng.next();
        for round in 0..20 {
            let mut s = Intset::default();
            let mut model = BTreeSet::new();
            for _ in 0..400 {
                let r = next();
                let n = match (r >> 8) % 10 {
                    0 if round % 2 == 0 => (r >> 16) as i64,
                    1 | 2 if round % 3 == 0 => ((r >> 16) % 200_000) as i64 - 100_000,
                    _ => ((r >> 16) % 100) as i64 - 50,
                };
                if r % 3 == 0 {
                    assert_eq!(s.remove(n), model.remove(&n));
                } else {
                    assert_eq!(s.insert(n), model.insert(n));
                }
                assert_eq!(s.contains(n), model.contains(&n));
                assert_eq!(s.len(), model.len());
                assert_eq!(s.heap_size(), s.len() * s.width());
            }
            assert!(s.iter().eq(model.iter().copied()));
        }
    }
}
