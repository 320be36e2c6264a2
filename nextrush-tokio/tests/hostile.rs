//! Hostile peers over loopback. Each test plays one attack with a raw TCP
//! client, asserts exactly what the server does about it, and keeps a
//! well-behaved client (the bystander) doing echo round trips while the
//! attack is in progress: an attack must cost the attacker its connection,
//! never cost anyone else theirs.
//!
//! Attacks already proven elsewhere are not repeated here: single malformed
//! upgrades (400), oversize heads and too many headers (431), 503 past
//! `max_connections` and its race (`rejections.rs`); a silent peer dropped
//! by the keep-alive (`heartbeat.rs`); a slow room member (`rooms.rs`); a
//! peer that ignores the shutdown Close (`shutdown.rs`); protocol violations
//! and their close codes (`close_codes.rs`); rate limits (`rate_limit.rs`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    HttpResponse, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, Server, collect_events, echo_app, frame, masked,
    masked_close, parse_frames, start, tcp, upgrade_request, wait_event, wait_until, within,
};
use nextrush_tokio::proto::deflate::{Compressor, DeflateConfig, DeflateParams};
use nextrush_tokio::proto::{CloseReason, ProtocolError, Role, Timer};
use nextrush_tokio::{App, CloseCode, Error, Message, Options, ServerEvent, SlowConsumer, WebSocket, connect};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The longest a bystander's round trip may take while an attack runs.
const ROUND_TRIP: Duration = Duration::from_secs(2);

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The well-behaved client: echo round trips, each bounded by [`ROUND_TRIP`].
struct Bystander {
    ws: WebSocket,
    rounds: usize,
}

impl Bystander {
    async fn connect(server: &Server) -> Self {
        let ws = within("bystander connects", connect(&server.url("/echo"))).await.expect("bystander connects");
        let mut bystander = Self { ws, rounds: 0 };
        bystander.round_trip().await;
        bystander
    }

    /// One echo, answered in time and intact.
    async fn round_trip(&mut self) {
        let text = format!("round {}", self.rounds);
        self.ws.send(text.clone()).await.expect("bystander send");
        let got = tokio::time::timeout(ROUND_TRIP, self.ws.recv())
            .await
            .unwrap_or_else(|_| panic!("bystander round trip {} stalled", self.rounds))
            .expect("bystander recv");
        assert_eq!(got, Some(Message::text(text)), "bystander round trip {}", self.rounds);
        self.rounds += 1;
    }

    /// Closes cleanly; the server is still fine after the attack.
    async fn finish(mut self, at_least: usize) {
        self.round_trip().await;
        assert!(self.rounds >= at_least, "only {} round trips during the attack", self.rounds);
        within("bystander close", self.ws.close(CloseCode::NORMAL, "")).await.expect("bystander close");
    }
}

/// A raw TCP connection whose receive buffer is as small as the kernel
/// allows, so that a peer that never reads backs the server up quickly.
async fn tiny_window(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    within("tcp connect", socket.connect(addr)).await.expect("connect")
}

/// The opening handshake on `stream`; reads the head byte by byte so that
/// nothing after it is consumed. Returns the response.
async fn upgrade_on(stream: &mut TcpStream, path: &str, extra: &str) -> HttpResponse {
    stream.write_all(upgrade_request(path, extra).as_bytes()).await.expect("write request");
    let mut got = Vec::new();
    within("response head", async {
        while !got.ends_with(b"\r\n\r\n") {
            match stream.read_u8().await {
                Ok(byte) => got.push(byte),
                Err(e) => panic!("{e} during the handshake after {:?}", String::from_utf8_lossy(&got)),
            }
        }
    })
    .await;
    HttpResponse::parse(&got)
}

/// Reads until EOF (or a reset once something arrived), from any reader.
async fn read_all<R: AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut out = Vec::new();
    within("EOF", async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    })
    .await;
    out
}

/// The status code of the close frame that ends `bytes` (server frames).
fn final_close_code(bytes: &[u8]) -> u16 {
    let frames = parse_frames(bytes);
    let (first, body) = frames.last().expect("at least a close frame");
    assert_eq!(first & 0x0f, OP_CLOSE, "the last frame is a Close");
    u16::from_be_bytes([body[0], body[1]])
}

