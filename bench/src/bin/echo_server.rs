//! Echo server under test, on one runtime thread.
//!
//! `echo_server --impl nextrush|fastwebsockets|tungstenite|floor --addr 127.0.0.1:PORT`
//! (tokio current-thread runtime; `floor` is the bare minimum of an echo, see
//! below), or
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

use nextrush_bench::{Args, BoxResult, announce, die, raise_nofile, serve_on_current_thread};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() {
    let args = Args::parse(&["tls"]);
    let which = args.str("impl").unwrap_or_else(|| die("--impl nextrush|fastwebsockets|tungstenite|floor|nextrush-smol|async-tungstenite-smol|nextrush-async-std|async-tungstenite-async-std")).to_owned();
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
    serve_on_current_thread(async move {
        let acceptor = tls.then(|| TlsAcceptor::from(nextrush_bench::tls::server()));
        match which.as_str() {
            "nextrush" => nextrush(&addr, tls).await,
            "fastwebsockets" => fws::serve(&addr, acceptor).await,
            "tungstenite" => tung::serve(&addr, acceptor).await,
            "floor" if acceptor.is_none() => floor::serve(&addr).await,
            other => die(&format!("unknown --impl {other}")),
        }
    });
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
    use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
    use tokio_tungstenite::tungstenite::{Error, Message};

    /// The echo loop described above, over a tokio-tungstenite or an
    /// async-tungstenite `WebSocketStream`: both crates wrap tungstenite
    /// 0.30, so their `Message` and `Error` are these very types.
    pub(super) async fn echo<W>(mut ws: W) -> Result<(), Error>
    where
        W: Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin,
    {
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

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<(), Error> {
        echo(tokio_tungstenite::accept_async(stream).await?).await
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

// --- floor: not a WebSocket server (no fragments, no control frames, no
// limits, no checks). The least any server on tokio does per echo: one read,
// the frame head parsed and the payload unmasked in place, one write. Its CPU
// per message is the bound a complete server on tokio can approach, not pass.

mod floor {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

    /// A frame at the start of `buf`: (first byte, payload length, head
    /// length with the mask), once the head is complete.
    fn head(buf: &[u8]) -> Option<(u8, usize, usize)> {
        let (&first, &second) = (buf.first()?, buf.get(1)?);
        let (len, at) = match second & 0x7f {
            126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
            127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
            n => (n as usize, 2),
        };
        (buf.len() >= at + 4).then_some((first, len, at + 4))
    }

    async fn handle(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        let end = loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let request = String::from_utf8_lossy(&buf[..end]).into_owned();
        let key = request
            .lines()
            .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key")))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        stream.write_all(response.as_bytes()).await?;
        buf.drain(..end);
        let mut out = Vec::with_capacity(64 * 1024);
        loop {
            let mut at = 0;
            while let Some((first, len, head_len)) = head(&buf[at..]) {
                if buf.len() - at < head_len + len {
                    break;
                }
                if first & 0x0f == 8 {
                    return Ok(());
                }
                let mask: [u8; 4] = buf[at + head_len - 4..at + head_len].try_into().unwrap_or_default();
                let payload = &mut buf[at + head_len..at + head_len + len];
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= mask[i & 3];
                }
                out.push(first);
                match len {
                    0..=125 => out.push(len as u8),
                    126..=0xffff => {
                        out.push(126);
                        out.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    _ => {
                        out.push(127);
                        out.extend_from_slice(&(len as u64).to_be_bytes());
                    }
                }
                out.extend_from_slice(payload);
                at += head_len + len;
            }
            buf.drain(..at);
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            buf.reserve(16 * 1024);
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    pub(super) async fn serve(addr: &str) -> BoxResult {
        let listener = TcpListener::bind(addr).await?;
        announce(listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                // Unconstrained, as the fastwebsockets server runs.
                let _ = tokio::task::unconstrained(handle(stream)).await;
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

    // async-tungstenite: the very loop of the tokio-tungstenite server
    // (`tung::echo`: `next()`, `feed()`, flush only when no further message
    // is ready), over any futures-io stream; one task per connection on the
    // global executor.
    mod atung {
        use super::*;
        use async_tungstenite::tungstenite::Error;
        use smol::io::{AsyncRead, AsyncWrite};

        async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<(), Error> {
            crate::tung::echo(async_tungstenite::accept_async(stream).await?).await
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
