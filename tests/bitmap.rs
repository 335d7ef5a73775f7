//! Bitmap commands compared with a real redis-server, byte for byte.

mod common;
use common::{assert_same, Server};

#[test]
fn bitmap_commands_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["SETBIT", "b", "7", "1"],
            &["SETBIT", "b", "7", "0"],
            &["SETBIT", "b", "100", "1"],
            &["SETBIT", "b", "4294967296", "1"],
            &["SETBIT", "b", "-1", "1"],
            &["SETBIT", "b", "1", "2"],
            &["GETBIT", "b", "100"],
            &["GETBIT", "b", "99999"],
            &["GETBIT", "b", "x"],
            &["GET", "b"],
            &["SET", "s", "foobar"],
            &["BITCOUNT", "s"],
            &["BITCOUNT", "s", "1", "1"],
            &["BITCOUNT", "s", "-2", "-1"],
            &["BITCOUNT", "s", "5", "30", "BIT"],
            &["BITCOUNT", "s", "0"],
            &["BITCOUNT", "s", "0", "-1", "FOO"],
            &["BITCOUNT", "s", "x", "1"],
            &["BITCOUNT", "nokey"],
            &["BITPOS", "s", "1"],
            &["BITPOS", "s", "0"],
            &["BITPOS", "s", "1", "2"],
            &["BITPOS", "s", "1", "2", "-1", "BIT"],
            &["BITPOS", "s", "0", "-3", "-1"],
            &["BITPOS", "s", "2"],
            &["BITPOS", "s", "1", "x"],
            &["BITPOS", "nokey", "0"],
            &["BITPOS", "nokey", "1"],
            &["SET", "ones", "\u{ff}"],
            &["BITPOS", "ones", "0"],
            &["BITPOS", "ones", "0", "0", "-1"],
            &["SET", "age", "abc"],
            &["BITOP", "AND", "dest", "s", "age"],
            &["GET", "dest"],
            &["BITOP", "OR", "dest", "s", "age", "nokey"],
            &["GET", "dest"],
            &["BITOP", "XOR", "dest", "s", "age"],
            &["GET", "dest"],
            &["BITOP", "NOT", "dest", "s"],
            &["GET", "dest"],
            &["BITOP", "NOT", "dest", "s", "age"],
            &["BITOP", "FOO", "dest", "s"],
            &["BITOP", "AND", "dest", "nokey"],
            &["EXISTS", "dest"],
            &["HSET", "h", "f", "v"],
            &["SETBIT", "h", "1", "1"],
            &["BITCOUNT", "h"],
        ],
    );
}

#[test]
fn bitfield_matches_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "u4", "0", "GET", "i8", "0"],
            &["BITFIELD", "bf", "INCRBY", "i8", "0", "100"],
            &["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "100"],
            &["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "100"],
            &["BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u2", "#3", "5", "GET", "u2", "#3"],
            &["BITFIELD", "bf", "SET", "u8", "#2", "300"],
            &["BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "u8", "#2", "300", "SET", "i64", "64", "-5"],
            &["BITFIELD", "bf", "GET", "i64", "64", "GET", "u63", "1"],
            &["GET", "bf"],
            &["BITFIELD", "bf", "GET", "u64", "0"],
            &["BITFIELD", "bf", "GET", "x8", "0"],
            &["BITFIELD", "bf", "GET", "i8", "-1"],
            &["BITFIELD", "bf", "OVERFLOW", "FOO", "GET", "i8", "0"],
            &["BITFIELD", "bf", "SET", "i8", "0"],
            &["BITFIELD", "bf", "SET", "i8", "0", "x"],
            &["BITFIELD", "bf", "BOGUS"],
            &["BITFIELD", "bf"],
            &["BITFIELD", "fresh", "GET", "u8", "0"],
            &["EXISTS", "fresh"],
            &["BITFIELD_RO", "bf", "GET", "i8", "0"],
            &["BITFIELD_RO", "bf", "SET", "i8", "0", "1"],
            &["BITFIELD", "fail", "OVERFLOW", "FAIL", "SET", "u2", "0", "9"],
            &["EXISTS", "fail"],
        ],
    );
}
