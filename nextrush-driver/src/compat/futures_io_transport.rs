//! Any `futures-io` byte stream as a [`Transport`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// Bytes zeroed and offered per read.
const READ_WINDOW: usize = 16 * 1024;

/// A `futures_io::AsyncRead + AsyncWrite` stream (async-std, smol, async-net,
/// futures-rustls) as a driver transport.
#[derive(Debug)]
pub struct FuturesIo<S>(pub S);

impl<S> Transport for FuturesIo<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        // futures-io reads into initialized memory: zero a bounded window of
        // the spare capacity (not all of it: most reads are small, and half
        // of them find nothing), read, then keep only what was read.
        let start = buf.len();
        let window = (buf.capacity() - start).min(READ_WINDOW);
        buf.resize(start + window, 0);
        let polled = Pin::new(&mut self.0).poll_read(cx, &mut buf[start..]);
        let read = match &polled {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + read);
        polled
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
        Pin::new(&mut self.0).poll_close(cx)
    }
}
