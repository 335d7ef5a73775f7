//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP.

use super::ctx::{ClientCtx, ShardState};
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::glob_match;
use crate::config::directives::ALIASES;
use crate::config::registry::{self, Directive};
use crate::config::Config;
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
static SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(get)),
    spec("set", -4, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(set)),
    spec("resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(resetstat)),
    spec("rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(rewrite)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
];

/// The CONFIG family's table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec { subcommands: SUBCOMMANDS, ..spec("config", -2, 0, "@slow", Keys::None, Exec::Container) },
];

fn get(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let cfg = ctx.node().config();
    let mut out: Vec<(Reply, Reply)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let names = registry::all().map(|d| (d.name, d.name)).chain(ALIASES.iter().map(|(a, c)| (*a, *c)));
    let names: Vec<(&str, &str)> = names.collect();
    for pat in &args[2..] {
        let lower = pat.to_ascii_lowercase();
        for &(shown, canon) in &names {
            if seen.contains(shown) {
                continue;
            }
            let hit = if lower.iter().any(|c| b"*?[".contains(c)) {
                // Hidden directives (testing aids) need their exact name, as in Redis.
                !registry::is_hidden(shown) && glob_match(&lower, shown.as_bytes(), true)
            } else {
                lower == shown.as_bytes()
            };
            if hit {
                seen.insert(shown);
                let v = cfg.get(canon).unwrap_or("");
                out.push((Reply::bulk(shown.as_bytes()), Reply::bulk(v.as_bytes())));
            }
        }
    }
    Plan::Reply(Reply::Map(out))
}

/// `enable-protected-configs` lets this client change `dir` / `dbfilename`.
fn protected_allowed(ctx: &ClientCtx<'_>) -> bool {
    ctx.node().config().enable_protected_configs.allows(&ctx.client.addr)
}

/// Redis's text for `activedefrag yes` on a build without active defragmentation.
const ACTIVE_DEFRAG_UNSUPPORTED: &str = "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution";

/// Directives that need a restart in slotcore (Redis can change some of them live).
fn restart_only(d: &Directive) -> bool {
    matches!(d.name, "shards" | "shard-cores" | "bus-core" | "pin-cores" | "busy-poll-us")
}

