//! A connection whose HTTP upgrade another server handled (as hyper or axum
//! would): `prepare_upgrade` decides and gives the 101 headers,
//! `serve_upgraded` runs the handler on the upgraded stream.

use nextrush_tokio::{App, Client, Message, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads an HTTP request head from `stream` and parses it into `http` parts.
async fn read_parts(stream: &mut tokio::io::DuplexStream) -> http::request::Parts {
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        buf.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf).unwrap();
    let mut builder = http::Request::builder().method(req.method.unwrap()).uri(req.path.unwrap());
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    builder.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn serve_a_connection_upgraded_elsewhere() {
    let app = App::new(Options::default());
    app.ws("/live/:topic", |mut ws, req| async move {
        let topic = req.param("topic").unwrap_or_default().to_owned();
        ws.send(format!("subscribed to {topic}")).await?;
        while let Some(m) = ws.recv().await? {
            ws.send(m).await?;
        }
        Ok::<_, nextrush_tokio::Error>(())
    })
    .unwrap();
    let (client_end, mut server_end) = tokio::io::duplex(64 * 1024);
    let client =
        tokio::spawn(async move { Client::default().connect_with(client_end, "ws://example.com/live/prices").await });

    // What the HTTP framework does: parse, ask NextRush, send the 101.
    let parts = read_parts(&mut server_end).await;
    let upgrade = app.prepare_upgrade(&parts, None).await.unwrap();
    let response: http::Response<()> = upgrade.response();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert!(response.headers()["sec-websocket-extensions"].to_str().unwrap().starts_with("permessage-deflate"));
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in response.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n");
    server_end.write_all(head.as_bytes()).await.unwrap();
    let server_app = app.clone();
    tokio::spawn(async move { server_app.serve_upgraded(upgrade, server_end).await });

    let mut ws = client.await.unwrap().unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("subscribed to prices")));
    ws.send("ping me back").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("ping me back")));
}

#[tokio::test]
async fn prepare_upgrade_rejects_unknown_routes_and_bad_requests() {
    let app = App::new(Options::default());
    app.ws("/live", |_ws, _req| async { Ok::<_, nextrush_tokio::Error>(()) }).unwrap();
    let upgrade = |path: &str, version: &str| {
        http::Request::get(path)
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", version)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    assert_eq!(app.prepare_upgrade(&upgrade("/nope", "13"), None).await.unwrap_err().status(), 404);
    assert_eq!(app.prepare_upgrade(&upgrade("/live", "8"), None).await.unwrap_err().status(), 426);
    assert!(app.prepare_upgrade(&upgrade("/live", "13"), None).await.is_ok());
}
