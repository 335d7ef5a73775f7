//! ACL: users, their passwords and permissions, and the check every command passes, as Redis
//! 7.0's `acl.c`.
//!
//! Users are node-wide: one registry behind a mutex, only touched by AUTH/HELLO, ACL commands,
//! CONFIG and start-up. Every change bumps a generation counter. A client holds an
//! `Arc<User>` and the generation it saw; the per-command check is one relaxed load of the
//! counter, then (when the user may do everything: the default user) nothing more. When the
//! counter moved, the client re-reads its user by name: a user modified by ACL SETUSER is
//! seen by its clients at once (as Redis changes the user in place), a deleted or reloaded
//! user closes them. ACL SETUSER/DELUSER/LOAD also sweep every shard's clients right away
//! (`sweep_shard`), so idle clients and subscribers whose channels were revoked are closed
//! without waiting for their next command.
//!
//! The check runs once per command on the client's home shard, before routing (see
//! `conn::dispatch`), and again for each queued command at EXEC.

pub mod commands;
pub mod keys;
pub mod log;
pub mod selector;
pub mod sha256;

use crate::cmd::{flags, ClientState, CommandSpec, ShardState};
use crate::protocol::Reply;
use bytes::Bytes;
use selector::{Denied, KeyCache, RuleError, Selector};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// `skip-sanitize-payload` / `sanitize-payload` (RESTORE payload checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sanitize {
    /// Neither flag set.
    Unset,
    /// `sanitize-payload`.
    Sanitize,
    /// `skip-sanitize-payload`.
    Skip,
}

/// A user.
#[derive(Clone, Debug)]
pub struct User {
    /// Name.
    pub name: Bytes,
    /// `on` (else `off`: no new logins).
    pub enabled: bool,
    /// `nopass`: any password works.
    pub nopass: bool,
    /// Payload sanitization flag.
    pub sanitize: Sanitize,
    /// SHA-256 hex of each password.
    pub passwords: Vec<String>,
    /// The root selector first, then the `(...)` ones.
    pub selectors: Vec<Selector>,
    /// Changes when the user is deleted and created again (ACL LOAD): clients of an older
    /// incarnation are closed.
    pub incarnation: u64,
    /// Every command, key and channel is allowed (the check is skipped).
    pub allows_all: bool,
}

