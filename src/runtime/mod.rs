//! The thread-per-core runtime, and the only module that names glommio: executors and their
//! placement, the channel mesh, listeners, timers, shutdown.
//!
//! Layout: `shards` data executors (peer ids 0..shards) plus one control executor (the last
//! peer id) in one full mesh. Each data shard accepts clients on every listener; a connection is
//! served for its whole life by the shard with the fewest clients (`balance`, handed over the mesh
//! when another shard accepted it); keyed commands for slots another shard owns travel over the mesh.

pub mod aof;
pub mod aof_base;
pub mod aof_load;
pub mod balance;
pub mod blocking;
pub mod bus;
pub mod bus_publish;
pub mod control_freeze;
pub mod gate;
pub mod idle_writer;
pub mod listener;
pub mod liveness;
pub mod mesh;
pub mod mesh_links;
pub mod migrate_link;
pub mod netpoll;
pub mod notify_forward;
pub mod outbound;
pub mod port_change;
pub mod repl_master;
pub mod save_child;
pub mod sched_class;
pub mod script_common;
pub mod script_exec;
pub mod script_node;
pub mod script_undo;
pub mod shard;
pub mod shutdown_wait;
pub mod snapshot;
mod spanning;
pub mod start_flag;
pub mod startup_load;

use crate::cmd::{NodeInfo, ShardState};
use crate::config::Config;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use shard::Shard;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Shards that have passed their start-up; the last one sets [`ALL_STARTED`] and logs "Ready to
/// accept connections" (the listening sockets are bound already: clients wait in the backlog).
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Every shard has passed its start-up: shards may accept clients.
static ALL_STARTED: start_flag::StartFlag = start_flag::StartFlag::new();

/// Capacity of each (from, to) mesh channel. A sender waits while its channel is full (and a
/// message carries a batch of a client's pipelined commands, not one command). At 1024
/// the rings held 1.3 MB of an idle four-shard node's 3 MB (Redis's whole empty server uses
/// 0.9 MB), which Redis's `maxmemory` tests that fill 5 MB under an 11 MB ceiling noticed.
const MESH_CAPACITY: usize = 256;
/// Each channel's ring is allocated whole at start-up, one slot per message, and a node has
/// `(shards + 1) * shards` channels: a message that grew to 200 bytes made an idle four-shard
/// node hold 4 MB of rings. Large, rare payloads are boxed to keep it small.
const _: () = assert!(std::mem::size_of::<mesh::Msg>() <= 64);
/// Memory registered with io_uring per executor (counts against RLIMIT_MEMLOCK and, being
/// allocated from the heap, in `used_memory`): glommio's pool for its file reads and DMA
/// buffers, which slotcore does not use (sockets go through `netpoll`, files through plain
/// syscalls on the blocking pool), so its floor, 64 KB. At 512 KB an empty one-shard node used
/// 1.87 MB at start-up against redis-server's 0.88 MB.
pub(crate) const IO_MEMORY: usize = 64 << 10;

/// How executors are placed on CPUs.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Number of data shards.
    pub shards: usize,
    /// CPU per shard (empty when not pinned).
    pub shard_cpus: Vec<usize>,
    /// CPU of the control executor (None when not pinned).
    pub bus_cpu: Option<usize>,
}

/// Number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Decides shard count and pinning from the config (design.md §1).
pub fn plan_placement(cfg: &Config) -> Result<Placement, String> {
    let ncpu = available_cpus();
    let shards = if cfg.shards > 0 {
        cfg.shards
    } else if !cfg.shard_cores.is_empty() {
        cfg.shard_cores.len()
    } else {
        ncpu.saturating_sub(1).max(1)
    };
    if !cfg.pin_cores {
        return Ok(Placement { shards, shard_cpus: Vec::new(), bus_cpu: None });
    }
    let online: Vec<usize> = core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_else(|| (0..ncpu).collect());
    let check = |c: usize| {
        if online.contains(&c) {
            Ok(c)
        } else {
            Err(format!("CPU {c} is not available to this process (available: {online:?})"))
        }
    };
    let shard_cpus: Vec<usize> = if cfg.shard_cores.is_empty() {
        (0..shards).map(|i| online[i % online.len()]).collect()
    } else {
        if cfg.shard_cores.len() < shards {
            return Err(format!("shard-cores lists {} CPUs but shards is {}", cfg.shard_cores.len(), shards));
        }
        cfg.shard_cores[..shards].iter().map(|&c| check(c)).collect::<Result<_, _>>()?
    };
    let bus_cpu = match cfg.bus_core {
        Some(c) => check(c)?,
        None => *online.last().unwrap_or(&0),
    };
    Ok(Placement { shards, shard_cpus, bus_cpu: Some(bus_cpu) })
}

