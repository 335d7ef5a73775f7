//! Values and their encodings.
//!
//! Every value is `Send` (no `Rc` inside) so that the rare cross-shard operation can move a copy
//! of an entry between shards. New types (lists, hashes, sets, sorted sets, streams) add a variant
//! here, an encoding name in [`Value::encoding`] and a type name in [`Value::type_name`].

/// A string value: integers that fit in an i64 (and print back identically) are kept as numbers,
/// like Redis's `int` encoding; everything else as bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    /// The `int` encoding.
    Int(i64),
    /// The `embstr`/`raw` encodings (short ones inline, see [`RawStr`]).
    Raw(RawStr),
}

pub use super::strbuf::RawStr;

const _: () = assert!(std::mem::size_of::<Value>() == 32);

/// Strings up to this length report `embstr` in OBJECT ENCODING, like Redis.
pub const EMBSTR_MAX: usize = 44;

impl StrValue {
    /// Builds a string value from bytes, choosing the int encoding when Redis would.
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(n) = crate::protocol::request::string2ll(b) {
                return StrValue::Int(n);
            }
        }
        StrValue::Raw(RawStr::from_slice(b))
    }

    /// The value as bytes (allocates for the int encoding).
    pub fn to_bytes(&self) -> bytes::Bytes {
        match self {
            StrValue::Int(n) => {
                let mut b = itoa::Buffer::new();
                bytes::Bytes::copy_from_slice(b.format(*n).as_bytes())
            }
            StrValue::Raw(v) => bytes::Bytes::copy_from_slice(v),
        }
    }

    /// Length in bytes of the string form.
    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Raw(v) => v.len(),
        }
    }

    /// True when the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A raw string value holding `v`.
    pub fn raw(v: Vec<u8>) -> StrValue {
        StrValue::Raw(v.into())
    }

    /// A raw string value holding `v` that reports `raw` whatever its length, as the strings
    /// Redis builds with `createObject` (BITOP's result) rather than from a client's argument.
    pub fn built(v: Vec<u8>) -> StrValue {
        StrValue::Raw(RawStr::Grow(Box::new(v)))
    }

    /// A mutable byte vector, converting the int encoding to raw first.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if let StrValue::Int(n) = *self {
            *self = StrValue::Raw(RawStr::from_slice(itoa::Buffer::new().format(n).as_bytes()));
        }
        match self {
            StrValue::Raw(v) => v.make_vec(),
            StrValue::Int(_) => unreachable!("converted above"),
        }
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(StrValue),
    /// A hash.
    Hash(super::hash::HashValue),
    /// A set.
    Set(super::set::SetValue),
    /// A sorted set.
    ZSet(super::zset::ZSetValue),
    /// A list (Redis 7.0 reports every list as `quicklist`; boxed: keeps the value small).
    List(Box<super::list::ListValue>),
    /// A stream (boxed: it is large and rare).
    Stream(Box<super::stream::Stream>),
}

impl Value {
    /// How many allocations freeing the value takes, as Redis's `lazyfreeGetFreeEffort`
    /// estimates them: the nodes of a list, the members of a set, hash or sorted set held in
    /// a table, a stream's nodes plus its groups' pending entries; 1 for a packed encoding.
    pub fn free_effort(&self) -> usize {
        use super::{hash::HashValue, set::SetValue, zset::ZSetValue};
        match self {
            Value::Str(_) => 1,
            Value::Hash(h @ HashValue::Table(_)) => h.len(),
            Value::Set(s @ SetValue::Table(_)) => s.len(),
            Value::ZSet(z @ ZSetValue::Big(_)) => z.len(),
            Value::List(l) => l.node_count(),
            Value::Stream(s) => {
                // Every group is an allocation and so is each entry of its PEL; the first
                // group's PEL stands for all (Redis's estimate, constant time).
                let per_group = s.groups.values().next().map_or(0, |g| 1 + g.pel.len());
                s.nodes.len() + s.groups.len() * per_group
            }
            _ => 1,
        }
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(StrValue::Int(_)) => "int",
            // Modified in place (APPEND, SETRANGE, SETBIT, ...): Redis unshares such a value
            // into a `raw` object whatever its length.
            Value::Str(StrValue::Raw(RawStr::Grow(_))) => "raw",
            Value::Str(StrValue::Raw(v)) if v.len() <= EMBSTR_MAX => "embstr",
            Value::Str(StrValue::Raw(_)) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::List(_) => "quicklist",
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// An estimate of the heap bytes this value uses (for INFO memory and MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(StrValue::Int(_)) => 0,
            Value::Str(StrValue::Raw(v)) => v.heap_size(),
            Value::Hash(h) => h.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::List(l) => l.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }
}
