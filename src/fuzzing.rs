//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz on nightly) and the corpus replay test
//! (`tests/fuzz_corpus.rs`, stable): each takes arbitrary bytes, runs one parser or loader facing
//! the network or the disk, and panics only when an invariant of that parser breaks (a bad
//! input must come back as an error, never as a crash, a hang or an unbounded allocation).

use crate::aof::load as aof_load;
use crate::aof::manifest::Manifest;
use crate::cluster::bus::codec::BusMessage;
use crate::config::parse as config_parse;
use crate::persist::{dump, file};
use crate::protocol::request::{ParseLimits, Request, RequestParser};
use bytes::{Bytes, BytesMut};

/// Parses `data` as one read, then again delivered in two reads split where the first byte
/// says, and with the limits of a client that has not authenticated: the requests and the
/// error must not depend on how the bytes arrived.
pub fn resp(data: &[u8]) {
    let whole = parse_pieces(data, &[data.len()], &ParseLimits::default());
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let split = parse_pieces(data, &[cut, data.len()], &ParseLimits::default());
    assert_eq!(whole, split, "requests depend on how the bytes were split (cut at {cut})");
    let unauth = ParseLimits { auth_required: true, ..ParseLimits::default() };
    let bytewise: Vec<usize> = (1..=data.len().min(64)).chain(std::iter::once(data.len())).collect();
    let whole = parse_pieces(data, &[data.len()], &unauth);
    assert_eq!(whole, parse_pieces(data, &bytewise, &unauth), "byte-wise delivery differs");
}

/// Feeds `data` to one parser in reads ending at `ends` (ascending); stops at the first error.
fn parse_pieces(data: &[u8], ends: &[usize], limits: &ParseLimits) -> (Vec<Request>, Option<String>) {
    let mut parser = RequestParser::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &end in ends {
        buf.extend_from_slice(&data[from..end]);
        from = end;
        if let Err(e) = parser.parse(&mut buf, limits, &mut out) {
            return (out, Some(e.reply_text()));
        }
    }
    (out, None)
}

/// Frames and decodes `data` as a stream of cluster bus messages; whatever decodes must encode
/// to a message that decodes, stably.
pub fn bus(data: &[u8]) {
    let mut rest = data;
    while let Some(Ok(len)) = BusMessage::peek_len(rest) {
        let Some(msg) = rest.get(..len) else { return };
        if let Ok(m) = BusMessage::decode(msg) {
            // Text fields that are not UTF-8 come back lossily converted, then cut to their
            // field's size: the second trip must be exact.
            let once = BusMessage::decode(&m.encode()).expect("an encoded message decodes");
            let twice = BusMessage::decode(&once.encode()).expect("a re-encoded message decodes");
            assert_eq!(twice, once, "bus message changed through a second encode/decode");
        }
        rest = &rest[len..];
    }
    // The same bytes as one message whatever its length field says.
    let _ = BusMessage::decode(data);
}

/// Loads `data` as an RDB file (as a master at time 0 and with 16 databases); every loaded
/// value must survive a DUMP/RESTORE round trip.
pub fn rdb(data: &[u8]) {
    if let Ok(loaded) = file::load(data, 0, 16) {
        for r in &loaded.records {
            round_trip(&r.value);
        }
    }
    let _ = file::load_keys(data);
}

/// Validates `data` as a RESTORE payload twice: as given (the footer then almost always fails)
/// and with a correct footer appended (so the value decoder is reached); a value accepted must
/// survive a DUMP/RESTORE round trip.
pub fn restore(data: &[u8]) {
    if let Ok(v) = dump::restore(data) {
        round_trip(&v);
    }
    let mut p = data.to_vec();
    p.extend_from_slice(&crate::persist::rdb::RDB_VERSION.to_le_bytes());
    let crc = crate::persist::rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    if let Ok(v) = dump::restore(&p) {
        round_trip(&v);
    }
}

fn round_trip(v: &crate::storage::value::Value) {
    for compress in [false, true] {
        let once = dump::restore(&dump::create(v, compress)).expect("a DUMP of a loaded value restores");
        // Compared as values (a hash table's DUMP follows its per-table iteration order). A
        // stream keeps its input's listpack sizes (`lp_bytes`) while DUMP re-encodes the nodes
        // (a string "1" becomes an integer), so it is compared after one normalising trip.
        if !matches!(v, crate::storage::value::Value::Stream(_)) {
            assert!(once == *v, "a loaded value changed through DUMP/RESTORE");
        }
        let twice = dump::restore(&dump::create(&once, compress)).expect("a DUMP of a restored value restores");
        assert!(twice == once, "a restored value changed through a second DUMP/RESTORE");
    }
}

/// Parses `data` as an AOF file (base or incr), as a replica's forwarded stream, and, when it is
/// text, as an AOF manifest.
pub fn aof(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(p) = aof_load::parse(bytes.clone(), "fuzz.aof", 0, 16) {
        if let Some(v) = p.valid_up_to {
            assert!(v <= data.len(), "truncation point past the end of the file");
        }
    }
    let _ = aof_load::split_commands(bytes);
    if let Ok(text) = std::str::from_utf8(data) {
        // A manifest of comments only parses (as Redis) but writes back as empty text.
        if let Some(m) = Manifest::parse(text).ok().filter(|m| !m.to_text().is_empty()) {
            let again = Manifest::parse(&m.to_text()).expect("a written manifest parses");
            assert_eq!(again.to_text(), m.to_text(), "manifest changed through write/parse");
        }
    }
}

/// Parses `data` as redis.conf text (lines with `include`, which would read other files, are
/// left out).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text: String =
        text.lines().filter(|l| !l.to_ascii_lowercase().contains("include")).collect::<Vec<_>>().join("\n");
    let _ = config_parse::load(None, &text);
}
