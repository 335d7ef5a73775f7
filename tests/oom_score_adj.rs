//! `oom-score-adj` and `oom-score-adj-values`: CONFIG SET's checks and texts compared with a
//! real redis-server, and the process's `/proc/<pid>/oom_score_adj` as both servers set it
//! (relative to the score when switched on, absolute, by role, restored when switched off,
//! the third value in the save child).

mod common;
use common::{assert_same, until, Server};

fn score(s: &Server) -> i32 {
    score_of(s.pid()).expect("the server's oom_score_adj")
}

fn score_of(pid: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).ok()?.trim().parse().ok()
}

/// The first child process of the server (`pgrep -P`), if any.
fn child_of(s: &Server) -> Option<u32> {
    let out = std::process::Command::new("pgrep").args(["-P", &s.pid().to_string()]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next()?.trim().parse().ok()
}

fn set_score(s: &Server, v: i32) {
    std::fs::write(format!("/proc/{}/oom_score_adj", s.pid()), format!("{v}\n")).expect("write oom_score_adj");
}

#[test]
fn config_set_checks_and_texts_as_redis() {
    let (ours, redis) = (Server::slotcore(&[]), Server::redis(&[]));
    let (mut a, mut b) = (ours.raw(), redis.raw());
    assert_same(
        &mut a,
        &mut b,
        &[
            &["config", "get", "oom-score-adj"],
            &["config", "get", "oom-score-adj-values"],
            &["config", "set", "oom-score-adj-values", "-2001 0 0"],
            &["config", "set", "oom-score-adj-values", "0 0 2001"],
            &["config", "set", "oom-score-adj-values", "1 2"],
            &["config", "set", "oom-score-adj-values", "1 2 3 4"],
            &["config", "set", "oom-score-adj-values", "1  2 3"],
            &["config", "set", "oom-score-adj-values", " 1 2 3"],
            &["config", "set", "oom-score-adj-values", ""],
            &["config", "set", "oom-score-adj-values", "a b c"],
            &["config", "set", "oom-score-adj-values", "1 2 3x"],
            &["config", "set", "oom-score-adj-values", "1 2 -"],
            &["config", "get", "oom-score-adj-values"],
            &["config", "set", "oom-score-adj-values", "+1 02 -3"],
            &["config", "get", "oom-score-adj-values"],
            &["config", "set", "oom-score-adj-values", "1 2 "],
            &["config", "get", "oom-score-adj-values"],
            &["config", "set", "oom-score-adj", "maybe"],
            &["config", "set", "oom-score-adj", "ABSOLUTE"],
            &["config", "get", "oom-score-adj"],
            &["config", "set", "oom-score-adj", "no"],
        ],
    );
}

/// The scenario Redis's own test runs, on either server.
fn scores_follow_settings_and_role(s: &Server) {
    let mut c = s.raw();
    let base = score(s);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "10 20 30"]), "+OK\r\n");
    assert_eq!(score(s), base, "not touched while off");
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj", "yes"]), "+OK\r\n");
    assert_eq!(score(s), base + 10);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "15 20 30"]), "+OK\r\n");
    assert_eq!(score(s), base + 15);
    // An unused port: the replica keeps trying, in the replica class all the while.
    let nowhere = common::free_port().to_string();
    assert_eq!(c.cmd(&["replicaof", "127.0.0.1", &nowhere]), "+OK\r\n");
    assert_eq!(score(s), base + 20);
    assert_eq!(c.cmd(&["replicaof", "no", "one"]), "+OK\r\n");
    assert_eq!(score(s), base + 15);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj", "absolute"]), "+OK\r\n");
    assert_eq!(score(s), 15);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj", "no"]), "+OK\r\n");
    assert_eq!(score(s), base, "restored when switched off");
    // While off, a score set from outside stays, and switching on counts from it.
    set_score(s, 22);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "9 9 9"]), "+OK\r\n");
    assert_eq!(score(s), 22);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "9 9 9", "oom-score-adj", "relative"]), "+OK\r\n");
    assert_eq!(score(s), 31);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj", "no"]), "+OK\r\n");
    assert_eq!(score(s), 22);
    // Scores are clamped to the kernel's range.
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "2000 2000 2000", "oom-score-adj", "yes"]), "+OK\r\n");
    assert_eq!(score(s), 1000);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj", "no"]), "+OK\r\n");
    assert_eq!(score(s), 22);
}

/// The save child (Redis's forked one, slotcore's writer process) takes the third value.
fn save_child_takes_the_third_value(s: &Server) {
    let mut c = s.raw();
    let base = score(s);
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "10 20 30", "oom-score-adj", "yes"]), "+OK\r\n");
    assert_eq!(c.cmd(&["set", "key-a", "value-a"]), "+OK\r\n");
    assert_eq!(c.cmd(&["config", "set", "rdb-key-save-delay", "1000000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["bgsave"]), "+Background saving started\r\n");
    until("the save child to take its score", || child_of(s).and_then(score_of) == Some(base + 30));
    assert_eq!(score(s), base + 10);
}

#[test]
fn save_child_takes_the_third_value_as_redis() {
    save_child_takes_the_third_value(&Server::redis(&[]));
    save_child_takes_the_third_value(&Server::slotcore(&[]));
}

#[test]
fn scores_follow_settings_and_role_as_redis() {
    scores_follow_settings_and_role(&Server::redis(&[]));
    scores_follow_settings_and_role(&Server::slotcore(&[]));
}

#[test]
fn start_up_settings_apply_and_rewrite_as_redis() {
    let args = ["--oom-score-adj", "absolute", "--oom-score-adj-values", "7 8 9"];
    let (ours, redis) = (Server::slotcore(&args), Server::redis(&args));
    assert_eq!(score(&ours), 7);
    assert_eq!(score(&redis), 7);
    let (mut a, mut b) = (ours.raw(), redis.raw());
    // One at a time: redis-server lists a pattern's matches in its hash table's order.
    assert_same(&mut a, &mut b, &[&["config", "get", "oom-score-adj"], &["config", "get", "oom-score-adj-values"]]);
    // A replica at start-up takes the replica's value.
    let nowhere = common::free_port().to_string();
    let replica = Server::slotcore(&[
        "--oom-score-adj",
        "absolute",
        "--oom-score-adj-values",
        "7 8 9",
        "--replicaof",
        "127.0.0.1",
        &nowhere,
    ]);
    assert_eq!(score(&replica), 8);
    // CONFIG REWRITE writes the three values as one unquoted line, which loads back.
    let conf = ours.dir.join("oom.conf");
    std::fs::write(&conf, "").expect("write config");
    let conf = conf.to_string_lossy().into_owned();
    let from_file = Server::slotcore(&[&conf]);
    let mut c = from_file.raw();
    assert_eq!(c.cmd(&["config", "set", "oom-score-adj-values", "1 2 3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["config", "rewrite"]), "+OK\r\n");
    let text = std::fs::read_to_string(&conf).expect("read config");
    assert!(text.lines().any(|l| l == "oom-score-adj-values 1 2 3"), "{text}");
}
