//! ACL compared with a real redis-server 7.0: user rules as ACL SETUSER / GETUSER / LIST
//! print them, the NOPERM and WRONGPASS replies of refused commands (commands, subcommands,
//! first arguments, key read/write patterns, channels, selectors), MULTI/EXEC, ACL LOG,
//! DRYRUN, the aclfile, `user` lines and requirepass, and the clients closed when their user
//! is deleted or loses a channel. slotcore runs with two shards, so keys of one command live
//! on different shards and the check has to happen before routing.

mod common;
use common::{Raw, Server, WAIT};
use std::time::Instant;

/// This binary's ports (the `acl` engineer's range).
fn ports() {
    common::use_ports(8120);
}

fn pair(extra: &[&str]) -> (Server, Server) {
    ports();
    let mut sc = vec!["--shards", "2"];
    sc.extend_from_slice(extra);
    (Server::slotcore(&sc), Server::redis(extra))
}

/// Same commands on both servers, same raw replies.
fn same(a: &mut Raw, b: &mut Raw, cmds: &[&[&str]]) {
    common::assert_same(a, b, cmds);
}

#[test]
fn user_rules_print_as_redis() {
    let (s, r) = pair(&[]);
    let (mut a, mut b) = (s.raw(), r.raw());
    same(
        &mut a,
        &mut b,
        &[
            &["ACL", "WHOAMI"],
            &["ACL", "SETUSER", "newuser"],
            &["ACL", "SETUSER", "a a"],
            &["ACL", "SETUSER", "newuser", ">passwd1", "on", "+acl"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e"],
            &["ACL", "SETUSER", "newuser", "#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4eq"],
            &["ACL", "SETUSER", "newuser", "<nosuchpass"],
            &["ACL", "SETUSER", "newuser", "+@all", "-client|kill"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "-@all", "+config", "-config|set"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "+config|get|appendonly"],
            &["ACL", "SETUSER", "newuser", "+config|asdf"],
            &["ACL", "SETUSER", "newuser", "-get|key1|key2"],
            &["ACL", "SETUSER", "newuser", "-@all", "+select|0"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "-@all", "+debug|digest", "+debug|object"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "reset", "+@all", "-@string"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "reset", "-@all", "+@hash", "+@set"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "~foo", "~*"],
            &["ACL", "SETUSER", "newuser", "~bar", "allkeys", "~x"],
            &["ACL", "SETUSER", "newuser", "resetkeys", "%R~r*", "%W~w*", "%RW~rw*", "%R~b", "%W~b"],
            &["ACL", "SETUSER", "newuser", "%X~y"],
            &["ACL", "SETUSER", "newuser", "resetchannels", "&ch1", "&ch:*"],
            &["ACL", "SETUSER", "newuser", "allchannels", "&x"],
            &["ACL", "SETUSER", "newuser", "(+get ~sel1)", "(", "+set", "~sel2", ")"],
            &["ACL", "SETUSER", "newuser", "(+get"],
            &["ACL", "SETUSER", "newuser", "(this-is-invalid)"],
            &["ACL", "SETUSER", "newuser", ")"],
            &["ACL", "GETUSER", "newuser"],
            &["ACL", "SETUSER", "newuser", "clearselectors", "nopass", "skip-sanitize-payload"],
            &["ACL", "LIST"],
            &["ACL", "USERS"],
            &["ACL", "GETUSER", "nobody"],
            &["ACL", "DELUSER", "default"],
            &["ACL", "DELUSER", "nobody", "newuser"],
            &["ACL", "USERS"],
            &["ACL", "CAT"],
            &["ACL", "CAT", "nosuch"],
            &["ACL", "CAT", "a", "b"],
            &["ACL", "HELP", "x"],
            &["ACL", "GENPASS", "-1"],
            &["ACL", "GENPASS", "5000"],
            &["ACL", "LOAD"],
            &["ACL", "SAVE"],
            &["ACL", "NOSUCH"],
        ],
    );
    // Every category resolves back to itself, from either side.
    for cat in ["keyspace", "read", "write", "string", "admin", "dangerous", "pubsub", "scripting"] {
        let minus = format!("-@{cat}");
        let plus = format!("+@{cat}");
        same(
            &mut a,
            &mut b,
            &[
                &["ACL", "SETUSER", "additive", "reset", "+@all", &minus],
                &["ACL", "GETUSER", "additive"],
                &["ACL", "SETUSER", "restrictive", "reset", "-@all", &plus],
                &["ACL", "GETUSER", "restrictive"],
            ],
        );
    }
    let gen = a.cmd(&["ACL", "GENPASS", "10"]);
    assert!(gen.starts_with("$3\r\n"), "{gen:?}");
}

/// The members of a flat array reply, sorted (ACL CAT's order is Redis's dict order).
fn sorted_members(reply: &str) -> Vec<String> {
    let mut v: Vec<String> =
        reply.split("\r\n").filter(|l| !l.starts_with('$') && !l.starts_with('*')).map(String::from).collect();
    v.sort();
    v
}

#[test]
fn categories_list_the_same_commands() {
    let (s, r) = pair(&[]);
    let (mut a, mut b) = (s.raw(), r.raw());
    // Commands Redis has that slotcore does not have yet.
    let missing = ["memory", "module", "lolwut"];
    for cat in ["transaction", "scripting", "pubsub", "connection", "hyperloglog", "geo", "stream", "bitmap", "set"] {
        let mine = sorted_members(&a.cmd(&["ACL", "CAT", cat]));
        let theirs: Vec<String> = sorted_members(&b.cmd(&["ACL", "CAT", cat]))
            .into_iter()
            .filter(|c| !missing.iter().any(|m| c == m || c.starts_with(&format!("{m}|"))))
            .filter(|c| mine.contains(c) || !c.contains('|') || !c.starts_with("client|"))
            .collect();
        assert_eq!(mine, theirs, "ACL CAT {cat}");
    }
}

#[test]
fn refused_commands_reply_as_redis() {
    let (s, r) = pair(&[]);
    let (mut a, mut b) = (s.raw(), r.raw());
    let setup: &[&[&str]] = &[
        &["SET", "read1", "v"],
        &["SET", "foo:1", "v"],
        &["ACL", "SETUSER", "limited", "on", ">pw", "+@read", "+set", "+lpush", "+copy", "+acl", "+multi", "+exec"],
        &["ACL", "SETUSER", "limited", "+client|id", "+select|0", "+publish", "+subscribe", "+psubscribe", "+auth"],
        &["ACL", "SETUSER", "limited", "%R~read*", "%W~write*", "~foo:*", "resetchannels", "&news.*", "&lit"],
        &["ACL", "SETUSER", "limited", "(+get +set ~sel:*)"],
        &["AUTH", "limited", "wrong"],
        &["AUTH", "nosuchuser", "pw"],
        &["AUTH", "wrong"],
        &["AUTH", "limited", "pw"],
        &["ACL", "WHOAMI"],
    ];
    same(&mut a, &mut b, setup);
    same(
        &mut a,
        &mut b,
        &[
            &["GET", "read1"],
            &["GET", "write1"],
            &["GET", "foo:1"],
            &["SET", "write1", "x"],
            &["SET", "read1", "x"],
            &["SET", "write1", "x", "GET"],
            &["SET", "foo:2", "x", "GET"],
            &["LPUSH", "write:l", "1"],
            &["COPY", "read1", "write2"],
            &["COPY", "write2", "read1"],
            &["MGET", "read1", "foo:1", "zzz"],
            &["SET", "sel:1", "v"],
            &["GET", "sel:1"],
            &["DEL", "foo:1"],
            &["CLIENT", "ID"],
            &["CLIENT", "KILL", "TYPE", "master"],
            &["SELECT", "0"],
            &["SELECT", "1"],
            &["PUBLISH", "news.today", "x"],
            &["PUBLISH", "sports", "x"],
            &["PUBLISH", "lit", "x"],
            &["CONFIG", "GET", "maxmemory"],
            &["FLUSHALL"],
            &["MULTI"],
            &["GET", "read1"],
            &["INCR", "foo:1"],
            &["FLUSHALL"],
            &["EXEC"],
            &["PSUBSCRIBE", "news.*", "other.*"],
        ],
    );
    // Subscribing to an allowed channel works, a refused one is NOPERM.
    same(&mut a, &mut b, &[&["SUBSCRIBE", "lit"], &["SUBSCRIBE", "forbidden"], &["PING"]]);
    let (mut a2, mut b2) = (s.raw(), r.raw());
    same(
        &mut a2,
        &mut b2,
        &[
            &["HELLO", "2", "AUTH", "limited", "bad"],
            &["HELLO", "3", "AUTH", "nobody", "pw"],
            &["AUTH", "limited", "pw"],
            &["FLUSHALL"],
            &["ACL", "DRYRUN", "limited", "GET", "read1"],
            &["ACL", "DRYRUN", "limited", "SET", "read1", "v"],
            &["ACL", "DRYRUN", "limited", "FLUSHALL"],
            &["ACL", "DRYRUN", "limited", "PUBLISH", "nope", "m"],
            &["ACL", "DRYRUN", "limited", "SET", "v"],
            &["ACL", "DRYRUN", "limited", "NOSUCH"],
            &["ACL", "DRYRUN", "nobody", "GET", "x"],
            &["ACL", "DRYRUN", "limited", "SORT", "read1", "STORE", "write9"],
            &["ACL", "DRYRUN", "limited", "SORT", "read1", "STORE", "read9"],
            &["ACL", "DRYRUN", "limited", "MIGRATE", "h", "1", "", "0", "5", "KEYS", "write9"],
            &["ACL", "DRYRUN", "limited", "EVAL", "", "1", "read1"],
            &["ACL", "DRYRUN", "limited", "EVAL_RO", "", "1", "read1"],
            &["ACL", "DRYRUN", "limited", "BITFIELD", "read1", "GET", "u4", "0"],
            &["ACL", "DRYRUN", "limited", "BITFIELD", "read1", "SET", "u4", "0", "1"],
            &["ACL", "DRYRUN", "limited", "GEORADIUS", "read1", "0", "0", "1", "m", "STORE", "write3"],
        ],
    );
    // A transaction queued while allowed, refused at EXEC after the rules changed.
    same(&mut a2, &mut b2, &[&["MULTI"], &["GET", "read1"]]);
    for srv in [&s, &r] {
        assert_eq!(srv.raw().cmd(&["ACL", "SETUSER", "limited", "-get"]), "+OK\r\n");
    }
    same(&mut a2, &mut b2, &[&["EXEC"]]);
}

/// The comparable fields of the newest ACL LOG entries (not age or client-info).
fn log_fields(r: &mut Raw, n: usize) -> Vec<String> {
    let reply = r.cmd(&["ACL", "LOG", &n.to_string()]);
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if ["count", "reason", "context", "object", "username"].contains(&lines[i]) {
            let v = if lines[i] == "count" { lines[i + 1].to_string() } else { lines[i + 2].to_string() };
            out.push(format!("{}={}", lines[i], v));
        }
        i += 1;
    }
    out
}

