//! Per-socket rate limits over loopback: `Close` ends the connection with
//! 1008; `Drop` hides the excess from the handler, counts it in
//! `stats().rate_limited`, and lets messages through again in the next window.

mod common;

use std::time::Duration;

use common::{echo_app, start, wait_until, within};
use nextrush_tokio::{App, CloseCode, Error, Message, Options, RateLimitAction, connect};
use tokio::sync::mpsc;

/// An app whose `/count` handler reports every message it saw, once the
/// socket closes.
fn counting_app(options: Options) -> (App, mpsc::UnboundedReceiver<Vec<String>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = App::new(options);
    app.ws("/count", move |mut ws, _req| {
        let tx = tx.clone();
        async move {
            let mut seen = Vec::new();
            while let Some(msg) = ws.recv().await? {
                seen.push(msg.as_text().unwrap_or_default().to_owned());
            }
            tx.send(seen).unwrap();
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    (app, rx)
}

#[tokio::test]
async fn close_action_ends_the_connection_with_1008() {
    let options = Options::default().rate_limit(3, Duration::from_secs(60), RateLimitAction::Close);
    let server = start(echo_app(options)).await;
    let mut ws = connect(&server.url("/echo")).await.unwrap();
    for i in 0..4 {
        ws.send(format!("m{i}")).await.unwrap();
    }
    let mut echoed = Vec::new();
    while let Some(msg) = within("echo or close", ws.recv()).await.unwrap() {
        echoed.push(msg);
    }
    let allowed: Vec<Message> = (0..3).map(|i| Message::text(format!("m{i}"))).collect();
    assert!(allowed.starts_with(&echoed), "only messages within the limit come back: {echoed:?}");
    let reason = ws.close_reason().unwrap();
    assert_eq!(reason.code(), CloseCode::POLICY_VIOLATION, "{reason:?}");
}

#[tokio::test]
async fn drop_action_hides_the_excess_and_counts_it() {
    let options = Options::default().rate_limit(3, Duration::from_secs(60), RateLimitAction::Drop);
    let (app, mut seen) = counting_app(options);
    let server = start(app).await;
    // Two sockets: the limit is per socket.
    for _ in 0..2 {
        let ws = connect(&server.url("/count")).await.unwrap();
        for i in 0..10 {
            ws.send(format!("m{i}")).await.unwrap();
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        let got = within("handler report", seen.recv()).await.unwrap();
        assert_eq!(got, ["m0", "m1", "m2"]);
    }
    let stats = server.app.stats();
    assert_eq!(stats.rate_limited, 14);
    assert_eq!(stats.messages_received, 6);
}

#[tokio::test]
async fn drop_action_lets_messages_through_in_the_next_window() {
    let window = Duration::from_secs(1);
    let options = Options::default().rate_limit(2, window, RateLimitAction::Drop);
    let (app, mut seen) = counting_app(options);
    let server = start(app).await;
    let ws = connect(&server.url("/count")).await.unwrap();
    for i in 0..4 {
        ws.send(format!("a{i}")).await.unwrap();
    }
    let app = server.app.clone();
    wait_until("two dropped", || app.stats().rate_limited == 2).await;
    // The window started before the drops were counted: this is past it.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    for i in 0..4 {
        ws.send(format!("b{i}")).await.unwrap();
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let got = within("handler report", seen.recv()).await.unwrap();
    assert_eq!(got, ["a0", "a1", "b0", "b1"]);
    assert_eq!(server.app.stats().rate_limited, 4);
}