/// Runs the node until the process exits. Returns an error if executors could not start.
pub fn run(
    cfg: Arc<Config>,
    node: Arc<NodeInfo>,
    placement: Placement,
    listeners: Vec<listener::Listener>,
    bus_listeners: Vec<listener::Listener>,
) -> Result<(), String> {
    let nshards = placement.shards;
    balance::init(nshards);
    crate::cmd::notify_order::init(nshards);
    let pool_placement = if placement.shard_cpus.is_empty() {
        PoolPlacement::Unbound(nshards + 1)
    } else {
        let mut sets = Vec::new();
        for &c in placement.shard_cpus.iter().chain(placement.bus_cpu.iter()) {
            let set = CpuSet::online().map_err(|e| format!("reading online CPUs: {e}"))?.filter(move |l| l.cpu == c);
            sets.push(set);
        }
        PoolPlacement::Custom(sets)
    };
    let mesh = Arc::new(mesh_links::MeshLinks::new(nshards + 1, MESH_CAPACITY));
    // `used_memory_startup`: what the node holds once set up, before any data is loaded; each
    // executor adds its own set-up when done (`add_startup_of_this_thread`).
    crate::memory::mark_startup();
    // The RDB file (or the AOF) is read once, on its own thread; each shard then takes its own
    // keys. A big file loads while the listeners answer -LOADING (see `startup_load`).
    let loaded = startup_load::begin(&cfg, &node)?;
    let fds: Vec<(i32, bool)> = listeners.iter().map(|l| (l.fd, l.tls)).collect();
    let tcp_listening = listeners.iter().any(|l| !l.unix);
    let unix_listening = listeners.iter().any(|l| l.unix).then(|| cfg.unixsocket.clone());
    port_change::started(cfg.port, crate::tls::port(&cfg), &listeners);
    let bus_fds: Vec<i32> = bus_listeners.iter().map(|l| l.fd).collect();
    let spin = Duration::from_micros(cfg.busy_poll_us);
    let mut builder =
        LocalExecutorPoolBuilder::new(pool_placement).name("slotcore").io_memory(IO_MEMORY).ring_depth(512);
    if cfg.busy_poll_us > 0 {
        builder = builder.spin_before_park(spin);
    }
    let handles = builder
        .on_all_shards(move || async move {
            // The software watchdog (`watchdog-period`) watches every executor's turns.
            crate::watchdog::register();
            let (tx, rx) = mesh.join().await;
            let id = tx.peer_id();
            tracing::debug!("executor {} joined the shard mesh", id);
            if id == nshards {
                // The control executor: the replication master side in both modes, and the
                // cluster bus in cluster mode.
                glommio::spawn_local(repl_master::run(node.clone())).detach();
                glommio::spawn_local(aof::run(node.clone())).detach();
                glommio::spawn_local(control_freeze::run()).detach();
                glommio::spawn_local(async {
                    ALL_STARTED.wait().await;
                    crate::memory::add_startup_of_this_thread();
                })
                .detach();
                match node.cluster.clone() {
                    Some(c) => bus::run(c, node.clone(), bus_fds.clone(), tx, nshards).await,
                    None => futures_lite::future::pending::<()>().await,
                }
                return;
            }
            let cfg = node.config();
            let mut state = ShardState::new(id, cfg, node.clone());
            // Keyspace notifications reach the other shards' subscribers through this task.
            let (ntx, nrx) = futures_channel::mpsc::unbounded();
            state.notify.set_forwarder(ntx);
            let shard = Rc::new(Shard::new(id, nshards, state, tx));
            glommio::spawn_local(shard.clone().forward_notifications(nrx)).detach();
            shard.refresh_cluster();
            for (_from, stream) in rx {
                let s = shard.clone();
                glommio::spawn_local(async move {
                    while let Some(msg) = stream.recv().await {
                        match msg {
                            mesh::Msg::Adopt { fd, tls } => serve_client_fd(s.clone(), fd, tls),
                            msg => s.handle(msg),
                        }
                    }
                })
                .detach();
            }
            glommio::spawn_local(active_expire(shard.clone())).detach();
            let n = node.clone();
            // The AOF may take the shard's rounds itself (`aof::take_round`).
            glommio::spawn_local(
                async move { crate::replication::feed::batch_waker(&n.repl.feed, aof::take_round).await },
            )
            .detach();
            if id == 0 {
                let background = glommio::executor().create_task_queue(
                    glommio::Shares::Static(100),
                    glommio::Latency::Matters(snapshot::SNAPSHOT_LATENCY),
                    "snapshot",
                );
                match glommio::spawn_local_into(snapshot::bgsave_driver(shard.clone()), background) {
                    Ok(t) => t.detach(),
                    Err(_) => glommio::spawn_local(snapshot::bgsave_driver(shard.clone())).detach(),
                };
                glommio::spawn_local(snapshot::save_cron(shard.clone())).detach();
                // Full-sync snapshots too run below client work, in the snapshot queue (they
                // stalled there once: a task sleeping on a timer as this queue's short
                // preemption timer ran out was never woken; fixed in the vendored glommio,
                // vendor/glommio/PATCHES.md, test tests/latency_queue_wake.rs).
                match glommio::spawn_local_into(repl_master::snapshot_jobs(shard.clone()), background) {
                    Ok(t) => t.detach(),
                    Err(_) => glommio::spawn_local(repl_master::snapshot_jobs(shard.clone())).detach(),
                };
                glommio::spawn_local(aof::rewrite_driver(shard.clone())).detach();
                glommio::spawn_local(aof_load::loadaof_driver(shard.clone())).detach();
            }
            // A load in the background: clients are served (-LOADING) while it runs.
            let accept_early = startup_load::in_background();
            if accept_early {
                start_accepting(&shard, &fds);
            }
            crate::memory::add_startup_of_this_thread();
            startup_load::loaded().await;
            take_loaded_keys(&shard, &loaded);
            tracing::debug!("shard {} took its loaded keys", id);
            aof::startup(&shard).await;
            tracing::debug!("shard {} passed the AOF start-up", id);
            {
                // The slots this shard holds keys in once an AOF's commands ran (the last
                // shard to get here settles the start-up's slot marks with them).
                let st = shard.state.borrow();
                crate::cluster::data_check::note_loaded_slots(st.ks.dbs[0].nonempty_slots_from(0));
            }
            // No shard accepts before every shard has passed its start-up: a client accepted
            // early could send a write to a shard still in it, whose start-up would then drop
            // the write's change record with the replay's (the AOF would miss it).
            let last = STARTED.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1 == nshards;
            if last {
                if let Some(c) = shard.state.borrow().node.cluster.as_deref() {
                    c.change(crate::cluster::data_check::finish_claims);
                }
                startup_load::finished();
                ALL_STARTED.set();
            }
            ALL_STARTED.wait().await;
            if id == 0 {
                // The replica side's link to a master lives on shard 0; it connects once the
                // node's own data is loaded (Redis's replication cron does not run while loading).
                glommio::spawn_local(crate::replication::replica::run(shard.clone())).detach();
            }
            if !accept_early {
                start_accepting(&shard, &fds);
            }
            if last {
                if tcp_listening {
                    tracing::info!("Ready to accept connections");
                }
                if let Some(path) = &unix_listening {
                    tracing::info!("The server is now ready to accept connections at {}", path);
                }
                crate::supervise::ready(shard.state.borrow().node.repl.is_replica());
            }
            futures_lite::future::pending::<()>().await;
        })
        .map_err(|e| format!("starting executors: {e}"))?;
    for r in handles.join_all() {
        if let Err(e) = r {
            return Err(format!("executor failed: {e}"));
        }
    }
    Ok(())
}

