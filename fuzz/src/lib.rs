//! The bodies of the fuzz targets, as plain functions over bytes.
//!
//! Every target reads its input the same way: a few leading bytes choose
//! settings and how to cut the rest into chunks, and the rest is what a
//! hostile peer sends. So a seed can be a real handshake or real frames with
//! one or two bytes in front (see `fuzz/corpus/*` and `fuzz/README.md`).
//!
//! Each function panics when an invariant breaks; libFuzzer reports the
//! panic (and the input) as a crash.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nextrush_proto::deflate::{Decompressor, DeflateConfig, DeflateParams, WindowBits};
use nextrush_proto::frame::{FrameHead, MAX_HEAD_LEN};
use nextrush_proto::handshake::{
    ClientConfig, ClientHandshake, ClientHandshakeError, HandshakeLimits, ServerHandshake, ServerPolicy,
    accept_response,
};
use nextrush_proto::{
    CloseCode, CloseReason, Config, Connection, Event, Message, MessageKind, RateLimit, RateLimitAction, Role, Router,
    SeededEntropy,
};

/// Reads the fuzzer's bytes front to back; past the end every read is empty.
#[derive(Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte, or 0 when the input is used up.
    pub fn byte(&mut self) -> u8 {
        self.next_byte().unwrap_or(0)
    }

    /// The next byte, or `None` when the input is used up.
    pub fn next_byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Cuts `data` into chunks whose sizes come from a small generator seeded
/// with `seed`: seed 0 feeds one byte at a time, other seeds mix sizes from
/// 1 byte to 4 KiB.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = match (seed, state % 4) {
            (0, _) => 1,
            (_, 0) => 1 + (state >> 8) as usize % 3,
            (_, 1) => 1 + (state >> 8) as usize % 64,
            (_, 2) => 1 + (state >> 8) as usize % 512,
            _ => 1 + (state >> 8) as usize % 4096,
        };
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

// ----- server handshake -------------------------------------------------------

/// `ServerHandshake::receive` fed in chunks, then everything the server does
/// with a request that passed: routing, policy, deflate negotiation, the 101.
///
/// Input: `[chunk seed] [limit byte] request bytes...`.
pub fn server_handshake(data: &[u8]) {
    let mut input = Cursor::new(data);
    let seed = input.byte();
    let limit_byte = input.byte();
    let bytes = input.rest();
    let mut limits = HandshakeLimits::default();
    // 64 B to 8 KiB: small limits reach the 431 paths quickly.
    limits.max_head_bytes = 64 + usize::from(limit_byte) * 32;
    limits.max_headers = 1 + usize::from(limit_byte % 64);
    let max_head = limits.max_head_bytes;
    let now = Instant::now();
    let mut handshake = ServerHandshake::new(limits, now);
    let mut fed = 0;
    for chunk in chunks(bytes, seed) {
        let result = handshake.receive(chunk);
        fed += chunk.len();
        assert!(handshake.buffered() <= max_head, "buffered {} > {max_head}", handshake.buffered());
        match result {
            Ok(None) => {}
            Ok(Some(incoming)) => {
                // The leftover is exactly what followed the head in this chunk.
                let head_len = fed - incoming.leftover.len();
                assert!(head_len <= max_head, "a head of {head_len} bytes passed a {max_head} limit");
                assert_eq!(&bytes[head_len..fed], &incoming.leftover[..]);
                after_request(&incoming.request);
                assert!(matches!(handshake.receive(b"x"), Err(nextrush_proto::HandshakeError::AlreadyComplete)));
                return;
            }
            Err(error) => {
                let response = error.rejection().to_bytes();
                assert!(response.starts_with(b"HTTP/1.1 4") || response.starts_with(b"HTTP/1.1 5"));
                // Failed for good: the same error again, whatever comes next.
                assert_eq!(handshake.receive(chunk).unwrap_err(), error);
                assert_eq!(handshake.handle_timeout(now + Duration::from_secs(60)).unwrap_err(), error);
                assert_eq!(handshake.buffered(), 0);
                return;
            }
        }
    }
    // Incomplete: EOF and the deadline both fail it.
    if handshake.handle_timeout(now + Duration::from_secs(11)).is_ok() {
        panic!("an incomplete handshake survived its deadline");
    }
    assert!(handshake.receive_eof().is_err());
}

