//! Saves, AOF rewrites and replication on a node of two data shards, where the client that
//! asks is served by the shard that does not drive the work (shard 0 runs every save).

mod common;
use common::{encode, Raw, Server};
use std::time::{Duration, Instant};

fn ports() {
    common::set_port_base(9560);
}

fn info(r: &mut Raw, field: &str) -> String {
    let text = r.cmd(&["INFO", "everything"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

/// `CONFIG SET rdb-key-save-delay 0` on shard 1's connection, then at once BGSAVE or
/// BGREWRITEAOF: the save is driven by shard 0, whose copy of the config still said one second
/// per key, so 50 keys took 50 seconds (Redis's aof-multi-part and rdb units hung there).
#[test]
fn a_config_set_on_the_other_shard_reaches_the_save_at_once() {
    ports();
    let s = Server::slotcore(&["--shards", "2", "--enable-debug-command", "yes", "--save", ""]);
    let (mut on0, mut on1) = common::one_per_shard(&s);
    assert_eq!(on1.cmd(&["DEBUG", "POPULATE", "50"]), "+OK\r\n");
    assert_eq!(on1.cmd(&["CONFIG", "SET", "appendonly", "yes"]), "+OK\r\n");
    common::until("the first AOF rewrite", || info(&mut on1, "aof_rewrite_in_progress") == "0");
    for (ask, progress) in [("BGSAVE", "rdb_bgsave_in_progress"), ("BGREWRITEAOF", "aof_rewrite_in_progress")] {
        assert_eq!(on1.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000000"]), "+OK\r\n");
        // Shard 0 takes the slow setting in with its next command.
        assert_eq!(on0.cmd(&["PING"]), "+PONG\r\n");
        let mut both = encode(&[b"CONFIG", b"SET", b"rdb-key-save-delay", b"0"]);
        both.extend(encode(&[ask.as_bytes()]));
        on1.send(&both);
        assert_eq!(on1.reply(), "+OK\r\n");
        assert!(on1.reply().starts_with('+'), "{ask} did not start");
        let began = Instant::now();
        common::until(&format!("{ask} to end"), || info(&mut on1, progress) == "0");
        assert!(began.elapsed() < Duration::from_secs(5), "{ask} took {:?}", began.elapsed());
    }
}

/// A replica killed by a CLIENT KILL inside a MULTI/EXEC that then writes on both shards past
/// the backlog: as in Redis, its next PSYNC comes after the whole EXEC reached the stream, so
/// the offset it asks for is gone and it syncs in full. The second shard answered the
/// replica's PSYNC while the transaction still held the shards, before its records reached the
/// stream: the replica continued from its old offset (Redis's replication unit saw a replica's
/// own keys survive a sync it expected in full).
#[test]
fn a_psync_waits_for_the_transaction_that_killed_its_link() {
    ports();
    let m = Server::slotcore(&["--shards", "2", "--repl-diskless-sync-delay", "0", "--save", ""]);
    let mp = m.port.to_string();
    let r = Server::slotcore(&["--shards", "2", "--replicaof", "127.0.0.1", &mp]);
    let mut mc = m.raw();
    let mut rc = r.raw();
    let link_up = |rc: &mut Raw| info(rc, "master_link_status") == "up";
    common::until("the first sync", || link_up(&mut rc) && info(&mut mc, "connected_slaves") == "1");
    assert_eq!(mc.cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"]), "+OK\r\n");
    let big = "A".repeat(16384);
    for round in 1..=3 {
        let full = info(&mut mc, "sync_full");
        let mut tx = encode(&[b"MULTI"]);
        tx.extend(encode(&[b"CLIENT", b"KILL", b"TYPE", b"replica"]));
        for k in 0..10 {
            tx.extend(encode(&[b"SET", format!("k{round}:{k}").as_bytes(), big.as_bytes()]));
        }
        tx.extend(encode(&[b"EXEC"]));
        mc.send(&tx);
        for _ in 0..12 {
            mc.reply();
        }
        let exec = mc.reply();
        assert!(exec.starts_with("*11\r\n:1\r\n+OK"), "EXEC: {exec:?}");
        common::until("the replica to sync again", || {
            let again = info(&mut mc, "sync_full") != full || info(&mut mc, "sync_partial_ok") != "0";
            again && info(&mut mc, "connected_slaves") == "1" && link_up(&mut rc)
        });
        assert_eq!(info(&mut mc, "sync_partial_ok"), "0", "round {round}: a PSYNC continued past the EXEC");
        assert_eq!(rc.cmd(&["DBSIZE"]), format!(":{}\r\n", round * 10));
    }
}

/// FAILOVER TO a replica with FORCE while the replica is stopped (SIGSTOP): the old master's
/// last write waits in the replica's socket, and the PSYNC FAILOVER comes when it resumes. As
/// in Redis, the replica applies that write before it promotes itself, so the old master's
/// own PSYNC continues. With two shards the PSYNC was served on one shard before the link's
/// shard ran: the new master's history stopped short of the old master's offset, and the old
/// master synced in full (Redis's integration/failover, about one run in four under load).
#[test]
fn a_forced_failover_keeps_the_writes_the_stopped_replica_was_sent() {
    ports();
    let mut a = Server::slotcore(&["--shards", "2", "--save", ""]);
    let ap = a.port.to_string();
    let mut b = Server::slotcore(&["--shards", "2", "--save", "", "--replicaof", "127.0.0.1", &ap]);
    let (mut master, mut replica) = (&mut a, &mut b);
    let mut mc = master.raw();
    let mut rc = replica.raw();
    common::until("the first sync", || info(&mut rc, "master_link_status") == "up");
    for round in 0..16 {
        let (full, partial) = (info(&mut rc, "sync_full"), info(&mut rc, "sync_partial_ok"));
        let rpid = replica.pid() as i32;
        // SAFETY: signals to this test's own child process.
        unsafe { libc::kill(rpid, libc::SIGSTOP) };
        assert_eq!(mc.cmd(&["SET", "k", &round.to_string()]), "+OK\r\n");
        let to = replica.port.to_string();
        assert_eq!(mc.cmd(&["FAILOVER", "TO", "127.0.0.1", &to, "TIMEOUT", "100", "FORCE"]), "+OK\r\n");
        common::until("the forced failover", || info(&mut mc, "master_failover_state") == "failover-in-progress");
        unsafe { libc::kill(rpid, libc::SIGCONT) };
        common::until("the failover's end", || {
            info(&mut mc, "master_failover_state") == "no-failover" && info(&mut mc, "master_link_status") == "up"
        });
        assert_eq!(info(&mut rc, "sync_full"), full, "round {round}: the old master synced in full");
        assert_eq!(
            info(&mut rc, "sync_partial_ok").parse::<u64>().unwrap_or(0),
            partial.parse::<u64>().unwrap_or(0) + 1
        );
        assert_eq!(rc.cmd(&["GET", "k"]), format!("${}\r\n{round}\r\n", round.to_string().len()));
        std::mem::swap(&mut master, &mut replica);
        std::mem::swap(&mut mc, &mut rc);
    }
}
