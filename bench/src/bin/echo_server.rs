//! Echo server under test, on a tokio current-thread runtime (one thread).
//!
//! `echo_server --impl nextrush|fastwebsockets|tungstenite --addr 127.0.0.1:PORT [--tls]`
//!
//! Prints `listening on HOST:PORT` once bound (PORT 0 picks a free port).
//! With `--tls`, serves wss:// with the bench certificate
//! (`nextrush_bench::tls`): NextRush through `App::serve_tls`, the others
//! behind `tokio_rustls::TlsAcceptor` with the very same rustls
//! configuration.

use nextrush_bench::{Args, die, raise_nofile};
use nextrush_tokio::tls::tokio_rustls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

fn main() {
    let args = Args::parse(&["tls"]);
    let which = args.str("impl").unwrap_or_else(|| die("--impl nextrush|fastwebsockets|tungstenite")).to_owned();
    let addr = args.str("addr").unwrap_or("127.0.0.1:0").to_owned();
    let tls = args.flag("tls");
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = rt.block_on(async move {
        let acceptor = tls.then(|| TlsAcceptor::from(nextrush_bench::tls::server()));
        match which.as_str() {
            "nextrush" => nextrush(&addr, tls).await,
            "fastwebsockets" => fws::serve(&addr, acceptor).await,
            "tungstenite" => tung::serve(&addr, acceptor).await,
            other => die(&format!("unknown --impl {other}")),
        }
    });
    if let Err(e) = result {
        die(&e.to_string());
    }
}

type BoxResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    std::io::stdout().flush().ok();
}

// --- NextRush: App with compression and heartbeats off, like the echo example.

async fn nextrush(addr: &str, tls: bool) -> BoxResult {
    use nextrush_tokio::{App, Options};
    let options =
        Options::default().compression(false).max_message_size(64 << 20).max_connections(100_000).ping_interval(None);
    let app = App::new(options);
    app.ws("/*path", nextrush_echo)?;
    app.ws("/", nextrush_echo)?;
    let listener = app.bind(addr).await?;
    announce(listener.0.local_addr()?);
    if tls {
        app.serve_tls(listener, nextrush_bench::tls::server()).await?;
    } else {
        app.serve(listener).await?;
    }
    Ok(())
}

async fn nextrush_echo(
    mut ws: nextrush_tokio::WebSocket,
    _req: nextrush_tokio::Request,
) -> Result<(), nextrush_tokio::Error> {
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

// --- fastwebsockets: hyper 1 upgrade + FragmentCollector, auto pong/close
// (its defaults), as in its echo_server example.

mod fws {
    use super::*;
    use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn handle(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn on_request(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            // As in the crate's example: the echo loop runs unconstrained by
            // tokio's cooperative budget.
            let _ = tokio::task::unconstrained(handle(fut)).await;
        });
        Ok(response)
    }

    async fn serve_http<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S) {
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = http1::Builder::new().serve_connection(io, service_fn(on_request)).with_upgrades().await;
    }

    pub(super) async fn serve(addr: &str, tls: Option<TlsAcceptor>) -> BoxResult {
        let listener = TcpListener::bind(addr).await?;
        announce(listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_http(stream).await,
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve_http(stream).await;
                        }
                    }
                }
            });
        }
    }
}

// --- tokio-tungstenite: accept_async, then read with next() and write with
// feed(); flush only when no further message is ready right away (so a burst
// of pipelined messages goes out in one write, as NextRush's driver does).

mod tung {
    use super::*;
    use futures_util::{FutureExt, SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Error, Message};

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<(), Error> {
        let mut ws = tokio_tungstenite::accept_async(stream).await?;
        loop {
            let next = match ws.next().now_or_never() {
                Some(next) => next,
                None => {
                    ws.flush().await?;
                    ws.next().await
                }
            };
            match next {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => ws.feed(msg).await?,
                // Pings are answered, closes replied to, by tungstenite itself.
                Some(Ok(_)) => {}
            }
        }
        ws.flush().await
    }

    pub(super) async fn serve(addr: &str, tls: Option<TlsAcceptor>) -> BoxResult {
        let listener = TcpListener::bind(addr).await?;
        announce(listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = match tls {
                    None => handle(stream).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => handle(stream).await,
                        Err(_) => Ok(()),
                    },
                };
            });
        }
    }
}
