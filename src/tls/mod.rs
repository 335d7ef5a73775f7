//! TLS as Redis 7.0 offers it: clients on `tls-port`, the replication link (`tls-replication`)
//! and the cluster bus (`tls-cluster`), configured by the `tls-*` directives and reloaded by
//! CONFIG SET. The TLS stack is rustls (a memory-safe implementation of TLS 1.2 and 1.3 with
//! the `ring` crypto provider); see `config` for how OpenSSL-style settings map onto it.
//!
//! One process-wide context holds the server and client configurations; a connection takes
//! the context current when it starts, so a reload affects new connections only (as Redis's
//! SSL_CTX swap does). Plain connections never look at it.

pub mod config;
mod keypass;
mod legacy;
pub mod stream;
mod verify;

pub use stream::{MaybeTls, TlsStream};

use crate::config::Config;
use crate::runtime::netpoll::NetStream;
use crate::runtime::shard::Shard;
use futures_lite::{AsyncRead, AsyncWrite};
use rustls::pki_types::ServerName;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex, RwLock};

/// The configurations connections are made with.
struct Context {
    server: Arc<rustls::ServerConfig>,
    client: Option<Arc<rustls::ClientConfig>>,
}

static CONTEXT: RwLock<Option<Arc<Context>>> = RwLock::new(None);

fn current() -> io::Result<Arc<Context>> {
    let guard = CONTEXT.read().unwrap_or_else(|p| p.into_inner());
    guard.clone().ok_or_else(|| io::Error::other("TLS is not configured"))
}

/// `tls-port` (0: no TLS listener).
pub fn port(cfg: &Config) -> u16 {
    cfg.get("tls-port").and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The port INFO's `tcp_port` and the start-up lines show: the TCP port, else the TLS one.
pub fn shown_port(cfg: &Config) -> u16 {
    if cfg.port != 0 {
        cfg.port
    } else {
        port(cfg)
    }
}

/// `tls-replication yes`: the link to a master speaks TLS.
pub fn replication(cfg: &Config) -> bool {
    cfg.get("tls-replication") == Some("yes")
}

/// `tls-cluster yes`: the cluster bus (and MIGRATE) speak TLS.
pub fn cluster(cfg: &Config) -> bool {
    cfg.get("tls-cluster") == Some("yes")
}

/// Whether the config needs a TLS context at all (Redis configures TLS only then).
pub fn wanted(cfg: &Config) -> bool {
    port(cfg) != 0 || replication(cfg) || cluster(cfg)
}

/// Builds and installs the context from `cfg`. On failure logs Redis's line for the cause,
/// keeps the context in use, and returns false.
pub fn configure(cfg: &Config) -> bool {
    match config::build(cfg) {
        Ok(b) => {
            let ctx = Arc::new(Context { server: b.server, client: b.client });
            *CONTEXT.write().unwrap_or_else(|p| p.into_inner()) = Some(ctx);
            true
        }
        Err(line) => {
            tracing::warn!("{}", line);
            false
        }
    }
}

/// CONFIG SET of `changed` directives into `new` (Redis's `applyTlsCfg` / `applyTLSPort`):
/// any `tls-*` one rebuilds the context when TLS is in use (a new `tls-port` only when no
/// context exists yet), then a new `tls-port` is listened on. Err: the directive named in the
/// error reply and its reason (the context and the listener in use are kept).
pub fn config_set<'a>(new: &Config, changed: &[&'a str]) -> Result<(), (&'a str, &'static str)> {
    const UNABLE: &str = "Unable to update TLS configuration. Check server logs.";
    let port_changed = changed.iter().find(|n| **n == "tls-port");
    let rebuild = changed.iter().find(|n| n.starts_with("tls-") && **n != "tls-port");
    let first = match (rebuild, port_changed) {
        (Some(first), _) => Some(first),
        (None, Some(p)) if current().is_err() && port(new) != 0 => Some(p),
        _ => None,
    };
    if let Some(first) = first {
        if wanted(new) && !configure(new) {
            return Err((first, UNABLE));
        }
    }
    match port_changed {
        Some(p) => crate::runtime::port_change::change_port(new, port(new), true).map_err(|why| (*p, why)),
        None => Ok(()),
    }
}

