//! Which arguments of a call are keys, and how the call uses each one, as Redis 7.0's ACL
//! sees it (`getKeysFromCommandWithSpecs`): the key specs of the command (`cmd::meta`),
//! and, for the commands whose specs cannot say (SET and BITFIELD whose access depends on the
//! options, MIGRATE and SORT whose keys move, numkeys that does not parse), Redis's own
//! argument walkers. Channels of the Pub/Sub commands are found here too.

use bytes::Bytes;

/// The key is read (its value or metadata are returned or used).
pub const ACCESS: u16 = 1;
/// A key may be created.
pub const INSERT: u16 = 2;
/// A key may be deleted.
pub const DELETE: u16 = 4;
/// A key's value may be changed.
pub const UPDATE: u16 = 8;
/// Not a key (shard channels).
pub const NOT_KEY: u16 = 16;
/// The spec may miss keys.
pub const INCOMPLETE: u16 = 32;
/// The flags depend on the arguments.
pub const VARIABLE_FLAGS: u16 = 64;
/// Read only: the key's data is read, never changed.
pub const RO: u16 = 128;
/// Read-write: the key's data is read and changed.
pub const RW: u16 = 256;
/// Overwrite: the key's data is replaced without being read.
pub const OW: u16 = 512;
/// Remove: the key is deleted.
pub const RM: u16 = 1024;

/// Redis's key-spec flag names in the order COMMAND GETKEYSANDFLAGS and COMMAND INFO list them.
pub const FLAG_NAMES: &[(u16, &str)] = &[
    (RO, "RO"),
    (RW, "RW"),
    (OW, "OW"),
    (RM, "RM"),
    (ACCESS, "access"),
    (UPDATE, "update"),
    (INSERT, "insert"),
    (DELETE, "delete"),
    (NOT_KEY, "not_key"),
    (INCOMPLETE, "incomplete"),
    (VARIABLE_FLAGS, "variable_flags"),
];

/// Where a key spec starts looking.
#[derive(Clone, Copy, Debug)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched from `startfrom` (negative: from the end, backwards).
    Keyword(&'static str, i32),
    /// Not described.
    Unknown,
}

/// How a key spec finds its keys from where it starts.
#[derive(Clone, Copy, Debug)]
pub enum Find {
    /// `(lastkey, step, limit)`.
    Range(i32, i32, i32),
    /// `(keynumidx, firstkey, step)`.
    Keynum(i32, i32, i32),
    /// Not described.
    Unknown,
}

/// One key spec.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// A remark shown by COMMAND INFO (empty: none).
    pub notes: &'static str,
    /// `ACCESS`, `INSERT`, ..., `RO`, `RW`, ... bits.
    pub flags: u16,
    /// Start.
    pub begin: Begin,
    /// Keys.
    pub find: Find,
}

/// The default key-spec fields (`..KS` in the generated table).
pub const KS: KeySpec = KeySpec { notes: "", flags: 0, begin: Begin::Unknown, find: Find::Unknown };

fn specs_of(fullname: &str) -> Option<&'static [KeySpec]> {
    crate::cmd::meta::get(fullname).map(|m| m.key_specs).filter(|k| !k.is_empty())
}

