//! Small async helpers over a [`Transport`], used around the handshakes.

use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;

use crate::runtime::{Runtime, Timer, Transport};

/// Writes all of `buf`, then flushes.
pub(crate) async fn write_all<T: Transport>(io: &mut T, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| io.poll_write(cx, buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    poll_fn(|cx| io.poll_flush(cx)).await
}

/// What [`read_until`] saw.
pub(crate) enum ReadOutcome {
    /// This many bytes were appended.
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// The deadline passed first.
    TimedOut,
}

/// Reads once into `buf`, giving up at `deadline`.
pub(crate) async fn read_until<R: Runtime, T: Transport>(
    rt: &R,
    timer: &mut R::Timer,
    io: &mut T,
    buf: &mut BytesMut,
    deadline: Option<Instant>,
) -> io::Result<ReadOutcome> {
    if buf.capacity() - buf.len() < 512 {
        buf.reserve(2048);
    }
    poll_fn(|cx| {
        match io.poll_read_buf(cx, buf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(ReadOutcome::Eof)),
            Poll::Ready(Ok(n)) => return Poll::Ready(Ok(ReadOutcome::Data(n))),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        match deadline {
            Some(at) if rt.now() >= at || timer.poll_at(cx, at).is_ready() => Poll::Ready(Ok(ReadOutcome::TimedOut)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Runs `future` until `deadline` on the runtime's clock; `None` if the
/// deadline came first.
pub(crate) async fn with_deadline<R: Runtime, F: std::future::Future>(
    rt: &R,
    deadline: Instant,
    future: F,
) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = rt.timer();
    poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if rt.now() >= deadline || timer.poll_at(cx, deadline).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
