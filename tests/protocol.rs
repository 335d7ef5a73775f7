//! RESP robustness: pipelining, inline commands, partial frames, big bulks, Redis's exact
//! protocol errors (then the connection closes), and random garbage that must never crash or
//! hang the server nor disturb other clients.

mod common;
use common::{Raw, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn pipeline_of_a_thousand_in_one_write() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(common::encode(&[b"INCR", format!("c{}", i % 7).as_bytes()]));
    }
    r.send(&batch);
    let mut last = [0i64; 7];
    for i in 0..1000 {
        let got = r.reply();
        let n: i64 = got.trim_start_matches(':').trim().parse().expect("int reply");
        last[i % 7] += 1;
        assert_eq!(n, last[i % 7], "reply {i} out of order");
    }
}

#[test]
fn inline_and_partial_frames() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    r.send(b"PING\r\n\r\nset k \"a b\\x41\"\nget k\r\n");
    assert_eq!(r.reply(), "+PONG\r\n");
    assert_eq!(r.reply(), "+OK\r\n");
    assert_eq!(r.reply(), "$4\r\na bA\r\n");
    let frame = common::encode(&[b"SET", b"slow", b"value"]);
    for b in &frame {
        r.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(r.reply(), "+OK\r\n");
    assert_eq!(r.cmd(&["GET", "slow"]), "$5\r\nvalue\r\n");
}

#[test]
fn big_bulk_strings_round_trip() {
    let s = Server::slotcore_shards(2);
    let mut r = s.raw();
    for size in [10usize << 20, 100 << 20] {
        let v = vec![b'x'; size];
        r.send_cmd(&[b"SET", b"big", &v]);
        assert_eq!(r.reply(), "+OK\r\n");
        assert_eq!(r.cmd(&["STRLEN", "big"]), format!(":{size}\r\n"));
        let got = r.cmd(&["GET", "big"]);
        assert_eq!(got.len(), size + format!("${size}\r\n").len() + 2);
    }
}

/// Sends raw bytes and returns everything the server wrote before closing.
fn send_and_drain(port: u16, bytes: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn protocol_errors_match_redis_and_close() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let mut other = s.raw();
    let cases: Vec<Vec<u8>> = vec![
        b"*abc\r\n".to_vec(),
        b"*1\r\n+x\r\n".to_vec(),
        b"*1\r\n$-3\r\n".to_vec(),
        b"*3000000000\r\n".to_vec(),
        b"*1\r\n$abc\r\n".to_vec(),
        b"set \"a\n".to_vec(),
        b"set \"a\"b c\r\n".to_vec(),
        b"PING\r\n*1\r\nx".to_vec(),
        vec![b'a'; 70 * 1024],
        {
            let mut v = b"*1\r\n".to_vec();
            v.extend(vec![b'1'; 70 * 1024]);
            v
        },
    ];
    for case in &cases {
        let ours = send_and_drain(s.port, case);
        let theirs = send_and_drain(o.port, case);
        assert_eq!(ours, theirs, "input {:?}", String::from_utf8_lossy(&case[..case.len().min(40)]));
    }
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
}

