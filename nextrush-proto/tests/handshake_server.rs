//! Server opening handshake (RFC 6455 §4.2): real client requests, every
//! rejection path, limits, leftover bytes, timeouts, responses, policy.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use nextrush_proto::handshake::{
    AcceptError, HandshakeError, HandshakeLimits, Incoming, Rejection, Request, ServerHandshake, ServerPolicy,
    accept_key, accept_response,
};
use proptest::prelude::*;

const FIXTURES: [(&str, &[u8]); 5] = [
    ("chromium", include_bytes!("fixtures/chromium.http")),
    ("firefox", include_bytes!("fixtures/firefox.http")),
    ("curl", include_bytes!("fixtures/curl.http")),
    ("node_ws", include_bytes!("fixtures/node_ws.http")),
    ("python_websockets", include_bytes!("fixtures/python_websockets.http")),
];

/// The client handshake of RFC 6455 §1.2.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn server() -> ServerHandshake {
    ServerHandshake::new(HandshakeLimits::default(), Instant::now())
}

fn feed_whole(bytes: &[u8]) -> Result<Option<Incoming>, HandshakeError> {
    server().receive(bytes)
}

/// Feeds one byte at a time, up to the first call that does not return
/// `Ok(None)`.
fn feed_bytewise(bytes: &[u8]) -> Result<Option<Incoming>, HandshakeError> {
    let mut hs = server();
    for (i, b) in bytes.iter().enumerate() {
        match hs.receive(std::slice::from_ref(b)) {
            Ok(None) => {}
            Ok(Some(incoming)) => {
                assert_eq!(i + 1, bytes.len(), "completed before the end of the head");
                return Ok(Some(incoming));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn accept(bytes: &[u8]) -> Incoming {
    feed_whole(bytes).expect("valid request").expect("complete request")
}

fn reject(text: &str) -> HandshakeError {
    let err = feed_whole(text.as_bytes()).expect_err("request must be rejected");
    assert_eq!(feed_bytewise(text.as_bytes()).expect_err("bytewise too"), err);
    err
}

/// RFC 6455 §1.2's request with `from` replaced by `to`.
fn rfc_with(from: &str, to: &str) -> String {
    assert!(RFC_REQUEST.contains(from), "{from:?}");
    RFC_REQUEST.replacen(from, to, 1)
}

// ---- real clients ---------------------------------------------------------

#[test]
fn rfc6455_4_2_1_real_clients_are_accepted_whole_and_bytewise() {
    for (name, bytes) in FIXTURES {
        let whole = accept(bytes);
        let bytewise = feed_bytewise(bytes).unwrap().unwrap();
        assert_eq!(whole, bytewise, "{name}");
        let req = &whole.request;
        assert_eq!(req.path(), "/chat/lobby", "{name}");
        assert_eq!(req.host(), "localhost:3000", "{name}");
        assert!(whole.leftover.is_empty(), "{name}");
        let mut out = Vec::new();
        accept_response(req, None, None, &HeaderMap::new(), &mut out).unwrap();
        let expected = format!("Sec-WebSocket-Accept: {}\r\n", accept_key(req.key()));
        assert!(String::from_utf8(out).unwrap().contains(&expected), "{name}");
    }
}

#[test]
fn chromium_request_view() {
    let req = accept(FIXTURES[0].1).request;
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.version(), http::Version::HTTP_11);
    assert_eq!(req.query(), Some("token=abc%20def"));
    assert_eq!(req.query_param("token").as_deref(), Some("abc def"));
    assert_eq!(req.origin(), Some("http://localhost:3000"));
    assert_eq!(req.key(), "Tak3+4p37S5EAltSHDxpTw==");
    assert_eq!(req.subprotocols(), ["chat.v2", "chat.v1"]);
    assert_eq!(req.extension_headers().collect::<Vec<_>>(), ["permessage-deflate; client_max_window_bits"]);
    assert_eq!(req.header("cookie"), Some("session=KOsEJNuflw4Rd9BDNrVmvwBF9rEijeE2"));
    assert_eq!(req.headers().len(), 14);
}

#[test]
fn firefox_keep_alive_upgrade_connection_and_plain_deflate_offer() {
    let req = accept(FIXTURES[1].1).request;
    assert_eq!(req.header(http::header::CONNECTION), Some("keep-alive, Upgrade"));
    assert_eq!(req.extension_headers().collect::<Vec<_>>(), ["permessage-deflate"]);
    assert!(req.subprotocols().is_empty());
    assert_eq!(req.query(), None);
}

#[test]
fn curl_and_python_send_no_origin() {
    assert_eq!(accept(FIXTURES[2].1).request.origin(), None);
    let py = accept(FIXTURES[4].1).request;
    assert_eq!(py.origin(), None);
    assert_eq!(py.header("user-agent"), Some("Python/3.12 websockets/13.1"));
}

#[test]
fn rfc6455_1_3_and_4_2_2_accept_response_for_the_rfc_example() {
    let req = accept(RFC_REQUEST.as_bytes()).request;
    assert_eq!(req.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let mut out = b"previous".to_vec();
    accept_response(&req, Some("chat"), None, &HeaderMap::new(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "previousHTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: chat\r\n\r\n"
    );
}

#[test]
fn rfc6455_4_2_2_accept_response_with_extensions_and_extra_headers() {
    let req = accept(FIXTURES[0].1).request;
    let mut extra = HeaderMap::new();
    extra.insert("x-server", HeaderValue::from_static("nextrush"));
    extra.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    extra.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    let mut out = Vec::new();
    let ext = "permessage-deflate; client_max_window_bits=15";
    accept_response(&req, Some("chat.v1"), Some(ext), &extra, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with(&format!(
        "Sec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Extensions: {ext}\r\nx-server: nextrush\r\n\r\n"
    )));
    assert_eq!(text.matches("onnection:").count(), 1, "{text}");
    assert!(!text.to_ascii_lowercase().contains("content-length"));
}

#[test]
fn rfc6455_4_2_2_accept_response_refuses_what_cannot_be_sent() {
    let req = accept(FIXTURES[0].1).request;
    let mut out = Vec::new();
    let none = HeaderMap::new();
    assert_eq!(accept_response(&req, Some("chat.v3"), None, &none, &mut out), Err(AcceptError::SubprotocolNotOffered));
    assert_eq!(
        accept_response(&req, None, Some("x\r\nSet-Cookie: a=b"), &none, &mut out),
        Err(AcceptError::InvalidExtensions)
    );
    assert!(out.is_empty());
}

#[test]
fn absolute_form_target_is_accepted() {
    let req = accept(rfc_with("GET /chat ", "GET ws://server.example.com/chat?a=1 ").as_bytes()).request;
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("a=1"));
}

#[test]
fn query_pairs_decode_plus_percent_and_keep_order() {
    let text = rfc_with("GET /chat ", "GET /chat?a=1&b=x+y%21&&c&a=2&bad=%FF ");
    let req = accept(text.as_bytes()).request;
    let pairs: Vec<(String, String)> = req.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let expected = [("a", "1"), ("b", "x y!"), ("c", ""), ("a", "2"), ("bad", "\u{FFFD}")];
    assert_eq!(pairs.len(), expected.len());
    for ((k, v), (ek, ev)) in pairs.iter().zip(expected) {
        assert_eq!((k.as_str(), v.as_str()), (ek, ev));
    }
    assert_eq!(req.query_param("a").as_deref(), Some("1"));
    assert_eq!(req.query_param("zzz"), None);
}

#[test]
fn token_matching_is_case_insensitive() {
    let text = rfc_with("Upgrade: websocket", "Upgrade: WebSocket")
        .replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
    let _ = accept(text.as_bytes());
    let _ = accept(rfc_with("Upgrade: websocket", "Upgrade: h2c, websocket").as_bytes());
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let _ = accept(RFC_REQUEST.replace("\r\n", "\n").as_bytes());
}

// ---- rejections -----------------------------------------------------------

#[test]
fn rfc6455_4_1_method_must_be_get() {
    let err = reject(&rfc_with("GET", "POST"));
    assert_eq!(err, HandshakeError::MethodNotGet);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn rfc6455_4_1_http_version_at_least_1_1() {
    let err = reject(&rfc_with("HTTP/1.1", "HTTP/1.0"));
    assert_eq!(err, HandshakeError::HttpVersion);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn rfc6455_4_2_1_host_required_single_and_valid() {
    assert_eq!(reject(&rfc_with("Host: server.example.com\r\n", "")), HandshakeError::InvalidHost);
    assert_eq!(reject(&rfc_with("server.example.com", "")), HandshakeError::InvalidHost);
    assert_eq!(reject(&rfc_with("server.example.com", "a b")), HandshakeError::InvalidHost);
    assert_eq!(reject(&rfc_with("server.example.com", "u@evil")), HandshakeError::InvalidHost);
    let twice = rfc_with("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n");
    assert_eq!(reject(&twice), HandshakeError::DuplicateHeader("host"));
}

#[test]
fn rfc6455_4_2_1_upgrade_must_include_websocket() {
    assert_eq!(reject(&rfc_with("Upgrade: websocket\r\n", "")), HandshakeError::NotWebSocketUpgrade);
    assert_eq!(reject(&rfc_with("Upgrade: websocket", "Upgrade: h2c")), HandshakeError::NotWebSocketUpgrade);
}

#[test]
fn rfc6455_4_2_1_connection_must_include_upgrade() {
    assert_eq!(reject(&rfc_with("Connection: Upgrade\r\n", "")), HandshakeError::NotConnectionUpgrade);
    let ka = rfc_with("Connection: Upgrade", "Connection: keep-alive");
    assert_eq!(reject(&ka), HandshakeError::NotConnectionUpgrade);
}

#[test]
fn rfc6455_4_2_1_key_must_be_16_bytes_of_base64() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_eq!(reject(&rfc_with(&format!("Sec-WebSocket-Key: {key}\r\n"), "")), HandshakeError::MissingKey);
    // "Hello, world!" (13 bytes), the key of many curl tutorials.
    for bad in
        ["SGVsbG8sIHdvcmxkIQ==", "not base64 at all!!!!!!!", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=="]
    {
        let text = rfc_with(key, if bad == key { "" } else { bad });
        assert_eq!(reject(&text), HandshakeError::InvalidKey, "{bad}");
        assert_eq!(reject(&text).status(), StatusCode::BAD_REQUEST);
    }
    let twice = rfc_with("Sec-WebSocket-Key", &format!("Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Key"));
    assert_eq!(reject(&twice), HandshakeError::DuplicateHeader("sec-websocket-key"));
}

#[test]
fn rfc6455_4_2_2_version_other_than_13_gets_426_with_version_header() {
    for text in [
        rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        rfc_with("Sec-WebSocket-Version: 13\r\n", ""),
        rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8"),
    ] {
        let err = reject(&text);
        assert_eq!(err, HandshakeError::UnsupportedVersion);
        assert_eq!(err.status(), StatusCode::UPGRADE_REQUIRED);
        let response = String::from_utf8(err.rejection().to_bytes()).unwrap();
        assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{response}");
        assert!(response.contains("\r\nsec-websocket-version: 13\r\n"), "{response}");
    }
}

#[test]
fn rfc6455_4_1_subprotocols_must_be_tokens_and_bounded() {
    let bad = rfc_with("chat, superchat", "chat, super chat");
    assert_eq!(reject(&bad), HandshakeError::InvalidSubprotocol);
    let many = (0..17).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",");
    let err = reject(&rfc_with("chat, superchat", &many));
    assert_eq!(err, HandshakeError::TooManySubprotocols { limit: 16 });
    // Empty list elements are skipped (RFC 9110 §5.6.1).
    let req = accept(rfc_with("chat, superchat", " , chat,,superchat ,").as_bytes()).request;
    assert_eq!(req.subprotocols(), ["chat", "superchat"]);
}

#[test]
fn requests_with_a_body_or_fragment_are_rejected() {
    let cl = rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nContent-Length: 5");
    assert_eq!(reject(&cl), HandshakeError::UnexpectedBody);
    let te = rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nTransfer-Encoding: chunked");
    assert_eq!(reject(&te), HandshakeError::UnexpectedBody);
    let _ = accept(rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nContent-Length: 0").as_bytes());
    assert_eq!(reject(&rfc_with("GET /chat ", "GET /chat#x ")), HandshakeError::InvalidTarget);
    assert_eq!(reject(&rfc_with("GET /chat ", "GET * ")), HandshakeError::InvalidTarget);
}

#[test]
fn garbage_is_a_400() {
    for text in ["\r\n\r\n", "GET\r\n\r\n", "HELLO WORLD\r\n\r\n", "GET / HTTP/1.1\r\nbad header\r\n\r\n"] {
        let err = reject(text);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{text:?}: {err:?}");
    }
}

#[test]
fn rejection_never_echoes_peer_text() {
    let text = rfc_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: <script>alert(1)</script>");
    let bytes = reject(&text).rejection().to_bytes();
    assert!(!String::from_utf8_lossy(&bytes).contains("script"));
}

// ---- limits ---------------------------------------------------------------

/// The RFC request padded with an `X-Pad` header to exactly `len` bytes.
fn request_of_len(len: usize) -> String {
    let base = RFC_REQUEST.len() + "X-Pad: \r\n".len();
    let pad = "a".repeat(len - base);
    rfc_with("Sec-WebSocket-Version: 13\r\n", &format!("Sec-WebSocket-Version: 13\r\nX-Pad: {pad}\r\n"))
}

#[test]
fn rfc6585_5_head_at_the_limit_is_accepted_one_more_byte_is_431() {
    let limit = HandshakeLimits::default().max_head_bytes;
    assert_eq!(limit, 8192);
    let at = request_of_len(limit);
    assert_eq!(at.len(), limit);
    let _ = accept(at.as_bytes());
    assert!(feed_bytewise(at.as_bytes()).unwrap().is_some());
    let over = request_of_len(limit + 1);
    let err = reject(&over);
    assert_eq!(err, HandshakeError::HeadTooLarge { limit });
    assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[test]
fn head_limit_fails_without_waiting_for_the_end_and_buffers_at_most_the_limit() {
    let mut limits = HandshakeLimits::default();
    limits.max_head_bytes = 100;
    let mut hs = ServerHandshake::new(limits, Instant::now());
    assert_eq!(hs.receive(&[b'a'; 99]), Ok(None));
    assert_eq!(hs.buffered(), 99);
    let err = hs.receive(&[b'a'; 10_000]).unwrap_err();
    assert_eq!(err, HandshakeError::HeadTooLarge { limit: 100 });
    assert_eq!(hs.buffered(), 0);
    // Poisoned: the same answer from then on.
    assert_eq!(hs.receive(RFC_REQUEST.as_bytes()), Err(err));
}

#[test]
fn too_many_headers_is_431() {
    let mut limits = HandshakeLimits::default();
    limits.max_headers = 6;
    let err = ServerHandshake::new(limits.clone(), Instant::now()).receive(RFC_REQUEST.as_bytes());
    assert_eq!(err, Err(HandshakeError::TooManyHeaders { limit: 6 }));
    assert_eq!(err.unwrap_err().status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    limits.max_headers = 7;
    let ok = ServerHandshake::new(limits.clone(), Instant::now()).receive(RFC_REQUEST.as_bytes());
    assert!(ok.unwrap().is_some());
    // A huge configured count neither panics nor allocates for it.
    limits.max_headers = usize::MAX;
    let ok = ServerHandshake::new(limits, Instant::now()).receive(RFC_REQUEST.as_bytes());
    assert!(ok.unwrap().is_some());
}

// ---- leftover, lifecycle, timeouts ----------------------------------------

#[test]
fn rfc6455_4_2_1_frames_sent_with_the_handshake_are_kept() {
    // A masked "Hello" text frame (RFC 6455 §5.7), sent in the same packet.
    let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let mut bytes = RFC_REQUEST.as_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    assert_eq!(&accept(&bytes).leftover[..], frame);
    // Split inside the terminator, and more leftover than the head limit.
    let big = vec![0x42; 100_000];
    let mut hs = server();
    let (a, b) = RFC_REQUEST.as_bytes().split_at(RFC_REQUEST.len() - 3);
    assert_eq!(hs.receive(a), Ok(None));
    let mut rest = b.to_vec();
    rest.extend_from_slice(&big);
    let incoming = hs.receive(&rest).unwrap().unwrap();
    assert_eq!(incoming.leftover, Bytes::from(big));
}

#[test]
fn receive_after_completion_is_misuse() {
    let mut hs = server();
    assert!(hs.receive(RFC_REQUEST.as_bytes()).unwrap().is_some());
    let err = hs.receive(b"\x81").unwrap_err();
    assert_eq!(err, HandshakeError::AlreadyComplete);
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(hs.receive_eof(), Ok(()));
}

#[test]
fn eof_before_the_head_ends_fails() {
    let mut hs = server();
    assert_eq!(hs.receive(b"GET / HTTP/1.1\r\n"), Ok(None));
    assert_eq!(hs.receive_eof(), Err(HandshakeError::Eof));
    assert_eq!(hs.receive(b"\r\n"), Err(HandshakeError::Eof));
}

#[test]
fn handshake_timeout_fires_at_the_deadline() {
    let start = Instant::now();
    let mut hs = ServerHandshake::new(HandshakeLimits::default(), start);
    let deadline = start + Duration::from_secs(10);
    assert_eq!(hs.poll_timeout(), Some(deadline));
    assert_eq!(hs.receive(b"GET / HTTP/1.1\r\n"), Ok(None));
    assert_eq!(hs.handle_timeout(deadline - Duration::from_millis(1)), Ok(()));
    assert_eq!(hs.handle_timeout(deadline), Err(HandshakeError::TimedOut));
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(hs.receive(b"Host: a\r\n"), Err(HandshakeError::TimedOut));
    let rejection = HandshakeError::TimedOut.rejection();
    assert_eq!(rejection.status(), StatusCode::REQUEST_TIMEOUT);
}

#[test]
fn no_timeout_after_completion() {
    let start = Instant::now();
    let mut hs = ServerHandshake::new(HandshakeLimits::default(), start);
    assert!(hs.receive(RFC_REQUEST.as_bytes()).unwrap().is_some());
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(hs.handle_timeout(start + Duration::from_secs(60)), Ok(()));
}

// ---- rejection responses --------------------------------------------------

#[test]
fn rejection_encoding_is_a_complete_http_response() {
    let bytes = Rejection::forbidden().to_bytes();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "HTTP/1.1 403 Forbidden\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 10\r\n\
         Connection: close\r\n\r\n\
         Forbidden\n"
    );
}

#[test]
fn rejection_constructors_and_owned_headers() {
    for (r, code) in [
        (Rejection::bad_request(), 400),
        (Rejection::unauthorized(), 401),
        (Rejection::forbidden(), 403),
        (Rejection::not_found(), 404),
        (Rejection::upgrade_required(), 426),
        (Rejection::header_fields_too_large(), 431),
        (Rejection::service_unavailable(None), 503),
    ] {
        assert_eq!(r.status().as_u16(), code);
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with(&format!("HTTP/1.1 {code} ")), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())), "{text}");
    }
    let r = Rejection::service_unavailable(Some(Duration::from_millis(1500)))
        .with_header(HeaderName::from_static("connection"), HeaderValue::from_static("keep-alive"))
        .with_header(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
        .with_body("busy");
    let text = String::from_utf8(r.to_bytes()).unwrap();
    assert!(text.contains("retry-after: 2\r\n"), "{text}");
    assert!(text.contains("www-authenticate: Bearer\r\n"), "{text}");
    assert!(!text.contains("keep-alive"), "{text}");
    assert!(text.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\nbusy"), "{text}");
}

// ---- policy ---------------------------------------------------------------

fn policy() -> ServerPolicy {
    let mut p = ServerPolicy::default();
    p.allow_origins = Some(vec!["http://localhost:3000".into(), "HTTPS://App.Example".into()]);
    p.protocols = vec!["chat.v1".into(), "chat.v2".into()];
    p.max_connections = 2;
    p.retry_after = Some(Duration::from_secs(5));
    p
}

fn request(bytes: &[u8]) -> Request {
    accept(bytes).request
}

#[test]
fn policy_prefers_the_servers_protocol_order() {
    // Chromium offers "chat.v2, chat.v1"; the server prefers chat.v1.
    let chosen = policy().decide(&request(FIXTURES[0].1), 0).unwrap();
    assert_eq!(chosen.as_deref(), Some("chat.v1"));
    // The RFC request offers neither: accepted, no subprotocol.
    let rfc = request(rfc_with("http://example.com", "https://app.example").as_bytes());
    assert_eq!(policy().decide(&rfc, 1), Ok(None));
}

#[test]
fn policy_rejects_foreign_origins_with_403() {
    let rfc = request(RFC_REQUEST.as_bytes());
    let r = policy().decide(&rfc, 0).unwrap_err();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(ServerPolicy::default().decide(&rfc, 0).is_ok());
    // Missing origin: allowed by default, refused on request.
    let curl = request(FIXTURES[2].1);
    assert!(policy().decide(&curl, 0).is_ok());
    let mut strict = policy();
    strict.allow_missing_origin = false;
    assert_eq!(strict.decide(&curl, 0).unwrap_err().status(), StatusCode::FORBIDDEN);
    assert!(!strict.origin_allowed(Some("http://localhost:3000.evil.com")));
    assert!(!strict.origin_allowed(Some("null")));
}

#[test]
fn policy_rejects_when_full_with_503_and_retry_after() {
    let r = policy().decide(&request(FIXTURES[0].1), 2).unwrap_err();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get(http::header::RETRY_AFTER).unwrap(), "5");
}

// ---- properties -----------------------------------------------------------

/// Splits `bytes` at the given (unsorted, possibly repeated) cut points.
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out
}

proptest! {
    #[test]
    fn any_chunking_yields_the_same_request_and_leftover(
        which in 0..FIXTURES.len(),
        leftover in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let (_, fixture) = FIXTURES[which];
        let expected = accept(fixture);
        let mut bytes = fixture.to_vec();
        bytes.extend_from_slice(&leftover);
        let mut hs = server();
        let mut got: Option<Incoming> = None;
        let mut after = Vec::new();
        for chunk in chunks(&bytes, &cuts) {
            if got.is_some() {
                // Bytes read after completion belong to the connection.
                after.extend_from_slice(&chunk);
            } else {
                got = hs.receive(&chunk).unwrap();
            }
        }
        let got = got.expect("complete");
        prop_assert_eq!(&got.request, &expected.request);
        let mut all_leftover = got.leftover.to_vec();
        all_leftover.extend_from_slice(&after);
        prop_assert_eq!(all_leftover, leftover);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_overbuffer(
        prefix in prop_oneof![Just(&b""[..]), Just(&b"GET / HTTP/1.1\r\n"[..])],
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut limits = HandshakeLimits::default();
        limits.max_head_bytes = 512;
        let mut hs = ServerHandshake::new(limits, Instant::now());
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&data);
        for chunk in chunks(&bytes, &cuts) {
            let r = hs.receive(&chunk);
            prop_assert!(hs.buffered() <= 512);
            if let Err(e) = r {
                let _ = e.rejection().to_bytes();
                break;
            }
        }
    }

    #[test]
    fn mutated_real_requests_never_panic(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = FIXTURES[which].1.to_vec();
        for (at, byte) in edits {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        match server().receive(&bytes) {
            Ok(Some(incoming)) => {
                let mut out = Vec::new();
                accept_response(&incoming.request, None, None, &HeaderMap::new(), &mut out).unwrap();
            }
            Ok(None) => {}
            Err(e) => prop_assert!(e.status().is_client_error() || e.status().is_server_error()),
        }
    }
}

/// RFC 6455 §4.2.1 for a request another HTTP server parsed, and §4.2.2's
/// headers for a response it writes.
#[test]
fn rfc6455_4_2_request_from_http_parts_and_accept_headers() {
    use nextrush_proto::handshake::{HandshakeLimits, accept_headers};
    let request = http::Request::get("/chat/lobby?token=a%20b")
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, superchat")
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let req = nextrush_proto::Request::from_http(&parts, &HandshakeLimits::default()).unwrap();
    assert_eq!(req.path(), "/chat/lobby");
    assert_eq!(req.query_param("token").as_deref(), Some("a b"));
    let headers = accept_headers(&req, Some("superchat"), Some("permessage-deflate")).unwrap();
    assert_eq!(headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(headers["sec-websocket-protocol"], "superchat");
    assert_eq!(headers["upgrade"], "websocket");
    assert!(accept_headers(&req, Some("other"), None).is_err());

    let mut bad = http::Request::get("/").header("host", "x").body(()).unwrap().into_parts().0;
    assert_eq!(
        nextrush_proto::Request::from_http(&bad, &HandshakeLimits::default()).unwrap_err().status(),
        http::StatusCode::BAD_REQUEST
    );
    bad.method = http::Method::POST;
    assert!(nextrush_proto::Request::from_http(&bad, &HandshakeLimits::default()).is_err());
}
