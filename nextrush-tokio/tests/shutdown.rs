//! Graceful shutdown over loopback: every client gets what was queued for
//! it and then a 1001 Close; `serve` returns and the port refuses new
//! connections; a peer that never completes the close handshake is dropped
//! at the timeout; a handshake that arrives during shutdown is refused.

mod common;

use std::time::Duration;

use common::{
    OP_CLOSE, collect_events, parse_frames, raw_upgrade, read_to_eof, start, upgrade_request, wait_event, within,
};
use nextrush_tokio::{App, Client, ClientOptions, CloseCode, Error, Message, Options, ServerEvent, connect};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

const QUEUED: usize = 300;

fn payload(i: usize) -> Message {
    let mut v = (i as u32).to_le_bytes().to_vec();
    v.extend((0..1_000).map(|j| (i * 31 + j * 7) as u8));
    Message::binary(v)
}

/// `/flood` queues `QUEUED` messages at once, reports how many bytes are
/// still waiting to be written, then waits for the end.
fn flood_app() -> (App, mpsc::UnboundedReceiver<usize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = App::new(Options::default());
    app.ws("/flood", move |mut ws, _req| {
        let tx = tx.clone();
        async move {
            for i in 0..QUEUED {
                ws.send(payload(i)).await?;
            }
            tx.send(ws.metadata().buffered).unwrap();
            while ws.recv().await?.is_some() {}
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    (app, rx)
}

#[tokio::test]
async fn shutdown_delivers_queued_messages_then_1001_and_stops_serving() {
    let (app, mut queued) = flood_app();
    let server = start(app).await;
    let url = server.url("/flood");
    let client = Client::new(ClientOptions::default().compression(false));
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(client.connect(&url).await.unwrap());
    }
    for _ in 0..3 {
        let buffered = within("handler queued", queued.recv()).await.unwrap();
        assert!(buffered > 0, "messages are still queued on the server when shutdown starts");
    }
    let app = server.app.clone();
    let shutdown = tokio::spawn(async move { app.shutdown(Duration::from_secs(60)).await });

    for mut ws in sockets {
        for i in 0..QUEUED {
            let got = within("queued message", ws.recv()).await.unwrap();
            assert_eq!(got, Some(payload(i)), "message {i}");
        }
        assert_eq!(within("close", ws.recv()).await.unwrap(), None);
        let reason = ws.close_reason().unwrap();
        assert_eq!(reason.code(), CloseCode::GOING_AWAY, "{reason:?}");
        assert_eq!(reason.reason(), "server shutting down");
    }
    // Everyone closed cleanly, so shutdown is over long before its timeout.
    within("shutdown", shutdown).await.unwrap();
    within("serve returns", server.serve).await.unwrap().expect("serve ends without error");
    assert!(server.app.is_shutting_down());
    assert_eq!(server.app.stats().connections, 0);

    // The port no longer takes connections.
    match connect(&url).await {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected connection refused, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_drops_a_peer_that_never_answers_the_close() {
    let app = App::new(Options::default());
    app.ws("/hold", |mut ws, _req| async move {
        while ws.recv().await?.is_some() {}
        Ok::<_, Error>(())
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/hold", "").await;
    wait_event(&mut events, "connection", |e| matches!(e, ServerEvent::Connection { .. }).then_some(())).await;

    within("shutdown", server.app.shutdown(Duration::from_millis(200))).await;
    // The Close came, then the server hung up without waiting any longer.
    let frames = parse_frames(&read_to_eof(&mut stream).await);
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"server shutting down");
    assert_eq!(frames, [(0x80 | OP_CLOSE, close)]);
    let code = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, CloseCode::ABNORMAL);
    within("serve returns", server.serve).await.unwrap().unwrap();
}

/// A connection accepted before shutdown whose request only arrives after
/// it started is refused, and does not hold the shutdown up.
#[tokio::test]
async fn handshake_arriving_during_shutdown_is_refused() {
    let app = App::new(Options::default());
    app.ws("/late", common::echo).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = common::tcp(addr).await;
    let (accepted, peer) = listener.accept().await.unwrap();
    let serving = app.clone();
    let connection = tokio::spawn(async move { serving.accept(accepted, Some(peer)).await });

    let stopping = app.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(30)).await });
    within("shutdown starts", async {
        while !app.is_shutting_down() {
            tokio::task::yield_now().await;
        }
    })
    .await;

    client.write_all(upgrade_request("/late", "").as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_eof(&mut client).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    within("connection task", connection).await.unwrap();
    within("shutdown", shutdown).await.unwrap();
    assert_eq!(app.stats().total_connections, 0);
}