#[test]
fn acl_log_records_as_redis() {
    let (s, r) = pair(&[]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        let mut adm = srv.raw();
        adm.cmd(&["ACL", "SETUSER", "antirez", ">foo", "on", "+set", "~object:1234", "+multi", "+exec", "+publish"]);
        c.cmd(&["AUTH", "antirez", "foo"]);
        for _ in 0..3 {
            c.cmd(&["GET", "foo"]);
        }
        c.cmd(&["SET", "somekeynotallowed", "1"]);
        c.cmd(&["PUBLISH", "chan", "m"]);
        c.cmd(&["MULTI"]);
        c.cmd(&["INCR", "foo"]);
        c.cmd(&["EXEC"]);
        c.cmd(&["AUTH", "antirez", "bad"]);
    }
    let (mut a, mut b) = (s.raw(), r.raw());
    let la = log_fields(&mut a, 10);
    assert!(la.contains(&"reason=auth".to_string()), "{la:?}");
    assert_eq!(la, log_fields(&mut b, 10));
    same(&mut a, &mut b, &[&["ACL", "LOG", "RESET"], &["ACL", "LOG"], &["CONFIG", "SET", "acllog-max-len", "2"]]);
    for srv in [&s, &r] {
        let mut c = srv.raw();
        c.cmd(&["AUTH", "antirez", "foo"]);
        for k in 0..5 {
            c.cmd(&["SET", &format!("obj:{k}"), "1"]);
        }
    }
    assert_eq!(log_fields(&mut a, 10), log_fields(&mut b, 10));
}

