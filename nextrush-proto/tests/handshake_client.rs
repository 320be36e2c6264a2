//! Client opening handshake (RFC 6455 §4.1): the request it writes, URL
//! handling, and validation of the server's answer.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::StatusCode;
use http::header::{AUTHORIZATION, HOST, HeaderMap, HeaderValue, SEC_WEBSOCKET_KEY};
use nextrush_proto::handshake::{
    ClientConfig, ClientConfigError, ClientHandshake, ClientHandshakeError, ClientResponse, HandshakeError,
    HandshakeLimits, ServerHandshake, ServerPolicy, accept_key, accept_response,
};
use nextrush_proto::{ConfigError, Entropy, SeededEntropy};
use proptest::prelude::*;

fn handshake(config: ClientConfig) -> ClientHandshake {
    ClientHandshake::new(config, &mut SeededEntropy::new(7), Instant::now())
}

fn plain(url: &str) -> ClientHandshake {
    handshake(ClientConfig::new(url).unwrap())
}

fn request_text(hs: &ClientHandshake) -> String {
    String::from_utf8(hs.request_bytes().to_vec()).unwrap()
}

/// A valid 101 for `hs`, with `extra` header lines (each ending in CRLF).
fn switching(hs: &ClientHandshake, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(hs.key())
    )
}

fn expect_err(hs: &mut ClientHandshake, response: &str) -> ClientHandshakeError {
    hs.receive(response.as_bytes()).expect_err("response must be refused")
}

// ---- the request ------------------------------------------------------------

#[test]
fn rfc6455_4_1_request_text() {
    let config = ClientConfig::builder("ws://example.com:8080/chat?room=a%20b")
        .origin("http://example.com")
        .subprotocols(["chat", "superchat"])
        .extensions("permessage-deflate; client_max_window_bits")
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer t0k"))
        .build()
        .unwrap();
    let hs = handshake(config);
    let mut nonce = [0u8; 16];
    SeededEntropy::new(7).fill(&mut nonce);
    assert_eq!(hs.key(), BASE64.encode(nonce));
    assert_eq!(
        request_text(&hs),
        format!(
            "GET /chat?room=a%20b HTTP/1.1\r\n\
             Host: example.com:8080\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             authorization: Bearer t0k\r\n\
             origin: http://example.com\r\n\r\n",
            hs.key()
        )
    );
}

#[test]
fn rfc6455_4_1_nonce_comes_from_the_entropy_source() {
    let a = plain("ws://h/");
    let b = handshake(ClientConfig::new("ws://h/").unwrap());
    assert_eq!(a.key(), b.key(), "same seed, same key");
    let c = ClientHandshake::new(ClientConfig::new("ws://h/").unwrap(), &mut SeededEntropy::new(8), Instant::now());
    assert_ne!(a.key(), c.key());
    assert_eq!(BASE64.decode(c.key()).unwrap().len(), 16);
    let mut zeros = |dst: &mut [u8]| dst.fill(0);
    let z = ClientHandshake::new(ClientConfig::new("ws://h/").unwrap(), &mut zeros, Instant::now());
    assert_eq!(z.key(), "AAAAAAAAAAAAAAAAAAAAAA==");
}

/// URL, `Host` header, host, port, secure, resource name.
type UrlCase = (&'static str, &'static str, &'static str, u16, bool, &'static str);

#[rustfmt::skip]
const URL_CASES: [UrlCase; 9] = [
    ("ws://example.com", "example.com", "example.com", 80, false, "/"),
    ("ws://example.com:80/a", "example.com", "example.com", 80, false, "/a"),
    ("wss://example.com/a/b?x=1", "example.com", "example.com", 443, true, "/a/b?x=1"),
    ("wss://example.com:443", "example.com", "example.com", 443, true, "/"),
    ("wss://example.com:80/", "example.com:80", "example.com", 80, true, "/"),
    ("ws://example.com:443/", "example.com:443", "example.com", 443, false, "/"),
    ("WS://example.com?q", "example.com", "example.com", 80, false, "/?q"),
    ("ws://[::1]:9001/ws", "[::1]:9001", "::1", 9001, false, "/ws"),
    ("ws://127.0.0.1:3000/chat", "127.0.0.1:3000", "127.0.0.1", 3000, false, "/chat"),
];

#[test]
fn rfc6455_3_and_4_1_host_header_and_default_ports() {
    for (url, host_header, host, port, secure, resource) in URL_CASES {
        let config = ClientConfig::new(url).unwrap();
        assert_eq!(config.host_header(), host_header, "{url}");
        let endpoint = (config.host(), config.port(), config.is_secure());
        assert_eq!(endpoint, (host, port, secure), "{url}");
        assert_eq!(config.resource(), resource, "{url}");
        let text = request_text(&handshake(config));
        let start = format!("GET {resource} HTTP/1.1\r\nHost: {host_header}\r\n");
        assert!(text.starts_with(&start), "{text}");
    }
}

