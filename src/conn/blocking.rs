//! A blocking command on its client's home shard: the attempt, the wait, and the cleanup.
//!
//! While blocked the connection keeps reading its socket: input is kept for after the
//! command (Redis does not run a blocked client's next commands), and a closed socket (the
//! client left, or CLIENT KILL shut it down) ends the wait at once. Whatever ends the wait,
//! every shard the call registered on is told to drop its waiter, so nothing stays behind.

use super::Conn;
use crate::cmd::blocked::{BlockToken, Waiter, Wake};
use crate::cmd::blocking::{self, would_block, Blocking, Serve};
use crate::cmd::ctx::BlockedOn;
use crate::protocol::Reply;
use crate::runtime::mesh::RemoteCmd;
use bytes::Bytes;
use futures_lite::AsyncReadExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longer timeouts than this (about 3 years) wait forever, as far as anyone can tell.
const FOREVER_MS: u64 = 100_000_000_000;

/// What ended one step of the wait.
enum Event {
    Woke(Option<Wake>),
    Input(std::io::Result<usize>),
    Timeout,
}

impl Conn {
    /// Runs a blocking command to its final reply. Keys all on one shard: the attempt and the
    /// registration are one step there. Keys on several shards: an atomic attempt across them,
    /// then one waiter per shard.
    pub(crate) async fn run_blocking(&mut self, db: usize, cmd: RemoteCmd) -> Reply {
        let (fullname, cmd_flags, args) = (cmd.fullname, cmd.spec.flags, cmd.args.clone());
        let mut attempt_us = 0;
        let mut blocked = false;
        let reply = self.run_blocking_call(db, cmd, &mut attempt_us, &mut blocked).await;
        // The attempt was counted as a call; a blocked call that ends in an error (CLIENT
        // UNBLOCK ... ERROR) is a failed call too. SLOWLOG gets the command as the client
        // sent it, with its execution time (not the time it waited), as Redis logs it.
        if blocked && reply.is_error() {
            let mut st = self.shard.state.borrow_mut();
            st.stats.cmdstats.get(fullname).failed_calls += 1;
        }
        self.slowlog(&(cmd_flags, &args[..]), attempt_us);
        reply
    }

    async fn run_blocking_call(
        &mut self,
        db: usize,
        cmd: RemoteCmd,
        attempt_us: &mut u64,
        blocked: &mut bool,
    ) -> Reply {
        self.client.borrow_mut().last_cmd = cmd.fullname;
        let b = match blocking::parse(&cmd.args) {
            Ok(b) => b,
            // Errors come from the command itself, so they are counted like any other.
            Err(_) => return self.attempt_only(db, cmd).await,
        };
        let shard_of = |k: &Bytes| self.shard.shard_of_slot(crate::cluster::key_slot(k));
        let mut shards: Vec<usize> = b.keys.iter().map(shard_of).collect();
        let dst_shard = match &b.serve {
            Serve::Move { dst, .. } => Some(shard_of(dst)),
            _ => None,
        };
        let single = shards.iter().chain(dst_shard.iter()).all(|&s| s == shards[0]);
        shards.sort_unstable();
        shards.dedup();
        let deadline = (b.timeout_ms > 0 && b.timeout_ms < FOREVER_MS)
            .then(|| Instant::now() + Duration::from_millis(b.timeout_ms));
        let id = self.client.borrow().id;
        let (mut token, mut rx) = BlockToken::new(id);
        if single {
            let w = self.waiter(&b, &token, db, shards[0], true);
            let attempt = RemoteCmd {
                spec: cmd.spec,
                fullname: cmd.fullname,
                args: cmd.args.clone(),
                check: cmd.check.clone(),
                slot: cmd.slot,
                client: cmd.client,
                remember: false,
            };
            let start = Instant::now();
            let r = self.shard.block_on(shards[0], db, Some(attempt), w).await;
            *attempt_us = start.elapsed().as_micros() as u64;
            if !would_block(&r) {
                return r;
            }
        } else {
            let start = Instant::now();
            let r = self.attempt_spanning(db, &cmd).await;
            *attempt_us = start.elapsed().as_micros() as u64;
            if !would_block(&r) {
                return r;
            }
            self.register(&b, &token, db, &shards).await;
        }
        *blocked = true;
        let node = self.shard.state.borrow().node.clone();
        node.blocked_clients.fetch_add(1, Ordering::AcqRel);
        if deadline.is_some() {
            node.blocked_with_timeout.fetch_add(1, Ordering::AcqRel);
        }
        let timeout_reply = b.serve.timeout_reply();
        let reply = loop {
            self.client.borrow_mut().blocked =
                Some(BlockedOn { token: token.clone(), timeout_reply: timeout_reply.clone() });
            let outcome = self.wait(&mut rx, deadline).await;
            self.client.borrow_mut().blocked = None;
            let wake = match outcome {
                Some(w) => w,
                None => {
                    // Timed out or the client went away: claim the call, unless a shard has
                    // just claimed it, whose reply is then on its way.
                    if token.claim().is_some() {
                        self.shard.unblock_on(token.id, &shards).await;
                        break timeout_reply.clone();
                    }
                    (&mut rx).await.unwrap_or(Wake::Reply(timeout_reply.clone()))
                }
            };
            self.shard.unblock_on(token.id, &shards).await;
            match wake {
                Wake::Reply(r) => break r,
                Wake::Retry => {
                    // BLMOVE across shards: rerun atomically, block again if someone was first.
                    let r = self.attempt_spanning(db, &cmd).await;
                    if !would_block(&r) || self.client.borrow().killed {
                        break r;
                    }
                    (token, rx) = BlockToken::new(id);
                    self.register(&b, &token, db, &shards).await;
                }
            }
        };
        node.blocked_clients.fetch_sub(1, Ordering::AcqRel);
        if deadline.is_some() {
            node.blocked_with_timeout.fetch_sub(1, Ordering::AcqRel);
        }
        reply
    }

