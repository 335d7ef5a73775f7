//! The AOF manifest (`aof.c`: `aofInfoFormat`, `aofLoadManifestFromFile`,
//! `getNewBaseFileNameAndMarkPreAsHistory`, `getNewIncrAofName`): which files make up the AOF
//! and in what order.
//!
//! Format: one line per file, `file <name> seq <n> type <b|h|i>`, the base first, then the
//! history files, then the incr files in the order they are replayed. `#` lines are comments;
//! a line needs at least 6 tokens and an even count; unknown key/value pairs are skipped. Names
//! that need it are quoted as `sdscatrepr` does. A name must not contain a path separator.
//!
//! Pure: text in, text out; the file I/O lives in `aof::writer` and `aof::load`.

/// Longest manifest line (`fgets` buffer), newline included.
const MAX_LINE: usize = 1024;

/// What a listed file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The base: an RDB (`.base.rdb`) or a command file (`.base.aof`).
    Base,
    /// A former base or incr file a rewrite superseded (deleted unless `aof-disable-auto-gc`).
    History,
    /// Commands appended after the base.
    Incr,
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// File name inside the AOF directory.
    pub name: String,
    /// Sequence number.
    pub seq: u64,
    /// What it holds.
    pub kind: Kind,
}

/// The parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base file, if any.
    pub base: Option<Info>,
    /// Superseded files not deleted yet.
    pub history: Vec<Info>,
    /// Incr files, in replay order.
    pub incr: Vec<Info>,
    /// Highest base sequence used.
    pub base_seq: u64,
    /// Highest incr sequence used.
    pub incr_seq: u64,
}

/// Splits a line into tokens as `sdssplitargs` does (quotes and escapes); None if unbalanced.
fn split(line: &str) -> Option<Vec<String>> {
    crate::protocol::request::split_args(line.as_bytes())
        .map(|v| v.into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect())
}

/// Quotes a name as `sdscatrepr` when it holds spaces, quotes or non-printable bytes.
fn quote(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\') {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for b in name.bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => s.push(b as char),
            b => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

impl Manifest {
    /// Parses a manifest's text; the error is Redis's log text.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut any = false;
        let mut rest = text;
        while !rest.is_empty() {
            // `fgets` of at most 1024 bytes: a line must end within them.
            let (raw, next) = match rest.find('\n') {
                Some(i) if i < MAX_LINE => (&rest[..i], &rest[i + 1..]),
                _ if rest.starts_with('#') => (rest, ""),
                _ => return Err("The AOF manifest file contains too long line".into()),
            };
            rest = next;
            any = true;
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() {
                return Err("Invalid AOF manifest file format".into());
            }
            let Some(tokens) = split(line) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if tokens.len() < 6 || tokens.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in tokens.chunks(2) {
                match kv[0].as_str() {
                    "file" => {
                        if kv[1].contains('/') {
                            return Err("File can't be a path, just a filename".into());
                        }
                        name = Some(kv[1].clone());
                    }
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1].as_bytes().first() {
                            Some(b'b') => Some(Kind::Base),
                            Some(b'h') => Some(Kind::History),
                            Some(b'i') => Some(Kind::Incr),
                            Some(_) => return Err("Unknown AOF file type".into()),
                            None => None,
                        }
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq.filter(|&n| n != 0), kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            let info = Info { name, seq, kind };
            match kind {
                Kind::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base_seq = seq;
                    m.base = Some(info);
                }
                Kind::History => m.history.push(info),
                Kind::Incr => {
                    if seq <= m.incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incr_seq = seq;
                    m.incr.push(info);
                }
            }
        }
        if !any {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text (`getAofManifestAsString`).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, i: &Info| {
            let t = match i.kind {
                Kind::Base => 'b',
                Kind::History => 'h',
                Kind::Incr => 'i',
            };
            s.push_str(&format!("file {} seq {} type {}\n", quote(&i.name), i.seq, t));
        };
        if let Some(b) = &self.base {
            line(&mut s, b);
        }
        for h in &self.history {
            line(&mut s, h);
        }
        for i in &self.incr {
            line(&mut s, i);
        }
        s
    }

    /// A new base name (`<prefix>.<seq>.base.rdb|aof`); the old base becomes history.
    pub fn new_base(&mut self, prefix: &str, rdb: bool) -> String {
        if let Some(mut b) = self.base.take() {
            b.kind = Kind::History;
            self.history.insert(0, b);
        }
        self.base_seq += 1;
        let name = format!("{prefix}.{}.base.{}", self.base_seq, if rdb { "rdb" } else { "aof" });
        self.base = Some(Info { name: name.clone(), seq: self.base_seq, kind: Kind::Base });
        name
    }

    /// A new incr file name (`<prefix>.<seq>.incr.aof`), appended to the incr list.
    pub fn new_incr(&mut self, prefix: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.incr_seq);
        self.incr.push(Info { name: name.clone(), seq: self.incr_seq, kind: Kind::Incr });
        name
    }

    /// After a rewrite: every incr file but the last `keep` becomes history
    /// (`markRewrittenIncrAofAsHistory`); like the base, each goes to the head of the list.
    pub fn incr_to_history(&mut self, keep: usize) {
        let n = self.incr.len().saturating_sub(keep);
        let moved: Vec<Info> = self.incr.drain(..n).collect();
        for mut i in moved {
            i.kind = Kind::History;
            self.history.insert(0, i);
        }
    }

    /// The last incr file, the one appended to.
    pub fn last_incr(&self) -> Option<&Info> {
        self.incr.last()
    }

    /// Base and incr file names, in load order.
    pub fn load_order(&self) -> Vec<String> {
        self.base.iter().chain(self.incr.iter()).map(|i| i.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rewrite() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let mut m = Manifest::parse(text).unwrap();
        assert_eq!(m.to_text(), text);
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        assert_eq!(m.new_base("appendonly.aof", true), "appendonly.aof.2.base.rdb");
        m.incr_to_history(1);
        assert_eq!(
            m.to_text(),
            "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
    }

    #[test]
    fn bad_lines() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file a seq 1\n").is_err());
        assert!(Manifest::parse("file a/b seq 1 type b\n").is_err());
        assert!(Manifest::parse("file a seq 1 type b\n\nfile b seq 1 type i\n").is_err());
        assert_eq!(Manifest::parse("file a seq 1 type x\n"), Err("Unknown AOF file type".into()));
        assert!(Manifest::parse(&format!("file {} seq 1 type b\n", "a".repeat(1100))).is_err());
        assert!(Manifest::parse("file a seq 1 type b").is_err());
        let m = Manifest::parse("# c\nfile \"a b\" seq 3 type i extra x\n").unwrap();
        assert_eq!(m.incr[0].name, "a b");
        assert_eq!(m.to_text(), "file \"a b\" seq 3 type i\n");
    }
}
