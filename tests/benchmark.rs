//! The real redis-benchmark against slotcore (one and two shards): every test of the issue's
//! list runs without an error, pipelined and not, and what it wrote reads back intact.

mod common;
use common::Server;
use std::process::Command;

fn bench(port: u16, extra: &[&str]) -> String {
    let out = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-q", "-n", "20000", "-c", "20"])
        .args(extra)
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed:\n{text}");
    assert!(!text.contains("Error") && !text.contains("ERR") && !text.contains("WARNING"), "{text}");
    text
}

fn check_suite(s: &Server) {
    let tests = "ping_inline,ping_mbulk,set,get,incr,mset";
    for pipeline in ["1", "16"] {
        let text = bench(s.port, &["-t", tests, "-P", pipeline]);
        for name in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"] {
            let line = text.replace('\r', "\n");
            assert!(
                line.lines().any(|l| l.starts_with(&format!("{name}: ")) && l.contains("requests per second")),
                "no result for {name} with -P {pipeline}:\n{text}"
            );
        }
    }
}

#[test]
fn suite_runs_clean_with_one_shard() {
    let s = Server::slotcore_shards(1);
    check_suite(&s);
}

#[test]
fn suite_runs_clean_with_two_shards() {
    let s = Server::slotcore_shards(2);
    check_suite(&s);
}

#[test]
fn written_values_read_back() {
    let s = Server::slotcore_shards(2);
    // 1000 random keys of the form key:000000000123 with 100-byte values.
    bench(s.port, &["-t", "set", "-r", "1000", "-n", "20000", "-d", "100", "-P", "16"]);
    let mut r = s.raw();
    let n: usize = r.cmd(&["DBSIZE"]).trim_start_matches(':').trim().parse().expect("dbsize");
    assert!(n > 900 && n <= 1000, "DBSIZE {n}");
    // redis-benchmark's 100-byte payload, as a real redis-server stores it.
    let o = Server::redis(&[]);
    bench(o.port, &["-t", "set", "-r", "1", "-n", "10", "-d", "100"]);
    let expected = o.raw().cmd(&["GET", "key:000000000000"]);
    assert!(expected.starts_with("$100\r\n"), "{expected:?}");
    let keys = s.cli(&["--scan", "--pattern", "key:*"]);
    let mut checked = 0;
    for k in keys.lines() {
        assert_eq!(r.cmd(&["GET", k]), expected, "value of {k}");
        checked += 1;
    }
    assert_eq!(checked, n);
}

#[test]
fn collection_tests_of_the_default_suite_run_clean() {
    let s = Server::slotcore_shards(2);
    let tests = "lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300";
    for pipeline in ["1", "16"] {
        let text = bench(s.port, &["-t", tests, "-n", "5000", "-P", pipeline]);
        for name in
            ["LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN", "LRANGE_100", "LRANGE_300"]
        {
            let text = text.replace('\r', "\n");
            assert!(
                text.lines().any(|l| l.starts_with(name) && l.contains("requests per second")),
                "no result for {name} with -P {pipeline}:\n{text}"
            );
        }
    }
}