#[test]
fn host_header_can_be_overridden() {
    let config =
        ClientConfig::builder("ws://10.0.0.1/").header(HOST, HeaderValue::from_static("chat.example")).build().unwrap();
    let text = request_text(&handshake(config));
    assert!(text.contains("Host: chat.example\r\n"));
    assert_eq!(text.matches("ost:").count(), 1, "{text}");
}

#[test]
fn bad_urls_and_settings_are_errors() {
    let err = |b: nextrush_proto::handshake::ClientConfigBuilder| b.build().unwrap_err();
    let url = |u: &str| ClientConfig::new(u).unwrap_err();
    assert_eq!(url("http://example.com/"), ClientConfigError::UnsupportedScheme("http".into()));
    assert_eq!(url("ftp://example.com/"), ClientConfigError::UnsupportedScheme("ftp".into()));
    assert_eq!(url("ws://example.com/#frag"), ClientConfigError::Fragment);
    assert_eq!(url("ws://user:pw@example.com/"), ClientConfigError::UserInfo);
    assert_eq!(url("/just/a/path"), ClientConfigError::InvalidUrl);
    assert_eq!(url("not a url"), ClientConfigError::InvalidUrl);
    assert_eq!(url(""), ClientConfigError::InvalidUrl);
    let b = || ClientConfig::builder("ws://h/");
    assert_eq!(err(b().subprotocol("a b")), ClientConfigError::InvalidSubprotocol("a b".into()));
    assert_eq!(err(b().subprotocols(["x", "y", "x"])), ClientConfigError::InvalidSubprotocol("x".into()));
    assert_eq!(err(b().extensions("a\r\nb")), ClientConfigError::InvalidExtensions);
    assert_eq!(err(b().origin("http://a\n")), ClientConfigError::InvalidOrigin);
    let key = b().header(SEC_WEBSOCKET_KEY, HeaderValue::from_static("x"));
    assert_eq!(err(key), ClientConfigError::ReservedHeader(SEC_WEBSOCKET_KEY));
    let mut limits = HandshakeLimits::default();
    limits.timeout = Duration::ZERO;
    assert_eq!(err(b().limits(limits)), ClientConfigError::Limits(ConfigError::Zero("timeout")));
}

// ---- the response -----------------------------------------------------------

#[test]
fn rfc6455_4_1_valid_101_with_leftover_frames() {
    let mut hs = plain("ws://h/");
    let mut bytes = switching(&hs, "").into_bytes();
    // An unmasked "Hello" text frame right behind the 101 (RFC 6455 §5.7).
    let frame = b"\x81\x05Hello";
    bytes.extend_from_slice(frame);
    let resp = hs.receive(&bytes).unwrap().unwrap();
    assert_eq!(&resp.leftover[..], frame);
    assert_eq!(resp.subprotocol, None);
    assert_eq!(resp.extension_headers().count(), 0);
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(hs.receive(b"more"), Err(ClientHandshakeError::AlreadyComplete));
}

#[test]
fn rfc6455_4_1_case_insensitive_tokens_and_raw_extensions() {
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n")
        .replace("Upgrade: websocket", "Upgrade: WebSocket")
        .replace("Connection: Upgrade", "Connection: keep-alive, upgrade");
    let resp = hs.receive(text.as_bytes()).unwrap().unwrap();
    let ext: Vec<&str> = resp.extension_headers().collect();
    assert_eq!(ext, ["permessage-deflate; server_no_context_takeover"]);
}

#[test]
fn rfc6455_4_1_upgrade_must_be_websocket() {
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "").replace("Upgrade: websocket\r\n", "");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::NotWebSocketUpgrade);
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "").replace("Upgrade: websocket", "Upgrade: h2c");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::NotWebSocketUpgrade);
}

#[test]
fn rfc6455_4_1_connection_must_include_upgrade() {
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "").replace("Connection: Upgrade", "Connection: keep-alive");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::NotConnectionUpgrade);
}

