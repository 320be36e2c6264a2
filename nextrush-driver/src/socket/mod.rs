//! The socket handle users hold: [`WebSocket`], and its halves.
//!
//! # Cancel safety
//!
//! Every future here is cancel-safe by construction: the connection's state
//! lives behind the handle, not in the future. `recv` takes a message out of
//! the queue only in the poll that returns it; `send` either queues the whole
//! message in one poll or nothing. Dropping either at any point (in a
//! `select!`, on a timeout) loses no byte and corrupts no frame. The bytes on
//! the wire are written by the connection's driver task, which no user future
//! owns.

mod shared;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use nextrush_proto::{CloseCode, CloseFrame, CloseReason, Message, MessageKind, ReadyState};

pub use shared::SlowConsumer;
pub(crate) use shared::{Outbound, Shared, lock};

use crate::Error;
use crate::rooms::{Membership, RoomSend, Rooms, SocketId};
use crate::stats::Stats;

/// What `recv_event` returns: messages and, for those who ask, control frames.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A data message.
    Message(Message),
    /// The peer pinged (the pong was sent already).
    Ping(Bytes),
    /// The peer ponged.
    Pong(Bytes),
    /// The peer closed (the echo was sent already); `None` if its Close had no
    /// status code.
    Close(Option<CloseFrame>),
}

/// A snapshot of one socket's activity.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Metadata {
    /// When the connection opened (wall clock).
    pub connected_at: SystemTime,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages sent.
    pub messages_out: u64,
    /// Bytes read from the transport.
    pub bytes_in: u64,
    /// Bytes written to the transport.
    pub bytes_out: u64,
    /// When a message was last received or bytes last written to the peer.
    pub last_activity: Instant,
    /// Round-trip time of the last answered keep-alive ping.
    pub rtt: Option<Duration>,
    /// Bytes queued for the peer and not yet written.
    pub buffered: usize,
}

/// Facts about a connection fixed at the handshake.
#[derive(Default)]
pub(crate) struct Info {
    pub(crate) protocol: Option<String>,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) data: http::Extensions,
    /// The server's rooms hub and this socket's id in it (server sockets).
    pub(crate) membership: Option<Membership>,
}

/// The common core of [`WebSocket`], [`WsReader`] and [`WsWriter`].
struct Handle {
    shared: Arc<Mutex<Shared>>,
    info: Arc<Info>,
}

impl Handle {
    fn clone_counted(&self) -> Self {
        lock(&self.shared).handles += 1;
        Self { shared: Arc::clone(&self.shared), info: Arc::clone(&self.info) }
    }

    fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        let mut s = lock(&self.shared);
        if let Some(event) = s.incoming.pop_front() {
            if let Event::Message(m) = &event {
                s.incoming_bytes -= m.len();
            }
            // The driver stops reading while the queue is full: let it resume.
            if s.read_paused {
                s.read_paused = false;
                wake_driver(s);
            }
            return Poll::Ready(Ok(Some(event)));
        }
        match &s.closed {
            Some(CloseReason::Clean { .. }) => Poll::Ready(Ok(None)),
            Some(reason) => Poll::Ready(Err(Error::Closed(reason.clone()))),
            None => {
                if !s.recv_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.recv_waker = Some(cx.waker().clone());
                }
                s.recv_waiting = true;
                Poll::Pending
            }
        }
    }

    fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        loop {
            match self.poll_event(cx) {
                Poll::Ready(Ok(Some(Event::Message(m)))) => return Poll::Ready(Ok(Some(m))),
                Poll::Ready(Ok(Some(_))) => {}
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Queues `message` if the outbound bound allows, applying the
    /// slow-consumer policy otherwise. `cx` is registered when it must wait.
    fn poll_send(&self, cx: Option<&mut Context<'_>>, message: &mut Option<Message>) -> Poll<Result<(), Error>> {
        let mut s = lock(&self.shared);
        if s.conn.ready_state() != ReadyState::Open {
            return Poll::Ready(Err(closed_error(&s)));
        }
        let len = message.as_ref().map_or(0, Message::len);
        let buffered = s.buffered();
        if buffered > 0 && buffered + len > s.outbound.max_buffered {
            match (s.outbound.slow_consumer, cx) {
                (SlowConsumer::Wait, Some(cx)) => {
                    s.add_waiter(cx.waker());
                    return Poll::Pending;
                }
                (SlowConsumer::Wait | SlowConsumer::Drop, _) => {
                    Stats::add(&s.stats.dropped_messages, 1);
                    return Poll::Ready(Err(Error::QueueFull));
                }
                (SlowConsumer::Disconnect, _) => {
                    Stats::add(&s.stats.dropped_messages, 1);
                    let now = (s.clock)();
                    let _ = s.conn.close(now, CloseCode::POLICY_VIOLATION, "slow consumer");
                    wake_driver(s);
                    return Poll::Ready(Err(Error::QueueFull));
                }
            }
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        let result = s.send_message(message);
        wake_driver(s);
        Poll::Ready(result)
    }

    /// Runs `f` on the connection and wakes the driver.
    fn command(&self, f: impl FnOnce(&mut Shared, Instant) -> Result<(), Error>) -> Result<(), Error> {
        let mut s = lock(&self.shared);
        let now = (s.clock)();
        let result = f(&mut s, now);
        wake_driver(s);
        result
    }

    /// Ready once every queued byte was written (or the socket is gone).
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut s = lock(&self.shared);
        if s.buffered() == 0 {
            return Poll::Ready(Ok(()));
        }
        if s.finished {
            return Poll::Ready(Err(closed_error(&s)));
        }
        s.add_waiter(cx.waker());
        Poll::Pending
    }

    /// Ready once the driver has finished (close handshake done or failed).
    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.shared);
        if s.finished {
            return Poll::Ready(());
        }
        s.add_waiter(cx.waker());
        Poll::Pending
    }

    fn start_close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.command(|s, now| match s.conn.ready_state() {
            ReadyState::Open => Ok(s.conn.close(now, code, reason)?),
            ReadyState::Closing | ReadyState::Closed => Ok(()),
        })
    }

    fn metadata(&self) -> Metadata {
        let s = lock(&self.shared);
        Metadata {
            connected_at: s.counters.connected_at,
            messages_in: s.counters.traffic.messages_in,
            messages_out: s.counters.traffic.messages_out,
            bytes_in: s.counters.traffic.bytes_in,
            bytes_out: s.counters.traffic.bytes_out,
            last_activity: s.counters.last_activity,
            rtt: s.conn.rtt(),
            buffered: s.buffered(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.handles = s.handles.saturating_sub(1);
        if s.handles == 0 && s.conn.ready_state() == ReadyState::Open {
            // The last handle is gone: nobody can read or send any more.
            let now = (s.clock)();
            let _ = s.conn.close(now, CloseCode::NORMAL, "");
            wake_driver(s);
        }
    }
}

fn closed_error(s: &Shared) -> Error {
    match &s.closed {
        Some(reason) if !matches!(reason, CloseReason::Clean { .. }) => Error::Closed(reason.clone()),
        _ => Error::Send(nextrush_proto::SendError::Closed),
    }
}

/// Releases the lock, then wakes the driver task.
fn wake_driver(s: std::sync::MutexGuard<'_, Shared>) {
    // The driver's waker only schedules its task: safe under the lock, and
    // no clone.
    if let Some(w) = &s.driver_waker {
        w.wake_by_ref();
    }
}

/// Wakes every waiter collected from the shared state.
#[inline]
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    // Usually none: skip making an iterator.
    if wakers.is_empty() {
        return;
    }
    for w in wakers {
        w.wake();
    }
}

