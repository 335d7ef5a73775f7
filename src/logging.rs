//! Logging in Redis's line format: `pid:R dd Mon yyyy hh:mm:ss.mmm <level> message`, where the
//! level character is `.` debug, `-` verbose, `*` notice, `#` warning, and R is the role
//! (`M` master, `S` replica, `X` Sentinel). Goes to `logfile` (appended) or stdout; the level follows `loglevel`, which
//! CONFIG SET can change at run time. The `log` crate (used by glommio) is routed here too.

use crate::config::LogLevel;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static LEVEL: AtomicU8 = AtomicU8::new(2);
static ROLE: AtomicU8 = AtomicU8::new(b'M');

/// Sets the role character of every line (`X` in Sentinel mode).
pub fn set_role(c: u8) {
    ROLE.store(c, Ordering::Relaxed);
}

/// A data node's role character follows its role, as Redis's (`S` while it replicates a
/// master, `M` otherwise); Sentinel's `X` stays.
pub fn set_replica_role(replica: bool) {
    let (from, to) = if replica { (b'M', b'S') } else { (b'S', b'M') };
    let _ = ROLE.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed);
}

fn level_rank(l: LogLevel) -> u8 {
    match l {
        LogLevel::Debug => 0,
        LogLevel::Verbose => 1,
        LogLevel::Notice => 2,
        LogLevel::Warning => 3,
    }
}

fn event_rank(l: &Level) -> u8 {
    match *l {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN | Level::ERROR => 3,
    }
}

/// Changes the verbosity at run time.
pub fn set_level(l: LogLevel) {
    LEVEL.store(level_rank(l), Ordering::Relaxed);
}

/// Formats `secs` since the epoch as Redis's `dd Mon yyyy hh:mm:ss` (UTC).
pub fn format_time(secs: u64, millis: u32) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        millis
    )
}

struct RedisFormat {
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let c = match *event.metadata().level() {
            Level::TRACE => '.',
            Level::DEBUG => '-',
            Level::INFO => '*',
            _ => '#',
        };
        let role = ROLE.load(Ordering::Relaxed) as char;
        write!(w, "{}:{} {} {} ", self.pid, role, format_time(now.as_secs(), now.subsec_millis()), c)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Where log lines go.
struct Sink(Mutex<Box<dyn Write + Send>>);

impl Write for &Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut w) => w.write(buf),
            Err(p) => p.into_inner().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut w) => w.flush(),
            Err(p) => p.into_inner().flush(),
        }
    }
}

/// Installs the global subscriber. `logfile` empty = stdout. Errors if the file can't be opened.
pub fn init(logfile: &str, level: LogLevel) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    set_level(level);
    let out: Box<dyn Write + Send> = if logfile.is_empty() {
        Box::new(std::io::stdout())
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("Can't open the log file: {e}"))?;
        crate::crash::set_log_fd(std::os::fd::AsRawFd::as_raw_fd(&f));
        Box::new(f)
    };
    let sink: &'static Sink = Box::leak(Box::new(Sink(Mutex::new(out))));
    let layer = tracing_subscriber::fmt::layer()
        .event_format(RedisFormat { pid: std::process::id() })
        .with_writer(move || sink)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| event_rank(m.level()) >= LEVEL.load(Ordering::Relaxed)));
    use tracing_subscriber::Layer as _;
    tracing_subscriber::registry().with(layer).try_init().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_format() {
        assert_eq!(super::format_time(0, 5), "01 Jan 1970 00:00:00.005");
        assert_eq!(super::format_time(1_795_331_200, 0), "22 Nov 2026 07:06:40.000");
    }
}
