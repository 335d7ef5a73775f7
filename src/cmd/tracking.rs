//! CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO and the hooks that keep Redis 7.0's
//! server-assisted client-side caching going (state: `cmd::tracking_reg`).
//!
//! Where the hooks sit:
//! - remembering: the connection marks a read-only keyed command of a default-mode tracker
//!   ([`remember_for`] into `RemoteCmd::remember`), and the shard that runs it records its keys
//!   right after it ([`remember`]), in the same step, so no write can slip in between;
//! - invalidating: `cmd::execute_keyed` calls [`written`] when a write signals its keys (Redis's
//!   `signalModifiedKey`), `ShardState::log_expired` calls [`expired`] for lazily and actively
//!   expired keys, the write-back of cross-shard work calls [`written_keys`], FLUSHDB/FLUSHALL
//!   call [`flushed`] on every shard; BCAST keys gathered during an operation go out in one
//!   message per prefix match when the operation ends ([`flush_bcast`]);
//! - delivery: `conn::pubsub` writes a client's [`Push`](super::tracking_reg::Push)es when its
//!   inbox wakes it, after the replies it already has (so a client's own invalidation follows
//!   its command's reply, as Redis defers it).
//!
//! The writer's id (for NOLOOP) is the connection's, handed to the executing shard with the
//! command and kept in a thread-local for the duration of one command ([`Writer`]).

use super::ctx::{reply, ClientCtx, ClientState, ShardState};
use super::errors;
use super::notify::Before;
use super::spec::{flags, CommandSpec, Plan};
use super::tracking_reg::{Inbox, Tracker};
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;
use std::cell::Cell;
use std::sync::Arc;

/// A connection's own tracking state (kept small: one Box while tracking or receiving).
#[derive(Debug)]
pub struct ClientTracking {
    /// Where invalidations (and redir-broken notices) for this connection arrive.
    pub inbox: Arc<Inbox>,
    /// CLIENT TRACKING ON.
    pub on: bool,
    /// BCAST mode (nothing is remembered per key).
    pub bcast: bool,
    /// OPTIN mode.
    pub optin: bool,
    /// OPTOUT mode.
    pub optout: bool,
    /// CLIENT CACHING was given for the next command.
    pub caching: bool,
    /// BCAST prefixes registered (their count, for the client's memory figure).
    pub prefixes: usize,
}

thread_local! {
    static WRITER: Cell<u64> = const { Cell::new(0) };
}

/// Sets the id of the client whose command runs on this thread until dropped.
pub struct Writer(u64);

impl Writer {
    /// The command of client `id` (0: unknown) runs now.
    pub fn set(id: u64) -> Writer {
        Writer(WRITER.with(|w| w.replace(id)))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        WRITER.with(|w| w.set(self.0));
    }
}

/// The id of the client whose command runs on this thread (0: unknown).
pub(crate) fn writer() -> u64 {
    WRITER.with(|w| w.get())
}

/// Whether the keys of `spec` run by client `c` are to be remembered (Redis's
/// `trackingRememberKeys` conditions), and clears a one-shot CLIENT CACHING after any command
/// but CLIENT CACHING itself outside a transaction. Called once per routed command.
pub fn remember_for(c: &mut ClientState, spec: &CommandSpec, fullname: &str) -> bool {
    let in_multi = c.multi.is_some();
    let Some(t) = c.tracking.as_deref_mut() else { return false };
    let remember = t.on
        && !t.bcast
        && spec.has(flags::READONLY)
        && !spec.has(flags::PUBSUB)
        && !((t.optin && !t.caching) || (t.optout && t.caching));
    if fullname != "client|caching" && !in_multi {
        t.caching = false;
    }
    remember
}

/// CLIENT TRACKING inside a script: its commands write as the caller (NOLOOP), and the first
/// read-only command makes the caller remember the script's declared keys, as Redis does.
#[derive(Debug, Default)]
pub struct ScriptTracking {
    /// The calling client's id.
    pub caller: u64,
    /// The declared keys, while still to be remembered.
    keys: Option<Vec<Bytes>>,
}

