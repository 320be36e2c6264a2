//! The echo server behind each adapter's `echo` example, written once for
//! every runtime: `echo --addr HOST:PORT [--protocols a,b]`. Echoes every
//! text and binary message, compression on, messages up to 64 MiB; prints
//! `listening on ws://ADDR` once bound.

use nextrush_driver::{App, Error, Listener, Options, Request, Runtime, WebSocket};

/// Command-line arguments.
pub(crate) struct Args {
    addr: String,
    protocols: Vec<String>,
}

impl Args {
    /// Parses `--addr` and `--protocols`.
    pub(crate) fn parse() -> Result<Self, String> {
        let mut parsed = Self { addr: "127.0.0.1:9001".to_owned(), protocols: Vec::new() };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--addr", Some(value)) => parsed.addr = value,
                ("--protocols", Some(value)) => parsed.protocols = value.split(',').map(str::to_owned).collect(),
                _ => return Err(format!("usage: echo --addr HOST:PORT [--protocols a,b] (got {arg})")),
            }
        }
        Ok(parsed)
    }
}

/// Serves until the process is stopped.
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::default()
        .max_connections(100_000)
        .max_message_size(64 << 20)
        .compression(true)
        .protocols(args.protocols);
    let app = App::<R>::new(options);
    app.ws("/", echo)?;
    app.ws("/*path", echo)?;
    let listener = app.bind(&args.addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    app.serve(listener).await?;
    Ok(())
}

async fn echo(mut ws: WebSocket, req: Request) -> Result<(), Error> {
    drop(req); // nothing in it is needed: free the request headers now
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}
