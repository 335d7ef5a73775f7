//! Sentinel's users (Redis 7.0 Sentinels have ACLs): ACL SETUSER/GETUSER/DELUSER/USERS/LIST/
//! WHOAMI/CAT/GENPASS/DRYRUN/LOG/LOAD/SAVE/HELP, AUTH by user and password, and the command and
//! channel permission checks. A Sentinel has no keys, so key patterns are kept and shown but
//! never consulted. Passwords are kept as SHA-256 hex digests, as Redis keeps them.
//!
//! Invariant: the `default` user always exists.

use super::command_table::Cmd;
use crate::protocol::reply::Reply;
use bytes::Bytes;
use std::collections::BTreeMap;

/// One user.
#[derive(Clone, Debug)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize_payload: bool,
    /// SHA-256 digests, hex.
    pub passwords: Vec<String>,
    /// Command rules after the implicit `-@all`, in order: (allow, `@category` or command).
    pub rules: Vec<(bool, String)>,
    pub keys: Vec<String>,
    pub all_channels: bool,
    pub channels: Vec<String>,
}

impl User {
    fn new() -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize_payload: false,
            passwords: Vec::new(),
            rules: Vec::new(),
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    /// Whether the user may run `cmd` (a command or `container|sub`).
    pub fn can_run(&self, cmd: &Cmd) -> bool {
        let top = cmd.name.split('|').next().unwrap_or(cmd.name);
        let mut ok = false;
        for (allow, r) in &self.rules {
            let hit = match r.strip_prefix('@') {
                Some("all") => true,
                Some(cat) => cmd.acl.split_whitespace().any(|c| c.trim_start_matches('@') == cat),
                None => r == top || r == cmd.name,
            };
            if hit {
                ok = *allow;
            }
        }
        ok
    }

    /// Whether the user may use `channel` (exact name; patterns are checked literally as Redis
    /// does for PSUBSCRIBE).
    pub fn can_use_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p.as_bytes() == channel
                } else {
                    crate::cmd::util::glob_match(p.as_bytes(), channel, false)
                }
            })
    }

    fn commands_text(&self) -> String {
        let mut out = Vec::new();
        if !matches!(self.rules.first(), Some((_, r)) if r == "@all") {
            out.push("-@all".to_string());
        }
        for (allow, r) in &self.rules {
            out.push(format!("{}{}", if *allow { '+' } else { '-' }, r));
        }
        out.join(" ")
    }

    fn channels_text(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let mut v = vec!["resetchannels".to_string()];
        v.extend(self.channels.iter().map(|c| format!("&{c}")));
        v.join(" ")
    }

    /// Redis's `ACLDescribeUser`.
    fn describe(&self) -> String {
        let mut v = vec![if self.enabled { "on" } else { "off" }.to_string()];
        if self.nopass {
            v.push("nopass".into());
        }
        if self.sanitize_payload {
            v.push("sanitize-payload".into());
        }
        v.extend(self.passwords.iter().map(|p| format!("#{p}")));
        v.extend(self.keys.iter().map(|k| format!("~{k}")));
        v.push(self.channels_text());
        v.push(self.commands_text());
        v.join(" ")
    }

    /// Applies one ACL SETUSER rule (Redis's `ACLSetUser`).
    fn apply(&mut self, op: &str) -> Result<(), &'static str> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.keys = vec!["*".into()],
            "resetkeys" => self.keys.clear(),
            "allchannels" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => self.rules = vec![(true, "@all".into())],
            "nocommands" | "-@all" => self.rules.clear(),
            "sanitize-payload" => self.sanitize_payload = true,
            "skip-sanitize-payload" => self.sanitize_payload = false,
            "reset" => {
                *self = User::new();
                self.sanitize_payload = true;
            }
            _ => {
                if let Some(p) = op.strip_prefix('>') {
                    let h = sha256_hex(p.as_bytes());
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                } else if let Some(p) = op.strip_prefix('<') {
                    let h = sha256_hex(p.as_bytes());
                    if !self.passwords.contains(&h) {
                        return Err("no such password");
                    }
                    self.passwords.retain(|x| *x != h);
                } else if let Some(h) = op.strip_prefix('#') {
                    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters");
                    }
                    let h = h.to_ascii_lowercase();
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                } else if let Some(h) = op.strip_prefix('!') {
                    if !self.passwords.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                        return Err("no such password");
                    }
                    self.passwords.retain(|x| !x.eq_ignore_ascii_case(h));
                } else if let Some(k) = op.strip_prefix('~') {
                    if !self.keys.iter().any(|x| x == k) {
                        self.keys.push(k.into());
                    }
                } else if let Some(c) = op.strip_prefix('&') {
                    if !self.all_channels && !self.channels.iter().any(|x| x == c) {
                        self.channels.push(c.into());
                    }
                } else if let Some(r) = lower.strip_prefix('+').or_else(|| lower.strip_prefix('-')) {
                    let allow = lower.starts_with('+');
                    if let Some(cat) = r.strip_prefix('@') {
                        if !CATEGORIES.contains(&cat) {
                            return Err("Unknown command or category name in ACL");
                        }
                    } else {
                        let known = r.split_once('|').map_or_else(
                            || super::introspection::lookup(r.as_bytes()).is_some(),
                            |(base, sub)| {
                                super::introspection::lookup(base.as_bytes())
                                    .is_some_and(|c| c.subs.iter().any(|s| s.name.ends_with(&format!("|{sub}"))))
                            },
                        );
                        if !known {
                            return Err("Unknown command or category name in ACL");
                        }
                    }
                    self.rules.retain(|(_, x)| x != r);
                    self.rules.push((allow, r.to_string()));
                } else {
                    return Err("Syntax error");
                }
            }
        }
        Ok(())
    }
}

