//! A sorted set of 200k members (the `skiplist` encoding, an order-statistics tree in slotcore)
//! checked against a real redis-server: ranks, rank windows, score windows and rank removals
//! on sampled positions, byte for byte.

mod common;
use common::{encode, Raw, Server};

const N: usize = 200_000;

/// A deterministic LCG so a failure reproduces.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Sends `cmds` pipelined in chunks and returns the raw replies.
fn pipeline(r: &mut Raw, cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
    let mut out = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(64) {
        let mut buf = Vec::new();
        for c in chunk {
            let a: Vec<&[u8]> = c.iter().map(|x| &x[..]).collect();
            buf.extend(encode(&a));
        }
        r.send(&buf);
        for _ in chunk {
            out.push(r.reply());
        }
    }
    out
}

fn cmd(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

fn same(a: &mut Raw, b: &mut Raw, cmds: &[Vec<Vec<u8>>]) {
    let (ra, rb) = (pipeline(a, cmds), pipeline(b, cmds));
    for ((c, x), y) in cmds.iter().zip(&ra).zip(&rb) {
        let shown: Vec<String> = c.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        assert_eq!(x, y, "command {shown:?}: slotcore replied {x:?}, redis-server replied {y:?}");
    }
}

/// The member at ascending rank `r` (from the oracle).
fn member_at(b: &mut Raw, r: usize) -> Option<String> {
    let rep = b.cmd(&["ZRANGE", "big", &r.to_string(), &r.to_string()]);
    rep.lines().nth(2).map(str::to_string)
}

fn sampled_checks(a: &mut Raw, b: &mut Raw, rng: &mut Lcg, len: usize) {
    let mut ranks: Vec<usize> = vec![0, 1, len / 2, len - 2, len - 1];
    ranks.extend((0..300).map(|_| rng.below(len)));
    let mut cmds = Vec::new();
    for &r in &ranks {
        let (s, e) = (r.to_string(), (r + rng.below(30)).to_string());
        cmds.push(cmd(&["ZRANGE", "big", &s, &s, "WITHSCORES"]));
        cmds.push(cmd(&["ZRANGE", "big", &s, &e]));
        cmds.push(cmd(&["ZREVRANGE", "big", &s, &e, "WITHSCORES"]));
        cmds.push(cmd(&["ZRANGE", "big", &format!("-{}", r + 1), &format!("-{}", r.max(1)), "REV"]));
        if let Some(m) = member_at(b, r) {
            cmds.push(cmd(&["ZRANK", "big", &m]));
            cmds.push(cmd(&["ZREVRANK", "big", &m]));
            cmds.push(cmd(&["ZSCORE", "big", &m]));
        }
        let lo = rng.below(5000) as f64 / 4.0;
        let hi = lo + rng.below(40) as f64 / 8.0;
        let (l, h) = (lo.to_string(), format!("({hi}"));
        let (off, cnt) = (rng.below(50).to_string(), rng.below(20).to_string());
        cmds.push(cmd(&["ZCOUNT", "big", &l, &h]));
        cmds.push(cmd(&["ZRANGEBYSCORE", "big", &l, &h, "WITHSCORES", "LIMIT", &off, &cnt]));
        cmds.push(cmd(&["ZREVRANGEBYSCORE", "big", &h, &l, "LIMIT", &off, &cnt]));
        cmds.push(cmd(&["ZRANGE", "big", &h, &l, "BYSCORE", "REV", "LIMIT", &off, "-1"]));
    }
    cmds.push(cmd(&["ZRANGE", "big", "-inf", "+inf", "BYSCORE", "LIMIT", "199990", "20"]));
    cmds.push(cmd(&["ZRANGE", "big", "-5", "-1", "WITHSCORES"]));
    cmds.push(cmd(&["ZRANGE", "big", "0", "4", "REV", "WITHSCORES"]));
    cmds.push(cmd(&["ZCARD", "big"]));
    same(a, b, &cmds);
}

#[test]
fn big_sorted_set_ranks_match_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    let mut rng = Lcg(42);
    // Scores with many ties (so member order decides) plus fractions, infinities and members of
    // varied length and bytes.
    let mut load = Vec::new();
    let mut members = Vec::with_capacity(N);
    for chunk in 0..N / 500 {
        let mut c = cmd(&["ZADD", "big"]);
        for j in 0..500 {
            let i = chunk * 500 + j;
            let score = match i % 97 {
                0 => "-inf".to_string(),
                1 => "+inf".to_string(),
                _ => format!("{}", (rng.below(5000) as f64) / 4.0),
            };
            let m = match i % 4 {
                0 => format!("m{i}"),
                1 => format!("{i}"),
                2 => format!("member:{:x}", i * 2654435761 % 1000003),
                _ => format!("k{}", "z".repeat(i % 70)) + &i.to_string(),
            };
            c.push(score.into_bytes());
            c.push(m.clone().into_bytes());
            members.push(m);
        }
        load.push(c);
    }
    same(&mut a, &mut b, &load);
    same(&mut a, &mut b, &[cmd(&["ZCARD", "big"]), cmd(&["OBJECT", "ENCODING", "big"])]);
    let len: usize = b.cmd(&["ZCARD", "big"]).trim_start_matches(':').trim().parse().expect("zcard");
    sampled_checks(&mut a, &mut b, &mut rng, len);

    // Mutations: score updates that move members, removals by member and by rank window.
    let mut muts = Vec::new();
    for _ in 0..2000 {
        let m = &members[rng.below(members.len())];
        match rng.below(3) {
            0 => muts.push(cmd(&["ZINCRBY", "big", &format!("{}", rng.below(100) as f64 - 50.5), m])),
            1 => muts.push(cmd(&["ZREM", "big", m])),
            _ => muts.push(cmd(&["ZADD", "big", "CH", &format!("{}", rng.below(5000) / 3), m])),
        }
    }
    for _ in 0..20 {
        let r = rng.below(150_000);
        muts.push(cmd(&["ZREMRANGEBYRANK", "big", &r.to_string(), &(r + rng.below(500)).to_string()]));
    }
    muts.push(cmd(&["ZREMRANGEBYSCORE", "big", "100", "(110.5"]));
    muts.push(cmd(&["ZPOPMIN", "big", "3"]));
    muts.push(cmd(&["ZPOPMAX", "big", "3"]));
    same(&mut a, &mut b, &muts);
    let len: usize = b.cmd(&["ZCARD", "big"]).trim_start_matches(':').trim().parse().expect("zcard");
    sampled_checks(&mut a, &mut b, &mut rng, len);
}

