//! Standalone FAILOVER against real redis-server 7.0: the same refusals (syntax, no replicas,
//! a replica, FORCE without TIMEOUT and target, an unknown target, ABORT without a failover);
//! a coordinated failover to a given or any replica swaps the roles without losing a write
//! (with slotcore on both sides, and with a real Redis on either side); a TIMEOUT the replica
//! misses aborts it, ABORT ends the wait, and writes held meanwhile run afterwards.

mod common;

use common::{until, Raw, Server};

fn ports() {
    common::use_ports(9340);
}

fn slotcore(extra: &[&str]) -> Server {
    ports();
    let mut args = vec!["--shards", "2", "--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    Server::slotcore(&args)
}

fn redis(extra: &[&str]) -> Server {
    ports();
    let mut args = vec!["--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    Server::redis(&args)
}

fn field(c: &mut Raw, field: &str) -> String {
    let text = c.cmd(&["INFO", "replication"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string())).unwrap_or_default()
}

fn follow(replica: &Server, master: &Server) {
    let mut r = replica.raw();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "+OK\r\n");
    let mut m = master.raw();
    until("the replica online and caught up", || {
        field(&mut r, "master_link_status") == "up"
            && field(&mut m, "slave0").contains("state=online")
            && field(&mut r, "slave_repl_offset") == field(&mut m, "master_repl_offset")
    });
}

fn stop(s: &Server, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &s.pid().to_string()]).status().is_ok_and(|st| st.success());
    assert!(ok, "kill {sig}");
}

#[test]
fn refusals_match_redis() {
    let (sc, rs) = (slotcore(&[]), redis(&[]));
    let (mut a, mut b) = (sc.raw(), rs.raw());
    let refusals: &[&[&str]] = &[
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TO"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "abc"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "-5"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "20"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "ABORT", "TIMEOUT", "10"],
        &["FAILOVER", "foo"],
        &["FAILOVER", "FORCE"],
        &["FAILOVER", "TO", "127.0.0.1", "1", "FORCE"],
    ];
    common::assert_same(&mut a, &mut b, refusals);
    // With a replica each: target checks, FORCE's needs, and the replica's own refusal.
    let (sr, rr) = (slotcore(&[]), redis(&[]));
    follow(&sr, &sc);
    follow(&rr, &rs);
    let (sp, rp) = (sr.port.to_string(), rr.port.to_string());
    for (m, port) in [(&mut a, "1"), (&mut b, "1")] {
        assert_eq!(
            m.cmd(&["FAILOVER", "TO", "127.0.0.1", port]),
            "-ERR FAILOVER target HOST and PORT is not a replica.\r\n"
        );
    }
    common::assert_same(
        &mut a,
        &mut b,
        &[&["FAILOVER", "TO", "127.0.0.2", "99999"], &["FAILOVER", "FORCE", "TIMEOUT", "100"], &["FAILOVER", "ABORT"]],
    );
    assert_eq!(
        a.cmd(&["FAILOVER", "TO", "127.0.0.1", &sp, "FORCE"]),
        b.cmd(&["FAILOVER", "TO", "127.0.0.1", &rp, "FORCE"])
    );
    let (mut ar, mut br) = (sr.raw(), rr.raw());
    common::assert_same(&mut ar, &mut br, &[&["FAILOVER"], &["FAILOVER", "TO", "127.0.0.1", "1"]]);
    assert_eq!(field(&mut a, "master_failover_state"), "no-failover");
}

