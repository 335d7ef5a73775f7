//! Client sockets read and written with plain non-blocking syscalls, their readiness learnt
//! from one edge-triggered epoll instance per executor thread.
//!
//! glommio's streams arm one io_uring poll per socket read that does not fill the buffer. At
//! `-P 1` that is one poll per request: its submission, and when the client's next request
//! arrives while the shard is running, a task-work interrupt (an IPI on another CPU) to post the
//! completion. Here a socket is registered once; arrivals only put it on the epoll ready list,
//! and one task per thread (the "poller") collects the whole list with a single `epoll_wait`
//! per executor turn and wakes the connections it names. When that list is empty the poller
//! goes idle, and the thread sleeps in `epoll_wait` itself: the poller installs glommio's sleep
//! hook (`glommio::set_sleep_hook`, a patch of the vendored crate), so when the executor has
//! nothing to run it blocks in one `epoll_wait` on the client sockets and the reactor's two
//! ring fds (readable when a timer, a cross-thread wake or other I/O completes) instead of
//! linking its rings in the kernel. Each pass of the reactor also collects ready sockets for an
//! idle poller without blocking. An idle node still sleeps in the kernel.
//!
//! Edge-triggered bookkeeping: a socket is "readable" from an event until a read returns less
//! than asked (TCP and Unix stream reads return short only when the receive queue is empty, and
//! data arriving later raises a new event) or would block; a hang-up or error keeps it readable
//! for good, so a final short read followed by EOF is never missed. "Writable" likewise, until a
//! send would block.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Events collected per `epoll_wait`.
const MAX_EVENTS: usize = 256;
/// Readiness events a socket is registered for (edge-triggered).
const INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const READ_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const WRITE_EVENTS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const CLOSED_EVENTS: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// One registered socket's readiness and the tasks waiting on it.
#[derive(Default)]
struct Slot {
    /// Bumped when the slot is freed, so a late event for the old socket is ignored.
    generation: u32,
    in_use: bool,
    readable: bool,
    writable: bool,
    /// Hang-up or error seen: reads never wait again.
    closed: bool,
    /// The reader was woken by an event and has not tried to read since (counted in
    /// `Poller::unread`).
    woken: bool,
    /// The task that last waited on each side. It stays here after its wake-up, so a task
    /// that waits again (every request, at `-P 1`) re-arms its side without a waker clone
    /// and drop; `*_armed` says whether it waits now.
    reader: Option<Waker>,
    writer: Option<Waker>,
    reader_armed: bool,
    writer_armed: bool,
}

/// A thread's epoll instance and its registered sockets.
struct Poller {
    epfd: RawFd,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// The poller task, while it waits for the sleep hook to find ready sockets.
    idle: RefCell<Option<Waker>>,
    /// Readers woken by events that have not tried to read yet (see [`others_woken`]).
    unread: std::cell::Cell<usize>,
    /// The reactor's ring fds are in the epoll set (added on the first sleep).
    rings_added: std::cell::Cell<bool>,
    /// The poller's last `epoll_wait` found nothing and it went idle right after: the
    /// reactor's non-blocking collect that follows in the same pass would find nothing new
    /// either (no task ran in between), so it is skipped; the wait before sleeping still
    /// looks (and returns at once when something arrived meanwhile).
    just_emptied: std::cell::Cell<bool>,
}

/// The epoll token of the reactor's ring fds (no socket slot has this index).
const RING_TOKEN: u64 = u64::MAX;

thread_local! {
    static POLLER: RefCell<Option<Rc<Poller>>> = const { RefCell::new(None) };
}

/// This thread's poller, created (with its task) on first use.
fn poller() -> io::Result<Rc<Poller>> {
    POLLER.with(|cell| {
        if let Some(p) = &*cell.borrow() {
            return Ok(p.clone());
        }
        // SAFETY: plain syscall; the fd is owned by the poller for the thread's life.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let p = Rc::new(Poller {
            epfd,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            idle: RefCell::new(None),
            unread: std::cell::Cell::new(0),
            rings_added: std::cell::Cell::new(false),
            just_emptied: std::cell::Cell::new(false),
        });
        *cell.borrow_mut() = Some(p.clone());
        let hooked = p.clone();
        glommio::set_sleep_hook(Some(Rc::new(move |rings| hooked.collect(rings))));
        // The client-command queue, whichever task happened to open the first socket.
        match glommio::spawn_local_into(run(p.clone()), glommio::TaskQueueHandle::default()) {
            Ok(t) => {
                t.detach();
            }
            Err(_) => {
                glommio::spawn_local(run(p.clone())).detach();
            }
        }
        Ok(p)
    })
}