macro_rules! reader_methods {
    () => {
        /// Receives the next data message; `Ok(None)` after a clean close.
        /// Pings and pongs are answered and skipped.
        ///
        /// The message is not copied: its bytes are a view into the buffer
        /// it was read into (up to 64 KiB, shared with other messages), which
        /// stays allocated while the message lives. To keep a small message
        /// for long, keep [`Message::copied`]; broadcasting it to a room
        /// copies it already.
        ///
        /// # Errors
        /// [`Error::Closed`] when the connection ended without a clean close
        /// (protocol error, timeout, lost transport).
        ///
        /// Cancel-safe: a message is removed only when returned.
        pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
            poll_fn(|cx| self.handle.poll_message(cx)).await
        }

        /// Receives the next event, control frames included.
        ///
        /// # Errors
        /// As [`recv`](Self::recv). Cancel-safe.
        pub async fn recv_event(&mut self) -> Result<Option<Event>, Error> {
            poll_fn(|cx| self.handle.poll_event(cx)).await
        }

        /// Polls for the next data message (the building block of `recv`).
        ///
        /// # Errors
        /// As [`recv`](Self::recv).
        pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
            self.handle.poll_message(cx)
        }
    };
}

macro_rules! writer_methods {
    () => {
        /// Queues a message for sending, waiting while the outbound queue is
        /// over its bound (with [`SlowConsumer::Wait`]). Resolves once queued;
        /// see [`flush`](Self::flush) to wait until written.
        ///
        /// # Errors
        /// The socket is closing or closed, or the slow-consumer policy refused
        /// the message. Cancel-safe: a message is queued whole or not at all.
        pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
            let mut message = Some(message.into());
            poll_fn(|cx| self.handle.poll_send(Some(cx), &mut message)).await
        }

        /// Queues a message without waiting.
        ///
        /// # Errors
        /// As [`send`](Self::send), and [`Error::QueueFull`] where `send` would wait.
        pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Error> {
            let mut message = Some(message.into());
            match self.handle.poll_send(None, &mut message) {
                Poll::Ready(result) => result,
                Poll::Pending => Err(Error::QueueFull),
            }
        }

        /// Serializes `value` as JSON and sends it as a text message.
        ///
        /// # Errors
        /// Serialization failed, or as [`send`](Self::send).
        #[cfg(feature = "json")]
        pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
            let text = serde_json::to_string(value)?;
            self.send(Message::text(text)).await
        }

        /// Sends one fragment of a message streamed in pieces; `fin` ends it.
        ///
        /// # Errors
        /// The socket is closing, or the fragment kind differs from the
        /// message in progress.
        pub async fn send_fragment(&self, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), Error> {
            let mut space = Some(Message::Binary(Bytes::new()));
            poll_fn(|cx| self.handle.poll_send(Some(cx), &mut space)).await?;
            self.handle.command(|s, now| Ok(s.conn.send_fragment(now, kind, data, fin)?))
        }

        /// Sends a ping; its pong shows up in `recv_event` and in
        /// [`Metadata::rtt`].
        ///
        /// # Errors
        /// The socket is closing, or the payload exceeds 125 bytes.
        pub async fn ping(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
            let payload = payload.into();
            self.handle.command(|s, now| Ok(s.conn.ping(now, payload)?))
        }

        /// Starts the close handshake and waits until it completes (or the
        /// close timeout passes). Closing a closed socket does nothing.
        ///
        /// # Errors
        /// A code that may not be sent (1005, 1006, 1015...) or a reason over
        /// 123 bytes.
        pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
            self.handle.start_close(code, reason)?;
            poll_fn(|cx| self.handle.poll_closed(cx)).await;
            Ok(())
        }

        /// Waits until the connection is over: closed by either side, failed,
        /// or dropped, with its transport shut down.
        pub async fn closed(&self) {
            poll_fn(|cx| self.handle.poll_closed(cx)).await;
        }

        /// Waits until everything queued so far has been written.
        ///
        /// # Errors
        /// The connection ended before that.
        pub async fn flush(&self) -> Result<(), Error> {
            poll_fn(|cx| self.handle.poll_flush(cx)).await
        }
    };
}

