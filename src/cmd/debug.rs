//! DEBUG: the testing aids of Redis 7.0 that slotcore implements (DIGEST, DIGEST-VALUE,
//! OBJECT, RELOAD, POPULATE, QUICKLIST-PACKED-THRESHOLD, SET-ACTIVE-EXPIRE, SLEEP). Allowed only as
//! `enable-debug-command` says.

use super::ctx::{reply, ClientCtx, ShardState};
use super::server::help_lines;
use super::spec::Plan;
use super::util::{eq_ic, parse_i64};
use crate::protocol::Reply;
use bytes::Bytes;

/// Each shard returns, per database, the XOR of its keys' digests (empty string when empty).
fn debug_digest() -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        Reply::Array(
            shard
                .ks
                .dbs
                .iter()
                .map(|d| {
                    if d.is_empty() {
                        return Reply::bulk(b"");
                    }
                    let mut sum = [0u8; 20];
                    for slot in d.nonempty_slots_from(0) {
                        let Some(t) = d.slot_table(slot) else { continue };
                        for (k, e) in t.iter().filter(|(_, e)| !e.is_expired(now)) {
                            let kd = super::digest::key_digest(k, e);
                            for (s, x) in sum.iter_mut().zip(kd) {
                                *s ^= x;
                            }
                        }
                    }
                    Reply::bulk(&sum)
                })
                .collect(),
        )
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            let mut sums: Vec<Option<[u8; 20]>> = Vec::new();
            for r in replies {
                let Reply::Array(v) = r else { continue };
                if sums.len() < v.len() {
                    sums.resize(v.len(), None);
                }
                for (i, d) in v.iter().enumerate() {
                    if let Reply::Bulk(b) = d {
                        if b.len() == 20 {
                            let acc = sums[i].get_or_insert([0u8; 20]);
                            for (a, x) in acc.iter_mut().zip(b.iter()) {
                                *a ^= x;
                            }
                        }
                    }
                }
            }
            Reply::status_owned(super::digest::hex(&super::digest::combine(&sums)))
        }),
    }
}

/// DIGEST-VALUE: the value digest of each key, from whichever shard holds it.
fn debug_digest_value(args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        let d = &mut shard.ks.dbs[db];
        Reply::Array(
            args[2..]
                .iter()
                .map(|k| d.get_notouch(k, now).map_or(Reply::Nil, |e| Reply::bulk(&super::digest::value_digest(e))))
                .collect(),
        )
    }
    let n = args.len() - 2;
    Plan::AllShards {
        run,
        merge: Box::new(move |_, replies| {
            let mut out = vec![[0u8; 20]; n];
            for r in replies {
                let Reply::Array(v) = r else { continue };
                for (i, d) in v.iter().enumerate().take(n) {
                    if let Reply::Bulk(b) = d {
                        out[i].copy_from_slice(&b[..20.min(b.len())]);
                    }
                }
            }
            Reply::Array(out.iter().map(|d| Reply::status_owned(super::digest::hex(d))).collect())
        }),
    }
}

/// DEBUG OBJECT: low-level facts about a key. `serializedlength` is the length of the value's
/// RDB string encoding without compression (slotcore has no RDB writer yet).
fn debug_object(_args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        let now = crate::storage::now_ms();
        // A raw look-up, as Redis's: an expired key not yet reclaimed is shown, not deleted.
        let Some(e) = shard.ks.dbs[db].peek(&args[2]) else { return Reply::Nil };
        let ser = match &e.value {
            crate::storage::Value::Str(crate::storage::StrValue::Int(n)) if i32::try_from(*n).is_ok() => {
                if (-128..128).contains(n) {
                    2
                } else if (-32768..32768).contains(n) {
                    3
                } else {
                    5
                }
            }
            v => {
                let len = match v {
                    crate::storage::Value::Str(s) => s.len(),
                    crate::storage::Value::Hash(h) => h.heap_size(),
                    crate::storage::Value::Set(s) => s.heap_size(),
                    crate::storage::Value::List(l) => l.iter().map(|e| e.len() + 1).sum(),
                    crate::storage::Value::ZSet(z) => z.heap_size(),
                    crate::storage::Value::Stream(s) => s.heap_size(),
                };
                len + if len < 64 {
                    1
                } else if len < 16384 {
                    2
                } else {
                    5
                }
            }
        };
        let idle = ((now / 1000) as u32).saturating_sub(e.lru);
        // Redis 7.0 adds the quicklist's shape for lists (no node compression here).
        let ql = match &e.value {
            crate::storage::Value::List(l) => format!(
                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{}",
                l.node_count(),
                l.len() as f64 / l.node_count().max(1) as f64,
                crate::storage::list::fill(),
                l.packed_bytes()
            ),
            _ => String::new(),
        };
        Reply::status_owned(format!(
            "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{}",
            e as *const _,
            e.value.encoding(),
            ser,
            e.lru & 0xFF_FFFF,
            idle,
            ql
        ))
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            replies.into_iter().find(|r| !matches!(r, Reply::Nil)).unwrap_or(Reply::err("ERR no such key"))
        }),
    }
}

