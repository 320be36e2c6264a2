//! The reconnecting client against real servers: it comes back after a
//! server restart on the same port and delivers what was sent meanwhile;
//! it stops after a policy close or a 401; it waits what a 503's
//! `Retry-After` asks; it gives up after `max_attempts` failed attempts.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{collect_events, echo_app, start, start_on, wait_event, within};
use nextrush_tokio::{
    App, Backoff, Client, CloseCode, Error, Message, Options, ReconnectEvent, ReconnectOptions, ReconnectingClient,
    Rejection, ServerEvent, connect,
};

const INITIAL: Duration = Duration::from_millis(20);

/// Fast, predictable backoff: 20 ms doubling, no jitter.
fn fast(max_attempts: Option<u32>) -> ReconnectOptions {
    let mut options = ReconnectOptions::default();
    options.backoff = Backoff { initial: INITIAL, factor: 2.0, max: Duration::from_secs(5), jitter: false };
    options.max_attempts = max_attempts;
    options
}

async fn next(rc: &mut ReconnectingClient) -> ReconnectEvent {
    within("reconnecting client event", rc.recv()).await.expect("the client is still running")
}

/// Skips `Reconnecting` events until the client connects; returns the
/// attempt of the last `Reconnecting` (`last` if none came) and of the
/// `Connected`.
async fn until_connected(rc: &mut ReconnectingClient, mut last: u32) -> (u32, u32) {
    loop {
        match next(rc).await {
            ReconnectEvent::Reconnecting { attempt, .. } => last = attempt,
            ReconnectEvent::Connected { attempt } => return (last, attempt),
            other => panic!("unexpected {other:?} while reconnecting"),
        }
    }
}

/// An address nothing listens on.
fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn reconnects_after_a_server_restart_and_delivers_what_was_sent_meanwhile() {
    let first = start(echo_app(Options::default())).await;
    let addr = first.addr;
    let url = first.url("/echo");
    let mut rc = ReconnectingClient::connect(Client::default(), &url, fast(None));
    assert_eq!(next(&mut rc).await, ReconnectEvent::Connected { attempt: 1 });
    rc.send("before").await.unwrap();
    assert_eq!(next(&mut rc).await, ReconnectEvent::Message(Message::text("before")));

    // The server goes away.
    within("shutdown", first.app.shutdown(Duration::from_secs(5))).await;
    within("serve returns", first.serve).await.unwrap().unwrap();
    match next(&mut rc).await {
        ReconnectEvent::Disconnected { code, reason } => {
            assert_eq!(code, CloseCode::GOING_AWAY);
            assert_eq!(reason, "server shutting down");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(!rc.is_connected());
    rc.send("while down 1").await.unwrap();
    rc.send(vec![0xde, 0xad]).await.unwrap();
    // The first retry after a lost connection is attempt 1, after `initial`.
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 1, delay: INITIAL });

    // A new server on the same port.
    let second = start_on(echo_app(Options::default()), &addr.to_string()).await;
    let (last_try, connected) = until_connected(&mut rc, 1).await;
    assert_eq!(connected, last_try, "Connected reports the attempt that succeeded");
    assert!(rc.is_connected());
    // What waited comes through first, in order; then new messages flow.
    assert_eq!(next(&mut rc).await, ReconnectEvent::Message(Message::text("while down 1")));
    assert_eq!(next(&mut rc).await, ReconnectEvent::Message(Message::binary(vec![0xde, 0xad])));
    rc.send("after").await.unwrap();
    assert_eq!(next(&mut rc).await, ReconnectEvent::Message(Message::text("after")));
    assert_eq!(rc.dropped(), 0);
    assert_eq!(second.app.stats().messages_received, 3);

    rc.close().await;
    // After close, the events run out.
    while let Some(event) = within("drain", rc.recv()).await {
        assert!(matches!(event, ReconnectEvent::Disconnected { .. } | ReconnectEvent::GaveUp { .. }), "{event:?}");
    }
    assert!(rc.send("nope").await.is_err());
}

