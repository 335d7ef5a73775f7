//! The cluster bus: Redis 7.0's binary node-to-node protocol on port + 10000.
//!
//! `codec` encodes and decodes messages byte for byte (sans-IO, no state). Gossip, failure
//! detection and elections build on it and run on the control core.

pub mod codec;
pub mod gossip;

pub use codec::{Body, BusMessage, GossipEntry, Header, MsgType, NodeFlags};
