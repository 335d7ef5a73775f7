//! The room written ahead at the end of the incr file under `appendfsync always`
//! (`aof-preallocate`, slotcore's directive): while the node runs, the file ends with a line
//! of `#` that every AOF reader takes for an annotation. After a kill -9, `redis-check-aof`
//! accepts the directory and redis-server 7.0 loads it (and appends after it) with the same
//! DEBUG DIGEST; slotcore cuts the room off when it opens the file again, on a clean shutdown,
//! when the policy leaves `always` and with `aof-preallocate no`.

mod common;
use common::{until, Raw, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}

/// The file's size and the length of the room at its end (trailing lines of `#` only).
fn room(dir: &Path) -> (usize, usize) {
    let all = std::fs::read(incr_file(dir)).unwrap_or_default();
    (all.len(), all.len() - slotcore::aof::padding::padding_start(&all))
}

fn check_aof(dir: &Path) {
    let manifest = dir.join("appendonlydir/appendonly.aof.manifest");
    let out = Command::new("redis-check-aof").arg(&manifest).output().expect("run redis-check-aof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{text}");
}

fn loaded(r: &mut Raw) -> (String, String) {
    until("the load", || r.cmd(&["INFO", "persistence"]).contains("\r\nloading:0\r\n"));
    (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]))
}

fn writes(r: &mut Raw, tag: &str, n: usize) {
    for i in 0..n {
        assert_eq!(r.cmd(&["SET", &format!("{tag}:{i}"), &format!("value-{i}")]), "+OK\r\n");
    }
    r.cmd(&["RPUSH", &format!("{tag}:list"), "a", "b", "c"]);
    r.cmd(&["SET", &format!("{tag}:ttl"), "v", "EX", "1000"]);
}

#[test]
fn the_room_is_an_annotation_to_redis_and_is_cut_off_by_slotcore() {
    common::set_port_base(8660);
    let mut s =
        Server::slotcore(&["--shards", "2", "--appendonly", "yes", "--appendfsync", "always", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    writes(&mut r, "a", 200);
    let (len, ahead) = room(&s.dir);
    assert!(ahead >= 2 && len > ahead, "room after the commands while running: {len} bytes, {ahead} of room");
    let used: u64 = r
        .cmd(&["INFO", "persistence"])
        .lines()
        .find_map(|l| l.strip_prefix("aof_current_size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let base = std::fs::metadata(s.dir.join("appendonlydir/appendonly.aof.1.base.rdb")).map_or(0, |m| m.len());
    assert_eq!(used, base + (len - ahead) as u64, "aof_current_size counts the commands, not the room");
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    s.kill9();
    check_aof(&s.dir);

    // redis-server loads the directory as it is, and its own appends follow the room's line.
    let d = std::env::temp_dir().join(format!("slotcore-aof-room-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("appendonlydir")).unwrap();
    for e in std::fs::read_dir(s.dir.join("appendonlydir")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.join("appendonlydir").join(e.file_name())).unwrap();
    }
    {
        let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d.to_str().unwrap()]);
        let mut or = o.raw();
        assert_eq!(loaded(&mut or), want, "redis-server loaded the directory\n{}", o.log_text());
        assert_eq!(or.cmd(&["SET", "after", "redis"]), "+OK\r\n");
        let want_after = (or.cmd(&["DEBUG", "DIGEST"]), or.cmd(&["DBSIZE"]));
        drop(or);
        drop(o);
        check_aof(&d);
        let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d.to_str().unwrap()]);
        let mut or = o.raw();
        assert_eq!(loaded(&mut or), want_after, "redis-server reloaded its appends\n{}", o.log_text());
    }
    let _ = std::fs::remove_dir_all(&d);

    // slotcore loads it and cuts the room off when it opens the file again.
    s.restart();
    let mut r = s.raw();
    assert_eq!(loaded(&mut r), want);
    until("the room cut off after the restart", || room(&s.dir).1 == 0);
    writes(&mut r, "b", 20);
    assert!(room(&s.dir).1 >= 2, "room again once written");

    // Leaving `always`, or `aof-preallocate no`: the next write cuts it off.
    assert_eq!(r.cmd(&["CONFIG", "SET", "appendfsync", "everysec"]), "+OK\r\n");
    writes(&mut r, "c", 5);
    until("the room cut off under everysec", || room(&s.dir).1 == 0);
    assert_eq!(r.cmd(&["CONFIG", "SET", "appendfsync", "always"]), "+OK\r\n");
    writes(&mut r, "d", 5);
    assert!(room(&s.dir).1 >= 2, "room again under always");
    assert_eq!(r.cmd(&["CONFIG", "SET", "aof-preallocate", "no"]), "+OK\r\n");
    writes(&mut r, "e", 5);
    assert_eq!(room(&s.dir).1, 0, "aof-preallocate no: no room");
    let (len_before, _) = room(&s.dir);
    writes(&mut r, "f", 1);
    assert!(room(&s.dir).0 > len_before, "the file grows with each write again");
    assert_eq!(r.cmd(&["CONFIG", "SET", "aof-preallocate", "yes"]), "+OK\r\n");
    writes(&mut r, "g", 5);
    assert!(room(&s.dir).1 >= 2);

    // A clean shutdown leaves only commands.
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    r.send(&common::encode(&[b"SHUTDOWN"]));
    let stat = format!("/proc/{}/stat", s.pid());
    until("slotcore to exit", || {
        std::fs::read_to_string(&stat).map_or(true, |t| t.split(' ').nth(2).is_some_and(|st| st == "Z"))
    });
    assert_eq!(room(&s.dir).1, 0, "no room after SHUTDOWN");
    check_aof(&s.dir);
    s.restart();
    let mut r = s.raw();
    assert_eq!(loaded(&mut r), want);
}