#[test]
fn big_sorted_set_lex_ranges_match_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    let mut rng = Lcg(7);
    let mut load = Vec::new();
    let mut names = Vec::new();
    for chunk in 0..100 {
        let mut c = cmd(&["ZADD", "lex"]);
        for j in 0..500 {
            let i = chunk * 500 + j;
            let m = format!("{:x}{}", i * 40503 % 65521, if i % 3 == 0 { "" } else { "-tail" });
            c.push(b"0".to_vec());
            c.push(m.clone().into_bytes());
            names.push(m);
        }
        load.push(c);
    }
    same(&mut a, &mut b, &load);
    let bound = |rng: &mut Lcg, names: &[String]| -> String {
        match rng.below(10) {
            0 => "-".to_string(),
            1 => "+".to_string(),
            k => {
                let m = &names[rng.below(names.len())];
                let m = if k % 3 == 0 { &m[..m.len().min(2)] } else { m };
                format!("{}{m}", if k % 2 == 0 { "[" } else { "(" })
            }
        }
    };
    let mut cmds = Vec::new();
    for _ in 0..300 {
        let (x, y) = (bound(&mut rng, &names), bound(&mut rng, &names));
        let (off, cnt) = (rng.below(40).to_string(), (rng.below(30) as i64 - 3).to_string());
        cmds.push(cmd(&["ZLEXCOUNT", "lex", &x, &y]));
        cmds.push(cmd(&["ZRANGEBYLEX", "lex", &x, &y, "LIMIT", &off, &cnt]));
        cmds.push(cmd(&["ZREVRANGEBYLEX", "lex", &y, &x, "LIMIT", &off, &cnt]));
        cmds.push(cmd(&["ZRANGE", "lex", &x, &y, "BYLEX", "LIMIT", "0", "5"]));
    }
    for _ in 0..30 {
        let m = &names[rng.below(names.len())];
        cmds.push(cmd(&["ZREMRANGEBYLEX", "lex", &format!("[{m}"), &format!("({m}zzz")]));
    }
    cmds.push(cmd(&["ZREMRANGEBYLEX", "lex", "[a", "(b"]));
    cmds.push(cmd(&["ZCARD", "lex"]));
    cmds.push(cmd(&["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "1000", "20"]));
    same(&mut a, &mut b, &cmds);
}

/// Lex ranges on a listpack whose scores differ, so members are not in byte order: Redis's
/// scans stop at the first member out of range, which a filter would not.
#[test]
fn lex_ranges_on_mixed_scores_match_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let cases: Vec<Vec<Vec<u8>>> = [
        &["ZADD", "m", "1", "d", "2", "a", "3", "c", "4", "b", "5", "e"][..],
        &["ZRANGEBYLEX", "m", "[a", "[c"],
        &["ZRANGEBYLEX", "m", "[b", "+"],
        &["ZRANGEBYLEX", "m", "-", "[c", "LIMIT", "1", "2"],
        &["ZREVRANGEBYLEX", "m", "[c", "[a"],
        &["ZREVRANGEBYLEX", "m", "+", "[b", "LIMIT", "1", "5"],
        &["ZLEXCOUNT", "m", "[a", "[c"],
        &["ZLEXCOUNT", "m", "-", "+"],
        &["ZLEXCOUNT", "m", "(a", "(a"],
        &["ZLEXCOUNT", "m", "[c", "[a"],
        &["ZLEXCOUNT", "m", "+", "-"],
        &["ZRANGEBYLEX", "m", "-", "-"],
        &["ZRANGEBYLEX", "m", "[e", "+"],
        &["ZREMRANGEBYLEX", "m", "[c", "+"],
        &["ZRANGE", "m", "0", "-1", "WITHSCORES"],
    ]
    .iter()
    .map(|c| cmd(c))
    .collect();
    same(&mut s.raw(), &mut o.raw(), &cases);
}