/// A small deterministic PRNG (xorshift) so the fuzz test is repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_and_truncations_never_hurt_the_server() {
    let mut s = Server::slotcore_shards(2);
    let port = s.port;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let valid: Vec<Vec<u8>> = vec![
        common::encode(&[b"SET", b"k", b"v"]),
        common::encode(&[b"MSET", b"a", b"1", b"age", b"2"]),
        common::encode(&[b"GET", b"k"]),
        b"PING\r\n".to_vec(),
        common::encode(&[b"CONFIG", b"GET", b"*"]),
    ];
    let mut handles = Vec::new();
    for t in 0..4 {
        let mut cases = Vec::new();
        for _ in 0..50 {
            let mut buf = Vec::new();
            match rng.below(3) {
                0 => {
                    let n = rng.below(300);
                    buf.extend((0..n).map(|_| rng.next() as u8));
                }
                1 => {
                    let v = &valid[rng.below(valid.len())];
                    buf.extend_from_slice(&v[..rng.below(v.len())]);
                }
                _ => {
                    let v = &valid[rng.below(valid.len())];
                    buf.extend_from_slice(v);
                    let i = rng.below(buf.len());
                    buf[i] = rng.next() as u8;
                }
            }
            cases.push(buf);
        }
        handles.push(std::thread::spawn(move || {
            for buf in cases {
                if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                    c.set_read_timeout(Some(Duration::from_millis(200))).ok();
                    let _ = c.write_all(&buf);
                    let mut sink = [0u8; 4096];
                    let _ = c.read(&mut sink);
                }
            }
            t
        }));
    }
    for h in handles {
        h.join().expect("fuzz thread");
    }
    assert!(s.is_running(), "server died:\n{}", s.log_text());
    let mut r = Raw::connect(port);
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(r.cmd(&["SET", "after", "fuzz"]), "+OK\r\n");
}

#[test]
fn limits_from_config() {
    let s = Server::slotcore(&["--proto-max-bulk-len", "1mb", "--client-query-buffer-limit", "1mb"]);
    let out = send_and_drain(s.port, b"*2\r\n$3\r\nGET\r\n$2000000\r\n");
    assert_eq!(out, "-ERR Protocol error: invalid bulk length\r\n");
    let mut r = s.raw();
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
}

/// Writes `pairs` SET/GET pairs (100-byte values) in one go before reading any reply, as
/// Redis's PIPELINING stresser does, then reads every reply. The replies exceed what the
/// socket buffers hold while the client does not read, so a server that stops reading while
/// its replies wait for the socket makes the write time out (bounded) instead of passing.
fn pipeline_before_reading(port: u16, pairs: usize) -> Vec<u8> {
    let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_write_timeout(Some(common::WAIT)).ok();
    c.set_read_timeout(Some(common::WAIT)).ok();
    let mut q = Vec::new();
    for i in 0..pairs {
        q.extend_from_slice(format!("SET key:{i} {i:0>100}\r\nGET key:{i}\r\n").as_bytes());
    }
    (&c).write_all(&q).expect("the server stopped reading while its replies waited");
    let mut r = std::io::BufReader::new(&c);
    let mut out = Vec::new();
    for _ in 0..pairs * 2 {
        common::read_reply(&mut r, &mut out).expect("read reply");
    }
    out
}

#[test]
fn server_keeps_reading_while_replies_wait() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let ours = pipeline_before_reading(s.port, 100_000);
    let theirs = pipeline_before_reading(o.port, 100_000);
    assert!(ours == theirs, "replies differ: {} bytes from slotcore, {} from redis-server", ours.len(), theirs.len());
    // The connection that pushed ~11 MB of pending replies left the server healthy.
    assert_eq!(s.raw().cmd(&["GET", "key:99999"]), format!("$100\r\n{:0>100}\r\n", 99999));
}

#[test]
fn nothing_after_quit_runs() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"SET a 1\r\nQUIT\r\nSET b 2\r\n".to_vec(), "b"),
        ([common::encode(&[b"QUIT"]), common::encode(&[b"SET", b"c", b"3"])].concat(), "c"),
        // A protocol error after QUIT is never read either.
        (b"PING\r\nQUIT\r\nSET d 4\r\n*1\r\nx".to_vec(), "d"),
        (b"MULTI\r\nSET e 5\r\nQUIT\r\nEXEC\r\n".to_vec(), "e"),
    ];
    for (input, key) in &cases {
        let ours = send_and_drain(s.port, input);
        let theirs = send_and_drain(o.port, input);
        let shown = String::from_utf8_lossy(input);
        assert_eq!(ours, theirs, "input {shown:?}");
        assert_eq!(s.raw().cmd(&["EXISTS", key]), ":0\r\n", "input {shown:?} ran past QUIT");
        assert_eq!(o.raw().cmd(&["EXISTS", key]), ":0\r\n");
    }
}
