//! Keep-alive over loopback with short real timers: a peer that never
//! answers pings is dropped and counted in `dead_peers`; a live client stays
//! connected and the server measures its round-trip time; the client pings
//! a quiet server too.

mod common;

use std::time::Duration;

use common::{collect_events, parse_frames, raw_upgrade, read_to_eof, start, wait_event, within};
use nextrush_tokio::{App, Client, ClientOptions, CloseCode, Error, Event, Message, Options, ReadyState, ServerEvent};

fn heartbeat_options() -> Options {
    Options::default().ping_interval(Duration::from_millis(100)).pong_timeout(Duration::from_millis(100))
}

/// `/rtt` waits for three answered keep-alive pings, then reports whether
/// the socket measured a round-trip time.
fn rtt_app(options: Options) -> App {
    let app = App::new(options);
    app.ws("/rtt", |mut ws, _req| async move {
        let mut pongs = 0;
        while pongs < 3 {
            match ws.recv_event().await? {
                Some(Event::Pong(_)) => pongs += 1,
                Some(_) => {}
                None => return Ok(()),
            }
        }
        let rtt = ws.metadata().rtt;
        ws.send(format!("rtt measured: {}", rtt.is_some())).await?;
        // Stay until the client leaves.
        while ws.recv().await?.is_some() {}
        Ok::<_, Error>(())
    })
    .unwrap();
    app
}

#[tokio::test]
async fn silent_peer_is_pinged_then_dropped_as_dead() {
    let app = rtt_app(heartbeat_options());
    let mut events = collect_events(&app);
    let server = start(app).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/rtt", "").await;
    // Never answer: the server pings once, then gives up and hangs up.
    let frames = parse_frames(&read_to_eof(&mut stream).await);
    assert_eq!(frames, [(0x89, Vec::new())], "one empty ping, then EOF");
    let code = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, CloseCode::ABNORMAL);
    let stats = server.app.stats();
    assert_eq!(stats.dead_peers, 1);
    assert_eq!(stats.connections, 0);
}

#[tokio::test]
async fn live_client_answers_pings_and_stays_connected() {
    let server = start(rtt_app(heartbeat_options())).await;
    let mut ws = Client::default().connect(&server.url("/rtt")).await.unwrap();
    // Several ping intervals pass in silence on our side; the driver answers.
    let msg = within("rtt report", ws.recv()).await.unwrap();
    assert_eq!(msg, Some(Message::text("rtt measured: true")));
    assert_eq!(ws.ready_state(), ReadyState::Open);
    let stats = server.app.stats();
    assert_eq!(stats.dead_peers, 0);
    assert_eq!(stats.connections, 1);
    // Still usable after all that.
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(ws.close_reason().unwrap().code(), CloseCode::NORMAL);
}

#[tokio::test]
async fn client_pings_a_quiet_server_and_measures_rtt() {
    let app = App::new(Options::default());
    app.ws("/quiet", |mut ws, _req| async move {
        // Report the client's pings as messages.
        let mut pings = 0;
        while let Some(event) = ws.recv_event().await? {
            if let Event::Ping(_) = event {
                pings += 1;
                if pings == 2 {
                    ws.send("two pings").await?;
                }
            }
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    let server = start(app).await;
    let client = Client::new(ClientOptions::default().ping_interval(Duration::from_millis(50)));
    let mut ws = client.connect(&server.url("/quiet")).await.unwrap();
    let mut pongs = 0;
    let mut report = None;
    while pongs < 2 || report.is_none() {
        match within("pong", ws.recv_event()).await.unwrap() {
            Some(Event::Pong(_)) => pongs += 1,
            Some(Event::Message(m)) => report = Some(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(report, Some(Message::text("two pings")));
    assert!(ws.metadata().rtt.is_some(), "the client measured the round trip");
}
