//! XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS / HELP (t_stream.c `xinfoCommand`),
//! with Redis 7.0's fields in its order.
//!
//! `radix-tree-nodes` counts the nodes of the radix tree Redis would build over the node keys
//! (see [`rax_nodes`]).

use super::ctx::{ClientCtx, Ctx};
use super::errors;
use super::spec::{flags::*, keys, spec, CommandSpec, Exec, Plan};
use super::stream::{item_reply, items_reply, read_stream};
use super::stream_group::sub_syntax;
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use crate::storage::stream::{Stream, StreamId};
use bytes::Bytes;

/// XINFO's subcommands.
#[rustfmt::skip]
static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    spec("consumers", 4, READONLY, "@read @stream @slow", keys(2, 2, 1), Exec::Keyed(xinfo)),
    spec("groups", 3, READONLY, "@read @stream @slow", keys(2, 2, 1), Exec::Keyed(xinfo)),
    spec("stream", -3, READONLY, "@read @stream @slow", keys(2, 2, 1), Exec::Keyed(xinfo)),
    spec("help", 2, LOADING | STALE, "@stream @slow", super::spec::Keys::None, Exec::Node(help)),
];

/// XINFO.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: XINFO_SUBCOMMANDS, ..spec("xinfo", -2, 0, "@slow", super::spec::Keys::None, Exec::Container) },
];

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    const LINES: &[&str] = &[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];
    super::ctx::reply(Reply::Array(LINES.iter().map(|l| Reply::status(l)).collect()))
}

fn s(k: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(k.as_bytes()))
}

fn id(i: StreamId) -> Reply {
    Reply::Bulk(i.to_bytes())
}

fn opt_int(v: Option<u64>) -> Reply {
    v.map_or(Reply::Nil, |n| Reply::Int(n as i64))
}

/// Nodes of Redis's radix tree holding these 16-byte keys: a compressed trie where a run of
/// single-child bytes is one node and every key ends in its own leaf node.
pub fn rax_nodes(keys: &[[u8; 16]]) -> usize {
    fn count(keys: &[[u8; 16]], depth: usize) -> usize {
        // `keys` share their first `depth` bytes; this is one node (plus the subtree).
        if keys.is_empty() {
            return 0;
        }
        if depth == 16 {
            return 1;
        }
        // Compressed run: bytes all keys share.
        let mut d = depth;
        if keys.len() > 1 {
            while d < 16 && keys.iter().all(|k| k[d] == keys[0][d]) {
                d += 1;
            }
        } else {
            return 2;
        }
        let extra = usize::from(d > depth);
        if d == 16 {
            return 1 + extra;
        }
        // Branching node at depth d: one child per distinct byte.
        let mut n = 1 + extra;
        let mut i = 0;
        while i < keys.len() {
            let mut j = i;
            while j < keys.len() && keys[j][d] == keys[i][d] {
                j += 1;
            }
            n += count(&keys[i..j], d + 1);
            i = j;
        }
        n
    }
    if keys.is_empty() {
        return 1;
    }
    count(keys, 0)
}

