//! Fan-out server under test, on a tokio current-thread runtime (one thread):
//! every message a connection sends is broadcast to all the other
//! connections.
//!
//! `fanout_server --impl nextrush|tungstenite|tungstenite-mpsc --addr 127.0.0.1:PORT`
//!
//! Prints `listening on HOST:PORT` once bound (PORT 0 picks a free port).
//! Every implementation also answers a WebSocket connection to `/stats` with
//! one text message `dropped=N` (messages the server dropped: NextRush's
//! `app.stats().dropped_messages`, the broadcast channel's lagged-and-skipped
//! messages, 0 for the unbounded channels) and then closes it.
//!
//! - `nextrush`: route `/room` joins room `bench` and relays every message
//!   with `ws.to("bench").except_self().send(msg)`.
//! - `tungstenite`: the plain loop with a `tokio::sync::broadcast` channel
//!   (capacity 1024): each connection `select!`s between its socket (a
//!   message is `tx.send((my_id, msg))`) and `rx.recv()` (a message from
//!   another connection is `ws.send(msg).await`, which writes and flushes it).
//! - `tungstenite-mpsc`: tokio-tungstenite's own `examples/server.rs`: a
//!   shared map of per-peer unbounded channels; the reader pushes a clone of
//!   each message into every other peer's channel; a writer `forward`s the
//!   channel into the socket's sink (which flushes when the channel is empty).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nextrush_bench::{Args, BoxResult, announce, die, raise_nofile, serve_on_current_thread};
use tokio::net::TcpListener;

/// Capacity of the `tungstenite` baseline's broadcast channel.
const BROADCAST_CAPACITY: usize = 1024;

fn main() {
    let args = Args::parse(&[]);
    let which = args.str("impl").unwrap_or_else(|| die("--impl nextrush|tungstenite|tungstenite-mpsc")).to_owned();
    let addr = args.str("addr").unwrap_or("127.0.0.1:0").to_owned();
    raise_nofile();
    serve_on_current_thread(async move {
        match which.as_str() {
            "nextrush" => nextrush(&addr).await,
            "tungstenite" => tung::serve(&addr, tung::Mode::Broadcast).await,
            "tungstenite-mpsc" => tung::serve(&addr, tung::Mode::Mpsc).await,
            other => die(&format!("unknown --impl {other}")),
        }
    });
}

// --- NextRush: the rooms hub.

async fn nextrush(addr: &str) -> BoxResult {
    use nextrush_tokio::{App, Error, Options, RoomPolicy, RoomsConfig, SlowConsumer};
    // Budgets far above what the benchmark keeps queued (a window of a few
    // hundred 64-byte messages), so the slow-consumer policy never drops:
    // `/stats` reports `dropped_messages`, and the load tool checks every
    // sequence number anyway.
    let options = Options::default()
        .compression(false)
        .max_connections(100_000)
        .ping_interval(None)
        .outbound_queue(64 << 20, SlowConsumer::Wait)
        .rooms(RoomsConfig::default().with_default_policy(RoomPolicy::DropNewest).with_event_capacity(0));
    let app = App::new(options);
    app.ws("/room", |mut ws, _req| async move {
        ws.join("bench")?;
        while let Some(msg) = ws.recv().await? {
            ws.to("bench").except_self().send(msg)?;
        }
        Ok::<_, Error>(())
    })?;
    let stats_app = app.clone();
    app.ws("/stats", move |ws, _req| {
        let app = stats_app.clone();
        async move {
            let s = app.stats();
            ws.send(format!(
                "dropped={} sent={} received={}",
                s.dropped_messages, s.messages_sent, s.messages_received
            ))
            .await?;
            ws.close(nextrush_tokio::CloseCode::NORMAL, "").await?;
            Ok::<_, Error>(())
        }
    })?;
    let listener = app.bind(addr).await?;
    announce(listener.0.local_addr()?);
    app.serve(listener).await?;
    Ok(())
}

// --- tokio-tungstenite baselines.

mod tung {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures_util::{SinkExt, StreamExt};
    use tokio::sync::broadcast;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::{Error, Message};

    use super::*;

    #[derive(Clone, Copy)]
    pub(super) enum Mode {
        Broadcast,
        Mpsc,
    }

    type Peers = Arc<Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<Message>>>>;

    struct State {
        tx: broadcast::Sender<(u64, Message)>,
        peers: Peers,
        /// Broadcast messages skipped by lagging receivers.
        lagged: AtomicU64,
        next_id: AtomicU64,
    }

    /// Handshake, remembering the request path (for `/stats`).
    #[allow(clippy::result_large_err)] // the callback's error type is tungstenite's
    async fn accept(stream: tokio::net::TcpStream) -> Result<(WebSocketStream<tokio::net::TcpStream>, String), Error> {
        let mut path = String::new();
        let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
            path = req.uri().path().to_owned();
            Ok(resp)
        })
        .await?;
        Ok((ws, path))
    }

    /// The plain loop: read from the socket or from the broadcast channel,
    /// whichever is ready; `send` (write + flush) each broadcast message.
    async fn broadcast_loop(mut ws: WebSocketStream<tokio::net::TcpStream>, state: &State) -> Result<(), Error> {
        let me = state.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rx = state.tx.subscribe();
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        let _ = state.tx.send((me, msg));
                    }
                    Some(Ok(_)) => {}
                },
                got = rx.recv() => match got {
                    Ok((from, msg)) => {
                        if from != me {
                            ws.send(msg).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        state.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    /// tokio-tungstenite's `examples/server.rs`, with tokio's unbounded
    /// channel in place of futures' (same semantics).
    async fn mpsc_loop(ws: WebSocketStream<tokio::net::TcpStream>, state: &State) {
        let me = state.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        state.peers.lock().unwrap().insert(me, tx);
        let (outgoing, incoming) = ws.split();
        let broadcast_incoming = incoming.for_each(|msg| {
            if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                let peers = state.peers.lock().unwrap();
                for (_, tx) in peers.iter().filter(|(id, _)| **id != me) {
                    let _ = tx.send(msg.clone());
                }
            }
            std::future::ready(())
        });
        let rx = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let receive_from_others = rx.map(Ok).forward(outgoing);
        tokio::pin!(broadcast_incoming, receive_from_others);
        futures_util::future::select(broadcast_incoming, receive_from_others).await;
        state.peers.lock().unwrap().remove(&me);
    }

    async fn handle(stream: tokio::net::TcpStream, state: Arc<State>, mode: Mode) -> Result<(), Error> {
        let (mut ws, path) = accept(stream).await?;
        if path == "/stats" {
            let text = format!("dropped={}", state.lagged.load(Ordering::Relaxed));
            ws.send(Message::text(text)).await?;
            return ws.close(None).await;
        }
        match mode {
            Mode::Broadcast => broadcast_loop(ws, &state).await,
            Mode::Mpsc => {
                mpsc_loop(ws, &state).await;
                Ok(())
            }
        }
    }

    pub(super) async fn serve(addr: &str, mode: Mode) -> BoxResult {
        let listener = TcpListener::bind(addr).await?;
        announce(listener.local_addr()?);
        let state = Arc::new(State {
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
            peers: Peers::default(),
            lagged: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        });
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let _ = handle(stream, state, mode).await;
            });
        }
    }
}