/// Moves the loaded keys whose slots this shard owns into it (the rest stay for the others).
fn take_loaded_keys(shard: &Shard, loaded: &std::sync::Mutex<Vec<crate::persist::file::Record>>) {
    let mine: Vec<crate::persist::file::Record> = {
        let mut all = match loaded.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if all.is_empty() {
            return;
        }
        let owned =
            |r: &crate::persist::file::Record| shard.shard_of_slot(crate::cluster::slot::key_slot(&r.key)) == shard.id;
        let (mine, rest) = std::mem::take(&mut *all).into_iter().partition(owned);
        *all = rest;
        mine
    };
    let mut st = shard.state.borrow_mut();
    let lru = crate::storage::db::lru_clock();
    for r in mine {
        if r.db < st.ks.dbs.len() {
            st.ks.dbs[r.db].load(&r.key, crate::storage::Entry { value: r.value, expire_at: r.expire_at, lru });
        }
    }
}

/// Starts this shard's accept loops on the listening sockets (`(fd, tls)`), and its watch of
/// `port`/`tls-port` changes.
fn start_accepting(shard: &Rc<Shard>, fds: &[(i32, bool)]) {
    glommio::spawn_local(port_change::watch(shard.clone())).detach();
    for &(fd, tls) in fds {
        glommio::spawn_local(accept_loop(shard.clone(), fd, tls)).detach();
    }
}

