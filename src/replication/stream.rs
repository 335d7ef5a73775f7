//! The merged command stream's encoding (`replicationFeedSlaves`, `propagatePendingCommands`):
//! turns what the shards pushed into the bytes replicas, the backlog and the offset see.
//!
//! - Every command is a RESP multibulk with its arguments as recorded (case kept).
//! - `SELECT <db>` is emitted whenever a command's database differs from the last one the
//!   stream selected (`slaveseldb`); [`StreamEncoder::reset_db`] forgets it (full resync), so
//!   the next command selects again.
//! - A unit of more than one command, and every atomic item (one transaction) of more than one
//!   command, is wrapped in `MULTI` ... `EXEC`, as Redis wraps an execution unit that
//!   propagates several commands.
//! - `ping` (lowercase) and `REPLCONF GETACK *` go out in the current database, without SELECT.
//!
//! Pure: no I/O, no clock.

use super::feed::{Argv, Unit};
use bytes::{BufMut, BytesMut};

/// Encodes the stream; remembers the database the stream last selected.
#[derive(Debug)]
pub struct StreamEncoder {
    /// Database the stream last selected (-1: none, the next command selects).
    seldb: i64,
}

impl Default for StreamEncoder {
    fn default() -> Self {
        StreamEncoder { seldb: -1 }
    }
}

/// Appends one command as a RESP multibulk.
pub fn put_command<A: AsRef<[u8]>>(out: &mut BytesMut, argv: &[A]) {
    put_header(out, b'*', argv.len());
    for a in argv {
        let a = a.as_ref();
        put_header(out, b'$', a.len());
        out.put_slice(a);
        out.put_slice(b"\r\n");
    }
}

fn put_header(out: &mut BytesMut, kind: u8, n: usize) {
    out.put_u8(kind);
    let mut buf = itoa::Buffer::new();
    out.put_slice(buf.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

impl StreamEncoder {
    /// The database the stream last selected (-1 for none).
    pub fn selected_db(&self) -> i64 {
        self.seldb
    }

    /// Forgets the selected database: the next command emits SELECT (full resync, promotion).
    pub fn reset_db(&mut self) {
        self.seldb = -1;
    }

    fn select(&mut self, out: &mut BytesMut, db: usize) {
        if self.seldb != db as i64 {
            let mut buf = itoa::Buffer::new();
            put_command(out, &[b"SELECT".as_slice(), buf.format(db).as_bytes()]);
            self.seldb = db as i64;
        }
    }

    /// Appends the units of `units` meant for `sink` (`Unit::TO_AOF` or `Unit::TO_REPLICAS`);
    /// `atomic`: they are one transaction.
    pub fn put_units_for(&mut self, out: &mut BytesMut, units: &[Unit], atomic: bool, sink: u8) {
        if units.iter().all(|u| u.to & sink != 0) {
            return self.put_units(out, units, atomic);
        }
        let kept: Vec<Unit> = units.iter().filter(|u| u.to & sink != 0).cloned().collect();
        self.put_units(out, &kept, atomic);
    }

    /// Appends the units one shard pushed; `atomic`: they are one transaction.
    pub fn put_units(&mut self, out: &mut BytesMut, units: &[Unit], atomic: bool) {
        let total: usize = units.iter().map(|u| u.cmds.len()).sum();
        if total == 0 {
            return;
        }
        if atomic && total > 1 {
            self.select(out, units[0].db);
            put_command(out, &[b"MULTI"]);
            for u in units {
                self.put_cmds(out, u.db, &u.cmds);
            }
            put_command(out, &[b"EXEC"]);
            return;
        }
        for u in units {
            if u.cmds.len() > 1 {
                self.select(out, u.db);
                put_command(out, &[b"MULTI"]);
                self.put_cmds(out, u.db, &u.cmds);
                put_command(out, &[b"EXEC"]);
            } else {
                self.put_cmds(out, u.db, &u.cmds);
            }
        }
    }

    fn put_cmds(&mut self, out: &mut BytesMut, db: usize, cmds: &[Argv]) {
        for c in cmds {
            self.select(out, db);
            put_command(out, c);
        }
    }

    /// Appends the periodic `ping` (no SELECT).
    pub fn put_ping(&mut self, out: &mut BytesMut) {
        put_command(out, &[b"ping"]);
    }

    /// Appends `REPLCONF GETACK *` (no SELECT).
    pub fn put_getack(&mut self, out: &mut BytesMut) {
        put_command(out, &[b"REPLCONF".as_slice(), b"GETACK", b"*"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn unit(db: usize, cmds: &[&[&str]]) -> Unit {
        Unit::new(db, cmds.iter().map(|c| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect())
    }

    #[test]
    fn select_once_then_on_change() {
        let mut e = StreamEncoder::default();
        let mut out = BytesMut::new();
        e.put_units(&mut out, &[unit(0, &[&["set", "a", "1"]]), unit(0, &[&["set", "b", "2"]])], false);
        e.put_units(&mut out, &[unit(3, &[&["del", "a"]])], false);
        assert_eq!(
            &out[..],
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\ndel\r\n$1\r\na\r\n"
        );
        e.reset_db();
        out.clear();
        e.put_ping(&mut out);
        e.put_units(&mut out, &[unit(3, &[&["del", "b"]])], false);
        assert_eq!(&out[..], b"*1\r\n$4\r\nping\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\ndel\r\n$1\r\nb\r\n");
    }

    #[test]
    fn multi_exec_wrapping() {
        let mut e = StreamEncoder::default();
        let mut out = BytesMut::new();
        // A unit of two commands (a command plus the lazy-expiry DEL it caused).
        e.put_units(&mut out, &[unit(0, &[&["DEL", "x"], &["set", "x", "1"]])], false);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n"), "{text}");
        assert!(text.ends_with("*1\r\n$4\r\nEXEC\r\n"));
        // An atomic item of one command is not wrapped; of two units it is.
        out.clear();
        e.put_units(&mut out, &[unit(0, &[&["mset", "a", "1", "b", "2"]])], true);
        assert!(!String::from_utf8_lossy(&out).contains("MULTI"));
        out.clear();
        e.put_units(&mut out, &[unit(0, &[&["set", "a", "1"]]), unit(1, &[&["set", "b", "2"]])], true);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(
            text,
            "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n*1\r\n$4\r\nEXEC\r\n"
        );
    }

    #[test]
    fn getack_bytes() {
        let mut out = BytesMut::new();
        StreamEncoder::default().put_getack(&mut out);
        assert_eq!(&out[..], b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n");
    }
}