/// The code of the next `Disconnect` event.
async fn next_disconnect(events: &mut mpsc::UnboundedReceiver<ServerEvent>) -> CloseCode {
    wait_event(events, "disconnect", |e| match e {
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await
}

/// An echo app at `/echo` whose `/report` route sends what its socket's
/// `recv` ended with (as `Debug`) to the returned channel.
fn reporting_app(options: Options) -> (App, mpsc::UnboundedReceiver<Result<Option<Message>, Error>>) {
    let app = echo_app(options);
    let (tx, rx) = mpsc::unbounded_channel();
    app.ws("/report", move |mut ws, _req| {
        let tx = tx.clone();
        async move {
            let end = loop {
                match ws.recv().await {
                    Ok(Some(_)) => {}
                    other => break other,
                }
            };
            let _ = tx.send(end);
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    (app, rx)
}

// ----- the opening handshake ----------------------------------------------------

/// Slowloris: the request arrives a byte at a time, each byte well within
/// any idle timeout. The handshake timeout is a deadline for the whole
/// request, so the server answers 408 and hangs up when it passes.
#[tokio::test]
async fn slowloris_handshake_is_cut_off_at_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(echo_app(Options::default().handshake_timeout(timeout))).await;
    let mut bystander = Bystander::connect(&server).await;
    let request = upgrade_request("/echo", "");
    let mut stream = tcp(server.addr).await;
    let started = Instant::now();
    let mut sent = 0;
    let mut answer = [0u8; 1];
    let first = loop {
        stream.write_all(&request.as_bytes()[sent..=sent]).await.expect("the server reads while it waits");
        sent += 1;
        bystander.round_trip().await;
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut answer)).await {
            break read.expect("the answer");
        }
        assert!(started.elapsed() < common::LIMIT, "never cut off");
    };
    assert_eq!(first, 1);
    let elapsed = started.elapsed();
    let mut bytes = answer.to_vec();
    bytes.extend(read_all(&mut stream).await);
    let response = HttpResponse::parse(&bytes);
    assert_eq!(response.status, 408, "{}", response.status_line);
    assert!(sent < request.len(), "the request never completed ({sent} of {} bytes)", request.len());
    assert!(elapsed >= timeout, "cut off after {elapsed:?}, before the timeout");
    assert!(elapsed < timeout * 4, "cut off only after {elapsed:?}");
    let stats = server.app.stats();
    assert_eq!(stats.rejected_handshakes, 1);
    assert_eq!(stats.total_connections, 1, "only the bystander was ever admitted");
    bystander.finish(3).await;
}

/// Many TCP connections that never send a request take no connection slot
/// (slots are taken once a request is complete) and are each answered 408
/// at the handshake timeout; past `max_connections` real upgrades get 503
/// while exactly the free slots are admitted.
#[tokio::test]
async fn connection_flood_past_max_connections() {
    const MAX: usize = 8;
    const IDLE: usize = 100;
    const UPGRADES: usize = 30;
    let options = Options::default()
        .max_connections(MAX)
        .handshake_timeout(Duration::from_millis(500))
        .retry_after(Duration::from_secs(3));
    let server = start(echo_app(options)).await;
    let mut bystander = Bystander::connect(&server).await;
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(tcp(server.addr).await);
    }
    bystander.round_trip().await;
    // Real upgrades, all at once, while the idle ones hold their sockets.
    let mut tasks = Vec::new();
    for _ in 0..UPGRADES {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut stream = tcp(addr).await;
            let response = upgrade_on(&mut stream, "/echo", "").await;
            (response, stream)
        }));
    }
    let mut admitted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (response, stream) = within("upgrade", task).await.unwrap();
        match response.status {
            101 => admitted.push(stream),
            503 => {
                assert_eq!(response.header("Retry-After"), Some("3"));
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", response.status_line),
        }
        bystander.round_trip().await;
    }
    assert!(started.elapsed() < Duration::from_millis(500), "the upgrades were served before any timeout");
    assert_eq!(admitted.len(), MAX - 1, "every free slot, and no more, despite {IDLE} idle sockets");
    assert_eq!(refused, UPGRADES - (MAX - 1));
    assert_eq!(server.app.stats().connections, MAX as u64);
    // The idle sockets are answered at the timeout.
    for stream in &mut idle {
        let response = HttpResponse::parse(&read_all(stream).await);
        assert_eq!(response.status, 408, "{}", response.status_line);
    }
    bystander.round_trip().await;
    // Admitted attackers leaving free their slots.
    drop(admitted);
    wait_until("slots freed", || server.app.stats().connections == 1).await;
    let mut late = within("room again", connect(&server.url("/echo"))).await.expect("a slot is free again");
    late.send("late").await.unwrap();
    assert_eq!(within("late echo", late.recv()).await.unwrap(), Some(Message::text("late")));
    let stats = server.app.stats();
    assert_eq!(stats.rejected_handshakes, (IDLE + refused) as u64);
    bystander.finish(UPGRADES).await;
}

