//! Cluster concerns: hash-slot math, the node table and nodes.conf, the authoritative cluster
//! state, the routing snapshot shards use, and the cluster bus.
//!
//! Ownership: [`Cluster`] is shared by the whole process. Its state sits behind a mutex that
//! only the control core (bus) and CLUSTER commands take, never the data path; every change
//! ends with [`Cluster::with`] committing it: `cluster_state` recomputed, nodes.conf saved (and
//! fsynced) when Redis would, and a new [`view::ClusterView`] published. Shards compare one
//! atomic generation per batch and swap their `Arc` when it moved.

pub mod bus;
pub mod conf;
pub mod data_check;
pub mod failover;
pub mod nodes;
pub mod ops;
pub mod redirect;
pub mod slot;
pub mod state;
pub mod view;

pub use slot::{key_slot, SLOTS};

use crate::config::Config;
use state::{todo, ClusterSettings, ClusterState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use view::{ClusterView, ShardAssign};

/// The cluster settings in a configuration.
pub fn settings(cfg: &Config) -> ClusterSettings {
    let num = |k: &str, d: u64| cfg.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let yes = |k: &str, d: bool| cfg.get(k).map(|v| v == "yes").unwrap_or(d);
    let text = |k: &str| cfg.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    // A TLS cluster announces its TLS port (and the TLS announce setting) as the client port.
    let tls = crate::tls::cluster(cfg);
    let announced = if tls { num("cluster-announce-tls-port", 0) } else { num("cluster-announce-port", 0) };
    let port = match announced {
        0 => client_port(cfg),
        p => p as u16,
    };
    let cport = match num("cluster-announce-bus-port", 0) {
        0 => bus_port(cfg),
        p => p as u16,
    };
    ClusterSettings {
        node_timeout: num("cluster-node-timeout", 15000).max(1),
        require_full_coverage: yes("cluster-require-full-coverage", true),
        allow_reads_when_down: yes("cluster-allow-reads-when-down", false),
        announce_hostname: text("cluster-announce-hostname"),
        announce_ip: text("cluster-announce-ip"),
        port,
        cport,
        endpoint: match cfg.get("cluster-preferred-endpoint-type") {
            Some("hostname") => state::Endpoint::Hostname,
            Some("unknown-endpoint") => state::Endpoint::Unknown,
            _ => state::Endpoint::Ip,
        },
        replica_validity_factor: num("cluster-replica-validity-factor", 10),
        repl_ping_period: num("repl-ping-replica-period", 10),
        replica_no_failover: yes("cluster-replica-no-failover", false),
        migration_barrier: num("cluster-migration-barrier", 1),
        allow_replica_migration: yes("cluster-allow-replica-migration", true),
    }
}

/// The client port cluster nodes know this node by: `tls-port` in a TLS cluster, else `port`.
pub fn client_port(cfg: &Config) -> u16 {
    if crate::tls::cluster(cfg) {
        crate::tls::port(cfg)
    } else {
        cfg.port
    }
}

/// The port the bus listens on (`cluster-port`, default the client port + 10000). Once the bus
/// listens, that port: a client port changed by CONFIG SET does not move the bus.
pub fn bus_port(cfg: &Config) -> u16 {
    match cfg.get("cluster-port").and_then(|v| v.parse::<u16>().ok()) {
        Some(p) if p != 0 => p,
        _ => match BUS_LISTENING.load(Ordering::Relaxed) {
            0 => client_port(cfg).wrapping_add(10000),
            p => p,
        },
    }
}

/// The port the bus listens on, once it does (0 before).
static BUS_LISTENING: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Records the port the bus was bound to at start-up.
pub fn bus_listening_on(port: u16) {
    BUS_LISTENING.store(port, Ordering::Relaxed);
}

/// State, shard assignment and nodes.conf, guarded together.
pub struct Inner {
    /// The cluster state.
    pub st: ClusterState,
    /// slot -> shard.
    pub assign: ShardAssign,
    /// The locked nodes.conf.
    pub conf: conf::ConfFile,
}

/// The process-wide cluster object.
pub struct Cluster {
    inner: Mutex<Inner>,
    view: RwLock<Arc<ClusterView>>,
    /// Generation of the published view.
    pub generation: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("generation", &self.generation.load(Ordering::Relaxed)).finish()
    }
}

impl Cluster {
    /// Loads (or creates) nodes.conf and builds the cluster; errors are fatal start-up errors.
    pub fn start(cfg: &Config, nshards: usize) -> Result<Cluster, String> {
        let path = cfg.get("cluster-config-file").unwrap_or("nodes.conf").to_string();
        let (file, text) = conf::ConfFile::open(&path)?;
        let now = crate::storage::now_ms();
        let s = settings(cfg);
        let fresh = text.trim().is_empty();
        let mut st = if fresh {
            let st = ClusterState::new(state::random_name(), s, now);
            tracing::info!("No cluster configuration found, I'm {}", state::name_str(&st.myself));
            st
        } else {
            let parsed = nodes::NodesConf::parse(&text).map_err(|e| e.0)?;
            let st = ClusterState::from_conf(&parsed, s, now)?;
            tracing::info!("Node configuration loaded, I'm {}", &state::name_str(&st.myself)[..6]);
            st
        };
        st.want(todo::UPDATE_STATE | if fresh { todo::SAVE_CONFIG | todo::FSYNC_CONFIG } else { 0 });
        let mut inner = Inner { st, assign: ShardAssign::new(nshards), conf: file };
        let v = view::build(&inner.st, &mut inner.assign);
        let c = Cluster { inner: Mutex::new(inner), view: RwLock::new(Arc::new(v)), generation: AtomicU64::new(0) };
        c.change(|_| ());
        Ok(c)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Runs `f` on the state, then commits what it changed (see the module doc).
    pub fn with<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g.st);
        Self::commit(&self.view, &self.generation, &mut g, false);
        r
    }

    /// Like [`Cluster::with`] but publishes a new view even if nothing asked for it (used
    /// after changes to slots, roles or addresses).
    pub fn change<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g.st);
        Self::commit(&self.view, &self.generation, &mut g, true);
        r
    }

    fn commit(view: &RwLock<Arc<ClusterView>>, gen: &AtomicU64, g: &mut Inner, force: bool) {
        let now = crate::storage::now_ms();
        let was_ok = g.st.ok;
        let todo_bits = std::mem::take(&mut g.st.todo);
        if todo_bits & todo::UPDATE_STATE != 0 || force {
            g.st.update_state(now);
        }
        if todo_bits & todo::SAVE_CONFIG != 0 {
            let conf = g.st.conf();
            if let Err(e) = g.conf.save(&conf, todo_bits & todo::FSYNC_CONFIG != 0) {
                tracing::warn!("Could not save the cluster config file: {}", e);
                tracing::warn!("Fatal: can't update cluster config file.");
                crate::process::shutdown_and_exit(1);
            }
        }
        // Keep the broadcast request for the bus.
        g.st.todo |= todo_bits & todo::BROADCAST_PONG;
        if force || was_ok != g.st.ok || todo_bits & todo::SAVE_CONFIG != 0 {
            g.st.generation += 1;
            let v = view::build(&g.st, &mut g.assign);
            match view.write() {
                Ok(mut w) => *w = Arc::new(v),
                Err(p) => *p.into_inner() = Arc::new(v),
            }
            gen.store(g.st.generation, Ordering::Release);
        }
    }

    /// The current routing snapshot.
    pub fn view(&self) -> Arc<ClusterView> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Slots per shard.
    pub fn shard_slot_counts(&self) -> Vec<usize> {
        self.lock().assign.counts()
    }
}
