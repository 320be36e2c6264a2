//! Handshake admission over real TCP: every rejection path answers with its
//! exact HTTP status (written by hand, read off the socket), `verify_client`
//! rejects or attaches data, and the client reports a refusal with status,
//! headers and body.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Server, collect_events, echo_app, raw_exchange, raw_upgrade, start, upgrade_request, wait_event, within};
use http::{HeaderName, HeaderValue, StatusCode};
use nextrush_tokio::proto::handshake::ClientHandshakeError;
use nextrush_tokio::{App, Client, ClientOptions, Error, Message, Options, Rejection, ServerEvent, Verified, connect};

const VALID_TAIL: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";

/// The refusal a client saw, or a panic.
fn rejected(
    result: Result<nextrush_tokio::WebSocket, Error>,
) -> Box<nextrush_tokio::proto::handshake::RejectedResponse> {
    match result {
        Err(Error::ClientHandshake(ClientHandshakeError::Rejected(r))) => r,
        other => panic!("expected a rejected handshake, got {other:?}"),
    }
}

async fn assert_echoes(ws: &mut nextrush_tokio::WebSocket, text: &'static str) {
    ws.send(text).await.expect("send");
    let got = within("echo", ws.recv()).await.expect("recv");
    assert_eq!(got, Some(Message::text(text)));
}

#[tokio::test]
async fn malformed_upgrades_get_400() {
    let server = start(echo_app(Options::default())).await;
    let key = format!("Sec-WebSocket-Key: {}\r\n", common::KEY);
    let cases = [
        ("bad key", format!("GET /echo HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: c2hvcnQ=\r\n{VALID_TAIL}\r\n")),
        ("missing key", format!("GET /echo HTTP/1.1\r\nHost: h\r\n{VALID_TAIL}\r\n")),
        ("missing Host", format!("GET /echo HTTP/1.1\r\n{key}{VALID_TAIL}\r\n")),
        ("not GET", format!("POST /echo HTTP/1.1\r\nHost: h\r\n{key}{VALID_TAIL}\r\n")),
        ("HTTP/1.0", format!("GET /echo HTTP/1.0\r\nHost: h\r\n{key}{VALID_TAIL}\r\n")),
        (
            "no Upgrade: websocket",
            format!("GET /echo HTTP/1.1\r\nHost: h\r\n{key}Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
        ),
        (
            "no Connection: Upgrade",
            format!("GET /echo HTTP/1.1\r\nHost: h\r\n{key}Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"),
        ),
        ("not HTTP", "HELLO THERE\r\n\r\n".to_owned()),
    ];
    for (what, request) in &cases {
        let response = raw_exchange(server.addr, request.as_bytes()).await;
        assert_eq!(response.status, 400, "{what}: {}", response.status_line);
        assert_eq!(response.header("Connection"), Some("close"), "{what}");
        let len: usize = response.header("Content-Length").expect("content length").parse().unwrap();
        assert_eq!(response.body.len(), len, "{what}: body matches Content-Length");
    }
    let stats = server.app.stats();
    assert_eq!(stats.rejected_handshakes, cases.len() as u64);
    assert_eq!(stats.total_connections, 0);
}

#[tokio::test]
async fn unknown_route_gets_404() {
    let server = start(echo_app(Options::default())).await;
    let response = raw_exchange(server.addr, upgrade_request("/nope", "").as_bytes()).await;
    assert_eq!(response.status, 404, "{}", response.status_line);
    // The known route still upgrades.
    let (_stream, response) = raw_upgrade(server.addr, "/echo", "").await;
    assert_eq!(response.status, 101);
    // And the client sees the 404 as a refusal.
    let r = rejected(connect(&server.url("/missing")).await);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_version_gets_426_with_version_header() {
    let server = start(echo_app(Options::default())).await;
    for version in ["Sec-WebSocket-Version: 8\r\n", ""] {
        let request = format!(
            "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\n{version}\r\n",
            common::KEY
        );
        let response = raw_exchange(server.addr, request.as_bytes()).await;
        assert_eq!(response.status, 426, "{version:?}: {}", response.status_line);
        assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
    }
}

#[tokio::test]
async fn oversize_headers_get_431() {
    let server = start(echo_app(Options::default())).await;
    // One huge header: the head passes the 8 KiB default.
    let big = format!("X-Filler: {}\r\n", "a".repeat(9_000));
    let response = raw_exchange(server.addr, upgrade_request("/echo", &big).as_bytes()).await;
    assert_eq!(response.status, 431, "{}", response.status_line);
    // Too many header fields in a small head.
    let many: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let response = raw_exchange(server.addr, upgrade_request("/echo", &many).as_bytes()).await;
    assert_eq!(response.status, 431, "{}", response.status_line);
    // A head just under the limits passes.
    let fine = format!("X-Filler: {}\r\n", "a".repeat(6_000));
    raw_upgrade(server.addr, "/echo", &fine).await;
}

#[tokio::test]
async fn origin_not_allowed_gets_403() {
    let server = start(echo_app(Options::default().allow_origins(["https://good.example"]))).await;
    let response =
        raw_exchange(server.addr, upgrade_request("/echo", "Origin: https://evil.example\r\n").as_bytes()).await;
    assert_eq!(response.status, 403, "{}", response.status_line);
    raw_upgrade(server.addr, "/echo", "Origin: https://good.example\r\n").await;
    // No Origin (a non-browser client) passes by default.
    raw_upgrade(server.addr, "/echo", "").await;

    let evil = Client::new(ClientOptions::default().origin("https://evil.example"));
    let r = rejected(evil.connect(&server.url("/echo")).await);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let good = Client::new(ClientOptions::default().origin("https://GOOD.example"));
    let mut ws = good.connect(&server.url("/echo")).await.expect("allowed origin");
    assert_echoes(&mut ws, "hi").await;
}

#[tokio::test]
async fn past_max_connections_gets_503_and_existing_connections_keep_working() {
    let app = echo_app(Options::default().max_connections(1).retry_after(Duration::from_secs(7)));
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut first = connect(&server.url("/echo")).await.expect("first connection");
    assert_echoes(&mut first, "one").await;

    let response = raw_exchange(server.addr, upgrade_request("/echo", "").as_bytes()).await;
    assert_eq!(response.status, 503, "{}", response.status_line);
    assert_eq!(response.header("Retry-After"), Some("7"));
    let r = rejected(connect(&server.url("/echo")).await);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));

    // The connection that was there keeps working.
    assert_echoes(&mut first, "still here").await;
    assert_eq!(server.app.stats().connections, 1);

    // Once it is gone, there is room again.
    first.close(nextrush_tokio::CloseCode::NORMAL, "").await.unwrap();
    wait_event(&mut events, "disconnect", |e| matches!(e, ServerEvent::Disconnect { .. }).then_some(())).await;
    let mut second = connect(&server.url("/echo")).await.expect("room again");
    assert_echoes(&mut second, "two").await;
}