macro_rules! common_methods {
    () => {
        /// Open, closing or closed.
        #[must_use]
        pub fn ready_state(&self) -> ReadyState {
            lock(&self.handle.shared).conn.ready_state()
        }

        /// Why the connection ended, once it has.
        #[must_use]
        pub fn close_reason(&self) -> Option<CloseReason> {
            lock(&self.handle.shared).closed.clone()
        }

        /// Counters and timings of this socket.
        #[must_use]
        pub fn metadata(&self) -> Metadata {
            self.handle.metadata()
        }

        /// The negotiated subprotocol.
        #[must_use]
        pub fn protocol(&self) -> Option<&str> {
            self.handle.info.protocol.as_deref()
        }

        /// The peer's address, when the transport has one.
        #[must_use]
        pub fn peer_addr(&self) -> Option<SocketAddr> {
            self.handle.info.peer_addr
        }

        /// Data attached at the handshake by `verify_client` (for example
        /// the authenticated user).
        #[must_use]
        pub fn data<T: Send + Sync + Clone + 'static>(&self) -> Option<&T> {
            self.handle.info.data.get::<T>()
        }

        /// This socket's id in the server's rooms hub (`None` for clients):
        /// the address for private messages (`send_to`).
        #[must_use]
        pub fn id(&self) -> Option<SocketId> {
            self.handle.info.membership.as_ref().map(|m| m.id)
        }

        /// The server's rooms hub (`None` for clients): members, presence,
        /// history, counts.
        #[must_use]
        pub fn hub(&self) -> Option<&std::sync::Arc<Rooms>> {
            self.handle.info.membership.as_ref().map(|m| &m.rooms)
        }

        /// Joins `room` (a `room:join` event); history, if kept, is replayed
        /// to this socket first.
        ///
        /// # Errors
        /// A client socket, too many rooms, a full room, a bad name.
        pub fn join(&self, room: &str) -> Result<(), Error> {
            let m = self.membership()?;
            m.rooms.join(room, m.id)?;
            (m.drain_events)();
            Ok(())
        }

        /// Joins `room` with presence data (e.g. the user's name) that the
        /// room's members can list.
        ///
        /// # Errors
        /// As [`join`](Self::join).
        pub fn join_with(&self, room: &str, presence: impl Into<Bytes>) -> Result<(), Error> {
            let m = self.membership()?;
            m.rooms.join_with(room, m.id, presence.into())?;
            (m.drain_events)();
            Ok(())
        }

        /// Leaves `room` (a `room:leave` event). Sockets leave every room
        /// when they close.
        pub fn leave(&self, room: &str) {
            if let Some(m) = self.handle.info.membership.as_ref() {
                m.rooms.leave(room, m.id);
                (m.drain_events)();
            }
        }

        /// Sends to everyone in `room`: `ws.to(room).except_self().send(msg)`.
        /// Encoded once for all recipients; never waits for a slow one.
        pub fn to<'a>(&'a self, room: &'a str) -> RoomSend<'a> {
            RoomSend::new(self.handle.info.membership.as_ref(), room)
        }

        /// Subscribes to `channel`, which anyone can publish to
        /// (`app.publish`).
        ///
        /// # Errors
        /// A client socket, too many channels, a bad name.
        pub fn subscribe(&self, channel: &str) -> Result<(), Error> {
            let m = self.membership()?;
            m.rooms.subscribe(channel, m.id)?;
            Ok(())
        }

        /// Unsubscribes from `channel`.
        pub fn unsubscribe(&self, channel: &str) {
            if let Some(m) = self.handle.info.membership.as_ref() {
                m.rooms.unsubscribe(channel, m.id);
            }
        }

        /// Sends `message` to one socket of this server by id (a private
        /// message), through its room queue; says whether it was queued or
        /// dropped by the slow-consumer policy.
        ///
        /// # Errors
        /// A client socket, or no socket with that id.
        pub fn send_to(&self, id: SocketId, message: impl Into<Message>) -> Result<crate::Delivery, Error> {
            self.membership()?.send_to(id, message.into().into())
        }

        fn membership(&self) -> Result<&Membership, Error> {
            self.handle.info.membership.as_ref().ok_or(Error::NotInHub)
        }
    };
}

