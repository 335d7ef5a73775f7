//! Outgoing TCP connections that Redis 7.0 opens from `bind-source-addr`: the replica's link
//! to its master, the cluster bus links and a Sentinel's links to its instances (MIGRATE's
//! connections do not use it in Redis 7.0, nor here). As Redis's best-effort binding connect: the socket is bound to
//! the source address first (resolved like a host name; the first address of the target's
//! family that binds is used), and when that fails the connection is made without binding.
//! CONFIG SET changes the address for the connections opened after it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// `bind-source-addr` (empty: none).
static SOURCE: Mutex<String> = Mutex::new(String::new());

/// Takes `bind-source-addr` from the config (at start-up and after CONFIG SET).
pub fn set_source(cfg: &crate::config::Config) {
    set_source_addr(cfg.get("bind-source-addr").unwrap_or(""));
}

/// Sets the source address (a Sentinel's, from its own settings); empty: none.
pub fn set_source_addr(addr: &str) {
    *SOURCE.lock().unwrap_or_else(|p| p.into_inner()) = addr.to_string();
}

fn source() -> String {
    SOURCE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A new socket for `target`, bound to `source` when one of its addresses (of the target's
/// family) can be bound; Err when none can.
fn bound_socket(target: &SocketAddr, source: &str) -> io::Result<Socket> {
    let s = new_socket(target)?;
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no source address of the target's family");
    for a in (source, 0).to_socket_addrs()?.filter(|a| a.is_ipv6() == target.is_ipv6()) {
        match s.bind(&a.into()) {
            Ok(()) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn new_socket(target: &SocketAddr) -> io::Result<Socket> {
    let domain = if target.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    Ok(s)
}

/// The socket an outgoing connection to `target` starts from.
fn socket_for(target: &SocketAddr) -> io::Result<Socket> {
    let source = source();
    if source.is_empty() {
        return new_socket(target);
    }
    match bound_socket(target, &source) {
        Ok(s) => Ok(s),
        Err(e) => {
            tracing::debug!("Could not bind {} as the source address (bind: {}); connecting without it", source, e);
            new_socket(target)
        }
    }
}

/// Connects to `host:port` (its first address) within `timeout`, from `bind-source-addr`.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<glommio::net::TcpStream> {
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "no address");
    let target = (host, port).to_socket_addrs()?.next().ok_or_else(not_found)?;
    let socket = socket_for(&target)?;
    // io_uring's linked timeout needs a non-zero duration.
    let timeout = timeout.max(Duration::from_millis(1));
    glommio::net::TcpStream::connect_socket_timeout(socket.into(), target, timeout).await.map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_address_is_bound_when_possible() {
        let target: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let s = bound_socket(&target, "127.0.0.2").expect("loopback source");
        let local = s.local_addr().ok().and_then(|a| a.as_socket());
        assert_eq!(local.map(|a| a.ip().to_string()), Some("127.0.0.2".to_string()));
        // An address of the other family cannot be bound for an IPv4 target.
        assert!(bound_socket(&target, "::1").is_err());
    }
}