#[test]
fn rfc6455_4_1_accept_must_match_the_key() {
    let mut hs = plain("ws://h/");
    let good = accept_key(hs.key());
    let missing = switching(&hs, "").replace(&format!("Sec-WebSocket-Accept: {good}\r\n"), "");
    assert_eq!(expect_err(&mut hs, &missing), ClientHandshakeError::MissingAccept);
    let mut hs = plain("ws://h/");
    let wrong = switching(&hs, "").replace(&good, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(expect_err(&mut hs, &wrong), ClientHandshakeError::AcceptMismatch);
    let mut hs = plain("ws://h/");
    let twice = switching(&hs, &format!("Sec-WebSocket-Accept: {}\r\n", accept_key(hs.key())));
    assert_eq!(expect_err(&mut hs, &twice), ClientHandshakeError::DuplicateHeader("sec-websocket-accept"));
    // Poisoned: the same error again.
    assert_eq!(hs.receive(b""), Err(ClientHandshakeError::DuplicateHeader("sec-websocket-accept")));
}

#[test]
fn rfc6455_4_1_subprotocol_must_have_been_offered() {
    let offering = || handshake(ClientConfig::builder("ws://h/").subprotocols(["chat", "superchat"]).build().unwrap());
    let mut hs = offering();
    let text = switching(&hs, "Sec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(hs.receive(text.as_bytes()).unwrap().unwrap().subprotocol.as_deref(), Some("superchat"));
    let mut hs = offering();
    let text = switching(&hs, "Sec-WebSocket-Protocol: mqtt\r\n");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::UnexpectedSubprotocol);
    let mut hs = offering();
    let text = switching(&hs, "Sec-WebSocket-Protocol: chat, superchat\r\n");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::UnexpectedSubprotocol);
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::UnexpectedSubprotocol);
}

#[test]
fn rfc6455_4_1_101_must_be_http_1_1() {
    let mut hs = plain("ws://h/");
    let text = switching(&hs, "").replace("HTTP/1.1 101", "HTTP/1.0 101");
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::HttpVersion);
}

// ---- refusals ---------------------------------------------------------------

