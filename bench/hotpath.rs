//! The per-command CPU path without the network: parse a pipeline of 16 commands, look each
//! up, route it to its slot, execute it on a shard's keyspace and encode the reply. Run it
//! under callgrind to compare builds by instruction count, which (unlike requests/s on a
//! shared VM) is repeatable:
//!
//!   cargo build --release --example hotpath
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/hotpath set 20000
//!   callgrind_annotate /tmp/cg.out | head -40
//!
//! The argument picks the command (`set`, `get`, `incr`, `lpush`, `hset`, `zadd`); the count is how
//! many 16-command batches run; a third argument `acl` adds the per-command ACL check the
//! connection makes before routing (the default user's fast path). The socket, the io_uring reactor and the dispatch bookkeeping
//! in `conn` are not part of it.

use bytes::{Bytes, BytesMut};
use slotcore::cmd::{self, ClientState, CommandSpec, NodeInfo, ShardState};
use slotcore::config::Config;
use slotcore::protocol::request::{ParseLimits, Request, RequestParser};
use std::sync::Arc;

fn node(cfg: Arc<Config>) -> Arc<NodeInfo> {
    Arc::new(NodeInfo {
        run_id: "0".repeat(40),
        pid: std::process::id(),
        start_ms: slotcore::storage::now_ms(),
        executable: String::new(),
        config_file: String::new(),
        shards: 1,
        shard_cpus: vec![None],
        connected_clients: Default::default(),
        next_client_id: 1.into(),
        config_gen: Default::default(),
        config: std::sync::RwLock::new(cfg),
        started: std::time::Instant::now(),
        cluster: None,
        blocked_clients: Default::default(),
        blocked_with_timeout: Default::default(),
        pubsub: Default::default(),
        repl: Default::default(),
        tracking: Default::default(),
    })
}

fn frame(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

fn main() {
    slotcore::clock::calibrate();
    let mut argv = std::env::args().skip(1);
    let which = argv.next().unwrap_or_else(|| "set".into());
    let rounds: usize = argv.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let mut client =
        (argv.next().as_deref() == Some("acl")).then(|| ClientState::new(1, String::new(), String::new(), -1, true));
    let command: Vec<&str> = match which.as_str() {
        "get" => vec!["GET", "key:__rand_int__"],
        "incr" => vec!["INCR", "counter:__rand_int__"],
        "lpush" => vec!["LPUSH", "mylist", "xxx"],
        "hset" => vec!["HSET", "myhash", "element:__rand_int__", "xxx"],
        "zadd" => vec!["ZADD", "myzset", "0", "element:__rand_int__"],
        _ => vec!["SET", "key:__rand_int__", "xxx"],
    };
    let batch: Vec<u8> = (0..16).flat_map(|_| frame(&command)).collect();
    let cfg = Arc::new(Config::default());
    let mut shard = ShardState::new(0, cfg.clone(), node(cfg));
    let mut parser = RequestParser::default();
    let limits = ParseLimits::default();
    let mut reqs: Vec<Request> = Vec::new();
    let mut wbuf = Vec::with_capacity(16 * 1024);
    let mut clock = slotcore::clock::Stamp::now();
    // GET reads what a SET wrote.
    if which == "get" {
        let set = frame(&["SET", "key:__rand_int__", "xxx"]);
        let mut buf = BytesMut::from(&set[..]);
        parser.parse(&mut buf, &limits, &mut reqs).expect("parse");
        for r in reqs.drain(..) {
            run(&mut shard, None, &r.args, &mut clock);
        }
    }
    let mut total = 0usize;
    for _ in 0..rounds {
        let mut buf = BytesMut::from(&batch[..]);
        if let Err(e) = parser.parse(&mut buf, &limits, &mut reqs) {
            eprintln!("parse error: {}", e.reply_text());
            std::process::exit(1);
        }
        for r in reqs.drain(..) {
            run(&mut shard, client.as_mut(), &r.args, &mut clock).encode(&mut wbuf, false);
            // As the connection does: the argument vector serves a later request.
            parser.recycle(r.args);
        }
        total += wbuf.len();
        wbuf.clear();
    }
    println!("{} batches of 16 {}: {} reply bytes", rounds, which, total);
}

fn run(
    shard: &mut ShardState,
    client: Option<&mut ClientState>,
    args: &[Bytes],
    clock: &mut slotcore::clock::Stamp,
) -> slotcore::protocol::Reply {
    let Some(spec): Option<&'static CommandSpec> = cmd::table::lookup(&args[0]) else {
        eprintln!("unknown command");
        std::process::exit(1);
    };
    if let Some(c) = client {
        if let Some(refused) = slotcore::acl::check_client(c, spec, spec.name, args) {
            return refused;
        }
    }
    let slot = slotcore::cluster::key_slot(&args[1]);
    cmd::execute_keyed(shard, spec, spec.name, args, Some(slot), 0, clock)
}