/// DEBUG HTSTATS-KEY <key>: Redis's `dictGetStats` text for a set kept as a hash table (its
/// table is Redis's dict: size, elements, occupied slots, chains, and the rehashing target
/// while rehashing). Values in other encodings get Redis's refusal; hashes and sorted sets in
/// their table encodings are kept in open-addressing tables with no chains, so they are
/// refused too, saying so.
fn debug_htstats_key(_args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
        use crate::storage::Value;
        let Some(e) = shard.ks.dbs[db].peek(&args[2]) else { return Reply::Nil };
        match &e.value {
            Value::Set(s) => match s.table() {
                Some(t) => Reply::Verbatim(Bytes::from(t.stats())),
                None => Reply::err(NOT_A_DICT),
            },
            Value::Hash(h) if h.encoding() == "hashtable" => Reply::err(OPEN_ADDRESSING),
            Value::ZSet(z) if z.encoding() == "skiplist" => Reply::err(OPEN_ADDRESSING),
            _ => Reply::err(NOT_A_DICT),
        }
    }
    const NOT_A_DICT: &str = "ERR The value stored at the specified key is not represented using an hash table";
    const OPEN_ADDRESSING: &str =
        "ERR The value stored at the specified key is kept in an open-addressing table (no chains to report)";
    Plan::AllShards {
        run,
        merge: Box::new(|_, replies| {
            replies.into_iter().find(|r| !matches!(r, Reply::Nil)).unwrap_or(Reply::err("ERR no such key"))
        }),
    }
}

