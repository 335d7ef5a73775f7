//! nodes.conf on disk: loading, atomic saving, and the lock that keeps two processes from
//! sharing one file.
//!
//! Saving writes a temporary file next to nodes.conf, fsyncs it when asked, takes the lock on
//! it and renames it over nodes.conf (then fsyncs the directory), so a crash leaves either the
//! old or the new file, never a torn one. The lock is an `flock(LOCK_EX|LOCK_NB)` on the open
//! file, as Redis 7.0 takes it; because the new file is locked *before* the rename, the name
//! nodes.conf is never unlocked while this process runs.

use super::nodes::NodesConf;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The open, locked nodes.conf.
#[derive(Debug)]
pub struct ConfFile {
    path: PathBuf,
    /// Held open for the lock.
    file: Option<File>,
}

fn try_lock(f: &File) -> std::io::Result<()> {
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl ConfFile {
    /// Opens (creating if missing) and locks the file; returns it with its current content.
    pub fn open(path: &str) -> Result<(ConfFile, String), String> {
        let path = PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("Can't open {} in order to acquire a lock: {}", path.display(), e))?;
        if let Err(e) = try_lock(&file) {
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(format!(
                    "Sorry, the cluster configuration file {} is already used by a different Redis Cluster node. Please make sure that different nodes use different cluster configuration files.",
                    path.display()
                ));
            }
            return Err(format!("Impossible to lock {}: {}", path.display(), e));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {}", path.display(), e))?;
        Ok((ConfFile { path, file: Some(file) }, text))
    }

    /// Writes `conf` atomically (fsyncing file and directory when `fsync`).
    pub fn save(&mut self, conf: &NodesConf, fsync: bool) -> std::io::Result<()> {
        let text = conf.format();
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        if fsync {
            f.sync_all()?;
        }
        try_lock(&f)?;
        std::fs::rename(&tmp, &self.path)?;
        if fsync {
            if let Some(dir) = self.path.parent() {
                let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        // The renamed file is the one now locked; the old inode's lock goes with its fd.
        self.file = Some(f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_is_refused_and_saves_are_whole() {
        let dir = std::env::temp_dir().join(format!("slotcore-conf-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("nodes.conf");
        let _ = std::fs::remove_file(&path);
        let p = path.to_string_lossy().into_owned();
        let (mut c, text) = ConfFile::open(&p).unwrap();
        assert_eq!(text, "");
        let err = ConfFile::open(&p).unwrap_err();
        assert!(err.contains("already used by a different Redis Cluster node"), "{err}");
        let conf = NodesConf::parse(
            "b380c0dad3393563cbcf683fe6d4ad2958bd5831 127.0.0.1:7000@17000 myself,master - 0 0 0 connected 1-3\nvars currentEpoch 3 lastVoteEpoch 1\n",
        )
        .unwrap();
        c.save(&conf, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), conf.format());
        // Still locked after the rename.
        assert!(ConfFile::open(&p).is_err());
        drop(c);
        assert!(ConfFile::open(&p).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
