//! Serving one connection: the opening handshake, the admission decision,
//! then the connection task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use nextrush_proto::handshake::{Received, Rejection, ServerHandshake, ServerPolicy, accept_response};
use nextrush_proto::{Connection, Role};

use super::task::ConnectionTask;
use super::{App, Handler, Request, ServerEvent, Slot, Verified};
use crate::driver::Driver;
use crate::io::{ReadOutcome, read_until, with_deadline, write_all};
use crate::runtime::{Runtime, Transport};
use crate::socket::{Info, Outbound, Shared, WebSocket};
use crate::stats::Stats;

/// The first byte of a TLS handshake record, as a ClientHello starts.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a rejected TLS ClientHello adds to the error event.
const TLS_ON_PLAIN_PORT: &str = " (a TLS handshake: wss:// sent to a plain ws:// port?)";

/// An accepted upgrade: everything needed to start the connection.
pub(super) struct Admitted {
    handler: Handler,
    pub(super) request: Request,
    pub(super) protocol: Option<String>,
    pub(super) extensions: Option<String>,
    #[cfg(feature = "deflate")]
    pub(super) deflate: Option<nextrush_proto::deflate::DeflateParams>,
    verified: Verified,
    /// Held until the connection ends.
    slot: Slot,
}

/// After the handshakes: where the connection runs.
#[derive(Clone, Copy)]
pub(super) enum Then {
    /// In the caller's task (`accept`: returns when the connection is over).
    Await,
    /// In a task of its own (`serve`): the task's future is then the
    /// connection alone, not the accept loop's futures around it, so a
    /// message has less to poll through and less memory to touch.
    Spawn,
}

/// Reads the upgrade request, answers it, and runs the connection as `then`
/// says. The handshake timeout counts from `started` (before the TLS
/// handshake, if any).
pub(super) async fn serve_connection<R: Runtime, T: Transport>(
    app: &App<R>,
    io: T,
    peer: Option<SocketAddr>,
    started: Instant,
    then: Then,
) {
    // The handshake is boxed: its state (buffers, the request, the decision)
    // is freed once it is done, instead of sizing this future, which lives
    // as long as the connection.
    let Some(open) = Box::pin(handshake(app, io, peer, started)).await else {
        return;
    };
    let running = Running::new(app, open);
    match then {
        Then::Await => running.await,
        Then::Spawn => app.inner.rt.spawn(running),
    }
}

/// A connection's task until it ends, then the bookkeeping.
#[repr(C)] // What every poll touches first (see `ConnectionTask`).
struct Running<R: Runtime, T: Transport> {
    /// Entered for every poll, the bookkeeping at the end included.
    span: tracing::Span,
    task: ConnectionTask<R, T>,
    app: App<R>,
    id: u64,
    /// Given back when the connection ends.
    slot: Option<Slot>,
}

impl<R: Runtime, T: Transport> Running<R, T> {
    fn new(app: &App<R>, open: Open<R, T>) -> Self {
        Self { task: open.task, span: open.span, app: app.clone(), id: open.id, slot: Some(open.slot) }
    }
}

impl<R: Runtime, T: Transport> Future for Running<R, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let (reason, handler_error) = std::task::ready!(Pin::new(&mut this.task).poll(cx));
        if let Some(slot) = this.slot.take() {
            close_connection(&this.app, this.id, slot, &reason, handler_error);
        }
        Poll::Ready(())
    }
}

/// The opening handshake: read, decide, answer; then build the connection.
async fn handshake<R: Runtime, T: Transport>(
    app: &App<R>,
    mut io: T,
    peer: Option<SocketAddr>,
    started: Instant,
) -> Option<Open<R, T>> {
    let incoming = match read_request(app, &mut io, started).await? {
        Received::Upgrade(incoming) => incoming,
        Received::Http(request) => {
            super::http::serve(app, io, request, peer).await;
            return None;
        }
    };
    let leftover = incoming.leftover;
    let deadline = started + app.inner.options.handshake.timeout;
    let admitted = match admit(app, incoming.request, peer, deadline).await {
        Ok(admitted) => admitted,
        Err(rejection) => {
            reject(app, &mut io, &rejection, "").await;
            return None;
        }
    };
    let mut response = Vec::with_capacity(256);
    if let Err(error) = accept_response(
        admitted.request.head(),
        admitted.protocol.as_deref(),
        admitted.extensions.as_deref(),
        &HeaderMap::new(),
        &mut response,
    ) {
        app.emit(&ServerEvent::Error { id: None, message: format!("cannot accept: {error}") });
        return None;
    }
    write_all(&mut io, &response).await.ok()?;
    Stats::add(&app.inner.stats.bytes_sent, response.len() as u64);
    open_connection(app, app.inner.rt.clone(), io, admitted, leftover)
}

