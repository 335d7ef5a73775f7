//! The end of a BGREWRITEAOF on the control core (`backgroundRewriteDoneHandler`): the new
//! base renamed into the directory, the manifest swapped and the superseded files deleted, or
//! the failure counted (`aofRewriteLimited`).

use super::*;
use crate::runtime::aof_base::BaseFailure;

impl Ctl {
    /// `aofRewriteLimited`: after three failed rewrites in a row, automatic and scheduled
    /// rewrites wait 1, 2, 4 … up to 60 minutes between attempts (BGREWRITEAOF still runs).
    pub(super) fn limited(&mut self) -> bool {
        if status::REWRITE_FAILURES.load(Ordering::Relaxed) < LIMIT_THRESHOLD {
            self.limit_delay_min = 0;
            self.limit_until = None;
            return false;
        }
        if let Some(t) = self.limit_until {
            if Instant::now() < t {
                return true;
            }
            self.limit_until = None;
            return false;
        }
        self.limit_delay_min =
            if self.limit_delay_min == 0 { 1 } else { (self.limit_delay_min * 2).min(LIMIT_MAX_MIN) };
        self.limit_until = Some(Instant::now() + Duration::from_secs(self.limit_delay_min * 60));
        tracing::warn!(
            "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
            self.limit_delay_min
        );
        true
    }

