//! Command metadata for COMMAND INFO (tips, key specifications), COMMAND DOCS (summary, since,
//! group, complexity, history, doc flags, deprecation, argument tree) and the key specs the ACL
//! and COMMAND GETKEYSANDFLAGS walk. The data is Redis 7.0.15's command table, generated into
//! `meta_table.rs` by `scripts/gen-command-meta.py`; this file holds its types and the replies
//! built from it. Only COMMAND and the ACL's key lookups read it, never a command's own path.

use super::spec::CommandSpec;
use super::table;
use crate::acl::keys::{self, Begin, Find, KeySpec};
use crate::protocol::Reply;

/// Argument flag: may be left out.
pub const OPTIONAL: u8 = 1;
/// Argument flag: may be repeated.
pub const MULTIPLE: u8 = 2;
/// Argument flag: repeated with its token each time.
pub const MULTIPLE_TOKEN: u8 = 4;
/// Doc flag: the command is deprecated.
pub const DEPRECATED: u8 = 1;
/// Doc flag: a system command, not meant for clients.
pub const SYSCMD: u8 = 2;

/// An argument's type, as COMMAND DOCS names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// `string`
    Str,
    /// `integer`
    Int,
    /// `double`
    Double,
    /// `key`
    Key,
    /// `pattern`
    Pattern,
    /// `unix-time`
    UnixTime,
    /// `pure-token`
    Token,
    /// `oneof`: exactly one of the sub-arguments.
    OneOf,
    /// `block`: the sub-arguments in sequence.
    Block,
}

impl ArgKind {
    /// The name COMMAND DOCS shows.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Str => "string",
            ArgKind::Int => "integer",
            ArgKind::Double => "double",
            ArgKind::Key => "key",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::Token => "pure-token",
            ArgKind::OneOf => "oneof",
            ArgKind::Block => "block",
        }
    }
}

/// One documented argument. Empty strings are absent fields.
#[derive(Debug)]
pub struct Arg {
    /// Lower-case name.
    pub name: &'static str,
    /// Type.
    pub kind: ArgKind,
    /// Index of the key spec describing this key argument, or -1.
    pub key_spec: i8,
    /// The keyword before the value (upper case), or the token itself for `pure-token`
    /// (MIGRATE's empty-key token is `Some("")`).
    pub token: Option<&'static str>,
    /// Short description.
    pub summary: &'static str,
    /// First version with the argument.
    pub since: &'static str,
    /// Version that deprecated the argument.
    pub deprecated_since: &'static str,
    /// `OPTIONAL | MULTIPLE | MULTIPLE_TOKEN`.
    pub flags: u8,
    /// Sub-arguments of a `oneof` or `block`.
    pub args: &'static [Arg],
}

/// The default argument fields (`..ARG` in the table).
pub const ARG: Arg = Arg {
    name: "",
    kind: ArgKind::Str,
    key_spec: -1,
    token: None,
    summary: "",
    since: "",
    deprecated_since: "",
    flags: 0,
    args: &[],
};

/// A command's (or subcommand's) metadata. Empty strings and slices are absent fields.
#[derive(Debug)]
pub struct Meta {
    /// Full name, `get` or `config|get`.
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// First version with the command.
    pub since: &'static str,
    /// Group (`string`, `sorted-set`, `server`, ...).
    pub group: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// `DEPRECATED | SYSCMD`.
    pub doc_flags: u8,
    /// Version that deprecated the command.
    pub deprecated_since: &'static str,
    /// What to use instead of a deprecated command.
    pub replaced_by: &'static str,
    /// `(version, change)` pairs.
    pub history: &'static [(&'static str, &'static str)],
    /// Hints for clients and proxies (`request_policy:all_shards`, ...).
    pub tips: &'static [&'static str],
    /// Key specifications.
    pub key_specs: &'static [KeySpec],
    /// Argument tree.
    pub args: &'static [Arg],
}

/// The default metadata fields (`..META` in the table).
pub const META: Meta = Meta {
    name: "",
    summary: "",
    since: "",
    group: "",
    complexity: "",
    doc_flags: 0,
    deprecated_since: "",
    replaced_by: "",
    history: &[],
    tips: &[],
    key_specs: &[],
    args: &[],
};

/// The metadata of a command by full name (`get`, `config|get`).
pub fn get(fullname: &str) -> Option<&'static Meta> {
    let t = super::meta_table::TABLE;
    t.binary_search_by(|m| m.name.cmp(fullname)).ok().map(|i| &t[i])
}

fn s(t: &str) -> Reply {
    Reply::bulk(t.as_bytes())
}

