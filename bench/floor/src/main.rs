//! The socket work of a Redis server and nothing else: the kernel cost floor of a request.
//!
//! `slotcore-floor --port P [--mode epoll|uring]` serves RESP clients on one thread. It answers
//! every request it receives with `+OK` (a request is counted by its leading `*`; the bench
//! clients send only RESP arrays whose arguments hold no `*`) and does no other work: no
//! parsing, no keyspace. Its CPU time per request under `redis-benchmark` is what any server
//! on this machine pays for the same system calls, so a server's CPU per request minus the
//! floor's is that server's own work.
//!
//! - `epoll` (what redis-server and slotcore do): one level-triggered `epoll_wait` per loop
//!   turn, then one `recv` and one `send` per ready socket.
//! - `uring`: the same `epoll_wait`, then one `io_uring_enter` that receives from every ready
//!   socket and one that sends every reply of the turn, on registered files: the kernel entries
//!   per turn no longer grow with the number of ready sockets.

use io_uring::{opcode, types, IoUring};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

const BUF: usize = 64 * 1024;
const MAX_CONNS: usize = 4096;
const REPLY: &[u8] = b"+OK\r\n";
const LISTENER: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Epoll,
    Uring,
}

struct Conn {
    fd: RawFd,
    buf: Vec<u8>,
    /// Replies owed (requests counted, not yet answered).
    owed: usize,
    /// Reply bytes of the current send.
    out: Vec<u8>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("slotcore-floor: {e}");
        std::process::exit(1);
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn run() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port").and_then(|p| p.parse().ok()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "usage: slotcore-floor --port P [--mode epoll|uring]")
    })?;
    let mode = match arg(&args, "--mode").as_deref() {
        None | Some("epoll") => Mode::Epoll,
        Some("uring") => Mode::Uring,
        Some(other) => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown mode {other}"))),
    };
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_add(ep, listener.as_raw_fd(), LISTENER)?;
    let mut ring = IoUring::new(1024)?;
    if mode == Mode::Uring {
        ring.submitter().register_files_sparse(MAX_CONNS as u32)?;
    }
    let mut conns: Vec<Option<Conn>> = (0..MAX_CONNS).map(|_| None).collect();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut ready = Vec::with_capacity(256);
    loop {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        ready.clear();
        for ev in &events[..n as usize] {
            if ev.u64 == LISTENER {
                accept_all(&listener, ep, &mut conns, &mut ring, mode)?;
            } else {
                ready.push(ev.u64 as usize);
            }
        }
        match mode {
            Mode::Epoll => {
                for &i in &ready {
                    let Some(c) = conns[i].as_mut() else { continue };
                    let r = recv_result(unsafe { libc::recv(c.fd, c.buf.as_mut_ptr().cast(), BUF, 0) });
                    match received(c, r) {
                        Got::Replies => {}
                        Got::Nothing => continue,
                        Got::Closed => {
                            close(ep, &mut conns, i, &mut ring, mode);
                            continue;
                        }
                    }
                    let sent = unsafe { libc::send(c.fd, c.out.as_ptr().cast(), c.out.len(), libc::MSG_NOSIGNAL) };
                    if sent < 0 {
                        close(ep, &mut conns, i, &mut ring, mode);
                    }
                }
            }
            Mode::Uring => {
                let mut pushed = 0;
                for &i in &ready {
                    let Some(c) = conns[i].as_mut() else { continue };
                    let sqe = opcode::Recv::new(types::Fixed(i as u32), c.buf.as_mut_ptr(), BUF as u32)
                        .build()
                        .user_data(i as u64);
                    push(&mut ring, &sqe)?;
                    pushed += 1;
                }
                ring.submit_and_wait(pushed)?;
                let got: Vec<(usize, i32)> = ring.completion().map(|c| (c.user_data() as usize, c.result())).collect();
                let mut sends = 0;
                for (i, r) in got {
                    let Some(c) = conns[i].as_mut() else { continue };
                    match received(c, r as isize) {
                        Got::Replies => {}
                        Got::Nothing => continue,
                        Got::Closed => {
                            close(ep, &mut conns, i, &mut ring, mode);
                            continue;
                        }
                    }
                    let sqe = opcode::Send::new(types::Fixed(i as u32), c.out.as_ptr(), c.out.len() as u32)
                        .flags(libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(i as u64);
                    push(&mut ring, &sqe)?;
                    sends += 1;
                }
                if sends > 0 {
                    ring.submit_and_wait(sends)?;
                    let failed: Vec<usize> =
                        ring.completion().filter(|c| c.result() < 0).map(|c| c.user_data() as usize).collect();
                    for i in failed {
                        close(ep, &mut conns, i, &mut ring, mode);
                    }
                }
            }
        }
    }
}

/// What a receive brought.
enum Got {
    /// Replies to send (in `Conn::out`).
    Replies,
    /// Nothing yet (the socket was not readable after all).
    Nothing,
    /// The peer is gone (or the socket failed).
    Closed,
}

/// Counts the requests in a receive of `r` bytes (or `-errno`) and builds their replies.
/// Replies are small and sockets' send buffers large, so a send is assumed whole (a bench tool).
fn received(c: &mut Conn, r: isize) -> Got {
    if r == -(libc::EAGAIN as isize) {
        return Got::Nothing;
    }
    if r <= 0 {
        return Got::Closed;
    }
    c.owed += c.buf[..r as usize].iter().filter(|&&b| b == b'*').count();
    if c.owed == 0 {
        return Got::Nothing;
    }
    c.out.clear();
    for _ in 0..c.owed {
        c.out.extend_from_slice(REPLY);
    }
    c.owed = 0;
    Got::Replies
}

/// `recv`'s result as `io_uring` reports it (`-errno` on failure).
fn recv_result(r: isize) -> isize {
    if r < 0 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as isize)
    } else {
        r
    }
}

fn accept_all(
    l: &TcpListener,
    ep: RawFd,
    conns: &mut [Option<Conn>],
    ring: &mut IoUring,
    mode: Mode,
) -> io::Result<()> {
    loop {
        let (s, _) = match l.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
        let Some(i) = conns.iter().position(Option::is_none) else { continue };
        let fd = s.into_raw_fd();
        if mode == Mode::Uring {
            ring.submitter().register_files_update(i as u32, &[fd])?;
        }
        epoll_add(ep, fd, i as u64)?;
        conns[i] = Some(Conn { fd, buf: vec![0; BUF], owed: 0, out: Vec::with_capacity(1024) });
    }
}

fn close(ep: RawFd, conns: &mut [Option<Conn>], i: usize, ring: &mut IoUring, mode: Mode) {
    if let Some(c) = conns[i].take() {
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, c.fd, std::ptr::null_mut()) };
        if mode == Mode::Uring {
            let _ = ring.submitter().register_files_update(i as u32, &[-1]);
        }
        unsafe { libc::close(c.fd) };
    }
}

fn epoll_add(ep: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

fn push(ring: &mut IoUring, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
    if ring.submission().is_full() {
        ring.submit()?;
    }
    unsafe { ring.submission().push(sqe) }.map_err(|_| io::Error::other("submission queue full"))
}

fn check(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}