/// Runs the server side of a handshake over `io`.
pub async fn accept<IO: AsyncRead + AsyncWrite + Unpin>(io: IO) -> io::Result<TlsStream<IO>> {
    let ctx = current()?;
    let session = rustls::ServerConnection::new(ctx.server.clone()).map_err(io::Error::other)?;
    let mut s = TlsStream::new(io, session);
    s.handshake().await?;
    Ok(s)
}

/// Runs the client side of a handshake with `host` over `io` (the peer's certificate must
/// lead to a configured CA; its names are not checked, as in Redis).
pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(io: IO, host: &str) -> io::Result<TlsStream<IO>> {
    let ctx = current()?;
    let client = ctx.client.clone().ok_or_else(|| io::Error::other("no TLS CA configured for outgoing connections"))?;
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|_| ServerName::try_from("redis").expect("a valid DNS name"));
    let session = rustls::ClientConnection::new(client, name).map_err(io::Error::other)?;
    let mut s = TlsStream::new(io, session);
    s.handshake().await?;
    Ok(s)
}

/// `stream` as is, or upgraded to TLS as a client of `host` when `on`.
pub async fn client_side<IO: AsyncRead + AsyncWrite + Unpin>(io: IO, host: &str, on: bool) -> io::Result<MaybeTls<IO>> {
    if !on {
        return Ok(MaybeTls::Plain(io));
    }
    Ok(MaybeTls::Tls(Box::new(connect(io, host).await?)))
}

/// `stream` as is, or upgraded to TLS as a server when `on`.
pub async fn server_side<IO: AsyncRead + AsyncWrite + Unpin>(io: IO, on: bool) -> io::Result<MaybeTls<IO>> {
    if !on {
        return Ok(MaybeTls::Plain(io));
    }
    Ok(MaybeTls::Tls(Box::new(accept(io).await?)))
}

/// A client accepted on `tls-port`: the handshake, then the connection as any other.
pub async fn serve_client(stream: NetStream, shard: Rc<Shard>) {
    match accept(stream).await {
        Ok(s) => crate::conn::serve(MaybeTls::Tls(Box::new(s)), shard).await,
        Err(e) => tracing::warn!("Error accepting a client connection: {}", describe(&e)),
    }
}

/// An error as the log lines say it: rustls's cause in OpenSSL's words where Redis users
/// know them, else rustls's own text.
pub fn describe(e: &io::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else { return e.to_string() };
    let ssl = match t {
        E::NoCertificatesPresented => "peer did not return a certificate",
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => "certificate verify failed",
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "certificate verify failed (expired)",
        E::AlertReceived(A::UnknownCA) => "tlsv1 alert unknown ca",
        E::AlertReceived(A::BadCertificate) => "sslv3 alert bad certificate",
        E::AlertReceived(A::CertificateRequired) => "tlsv13 alert certificate required",
        E::AlertReceived(A::HandshakeFailure) => "sslv3 alert handshake failure",
        E::InvalidMessage(_) => "wrong version number",
        _ => return format!("{t}"),
    };
    format!("{ssl} ({t})")
}

/// Sessions handed from a shard to the control core with a SYNC'ing replica's socket, by
/// the duplicate fd they travel with.
static PARKED: Mutex<Vec<(i32, rustls::Connection)>> = Mutex::new(Vec::new());

/// Leaves `session` for whoever takes `fd` over.
pub fn park(fd: i32, session: rustls::Connection) {
    PARKED.lock().unwrap_or_else(|p| p.into_inner()).push((fd, session));
}

/// The session parked with `fd`, if the connection spoke TLS.
pub fn unpark(fd: i32) -> Option<rustls::Connection> {
    let mut p = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    let i = p.iter().position(|(f, _)| *f == fd)?;
    Some(p.swap_remove(i).1)
}

impl MaybeTls<NetStream> {
    /// A plain stream over `fd` (see [`NetStream::adopt`]).
    pub fn adopt(fd: i32) -> io::Result<Self> {
        NetStream::adopt(fd).map(MaybeTls::Plain)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.get_ref().local_addr()
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.get_ref().set_nodelay(on)
    }
}
