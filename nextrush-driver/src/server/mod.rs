//! The server: routes, options, the accept loop, handshakes, events,
//! statistics and graceful shutdown.

mod handshake;
mod http;
mod options;
mod request;
mod task;

pub(crate) use task::TaskWake;
mod upgrade;

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use nextrush_proto::route::{RouteError, Router};
use nextrush_proto::{CloseCode, ReadyState};

pub use http::HttpRequest;
pub use options::{Options, Verified};
pub use request::Request;
pub use upgrade::Upgrade;

use crate::Error;
use crate::io::with_deadline;
use crate::runtime::{Listener, Runtime, Transport, WrapIo};
use nextrush_rooms::FanOut;

use crate::rooms::{Broadcast, MemberDrain, Membership, RoomMember, Rooms, RoomsEvent, SharedMessage, SocketId};
use crate::socket::{Shared, WebSocket, lock};
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::TlsAccept;
use handshake::Then;

/// A boxed error a handler may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Handler = Arc<dyn Fn(WebSocket, Request) -> HandlerFuture + Send + Sync>;
type EventHook = Arc<dyn Fn(&ServerEvent) + Send + Sync>;

/// What happens on the server, for [`App::on_event`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A connection was accepted (after the 101).
    Connection {
        /// Server-unique id of the connection.
        id: u64,
        /// The request path.
        path: String,
        /// The peer's address, if known.
        peer_addr: Option<SocketAddr>,
    },
    /// A connection ended.
    Disconnect {
        /// The connection's id.
        id: u64,
        /// The close code (1006 when no close frame was exchanged).
        code: CloseCode,
        /// The peer's close reason, if any.
        reason: String,
    },
    /// A socket joined a room (`room:join`).
    RoomJoin {
        /// The room.
        room: String,
        /// The socket's id.
        id: u64,
        /// Members now.
        count: usize,
    },
    /// A socket left a room, or closed (`room:leave`).
    RoomLeave {
        /// The room.
        room: String,
        /// The socket's id.
        id: u64,
        /// Members now (0: the room is gone).
        count: usize,
    },
    /// Something failed: a failed TLS handshake, a rejected handshake, a
    /// protocol error, a handler error or panic.
    Error {
        /// The connection's id, when there is one.
        id: Option<u64>,
        /// What went wrong.
        message: String,
    },
}

pub(crate) struct AppInner<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) options: Options,
    /// `options.protocol`, shared by every connection.
    pub(crate) protocol: Arc<nextrush_proto::Config>,
    routes: RwLock<Router<Handler>>,
    http_routes: RwLock<Router<http::HttpHandler>>,
    pub(crate) stats: Arc<Stats>,
    connections: Mutex<HashMap<u64, Weak<Mutex<Shared>>>>,
    /// Connections admitted: handshakes past admission plus open ones. This
    /// is what `max_connections` bounds, so that concurrent handshakes
    /// cannot all pass the check before any of them is counted as open.
    slots: Arc<AtomicUsize>,
    shutting_down: AtomicBool,
    shutdown_wakers: Mutex<Vec<Waker>>,
    hooks: RwLock<Vec<EventHook>>,
    rooms: Arc<Rooms>,
    upkeep_started: AtomicBool,
}

/// A WebSocket server application: routes with handlers, options, events,
/// statistics; plain `GET` routes ([`get`](Self::get)) for a page on the
/// same port. Cheap to clone (a shared handle).
pub struct App<R: Runtime> {
    pub(crate) inner: Arc<AppInner<R>>,
}

impl<R: Runtime> Clone for App<R> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<R: Runtime> std::fmt::Debug for App<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

