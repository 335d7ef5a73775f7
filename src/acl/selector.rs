//! A selector: one set of permissions (commands, key patterns, channel patterns). A user has a
//! root selector and any number of added `(...)` selectors; a command is allowed when one
//! selector allows all of it. Mirrors Redis 7.0's `aclSelector`, its rule syntax
//! (`ACLSetSelector`) and the way it is described back (`ACLDescribeSelector`).

use super::commands::{acl_table, category_bit, AclTable, CATEGORIES};
use super::keys::{self, ChannelUse, ACCESS, DELETE, INSERT, UPDATE};
use crate::cmd::util::glob_match;
use bytes::Bytes;

/// A key pattern may be read.
pub const PERM_READ: u8 = 1;
/// A key pattern may be written.
pub const PERM_WRITE: u8 = 2;
/// Both.
pub const PERM_ALL: u8 = 3;

/// Why a rule was refused (Redis's errno values of `ACLSetUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// ENOENT.
    UnknownCommand,
    /// EINVAL.
    Syntax,
    /// EEXIST.
    KeyAfterAll,
    /// EISDIR.
    ChannelAfterAll,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSub,
}

impl RuleError {
    /// Redis's `ACLSetUserStringError` text.
    pub fn text(self) -> &'static str {
        match self {
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// What a check refused (Redis's `ACL_DENIED_*`, in its order of relevance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command.
    Command,
    /// A key (argument index).
    Key,
    /// A channel (argument index).
    Channel,
}

/// One selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The user's root selector.
    pub root: bool,
    /// `allkeys` / `~*`.
    pub allkeys: bool,
    /// `allchannels` / `&*`.
    pub allchannels: bool,
    /// `allcommands` / `+@all` and nothing removed since.
    pub allcommands: bool,
    /// Redis's reserved "future commands" bit: set by `+@all`, cleared by `-@all`.
    pub future: bool,
    /// Allowed command ids.
    pub allowed: Vec<u64>,
    /// First arguments allowed for otherwise denied commands (`+select|0`), by id.
    pub firstargs: Vec<(usize, Vec<String>)>,
    /// Key patterns with their `PERM_*`.
    pub patterns: Vec<(Vec<u8>, u8)>,
    /// Channel patterns.
    pub channels: Vec<Vec<u8>>,
}

fn has_space(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0 || c == 0x0b)
}

impl Selector {
    /// An empty selector (no permissions); `allchannels` per `acl-pubsub-default`.
    pub fn new(root: bool, allchannels: bool) -> Selector {
        let n = acl_table().len().div_ceil(64);
        Selector {
            root,
            allkeys: false,
            allchannels,
            allcommands: false,
            future: false,
            allowed: vec![0; n],
            firstargs: Vec::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Whether command `id`'s bit is set.
    pub fn bit(&self, id: usize) -> bool {
        self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
                self.allcommands = false;
            }
        }
    }

    fn reset_firstargs(&mut self, id: usize) {
        self.firstargs.retain(|(i, _)| *i != id);
    }

    /// Allows or denies a command and, for a container, its subcommands.
    fn change_perm(&mut self, t: &AclTable, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.reset_firstargs(id);
        for &s in &t.cmds[id].subs {
            self.set_bit(s, allow);
        }
    }

    fn set_category(&mut self, t: &AclTable, cat: u32, allow: bool) {
        for id in 0..t.len() {
            if t.cmds[id].cats & cat != 0 {
                self.change_perm(t, id, allow);
            }
        }
    }

    fn set_all(&mut self, allow: bool) {
        for w in &mut self.allowed {
            *w = if allow { u64::MAX } else { 0 };
        }
        self.allcommands = allow;
        self.future = allow;
        self.firstargs.clear();
    }