/// How long the poller keeps one executor turn going while sockets keep turning ready.
///
/// Every time the executor runs out of tasks it goes through glommio's reactor: two
/// `io_uring_enter`s (its preemption timer is cancelled and re-armed each time) and, here, a
/// fresh poll on the epoll fd. While sockets keep arriving, the poller instead lets the
/// connections it woke run and then looks at the ready list again in the same turn, so that
/// cost is paid once per budget rather than once per handful of requests. The budget bounds
/// how late the reactor's other work (timers, other shards' messages, disk I/O) is noticed.
/// In microseconds, measured with `clock::Stamp` (cheaper than the vDSO clock on every pass).
const TURN_BUDGET_US: u64 = 200;

/// Some connection woken by a socket event on this thread has not read its input yet: a
/// connection that has replies ready then lets it run first (see [`yield_to_woken`]), so that
/// replies leave in one burst. When none is left, yielding would only run the caller again.
pub(crate) fn others_woken() -> bool {
    POLLER.with(|cell| cell.borrow().as_ref().is_some_and(|p| p.unread.get() > 0))
}

/// Lets every task woken so far run before the caller continues (the caller's task goes to
/// the back of its queue; the executor does not go through its reactor for this).
pub(crate) fn yield_to_woken() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// The poller task: collect ready sockets, wake their tasks; sleep on the epoll fd when none.
async fn run(p: Rc<Poller>) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut turn = crate::clock::Stamp::now();
    loop {
        // SAFETY: `events` has room for MAX_EVENTS entries; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(p.epfd, events.as_mut_ptr(), MAX_EVENTS as i32, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::warn!("epoll_wait: {}", e);
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
            continue;
        }
        p.dispatch(&events[..n as usize]);
        if n as usize == MAX_EVENTS {
            continue;
        }
        if n > 0 && crate::clock::Stamp::now().micros_since(turn) < TURN_BUDGET_US {
            yield_to_woken().await;
            continue;
        }
        // Idle (or the budget is spent): the executor goes through its reactor, whose sleep
        // hook (`Poller::collect`) wakes this task once sockets are ready again.
        p.just_emptied.set(n == 0);
        p.idle_wait().await;
        turn = crate::clock::Stamp::now();
    }
}