impl<R: Runtime> Default for App<R> {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

impl<R: Runtime> App<R> {
    /// An application with `options` and no routes yet.
    #[must_use]
    pub fn new(options: Options) -> Self {
        let rt = R::default();
        let stats = Arc::new(Stats::new(rt.now()));
        let rooms = Arc::new(Rooms::new(options.rooms.clone()));
        Self {
            inner: Arc::new(AppInner {
                rt,
                protocol: Arc::new(options.protocol.clone()),
                options,
                routes: RwLock::new(Router::new()),
                http_routes: RwLock::new(Router::new()),
                stats,
                connections: Mutex::new(HashMap::new()),
                slots: Arc::new(AtomicUsize::new(0)),
                shutting_down: AtomicBool::new(false),
                shutdown_wakers: Mutex::new(Vec::new()),
                hooks: RwLock::new(Vec::new()),
                rooms,
                upkeep_started: AtomicBool::new(false),
            }),
        }
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Serves WebSocket connections on `pattern` (`/chat/:room`,
    /// `/games/:game/players/:player`) with `handler`, which gets the socket
    /// and the request (path params, query, headers, peer address).
    ///
    /// # Errors
    /// The pattern is malformed or conflicts with an existing route.
    pub fn ws<F, Fut, E>(&self, pattern: &str, handler: F) -> Result<&Self, RouteError>
    where
        F: Fn(WebSocket, Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let handler: Handler = Arc::new(move |ws, req| {
            let fut = handler(ws, req);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.inner.routes.write().unwrap_or_else(std::sync::PoisonError::into_inner).add(pattern, handler)?;
        Ok(self)
    }

    /// Calls `hook` for every [`ServerEvent`]. Keep it quick: it runs on the
    /// connection's task.
    pub fn on_event(&self, hook: impl Fn(&ServerEvent) + Send + Sync + 'static) -> &Self {
        self.inner.hooks.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::new(hook));
        self
    }

    /// A snapshot of the server's counters. Each connection counts its own
    /// traffic (no shared counter is touched per message), so this adds up
    /// the open connections' counts: its cost grows with their number. Fine
    /// for monitoring every second; not something to call per message.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        let rooms = self.inner.rooms.stats();
        let mut snapshot = self.inner.stats.snapshot(self.inner.rt.now(), rooms.rooms);
        snapshot.dropped_messages += rooms.dropped();
        snapshot
    }

    /// Binds a TCP listener (use port 0 for any free port).
    ///
    /// # Errors
    /// The address does not parse or cannot be bound.
    pub async fn bind(&self, addr: &str) -> Result<R::Listener, Error> {
        let addr: SocketAddr = addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(self.inner.rt.bind(addr).await?)
    }

    /// Binds `addr` and serves until [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    /// Binding failed.
    pub async fn listen(&self, addr: &str) -> Result<(), Error> {
        let listener = self.bind(addr).await?;
        self.serve(listener).await
    }

    /// Accepts connections from `listener` until [`shutdown`](Self::shutdown),
    /// each in its own task.
    ///
    /// # Errors
    /// Never for per-connection failures (those are events); only if the
    /// listener itself fails for good.
    pub async fn serve(&self, listener: impl Into<R::Listener>) -> Result<(), Error> {
        self.accept_loop(listener.into(), |app, stream, peer| async move {
            handshake::serve_connection(&app, stream, Some(peer), app.inner.rt.now(), Then::Spawn).await;
        })
        .await
    }

    /// Binds `addr` and serves `wss://` until [`shutdown`](Self::shutdown):
    /// each connection's TLS handshake with `tls`, then the WebSocket one.
    ///
    /// With the adapters' `rustls` feature, `tls` is an
    /// `Arc<rustls::ServerConfig>` (see `tls::server_config_from_pem_files`
    /// in the adapter) or the TLS flavour's acceptor type.
    ///
    /// # Errors
    /// Binding failed.
    pub async fn listen_tls<A>(&self, addr: &str, tls: A) -> Result<(), Error>
    where
        A: TlsAccept<R::TcpStream>,
    {
        let listener = self.bind(addr).await?;
        self.serve_tls(listener, tls).await
    }

    /// [`serve`](Self::serve) over TLS: accepts connections from `listener`
    /// until [`shutdown`](Self::shutdown), each in its own task, which runs
    /// the TLS handshake with `tls` and then the WebSocket handshake.
    ///
    /// A failed TLS handshake (a client that does not trust the certificate,
    /// plain HTTP sent to this port, a client that went away) is reported as
    /// a [`ServerEvent::Error`] and counted in `errors`; the loop goes on.
    /// The TLS and WebSocket handshakes together must finish within
    /// [`Options::handshake_timeout`], so a silent peer cannot hold a task
    /// and a socket for long.
    ///
    /// # Errors
    /// Only if the listener itself fails for good.
    pub async fn serve_tls<A>(&self, listener: impl Into<R::Listener>, tls: A) -> Result<(), Error>
    where
        A: TlsAccept<R::TcpStream>,
    {
        let tls = Arc::new(tls);
        self.accept_loop(listener.into(), move |app, stream, peer| {
            let tls = Arc::clone(&tls);
            async move { app.tls_then_websocket(stream, Some(peer), &*tls, Then::Spawn).await }
        })
        .await
    }

    /// Accepts until shutdown; `serve` runs each connection in its own task.
    async fn accept_loop<F, Fut>(&self, listener: R::Listener, serve: F) -> Result<(), Error>
    where
        F: Fn(Self, R::TcpStream, SocketAddr) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
        self.start_room_upkeep();
        loop {
            let mut accept = std::pin::pin!(listener.accept());
            let next = poll_fn(|cx| {
                if self.shutting_down_or_wake(cx) {
                    return Poll::Ready(None);
                }
                accept.as_mut().poll(cx).map(Some)
            })
            .await;
            match next {
                None => return Ok(()),
                Some(Ok((stream, peer))) => self.inner.rt.spawn(serve(self.clone(), stream, peer)),
                Some(Err(error)) => {
                    // EMFILE and friends: report, back off briefly, keep serving.
                    tracing::warn!(%error, "accept failed");
                    self.emit(&ServerEvent::Error { id: None, message: format!("accept failed: {error}") });
                    let until = self.inner.rt.now() + Duration::from_millis(50);
                    self.inner.rt.sleep_until(until).await;
                }
            }
        }
    }

    /// Serves one connection on any byte stream of the runtime (TCP, TLS,
    /// Unix socket): the handshake, then the route's handler. Returns when the
    /// connection is over.
    pub async fn accept<S>(&self, stream: S, peer_addr: Option<SocketAddr>)
    where
        R: WrapIo<S>,
    {
        self.accept_io(<R as WrapIo<S>>::wrap(stream), peer_addr).await;
    }

    /// [`accept`](Self::accept) for a [`Transport`].
    pub async fn accept_io<T: Transport>(&self, io: T, peer_addr: Option<SocketAddr>) {
        handshake::serve_connection(self, io, peer_addr, self.inner.rt.now(), Then::Await).await;
    }

    /// Serves one TLS connection on a byte stream of the runtime (a TCP
    /// stream from your own listener): the TLS handshake with `tls`, then as
    /// [`accept`](Self::accept). A failed or timed-out TLS handshake is a
    /// [`ServerEvent::Error`]. Returns when the connection is over.
    pub async fn accept_tls<S, A>(&self, stream: S, peer_addr: Option<SocketAddr>, tls: &A)
    where
        R: WrapIo<S>,
        A: TlsAccept<<R as WrapIo<S>>::Io>,
    {
        self.accept_tls_io(<R as WrapIo<S>>::wrap(stream), peer_addr, tls).await;
    }

    /// [`accept_tls`](Self::accept_tls) for a [`Transport`].
    pub async fn accept_tls_io<T, A>(&self, io: T, peer_addr: Option<SocketAddr>, tls: &A)
    where
        T: Transport,
        A: TlsAccept<T>,
    {
        self.tls_then_websocket(io, peer_addr, tls, Then::Await).await;
    }

    /// The TLS handshake, then the WebSocket one and the connection, awaited
    /// or in a task of its own.
    async fn tls_then_websocket<T, A>(&self, io: T, peer_addr: Option<SocketAddr>, tls: &A, then: Then)
    where
        T: Transport,
        A: TlsAccept<T>,
    {
        let rt = &self.inner.rt;
        let started = rt.now();
        let timeout = self.inner.options.handshake.timeout;
        // Boxed: the TLS handshake's state is freed once it is done instead
        // of sizing the future that lives as long as the connection.
        let accepted = Box::pin(with_deadline(rt, started + timeout, tls.accept(io))).await;
        let failure = match accepted {
            Some(Ok(io)) => return handshake::serve_connection(self, io, peer_addr, started, then).await,
            Some(Err(error)) => format!("failed: {error}"),
            None => format!("timed out after {timeout:?}"),
        };
        let message = match peer_addr {
            Some(addr) => format!("TLS handshake with {addr} {failure}"),
            None => format!("TLS handshake {failure}"),
        };
        tracing::debug!(%message);
        Stats::add(&self.inner.stats.errors, 1);
        self.emit(&ServerEvent::Error { id: None, message });
    }

    /// Stops accepting, closes every connection with 1001 after what was
    /// already queued for it, and waits for the close handshakes up to
    /// `timeout`; connections still open then are dropped.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        for waker in std::mem::take(&mut *lock_vec(&self.inner.shutdown_wakers)) {
            waker.wake();
        }
        for shared in self.live_connections() {
            let mut s = lock(&shared);
            if s.conn.ready_state() == ReadyState::Open {
                let now = (s.clock)();
                let _ = s.conn.close(now, CloseCode::GOING_AWAY, "server shutting down");
            }
            let waker = s.driver_waker.clone();
            drop(s);
            if let Some(w) = waker {
                w.wake();
            }
        }
        let deadline = self.inner.rt.now() + timeout;
        while self.inner.stats.connections.load(Ordering::Acquire) > 0 && self.inner.rt.now() < deadline {
            let tick = (self.inner.rt.now() + Duration::from_millis(10)).min(deadline);
            self.inner.rt.sleep_until(tick).await;
        }
        for shared in self.live_connections() {
            let mut s = lock(&shared);
            s.abort = true;
            let waker = s.driver_waker.clone();
            drop(s);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    fn live_connections(&self) -> Vec<Arc<Mutex<Shared>>> {
        let map = self.inner.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().filter_map(Weak::upgrade).collect()
    }

    /// Slots in use: admitted handshakes and open connections.
    pub(crate) fn slots_in_use(&self) -> usize {
        self.inner.slots.load(Ordering::Acquire)
    }

    /// Takes a connection slot if fewer than `max` are in use; the slot is
    /// given back when the returned guard drops.
    pub(crate) fn reserve_slot(&self, max: usize) -> Option<Slot> {
        let slots = &self.inner.slots;
        slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(Arc::clone(slots)))
    }

