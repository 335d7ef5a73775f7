//! RDB files: SAVE in slotcore loads in a real redis-server (and passes redis-check-rdb), an
//! RDB written by redis-server loads into slotcore, and slotcore reloads its own file.

mod common;
use common::{encode, Raw, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn fill(r: &mut Raw) {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let c = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    cmds.push(c(&["SET", "s", "hello"]));
    cmds.push(c(&["SET", "n", "12345"]));
    cmds.push(c(&["SET", "long", &"abc".repeat(100)]));
    cmds.push(c(&["SET", "ttl", "v", "PX", "100000000"]));
    cmds.push(c(&["HSET", "h", "a", "1", "b", "2"]));
    cmds.push(c(&["RPUSH", "l", "x", "1", "y"]));
    cmds.push(c(&["SADD", "si", "1", "2", "3"]));
    cmds.push(c(&["SADD", "ss", "a", "b"]));
    cmds.push(c(&["ZADD", "z", "1.5", "a", "2", "b"]));
    cmds.push(c(&["PFADD", "hll", "a", "b", "c"]));
    let (mut h, mut z, mut l) = (c(&["HSET", "bigh"]), c(&["ZADD", "bigz"]), c(&["RPUSH", "bigl"]));
    for i in 0..2000 {
        h.extend([format!("f{i}"), format!("v{i}")]);
        z.extend([format!("{}", i % 97), format!("m{i}")]);
        l.push(format!("element-{i}"));
    }
    cmds.extend([h, z, l]);
    cmds.push(c(&["SELECT", "3"]));
    cmds.push(c(&["SET", "k3", "in-db-3"]));
    cmds.push(c(&["SELECT", "0"]));
    let mut buf = Vec::new();
    for cmd in &cmds {
        let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        buf.extend(encode(&a));
    }
    r.send(&buf);
    for _ in &cmds {
        r.reply();
    }
}

fn digest(r: &mut Raw) -> String {
    r.cmd(&["DEBUG", "DIGEST"])
}

/// A fresh directory holding a copy of `file` as dump.rdb.
fn dir_with(file: &Path, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slotcore-rdb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::copy(file, d.join("dump.rdb")).expect("copy rdb");
    d
}

#[test]
fn slotcore_rdb_loads_in_redis_and_back() {
    let s = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    fill(&mut a);
    let want = digest(&mut a);
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    let rdb = s.dir.join("dump.rdb");
    let check = Command::new("redis-check-rdb").arg(&rdb).output().expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");
    let lastsave: i64 = a.cmd(&["LASTSAVE"]).trim_start_matches(':').trim().parse().unwrap_or(0);
    assert!(lastsave > 1_700_000_000);
    let info = a.cmd(&["INFO", "persistence"]);
    assert!(info.contains("rdb_saves:1\r\n") && info.contains(&format!("rdb_last_save_time:{lastsave}\r\n")), "{info}");

    // redis-server loads it.
    let d = dir_with(&rdb, "to-redis");
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--dir", d.to_str().unwrap()]);
    let mut b = o.raw();
    assert_eq!(digest(&mut b), want);
    assert_eq!(b.cmd(&["DBSIZE"]), a.cmd(&["DBSIZE"]));
    let pttl: i64 = b.cmd(&["PTTL", "ttl"]).trim_start_matches(':').trim().parse().unwrap_or(-9);
    assert!(pttl > 90_000_000);

    // redis-server's own file (after a change) loads into slotcore.
    b.cmd(&["SET", "from-redis", "1"]);
    let want2 = digest(&mut b);
    assert_eq!(b.cmd(&["SAVE"]), "+OK\r\n");
    let d2 = dir_with(&d.join("dump.rdb"), "from-redis");
    let s2 = Server::slotcore(&["--shards", "3", DEBUG[0], DEBUG[1], "--dir", d2.to_str().unwrap()]);
    let mut c = s2.raw();
    assert_eq!(digest(&mut c), want2);
    assert!(s2.log_text().contains("DB loaded from disk"));
    let info = c.cmd(&["INFO", "persistence"]);
    assert!(info.contains("rdb_last_load_keys_loaded:15\r\n"), "{info}");
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&d2);
}

