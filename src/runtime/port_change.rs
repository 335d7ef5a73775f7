//! `port` and `tls-port` changed at run time (CONFIG SET), as Redis's `changeListenPort`: the
//! new port is bound on every `bind` address, each shard starts accepting on it, and the old
//! listening sockets are shut down (the shards' accept loops end when their socket stops
//! listening). Port 0 closes that listener. A port that cannot be bound keeps the old one,
//! with Redis's log lines and error.

use crate::config::Config;
use crate::runtime::listener::{self, Listener};
use crate::runtime::shard::Shard;
use futures_channel::mpsc;
use futures_lite::StreamExt;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Mutex;

/// The listening sockets of one kind in use (the originals; shards accept on duplicates).
struct Current {
    port: u16,
    fds: Vec<RawFd>,
}

/// Plain (`port`) and TLS (`tls-port`) listeners, in that order.
static CURRENT: [Mutex<Current>; 2] =
    [Mutex::new(Current { port: 0, fds: Vec::new() }), Mutex::new(Current { port: 0, fds: Vec::new() })];

/// One sender per shard: each gets its own duplicate of every new listening socket, with
/// whether its clients speak TLS.
static SHARDS: Mutex<Vec<mpsc::UnboundedSender<(RawFd, bool)>>> = Mutex::new(Vec::new());

/// Records the listeners bound at start-up.
pub fn started(port: u16, tls_port: u16, listeners: &[Listener]) {
    for (tls, p) in [(false, port), (true, tls_port)] {
        let mut cur = CURRENT[tls as usize].lock().unwrap_or_else(|p| p.into_inner());
        cur.port = p;
        cur.fds = listeners.iter().filter(|l| l.tls == tls && !l.unix).map(|l| l.fd).collect();
    }
}

/// A shard's task: accepts clients on every listener a later CONFIG SET opens.
pub async fn watch(shard: Rc<Shard>) {
    let (tx, mut rx) = mpsc::unbounded();
    SHARDS.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
    while let Some((fd, tls)) = rx.next().await {
        match crate::runtime::netpoll::NetStream::adopt(fd) {
            Ok(l) => {
                glommio::spawn_local(crate::runtime::accept_on(shard.clone(), l, tls)).detach();
            }
            Err(e) => tracing::warn!("registering a new listening socket: {}", e),
        }
    }
}

/// Closes the listeners of `tls`'s kind (their sockets stop at once).
fn close_all(cur: &mut Current) {
    for fd in std::mem::take(&mut cur.fds) {
        // SAFETY: plain syscalls on a listening socket this registry owns. shutdown() stops the
        // socket itself (the shards' duplicates see it and end their loops); close() drops
        // this registry's descriptor.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
            libc::close(fd);
        }
    }
}

/// Hands every shard its own duplicate of each new listening socket.
fn hand_out(bound: &[Listener], tls: bool) {
    let shards = SHARDS.lock().unwrap_or_else(|p| p.into_inner());
    for l in bound {
        for tx in shards.iter() {
            // SAFETY: duplicates a listening socket this registry owns; the shard owns the copy.
            let dup = unsafe { libc::fcntl(l.fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                tracing::warn!("dup of a listening socket failed: {}", std::io::Error::last_os_error());
                continue;
            }
            if tx.unbounded_send((dup, tls)).is_err() {
                // SAFETY: the copy never reached its shard.
                unsafe { libc::close(dup) };
            }
        }
    }
}

/// CONFIG SET bind (Redis's `changeBindAddr`): the plain and TLS listeners close, then bind
/// `new`'s addresses on their ports; if that fails the old addresses (`old`) are bound again
/// and the reason is returned.
pub fn rebind(old: &Config, new: &Config) -> Result<(), &'static str> {
    let mut guards: Vec<_> = CURRENT.iter().map(|c| c.lock().unwrap_or_else(|p| p.into_inner())).collect();
    for cur in guards.iter_mut() {
        close_all(cur);
    }
    let bind = |cfg: &Config| -> Result<Vec<(Vec<Listener>, bool)>, String> {
        let mut out = Vec::new();
        for (i, cur) in guards.iter().enumerate() {
            if cur.port == 0 {
                continue;
            }
            match listener::bind_port(cfg, cur.port) {
                Ok(l) => out.push((l, i == 1)),
                Err(e) => {
                    for (l, _) in out {
                        listener::close_listeners(l);
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    };
    let (bound, result) = match bind(new) {
        Ok(b) => (b, Ok(())),
        Err(_) => {
            // bind_port logged which address failed and why.
            tracing::warn!("Failed to bind");
            match bind(old) {
                Ok(b) => (b, Err("Failed to bind to specified addresses.")),
                Err(e) => {
                    tracing::warn!("Failed to restore old listening sockets: {}", e);
                    (Vec::new(), Err("Failed to bind to specified addresses."))
                }
            }
        }
    };
    for (listeners, tls) in bound {
        hand_out(&listeners, tls);
        guards[tls as usize].fds = listeners.iter().map(|l| l.fd).collect();
    }
    result
}

/// Moves the plain (`tls` false) or TLS listener to `port`. Err: the reply's reason (the old
/// listener stays).
pub fn change_port(new: &Config, port: u16, tls: bool) -> Result<(), &'static str> {
    let mut cur = CURRENT[tls as usize].lock().unwrap_or_else(|p| p.into_inner());
    if port == cur.port {
        return Ok(());
    }
    let bound = match port {
        0 => Vec::new(),
        _ => match listener::bind_port(new, port) {
            Ok(l) => l,
            Err(_) => {
                // bind_port logged which address failed and why.
                let name = if tls { "tls-port" } else { "port" };
                tracing::warn!(
                    "Failed applying new configuration. Possibly related to new {} setting. Restoring previous settings.",
                    name
                );
                return Err("Unable to listen on this port. Check server logs.");
            }
        },
    };
    close_all(&mut cur);
    hand_out(&bound, tls);
    cur.port = port;
    cur.fds = bound.iter().map(|l| l.fd).collect();
    Ok(())
}
