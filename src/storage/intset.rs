//! The `intset` encoding of small all-integer sets: a sorted array of distinct integers at the
//! narrowest width that holds every member (int16, int32 or int64: 2, 4 or 8 bytes a member),
//! like Redis's intset. A member too wide for the current width widens the whole set; removing
//! it never narrows the set back (Redis does not downgrade either). Up to [`SMALL_MAX`] int16
//! members live inside the value itself (no heap allocation: a set of 10 small integers costs
//! nothing beyond its key's node); past that the array is a heap slice kept exactly sized
//! (Redis reallocates its intset on every add and remove). Lookups are binary searches.

use super::strbuf::InlineLen;

/// The most int16 members kept inline.
pub const SMALL_MAX: usize = 11;

/// A sorted set of distinct integers at one width.
#[derive(Debug, Clone)]
pub enum Intset {
    /// At most [`SMALL_MAX`] members, every one fits an i16: stored in place.
    Small(InlineLen, [i16; SMALL_MAX]),
    /// Every member fits an i16.
    I16(Box<[i16]>),
    /// Every member fits an i32.
    I32(Box<[i32]>),
    /// Anything wider.
    I64(Box<[i64]>),
}

const _: () = assert!(std::mem::size_of::<Intset>() == 24);

impl Default for Intset {
    fn default() -> Self {
        Intset::Small(InlineLen::from_len(0), [0; SMALL_MAX])
    }
}

impl PartialEq for Intset {
    fn eq(&self, other: &Self) -> bool {
        self.width() == other.width() && self.iter().eq(other.iter())
    }
}

/// Runs `$e` with `$v` bound to the member slice, whatever the width.
macro_rules! each {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            Intset::Small(n, a) => {
                let $v = &a[..*n as usize];
                $e
            }
            Intset::I16($v) => $e,
            Intset::I32($v) => $e,
            Intset::I64($v) => $e,
        }
    };
}

fn insert_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(_) => false,
        Err(i) => {
            let mut v = std::mem::take(b).into_vec();
            v.reserve_exact(1);
            v.insert(i, x);
            *b = v.into_boxed_slice();
            true
        }
    }
}

fn remove_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(i) => {
            let mut v = std::mem::take(b).into_vec();
            v.remove(i);
            *b = v.into_boxed_slice();
            true
        }
        Err(_) => false,
    }
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
        let fits = match self {
            Intset::Small(len, a) => match i16::try_from(n) {
                Ok(x) => {
                    let l = *len as usize;
                    match a[..l].binary_search(&x) {
                        Ok(_) => return false,
                        Err(i) if l < SMALL_MAX => {
                            a.copy_within(i..l, i + 1);
                            a[i] = x;
                            *len = InlineLen::from_len(l + 1);
                            return true;
                        }
                        // Full: move to the heap, then insert there.
                        Err(_) => {
                            *self = Intset::I16(a[..l].into());
                            return self.insert(n);
                        }
                    }
                }
                Err(_) => None,
            },
            Intset::I16(v) => n.try_into().ok().map(|x| insert_sorted(v, x)),
            Intset::I32(v) => n.try_into().ok().map(|x| insert_sorted(v, x)),
            Intset::I64(v) => Some(insert_sorted(v, n)),
        };
        if let Some(new) = fits {
            return new;
        }
        // Too wide for every member so far, so new: widen to the width `n` needs.
        let all: Vec<i64> = self.iter().collect();
        *self = if i32::try_from(n).is_ok() {
            Intset::I32(all.iter().map(|&x| x as i32).collect())
        } else {
            Intset::I64(all.into_boxed_slice())
        };
        self.insert(n)
    }

    /// Removes `n`; true if it was a member.
    pub fn remove(&mut self, n: i64) -> bool {
        match self {
            Intset::Small(len, a) => {
                let l = *len as usize;
                let Some(i) = i16::try_from(n).ok().and_then(|x| a[..l].binary_search(&x).ok()) else {
                    return false;
                };
                a.copy_within(i + 1..l, i);
                *len = InlineLen::from_len(l - 1);
                true
            }
            Intset::I16(v) => {
                let removed = n.try_into().is_ok_and(|x| remove_sorted(v, x));
                if removed && v.len() <= SMALL_MAX {
                    let mut a = [0; SMALL_MAX];
                    a[..v.len()].copy_from_slice(v);
                    *self = Intset::Small(InlineLen::from_len(v.len()), a);
                }
                removed
            }
            Intset::I32(v) => n.try_into().is_ok_and(|x| remove_sorted(v, x)),
            Intset::I64(v) => remove_sorted(v, n),
        }
    }

    /// Bytes per member: 2, 4 or 8.
    pub fn width(&self) -> usize {
        match self {
            Intset::Small(..) | Intset::I16(_) => 2,
            Intset::I32(_) => 4,
            Intset::I64(_) => 8,
        }
    }

    /// Heap bytes of the array (none while it is inline).
    pub fn heap_size(&self) -> usize {
        match self {
            Intset::Small(..) => 0,
            _ => self.len() * self.width(),
        }
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
        assert_eq!((s.width(), s.heap_size()), (2, 0), "four int16 members are inline");
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
                let inline = s.width() == 2 && s.len() <= SMALL_MAX;
                assert_eq!(s.heap_size(), if inline { 0 } else { s.len() * s.width() });
            }
            assert!(s.iter().eq(model.iter().copied()));
        }
    }
}
