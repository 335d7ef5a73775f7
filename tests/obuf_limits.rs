//! Client output-buffer limits and buffer sizes as CLIENT LIST and INFO show them, side by side
//! with a real redis-server: a subscriber that does not read shows its pending output in
//! `omem` and is closed at the pubsub hard limit, or once over the soft limit for its
//! seconds even when nothing more is published; a reply over a normal client's hard limit is
//! dropped (nothing reaches the client, the memory is given back); commands sent during a
//! DEBUG SLEEP wait for its end; the query buffer's size after a big argument and after
//! idle seconds.

mod common;
use common::{field, line_of, Raw, Server, WAIT};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn ports() {
    common::use_ports(9520);
}

fn used_memory(c: &mut Raw) -> u64 {
    let text = c.cmd(&["INFO", "memory"]);
    text.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).expect("used_memory")
}

/// A subscriber named `name` on channel `ch` that never reads after its confirmation.
fn silent_subscriber(port: u16, name: &str, ch: &str) -> Raw {
    let mut sub = Raw::connect(port);
    assert_eq!(sub.cmd(&["CLIENT", "SETNAME", name]), "+OK\r\n");
    sub.cmd(&["SUBSCRIBE", ch]);
    sub
}

#[test]
fn a_subscriber_that_does_not_read_shows_its_output_until_the_hard_limit_closes_it() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 100000 0 0"]), "+OK\r\n");
        let _sub = silent_subscriber(srv.port, "slowsub", "news");
        let msg = "x".repeat(1000);
        let deadline = Instant::now() + WAIT;
        let mut last = 0;
        loop {
            c.cmd(&["PUBLISH", "news", &msg]);
            let Some(line) = line_of(&mut c, "slowsub") else { break };
            last = field(&line, "omem");
            if last > 0 {
                assert!(field(&line, "tot-mem") > last, "{line}");
            }
            assert!(last < 200_000 && Instant::now() < deadline, "not closed: {line}");
        }
        assert!((70_000..200_000).contains(&last), "omem {last} when last listed");
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    }
    assert!(s.log_text().contains("name=slowsub"), "{}", s.log_text());
    assert!(s.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits."));
}

#[test]
fn the_soft_limit_closes_a_quiet_subscriber_after_its_seconds() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 100000 2"]), "+OK\r\n");
        let _sub = silent_subscriber(srv.port, "quietsub", "news");
        let msg = "x".repeat(1000);
        let deadline = Instant::now() + WAIT;
        // Publish until the output is over the soft limit, then stop.
        loop {
            c.cmd(&["PUBLISH", "news", &msg]);
            let line = line_of(&mut c, "quietsub").expect("closed while publishing");
            if field(&line, "omem") > 100_000 {
                break;
            }
            assert!(Instant::now() < deadline, "omem never grew: {line}");
        }
        let over = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(line_of(&mut c, "quietsub").is_some(), "closed before the soft limit's seconds");
        while line_of(&mut c, "quietsub").is_some() {
            assert!(over.elapsed() < Duration::from_secs(5), "never closed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(over.elapsed() >= Duration::from_secs(2), "closed after {:?}", over.elapsed());
    }
}

#[test]
fn a_reply_over_the_hard_limit_is_dropped_and_its_memory_given_back() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 100000 0 0"]), "+OK\r\n");
        let item = "x".repeat(1000);
        for _ in 0..150 {
            c.cmd(&["LPUSH", "biglist", &item]);
        }
        // The first big reply warms the allocator's caches; the second is measured.
        for round in 0..2 {
            let before = used_memory(&mut c);
            let mut big = Raw::connect(srv.port);
            assert_eq!(big.cmd(&["CLIENT", "SETNAME", "biglist"]), "+OK\r\n");
            big.send_cmd(&[b"LRANGE", b"biglist", b"0", b"-1"]);
            common::until("the client closed", || line_of(&mut c, "biglist").is_none());
            let after = used_memory(&mut c);
            if round == 1 {
                assert!(after < before + 10_000, "used_memory {before} -> {after}");
            }
            assert!(big.read_to_end().is_empty(), "part of the reply was sent");
        }
    }
}

#[test]
fn commands_sent_during_debug_sleep_wait_for_its_end() {
    ports();
    let debug = ["--enable-debug-command", "yes"];
    let s = Server::slotcore(&debug);
    let r = Server::redis(&debug);
    for srv in [&s, &r] {
        let mut sleeper = Raw::connect(srv.port);
        sleeper.send_cmd(&[b"DEBUG", b"SLEEP", b"1"]);
        std::thread::sleep(Duration::from_millis(100));
        let mut c = srv.raw();
        let start = Instant::now();
        assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
        assert!(start.elapsed() >= Duration::from_millis(500), "PING answered after {:?}", start.elapsed());
        assert_eq!(sleeper.reply(), "+OK\r\n");
    }
}

#[test]
fn the_query_buffer_holds_a_big_argument_and_is_released_when_idle() {
    ports();
    let s = Server::slotcore(&[]);
    let r = Server::redis(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        let mut q = Raw::connect(srv.port);
        assert_eq!(q.cmd(&["CLIENT", "SETNAME", "qclient"]), "+OK\r\n");
        let size = |c: &mut Raw| {
            let line = line_of(c, "qclient").expect("listed");
            field(&line, "qbuf") + field(&line, "qbuf-free")
        };
        let first = size(&mut c);
        assert!((16384..32768).contains(&first), "after a small command: {first}");
        assert_eq!(q.cmd(&["SET", "x", &"A".repeat(400_000)]), "+OK\r\n");
        let big = size(&mut c);
        assert!(big > 32768, "after a big argument: {big}");
        assert_eq!(q.cmd(&["SET", "x", "small"]), "+OK\r\n");
        let start = Instant::now();
        loop {
            let line = line_of(&mut c, "qclient").expect("listed");
            if field(&line, "idle") >= 3 && field(&line, "qbuf") + field(&line, "qbuf-free") == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(8), "never released: {line}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What a subscriber that stops reading finds once it reads again: the messages up to the
/// close, then the end of the stream.
#[test]
fn a_closed_subscriber_gets_no_message_after_its_limit() {
    ports();
    let s = Server::slotcore(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 50000 0 0"]), "+OK\r\n");
    let mut sub = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    std::io::Write::write_all(&mut sub, &common::encode(&[b"SUBSCRIBE", b"news"])).unwrap();
    let msg = "y".repeat(1000);
    let deadline = Instant::now() + WAIT;
    let mut sent = 0usize;
    while c.cmd(&["PUBSUB", "NUMSUB", "news"]).ends_with(":1\r\n") {
        c.cmd(&["PUBLISH", "news", &msg]);
        sent += 1;
        assert!(Instant::now() < deadline, "never closed after {sent} messages");
    }
    sub.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let _ = sub.read_to_end(&mut got);
    let received = got.windows(7).filter(|w| w == b"message").count();
    assert!(received < sent, "{received} of {sent} messages reached the closed subscriber");
}
