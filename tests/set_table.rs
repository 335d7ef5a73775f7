//! A set's hash table as redis-server's dict: growth and shrink sizes, incremental rehashing
//! seen through DEBUG HTSTATS-KEY, the reverse-binary SSCAN order that leaves the last-scanned
//! members in few buckets, resizing held off while a BGSAVE child runs, and that child itself
//! (a real process, `pgrep -P`; killing it fails the save). Every scenario runs on slotcore and
//! redis-server side by side and compares what Redis defines.

mod common;
use common::cluster::wait_for;
use common::{Raw, Server};
use std::time::Duration;

const DEBUG: [&str; 2] = ["--enable-debug-command", "yes"];

fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| l.trim_start().strip_prefix(&format!("{name}:"))).map(|v| v.trim().to_string())
}

/// The text of a bulk or verbatim reply (RESP2: bulk).
fn bulk_text(reply: &str) -> String {
    match reply.split_once("\r\n") {
        Some((head, body)) if head.starts_with('$') => body.strip_suffix("\r\n").unwrap_or(body).to_string(),
        _ => reply.to_string(),
    }
}

fn htstats(r: &mut Raw, key: &str) -> String {
    bulk_text(&r.cmd(&["DEBUG", "HTSTATS-KEY", key]))
}

fn rehashing(r: &mut Raw, key: &str) -> bool {
    htstats(r, key).contains("rehashing target")
}

fn stat(r: &mut Raw, name: &str) -> String {
    field(&bulk_text(&r.cmd(&["INFO", "persistence"])), name).unwrap_or_default()
}

