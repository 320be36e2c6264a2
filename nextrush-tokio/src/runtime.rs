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
        // The keep-alive deadline moves later with every message: leave the
        // sleep armed where it is and move it only once it fires early.
        // Re-arming costs a trip through the timer wheel.
        if deadline < sleep.deadline() {
            sleep.as_mut().reset(deadline);
        }
        loop {
            std::task::ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= deadline {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
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

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    /// Polls `timer` for `deadline` once, without waiting.
    async fn poll_once(timer: &mut TokioTimer, deadline: Instant) -> Poll<()> {
        poll_fn(|cx| Poll::Ready(timer.poll_at(cx, deadline))).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_until_reached() {
        let start = Tokio.now();
        let mut timer = Tokio.timer();
        assert!(poll_once(&mut timer, start + Duration::from_secs(1)).await.is_pending());
        // Moved later (keep-alive after a message): not due at the old time.
        let later = start + Duration::from_secs(3);
        assert!(poll_once(&mut timer, later).await.is_pending());
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(poll_once(&mut timer, later).await.is_pending());
        tokio::time::advance(Duration::from_millis(1400)).await;
        assert!(poll_once(&mut timer, later).await.is_pending());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(poll_once(&mut timer, later).await.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_fires_early_and_waking_works() {
        let start = Tokio.now();
        let mut timer = Tokio.timer();
        assert!(poll_once(&mut timer, start + Duration::from_secs(10)).await.is_pending());
        let earlier = start + Duration::from_secs(2);
        // Waits (and is woken) for the earlier deadline, not the first one.
        poll_fn(|cx| timer.poll_at(cx, earlier)).await;
        assert_eq!(Tokio.now(), earlier);
        // After firing, a new later deadline is waited for in full.
        let next = earlier + Duration::from_secs(5);
        poll_fn(|cx| timer.poll_at(cx, next)).await;
        assert_eq!(Tokio.now(), next);
    }
}