/// Reads until a complete request (an upgrade, or a plain `GET` for the
/// HTTP fallback), answering malformed ones.
async fn read_request<R: Runtime, T: Transport>(app: &App<R>, io: &mut T, started: Instant) -> Option<Received> {
    let rt = &app.inner.rt;
    let mut handshake = ServerHandshake::new(app.inner.options.handshake.clone(), started);
    let mut timer = rt.timer();
    let mut buf = BytesMut::new();
    let mut first_read = true;
    loop {
        let outcome = read_until(rt, &mut timer, io, &mut buf, handshake.poll_timeout()).await;
        let result = match outcome {
            Ok(ReadOutcome::Data(n)) => {
                Stats::add(&app.inner.stats.bytes_received, n as u64);
                if std::mem::take(&mut first_read) && buf.first() == Some(&TLS_HANDSHAKE_RECORD) {
                    // A TLS ClientHello on a plain port: it holds no end of
                    // an HTTP head to wait for, so answer now, in plain HTTP
                    // (which the client's TLS library reports as "not TLS").
                    let rejection = Rejection::new(StatusCode::BAD_REQUEST).with_body("this port does not speak TLS\n");
                    reject(app, io, &rejection, TLS_ON_PLAIN_PORT).await;
                    return None;
                }
                let result = handshake.receive_any(&buf);
                buf.clear();
                result
            }
            Ok(ReadOutcome::TimedOut) => handshake.handle_timeout(rt.now()).map(|()| None),
            Ok(ReadOutcome::Eof) | Err(_) => return None,
        };
        match result {
            Ok(Some(incoming)) => return Some(incoming),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%error, "bad upgrade request");
                reject(app, io, &error.rejection(), "").await;
                return None;
            }
        }
    }
}

/// Routing, origin, capacity and `verify_client`; then the extensions.
/// `verify_client` must answer by `deadline` (the end of the handshake
/// timeout): a hook stuck on a dead auth service must not hold the
/// connection and its slot forever.
pub(super) async fn admit<R: Runtime>(
    app: &App<R>,
    head: nextrush_proto::Request,
    peer: Option<SocketAddr>,
    deadline: Instant,
) -> Result<Admitted, Rejection> {
    let options = &app.inner.options;
    if app.is_shutting_down() {
        return Err(Rejection::service_unavailable(options.retry_after).with_body("server shutting down\n"));
    }
    let (handler, params) = app.find_route(head.path()).ok_or_else(Rejection::not_found)?;
    let mut policy = ServerPolicy::default();
    policy.allow_origins.clone_from(&options.allow_origins);
    policy.protocols.clone_from(&options.protocols);
    policy.max_connections = options.max_connections;
    policy.retry_after = options.retry_after;
    let protocol = policy.decide(&head, app.slots_in_use())?;
    // The check above raced with other handshakes: take the slot for real.
    let slot = app
        .reserve_slot(options.max_connections)
        .ok_or_else(|| Rejection::service_unavailable(options.retry_after).with_body("too many connections\n"))?;
    let request = Request::new(head, params, peer);
    let verified = match &options.verify_client {
        Some(verify) => match with_deadline(&app.inner.rt, deadline, verify(&request)).await {
            Some(verified) => verified?,
            None => {
                tracing::info!("verify_client did not answer within the handshake timeout");
                return Err(Rejection::service_unavailable(options.retry_after)
                    .with_body("could not verify the request in time\n"));
            }
        },
        None => Verified::new(),
    };
    #[cfg(feature = "deflate")]
    let (extensions, deflate) = negotiate_deflate(options, request.head());
    #[cfg(not(feature = "deflate"))]
    let extensions = None;
    Ok(Admitted {
        handler,
        request,
        protocol,
        extensions,
        #[cfg(feature = "deflate")]
        deflate,
        verified,
        slot,
    })
}

#[cfg(feature = "deflate")]
fn negotiate_deflate(
    options: &super::Options,
    head: &nextrush_proto::Request,
) -> (Option<String>, Option<nextrush_proto::deflate::DeflateParams>) {
    if !options.compression {
        return (None, None);
    }
    match nextrush_proto::deflate::negotiate_request(head, &options.deflate) {
        Some((params, header)) => (Some(header), Some(params)),
        None => (None, None),
    }
}

