//! The live example end to end: axum serves HTTP and hands the upgrade to
//! NextRush (`prepare_upgrade` + `serve_upgraded`); a POST to axum publishes
//! to the channel's subscribers.

mod common;

#[allow(dead_code)]
#[path = "../../shared-examples/live.rs"]
mod live;

use std::net::SocketAddr;

use common::{raw_exchange, upgrade_request, within};
use nextrush_tokio::{Message, connect};
use serde_json::{Value, json};

async fn serve() -> SocketAddr {
    let (router, _app) = live::router().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Value {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = raw_exchange(addr, request.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    serde_json::from_slice(&response.body).unwrap()
}

async fn next_json(ws: &mut nextrush_tokio::WebSocket) -> Value {
    let message = within("message", ws.recv()).await.unwrap().expect("open");
    serde_json::from_str(message.as_text().unwrap()).unwrap()
}

#[tokio::test]
async fn publish_from_axum_reaches_subscribers_upgraded_by_axum() {
    let addr = serve().await;
    let mut news = within("connect", connect(&format!("ws://{addr}/live/news"))).await.unwrap();
    let mut sports = within("connect", connect(&format!("ws://{addr}/live/sports"))).await.unwrap();
    assert_eq!(next_json(&mut news).await, json!({"type": "subscribed", "channel": "news"}));
    assert_eq!(next_json(&mut sports).await, json!({"type": "subscribed", "channel": "sports"}));

    let answer = post(addr, "/publish/news", "extra, extra").await;
    assert_eq!(answer, json!({"channel": "news", "subscribers": 1, "queued": 1}));
    assert_eq!(next_json(&mut news).await, json!({"type": "update", "channel": "news", "data": "extra, extra"}));

    let answer = post(addr, "/publish/weather", "rain").await;
    assert_eq!(answer["subscribers"], 0);
    let answer = post(addr, "/publish/sports", "goal").await;
    assert_eq!(answer["subscribers"], 1);
    // Sports got only its own channel.
    assert_eq!(next_json(&mut sports).await["data"], "goal");

    // The socket still works both ways after the hand-over.
    news.ping("still there?").await.unwrap();
    news.send("ignored").await.unwrap();
    post(addr, "/publish/news", "second").await;
    assert_eq!(next_json(&mut news).await["data"], "second");
    news.close(nextrush_tokio::CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(within("close", news.recv()).await.unwrap(), None::<Message>);
}

#[tokio::test]
async fn nextrush_refusals_come_back_through_axum() {
    let addr = serve().await;
    // `close` too: hyper would keep the connection for another request.
    let wrong_version = upgrade_request("/live/news", "")
        .replace("Version: 13", "Version: 8")
        .replace("Connection: Upgrade", "Connection: Upgrade, close");
    let response = raw_exchange(addr, wrong_version.as_bytes()).await;
    assert_eq!(response.status, 426, "{}", response.status_line);
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    // A plain GET of the socket's path: not an upgrade.
    let plain = "GET /live/news HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_exchange(addr, plain.as_bytes()).await.status, 400);
    let page = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let response = raw_exchange(addr, page.as_bytes()).await;
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("Live updates"));
}
