//! Written-ahead room at the end of the incr file under `appendfsync always`.
//!
//! An fdatasync after an append that grew the file must also write the inode (its size has
//! changed): on ext4 that is a second I/O in a row before the cache flush, and about a third
//! more CPU in the guest's block driver on a virtual disk. An fdatasync after an overwrite of
//! blocks already written and sized needs only the data. So under `always` the writer keeps
//! room after the last command: a run of `#` bytes ended by a newline, written a chunk at a
//! time, and each append overwrites the front of that run. Only the chunk's own write grows
//! the file.
//!
//! The room is an annotation line to every reader of Redis 7.0's AOF: redis-server's loader
//! and `redis-check-aof` skip lines that start with `#` (as they skip `#TS:` lines), so the
//! file stays a valid AOF at every moment an append is complete, also after a kill -9. An
//! append always leaves at least `#\n` of it (a lone newline would not be an annotation), and
//! the final newline keeps whatever another writer appends later on a line of its own.
//! The room is cut off whenever the file is closed, the policy leaves `always`, or the file is
//! opened again (the loader ignores it before that, [`padding_start`]). `aof-preallocate no`
//! (slotcore's own directive) turns it off: the file then grows with every append, as Redis's.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// `aof-preallocate` (slotcore's directive, default yes).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Applies `aof-preallocate` (the writer cuts the room off at its next write when it is no).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the writer keeps room under `always`.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The room written ahead at a time. The fdatasync after a chunk is written carries the chunk
/// and the inode: with 256 KB chunks those slower fdatasyncs showed in SET's p99 under
/// `always` (1.55-1.81 ms against 1.46-1.60 with 64 KB, `bench/aof.sh`).
pub const CHUNK: u64 = 64 << 10;
/// What an append must leave of the room: one `#` and the newline.
pub const MIN_LEFT: u64 = 2;

/// Where the room at the end of `buf` starts: the start of the trailing lines made only of
/// `#` (the last one may miss its newline: a chunk's write cut short), each after a newline or
/// at the start. `buf.len()` when there is none. A real annotation (`#TS:...`) or command
/// line is never part of it.
pub fn padding_start(buf: &[u8]) -> usize {
    let mut start = buf.len();
    loop {
        let content_end = match start.checked_sub(1) {
            Some(i) if buf[i] == b'\n' => i,
            // Only the very last line may lack its newline.
            Some(_) if start == buf.len() => start,
            _ => return start,
        };
        let line_start = buf[..content_end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if content_end == line_start || buf[line_start..content_end].iter().any(|&b| b != b'#') {
            return start;
        }
        start = line_start;
    }
}

/// The length of `f` without its room (read from the end, a block at a time).
pub fn logical_len(f: &File) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    let mut from = len;
    loop {
        // Enough before the room's start to see the line before it.
        let block_start = from.saturating_sub(CHUNK + 4096);
        let mut buf = vec![0u8; (len - block_start) as usize];
        f.read_exact_at(&mut buf, block_start)?;
        let p = block_start + padding_start(&buf) as u64;
        if p > block_start || block_start == 0 {
            return Ok(p);
        }
        // The whole block is room: look further back.
        from = block_start;
    }
}

/// Writes `CHUNK` more room after the current room, which ends at `end` (its newline is at
/// `end - 1` when `room > 0`): the new run and its newline first, then the old newline turns
/// into `#`, so that the file ends with whole annotation lines at every step. Returns the
/// room added.
pub fn extend(f: &File, end: u64, room: u64) -> std::io::Result<u64> {
    let mut chunk = vec![b'#'; CHUNK as usize];
    if let Some(last) = chunk.last_mut() {
        *last = b'\n';
    }
    f.write_all_at(&chunk, end)?;
    if room > 0 {
        f.write_all_at(b"#", end - 1)?;
    }
    Ok(CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_only_whole_lines_of_hashes_at_the_end() {
        let cmd = b"*1\r\n$4\r\nPING\r\n".to_vec();
        let with = |tail: &[u8]| [cmd.clone(), tail.to_vec()].concat();
        assert_eq!(padding_start(&cmd), cmd.len(), "a command's CRLF is not room");
        assert_eq!(padding_start(&with(b"####\n")), cmd.len());
        assert_eq!(padding_start(&with(b"#\n##\n")), cmd.len());
        assert_eq!(padding_start(&with(b"###")), cmd.len(), "a last line without its newline");
        assert_eq!(padding_start(&with(b"#TS:1700000000\r\n")), cmd.len() + 16, "a timestamp stays");
        assert_eq!(padding_start(&with(b"#TS:1\r\n##\n")), cmd.len() + 7);
        assert_eq!(padding_start(&with(b"##\n\n")), cmd.len() + 4, "an empty line is not room");
        assert_eq!(padding_start(b"###\n"), 0);
        assert_eq!(padding_start(b""), 0);
        // A command cut short inside its last argument: its line is not room.
        assert_eq!(padding_start(b"*1\r\n$4\r\nPI####\n"), 15);
    }

    #[test]
    fn extend_and_logical_len_agree() {
        let dir = std::env::temp_dir().join(format!("slotcore-padding-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("f.aof");
        let f =
            std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).expect("open");
        f.write_all_at(b"*1\r\n$4\r\nPING\r\n", 0).expect("write");
        let room = extend(&f, 14, 0).expect("extend");
        let room = room + extend(&f, 14 + room, room).expect("extend");
        assert_eq!(f.metadata().expect("md").len(), 14 + room);
        assert_eq!(logical_len(&f).expect("len"), 14);
        let all = std::fs::read(&path).expect("read");
        assert_eq!(all.iter().filter(|&&b| b == b'\n').count(), 4, "one newline: the room's last byte");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