/// What the server does with a valid request before answering it.
fn after_request(request: &nextrush_proto::Request) {
    let mut router = Router::new();
    for pattern in ["/", "/chat/:room", "/files/*rest", "/a/:b/c/:d"] {
        router.add(pattern, ()).expect("valid pattern");
    }
    if let Some((_, params)) = router.find(request.path()) {
        for (name, value) in params.iter() {
            assert!(!name.is_empty());
            let _ = value.len();
        }
    }
    for (name, value) in request.query_pairs() {
        let _ = (name.len(), value.len());
    }
    let _ = (request.host(), request.origin(), request.key(), request.query());
    let mut policy = ServerPolicy::default();
    policy.allow_origins = Some(vec!["https://good.example".into()]);
    policy.protocols = vec!["chat.v2".into(), "chat.v1".into()];
    let protocol = policy.decide(request, 0).ok().flatten();
    if let Some(p) = &protocol {
        assert!(request.subprotocols().contains(p));
    }
    let extensions = nextrush_proto::deflate::negotiate_request(request, &DeflateConfig::default());
    let mut out = Vec::new();
    let extension_header = extensions.as_ref().map(|(_, header)| header.as_str());
    accept_response(request, protocol.as_deref(), extension_header, &http::HeaderMap::new(), &mut out)
        .expect("a negotiated answer is always valid");
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    assert!(out.ends_with(b"\r\n\r\n"));
}

// ----- client handshake -------------------------------------------------------

/// The seed of the client's entropy: its `Sec-WebSocket-Key` is always the
/// same, so a seed 101 can carry the matching accept value (see
/// `client_key` and `make_corpus.py`).
const CLIENT_SEED: u64 = 7;

/// The `Sec-WebSocket-Key` the fuzzed client sends (for writing seeds).
#[must_use]
pub fn client_key() -> String {
    ClientHandshake::new(client_config(), &mut SeededEntropy::new(CLIENT_SEED), Instant::now()).key().to_owned()
}

fn client_config() -> ClientConfig {
    let mut limits = HandshakeLimits::default();
    limits.max_head_bytes = 2048;
    limits.max_headers = 32;
    limits.max_body_bytes = 256;
    ClientConfig::builder("ws://example.com/chat")
        .subprotocols(["chat.v1", "chat.v2"])
        .extensions(nextrush_proto::deflate::client_offer(&DeflateConfig::default()))
        .limits(limits)
        .build()
        .expect("valid client config")
}

/// `ClientHandshake::receive` fed a server's answer in chunks; a 101 goes on
/// to the extension check.
///
/// Input: `[chunk seed] response bytes...`.
pub fn client_handshake(data: &[u8]) {
    let mut input = Cursor::new(data);
    let seed = input.byte();
    let bytes = input.rest();
    let now = Instant::now();
    let config = client_config();
    let max_body = config.limits().max_body_bytes;
    let max_head = config.limits().max_head_bytes;
    let mut handshake = ClientHandshake::new(config, &mut SeededEntropy::new(CLIENT_SEED), now);
    let mut fed = 0;
    for chunk in chunks(bytes, seed) {
        let result = handshake.receive(chunk);
        fed += chunk.len();
        match result {
            Ok(None) => {}
            Ok(Some(response)) => {
                let head_len = fed - response.leftover.len();
                assert!(head_len <= max_head);
                assert_eq!(&bytes[head_len..fed], &response.leftover[..]);
                if let Some(p) = &response.subprotocol {
                    assert!(p == "chat.v1" || p == "chat.v2");
                }
                let _ = nextrush_proto::deflate::accept_client_response(
                    response.extension_headers(),
                    &DeflateConfig::default(),
                );
                assert_eq!(handshake.receive(b"x").unwrap_err(), ClientHandshakeError::AlreadyComplete);
                return;
            }
            Err(error) => {
                if let ClientHandshakeError::Rejected(r) = &error {
                    assert!(r.body.len() <= max_body, "kept {} body bytes", r.body.len());
                    assert_ne!(r.status, http::StatusCode::SWITCHING_PROTOCOLS);
                }
                assert_eq!(handshake.receive(chunk).unwrap_err(), error);
                assert_eq!(handshake.receive_eof().unwrap_err(), error);
                return;
            }
        }
    }
    // Incomplete (or a refusal whose body is still arriving).
    match handshake.handle_timeout(now + Duration::from_secs(11)) {
        Err(ClientHandshakeError::TimedOut) => {}
        Err(ClientHandshakeError::Rejected(r)) => assert!(r.body.len() <= max_body),
        other => panic!("an incomplete handshake survived its deadline: {other:?}"),
    }
}

// ----- connection -------------------------------------------------------------

/// The deflate parameters a flag value stands for.
fn deflate_params(variant: u8) -> DeflateParams {
    let bits = |b| WindowBits::new(b);
    match variant % 4 {
        0 => DeflateParams::default(),
        1 => DeflateParams { server_no_context_takeover: true, client_no_context_takeover: true, ..Default::default() },
        2 => DeflateParams { server_max_window_bits: bits(9), client_max_window_bits: bits(8), ..Default::default() },
        _ => DeflateParams {
            server_no_context_takeover: true,
            server_max_window_bits: bits(12),
            client_max_window_bits: bits(10),
            ..Default::default()
        },
    }
}

