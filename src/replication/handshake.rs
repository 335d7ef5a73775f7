//! The replica side's wire facts, sans-IO (`replication.c syncWithMaster`,
//! `slaveTryPartialResynchronization`, `readSyncBulkPayload`): the handshake commands, the
//! PSYNC reply, the payload header and its EOF mark, and the byte length of a command of the
//! master's stream (the offset a replica acknowledges advances by it).

use bytes::Bytes;

/// Length of a replication id and of the EOF mark.
pub const ID_LEN: usize = 40;

/// A command as a RESP multibulk.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `REPLCONF ACK <offset>`, the only thing a replica ever sends its master once synced.
pub fn ack(offset: u64) -> Vec<u8> {
    encode(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

/// The byte length of a command as a master sends it (`*N` then `$len` per argument): the
/// amount the processed offset advances when the command is done.
pub fn request_len(args: &[Bytes]) -> u64 {
    let digits = |n: usize| n.to_string().len() as u64;
    let mut len = 3 + digits(args.len());
    for a in args {
        len += 1 + digits(a.len()) + 2 + a.len() as u64 + 2;
    }
    len
}

/// True for `REPLCONF GETACK ...`, answered by the link itself with the offset before it.
pub fn is_getack(args: &[Bytes]) -> bool {
    args.len() >= 2 && args[0].eq_ignore_ascii_case(b"replconf") && args[1].eq_ignore_ascii_case(b"getack")
}

/// The master's answer to PSYNC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsyncReply {
    /// `+FULLRESYNC <replid> <offset>`; `replid` None when the syntax is wrong (the replica
    /// then blanks the master's id so the next PSYNC cannot match).
    Full {
        /// The master's replication id.
        replid: Option<String>,
        /// The offset the stream continues from.
        offset: u64,
    },
    /// `+CONTINUE [<replid>]`: partial resync accepted; a new id when the master's changed.
    Continue {
        /// The id the master announces (40 characters), if any.
        replid: Option<String>,
    },
    /// `-NOMASTERLINK` / `-LOADING`: try again later.
    TryLater(String),
    /// Anything else: PSYNC is not supported, fall back to SYNC.
    NotSupported(String),
}

/// Parses the PSYNC reply line (without its CRLF; an empty line is a keepalive and is not
/// passed here).
pub fn parse_psync_reply(line: &str) -> PsyncReply {
    if let Some(rest) = line.strip_prefix("+FULLRESYNC") {
        let mut parts = rest.split_ascii_whitespace();
        let (id, off) = (parts.next(), parts.next());
        return match (id, off.and_then(|o| o.parse::<u64>().ok())) {
            (Some(id), Some(offset)) if id.len() == ID_LEN => PsyncReply::Full { replid: Some(id.to_string()), offset },
            (_, off) => PsyncReply::Full { replid: None, offset: off.unwrap_or(0) },
        };
    }
    if let Some(rest) = line.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        return PsyncReply::Continue { replid: (id.len() == ID_LEN).then(|| id.to_string()) };
    }
    if line.starts_with("-NOMASTERLINK") || line.starts_with("-LOADING") {
        return PsyncReply::TryLater(line.to_string());
    }
    PsyncReply::NotSupported(line.to_string())
}

/// The header of the full sync payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkHeader {
    /// `$<len>`: exactly `len` bytes follow (then, at once, the command stream).
    Len(usize),
    /// `$EOF:<mark>`: the payload ends with the same 40 bytes.
    Eof(Vec<u8>),
}

/// Parses the payload header line (without CRLF). Err: the master's error, or a bad header
/// (Redis's "Bad protocol from MASTER" text).
pub fn parse_bulk_header(line: &[u8]) -> Result<BulkHeader, String> {
    if line.first() == Some(&b'-') {
        return Err(format!("MASTER aborted replication with an error: {}", String::from_utf8_lossy(&line[1..])));
    }
    if line.first() != Some(&b'$') {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{}'), are you sure the host and port are right?",
            String::from_utf8_lossy(line)
        ));
    }
    if let Some(mark) = line.strip_prefix(b"$EOF:") {
        if mark.len() >= ID_LEN {
            return Ok(BulkHeader::Eof(mark[..ID_LEN].to_vec()));
        }
    }
    std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map(BulkHeader::Len)
        .ok_or_else(|| format!("Bad protocol from MASTER, bad bulk length '{}'", String::from_utf8_lossy(line)))
}

/// EOF-mark mode: true when the bytes received so far end with the mark (Redis checks only
/// the last 40 bytes received, so nothing may follow the mark).
pub fn ends_with_mark(received: &[u8], mark: &[u8]) -> bool {
    received.len() >= mark.len() && &received[received.len() - mark.len()..] == mark
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_captured_stream() {
        // SELECT 0 + SET is 54 bytes before a GETACK of 37 bytes in the captured session.
        let a = |v: &[&str]| v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect::<Vec<_>>();
        assert_eq!(request_len(&a(&["SELECT", "0"])), 23);
        assert_eq!(request_len(&a(&["REPLCONF", "GETACK", "*"])), 37);
        assert_eq!(request_len(&a(&["ping"])), 14);
        assert_eq!(request_len(&a(&["SELECT", "0"])) as usize, encode(&[b"SELECT", b"0"]).len());
        let big = vec![Bytes::from(vec![b'x'; 12345]); 11];
        let refs: Vec<&[u8]> = big.iter().map(|b| &b[..]).collect();
        assert_eq!(request_len(&big) as usize, encode(&refs).len());
        assert!(is_getack(&a(&["replconf", "GETACK", "*"])));
        assert!(!is_getack(&a(&["REPLCONF", "ACK", "1"])));
        assert_eq!(ack(1054), b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n1054\r\n");
    }

    #[test]
    fn psync_replies() {
        let id = "a".repeat(40);
        assert_eq!(
            parse_psync_reply(&format!("+FULLRESYNC {id} 1542")),
            PsyncReply::Full { replid: Some(id.clone()), offset: 1542 }
        );
        assert_eq!(parse_psync_reply("+FULLRESYNC abc 7"), PsyncReply::Full { replid: None, offset: 7 });
        assert_eq!(parse_psync_reply("+CONTINUE"), PsyncReply::Continue { replid: None });
        assert_eq!(parse_psync_reply(&format!("+CONTINUE {id}")), PsyncReply::Continue { replid: Some(id) });
        assert!(matches!(parse_psync_reply("-NOMASTERLINK Can't SYNC"), PsyncReply::TryLater(_)));
        assert!(matches!(parse_psync_reply("-LOADING x"), PsyncReply::TryLater(_)));
        assert!(matches!(parse_psync_reply("-ERR unknown command"), PsyncReply::NotSupported(_)));
    }

    #[test]
    fn bulk_headers() {
        let mark = "0123456789".repeat(4);
        assert_eq!(parse_bulk_header(b"$175"), Ok(BulkHeader::Len(175)));
        assert_eq!(parse_bulk_header(format!("$EOF:{mark}").as_bytes()), Ok(BulkHeader::Eof(mark.as_bytes().to_vec())));
        assert!(parse_bulk_header(b"-ERR x").is_err());
        assert!(parse_bulk_header(b"+OK").unwrap_err().starts_with("Bad protocol from MASTER"));
        assert!(parse_bulk_header(b"$x").is_err());
        let mut data = b"REDIS0010...".to_vec();
        assert!(!ends_with_mark(&data, mark.as_bytes()));
        data.extend_from_slice(mark.as_bytes());
        assert!(ends_with_mark(&data, mark.as_bytes()));
    }
}
