//! The plain-HTTP fallback over real TCP: `App::get` routes answer `GET`
//! requests without `Upgrade: websocket` on the WebSocket port; everything
//! else keeps its answer, and upgrades on the same port still work.

mod common;

use common::{echo, raw_exchange, start, within};
use http::StatusCode;
use nextrush_tokio::{App, Bytes, HttpRequest, Message, Options, connect};

const PAGE: &str = "<!doctype html><title>chat</title><p>hello";

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
}

async fn page(_req: HttpRequest) -> http::Response<Bytes> {
    http::Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .body(Bytes::from_static(PAGE.as_bytes()))
        .unwrap()
}

/// `/` serves the page, `/hello/:name?greeting=..` echoes its inputs,
/// `/panic` panics, `/chat` is a WebSocket echo and `/both` is both.
fn app() -> App {
    let app = App::new(Options::default());
    app.get("/", page).unwrap();
    app.get("/hello/:name", |req: HttpRequest| async move {
        let text = format!(
            "{} {} from {}",
            req.query_param("greeting").as_deref().unwrap_or("hi"),
            req.param("name").unwrap_or_default(),
            req.header("user-agent").unwrap_or("?"),
        );
        assert!(req.peer_addr().is_some());
        assert_eq!(req.method(), http::Method::GET);
        http::Response::builder().status(StatusCode::CREATED).body(Bytes::from(text)).unwrap()
    })
    .unwrap();
    app.get("/panic", |_req| async { panic!("boom") }).unwrap();
    app.ws("/chat", echo).unwrap();
    app.ws("/both", echo).unwrap();
    app.get("/both", page).unwrap();
    app
}

#[tokio::test]
async fn page_is_served_with_length_and_close() {
    let server = start(app()).await;
    let response = raw_exchange(server.addr, get("/", "Connection: keep-alive\r\n").as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(response.header("content-length"), Some(PAGE.len().to_string().as_str()));
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.body, PAGE.as_bytes());
    // Bytes the server spends on HTTP are counted; HTTP is not a connection.
    let stats = server.app.stats();
    assert!(stats.bytes_sent >= PAGE.len() as u64);
    assert_eq!(stats.total_connections, 0);
    assert_eq!(stats.rejected_handshakes, 0);
}

#[tokio::test]
async fn route_params_query_and_headers_reach_the_handler() {
    let server = start(app()).await;
    let request = get("/hello/bob%20b?greeting=hey+there", "User-Agent: test\r\n");
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 201, "{}", response.status_line);
    assert_eq!(response.body, b"hey there bob b from test");
}

#[tokio::test]
async fn unknown_paths_get_404_and_websocket_paths_keep_400() {
    let server = start(app()).await;
    let response = raw_exchange(server.addr, get("/nope", "").as_bytes()).await;
    assert_eq!(response.status, 404, "{}", response.status_line);
    assert_eq!(response.header("connection"), Some("close"));
    // A WebSocket route asked for without the upgrade: the answer it always had.
    let response = raw_exchange(server.addr, get("/chat", "").as_bytes()).await;
    assert_eq!(response.status, 400, "{}", response.status_line);
    // Other methods: unchanged (400), even on a `get` route.
    let post = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(raw_exchange(server.addr, post.as_bytes()).await.status, 400);
    // A body is refused.
    let response = raw_exchange(server.addr, get("/", "Content-Length: 2\r\n").as_bytes()).await;
    assert_eq!(response.status, 400, "{}", response.status_line);
    assert_eq!(server.app.stats().rejected_handshakes, 4);
}

#[tokio::test]
async fn oversize_head_gets_431() {
    let server = start(app()).await;
    let big = format!("X-Filler: {}\r\n", "a".repeat(9_000));
    let response = raw_exchange(server.addr, get("/", &big).as_bytes()).await;
    assert_eq!(response.status, 431, "{}", response.status_line);
    let many: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let response = raw_exchange(server.addr, get("/", &many).as_bytes()).await;
    assert_eq!(response.status, 431, "{}", response.status_line);
}

#[tokio::test]
async fn websocket_upgrade_on_the_same_port_still_works() {
    let server = start(app()).await;
    for path in ["/chat", "/both"] {
        let mut ws = within("connect", connect(&server.url(path))).await.expect("upgrade");
        ws.send("over the same port").await.unwrap();
        assert_eq!(within("echo", ws.recv()).await.unwrap(), Some(Message::text("over the same port")));
    }
    // The page is still there beside them.
    let response = raw_exchange(server.addr, get("/both", "").as_bytes()).await;
    assert_eq!(response.body, PAGE.as_bytes());
}

#[tokio::test]
async fn panicking_handler_answers_500_and_the_server_goes_on() {
    let server = start(app()).await;
    let response = raw_exchange(server.addr, get("/panic", "").as_bytes()).await;
    assert_eq!(response.status, 500, "{}", response.status_line);
    assert_eq!(server.app.stats().errors, 1);
    assert_eq!(raw_exchange(server.addr, get("/", "").as_bytes()).await.status, 200);
}

#[tokio::test]
async fn conflicting_get_routes_are_refused() {
    let app = App::new(Options::default());
    app.get("/a/:x", page).unwrap();
    assert!(app.get("/a/:x", page).is_err());
}
