//! Loopback basics: echo over a real TCP socket with the client.

use nextrush_tokio::{App, Message, Options, connect};

async fn echo_server(options: Options) -> (App, String) {
    let app = App::new(options);
    app.ws("/echo", |mut ws, _req| async move {
        while let Some(msg) = ws.recv().await? {
            ws.send(msg).await?;
        }
        Ok::<_, nextrush_tokio::Error>(())
    })
    .unwrap();
    let listener = app.bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/echo", listener.0.local_addr().unwrap());
    let server = app.clone();
    tokio::spawn(async move { server.serve(listener).await });
    (app, url)
}

#[tokio::test]
async fn echo_text_and_binary() {
    let (app, url) = echo_server(Options::default()).await;
    let mut ws = connect(&url).await.unwrap();
    ws.send("hello").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("hello")));
    ws.send(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::binary(vec![1u8, 2, 3])));
    let big = "x".repeat(300_000);
    ws.send(big.clone()).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text(big)));
    ws.close(nextrush_tokio::CloseCode::NORMAL, "bye").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), None);
    assert_eq!(app.stats().total_connections, 1);
}