#[tokio::test]
async fn full_server_without_retry_after_sends_none() {
    let server = start(echo_app(Options::default().max_connections(0))).await;
    let response = raw_exchange(server.addr, upgrade_request("/echo", "").as_bytes()).await;
    assert_eq!(response.status, 503, "{}", response.status_line);
    assert_eq!(response.header("Retry-After"), None);
}

/// `max_connections` bounds connections however many handshakes are in
/// flight at once: a slow `verify_client` keeps them all between the check
/// and the open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_under_concurrent_handshakes() {
    const MAX: usize = 2;
    const TRIES: usize = 12;
    let options = Options::default().max_connections(MAX).verify_client(|_req| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Verified::new())
    });
    let server = start(echo_app(options)).await;
    let url = server.url("/echo");
    let mut tasks = Vec::new();
    for _ in 0..TRIES {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { connect(&url).await }));
    }
    let mut open = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match within("concurrent connect", task).await.unwrap() {
            Ok(ws) => open.push(ws),
            Err(Error::ClientHandshake(ClientHandshakeError::Rejected(r))) => {
                assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
                refused += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(open.len(), MAX, "exactly max_connections get in");
    assert_eq!(refused, TRIES - MAX);
    assert!(server.app.stats().connections <= MAX as u64);
    for ws in &mut open {
        assert_echoes(ws, "ok").await;
    }
}

// ----- verify_client --------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct User {
    name: String,
}