/// Waits until `c` reads EOF (its server closed it).
fn closed(c: &mut Raw) -> bool {
    let start = Instant::now();
    let rest = c.read_to_end();
    rest.is_empty() && start.elapsed() < WAIT
}

#[test]
fn clients_of_changed_users_are_closed_as_redis() {
    let (s, r) = pair(&[]);
    for srv in [&s, &r] {
        let mut adm = srv.raw();
        // A deleted user's idle client is closed; the caller gets its reply, then is closed.
        adm.cmd(&["ACL", "SETUSER", "gone", "on", "nopass", "+@all", "~*", "&*"]);
        let mut idle = srv.raw();
        assert_eq!(idle.cmd(&["AUTH", "gone", "x"]), "+OK\r\n");
        let mut me = srv.raw();
        me.cmd(&["AUTH", "gone", "x"]);
        assert_eq!(me.cmd(&["ACL", "DELUSER", "gone"]), ":1\r\n");
        assert!(closed(&mut idle), "idle client of a deleted user still open on port {}", srv.port);
        assert!(closed(&mut me), "the deleting client is not closed on port {}", srv.port);
        // A subscriber that loses its channel is closed; one that keeps it stays.
        adm.cmd(&["ACL", "SETUSER", "ps", "on", "nopass", "+@all", "resetchannels", "&keep", "&drop"]);
        let mut keeper = srv.raw();
        keeper.cmd(&["AUTH", "ps", "x"]);
        keeper.cmd(&["CLIENT", "SETNAME", "keeper"]);
        keeper.cmd(&["SUBSCRIBE", "keep"]);
        let mut loser = srv.raw();
        loser.cmd(&["AUTH", "ps", "x"]);
        loser.cmd(&["CLIENT", "SETNAME", "loser"]);
        loser.cmd(&["SUBSCRIBE", "drop"]);
        assert_eq!(adm.cmd(&["ACL", "SETUSER", "ps", "resetchannels", "&keep", "&new"]), "+OK\r\n");
        let list = adm.cmd(&["CLIENT", "LIST"]);
        assert!(!list.contains("name=loser"), "{list}");
        assert!(list.contains("name=keeper") && list.contains("user=ps"), "{list}");
        assert!(closed(&mut loser));
        // CLIENT KILL USER.
        assert_eq!(adm.cmd(&["CLIENT", "KILL", "USER", "ps"]), ":1\r\n");
        assert!(closed(&mut keeper));
        assert_eq!(adm.cmd(&["CLIENT", "KILL", "USER", "nobody"]), "-ERR No such user 'nobody'\r\n");
        // The default user switched off: new connections must authenticate.
        adm.cmd(&["ACL", "SETUSER", "default", "off"]);
        let mut fresh = srv.raw();
        assert!(fresh.cmd(&["GET", "x"]).starts_with("-NOAUTH"));
        adm.cmd(&["ACL", "SETUSER", "default", "on"]);
    }
}

