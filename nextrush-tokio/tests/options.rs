//! Negotiated options over loopback: subprotocol selection on both sides,
//! and permessage-deflate — offered and accepted by default, visible in the
//! 101 and on the wire, off when either side turns it off — with messages
//! round-tripping byte-exact in every combination.

mod common;

use common::{OP_TEXT, echo_app, masked, raw_upgrade, start, within};
use nextrush_tokio::{App, Client, ClientOptions, Error, Message, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `/proto` sends the subprotocol it sees, or `-`.
fn protocol_app(options: Options) -> App {
    let app = App::new(options);
    app.ws("/proto", |ws, _req| async move {
        let seen = ws.protocol().unwrap_or("-").to_owned();
        ws.send(seen).await?;
        ws.closed().await;
        Ok::<_, Error>(())
    })
    .unwrap();
    app
}

async fn negotiate(server: &[&str], client: &[&str]) -> (Option<String>, String) {
    let server = start(protocol_app(Options::default().protocols(server.iter().copied()))).await;
    let client = Client::new(ClientOptions::default().protocols(client.iter().copied()));
    let mut ws = client.connect(&server.url("/proto")).await.unwrap();
    let seen = within("server's view", ws.recv()).await.unwrap().unwrap();
    (ws.protocol().map(str::to_owned), seen.as_text().unwrap().to_owned())
}

#[tokio::test]
async fn server_preference_picks_the_subprotocol_on_both_sides() {
    assert_eq!(negotiate(&["v2", "v1"], &["v1", "v2"]).await, (Some("v2".into()), "v2".into()));
    assert_eq!(negotiate(&["chat"], &["json", "chat"]).await, (Some("chat".into()), "chat".into()));
}

#[tokio::test]
async fn no_common_subprotocol_selects_none() {
    assert_eq!(negotiate(&["v2"], &["v3"]).await, (None, "-".into()));
    assert_eq!(negotiate(&["v2"], &[]).await, (None, "-".into()));
    assert_eq!(negotiate(&[], &["v1"]).await, (None, "-".into()));
}

#[tokio::test]
async fn subprotocol_in_the_101() {
    let server = start(protocol_app(Options::default().protocols(["b", "a"]))).await;
    let (_s, response) = raw_upgrade(server.addr, "/proto", "Sec-WebSocket-Protocol: a, b\r\n").await;
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("b"));
    let (_s, response) = raw_upgrade(server.addr, "/proto", "").await;
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
}

const DEFLATE_OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

#[tokio::test]
async fn compression_is_negotiated_by_default_and_used_on_the_wire() {
    let server = start(echo_app(Options::default())).await;
    let (mut stream, response) = raw_upgrade(server.addr, "/echo", DEFLATE_OFFER).await;
    let extensions = response.header("Sec-WebSocket-Extensions").expect("deflate accepted");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    // An uncompressed message is fine to send; the echo comes back
    // compressed (RSV1 set) and smaller than the text.
    let text = "compress me ".repeat(50);
    stream.write_all(&masked(OP_TEXT, text.as_bytes())).await.unwrap();
    let mut head = [0u8; 2];
    within("echo head", stream.read_exact(&mut head)).await.unwrap();
    assert_eq!(head[0], 0x80 | 0x40 | OP_TEXT, "FIN + RSV1 + text");
    assert!(head[1] < 100, "{} bytes compressed to {}", text.len(), head[1]);

    // No offer, no compression.
    let (_s, response) = raw_upgrade(server.addr, "/echo", "").await;
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
}

#[tokio::test]
async fn compression_off_on_the_server_declines_the_offer() {
    let server = start(echo_app(Options::default().compression(false))).await;
    let (_s, response) = raw_upgrade(server.addr, "/echo", DEFLATE_OFFER).await;
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
}

fn samples() -> Vec<Message> {
    let mut rng = common::Lcg(7);
    vec![
        Message::text(""),
        Message::text("héllo ✓"),
        Message::text("json-ish {\"k\": 1} ".repeat(10_000)),
        Message::binary((0..100_000).map(|_| rng.next_u32() as u8).collect::<Vec<u8>>()),
        Message::binary(vec![0u8; 70_000]),
        Message::text("small"),
    ]
}

#[tokio::test]
async fn messages_round_trip_with_compression_on_and_off() {
    for (server_on, client_on) in [(true, true), (true, false), (false, true), (false, false)] {
        let server = start(echo_app(Options::default().compression(server_on))).await;
        let client = Client::new(ClientOptions::default().compression(client_on));
        let mut ws = client.connect(&server.url("/echo")).await.unwrap();
        let mut sent_bytes = 0;
        for message in samples() {
            sent_bytes += message.len() as u64;
            ws.send(message.clone()).await.unwrap();
            let echo = within("echo", ws.recv()).await.unwrap();
            assert_eq!(echo, Some(message), "server {server_on}, client {client_on}");
        }
        ws.close(nextrush_tokio::CloseCode::NORMAL, "").await.unwrap();
        // Compression really happened only when both sides wanted it: the
        // samples are mostly very compressible.
        let received = server.app.stats().bytes_received;
        if server_on && client_on {
            assert!(received < sent_bytes / 2, "compressed: {received} of {sent_bytes}");
        } else {
            assert!(received > sent_bytes, "uncompressed: {received} of {sent_bytes}");
        }
    }
}
