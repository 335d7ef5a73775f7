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