/// Redis's ACL categories (the data node's list).
pub static CATEGORIES: &[&str] = &crate::acl::commands::CATEGORIES;

/// One ACL LOG entry.
struct LogEntry {
    count: u64,
    reason: &'static str,
    object: String,
    username: String,
    created: u64,
    client_info: String,
}

/// All users and the ACL log.
pub struct Users {
    pub users: BTreeMap<String, User>,
    log: Vec<LogEntry>,
}

impl Default for Users {
    fn default() -> Users {
        let mut default = User::new();
        default.enabled = true;
        default.nopass = true;
        default.keys = vec!["*".into()];
        default.all_channels = true;
        default.rules = vec![(true, "@all".into())];
        Users { users: BTreeMap::from([("default".to_string(), default)]), log: Vec::new() }
    }
}

impl Users {
    /// Redis's `ACLCheckUserCredentials`: the user exists, is on, and the password matches.
    pub fn check(&self, user: &str, pass: &[u8]) -> bool {
        self.users.get(user).is_some_and(|u| u.enabled && (u.nopass || u.passwords.contains(&sha256_hex(pass))))
    }

    /// Whether a client that never authenticated runs as an authenticated `default`
    /// (default user on and `nopass`), as Redis decides at connection time.
    pub fn default_is_open(&self) -> bool {
        self.users.get("default").is_some_and(|u| u.enabled && u.nopass)
    }

    /// Records a failure in the ACL log (merging with a similar recent entry, as Redis).
    pub fn log_failure(&mut self, reason: &'static str, object: &str, username: &str, client_info: String) {
        let t = super::state::now();
        if let Some(e) = self.log.iter_mut().find(|e| {
            e.reason == reason && e.object == object && e.username == username && t.saturating_sub(e.created) < 60_000
        }) {
            e.count += 1;
            e.created = t;
            e.client_info = client_info;
            return;
        }
        self.log.insert(
            0,
            LogEntry { count: 1, reason, object: object.into(), username: username.into(), created: t, client_info },
        );
        self.log.truncate(128);
    }
}