    pub(super) fn rewrite_done(&mut self, generation: u64, r: Result<(u64, PathBuf, u64), BaseFailure>) {
        if generation != self.rewrite_gen || self.rewrite_start.is_none() {
            // Killed (`kill_rewrite`) or replaced: nothing of it is used.
            return;
        }
        self.rewrite_abort = None;
        let secs = self.rewrite_start.take().map_or(0, |s| s.elapsed().as_secs()) as i64;
        status::LAST_REWRITE_SECS.store(secs, Ordering::Relaxed);
        // In progress (INFO) until the base and the manifest are in place.
        let done = |_: &mut Files| status::REWRITING.store(false, Ordering::Release);
        self.armed = false;
        self.op(|f| f.skip_fsync = false);
        let off = self.state == State::Off;
        let r = r.and_then(|(id, temp, size)| {
            if off || self.switched_at == Some(id) {
                Ok((temp, size))
            } else {
                let _ = std::fs::remove_file(&temp);
                Err(BaseFailure::Error("the snapshot's feed mark was not seen".to_string()))
            }
        });
        let r = match r {
            Ok((temp, size)) if self.state == State::Off => match self.base_only(temp, size) {
                // BGREWRITEAOF with the AOF off: a new base and a manifest listing only it.
                Ok(()) => {
                    status::REWRITING.store(false, Ordering::Release);
                    return;
                }
                Err(e) => Err(BaseFailure::Error(e)),
            },
            r => r,
        };
        let (temp, size) = match r {
            Ok(x) => x,
            Err(f) => {
                let failed = match f {
                    BaseFailure::Error(e) => {
                        if !e.is_empty() {
                            tracing::warn!("{}", e);
                        }
                        tracing::warn!("Background AOF rewrite terminated with error");
                        true
                    }
                    BaseFailure::Signal(sig) => {
                        tracing::warn!("Background AOF rewrite terminated by signal {}", sig);
                        // SIGUSR1 stops a rewrite on purpose: not an error (as Redis).
                        sig != libc::SIGUSR1
                    }
                };
                if failed {
                    status::LAST_REWRITE_OK.store(false, Ordering::Relaxed);
                    status::REWRITE_FAILURES.fetch_add(1, Ordering::Relaxed);
                }
                if self.state == State::Wait {
                    // Start over (`aof_rewrite_scheduled`): nothing of this attempt is listed
                    // anywhere; the temp incr file goes.
                    self.switched_at = None;
                    status::SCHEDULED.store(true, Ordering::Release);
                    let name = temp_incr_name(&self.settings.paths.prefix);
                    self.op(move |f| {
                        f.file = None;
                        tracing::info!("Removing the temp incr aof file {} in the background", name);
                        let _ = std::fs::remove_file(f.paths.file(&name));
                    });
                }
                // In progress (INFO) until the file operations queued before (the new incr
                // file and its manifest, opened at the snapshot's mark) are done, as Redis
                // has them in place before BGREWRITEAOF even replies.
                match &self.writer {
                    Some(w) => w.send(Job::Op(Box::new(done))),
                    None => status::REWRITING.store(false, Ordering::Release),
                }
                return;
            }
        };
        tracing::info!("Background AOF rewrite terminated with success");
        let prefix = self.settings.paths.prefix.clone();
        let base = self.manifest.new_base(&prefix, self.rewrite_rdb);
        // Waiting for the first base: the temp incr file becomes the next incr file.
        let named = (self.state == State::Wait).then(|| (temp_incr_name(&prefix), self.manifest.new_incr(&prefix)));
        self.manifest.incr_to_history(1);
        let with_history = self.manifest.clone();
        let history: Vec<String> = self.manifest.history.iter().map(|h| h.name.clone()).collect();
        let gc = !self.settings.no_gc;
        if gc {
            self.manifest.history.clear();
        }
        let clean = self.manifest.clone();
        self.op(move |f| {
            let target = f.paths.file(&base);
            if let Err(e) = std::fs::rename(&temp, &target) {
                tracing::warn!(
                    "Error trying to rename the temporary AOF base file {} into {}: {}",
                    temp.display(),
                    base,
                    e
                );
                let _ = std::fs::remove_file(&temp);
                return;
            }
            tracing::info!("Successfully renamed the temporary AOF base file {} into {}", temp.display(), base);
            if let Some((tmp_incr, incr)) = named {
                if let Err(e) = std::fs::rename(f.paths.file(&tmp_incr), f.paths.file(&incr)) {
                    tracing::warn!(
                        "Error trying to rename the temporary AOF incr file {} into {}: {}",
                        tmp_incr,
                        incr,
                        e
                    );
                    let _ = std::fs::remove_file(&target);
                    done(f);
                    return;
                }
                if let Some((_, n)) = &mut f.file {
                    n.clone_from(&incr);
                }
                tracing::info!("Successfully renamed the temporary AOF incr file {} into {}", tmp_incr, incr);
            }
            if let Err(e) = crate::aof::writer::persist_manifest(&f.paths, &with_history) {
                tracing::warn!("{}", e);
                done(f);
                return;
            }
            if gc && !history.is_empty() {
                for h in &history {
                    tracing::info!("Removing the history file {} in the background", h);
                    let _ = std::fs::remove_file(f.paths.file(h));
                }
                if let Err(e) = crate::aof::writer::persist_manifest(&f.paths, &clean) {
                    tracing::warn!("{}", e);
                }
            }
            status::CURRENT_SIZE.store(size + f.size, Ordering::Relaxed);
            status::BASE_SIZE.store(size + f.size, Ordering::Relaxed);
            tracing::info!("Background AOF rewrite finished successfully");
            done(f);
        });
        status::LAST_REWRITE_OK.store(true, Ordering::Relaxed);
        status::REWRITE_FAILURES.store(0, Ordering::Relaxed);
        if self.state == State::Wait {
            self.state = State::On;
            self.set_always();
        }
        self.switched_at = None;
    }

    /// Installs a base written while the AOF is off: every listed file becomes history.
    pub(super) fn base_only(&mut self, temp: PathBuf, size: u64) -> Result<(), String> {
        let paths = self.settings.paths.clone();
        let mut m = load::read_manifest(&paths)?;
        let base = m.new_base(&paths.prefix, self.rewrite_rdb);
        m.incr_to_history(0);
        std::fs::create_dir_all(&paths.dir).map_err(|e| e.to_string())?;
        std::fs::rename(&temp, paths.file(&base)).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            format!("Error trying to rename the temporary AOF base file {} into {}: {e}", temp.display(), base)
        })?;
        crate::aof::writer::persist_manifest(&paths, &m)?;
        if !self.settings.no_gc {
            for h in std::mem::take(&mut m.history) {
                let _ = std::fs::remove_file(paths.file(&h.name));
            }
            crate::aof::writer::persist_manifest(&paths, &m)?;
        }
        status::BASE_SIZE.store(size, Ordering::Relaxed);
        status::LAST_REWRITE_OK.store(true, Ordering::Relaxed);
        status::REWRITE_FAILURES.store(0, Ordering::Relaxed);
        tracing::info!("Background AOF rewrite terminated with success");
        tracing::info!("Background AOF rewrite finished successfully");
        Ok(())
    }
}
