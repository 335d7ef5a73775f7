//! The open-files limit and `maxclients`, as Redis's `adjustOpenFilesLimit`: a node needs
//! `maxclients` + 32 descriptors; at start-up it raises its soft `RLIMIT_NOFILE` as far as the
//! system lets it and, when that is not enough, lowers `maxclients` to fit (with Redis's
//! warnings). `CONFIG SET maxclients` above what the system allows is refused with Redis's
//! "try with N" text.

/// Descriptors kept for everything but clients (Redis's `CONFIG_MIN_RESERVED_FDS`).
pub const RESERVED_FDS: u64 = 32;

/// What fitting `maxclients` to the open-files limit gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// `maxclients` the node can serve (the requested one when the limit allows it).
    pub maxclients: usize,
    /// Log lines to write: (warning, text); not warning = notice.
    pub log: Vec<(bool, String)>,
    /// The limit is too small to start at all (Redis exits with this text).
    pub fatal: Option<String>,
}

fn get_limit() -> std::io::Result<(u64, u64)> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `l` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((l.rlim_cur, l.rlim_max))
}

fn set_limit(cur: u64, max: u64) -> std::io::Result<()> {
    let l = libc::rlimit { rlim_cur: cur, rlim_max: max };
    // SAFETY: `l` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The error text Redis prints for an errno (without Rust's " (os error N)" suffix).
pub fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Raises the soft open-files limit for `maxclients` clients if needed and possible; returns
/// the `maxclients` that fits and what to log.
pub fn fit_open_files(maxclients: usize) -> Fit {
    let want = maxclients as u64 + RESERVED_FDS;
    let mut log = Vec::new();
    let (cur, max) = match get_limit() {
        Ok(l) => l,
        Err(e) => {
            log.push((
                true,
                format!(
                    "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
                    os_text(&e)
                ),
            ));
            return Fit { maxclients: (1024 - RESERVED_FDS) as usize, log, fatal: None };
        }
    };
    if cur >= want {
        return Fit { maxclients, log, fatal: None };
    }
    // The wanted limit first; else the highest want - 16k the system accepts (where Redis's
    // downward search in steps of 16 settles), found by bisection, never below the current.
    let try_set = |n: u64| set_limit(n, max.max(n)).is_ok();
    let first = set_limit(want, max.max(want));
    let best = match &first {
        Ok(()) => want,
        Err(_) => {
            // Steps k in 1..=top: want - 16k > cur; the smallest accepted k gives the best.
            let top = (want - cur - 1) / 16;
            let (mut lo, mut hi) = (1u64, top + 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if try_set(want - 16 * mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            if lo <= top && try_set(want - 16 * lo) {
                want - 16 * lo
            } else {
                cur
            }
        }
    };
    if best >= want {
        log.push((
            false,
            format!("Increased maximum number of open files to {want} (it was originally set to {cur})."),
        ));
        return Fit { maxclients, log, fatal: None };
    }
    if best <= RESERVED_FDS {
        let text = format!(
            "Your current 'ulimit -n' of {cur} is not enough for the server to start. Please increase your open file limit to at least {want}. Exiting."
        );
        return Fit { maxclients: 0, log, fatal: Some(text) };
    }
    let fitted = (best - RESERVED_FDS) as usize;
    let why = first.err().map(|e| os_text(&e)).unwrap_or_default();
    log.push((
        true,
        format!("You requested maxclients of {maxclients} requiring at least {want} max file descriptors."),
    ));
    log.push((true, format!("Server can't set maximum open files to {want} because of OS error: {why}.")));
    log.push((
        true,
        format!(
            "Current maximum open files is {best}. maxclients has been reduced to {fitted} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
        ),
    ));
    Fit { maxclients: fitted, log, fatal: None }
}

/// Writes a [`Fit`]'s lines to the log.
pub fn log_fit(fit: &Fit) {
    for (warn, line) in &fit.log {
        if *warn {
            tracing::warn!("{}", line);
        } else {
            tracing::info!("{}", line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_maxclients_fits_and_an_impossible_one_is_reduced() {
        let (cur, max) = get_limit().unwrap();
        let fit = fit_open_files(10);
        assert_eq!(fit.maxclients, 10);
        if max != libc::RLIM_INFINITY && max < u64::MAX / 2 {
            let huge = (max * 4) as usize;
            let fit = fit_open_files(huge);
            assert!(fit.maxclients < huge && fit.maxclients as u64 + RESERVED_FDS >= cur.min(max));
            assert!(fit.log.iter().any(|(w, l)| *w && l.starts_with("You requested maxclients of ")));
        }
    }
}
