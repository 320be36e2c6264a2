//! The tokio side of the runtime seam.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use nextrush_driver::{Listener, Runtime, Timer, Transport, WrapIo};
use tokio::io::{AsyncRead, AsyncWrite};

/// The tokio runtime, for the driver. Uses tokio's clock, so tests with
/// paused time (`start_paused`) drive protocol timers too.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Timer = TokioTimer;
    type Listener = TcpListener;
    type TcpStream = TokioIo<tokio::net::TcpStream>;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self) -> TokioTimer {
        TokioTimer { sleep: None }
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(future));
    }

    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        tokio::net::TcpListener::bind(addr).await.map(TcpListener)
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::TcpStream> {
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(TokioIo(stream))
    }

    /// With the `rustls` feature: the system's root certificates.
    #[cfg(feature = "rustls")]
    fn default_tls_connector(&self) -> Option<nextrush_driver::TlsConnector<Self::TcpStream>> {
        Some(nextrush_driver::TlsConnector::new(nextrush_driver::tls::SystemRoots))
    }
}

/// A resettable tokio `Sleep`, allocated on first use.
#[derive(Debug)]
pub struct TokioTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Timer for TokioTimer {
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

/// A tokio TCP listener for [`App::serve`](crate::App::serve).
#[derive(Debug)]
pub struct TcpListener(pub tokio::net::TcpListener);

impl From<tokio::net::TcpListener> for TcpListener {
    fn from(listener: tokio::net::TcpListener) -> Self {
        Self(listener)
    }
}

impl Listener for TcpListener {
    type Stream = TokioIo<tokio::net::TcpStream>;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok((TokioIo(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Any tokio `AsyncRead + AsyncWrite` as a driver transport.
#[derive(Debug)]
pub struct TokioIo<S>(pub S);

impl<S> Transport for TokioIo<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        // Reads into spare capacity without zero-filling it first.
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S> WrapIo<S> for Tokio
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = TokioIo<S>;

    fn wrap(stream: S) -> TokioIo<S> {
        TokioIo(stream)
    }
}
