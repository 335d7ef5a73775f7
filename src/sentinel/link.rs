//! The connections from this Sentinel to each instance: one task per instance for the command
//! link (every tick it sends the due batch, pipelined, and reads the replies in order) and,
//! for masters and replicas, one for the Pub/Sub link subscribed to `__sentinel__:hello`.
//!
//! Invariants: a task exits as soon as no instance carries its id (reset, removed, replaced);
//! it never holds the state borrow across an await; a reconnection is tried at most once per
//! ping period, as Redis's `sentinelReconnectInstance`.

use super::instance::period;
use super::resp::{self, Value};
use super::state::State;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

type Shared = Rc<RefCell<State>>;

/// The tick of the link loops (Redis's Sentinel timer runs 10 times a second).
const TICK: Duration = Duration::from_millis(100);

/// A connection with a read buffer.
struct Conn {
    stream: crate::runtime::ClientStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn send(&mut self, cmds: &[Vec<Vec<u8>>]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for c in cmds {
            resp::encode(c, &mut out);
        }
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    /// Reads one reply (no time limit; callers wrap it).
    async fn read(&mut self) -> std::io::Result<Value> {
        loop {
            match resp::parse(&self.buf, 0) {
                Ok(Some((v, used))) => {
                    self.buf.drain(..used);
                    return Ok(v);
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn read_timeout(&mut self, d: Duration) -> std::io::Result<Value> {
        crate::runtime::with_timeout(d, self.read()).await.unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into()))
    }
}

/// Waits one tick, or less when commands are queued for link `id` meanwhile.
async fn idle(st: &Shared, id: u64) {
    let queued = futures_lite::future::poll_fn(|cx| {
        let mut s = st.borrow_mut();
        let has = match s.find(id) {
            Some((mi, w)) => !s.inst(mi, w).queued.is_empty(),
            None => true,
        };
        if has {
            s.link_wakers.remove(&id);
            std::task::Poll::Ready(())
        } else {
            s.link_wakers.insert(id, cx.waker().clone());
            std::task::Poll::Pending
        }
    });
    futures_lite::future::or(queued, crate::runtime::sleep(TICK)).await;
    st.borrow_mut().link_wakers.remove(&id);
}

/// Whether the instance closed the connection (or it failed): a non-blocking peek, so
/// nothing is taken from the stream.
fn peer_closed(conn: &Conn) -> bool {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&conn.stream);
    let mut b = [0u8; 1];
    // SAFETY: `fd` is the live socket of `conn`; the buffer is one valid byte.
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    if n == 0 {
        return true;
    }
    n < 0
        && !matches!(
            std::io::Error::last_os_error().kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        )
}

/// Connects and introduces the link: AUTH when configured, CLIENT SETNAME.
async fn open(st: &Shared, id: u64, pubsub: bool) -> Option<Conn> {
    let target = st.borrow().target(id)?;
    let stream = match crate::runtime::connect(&target.ip, target.port, Duration::from_millis(period::ping())).await {
        Ok(s) => s,
        Err(_) => return None,
    };
    let local_ip = stream.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let mut conn = Conn { stream, buf: Vec::new() };
    let mut hello: Vec<Vec<Vec<u8>>> = Vec::new();
    if let Some((user, pass)) = &target.auth {
        let mut a = vec![b"AUTH".to_vec()];
        if let Some(u) = user {
            a.push(u.clone().into_bytes());
        }
        a.push(pass.clone().into_bytes());
        hello.push(a);
    }
    let name = format!("sentinel-{}-{}", target.myid8, if pubsub { "pubsub" } else { "cmd" });
    hello.push(resp::argv(&["CLIENT", "SETNAME", &name]));
    if conn.send(&hello).await.is_err() {
        return None;
    }
    for _ in 0..hello.len() {
        conn.read_timeout(Duration::from_millis(period::ping() * 5)).await.ok()?;
    }
    st.borrow_mut().link_state(id, pubsub, true, local_ip, Some(fd));
    Some(conn)
}

/// The command link task of instance `id`.
pub async fn command_link(st: Shared, id: u64) {
    let mut last_attempt: Option<std::time::Instant> = None;
    loop {
        if st.borrow().find(id).is_none() {
            return;
        }
        // At most one attempt per ping period, counted from the previous attempt (a link
        // that dropped long after it was opened is reopened at once, as Redis does).
        let period = Duration::from_millis(period::ping());
        if let Some(wait) = last_attempt.and_then(|at| period.checked_sub(at.elapsed())) {
            crate::runtime::sleep(wait).await;
        }
        last_attempt = Some(std::time::Instant::now());
        let Some(mut conn) = open(&st, id, false).await else {
            // Redis queues a PING on every reconnection attempt, which starts the pending
            // ping's clock even when the connection is then refused.
            st.borrow_mut().reconnect_attempted(id);
            continue;
        };
        loop {
            let batch = {
                let mut s = st.borrow_mut();
                match s.must_close(id, false) {
                    None => return,
                    Some(true) => break,
                    Some(false) => {}
                }
                s.due_commands(id)
            };
            let Some(batch) = batch else { return };
            if !batch.is_empty() {
                let cmds: Vec<Vec<Vec<u8>>> = batch.iter().map(|(_, c)| c.clone()).collect();
                if conn.send(&cmds).await.is_err() {
                    break;
                }
                let timeout = st
                    .borrow()
                    .find(id)
                    .map(|(mi, w)| st.borrow().inst(mi, w).down_after_period)
                    .unwrap_or(period::ping());
                let timeout = Duration::from_millis((timeout / 2).max(period::ping()));
                let mut failed = false;
                for (kind, _) in &batch {
                    match conn.read_timeout(timeout).await {
                        Ok(v) => {
                            let mut s = st.borrow_mut();
                            s.on_reply(id, *kind, &v);
                            s.after();
                        }
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    break;
                }
            }
            if peer_closed(&conn) {
                // Noticed within a tick, as Redis's event loop does: the instance's time
                // without a reply then runs from its last answer, not from the next ping.
                break;
            }
            idle(&st, id).await;
        }
        st.borrow_mut().link_state(id, false, false, String::new(), None);
        crate::runtime::sleep(TICK).await;
    }
}

/// The Pub/Sub link task of master or replica `id`: hello messages from other Sentinels.
pub async fn pubsub_link(st: Shared, id: u64) {
    loop {
        if st.borrow().find(id).is_none() {
            return;
        }
        let Some(mut conn) = open(&st, id, true).await else {
            crate::runtime::sleep(Duration::from_millis(period::ping())).await;
            continue;
        };
        let sub = vec![resp::argv(&["SUBSCRIBE", "__sentinel__:hello"])];
        if conn.send(&sub).await.is_ok() {
            loop {
                match st.borrow().must_close(id, true) {
                    None => return,
                    Some(true) => break,
                    Some(false) => {}
                }
                match conn.read_timeout(Duration::from_millis(period::publish() * 3)).await {
                    Ok(Value::Array(items)) => {
                        let mut s = st.borrow_mut();
                        s.pubsub_activity(id);
                        if items.len() == 3 && items[0].text().as_deref() == Some("message") {
                            if let Some(payload) = items[2].text() {
                                s.process_hello(&payload);
                                s.after();
                            }
                        }
                    }
                    // An error reply (NOAUTH to SUBSCRIBE) leaves the link useless: drop it and
                    // retry, as hiredis does with an error in a subscribed context.
                    Ok(Value::Error(_)) => break,
                    Ok(_) => st.borrow_mut().pubsub_activity(id),
                    Err(_) => break,
                }
            }
        }
        st.borrow_mut().link_state(id, true, false, String::new(), None);
        crate::runtime::sleep(Duration::from_millis(period::ping())).await;
    }
}

/// Starts the link tasks of instances created since the last call.
pub fn spawn_new_links(st: &Shared) {
    let ids: Vec<(u64, bool)> = {
        let mut s = st.borrow_mut();
        let ids = std::mem::take(&mut s.new_links);
        ids.into_iter().filter_map(|id| s.target(id).map(|t| (id, t.pubsub))).collect()
    };
    for (id, pubsub) in ids {
        crate::runtime::spawn(command_link(st.clone(), id));
        if pubsub {
            crate::runtime::spawn(pubsub_link(st.clone(), id));
        }
    }
}
