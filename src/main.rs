//! slotcore: argv -> Config -> daemonize, logging, pidfile, signals -> runtime. Exit codes as
//! redis-server: 0 on clean shutdown, 1 on a fatal configuration or start-up error.

use slotcore::cmd::NodeInfo;
use slotcore::config::parse::{self, Invocation};
use slotcore::config::Config;
use std::io::Write;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn usage() {
    // Write errors (a closed pipe) are ignored, as Redis's fprintf's are: never a panic.
    let _ = writeln!(
        std::io::stderr(),
        "Usage: ./slotcore [/path/to/redis.conf] [options] [-]
       ./slotcore - (read config from stdin)
       ./slotcore -v or --version
       ./slotcore -h or --help

Examples:
       ./slotcore (run the server with default conf)
       ./slotcore /etc/redis/6379.conf
       ./slotcore --port 7777
       ./slotcore --port 7777 --replicaof 127.0.0.1 8888
       ./slotcore /etc/myredis.conf --loglevel verbose -
       ./slotcore /etc/myredis.conf --shards 4 --shard-cores 0-3 --bus-core 4"
    );
}

fn fail(msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{msg}");
    std::process::exit(1)
}

/// Forks into the background like Redis's `daemonize()`: the parent exits, the child starts a
/// new session and points stdio at /dev/null.
fn daemonize() {
    // SAFETY: called before any thread is started; fork/setsid/dup2 are async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => fail(&format!("fork failed: {}", std::io::Error::last_os_error())),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

fn random_hex40() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Blocks SIGTERM/SIGINT in this (main) thread before other threads exist, so every thread
/// inherits the mask, and waits for them on a dedicated thread.
fn install_signal_thread() {
    // SAFETY: plain sigset manipulation on a local set, before threads start.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid, initialised signal set.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
            if slotcore::process::shutdown_signalled() && sig == libc::SIGINT {
                slotcore::process::insist_exit();
            }
            if !slotcore::process::request_shutdown(sig) {
                // A second SIGTERM while the first one's shutdown runs: logged only, as Redis.
                tracing::warn!("Received {} scheduling shutdown...", name);
                continue;
            }
            tracing::warn!("Received {} scheduling shutdown...", name);
            // Shard 0 saves (when `save` points are set) and exits; if its loop cannot pick
            // the request up (wedged), exit anyway rather than ignore the signal. The
            // watchdog runs apart, so a second SIGINT is heard meanwhile.
            let _ = std::thread::Builder::new().name("shutdown-watchdog".into()).spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(5));
                if slotcore::process::shutdown_pending() && !slotcore::cmd::debug::cron_paused() {
                    tracing::warn!("User requested shutdown...");
                    slotcore::process::shutdown_and_exit(0);
                }
            });
        })
        .unwrap_or_else(|e| fail(&format!("can't start the signal thread: {e}")));
}

fn write_pidfile(path: &str) {
    if path.is_empty() {
        return;
    }
    match std::fs::write(path, format!("{}\n", std::process::id())) {
        Ok(()) => slotcore::process::set_pidfile(path.to_string()),
        Err(e) => tracing::warn!("Failed to write PID file: {}", e),
    }
}