    pub(crate) fn register(&self, id: u64, shared: &Arc<Mutex<Shared>>) {
        let mut map = self.inner.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(id, Arc::downgrade(shared));
    }

    /// Makes a new connection a member of the rooms hub; its id there is
    /// its connection id everywhere.
    fn join_hub(&self, admitted: &handshake::Admitted) -> (MemberDrain, Membership) {
        #[cfg(feature = "deflate")]
        let encoding = nextrush_rooms::Encoding::negotiated(admitted.deflate.as_ref(), &self.inner.options.deflate);
        #[cfg(not(feature = "deflate"))]
        let encoding = {
            let _ = admitted;
            nextrush_rooms::Encoding::Plain
        };
        let wake = Arc::new(TaskWake::default());
        let notify = Arc::clone(&wake);
        let member = Arc::new(
            RoomMember::new(self.inner.options.max_buffered, encoding).with_notify(move || notify.notify_room()),
        );
        let id = self.inner.rooms.register(Arc::clone(&member));
        let app = self.clone();
        let membership = Membership {
            rooms: Arc::clone(&self.inner.rooms),
            id,
            drain_events: Arc::new(move || app.drain_room_events()),
        };
        (MemberDrain::new(member, wake), membership)
    }

    /// Whether the app is shutting down; if not, `cx` is woken when it starts to.
    fn shutting_down_or_wake(&self, cx: &Context<'_>) -> bool {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return true;
        }
        let mut wakers = lock_vec(&self.inner.shutdown_wakers);
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        false
    }

