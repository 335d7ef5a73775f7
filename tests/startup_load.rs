//! A big data set loading at start-up, beside a real redis-server loading the same kind of
//! file: clients are accepted while it loads and get -LOADING for data commands, INFO shows
//! `loading:1` with the progress fields, CONFIG SET works for configs allowed while loading and
//! refuses the others, and SIGTERM or SHUTDOWN meanwhile exit without saving (the file is
//! left as it was, not overwritten with half of the data). Once loaded, every key is there.

mod common;
use common::{until, Server, WAIT};
use std::time::{Duration, Instant};

/// Keys in the file (about 1.7 MB: over the 1 KB `loading-process-events-interval-bytes` given
/// to both servers, as Redis's own test of this does, so both serve while they load).
const KEYS: &str = "50000";
/// `key-load-delay` in µs per key: the load lasts a few seconds.
const DELAY: &str = "60";

fn start_pair() -> (Server, Server) {
    let args =
        ["--enable-debug-command", "yes", "--key-load-delay", DELAY, "--loading-process-events-interval-bytes", "1024"];
    let s = Server::slotcore(&args);
    let r = Server::redis_with_args(&args);
    for srv in [&s, &r] {
        assert_eq!(srv.cli(&["debug", "populate", KEYS, "key", "100"]).trim(), "OK");
        assert_eq!(srv.cli(&["save"]).trim(), "OK");
    }
    (s, r)
}

fn field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().to_string())
}

/// Restarts `srv` and waits until it answers INFO while still loading.
fn relaunch_loading(srv: &mut Server) -> String {
    srv.relaunch();
    let start = Instant::now();
    loop {
        let info = srv.cli(&["info", "persistence"]);
        if field(&info, "loading").as_deref() == Some("1") {
            return info;
        }
        assert!(start.elapsed() < WAIT, "port {} never answered INFO with loading:1: {info}", srv.port);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn dump_bytes(srv: &Server) -> Vec<u8> {
    std::fs::read(srv.dir.join("dump.rdb")).expect("dump.rdb")
}

#[test]
fn clients_get_loading_while_a_big_file_loads_as_redis() {
    let (mut s, mut r) = start_pair();
    for srv in [&mut s, &mut r] {
        let size = std::fs::metadata(srv.dir.join("dump.rdb")).expect("dump.rdb").len();
        let info = relaunch_loading(srv);
        for f in ["loading_start_time", "loading_loaded_bytes", "loading_loaded_perc", "loading_eta_seconds"] {
            assert!(field(&info, f).is_some(), "{f} missing on port {}: {info}", srv.port);
        }
        assert_eq!(field(&info, "loading_total_bytes"), Some(size.to_string()), "port {}", srv.port);
    }
    // The same replies from both while they load.
    for args in [
        &["get", "key:1"][..],
        &["dbsize"],
        &["set", "x", "1"],
        &["ping"],
        &["config", "set", "loglevel", "debug"],
        &["config", "get", "loglevel"],
        &["config", "set", "dir", "/nonexistent"],
    ] {
        let (a, b) = (s.cli(args), r.cli(args));
        assert_eq!(a, b, "{args:?} while loading");
    }
    assert!(s.cli(&["get", "key:1"]).starts_with("LOADING Redis is loading the dataset in memory"));
    // Both still loading: the replies above were not a race with the load's end.
    for srv in [&s, &r] {
        assert_eq!(field(&srv.cli(&["info", "persistence"]), "loading").as_deref(), Some("1"));
    }
    for srv in [&s, &r] {
        until("the load to finish", || field(&srv.cli(&["info", "persistence"]), "loading").as_deref() == Some("0"));
        assert_eq!(srv.cli(&["dbsize"]).trim(), KEYS);
    }
    assert_eq!(s.cli(&["get", "key:49999"]), r.cli(&["get", "key:49999"]));
}

#[test]
fn shutdown_or_sigterm_while_loading_keeps_the_file() {
    let (mut s, mut r) = start_pair();
    let before = dump_bytes(&s);
    // SHUTDOWN (save points are configured, the default) while loading: exits, saves nothing.
    relaunch_loading(&mut s);
    let _ = s.cli(&["shutdown"]);
    assert_eq!(s.wait_exit(WAIT), Some(0));
    assert!(dump_bytes(&s) == before, "SHUTDOWN while loading rewrote dump.rdb");
    // SIGTERM while loading, beside redis-server: both exit 0 and keep their file.
    let r_before = dump_bytes(&r);
    for srv in [&mut s, &mut r] {
        relaunch_loading(srv);
        // SAFETY: plain kill(2) on the child this test started.
        unsafe { libc::kill(srv.pid() as i32, libc::SIGTERM) };
        assert_eq!(srv.wait_exit(WAIT), Some(0), "port {}", srv.port);
    }
    assert!(dump_bytes(&s) == before, "SIGTERM while loading rewrote slotcore's dump.rdb");
    assert!(dump_bytes(&r) == r_before, "redis-server rewrote its dump.rdb");
    // The file still holds every key.
    s.restart();
    until("the load to finish", || field(&s.cli(&["info", "persistence"]), "loading").as_deref() == Some("0"));
    assert_eq!(s.cli(&["dbsize"]).trim(), KEYS);
}
