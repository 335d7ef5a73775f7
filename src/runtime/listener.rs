//! Client listeners: sockets are created and bound once by the main thread (so a taken port
//! fails start-up like Redis's "Failed listening on port"), then every shard accepts on its own
//! duplicate of each listening fd. The same goes for the `unixsocket` listener: a client's
//! socket says by its family whether it came in that way (`is_unix_socket`).

use crate::config::Config;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{IntoRawFd, RawFd};

/// A bound, listening socket.
pub struct Listener {
    /// The listening fd (owned; shards dup it).
    pub fd: RawFd,
    /// The address it is bound to.
    pub addr: SocketAddr,
    /// Clients accepted here speak TLS (`tls-port`).
    pub tls: bool,
    /// The `unixsocket` listener (`addr` is unspecified then).
    pub unix: bool,
}

/// Binds every `bind` address of the config. Addresses prefixed with `-` are optional.
pub fn bind_all(cfg: &Config) -> Result<Vec<Listener>, String> {
    bind_port(cfg, cfg.port)
}

/// Binds every `bind` address of the config on `port` (the client port, or the bus port), as
/// Redis's `listenToPort`: `*` and `::*` are the IPv4 and IPv6 wildcards, other names are
/// resolved (an IPv6 one when it holds a `:`), an address prefixed with `-` is skipped when it
/// is not available on this machine, and an address family the system lacks is skipped. Each
/// address that cannot be bound is logged as Redis logs it. No address at all binds nothing.
/// Err: Redis's start-up text, after the listeners bound so far were closed.
pub fn bind_port(cfg: &Config, port: u16) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    for raw in &cfg.bind {
        let (optional, name) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.as_str()),
        };
        let skip = match bind_address(name, port, cfg.tcp_backlog) {
            Ok(l) => {
                out.push(l);
                continue;
            }
            Err(e) => {
                tracing::warn!("Warning: Could not create server TCP listening socket {}:{}: {}", name, port, e.text);
                let no_family = matches!(
                    e.errno,
                    Some(
                        libc::ENOPROTOOPT
                            | libc::EPROTONOSUPPORT
                            | libc::ESOCKTNOSUPPORT
                            | libc::EPFNOSUPPORT
                            | libc::EAFNOSUPPORT
                    )
                );
                no_family || (optional && e.errno == Some(libc::EADDRNOTAVAIL))
            }
        };
        if !skip {
            close_listeners(out);
            return Err(format!("Failed listening on port {port} (tcp), aborting."));
        }
    }
    Ok(out)
}

/// Why one address could not be bound: Redis's text, and the errno that decides whether it is
/// skipped.
struct BindError {
    text: String,
    errno: Option<i32>,
}

/// Binds one `bind` address (without its `-`) on `port`.
fn bind_address(name: &str, port: u16, backlog: i32) -> Result<Listener, BindError> {
    let ip: IpAddr = match name {
        "*" => IpAddr::from([0u8, 0, 0, 0]),
        "::*" => IpAddr::from([0u16; 8]),
        other => match other.parse() {
            Ok(ip) => ip,
            Err(_) => {
                let v6 = other.contains(':');
                let resolved = std::net::ToSocketAddrs::to_socket_addrs(&(other, port))
                    .map_err(|e| BindError { text: resolver_text(&e), errno: None })?
                    .find(|a| a.is_ipv6() == v6);
                match resolved {
                    Some(a) => a.ip(),
                    None => return Err(BindError { text: "Name or service not known".into(), errno: None }),
                }
            }
        },
    };
    bind_retrying(SocketAddr::new(ip, port), backlog)
        .map_err(|e| BindError { text: format!("bind: {}", crate::limits::os_text(&e)), errno: e.raw_os_error() })
}

/// The resolver's message as `gai_strerror` words it (std prefixes its own words).
fn resolver_text(e: &std::io::Error) -> String {
    let s = crate::limits::os_text(e);
    s.strip_prefix("failed to lookup address information: ").map(str::to_string).unwrap_or(s)
}

/// Closes listeners that were bound but are not used after all (a later bind failed).
pub fn close_listeners(listeners: Vec<Listener>) {
    let mut registry = LISTENING.lock().unwrap_or_else(|p| p.into_inner());
    for l in listeners {
        registry.retain(|fd| *fd != l.fd);
        // SAFETY: the listener's fd is owned by it and handed to no one yet.
        unsafe { libc::close(l.fd) };
    }
}