/// DEBUG PAUSE-CRON: the shards' periodic work (active expiry, eviction and tracking-table
/// upkeep) is skipped while set.
static CRON_PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True while DEBUG PAUSE-CRON 1 is in effect.
pub fn cron_paused() -> bool {
    CRON_PAUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Redis 7.0's refusal when DEBUG is not enabled.
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// DEBUG CLUSTERLINK KILL <to|from|all> <node-id>: closes bus links with a node (the bus
/// does it before it sends anything published after this command).
fn debug_clusterlink_kill(ctx: &mut ClientCtx<'_>, dir: &[u8], id: &[u8]) -> Reply {
    let Some(cluster) = ctx.node().cluster.as_ref() else {
        return Reply::err("ERR Debug option only available for cluster mode enabled setup!");
    };
    let node = crate::cluster::state::parse_name(id).filter(|n| cluster.with(|st| st.nodes.contains_key(n)));
    let Some(node) = node else {
        return Reply::error(format!("ERR Unknown node {}", String::from_utf8_lossy(id)));
    };
    let (to, from) = match () {
        _ if eq_ic(dir, "to") => (true, false),
        _ if eq_ic(dir, "from") => (false, true),
        _ if eq_ic(dir, "all") => (true, true),
        _ => return Reply::error(format!("ERR Unknown direction {}", String::from_utf8_lossy(dir))),
    };
    // Gone at once for CLUSTER LINKS, as Redis frees the links inside this command; the bus
    // closes the sockets before it handles anything queued after this.
    cluster.with(|st| {
        if let Some(n) = st.nodes.get_mut(&node) {
            n.link_connected &= !to;
            if from {
                n.inbound_ctime = 0;
            }
        }
    });
    crate::runtime::bus_publish::kill_links(node, to, from);
    Reply::Ok
}

/// DEBUG MALLCTL <name> [<value>] and DEBUG MALLCTL-STR <name> [<value>|VOID].
fn debug_mallctl(string: bool, args: &[Bytes]) -> Reply {
    use crate::memory::mallctl::{self, Answer};
    let answer = if string {
        mallctl::string(&args[0], args.get(1).map(|v| &v[..]))
    } else {
        let value = match args.get(1).map(|v| super::util::int_arg(v)) {
            Some(Err(e)) => return e,
            Some(Ok(v)) => Some(v),
            None => None,
        };
        mallctl::int(&args[0], value)
    };
    match answer {
        Answer::Int(n) => Reply::Int(n),
        Answer::Str(s) => Reply::bulk_string(s),
        Answer::Ok => Reply::Ok,
        Answer::Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// DEBUG (`enable-debug-command` is checked before it runs: `cmd::protected_refusal`).
pub(super) fn debug(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let sub = &args[1];
    if eq_ic(sub, "set-skip-checksum-validation") && args.len() == 3 {
        crate::persist::dump::set_skip_checksum(super::util::parse_i64(&args[2]).unwrap_or(0) != 0);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "segfault") && args.len() == 2 {
        // SAFETY: raises a signal on this process; the crash handler reports and ends it.
        unsafe { libc::raise(libc::SIGSEGV) };
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "panic") && args.len() == 2 {
        panic!("DEBUG PANIC called at Unix time {}", crate::storage::now_ms() / 1000);
    }
    if eq_ic(sub, "log") && args.len() == 3 {
        tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "sleep") && args.len() == 3 {
        let secs = super::util::parse_f64(&args[2]).unwrap_or(0.0).max(0.0);
        return Plan::Sleep(std::time::Duration::from_secs_f64(secs), Reply::Ok);
    }
    if (eq_ic(sub, "mallctl") || eq_ic(sub, "mallctl-str")) && args.len() >= 3 {
        return reply(debug_mallctl(eq_ic(sub, "mallctl-str"), &args[2..]));
    }
    if eq_ic(sub, "set-active-expire") && args.len() == 3 {
        let on = parse_i64(&args[2]).unwrap_or(1) != 0;
        crate::storage::set_active_expire(on);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "config-rewrite-force-all") && args.len() == 2 {
        return reply(super::config::rewrite_file(ctx, true));
    }
    if eq_ic(sub, "pause-cron") && args.len() == 3 {
        CRON_PAUSED.store(parse_i64(&args[2]).unwrap_or(0) != 0, std::sync::atomic::Ordering::Relaxed);
        return reply(Reply::Ok);
    }
    // DEBUG REPLYBUFFER PEAK-RESET-TIME <never|reset|ms> / RESIZING <0|1>: Redis's cron
    // shrinks and grows each client's reply buffer towards its recent peak; here a
    // connection's reply buffer is sized by the replies it holds (given back over 1 MB) and no
    // cron resizes it, which is Redis with resizing off. The arguments are checked as Redis
    // checks them.
    if eq_ic(sub, "replybuffer") && args.len() == 4 {
        if eq_ic(&args[2], "peak-reset-time") {
            if !eq_ic(&args[3], "never") && !eq_ic(&args[3], "reset") && parse_i64(&args[3]).is_none() {
                return reply(Reply::err(super::errors::NOT_INTEGER));
            }
            return reply(Reply::Ok);
        }
        if eq_ic(&args[2], "resizing") {
            return reply(Reply::Ok);
        }
    }
    if eq_ic(sub, "set-disable-deny-scripts") && args.len() == 3 {
        crate::script::set_deny_disabled(parse_i64(&args[2]).unwrap_or(0) != 0);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "protocol") && args.len() == 3 {
        return reply(crate::script::debug_protocol(&args[2], ctx.client.resp3));
    }
    if eq_ic(sub, "quicklist-packed-threshold") && args.len() == 3 {
        return reply(quicklist_packed_threshold(&args[2]));
    }
    if eq_ic(sub, "digest") && args.len() == 2 {
        return debug_digest();
    }
    if eq_ic(sub, "reload") {
        return super::debug_reload::debug_reload(ctx.shard, args);
    }
    if eq_ic(sub, "loadaof") && args.len() == 2 {
        return crate::runtime::aof_load::debug_loadaof();
    }
    if eq_ic(sub, "aof-flush-sleep") && args.len() == 3 {
        let us = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        crate::aof::writer::set_flush_sleep(us);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "aof-fsync-sleep") && args.len() == 3 {
        let us = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        crate::aof::writer::set_fsync_sleep(us);
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "digest-value") {
        return debug_digest_value(args);
    }
    if eq_ic(sub, "object") && args.len() == 3 {
        return debug_object(args);
    }
    if eq_ic(sub, "htstats-key") && args.len() == 3 {
        return debug_htstats_key(args);
    }
    if eq_ic(sub, "populate") && (3..=5).contains(&args.len()) {
        return debug_populate(ctx, args);
    }
    if eq_ic(sub, "replicate") && args.len() >= 3 {
        // To the replicas only (not the AOF), allowing data divergence, as Redis's.
        let db = ctx.client.db;
        ctx.shard.changes.record_to(db, vec![args[2..].to_vec()], crate::replication::feed::Unit::TO_REPLICAS);
        ctx.shard.flush_changes();
        return reply(Reply::Ok);
    }
    if eq_ic(sub, "drop-cluster-packet-filter") && args.len() == 3 {
        return reply(match super::util::int_arg(&args[2]) {
            Ok(t) => {
                crate::cluster::bus::gossip::set_drop_packet_filter(t);
                Reply::Ok
            }
            Err(e) => e,
        });
    }
    if eq_ic(sub, "clusterlink") && args.len() == 5 && eq_ic(&args[2], "kill") {
        return reply(debug_clusterlink_kill(ctx, &args[3], &args[4]));
    }
    if eq_ic(sub, "help") {
        return help_lines(&[
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "HTSTATS-KEY <key>",
            "    Like HTSTATS but for the hash table stored at <key>'s value.",
            "SEGFAULT",
            "    Crash the server with sigsegv.",
            "PANIC",
            "    Crash the server simulating a panic.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "MALLCTL <key> [<val>]",
            "    Get or set a malloc tuning integer.",
            "MALLCTL-STR <key> [<val>]",
            "    Get or set a malloc tuning string.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created.",
            "RELOAD",
            "    Save the RDB on disk and reload it back to memory.",
            "REPLICATE <string>",
            "    Replicates the provided string to replicas, allowing data divergence.",
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
            "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "QUICKLIST-PACKED-THRESHOLD <size>",
            "    Sets the threshold for elements to be inserted as plain vs packed nodes",
            "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "PAUSE-CRON <0|1>",
            "    Stop periodic cron job processing.",
            "DROP-CLUSTER-PACKET-FILTER <packet-type>",
            "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
            "CLUSTERLINK KILL <to|from|all> <node-id>",
            "    Kills the link based on the direction to/from (both) with the provided node.",
            "HELP",
            "    Prints this help.",
        ]);
    }
    reply(Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    )))
}

/// Redis's largest packed-node threshold: 4 GB less 1 MB.
const PACKED_THRESHOLD_MAX: u64 = (1 << 32) - (1 << 20);

/// The element size from which Redis 7.0 keeps a list element in a node of its own ("plain"
/// node); 0 restores Redis's default of 1 GB.
static PACKED_THRESHOLD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 30);

