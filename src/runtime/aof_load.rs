//! DEBUG LOADAOF (`debugCommand`'s `loadaof`): shard 0 pauses the AOF's appends, empties the
//! node and loads the AOF files again as at start-up, then resumes the appends; the client's
//! reply comes when it is done.

use super::aof::{self, Chan};
use super::shard::Shard;
use super::snapshot::blocking;
use crate::aof::{load, Settings};
use crate::replication::feed::FeedItem;
use futures_lite::StreamExt;
use std::rc::Rc;
use std::sync::OnceLock;

fn loads() -> &'static Chan<futures_channel::oneshot::Sender<crate::protocol::Reply>> {
    static C: OnceLock<Chan<futures_channel::oneshot::Sender<crate::protocol::Reply>>> = OnceLock::new();
    C.get_or_init(Chan::new)
}

/// DEBUG LOADAOF: shard 0 empties the node and loads the AOF files again
/// ([`loadaof_driver`]); the reply comes when it is done.
pub fn debug_loadaof() -> crate::cmd::Plan {
    let (tx, rx) = futures_channel::oneshot::channel();
    let _ = loads().tx.unbounded_send(tx);
    crate::cmd::Plan::Later(rx)
}

/// Shard 0's DEBUG LOADAOF task: what is merged so far is written first and the AOF sink
/// pauses (the reload's own commands are not appended again, as Redis turns its AOF off while
/// loading); then every shard is emptied and takes the base's keys, the incr commands are
/// replayed as at start-up, and the sink resumes.
pub async fn loadaof_driver(shard: Rc<Shard>) {
    use crate::protocol::Reply;
    let Some(mut rx) = loads().take() else { return };
    while let Some(reply) = rx.next().await {
        let node = shard.state.borrow().node.clone();
        let (tx, paused) = futures_channel::oneshot::channel();
        node.repl.feed.push(FeedItem::Control(Box::new(move || aof::pause(tx))));
        let _ = paused.await;
        // As Redis's `loadDataFromDisk`: clients get -LOADING until the load is done.
        crate::replication::role::set_loading(true);
        let settings = Settings::from_config(&node.config());
        let dbs = node.config().databases;
        let mut loaded = match blocking(move || load::load_at_startup(&settings, dbs)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("{}", e);
                std::process::exit(1);
            }
        };
        let manifest = loaded.manifest.take();
        let sh = shard.clone();
        crate::replication::load::stage(loaded.records, shard.nshards, move |slot| sh.shard_of_slot(slot));
        shard.all_shards(crate::replication::load::load_part, 0, &[]).await;
        let was = crate::storage::replica_expiry();
        crate::storage::set_replica_expiry(true);
        // The replayed commands are what the replicas already have: not recorded.
        crate::replication::role::set_replaying(true);
        crate::conn::master::replay(shard.clone(), loaded.cmds).await;
        crate::replication::role::set_replaying(false);
        crate::storage::set_replica_expiry(was);
        // As Redis (`server.dirty = 0`): the reload is no change to save or propagate.
        shard.all_shards(crate::cmd::bgsave::forget_changes_shard, 0, &[]).await;
        crate::replication::role::set_loading(false);
        node.repl.feed.push(FeedItem::Control(Box::new(move || aof::resume(manifest))));
        tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
        let _ = reply.send(Reply::Ok);
    }
}