fn rejected(err: ClientHandshakeError) -> (StatusCode, HeaderMap, Vec<u8>) {
    match err {
        ClientHandshakeError::Rejected(r) => (r.status, r.headers, r.body.to_vec()),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn rfc6455_4_1_non_101_carries_status_headers_and_body() {
    let mut hs = plain("ws://h/");
    let text = "HTTP/1.1 403 Forbidden\r\nX-Reason: origin\r\nContent-Length: 10\r\n\r\nForbidden\nTRAILING";
    let (status, headers, body) = rejected(expect_err(&mut hs, text));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers.get("x-reason").unwrap(), "origin");
    assert_eq!(body, b"Forbidden\n");
}

#[test]
fn non_101_body_is_read_up_to_content_length_across_calls() {
    let mut hs = plain("ws://h/");
    assert_eq!(hs.receive(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nlog"), Ok(None));
    assert!(hs.poll_timeout().is_some());
    assert_eq!(hs.receive(b"in fir"), Ok(None));
    let (status, _, body) = rejected(hs.receive(b"st!extra").unwrap_err());
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, b"login first!");
}

#[test]
fn non_101_without_length_keeps_what_arrived() {
    let mut hs = plain("ws://h/");
    let (status, _, body) = rejected(expect_err(&mut hs, "HTTP/1.1 404 Not Found\r\n\r\nno route"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, b"no route");
    let mut hs = plain("ws://h/");
    let chunked = "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n3\r\nabc";
    assert_eq!(rejected(expect_err(&mut hs, chunked)).2, b"3\r\nabc");
}

#[test]
fn non_101_body_is_bounded() {
    let mut limits = HandshakeLimits::default();
    limits.max_body_bytes = 8;
    let mut hs = handshake(ClientConfig::builder("ws://h/").limits(limits).build().unwrap());
    let text = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000000\r\n\r\n{}", "x".repeat(5));
    assert_eq!(hs.receive(text.as_bytes()), Ok(None));
    assert_eq!(rejected(hs.receive(&[b'y'; 100]).unwrap_err()).2, b"xxxxxyyy");
}

#[test]
fn eof_or_timeout_mid_body_reports_the_refusal() {
    let text = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 50\r\n\r\nslow";
    let mut hs = plain("ws://h/");
    assert_eq!(hs.receive(text), Ok(None));
    let (status, _, body) = rejected(hs.receive_eof().unwrap_err());
    assert_eq!((status.as_u16(), body.as_slice()), (429, &b"slow"[..]));
    let start = Instant::now();
    let mut hs = ClientHandshake::new(ClientConfig::new("ws://h/").unwrap(), &mut SeededEntropy::new(1), start);
    assert_eq!(hs.receive(text), Ok(None));
    let (status, _, _) = rejected(hs.handle_timeout(start + Duration::from_secs(10)).unwrap_err());
    assert_eq!(status.as_u16(), 429);
}

#[test]
fn server_rejections_round_trip_through_the_client() {
    // Our own 426 (RFC 6455 §4.2.2), read by our client.
    let bytes = HandshakeError::UnsupportedVersion.rejection().to_bytes();
    let mut hs = plain("ws://h/");
    let (status, headers, body) = rejected(hs.receive(&bytes).unwrap_err());
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(headers.get("sec-websocket-version").unwrap(), "13");
    assert_eq!(body, b"Sec-WebSocket-Version must be 13\n");
}

// ---- lifecycle --------------------------------------------------------------

#[test]
fn timeout_eof_and_limits() {
    let start = Instant::now();
    let mut hs = ClientHandshake::new(ClientConfig::new("ws://h/").unwrap(), &mut SeededEntropy::new(1), start);
    let deadline = start + Duration::from_secs(10);
    assert_eq!(hs.poll_timeout(), Some(deadline));
    assert_eq!(hs.handle_timeout(deadline - Duration::from_secs(1)), Ok(()));
    assert_eq!(hs.handle_timeout(deadline), Err(ClientHandshakeError::TimedOut));
    assert_eq!(hs.receive(b"HTTP/1.1"), Err(ClientHandshakeError::TimedOut));
    let mut hs = plain("ws://h/");
    assert_eq!(hs.receive(b"HTTP/1.1 101"), Ok(None));
    assert_eq!(hs.receive_eof(), Err(ClientHandshakeError::Eof));
    let mut hs = plain("ws://h/");
    let limit = HandshakeLimits::default().max_head_bytes;
    assert_eq!(hs.receive(&vec![b'a'; limit]), Err(ClientHandshakeError::HeadTooLarge { limit }));
    let mut hs = plain("ws://h/");
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let text = switching(&hs, &many);
    assert_eq!(expect_err(&mut hs, &text), ClientHandshakeError::TooManyHeaders { limit: 64 });
    let mut hs = plain("ws://h/");
    assert!(matches!(expect_err(&mut hs, "HTTP/1.1 abc\r\n\r\n"), ClientHandshakeError::Malformed(_)));
}

#[test]
fn client_and_server_agree() {
    let config = ClientConfig::builder("ws://localhost:3000/chat/lobby?x=1")
        .origin("http://localhost:3000")
        .subprotocols(["v2.chat", "v1.chat"])
        .extensions("permessage-deflate; client_max_window_bits")
        .build()
        .unwrap();
    let mut client = handshake(config);
    let mut server = ServerHandshake::new(HandshakeLimits::default(), Instant::now());
    let incoming = server.receive(client.request_bytes()).unwrap().unwrap();
    let req = &incoming.request;
    assert_eq!((req.path(), req.query(), req.host()), ("/chat/lobby", Some("x=1"), "localhost:3000"));
    let mut policy = ServerPolicy::default();
    policy.protocols = vec!["v1.chat".into()];
    let chosen = policy.decide(req, 0).unwrap();
    let mut out = Vec::new();
    accept_response(req, chosen.as_deref(), Some("permessage-deflate"), &HeaderMap::new(), &mut out).unwrap();
    let resp = client.receive(&out).unwrap().unwrap();
    assert_eq!(resp.subprotocol.as_deref(), Some("v1.chat"));
    assert_eq!(resp.extension_headers().collect::<Vec<_>>(), ["permessage-deflate"]);
}

// ---- properties -------------------------------------------------------------

proptest! {
    #[test]
    fn any_chunking_of_a_101_yields_the_same_response(
        leftover in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let reference = plain("ws://h/");
        let mut bytes = switching(&reference, "Sec-WebSocket-Extensions: permessage-deflate\r\n").into_bytes();
        let head_len = bytes.len();
        let expected: ClientResponse = plain("ws://h/").receive(&bytes).unwrap().unwrap();
        bytes.extend_from_slice(&leftover);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut hs = plain("ws://h/");
        let (mut prev, mut got, mut after) = (0, None, Vec::new());
        for cut in cuts {
            let chunk = &bytes[prev..cut];
            prev = cut;
            if got.is_some() { after.extend_from_slice(chunk) } else { got = hs.receive(chunk).unwrap() }
        }
        let got = got.expect("complete");
        prop_assert_eq!(&got.headers, &expected.headers);
        let mut all = got.leftover.to_vec();
        all.extend_from_slice(&after);
        prop_assert_eq!(&all[..], &bytes[head_len..]);
    }

    #[test]
    fn arbitrary_responses_never_panic(
        prefix in prop_oneof![Just(&b""[..]), Just(&b"HTTP/1.1 101 Switching Protocols\r\n"[..]), Just(&b"HTTP/1.1 400 Bad\r\nContent-Length: 9\r\n"[..])],
        data in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut hs = plain("ws://h/");
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&data);
        for chunk in bytes.chunks(7) {
            if hs.receive(chunk).is_err() {
                break;
            }
        }
        let _ = hs.receive_eof();
    }
}
