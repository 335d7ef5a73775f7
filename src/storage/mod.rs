//! A shard's data, with no I/O and no async: databases made of per-slot tables, values and
//! their encodings, expiry.
//!
//! Invariants: only the owning shard's thread touches a `Keyspace`; each key lives in the table
//! of its hash slot; `Db::keys`/`Db::volatile` always equal the sums over its slot tables.

pub mod db;
pub mod value;

pub use db::{Db, Entry, Keyspace, SlotTable};
pub use value::{StrValue, Value};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
