//! The registry: every family's specs, looked up by case-insensitive name.

use super::spec::CommandSpec;
use super::{
    acl, aof, bitmap, blocking, cluster, config, connection, dump, failover, function, generic, geo, hash, hll, list,
    migrate, multi, pubsub, replicaof, replication, save, scripting, server, set, sort, stream, stream_group,
    stream_info, stream_read, string, zset, zset_ops,
};
use hashbrown::HashMap;
use std::sync::OnceLock;

/// Every family's table, in COMMAND's order.
pub fn families() -> [&'static [CommandSpec]; 34] {
    [
        string::COMMANDS,
        zset::COMMANDS,
        zset_ops::COMMANDS,
        geo::COMMANDS,
        bitmap::COMMANDS,
        hll::COMMANDS,
        generic::COMMANDS,
        sort::COMMANDS,
        dump::COMMANDS,
        list::COMMANDS,
        blocking::COMMANDS,
        hash::COMMANDS,
        set::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        save::COMMANDS,
        aof::COMMANDS,
        config::COMMANDS,
        cluster::COMMANDS,
        multi::COMMANDS,
        migrate::COMMANDS,
        pubsub::COMMANDS,
        replication::COMMANDS,
        replicaof::COMMANDS,
        failover::COMMANDS,
        stream::COMMANDS,
        stream_read::COMMANDS,
        stream_group::COMMANDS,
        stream_info::COMMANDS,
        scripting::COMMANDS,
        function::COMMANDS,
        acl::COMMANDS,
        super::memory::COMMANDS,
        super::module::COMMANDS,
    ]
}

fn registry() -> &'static HashMap<&'static str, &'static CommandSpec> {
    static REG: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    REG.get_or_init(|| {
        let mut m = HashMap::new();
        for fam in families() {
            for spec in fam {
                let prev = m.insert(spec.name, spec);
                assert!(prev.is_none(), "command {} declared twice", spec.name);
            }
        }
        m
    })
}

/// All top-level commands.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    families().into_iter().flat_map(|f| f.iter())
}

/// Number of top-level commands (COMMAND COUNT).
pub fn count() -> usize {
    registry().len()
}

/// Names changed by `rename-command` (lowercase name -> the command it now names, or None
/// for a name that no longer names anything). Set once at start-up; empty for most servers.
type Renames = HashMap<String, Option<&'static CommandSpec>>;

static RENAMES: OnceLock<Renames> = OnceLock::new();

/// Applies `rename-command old new` lines in order, as Redis's config loading edits its
/// command table: `old` must name a (top-level) command now, `new` must name none (an empty
/// `new` removes the command). Returns the overlay, or Redis's error text.
pub fn renames(pairs: &[(String, String)]) -> Result<Renames, &'static str> {
    let mut overlay = Renames::new();
    for (old, new) in pairs {
        let (old, new) = (old.to_ascii_lowercase(), new.to_ascii_lowercase());
        let now = |o: &Renames, n: &str| match o.get(n) {
            Some(v) => *v,
            None => registry().get(n).copied(),
        };
        let Some(spec) = now(&overlay, &old) else { return Err("No such command in rename-command") };
        overlay.insert(old, None);
        if !new.is_empty() {
            if now(&overlay, &new).is_some() {
                return Err("Target command name already exists");
            }
            overlay.insert(new, Some(spec));
        }
    }
    Ok(overlay)
}

/// Installs the start-up config's renames (once, before any lookup).
pub fn install_renames(pairs: &[(String, String)]) -> Result<(), &'static str> {
    let overlay = renames(pairs)?;
    if !overlay.is_empty() {
        let _ = RENAMES.set(overlay);
    }
    Ok(())
}

/// Looks a command up by name, case-insensitively (under its `rename-command` name, if any).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 64];
    if name.len() > buf.len() {
        // No command has so long a name; only a rename could give one.
        let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        return RENAMES.get().and_then(|o| o.get(&lower).copied().flatten());
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    if let Some(r) = RENAMES.get().and_then(|o| o.get(lower)) {
        return *r;
    }
    registry().get(lower).copied()
}

/// Looks a subcommand of a container up, case-insensitively.
pub fn lookup_sub(container: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    container.subcommands.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The command `args` call, as a client's command is resolved: a container, or a command
/// with subcommands (COMMAND) called with arguments, gives its subcommand when it has it (the
/// parent otherwise); with the full name (`config|get`).
pub fn resolve(args: &[bytes::Bytes]) -> Option<(&'static CommandSpec, &'static str)> {
    let top = lookup(args.first()?)?;
    match args.get(1).filter(|_| !top.subcommands.is_empty()).and_then(|a| lookup_sub(top, a)) {
        Some(sub) => Some((sub, fullname(top, Some(sub)))),
        None => Some((top, top.name)),
    }
}

/// A command by its full name, `get` or `config|get` (COMMAND INFO / DOCS), with the
/// container of a subcommand; None for an unknown one.
pub fn lookup_full(name: &[u8]) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
    let mut parts = name.splitn(3, |&b| b == b'|');
    let top = lookup(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some((top, None)),
        (Some(sub), None) => lookup_sub(top, sub).map(|s| (s, Some(top))),
        _ => None,
    }
}

/// `container|sub` full names, interned (used in stats and errors).
pub fn fullname(container: &'static CommandSpec, sub: Option<&'static CommandSpec>) -> &'static str {
    static NAMES: OnceLock<HashMap<(usize, usize), &'static str>> = OnceLock::new();
    let Some(sub) = sub else { return container.name };
    let names = NAMES.get_or_init(|| {
        let mut m = HashMap::new();
        for c in all() {
            {
                for s in c.subcommands {
                    let n: &'static str = Box::leak(format!("{}|{}", c.name, s.name).into_boxed_str());
                    m.insert((c as *const _ as usize, s as *const _ as usize), n);
                }
            }
        }
        m
    });
    names.get(&(container as *const _ as usize, sub as *const _ as usize)).copied().unwrap_or(container.name)
}