impl Poller {
    /// Waits until the sleep hook has seen socket events (it takes `idle` and wakes us).
    fn idle_wait(&self) -> impl Future<Output = ()> + '_ {
        let mut parked = false;
        std::future::poll_fn(move |cx| {
            let mut idle = self.idle.borrow_mut();
            if parked && idle.is_none() {
                return Poll::Ready(());
            }
            parked = true;
            *idle = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// glommio's sleep hook. `None`: collects ready sockets without blocking, for an idle
    /// poller only (a running poller collects them itself). `Some(ring_fds)`: the executor
    /// has nothing to run; blocks until a socket or one of the reactor's rings is readable
    /// (or a signal/task-work interrupt). Returns how many tasks it woke.
    fn collect(&self, rings: Option<[RawFd; 2]>) -> usize {
        let emptied = self.just_emptied.replace(false);
        let timeout = match rings {
            None if self.idle.borrow().is_none() => return 0,
            None if emptied => return 0,
            None => 0,
            Some(fds) => {
                if !self.rings_added.get() {
                    for fd in fds {
                        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: RING_TOKEN };
                        // SAFETY: `ev` is valid; the ring fds live as long as the thread's reactor.
                        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
                            // Without the rings in the set a blocking wait could miss timers.
                            tracing::warn!("epoll_ctl on a ring fd: {}", io::Error::last_os_error());
                            return 0;
                        }
                    }
                    self.rings_added.set(true);
                }
                -1
            }
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `events` has room for 64 entries.
        let n = unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as i32, timeout) };
        if n <= 0 {
            return 0;
        }
        let events = &events[..n as usize];
        let mut woke = self.dispatch(events);
        if events.iter().any(|e| e.u64 != RING_TOKEN) {
            let idle = self.idle.borrow_mut().take();
            if let Some(w) = idle {
                w.wake();
                woke += 1;
            }
        }
        woke
    }

    /// Marks the sockets named by `events` ready and wakes their tasks; returns how many.
    /// Waking by reference only queues the task (nothing is dropped or run), so it happens
    /// under the borrow.
    fn dispatch(&self, events: &[libc::epoll_event]) -> usize {
        let mut slots = self.slots.borrow_mut();
        let mut unread = self.unread.get();
        let mut n = 0;
        for ev in events {
            let (flags, token) = (ev.events, ev.u64);
            let Some(s) = slots.get_mut((token & 0xffff_ffff) as usize) else { continue };
            if !s.in_use || s.generation != (token >> 32) as u32 {
                continue;
            }
            if flags & CLOSED_EVENTS != 0 {
                s.closed = true;
            }
            if flags & READ_EVENTS != 0 {
                s.readable = true;
                if wake_armed(&mut s.reader_armed, &s.reader) {
                    n += 1;
                    if !s.woken {
                        s.woken = true;
                        unread += 1;
                    }
                }
            }
            if flags & WRITE_EVENTS != 0 {
                s.writable = true;
                n += usize::from(wake_armed(&mut s.writer_armed, &s.writer));
            }
        }
        self.unread.set(unread);
        n
    }

    /// Registers `fd`; returns its slot index and generation.
    fn register(&self, fd: RawFd) -> io::Result<(u32, u32)> {
        let mut slots = self.slots.borrow_mut();
        let idx = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                slots.push(Slot::default());
                (slots.len() - 1) as u32
            }
        };
        let s = &mut slots[idx as usize];
        let generation = s.generation;
        *s = Slot { generation, in_use: true, readable: true, writable: true, ..Slot::default() };
        let mut ev = libc::epoll_event { events: INTEREST, u64: ((generation as u64) << 32) | idx as u64 };
        // SAFETY: `ev` is a valid event; `fd` is a live descriptor owned by the caller.
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            let e = io::Error::last_os_error();
            drop(slots);
            self.release(idx);
            return Err(e);
        }
        Ok((idx, generation))
    }

    fn release(&self, idx: u32) {
        let old = {
            let mut slots = self.slots.borrow_mut();
            let s = &mut slots[idx as usize];
            if s.woken {
                self.unread.set(self.unread.get() - 1);
            }
            let next = Slot { generation: s.generation.wrapping_add(1), ..Slot::default() };
            std::mem::replace(s, next)
        };
        self.free.borrow_mut().push(idx);
        drop(old);
    }
}

/// Wakes the task waiting on one side of a socket, if it waits (`armed`, then disarmed);
/// true when it did.
fn wake_armed(armed: &mut bool, waker: &Option<Waker>) -> bool {
    match waker {
        Some(w) if std::mem::take(armed) => {
            w.wake_by_ref();
            true
        }
        _ => false,
    }
}

/// A connected (or listening) socket served through the thread's poller.
pub struct NetStream {
    fd: RawFd,
    idx: u32,
    poller: Rc<Poller>,
}

impl NetStream {
    /// Takes ownership of `fd` (closed on failure too) and registers it with this thread's
    /// poller. Must run inside a glommio executor.
    pub fn adopt(fd: RawFd) -> io::Result<NetStream> {
        let reg = poller().and_then(|p| p.register(fd).map(|(idx, _)| (p, idx)));
        match reg {
            Ok((poller, idx)) => Ok(NetStream { fd, idx, poller }),
            Err(e) => {
                // SAFETY: `fd` was handed over to us and is not registered anywhere.
                unsafe { libc::close(fd) };
                Err(e)
            }
        }
    }

    /// Takes over a glommio stream's socket (a duplicate of it; the stream is closed).
    pub fn from_glommio(stream: glommio::net::TcpStream) -> io::Result<NetStream> {
        // SAFETY: plain syscall on the stream's live fd.
        let fd = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        drop(stream);
        NetStream::adopt(fd)
    }

    fn with_slot<R>(&self, f: impl FnOnce(&mut Slot) -> R) -> R {
        f(&mut self.poller.slots.borrow_mut()[self.idx as usize])
    }

