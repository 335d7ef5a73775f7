//! The node's full mesh of channels between executors (the shards and the control core), built
//! before the executors start and connected by each of them at start-up.
//!
//! Why not glommio's `MeshBuilder`: its `join` registers the executors one by one, parks all but
//! the last on a notification channel, then connects each peer's two channels strictly in peer
//! order, each connection waiting for the peer's matching step. On a loaded 2-CPU machine that
//! sequence left executors asleep with the mesh half-built (a node that never printed "Ready to
//! accept connections", seen in several of every 12 multi-shard start-ups under load). Here every
//! channel exists up front; an executor learns its place once all have arrived (a start-up
//! barrier on the thread, before its loop serves anything) and then connects all of its ends at
//! once, so no connection waits behind another.

use super::mesh::Msg;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use glommio::GlommioError;
use std::sync::{Barrier, Mutex};

/// One executor's sending ends: a connected channel to every other executor of the node.
pub struct Senders {
    peer_id: usize,
    senders: Vec<Option<ConnectedSender<Msg>>>,
}

impl Senders {
    /// This executor's place in the mesh (shards are `0..nshards`, the control core `nshards`).
    pub fn peer_id(&self) -> usize {
        self.peer_id
    }

    /// Sends `msg` to executor `to`, waiting while its channel is full.
    pub async fn send_to(&self, to: usize, msg: Msg) -> Result<(), GlommioError<Msg>> {
        match self.senders.get(to) {
            Some(Some(s)) => s.send(msg).await,
            _ => Err(GlommioError::IoError(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("executor {to} is not a peer of executor {} in the mesh", self.peer_id),
            ))),
        }
    }
}

impl Senders {
    /// Sends `msg` to executor `to` without awaiting: while its channel is full the thread
    /// yields to the OS and tries again (the receiver drains on its own thread). For a caller
    /// that cannot return to its event loop (a script's command, see `script_node`); the
    /// receiver is woken at once. False when the peer is gone (the message is dropped, and
    /// with it any reply channel it carried).
    pub fn send_now(&self, to: usize, msg: Msg) -> bool {
        let Some(Some(s)) = self.senders.get(to) else { return false };
        let mut msg = msg;
        loop {
            match s.try_send(msg) {
                Ok(()) => return true,
                Err(GlommioError::WouldBlock(glommio::ResourceType::Channel(m))) => {
                    msg = m;
                    std::thread::yield_now();
                }
                Err(_) => return false,
            }
        }
    }
}

/// The receiving ends of one executor: `(from, channel)` for every other executor.
pub type Receivers = Vec<(usize, ConnectedReceiver<Msg>)>;

type SenderGrid = Vec<Vec<Option<SharedSender<Msg>>>>;
type ReceiverGrid = Vec<Vec<Option<SharedReceiver<Msg>>>>;

/// Every channel of the mesh, waiting for its executors.
pub struct MeshLinks {
    peers: usize,
    /// `senders[from][to]`.
    senders: Mutex<SenderGrid>,
    /// `receivers[to][from]`.
    receivers: Mutex<ReceiverGrid>,
    /// The glommio executor ids that arrived; a peer's place is its id's rank.
    arrived: Mutex<Vec<usize>>,
    all_arrived: Barrier,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MeshLinks {
    /// A full mesh of `peers` executors with channels of `capacity` messages each way.
    pub fn new(peers: usize, capacity: usize) -> MeshLinks {
        let mut senders: SenderGrid = (0..peers).map(|_| (0..peers).map(|_| None).collect()).collect();
        let mut receivers: ReceiverGrid = (0..peers).map(|_| (0..peers).map(|_| None).collect()).collect();
        for from in 0..peers {
            for to in 0..peers {
                if from != to {
                    let (s, r) = shared_channel::new_bounded(capacity);
                    senders[from][to] = Some(s);
                    receivers[to][from] = Some(r);
                }
            }
        }
        MeshLinks {
            peers,
            senders: Mutex::new(senders),
            receivers: Mutex::new(receivers),
            arrived: Mutex::new(Vec::with_capacity(peers)),
            all_arrived: Barrier::new(peers),
        }
    }

    /// Called once by every executor of the node, first thing: waits (blocking the thread, which
    /// serves nothing yet) until all executors arrived, then connects this executor's ends, all
    /// at once. Peers are ranked by glommio executor id, so the last executor created (the
    /// control core) is `peers - 1`.
    pub async fn join(&self) -> (Senders, Receivers) {
        let me = glommio::executor().id();
        lock(&self.arrived).push(me);
        self.all_arrived.wait();
        let peer_id = {
            let mut ids = lock(&self.arrived).clone();
            ids.sort_unstable();
            ids.iter().position(|&id| id == me).unwrap_or(0)
        };
        tracing::debug!("executor {} (glommio id {}) passed the start-up barrier", peer_id, me);
        let mine: Vec<Option<SharedSender<Msg>>> = std::mem::take(&mut lock(&self.senders)[peer_id]);
        let theirs: Vec<(usize, SharedReceiver<Msg>)> = std::mem::take(&mut lock(&self.receivers)[peer_id])
            .into_iter()
            .enumerate()
            .filter_map(|(from, r)| r.map(|r| (from, r)))
            .collect();
        // While connecting, a 1 ms timer keeps this executor's reactor turning: a connection
        // completes when the reactor sees the peer's end, and an executor asleep in its ring
        // with no timer would not look (observed under load: an executor that never joined).
        let connecting = std::rc::Rc::new(std::cell::Cell::new(true));
        let ticking = connecting.clone();
        glommio::spawn_local(async move {
            while ticking.get() {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .detach();
        // Start every connection before awaiting any: each completes when its peer connects the
        // other end, whatever order the peers go in.
        let sending: Vec<Option<glommio::task::JoinHandle<ConnectedSender<Msg>>>> =
            mine.into_iter().map(|s| s.map(|s| glommio::spawn_local(s.connect()).detach())).collect();
        let receiving: Vec<(usize, glommio::task::JoinHandle<ConnectedReceiver<Msg>>)> =
            theirs.into_iter().map(|(from, r)| (from, glommio::spawn_local(r.connect()).detach())).collect();
        let mut senders = Vec::with_capacity(self.peers);
        for s in sending {
            senders.push(match s {
                Some(h) => h.await,
                None => None,
            });
        }
        let mut receivers = Vec::with_capacity(self.peers);
        for (from, h) in receiving {
            if let Some(r) = h.await {
                receivers.push((from, r));
            }
        }
        connecting.set(false);
        (Senders { peer_id, senders }, receivers)
    }
}
