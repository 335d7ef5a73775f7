//! The notification and client-reconfig scripts, run as Redis 7.0's Sentinel runs them: a
//! queue of at most 256 jobs, at most 16 running at once, started from the timer; a script
//! that exits with 1 or dies by a signal is retried (up to 10 runs, the delay doubling from
//! `script-retry-delay`), one that runs longer than `script-max-runtime` is killed with
//! SIGKILL; any other failure is reported as `-script-error <path> <signal> <exitcode>`.
//!
//! Arguments: the notification script gets `<event-type> <event-description>`; the
//! client-reconfig script gets `<master-name> <role> <state> <from-ip> <from-port> <to-ip>
//! <to-port>` (role `leader` or `observer`, state `start`).

use super::instance::period;
use super::state::now;
use crate::protocol::reply::Reply;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

const MAX_QUEUE: usize = 256;
const MAX_RUNNING: usize = 16;
const MAX_RETRY: u32 = 10;

/// One queued or running script.
pub struct Job {
    pub argv: Vec<String>,
    child: Option<Child>,
    /// When it started (running) or may start again (retry); 0 = as soon as possible.
    start_time: u64,
    retry_num: u32,
}

/// An event the script runner reports: (warning level?, type, message).
pub type ScriptEvent = (bool, &'static str, String);

/// The script queue.
#[derive(Default)]
pub struct Scripts {
    pub queue: Vec<Job>,
}

impl Scripts {
    /// How many scripts are running now.
    pub fn running(&self) -> usize {
        self.queue.iter().filter(|j| j.child.is_some()).count()
    }

    /// Redis's `sentinelScheduleScriptExecution`.
    pub fn schedule(&mut self, path: &str, args: &[&str]) {
        let mut argv = vec![path.to_string()];
        argv.extend(args.iter().take(15).map(|a| a.to_string()));
        self.queue.push(Job { argv, child: None, start_time: 0, retry_num: 0 });
        if self.queue.len() > MAX_QUEUE {
            if let Some(i) = self.queue.iter().position(|j| j.child.is_none()) {
                self.queue.remove(i);
            }
        }
    }

    /// Redis's `sentinelRunPendingScripts`, `sentinelCollectTerminatedScripts` and
    /// `sentinelKillTimedoutScripts`, in that order; returns the events to emit.
    pub fn tick(&mut self) -> Vec<ScriptEvent> {
        let mut events = Vec::new();
        let t = now();
        let mut running = self.running();
        for j in self.queue.iter_mut() {
            if running >= MAX_RUNNING {
                break;
            }
            if j.child.is_some() || (j.start_time != 0 && j.start_time > t) {
                continue;
            }
            j.start_time = t;
            j.retry_num += 1;
            let mut cmd = Command::new(&j.argv[0]);
            cmd.args(&j.argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            // The script must not inherit the Sentinel's sockets (listeners, links, clients).
            // SAFETY: between fork and exec only fcntl, which is async-signal-safe, runs.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    for fd in 3..4096 {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(child) => {
                    events.push((false, "+script-child", child.id().to_string()));
                    j.child = Some(child);
                    running += 1;
                }
                // The exec failed (no such file, not executable): Redis's child exits with 2,
                // which is never retried.
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock && e.raw_os_error() != Some(libc::EAGAIN) => {
                    j.retry_num = MAX_RETRY;
                    j.start_time = u64::MAX;
                    events.push((true, "-script-error", format!("{} {} {}", j.argv[0], 0, 2)));
                }
                // The fork failed: reported as signal 99, and tried again on a later tick.
                Err(_) => events.push((true, "-script-error", format!("{} {} {}", j.argv[0], 99, 0))),
            }
        }
        self.queue.retain(|j| j.start_time != u64::MAX);
        let mut done = Vec::new();
        for (i, j) in self.queue.iter_mut().enumerate() {
            let Some(child) = j.child.as_mut() else { continue };
            let Ok(Some(status)) = child.try_wait() else { continue };
            let pid = child.id();
            let code = status.code().unwrap_or(0);
            let sig = status.signal().unwrap_or(0);
            events.push((false, "-script-child", format!("{pid} {code} {sig}")));
            j.child = None;
            if (sig != 0 || code == 1) && j.retry_num != MAX_RETRY {
                j.start_time = now() + retry_delay(j.retry_num);
            } else {
                if sig != 0 || code != 0 {
                    events.push((true, "-script-error", format!("{} {} {}", j.argv[0], sig, code)));
                }
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            self.queue.remove(i);
        }
        let t = now();
        for j in self.queue.iter_mut() {
            if let Some(child) = j.child.as_mut() {
                if t.saturating_sub(j.start_time) > period::script_max_runtime() {
                    events.push((true, "-script-timeout", format!("{} {}", j.argv[0], child.id())));
                    let _ = child.kill();
                }
            }
        }
        events
    }

    /// SENTINEL PENDING-SCRIPTS.
    pub fn pending_reply(&self) -> Reply {
        let t = now();
        let b = |x: &str| Reply::bulk(x.as_bytes());
        Reply::Array(
            self.queue
                .iter()
                .map(|j| {
                    let mut m = vec![
                        (b("argv"), Reply::Array(j.argv.iter().map(|a| b(a)).collect())),
                        (b("flags"), b(if j.child.is_some() { "running" } else { "scheduled" })),
                        (b("pid"), b(&j.child.as_ref().map_or(0, |c| c.id()).to_string())),
                    ];
                    if j.child.is_some() {
                        m.push((b("run-time"), b(&t.saturating_sub(j.start_time).to_string())));
                    } else {
                        let delay = if j.start_time != 0 { j.start_time.saturating_sub(t) } else { 0 };
                        m.push((b("run-delay"), b(&delay.to_string())));
                    }
                    m.push((b("retry-num"), b(&j.retry_num.to_string())));
                    Reply::Map(m)
                })
                .collect(),
        )
    }
}

/// Redis's `sentinelScriptRetryDelay`: the delay doubles with every further retry.
fn retry_delay(retry_num: u32) -> u64 {
    let mut d = period::script_retry_delay();
    let mut n = retry_num;
    while n > 1 {
        d = d.saturating_mul(2);
        n -= 1;
    }
    d
}

/// Whether `path` names a file this process may execute (Redis's `access(path, X_OK)`).
pub fn executable(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else { return false };
    // SAFETY: `c` is a valid NUL-terminated string.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles() {
        assert_eq!(retry_delay(1), period::script_retry_delay());
        assert_eq!(retry_delay(3), period::script_retry_delay() * 4);
    }

    #[test]
    fn runs_a_script_with_its_arguments_and_reports_failures() {
        let dir = std::env::temp_dir().join(format!("sentinel-script-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let ok = dir.join("ok.sh");
        std::fs::write(&ok, format!("#!/bin/sh\necho \"$@\" > {}\n", out.display())).unwrap();
        let bad = dir.join("bad.sh");
        std::fs::write(&bad, "#!/bin/sh\nexit 3\n").unwrap();
        for p in [&ok, &bad] {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let mut s = Scripts::default();
        s.schedule(ok.to_str().unwrap(), &["+sdown", "master mymaster 127.0.0.1 6379"]);
        s.schedule(bad.to_str().unwrap(), &["x"]);
        let mut events = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !s.queue.is_empty() && std::time::Instant::now() < deadline {
            events.extend(s.tick());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(s.queue.is_empty());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "+sdown master mymaster 127.0.0.1 6379\n");
        let err = format!("{} 0 3", bad.display());
        assert!(events.iter().any(|(w, t, m)| *w && *t == "-script-error" && *m == err), "{events:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