fn set(ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    if args.len() % 2 != 0 {
        return Plan::Reply(Reply::error(super::errors::wrong_arity("config|set")));
    }
    let mut new: Config = (*ctx.node().config()).clone();
    let mut seen: Vec<&str> = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let fail = |why: &str| {
            Plan::Reply(Reply::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")))
        };
        let Some(d) = registry::find(&name) else {
            return Plan::Reply(Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if seen.contains(&d.name) {
            return fail("duplicate parameter");
        }
        seen.push(d.name);
        // slotcore's own start-up parameters are restart-only instead (below).
        if !d.mutable && !restart_only(d) {
            return fail("can't set immutable config");
        }
        if matches!(d.name, "dir" | "dbfilename") && !protected_allowed(ctx) {
            return fail("can't set protected config");
        }
        // Redis's DENY_LOADING_CONFIG: refused with -LOADING while a dataset loads (async too).
        if matches!(d.name, "appendonly" | "repl-diskless-load" | "dir")
            && (crate::replication::role::loading() || crate::replication::role::async_loading())
        {
            return Plan::Reply(Reply::err(crate::replication::role::LOADING_ERR));
        }
        let words: Vec<String> = if d.name == "oom-score-adj-values" {
            // Redis splits this one at every single space (empty words count).
            value.split(' ').map(String::from).collect()
        } else if matches!(d.name, "save" | "client-output-buffer-limit") {
            match crate::protocol::request::split_args(value.as_bytes()) {
                Some(w) if !w.is_empty() => w.into_iter().map(|x| String::from_utf8_lossy(&x).into_owned()).collect(),
                _ => vec![String::new()],
            }
        } else {
            vec![value.clone()]
        };
        let normalized = match registry::normalize(d, &words) {
            Ok(v) => v,
            Err(e) => return fail(&e),
        };
        // No active defragmentation (it needs an allocator built with Redis's defrag hint):
        // refused as a redis-server built without it refuses it.
        if d.name == "activedefrag" && normalized == "yes" {
            return fail(ACTIVE_DEFRAG_UNSUPPORTED);
        }
        if let Err(e) = registry::apply(&mut new, d, &normalized) {
            return fail(&e);
        }
        // Checked after the value (on a copy), so bad values get Redis's texts.
        // Setting one of them to its current value changes nothing and succeeds.
        if restart_only(d) && ctx.node().config().get(d.name) != Some(normalized.as_str()) {
            return fail("slotcore applies this parameter at start-up only; change the config file and restart");
        }
    }
    let old_maxclients = ctx.node().config().maxclients;
    if new.maxclients != old_maxclients {
        let fit = crate::limits::fit_open_files(new.maxclients);
        crate::limits::log_fit(&fit);
        if fit.maxclients != new.maxclients {
            tracing::warn!(
                "Failed applying new configuration. Possibly related to new maxclients setting. Restoring previous settings."
            );
            return Plan::Reply(Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with {}",
                fit.maxclients
            )));
        }
    }
    if let Err((name, why)) = crate::tls::config_set(&new, &seen) {
        return Plan::Reply(Reply::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        )));
    }
    // The steps with side effects come last; one that fails undoes the earlier ones, so a
    // failure leaves every setting as it was.
    let old_dir = ctx.node().config().dir.clone();
    let dir_changed = seen.contains(&"dir");
    if dir_changed {
        if let Err(why) = change_dir(&mut new) {
            return Plan::Reply(Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'dir') - {why}"
            )));
        }
    }
    let undo_dir = || {
        if dir_changed {
            let _ = std::env::set_current_dir(&old_dir);
        }
    };
    let oom_name = seen.iter().copied().find(|n| matches!(*n, "oom-score-adj" | "oom-score-adj-values"));
    let old_oom = crate::oom_score_adj::Settings::of(&ctx.node().config());
    let undo_oom = || {
        if oom_name.is_some() {
            let _ = crate::oom_score_adj::configure(old_oom);
        }
    };
    if let Some(name) = oom_name {
        if let Err(why) = crate::oom_score_adj::configure(crate::oom_score_adj::Settings::of(&new)) {
            undo_oom();
            undo_dir();
            return Plan::Reply(side_effect_failed(name, why));
        }
    }
    if seen.contains(&"bind") && new.bind != ctx.node().config().bind {
        if let Err(why) = crate::runtime::port_change::rebind(&ctx.node().config(), &new) {
            undo_oom();
            undo_dir();
            return Plan::Reply(side_effect_failed("bind", why));
        }
    }
    if seen.contains(&"port") {
        if let Err(why) = crate::runtime::port_change::change_port(&new, new.port, false) {
            undo_oom();
            undo_dir();
            // change_port logged Redis's lines.
            return Plan::Reply(Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'port') - {why}"
            )));
        }
    }
    crate::runtime::outbound::set_source(&new);
    crate::logging::set_level(new.loglevel);
    if let Some(c) = &ctx.node().cluster {
        // cluster-node-timeout, -require-full-coverage, -allow-reads-when-down, ... apply now.
        let s = crate::cluster::settings(&new);
        c.change(|st| {
            st.settings = s;
            st.refresh_myself_address();
            st.want(crate::cluster::state::todo::UPDATE_STATE | crate::cluster::state::todo::SAVE_CONFIG);
        });
    }
    ctx.node().set_config(new);
    // The caller's shard sees the change at once (its SLOWLOG check of this very command,
    // as Redis checks after the call); other shards refresh at their next step.
    ctx.shard.config = ctx.node().config();
    super::bgsave::refresh_denied(&ctx.node().config());
    let begins = crate::runtime::aof::config_changed(ctx.node(), ctx.client.multi.is_some());
    let plan = applied(ctx, &seen);
    if begins {
        return Plan::AfterSnapshotBegins(Box::new(plan));
    }
    plan
}