    fn waiter(&self, b: &Blocking, token: &std::sync::Arc<BlockToken>, db: usize, shard: usize, local: bool) -> Waiter {
        let keys =
            b.keys.iter().filter(|k| self.shard.shard_of_slot(crate::cluster::key_slot(k)) == shard).cloned().collect();
        Waiter { token: token.clone(), db, keys, serve: b.serve.clone(), local }
    }

    /// Registers the call's waiters, shard by shard, until one of them served it.
    async fn register(&self, b: &Blocking, token: &std::sync::Arc<BlockToken>, db: usize, shards: &[usize]) {
        // Only BLMOVE has a key outside `b.keys`, and it spans shards only when the
        // destination is elsewhere: such a waiter cannot be served on its own shard.
        let local = !matches!(b.serve, Serve::Move { .. });
        for &s in shards {
            if token.is_claimed() {
                break;
            }
            let w = self.waiter(b, token, db, s, local);
            self.shard.block_on(s, db, None, w).await;
        }
    }

    /// The call's non-blocking attempt when its keys span shards (atomic across them).
    async fn attempt_spanning(&self, db: usize, cmd: &RemoteCmd) -> Reply {
        let key_idx = match cmd.spec.key_indexes(&cmd.args) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let copy = RemoteCmd {
            spec: cmd.spec,
            fullname: cmd.fullname,
            args: cmd.args.clone(),
            check: cmd.check.clone(),
            slot: cmd.slot,
            client: cmd.client,
            remember: false,
        };
        crate::storage::tick_clock();
        self.shard.run_spanning(db, copy, &key_idx, false).await
    }

    /// Runs the command once, as its non-blocking form (malformed calls end there).
    async fn attempt_only(&self, db: usize, cmd: RemoteCmd) -> Reply {
        let key_idx = match cmd.spec.key_indexes(&cmd.args) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let shards: Vec<usize> =
            key_idx.iter().map(|&i| self.shard.shard_of_slot(crate::cluster::key_slot(&cmd.args[i]))).collect();
        crate::storage::tick_clock();
        match shards.first() {
            // XREAD/XREADGROUP without a STREAMS list: the handler reports the error.
            None => {
                let mut clock = crate::clock::Stamp::now();
                self.shard.run_local_one(db, &cmd, &mut clock).await
            }
            Some(&one) if shards.iter().all(|&s| s == one) => {
                if one == self.shard.id {
                    let mut clock = crate::clock::Stamp::now();
                    self.shard.run_local_one(db, &cmd, &mut clock).await
                } else {
                    let rx = self.shard.send_batch(one, db, vec![cmd]).await;
                    // This path notes the command in SLOWLOG itself (the attempt's time).
                    crate::runtime::shard::Shard::recv_batch(rx, 1).await.0.pop().unwrap_or(Reply::Nil)
                }
            }
            Some(_) => self.shard.run_spanning(db, cmd, &key_idx, false).await,
        }
    }

    /// Waits for the call's reply, the deadline, or the socket closing; input is kept.
    /// Returns None on timeout or when the client went away (then marked killed).
    async fn wait(
        &mut self,
        rx: &mut futures_channel::oneshot::Receiver<Wake>,
        deadline: Option<Instant>,
    ) -> Option<Wake> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return None;
            }
            let event = {
                let woke = async { Event::Woke((&mut *rx).await.ok()) };
                let input = async { Event::Input(self.stream.read(&mut buf).await) };
                let timer = async {
                    match left {
                        Some(d) => crate::runtime::sleep(d).await,
                        None => futures_lite::future::pending::<()>().await,
                    }
                    Event::Timeout
                };
                futures_lite::future::or(woke, futures_lite::future::or(input, timer)).await
            };
            match event {
                Event::Woke(w) => return w,
                Event::Timeout => return None,
                Event::Input(Ok(0)) | Event::Input(Err(_)) => {
                    self.client.borrow_mut().killed = true;
                    return None;
                }
                Event::Input(Ok(n)) => {
                    if !self.stash_input(&buf[..n]) {
                        return None;
                    }
                }
            }
        }
    }

    /// Keeps input read while the client waits (blocked or held by a pause) for after its
    /// command; false when it went over the query buffer limit (the client is then killed).
    pub(super) fn stash_input(&mut self, data: &[u8]) -> bool {
        self.rbuf.push(data);
        self.pending_input = true;
        let limit = {
            let mut st = self.shard.state.borrow_mut();
            st.stats.net_input_bytes += data.len() as u64;
            st.stats.reads_processed += 1;
            st.config.client_query_buffer_limit
        };
        if self.rbuf.len() as u64 > limit {
            tracing::warn!("Closing client that reached max query buffer length");
            self.client.borrow_mut().killed = true;
            return false;
        }
        true
    }
}
