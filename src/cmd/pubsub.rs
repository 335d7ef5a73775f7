//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB.
//!
//! Subscriptions live on the subscriber's home shard (`pubsub_reg`); PUBLISH runs
//! [`deliver`] on every shard (see `Plan::Publish`) and, in cluster mode, goes to the other
//! nodes over the bus. Replies follow Redis 7.0 byte for byte, RESP2 and RESP3.

use super::ctx::{reply, ClientCtx, ClientState, ShardState};
use super::pubsub_reg::{Delivery, Kind, Subs};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use crate::protocol::Reply;
use bytes::Bytes;

const ACL_SLOW: &str = "@pubsub @slow";
const ACL_FAST: &str = "@pubsub @fast";
const SUBF: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

#[rustfmt::skip]
static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec("channels", -2, PUBSUB | LOADING | STALE, ACL_SLOW, Keys::None, Exec::Node(channels)),
    spec("numsub", -2, PUBSUB | LOADING | STALE, ACL_SLOW, Keys::None, Exec::Node(numsub)),
    spec("numpat", 2, PUBSUB | LOADING | STALE, ACL_SLOW, Keys::None, Exec::Node(numpat)),
    spec("shardchannels", -2, PUBSUB | LOADING | STALE, ACL_SLOW, Keys::None, Exec::Node(shardchannels)),
    spec("shardnumsub", -2, PUBSUB | LOADING | STALE, ACL_SLOW, Keys::None, Exec::Node(shardnumsub)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
];

