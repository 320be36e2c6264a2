//! Server events and statistics over loopback: connection and disconnect
//! events with ids, paths, peer addresses and close codes; error events for
//! rejected handshakes, failing and panicking handlers; and counters that
//! match, byte for byte, what a raw client put on and took off the wire.

mod common;

use common::{
    OP_BINARY, OP_CLOSE, OP_TEXT, collect_events, echo_app, masked, raw_exchange, raw_upgrade, read_to_eof, start,
    upgrade_request, wait_event, wait_until, within,
};
use nextrush_tokio::{App, Client, ClientOptions, CloseCode, Message, Options, ServerEvent, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn connection_and_disconnect_events_and_exact_counters() {
    let app = echo_app(Options::default());
    let mut events = collect_events(&app);
    let server = start(app).await;

    let (mut stream, response) = raw_upgrade(server.addr, "/echo", "").await;
    let mut written = upgrade_request("/echo", "").len();
    let mut read = response.head_len;
    let local = stream.local_addr().unwrap();
    let (id, path, peer) = wait_event(&mut events, "connection", |e| match e {
        ServerEvent::Connection { id, path, peer_addr } => Some((*id, path.clone(), *peer_addr)),
        _ => None,
    })
    .await;
    assert_eq!(path, "/echo");
    assert_eq!(peer, Some(local));
    let stats = server.app.stats();
    assert_eq!((stats.connections, stats.total_connections), (1, 1));

    // Two messages in, two echoes out.
    for (opcode, payload) in [(OP_TEXT, &b"hello"[..]), (OP_BINARY, &[1, 2, 3][..])] {
        let frame = masked(opcode, payload);
        stream.write_all(&frame).await.unwrap();
        written += frame.len();
        let mut echo = vec![0u8; 2 + payload.len()];
        within("echo", stream.read_exact(&mut echo)).await.unwrap();
        assert_eq!(echo[0], 0x80 | opcode);
        assert_eq!(&echo[2..], payload);
        read += echo.len();
    }
    // Close with a code and reason; the server echoes the code and hangs up.
    let close = masked(OP_CLOSE, &[0x0f, 0xa1, b'b', b'y', b'e']);
    stream.write_all(&close).await.unwrap();
    written += close.len();
    let tail = read_to_eof(&mut stream).await;
    assert_eq!(tail, [0x88, 2, 0x0f, 0xa1]);
    read += tail.len();

    let (gone, code, reason) = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Disconnect { id, code, reason } => Some((*id, *code, reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!((gone, code, reason.as_str()), (id, CloseCode(4001), "bye"));

    let stats = server.app.stats();
    assert_eq!(stats.connections, 0);
    assert_eq!(stats.total_connections, 1);
    assert_eq!(stats.messages_received, 2);
    assert_eq!(stats.messages_sent, 2);
    assert_eq!(stats.bytes_received, written as u64, "every byte the client wrote");
    assert_eq!(stats.bytes_sent, read as u64, "every byte the client read");
    assert_eq!(stats.errors, 0);
}

#[tokio::test]
async fn totals_add_up_over_several_clients() {
    let app = echo_app(Options::default());
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut ids = Vec::new();
    for round in 0..3 {
        let mut ws = connect(&server.url("/echo")).await.unwrap();
        for i in 0..4 {
            ws.send(format!("{round}-{i}")).await.unwrap();
            assert_eq!(within("echo", ws.recv()).await.unwrap(), Some(Message::text(format!("{round}-{i}"))));
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        let id = wait_event(&mut events, "disconnect", |e| match e {
            ServerEvent::Disconnect { id, code, .. } => {
                assert_eq!(*code, CloseCode::NORMAL);
                Some(*id)
            }
            _ => None,
        })
        .await;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each connection has its own id");
    let stats = server.app.stats();
    assert_eq!(stats.total_connections, 3);
    assert_eq!(stats.connections, 0);
    assert_eq!(stats.messages_received, 12);
    assert_eq!(stats.messages_sent, 12);
    assert!(stats.bytes_received > 0 && stats.bytes_sent > 0);
}

/// Each connection counts its own traffic; a snapshot adds up the open ones
/// and those that ended: every message exactly once, before and after its
/// connection closes, on the server and on the client.
#[tokio::test]
async fn traffic_counts_once_while_connections_are_open_and_after_they_close() {
    let server = start(echo_app(Options::default())).await;
    let client = Client::new(ClientOptions::default());
    let mut first = client.connect(&server.url("/echo")).await.unwrap();
    let mut second = client.connect(&server.url("/echo")).await.unwrap();
    for (ws, count) in [(&mut first, 3), (&mut second, 2)] {
        for i in 0..count {
            ws.send(format!("m{i}")).await.unwrap();
            assert_eq!(within("echo", ws.recv()).await.unwrap(), Some(Message::text(format!("m{i}"))));
        }
    }
    let open = server.app.stats();
    assert_eq!((open.messages_received, open.messages_sent), (5, 5), "both connections open");
    let client_open = client.stats();
    assert_eq!((client_open.messages_sent, client_open.messages_received), (5, 5));
    assert_eq!(client_open.bytes_sent, first.metadata().bytes_out + second.metadata().bytes_out);

    first.close(CloseCode::NORMAL, "").await.unwrap();
    wait_until("first closed on the server", || server.app.stats().connections == 1).await;
    let one_closed = server.app.stats();
    assert_eq!((one_closed.messages_received, one_closed.messages_sent), (5, 5), "one open, one ended");
    assert!(one_closed.bytes_received > open.bytes_received, "the close frame was read");
    assert_eq!(client.stats().messages_sent, 5);

    second.send("last").await.unwrap();
    assert_eq!(within("echo", second.recv()).await.unwrap(), Some(Message::text("last")));
    second.close(CloseCode::NORMAL, "").await.unwrap();
    wait_until("both closed on the server", || server.app.stats().connections == 0).await;
    let ended = server.app.stats();
    assert_eq!((ended.messages_received, ended.messages_sent), (6, 6), "both ended");
    let client_ended = client.stats();
    assert_eq!((client_ended.messages_sent, client_ended.messages_received), (6, 6));
    assert!(client_ended.bytes_sent > client_open.bytes_sent, "\"last\" and two close frames");
}

#[tokio::test]
async fn error_events_for_rejections_handler_errors_and_panics() {
    let app = App::new(Options::default());
    app.ws("/fail", |_ws, _req| async move { Err::<(), _>("boom") }).unwrap();
    app.ws("/panic", |_ws, _req| async move {
        if true {
            panic!("handler blew up");
        }
        Ok::<_, nextrush_tokio::Error>(())
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;

    // A rejected handshake: an error without a connection id.
    let response = raw_exchange(server.addr, upgrade_request("/nowhere", "").as_bytes()).await;
    assert_eq!(response.status, 404);
    let message = wait_event(&mut events, "rejection error", |e| match e {
        ServerEvent::Error { id: None, message } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert!(message.contains("404"), "{message}");

    // A handler that fails, and one that panics: errors with the id, then
    // the socket closes normally.
    for (path, expected) in [("/fail", "boom"), ("/panic", "panicked")] {
        let mut ws = connect(&server.url(path)).await.unwrap();
        let id = wait_event(&mut events, "connection", |e| match e {
            ServerEvent::Connection { id, .. } => Some(*id),
            _ => None,
        })
        .await;
        assert_eq!(within("close", ws.recv()).await.unwrap(), None);
        assert_eq!(ws.close_reason().unwrap().code(), CloseCode::NORMAL);
        let message = wait_event(&mut events, "handler error", |e| match e {
            ServerEvent::Error { id: Some(got), message } if *got == id => Some(message.clone()),
            _ => None,
        })
        .await;
        assert!(message.contains(expected), "{message}");
        wait_event(&mut events, "disconnect", |e| match e {
            ServerEvent::Disconnect { id: got, .. } => (*got == id).then_some(()),
            _ => None,
        })
        .await;
    }
    let stats = server.app.stats();
    assert_eq!(stats.errors, 2);
    assert_eq!(stats.rejected_handshakes, 1);
    assert_eq!(stats.total_connections, 2);
}
