//! Blocking file I/O for RDB files (std only, no async): atomic writes (temp file, fsync,
//! rename, fsync of the directory) and reads.

use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` atomically: `temp-<pid>.rdb` next to it, fsync, rename, fsync of
/// the directory, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_via(path, &save_temp_name(), data)
}

/// The temp file a foreground save writes first (Redis's `temp-<pid>.rdb`).
pub fn save_temp_name() -> String {
    format!("temp-{}.rdb", std::process::id())
}

/// [`write_atomic`] through the temp file `tmp_name` next to `path`.
pub fn write_atomic_via(path: &Path, tmp_name: &str, data: &[u8]) -> std::io::Result<()> {
    write_atomic_paced(path, tmp_name, data, std::time::Duration::ZERO)
}

/// [`write_atomic_via`], staying `pause` with the temp file written before it is synced and
/// renamed (`rdb-key-save-delay` on a foreground save: the thread is held, as Redis's is).
pub fn write_atomic_paced(path: &Path, tmp_name: &str, data: &[u8], pause: std::time::Duration) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(tmp_name);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The file's bytes, or None when it does not exist.
pub fn read_if_exists(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
