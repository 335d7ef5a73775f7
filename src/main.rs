use slotcore::cmd::NodeInfo;
use slotcore::config::Config;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let mut cfg = Config::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--port" => {
                cfg.port = args[i + 1].parse().unwrap();
                i += 1;
            }
            "--shards" => {
                cfg.shards = args[i + 1].parse().unwrap();
                i += 1;
            }
            "--pin-cores" => {
                cfg.pin_cores = args[i + 1] == "yes";
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    tracing_subscriber::fmt().init();
    let placement = slotcore::runtime::plan_placement(&cfg).unwrap();
    let listeners = slotcore::runtime::listener::bind_all(&cfg).unwrap();
    let cfg = Arc::new(cfg);
    let node = Arc::new(NodeInfo {
        run_id: String::new(),
        pid: std::process::id(),
        start_ms: slotcore::storage::now_ms(),
        executable: String::new(),
        config_file: String::new(),
        shards: placement.shards,
        shard_cpus: vec![],
        connected_clients: Default::default(),
        next_client_id: 1.into(),
        config_gen: Default::default(),
        config: std::sync::RwLock::new(cfg.clone()),
        started: std::time::Instant::now(),
    });
    slotcore::runtime::run(cfg, node, placement, listeners).unwrap();
}