    /// Applies one selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let t = acl_table();
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.patterns.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeyAfterAll);
            }
            let mut flags = 0;
            let mut offset = 1;
            if op[0] == b'%' {
                while offset < op.len() {
                    let c = op[offset].to_ascii_uppercase();
                    if c == b'R' && flags & PERM_READ == 0 {
                        flags |= PERM_READ;
                    } else if c == b'W' && flags & PERM_WRITE == 0 {
                        flags |= PERM_WRITE;
                    } else if op[offset] == b'~' {
                        offset += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    offset += 1;
                }
            } else {
                flags = PERM_ALL;
            }
            let pat = op.get(offset..).unwrap_or_default();
            if has_space(pat) {
                return Err(RuleError::Syntax);
            }
            match self.patterns.iter_mut().find(|(p, _)| p.as_slice() == pat) {
                Some((_, f)) => *f |= flags,
                None => self.patterns.push((pat.to_vec(), flags)),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pat = &op[1..];
            if has_space(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c.as_slice() == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if op.len() >= 2 && op[0] == b'+' && op[1] != b'@' {
            let name = &op[1..];
            match name.iter().rposition(|&c| c == b'|') {
                None => {
                    let id = t.lookup(name).ok_or(RuleError::UnknownCommand)?;
                    self.change_perm(t, id, true);
                }
                Some(bar) => {
                    let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
                    let id = lookup_parent(t, cmd).ok_or(RuleError::UnknownCommand)?;
                    if t.cmds[id].parent.is_some() {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !t.cmds[id].subs.is_empty() {
                        let sid = t.lookup(name).ok_or(RuleError::UnknownCommand)?;
                        self.change_perm(t, sid, true);
                    } else {
                        let sub = String::from_utf8_lossy(sub).into_owned();
                        tracing::warn!("Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})", String::from_utf8_lossy(name));
                        match self.firstargs.iter_mut().find(|(i, _)| *i == id) {
                            Some((_, v)) => {
                                if !v.iter().any(|s| s.eq_ignore_ascii_case(&sub)) {
                                    v.push(sub);
                                }
                            }
                            None => self.firstargs.push((id, vec![sub])),
                        }
                    }
                }
            }
        } else if op.len() >= 2 && op[0] == b'-' && op[1] != b'@' {
            let id = t.lookup(&op[1..]).ok_or(RuleError::UnknownCommand)?;
            self.change_perm(t, id, false);
        } else if op.len() >= 2 && (op[0] == b'+' || op[0] == b'-') && op[1] == b'@' {
            let cat = category_bit(&op[2..]).ok_or(RuleError::UnknownCommand)?;
            self.set_category(t, cat, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Checks a call (Redis's `ACLSelectorCheckCmd`); `Err((why, argument index))`.
    pub fn check(&self, id: usize, args: &[Bytes], keys: &mut KeyCache<'_>) -> Result<(), (Denied, usize)> {
        let t = acl_table();
        let c = &t.cmds[id];
        if !self.allcommands && !c.spec.has(crate::cmd::flags::NO_AUTH) && !self.bit(id) {
            let idx = if c.parent.is_some() { 2 } else { 1 };
            let ok = args.len() >= 2
                && self.firstargs.iter().find(|(i, _)| *i == id).is_some_and(|(_, v)| {
                    args.get(idx).is_some_and(|a| v.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(a)))
                });
            if !ok {
                return Err((Denied::Command, 0));
            }
        }
        if !self.allkeys && keys.has_keys() {
            for &(pos, flags) in keys.get(args) {
                if !self.key_ok(&args[pos], flags) {
                    return Err((Denied::Key, pos));
                }
            }
        }
        if !self.allchannels && keys::has_channels(c.fullname) {
            for (pos, how) in keys::channels(c.fullname, args) {
                if !self.channel_ok(&args[pos], how == ChannelUse::PatternSubscribe) {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }

    /// Whether the selector lets a key be used with key-spec flags `flags`.
    pub fn key_ok(&self, key: &[u8], flags: u16) -> bool {
        if self.allkeys {
            return true;
        }
        let mut need = 0;
        if flags & ACCESS != 0 {
            need |= PERM_READ;
        }
        if flags & (INSERT | DELETE | UPDATE) != 0 {
            need |= PERM_WRITE;
        }
        self.patterns.iter().any(|(p, f)| f & need == need && glob_match(p, key, false))
    }

    /// Whether the selector may read (`PERM_READ`) / write every key (SORT BY/GET).
    pub fn unrestricted_keys(&self, need: u8) -> bool {
        self.allkeys || self.patterns.iter().any(|(p, f)| f & need == need && p.as_slice() == b"*")
    }

    /// Whether a channel (or, `pattern`, a PSUBSCRIBE pattern matched literally) is allowed.
    pub fn channel_ok(&self, ch: &[u8], pattern: bool) -> bool {
        self.allchannels || channel_in(&self.channels, ch, pattern)
    }

    /// `~* &* +@all ...` as ACL LIST shows a selector (Redis's `ACLDescribeSelector`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.allkeys {
            s.push_str("~* ");
        } else {
            for p in &self.patterns {
                s.push_str(&pattern_string(p));
                s.push(' ');
            }
        }
        if self.allchannels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }

    /// The keys as ACL GETUSER shows them.
    pub fn keys_string(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        self.patterns.iter().map(pattern_string).collect::<Vec<_>>().join(" ")
    }

    /// The channels as ACL GETUSER shows them.
    pub fn channels_string(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    fn count_category(&self, t: &AclTable, cat: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for id in 0..t.len() {
            if t.cmds[id].cats & cat != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// The command rules, `+@all`/`-@all` first (Redis's `ACLDescribeSelectorCommandRules`):
    /// the best-fitting categories, then single commands until the bitmaps match.
    pub fn describe_commands(&self) -> String {
        let t = acl_table();
        let mut rules = String::new();
        let additive = !self.future;
        let mut fake = Selector::new(false, false);
        if additive {
            rules.push_str("-@all ");
            fake.set_all(false);
        } else {
            rules.push_str("+@all ");
            fake.set_all(true);
        }
        let mut temp = Selector::new(false, false);
        temp.allowed = self.allowed.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, name) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let Some(bit) = category_bit(name.as_bytes()) else { continue };
                let (on, off) = temp.count_category(t, bit);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some((j, bit));
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some((j, bit)) = best else { break };
            fake.set_category(t, bit, additive);
            temp.set_category(t, bit, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for id in 0..t.len() {
            let user = self.bit(id);
            if user != fake.bit(id) {
                rules.push(if user { '+' } else { '-' });
                rules.push_str(t.cmds[id].fullname);
                rules.push(' ');
                fake.change_perm(t, id, user);
            }
            if !user {
                if let Some((_, v)) = self.firstargs.iter().find(|(i, _)| *i == id) {
                    for a in v {
                        rules.push_str(&format!("+{}|{} ", t.cmds[id].fullname, a));
                    }
                }
            }
        }
        rules.pop();
        rules
    }
}

/// Looks up the command part of `cmd|x` (a top-level command or, to refuse it, a subcommand).
fn lookup_parent(t: &AclTable, cmd: &[u8]) -> Option<usize> {
    t.lookup(cmd)
}

fn pattern_string((p, f): &(Vec<u8>, u8)) -> String {
    let prefix = match *f {
        PERM_READ => "%R~",
        PERM_WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(p))
}

/// Redis's `ACLCheckChannelAgainstList`: channels match the list's patterns; a PSUBSCRIBE
/// pattern must equal one of them.
pub fn channel_in(list: &[Vec<u8>], ch: &[u8], pattern: bool) -> bool {
    list.iter().any(|p| if pattern { p.as_slice() == ch } else { glob_match(p, ch, false) })
}

/// The keys of one call, found once and shared by the selectors that look at them.
pub struct KeyCache<'a> {
    fullname: &'a str,
    arity: i32,
    keys: Option<Vec<(usize, u16)>>,
}

impl<'a> KeyCache<'a> {
    /// For a call of `fullname` (arity of its spec).
    pub fn new(fullname: &'a str, arity: i32) -> KeyCache<'a> {
        KeyCache { fullname, arity, keys: None }
    }

    fn has_keys(&self) -> bool {
        keys::has_keys(self.fullname)
    }

    fn get(&mut self, args: &[Bytes]) -> &[(usize, u16)] {
        let (f, a) = (self.fullname, self.arity);
        self.keys.get_or_insert_with(|| keys::keys_with_flags(f, a, args))
    }
}
