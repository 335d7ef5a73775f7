//! A TLS session over any non-blocking byte stream, and [`MaybeTls`], the stream type of a
//! connection that may or may not speak TLS.
//!
//! The session is rustls's sans-IO state machine: records read from the socket go into it
//! (`read_tls`, `process_new_packets`), plaintext comes out of its reader; plaintext written
//! goes into its writer and leaves as records (`write_tls`).
//!
//! A write is acknowledged only once the records carrying it are on the socket: the callers
//! (`write_all` of a reply batch, then a wait for the next request) never flush, so data left
//! in the session's buffer would otherwise wait for the next write that may never come. A
//! write that blocks half-way keeps its count until a later poll finishes sending it (the
//! caller polls again with the same bytes, as `write_all` does).

use futures_lite::{AsyncRead, AsyncWrite};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// A TLS session (client or server side) over `io`.
pub struct TlsStream<IO> {
    io: IO,
    /// None once handed over (SYNC's hand-off to the control core).
    session: Option<rustls::Connection>,
    /// Plaintext bytes of the last write taken into the session and not yet acknowledged.
    unacked: usize,
}

/// `io` seen through a `std::io` lens for rustls: a pending poll is `WouldBlock`.
struct SyncIo<'a, 'b, IO> {
    io: &'a mut IO,
    cx: &'a mut Context<'b>,
}

impl<IO: AsyncRead + Unpin> Read for SyncIo<'_, '_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_read(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<IO: AsyncWrite + Unpin> Write for SyncIo<'_, '_, IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn handed_over() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS session handed over")
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// A session over `io`; nothing is sent before the first poll.
    pub fn new(io: IO, session: impl Into<rustls::Connection>) -> TlsStream<IO> {
        TlsStream { io, session: Some(session.into()), unacked: 0 }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// Takes the session out (its keys and any plaintext it buffered), to carry it on
    /// another thread over a duplicate of the socket; this stream then fails every call.
    pub fn take_session(&mut self) -> Option<rustls::Connection> {
        self.session.take()
    }

    /// Runs the handshake to its end (both sides' last messages sent).
    pub async fn handshake(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send_records(cx))?;
            let Some(s) = &self.session else { return Poll::Ready(Err(handed_over())) };
            if !s.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_receive_records(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Connection closed by peer during the TLS handshake",
                )));
            }
        }
    }

    /// Writes out every record the session has queued.
    fn poll_send_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(s) = &mut self.session else { return Poll::Ready(Err(handed_over())) };
        while s.wants_write() {
            match s.write_tls(&mut SyncIo { io: &mut self.io, cx }) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads records from the socket into the session; the byte count (0 at end of stream).
    /// A protocol error queues an alert, sent on a best-effort basis before failing.
    fn poll_receive_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(s) = &mut self.session else { return Poll::Ready(Err(handed_over())) };
        let n = match s.read_tls(&mut SyncIo { io: &mut self.io, cx }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Err(e) = s.process_new_packets() {
            let _ = self.poll_send_records(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let Some(s) = &mut this.session else { return Poll::Ready(Err(handed_over())) };
            match s.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                // A peer that closes without close_notify has still closed: end of stream,
                // as a plain socket's.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            ready!(this.poll_receive_records(cx))?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.unacked == 0 {
            // Whatever an earlier write or the session itself queued goes first.
            ready!(this.poll_send_records(cx))?;
            let Some(s) = &mut this.session else { return Poll::Ready(Err(handed_over())) };
            this.unacked = s.writer().write(buf)?;
            if this.unacked == 0 {
                return Poll::Ready(Ok(0));
            }
        }
        ready!(this.poll_send_records(cx))?;
        Poll::Ready(Ok(std::mem::take(&mut this.unacked)))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_records(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(s) = &mut this.session {
            if !s.wants_write() {
                s.send_close_notify();
            }
        }
        ready!(this.poll_send_records(cx))?;
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// A connection's stream: plain, or TLS over the same kind of socket.
pub enum MaybeTls<IO> {
    /// Plain TCP (or Unix) bytes.
    Plain(IO),
    /// A TLS session (boxed: the session state is large, plain streams stay small).
    Tls(Box<TlsStream<IO>>),
}

impl<IO> From<IO> for MaybeTls<IO> {
    fn from(io: IO) -> Self {
        MaybeTls::Plain(io)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> MaybeTls<IO> {
    /// The stream under the session, if any.
    pub fn get_ref(&self) -> &IO {
        match self {
            MaybeTls::Plain(io) => io,
            MaybeTls::Tls(t) => t.get_ref(),
        }
    }

    /// Whether this connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The TLS session, taken out to travel with a duplicate of the socket (None if plain).
    pub fn take_session(&mut self) -> Option<rustls::Connection> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(t) => t.take_session(),
        }
    }

    /// `io` under `session` if there is one (the receiving end of a hand-off).
    pub fn resume(io: IO, session: Option<rustls::Connection>) -> MaybeTls<IO> {
        match session {
            Some(s) => MaybeTls::Tls(Box::new(TlsStream::new(io, s))),
            None => MaybeTls::Plain(io),
        }
    }
}

impl<IO: AsRawFd> AsRawFd for MaybeTls<IO> {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            MaybeTls::Plain(io) => io.as_raw_fd(),
            MaybeTls::Tls(t) => t.io.as_raw_fd(),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MaybeTls::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MaybeTls::Tls(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_flush(cx),
            MaybeTls::Tls(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_close(cx),
            MaybeTls::Tls(t) => Pin::new(&mut **t).poll_close(cx),
        }
    }
}