impl ScriptTracking {
    /// For a script `job` called by `c`.
    pub fn for_caller(c: &mut ClientState, job: &super::scripting::ScriptJob) -> ScriptTracking {
        let remember = c
            .tracking
            .as_deref()
            .is_some_and(|t| t.on && !t.bcast && !((t.optin && !t.caching) || (t.optout && t.caching)));
        ScriptTracking { caller: c.id, keys: (remember && !job.keys.is_empty()).then(|| job.keys.clone()) }
    }

    /// After a command of the script ran on `st`.
    pub fn after(&mut self, st: &mut ShardState, spec: &CommandSpec) {
        if let Some(keys) = self.take_on_read(spec) {
            let mut args = vec![Bytes::new()];
            args.extend(keys);
            remember_keys(st, &args, 1..args.len(), self.caller);
        }
    }

    /// Once the script runs a read-only command (`spec`), the declared keys to remember, once:
    /// here ([`after`](Self::after)) or, for keys on other shards, on their owning shards
    /// ([`remember_requests`]).
    pub fn take_on_read(&mut self, spec: &CommandSpec) -> Option<Vec<Bytes>> {
        if !spec.has(flags::READONLY) {
            return None;
        }
        self.keys.take()
    }
}

/// The [`remember_here`] requests that make tracker `caller` remember `keys`: one per shard of
/// `shards` owning some of them (`shard_of` tells which), with args [caller, its keys...].
pub fn remember_requests(
    caller: u64,
    keys: &[Bytes],
    shards: impl IntoIterator<Item = usize>,
    shard_of: impl Fn(&[u8]) -> usize,
) -> Vec<(usize, Vec<Bytes>)> {
    shards
        .into_iter()
        .filter_map(|s| {
            let mut args = vec![Bytes::from(caller.to_string())];
            args.extend(keys.iter().filter(|k| shard_of(k) == s).cloned());
            (args.len() > 1).then_some((s, args))
        })
        .collect()
}

/// Remembers keys of this shard for a tracker, as another shard's work: args = [client id,
/// key...].
pub fn remember_here(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let id = args.first().and_then(|a| parse_i64(a)).unwrap_or(0) as u64;
    if id != 0 && args.len() > 1 {
        remember_keys(st, args, 1..args.len(), id);
    }
    Reply::Ok
}

/// After a read-only command of tracker `id` ran on this shard: remembers its keys.
pub fn remember(st: &mut ShardState, spec: &CommandSpec, args: &[Bytes], id: u64) {
    let Ok(idx) = spec.key_indexes(args) else { return };
    remember_keys(st, args, idx, id);
}