impl User {
    fn new(name: &[u8]) -> User {
        User {
            name: Bytes::copy_from_slice(name),
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, pubsub_default_all())],
            incarnation: next_incarnation(),
            allows_all: false,
        }
    }

    fn refresh(&mut self) {
        let r = &self.selectors[0];
        self.allows_all = r.allcommands && r.allkeys && r.allchannels;
    }

    /// Applies one rule (Redis's `ACLSetUser`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let r = self.apply_inner(op);
        self.refresh();
        r
    }

    fn apply_inner(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Sanitize::Skip;
        } else if is("sanitize-payload") {
            self.sanitize = Sanitize::Sanitize;
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let pass = if op[0] == b'>' { sha256::hex(&op[1..]) } else { checked_hash(&op[1..])? };
            if !self.passwords.contains(&pass) {
                self.passwords.push(pass);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let pass = if op[0] == b'<' { sha256::hex(&op[1..]) } else { checked_hash(&op[1..])? };
            let Some(i) = self.passwords.iter().position(|p| *p == pass) else {
                return Err(RuleError::NoSuchPassword);
            };
            self.passwords.remove(i);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let inner = &op[1..op.len() - 1];
            let mut s = Selector::new(false, pubsub_default_all());
            let parts = crate::protocol::request::split_args(inner).ok_or(RuleError::Syntax)?;
            for p in parts {
                s.apply(&p)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply_inner(r.as_bytes())?;
            }
            if pubsub_default_all() {
                self.apply_inner(b"allchannels")?;
            }
            for r in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply_inner(r.as_bytes())?;
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// The rules as ACL LIST and ACL SAVE write them (Redis's `ACLDescribeUser`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for f in self.flag_names() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for sel in &self.selectors {
            if sel.root {
                s.push_str(&sel.describe());
            } else {
                s.push_str(&format!(" ({})", sel.describe()));
            }
        }
        s
    }

    /// The flags as ACL GETUSER lists them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.sanitize {
            Sanitize::Skip => v.push("skip-sanitize-payload"),
            Sanitize::Sanitize => v.push("sanitize-payload"),
            Sanitize::Unset => {}
        }
        v
    }

    /// Checks a call (Redis's `ACLCheckAllUserCommandPerm`): Ok, or the most relevant
    /// refusal over the selectors with its argument index.
    pub fn check(&self, fullname: &str, arity: i32, args: &[Bytes]) -> Result<(), (Denied, usize)> {
        let Some(id) = commands::acl_table().lookup(fullname.as_bytes()) else { return Ok(()) };
        let mut cache = KeyCache::new(fullname, arity);
        let mut relevant = (Denied::Command, 0usize);
        for s in &self.selectors {
            match s.check(id, args, &mut cache) {
                Ok(()) => return Ok(()),
                Err((why, pos)) => {
                    if why > relevant.0 || (why == relevant.0 && pos > relevant.1) {
                        relevant = (why, pos);
                    }
                }
            }
        }
        Err(relevant)
    }

    /// Whether some selector allows the command with unrestricted access of kind `perm`
    /// (`selector::PERM_READ`...) to every key (SORT BY/GET).
    pub fn unrestricted_keys(&self, fullname: &str, arity: i32, args: &[Bytes], perm: u8) -> bool {
        let Some(id) = commands::acl_table().lookup(fullname.as_bytes()) else { return true };
        let mut cache = KeyCache::new(fullname, arity);
        self.selectors.iter().any(|s| s.check(id, args, &mut cache).is_ok() && s.unrestricted_keys(perm))
    }

    fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256::hex(pass);
        self.passwords.iter().any(|p| constant_time_eq(p.as_bytes(), h.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn checked_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64 || !h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// The node's users.
struct Registry {
    users: BTreeMap<Bytes, Arc<User>>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);
static INCARNATION: AtomicU64 = AtomicU64::new(1);
static AUTH_REQUIRED: AtomicBool = AtomicBool::new(false);
static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);

fn next_incarnation() -> u64 {
    INCARNATION.fetch_add(1, Ordering::Relaxed)
}

fn pubsub_default_all() -> bool {
    PUBSUB_DEFAULT_ALL.load(Ordering::Relaxed)
}

/// `acl-pubsub-default`: new users and `reset` get `allchannels` when true.
pub fn set_pubsub_default(allchannels: bool) {
    PUBSUB_DEFAULT_ALL.store(allchannels, Ordering::Relaxed);
}

/// Redis's default user: `on nopass ~* &* +@all`.
fn default_user() -> User {
    let mut u = User::new(b"default");
    for r in ["+@all", "~*", "&*", "on", "nopass"] {
        let _ = u.apply(r.as_bytes());
    }
    u
}

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        let mut users = BTreeMap::new();
        users.insert(Bytes::from_static(b"default"), Arc::new(default_user()));
        Mutex::new(Registry { users })
    })
    .lock()
    .unwrap_or_else(|p| p.into_inner())
}

/// Publishes a change: bumps the generation and recomputes whether AUTH is required.
fn changed(reg: &Registry) {
    let required = reg.users.get(&b"default"[..]).is_none_or(|d| !d.nopass || !d.enabled);
    AUTH_REQUIRED.store(required, Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Release);
}

/// The current generation (one relaxed load).
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Redis's `authRequired` for a client that is not authenticated: the default user has a
/// password or is off.
#[inline]
pub fn auth_required() -> bool {
    AUTH_REQUIRED.load(Ordering::Relaxed)
}

/// The default user (new connections start with it).
pub fn default() -> Arc<User> {
    registry().users.get(&b"default"[..]).cloned().unwrap_or_else(|| Arc::new(default_user()))
}

/// A user by name.
pub fn get(name: &[u8]) -> Option<Arc<User>> {
    registry().users.get(name).cloned()
}

/// All users, by name.
pub fn all() -> Vec<Arc<User>> {
    registry().users.values().cloned().collect()
}