/// The rest of a CONFIG SET whose values are in place: what the parameters in `seen` start.
fn applied(ctx: &mut ClientCtx<'_>, seen: &[&str]) -> Plan {
    crate::replication::master::settings_changed(&ctx.node().config(), &ctx.node().repl);
    super::replicaof::apply_read_only(&ctx.node().config());
    if seen.contains(&"watchdog-period") {
        crate::watchdog::set_period(ctx.node().config().watchdog_period());
    }
    if seen.contains(&"proc-title-template") {
        crate::proctitle::apply(&ctx.node().config(), &ctx.node().config_file);
    }
    if seen.contains(&"tracking-table-max-keys") {
        // A lowered limit invalidates tracked keys now, on every shard, as Redis does before
        // the next command (a paused cron must not leave the table over it).
        fn enforce(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
            shard.config = shard.node.config();
            super::tracking::cron(shard);
            Reply::Ok
        }
        return Plan::AllShards { run: enforce, merge: Box::new(|_, _| Reply::Ok) };
    }
    if ctx.node().shards > 1 {
        // Every shard takes the new settings before the reply, as Redis's apply at once: a
        // shard idle until its cron kept the previous snapshot (12 KB) alive meanwhile, which a
        // `maxmemory` set 10 KB over the used memory counted, and keys were evicted for it.
        fn adopt(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
            shard.config = shard.node.config();
            Reply::Ok
        }
        return Plan::AllShards { run: adopt, merge: Box::new(|_, _| Reply::Ok) };
    }
    Plan::Reply(Reply::Ok)
}

/// `dir`: the process's working directory moves there, as Redis's chdir (the data files'
/// paths are relative to it); `new` then holds it absolute, as CONFIG GET shows it. The error
/// is the C library's text for the failure.
fn change_dir(new: &mut Config) -> Result<(), String> {
    std::env::set_current_dir(&new.dir).map_err(|e| crate::limits::os_text(&e))?;
    if let Ok(cwd) = std::env::current_dir() {
        let cwd = cwd.to_string_lossy().into_owned();
        new.values.insert("dir", cwd.clone());
        new.dir = cwd;
    }
    Ok(())
}

/// Redis's reply and log line when applying `name`'s new value failed (the previous settings
/// are back in place).
fn side_effect_failed(name: &str, why: &str) -> Reply {
    tracing::warn!(
        "Failed applying new configuration. Possibly related to new {} setting. Restoring previous settings.",
        name
    );
    Reply::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

fn resetstat(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
        shard.stats = Default::default();
        Reply::Ok
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, _| {
            // The node-wide counters (Redis's `resetServerStats` resets them too).
            use std::sync::atomic::Ordering::Relaxed;
            for c in [
                &crate::replication::master::SYNC_FULL,
                &crate::replication::master::SYNC_PARTIAL_OK,
                &crate::replication::master::SYNC_PARTIAL_ERR,
                &super::instant::NET_REPL_INPUT,
                &super::instant::NET_REPL_OUTPUT,
            ] {
                c.store(0, Relaxed);
            }
            crate::storage::lazyfree::reset_stats();
            crate::memory::clients::reset_stats();
            Reply::Ok
        }),
    }
}