/// Accepts clients on a listening socket (`tls`: on `tls-port`, handshake first).
async fn accept_loop(shard: Rc<Shard>, fd: i32, tls: bool) {
    // SAFETY: the duplicate gives this shard its own fd for the shared listening socket.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        tracing::error!("dup of listening socket failed: {}", std::io::Error::last_os_error());
        return;
    }
    let listener = match netpoll::NetStream::adopt(dup) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("registering the listening socket: {}", e);
            return;
        }
    };
    accept_on(shard, listener, tls).await
}

/// Accepts clients on this shard's `listener` until the socket stops listening (a `tls-port`
/// moved by CONFIG SET shuts the old socket down).
/// Each connection goes to the shard with the fewest clients (`balance`).
pub async fn accept_on(shard: Rc<Shard>, listener: netpoll::NetStream, tls: bool) {
    loop {
        match listener.accept_fd().await {
            Ok(fd) => {
                let target = balance::assign(shard.id);
                if target == shard.id {
                    serve_client_fd(shard.clone(), fd, tls);
                } else if shard.mesh.send_to(target, mesh::Msg::Adopt { fd, tls }).await.is_err() {
                    // The other shard is gone (shutting down): not served anywhere.
                    drop(balance::Assigned::on(target));
                    // SAFETY: the accepted fd is ours and registered nowhere.
                    unsafe { libc::close(fd) };
                }
            }
            Err(_) if !listening(&listener) => return,
            Err(e) => {
                tracing::warn!("Accepting client connection: {}", e);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves an accepted client socket on this shard, which [`balance::assign`] counted it on.
fn serve_client_fd(shard: Rc<Shard>, fd: i32, tls: bool) {
    let counted = balance::Assigned::on(shard.id);
    let stream = match netpoll::NetStream::adopt(fd) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("Registering a client connection: {}", e);
            return;
        }
    };
    glommio::spawn_local(async move {
        let _counted = counted;
        if tls {
            crate::tls::serve_client(stream, shard).await
        } else {
            crate::conn::serve(stream.into(), shard).await
        }
    })
    .detach();
}

/// Whether a socket is still listening (SO_ACCEPTCONN).
fn listening(socket: &netpoll::NetStream) -> bool {
    socket2::SockRef::from(socket).is_listener().unwrap_or(false)
}

/// The active expire cycle: `hz` times a second, reclaim expired keys for up to ~1 ms.
async fn active_expire(shard: Rc<Shard>) {
    loop {
        let hz = shard.state.borrow().config.hz.clamp(1, 500);
        glommio::timer::sleep(Duration::from_millis(1000 / hz as u64)).await;
        migrate_link::close_idle();
        // A paused cron (DEBUG PAUSE-CRON) leaves a signal's request pending (SHUTDOWN ABORT
        // may still cancel it), as Redis's `serverCron` does.
        if shard.id == 0 && !crate::cmd::debug::cron_paused() && crate::process::take_shutdown_request() {
            signalled_shutdown(&shard).await;
        }
        if shard.gate.holder().is_some() || crate::cmd::debug::cron_paused() {
            continue;
        }
        shard.refresh_config();
        {
            let mut st = shard.state.borrow_mut();
            let s = &mut st.stats;
            let (ops, net_in, net_out) = (s.total_commands, s.net_input_bytes, s.net_output_bytes);
            s.instant.cron(crate::storage::now_ms(), ops, net_in, net_out, shard.id == 0);
        }
        // Clients over `maxmemory-clients` go before keys, as Redis evicts clients before it
        // evicts keys: the memory they give back may spare the keys.
        crate::memory::clients::evict(&shard).await;
        crate::memory::evict::cron(&mut shard.state.borrow_mut());
        if crate::memory::maxmemory() == 0 {
            // `used_memory_peak` is sampled here, as Redis's cron samples it: a reply held for
            // a slow client shows in it once gone (with `maxmemory` the eviction check counts
            // every tick and samples it).
            crate::memory::used();
        }
        crate::cmd::tracking::cron(&mut shard.state.borrow_mut());
        if !crate::storage::active_expire_enabled() {
            continue;
        }
        let start = std::time::Instant::now();
        let mut st = shard.state.borrow_mut();
        let now = crate::storage::now_ms();
        let mut reclaimed = 0;
        let (mut sampled, mut stale) = (0, 0);
        let mut capped = false;
        for db in st.ks.dbs.iter_mut() {
            reclaimed += db.expire_replica_keys(now);
            loop {
                let (examined, expired) = db.active_expire_step(now, 200);
                reclaimed += expired;
                sampled += examined;
                stale += expired;
                if start.elapsed() > Duration::from_millis(1) {
                    capped = true;
                    break;
                }
                // Keep going while a good share of what we looked at was expired (as Redis).
                if examined == 0 || expired * 4 < examined {
                    break;
                }
            }
        }
        // INFO's expire statistics, as Redis's `activeExpireCycle` keeps them.
        let s = &mut st.stats;
        let perc = if sampled > 0 { stale as f64 / sampled as f64 } else { 0.0 };
        s.expired_stale = perc * 0.05 + s.expired_stale * 0.95;
        s.expire_time_cap_reached += u64::from(capped);
        s.expire_cycle_us += start.elapsed().as_micros() as u64;
        // A cycle that reclaimed keys past `latency-monitor-threshold` (freeing a large key)
        // is a latency event.
        if reclaimed > 0 {
            st.record_latency("expire-cycle", start.elapsed().as_millis() as u64);
        }
        st.flush_changes();
    }
}

/// SIGTERM/SIGINT, picked up by shard 0: as SHUTDOWN with the arguments
/// `shutdown-on-sigterm` / `shutdown-on-sigint` name (by default none: save first when `save`
/// points are configured, every shard held, so the file is one point in time), then exit; a
/// failed or aborted shutdown keeps the server running, as in Redis, and the next signal asks
/// again.
async fn signalled_shutdown(shard: &Rc<Shard>) {
    let node = shard.state.borrow().node.clone();
    let args = crate::process::signal_shutdown_args(&node.config());
    let save = || shard.all_shards(crate::cmd::save::serialize_shard, 0, &[]);
    shutdown_wait::run(&node, args, false, save).await;
    crate::process::shutdown_request_done();
}

/// Sleeps without blocking the shard.
pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await
}

/// Runs `fut` with a time limit; None if it timed out.
pub async fn with_timeout<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    glommio::timer::timeout(d, async move { Ok(fut.await) }).await.ok()
}

/// A client connection's stream type (plain, or TLS on `tls-port`).
pub type ClientStream = crate::tls::MaybeTls<netpoll::NetStream>;

/// Serves a socket accepted through glommio as a [`ClientStream`].
pub fn adopt(stream: glommio::net::TcpStream) -> std::io::Result<ClientStream> {
    netpoll::NetStream::from_glommio(stream).map(ClientStream::Plain)
}

/// Opens a connection to `host:port` within `timeout`, from `bind-source-addr` when set (the
/// replica's link to its master; Sentinel's links).
pub async fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<ClientStream> {
    let stream = outbound::connect(host, port, timeout).await?;
    let _ = stream.set_nodelay(true);
    adopt(stream)
}

/// Runs a task on this shard, detached.
pub fn spawn(fut: impl std::future::Future<Output = ()> + 'static) {
    glommio::spawn_local(fut).detach();
}