async fn auth_server() -> Server {
    let options = Options::default().verify_client(|req| {
        let auth = req.header("authorization").map(str::to_owned);
        let room = req.query_param("room").map(|r| r.into_owned());
        async move {
            match auth.as_deref() {
                None => Err(Rejection::unauthorized()
                    .with_header(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
                    .with_body("token required\n")),
                Some("Bearer alice") => {
                    Ok(Verified::new().with(User { name: "alice".into() }).with(room.unwrap_or_default()))
                }
                Some(_) => Err(Rejection::forbidden().with_body("bad token\n")),
            }
        }
    });
    let app = App::new(options);
    app.ws("/me", |ws, _req| async move {
        let user = ws.data::<User>().cloned().expect("verify_client attached a User");
        let room = ws.data::<String>().cloned().unwrap_or_default();
        ws.send(format!("{} in {room}", user.name)).await
    })
    .unwrap();
    start(app).await
}

fn bearer(token: &str) -> ClientOptions {
    ClientOptions::default().header(HeaderName::from_static("authorization"), HeaderValue::from_str(token).unwrap())
}

#[tokio::test]
async fn verify_client_rejects_with_401_and_403_and_body() {
    let server = auth_server().await;
    let response = raw_exchange(server.addr, upgrade_request("/me", "").as_bytes()).await;
    assert_eq!(response.status, 401, "{}", response.status_line);
    assert_eq!(response.header("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(response.body, b"token required\n");
    let response =
        raw_exchange(server.addr, upgrade_request("/me", "Authorization: Bearer mallory\r\n").as_bytes()).await;
    assert_eq!(response.status, 403, "{}", response.status_line);
    assert_eq!(response.body, b"bad token\n");

    // The client sees the same refusals, with status, headers and body.
    let r = rejected(Client::default().connect(&server.url("/me")).await);
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers.get(http::header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    assert_eq!(&r.body[..], b"token required\n");
    let r = rejected(Client::new(bearer("Bearer mallory")).connect(&server.url("/me")).await);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(&r.body[..], b"bad token\n");
    assert_eq!(server.app.stats().rejected_handshakes, 4);
    assert_eq!(server.app.stats().total_connections, 0);
}

#[tokio::test]
async fn verify_client_attaches_data_the_handler_reads() {
    let server = auth_server().await;
    let mut ws = Client::new(bearer("Bearer alice")).connect(&server.url("/me?room=kitchen")).await.expect("accepted");
    assert_eq!(within("greeting", ws.recv()).await.unwrap(), Some(Message::text("alice in kitchen")));
}

#[tokio::test]
async fn verify_client_sees_every_request_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let options = Options::default().verify_client(move |_req| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(Verified::new()) }
    });
    let server = start(echo_app(options)).await;
    // Rejected before verification: no call.
    raw_exchange(server.addr, upgrade_request("/nope", "").as_bytes()).await;
    let mut ws = connect(&server.url("/echo")).await.unwrap();
    assert_echoes(&mut ws, "x").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A `verify_client` that never answers (an auth service that hangs) gets
/// the handshake timeout: the client hears 503 with `Retry-After`, and the
/// connection's slot is free again for the next one.
#[tokio::test]
async fn verify_client_that_never_answers_gets_503_after_the_handshake_timeout() {
    let options = Options::default()
        .max_connections(1)
        .handshake_timeout(Duration::from_millis(300))
        .retry_after(Duration::from_secs(7))
        .verify_client(|req| {
            let stall = req.header("x-stall").is_some();
            async move {
                if stall {
                    std::future::pending::<()>().await;
                }
                Ok(Verified::new())
            }
        });
    let server = start(echo_app(options)).await;
    let started = std::time::Instant::now();
    let response = within(
        "a stalled verification",
        raw_exchange(server.addr, upgrade_request("/echo", "X-Stall: 1\r\n").as_bytes()),
    )
    .await;
    assert_eq!(response.status, 503, "{}", response.status_line);
    assert_eq!(response.header("Retry-After"), Some("7"));
    assert_eq!(response.body, b"could not verify the request in time\n");
    assert!(started.elapsed() >= Duration::from_millis(300), "answered only once the timeout passed");
    assert_eq!(server.app.stats().rejected_handshakes, 1);

    // The only slot is free again.
    let mut ws = connect(&server.url("/echo")).await.expect("the slot was given back");
    assert_echoes(&mut ws, "after").await;
}
