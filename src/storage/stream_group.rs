//! A stream's consumer groups (Redis's `streamCG`, `streamConsumer`, `streamNACK`).
//!
//! Invariants: every ID in a consumer's PEL is in its group's PEL with that consumer as owner,
//! and every group PEL entry's owner lists it; consumers are kept by name in byte order (as
//! Redis's rax iterates them).

use super::stream::StreamId;
use std::collections::{BTreeMap, BTreeSet};

/// One pending (delivered, unacknowledged) entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Nack {
    /// Last delivery time (unix ms).
    pub delivery_time: u64,
    /// Times delivered.
    pub delivery_count: u64,
    /// The owning consumer.
    pub consumer: Vec<u8>,
}

/// A consumer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// Last time it was seen (unix ms).
    pub seen_time: u64,
    /// Its pending IDs.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// The last delivered ID.
    pub last_id: StreamId,
    /// The logical read counter (None = unknown, Redis's SCG_INVALID_ENTRIES_READ).
    pub entries_read: Option<u64>,
    /// Pending entries by ID.
    pub pel: BTreeMap<StreamId, Nack>,
    /// Consumers by name.
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    /// A group starting at `last_id`.
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Creates a consumer; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(name.to_vec(), Consumer { seen_time: now_ms, pel: BTreeSet::new() });
        true
    }

    /// Deletes a consumer and its pending entries; returns how many it had (None if absent).
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges one ID; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Makes `consumer` own the pending entry `id` (creating or moving it), with this delivery
    /// time; `count` replaces the delivery count when given.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], time: u64, count: Option<u64>) {
        let nack =
            self.pel.entry(id).or_insert_with(|| Nack { delivery_time: time, delivery_count: 1, consumer: Vec::new() });
        if nack.consumer != consumer {
            if let Some(old) = self.consumers.get_mut(&nack.consumer) {
                old.pel.remove(&id);
            }
            nack.consumer = consumer.to_vec();
        }
        nack.delivery_time = time;
        if let Some(c) = count {
            nack.delivery_count = c;
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// An estimate of the heap bytes this group uses.
    pub fn heap_size(&self) -> usize {
        self.pel.values().map(|n| 64 + n.consumer.len()).sum::<usize>()
            + self.consumers.iter().map(|(k, c)| 64 + k.len() + c.pel.len() * 24).sum::<usize>()
    }
}