/// Answers `rejection` and closes; `hint` (empty or starting with a space)
/// is added to the event's message.
pub(super) async fn reject<R: Runtime, T: Transport>(app: &App<R>, io: &mut T, rejection: &Rejection, hint: &str) {
    Stats::add(&app.inner.stats.rejected, 1);
    let message = format!("handshake rejected with {}{hint}", rejection.status());
    app.emit(&ServerEvent::Error { id: None, message });
    let bytes = rejection.to_bytes();
    if write_all(io, &bytes).await.is_ok() {
        Stats::add(&app.inner.stats.bytes_sent, bytes.len() as u64);
    }
    let _ = std::future::poll_fn(|cx| io.poll_shutdown(cx)).await;
}

/// Runs an accepted connection with its handler until both are done.
pub(super) async fn run<R: Runtime, T: Transport>(
    app: &App<R>,
    rt: R,
    io: T,
    admitted: Admitted,
    leftover: bytes::Bytes,
) {
    // Built outside the `async` state so that only the task itself, not
    // everything used to build it, lives as long as the connection.
    let Some(open) = open_connection(app, rt, io, admitted, leftover) else {
        return;
    };
    let (reason, handler_error) = open.task.await;
    close_connection(app, open.id, open.slot, &reason, handler_error);
}

/// A connection that is ready to run.
struct Open<R: Runtime, T: Transport> {
    task: ConnectionTask<R, T>,
    span: tracing::Span,
    id: u64,
    slot: Slot,
}

/// Builds the protocol state, the socket and the task; reports the connection.
fn open_connection<R: Runtime, T: Transport>(
    app: &App<R>,
    rt: R,
    io: T,
    admitted: Admitted,
    leftover: bytes::Bytes,
) -> Option<Open<R, T>> {
    let options = &app.inner.options;
    let now = rt.now();
    let mut conn = match Connection::server(Arc::clone(&app.inner.protocol), now) {
        Ok(conn) => conn,
        Err(error) => {
            app.emit(&ServerEvent::Error { id: None, message: format!("invalid options: {error}") });
            return None;
        }
    };
    #[cfg(feature = "deflate")]
    if let Some(params) = &admitted.deflate {
        conn.enable_deflate(params, &options.deflate);
    }
    if !leftover.is_empty() {
        conn.receive(now, &leftover);
    }
    let clock_rt = rt.clone();
    let outbound = Outbound { max_buffered: options.max_buffered, slow_consumer: options.slow_consumer };
    let shared = Shared::open(conn, outbound, Arc::clone(&app.inner.stats), Arc::new(move || clock_rt.now()));
    let (room, membership) = app.join_hub(&admitted);
    let id = membership.id.get();
    app.register(id, &shared);
    if app.is_shutting_down() {
        // Admitted just as shutdown began, registered after it closed the
        // others: close this one the same way.
        let mut s = crate::socket::lock(&shared);
        let now = (s.clock)();
        let _ = s.conn.close(now, nextrush_proto::CloseCode::GOING_AWAY, "server shutting down");
    }
    let path = admitted.request.path().to_owned();
    let peer_addr = admitted.request.peer_addr();
    let info =
        Info { protocol: admitted.protocol, peer_addr, data: admitted.verified.data, membership: Some(membership) };
    let socket = WebSocket::new(Arc::clone(&shared), info);
    let span = tracing::info_span!("ws", id, %path);
    let entered = span.enter();
    tracing::debug!(?peer_addr, "connection open");
    Stats::add(&app.inner.stats.connections, 1);
    Stats::add(&app.inner.stats.total_connections, 1);
    app.emit(&ServerEvent::Connection { id, path, peer_addr });
    let handler = (admitted.handler)(socket, admitted.request);
    let wake = Arc::clone(&room.wake);
    let driver = Driver::new(rt, io, shared, Role::Server).with_room(room);
    drop(entered);
    let task = ConnectionTask::new(driver, handler, wake);
    Some(Open { task, span, id, slot: admitted.slot })
}

/// Bookkeeping once a connection is over: counters, events.
fn close_connection<R: Runtime>(
    app: &App<R>,
    id: u64,
    slot: Slot,
    reason: &nextrush_proto::CloseReason,
    handler_error: Option<String>,
) {
    app.inner.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    // Room for the next connection before anyone hears of this one's end.
    drop(slot);
    app.unregister(id);
    app.leave_hub(id);
    if let nextrush_proto::CloseReason::Protocol(_) = reason {
        // Counted in `errors` by the driver; reported here, as documented.
        app.emit(&ServerEvent::Error { id: Some(id), message: reason.to_string() });
    }
    if let Some(message) = handler_error {
        Stats::add(&app.inner.stats.errors, 1);
        app.emit(&ServerEvent::Error { id: Some(id), message });
    }
    app.emit(&ServerEvent::Disconnect { id, code: reason.code(), reason: reason.reason().to_owned() });
}