    /// Runs the hub's `cleanup` every `room_cleanup_interval` until shutdown
    /// (once per app, however many listeners it serves), from the first
    /// history a room keeps: before that there is nothing to sweep, and no
    /// timer is armed (a runtime with none sleeps without a timeout).
    fn start_room_upkeep(&self) {
        if self.inner.upkeep_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let app = self.clone();
        self.inner.rt.spawn(async move {
            // A zero interval must not spin.
            let interval = app.inner.rooms.config().cleanup_interval().max(Duration::from_millis(100));
            let history_kept = poll_fn(|cx| {
                if app.shutting_down_or_wake(cx) {
                    return Poll::Ready(false);
                }
                app.inner.rooms.poll_history_kept(cx).map(|()| true)
            });
            if !history_kept.await {
                return;
            }
            while !app.is_shutting_down() {
                let next = app.inner.rt.now() + interval;
                app.inner.rt.sleep_until(next).await;
                app.inner.rooms.cleanup(app.inner.rt.now());
                app.drain_room_events();
            }
        });
    }

    /// Takes a finished connection out of every room (`room:leave` events).
    pub(crate) fn leave_hub(&self, id: u64) {
        self.inner.rooms.unregister(SocketId::from_raw(id));
        self.drain_room_events();
    }

    /// Turns the hub's join/leave events into [`ServerEvent`]s.
    fn drain_room_events(&self) {
        while let Some(event) = self.inner.rooms.poll_event() {
            let event = match event {
                RoomsEvent::Join { room, member, count } => {
                    ServerEvent::RoomJoin { room: room.to_string(), id: member.get(), count }
                }
                RoomsEvent::Leave { room, member, count, .. } => {
                    ServerEvent::RoomLeave { room: room.to_string(), id: member.get(), count }
                }
                _ => continue,
            };
            self.emit(&event);
        }
    }