fn remember_keys(st: &mut ShardState, args: &[Bytes], idx: impl IntoIterator<Item = usize>, id: u64) {
    let dir = &st.node.tracking;
    for i in idx {
        let ids = match st.tracking.keys.get_mut(&args[i]) {
            Some(ids) => ids,
            None => {
                dir.total_keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                st.tracking.keys.entry(args[i].clone()).or_default()
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
            dir.total_items.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    limit_table(st);
}

/// The shard's periodic work: as Redis's cron, a lowered `tracking-table-max-keys` takes
/// effect without waiting for the next tracked read.
pub fn cron(st: &mut ShardState) {
    if st.tracking.keys.is_empty() {
        return;
    }
    limit_table(st);
}

/// Keeps the shard's table under `tracking-table-max-keys` (node-wide count) by invalidating
/// keys, as Redis evicts tracked keys.
fn limit_table(st: &mut ShardState) {
    let max: usize = st.config.get("tracking-table-max-keys").and_then(|v| v.parse().ok()).unwrap_or(0);
    if max == 0 {
        return;
    }
    while st.node.tracking.total_keys.load(std::sync::atomic::Ordering::Relaxed) > max {
        let Some(key) = st.tracking.keys.keys().next().cloned() else { return };
        invalidate(st, &key, 0);
    }
}

/// Redis's `trackingInvalidateKey` for one key this shard owns, written by client `by`.
fn invalidate(st: &mut ShardState, key: &Bytes, by: u64) {
    if let Some(keys) = st.tracking.signalled.as_mut() {
        keys.push(key.clone());
    }
    if st.node.tracking.has_bcast() {
        st.tracking.bcast.push((key.clone(), by));
    }
    let Some(ids) = st.tracking.keys.remove(key) else { return };
    st.node.tracking.total_keys.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    st.node.tracking.total_items.fetch_sub(ids.len(), std::sync::atomic::Ordering::Relaxed);
    for id in ids {
        if id == by && by != 0 && st.node.tracking.noloop(id) {
            continue;
        }
        st.node.tracking.send(id, Some(vec![key.clone()]), false);
    }
}

/// A write command that changed something signalled its keys (Redis's `signalModifiedKey`):
/// those [`signalled`] names, else all its keys.
pub fn written(st: &mut ShardState, spec: &CommandSpec, args: &[Bytes], reply: &Reply, before: &Before) {
    if !st.node.tracking.active() {
        return;
    }
    let by = writer();
    if let Some(keys) = signalled(spec.name, args, reply, before) {
        for k in keys {
            invalidate(st, &k, by);
        }
        return;
    }
    let Ok(idx) = spec.key_indexes(args) else { return };
    for i in idx {
        invalidate(st, &args[i], by);
    }
}

/// The keys a write that changed something signals when they are not all its keys: the
/// destination of the commands that only read their other keys, the key a multi-key pop
/// popped from, the keys DEL and UNLINK found (`before`), none for the writes Redis does not
/// signal. None: every key.
pub fn signalled(name: &str, args: &[Bytes], reply: &Reply, before: &Before) -> Option<Vec<Bytes>> {
    use super::notify::{geo_store_dest, mpop_key, sort_store_dest};
    let dest = match name {
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore"
        | "pfmerge" => args.get(1),
        "bitop" | "copy" => args.get(2),
        "sort" => sort_store_dest(args),
        "georadius" | "georadiusbymember" | "geosearchstore" => geo_store_dest(name, args),
        "lmpop" | "zmpop" | "blmpop" | "bzmpop" | "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            return Some(mpop_key(reply).into_iter().collect())
        }
        // The consumer-group commands change only groups, which Redis does not signal; XGROUP
        // CREATE .. MKSTREAM signals the stream it creates.
        // XSETID neither.
        "xack" | "xclaim" | "xautoclaim" | "xreadgroup" | "setid" | "destroy" | "createconsumer" | "delconsumer"
        | "xsetid" => return Some(Vec::new()),
        // A move signals its destination first, then its source.
        "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => {
            let (src, dst) = (args[1].clone(), args[2].clone());
            return Some(if src == dst { vec![dst] } else { vec![dst, src] });
        }
        // LTRIM of a missing key answers OK and signals nothing.
        "ltrim" => return Some(args.get(1).filter(|k| before.existed(k)).cloned().into_iter().collect()),
        "create" => return Some(args.get(2).filter(|k| !before.existed(k)).cloned().into_iter().collect()),
        "del" | "unlink" => {
            let mut found: Vec<Bytes> = Vec::new();
            for k in &args[1..] {
                if before.existed(k) && !found.contains(k) {
                    found.push(k.clone());
                }
            }
            return Some(found);
        }
        _ => return None,
    };
    Some(dest.cloned().into_iter().collect())
}

/// Keys written back by cross-shard work, or deleted by expiry.
pub fn written_keys(st: &mut ShardState, keys: &[Bytes]) {
    if !st.node.tracking.active() {
        return;
    }
    let by = writer();
    for k in keys {
        invalidate(st, k, by);
    }
}

/// Keys of this shard written by work on copies, as another shard's request: args = [writer
/// id, key...] (see `Shard::invalidate_in_order`).
pub fn invalidate_here(st: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let by = args.first().and_then(|a| parse_i64(a)).unwrap_or(0) as u64;
    let _writer = Writer::set(by);
    written_keys(st, args.get(1..).unwrap_or(&[]));
    Reply::Ok
}

/// Keys that expired (lazily or actively): invalidated with no writer.
pub fn expired(st: &mut ShardState, keys: &[Box<[u8]>]) {
    if !st.node.tracking.active() {
        return;
    }
    for k in keys {
        invalidate(st, &Bytes::copy_from_slice(k), 0);
    }
}

/// A key evicted: invalidated with no writer, as [`expired`]. Returns the key's copy the
/// messages share when some tracker was sent one (see `memory::in_flight`).
pub fn evicted(st: &mut ShardState, key: &[u8]) -> Option<Bytes> {
    if !st.node.tracking.active() {
        return None;
    }
    let copy = Bytes::copy_from_slice(key);
    invalidate(st, &copy, 0);
    (!copy.is_unique()).then_some(copy)
}

/// FLUSHDB/FLUSHALL on this shard: every tracking client whose home is this shard hears a
/// null invalidation, and the shard's table is emptied.
pub fn flushed(st: &mut ShardState) {
    let n = st.tracking.keys.len();
    if n > 0 {
        let items: usize = st.tracking.keys.values().map(Vec::len).sum();
        st.node.tracking.total_keys.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        st.node.tracking.total_items.fetch_sub(items, std::sync::atomic::Ordering::Relaxed);
        st.tracking.keys.clear();
    }
    if !st.node.tracking.active() {
        return;
    }
    let ids: Vec<u64> = st
        .clients
        .iter()
        .filter(|(_, c)| c.try_borrow().map_or(true, |c| c.tracking.as_ref().is_some_and(|t| t.on)))
        .map(|(&id, _)| id)
        .collect();
    for id in ids {
        st.node.tracking.send(id, None, false);
    }
}

/// At the end of an operation: the BCAST keys it wrote, one message per client with the keys
/// under its prefixes (without its own writes under NOLOOP).
pub fn flush_bcast(st: &mut ShardState) {
    if st.tracking.bcast.is_empty() {
        return;
    }
    // Redis keeps the keys per prefix in a radix tree: sorted, once each, with the last writer.
    let mut written: std::collections::BTreeMap<Bytes, u64> = Default::default();
    for (key, by) in std::mem::take(&mut st.tracking.bcast) {
        written.insert(key, by);
    }
    for (prefix, clients) in st.node.tracking.bcast_prefixes() {
        let under: Vec<(&Bytes, u64)> =
            written.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, &b)| (k, b)).collect();
        if under.is_empty() {
            continue;
        }
        for (id, noloop) in clients {
            let keys: Vec<Bytes> =
                under.iter().filter(|(_, b)| !(noloop && *b == id)).map(|(k, _)| (*k).clone()).collect();
            if !keys.is_empty() {
                st.node.tracking.send(id, Some(keys), true);
            }
        }
    }
}