/// Control bytes queued beyond which the connection drops unsent pongs
/// (`MAX_QUEUED_CONTROL` in the connection), plus room for one pong, one
/// keep-alive ping and one Close.
const CONTROL_BOUND: usize = 4096 + 3 * (125 + MAX_HEAD_LEN);

/// A connection in `role` fed arbitrary bytes in arbitrary chunks, with
/// commands and timeouts in between.
///
/// Input: `[flags]` then operations, each an opcode byte and its arguments
/// (see the match below). Checked after every step: no panic; buffered input
/// at most one frame (limit + head); control frames queued for a peer that
/// never reads stay bounded; events are well-formed, `Closed` comes at most
/// once and nothing after it; everything we transmit is valid for a peer of
/// the other role (fed to one, it never reports a protocol error).
pub fn connection(role: Role, data: &[u8]) {
    let mut input = Cursor::new(data);
    let flags = input.byte();
    let small = flags & 1 != 0;
    let (max_frame, max_message) = if small { (256, 1024) } else { (64 * 1024, 128 * 1024) };
    let mut config = Config::default()
        .max_frame_size(max_frame)
        .max_message_size(max_message)
        .auto_pong(flags & 4 == 0)
        .pong_timeout(Duration::from_millis(50))
        .close_timeout(Duration::from_millis(80));
    if flags & 2 != 0 {
        config = config.ping_interval(Some(Duration::from_millis(100)));
    }
    if flags & 8 != 0 {
        let action = if flags & 16 != 0 { RateLimitAction::Close } else { RateLimitAction::Drop };
        config = config.rate_limit(Some(RateLimit { messages: 3, window: Duration::from_millis(100), action }));
    }
    let start = Instant::now();
    let mut now = start;
    let mut conn = new_connection(role, config, now);
    let mut peer = new_connection(role.peer(), Config::default().max_message_size(1 << 22), now);
    if flags & 32 != 0 {
        let params = deflate_params(flags >> 6);
        conn.enable_deflate(&params, &DeflateConfig::default());
        peer.enable_deflate(&params, &DeflateConfig::default());
    }
    let mut check = Checker { max_frame, max_message, role, closed: false, sent_since_drain: false };
    let mut out = Vec::new();
    while let Some(op) = input.next_byte() {
        match op % 13 {
            0 => {
                let n = usize::from(input.byte()) + 1;
                conn.receive(now, input.take(n));
            }
            1 => {
                let n = usize::from(input.byte()) + 1;
                conn.receive_owned(now, BytesMut::from(input.take(n)));
            }
            2 => {
                let n = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
                conn.receive(now, input.take(n));
            }
            3 => {
                now += Duration::from_millis(u64::from(input.byte()) * 2);
                conn.handle_timeout(now);
            }
            4 => {
                if let Some(at) = conn.poll_timeout() {
                    assert!(!conn.is_closed());
                    now = now.max(at);
                    conn.handle_timeout(now);
                }
            }
            5 => {
                let len = usize::from(input.byte()) * (1 + usize::from(op >> 4));
                let message = if op & 0x10 != 0 { Message::text(text(len)) } else { Message::binary(text(len)) };
                check.sent(conn.send(now, message));
            }
            6 => {
                let kind = if op & 0x10 != 0 { MessageKind::Text } else { MessageKind::Binary };
                let data = Bytes::from(text(usize::from(input.byte())));
                check.sent(conn.send_fragment(now, kind, data, op & 0x20 != 0));
            }
            7 => {
                let n = usize::from(input.byte() % 130);
                check.sent(conn.ping(now, Bytes::from(text(n))));
            }
            8 => {
                let n = usize::from(input.byte() % 130);
                check.sent(conn.pong(now, Bytes::from(text(n))));
            }
            9 => {
                let code = CloseCode(u16::from_le_bytes([input.byte(), input.byte()]));
                let reason = text(usize::from(input.byte() % 130));
                check.sent(conn.close(now, code, &reason));
            }
            10 => conn.receive_eof(now),
            11 => check.transmit(&mut conn, &mut peer, &mut out, now),
            _ => {
                // A pre-encoded broadcast frame: valid for a server only.
                check.sent(conn.send_encoded(now, &[0x81, 0x02, b'h', b'i']));
            }
        }
        check.after_step(&mut conn);
    }
    check.transmit(&mut conn, &mut peer, &mut out, now);
    conn.receive_eof(now);
    check.after_step(&mut conn);
    assert!(check.closed, "EOF always ends the connection");
    assert!(conn.poll_timeout().is_none());
    assert!(conn.send(now, Message::text("late")).is_err());
}

