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

/// Shutdown under load: several clients, each served by a handler that is
/// still sending as fast as `send` lets it (the outbound queue full, the
/// clients reading slowly) when `shutdown` is called. Every message whose
/// `send` returned `Ok` reaches its client, in order and before the 1001
/// Close; every later `send` fails; all of it well within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_delivers_every_accepted_message_before_1001() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CLIENTS: usize = 4;
    const WARM_UP: usize = 300;
    let accepted_so_far: Arc<Vec<AtomicUsize>> = Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let (tx, mut reports) = mpsc::unbounded_channel();
    let app = App::new(Options::default().outbound_queue(256 * 1024, nextrush_tokio::SlowConsumer::Wait));
    let counters = Arc::clone(&accepted_so_far);
    app.ws("/stream", move |ws, req| {
        let (tx, counters) = (tx.clone(), Arc::clone(&counters));
        let client: usize = req.query_param("c").and_then(|c| c.parse().ok()).expect("client number");
        async move {
            let mut accepted = 0usize;
            let error = loop {
                match ws.send(payload(client * 1_000_000 + accepted)).await {
                    Ok(()) => {
                        accepted += 1;
                        counters[client].fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => break error,
                }
            };
            tx.send((client, accepted, error.to_string())).unwrap();
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let server = start(app).await;
    let client = Client::new(ClientOptions::default().compression(false));
    let mut readers = Vec::new();
    for c in 0..CLIENTS {
        let mut ws = client.connect(&server.url(&format!("/stream?c={c}"))).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut received = 0usize;
            while let Some(message) = within("next message", ws.recv()).await.unwrap() {
                assert_eq!(message, payload(c * 1_000_000 + received), "client {c}, message {received}");
                received += 1;
                if received.is_multiple_of(50) {
                    // A slow reader: the server's queue for it stays full.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            (c, received, ws.close_reason().unwrap())
        }));
    }
    within("handlers busy", async {
        while accepted_so_far.iter().any(|n| n.load(Ordering::SeqCst) < WARM_UP) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let started = std::time::Instant::now();
    let timeout = Duration::from_secs(20);
    within("shutdown", server.app.shutdown(timeout)).await;
    let took = started.elapsed();

    let mut accepted = [None; CLIENTS];
    for _ in 0..CLIENTS {
        let (c, n, error) = within("handler report", reports.recv()).await.unwrap();
        assert!(n >= WARM_UP, "client {c}: handler sent {n}");
        assert!(error.contains("closed") || error.contains("closing"), "client {c}: {error}");
        accepted[c] = Some(n);
    }
    for reader in readers {
        let (c, received, reason) = within("reader", reader).await.unwrap();
        assert_eq!(Some(received), accepted[c], "client {c}: received {received}, accepted {:?}", accepted[c]);
        assert_eq!(reason.code(), CloseCode::GOING_AWAY, "client {c}: {reason:?}");
        assert_eq!(reason.reason(), "server shutting down");
    }
    assert!(took < timeout / 2, "shutdown took {took:?}: connections were dropped, not closed");
    assert_eq!(server.app.stats().connections, 0);
    within("serve returns", server.serve).await.unwrap().unwrap();
}