/// New connections are authenticated at once: the default user is `nopass` and `on`.
pub fn default_autologin() -> bool {
    !auth_required()
}

/// `requirepass`: the default user's password (None: nopass), as Redis's
/// `ACLUpdateDefaultUserPassword`.
pub fn set_default_password(pass: Option<&[u8]>) {
    let mut reg = registry();
    let mut u = reg.users.get(&b"default"[..]).map(|u| (**u).clone()).unwrap_or_else(default_user);
    let _ = u.apply(b"resetpass");
    match pass {
        Some(p) => {
            let mut op = b">".to_vec();
            op.extend_from_slice(p);
            let _ = u.apply(&op);
        }
        None => {
            let _ = u.apply(b"nopass");
        }
    }
    reg.users.insert(Bytes::from_static(b"default"), Arc::new(u));
    changed(&reg);
}

/// Checks a username/password pair (Redis's `ACLCheckUserCredentials`).
pub fn authenticate(name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
    let u = get(name)?;
    (u.enabled && u.password_ok(pass)).then_some(u)
}

/// Redis's `ACLMergeSelectorArguments`: a selector spread over several arguments is joined
/// with spaces; Err(index of the opening argument) when a parenthesis is left open.
pub fn merge_selector_args(args: &[Bytes]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((start, mut sel)) = open.take() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(sel);
            } else {
                open = Some((start, sel));
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}

/// True when a name has spaces or NULs (refused for users and patterns).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0 || c == 0x0b)
}

