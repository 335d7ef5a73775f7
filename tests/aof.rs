//! The append-only file, against real redis-server 7.0 as the oracle: what slotcore writes
//! passes `redis-check-aof` and loads in redis-server with the same DEBUG DIGEST, and slotcore
//! loads redis-server's directory (after a BGREWRITEAOF too) and a 6.x single file; kill -9
//! under `appendfsync always` loses no acknowledged write, nor under `everysec` (a reply
//! follows the write of its command, as in Redis; only the OS's crash could lose the last
//! second); BGREWRITEAOF while writing keeps every key and leaves only the new files;
//! CONFIG SET appendonly at run time; a truncated tail; a cluster node comes back with its
//! keys, id and slots.

mod common;
use common::{Raw, Server, WAIT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn ports() {
    common::set_port_base(8600);
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn info(r: &mut Raw, field: &str) -> String {
    let text = r.cmd(&["INFO", "persistence"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

fn wait_rewrite_done(r: &mut Raw) {
    wait_for("the AOF rewrite to end", WAIT, || {
        info(r, "aof_rewrite_in_progress") == "0" && info(r, "aof_rewrite_scheduled") == "0"
    });
}

/// Every kind of write: strings, hashes, lists, sets, zsets, TTLs, other databases, a MULTI
/// spanning shards, INCR, DEL, expired keys.
fn workload(r: &mut Raw, tag: &str) {
    for i in 0..300 {
        assert_eq!(r.cmd(&["SET", &format!("{tag}:s:{i}"), &format!("v{i}")]), "+OK\r\n");
    }
    r.cmd(&["HSET", &format!("{tag}:h"), "a", "1", "b", "2"]);
    r.cmd(&["RPUSH", &format!("{tag}:l"), "x", "y", "z"]);
    r.cmd(&["LPOP", &format!("{tag}:l")]);
    r.cmd(&["SADD", &format!("{tag}:set"), "1", "2", "3"]);
    r.cmd(&["SPOP", &format!("{tag}:set")]);
    r.cmd(&["ZADD", &format!("{tag}:z"), "1.5", "a", "2", "b"]);
    r.cmd(&["SET", &format!("{tag}:ttl"), "v", "EX", "1000"]);
    r.cmd(&["EXPIRE", &format!("{tag}:s:1"), "5000"]);
    r.cmd(&["SET", &format!("{tag}:gone"), "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    // The lazy expiry propagates its DEL.
    assert_eq!(r.cmd(&["GET", &format!("{tag}:gone")]), "$-1\r\n");
    for _ in 0..5 {
        r.cmd(&["INCR", &format!("{tag}:n")]);
    }
    r.cmd(&["DEL", &format!("{tag}:s:2")]);
    assert_eq!(r.cmd(&["MULTI"]), "+OK\r\n");
    r.cmd(&["SET", &format!("{tag}:m1"), "1"]);
    r.cmd(&["SET", &format!("{tag}:m2"), "2"]);
    r.cmd(&["INCRBY", &format!("{tag}:n"), "10"]);
    assert!(r.cmd(&["EXEC"]).starts_with('*'));
    r.cmd(&["MSET", &format!("{tag}:a"), "1", &format!("{tag}:b"), "2", &format!("{tag}:c"), "3"]);
    r.cmd(&["SELECT", "5"]);
    r.cmd(&["SET", &format!("{tag}:db5"), "five"]);
    r.cmd(&["SELECT", "0"]);
}

fn check_aof(dir: &Path) {
    let manifest = dir.join("appendonlydir/appendonly.aof.manifest");
    let out = Command::new("redis-check-aof").arg(&manifest).output().expect("run redis-check-aof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{text}");
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A fresh directory holding a copy of `src`'s appendonlydir.
fn dir_with_aof(src: &Path, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slotcore-aof-{}-{}", tag, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    copy_dir(&src.join("appendonlydir"), &d.join("appendonlydir"));
    d
}

fn loaded_digest(s: &Server) -> (String, String) {
    let mut r = s.raw();
    wait_for("the load", Duration::from_secs(60), || r.cmd(&["INFO", "persistence"]).contains("\r\nloading:0\r\n"));
    (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]))
}

#[test]
fn our_files_pass_redis_check_aof_and_load_in_redis() {
    ports();
    let mut s = Server::slotcore(&["--shards", "3", "--appendonly", "yes", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    workload(&mut r, "one");
    check_aof(&s.dir);
    assert_eq!(
        files(&s.dir),
        ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"],
        "a fresh start creates base 1 and incr 1"
    );
    assert_eq!(r.cmd(&["BGREWRITEAOF"]), "+Background append only file rewriting started\r\n");
    wait_rewrite_done(&mut r);
    assert_eq!(info(&mut r, "aof_last_bgrewrite_status"), "ok");
    workload(&mut r, "two");
    check_aof(&s.dir);
    assert_eq!(files(&s.dir), ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]);
    let manifest = std::fs::read_to_string(s.dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(manifest, "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    // Under everysec the tail is on disk within about a second.
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    let d = dir_with_aof(&s.dir, "ours-in-redis");
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d.to_str().unwrap()]);
    assert_eq!(loaded_digest(&o), want, "redis-server loaded our appendonlydir\n{}", o.log_text());
    drop(o);
    let _ = std::fs::remove_dir_all(&d);
    // And slotcore itself, into a different number of shards.
    s.restart();
    assert_eq!(loaded_digest(&s), want, "{}", s.log_text());
}

#[test]
fn we_load_redis_servers_directory() {
    ports();
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes"]);
    let mut r = o.raw();
    workload(&mut r, "x");
    assert!(r.cmd(&["BGREWRITEAOF"]).starts_with("+Background append only file rewriting"));
    wait_rewrite_done(&mut r);
    workload(&mut r, "y");
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    r.send(&common::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    wait_for("redis-server to exit", WAIT, || std::net::TcpStream::connect(("127.0.0.1", o.port)).is_err());
    let d = dir_with_aof(&o.dir, "redis-in-ours");
    let s =
        Server::slotcore(&["--shards", "2", "--appendonly", "yes", DEBUG[0], DEBUG[1], "--dir", d.to_str().unwrap()]);
    assert_eq!(loaded_digest(&s), want, "{}", s.log_text());
    // Appending continues in redis-server's last incr file, and redis-check-aof still agrees.
    let mut a = s.raw();
    workload(&mut a, "z");
    assert_eq!(a.cmd(&["BGREWRITEAOF"]), "+Background append only file rewriting started\r\n");
    wait_rewrite_done(&mut a);
    check_aof(&d);
    drop(s);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn old_single_file_aof_is_upgraded() {
    ports();
    // A 6.x single file without and with an RDB preamble, loaded by both servers.
    let o = Server::redis(&[DEBUG[0], DEBUG[1]]);
    let mut r = o.raw();
    workload(&mut r, "p");
    assert_eq!(r.cmd(&["SAVE"]), "+OK\r\n");
    let mut preamble = std::fs::read(o.dir.join("dump.rdb")).unwrap();
    let tail = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$4\r\ntail\r\n$1\r\n1\r\n";
    preamble.extend_from_slice(tail);
    let plain =
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nincr\r\n$1\r\nn\r\n"
            .to_vec();
    for (tag, bytes) in [("plain", plain), ("preamble", preamble)] {
        let mk = |who: &str| {
            let d = std::env::temp_dir().join(format!("slotcore-aof-old-{tag}-{who}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("appendonly.aof"), &bytes).unwrap();
            d
        };
        let (d1, d2) = (mk("redis"), mk("ours"));
        let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d1.to_str().unwrap()]);
        let want = loaded_digest(&o);
        let s = Server::slotcore(&["--appendonly", "yes", DEBUG[0], DEBUG[1], "--dir", d2.to_str().unwrap()]);
        assert_eq!(loaded_digest(&s), want, "{tag}: {}", s.log_text());
        assert!(!d2.join("appendonly.aof").exists(), "{tag}: the old file moved into the directory");
        assert!(d2.join("appendonlydir/appendonly.aof").exists());
        check_aof(&d2);
        drop((o, s));
        let _ = std::fs::remove_dir_all(&d1);
        let _ = std::fs::remove_dir_all(&d2);
    }
}

/// Runs `clients` threads doing `SET c:<client>:<i> i` until `stop`; returns per client the
/// (index, ack instant) of every acknowledged write.
fn hammer(port: u16, clients: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<(u64, Instant)>>> {
    (0..clients)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return acked };
                let Ok(mut conn) = client.get_connection_with_timeout(WAIT) else { return acked };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r: redis::RedisResult<()> = redis::cmd("SET").arg(format!("c:{c}:{i}")).arg(i).query(&mut conn);
                    if r.is_err() {
                        break;
                    }
                    acked.push((i, Instant::now()));
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

/// Kills the server under write load after `run`, restarts it and returns, per client, the
/// acknowledged writes and which of them are missing after the restart (with the kill time).
/// Per client: acknowledged (index, instant) pairs.
type Acked = Vec<Vec<(u64, Instant)>>;

/// Copies a failed run's server directory (its AOF) aside before the server's drop removes it.
fn keep_for_inspection(s: &Server) {
    let to = std::env::temp_dir().join(format!("slotcore-aof-lost-{}-{}", std::process::id(), s.port));
    let copied = Command::new("cp").arg("-r").arg(&s.dir).arg(&to).status().is_ok_and(|st| st.success());
    eprintln!("copied: {copied}");
    eprintln!("server directory kept in {}", to.display());
}

fn kill_under_load(s: &mut Server, run: Duration) -> (Acked, Vec<Vec<u64>>, Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = hammer(s.port, 8, stop.clone());
    std::thread::sleep(run);
    let killed = Instant::now();
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked: Acked = threads.into_iter().map(|t| t.join().unwrap()).collect();
    s.restart();
    let mut r = s.raw();
    let mut missing = Vec::new();
    for (c, a) in acked.iter().enumerate() {
        let mut m = Vec::new();
        for (i, _) in a {
            if r.cmd(&["EXISTS", &format!("c:{c}:{i}")]) != ":1\r\n" {
                m.push(*i);
            }
        }
        missing.push(m);
    }
    (acked, missing, killed)
}

#[test]
fn kill9_under_always_loses_no_acknowledged_write() {
    kill9_under_always("3");
}

/// One shard: while fdatasync is quick (TMPDIR on tmpfs) the shard writes and fdatasyncs its
/// own rounds, else the control core does.
#[test]
fn kill9_under_always_with_one_shard_loses_no_acknowledged_write() {
    kill9_under_always("1");
}

fn kill9_under_always(shards: &str) {
    ports();
    let mut s = Server::slotcore(&["--shards", shards, "--appendonly", "yes", "--appendfsync", "always"]);
    let (acked, missing, _) = kill_under_load(&mut s, Duration::from_secs(3));
    let total: usize = acked.iter().map(Vec::len).sum();
    assert!(total > 500, "too few writes acknowledged to mean anything: {total}");
    let lost: usize = missing.iter().map(Vec::len).sum();
    if lost > 0 {
        keep_for_inspection(&s);
    }
    assert_eq!(lost, 0, "acknowledged writes lost under appendfsync always: {missing:?}");
    eprintln!("always, {shards} shards: {total} acknowledged writes from 8 clients, none lost");
}

#[test]
fn kill9_under_everysec_loses_at_most_about_a_second() {
    ports();
    let mut s = Server::slotcore(&["--shards", "3", "--appendonly", "yes", "--appendfsync", "everysec"]);
    let (acked, missing, killed) = kill_under_load(&mut s, Duration::from_secs(4));
    let total: usize = acked.iter().map(Vec::len).sum();
    assert!(total > 500, "too few writes acknowledged: {total}");
    // The oldest lost write: how long before the kill was it acknowledged?
    let mut window = Duration::ZERO;
    for (a, m) in acked.iter().zip(&missing) {
        if let Some(first) = m.iter().min() {
            let at = a.iter().find(|(i, _)| i == first).map(|(_, t)| *t).unwrap();
            window = window.max(killed.saturating_duration_since(at));
        }
        // Lost writes are a tail: everything before the first lost one is there.
        if let Some(first) = m.iter().min() {
            assert!(m.iter().all(|i| i >= first));
        }
    }
    let lost: usize = missing.iter().map(Vec::len).sum();
    eprintln!(
        "acknowledged per client {:?}, lost per client {missing:?}",
        acked.iter().map(|a| a.len()).collect::<Vec<_>>()
    );
    eprintln!("everysec: {total} acknowledged, {lost} lost, oldest lost acknowledged {window:?} before the kill");
    if window > Duration::from_millis(2500) {
        keep_for_inspection(&s);
    }
    assert!(window <= Duration::from_millis(2500), "everysec lost writes acknowledged {window:?} before the kill");
    // As Redis, a reply follows the write(2) of its command, except while a write is postponed
    // behind a running background fsync (at most 2 s): only those few can be lost.
    let _ = lost;
}

#[test]
fn rewrite_while_writing_keeps_every_key() {
    rewrite_while_writing("3");
}

/// One shard: its rounds' records reach the file from the shard itself between the rewrite's
/// marks (while fdatasync is quick).
#[test]
fn rewrite_while_writing_with_one_shard_keeps_every_key() {
    rewrite_while_writing("1");
}

fn rewrite_while_writing(shards: &str) {
    ports();
    let mut s =
        Server::slotcore(&["--shards", shards, "--appendonly", "yes", "--appendfsync", "always", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    workload(&mut r, "pre");
    let stop = Arc::new(AtomicBool::new(false));
    let threads = hammer(s.port, 4, stop.clone());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        assert!(r.cmd(&["BGREWRITEAOF"]).starts_with("+Background append only file rewriting"));
        wait_rewrite_done(&mut r);
        assert_eq!(info(&mut r, "aof_last_bgrewrite_status"), "ok");
    }
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Vec<(u64, Instant)>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(acked.iter().map(Vec::len).sum::<usize>() > 100);
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    assert_eq!(files(&s.dir), ["appendonly.aof.4.base.rdb", "appendonly.aof.4.incr.aof", "appendonly.aof.manifest"]);
    check_aof(&s.dir);
    s.restart();
    assert_eq!(loaded_digest(&s), want, "{}", s.log_text());
    let d = dir_with_aof(&s.dir, "rewrite-in-redis");
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d.to_str().unwrap()]);
    assert_eq!(loaded_digest(&o), want);
    drop(o);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn config_set_appendonly_at_run_time() {
    ports();
    let s = Server::slotcore(&["--shards", "2", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    workload(&mut r, "before");
    assert_eq!(info(&mut r, "aof_enabled"), "0");
    assert_eq!(r.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
    assert_eq!(info(&mut r, "aof_enabled"), "1");
    wait_rewrite_done(&mut r);
    workload(&mut r, "after");
    assert_eq!(r.cmd(&["CONFIG", "SET", "appendfsync", "always"]), "+OK\r\n");
    r.cmd(&["SET", "last", "1"]);
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    check_aof(&s.dir);
    let d = dir_with_aof(&s.dir, "runtime-in-redis");
    let o = Server::redis(&[DEBUG[0], DEBUG[1], "--appendonly", "yes", "--dir", d.to_str().unwrap()]);
    assert_eq!(loaded_digest(&o), want);
    drop(o);
    let _ = std::fs::remove_dir_all(&d);
    assert_eq!(r.cmd(&["CONFIG", "SET", "appendonly", "no"]), "+OK\r\n");
    assert_eq!(info(&mut r, "aof_enabled"), "0");
    assert_eq!(r.cmd(&["SET", "not-logged", "1"]), "+OK\r\n");
}

#[test]
fn debug_loadaof_reloads_the_files() {
    ports();
    let s = Server::slotcore(&["--shards", "2", "--appendonly", "yes", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    workload(&mut r, "l");
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    let size = info(&mut r, "aof_current_size");
    assert_eq!(r.cmd(&["DEBUG", "LOADAOF"]), "+OK\r\n");
    assert_eq!((r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"])), want);
    // The reload did not append its own commands.
    assert_eq!(info(&mut r, "aof_current_size"), size);
    r.cmd(&["SET", "after-reload", "1"]);
    check_aof(&s.dir);
}

#[test]
fn truncated_tail_is_cut_or_fatal() {
    ports();
    let mut s = Server::slotcore(&["--appendonly", "yes", "--appendfsync", "always", DEBUG[0], DEBUG[1]]);
    let mut r = s.raw();
    workload(&mut r, "t");
    let want = (r.cmd(&["DEBUG", "DIGEST"]), r.cmd(&["DBSIZE"]));
    s.kill9();
    let incr = s.dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    // Its commands, without the room written ahead under `always` (a line of `#`).
    let mut good = std::fs::read(&incr).unwrap();
    good.truncate(slotcore::aof::padding::padding_start(&good));
    let mut bad = good.clone();
    bad.extend_from_slice(b"*3\r\n$3\r\nset\r\n$3\r\nbad\r\n$5\r\nval");
    // aof-load-truncated no: a clear fatal error, exit 1.
    std::fs::write(&incr, &bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slotcore"))
        .args(["--port", &s.port.to_string(), "--dir", s.dir.to_str().unwrap(), "--pin-cores", "no"])
        .args(["--appendonly", "yes", "--aof-load-truncated", "no"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Unexpected end of file reading the append only file"), "{text}");
    // aof-load-truncated yes (the default): cut after the last complete command, as Redis.
    s.restart();
    assert_eq!(loaded_digest(&s), want);
    assert_eq!(std::fs::read(&incr).unwrap().len(), good.len(), "the tail was cut off");
    assert!(s.log_text().contains("AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"));
    // A MULTI without EXEC at the end is dropped before the MULTI.
    s.kill9();
    let mut multi = good.clone();
    multi.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$3\r\nbad\r\n$1\r\n1\r\n");
    std::fs::write(&incr, &multi).unwrap();
    s.restart();
    assert_eq!(loaded_digest(&s), want);
    assert!(s.log_text().contains("Revert incomplete MULTI/EXEC transaction in AOF file"));
}

#[test]
fn cluster_node_comes_back_from_kill9() {
    ports();
    let mut s = Server::slotcore(&[
        "--cluster-enabled",
        "yes",
        "--shards",
        "2",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]);
    assert_eq!(s.cli(&["CLUSTER", "ADDSLOTS", "0", "1", "2"]).trim(), "OK");
    assert_eq!(s.cli(&["CLUSTER", "ADDSLOTSRANGE", "3", "16383"]).trim(), "OK");
    let id = s.cli(&["CLUSTER", "MYID"]).trim().to_string();
    let mut r = s.raw();
    wait_for("cluster_state ok", WAIT, || r.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
    for i in 0..500 {
        assert_eq!(r.cmd(&["SET", &format!("k{{{}}}", i % 50), &i.to_string()]), "+OK\r\n");
    }
    let keys = r.cmd(&["DBSIZE"]);
    s.restart();
    let mut r = s.raw();
    assert_eq!(s.cli(&["CLUSTER", "MYID"]).trim(), id);
    wait_for("cluster_state ok", WAIT, || r.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
    assert_eq!(r.cmd(&["DBSIZE"]), keys);
    assert!(r.cmd(&["CLUSTER", "INFO"]).contains("cluster_slots_assigned:16384"));
    assert_eq!(r.cmd(&["GET", "k{7}"]), "$3\r\n457\r\n");
}

#[test]
fn bgrewriteaof_replies_as_redis() {
    ports();
    let s = Server::slotcore(&["--appendonly", "yes"]);
    let mut r = s.raw();
    let first = r.cmd(&["BGREWRITEAOF"]);
    assert_eq!(first, "+Background append only file rewriting started\r\n");
    let second = r.cmd(&["BGREWRITEAOF"]);
    assert!(
        second == "-ERR Background append only file rewriting already in progress\r\n"
            || second == "+Background append only file rewriting started\r\n",
        "{second}"
    );
    wait_rewrite_done(&mut r);
    assert_eq!(info(&mut r, "aof_last_write_status"), "ok");
    assert!(r.cmd(&["INFO", "persistence"]).contains("aof_delayed_fsync:0"));
}

/// Inside EXEC, BGREWRITEAOF and `CONFIG SET appendonly yes` only schedule the rewrite (Redis's
/// `server.in_exec`), which starts after the transaction: the same replies, log line and
/// outcome as redis-server.
#[test]
fn rewrites_asked_inside_exec_are_scheduled() {
    ports();
    let o = Server::redis(&[]);
    let s = Server::slotcore(&["--shards", "2"]);
    for srv in [&o, &s] {
        let mut r = srv.raw();
        assert_eq!(r.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(r.cmd(&["SET", "foo", "bar"]), "+QUEUED\r\n");
        assert_eq!(r.cmd(&["BGREWRITEAOF"]), "+QUEUED\r\n");
        assert_eq!(
            r.cmd(&["EXEC"]),
            "*2\r\n+OK\r\n+Background append only file rewriting scheduled\r\n",
            "port {}",
            srv.port
        );
        wait_for("the scheduled rewrite to run", WAIT, || {
            info(&mut r, "aof_rewrite_scheduled") == "0"
                && info(&mut r, "aof_rewrite_in_progress") == "0"
                && info(&mut r, "aof_last_bgrewrite_status") == "ok"
                && r.cmd(&["INFO", "stats"])
                    .lines()
                    .any(|l| l.starts_with("total_forks:") && l.trim() != "total_forks:0")
        });

        assert_eq!(r.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(r.cmd(&["SET", "foo", "baz"]), "+QUEUED\r\n");
        assert_eq!(r.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+QUEUED\r\n");
        assert_eq!(r.cmd(&["EXEC"]), "*2\r\n+OK\r\n+OK\r\n", "port {}", srv.port);
        assert_eq!(info(&mut r, "aof_enabled"), "1");
        wait_for("the log line", WAIT, || {
            srv.log_text().contains("An AOF background was scheduled to start when possible")
        });
        wait_rewrite_done(&mut r);
        assert_eq!(r.cmd(&["SET", "after", "1"]), "+OK\r\n");
        wait_for("the base and incr files", WAIT, || {
            let f = files(&srv.dir);
            f.iter().any(|n| n.contains(".base.")) && f.iter().any(|n| n.contains(".incr."))
        });
    }
}
