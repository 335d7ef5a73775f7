//! List commands compared with a real redis-server, byte for byte (lists are ordered).

mod common;
use common::{assert_same, Server};

#[test]
fn list_commands_match_redis() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    // "a" and "age" live on different shards of a two-shard node.
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["RPUSH", "a", "x", "y", "z", "x"],
            &["LPUSH", "a", "w"],
            &["LPUSHX", "nokey", "v"],
            &["RPUSHX", "a", "end"],
            &["LRANGE", "a", "0", "-1"],
            &["LRANGE", "a", "-3", "2"],
            &["LRANGE", "a", "5", "1"],
            &["LRANGE", "a", "x", "1"],
            &["LLEN", "a"],
            &["LINDEX", "a", "-1"],
            &["LINDEX", "a", "99"],
            &["LSET", "a", "1", "X"],
            &["LSET", "a", "99", "X"],
            &["LSET", "nokey", "0", "X"],
            &["LINSERT", "a", "BEFORE", "z", "b4"],
            &["LINSERT", "a", "AFTER", "nope", "q"],
            &["LINSERT", "a", "MIDDLE", "z", "q"],
            &["LINSERT", "nokey", "AFTER", "z", "q"],
            &["LPOS", "a", "x"],
            &["LPOS", "a", "x", "RANK", "-1"],
            &["LPOS", "a", "x", "COUNT", "0"],
            &["LPOS", "a", "x", "RANK", "0"],
            &["LPOS", "a", "x", "COUNT", "-1"],
            &["LPOS", "a", "x", "MAXLEN", "2"],
            &["LPOS", "a", "x", "BOGUS", "1"],
            &["LREM", "a", "-1", "x"],
            &["LRANGE", "a", "0", "-1"],
            &["LTRIM", "a", "1", "-2"],
            &["LRANGE", "a", "0", "-1"],
            &["LMOVE", "a", "age", "LEFT", "RIGHT"],
            &["LMOVE", "a", "age", "UP", "LEFT"],
            &["RPOPLPUSH", "a", "age"],
            &["LRANGE", "age", "0", "-1"],
            &["LMPOP", "2", "nokey", "age", "LEFT", "COUNT", "5"],
            &["LMPOP", "1", "nokey", "LEFT"],
            &["LMPOP", "0", "a", "LEFT"],
            &["LMPOP", "1", "a", "MIDDLE"],
            &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
            &["LPOP", "a", "-1"],
            &["LPOP", "a", "2"],
            &["RPOP", "a"],
            &["LPOP", "nokey"],
            &["LPOP", "nokey", "2"],
            &["EXISTS", "a", "age"],
            &["RPUSH", "q", "1", "2", "3"],
            &["TYPE", "q"],
            &["OBJECT", "ENCODING", "q"],
            &["SET", "str", "v"],
            &["LPUSH", "str", "x"],
            &["LRANGE", "str", "0", "1"],
            &["LTRIM", "q", "5", "10"],
            &["EXISTS", "q"],
        ],
    );
}
