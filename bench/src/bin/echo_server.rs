//! Echo server under test, on one runtime thread.
//!
//! `echo_server --impl nextrush|fastwebsockets|tungstenite --addr 127.0.0.1:PORT`
//! (tokio current-thread runtime), or
//! `--impl nextrush-smol|async-tungstenite-smol` (smol's global executor, one
//! thread: `SMOL_THREADS=1`), or
//! `--impl nextrush-async-std|async-tungstenite-async-std` (async-std's
//! executor, one thread: `ASYNC_STD_THREAD_COUNT=1`).
//!
//! Prints `listening on HOST:PORT` once bound (PORT 0 picks a free port).
//!
//! `--tls` (tokio servers only): serves wss:// with the bench certificate
//! (`nextrush_bench::tls`): NextRush through `App::serve_tls`, fastwebsockets
//! and tokio-tungstenite behind `tokio_rustls::TlsAcceptor`, all with the
//! very same rustls `ServerConfig`.

use nextrush_bench::{Args, die, raise_nofile};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() {
    let args = Args::parse(&["tls"]);
    let which = args.str("impl").unwrap_or_else(|| die("--impl nextrush|fastwebsockets|tungstenite|nextrush-smol|async-tungstenite-smol|nextrush-async-std|async-tungstenite-async-std")).to_owned();
    let addr = args.str("addr").unwrap_or("127.0.0.1:0").to_owned();
    let tls = args.flag("tls");
    raise_nofile();
    if tls && !matches!(which.as_str(), "nextrush" | "fastwebsockets" | "tungstenite") {
        die("--tls: only nextrush, fastwebsockets and tungstenite (tokio)");
    }
    if let Some(result) = other_runtimes::serve(&which, &addr) {
        if let Err(e) = result {
            die(&e.to_string());
        }
        return;
    }
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

// --- smol and async-std: NextRush's adapters against async-tungstenite on
// the same runtime.
//
// Both NextRush adapters spawn every connection task on their runtime's
// global executor, so every server here does the same: the whole server
// future (accept loop included) is spawned there too, on an executor of one
// thread, which also drives the async-io reactor while it has nothing else
// to do. The main thread only waits on a channel for the server's result (it
// does not drive the reactor).

mod other_runtimes {
    use super::*;

    /// Runs `which` if it is one of the smol or async-std servers; `None` otherwise.
    pub(super) fn serve(which: &str, addr: &str) -> Option<BoxResult> {
        let addr = addr.to_owned();
        let (tx, rx) = std::sync::mpsc::channel::<BoxResult>();
        match which {
            "nextrush-smol" | "async-tungstenite-smol" => {
                // One executor thread (smol's default, made explicit). Set
                // before the global executor starts, while this process has
                // a single thread.
                // SAFETY: no other thread exists yet that could read the environment.
                unsafe { std::env::set_var("SMOL_THREADS", "1") };
                let nextrush = which == "nextrush-smol";
                smol::spawn(async move {
                    let result = if nextrush { nr_smol(&addr).await } else { atung::serve_smol(&addr).await };
                    let _ = tx.send(result);
                })
                .detach();
            }
            "nextrush-async-std" | "async-tungstenite-async-std" => {
                // SAFETY: as above: still single-threaded here.
                unsafe { std::env::set_var("ASYNC_STD_THREAD_COUNT", "1") };
                let nextrush = which == "nextrush-async-std";
                drop(async_std::task::spawn(async move {
                    let result = if nextrush { nr_async_std(&addr).await } else { atung::serve_async_std(&addr).await };
                    let _ = tx.send(result);
                }));
            }
            _ => return None,
        }
        Some(rx.recv().unwrap_or_else(|_| Err("server task ended without a result".into())))
    }

    // NextRush: the same App, options and handler as `nextrush` above, on
    // the smol or the async-std adapter.
    macro_rules! nextrush_server {
        ($name:ident, $krate:ident) => {
            async fn $name(addr: &str) -> BoxResult {
                use $krate::{App, Error, Options, Request, WebSocket};
                async fn echo(mut ws: WebSocket, _req: Request) -> Result<(), Error> {
                    while let Some(message) = ws.recv().await? {
                        ws.send(message).await?;
                    }
                    Ok(())
                }
                let options = Options::default()
                    .compression(false)
                    .max_message_size(64 << 20)
                    .max_connections(100_000)
                    .ping_interval(None);
                let app = App::new(options);
                app.ws("/*path", echo)?;
                app.ws("/", echo)?;
                let listener = app.bind(addr).await?;
                announce(listener.0.local_addr()?);
                app.serve(listener).await?;
                Ok(())
            }
        };
    }
    nextrush_server!(nr_smol, nextrush_smol);
    nextrush_server!(nr_async_std, nextrush_async_std);

    // async-tungstenite: the same loop as the tokio-tungstenite server
    // (`next()`, `feed()`, flush only when no further message is ready), over
    // any futures-io stream; one task per connection on the global executor.
    mod atung {
        use super::*;
        use async_tungstenite::tungstenite::{Error, Message};
        use futures_util::{FutureExt, SinkExt, StreamExt};
        use smol::io::{AsyncRead, AsyncWrite};

        async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<(), Error> {
            let mut ws = async_tungstenite::accept_async(stream).await?;
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

        pub(super) async fn serve_smol(addr: &str) -> BoxResult {
            let listener = smol::net::TcpListener::bind(addr).await?;
            announce(listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                smol::spawn(async move {
                    let _ = handle(stream).await;
                })
                .detach();
            }
        }

        pub(super) async fn serve_async_std(addr: &str) -> BoxResult {
            let listener = async_std::net::TcpListener::bind(addr).await?;
            announce(listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                drop(async_std::task::spawn(async move {
                    let _ = handle(stream).await;
                }));
            }
        }
    }
}
