//! The socket's shapes and transports: `split()` halves driven from two
//! tasks, the `Stream`/`Sink` impls (through small `poll_fn` helpers), and
//! `App::accept` with `Client::connect_with` over an in-memory
//! `tokio::io::duplex` pipe instead of TCP.

mod common;

use std::future::poll_fn;
use std::pin::Pin;

use common::{assert_same, collect_events, echo_app, numbered, start, wait_event, within};
use futures_core::Stream;
use futures_sink::Sink;
use nextrush_tokio::{Client, ClientOptions, CloseCode, Message, Options, ServerEvent, connect};

/// `StreamExt::next`, by hand.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    within("stream item", poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx))).await
}

/// `SinkExt::feed`: wait for room, then start the send (no flush).
async fn feed<S: Sink<Message> + Unpin>(sink: &mut S, message: Message) -> Result<(), S::Error> {
    within("sink ready", poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx))).await?;
    Pin::new(&mut *sink).start_send(message)
}

async fn flush<S: Sink<Message> + Unpin>(sink: &mut S) -> Result<(), S::Error> {
    within("sink flush", poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx))).await
}

async fn close<S: Sink<Message> + Unpin>(sink: &mut S) -> Result<(), S::Error> {
    within("sink close", poll_fn(|cx| Pin::new(&mut *sink).poll_close(cx))).await
}

const COUNT: u32 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_work_from_two_tasks() {
    let server = start(echo_app(Options::default())).await;
    let ws = connect(&server.url("/echo")).await.unwrap();
    let (mut reader, writer) = ws.split();
    let sending = tokio::spawn(async move {
        for i in 0..COUNT {
            writer.send(numbered(1, i)).await.unwrap();
        }
        writer
    });
    let receiving = tokio::spawn(async move {
        for i in 0..COUNT {
            let got = within("echo", reader.recv()).await.unwrap();
            assert_same(&got.expect("a message"), &numbered(1, i), &format!("message {i}"));
        }
        reader
    });
    let writer = within("sender", sending).await.unwrap();
    let mut reader = within("receiver", receiving).await.unwrap();
    // Either half can close; the other sees the end.
    writer.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(within("end", reader.recv()).await.unwrap(), None);
    assert_eq!(reader.close_reason().unwrap().code(), CloseCode::NORMAL);
}

#[tokio::test]
async fn dropping_both_halves_closes_the_socket() {
    let app = echo_app(Options::default());
    let mut events = collect_events(&app);
    let server = start(app).await;
    let (reader, writer) = connect(&server.url("/echo")).await.unwrap().split();
    drop(reader);
    // One half alone keeps the socket open.
    writer.send("still open").await.unwrap();
    drop(writer);
    let code = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, CloseCode::NORMAL);
    assert_eq!(server.app.stats().messages_received, 1);
}

#[tokio::test]
async fn stream_and_sink_impls() {
    let server = start(echo_app(Options::default())).await;
    let mut ws = connect(&server.url("/echo")).await.unwrap();
    for i in 0..COUNT {
        feed(&mut ws, numbered(2, i)).await.unwrap();
    }
    flush(&mut ws).await.unwrap();
    assert_eq!(ws.metadata().buffered, 0, "flushed means written");
    for i in 0..COUNT {
        assert_same(&next(&mut ws).await.unwrap().unwrap(), &numbered(2, i), &format!("message {i}"));
    }
    close(&mut ws).await.unwrap();
    // The stream ends after the close, and stays ended.
    assert!(next(&mut ws).await.is_none());
    assert!(next(&mut ws).await.is_none());
    assert!(feed(&mut ws, Message::text("late")).await.is_err());
}

#[tokio::test]
async fn split_halves_are_stream_and_sink() {
    let server = start(echo_app(Options::default())).await;
    let (mut reader, mut writer) = connect(&server.url("/echo")).await.unwrap().split();
    for i in 0..50 {
        feed(&mut writer, numbered(3, i)).await.unwrap();
    }
    flush(&mut writer).await.unwrap();
    for i in 0..50 {
        assert_same(&next(&mut reader).await.unwrap().unwrap(), &numbered(3, i), &format!("message {i}"));
    }
    close(&mut writer).await.unwrap();
    assert!(next(&mut reader).await.is_none());
}

