//! Sentinel mode: `slotcore sentinel.conf --sentinel` (or the binary invoked under a name
//! containing `redis-sentinel`) runs a Redis 7.0 Sentinel instead of a data node: it monitors
//! masters named in sentinel.conf, discovers their replicas (INFO) and the other Sentinels
//! (hello messages on `__sentinel__:hello`), agrees on SDOWN/ODOWN with a quorum, elects a
//! failover leader by `SENTINEL is-master-down-by-addr` votes with epochs, promotes a replica
//! and reconfigures the others, and keeps sentinel.conf rewritten after every state change.
//! Slotcore Sentinels and redis-server Sentinels interoperate: same messages, same votes.
//!
//! Modules: [`config`] (sentinel.conf read and rewrite), [`instance`] (masters, replicas, peers
//! and their flags), [`state`] (the Sentinel's state, events, config generation),
//! [`discovery`] (INFO, PING, hello and vote replies), [`monitor`] (periodic commands and the
//! timer: TILT, SDOWN, ODOWN), [`failover`] (election and the failover state machine),
//! [`link`] (connections to instances), [`server`] and [`command`] (Sentinel's clients and
//! the SENTINEL commands), [`introspection`] and [`command_table`] (COMMAND and the checks
//! before a command runs), [`clients`] (CLIENT), [`scripts`] (notification and reconfig scripts), [`acl`] (users, AUTH, ACL), [`resp`]
//! (client-side RESP).
//!
//! Runs on one thread: one glommio executor holds every task; state sits in one
//! `Rc<RefCell<State>>`. Idle cost is the 10 Hz timer and one short batch per instance per
//! tick.

pub mod acl;
pub mod clients;
pub mod command;
pub mod command_table;
pub mod config;
pub mod discovery;
pub mod failover;
pub mod instance;
pub mod introspection;
pub mod link;
pub mod monitor;
pub mod resp;
pub mod scripts;
pub mod server;
pub mod state;

use state::{Level, State, Which};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Whether this invocation asks for Sentinel mode (Redis's `checkForSentinelMode`): the
/// executable's name contains `redis-sentinel`, or an argument is `--sentinel`.
pub fn requested(argv0: &str, args: &[String]) -> bool {
    let exe = std::path::Path::new(argv0).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    exe.contains("redis-sentinel") || exe.contains("slotcore-sentinel") || args.iter().any(|a| a == "--sentinel")
}

fn fail(msg: &str) -> ! {
    // A closed stderr (a pipe) is not a reason to panic.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
    std::process::exit(1)
}

/// Runs a Sentinel from `config_file` plus command-line `options` (one directive a line);
/// `daemonize` forks into the background when the config asks for it. Never returns.
pub fn run(config_file: Option<String>, options: &str, daemonize: fn()) -> ! {
    let Some(file) = config_file.filter(|f| f != "-") else {
        fail("Sentinel needs config file on disk to save state. Exiting...");
    };
    let abs = std::fs::canonicalize(&file).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| file.clone());
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(&abs) {
        fail(&format!("Sentinel config file {abs} is not writable: {e}. Exiting..."));
    }
    let text = std::fs::read_to_string(&abs)
        .unwrap_or_else(|e| fail(&format!("Fatal error, can't open config file '{abs}': {e}")));
    let loaded = config::load(&text, options).unwrap_or_else(|e| fail(&e));
    let mut settings = loaded.settings;
    let supervised = settings.supervised.clone();
    settings.config_file = abs.clone();
    let mut st = State::new(settings.clone());
    for (linenum, line, args) in &loaded.sentinel_lines {
        if let Err(e) = st.apply_directive(args) {
            fail(&config::fatal(*linenum, line, &e));
        }
    }
    if settings.daemonize {
        daemonize();
        if settings.pidfile.is_empty() {
            st.settings.pidfile = "/var/run/redis-sentinel.pid".into();
        }
    }
    if !settings.dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&settings.dir) {
            fail(&format!("Can't chdir to '{}': {}", settings.dir, e));
        }
    }
    crate::logging::set_role(b'X');
    if let Err(e) = crate::logging::init(&settings.logfile, settings.loglevel) {
        fail(&e);
    }
    tracing::warn!("oO0OoO0OoO0Oo slotcore is starting oO0OoO0OoO0Oo");
    tracing::warn!(
        "slotcore version={}, redis_version=7.0.15, bits=64, commit=00000000, modified=0, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    tracing::warn!("Configuration loaded");
    tracing::info!("Running mode=sentinel, port={}.", settings.port);
    if !st.settings.pidfile.is_empty() {
        if let Err(e) = std::fs::write(&st.settings.pidfile, format!("{}\n", std::process::id())) {
            tracing::warn!("Failed to write PID file: {}", e);
        }
    }
    crate::runtime::outbound::set_source_addr(&settings.bind_source_addr);
    let mut cfg = crate::config::Config::default();
    if !settings.bind.is_empty() {
        cfg.bind = settings.bind.clone();
    }
    let listeners = crate::runtime::listener::bind_port(&cfg, settings.port).unwrap_or_else(|e| {
        tracing::warn!("{}", e);
        std::process::exit(1)
    });
    if st.myid.is_empty() {
        st.myid = state::random_hex40();
    }
    let _ = st.flush_config();
    tracing::warn!("Sentinel ID is {}", st.myid);
    for mi in 0..st.masters.len() {
        let at = st.at(mi, Which::Master);
        let q = st.masters[mi].quorum;
        st.event(Level::Warning, "+monitor", &format!("{at} quorum {q}"));
    }
    install_signal_thread();
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("sentinel")
        .io_memory(crate::runtime::IO_MEMORY)
        .make()
        .unwrap_or_else(|e| fail(&format!("can't start the Sentinel executor: {e}")));
    let shared = Rc::new(RefCell::new(st));
    executor.run(async move {
        for l in &listeners {
            let fd = l.fd;
            let st = shared.clone();
            crate::runtime::spawn(async move {
                // SAFETY: `fd` is a bound, listening socket this process owns and hands over once.
                let listener = unsafe { <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                loop {
                    match listener.accept().await {
                        Ok(stream) => match crate::runtime::adopt(stream) {
                            Ok(stream) => crate::runtime::spawn(server::serve(st.clone(), stream)),
                            Err(e) => tracing::warn!("Accepting client connection: {}", e),
                        },
                        Err(e) => {
                            tracing::warn!("Accepting client connection: {}", e);
                            crate::runtime::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        tracing::info!("Ready to accept connections");
        crate::supervise::init(&supervised);
        crate::supervise::ready(false);
        loop {
            link::spawn_new_links(&shared);
            shared.borrow_mut().tick();
            link::spawn_new_links(&shared);
            {
                let mut s = shared.borrow_mut();
                let c = &mut s.clients;
                let (ops, net_in, net_out) = (c.total_commands, c.net_input_bytes, c.net_output_bytes);
                c.instant.cron(state::now(), ops, net_in, net_out, false);
            }
            // Redis runs the Sentinel timer at a randomised hz (10..19) so that Sentinels
            // started together do not act in lockstep.
            crate::runtime::sleep(Duration::from_millis(1000 / fastrand::u64(10..20))).await;
        }
    })
}

/// SIGTERM/SIGINT: Sentinel saves nothing extra (the config is rewritten on every change).
fn install_signal_thread() {
    // SAFETY: plain sigset manipulation on a local set, before the executor thread work starts.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised signal set.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
        tracing::warn!("Received {} scheduling shutdown...", name);
        tracing::warn!("Sentinel is now ready to exit, bye bye...");
        std::process::exit(0);
    });
}