/// The client's tracking state, created (with its inbox) when first needed; also makes the
/// connection wait on the inbox (through its Pub/Sub state, as a subscriber waits).
fn state<'a>(ctx: &'a mut ClientCtx<'_>) -> &'a mut ClientTracking {
    let (id, fd) = (ctx.client.id, ctx.client.fd);
    let node = ctx.shard.node.clone();
    ensure_receiver(ctx.client, &node, id, fd)
}

fn ensure_receiver<'a>(
    c: &'a mut ClientState,
    node: &super::ctx::NodeInfo,
    id: u64,
    fd: i32,
) -> &'a mut ClientTracking {
    let subs = c.pubsub.get_or_insert_with(|| Box::new(super::pubsub_reg::Subs::new(fd)));
    if c.tracking.is_none() {
        // A connection already waiting (a subscriber) starts its wait over with the inbox.
        subs.outbox.nudge();
    }
    c.tracking.get_or_insert_with(|| {
        Box::new(ClientTracking {
            inbox: node.tracking.inbox(id),
            on: false,
            bcast: false,
            optin: false,
            optout: false,
            caching: false,
            prefixes: 0,
        })
    })
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub fn client_tracking(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let mut t = Tracker::default();
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let a = &args[i];
        if eq_ic(a, "redirect") && more {
            i += 1;
            if t.redirect != 0 {
                return reply(Reply::err("ERR A client can only redirect to a single other client"));
            }
            match parse_i64(&args[i]) {
                Some(n) => t.redirect = n as u64,
                None => return reply(Reply::err(errors::NOT_INTEGER)),
            }
        } else if eq_ic(a, "bcast") {
            t.bcast = true;
        } else if eq_ic(a, "optin") {
            t.optin = true;
        } else if eq_ic(a, "optout") {
            t.optout = true;
        } else if eq_ic(a, "noloop") {
            t.noloop = true;
        } else if eq_ic(a, "prefix") && more {
            i += 1;
            t.prefixes.push(args[i].clone());
        } else {
            return reply(Reply::err(errors::SYNTAX));
        }
        i += 1;
    }
    if eq_ic(&args[2], "off") {
        disable(ctx);
        return reply(Reply::Ok);
    }
    if !eq_ic(&args[2], "on") {
        return reply(Reply::err(errors::SYNTAX));
    }
    if let Err(e) = check_on(ctx, &t) {
        return reply(Reply::error(e));
    }
    if t.redirect == 0 {
        enable(ctx, t);
        return reply(Reply::Ok);
    }
    // The redirect target must exist now: found on its home shard, which also makes it a
    // receiver (its connection then waits on its inbox).
    fn find(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let at = args.iter().position(|a| eq_ic(a, "redirect")).map_or(0, |i| i + 1);
        let id = args.get(at).and_then(|a| parse_i64(a)).unwrap_or(0) as u64;
        let Some(c) = shard.clients.get(&id).cloned() else { return Reply::Int(0) };
        let node = shard.node.clone();
        match c.try_borrow_mut() {
            Ok(mut c) => {
                let fd = c.fd;
                ensure_receiver(&mut c, &node, id, fd);
            }
            // The caller itself (its state is borrowed by the running command).
            Err(_) => {
                node.tracking.inbox(id);
            }
        }
        Reply::Int(1)
    }
    let merge: super::spec::MergeFn = Box::new(move |ctx: &mut ClientCtx<'_>, replies: Vec<Reply>| {
        if !replies.iter().any(|r| matches!(r, Reply::Int(1))) {
            return Reply::err("ERR The client ID you want redirect to does not exist");
        }
        enable(ctx, t.clone());
        Reply::Ok
    });
    Plan::AllShards { run: find, merge }
}

