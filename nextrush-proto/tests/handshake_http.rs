//! `ServerHandshake::receive_any`: plain `GET` requests handed back for a
//! server that also serves a page on the WebSocket port; everything else
//! answered exactly as `receive` answers it.

use std::time::Instant;

use http::StatusCode;
use nextrush_proto::handshake::{HandshakeError, HandshakeLimits, Received, ServerHandshake};

fn server() -> ServerHandshake {
    ServerHandshake::new(HandshakeLimits::default(), Instant::now())
}

/// Feeds `text` whole, and one byte at a time; both must agree.
fn receive_any(text: &str) -> Result<Received, HandshakeError> {
    let whole = server().receive_any(text.as_bytes()).map(|r| r.expect("complete head"));
    let mut hs = server();
    let mut bytewise = None;
    for (i, b) in text.as_bytes().iter().enumerate() {
        match hs.receive_any(std::slice::from_ref(b)) {
            Ok(None) => {}
            Ok(Some(received)) => {
                assert_eq!(i + 1, text.len(), "completed before the end of the head");
                bytewise = Some(Ok(received));
                break;
            }
            Err(e) => {
                bytewise = Some(Err(e));
                break;
            }
        }
    }
    assert_eq!(bytewise.expect("an answer"), whole);
    whole
}

const PAGE: &str = "GET /rooms/lobby%20one?token=a%2Bb&x HTTP/1.1\r\n\
    Host: 127.0.0.1:3000\r\n\
    Accept: text/html\r\n\
    Connection: keep-alive\r\n\r\n";

#[test]
fn plain_get_is_handed_back() {
    let Received::Http(req) = receive_any(PAGE).unwrap() else { panic!("not HTTP") };
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.version(), http::Version::HTTP_11);
    assert_eq!(req.path(), "/rooms/lobby%20one");
    assert_eq!(req.query(), Some("token=a%2Bb&x"));
    assert_eq!(req.query_param("token").as_deref(), Some("a+b"));
    assert_eq!(req.query_param("x").as_deref(), Some(""));
    assert_eq!(req.query_param("y"), None);
    assert_eq!(req.header("accept"), Some("text/html"));
    assert_eq!(req.headers().len(), 3);
}

#[test]
fn receive_still_rejects_plain_get() {
    let mut hs = server();
    assert_eq!(hs.receive(PAGE.as_bytes()), Err(HandshakeError::NotWebSocketUpgrade));
    assert_eq!(HandshakeError::NotWebSocketUpgrade.status(), StatusCode::BAD_REQUEST);
    // Failed for good, as before.
    assert_eq!(hs.receive(b"x"), Err(HandshakeError::NotWebSocketUpgrade));
}

#[test]
fn upgrades_come_back_as_upgrades() {
    let text = "GET /chat?room=a HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x01";
    let Received::Upgrade(incoming) = receive_any(&text[..text.len() - 1]).unwrap() else { panic!("not an upgrade") };
    assert_eq!(incoming.request.path(), "/chat");
    let plain = server().receive(text.as_bytes()).unwrap().unwrap();
    let Received::Upgrade(any) = server().receive_any(text.as_bytes()).unwrap().unwrap() else { panic!() };
    assert_eq!(any, plain);
    assert_eq!(&any.leftover[..], b"\x01");
}

#[test]
fn other_upgrade_protocols_are_plain_http() {
    let text = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n";
    assert!(matches!(receive_any(text), Ok(Received::Http(_))));
}

#[test]
fn broken_upgrades_fail_as_with_receive() {
    let cases = [
        ("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", HandshakeError::NotConnectionUpgrade),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            HandshakeError::MissingKey,
        ),
        ("POST / HTTP/1.1\r\nHost: h\r\n\r\n", HandshakeError::MethodNotGet),
        ("GET / HTTP/1.0\r\nHost: h\r\n\r\n", HandshakeError::HttpVersion),
        ("GET / HTTP/1.1\r\n\r\n", HandshakeError::InvalidHost),
        ("GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", HandshakeError::DuplicateHeader("host")),
        ("GET /#x HTTP/1.1\r\nHost: h\r\n\r\n", HandshakeError::InvalidTarget),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", HandshakeError::UnexpectedBody),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", HandshakeError::UnexpectedBody),
    ];
    for (text, error) in cases {
        assert_eq!(receive_any(text), Err(error.clone()), "{text:?}");
        assert_eq!(server().receive(text.as_bytes()), Err(error), "{text:?}");
    }
    let empty_body = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(receive_any(empty_body), Ok(Received::Http(_))));
}

#[test]
fn limits_apply_to_plain_requests() {
    let mut limits = HandshakeLimits::default();
    limits.max_head_bytes = 64;
    let mut hs = ServerHandshake::new(limits, Instant::now());
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
    let error = hs.receive_any(long.as_bytes()).unwrap_err();
    assert_eq!(error, HandshakeError::HeadTooLarge { limit: 64 });
    assert_eq!(error.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[test]
fn complete_after_a_plain_request() {
    let mut hs = server();
    assert!(matches!(hs.receive_any(PAGE.as_bytes()), Ok(Some(Received::Http(_)))));
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(hs.receive_any(b"GET"), Err(HandshakeError::AlreadyComplete));
}
