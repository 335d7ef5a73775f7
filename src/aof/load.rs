//! Reading the AOF at start-up (`aofLoadManifestFromDisk`, `aofUpgradePrepare`,
//! `loadAppendOnlyFiles`, `loadSingleAppendOnlyFile`), before the shards start.
//!
//! Everything here is read and parsed on the main thread: the base's RDB keys become the
//! start-up records every shard takes its own keys from (as a start-up RDB load), and the
//! commands of the base's tail and of the incr files, in manifest order, are handed to shard 0,
//! which replays them as a master client (`runtime::aof::replay`) through the same dispatch a
//! replica applies its master's stream with, before any client is accepted.
//!
//! Rules kept from Redis: a file starting with `REDIS` is an RDB (a 6.x RDB-preamble AOF
//! continues with commands after it); commands must be `*N` multibulks, `#` lines are skipped;
//! an unexpected end of file is tolerated only in the last file and only with
//! `aof-load-truncated yes`, the file then being truncated after the last complete command; a
//! MULTI without EXEC at the end is cut off before the MULTI. A 6.x single file
//! `appendfilename` found in `dir` is moved into the AOF directory as the base.

use super::manifest::{Info, Kind, Manifest};
use super::{Paths, Settings};
use crate::persist::file::{self, Record};
use bytes::Bytes;
use std::path::Path;

/// A command read from an AOF file.
pub type Argv = Vec<Bytes>;

/// How a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Cleanly.
    Ok,
    /// Short: the tail after `valid_up_to` is unusable.
    Truncated,
}

/// One parsed file.
#[derive(Debug, Default)]
pub struct Parsed {
    /// RDB keys when the file starts with an RDB.
    pub records: Vec<Record>,
    /// Keys of the RDB part dropped as expired.
    pub expired: usize,
    /// Function libraries of the RDB part.
    pub functions: Vec<Vec<u8>>,
    /// The commands, complete transactions only.
    pub cmds: Vec<Argv>,
    /// Where the truncation must cut when the file ended early.
    pub valid_up_to: Option<usize>,
    /// Whether an incomplete MULTI was dropped at a clean end (Redis logs it).
    pub reverted_multi: bool,
}

/// Reads one line ending in "\r\n" or "\n" starting at `at`: (line without the end, next).
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let l = &rest[..nl];
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    Some((l, at + nl + 1))
}

fn number(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// Parses a file's bytes. `Err` is a fatal error (Redis's log text); a short file is
/// reported through `valid_up_to`.
pub fn parse(data: Bytes, name: &str, now_ms: u64, databases: usize) -> Result<Parsed, String> {
    parse_inner(data, name, now_ms, databases, false)
}

/// Splits a piece of a command stream (a replica's forwarded master stream) into commands,
/// keeping a MULTI whose EXEC comes in a later piece.
pub fn split_commands(data: Bytes) -> Vec<Argv> {
    parse_inner(data, "stream", 0, 16, true).map(|p| p.cmds).unwrap_or_default()
}

fn parse_inner(data: Bytes, name: &str, now_ms: u64, databases: usize, stream: bool) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut pos = 0;
    if data.len() >= 5 && &data[..5] == b"REDIS" {
        let loaded = file::load(&data, now_ms, databases).map_err(|e| {
            let why = e.lines().next().unwrap_or_default();
            format!("Error reading the RDB base file {name}, AOF loading aborted: {why}")
        })?;
        out.records = loaded.records;
        out.expired = loaded.expired;
        out.functions = loaded.functions;
        pos = loaded.len;
    }
    let buf = &data[..];
    let mut valid_up_to = pos;
    let (mut in_multi, mut before_multi, mut multi_at_cmd) = (false, 0usize, 0usize);
    let short = |out: &mut Parsed, v: usize, in_multi: bool, at_cmd: usize| {
        if in_multi {
            out.cmds.truncate(at_cmd);
        }
        out.valid_up_to = Some(v);
    };
    while pos < buf.len() {
        let Some((l, next)) = line(buf, pos) else {
            short(&mut out, valid_up_to, in_multi, multi_at_cmd);
            return Ok(out);
        };
        if l.first() == Some(&b'#') {
            pos = next;
            continue;
        }
        if l.first() != Some(&b'*') {
            return Err(format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"));
        }
        let argc = number(&l[1..]).filter(|&n| n >= 1);
        let Some(argc) = argc else {
            return Err(format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"));
        };
        pos = next;
        // The count is the file's word: reserve for what can be there, not for what it says.
        let mut argv = Vec::with_capacity((argc as usize).min(1024));
        for _ in 0..argc {
            let Some((l, next)) = line(buf, pos) else {
                short(&mut out, valid_up_to, in_multi, multi_at_cmd);
                return Ok(out);
            };
            if l.first() != Some(&b'$') {
                return Err(format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"));
            }
            let len = number(&l[1..]).unwrap_or(0).max(0) as usize;
            // An argument not followed by its CRLF was cut short by a crash, and what follows
            // it is the room written ahead under `always` (`aof::padding`).
            if next + len + 2 > buf.len() || &buf[next + len..next + len + 2] != b"\r\n" {
                short(&mut out, valid_up_to, in_multi, multi_at_cmd);
                return Ok(out);
            }
            argv.push(data.slice(next..next + len));
            pos = next + len + 2;
        }
        let is = |w: &[u8]| argv[0].eq_ignore_ascii_case(w);
        if is(b"multi") {
            in_multi = true;
            before_multi = valid_up_to;
            multi_at_cmd = out.cmds.len();
        } else if is(b"exec") || is(b"discard") {
            in_multi = false;
        }
        out.cmds.push(argv);
        valid_up_to = pos;
    }
    if in_multi && !stream {
        out.cmds.truncate(multi_at_cmd);
        out.reverted_multi = true;
        out.valid_up_to = Some(before_multi);
    }
    Ok(out)
}

/// What the start-up load found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The manifest (after an upgrade of a 6.x file); None when there is no AOF.
    pub manifest: Option<Manifest>,
    /// Keys of the base's RDB part.
    pub records: Vec<Record>,
    /// Commands to replay, in order.
    pub cmds: Vec<Argv>,
    /// Size of the base file.
    pub base_size: u64,
    /// Size of every base and incr file.
    pub total_size: u64,
}

fn read(path: &Path) -> Result<Option<Bytes>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(Bytes::from(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "Fatal error: can't open the append log file {} for reading: {e}",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        )),
    }
}