fn new_connection(role: Role, config: Config, now: Instant) -> Connection {
    match role {
        Role::Server => Connection::server(config, now),
        Role::Client => Connection::client(config, now, Box::new(SeededEntropy::new(1))),
    }
    .expect("valid config")
}

/// ASCII text of `len` bytes (valid UTF-8, and compressible).
fn text(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 7) as u8)).collect()
}

/// The invariants, checked between steps.
struct Checker {
    max_frame: usize,
    max_message: usize,
    role: Role,
    closed: bool,
    /// Commands queued frames since the output was last taken.
    sent_since_drain: bool,
}

impl Checker {
    fn sent<E>(&mut self, result: Result<(), E>) {
        if result.is_ok() {
            assert!(!self.closed, "a command succeeded after Closed");
            self.sent_since_drain = true;
        }
    }

    fn after_step(&mut self, conn: &mut Connection) {
        // At most one frame is ever held: its head and up to the frame limit
        // (control frames: 125 bytes).
        let bound = self.max_frame.max(125) + MAX_HEAD_LEN;
        assert!(conn.buffered_input() <= bound, "buffered input {} > {bound}", conn.buffered_input());
        if !self.sent_since_drain {
            // Only pongs, a keep-alive ping and a Close can have been queued
            // by the connection itself: a ping flood must not grow this.
            assert!(conn.buffered_amount() <= CONTROL_BOUND, "{} bytes queued", conn.buffered_amount());
        }
        while let Some(event) = conn.poll_event() {
            assert!(!self.closed, "event {event:?} after Closed");
            match event {
                Event::Message(Message::Text(text)) => {
                    assert!(text.len() <= self.max_message);
                    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                }
                Event::Message(Message::Binary(data)) => assert!(data.len() <= self.max_message),
                Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
                Event::Closed(_) => {
                    assert!(conn.is_closed());
                    assert_eq!(conn.buffered_input(), 0);
                    self.closed = true;
                }
                _ => {}
            }
        }
        assert_eq!(conn.is_closed(), self.closed, "is_closed and the Closed event disagree");
    }

    /// Takes the output, checks every frame head, and feeds it to the peer.
    fn transmit(&mut self, conn: &mut Connection, peer: &mut Connection, out: &mut Vec<u8>, now: Instant) {
        out.clear();
        let n = conn.poll_transmit(out);
        assert_eq!(n, out.len());
        assert_eq!(conn.buffered_amount(), 0);
        self.sent_since_drain = false;
        let mut rest = &out[..];
        while !rest.is_empty() {
            let (head, head_len) = FrameHead::decode(rest).expect("valid head").expect("complete head");
            assert_eq!(head.mask.is_some(), self.role == Role::Client, "masking matches the role");
            let len = usize::try_from(head.len).expect("length fits");
            assert!(rest.len() >= head_len + len, "truncated frame in the output");
            rest = &rest[head_len + len..];
        }
        peer.receive(now, out);
        while let Some(event) = peer.poll_event() {
            if let Event::Closed(CloseReason::Protocol(error)) = event {
                panic!("the peer rejected our output: {error}");
            }
        }
    }
}

// ----- inflate ----------------------------------------------------------------

/// `Decompressor::decompress` with a small `max_total`: output never passes
/// it, and neither does the buffer's capacity.
///
/// Input: `[params] [limit lo] [limit hi]` then frames, each
/// `[len | fin << 7]` and `len * 4` bytes of compressed payload (a length of
/// 0 means the rest of the input).
pub fn inflate(data: &[u8]) {
    let mut input = Cursor::new(data);
    let flags = input.byte();
    let max_total = usize::from(u16::from_le_bytes([input.byte(), input.byte()]) % 8192);
    let role = if flags & 4 != 0 { Role::Client } else { Role::Server };
    let mut inflater = Decompressor::new(&deflate_params(flags), role);
    let mut out = BytesMut::new();
    while let Some(frame) = input.next_byte() {
        let fin = frame & 0x80 != 0;
        let payload = match usize::from(frame & 0x7f) * 4 {
            0 => input.rest(),
            n => input.take(n),
        };
        let result = inflater.decompress(payload, fin, &mut out, max_total);
        assert!(out.len() <= max_total, "{} bytes out with max_total {max_total}", out.len());
        assert!(out.capacity() <= max_total.max(64), "capacity {} with max_total {max_total}", out.capacity());
        match result {
            Ok(()) if fin => {
                assert!(!inflater.in_message());
                out = BytesMut::new();
                if flags & 8 != 0 {
                    inflater.release();
                }
            }
            Ok(()) => assert!(inflater.in_message()),
            Err(error) => {
                assert!(matches!(error.close_code(), CloseCode::MESSAGE_TOO_BIG | CloseCode::PROTOCOL_ERROR));
                assert!(!inflater.in_message());
                out = BytesMut::new();
            }
        }
    }
}