#[test]
fn slotcore_reloads_its_own_file_and_refuses_corrupt_ones() {
    let mut s = Server::slotcore(&[DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    fill(&mut a);
    let want = digest(&mut a);
    assert_eq!(a.cmd(&["DEBUG", "RELOAD"]), "+OK\r\n");
    assert_eq!(digest(&mut a), want);
    assert!(s.dir.join("dump.rdb").exists());
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    drop(a);
    s.kill9();
    s.restart();
    assert_eq!(digest(&mut s.raw()), want);
    // A flipped byte: the checksum fails and the server exits with an error.
    let rdb = s.dir.join("dump.rdb");
    let mut bytes = std::fs::read(&rdb).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0xFF;
    let d = std::env::temp_dir().join(format!("slotcore-rdb-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("dump.rdb"), &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &common::free_port().to_string(), "--dir", d.to_str().unwrap(), "--pin-cores", "no"])
        .output()
        .expect("run slotcore");
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("RDB") || log.contains("loading DB"), "{log}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sigterm_saves_when_save_points_are_set_and_not_otherwise() {
    // Default config: Redis's save points, so SIGTERM saves first (as redis-server does).
    let mut s = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let mut a = s.raw();
    fill(&mut a);
    let want = digest(&mut a);
    drop(a);
    let term = |pid: u32| Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    term(s.pid());
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0), "{}", s.log_text());
    assert!(s.log_text().contains("Saving the final RDB snapshot before exiting."), "{}", s.log_text());
    assert!(s.dir.join("dump.rdb").exists());
    s.restart();
    assert_eq!(digest(&mut s.raw()), want);

    // `save ""`: no snapshot on SIGTERM.
    let mut n = Server::slotcore(&["--save", ""]);
    n.raw().cmd(&["SET", "k", "v"]);
    term(n.pid());
    assert_eq!(n.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(!n.dir.join("dump.rdb").exists());
}

/// Keys past their TTL (active expiry off) are in the file and counted as expired on load;
/// a bad checksum stops start-up with Redis's lines.
fn expired_keys_and_checksum(s: &mut Server) -> (String, String, String) {
    let mut a = s.raw();
    a.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for i in 0..64 {
        a.cmd(&["SET", &format!("gone:{i}"), "v", "PX", "10"]);
        a.cmd(&["SET", &format!("kept:{i}"), "v"]);
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    drop(a);
    s.kill9();
    s.restart();
    let mut a = s.raw();
    let info = a.cmd(&["INFO", "persistence"]);
    let field = |f: &str| info.lines().find_map(|l| l.strip_prefix(f)).unwrap_or("").trim().to_string();
    let counts = (field("rdb_last_load_keys_expired:"), field("rdb_last_load_keys_loaded:"));
    drop(a);
    s.kill9();
    let rdb = s.dir.join("dump.rdb");
    let mut bytes = std::fs::read(&rdb).unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(b"foobar00");
    std::fs::write(&rdb, &bytes).unwrap();
    s.relaunch();
    let start = std::time::Instant::now();
    while s.is_running() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = s.log_text();
    // The lines from the checksum's on, without the sums themselves (the files differ).
    let from = log.find("Wrong RDB checksum").unwrap_or(log.len());
    let lines: Vec<String> = log[from..]
        .lines()
        .take(1)
        .map(|l| l.rsplit_once(" # ").map_or(l, |x| x.1))
        .map(|l| l.split(['(', ')']).enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, p)| p).collect())
        .collect();
    assert!(log.contains("-> RDB CRC error"), "{log}");
    (counts.0, counts.1, lines.join("\n"))
}

#[test]
fn expired_keys_are_saved_and_a_bad_checksum_is_fatal_as_redis() {
    let ours = expired_keys_and_checksum(&mut Server::slotcore(&[DEBUG[0], DEBUG[1]]));
    let theirs = expired_keys_and_checksum(&mut Server::redis(&[DEBUG[0], DEBUG[1]]));
    assert_eq!(ours, theirs);
    assert_eq!((ours.0.as_str(), ours.1.as_str()), ("64", "64"));
}

#[test]
fn empty_keys_in_a_file_are_skipped_with_redis_s_log_line() {
    // REDIS0010, SELECTDB 0, an empty set "set" and an empty hash "hash", EOF, no checksum.
    let mut rdb = b"REDIS0010\xfe\x00".to_vec();
    rdb.extend_from_slice(b"\x02\x03set\x00");
    rdb.extend_from_slice(b"\x04\x04hash\x00");
    rdb.extend_from_slice(b"\x00\x01k\x01v");
    rdb.push(0xff);
    rdb.extend_from_slice(&[0u8; 8]);
    for redis in [false, true] {
        let d = std::env::temp_dir().join(format!("slotcore-rdb-empty-{}-{redis}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dump.rdb"), &rdb).unwrap();
        let dir = d.to_str().unwrap();
        let s = if redis { Server::redis(&["--dir", dir]) } else { Server::slotcore(&["--dir", dir]) };
        assert_eq!(s.raw().cmd(&["DBSIZE"]), ":1\r\n", "redis={redis}");
        let log = s.log_text();
        for line in ["skipping empty key: set", "skipping empty key: hash", "empty keys skipped: 2"] {
            assert!(log.contains(line), "redis={redis}: no {line:?} in\n{log}");
        }
        drop(s);
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// `rdbchecksum no`: SAVE and BGSAVE end the file with eight zero bytes instead of the CRC64
/// (redis-check-rdb and redis-server accept such a file unchecked), and slotcore loads it back.
#[test]
fn rdbchecksum_no_writes_a_zero_checksum() {
    let mut s = Server::slotcore(&["--rdbchecksum", "no", "--save", ""]);
    let mut r = s.raw();
    fill(&mut r);
    let before = digest(&mut r);
    for save in ["SAVE", "BGSAVE"] {
        let _ = std::fs::remove_file(s.dir.join("dump.rdb"));
        assert!(r.cmd(&[save]).starts_with('+'));
        let file = s.dir.join("dump.rdb");
        let start = std::time::Instant::now();
        while !file.exists() && start.elapsed() < common::WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The save renames a complete temp file into place: once there, it is whole.
        let bytes = std::fs::read(&file).expect("dump.rdb");
        assert_eq!(&bytes[bytes.len() - 9..], &[0xFF, 0, 0, 0, 0, 0, 0, 0, 0], "{save}");
        let check = Command::new("redis-check-rdb").arg(&file).output().expect("redis-check-rdb");
        assert!(String::from_utf8_lossy(&check.stdout).contains("RDB looks OK"), "{save}");
    }
    drop(r);
    s.restart();
    assert_eq!(digest(&mut s.raw()), before, "the file loads back");
}
