//! Echo server: every text and binary message comes back.
//!
//! `cargo run --release -p nextrush-tokio --example echo -- --addr 127.0.0.1:9001 [--protocols a,b]`
//!
//! Compression on, messages up to 64 MiB, one worker thread.

use nextrush_tokio::{App, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut protocols = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--protocols", Some(value)) => protocols = value.split(',').map(str::to_owned).collect(),
            _ => {
                return Err(format!("usage: echo --addr HOST:PORT [--protocols a,b] (got {arg})").into());
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let options = Options::default()
            .max_connections(100_000)
            .max_message_size(64 << 20)
            .compression(true)
            .protocols(protocols);
        let app = App::new(options);
        app.ws("/*path", echo)?;
        app.ws("/", echo)?;
        let listener = app.bind(&addr).await?;
        println!("listening on ws://{}", listener.0.local_addr()?);
        app.serve(listener).await?;
        Ok(())
    })
}

async fn echo(mut ws: nextrush_tokio::WebSocket, _req: nextrush_tokio::Request) -> Result<(), nextrush_tokio::Error> {
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}