/// A WebSocket connection, server or client side.
///
/// Reading and writing go through the connection's driver task; this handle
/// can move between tasks, and [`split`](Self::split) gives halves for two
/// tasks. Dropping the last handle of an open socket closes it with 1000.
/// Also a [`Stream`](futures_core::Stream) of messages and a
/// [`Sink`](futures_sink::Sink) of messages.
pub struct WebSocket {
    handle: Handle,
    /// The `Stream` has yielded its end.
    terminated: bool,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").field("state", &self.ready_state()).finish_non_exhaustive()
    }
}

impl WebSocket {
    pub(crate) fn new(shared: Arc<Mutex<Shared>>, info: Info) -> Self {
        Self { handle: Handle { shared, info: Arc::new(info) }, terminated: false }
    }

    reader_methods!();
    writer_methods!();
    common_methods!();

    /// Splits into a reading half and a writing half that can live in
    /// different tasks. The socket closes when both are dropped.
    #[must_use]
    pub fn split(self) -> (WsReader, WsWriter) {
        let writer = WsWriter { handle: self.handle.clone_counted() };
        (WsReader { handle: self.handle, terminated: self.terminated }, writer)
    }
}

/// The reading half of a [`WebSocket`].
pub struct WsReader {
    handle: Handle,
    terminated: bool,
}

impl WsReader {
    reader_methods!();
    common_methods!();
}

/// The writing half of a [`WebSocket`]. Sends are also possible through a
/// shared reference, so it can be wrapped in an `Arc`.
pub struct WsWriter {
    handle: Handle,
}

impl WsWriter {
    writer_methods!();
    common_methods!();
}

impl std::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsReader").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsWriter").finish_non_exhaustive()
    }
}

fn poll_next_message(
    handle: &Handle,
    terminated: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message, Error>>> {
    if *terminated {
        return Poll::Ready(None);
    }
    match handle.poll_message(cx) {
        Poll::Ready(Ok(Some(m))) => Poll::Ready(Some(Ok(m))),
        Poll::Ready(Ok(None)) => {
            *terminated = true;
            Poll::Ready(None)
        }
        Poll::Ready(Err(e)) => {
            *terminated = true;
            Poll::Ready(Some(Err(e)))
        }
        Poll::Pending => Poll::Pending,
    }
}

impl futures_core::Stream for WebSocket {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_message(&this.handle, &mut this.terminated, cx)
    }
}

impl futures_core::Stream for WsReader {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_message(&this.handle, &mut this.terminated, cx)
    }
}

fn sink_ready(handle: &Handle, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
    handle.poll_send(Some(cx), &mut None)
}

fn sink_send(handle: &Handle, item: Message) -> Result<(), Error> {
    // poll_ready said there is room; a send never waits here.
    handle.command(|s, _| s.send_message(item))
}

fn sink_close(handle: &Handle, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
    handle.start_close(CloseCode::NORMAL, "")?;
    handle.poll_closed(cx).map(Ok)
}

impl futures_sink::Sink<Message> for WebSocket {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_ready(&self.handle, cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        sink_send(&self.handle, item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.handle.poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_close(&self.handle, cx)
    }
}

impl futures_sink::Sink<Message> for WsWriter {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_ready(&self.handle, cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        sink_send(&self.handle, item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.handle.poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_close(&self.handle, cx)
    }
}
