//! The echo server behind each adapter's `echo` example, written once for
//! every runtime: `echo --addr HOST:PORT [--protocols a,b]
//! [--tls-cert FILE --tls-key FILE]`. Echoes every text and binary message,
//! compression on, messages up to 64 MiB; prints `listening on ws://ADDR`
//! once bound, or `listening on wss://ADDR` when serving TLS with the given
//! PEM certificate chain and private key (the adapter's `rustls` feature).

use nextrush_driver::{App, Error, Listener, Options, Request, Runtime, WebSocket};

/// Command-line arguments.
pub(crate) struct Args {
    addr: String,
    protocols: Vec<String>,
    /// PEM certificate chain and private key: serve `wss://`.
    tls: Option<(String, String)>,
}

const USAGE: &str = "usage: echo --addr HOST:PORT [--protocols a,b] [--tls-cert FILE --tls-key FILE]";

impl Args {
    /// Parses `--addr`, `--protocols`, `--tls-cert` and `--tls-key`.
    pub(crate) fn parse() -> Result<Self, String> {
        let mut addr = "127.0.0.1:9001".to_owned();
        let mut protocols = Vec::new();
        let (mut cert, mut key) = (None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--addr", Some(value)) => addr = value,
                ("--protocols", Some(value)) => protocols = value.split(',').map(str::to_owned).collect(),
                ("--tls-cert", Some(value)) => cert = Some(value),
                ("--tls-key", Some(value)) => key = Some(value),
                _ => return Err(format!("{USAGE} (got {arg})")),
            }
        }
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(format!("{USAGE}: --tls-cert and --tls-key go together")),
        };
        Ok(Self { addr, protocols, tls })
    }
}

/// The echo application, bound to its address.
async fn bind<R: Runtime>(args: &Args) -> Result<(App<R>, R::Listener), Box<dyn std::error::Error>> {
    let options = Options::default()
        .max_connections(100_000)
        .max_message_size(64 << 20)
        .compression(true)
        .protocols(args.protocols.clone());
    let app = App::<R>::new(options);
    app.ws("/", echo)?;
    app.ws("/*path", echo)?;
    let listener = app.bind(&args.addr).await?;
    Ok((app, listener))
}

/// Serves until the process is stopped.
#[cfg(feature = "rustls")]
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>>
where
    std::sync::Arc<nextrush_driver::tls::rustls::ServerConfig>: nextrush_driver::TlsAccept<R::TcpStream>,
{
    let (app, listener) = bind::<R>(&args).await?;
    match &args.tls {
        Some((cert, key)) => {
            let config = nextrush_driver::tls::server_config_from_pem_files(cert, key)?;
            println!("listening on wss://{}", listener.local_addr()?);
            app.serve_tls(listener, config).await?;
        }
        None => {
            println!("listening on ws://{}", listener.local_addr()?);
            app.serve(listener).await?;
        }
    }
    Ok(())
}

/// Serves until the process is stopped.
#[cfg(not(feature = "rustls"))]
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.tls.is_some() {
        return Err("--tls-cert/--tls-key need TLS: build the example with `--features rustls`".into());
    }
    let (app, listener) = bind::<R>(&args).await?;
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