/// A failover from `m` to its replica `r` (TO it, or to any replica): roles swap, the data
/// written before and during the wait is on both, and the new master's writes reach the old.
fn hands_over(m: &Server, r: &Server, to: bool) {
    follow(r, m);
    let mut mc = m.raw();
    for i in 0..50 {
        assert_eq!(mc.cmd(&["SET", &format!("k{i}"), &i.to_string()]), "+OK\r\n");
    }
    let port = r.port.to_string();
    let cmd: Vec<&str> = if to { vec!["FAILOVER", "TO", "127.0.0.1", &port] } else { vec!["FAILOVER"] };
    assert_eq!(mc.cmd(&cmd), "+OK\r\n");
    assert_eq!(mc.cmd(&["FAILOVER"]), "-ERR FAILOVER already in progress.\r\n");
    assert_eq!(mc.cmd(&["REPLICAOF", "NO", "ONE"]), "-ERR REPLICAOF not allowed while failing over.\r\n");
    until("the failover to end", || field(&mut mc, "master_failover_state") == "no-failover");
    let mut rc = r.raw();
    assert_eq!(field(&mut mc, "role"), "slave");
    assert_eq!(field(&mut mc, "master_port"), port);
    until("the new master", || field(&mut rc, "role") == "master");
    assert_eq!(rc.cmd(&["GET", "k49"]), "$2\r\n49\r\n");
    assert_eq!(rc.cmd(&["SET", "after", "1"]), "+OK\r\n");
    until("the old master to follow", || mc.cmd(&["GET", "after"]) == "$1\r\n1\r\n");
    assert_eq!(mc.cmd(&["DBSIZE"]), rc.cmd(&["DBSIZE"]));
    assert!(mc.cmd(&["SET", "x", "y"]).starts_with("-READONLY"));
}

#[test]
fn failover_to_a_slotcore_replica() {
    hands_over(&slotcore(&[]), &slotcore(&[]), true);
}

#[test]
fn failover_to_any_replica() {
    hands_over(&slotcore(&[]), &slotcore(&[]), false);
}

#[test]
fn failover_to_a_redis_replica() {
    hands_over(&slotcore(&[]), &redis(&[]), true);
}

#[test]
fn failover_from_a_redis_master() {
    hands_over(&redis(&[]), &slotcore(&[]), true);
}

#[test]
fn a_missed_timeout_aborts_and_held_writes_run() {
    for (m, r) in [(slotcore(&[]), slotcore(&[])), (redis(&[]), redis(&[]))] {
        follow(&r, &m);
        let mut mc = m.raw();
        stop(&r, "-STOP");
        assert_eq!(mc.cmd(&["SET", "case", "1"]), "+OK\r\n");
        let port = r.port.to_string();
        assert_eq!(mc.cmd(&["FAILOVER", "TO", "127.0.0.1", &port, "TIMEOUT", "400"]), "+OK\r\n");
        assert_eq!(field(&mut mc, "master_failover_state"), "waiting-for-sync");
        let mut w = m.raw();
        w.send_cmd(&[b"SET", b"held", b"1"]);
        assert_eq!(mc.cmd(&["GET", "case"]), "$1\r\n1\r\n");
        until("the failover to give up", || field(&mut mc, "master_failover_state") == "no-failover");
        assert_eq!(w.reply(), "+OK\r\n");
        stop(&r, "-CONT");
        assert_eq!(field(&mut mc, "role"), "master");
        let mut rc = r.raw();
        until("the replica to catch up", || rc.cmd(&["GET", "held"]) == "$1\r\n1\r\n");
    }
}

#[test]
fn abort_ends_the_wait() {
    for (m, r) in [(slotcore(&[]), slotcore(&[])), (redis(&[]), redis(&[]))] {
        follow(&r, &m);
        let mut mc = m.raw();
        stop(&r, "-STOP");
        assert_eq!(mc.cmd(&["SET", "case", "2"]), "+OK\r\n");
        let port = r.port.to_string();
        assert_eq!(mc.cmd(&["FAILOVER", "TO", "127.0.0.1", &port, "TIMEOUT", "60000"]), "+OK\r\n");
        let mut w = m.raw();
        w.send_cmd(&[b"INCR", b"n"]);
        until("the write held", || mc.cmd(&["INFO", "clients"]).contains("blocked_clients:1"));
        assert_eq!(mc.cmd(&["FAILOVER", "ABORT"]), "+OK\r\n");
        assert_eq!(field(&mut mc, "master_failover_state"), "no-failover");
        assert_eq!(w.reply(), ":1\r\n");
        stop(&r, "-CONT");
        assert_eq!(field(&mut mc, "role"), "master");
    }
}