/// Bulk strings of a flat array reply.
fn bulks(reply: &str) -> Vec<String> {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('$') && lines[i] != "$-1" {
            out.push(lines[i + 1].to_string());
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// SSCAN from cursor 0 until `n` members are collected (Redis's order), then SREM them.
fn remove_first_scanned(r: &mut Raw, key: &str, n: usize) {
    let mut cursor = "0".to_string();
    let mut members = Vec::new();
    loop {
        let reply = r.cmd(&["SSCAN", key, &cursor]);
        let mut b = bulks(&reply);
        cursor = b.remove(0);
        for m in b {
            if members.len() < n {
                members.push(m);
            }
        }
        if members.len() >= n || cursor == "0" {
            break;
        }
    }
    let mut args = vec!["SREM", key];
    args.extend(members.iter().map(String::as_str));
    assert_eq!(r.cmd(&args), format!(":{}\r\n", members.len()));
}

fn fill(r: &mut Raw, key: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let names: Vec<String> = (start..(start + 1000).min(n)).map(|i| format!("m:{i}")).collect();
        let mut args = vec!["SADD", key];
        args.extend(names.iter().map(String::as_str));
        r.cmd(&args);
    }
}

/// Calls SRANDMEMBER (whose sampling does rehash steps) until the set is not rehashing; false
/// if it still is after `calls` calls.
fn rehash_by_sampling(r: &mut Raw, key: &str, count: &str, calls: usize) -> bool {
    for _ in 0..calls {
        if !rehashing(r, key) {
            return true;
        }
        r.cmd(&["SRANDMEMBER", key, count]);
    }
    !rehashing(r, key)
}

fn child_of(pid: u32) -> Option<u32> {
    let out = std::process::Command::new("pgrep").arg("-P").arg(pid.to_string()).output().ok()?;
    String::from_utf8_lossy(&out.stdout).split_whitespace().next()?.parse().ok()
}

/// Finds the server's save child (`pgrep -P`), kills it with SIGKILL and waits until the server
/// says the BGSAVE is over.
fn kill_save_child(s: &Server, r: &mut Raw) {
    let port = s.port;
    let mut child = None;
    wait_for(Duration::from_secs(10), &format!("a save child on {port}"), || {
        child = child_of(s.pid());
        child.is_some()
    });
    let pid = child.unwrap_or_default().to_string();
    assert!(std::process::Command::new("kill").args(["-9", &pid]).status().is_ok_and(|s| s.success()));
    wait_for(Duration::from_secs(10), &format!("the end of the BGSAVE on {port}"), || {
        stat(r, "rdb_bgsave_in_progress") == "0"
    });
}

#[test]
fn htstats_key_sizes_and_errors_as_redis() {
    let (sc, rs) = (Server::slotcore(&DEBUG), Server::redis(&DEBUG));
    for s in [&sc, &rs] {
        let mut r = s.raw();
        let port = s.port;
        assert_eq!(r.cmd(&["DEBUG", "HTSTATS-KEY", "nokey"]), "-ERR no such key\r\n", "on {port}");
        r.cmd(&["SADD", "ints", "1", "2"]);
        r.cmd(&["SET", "str", "v"]);
        for k in ["ints", "str"] {
            assert_eq!(
                r.cmd(&["DEBUG", "HTSTATS-KEY", k]),
                "-ERR The value stored at the specified key is not represented using an hash table\r\n",
                "{k} on {port}"
            );
        }
        r.cmd(&["SADD", "small", "a", "b", "c"]);
        let st = htstats(&mut r, "small");
        assert!(
            st.starts_with("Hash table 0 stats (main hash table):\n table size: 4\n number of elements: 3\n"),
            "on {port}: {st}"
        );
        // Grown at one member per bucket: 5 members take 8 buckets.
        r.cmd(&["SADD", "small", "d", "e"]);
        r.cmd(&["SRANDMEMBER", "small", "-20"]);
        let st = htstats(&mut r, "small");
        assert_eq!(field(&st, "table size").as_deref(), Some("8"), "on {port}: {st}");
        // 1000 members: rehashed (SRANDMEMBER does rehash steps) into 1024 buckets.
        fill(&mut r, "big", 1000);
        assert!(rehash_by_sampling(&mut r, "big", "100", 10_000), "on {port}");
        let st = htstats(&mut r, "big");
        assert_eq!(field(&st, "table size").as_deref(), Some("1024"), "on {port}: {st}");
        assert_eq!(field(&st, "number of elements").as_deref(), Some("1000"), "on {port}: {st}");
        // Under 10% full after a removal: the table starts shrinking.
        let names: Vec<String> = (0..920).map(|i| format!("m:{i}")).collect();
        let mut args = vec!["SREM", "big"];
        args.extend(names.iter().map(String::as_str));
        r.cmd(&args);
        let st = htstats(&mut r, "big");
        assert!(st.contains("Hash table 1 stats (rehashing target):"), "on {port}: {st}");
        assert!(rehash_by_sampling(&mut r, "big", "1", 10_000), "on {port}");
        let st = htstats(&mut r, "big");
        assert_eq!(field(&st, "table size").as_deref(), Some("128"), "on {port}: {st}");
        // A full SSCAN returns every member exactly once here (no resize during the scan).
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let mut b = bulks(&r.cmd(&["SSCAN", "big", &cursor, "COUNT", "7"]));
            cursor = b.remove(0);
            seen.extend(b);
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        let mut want: Vec<String> = (920..1000).map(|i| format!("m:{i}")).collect();
        want.sort();
        assert_eq!(seen, want, "on {port}");
    }
}

/// The scenario of a set left with one long chain: members removed in SSCAN order while a
/// BGSAVE child holds resizing off, the child killed, the shrink and its rehash (allowed during
/// a second save because the size ratio is extreme), then 30 members all in one bucket that
/// SRANDMEMBER still samples evenly.
#[test]
fn save_child_holds_resizing_and_scan_order_leaves_one_chain() {
    let (sc, rs) = (Server::slotcore(&DEBUG), Server::redis(&DEBUG));
    for s in [&sc, &rs] {
        let mut r = s.raw();
        let port = s.port;
        for (k, v) in [("save", ""), ("set-max-intset-entries", "0"), ("rdb-key-save-delay", "2147483647")] {
            assert_eq!(r.cmd(&["CONFIG", "SET", k, v]), "+OK\r\n");
        }
        fill(&mut r, "myset", 100_000);
        assert!(rehash_by_sampling(&mut r, "myset", "100", 100_000), "on {port}");
        assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        remove_first_scanned(&mut r, "myset", 99_500);
        // No shrink while the child lives.
        let st = htstats(&mut r, "myset");
        assert_eq!(field(&st, "table size").as_deref(), Some("131072"), "on {port}: {st}");
        assert!(!st.contains("rehashing target"), "on {port}: {st}");
        kill_save_child(s, &mut r);
        assert_eq!(stat(&mut r, "rdb_last_bgsave_status"), "err", "on {port}");
        r.cmd(&["SPOP", "myset", "1"]);
        assert!(rehashing(&mut r, "myset"), "on {port}");
        assert_eq!(r.cmd(&["BGSAVE"]), "+Background saving started\r\n");
        assert!(rehash_by_sampling(&mut r, "myset", "1", 100_000), "on {port}: {}", htstats(&mut r, "myset"));
        kill_save_child(s, &mut r);
        let left = r.cmd(&["SCARD", "myset"]);
        let left: usize = left.trim_start_matches(':').trim().parse().unwrap_or(0);
        remove_first_scanned(&mut r, "myset", left - 30);
        let st = htstats(&mut r, "myset");
        assert!(st.contains("rehashing target"), "on {port}: {st}");
        assert_eq!(field(&st, "different slots").as_deref(), Some("1"), "on {port}: {st}");
        assert_eq!(field(&st, "max chain length").as_deref(), Some("30"), "on {port}: {st}");
        // Every member still comes out of SRANDMEMBER, about evenly.
        let mut counts = std::collections::HashMap::new();
        for _ in 0..1000 {
            for m in bulks(&r.cmd(&["SRANDMEMBER", "myset", "10"])) {
                *counts.entry(m).or_insert(0usize) += 1;
            }
        }
        assert_eq!(counts.len(), 30, "on {port}");
        let expected = 10_000.0 / 30.0;
        let chi2: f64 = counts.values().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
        assert!(chi2 < 73.0, "chi-square {chi2} on {port}");
        r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    }
    assert!(sc.log_text().contains("Background saving terminated by signal 9"), "{}", sc.log_text());
}
