//! Pub/Sub over the cluster bus: local PUBLISH / SPUBLISH calls queue their message for the
//! control executor, which sends it to the other nodes (`Bus::send_publish`); messages received
//! from other nodes are handed to every data shard over the mesh, in arrival order.

use super::mesh::Msg;
use super::mesh_links::Senders;
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;
use std::sync::Mutex;

/// One message for (or from) the bus.
#[derive(Debug)]
pub struct Publish {
    /// SPUBLISH / PUBLISHSHARD.
    pub sharded: bool,
    /// Channel.
    pub channel: Bytes,
    /// Message.
    pub message: Bytes,
}

/// What the shards ask of the bus, in order.
pub enum ToBus {
    /// A local PUBLISH / SPUBLISH for the other nodes.
    Publish(Publish),
    /// DEBUG CLUSTERLINK KILL: close the outbound link to `node` (`to`) and/or its inbound
    /// link (`from`); ordered with publishes, so a message published after it is not sent on
    /// the closed link.
    KillLinks {
        /// The node.
        node: crate::cluster::state::Name,
        /// Close the link we opened to it.
        to: bool,
        /// Close the link it opened to us.
        from: bool,
    },
}

/// The queue to the bus (set once the bus runs; only in cluster mode).
static OUTGOING: Mutex<Option<mpsc::UnboundedSender<ToBus>>> = Mutex::new(None);

/// Asks the bus to close links to and/or from `node` (a no-op without a bus).
pub fn kill_links(node: crate::cluster::state::Name, to: bool, from: bool) {
    if let Some(tx) = OUTGOING.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        let _ = tx.unbounded_send(ToBus::KillLinks { node, to, from });
    }
}

/// Creates the queue to the bus and returns its receiving end (called by the bus).
pub fn outgoing() -> mpsc::UnboundedReceiver<ToBus> {
    let (tx, rx) = mpsc::unbounded();
    *OUTGOING.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    rx
}

/// Queues a local PUBLISH for the other nodes (a no-op without a bus).
pub fn forward(sharded: bool, channel: Bytes, message: Bytes) {
    if let Some(tx) = OUTGOING.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        let _ = tx.unbounded_send(ToBus::Publish(Publish { sharded, channel, message }));
    }
}

/// Delivers messages received from other nodes to the subscribers on every data shard.
pub async fn deliver_loop(mut rx: mpsc::UnboundedReceiver<Publish>, mesh: std::rc::Rc<Senders>, nshards: usize) {
    while let Some(p) = rx.next().await {
        // Not propagated: there is a bus only in cluster mode.
        let run = if p.sharded { crate::cmd::pubsub::deliver_shard_quiet } else { crate::cmd::pubsub::deliver_quiet };
        let args = vec![Bytes::from_static(b"publish"), p.channel, p.message];
        for s in 0..nshards {
            // Nobody waits for the count: the reply end is dropped.
            let (reply, _) = oneshot::channel();
            let _ = mesh.send_to(s, Msg::Run { run, db: 0, args: args.clone(), reply }).await;
        }
    }
}
