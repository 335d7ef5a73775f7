//! String commands compared with a real redis-server, byte for byte, on a two-shard slotcore.

mod common;
use common::{assert_same, Server};

fn both() -> (Server, Server) {
    (Server::slotcore_shards(2), Server::redis(&[]))
}

#[test]
fn set_get_and_options() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SET", "k", "v"],
            &["GET", "k"],
            &["GET", "missing"],
            &["SET", "k", "v2", "NX"],
            &["SET", "k", "v3", "XX"],
            &["SET", "nk", "v", "XX"],
            &["SET", "k", "v4", "GET"],
            &["SET", "nk2", "v", "GET"],
            &["SET", "k", "v", "NX", "XX"],
            &["SET", "k", "v", "EX", "0"],
            &["SET", "k", "v", "EX", "-1"],
            &["SET", "k", "v", "EX", "abc"],
            &["SET", "k", "v", "EX", "10", "PX", "100"],
            &["SET", "k", "v", "KEEPTTL", "EX", "10"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "BOGUS"],
            &["SET", "k", "v", "EX", "9223372036854775807"],
            &["SET", "k", "v", "PX", "100000", "GET"],
            &["SET", "k", "v", "NX", "GET"],
            &["SET", "k", "v", "EXAT", "1"],
            &["GET", "k"],
            &["SETNX", "a", "1"],
            &["SETNX", "a", "2"],
            &["SETEX", "e", "100", "v"],
            &["SETEX", "e", "0", "v"],
            &["SETEX", "e", "x", "v"],
            &["PSETEX", "e", "100000", "v"],
            &["GETSET", "a", "3"],
            &["GETSET", "nope", "3"],
            &["GETDEL", "a"],
            &["GETDEL", "a"],
            &["GETEX", "e"],
            &["GETEX", "e", "PERSIST"],
            &["GETEX", "e", "EX", "100"],
            &["GETEX", "e", "EX", "0"],
            &["GETEX", "e", "FOO"],
            &["GETEX", "nokey", "EX", "10"],
            &["GET"],
            &["SET", "k"],
        ],
    );
}

#[test]
fn multi_key_across_shards() {
    let (s, o) = both();
    // "a" and "age" live on different shards of a two-shard node.
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["MSET", "a", "1", "age", "2", "b", "3"],
            &["MGET", "a", "age", "b", "nokey"],
            &["MSET", "a"],
            &["MSET", "a", "1", "b"],
            &["MSETNX", "a", "x", "fresh", "y"],
            &["MGET", "a", "fresh"],
            &["MSETNX", "fresh1", "x", "fresh2", "y"],
            &["MGET", "fresh1", "fresh2"],
            &["DEL", "a", "age", "b"],
        ],
    );
}

#[test]
fn counters() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["INCR", "n"],
            &["INCRBY", "n", "10"],
            &["DECR", "n"],
            &["DECRBY", "n", "5"],
            &["INCRBY", "n", "abc"],
            &["DECRBY", "n", "-9223372036854775808"],
            &["SET", "n", "9223372036854775807"],
            &["INCR", "n"],
            &["SET", "s", "hello"],
            &["INCR", "s"],
            &["SET", "sp", " 1"],
            &["INCR", "sp"],
            &["INCRBYFLOAT", "f", "10.5"],
            &["INCRBYFLOAT", "f", "0.1"],
            &["INCRBYFLOAT", "f", "-5"],
            &["INCRBYFLOAT", "f", "0.25"],
            &["INCRBYFLOAT", "f", "abc"],
            &["INCRBYFLOAT", "f", "inf"],
            &["SET", "g", "1.5"],
            &["INCRBYFLOAT", "g", "1.5"],
            &["GET", "g"],
            &["INCRBYFLOAT", "s", "1"],
            &["SET", "x", "10"],
            &["INCRBYFLOAT", "x", "1"],
            // Long double arithmetic, strtold parsing and %.17Lf printing as Redis.
            &["SET", "big", "1e17"],
            &["INCRBYFLOAT", "big", "3006.9"],
            &["INCRBYFLOAT", "huge", "1e400"],
            &["INCRBYFLOAT", "hex", "0x10"],
            &["INCRBYFLOAT", "hex", " 1"],
            &["INCRBYFLOAT", "hex", "1e5000"],
            &["INCRBYFLOAT", "tiny", "1.1e-20"],
            &["INCRBYFLOAT", "neg", "-0.0"],
            &["INCRBYFLOAT", "f", "1.0000000000000002"],
            &["INCRBYFLOAT", "f", "-3.3333333333333333"],
            &["HINCRBYFLOAT", "h", "a", "1e17"],
            &["HINCRBYFLOAT", "h", "a", "3006.9"],
            &["HINCRBYFLOAT", "h", "a", "inf"],
            &["HINCRBYFLOAT", "h", "b", "0x1p-3"],
            &["HSET", "h", "c", "1e400"],
            &["HINCRBYFLOAT", "h", "c", "1"],
        ],
    );
}

#[test]
fn ranges_and_append() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SET", "s", "Hello World"],
            &["GETRANGE", "s", "0", "4"],
            &["GETRANGE", "s", "-5", "-1"],
            &["GETRANGE", "s", "5", "1"],
            &["GETRANGE", "s", "-1", "-5"],
            &["GETRANGE", "s", "0", "1000"],
            &["GETRANGE", "s", "x", "1"],
            &["GETRANGE", "nokey", "0", "1"],
            &["SUBSTR", "s", "0", "2"],
            &["APPEND", "s", "!!"],
            &["APPEND", "new", "abc"],
            &["STRLEN", "s"],
            &["STRLEN", "nokey"],
            &["SETRANGE", "s", "6", "Redis"],
            &["GET", "s"],
            &["SETRANGE", "pad", "5", "x"],
            &["GET", "pad"],
            &["SETRANGE", "s", "-1", "x"],
            &["SETRANGE", "s", "1", ""],
            &["SETRANGE", "s", "536870912", "x"],
            &["SET", "i", "123"],
            &["APPEND", "i", "4"],
            &["GET", "i"],
            &["SETRANGE", "i", "0", "9"],
            &["GET", "i"],
        ],
    );
}

#[test]
fn lcs_shapes() {
    let (s, o) = both();
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["MSET", "{l}1", "ohmytext", "{l}2", "mynewtext"],
            &["LCS", "{l}1", "{l}2"],
            &["LCS", "{l}1", "{l}2", "LEN"],
            &["LCS", "{l}1", "{l}2", "IDX"],
            &["LCS", "{l}1", "{l}2", "IDX", "MINMATCHLEN", "4"],
            &["LCS", "{l}1", "{l}2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
            &["LCS", "{l}1", "{l}2", "LEN", "IDX"],
            &["LCS", "{l}1", "{l}missing"],
            &["LCS", "{l}1", "{l}2", "BOGUS"],
        ],
    );
}