    /// The remote address (an error for non-IP sockets).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket2::SockRef::from(self).peer_addr()?.as_socket().ok_or_else(|| io::ErrorKind::Unsupported.into())
    }

    /// The local address (an error for non-IP sockets).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket2::SockRef::from(self).local_addr()?.as_socket().ok_or_else(|| io::ErrorKind::Unsupported.into())
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket2::SockRef::from(self).set_nodelay(on)
    }

    /// Accepts one connection on a listening socket.
    pub async fn accept(&self) -> io::Result<NetStream> {
        NetStream::adopt(self.accept_fd().await?)
    }

    /// Accepts one connection on a listening socket, leaving the new socket registered with no
    /// poller (another thread may adopt it).
    pub fn accept_fd(&self) -> impl Future<Output = io::Result<RawFd>> + '_ {
        std::future::poll_fn(move |cx| {
            // SAFETY: plain syscall; null address pointers are allowed.
            let r = self.retry(cx, true, || unsafe {
                libc::accept4(
                    self.fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                ) as isize
            });
            r.map(|r| r.map(|fd| fd as RawFd))
        })
    }

    /// Runs `op` (a non-blocking syscall returning a count or -1) while its side is ready;
    /// on EAGAIN marks the side not ready and parks `cx`'s task until the poller sees an event.
    fn retry(&self, cx: &Context<'_>, read: bool, mut op: impl FnMut() -> isize) -> Poll<io::Result<isize>> {
        loop {
            let (ready, replaced) = self.with_slot(|s| {
                if read && s.woken {
                    s.woken = false;
                    self.poller.unread.set(self.poller.unread.get() - 1);
                }
                if if read { s.readable || s.closed } else { s.writable } {
                    return (true, None);
                }
                let (w, armed) =
                    if read { (&mut s.reader, &mut s.reader_armed) } else { (&mut s.writer, &mut s.writer_armed) };
                *armed = true;
                match w {
                    Some(w) if w.will_wake(cx.waker()) => (false, None),
                    _ => (false, w.replace(cx.waker().clone())),
                }
            });
            // A replaced waker is dropped outside the borrow (see `dispatch`).
            drop(replaced);
            if !ready {
                return Poll::Pending;
            }
            let r = op();
            if r >= 0 {
                return Poll::Ready(Ok(r));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => self.with_slot(|s| {
                    if read {
                        // Whatever hang-up was seen is consumed: wait for the next event.
                        s.readable = false;
                        s.closed = false;
                    } else {
                        s.writable = false;
                    }
                }),
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsRawFd for NetStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl AsFd for NetStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open for as long as `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl Drop for NetStream {
    fn drop(&mut self) {
        // SAFETY: the fd is ours. It is removed from the epoll set explicitly: a duplicate
        // (SYNC's hand-off) would otherwise keep it registered after the close.
        unsafe {
            libc::epoll_ctl(self.poller.epfd, libc::EPOLL_CTL_DEL, self.fd, std::ptr::null_mut());
            libc::close(self.fd);
        }
        self.poller.release(self.idx);
    }
}

impl futures_lite::AsyncRead for NetStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let (fd, ptr, len) = (this.fd, buf.as_mut_ptr(), buf.len());
        // SAFETY: `ptr`/`len` describe `buf`, which outlives the call.
        // The raw syscall: glibc's `recv` is a thread-cancellation point, whose bookkeeping around
        // every call costs more than the call's own entry at `-P 1`; no thread here is cancelled.
        let r = this.retry(cx, true, || unsafe {
            libc::syscall(libc::SYS_recvfrom, fd, ptr, len, libc::MSG_DONTWAIT, 0usize, 0usize) as isize
        });
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 && (n as usize) < len {
                // A short read emptied the receive queue: wait for the next event.
                this.with_slot(|s| s.readable = false);
            }
        }
        r.map(|r| r.map(|n| n as usize))
    }
}

impl futures_lite::AsyncWrite for NetStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let (fd, ptr, len) = (self.fd, buf.as_ptr(), buf.len());
        // SAFETY: `ptr`/`len` describe `buf`, which outlives the call.
        let r = self.retry(cx, false, || unsafe {
            libc::syscall(libc::SYS_sendto, fd, ptr, len, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL, 0usize, 0usize)
                as isize
        });
        r.map(|r| r.map(|n| n as usize))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::shutdown(self.fd, libc::SHUT_WR) } < 0 {
            return Poll::Ready(Err(io::Error::last_os_error()));
        }
        Poll::Ready(Ok(()))
    }
}
