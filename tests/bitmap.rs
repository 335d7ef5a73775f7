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