#[test]
fn requirepass_user_lines_and_aclfile() {
    ports();
    // requirepass is the default user's password.
    let s = Server::slotcore(&["--requirepass", "secret"]);
    let mut c = s.raw();
    assert!(c.cmd(&["GET", "x"]).starts_with("-NOAUTH"));
    assert_eq!(c.cmd(&["AUTH", "bad"]), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd(&["AUTH", "default", "secret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["AUTH", "x"]).split(". ").next(),
        Some("-ERR AUTH <password> called without any password configured for the default user")
    );
    drop(s);

    // `user` lines of the config, the same as redis-server's.
    let args =
        ["--user", "default", "on", "nopass", "~*", "+@all", "-flushdb", "--user", "bob", "on", ">pw", "+get", "~b*"];
    let (s, r) = pair(&args);
    same(&mut s.raw(), &mut r.raw(), &[&["ACL", "LIST"], &["FLUSHDB"], &["AUTH", "bob", "pw"], &["SUBSCRIBE", "x"]]);

    // The aclfile: loaded at start, saved, reloaded; clients of reloaded users are closed.
    ports();
    let dir = std::env::temp_dir().join(format!("slotcore-acltest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user alice on allcommands allkeys &* >alice\nuser bob on -@all +@set +acl ~set* &* >bob\nuser default on nopass ~* &* +@all\n").expect("write");
    let f = file.to_string_lossy().into_owned();
    let s = Server::slotcore(&["--aclfile", &f]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["ACL", "USERS"]), "*3\r\n$5\r\nalice\r\n$3\r\nbob\r\n$7\r\ndefault\r\n");
    assert_eq!(c.cmd(&["AUTH", "bob", "bob"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SADD", "set1", "a"]), ":1\r\n");
    assert!(c.cmd(&["SET", "k", "v"]).starts_with("-NOPERM"));
    assert_eq!(c.cmd(&["ACL", "SETUSER", "eve", "+get", "allkeys", ">eve", "on"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "SAVE"]), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).expect("read");
    assert!(saved.contains("user eve on #"), "{saved}");
    assert_eq!(c.cmd(&["ACL", "LOAD"]), "+OK\r\n");
    assert!(closed(&mut c), "client of a reloaded user still open");
    let mut c = s.raw();
    assert_eq!(c.cmd(&["AUTH", "eve", "eve"]), "+OK\r\n");
    assert!(c.cmd(&["SET", "k", "v"]).starts_with("-NOPERM"));
    std::fs::write(&file, "user alice on nopass\nuser alice on nopass\n").expect("write");
    let e = s.raw().cmd(&["ACL", "LOAD"]);
    assert!(e.contains("Duplicate user 'alice' found"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