/// The manifest on disk (an empty one when there is none).
pub fn read_manifest(paths: &Paths) -> Result<Manifest, String> {
    match std::fs::read_to_string(paths.manifest()) {
        Ok(t) => Manifest::parse(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(format!("Fatal error: can't open the AOF manifest {} for reading: {e}", paths.manifest_name())),
    }
}

/// Moves a 6.x single-file AOF into the directory as its base (`aofUpgradePrepare`).
fn upgrade(paths: &Paths, m: &mut Manifest) -> Result<(), String> {
    std::fs::create_dir_all(&paths.dir)
        .map_err(|e| format!("Can't open or create append-only dir {}: {e}", paths.dir.display()))?;
    *m = Manifest {
        base: Some(Info { name: paths.prefix.clone(), seq: 1, kind: Kind::Base }),
        base_seq: 1,
        ..Manifest::default()
    };
    super::writer::persist_manifest(paths, m)?;
    std::fs::rename(&paths.prefix, paths.file(&paths.prefix)).map_err(|e| {
        format!("Error trying to move the old AOF file {} into dir {}: {e}", paths.prefix, paths.dir.display())
    })?;
    tracing::info!(
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        paths.prefix,
        paths.dir.display()
    );
    Ok(())
}

/// Loads the AOF at start-up (the process already runs in `dir`).
pub fn load_at_startup(settings: &Settings, databases: usize) -> Result<Loaded, String> {
    let paths = &settings.paths;
    let mut m = read_manifest(paths)?;
    if Path::new(&paths.prefix).is_file() {
        let only_old_base = m.incr.is_empty()
            && m.base.as_ref().is_some_and(|b| b.name == paths.prefix && !paths.file(&paths.prefix).exists());
        if !paths.dir.is_dir() || (m.base.is_none() && m.incr.is_empty()) || only_old_base {
            upgrade(paths, &mut m)?;
        }
    }
    let mut out = Loaded::default();
    if m.base.is_none() && m.incr.is_empty() {
        crate::script::functions::install(&[])?;
        out.manifest = Some(m);
        return Ok(out);
    }
    let names = m.load_order();
    let mut sizes = Vec::new();
    for n in &names {
        match std::fs::metadata(paths.file(n)) {
            Ok(md) => sizes.push(md.len()),
            Err(e) => return Err(format!("The append log file {n} doesn't exist: {e}")),
        }
    }
    out.total_size = sizes.iter().sum();
    out.base_size = if m.base.is_some() { sizes[0] } else { 0 };
    // The RDB part of an AOF keeps its expired keys, as Redis loads it
    // (`RDBFLAGS_AOF_PREAMBLE`): commands of the incr files may act on them, and they expire
    // as any key once loaded.
    let now = 0;
    let mut keys_expired = 0;
    let mut functions = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let is_base = i == 0 && m.base.is_some();
        let start = std::time::Instant::now();
        let path = paths.file(n);
        let Some(data) = read(&path)? else { return Err(format!("The append log file {n} doesn't exist")) };
        if data.is_empty() {
            continue;
        }
        if data.starts_with(b"REDIS") {
            if is_base && n == &paths.prefix {
                tracing::info!("Reading RDB preamble from AOF file...");
            } else {
                tracing::info!("Reading RDB base file on AOF loading...");
            }
        }
        // The room written ahead under `always` (cut off when the file is opened again).
        let data = match data.starts_with(b"REDIS") {
            true => data,
            false => {
                let end = super::padding::padding_start(&data);
                out.total_size -= (data.len() - end) as u64;
                data.slice(..end)
            }
        };
        let mut p = parse(data, n, now, databases)?;
        if p.reverted_multi {
            tracing::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {}", n);
        }
        if let Some(unknown) = p.cmds.iter().find(|c| crate::cmd::table::lookup(&c[0]).is_none()) {
            return Err(format!(
                "Unknown command '{}' reading the append only file {n}",
                String::from_utf8_lossy(&unknown[0])
            ));
        }
        if let Some(v) = p.valid_up_to {
            let truncated_tail = !p.reverted_multi;
            if !(settings.load_truncated && last) {
                if !last {
                    tracing::warn!("Fatal error: the truncated file is not the last file");
                }
                return Err(format!("Unexpected end of file reading the append only file {n}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."));
            }
            if truncated_tail {
                tracing::warn!("!!! Warning: short read while loading the AOF file {}!!!", n);
                tracing::warn!("!!! Truncating the AOF {} at offset {} !!!", n, v);
            }
            if !truncated_tail {
                tracing::warn!("!!! Warning: short read while loading the AOF file {}!!!", n);
                tracing::warn!("!!! Truncating the AOF {} at offset {} !!!", n, v);
            }
            let cut = std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(v as u64));
            match cut {
                Ok(()) => tracing::warn!("AOF {} loaded anyway because aof-load-truncated is enabled", n),
                Err(e) => tracing::warn!("Error truncating the AOF file {}: {}", n, e),
            }
        }
        keys_expired += p.expired;
        functions.append(&mut p.functions);
        out.records.append(&mut p.records);
        out.cmds.append(&mut p.cmds);
        let kind = if is_base { "base" } else { "incr" };
        tracing::info!("DB loaded from {} file {}: {:.3} seconds", kind, n, start.elapsed().as_secs_f64());
    }
    crate::cmd::save::set_load_counts(out.records.len() as u64, keys_expired as u64);
    // The libraries of an RDB preamble replace the loaded ones (the commands replayed after
    // may change them again).
    crate::script::functions::install(&functions)?;
    out.manifest = Some(m);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Parsed {
        parse(Bytes::copy_from_slice(s.as_bytes()), "f", 0, 16).unwrap()
    }

    #[test]
    fn commands_annotations_and_truncation() {
        let ok = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:123\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n";
        let r = p(ok);
        assert_eq!(r.cmds.len(), 2);
        assert_eq!(r.valid_up_to, None);
        let short = format!("{ok}*3\r\n$3\r\nset\r\n$1\r\nb");
        let r = p(&short);
        assert_eq!((r.cmds.len(), r.valid_up_to), (2, Some(ok.len())));
        let multi = format!("{ok}*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n");
        let r = p(&multi);
        assert_eq!((r.cmds.len(), r.valid_up_to, r.reverted_multi), (2, Some(ok.len()), true));
        let short_multi = format!("{ok}*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1");
        let r = p(&short_multi);
        assert_eq!((r.cmds.len(), r.valid_up_to, r.reverted_multi), (2, Some(ok.len() + 15), false));
        assert!(parse(Bytes::from_static(b"set a b\r\n"), "f", 0, 16).is_err());
    }

    #[test]
    fn rdb_preamble_then_commands() {
        let mut f = Vec::new();
        file::put_header(&mut f, 1, 1);
        file::put_db(&mut f, 0, 1, 0);
        file::put_key(
            &mut f,
            b"k",
            &crate::storage::value::Value::Str(crate::storage::value::StrValue::Int(7)),
            0,
            false,
        );
        file::finish(&mut f);
        f.extend_from_slice(b"*2\r\n$3\r\ndel\r\n$1\r\nk\r\n");
        let r = parse(Bytes::from(f), "f", 0, 16).unwrap();
        assert_eq!((r.records.len(), r.cmds.len()), (1, 1));
    }
}
