//! Set values: a sorted vector of integers at the narrowest width that holds them ("intset",
//! see [`super::intset`]) while every member is an integer and there are at most
//! `set-max-intset-entries` (512) of them, converted for good to a hash table otherwise
//! ([`super::set_dict`], Redis's dict), as in Redis 7.0.

use super::intset::Intset;
use super::set_dict::SetDict;
use crate::protocol::request::string2ll;

/// A set value.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    /// Small and all integers: sorted, no duplicates.
    Intset(Intset),
    /// Anything else.
    Table(Box<SetDict>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Intset(Intset::default())
    }
}

impl SetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(s) => s.len(),
        }
    }

    /// True when empty (a key never holds an empty set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => string2ll(m).is_some_and(|n| v.contains(n)),
            SetValue::Table(s) => s.contains(m),
        }
    }

    /// Converts an intset to a hash table sized for its members (`setTypeConvert`).
    fn convert_to_table(&mut self) {
        if let SetValue::Intset(v) = self {
            let mut t = SetDict::with_capacity(v.len());
            for n in v.iter() {
                t.insert(itoa::Buffer::new().format(n).as_bytes());
            }
            *self = SetValue::Table(Box::new(t));
        }
    }

    /// The hash table of a set in that encoding (None for an intset).
    pub fn table(&self) -> Option<&SetDict> {
        match self {
            SetValue::Table(t) => Some(t),
            SetValue::Intset(_) => None,
        }
    }

    /// One random member (Redis's `setTypeRandomElement`: uniform over an intset, the fair
    /// sample of `dictGetFairRandomKey` over a table); None when empty.
    pub fn random_member(&mut self) -> Option<Vec<u8>> {
        match self {
            SetValue::Intset(v) if !v.is_empty() => {
                Some(itoa::Buffer::new().format(v.get(fastrand::usize(..v.len()))).as_bytes().to_vec())
            }
            SetValue::Intset(_) => None,
            SetValue::Table(t) => t.fair_random(),
        }
    }

    /// Adds a member; returns true if it was new.
    pub fn add(&mut self, m: &[u8]) -> bool {
        if let SetValue::Intset(v) = self {
            if let Some(n) = string2ll(m) {
                let new = v.insert(n);
                if v.len() > super::thresholds::intset_entries() {
                    self.convert_to_table();
                }
                return new;
            }
            self.convert_to_table();
        }
        match self {
            SetValue::Table(s) => s.insert(m),
            SetValue::Intset(_) => false,
        }
    }

    /// Removes a member; returns true if it was there. A table left under 10% full starts
    /// shrinking (`setTypeRemove`).
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => string2ll(m).is_some_and(|n| v.remove(n)),
            SetValue::Table(s) => {
                let removed = s.remove(m);
                if removed {
                    s.shrink_if_sparse();
                }
                removed
            }
        }
    }

    /// Members as owned bytes (intset: ascending; table: table order).
    pub fn members(&self) -> Vec<Vec<u8>> {
        match self {
            SetValue::Intset(v) => v.iter().map(|n| itoa::Buffer::new().format(n).as_bytes().to_vec()).collect(),
            SetValue::Table(s) => s.iter().map(|m| m.to_vec()).collect(),
        }
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.heap_size(),
            SetValue::Table(s) => s.heap_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_until_a_string_or_too_many() {
        let mut s = SetValue::default();
        assert!(s.add(b"3"));
        assert!(s.add(b"1"));
        assert!(!s.add(b"3"));
        assert_eq!(s.members(), vec![b"1".to_vec(), b"3".to_vec()]);
        assert_eq!(s.encoding(), "intset");
        s.add(b"a");
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"a"));
        let mut s = SetValue::default();
        for i in 0..=512 {
            s.add(i.to_string().as_bytes());
        }
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.remove(b"7"));
        assert_eq!(s.len(), 512);
    }
}
