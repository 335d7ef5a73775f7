//! A client held by the node's pause ([`crate::pause`]): Redis's `BLOCKED_POSTPONE`. The
//! command waits, shown as blocked (CLIENT LIST flag `b` with the held command's name, INFO
//! `blocked_clients`), until the pause no longer holds it, then runs, followed by the rest of
//! the client's pipeline in order. A client that disconnects meanwhile is dropped with its
//! command unrun, as Redis frees it.
//!
//! What is held is decided where Redis's `processCommand` decides it, after the checks that
//! answer at once (unknown command, wrong arity, authentication): `Write` holds writes and
//! may-replicate commands (queued in MULTI too, EXEC of a transaction that queued one, scripts
//! by their declared flags); `All` holds every command.

use super::Conn;
use crate::cmd::{flags, table, CommandSpec, Exec};
use crate::pause::Kind;
use crate::protocol::request::Request;
use futures_lite::AsyncReadExt;
use std::sync::atomic::Ordering;

/// The command `req` names (the subcommand for a container) and its full name; `None` when
/// the name or the subcommand is unknown.
fn spec_of(req: &Request) -> Option<(&'static CommandSpec, &'static str)> {
    let spec = req.args.first().and_then(|n| table::lookup(n))?;
    if !spec.subcommands.is_empty() && (req.args.len() >= 2 || matches!(spec.exec, Exec::Container)) {
        let sub = req.args.get(1).and_then(|a| table::lookup_sub(spec, a))?;
        return Some((sub, table::fullname(spec, Some(sub))));
    }
    Some((spec, spec.name))
}

/// Would the pause hold `req` now? `authenticated`: the client may run commands;
/// `tx_writes`: its transaction queued a write (for EXEC).
fn holds(req: &Request, now_ms: u64, authenticated: bool, tx_writes: impl FnOnce() -> bool) -> bool {
    let kind = crate::pause::kind(now_ms);
    if kind == Kind::Off {
        return false;
    }
    let Some((spec, _)) = spec_of(req) else { return false };
    if !spec.arity_ok(req.args.len()) || (!authenticated && !spec.has(flags::NO_AUTH)) {
        return false;
    }
    kind == Kind::All || crate::cmd::scripting::may_replicate(spec, &req.args) || (spec.name == "exec" && tx_writes())
}

impl Conn {
    /// Would the node's pause hold this request now? Only called while a pause may be on.
    #[cold]
    pub(super) fn held_by_pause(&self, req: &Request, now_ms: u64) -> bool {
        let authenticated = self.client.borrow().authenticated;
        holds(req, now_ms, authenticated, || self.tx.queues_writes())
    }

    /// Waits, shown as blocked, until the pause no longer holds `req`; input that arrives
    /// meanwhile is kept for afterwards. A client that goes away (or is killed) is marked
    /// killed.
    pub(super) async fn wait_unpaused(&mut self, req: &Request) {
        let node = self.shard.state.borrow().node.clone();
        let client = self.client.clone();
        let (authenticated, tx_writes) = {
            let mut c = client.borrow_mut();
            c.paused = true;
            if let Some((_, name)) = spec_of(req) {
                c.last_cmd = name;
            }
            (c.authenticated, self.tx.queues_writes())
        };
        node.blocked_clients.fetch_add(1, Ordering::AcqRel);
        let released = async {
            loop {
                super::release::next_change().await;
                let now = crate::storage::tick_clock();
                if client.borrow().killed || !crate::pause::on() || !holds(req, now, authenticated, || tx_writes) {
                    return;
                }
            }
        };
        let mut released = std::pin::pin!(released);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let input = async { Some(self.stream.read(&mut buf).await) };
            let done = async {
                (&mut released).await;
                None
            };
            match futures_lite::future::or(done, input).await {
                None => break,
                Some(Ok(0)) | Some(Err(_)) => {
                    self.client.borrow_mut().killed = true;
                    break;
                }
                Some(Ok(n)) => {
                    if !self.stash_input(&buf[..n]) {
                        break;
                    }
                }
            }
        }
        node.blocked_clients.fetch_sub(1, Ordering::AcqRel);
        self.client.borrow_mut().paused = false;
    }
}

/// True while clients' commands wait before they run: a full sync's load (see
/// [`crate::replication::role::load_held`]) or a DEBUG SLEEP (see
/// [`crate::runtime::control_freeze::asleep`]). Two relaxed loads per batch.
#[inline]
pub(super) fn node_held() -> bool {
    crate::replication::role::load_held() || crate::runtime::control_freeze::asleep()
}

impl Conn {
    /// Waits while the node holds clients' commands ([`node_held`]): Redis serves no event
    /// during a small full sync's load or a DEBUG SLEEP, so its clients wait for the end
    /// rather than get `-LOADING` or an answer from a sleeping server. Either takes little
    /// time; input that arrives meanwhile stays in the socket.
    #[cold]
    pub(super) async fn wait_node_released(&self) {
        while node_held() && !self.client.borrow().killed {
            super::release::next_change().await;
        }
    }
}
