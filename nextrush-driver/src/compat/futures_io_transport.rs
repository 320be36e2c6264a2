//! Any `futures-io` byte stream as a [`Transport`].

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// Most bytes offered per read.
const READ_WINDOW: usize = 64 * 1024;

thread_local! {
    /// Initialized memory for futures-io reads, which take `&mut [u8]` (a
    /// buffer's spare capacity is not initialized). Reading here and copying
    /// what came costs what was read. Zeroing a window of the spare capacity
    /// before every read cost the whole window, also for a 20-byte message
    /// and for the reads that find nothing: with small messages on smol,
    /// 7 % more CPU per message. Only bulk reads that fill the window pay a
    /// little more this way (a copy where a fill was).
    static READ_SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_WINDOW].into_boxed_slice());
}

/// A `futures_io::AsyncRead + AsyncWrite` stream (async-std, smol, async-net,
/// futures-rustls) as a driver transport.
#[derive(Debug)]
pub struct FuturesIo<S>(pub S);

impl<S> Transport for FuturesIo<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        // Within the spare capacity: appending never reallocates.
        let window = (buf.capacity() - buf.len()).min(READ_WINDOW);
        READ_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                let polled = Pin::new(&mut self.0).poll_read(cx, &mut scratch[..window]);
                if let Poll::Ready(Ok(n)) = polled {
                    if n > window {
                        return Poll::Ready(Err(overlong_read()));
                    }
                    buf.extend_from_slice(&scratch[..n]);
                }
                polled
            }
            // A stream whose read reads another of these transports.
            Err(_) => self.poll_read_zeroed(cx, buf, window),
        })
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

impl<S: AsyncRead + Unpin> FuturesIo<S> {
    /// Reads into `window` bytes of `buf`'s spare capacity, zeroed first.
    fn poll_read_zeroed(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut, window: usize) -> Poll<io::Result<usize>> {
        let start = buf.len();
        buf.resize(start + window, 0);
        let polled = Pin::new(&mut self.0).poll_read(cx, &mut buf[start..]);
        let read = match &polled {
            Poll::Ready(Ok(n)) if *n > window => {
                buf.truncate(start);
                return Poll::Ready(Err(overlong_read()));
            }
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + read);
        polled
    }
}

/// A stream said it read more bytes than it was given room for.
fn overlong_read() -> io::Error {
    io::Error::other("the stream reported reading more bytes than the buffer holds")
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::Waker;

    use super::*;

    /// A stream that answers each read with the next scripted reply and
    /// records how much room each read was offered.
    #[derive(Default)]
    struct Scripted {
        replies: VecDeque<Reply>,
        offered: Vec<usize>,
    }

    enum Reply {
        Data(Vec<u8>),
        Pending,
        /// Claims more bytes than it was given room for.
        Overlong,
        /// What another transport reads, read from inside this read (on the
        /// same thread, so the scratch buffer is taken).
        Nested(Box<FuturesIo<Scripted>>),
    }

    impl AsyncRead for Scripted {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.offered.push(buf.len());
            match self.replies.pop_front() {
                Some(Reply::Data(data)) => {
                    buf[..data.len()].copy_from_slice(&data);
                    Poll::Ready(Ok(data.len()))
                }
                Some(Reply::Pending) => Poll::Pending,
                Some(Reply::Overlong) => Poll::Ready(Ok(buf.len() + 1)),
                Some(Reply::Nested(mut inner)) => {
                    let mut read = BytesMut::with_capacity(64);
                    let polled = inner.poll_read_buf(cx, &mut read);
                    buf[..read.len()].copy_from_slice(&read);
                    polled
                }
                None => Poll::Ready(Ok(0)),
            }
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn scripted(replies: impl IntoIterator<Item = Reply>) -> FuturesIo<Scripted> {
        FuturesIo(Scripted { replies: replies.into_iter().collect(), offered: Vec::new() })
    }

    fn read(io: &mut FuturesIo<Scripted>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        io.poll_read_buf(&mut Context::from_waker(Waker::noop()), buf)
    }

    #[test]
    fn reads_append_exactly_what_came_within_the_spare_capacity() {
        let mut io = scripted([Reply::Data(b"hello".to_vec()), Reply::Pending, Reply::Data(b" world".to_vec())]);
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b">");
        assert!(matches!(read(&mut io, &mut buf), Poll::Ready(Ok(5))));
        assert!(read(&mut io, &mut buf).is_pending());
        assert!(matches!(read(&mut io, &mut buf), Poll::Ready(Ok(6))));
        assert_eq!(&buf[..], b">hello world");
        // Never more room than the buffer has spare (so it never grows), and
        // at most the window.
        assert!(io.0.offered.iter().all(|&offered| offered <= 63));
        let mut big = BytesMut::with_capacity(4 * READ_WINDOW);
        assert!(matches!(read(&mut io, &mut big), Poll::Ready(Ok(0))));
        assert_eq!(io.0.offered.last(), Some(&READ_WINDOW));
        assert_eq!(big.capacity(), 4 * READ_WINDOW);
    }

    #[test]
    fn a_stream_claiming_an_overlong_read_is_an_error_not_a_panic() {
        let mut io = scripted([Reply::Overlong]);
        let mut buf = BytesMut::with_capacity(64);
        assert!(matches!(read(&mut io, &mut buf), Poll::Ready(Err(_))));
        assert!(buf.is_empty());

        let mut io = scripted([Reply::Overlong]);
        assert!(matches!(
            io.poll_read_zeroed(&mut Context::from_waker(Waker::noop()), &mut buf, 16),
            Poll::Ready(Err(_))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_read_inside_a_read_on_the_same_thread_still_gets_its_bytes() {
        let inner = scripted([Reply::Data(b"inner bytes".to_vec())]);
        let mut outer = scripted([Reply::Nested(Box::new(inner))]);
        let mut buf = BytesMut::with_capacity(64);
        let polled = read(&mut outer, &mut buf);
        assert!(matches!(polled, Poll::Ready(Ok(11))));
        assert_eq!(&buf[..], b"inner bytes");
    }
}