/// True when the command has keys for ACL purposes (a spec that is not NOT_KEY).
pub fn has_keys(fullname: &str) -> bool {
    specs_of(fullname).is_some_and(|s| s.iter().any(|k| k.flags & NOT_KEY == 0))
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// Keys found by the specs, or None when a spec is unknown, invalid or incomplete.
fn by_specs(specs: &[KeySpec], args: &[Bytes], arity: i32) -> Option<Vec<(usize, u16)>> {
    let argc = args.len() as i32;
    let mut out = Vec::new();
    for s in specs {
        if s.flags & NOT_KEY != 0 {
            continue;
        }
        let mut first = match s.begin {
            Begin::Index(p) => p,
            Begin::Keyword(kw, from) => {
                let (start, end) = if from > 0 { (from, argc - 1) } else { (argc + from, 1) };
                let mut i = start;
                let mut found = 0;
                loop {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if eq(&args[i as usize], kw) {
                        found = i + 1;
                        break;
                    }
                    if i == end {
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            Begin::Unknown => return None,
        };
        let (last, step) = match s.find {
            Find::Range(lastkey, step, limit) => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step)
            }
            Find::Keynum(idx, firstkey, step) => {
                if idx >= argc || first + idx >= argc {
                    return None;
                }
                let n: i64 = std::str::from_utf8(&args[(first + idx) as usize]).ok()?.parse().ok()?;
                if n < 0 {
                    return None;
                }
                first += firstkey;
                (first + n as i32 - 1, step)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i < argc || arity >= 0 {
                out.push((i as usize, s.flags));
            }
            i += step.max(1);
        }
        if s.flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(out)
}

/// The key arguments of a call with their access flags, as Redis's ACL check finds them.
pub fn keys_with_flags(fullname: &str, arity: i32, args: &[Bytes]) -> Vec<(usize, u16)> {
    let Some(specs) = specs_of(fullname) else { return Vec::new() };
    let varflags = specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if !varflags {
        if let Some(k) = by_specs(specs, args, arity) {
            return k;
        }
    }
    match fullname {
        "set" => set_keys(args),
        "bitfield" => bitfield_keys(args),
        "migrate" => migrate_keys(args),
        "sort" => sort_keys(args),
        // Redis's `sortROGetKeys`: the sorted key only (SORT_RO has no STORE).
        "sort_ro" => sort_keys(args).into_iter().take(1).collect(),
        _ => Vec::new(),
    }
}

const RW_ACCESS_UPDATE: u16 = RW | ACCESS | UPDATE;

fn set_keys(args: &[Bytes]) -> Vec<(usize, u16)> {
    if args.len() < 2 {
        return Vec::new();
    }
    let get = args.iter().skip(3).any(|a| eq(a, "get"));
    vec![(1, if get { RW_ACCESS_UPDATE } else { OW | UPDATE })]
}

fn bitfield_keys(args: &[Bytes]) -> Vec<(usize, u16)> {
    if args.len() < 2 {
        return Vec::new();
    }
    let mut readonly = true;
    let mut i = 2;
    while i < args.len() {
        let rem = args.len() - i - 1;
        let a = &args[i];
        if eq(a, "get") && rem >= 2 {
            i += 2;
        } else if (eq(a, "set") || eq(a, "incrby")) && rem >= 3 {
            readonly = false;
            break;
        } else if eq(a, "overflow") && rem >= 1 {
            i += 1;
        } else {
            readonly = false;
            break;
        }
        i += 1;
    }
    vec![(1, if readonly { RO | ACCESS } else { RW_ACCESS_UPDATE })]
}

fn migrate_keys(args: &[Bytes]) -> Vec<(usize, u16)> {
    let argc = args.len();
    let (mut first, mut num) = (3usize, 1usize);
    if argc > 6 {
        let mut i = 6;
        while i < argc {
            if eq(&args[i], "keys") {
                if !args[3].is_empty() {
                    num = 0;
                } else {
                    first = i + 1;
                    num = argc - first;
                }
                break;
            }
            if eq(&args[i], "auth") {
                i += 1;
            } else if eq(&args[i], "auth2") {
                i += 2;
            }
            i += 1;
        }
    }
    (first..first + num).filter(|&i| i < argc).map(|i| (i, RW | ACCESS | DELETE)).collect()
}

fn sort_keys(args: &[Bytes]) -> Vec<(usize, u16)> {
    if args.len() < 2 {
        return Vec::new();
    }
    let mut out = vec![(1, RO | ACCESS)];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "limit") {
            i += 2;
        } else if eq(a, "get") || eq(a, "by") {
            i += 1;
        } else if eq(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    if let Some(s) = store {
        out.push((s, OW | UPDATE));
    }
    out
}

/// What a channel argument is used for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChannelUse {
    /// PUBLISH / SPUBLISH.
    Publish,
    /// SUBSCRIBE / SSUBSCRIBE.
    Subscribe,
    /// PSUBSCRIBE (matched literally against the user's patterns).
    PatternSubscribe,
}

/// The channel arguments ACL checks (Redis's `commands_with_channels`, without the
/// unsubscribe commands, which are never refused).
pub fn channels(fullname: &str, args: &[Bytes]) -> Vec<(usize, ChannelUse)> {
    match fullname {
        "publish" | "spublish" if args.len() > 1 => vec![(1, ChannelUse::Publish)],
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, ChannelUse::Subscribe)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, ChannelUse::PatternSubscribe)).collect(),
        _ => Vec::new(),
    }
}

/// True for the commands that name channels ACL checks.
pub fn has_channels(fullname: &str) -> bool {
    matches!(fullname, "publish" | "spublish" | "subscribe" | "ssubscribe" | "psubscribe")
}