/// DEBUG QUICKLIST-PACKED-THRESHOLD <size>: checked and kept as Redis does. slotcore's lists keep
/// every element as its own allocation, so no element size changes their layout: plain and
/// packed elements behave the same, which is what the knob exists to test.
fn quicklist_packed_threshold(arg: &[u8]) -> Reply {
    let size = std::str::from_utf8(arg).ok().and_then(crate::config::registry::parse_memory);
    match size {
        Some(n) if n <= PACKED_THRESHOLD_MAX => {
            let n = if n == 0 { 1 << 30 } else { n };
            PACKED_THRESHOLD.store(n, std::sync::atomic::Ordering::Relaxed);
            Reply::Ok
        }
        _ => Reply::err("ERR argument must be a memory value bigger than 1 and smaller than 4gb"),
    }
}

/// A positive count or size argument; Redis 7.0 gives one text for every bad form.
fn positive(arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Reply::err("ERR value is out of range, must be positive")),
    }
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` holding `value:N` (cut or
/// zero-padded to `size` bytes when a size is given), skipping keys that exist. As in Redis
/// the keys are neither counted as changes nor propagated. Every shard walks the numbers and
/// adds the keys whose slot this node places on it (in cluster mode a key of a slot served
/// elsewhere lands on the shard its slot maps to and is dropped like any key the node does
/// not keep).
fn debug_populate(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if let Err(e) = positive(&args[2]) {
        return reply(e);
    }
    if let Some(Err(e)) = args.get(4).map(|a| positive(a)) {
        return reply(e);
    }
    Plan::AllShards { run: populate_part, merge: Box::new(|_, _| Reply::Ok) }
}

/// One shard's part of DEBUG POPULATE (arguments checked at home).
fn populate_part(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let count = positive(&args[2]).unwrap_or(0);
    let size = args.get(4).and_then(|a| positive(a).ok()).unwrap_or(0) as usize;
    let prefix: &[u8] = args.get(3).map_or(b"key", |p| p);
    let view = match &shard.node.cluster {
        Some(c) => c.view(),
        None => crate::cluster::view::ClusterView::standalone_shared(shard.node.shards),
    };
    let now = crate::storage::now_ms();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(j.to_string().as_bytes());
        // Redis formats into a 128-byte buffer.
        key.truncate(127);
        if view.shard_of(crate::cluster::slot::key_slot(&key)) != shard.id {
            continue;
        }
        let d = &mut shard.ks.dbs[db];
        if d.get_notouch(&key, now).is_some() {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        d.set(&key, crate::storage::Value::Str(crate::storage::StrValue::from_bytes(&value)), 0);
    }
    Reply::Ok
}
