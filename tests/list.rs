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

/// Lists of many quicklist nodes (8 KB each by default), elements bigger than a node, and a
/// count fill set with CONFIG SET: every reply as redis-server's.
#[test]
fn multi_node_lists_match_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let big = "x".repeat(20_000);
    let mid = "m".repeat(9_000);
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    for key in ["l", "f"] {
        if key == "f" {
            cmds.push(c(&["CONFIG", "SET", "list-max-ziplist-size", "5"]));
            cmds.push(c(&["CONFIG", "GET", "list-max-listpack-size"]));
        }
        for b in 0..30 {
            let mut push = c(&[if b % 3 == 0 { "LPUSH" } else { "RPUSH" }, key]);
            push.extend(
                (0..100).map(|i| if i % 10 == 0 { "dup".to_string() } else { format!("element:{}", b * 100 + i) }),
            );
            cmds.push(push);
        }
        cmds.extend([
            c(&["RPUSH", key, &big, "tail"]),
            c(&["LINSERT", key, "BEFORE", "element:1550", &mid]),
            c(&["LINSERT", key, "AFTER", "element:2222", "after-2222"]),
            c(&["LLEN", key]),
            c(&["LINDEX", key, "0"]),
            c(&["LINDEX", key, "1777"]),
            c(&["LINDEX", key, "-2"]),
            c(&["LRANGE", key, "1000", "1120"]),
            c(&["LRANGE", key, "-1500", "-1400"]),
            c(&["LSET", key, "1500", &big]),
            c(&["LINDEX", key, "1500"]),
            c(&["LSET", key, "1500", "small-again"]),
            c(&["LPOS", key, "element:7"]),
            c(&["LPOS", key, "dup", "RANK", "-3", "COUNT", "4"]),
            c(&["LPOS", key, "dup", "COUNT", "0", "MAXLEN", "1000"]),
            c(&["LREM", key, "-5", "dup"]),
            c(&["LREM", key, "7", "dup"]),
            c(&["LPOS", key, "dup", "COUNT", "0"]),
            c(&["LREM", key, "0", "dup"]),
            c(&["LLEN", key]),
            c(&["LTRIM", key, "120", "-130"]),
            c(&["LRANGE", key, "0", "-1"]),
            c(&["LPOP", key, "150"]),
            c(&["RPOP", key, "150"]),
            c(&["LMOVE", key, key, "LEFT", "RIGHT"]),
            c(&["LRANGE", key, "-3", "-1"]),
            c(&["LLEN", key]),
        ]);
    }
    let refs: Vec<Vec<&str>> = cmds.iter().map(|v| v.iter().map(String::as_str).collect()).collect();
    let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    assert_same(&mut s.raw(), &mut o.raw(), &slices);
}

/// Moving a list's only element onto itself keeps the key and its expiry (RPOPLPUSH, LMOVE,
/// and BLMOVE served by a push), as redis-server: until 2026-12-07 the pop deleted the emptied
/// key first and the push made a new one without the TTL (found by the differential test).
#[test]
fn rotating_a_one_element_list_keeps_its_expiry() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    assert_same(
        &mut s.raw(),
        &mut o.raw(),
        &[
            &["RPUSH", "l", "a"],
            &["EXPIRE", "l", "1000"],
            &["RPOPLPUSH", "l", "l"],
            &["TTL", "l"],
            &["LMOVE", "l", "l", "LEFT", "RIGHT"],
            &["LMOVE", "l", "l", "RIGHT", "LEFT"],
            &["TTL", "l"],
            &["LRANGE", "l", "0", "-1"],
            &["MULTI"],
            &["DEL", "l"],
            &["RPUSH", "l", "b"],
            &["EXPIRE", "l", "500"],
            &["BLMOVE", "l", "l", "LEFT", "LEFT", "0"],
            &["EXEC"],
            &["TTL", "l"],
        ],
    );
}