/// Handshake garbage from many sockets at once, none of which ever reads
/// its answer: a TLS ClientHello on the plain port, a header line that
/// never ends, a head of a hundred fields, a NUL in a header. Each gets its
/// exact status and is closed; the bystander never stalls.
#[tokio::test]
async fn handshake_garbage_in_parallel_gets_exact_answers() {
    let server = start(echo_app(Options::default())).await;
    let mut bystander = Bystander::connect(&server).await;
    // Binary garbage (a TLS record header) that happens to end in a blank line.
    let tls_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a];
    let endless = format!("GET /echo HTTP/1.1\r\nX-Endless: {}", "a".repeat(64 * 1024));
    let hundred: String = (0..100).map(|i| format!("X-F{i}: v\r\n")).collect();
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (400, tls_hello.to_vec()),
        (431, endless.into_bytes()),
        (431, upgrade_request("/echo", &hundred).into_bytes()),
        (400, upgrade_request("/echo", "X-Nul: a\0b\r\n").into_bytes()),
    ];
    let mut streams = Vec::new();
    for round in 0..5 {
        for (status, bytes) in &cases {
            let mut stream = tcp(server.addr).await;
            // The server may answer before it read everything (431).
            let _ = stream.write_all(bytes).await;
            streams.push((*status, stream, round));
        }
        bystander.round_trip().await;
    }
    for (status, mut stream, round) in streams {
        let response = HttpResponse::parse(&read_all(&mut stream).await);
        assert_eq!(response.status, status, "round {round}: {}", response.status_line);
    }
    let stats = server.app.stats();
    assert_eq!(stats.rejected_handshakes, 20);
    assert_eq!(stats.total_connections, 1);
    bystander.finish(5).await;
}

// ----- messages -----------------------------------------------------------------

/// A message split into a million 1-byte fragments: the server holds at
/// most `max_message_size` of it and fails the connection with 1009 at the
/// fragment that passes it, long before the millionth.
#[tokio::test]
async fn a_million_one_byte_fragments_close_with_1009_at_the_message_limit() {
    const LIMIT: usize = 64 * 1024;
    const FRAGMENTS: usize = 1_000_000;
    const BATCH: usize = 8 * 1024;
    let app = echo_app(Options::default().max_message_size(LIMIT));
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tcp(server.addr).await;
    assert_eq!(upgrade_on(&mut stream, "/echo", "").await.status, 101);
    let (mut reader, mut writer) = stream.into_split();
    let read = tokio::spawn(async move { read_all(&mut reader).await });

    let fragment = frame(false, OP_CONT, b"x", Some(MASK));
    let mut sent = 0;
    let mut first = frame(false, OP_BINARY, b"x", Some(MASK));
    while sent < FRAGMENTS {
        let mut batch = std::mem::take(&mut first);
        let n = BATCH.min(FRAGMENTS - sent) - usize::from(sent == 0);
        for _ in 0..n {
            batch.extend_from_slice(&fragment);
        }
        if writer.write_all(&batch).await.is_err() {
            break;
        }
        sent += n + usize::from(sent == 0);
        // A message of up to `sent` bytes is being assembled meanwhile.
        bystander.round_trip().await;
    }
    let bytes = within("the close", read).await.unwrap();
    assert_eq!(final_close_code(&bytes), 1009);
    assert!(sent > LIMIT, "the server took {sent} fragments before closing");
    assert!(sent < FRAGMENTS / 2, "the server read far past the limit: {sent} fragments");
    assert_eq!(next_disconnect(&mut events).await, CloseCode::MESSAGE_TOO_BIG);
    assert_eq!(server.app.stats().connections, 1);
    bystander.finish(8).await;
}

