//! The ACL view of the command table: every command and subcommand gets an id (its bit in a
//! selector's bitmap, in table order with each container's subcommands right after it) and the
//! bit set of its ACL categories, parsed once from the `acl` field of its spec.

use crate::cmd::{table, CommandSpec};
use hashbrown::HashMap;
use std::sync::OnceLock;

/// Redis's ACL categories, in its order (ACL CAT, COMMAND INFO).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (without `@`), case-insensitively.
pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

/// One command or subcommand as ACL sees it.
pub struct AclCmd {
    /// Its spec.
    pub spec: &'static CommandSpec,
    /// `name` or `container|sub`.
    pub fullname: &'static str,
    /// Category bits.
    pub cats: u32,
    /// Ids of its subcommands (containers).
    pub subs: Vec<usize>,
    /// The container's id (subcommands).
    pub parent: Option<usize>,
}

/// Every command with its id.
pub struct AclTable {
    /// Indexed by id.
    pub cmds: Vec<AclCmd>,
    by_name: HashMap<&'static str, usize>,
    by_spec: HashMap<usize, usize>,
}

impl AclTable {
    /// The id of a looked-up spec.
    pub fn id_of(&self, spec: &'static CommandSpec) -> Option<usize> {
        self.by_spec.get(&(spec as *const CommandSpec as usize)).copied()
    }

    /// A command by full name (`get`, `config|get`), case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        self.by_name.get(lower.as_str()).copied()
    }

    /// Number of ids (bitmap length in bits).
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when there are no commands (never, in practice).
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
}

fn parse_cats(acl: &str) -> u32 {
    acl.split_whitespace().filter_map(|c| category_bit(c.trim_start_matches('@').as_bytes())).fold(0, |a, b| a | b)
}

/// The table, built on first use.
pub fn acl_table() -> &'static AclTable {
    static T: OnceLock<AclTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = AclTable { cmds: Vec::new(), by_name: HashMap::new(), by_spec: HashMap::new() };
        for spec in table::all() {
            let id = t.cmds.len();
            t.cmds.push(AclCmd {
                spec,
                fullname: spec.name,
                cats: parse_cats(spec.acl),
                subs: Vec::new(),
                parent: None,
            });
            t.by_name.insert(spec.name, id);
            t.by_spec.insert(spec as *const CommandSpec as usize, id);
            for sub in spec.subcommands {
                let sid = t.cmds.len();
                let fullname = table::fullname(spec, Some(sub));
                t.cmds.push(AclCmd {
                    spec: sub,
                    fullname,
                    cats: parse_cats(sub.acl),
                    subs: Vec::new(),
                    parent: Some(id),
                });
                t.by_name.insert(fullname, sid);
                t.by_spec.insert(sub as *const CommandSpec as usize, sid);
                t.cmds[id].subs.push(sid);
            }
        }
        t
    })
}
