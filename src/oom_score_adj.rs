//! `oom-score-adj` and `oom-score-adj-values`, as Redis 7.0's `setOOMScoreAdj`: while the
//! mode is not `no`, `/proc/self/oom_score_adj` holds the value of the node's role (master or
//! replica), added to the score the process had when the adjustment was switched on
//! (`yes`/`relative`) or as it is (`absolute`), clamped to -1000..=1000. Switching it off
//! writes that original score back; while it is off the file is never touched. The role is
//! re-applied whenever the node becomes a replica or a master. The third value (Redis's
//! bgchild class) goes to the save child, the process BGSAVE and BGREWRITEAOF write their file
//! through (`runtime::save_child`), as Redis's forked child sets its own score.

use std::sync::Mutex;

/// Redis's reason when the file cannot be written (CONFIG SET's error).
pub const SET_FAILED: &str = "Failed to set current oom_score_adj. Check server logs.";
/// Redis's reason for a value out of range or not a number.
pub const BAD_VALUES: &str = "Invalid oom-score-adj-values, elements must be between -2000 and 2000.";

const PROC_FILE: &str = "/proc/self/oom_score_adj";

/// How the values are applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    No,
    /// `yes` or `relative`: added to the original score.
    Relative,
    Absolute,
}

/// The two configs together.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Settings {
    pub mode: Mode,
    /// Master, replica, background child.
    pub values: [i32; 3],
}

impl Settings {
    /// The settings a config holds (its values were validated by [`parse_values`]).
    pub fn of(cfg: &crate::config::Config) -> Settings {
        let mode = match cfg.get("oom-score-adj").unwrap_or("no") {
            "yes" | "relative" => Mode::Relative,
            "absolute" => Mode::Absolute,
            _ => Mode::No,
        };
        let values = parse_values(&words(cfg.get("oom-score-adj-values").unwrap_or(""))).unwrap_or([0, 200, 800]);
        Settings { mode, values }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

/// Validates `oom-score-adj-values`'s three words as Redis does (`strtoll`: leading blanks and
/// a sign are accepted, nothing may follow the digits, an empty word is 0). Err: the reason.
pub fn parse_values(args: &[String]) -> Result<[i32; 3], &'static str> {
    if args.len() != 3 {
        return Err("wrong number of arguments");
    }
    let mut out = [0i32; 3];
    for (slot, a) in out.iter_mut().zip(args) {
        let t = a.trim_start();
        let v = match t {
            "" => 0,
            _ => {
                let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
                if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(BAD_VALUES);
                }
                // Too many digits for strtoll saturates, which is out of range here too.
                t.strip_prefix('+').unwrap_or(t).parse::<i64>().unwrap_or(i64::MAX)
            }
        };
        if !(-2000..=2000).contains(&v) {
            return Err(BAD_VALUES);
        }
        *slot = v as i32;
    }
    if out[1] < out[0] || out[2] < out[1] {
        tracing::warn!(
            "The oom-score-adj-values configuration may not work for non-privileged processes! Please consult the documentation."
        );
    }
    Ok(out)
}

/// What this process has done to its score.
struct State {
    settings: Settings,
    /// The score was changed by us; `base` is the score from before.
    adjusted: bool,
    base: i32,
}

static STATE: Mutex<State> =
    Mutex::new(State { settings: Settings { mode: Mode::No, values: [0, 200, 800] }, adjusted: false, base: 0 });

/// Takes `settings` and applies them for the node's current role. Err: the file could not
/// be read or written (logged as Redis logs it; the reason is CONFIG SET's); the settings are kept, so the caller puts
/// the previous ones back with another call.
pub fn configure(settings: Settings) -> Result<(), &'static str> {
    let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    st.settings = settings;
    apply(&mut st)
}

/// The node became a replica or a master: its class's value applies now.
pub fn role_changed() {
    let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let _ = apply(&mut st);
}

/// A save child was started: while the adjustment is on it gets the third value (plus the
/// original score when relative), as Redis's child does after its fork. A failure is logged.
pub fn child_started(pid: u32) {
    let st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if st.settings.mode == Mode::No || !st.adjusted {
        return;
    }
    let val = class_value(&st, 2);
    if let Err(e) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), format!("{val}\n")) {
        tracing::warn!("Unable to write oom_score_adj: {}", crate::limits::os_text(&e));
    }
}

/// The score of `class` (0 master, 1 replica, 2 child) under the current settings.
fn class_value(st: &State, class: usize) -> i32 {
    let mut v = st.settings.values[class];
    if st.settings.mode == Mode::Relative {
        v += st.base;
    }
    v.clamp(-1000, 1000)
}

fn apply(st: &mut State) -> Result<(), &'static str> {
    let val = if st.settings.mode != Mode::No {
        if !st.adjusted {
            st.adjusted = true;
            match std::fs::read_to_string(PROC_FILE) {
                Ok(text) => st.base = atoi(&text),
                Err(e) => {
                    tracing::warn!("Unable to read oom_score_adj: {}", crate::limits::os_text(&e));
                    return Err(SET_FAILED);
                }
            }
        }
        class_value(st, if crate::replication::role::is_replica() { 1 } else { 0 })
    } else if st.adjusted {
        st.adjusted = false;
        st.base
    } else {
        return Ok(());
    };
    if let Err(e) = std::fs::write(PROC_FILE, format!("{val}\n")) {
        tracing::warn!("Unable to write oom_score_adj: {}", crate::limits::os_text(&e));
        return Err(SET_FAILED);
    }
    Ok(())
}

/// C's `atoi`: an optional sign and the digits that follow, 0 when there are none.
fn atoi(s: &str) -> i32 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n: i64 =
        digits.bytes().take_while(u8::is_ascii_digit).fold(0i64, |n, b| (n * 10 + (b - b'0') as i64).min(1 << 40));
    let n = if neg { -n } else { n };
    n.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<[i32; 3], &'static str> {
        parse_values(&words(s))
    }

    #[test]
    fn values_as_redis_checks_them() {
        assert_eq!(v("0 200 800"), Ok([0, 200, 800]));
        assert_eq!(v("+1 02 -3"), Ok([1, 2, -3]));
        assert_eq!(v("1 2 "), Ok([1, 2, 0]));
        assert_eq!(v("-2000 0 2000"), Ok([-2000, 0, 2000]));
        assert_eq!(v("-2001 0 0"), Err(BAD_VALUES));
        assert_eq!(v("1 2 3x"), Err(BAD_VALUES));
        assert_eq!(v("a b c"), Err(BAD_VALUES));
        assert_eq!(v("1 2 99999999999999999999999"), Err(BAD_VALUES));
        assert_eq!(v("1 2"), Err("wrong number of arguments"));
        assert_eq!(v("1  2 3"), Err("wrong number of arguments"));
        assert_eq!(v(""), Err("wrong number of arguments"));
    }

    #[test]
    fn atoi_reads_the_proc_file_s_text() {
        assert_eq!(atoi("22\n"), 22);
        assert_eq!(atoi("-1000\n"), -1000);
        assert_eq!(atoi(""), 0);
    }
}