fn log_start(cfg: &Config, node: &NodeInfo, not_acted: &[String], config_file: &Option<String>) {
    tracing::info!("oO0OoO0OoO0Oo slotcore is starting oO0OoO0OoO0Oo");
    tracing::info!(
        "slotcore version={}, redis_version=7.0.15, bits=64, commit=00000000, modified=0, pid={}, just started",
        VERSION,
        node.pid
    );
    match config_file {
        Some(f) => tracing::info!("Configuration loaded from {}", f),
        None => tracing::warn!(
            "Warning: no config file specified, using the default config. In order to specify a config file use {} /path/to/redis.conf",
            node.executable
        ),
    }
    if !not_acted.is_empty() {
        tracing::warn!("Accepted but not acted upon by slotcore yet: {}", not_acted.join(", "));
    }
    use std::io::IsTerminal;
    if cfg.always_show_logo || std::io::stdout().is_terminal() {
        tracing::info!(
            "\n                _._\n           _.-``__ ''-._\n      _.-``    `.  `_.  ''-._           slotcore {} (Redis 7.0 compatible) 64 bit\n  .-`` .-```.  ```\\/    _.,_ ''-._\n (    '      ,       .-`  | `,    )     Running in {} mode\n |`-._`-...-` __...-.``-._|'` _.-'|     Port: {}\n |    `-._   `._    /     _.-'    |     PID: {}\n  `-._    `-._  `-./  _.-'    _.-'\n      `-._    `-.__.-'    _.-'\n          `-._        _.-'\n              `-.__.-'\n",
            VERSION,
            if cfg.cluster_enabled { "cluster" } else { "standalone" },
            slotcore::tls::shown_port(cfg),
            node.pid
        );
    } else {
        tracing::info!(
            "Running mode={}, port={}.",
            if cfg.cluster_enabled { "cluster" } else { "standalone" },
            slotcore::tls::shown_port(cfg)
        );
    }
}

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() <= 2 && args.first().is_some_and(|a| a == slotcore::runtime::save_child::CHILD_ARG) {
        let autosync = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
        std::process::exit(slotcore::runtime::save_child::child_main(autosync));
    }
    // The arguments are read: their memory may now hold the process title.
    slotcore::proctitle::init(&argv0);
    let (config_file, options) = match parse::parse_argv(&args) {
        Invocation::Version => {
            let _ = writeln!(
                std::io::stdout(),
                "slotcore v={VERSION} sha=00000000:0 malloc=jemalloc bits=64 redis_compat=7.0.15"
            );
            return;
        }
        Invocation::Help => {
            usage();
            return;
        }
        Invocation::Run { config_file, options } => (config_file, options),
    };
    if slotcore::sentinel::requested(&argv0, &args) {
        slotcore::sentinel::run(config_file, &options, daemonize);
    }
    let loaded = match parse::load(config_file.as_deref(), &options) {
        Ok(l) => l,
        Err(e) => fail(&e.fatal_text()),
    };
    let mut cfg = loaded.config;
    if let Err(e) = slotcore::cmd::table::install_renames(&cfg.renamed_commands) {
        fail(e);
    }
    let abs_config = config_file
        .as_ref()
        .filter(|f| f.as_str() != "-")
        .map(|f| std::fs::canonicalize(f).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| f.clone()));
    if cfg.daemonize {
        daemonize();
        if cfg.pidfile.is_empty() {
            cfg.pidfile = format!("/var/run/redis_{}.pid", cfg.port);
        }
    }
    // Paths in the config are relative to the start-up directory; then chdir like Redis.
    if let Err(e) = std::env::set_current_dir(&cfg.dir) {
        fail(&format!("Can't chdir to '{}': {}", cfg.dir, e));
    }
    // CONFIG GET dir shows the working directory, absolute (Redis answers with getcwd()).
    if let Ok(cwd) = std::env::current_dir() {
        let cwd = cwd.to_string_lossy().into_owned();
        cfg.values.insert("dir", cwd.clone());
        cfg.dir = cwd;
    }
    if let Err(e) = slotcore::logging::init(&cfg.logfile, cfg.loglevel) {
        fail(&e);
    }
    slotcore::crash::install();
    slotcore::watchdog::set_period(cfg.watchdog_period());
    slotcore::clock::calibrate();
    slotcore::cmd::module::refuse_startup_modules(&cfg.load_modules);
    if let Err(e) = slotcore::acl::load_at_startup(&cfg) {
        tracing::warn!("{}", e);
        std::process::exit(1);
    }
    install_signal_thread();
    let placement = match slotcore::runtime::plan_placement(&cfg) {
        Ok(p) => p,
        Err(e) => fail(&format!("Invalid core placement: {e}")),
    };
    let executable = std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let cluster = if cfg.cluster_enabled {
        match slotcore::cluster::Cluster::start(&cfg, placement.shards) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!("{}", e);
                slotcore::process::shutdown_and_exit(1);
            }
        }
    } else {
        None
    };
    let fd_fit = slotcore::limits::fit_open_files(cfg.maxclients);
    cfg.maxclients = fd_fit.maxclients.max(1);
    let cfg = Arc::new(cfg);
    slotcore::storage::thresholds::apply(&cfg);
    slotcore::cmd::notify::apply_config(&cfg);
    let node = Arc::new(NodeInfo {
        run_id: random_hex40(),
        pid: std::process::id(),
        start_ms: slotcore::storage::now_ms(),
        executable,
        config_file: abs_config.clone().unwrap_or_default(),
        shards: placement.shards,
        shard_cpus: (0..placement.shards).map(|i| placement.shard_cpus.get(i).copied()).collect(),
        connected_clients: Default::default(),
        // Redis 7.0 gives ids 1 and 2 to internal clients (its scripting engines): the first
        // connection is id 3 there, and here.
        next_client_id: 3.into(),
        config_gen: Default::default(),
        config: std::sync::RwLock::new(cfg.clone()),
        started: std::time::Instant::now(),
        cluster,
        blocked_clients: Default::default(),
        blocked_with_timeout: Default::default(),
        tracking: Default::default(),
        pubsub: Default::default(),
        repl: Default::default(),
    });
    log_start(&cfg, &node, &loaded.not_acted, &abs_config);
    slotcore::runtime::outbound::set_source(&cfg);
    // As Redis at start-up: a failure is logged, and the node runs on.
    let _ = slotcore::oom_score_adj::configure(slotcore::oom_score_adj::Settings::of(&cfg));
    slotcore::supervise::init(cfg.get("supervised").unwrap_or("no"));
    slotcore::supervise::loading();
    slotcore::proctitle::apply(&cfg, abs_config.as_deref().unwrap_or(""));
    slotcore::limits::log_fit(&fd_fit);
    if let Some(text) = &fd_fit.fatal {
        tracing::warn!("{}", text);
        slotcore::process::shutdown_and_exit(1);
    }
    write_pidfile(&cfg.pidfile);
    if slotcore::tls::wanted(&cfg) && !slotcore::tls::configure(&cfg) {
        tracing::warn!("Failed to configure TLS. Check logs for more info.");
        slotcore::process::shutdown_and_exit(1);
    }
    // `port 0`: no plain TCP listener (a TLS-only node).
    let mut listeners = match cfg.port {
        0 => Vec::new(),
        _ => slotcore::runtime::listener::bind_all(&cfg).unwrap_or_else(|e| {
            tracing::warn!("{}", e);
            slotcore::process::shutdown_and_exit(1)
        }),
    };
    let tls_port = slotcore::tls::port(&cfg);
    if tls_port != 0 {
        match slotcore::runtime::listener::bind_port(&cfg, tls_port) {
            Ok(l) => listeners.extend(l.into_iter().map(|l| slotcore::runtime::listener::Listener { tls: true, ..l })),
            Err(e) => {
                tracing::warn!("{}", e.replace("(tcp)", "(TLS)"));
                slotcore::process::shutdown_and_exit(1);
            }
        }
    }
    match slotcore::runtime::listener::bind_unix(&cfg) {
        Ok(l) => listeners.extend(l),
        Err(e) => {
            tracing::warn!("{}", e);
            slotcore::process::shutdown_and_exit(1);
        }
    }
    if listeners.is_empty() {
        tracing::warn!("Configured to not listen anywhere, exiting.");
        slotcore::process::shutdown_and_exit(1);
    }
    let bus_listeners = if cfg.cluster_enabled {
        match slotcore::runtime::listener::bind_port(&cfg, slotcore::cluster::bus_port(&cfg)) {
            Ok(l) => {
                slotcore::cluster::bus_listening_on(slotcore::cluster::bus_port(&cfg));
                l
            }
            Err(e) => {
                tracing::warn!("{}", e);
                slotcore::process::shutdown_and_exit(1);
            }
        }
    } else {
        Vec::new()
    };
    match &placement.bus_cpu {
        Some(bus) => tracing::info!(
            "{} shard(s) pinned to CPU(s) {:?}, control core on CPU {}",
            placement.shards,
            placement.shard_cpus,
            bus
        ),
        None => tracing::info!("{} shard(s) plus a control core, not pinned (pin-cores no)", placement.shards),
    }
    tracing::info!("Server initialized");
    if let Err(e) = slotcore::runtime::run(cfg, node, placement, listeners, bus_listeners) {
        slotcore::process::log_fatal(&e);
        slotcore::process::shutdown_and_exit(1);
    }
}
