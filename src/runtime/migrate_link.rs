//! MIGRATE's connections to target instances, cached per shard by `host:port` as Redis's
//! `migrate_cached_sockets`: at most 64, a random one dropped when full, closed after 10 s
//! unused. A link is taken out of the cache while a MIGRATE uses it (so no borrow is held
//! across an await) and put back when the command is done with it.

use glommio::net::TcpStream;
use hashbrown::HashMap;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Most cached links per shard (Redis's `MIGRATE_SOCKET_CACHE_ITEMS`).
const CACHE_ITEMS: usize = 64;
/// Unused links are closed after this long (Redis's `MIGRATE_SOCKET_CACHE_TTL`).
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Longest reply line read (Redis reads into a 1024-byte buffer).
const MAX_LINE: usize = 1024;

/// One connection to a target instance (TLS in a `tls-cluster`, as Redis's MIGRATE).
pub struct Link {
    stream: crate::tls::MaybeTls<TcpStream>,
    /// The database last selected on the target (None: unknown, SELECT next time).
    pub last_db: Option<i64>,
    last_use: Instant,
    rbuf: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<HashMap<String, Link>> = RefCell::new(HashMap::new());
}

/// The cached link to `name` (`host:port`), or a new connection made within `timeout` (with
/// a TLS handshake when `tls`).
pub async fn take(name: &str, host: &str, port: u16, timeout: Duration, tls: bool) -> std::io::Result<Link> {
    if let Some(mut l) = CACHE.with(|c| c.borrow_mut().remove(name)) {
        l.last_use = Instant::now();
        return Ok(l);
    }
    let not_found = || std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?.next().ok_or_else(not_found)?;
    let stream = TcpStream::connect_timeout(addr, timeout).await.map_err(|e| {
        tracing::debug!("MIGRATE could not connect to {}: {}", name, e);
        std::io::Error::from(e)
    })?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let stream = crate::tls::client_side(stream, host, tls).await.inspect_err(|e| {
        tracing::debug!("MIGRATE could not connect to {}: {}", name, crate::tls::describe(e));
    })?;
    Ok(Link { stream, last_db: None, last_use: Instant::now(), rbuf: Vec::new() })
}

/// Returns a link to the cache after use (a link that failed is simply dropped, closing it).
pub fn put_back(name: &str, link: Link) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_ITEMS && !c.contains_key(name) {
            let n = fastrand::usize(..c.len());
            if let Some(victim) = c.keys().nth(n).cloned() {
                c.remove(&victim);
            }
        }
        c.insert(name.to_string(), link);
    });
}

/// Drops the cached link to `name`, if any (after a socket error).
pub fn close(name: &str) {
    CACHE.with(|c| c.borrow_mut().remove(name));
}

/// Links this shard keeps open (INFO `migrate_cached_sockets`, summed over shards).
pub fn cached() -> usize {
    CACHE.with(|c| c.borrow().len())
}

/// Closes links unused for more than 10 s (called from the shard's cron).
pub fn close_idle() {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if !c.is_empty() {
            c.retain(|_, l| l.last_use.elapsed() <= CACHE_TTL);
        }
    });
}

impl Link {
    /// Writes `buf` in 64 KB chunks, each within `timeout`.
    pub async fn write_all(&mut self, buf: &[u8], timeout: Duration) -> std::io::Result<()> {
        use futures_lite::AsyncWriteExt;
        self.stream.get_ref().set_write_timeout(Some(timeout))?;
        for chunk in buf.chunks(64 * 1024) {
            self.stream.write_all(chunk).await?;
        }
        Ok(())
    }

    /// Reads one reply line (without its CRLF), waiting at most `timeout` for more bytes.
    pub async fn read_line(&mut self, timeout: Duration) -> std::io::Result<Vec<u8>> {
        use futures_lite::AsyncReadExt;
        self.stream.get_ref().set_read_timeout(Some(timeout))?;
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.rbuf) {
                let mut line: Vec<u8> = self.rbuf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.rbuf.len() > MAX_LINE {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "reply line too long"));
            }
            let mut chunk = [0u8; 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}