fn s(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `ACL <sub> ...` for a client logged in as `me` (arity already checked). The second
/// value lists users whose connections must be closed (disabled or deleted).
pub fn acl(users: &mut Users, me: &str, args: &[Bytes]) -> (Reply, Vec<String>) {
    let sub = s(&args[1]).to_ascii_lowercase();
    let mut kill = Vec::new();
    let r = match sub.as_str() {
        "setuser" => {
            let name = s(&args[2]);
            let mut u = users.users.get(&name).cloned().unwrap_or_else(User::new);
            for op in &args[3..] {
                let op = s(op);
                if let Err(e) = u.apply(&op) {
                    return (Reply::error(format!("ERR Error in ACL SETUSER modifier '{op}': {e}")), kill);
                }
            }
            users.users.insert(name, u);
            Reply::Ok
        }
        "deluser" => {
            let mut n = 0;
            for a in &args[2..] {
                let name = s(a);
                if name == "default" {
                    return (Reply::error("ERR The 'default' user cannot be removed".into()), kill);
                }
            }
            for a in &args[2..] {
                let name = s(a);
                if users.users.remove(&name).is_some() {
                    n += 1;
                    kill.push(name);
                }
            }
            Reply::Int(n)
        }
        "getuser" => match users.users.get(&s(&args[2])) {
            None => Reply::Nil,
            Some(u) => {
                let b = |t: &str| Reply::bulk(t.as_bytes());
                let mut flags = vec![Reply::bulk(if u.enabled { b"on".as_slice() } else { b"off".as_slice() })];
                if u.nopass {
                    flags.push(b("nopass"));
                }
                if u.sanitize_payload {
                    flags.push(b("sanitize-payload"));
                }
                Reply::Map(vec![
                    (b("flags"), Reply::Array(flags)),
                    (b("passwords"), Reply::Array(u.passwords.iter().map(|p| b(p)).collect())),
                    (b("commands"), b(&u.commands_text())),
                    (b("keys"), b(&u.keys.iter().map(|k| format!("~{k}")).collect::<Vec<_>>().join(" "))),
                    (
                        b("channels"),
                        b(&if u.all_channels {
                            "&*".to_string()
                        } else {
                            u.channels.iter().map(|c| format!("&{c}")).collect::<Vec<_>>().join(" ")
                        }),
                    ),
                    (b("selectors"), Reply::Array(Vec::new())),
                ])
            }
        },
        "users" => Reply::Array(users.users.keys().map(|k| Reply::bulk(k.as_bytes())).collect()),
        "list" => Reply::Array(
            users.users.iter().map(|(k, u)| Reply::bulk(format!("user {} {}", k, u.describe()).as_bytes())).collect(),
        ),
        "whoami" => Reply::bulk(me.as_bytes()),
        "cat" if args.len() == 2 => Reply::Array(CATEGORIES.iter().map(|c| Reply::bulk(c.as_bytes())).collect()),
        "cat" => {
            let cat = s(&args[2]).to_ascii_lowercase();
            if !CATEGORIES.contains(&cat.as_str()) {
                return (Reply::error(format!("ERR Unknown category '{}'", s(&args[2]))), kill);
            }
            let mut out = Vec::new();
            for c in super::command_table::COMMANDS {
                for x in std::iter::once(c).chain(c.subs.iter()) {
                    if x.acl.split_whitespace().any(|a| a.trim_start_matches('@') == cat) {
                        out.push(Reply::bulk(x.name.as_bytes()));
                    }
                }
            }
            Reply::Array(out)
        }
        "genpass" => {
            let bits = match args.get(2).map(|a| s(a).parse::<i64>()) {
                None => 256,
                Some(Ok(b)) if (1..=4096).contains(&b) => b as usize,
                Some(_) => {
                    return (
                        Reply::error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096".into()),
                        kill,
                    )
                }
            };
            use rand::RngCore;
            let mut raw = vec![0u8; bits.div_ceil(8)];
            rand::thread_rng().fill_bytes(&mut raw);
            let hex: String = raw.iter().map(|x| format!("{x:02x}")).collect();
            Reply::bulk(&hex.as_bytes()[..bits.div_ceil(4)])
        }
        "dryrun" => {
            let Some(u) = users.users.get(&s(&args[2])) else {
                return (Reply::error(format!("ERR User '{}' not found", s(&args[2]))), kill);
            };
            match super::introspection::check(&args[3..]) {
                Err(_) => Reply::error(format!("ERR Command '{}' not found", s(&args[3]))),
                Ok(c) if u.can_run(c) => Reply::Ok,
                Ok(c) => Reply::bulk(format!("This user has no permissions to run the '{}' command", c.name).as_bytes()),
            }
        }
        "log" => {
            match args.get(2).map(|a| s(a).to_ascii_lowercase()) {
                Some(r) if r == "reset" => {
                    users.log.clear();
                    return (Reply::Ok, kill);
                }
                Some(c) => {
                    let Ok(n) = c.parse::<usize>() else {
                        return (Reply::error("ERR value is out of range, must be positive".into()), kill);
                    };
                    return (log_reply(users, n), kill);
                }
                None => log_reply(users, 10),
            }
        }
        "load" | "save" => Reply::error("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.".into()),
        _ => Reply::Array(HELP.iter().map(|l| Reply::status(l)).collect()),
    };
    (r, kill)
}

fn log_reply(users: &Users, n: usize) -> Reply {
    let t = super::state::now();
    let b = |x: &str| Reply::bulk(x.as_bytes());
    Reply::Array(
        users
            .log
            .iter()
            .take(n)
            .map(|e| {
                Reply::Map(vec![
                    (b("count"), Reply::Int(e.count as i64)),
                    (b("reason"), b(e.reason)),
                    (b("context"), b("toplevel")),
                    (b("object"), b(&e.object)),
                    (b("username"), b(&e.username)),
                    (b("age-seconds"), Reply::Double(t.saturating_sub(e.created) as f64 / 1000.0)),
                    (b("client-info"), b(&e.client_info)),
                ])
            })
            .collect(),
    )
}

static HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// SHA-256 of `data`, as 64 lowercase hex digits (how ACL passwords are stored and shown):
/// the data node's ACL hash.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::acl::sha256::hex(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_digests() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"pw"), "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
    }

    #[test]
    fn setuser_describes_like_redis() {
        let mut u = User::new();
        for op in ["on", ">pw", "+@all", "&chan*"] {
            u.apply(op).unwrap();
        }
        assert_eq!(
            u.describe(),
            "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 resetchannels &chan* +@all"
        );
        let mut v = User::new();
        for op in ["on", "nopass", "-@all", "+ping", "allchannels"] {
            v.apply(op).unwrap();
        }
        assert_eq!(v.describe(), "on nopass &* -@all +ping");
        assert_eq!(Users::default().users["default"].describe(), "on nopass ~* &* +@all");
    }
}