/// Rewrites the config file like Redis: directives already in the file are updated in place
/// (first occurrence; later duplicates dropped), non-default values not in the file are
/// appended after a `# Generated by CONFIG REWRITE` line, comments and blank lines are kept.
/// `force_all` (DEBUG CONFIG-REWRITE-FORCE-ALL) writes default values too.
pub fn rewrite_text(old: &str, cfg: &Config, force_all: bool) -> String {
    // Without a master there is no replicaof line, even when writing everything.
    let wanted =
        |d: &Directive, v: &str| v != d.default || (force_all && !(matches!(d.name, "replicaof") && v.is_empty()));
    let mut out: Vec<String> = Vec::new();
    let mut done: std::collections::HashSet<&'static str> = std::collections::HashSet::new();
    let gen_marker = "# Generated by CONFIG REWRITE";
    for line in old.lines() {
        let t = line.trim();
        if t == gen_marker {
            continue;
        }
        let name = t.split_whitespace().next().unwrap_or("");
        match (t.starts_with('#') || t.is_empty(), registry::find(name)) {
            (false, Some(d)) => {
                if done.insert(d.name) {
                    let v = cfg.get(d.name).unwrap_or(d.default);
                    if wanted(d, v) || d.name == "save" || d.name == "dir" || d.name == "port" {
                        out.push(format_line(d.name, v));
                    }
                }
            }
            _ => out.push(line.to_string()),
        }
    }
    let mut appended = false;
    for d in registry::all() {
        if done.contains(d.name) {
            continue;
        }
        let v = cfg.get(d.name).unwrap_or(d.default);
        if wanted(d, v) {
            if !appended {
                out.push(gen_marker.to_string());
                appended = true;
            }
            out.push(format_line(d.name, v));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

fn format_line(name: &str, value: &str) -> String {
    if value.is_empty() {
        return format!("{name} \"\"");
    }
    match name {
        "save" => {
            let w: Vec<&str> = value.split(' ').collect();
            w.chunks(2).map(|c| format!("save {}", c.join(" "))).collect::<Vec<_>>().join("\n")
        }
        "bind" | "client-output-buffer-limit" | "shard-cores" | "replicaof" | "oom-score-adj-values" => {
            format!("{name} {value}")
        }
        _ if value.contains(' ') || value.contains('"') => format!("{name} \"{}\"", value.replace('"', "\\\"")),
        _ => format!("{name} {value}"),
    }
}

fn rewrite(ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::Reply(rewrite_file(ctx, false))
}

/// CONFIG REWRITE (and DEBUG CONFIG-REWRITE-FORCE-ALL with `force_all`).
pub(super) fn rewrite_file(ctx: &mut ClientCtx<'_>, force_all: bool) -> Reply {
    let path = ctx.node().config_file.clone();
    if path.is_empty() {
        return Reply::err("ERR The server is running without a config file");
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut cfg = (*ctx.node().config()).clone();
    // The master this node follows now (REPLICAOF changes it at run time), as Redis writes
    // `replicaof` from its replication state; a cluster node writes none.
    let node = ctx.node();
    let master = node.repl.with_status(|s| s.master.as_ref().map(|m| format!("{} {}", m.host, m.port)));
    let following = if node.cluster.is_some() { None } else { master };
    cfg.values.insert("replicaof", following.unwrap_or_default());
    let text = crate::acl::rewrite_users(&rewrite_text(&old, &cfg, force_all), cfg.get("aclfile").unwrap_or(""));
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let res = std::fs::write(&tmp, text.as_bytes())
        .and_then(|_| std::fs::File::open(&tmp).and_then(|f| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, &path));
    match res {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Reply::Ok
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("CONFIG REWRITE failed: {}", e);
            Reply::error(format!("ERR Rewriting config file: {e}"))
        }
    }
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    let lines = [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ];
    Plan::Reply(Reply::Array(lines.iter().map(|l| Reply::status(l)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_comments_and_updates_in_place() {
        let mut cfg = crate::config::parse::load(None, "port 7000\nmaxmemory 1mb\nhz 20\n").unwrap().config;
        cfg.values.insert("timeout", "30".into());
        let old = "# my conf\nport 7000\nhz 10\nhz 11\n";
        let new = rewrite_text(old, &cfg, false);
        assert_eq!(new, "# my conf\nport 7000\nhz 20\n# Generated by CONFIG REWRITE\nmaxmemory 1048576\ntimeout 30\n");
    }
}