/// A deflate bomb through the real stack: a raw client negotiates
/// permessage-deflate, then sends one small compressed frame (well under
/// the frame limit) that inflates far past `max_message_size`. Inflation
/// stops at the limit and the connection closes with 1009.
#[tokio::test]
async fn a_deflate_bomb_closes_with_1009() {
    const LIMIT: usize = 64 * 1024;
    let (app, mut ends) = reporting_app(Options::default().max_message_size(LIMIT));
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tcp(server.addr).await;
    let response = upgrade_on(&mut stream, "/report", "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Extensions"), Some("permessage-deflate"));

    // 16 MiB of zeros; the compressor works as a client does (RFC 7692).
    let config = DeflateConfig::default().with_level(9).unwrap();
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Client, &config);
    let mut bomb = bytes::BytesMut::new();
    assert!(compressor.compress(&vec![0u8; 16 << 20], &mut bomb).unwrap());
    assert!(bomb.len() < LIMIT / 2, "the bomb ({} bytes) passes the frame limit", bomb.len());
    let mut wire = frame(true, OP_BINARY, &bomb, Some(MASK));
    wire[0] |= 0x40; // RSV1: compressed
    // Sent in pieces, the bystander served in between.
    for piece in wire.chunks(wire.len() / 4 + 1) {
        stream.write_all(piece).await.unwrap();
        bystander.round_trip().await;
    }
    let bytes = read_all(&mut stream).await;
    assert_eq!(final_close_code(&bytes), 1009);
    let end = within("handler's end", ends.recv()).await.unwrap();
    assert!(
        matches!(end, Err(Error::Closed(CloseReason::Protocol(ProtocolError::MessageTooBig { limit: LIMIT })))),
        "{end:?}"
    );
    assert_eq!(next_disconnect(&mut events).await, CloseCode::MESSAGE_TOO_BIG);
    bystander.finish(4).await;
}