fn flag_set(flags: u32, names: &[(u32, &'static str)]) -> Reply {
    Reply::Set(names.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| Reply::status(n)).collect())
}

/// COMMAND INFO's 8th element: the tips.
pub fn tips_reply(fullname: &str) -> Reply {
    Reply::Set(get(fullname).map_or(&[][..], |m| m.tips).iter().map(|t| s(t)).collect())
}

/// The key-spec flag names of `flags`, in Redis's order.
pub fn key_flags_reply(flags: u16) -> Reply {
    Reply::Set(keys::FLAG_NAMES.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| Reply::status(n)).collect())
}

fn key_spec_reply(k: &KeySpec) -> Reply {
    let mut m = Vec::with_capacity(4);
    if !k.notes.is_empty() {
        m.push((s("notes"), s(k.notes)));
    }
    m.push((s("flags"), key_flags_reply(k.flags)));
    let typed = |t: &str, spec: Vec<(Reply, Reply)>| Reply::Map(vec![(s("type"), s(t)), (s("spec"), Reply::Map(spec))]);
    let begin = match k.begin {
        Begin::Index(p) => typed("index", vec![(s("index"), Reply::Int(p as i64))]),
        Begin::Keyword(kw, from) => {
            typed("keyword", vec![(s("keyword"), s(kw)), (s("startfrom"), Reply::Int(from as i64))])
        }
        Begin::Unknown => typed("unknown", vec![]),
    };
    m.push((s("begin_search"), begin));
    let ints = |names: [&str; 3], v: [i32; 3]| names.iter().zip(v).map(|(n, x)| (s(n), Reply::Int(x as i64))).collect();
    let find = match k.find {
        Find::Range(last, step, limit) => typed("range", ints(["lastkey", "keystep", "limit"], [last, step, limit])),
        Find::Keynum(idx, first, step) => {
            typed("keynum", ints(["keynumidx", "firstkey", "keystep"], [idx, first, step]))
        }
        Find::Unknown => typed("unknown", vec![]),
    };
    m.push((s("find_keys"), find));
    Reply::Map(m)
}

/// COMMAND INFO's 9th element: the key specifications.
pub fn key_specs_reply(fullname: &str) -> Reply {
    Reply::Set(get(fullname).map_or(&[][..], |m| m.key_specs).iter().map(key_spec_reply).collect())
}

fn args_reply(args: &[Arg]) -> Reply {
    const ARG_FLAGS: &[(u32, &str)] =
        &[(OPTIONAL as u32, "optional"), (MULTIPLE as u32, "multiple"), (MULTIPLE_TOKEN as u32, "multiple_token")];
    Reply::Array(
        args.iter()
            .map(|a| {
                let mut m = vec![(s("name"), s(a.name)), (s("type"), s(a.kind.name()))];
                if a.key_spec >= 0 {
                    m.push((s("key_spec_index"), Reply::Int(a.key_spec as i64)));
                }
                if let Some(t) = a.token {
                    m.push((s("token"), s(t)));
                }
                for (field, v) in [("summary", a.summary), ("since", a.since), ("deprecated_since", a.deprecated_since)]
                {
                    if !v.is_empty() {
                        m.push((s(field), s(v)));
                    }
                }
                if a.flags != 0 {
                    m.push((s("flags"), flag_set(a.flags as u32, ARG_FLAGS)));
                }
                if matches!(a.kind, ArgKind::OneOf | ArgKind::Block) {
                    m.push((s("arguments"), args_reply(a.args)));
                }
                Reply::Map(m)
            })
            .collect(),
    )
}