    /// The rooms and channels hub: usable from anywhere (another task, a
    /// thread, an HTTP endpoint).
    #[must_use]
    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.inner.rooms
    }

    /// Publishes `message` to every socket subscribed to `channel`, from
    /// anywhere. Encoded once.
    pub fn publish(&self, channel: &str, message: impl Into<SharedMessage>) -> FanOut {
        let fan_out = self.inner.rooms.publish(channel, message);
        self.drain_room_events();
        fan_out
    }

    /// Broadcasts to a room from outside any connection:
    /// `app.to(room).send(msg)`.
    pub fn to<'a>(&'a self, room: &'a str) -> Broadcast<'a, RoomMember> {
        self.inner.rooms.to(room)
    }

    pub(crate) fn unregister(&self, id: u64) {
        let mut map = self.inner.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&id);
    }

    pub(crate) fn find_route(&self, path: &str) -> Option<(Handler, nextrush_proto::route::Params)> {
        let routes = self.inner.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        routes.find(path).map(|(h, params)| (Arc::clone(h), params))
    }

    pub(crate) fn emit(&self, event: &ServerEvent) {
        let hooks = self.inner.hooks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for hook in hooks {
            hook(event);
        }
    }
}

/// One admitted connection's place under `max_connections`, released on drop.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn lock_vec(m: &Mutex<Vec<Waker>>) -> std::sync::MutexGuard<'_, Vec<Waker>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