/// ACL SETUSER: creates or modifies a user atomically (all rules or none); the error text.
pub fn set_user(name: &[u8], rules: &[Bytes]) -> Result<(), String> {
    let merged = merge_selector_args(rules).map_err(|i| {
        format!("Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(&rules[i]))
    })?;
    let mut reg = registry();
    let mut u = match reg.users.get(name) {
        Some(u) => (**u).clone(),
        None => User::new(name),
    };
    for op in &merged {
        if let Err(e) = u.apply(op) {
            return Err(format!("Error in ACL SETUSER modifier '{}': {}", String::from_utf8_lossy(op), e.text()));
        }
    }
    reg.users.insert(Bytes::copy_from_slice(name), Arc::new(u));
    changed(&reg);
    Ok(())
}

/// ACL DELUSER: removes users, returns how many existed. The default user cannot be removed
/// (checked by the caller).
pub fn del_users(names: &[Bytes]) -> usize {
    let mut reg = registry();
    let n = names.iter().filter(|n| reg.users.remove(&n[..]).is_some()).count();
    changed(&reg);
    n
}

/// Builds users from `user` lines (`[name, rules...]`); Err(text) on the first bad line.
fn users_from_lines(lines: &[Vec<Bytes>]) -> Result<BTreeMap<Bytes, Arc<User>>, String> {
    let mut users = BTreeMap::new();
    for l in lines {
        let name = &l[0];
        let mut u = if &name[..] == b"default" { default_user() } else { User::new(name) };
        if &name[..] == b"default" {
            let _ = u.apply(b"reset");
        }
        let merged = merge_selector_args(&l[1..]).map_err(|_| "Unmatched parenthesis".to_string())?;
        for op in &merged {
            if let Err(e) = u.apply(op) {
                return Err(format!(
                    "Error loading ACL rule '{}' for the user named '{}': {}",
                    String::from_utf8_lossy(op),
                    String::from_utf8_lossy(name),
                    e.text()
                ));
            }
        }
        if !u.enabled {
            tracing::info!("The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.", String::from_utf8_lossy(name));
        }
        users.insert(name.clone(), Arc::new(u));
    }
    Ok(users)
}

/// Parses an ACL file (Redis's `ACLLoadFromFile`): the users, or every problem found.
fn parse_file(path: &str) -> Result<BTreeMap<Bytes, Arc<User>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("Error loading ACLs, opening file '{path}': {e}"))?;
    let mut errors = String::new();
    let mut users: BTreeMap<Bytes, Arc<User>> = BTreeMap::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        let argv: Vec<Bytes> =
            line.split(|&c| c == b' ').filter(|a| !a.is_empty()).map(Bytes::copy_from_slice).collect();
        if argv.is_empty() {
            continue;
        }
        if &argv[0][..] != b"user" || argv.len() < 2 {
            errors.push_str(&format!("{path}:{linenum} should start with user keyword followed by the username. "));
            continue;
        }
        if has_spaces(&argv[1]) {
            errors.push_str(&format!(
                "'{path}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(&argv[1])
            ));
            continue;
        }
        if users.contains_key(&argv[1]) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(&argv[1])
            ));
            continue;
        }
        let mut u = User::new(&argv[1]);
        let merged = match merge_selector_args(&argv[2..]) {
            Ok(m) => m,
            Err(_) => {
                errors.push_str(&format!("{path}:{linenum}: Unmatched parenthesis in selector definition."));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for op in &merged {
            let op = trim(op);
            if let Err(e) = u.apply(op) {
                if e == RuleError::UnknownCommand {
                    errors.push_str(&format!(
                        "{path}:{linenum}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(op),
                        e.text()
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{path}:{linenum}: {}. ", e.text()));
                    syntax_error = true;
                }
            }
        }
        users.insert(argv[1].clone(), Arc::new(u));
    }
    if !errors.is_empty() {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        return Err(errors);
    }
    Ok(users)
}

fn trim(s: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|c| !is_ws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// ACL LOAD: replaces every user with the file's; the default user keeps its incarnation
/// (its clients stay), every other user is new (their clients are closed by the sweep).
pub fn load_file(path: &str) -> Result<(), String> {
    let mut users = parse_file(path)?;
    let mut reg = registry();
    let def = users.remove(&b"default"[..]).map(|u| (*u).clone()).unwrap_or_else(default_user);
    let mut def = def;
    def.incarnation = reg.users.get(&b"default"[..]).map_or(def.incarnation, |d| d.incarnation);
    users.insert(Bytes::from_static(b"default"), Arc::new(def));
    reg.users = users;
    changed(&reg);
    Ok(())
}

/// The `user ...` lines of every user (ACL SAVE, CONFIG REWRITE).
pub fn user_lines() -> Vec<String> {
    all().iter().map(|u| format!("user {} {}", String::from_utf8_lossy(&u.name), u.describe())).collect()
}

/// ACL SAVE: writes every user to `path` (a temporary file renamed over it).
pub fn save_file(path: &str) -> Result<(), String> {
    let mut text = String::new();
    for l in user_lines() {
        text.push_str(&l);
        text.push('\n');
    }
    let tmp = format!("{path}.tmp-{}-{}", std::process::id(), crate::storage::now_ms());
    let r = std::fs::write(&tmp, text).map_err(|e| format!("Writing ACL file for ACL SAVE: {e}"));
    let r = r.and_then(|_| std::fs::rename(&tmp, path).map_err(|e| format!("Renaming ACL file for ACL SAVE: {e}")));
    if let Err(e) = &r {
        tracing::warn!("{}", e);
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Start-up: `user` lines of redis.conf or the `aclfile` (not both, as Redis).
pub fn load_at_startup(cfg: &crate::config::Config) -> Result<(), String> {
    CLUSTER_MODE.store(cfg.cluster_enabled, Ordering::Relaxed);
    set_pubsub_default(cfg.get("acl-pubsub-default") == Some("allchannels"));
    log::set_max_len(cfg.get("acllog-max-len").and_then(|v| v.parse().ok()).unwrap_or(128));
    let aclfile = cfg.get("aclfile").unwrap_or("");
    if !aclfile.is_empty() && !cfg.users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let lines: Vec<Vec<Bytes>> =
        cfg.users.iter().map(|l| l.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()).collect();
    let configured =
        users_from_lines(&lines).map_err(|e| format!("{e}\nCritical error while loading ACLs. Exiting."))?;
    {
        let mut reg = registry();
        for (n, u) in configured {
            reg.users.insert(n, u);
        }
        changed(&reg);
    }
    if !aclfile.is_empty() {
        load_file(aclfile).map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(())
}

/// Validates one `user` line of redis.conf: the error text, as Redis's config loader.
pub fn validate_config_line(args: &[String]) -> Result<(), String> {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let merged = merge_selector_args(&argv[1..])
        .map_err(|i| format!("Error in user declaration '{}': Syntax error", args[i + 1]))?;
    let mut u = User::new(&argv[0]);
    for op in &merged {
        if let Err(e) = u.apply(op) {
            if e != RuleError::UnknownCommand {
                return Err(format!("Error in user declaration '{}': {}", String::from_utf8_lossy(op), e.text()));
            }
        }
    }
    Ok(())
}

/// Brings a client's user up to date after a change; false when the user was deleted or
/// replaced (the client must be closed).
pub fn refresh_client(c: &mut ClientState) -> bool {
    let gen = generation();
    if c.acl_gen == gen {
        return true;
    }
    c.acl_gen = gen;
    match get(&c.user.name) {
        Some(u) if u.incarnation == c.user.incarnation => {
            c.user = u;
            true
        }
        _ => false,
    }
}

/// The NOPERM reply for a refusal at the top level.
pub fn noperm(why: Denied, fullname: &str) -> Reply {
    match why {
        Denied::Command => Reply::error(format!("NOPERM this user has no permissions to run the '{fullname}' command")),
        Denied::Key => Reply::err("NOPERM this user has no permissions to access one of the keys used as arguments"),
        Denied::Channel => {
            Reply::err("NOPERM this user has no permissions to access one of the channels used as arguments")
        }
    }
}

/// The per-command check on the home shard. The fast path: the client's user did not change
/// and may do everything.
#[inline]
pub fn check_client(
    c: &mut ClientState,
    spec: &'static CommandSpec,
    fullname: &'static str,
    args: &[Bytes],
) -> Option<Reply> {
    if c.acl_gen == generation() && c.user.allows_all && !c.killed {
        return None;
    }
    check_client_slow(c, spec, fullname, args)
}

#[cold]
fn check_client_slow(
    c: &mut ClientState,
    spec: &'static CommandSpec,
    fullname: &'static str,
    args: &[Bytes],
) -> Option<Reply> {
    // The master link is no ACL user's: it applies its whole batch even when killed meanwhile
    // (its offset counts every command of the batch; the kill ends the link after it).
    if c.master {
        return None;
    }
    if c.killed || !refresh_client(c) {
        // Deleted or reloaded user: close without answering, as Redis frees the client.
        c.killed = true;
        c.close_after_reply = true;
        return Some(Reply::Raw(Bytes::new()));
    }
    if c.user.allows_all || c.master || spec.has(flags::NO_AUTH) {
        return None;
    }
    let Err((why, pos)) = c.user.check(fullname, spec.arity, args) else {
        return sort_refusal(&c.user, fullname, spec.arity, args);
    };
    let ctx = if c.multi.is_some() { log::Context::Multi } else { log::Context::Toplevel };
    log::add_denied(c, why, ctx, fullname, args, pos);
    Some(noperm(why, fullname))
}

/// The check of a queued command at EXEC: the NOPERM text Redis gives when the rules changed
/// after the command was queued.
pub fn check_at_exec(c: &mut ClientState, spec: &'static CommandSpec, fullname: &str, args: &[Bytes]) -> Option<Reply> {
    if !refresh_client(c) || c.user.allows_all || c.master || spec.has(flags::NO_AUTH) {
        return None;
    }
    let (why, pos) = c.user.check(fullname, spec.arity, args).err()?;
    log::add_denied(c, why, log::Context::Multi, fullname, args, pos);
    let reason = match why {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        Denied::Channel => "no permission to access one of the channels used as arguments",
    };
    Some(Reply::error(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")))
}

/// After a change of users, on every shard: closes the clients whose user was deleted or
/// replaced, and the subscribers whose user lost a channel they listen to (Redis's
/// `ACLFreeUserAndKillClients` and `ACLKillPubsubClientsIfNeeded`). `args` ends with the
/// id of the client that made the change: it is left to close itself after its reply.
pub fn sweep_shard(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
    let me: u64 = args.last().and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut killed = 0;
    for c in shard.clients.values() {
        let mut c = c.borrow_mut();
        if c.killed || c.master || c.id == me {
            continue;
        }
        let old = c.user.clone();
        let alive = refresh_client(&mut c);
        let kill = !alive || (!Arc::ptr_eq(&old, &c.user) && loses_channels(&c));
        if kill {
            c.killed = true;
            // SAFETY: the fd belongs to a live connection of this shard; shutdown only wakes
            // its pending read, the connection task closes the socket itself.
            unsafe {
                libc::shutdown(c.fd, libc::SHUT_RDWR);
            }
            killed += 1;
        }
    }
    Reply::Int(killed)
}

/// Whether a subscriber listens to a channel its (new) user no longer allows.
fn loses_channels(c: &ClientState) -> bool {
    let Some(subs) = c.pubsub.as_ref() else { return false };
    let u = &c.user;
    if u.selectors.iter().any(|s| s.allchannels) {
        return false;
    }
    let upcoming: Vec<Vec<u8>> = u.selectors.iter().flat_map(|s| s.channels.iter().cloned()).collect();
    subs.patterns.iter().any(|p| !selector::channel_in(&upcoming, p, true))
        || subs.channels.iter().chain(subs.shard.iter()).any(|ch| !selector::channel_in(&upcoming, ch, false))
}

/// Whether the calling client must close after its reply (its own user was deleted).
pub fn caller_gone(c: &mut ClientState) -> bool {
    !refresh_client(c)
}

/// CONFIG REWRITE: the `user` lines of the file are replaced by the current users (none when
/// an `aclfile` holds them), as Redis's `rewriteConfigUserOption`.
pub fn rewrite_users(text: &str, aclfile: &str) -> String {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().to_ascii_lowercase().starts_with("user "))
        .map(str::to_string)
        .collect();
    if aclfile.is_empty() {
        out.extend(user_lines());
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// SORT/SORT_RO with a BY pattern or GET need read access to every key (the keys come from
/// the data): Redis's refusal for a user without it, found by the same option walk as SORT's
/// (an option SORT itself would refuse first stops the walk). Not in cluster mode, where SORT
/// refuses these options anyway.
fn sort_refusal(u: &User, fullname: &str, arity: i32, args: &[Bytes]) -> Option<Reply> {
    if !matches!(fullname, "sort" | "sort_ro") || u.allows_all || cluster_mode() {
        return None;
    }
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        if is("asc") || is("desc") || is("alpha") {
        } else if is("limit") && left >= 2 {
            j += 2;
        } else if fullname == "sort" && is("store") && left >= 1 {
            j += 1;
        } else if is("by") && left >= 1 {
            if args[j + 1].contains(&b'*') && !u.unrestricted_keys(fullname, arity, args, selector::PERM_READ) {
                return Some(Reply::err("ERR BY option of SORT denied due to insufficient ACL permissions."));
            }
            j += 1;
        } else if is("get") && left >= 1 {
            if !u.unrestricted_keys(fullname, arity, args, selector::PERM_READ) {
                return Some(Reply::err("ERR GET option of SORT denied due to insufficient ACL permissions."));
            }
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    None
}

static CLUSTER_MODE: AtomicBool = AtomicBool::new(false);

fn cluster_mode() -> bool {
    CLUSTER_MODE.load(Ordering::Relaxed)
}

/// The check of `redis.call` inside a script (Redis's `scriptVerifyACL`): the error text,
/// logged in ACL LOG with the `lua` context.
pub fn check_script(c: &ClientState, spec: &'static CommandSpec, fullname: &str, args: &[Bytes]) -> Result<(), String> {
    if c.user.allows_all || spec.has(flags::NO_AUTH) {
        return Ok(());
    }
    let Err((why, pos)) = c.user.check(fullname, spec.arity, args) else { return Ok(()) };
    log::add_denied(c, why, log::Context::Lua, fullname, args, pos);
    let what = match why {
        Denied::Command => "can't run this command or subcommand",
        Denied::Key => "can't access at least one of the keys mentioned in the command arguments",
        Denied::Channel => "can't publish to the channel mentioned in the command",
    };
    Err(format!("The user executing the script {what}"))
}