fn stream_info(st: &Stream, args: &[Bytes]) -> Reply {
    let opts = &args[3..];
    let (full, count) = match opts.len() {
        0 => (false, 10),
        1 | 3 if eq_ic(&opts[0], "full") => {
            if opts.len() == 3 {
                if !eq_ic(&opts[1], "count") {
                    return sub_syntax(args);
                }
                match parse_i64(&opts[2]) {
                    Some(n) if n < 0 => (true, 10),
                    Some(n) => (true, n as usize),
                    None => return Reply::err(errors::NOT_INTEGER),
                }
            } else {
                (true, 10)
            }
        }
        _ => return sub_syntax(args),
    };
    let keys: Vec<[u8; 16]> = st.nodes.keys().map(|k| k.encode()).collect();
    let mut m = vec![
        (s("length"), Reply::Int(st.length as i64)),
        (s("radix-tree-keys"), Reply::Int(st.nodes.len() as i64)),
        (s("radix-tree-nodes"), Reply::Int(rax_nodes(&keys) as i64)),
        (s("last-generated-id"), id(st.last_id)),
        (s("max-deleted-entry-id"), id(st.max_deleted_id)),
        (s("entries-added"), Reply::Int(st.entries_added as i64)),
        (s("recorded-first-entry-id"), id(st.first_id)),
    ];
    if !full {
        m.push((s("groups"), Reply::Int(st.groups.len() as i64)));
        let first = st.range(StreamId::MIN, StreamId::MAX, 1, false).pop();
        let last = st.range(StreamId::MIN, StreamId::MAX, 1, true).pop();
        m.push((s("first-entry"), first.map_or(Reply::Nil, |(i, p)| item_reply(i, p))));
        m.push((s("last-entry"), last.map_or(Reply::Nil, |(i, p)| item_reply(i, p))));
        return Reply::Map(m);
    }
    m.push((s("entries"), items_reply(st.range(StreamId::MIN, StreamId::MAX, count, false))));
    let limit = if count == 0 { usize::MAX } else { count };
    let groups = st
        .groups
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pel
                .iter()
                .take(limit)
                .map(|(i, n)| {
                    Reply::Array(vec![
                        id(*i),
                        Reply::Bulk(Bytes::copy_from_slice(&n.consumer)),
                        Reply::Int(n.delivery_time as i64),
                        Reply::Int(n.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cn, c)| {
                    let cp = c
                        .pel
                        .iter()
                        .take(limit)
                        .map(|i| {
                            let n = g.pel.get(i);
                            Reply::Array(vec![
                                id(*i),
                                Reply::Int(n.map_or(0, |n| n.delivery_time as i64)),
                                Reply::Int(n.map_or(0, |n| n.delivery_count as i64)),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        (s("name"), Reply::Bulk(Bytes::copy_from_slice(cn))),
                        (s("seen-time"), Reply::Int(c.seen_time as i64)),
                        (s("pel-count"), Reply::Int(c.pel.len() as i64)),
                        (s("pending"), Reply::Array(cp)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                (s("name"), Reply::Bulk(Bytes::copy_from_slice(name))),
                (s("last-delivered-id"), id(g.last_id)),
                (s("entries-read"), opt_int(g.entries_read)),
                (s("lag"), opt_int(st.group_lag(g))),
                (s("pel-count"), Reply::Int(g.pel.len() as i64)),
                (s("pending"), Reply::Array(pending)),
                (s("consumers"), Reply::Array(consumers)),
            ])
        })
        .collect();
    m.push((s("groups"), Reply::Array(groups)));
    Reply::Map(m)
}

fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let st = match read_stream(ctx, &args[2]) {
        Err(e) => return e,
        Ok(None) => return Reply::err(errors::NO_SUCH_KEY),
        Ok(Some(st)) => st,
    };
    let opt = &args[1];
    if eq_ic(opt, "consumers") && args.len() == 4 {
        let Some(g) = st.groups.get(&args[3][..]) else {
            return Reply::error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&args[3]),
                String::from_utf8_lossy(&args[2])
            ));
        };
        Reply::Array(
            g.consumers
                .iter()
                .map(|(n, c)| {
                    Reply::Map(vec![
                        (s("name"), Reply::Bulk(Bytes::copy_from_slice(n))),
                        (s("pending"), Reply::Int(c.pel.len() as i64)),
                        (s("idle"), Reply::Int((now as i64 - c.seen_time as i64).max(0))),
                    ])
                })
                .collect(),
        )
    } else if eq_ic(opt, "groups") && args.len() == 3 {
        Reply::Array(
            st.groups
                .iter()
                .map(|(n, g)| {
                    Reply::Map(vec![
                        (s("name"), Reply::Bulk(Bytes::copy_from_slice(n))),
                        (s("consumers"), Reply::Int(g.consumers.len() as i64)),
                        (s("pending"), Reply::Int(g.pel.len() as i64)),
                        (s("last-delivered-id"), id(g.last_id)),
                        (s("entries-read"), opt_int(g.entries_read)),
                        (s("lag"), opt_int(st.group_lag(g))),
                    ])
                })
                .collect(),
        )
    } else if eq_ic(opt, "stream") {
        stream_info(st, args)
    } else {
        sub_syntax(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rax_node_counts() {
        let k = |ms: u64| StreamId::new(ms, 0).encode();
        assert_eq!(rax_nodes(&[]), 1);
        assert_eq!(rax_nodes(&[k(1)]), 2);
    }
}
