//! Hash values: one packed byte buffer of (field, value) entries while small ("listpack",
//! insertion order kept, see `hash_pack`), converted for good to a hash table past `hash-max-listpack-entries` (512) entries
//! or `hash-max-listpack-value` (64) bytes (the thresholds in force, see
//! [`thresholds`](super::thresholds)), as Redis does.

use hashbrown::HashMap;

pub use super::hash_pack::HashPack;

use super::thresholds;

/// The table of a large hash: field to value.
pub type FieldTable = HashMap<Box<[u8]>, Box<[u8]>>;

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub enum HashValue {
    /// Small: pairs packed in one buffer, in insertion order.
    Listpack(HashPack),
    /// Large: a hash table (boxed: keeps [`super::Value`] small).
    Table(Box<FieldTable>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(HashPack::default())
    }
}

impl HashValue {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(m) => m.len(),
        }
    }

    /// True when empty (a key never holds an empty hash).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(p) => p.get(field),
            HashValue::Table(m) => m.get(field).map(|x| &x[..]),
        }
    }

    fn convert_if_needed(&mut self, field: &[u8], value: &[u8]) {
        if let HashValue::Listpack(v) = self {
            let max_value = thresholds::hash_value();
            if v.len() >= thresholds::hash_entries() || field.len() > max_value || value.len() > max_value {
                let m: HashMap<Box<[u8]>, Box<[u8]>> = v.iter().map(|(f, x)| (f.into(), x.into())).collect();
                *self = HashValue::Table(Box::new(m));
            }
        }
    }

    /// Sets a field; returns true if it was new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        if self.get(field).is_none() || value.len() > thresholds::hash_value() {
            self.convert_if_needed(field, value);
        }
        match self {
            HashValue::Listpack(p) => p.set(field, value),
            HashValue::Table(m) => m.insert(field.into(), value.into()).is_none(),
        }
    }

    /// Removes a field; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(p) => p.remove(field),
            HashValue::Table(m) => m.remove(field).is_some(),
        }
    }

    /// All pairs (listpack: insertion order; table: table order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Listpack(p) => Box::new(p.iter()),
            HashValue::Table(m) => Box::new(m.iter().map(|(f, x)| (&f[..], &x[..]))),
        }
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        match self {
            HashValue::Listpack(p) => p.heap_size(),
            HashValue::Table(_) => self.iter().map(|(f, v)| f.len() + v.len() + 32).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_past_thresholds_and_keeps_order_while_small() {
        let mut h = HashValue::default();
        assert!(h.set(b"b", b"1"));
        assert!(h.set(b"a", b"2"));
        assert!(!h.set(b"b", b"3"));
        let order: Vec<&[u8]> = h.iter().map(|(f, _)| f).collect();
        assert_eq!(order, vec![&b"b"[..], b"a"]);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"big", &[b'x'; 65]);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"b"), Some(&b"3"[..]));
        let mut h = HashValue::default();
        for i in 0..512 {
            h.set(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f512", b"v");
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.remove(b"f0"));
        assert_eq!(h.len(), 512);
    }
}