/// Redis's checks before enabling, against the options and the current mode.
fn check_on(ctx: &ClientCtx<'_>, t: &Tracker) -> Result<(), String> {
    if !t.bcast && !t.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    let cur = ctx.client.tracking.as_deref().filter(|c| c.on);
    if cur.is_some_and(|c| c.bcast != t.bcast) {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if t.bcast && (t.optin || t.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if t.optin && t.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if cur.is_some_and(|c| (t.optin && c.optout) || (t.optout && c.optin)) {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if t.bcast {
        let old = ctx.shard.node.tracking.tracker(ctx.client.id).map(|o| o.prefixes).unwrap_or_default();
        for (i, p) in t.prefixes.iter().enumerate() {
            if let Some(o) = old.iter().find(|o| overlaps(o, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(o)
                ));
            }
            if let Some(o) = t.prefixes[i + 1..].iter().find(|o| overlaps(o, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(o)
                ));
            }
        }
    }
    Ok(())
}

/// One of the two strings is a prefix of the other.
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn enable(ctx: &mut ClientCtx<'_>, mut t: Tracker) {
    let id = ctx.client.id;
    let node = ctx.shard.node.clone();
    if t.bcast {
        // Prefixes add up while BCAST stays on; none given means the empty prefix.
        let mut prefixes = node.tracking.tracker(id).filter(|o| o.bcast).map(|o| o.prefixes).unwrap_or_default();
        if t.prefixes.is_empty() {
            t.prefixes.push(Bytes::new());
        }
        for p in std::mem::take(&mut t.prefixes) {
            if !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        t.prefixes = prefixes;
    }
    let s = state(ctx);
    s.on = true;
    s.bcast = t.bcast;
    s.optin = t.optin;
    s.optout = t.optout;
    s.prefixes = t.prefixes.len();
    node.tracking.enable(id, t);
    crate::storage::set_expired_tracking(node.tracking.active());
}

fn disable(ctx: &mut ClientCtx<'_>) {
    if let Some(s) = ctx.client.tracking.as_deref_mut() {
        s.on = false;
        s.bcast = false;
        s.optin = false;
        s.optout = false;
        s.caching = false;
        s.prefixes = 0;
    }
    ctx.shard.node.tracking.disable(ctx.client.id);
    crate::storage::set_expired_tracking(ctx.shard.node.tracking.active());
}

/// RESET: tracking goes off.
pub fn reset(ctx: &mut ClientCtx<'_>) {
    if ctx.client.tracking.is_some() {
        disable(ctx);
    }
}

/// Client `id` disconnected.
pub fn gone(node: &super::ctx::NodeInfo, id: u64) {
    node.tracking.gone(id);
    crate::storage::set_expired_tracking(node.tracking.active());
}

/// CLIENT CACHING YES|NO.
pub fn client_caching(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let Some(t) = ctx.client.tracking.as_deref_mut().filter(|t| t.on) else {
        return reply(Reply::err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if eq_ic(&args[2], "yes") {
        if !t.optin {
            return reply(Reply::err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if eq_ic(&args[2], "no") {
        if !t.optout {
            return reply(Reply::err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return reply(Reply::err(errors::SYNTAX));
    }
    t.caching = true;
    reply(Reply::Ok)
}

/// CLIENT GETREDIR.
pub fn client_getredir(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let r = match ctx.shard.node.tracking.tracker(ctx.client.id) {
        Some(t) => t.redirect as i64,
        None => -1,
    };
    reply(Reply::Int(r))
}

/// CLIENT TRACKINGINFO.
pub fn client_trackinginfo(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let t = ctx.shard.node.tracking.tracker(ctx.client.id);
    let caching = ctx.client.tracking.as_ref().is_some_and(|c| c.caching);
    let mut fl = vec![if t.is_some() { "on" } else { "off" }];
    let mut redirect = -1;
    let mut prefixes = Vec::new();
    if let Some(t) = &t {
        if t.bcast {
            fl.push("bcast");
        }
        if t.optin {
            fl.push("optin");
            if caching {
                fl.push("caching-yes");
            }
        }
        if t.optout {
            fl.push("optout");
            if caching {
                fl.push("caching-no");
            }
        }
        if t.noloop {
            fl.push("noloop");
        }
        if t.broken {
            fl.push("broken_redirect");
        }
        redirect = t.redirect as i64;
        prefixes = t.prefixes.iter().cloned().map(Reply::Bulk).collect();
        prefixes.sort_by(|a, b| match (a, b) {
            (Reply::Bulk(a), Reply::Bulk(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        });
    }
    let flags = Reply::Set(fl.into_iter().map(|f| Reply::Bulk(Bytes::from_static(f.as_bytes()))).collect());
    reply(Reply::Map(vec![
        (Reply::Bulk(Bytes::from_static(b"flags")), flags),
        (Reply::Bulk(Bytes::from_static(b"redirect")), Reply::Int(redirect)),
        (Reply::Bulk(Bytes::from_static(b"prefixes")), Reply::Array(prefixes)),
    ]))
}
