//! Blocked calls at run time (design.md §4: "blocking commands wait on the shard that owns the
//! key; the home shard forwards the eventual reply").
//!
//! The owning shard runs a call's non-blocking attempt and, in the same step, registers its
//! waiter when the attempt found nothing, so no push can slip in between. A call whose keys
//! span shards makes its attempt atomically across them (`run_spanning`), then registers one
//! waiter per owning shard, all sharing one token. The home connection waits on the token's
//! oneshot; on timeout or disconnect it claims the token itself and sends `Unblock` to every
//! shard it registered on. Drain tasks never await: `Block` and `Unblock` are handled inline
//! (deferred in order while a transaction holds the shard).

use super::mesh::{Msg, RemoteCmd};
use super::shard::Shard;
use crate::cmd::blocked::{self, Waiter};
use crate::cmd::blocking::would_block;
use crate::protocol::Reply;
use futures_channel::oneshot;

/// Error when a peer shard is gone (only during shutdown).
const PEER_GONE: &str = "ERR internal error: shard unavailable";

impl Shard {
    /// On the owning shard, with its gate open: the attempt, then the registration if the
    /// attempt found nothing. Returns the attempt's reply (a null when only registering).
    pub(super) fn block_here(&self, db: usize, attempt: Option<RemoteCmd>, waiter: Waiter) -> Reply {
        crate::storage::tick_clock();
        let mut st = self.state.borrow_mut();
        let r = match attempt {
            Some(cmd) => {
                let mut clock = crate::clock::Stamp::now();
                crate::cmd::execute_keyed(&mut st, cmd.spec, cmd.fullname, &cmd.args, cmd.slot, db, &mut clock)
            }
            None => Reply::Nil,
        };
        if would_block(&r) {
            blocked::register(&mut st, waiter);
        }
        st.flush_changes();
        r
    }

    /// Sends a blocking call (with its attempt, or registration only) to `target` and waits
    /// until it was attempted and, if need be, registered.
    pub async fn block_on(&self, target: usize, db: usize, attempt: Option<RemoteCmd>, waiter: Waiter) -> Reply {
        if target == self.id {
            return self.when_open(|| self.block_here(db, attempt, waiter)).await;
        }
        let (tx, rx) = oneshot::channel();
        if self.mesh.send_to(target, Msg::Block { db, call: Box::new((attempt, waiter)), reply: tx }).await.is_err() {
            return Reply::err(PEER_GONE);
        }
        rx.await.unwrap_or_else(|_| Reply::err(PEER_GONE))
    }

    /// Drops a blocked call's waiters on these shards.
    pub async fn unblock_on(&self, token: u64, shards: &[usize]) {
        for &s in shards {
            if s == self.id {
                blocked::cancel(&mut self.state.borrow_mut(), token);
            } else {
                let _ = self.mesh.send_to(s, Msg::Unblock { token }).await;
            }
        }
    }
}
