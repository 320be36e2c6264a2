//! The runtime seam: the little an adapter must provide — a clock, a timer,
//! spawn, TCP, and a byte transport — so that everything else is written once.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;

use crate::tls::TlsConnector;

/// An async runtime, as the driver sees it.
///
/// Implemented by each adapter (`nextrush-tokio`, `nextrush-async-std`,
/// `nextrush-smol`) in a hundred lines or so; the driver never names a
/// runtime itself.
pub trait Runtime: Clone + Default + Send + Sync + Unpin + 'static {
    /// A resettable timer.
    type Timer: Timer;
    /// A TCP listener.
    type Listener: Listener<Stream = Self::TcpStream>;
    /// A connected TCP stream.
    type TcpStream: Transport;

    /// The runtime's clock. Protocol deadlines are compared against it, so a
    /// runtime with a virtual clock (tokio's paused time) drives them too.
    fn now(&self) -> Instant;

    /// A timer that is not armed yet.
    fn timer(&self) -> Self::Timer;

    /// Runs `future` to completion in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Binds a TCP listener.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Opens a TCP connection to `host:port` (resolving the name), with
    /// `TCP_NODELAY` set.
    fn connect(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::TcpStream>> + Send;

    /// The TLS connector a new [`Client`](crate::Client) starts with, for
    /// `wss://` URLs: `None` (the default) when the adapter was built
    /// without TLS, in which case `wss://` fails with
    /// [`Error::TlsUnsupported`](crate::Error::TlsUnsupported) unless the
    /// client is given one with [`Client::with_tls`](crate::Client::with_tls).
    /// The adapters return one with the system's root certificates when
    /// their `rustls` feature is on.
    fn default_tls_connector(&self) -> Option<TlsConnector<Self::TcpStream>> {
        None
    }

    /// Waits until `deadline` on this runtime's clock.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send {
        let mut timer = self.timer();
        std::future::poll_fn(move |cx| timer.poll_at(cx, deadline))
    }
}

/// A timer that fires at a deadline and can be moved to another one.
pub trait Timer: Send + Unpin + 'static {
    /// Polls for `deadline`, re-arming the timer first if the deadline
    /// changed since the last call.
    ///
    /// It must not wake the task before the deadline it was last left
    /// pending for, by the runtime's clock ([`Runtime::now`]): the driver
    /// does not poll it again for a later deadline until that moment has
    /// come.
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()>;
}

/// A listening socket.
pub trait Listener: Send + Sync + 'static {
    /// The stream type of accepted connections.
    type Stream: Transport;

    /// Accepts the next connection, with `TCP_NODELAY` set.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The bound address.
    ///
    /// # Errors
    /// The operating system could not report it.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A byte stream the driver reads and writes: TCP, TLS, a Unix socket, or an
/// in-memory pipe.
pub trait Transport: Send + Unpin + 'static {
    /// Reads into the spare capacity of `buf` (appending), returning the
    /// number of bytes read; 0 means end of stream.
    fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;

    /// Writes some of `buf`.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes some of `bufs`, in order, in one go where the transport can
    /// (large payloads go out this way, without being copied next to their
    /// frame head). By default: the first non-empty one, with `poll_write`.
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
        self.poll_write(cx, first)
    }

    /// Flushes buffered writes.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts down the write side.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// How a runtime turns one of its native byte streams (a tokio `AsyncRead +
/// AsyncWrite`, a `futures-io` one) into a [`Transport`], so that
/// `App::accept(stream)` and `connect_with(stream, ..)` take native types.
pub trait WrapIo<S>: Runtime {
    /// The wrapper.
    type Io: Transport;

    /// Wraps `stream`.
    fn wrap(stream: S) -> Self::Io;
}
