//! The chat example end to end over loopback TCP: tokens, the check before
//! the upgrade, user lists, messages to the room, typing, private messages,
//! history on join, leave, stats.

mod common;

#[allow(dead_code)]
#[path = "../../shared-examples/chat.rs"]
mod chat;

use common::{raw_exchange, start, within};
use nextrush_tokio::{Client, Error, Tokio, WebSocket};
use serde_json::{Value, json};

/// `GET path` on the server, as (status, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let response = raw_exchange(addr, request.as_bytes()).await;
    (response.status, response.body)
}

async fn token(addr: std::net::SocketAddr, name: &str) -> String {
    let (status, body) = get(addr, &format!("/token?name={name}")).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Connects as `name` to `room`; returns the socket and its id from the welcome.
async fn connect(addr: std::net::SocketAddr, name: &str, room: &str) -> (WebSocket, u64) {
    let token = token(addr, name).await;
    let url = format!("ws://{addr}/chat/{room}?token={token}");
    let mut ws = within("connect", Client::default().connect(&url)).await.unwrap();
    let welcome = next(&mut ws, "welcome", |m| m["type"] == "welcome").await;
    assert_eq!(welcome["name"], name);
    assert_eq!(welcome["room"], room);
    (ws, welcome["id"].as_u64().unwrap())
}

/// The next message that `pick` accepts, skipping others.
async fn next(ws: &mut WebSocket, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    within(what, async {
        loop {
            let message = ws.recv().await.unwrap().expect("socket open");
            let value: Value = serde_json::from_str(message.as_text().unwrap()).unwrap();
            if pick(&value) {
                return value;
            }
        }
    })
    .await
}

fn names(users: &Value) -> Vec<&str> {
    users["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect()
}

async fn users(ws: &mut WebSocket, want: &[&str]) {
    let want: Vec<&str> = want.to_vec();
    next(ws, &format!("users {want:?}"), |m| m["type"] == "users" && names(m) == want).await;
}

async fn send(ws: &WebSocket, value: Value) {
    ws.send(value.to_string()).await.unwrap();
}

#[tokio::test]
async fn chat_end_to_end() {
    let server = start(chat::app::<Tokio>().unwrap()).await;
    let addr = server.addr;

    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(page).unwrap().contains("<title>NextRush chat</title>"));
    assert_eq!(get(addr, "/token?name=").await.0, 400);
    assert_eq!(get(addr, "/nothing").await.0, 404);

    // No token, a forged one, a bad room: refused before the upgrade.
    for url in [
        format!("ws://{addr}/chat/lobby"),
        format!("ws://{addr}/chat/lobby?token=e30.e30.e30"),
        format!("ws://{addr}/chat/lobby?token={}x", token(addr, "mallory").await),
    ] {
        match Client::default().connect(&url).await {
            Err(Error::ClientHandshake(e)) => assert!(e.to_string().contains("401"), "{e}"),
            other => panic!("expected 401 for {url}, got {:?}", other.map(|_| ())),
        }
    }
    let bad_room = format!("ws://{addr}/chat/no%20spaces?token={}", token(addr, "alice").await);
    assert!(Client::default().connect(&bad_room).await.is_err());

    let (mut alice, alice_id) = connect(addr, "alice", "lobby").await;
    users(&mut alice, &["alice"]).await;
    let (mut bob, bob_id) = connect(addr, "bob", "lobby").await;
    users(&mut bob, &["alice", "bob"]).await;
    users(&mut alice, &["alice", "bob"]).await;

    // To the room: bob gets it, alice (the sender) does not.
    send(&alice, json!({"type": "message", "id": "m-1", "text": "  hello bob  "})).await;
    let m = next(&mut bob, "message", |m| m["type"] == "message").await;
    assert_eq!((m["from"].as_str(), m["fromId"].as_u64()), (Some("alice"), Some(alice_id)));
    assert_eq!((m["text"].as_str(), m["id"].as_str()), (Some("hello bob"), Some("m-1")));

    send(&bob, json!({"type": "typing"})).await;
    let t = next(&mut alice, "typing", |m| m["type"] == "typing").await;
    assert_eq!(t["from"], "bob");

    send(&bob, json!({"type": "private", "to": alice_id, "text": "psst"})).await;
    let p = next(&mut alice, "private", |m| m["type"] == "private").await;
    assert_eq!((p["from"].as_str(), p["text"].as_str()), (Some("bob"), Some("psst")));
    send(&bob, json!({"type": "private", "to": 999_999, "text": "lost"})).await;
    next(&mut bob, "error", |m| m["type"] == "error").await;
    send(&bob, json!({"type": "nonsense"})).await;
    next(&mut bob, "error", |m| m["type"] == "error").await;

    // Carol joins later: the history replays alice's message, not the private one.
    let (mut carol, _) = connect(addr, "carol", "lobby").await;
    let h = next(&mut carol, "history", |m| m["type"] == "message" || m["type"] == "private").await;
    assert_eq!((h["type"].as_str(), h["text"].as_str()), (Some("message"), Some("hello bob")));
    users(&mut alice, &["alice", "bob", "carol"]).await;

    // Another room does not hear the lobby.
    let (mut dave, _) = connect(addr, "dave", "other").await;
    users(&mut dave, &["dave"]).await;

    bob.close(nextrush_tokio::CloseCode::NORMAL, "bye").await.unwrap();
    drop(bob);
    users(&mut alice, &["alice", "carol"]).await;
    // Bob's id is gone: a private message to it fails.
    send(&alice, json!({"type": "private", "to": bob_id, "text": "gone?"})).await;
    next(&mut alice, "error", |m| m["type"] == "error").await;

    let (status, body) = get(addr, "/stats").await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["rooms"], 2);
    assert_eq!(stats["room_list"], json!([{"name": "lobby", "members": 2}, {"name": "other", "members": 1}]));
    assert!(stats["messages_received"].as_u64().unwrap() >= 5);

    // Nothing from the lobby reached dave: the first thing he gets besides
    // user lists is the answer to his own request.
    send(&carol, json!({"type": "message", "text": "last"})).await;
    next(&mut alice, "last", |m| m["text"] == "last").await;
    send(&dave, json!({"type": "nonsense"})).await;
    let got = next(&mut dave, "dave's error", |m| m["type"] != "users").await;
    assert_eq!(got["type"], "error", "{got}");
}
