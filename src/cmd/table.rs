//! The registry: every family's specs, looked up by case-insensitive name.

use super::spec::CommandSpec;
use super::{
    acl, aof, bitmap, blocking, cluster, config, connection, dump, function, generic, geo, hash, hll, list, migrate,
    multi, pubsub, replicaof, replication, save, scripting, server, set, sort, stream, stream_group, stream_info,
    stream_read, string, zset, zset_ops,
};
use hashbrown::HashMap;
use std::sync::OnceLock;

/// Every family's table, in COMMAND's order.
pub fn families() -> [&'static [CommandSpec]; 32] {
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
        stream::COMMANDS,
        stream_read::COMMANDS,
        stream_group::COMMANDS,
        stream_info::COMMANDS,
        scripting::COMMANDS,
        function::COMMANDS,
        acl::COMMANDS,
        super::memory::COMMANDS,
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

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    registry().get(lower).copied()
}

/// Looks a subcommand of a container up, case-insensitively.
pub fn lookup_sub(container: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    container.subcommands.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
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
