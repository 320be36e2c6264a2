//! Rooms, channels and private messages through sockets, over loopback.

mod common;

use common::{collect_events, start, wait_event, wait_until, within};
use nextrush_tokio::{
    App, ClientOptions, Error, Message, Options, RoomPolicy, RoomsConfig, ServerEvent, SlowConsumer, connect,
};

/// A chat-like app: `/room/:name` joins the room and relays every message to
/// the others; `/sub/:channel` subscribes; `/dm` answers "id" with its id and
/// forwards "to:ID:text" privately.
fn chat_app(options: Options) -> App {
    let app = App::new(options);
    app.ws("/room/:name", |mut ws, req| async move {
        let room = req.param("name").unwrap_or("lobby").to_owned();
        ws.join(&room)?;
        while let Some(msg) = ws.recv().await? {
            ws.to(&room).except_self().send(msg)?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    app.ws("/sub/:channel", |mut ws, req| async move {
        ws.subscribe(req.param("channel").unwrap_or_default())?;
        while ws.recv().await?.is_some() {}
        Ok::<_, Error>(())
    })
    .unwrap();
    app.ws("/dm", |mut ws, _req| async move {
        while let Some(msg) = ws.recv().await? {
            let text = msg.as_text().unwrap_or_default().to_owned();
            if text == "id" {
                ws.send(ws.id().map(|id| id.get()).unwrap_or_default().to_string()).await?;
            } else if let Some((id, body)) = text.strip_prefix("to:").and_then(|rest| rest.split_once(':')) {
                let id = nextrush_tokio::SocketId::from_raw(id.parse().unwrap_or_default());
                let _delivery = ws.send_to(id, format!("private: {body}"))?;
            }
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    app
}

#[tokio::test]
async fn a_room_relays_to_the_others_but_not_the_sender() {
    let app = chat_app(Options::default());
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut alice = within("alice", connect(&server.url("/room/lobby"))).await.unwrap();
    let mut bob = within("bob", connect(&server.url("/room/lobby"))).await.unwrap();
    let carol = within("carol", connect(&server.url("/room/other"))).await.unwrap();
    for expected in [1, 2] {
        let count = wait_event(&mut events, "join", |e| match e {
            ServerEvent::RoomJoin { room, count, .. } if room == "lobby" => Some(*count),
            _ => None,
        })
        .await;
        assert_eq!(count, expected);
    }
    wait_until("three sockets", || server.app.stats().connections == 3).await;
    alice.send("hi bob").await.unwrap();
    assert_eq!(within("bob gets it", bob.recv()).await.unwrap(), Some(Message::text("hi bob")));
    bob.send("hi alice").await.unwrap();
    assert_eq!(within("alice gets it", alice.recv()).await.unwrap(), Some(Message::text("hi alice")));
    // Neither the sender nor another room heard anything else.
    carol.send("anyone?").await.unwrap();
    alice.send("second").await.unwrap();
    assert_eq!(within("bob, in order", bob.recv()).await.unwrap(), Some(Message::text("second")));
    assert_eq!(server.app.rooms().member_count("lobby"), 2);
    assert_eq!(server.app.stats().rooms, 2);
    drop(carol);
    wait_until("room other removed when empty", || server.app.stats().rooms == 1).await;
    let left = wait_event(&mut events, "leave", |e| match e {
        ServerEvent::RoomLeave { room, count, .. } if room == "other" => Some(*count),
        _ => None,
    })
    .await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn publish_reaches_every_subscriber_from_outside_any_connection() {
    let server = start(chat_app(Options::default())).await;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        subscribers.push(within("subscribe", connect(&server.url("/sub/prices"))).await.unwrap());
    }
    let mut other = within("other channel", connect(&server.url("/sub/news"))).await.unwrap();
    wait_until("subscribed", || server.app.rooms().subscriber_count("prices") == 3).await;
    let fan_out = server.app.publish("prices", "AAPL 230");
    assert_eq!(fan_out.queued, 3);
    for ws in &mut subscribers {
        assert_eq!(within("published", ws.recv()).await.unwrap(), Some(Message::text("AAPL 230")));
    }
    server.app.publish("news", "nothing new");
    assert_eq!(within("news", other.recv()).await.unwrap(), Some(Message::text("nothing new")));
}

#[tokio::test]
async fn private_messages_by_socket_id() {
    let server = start(chat_app(Options::default())).await;
    let alice = within("alice", connect(&server.url("/dm"))).await.unwrap();
    let bob = within("bob", connect(&server.url("/dm"))).await.unwrap();
    let mut bob = bob;
    bob.send("id").await.unwrap();
    let bob_id = within("bob's id", bob.recv()).await.unwrap().unwrap().as_text().unwrap().to_owned();
    alice.send(format!("to:{bob_id}:psst")).await.unwrap();
    assert_eq!(within("private", bob.recv()).await.unwrap(), Some(Message::text("private: psst")));
}

#[tokio::test]
async fn a_slow_consumer_never_delays_the_others_and_drops_are_counted() {
    // Small budgets so a reader that never reads overflows quickly.
    let options = Options::default()
        .outbound_queue(16 * 1024, SlowConsumer::Wait)
        .rooms(RoomsConfig::default().with_default_policy(RoomPolicy::DropNewest));
    let server = start(chat_app(options)).await;
    // The slow one: a raw socket that never reads after the handshake.
    let (_slow, response) = common::raw_upgrade(server.addr, "/room/feed", "").await;
    assert_eq!(response.status, 101);
    let mut fast =
        within("fast", nextrush_tokio::Client::new(ClientOptions::default()).connect(&server.url("/room/feed")))
            .await
            .unwrap();
    let publisher = within("publisher", connect(&server.url("/room/feed"))).await.unwrap();
    wait_until("three members", || server.app.rooms().member_count("feed") == 3).await;
    // Far more than the kernel's socket buffers and our queues can hold.
    let payload = "x".repeat(16 * 1024);
    for i in 0..1500 {
        publisher.send(format!("{i}:{payload}")).await.unwrap();
        let got = within("fast reader keeps up", fast.recv()).await.unwrap().unwrap();
        assert!(got.as_text().unwrap().starts_with(&format!("{i}:")));
    }
    wait_until("drops counted", || server.app.stats().dropped_messages > 0).await;
    assert!(server.app.rooms().stats().dropped_newest > 0);
}

#[tokio::test]
async fn the_disconnect_policy_closes_a_slow_consumer_with_1008() {
    // The evicted peer never answers our close: don't wait long for it.
    let options = Options::default()
        .outbound_queue(16 * 1024, SlowConsumer::Wait)
        .close_timeout(std::time::Duration::from_millis(200))
        .rooms(RoomsConfig::default().with_default_policy(RoomPolicy::Disconnect));
    let server = start(chat_app(options)).await;
    let (mut slow, response) = common::raw_upgrade(server.addr, "/room/feed", "").await;
    assert_eq!(response.status, 101);
    let publisher = within("publisher", connect(&server.url("/room/feed"))).await.unwrap();
    wait_until("two members", || server.app.rooms().member_count("feed") == 2).await;
    let payload = "y".repeat(16 * 1024);
    for i in 0..1500 {
        if publisher.send(format!("{i}:{payload}")).await.is_err() {
            break;
        }
    }
    wait_until("slow one evicted", || server.app.rooms().member_count("feed") == 1).await;
    // Whatever it got before, its stream ends with a 1008 close.
    let bytes = within("slow reads to the end", common::read_to_eof(&mut slow)).await;
    let frames = common::parse_frames(&bytes);
    let (first_byte, body) = frames.last().expect("a close frame");
    assert_eq!(first_byte & 0x0F, common::OP_CLOSE);
    assert_eq!(u16::from_be_bytes([body[0], body[1]]), 1008);
}

#[tokio::test]
async fn idle_history_is_swept_once_a_room_keeps_some() {
    // The sweep keeps no timer until a room keeps history; it must start then.
    let rooms = RoomsConfig::new()
        .with_history_len(3)
        .with_idle_timeout(std::time::Duration::from_millis(200))
        .with_cleanup_interval(std::time::Duration::from_millis(100));
    let server = start(chat_app(Options::default().rooms(rooms))).await;
    let alice = within("alice", connect(&server.url("/room/lobby"))).await.unwrap();
    let mut bob = within("bob", connect(&server.url("/room/lobby"))).await.unwrap();
    wait_until("both joined", || server.app.rooms().member_count("lobby") == 2).await;
    alice.send("remember me").await.unwrap();
    assert_eq!(within("bob gets it", bob.recv()).await.unwrap(), Some(Message::text("remember me")));
    assert_eq!(server.app.rooms().history("lobby").len(), 1, "kept");
    wait_until("history swept after the idle timeout", || server.app.rooms().history("lobby").is_empty()).await;
}
