//! The forwarder of a shard's keyspace notifications to the other shards' subscribers (see
//! `cmd::notify` and `cmd::notify_order`).

use super::mesh::Msg;
use super::shard::Shard;
use bytes::Bytes;
use futures_channel::oneshot;

impl Shard {
    /// Carries this shard's keyspace notifications to the other shards' subscribers, batch by
    /// batch in the order they were published (one FIFO mesh channel per peer).
    pub async fn forward_notifications(
        self: std::rc::Rc<Self>,
        mut rx: futures_channel::mpsc::UnboundedReceiver<Vec<Bytes>>,
    ) {
        use futures_lite::StreamExt;
        while let Some(batch) = rx.next().await {
            let mut args = Vec::with_capacity(batch.len() + 1);
            args.push(Bytes::from_static(b"notify"));
            args.extend(batch);
            // The batches queued meanwhile go along in the same message.
            let mut batches = 1;
            while let Ok(more) = rx.try_recv() {
                args.extend(more);
                batches += 1;
            }
            let mut taken = Vec::with_capacity(self.nshards);
            for s in (0..self.nshards).filter(|&s| s != self.id) {
                let (tx, ack) = oneshot::channel();
                let msg = Msg::Look { run: crate::cmd::notify::deliver_forwarded, args: args.clone(), reply: tx };
                if self.mesh.send_to(s, msg).await.is_ok() {
                    taken.push(ack);
                }
            }
            // Connections write their replies once their commands' events are everywhere
            // (`cmd::notify_order`).
            for ack in taken {
                let _ = ack.await;
            }
            crate::cmd::notify_order::delivered(self.id, batches);
        }
    }
}