#[tokio::test]
async fn accept_and_connect_with_over_an_in_memory_duplex() {
    let app = echo_app(Options::default());
    let mut events = collect_events(&app);
    let (server_io, client_io) = tokio::io::duplex(16 * 1024);
    let serving = app.clone();
    let connection = tokio::spawn(async move { serving.accept(server_io, None).await });

    let mut ws = within("handshake", Client::default().connect_with(client_io, "ws://in-memory/echo")).await.unwrap();
    let peer = wait_event(&mut events, "connection", |e| match e {
        ServerEvent::Connection { peer_addr, .. } => Some(*peer_addr),
        _ => None,
    })
    .await;
    assert_eq!(peer, None, "no address on a pipe");
    for i in 0..100 {
        ws.send(numbered(4, i)).await.unwrap();
        let got = within("echo", ws.recv()).await.unwrap().expect("a message");
        assert_same(&got, &numbered(4, i), &format!("message {i}"));
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    // `accept` returns once the connection is over.
    within("accept returns", connection).await.unwrap();
    let stats = app.stats();
    assert_eq!((stats.total_connections, stats.connections), (1, 0));
    assert_eq!(stats.messages_received, 100);
}

#[tokio::test]
async fn duplex_without_compression() {
    let app = echo_app(Options::default().compression(false));
    let (server_io, client_io) = tokio::io::duplex(1024);
    let serving = app.clone();
    let connection = tokio::spawn(async move { serving.accept(server_io, None).await });
    let client = Client::new(ClientOptions::default().compression(false));
    let mut ws = within("handshake", client.connect_with(client_io, "ws://in-memory/echo")).await.unwrap();
    // Messages much larger than the pipe's buffer.
    let big = Message::binary(vec![9u8; 200_000]);
    ws.send(big.clone()).await.unwrap();
    assert_eq!(within("echo", ws.recv()).await.unwrap(), Some(big));
    drop(ws);
    within("accept returns", connection).await.unwrap();
}

/// A pipe end that notes whether a vectored write carried `watched`'s
/// memory itself (its address), i.e. the payload was not copied, and where
/// each read put its bytes.
struct Watching {
    io: tokio::io::DuplexStream,
    watched: usize,
    seen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// (address of the first byte, bytes read) per read that read some.
    reads: std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>,
}

impl tokio::io::AsyncRead for Watching {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            let at = buf.filled()[before..].as_ptr() as usize;
            self.reads.lock().unwrap().push((at, read));
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watching {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let watched = self.watched;
        if bufs.iter().any(|b| b.as_ptr() as usize == watched) {
            self.seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        // The pipe takes one buffer at a time: write the first non-empty.
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
        Pin::new(&mut self.io).poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A large payload is written from the message's own memory, with vectored
/// writes (its frame head beside it), not copied into an output buffer; it
/// arrives whole through a pipe that takes a little at a time.
#[tokio::test]
async fn a_large_payload_goes_out_by_reference() {
    let payload = bytes::Bytes::from(vec![7u8; 100_000]);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = nextrush_tokio::App::new(Options::default().compression(false));
    let sent = payload.clone();
    app.ws("/big", move |ws, _req| {
        let sent = sent.clone();
        async move {
            ws.send(Message::Binary(sent)).await?;
            ws.flush().await
        }
    })
    .unwrap();
    let (server_io, client_io) = tokio::io::duplex(4 * 1024);
    let server_io =
        Watching { io: server_io, watched: payload.as_ptr() as usize, seen: seen.clone(), reads: Default::default() };
    let connection = tokio::spawn(async move { app.accept(server_io, None).await });
    let client = Client::new(ClientOptions::default().compression(false));
    let mut ws = within("handshake", client.connect_with(client_io, "ws://in-memory/big")).await.unwrap();
    assert_eq!(within("message", ws.recv()).await.unwrap(), Some(Message::Binary(payload)));
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst), "the payload's own memory was written");
    drop(ws);
    within("accept returns", connection).await.unwrap();
}

/// A frame that comes in many small reads is read in place after its first
/// piece: its start is copied once to memory with room for the rest (the
/// read arena), not copied again on every read.
#[tokio::test]
async fn a_frame_trickling_in_is_read_in_place() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = echo_app(Options::default().compression(false));
    let (server_io, mut client_io) = tokio::io::duplex(64 * 1024);
    let reads = std::sync::Arc::default();
    let server_io =
        Watching { io: server_io, watched: 0, seen: Default::default(), reads: std::sync::Arc::clone(&reads) };
    let connection = tokio::spawn(async move { app.accept(server_io, None).await });
    client_io.write_all(common::upgrade_request("/echo", "").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(within("handshake", client_io.read_u8()).await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));

    reads.lock().unwrap().clear();
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    for piece in common::masked(0x2, &payload).chunks(1_000) {
        client_io.write_all(piece).await.unwrap();
        // Each piece read on its own, as from a slow peer.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let expected = common::frame(true, 0x2, &payload, None);
    let mut echoed = vec![0; expected.len()];
    within("echo", client_io.read_exact(&mut echoed)).await.unwrap();
    assert!(echoed == expected, "the echo differs");

    let reads = reads.lock().unwrap().clone();
    // Only the read after the first lands elsewhere (after the copied start).
    let moved = reads.windows(2).filter(|w| w[1].0 != w[0].0 + w[0].1).count();
    assert!(reads.len() > 5 && moved <= 1, "{} reads, {moved} not right after the one before: {reads:?}", reads.len());
    drop(client_io);
    let _ = within("accept returns", connection).await;
}