/// A COMMAND DOCS entry (the map after the name) for `spec`, named `fullname`, with its
/// subcommands nested under `subcommands` (a unit test checks that the table has every
/// command).
pub fn docs_reply(spec: &'static CommandSpec, fullname: &str) -> Reply {
    let mut f = Vec::new();
    if let Some(m) = get(fullname) {
        if !m.summary.is_empty() {
            f.push((s("summary"), s(m.summary)));
        }
        if !m.since.is_empty() {
            f.push((s("since"), s(m.since)));
        }
        f.push((s("group"), s(m.group)));
        if !m.complexity.is_empty() {
            f.push((s("complexity"), s(m.complexity)));
        }
        if m.doc_flags != 0 {
            const DOC_FLAGS: &[(u32, &str)] = &[(DEPRECATED as u32, "deprecated"), (SYSCMD as u32, "syscmd")];
            f.push((s("doc_flags"), flag_set(m.doc_flags as u32, DOC_FLAGS)));
        }
        if !m.deprecated_since.is_empty() {
            f.push((s("deprecated_since"), s(m.deprecated_since)));
        }
        if !m.replaced_by.is_empty() {
            f.push((s("replaced_by"), s(m.replaced_by)));
        }
        if !m.history.is_empty() {
            let h = m.history.iter().map(|(v, c)| Reply::Array(vec![s(v), s(c)])).collect();
            f.push((s("history"), Reply::Set(h)));
        }
        if !m.args.is_empty() {
            f.push((s("arguments"), args_reply(m.args)));
        }
    }
    if !spec.subcommands.is_empty() {
        let subs = spec
            .subcommands
            .iter()
            .map(|sub| {
                let full = table::fullname(spec, Some(sub));
                (s(full), docs_reply(sub, full))
            })
            .collect();
        f.push((s("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_covers_every_command() {
        let t = super::super::meta_table::TABLE;
        assert!(t.windows(2).all(|w| w[0].name < w[1].name), "meta table not sorted");
        for c in table::all() {
            assert!(get(c.name).is_some(), "no metadata for {}", c.name);
            for sub in c.subcommands {
                let full = table::fullname(c, Some(sub));
                assert!(get(full).is_some(), "no metadata for {full}");
            }
        }
    }

    fn argv(line: &str) -> Vec<bytes::Bytes> {
        line.split(' ').map(|w| bytes::Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn spec_keys(full: &str, spec: &CommandSpec, args: &[bytes::Bytes]) -> Vec<usize> {
        keys::keys_with_flags(full, spec.arity, args).into_iter().map(|(i, _)| i).collect()
    }

    /// The keys a command is routed by (`CommandSpec::key_indexes`) are the keys its key specs
    /// name: for every command with a plain key range, called with filler arguments, and for
    /// the commands that find their keys by parsing, on sample calls.
    #[test]
    fn key_indexes_agree_with_key_specs() {
        for c in table::all() {
            let subs = c.subcommands.iter().map(|s| (s, table::fullname(c, Some(s))));
            for (spec, full) in std::iter::once((c, c.name)).chain(subs) {
                // Shard channels (SSUBSCRIBE, SPUBLISH, ...) are routed by slot like keys, but
                // their key specs say NOT_KEY: no key for GETKEYS and the ACL.
                let channels = get(full).is_some_and(|m| m.key_specs.iter().all(|k| k.flags & keys::NOT_KEY != 0));
                if !matches!(spec.keys, super::super::Keys::Range { .. }) || channels {
                    continue;
                }
                let n = spec.arity.unsigned_abs() as usize + if spec.arity < 0 { 3 } else { 0 };
                let mut line: Vec<String> = full.split('|').map(str::to_string).collect();
                while line.len() < n {
                    line.push(format!("x{}", line.len()));
                }
                let args = argv(&line.join(" "));
                let routed = spec.key_indexes(&args).unwrap_or_default();
                assert_eq!(routed, spec_keys(full, spec, &args), "{}", line.join(" "));
            }
        }
        for line in [
            "eval s 2 a b c",
            "evalsha s 1 a",
            "fcall f 2 a b",
            "zunionstore d 2 a b weights 1 2",
            "zinterstore d 1 a",
            "zdiffstore d 2 a b",
            "zunion 2 a b withscores",
            "zinter 2 a b",
            "zdiff 2 a b",
            "zintercard 2 a b limit 1",
            "sintercard 2 a b",
            "lmpop 2 a b left",
            "blmpop 0 2 a b left count 1",
            "zmpop 1 a min",
            "bzmpop 0 2 a b max",
            "georadius k 0 0 1 km store d",
            "georadius k 0 0 1 km",
            "georadiusbymember k m 1 km storedist d",
            "xread count 1 streams a b 0 0",
            "xreadgroup group g c streams a b > >",
            "sort k store d",
            "sort k",
            "sort_ro k by w*",
            "migrate h 1 k 0 5",
        ] {
            let args = argv(line);
            let (spec, full) = table::resolve(&args).expect(line);
            assert_eq!(spec.key_indexes(&args).unwrap_or_default(), spec_keys(full, spec, &args), "{line}");
        }
    }

    #[test]
    fn set_has_its_key_spec_and_arguments() {
        let m = get("set").expect("set");
        assert_eq!(m.key_specs.len(), 1);
        assert_eq!(m.key_specs[0].flags, keys::RW | keys::ACCESS | keys::UPDATE | keys::VARIABLE_FLAGS);
        assert_eq!(m.args[2].name, "condition");
        assert_eq!(m.args[2].kind, ArgKind::OneOf);
        assert_eq!(m.args[2].args[0].token, Some("NX"));
        assert_eq!(get("zadd").expect("zadd").group, "sorted-set");
        assert_eq!(get("keys").expect("keys").tips, &["request_policy:all_shards", "nondeterministic_output_order"]);
    }
}