/// The pub/sub family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("subscribe", -2, SUBF, ACL_SLOW, Keys::None, Exec::Node(subscribe)),
    spec("unsubscribe", -1, SUBF, ACL_SLOW, Keys::None, Exec::Node(unsubscribe)),
    spec("psubscribe", -2, SUBF, ACL_SLOW, Keys::None, Exec::Node(psubscribe)),
    spec("punsubscribe", -1, SUBF, ACL_SLOW, Keys::None, Exec::Node(punsubscribe)),
    spec("ssubscribe", -2, SUBF, ACL_SLOW, Keys::Range { first: 1, last: -1, step: 1 }, Exec::Node(ssubscribe)),
    spec("sunsubscribe", -1, SUBF, ACL_SLOW, Keys::Range { first: 1, last: -1, step: 1 }, Exec::Node(sunsubscribe)),
    spec("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, ACL_FAST, Keys::None, Exec::Node(publish)),
    spec("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, ACL_FAST, Keys::Range { first: 1, last: 1, step: 1 }, Exec::Node(spublish)),
    CommandSpec { subcommands: PUBSUB_SUBCOMMANDS, ..spec("pubsub", -2, 0, "@slow", Keys::None, Exec::Container) },
];

/// Commands a RESP2 client may run while subscribed (Redis 7.0's `processCommand`).
pub const ALLOWED_WHILE_SUBSCRIBED: &[&str] =
    &["ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe", "psubscribe", "punsubscribe", "quit", "reset"];

/// The error for other commands in RESP2 subscribed mode.
pub fn not_allowed(fullname: &str) -> Reply {
    Reply::error(format!(
        "ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// True when the client has a subscription of any kind (Redis's `CLIENT_PUBSUB`).
pub fn subscribed(c: &ClientState) -> bool {
    c.pubsub.as_ref().is_some_and(|s| s.total() > 0)
}

fn kind_words(k: Kind) -> (&'static [u8], &'static [u8]) {
    match k {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

/// The count a confirmation carries: channels + patterns, or shard channels alone.
fn count_for(s: &Subs, k: Kind) -> i64 {
    match k {
        Kind::Shard => s.shard.len() as i64,
        _ => (s.channels.len() + s.patterns.len()) as i64,
    }
}

fn confirm(out: &mut Vec<u8>, resp3: bool, word: &'static [u8], name: Option<Bytes>, count: i64) {
    let name = name.map_or(Reply::Nil, Reply::Bulk);
    Reply::Push(vec![Reply::Bulk(Bytes::from_static(word)), name, Reply::Int(count)]).encode(out, resp3);
}

fn sub(ctx: &mut ClientCtx<'_>, args: &[Bytes], k: Kind) -> Plan {
    let resp3 = ctx.client.resp3;
    let id = ctx.client.id;
    let fd = ctx.client.fd;
    let subs = ctx.client.pubsub.get_or_insert_with(|| Box::new(Subs::new(fd)));
    let mut out = Vec::new();
    for name in &args[1..] {
        if subs.set(k).insert(name.clone()) {
            ctx.shard.pubsub.add(k, name, id, &subs.outbox);
            ctx.shard.node.pubsub.add(k, name);
        }
        confirm(&mut out, resp3, kind_words(k).0, Some(name.clone()), count_for(subs, k));
    }
    reply(Reply::Raw(Bytes::from(out)))
}

/// Removes one subscription from the shard and node; returns whether the client had it.
fn drop_one(shard: &mut ShardState, subs: &mut Subs, k: Kind, id: u64, name: &[u8]) -> bool {
    if !subs.set(k).remove(name) {
        return false;
    }
    shard.pubsub.remove(k, name, id);
    shard.node.pubsub.remove(k, name);
    true
}

fn unsub(ctx: &mut ClientCtx<'_>, args: &[Bytes], k: Kind) -> Plan {
    let resp3 = ctx.client.resp3;
    let id = ctx.client.id;
    let word = kind_words(k).1;
    let mut out = Vec::new();
    // A client that never subscribed gets the confirmations without growing any state.
    let Some(subs) = ctx.client.pubsub.as_mut() else {
        if args.len() == 1 {
            confirm(&mut out, resp3, word, None, 0);
        }
        for name in &args[1..] {
            confirm(&mut out, resp3, word, Some(name.clone()), 0);
        }
        return reply(Reply::Raw(Bytes::from(out)));
    };
    let names: Vec<Bytes> = if args.len() > 1 { args[1..].to_vec() } else { subs.set(k).iter().cloned().collect() };
    if names.is_empty() {
        confirm(&mut out, resp3, word, None, count_for(subs, k));
    }
    for name in names {
        drop_one(ctx.shard, subs, k, id, &name);
        confirm(&mut out, resp3, word, Some(name), count_for(subs, k));
    }
    reply(Reply::Raw(Bytes::from(out)))
}

/// Redis's `removeChannelsInSlot`: the shard channels (with subscribers on this shard) whose
/// slot `lost` names stop here; each subscriber gets `sunsubscribe` with the shard channels
/// it has left, as Redis unsubscribes them when it deletes a slot it (or its master) served.
pub fn drop_shard_channels(st: &mut ShardState, lost: impl Fn(u16) -> bool) {
    let mut names: Vec<Bytes> =
        st.pubsub.shard_channels().filter(|c| lost(crate::cluster::key_slot(c))).cloned().collect();
    // In Redis's order: by slot, then by name.
    names.sort_by_cached_key(|c| (crate::cluster::key_slot(c), c.clone()));
    let limit = pubsub_limit(st);
    for name in names {
        for (id, outbox) in st.pubsub.shard_subscribers(&name) {
            let Some(client) = st.clients.get(&id).cloned() else {
                st.pubsub.remove(Kind::Shard, &name, id);
                continue;
            };
            let Ok(mut c) = client.try_borrow_mut() else {
                tracing::debug!("Shard channel of a lost slot kept for a busy client {}", id);
                continue;
            };
            let Some(subs) = c.pubsub.as_mut() else { continue };
            if drop_one(st, subs, Kind::Shard, id, &name) {
                let left = subs.shard.len() as u64;
                let d = Delivery {
                    kind: Kind::Shard,
                    pattern: None,
                    channel: name.clone(),
                    message: Bytes::new(),
                    unsubscribed: Some(left),
                };
                outbox.push(d, limit);
            }
        }
    }
}

/// Drops every subscription of a client (RESET, disconnect), without replies.
pub fn drop_all(shard: &mut ShardState, client: &mut ClientState) {
    let id = client.id;
    let Some(mut subs) = client.pubsub.take() else { return };
    for k in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let names: Vec<Bytes> = subs.set(k).iter().cloned().collect();
        for n in names {
            drop_one(shard, &mut subs, k, id, &n);
        }
    }
}

fn subscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    sub(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    sub(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    // Inside EXEC the client is deny-blocking; SUBSCRIBE is exempt there, SSUBSCRIBE is not.
    if ctx.client.multi.is_some() {
        return reply(Reply::err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    sub(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    unsub(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    unsub(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    unsub(ctx, args, Kind::Shard)
}

fn publish(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Publish { sharded: false }
}

fn spublish(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Publish { sharded: true }
}

/// The hard limit of `client-output-buffer-limit pubsub` in bytes (0 = none).
pub(crate) fn pubsub_limit(st: &ShardState) -> usize {
    let v = st.config.get("client-output-buffer-limit").unwrap_or("");
    let words: Vec<&str> = v.split_whitespace().collect();
    words
        .chunks(4)
        .find(|c| c.len() == 4 && c[0].eq_ignore_ascii_case("pubsub"))
        .and_then(|c| crate::config::registry::parse_memory(c[1]))
        .unwrap_or(32 << 20) as usize
}

/// Delivers `[_, channel, message]` of a PUBLISH to this shard's subscribers; replies with
/// the number of receivers (runs on every shard).
pub fn deliver(st: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    propagate(st, db, args);
    deliver_quiet(st, db, args)
}

/// As [`deliver`] for SPUBLISH (shard channel subscribers).
pub fn deliver_shard(st: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    propagate(st, db, args);
    deliver_shard_quiet(st, db, args)
}

/// Outside cluster mode Redis propagates PUBLISH and SPUBLISH to replicas, never to the AOF
/// (`forceCommandPropagation` with the replication target only), so subscribers of a replica
/// hear them too (Sentinel's hellos): recorded once, by shard 0. A script records its own
/// (with its other effects, see `runtime::script_exec`) and delivers them quietly.
fn propagate(st: &mut ShardState, db: usize, args: &[Bytes]) {
    if st.id == 0 && st.node.cluster.is_none() {
        st.changes.record_to(db, vec![args.to_vec()], crate::replication::feed::Unit::TO_REPLICAS);
    }
}

/// Delivers a PUBLISH to this shard's subscribers without recording it (a script's).
pub fn deliver_quiet(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let limit = pubsub_limit(st);
    Reply::Int(st.pubsub.publish(&args[1], &args[2], limit) as i64)
}

/// As [`deliver_quiet`] for SPUBLISH.
pub fn deliver_shard_quiet(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let limit = pubsub_limit(st);
    Reply::Int(st.pubsub.publish_shard(&args[1], &args[2], limit) as i64)
}

/// Delivers a batch `[_, kind, channel, message, kind, ...]` of a script's messages to this
/// shard's subscribers, in order (`kind`: `s` for SPUBLISH, else PUBLISH), unrecorded.
pub fn deliver_batch(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let limit = pubsub_limit(st);
    for m in args[1..].chunks_exact(3) {
        if &m[0][..] == b"s" {
            st.pubsub.publish_shard(&m[1], &m[2], limit);
        } else {
            st.pubsub.publish(&m[1], &m[2], limit);
        }
    }
    Reply::Ok
}

/// Redis's `addReplySubcommandSyntaxError`.
fn syntax(sub: &[u8]) -> Reply {
    let sub = String::from_utf8_lossy(sub);
    Reply::error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."))
}

fn names_reply(mut v: Vec<Bytes>) -> Reply {
    v.sort_unstable();
    Reply::Array(v.into_iter().map(Reply::Bulk).collect())
}

fn channels(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return reply(syntax(&args[1]));
    }
    reply(names_reply(ctx.node().pubsub.names(Kind::Channel, args.get(2).map(|p| &p[..]))))
}

fn shardchannels(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() > 3 {
        return reply(syntax(&args[1]));
    }
    reply(names_reply(ctx.node().pubsub.names(Kind::Shard, args.get(2).map(|p| &p[..]))))
}

fn counts(ctx: &mut ClientCtx<'_>, args: &[Bytes], k: Kind) -> Plan {
    let idx = &ctx.node().pubsub;
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for name in &args[2..] {
        out.push(Reply::Bulk(name.clone()));
        out.push(Reply::Int(idx.count(k, name) as i64));
    }
    reply(Reply::Array(out))
}

fn numsub(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    counts(ctx, args, Kind::Channel)
}

fn shardnumsub(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    counts(ctx, args, Kind::Shard)
}

fn numpat(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    reply(Reply::Int(ctx.node().pubsub.len(Kind::Pattern) as i64))
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::pubsub_reg::{NodeIndex, Outbox, Registry};
    use super::*;
    use std::rc::Rc;

    #[test]
    fn registry_delivers_to_channels_and_patterns() {
        let mut r = Registry::default();
        let a = Rc::new(Outbox::default());
        let b = Rc::new(Outbox::default());
        r.add(Kind::Channel, &Bytes::from_static(b"news"), 1, &a);
        r.add(Kind::Pattern, &Bytes::from_static(b"n*"), 1, &a);
        r.add(Kind::Pattern, &Bytes::from_static(b"x*"), 2, &b);
        let n = r.publish(&Bytes::from_static(b"news"), &Bytes::from_static(b"hi"), 0);
        assert_eq!(n, 2);
        r.remove(Kind::Channel, b"news", 1);
        assert_eq!(r.publish(&Bytes::from_static(b"news"), &Bytes::from_static(b"hi"), 0), 1);
        assert_eq!(r.publish_shard(&Bytes::from_static(b"news"), &Bytes::from_static(b"hi"), 0), 0);
    }

    #[test]
    fn outbox_overflow_marks_client() {
        let o = Outbox::default();
        let d = super::super::pubsub_reg::Delivery {
            kind: Kind::Channel,
            pattern: None,
            channel: Bytes::from_static(b"c"),
            message: Bytes::from(vec![0u8; 100]),
            unsubscribed: None,
        };
        o.push(d.clone(), 300);
        o.push(d.clone(), 300);
        assert!(!o.overflowed.get());
        o.push(d, 300);
        assert!(o.overflowed.get());
    }

    #[test]
    fn node_index_counts() {
        let i = NodeIndex::default();
        i.add(Kind::Channel, &Bytes::from_static(b"a"));
        i.add(Kind::Channel, &Bytes::from_static(b"a"));
        i.add(Kind::Channel, &Bytes::from_static(b"b"));
        assert_eq!(i.count(Kind::Channel, b"a"), 2);
        assert_eq!(i.len(Kind::Channel), 2);
        i.remove(Kind::Channel, b"a");
        i.remove(Kind::Channel, b"a");
        assert_eq!(i.len(Kind::Channel), 1);
        assert_eq!(i.names(Kind::Channel, Some(b"b*")), vec![Bytes::from_static(b"b")]);
    }
}