#[tokio::test]
async fn policy_close_ends_the_client_without_reconnecting() {
    let app = App::new(Options::default());
    app.ws("/strict", |mut ws, _req| async move {
        let _ = ws.recv().await?;
        ws.close(CloseCode::POLICY_VIOLATION, "not allowed").await
    })
    .unwrap();
    let server = start(app).await;
    let mut rc = ReconnectingClient::connect(Client::default(), &server.url("/strict"), fast(None));
    assert_eq!(next(&mut rc).await, ReconnectEvent::Connected { attempt: 1 });
    rc.send("anything").await.unwrap();
    assert_eq!(
        next(&mut rc).await,
        ReconnectEvent::Disconnected { code: CloseCode::POLICY_VIOLATION, reason: "not allowed".into() }
    );
    assert!(matches!(next(&mut rc).await, ReconnectEvent::GaveUp { .. }));
    assert_eq!(within("end", rc.recv()).await, None);
    assert!(rc.send("late").await.is_err());
    assert_eq!(server.app.stats().total_connections, 1);
}

#[tokio::test]
async fn unauthorized_handshake_ends_the_client() {
    let options = Options::default().verify_client(|_req| async { Err(Rejection::unauthorized()) });
    let server = start(echo_app(options)).await;
    let mut rc = ReconnectingClient::connect(Client::default(), &server.url("/echo"), fast(None));
    match next(&mut rc).await {
        ReconnectEvent::GaveUp { reason } => assert!(reason.contains("401"), "{reason}"),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!(within("end", rc.recv()).await, None);
    assert_eq!(server.app.stats().rejected_handshakes, 1);
}

#[tokio::test]
async fn retry_after_on_503_is_honoured() {
    let app = echo_app(Options::default().max_connections(1).retry_after(Duration::from_secs(1)));
    let mut events = collect_events(&app);
    let server = start(app).await;
    let url = server.url("/echo");
    let holder = connect(&url).await.unwrap();

    let mut rc = ReconnectingClient::connect(Client::default(), &url, fast(None));
    // Refused with 503 + Retry-After: 1; the wait is the server's, not the backoff's 20 ms.
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 2, delay: Duration::from_secs(1) });
    holder.close(CloseCode::NORMAL, "").await.unwrap();
    wait_event(&mut events, "holder gone", |e| matches!(e, ServerEvent::Disconnect { .. }).then_some(())).await;
    assert_eq!(next(&mut rc).await, ReconnectEvent::Connected { attempt: 2 });
    rc.send("in").await.unwrap();
    assert_eq!(next(&mut rc).await, ReconnectEvent::Message(Message::text("in")));
    assert_eq!(server.app.stats().rejected_handshakes, 1);
}

#[tokio::test]
async fn max_attempts_leads_to_gave_up() {
    let url = format!("ws://{}/echo", dead_addr());
    let mut rc = ReconnectingClient::connect(Client::default(), &url, fast(Some(3)));
    // Attempt 1 fails, then two more tries with the backoff doubling.
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 2, delay: INITIAL });
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 3, delay: INITIAL * 2 });
    match next(&mut rc).await {
        ReconnectEvent::GaveUp { reason } => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!(within("end", rc.recv()).await, None);
    assert!(matches!(rc.send("x").await, Err(Error::Send(_))));
}

/// A lost connection is not a failed attempt: after it, the client still
/// makes `max_attempts` tries before giving up.
#[tokio::test]
async fn max_attempts_counts_fresh_after_a_lost_connection() {
    let server = start(echo_app(Options::default())).await;
    let mut rc = ReconnectingClient::connect(Client::default(), &server.url("/echo"), fast(Some(2)));
    assert_eq!(next(&mut rc).await, ReconnectEvent::Connected { attempt: 1 });
    within("shutdown", server.app.shutdown(Duration::from_secs(5))).await;
    within("serve returns", server.serve).await.unwrap().unwrap();
    assert!(matches!(next(&mut rc).await, ReconnectEvent::Disconnected { code: CloseCode::GOING_AWAY, .. }));
    // The backoff restarts at `initial` and doubles from there.
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 1, delay: INITIAL });
    assert_eq!(next(&mut rc).await, ReconnectEvent::Reconnecting { attempt: 2, delay: INITIAL * 2 });
    assert!(matches!(next(&mut rc).await, ReconnectEvent::GaveUp { .. }));
    assert_eq!(within("end", rc.recv()).await, None);
}
