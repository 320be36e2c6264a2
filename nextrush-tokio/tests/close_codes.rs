//! Close codes on the wire: a server closing with a code and the client
//! reading it back, and protocol errors from a raw client answered with the
//! exact Close frame bytes (1002, 1007, 1009) before the server hangs up.

mod common;

use common::{
    OP_BINARY, OP_CONT, OP_TEXT, collect_events, echo_app, frame, masked, masked_close, parse_frames, raw_upgrade,
    read_to_eof, server_close, start, wait_event, within,
};
use nextrush_tokio::{App, CloseCode, CloseReason, Error, Message, Options, ServerEvent, connect};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn server_close_code_reaches_the_client() {
    let app = App::new(Options::default());
    app.ws("/bye", |ws, _req| async move {
        ws.send("last words").await?;
        ws.close(CloseCode(4321), "see you").await
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let mut ws = connect(&server.url("/bye")).await.unwrap();
    assert_eq!(within("message", ws.recv()).await.unwrap(), Some(Message::text("last words")));
    // A clean close ends the stream with `None`...
    assert_eq!(within("close", ws.recv()).await.unwrap(), None);
    // ...and says why.
    let reason = ws.close_reason().expect("closed");
    assert_eq!(reason.code(), CloseCode(4321));
    assert_eq!(reason.reason(), "see you");
    assert!(matches!(reason, CloseReason::Clean { .. }), "{reason:?}");
    within("closed", ws.closed()).await;
    // The server saw our echo of its code.
    let code = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, CloseCode(4321));
}

#[tokio::test]
async fn server_close_bytes_on_a_raw_socket() {
    let app = App::new(Options::default());
    app.ws("/bye", |ws, _req| async move { ws.close(CloseCode::NORMAL, "done").await }).unwrap();
    let server = start(app).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/bye", "").await;
    // Read the server's Close, answer it, then the server hangs up.
    let mut close = [0u8; 8];
    within("close frame", tokio::io::AsyncReadExt::read_exact(&mut stream, &mut close)).await.unwrap();
    assert_eq!(close, [0x88, 6, 0x03, 0xE8, b'd', b'o', b'n', b'e']);
    stream.write_all(&masked_close(1000)).await.unwrap();
    assert_eq!(read_to_eof(&mut stream).await, b"");
}

/// Sends `bytes` after the handshake and returns all the server wrote until
/// it closed.
async fn answer_to(options: Options, bytes: &[u8]) -> Vec<u8> {
    let server = start(echo_app(options)).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/echo", "").await;
    stream.write_all(bytes).await.unwrap();
    read_to_eof(&mut stream).await
}

#[tokio::test]
async fn unmasked_frame_is_1002() {
    let got = answer_to(Options::default(), &frame(true, OP_TEXT, b"hi", None)).await;
    assert_eq!(got, server_close(1002));
}

#[tokio::test]
async fn reserved_opcode_is_1002() {
    let got = answer_to(Options::default(), &masked(0x3, b"")).await;
    assert_eq!(got, server_close(1002));
}

#[tokio::test]
async fn invalid_utf8_is_1007() {
    let got = answer_to(Options::default(), &masked(OP_TEXT, &[b'o', b'k', 0xff, 0xfe])).await;
    assert_eq!(got, server_close(1007));
}

#[tokio::test]
async fn invalid_utf8_split_across_fragments_is_1007() {
    // "é" is C3 A9: end the first fragment mid-character, then break it.
    let mut bytes = frame(false, OP_TEXT, &[b'a', 0xC3], Some([1, 2, 3, 4]));
    bytes.extend(frame(true, OP_CONT, b"b", Some([5, 6, 7, 8])));
    let got = answer_to(Options::default(), &bytes).await;
    assert_eq!(got, server_close(1007));
}

#[tokio::test]
async fn oversize_frame_is_1009() {
    let got = answer_to(Options::default().max_message_size(1024), &masked(OP_BINARY, &[7u8; 2000])).await;
    assert_eq!(got, server_close(1009));
}

#[tokio::test]
async fn oversize_fragmented_message_is_1009() {
    // Each frame fits, the message does not.
    let mut bytes = frame(false, OP_BINARY, &[1u8; 600], Some([1, 2, 3, 4]));
    bytes.extend(frame(true, OP_CONT, &[2u8; 600], Some([1, 2, 3, 4])));
    let got = answer_to(Options::default().max_message_size(1024), &bytes).await;
    assert_eq!(got, server_close(1009));
}

#[tokio::test]
async fn messages_before_the_error_are_still_answered() {
    let mut bytes = masked(OP_TEXT, b"fine");
    bytes.extend(frame(true, OP_TEXT, b"unmasked", None));
    let server = start(echo_app(Options::default())).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/echo", "").await;
    stream.write_all(&bytes).await.unwrap();
    let frames = parse_frames(&read_to_eof(&mut stream).await);
    // The echo may or may not have been queued before the error: the Close
    // is last either way, and nothing follows it.
    let (last, earlier) = frames.split_last().expect("a close frame");
    assert_eq!(*last, (0x88, 1002u16.to_be_bytes().to_vec()));
    for f in earlier {
        assert_eq!(*f, (0x81, b"fine".to_vec()));
    }
}

#[tokio::test]
async fn client_sees_1009_when_its_message_is_too_big() {
    let server = start(echo_app(Options::default().max_message_size(1024))).await;
    let mut ws = connect(&server.url("/echo")).await.unwrap();
    ws.send(vec![0u8; 4096]).await.unwrap();
    // The server closed cleanly from the client's point of view, with 1009.
    assert_eq!(within("close", ws.recv()).await.unwrap(), None);
    assert_eq!(ws.close_reason().unwrap().code(), CloseCode::MESSAGE_TOO_BIG);
    // Sending afterwards fails instead of vanishing.
    assert!(matches!(ws.send("late").await, Err(Error::Send(_) | Error::Closed(_))));
}

#[tokio::test]
async fn protocol_error_is_a_server_error_event_and_a_1002_disconnect() {
    let app = App::new(Options::default());
    // A handler that swallows the error: the server reports it all the same.
    app.ws("/quiet", |mut ws, _req| async move {
        while let Ok(Some(_)) = ws.recv().await {}
        Ok::<_, Error>(())
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/quiet", "").await;
    stream.write_all(&frame(true, OP_TEXT, b"x", None)).await.unwrap();
    assert_eq!(read_to_eof(&mut stream).await, server_close(1002));
    let mut error = None;
    let code = wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Error { id: Some(_), message } => {
            error = Some(message.clone());
            None
        }
        ServerEvent::Disconnect { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    let error = error.expect("a protocol error is reported as ServerEvent::Error");
    assert!(error.contains("not masked"), "{error}");
    assert_eq!(server.app.stats().errors, 1);
}

#[tokio::test]
async fn a_handler_passing_on_the_protocol_error_is_counted_once() {
    let app = App::new(Options::default());
    // The usual handler: `?` passes the connection's failure on.
    app.ws("/loud", |mut ws, _req| async move {
        while let Some(m) = ws.recv().await? {
            ws.send(m).await?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    let mut events = collect_events(&app);
    let server = start(app).await;
    let (mut stream, _) = raw_upgrade(server.addr, "/loud", "").await;
    stream.write_all(&frame(true, OP_TEXT, b"x", None)).await.unwrap();
    assert_eq!(read_to_eof(&mut stream).await, server_close(1002));
    let mut error_events = 0;
    wait_event(&mut events, "disconnect", |e| match e {
        ServerEvent::Error { .. } => {
            error_events += 1;
            None
        }
        ServerEvent::Disconnect { .. } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(error_events, 1);
    assert_eq!(server.app.stats().errors, 1);
}