/// Large messages pipelined at a handler that is busy (not calling `recv`):
/// the server stops reading once about one maximal message waits for the
/// handler, so TCP holds the rest back in the peer's buffers instead of the
/// server queueing them. When the handler reads again, everything arrives.
#[tokio::test]
async fn large_messages_at_a_busy_handler_are_held_back_by_tcp() {
    const MESSAGE: usize = 1 << 20;
    const COUNT: usize = 24;
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let (tx, mut done) = mpsc::unbounded_channel();
    let app = echo_app(Options::default());
    app.ws("/busy", move |mut ws, _req| {
        let (mut go, tx) = (go_rx.clone(), tx.clone());
        async move {
            go.wait_for(|&go| go).await.unwrap();
            let mut received = 0;
            while let Some(message) = ws.recv().await? {
                assert_eq!(message.len(), MESSAGE);
                received += 1;
                if received == COUNT {
                    break;
                }
            }
            let _ = tx.send(received);
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tcp(server.addr).await;
    assert_eq!(upgrade_on(&mut stream, "/busy", "").await.status, 101);
    let before = server.app.stats().bytes_received;
    let message = frame(true, OP_BINARY, &vec![9u8; MESSAGE], Some(MASK));
    let writer = tokio::spawn(async move {
        for _ in 0..COUNT {
            stream.write_all(&message).await.unwrap();
        }
        stream
    });
    // Let the server take all it will while the handler is busy.
    let mut read = 0;
    loop {
        bystander.round_trip().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // (The bystander's own round trips add a few bytes each time.)
        let now = server.app.stats().bytes_received - before;
        if now < read + 1024 {
            break;
        }
        read = now;
    }
    // One message waiting (the 1 MiB budget), one more being assembled,
    // and what one read brought in on top.
    let bound = 2 * (MESSAGE + 14) + 64 * 1024;
    assert!(read as usize <= bound, "the server read {read} bytes for a handler that reads nothing");
    assert!(!writer.is_finished(), "TCP holds the rest back");
    go_tx.send(true).unwrap();
    assert_eq!(within("the handler reads everything", done.recv()).await, Some(COUNT));
    let _stream = within("the writer finishes", writer).await.unwrap();
    bystander.finish(2).await;
}

// ----- control frames -----------------------------------------------------------

/// A ping flood from a peer that never reads: every ping is answered in
/// principle, but unsent pongs are replaced by the newest (RFC 6455 §5.5.3
/// allows answering only the latest), so the server's queue for this peer
/// stays bounded however long the flood lasts.
#[tokio::test]
async fn ping_flood_from_a_peer_that_never_reads_keeps_server_memory_bounded() {
    const PINGS: usize = 60_000;
    const BATCH: usize = 1_000;
    let seen = Arc::new(AtomicUsize::new(0));
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let app = echo_app(Options::default());
    let (seen_in, max_in) = (Arc::clone(&seen), Arc::clone(&max_buffered));
    app.ws("/pings", move |mut ws, _req| {
        let (seen, max) = (Arc::clone(&seen_in), Arc::clone(&max_in));
        async move {
            while let Some(event) = ws.recv_event().await? {
                if let nextrush_tokio::Event::Ping(_) = event {
                    seen.fetch_add(1, Ordering::SeqCst);
                    max.fetch_max(ws.metadata().buffered, Ordering::SeqCst);
                }
            }
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tiny_window(server.addr).await;
    assert_eq!(upgrade_on(&mut stream, "/pings", "").await.status, 101);
    let ping = masked(OP_PING, &[b'p'; 125]);
    let batch: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * BATCH).collect();
    for _ in 0..PINGS / BATCH {
        within("the server keeps reading pings", stream.write_all(&batch)).await.unwrap();
        bystander.round_trip().await;
    }
    wait_until("every ping seen", || seen.load(Ordering::SeqCst) == PINGS).await;
    // Our pongs are ~129 bytes on the wire: at most the 4 KiB control cap
    // queued in the protocol plus as much again taken for the socket.
    let max = max_buffered.load(Ordering::SeqCst);
    assert!(max <= 2 * (4096 + 2 * 129), "the server queued {max} bytes for a peer that never reads");
    // Now read: pongs (far fewer than pings), then the echo of our Close.
    stream.write_all(&masked_close(1000)).await.unwrap();
    let frames = parse_frames(&read_all(&mut stream).await);
    let pongs = frames.iter().filter(|(b, _)| b & 0x0f == OP_PONG).count();
    assert!(pongs < PINGS / 2, "{pongs} pongs for {PINGS} pings: unsent pongs were not replaced");
    assert!(pongs > 0);
    let (last, body) = frames.last().unwrap();
    assert_eq!((last & 0x0f, &body[..]), (OP_CLOSE, &1000u16.to_be_bytes()[..]));
    bystander.finish(PINGS / BATCH).await;
}

// ----- dead, vanishing and deaf peers --------------------------------------------

/// A peer that resets the connection (RST, via `SO_LINGER 0`) in the middle
/// of a message, and one that half-closes (FIN) in the middle of one: the
/// handler sees the abnormal end as an error, the connection is cleaned up
/// and counted, and the partial message is dropped.
#[tokio::test]
async fn reset_or_half_close_mid_message_is_cleaned_up() {
    let (app, mut ends) = reporting_app(Options::default());
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    for reset in [true, false] {
        let mut stream = tcp(server.addr).await;
        assert_eq!(upgrade_on(&mut stream, "/report", "").await.status, 101);
        wait_until("attacker counted", || server.app.stats().connections == 2).await;
        // Half of a 1000-byte frame.
        let whole = frame(true, OP_BINARY, &[7u8; 1000], Some(MASK));
        let received = server.app.stats().bytes_received;
        stream.write_all(&whole[..500]).await.unwrap();
        wait_until("half a frame read", || server.app.stats().bytes_received >= received + 500).await;
        bystander.round_trip().await;
        if reset {
            stream.set_zero_linger().unwrap();
            drop(stream);
        } else {
            stream.shutdown().await.unwrap();
            // Nothing comes back: no close frame for a peer that left.
            assert_eq!(read_all(&mut stream).await, b"");
        }
        let end = within("handler's end", ends.recv()).await.unwrap();
        assert!(matches!(end, Err(Error::Closed(CloseReason::Eof))), "reset {reset}: {end:?}");
        assert_eq!(next_disconnect(&mut events).await, CloseCode::ABNORMAL);
        wait_until("cleaned up", || server.app.stats().connections == 1).await;
        bystander.round_trip().await;
    }
    bystander.finish(5).await;
    wait_until("no connection left", || server.app.stats().connections == 0).await;
    assert_eq!(server.app.stats().total_connections, 3);
}

/// A client that never reads while the handler keeps sending: `send` waits
/// once the outbound queue is over its bound (so the server holds at most
/// that, plus what the kernel takes), the peer cannot answer the keep-alive
/// ping it never reads, and is dropped as dead at the pong timeout even
/// though its queue can never be flushed.
#[tokio::test]
async fn a_client_that_never_reads_is_bounded_then_dropped_as_dead() {
    const QUEUE: usize = 64 * 1024;
    const MESSAGE: usize = 16 * 1024;
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let (tx, mut ends) = mpsc::unbounded_channel();
    let options = Options::default()
        .outbound_queue(QUEUE, SlowConsumer::Wait)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200));
    let app = echo_app(options);
    let max_in = Arc::clone(&max_buffered);
    app.ws("/firehose", move |ws, _req| {
        let (max, tx) = (Arc::clone(&max_in), tx.clone());
        async move {
            let mut sent = 0usize;
            let end = loop {
                if let Err(e) = ws.send(Message::binary(vec![1u8; MESSAGE])).await {
                    break e;
                }
                sent += 1;
                max.fetch_max(ws.metadata().buffered, Ordering::SeqCst);
            };
            let _ = tx.send((sent, end));
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tiny_window(server.addr).await;
    let started = Instant::now();
    assert_eq!(upgrade_on(&mut stream, "/firehose", "").await.status, 101);
    let (sent, end) = within("the handler's send fails", async {
        loop {
            bystander.round_trip().await;
            if let Ok(report) = ends.try_recv() {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(matches!(end, Error::Closed(CloseReason::TimedOut(Timer::Pong))), "{end:?}");
    assert!(sent > QUEUE / MESSAGE, "only {sent} messages went out before the queue filled");
    let max = max_buffered.load(Ordering::SeqCst);
    assert!(max <= QUEUE + MESSAGE + 14, "{max} bytes queued with a {QUEUE}-byte bound");
    assert_eq!(next_disconnect(&mut events).await, CloseCode::ABNORMAL);
    wait_until("dead peer dropped", || server.app.stats().connections == 1).await;
    assert!(started.elapsed() < Duration::from_secs(3), "dropped after {:?}", started.elapsed());
    assert_eq!(server.app.stats().dead_peers, 1);
    drop(stream);
    bystander.finish(5).await;
}

/// A peer that neither answers our Close nor reads anything, while more is
/// queued for it than it will ever take: the close handshake times out at
/// the close timeout, the driver gives the output one more close timeout
/// to drain, then drops the connection with its unsendable output, and the
/// handler's `close` returns.
#[tokio::test]
async fn a_peer_that_never_answers_our_close_is_dropped_at_the_close_timeout() {
    let close_timeout = Duration::from_millis(300);
    let (tx, mut closed) = mpsc::unbounded_channel();
    let app = echo_app(Options::default().close_timeout(close_timeout).ping_interval(None));
    app.ws("/closer", move |ws, _req| {
        let tx = tx.clone();
        async move {
            // Fill the kernel's buffers, then the outbound queue (1 MiB by
            // default): until nothing more is written.
            loop {
                while ws.try_send(Message::binary(vec![2u8; 32 * 1024])).is_ok() {}
                let written = ws.metadata().bytes_out;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if ws.metadata().bytes_out == written {
                    break;
                }
            }
            let buffered = ws.metadata().buffered;
            let started = Instant::now();
            ws.close(CloseCode::NORMAL, "bye").await?;
            let _ = tx.send((buffered, started.elapsed(), ws.close_reason()));
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut bystander = Bystander::connect(&server).await;
    let mut stream = tiny_window(server.addr).await;
    assert_eq!(upgrade_on(&mut stream, "/closer", "").await.status, 101);
    let (buffered, took, reason) = within("the handler's close returns", async {
        loop {
            bystander.round_trip().await;
            if let Ok(report) = closed.try_recv() {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(buffered > 512 * 1024, "only {buffered} bytes were queued");
    assert!(took >= close_timeout * 2 && took < close_timeout * 5, "close returned after {took:?}");
    assert_eq!(reason, Some(CloseReason::TimedOut(Timer::Close)));
    assert_eq!(next_disconnect(&mut events).await, CloseCode::ABNORMAL);
    wait_until("dropped", || server.app.stats().connections == 1).await;
    drop(stream);
    bystander.finish(3).await;
}
