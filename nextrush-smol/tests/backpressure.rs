//! A connection whose transport fills up must go on writing once the peer
//! reads, with nothing arriving from the peer to wake it.
//!
//! async-net's `TcpStream` (smol's) drops the writability wait a `Pending`
//! `poll_write` registered when `poll_flush` is called after it. The driver
//! used to flush after every write that moved bytes, `Pending` or not, and
//! then slept until the peer happened to send something: the smol client
//! took 100 s per Autobahn 9.3.x case, ending on the fuzzing server's
//! timeout. The in-memory pipe here flushes the same way, and is small, so
//! that every large write fills it.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use nextrush_smol::{App, Client, ClientOptions, Error, Message, Options, Request, WebSocket};
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncWrite};

/// Bytes a pipe direction holds.
const PIPE_CAPACITY: usize = 16 * 1024;
/// The message the client sends: one send, so that nothing but the pipe
/// draining can wake its driver once the pipe is full.
const SIZE: usize = 2 << 20;

#[derive(Default)]
struct Direction {
    bytes: VecDeque<u8>,
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn lock(direction: &Mutex<Direction>) -> std::sync::MutexGuard<'_, Direction> {
    direction.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One end of a bounded in-memory byte pipe.
struct End {
    incoming: Arc<Mutex<Direction>>,
    outgoing: Arc<Mutex<Direction>>,
}

fn pipe() -> (End, End) {
    let (a, b) = (Arc::<Mutex<Direction>>::default(), Arc::<Mutex<Direction>>::default());
    (End { incoming: Arc::clone(&a), outgoing: Arc::clone(&b) }, End { incoming: b, outgoing: a })
}

impl AsyncRead for End {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut d = lock(&self.incoming);
        if d.bytes.is_empty() {
            if d.closed {
                return Poll::Ready(Ok(0));
            }
            d.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(d.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(d.bytes.drain(..n)) {
            *slot = byte;
        }
        if let Some(writer) = d.writer.take() {
            writer.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut d = lock(&self.outgoing);
        if d.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(PIPE_CAPACITY - d.bytes.len());
        if n == 0 {
            d.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        d.bytes.extend(&buf[..n]);
        if let Some(reader) = d.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(n))
    }

    /// As async-net's: nothing to flush, and the wait for space is dropped.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.outgoing).writer = None;
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut d = lock(&self.outgoing);
        d.closed = true;
        if let Some(reader) = d.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        for direction in [&self.incoming, &self.outgoing] {
            let mut d = lock(direction);
            d.closed = true;
            for waker in [d.reader.take(), d.writer.take()].into_iter().flatten() {
                waker.wake();
            }
        }
    }
}

/// Reads the message, then answers with its length.
async fn read_all(mut ws: WebSocket, _req: Request) -> Result<(), Error> {
    if let Some(message) = ws.recv().await? {
        ws.send(Message::text(message.len().to_string())).await?;
    }
    ws.flush().await
}

#[test]
fn writes_go_on_after_the_transport_fills_up() {
    smol::block_on(
        async {
            let (client_end, server_end) = pipe();
            let app = App::new(Options::default().ping_interval(None).max_message_size(SIZE));
            app.ws("/", read_all).expect("route");
            smol::spawn(async move { app.accept(server_end, None).await }).detach();

            let client = Client::new(ClientOptions::default().ping_interval(None));
            let mut ws = client.connect_with(client_end, "ws://pipe/").await.expect("handshake");
            ws.send(Message::binary(vec![7; SIZE])).await.expect("send");
            assert_eq!(ws.recv().await.expect("recv"), Some(Message::text(SIZE.to_string())));
        }
        .or(async {
            smol::Timer::after(Duration::from_secs(10)).await;
            panic!("writing stopped once the pipe was full");
        }),
    );
}
