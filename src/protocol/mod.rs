//! RESP, sans-IO: the request parser (RESP2 multibulk and inline commands) and the reply
//! encoder (RESP2 and RESP3).
//!
//! Nothing here does I/O or knows about shards: the parser works on a `BytesMut` read buffer and
//! hands out zero-copy `Bytes` arguments; the encoder appends to a `Vec<u8>` write buffer.

pub mod reply;
pub mod request;

pub use reply::Reply;
pub use request::{parse_requests, ParseError, ParseLimits, Request};
