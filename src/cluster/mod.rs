//! Cluster concerns. For now: hash-slot math, shared by standalone routing (slot -> shard) and,
//! later, by the cluster bus and redirects.

pub mod bus;
pub mod nodes;
pub mod slot;

pub use slot::{key_slot, SLOTS};
