//! Helpers shared by the loopback tests: servers on 127.0.0.1:0, a raw HTTP
//! and frame client over `tokio::net::TcpStream`, event collection, a seeded
//! generator. Every await that could hang is bounded by [`within`].
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use nextrush_tokio::{App, Error, Message, Options, Request, ServerEvent, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The bound on any single wait: generous, so only a bug reaches it.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test (instead of hanging) after [`LIMIT`].
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A server serving on a loopback port in a background task.
pub(crate) struct Server {
    pub(crate) app: App,
    pub(crate) addr: SocketAddr,
    pub(crate) serve: JoinHandle<Result<(), Error>>,
}

impl Server {
    /// `ws://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

/// Serves `app` on a fresh loopback port.
pub(crate) async fn start(app: App) -> Server {
    start_on(app, "127.0.0.1:0").await
}

/// Serves `app` on `addr`.
pub(crate) async fn start_on(app: App, addr: &str) -> Server {
    let listener = app.bind(addr).await.expect("bind");
    let addr = listener.0.local_addr().expect("local addr");
    let server = app.clone();
    let serve = tokio::spawn(async move { server.serve(listener).await });
    Server { app, addr, serve }
}

/// Echoes every message back.
pub(crate) async fn echo(mut ws: WebSocket, _req: Request) -> Result<(), Error> {
    while let Some(msg) = ws.recv().await? {
        ws.send(msg).await?;
    }
    Ok(())
}

/// An app with an echo route at `/echo`.
pub(crate) fn echo_app(options: Options) -> App {
    let app = App::new(options);
    app.ws("/echo", echo).expect("route");
    app
}

/// Every server event, in order, on a channel.
pub(crate) fn collect_events(app: &App) -> mpsc::UnboundedReceiver<ServerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    app.on_event(move |event| {
        let _ = tx.send(event.clone());
    });
    rx
}

/// The next event `pick` accepts, skipping the others.
pub(crate) async fn wait_event<T>(
    rx: &mut mpsc::UnboundedReceiver<ServerEvent>,
    what: &str,
    mut pick: impl FnMut(&ServerEvent) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            let event = rx.recv().await.expect("event channel open");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
}

/// Waits until `cond` holds, checking every few milliseconds (for counters
/// that have no event of their own).
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

// ----- raw HTTP -------------------------------------------------------------

/// The RFC 6455 §1.3 sample key and its accept value.
pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(crate) const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request for `path`, with `extra` header lines
/// (each ending in `\r\n`) before the blank line.
pub(crate) fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status_line: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Bytes of the head, blank line included.
    pub(crate) head_len: usize,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let end = find(bytes, b"\r\n\r\n").unwrap_or_else(|| panic!("no complete head in {:?}", text(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("head is text");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers =
            lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
        Self { status_line, status, headers, body: bytes[end + 4..].to_vec(), head_len: end + 4 }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Connects to `addr` over plain TCP.
pub(crate) async fn tcp(addr: SocketAddr) -> TcpStream {
    within("tcp connect", TcpStream::connect(addr)).await.expect("tcp connect")
}

/// Reads until the peer closes. A reset after some bytes arrived ends the
/// read too (a server that rejects before reading all we sent may reset).
pub(crate) async fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    within("EOF from the server", async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => break,
                Err(e) => panic!("read failed: {e} after {:?}", text(&out)),
            }
        }
    })
    .await;
    out
}

/// Sends `request` on a new connection and reads the whole answer (the
/// server closes after a rejection).
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = tcp(addr).await;
    // The server may reject before it read everything (431): a failed write
    // is fine as long as the answer arrives.
    let _ = stream.write_all(request).await;
    HttpResponse::parse(&read_to_eof(&mut stream).await)
}

/// Performs the opening handshake by hand, asserting a 101. Reads the head
/// byte by byte, so the server's first frames stay unread in the stream.
pub(crate) async fn raw_upgrade(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, HttpResponse) {
    let mut stream = tcp(addr).await;
    stream.write_all(upgrade_request(path, extra).as_bytes()).await.expect("write request");
    let mut got = Vec::new();
    within("101 response", async {
        while !got.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.unwrap_or_else(|e| panic!("{e} during the handshake: {:?}", text(&got)));
            got.push(byte);
        }
    })
    .await;
    let response = HttpResponse::parse(&got);
    assert_eq!(response.status, 101, "{}", response.status_line);
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    (stream, response)
}

// ----- raw frames -----------------------------------------------------------

pub(crate) const OP_CONT: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// One frame, masked with `mask` if given.
pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | u8::try_from(n).unwrap()),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A final frame masked as a client must.
pub(crate) fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A masked Close with `code`.
pub(crate) fn masked_close(code: u16) -> Vec<u8> {
    masked(OP_CLOSE, &code.to_be_bytes())
}

/// The unmasked Close a server sends with `code` and no reason.
pub(crate) fn server_close(code: u16) -> Vec<u8> {
    frame(true, OP_CLOSE, &code.to_be_bytes(), None)
}

/// Splits unmasked server frames into (first byte, payload).
pub(crate) fn parse_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame head");
        assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
        let (len, head) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(), 10),
            n => (usize::from(n), 2),
        };
        assert!(bytes.len() >= head + len, "truncated frame payload");
        frames.push((bytes[0], bytes[head..head + len].to_vec()));
        bytes = &bytes[head + len..];
    }
    frames
}

// ----- determinism ------------------------------------------------------------

/// A tiny seeded generator (Knuth's MMIX LCG), for reproducible "random"
/// choices.
#[derive(Clone, Debug)]
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Uniform-ish in `0..n`.
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n.max(1)
    }
}

/// Asserts `got == expected` with a short description on failure (these
/// messages can be tens of kilobytes).
#[track_caller]
pub(crate) fn assert_same(got: &Message, expected: &Message, context: &str) {
    if got != expected {
        panic!("{context}: got {}, expected {}", describe(got), describe(expected));
    }
}

/// Kind, length and the first bytes of a message.
pub(crate) fn describe(message: &Message) -> String {
    let payload = message.payload();
    let kind = if message.is_text() { "text" } else { "binary" };
    format!("{kind} of {} bytes starting {:02x?}", payload.len(), &payload[..payload.len().min(12)])
}

/// A recognisable message: text or binary, of a length and content drawn
/// from (`stream`, `i`), so a receiver can rebuild exactly what it expects.
pub(crate) fn numbered(stream: u64, i: u32) -> Message {
    let mut rng = Lcg(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(i));
    rng.next_u32();
    let len = match rng.below(10) {
        0 => 0,
        1..=6 => rng.below(200),
        7 | 8 => rng.below(4_000),
        _ => rng.below(40_000),
    } as usize;
    if i.is_multiple_of(3) {
        let mut s = format!("{stream}/{i}:");
        while s.len() < len {
            s.push(['a', 'b', 'é', '✓', ' ', '7'][rng.below(6) as usize]);
        }
        Message::text(s)
    } else {
        let mut v = i.to_le_bytes().to_vec();
        v.extend((0..len).map(|_| rng.next_u32() as u8));
        Message::binary(v)
    }
}