/// How long a port found in use is retried before start-up fails.
const BIND_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Binds, retrying for up to [`BIND_RETRY_FOR`] while the address is in use: when a slotcore
/// process dies, the kernel tears its io_uring rings down a moment after the exit, and until
/// then the rings keep that process's listening sockets bound. A supervisor restarting the
/// node at once would otherwise see "Failed listening on port". A port that stays taken still
/// fails start-up, one second later.
fn bind_retrying(addr: SocketAddr, backlog: i32) -> std::io::Result<Listener> {
    let start = std::time::Instant::now();
    loop {
        match bind_one(addr, backlog) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && start.elapsed() < BIND_RETRY_FOR => {
                tracing::debug!("{} in use, retrying the bind", addr);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn bind_one(addr: SocketAddr, backlog: i32) -> std::io::Result<Listener> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    s.set_nonblocking(true)?;
    let fd = s.into_raw_fd();
    LISTENING.lock().unwrap_or_else(|p| p.into_inner()).push(fd);
    Ok(Listener { fd, addr, tls: false, unix: false })
}

/// Binds `unixsocket`, as Redis does: the path is unlinked first (a stale file of an earlier
/// run would make the bind fail), the socket file gets `unixsocketperm` when it is not 0.
/// None without `unixsocket`.
pub fn bind_unix(cfg: &Config) -> Result<Option<Listener>, String> {
    let path = cfg.unixsocket.as_str();
    if path.is_empty() {
        return Ok(None);
    }
    // sockaddr_un's sun_path: 108 bytes with the terminating NUL.
    const SUN_PATH: usize = 108;
    if path.len() > SUN_PATH - 1 {
        return Err(format!(
            "Failed opening Unix socket: unix socket path too long ({}), must be under {}",
            path.len(),
            SUN_PATH
        ));
    }
    let _ = std::fs::remove_file(path);
    let fail = |e: std::io::Error| format!("Failed opening Unix socket: {e}");
    let s = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    let addr = socket2::SockAddr::unix(path).map_err(fail)?;
    s.bind(&addr).map_err(fail)?;
    if cfg.unixsocketperm != 0 {
        use std::os::unix::fs::PermissionsExt;
        let perm = std::fs::Permissions::from_mode(cfg.unixsocketperm);
        std::fs::set_permissions(path, perm).map_err(fail)?;
    }
    s.listen(cfg.tcp_backlog).map_err(fail)?;
    s.set_nonblocking(true).map_err(fail)?;
    let fd = s.into_raw_fd();
    LISTENING.lock().unwrap_or_else(|p| p.into_inner()).push(fd);
    *UNIX_PATH.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.to_string());
    let unspecified = SocketAddr::new(IpAddr::from([0u8, 0, 0, 0]), 0);
    Ok(Some(Listener { fd, addr: unspecified, tls: false, unix: true }))
}

/// The socket file `bind_unix` created (removed at shutdown).
static UNIX_PATH: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Removes the unix socket file at shutdown, with Redis's log lines.
pub fn remove_unix_socket() {
    let Some(path) = UNIX_PATH.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    tracing::info!("Removing the unix socket file.");
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!("Error removing the unix socket file: {}", e);
    }
}

/// Whether `fd` is a Unix domain socket (a client that came in through `unixsocket`).
pub fn is_unix_socket(fd: RawFd) -> bool {
    // SAFETY: `sockaddr_storage` is plain data; getsockname fills at most `len` bytes of it.
    unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) == 0
            && ss.ss_family as i32 == libc::AF_UNIX
    }
}

/// Every listening socket this process bound (shards accept on duplicates of these fds).
static LISTENING: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());

/// Stops accepting on every listening socket at once, before the process exits: new
/// connections are refused from here on, as when Redis closes its listeners in
/// `prepareForShutdown`. Closing the fds would not be enough: the shards' duplicates and
/// their pending io_uring accepts keep each socket listening until the rings are torn down, a
/// moment after the exit; `shutdown(2)` acts on the socket itself, whoever holds it.
pub fn stop_accepting() {
    for &fd in LISTENING.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        // SAFETY: plain syscall on an fd this process owns; errors (already shut) are moot.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

/// Tunes an accepted client socket: TCP_NODELAY and keepalive, as Redis does.
pub fn tune_client(fd: RawFd, keepalive_secs: u32) {
    // SAFETY: the fd belongs to a live TcpStream for the duration of this call; ManuallyDrop
    // keeps socket2 from closing it.
    let s = std::mem::ManuallyDrop::new(unsafe { <Socket as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let _ = s.set_nodelay(true);
    if keepalive_secs > 0 {
        let ka = socket2::TcpKeepalive::new()
            .with_time(std::time::Duration::from_secs(keepalive_secs as u64))
            .with_interval(std::time::Duration::from_secs((keepalive_secs / 3).max(1) as u64));
        let _ = s.set_tcp_keepalive(&ka);
    }
}
