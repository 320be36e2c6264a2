//! The WebSocket connection state machine (after the opening handshake).
//!
//! # The contract
//!
//! A [`Connection`] does no IO and reads no clock. The caller moves bytes and
//! time in, and drains what comes out after **every** input or command:
//!
//! * inputs: [`receive`](Connection::receive) (bytes from the peer),
//!   [`receive_eof`](Connection::receive_eof), [`handle_timeout`](Connection::handle_timeout);
//! * commands: [`send`](Connection::send), [`send_fragment`](Connection::send_fragment),
//!   [`ping`](Connection::ping), [`close`](Connection::close);
//! * outputs: [`poll_transmit`](Connection::poll_transmit) (bytes for the
//!   peer), [`poll_event`](Connection::poll_event) (messages, pings, pongs,
//!   the final `Closed`), [`poll_timeout`](Connection::poll_timeout) (when to
//!   call `handle_timeout` next).
//!
//! ```text
//! loop {
//!     1. read from the socket        -> conn.receive(now, &bytes)   (EOF: receive_eof)
//!     2. or the timer fired          -> conn.handle_timeout(now)
//!     3. or the application sends    -> conn.send(now, msg)
//!     4. conn.poll_transmit(&mut out) -> write `out` to the socket
//!     5. while let Some(ev) = conn.poll_event() -> deliver ev
//!     6. arm the timer at conn.poll_timeout()
//!     7. after Event::Closed and an empty transmit: close the socket
//! }
//! ```
//!
//! Reading implies writing: a received Ping queues its Pong, a received Close
//! queues the echo, and a protocol error queues a Close with the error's code
//! before `Event::Closed` is reported — the caller only has to transmit.

mod compression;
mod outbox;
mod reader;

pub use outbox::Transmit;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::close_code::{CloseCode, CloseFrame};
use crate::config::{Config, RateLimitAction};
use crate::error::{CloseReason, ConfigError, ProtocolError, SendError, Side, Timer};
use crate::frame::{FrameHead, Opcode};
use crate::message::{Message, Utf8Bytes};
use crate::rng::Entropy;
use crate::role::Role;
use compression::Deflater;
use outbox::{Lane, Outbox};
use reader::{Inbound, Reader};

/// Control frame bytes queued (pongs, pings) beyond which unsent pongs are
/// replaced by the newest one.
const MAX_QUEUED_CONTROL: usize = 4096;

/// What the connection reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// The peer pinged (the pong is already queued when `auto_pong` is on).
    Ping(Bytes),
    /// The peer answered a ping (or sent an unsolicited pong).
    Pong(Bytes),
    /// A message over the rate limit was dropped ([`RateLimitAction::Drop`]).
    RateLimited,
    /// The connection ended; reported exactly once, then no more events.
    Closed(CloseReason),
}

/// The kind of a data message, for fragmented (streaming) sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

/// Where the connection is in its life (as the browser `readyState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyState {
    /// Messages flow both ways.
    Open,
    /// We sent Close and wait for the peer's.
    Closing,
    /// Closed: only queued bytes remain to be written.
    Closed,
}

/// Counts messages in the current rate-limit window.
#[derive(Debug)]
struct RateWindow {
    started: Instant,
    count: u32,
}

/// Keep-alive bookkeeping.
#[derive(Debug)]
struct Heartbeat {
    last_received: Instant,
    ping_sent: Option<Instant>,
    rtt: Option<Duration>,
}

/// A WebSocket connection in either role. See the [module docs](self) for
/// the run loop.
#[repr(C)] // In this order: what a message touches first, the rest after (fewer cache lines per message).
pub struct Connection {
    reader: Reader,
    events: VecDeque<Event>,
    /// `poll_timeout`'s answer, worked out after every input or command
    /// that can change it: drivers ask several times per message.
    timeout: Option<Instant>,
    heartbeat: Heartbeat,
    close_deadline: Option<Instant>,
    /// Shared: the connections of one server or client usually have the
    /// same configuration, and one copy stays in cache for all of them.
    config: Arc<Config>,
    /// Boxed: most connections never compress, and idle ones should be small.
    deflate: Option<Box<Deflater>>,
    outbox: Outbox,
    role: Role,
    state: ReadyState,
    /// The kind of the fragmented message being sent, if any.
    sending: Option<MessageKind>,
    entropy: Option<Box<dyn Entropy>>,
    rate: RateWindow,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("queued", &self.outbox.queued())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection, opened at `now`. Takes a `Config` or an
    /// `Arc<Config>`: a server's connections can share one.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn server(config: impl Into<Arc<Config>>, now: Instant) -> Result<Self, ConfigError> {
        Self::new(Role::Server, config.into(), now, None)
    }

    /// A client-side connection, opened at `now`; mask keys come from
    /// `entropy`. Takes a `Config` or an `Arc<Config>`, as [`server`](Self::server).
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn client(
        config: impl Into<Arc<Config>>,
        now: Instant,
        entropy: Box<dyn Entropy>,
    ) -> Result<Self, ConfigError> {
        Self::new(Role::Client, config.into(), now, Some(entropy))
    }

    fn new(
        role: Role,
        config: Arc<Config>,
        now: Instant,
        entropy: Option<Box<dyn Entropy>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut conn = Self {
            role,
            reader: Reader::new(role, config.max_frame_size, config.max_message_size),
            config,
            outbox: Outbox::default(),
            deflate: None,
            entropy,
            sending: None,
            state: ReadyState::Open,
            close_deadline: None,
            heartbeat: Heartbeat { last_received: now, ping_sent: None, rtt: None },
            rate: RateWindow { started: now, count: 0 },
            events: VecDeque::new(),
            timeout: None,
        };
        conn.refresh_timeout();
        Ok(conn)
    }

    /// Turns on permessage-deflate with the parameters the handshake
    /// negotiated (call before any data moves).
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, params: &crate::deflate::DeflateParams, config: &crate::deflate::DeflateConfig) {
        self.deflate = Some(Box::new(Deflater::new(params, self.role, config)));
        self.reader.set_inflater(Box::new(compression::Inflater::new(params, self.role)));
    }

    /// Whether permessage-deflate is on.
    #[must_use]
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    /// This connection's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration in force.
    #[must_use]
    #[inline]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Open, closing or closed.
    #[must_use]
    #[inline]
    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    /// Whether the connection has ended (`Event::Closed` was queued).
    #[must_use]
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.state == ReadyState::Closed
    }

    /// The round-trip time of the last answered keep-alive ping.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.heartbeat.rtt
    }

    /// Bytes queued for the peer and not yet taken by `poll_transmit`: the
    /// backpressure signal.
    #[must_use]
    #[inline]
    pub fn buffered_amount(&self) -> usize {
        self.outbox.queued()
    }

    /// Bytes received and not yet processed into events (a partial frame).
    #[must_use]
    pub fn buffered_input(&self) -> usize {
        self.reader.buffered()
    }

    // ----- inputs -------------------------------------------------------

    /// Processes bytes received from the peer at `now`.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() || bytes.is_empty() {
            return;
        }
        self.reader.extend(bytes);
        self.process(now);
        self.refresh_timeout();
    }

    /// Like [`receive`](Self::receive), taking a buffer the caller read into,
    /// without copying it when nothing is pending.
    pub fn receive_owned(&mut self, now: Instant, bytes: BytesMut) {
        if self.is_closed() || bytes.is_empty() {
            return;
        }
        self.reader.extend_owned(bytes);
        self.process(now);
        self.refresh_timeout();
    }

    /// The bytes of a partly received frame, if any, handed out so that the
    /// caller reads the rest of the frame straight after them. Give the
    /// buffer back with [`receive_owned`](Self::receive_owned) once bytes
    /// were appended, or [`restore_partial_input`](Self::restore_partial_input)
    /// if none were, before any other input. Without it, a frame cut by a
    /// read is copied into a buffer of its own when the rest arrives.
    ///
    /// Room for the rest: for bytes given with [`receive`](Self::receive),
    /// reserved here once the frame's head is in (up to 256 KiB). For a
    /// buffer given with [`receive_owned`](Self::receive_owned), not: that
    /// buffer is usually a view of the caller's read memory, and growing it
    /// would allocate anew for every frame cut at its end. The caller places
    /// the rest, with [`missing_input`](Self::missing_input) saying how much
    /// is to come: reading into the buffer as it is grows it, or the bytes
    /// go to the start of memory with room (as the driver's read arena does).
    pub fn take_partial_input(&mut self) -> Option<BytesMut> {
        self.reader.take_partial()
    }

    /// How many more bytes the frame being received needs, by its head's
    /// declared length, up to 256 KiB; 0 while the head itself is
    /// incomplete or no frame is in progress. See
    /// [`take_partial_input`](Self::take_partial_input).
    #[must_use]
    pub fn missing_input(&self) -> usize {
        self.reader.missing()
    }

    /// Gives back what [`take_partial_input`](Self::take_partial_input)
    /// handed out, nothing appended: the same bytes (in the same buffer, or
    /// copied to one with more room).
    pub fn restore_partial_input(&mut self, buf: BytesMut) {
        self.reader.restore_partial(buf);
    }

    /// The transport ended (read EOF or an error) at `now`.
    pub fn receive_eof(&mut self, _now: Instant) {
        if !self.is_closed() {
            self.finish(CloseReason::Eof);
        }
        self.refresh_timeout();
    }

    /// Runs the timers that are due at `now`. Early or repeated calls are
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
        self.refresh_timeout();
    }

    fn run_timers(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.close_deadline.is_some_and(|d| now >= d) {
            return self.finish(CloseReason::TimedOut(Timer::Close));
        }
        if let Some(sent) = self.heartbeat.ping_sent {
            if now >= sent + self.config.pong_timeout {
                self.finish(CloseReason::TimedOut(Timer::Pong));
            }
        } else if let Some(at) = self.keepalive_deadline()
            && now >= at
            && self.state == ReadyState::Open
        {
            self.heartbeat.ping_sent = Some(now);
            self.push_control(Opcode::Ping, Bytes::new());
        }
    }

    // ----- outputs ------------------------------------------------------

    /// Appends every queued frame to `out` and returns how many bytes that
    /// was. Call after every input or command.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.outbox.drain_into(out)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), without copying: moves
    /// what is queued into `out`, which must have been written out. Large
    /// payloads come by reference (write them with vectored writes, see
    /// [`Transmit`]), and `out`'s old buffer stays with the connection for
    /// the next frames (unless it is large: an idle connection should not
    /// hold a large buffer). Two buffers take turns, so a connection that
    /// keeps sending allocates nothing.
    #[inline]
    pub fn take_transmit(&mut self, out: &mut Transmit) {
        self.outbox.take_into(out);
    }

    /// The next event, if any.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        debug_assert_eq!(self.timeout, self.next_timeout(), "a change to the timers was not noted");
        self.timeout
    }

    fn refresh_timeout(&mut self) {
        self.timeout = self.next_timeout();
    }

    fn next_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let pong = self.heartbeat.ping_sent.map(|sent| sent + self.config.pong_timeout);
        let keepalive = if pong.is_none() && self.state == ReadyState::Open { self.keepalive_deadline() } else { None };
        [self.close_deadline, pong, keepalive].into_iter().flatten().min()
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        self.config.ping_interval.map(|interval| self.heartbeat.last_received + interval)
    }

    // ----- commands -----------------------------------------------------

    /// Queues a complete message.
    ///
    /// # Errors
    /// The connection is closing or closed, or a fragmented send is in progress.
    pub fn send(&mut self, _now: Instant, message: Message) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.sending.is_some() {
            return Err(SendError::Fragmentation("a fragmented message is in progress"));
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (Opcode::Text, text.into_bytes()),
            Message::Binary(data) => (Opcode::Binary, data),
        };
        let (rsv, payload) = match self.deflate.as_mut() {
            Some(deflate) if payload.len() >= deflate.threshold() => {
                let mut out = BytesMut::new();
                // Sent as is when compression would not make it smaller.
                if matches!(deflate.compress(&payload, &mut out), Ok(true)) {
                    (FrameHead::RSV1, out.freeze())
                } else {
                    (0, payload)
                }
            }
            _ => (0, payload),
        };
        self.push_frame(Lane::Data, true, rsv, opcode, payload);
        Ok(())
    }

    /// Queues one fragment of a message sent in pieces (streaming). The first
    /// call starts a message of `kind`; `fin` ends it. Pieces of a text
    /// message must each be valid UTF-8 on their own (`&str` boundaries).
    ///
    /// # Errors
    /// The connection is closing or closed, or `kind` differs from the kind
    /// of the message in progress.
    pub fn send_fragment(&mut self, _now: Instant, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), SendError> {
        self.check_can_send()?;
        let opcode = match self.sending {
            None => match kind {
                MessageKind::Text => Opcode::Text,
                MessageKind::Binary => Opcode::Binary,
            },
            Some(current) if current == kind => Opcode::Continuation,
            Some(_) => {
                return Err(SendError::Fragmentation("fragment kind differs from the message in progress"));
            }
        };
        let (rsv, payload) = match self.deflate.as_mut() {
            Some(deflate) => {
                let mut out = BytesMut::new();
                deflate.compress_fragment(&data, fin, &mut out).map_err(|_| SendError::Compression)?;
                let rsv = if opcode == Opcode::Continuation { 0 } else { FrameHead::RSV1 };
                (rsv, out.freeze())
            }
            None => (0, data),
        };
        self.sending = if fin { None } else { Some(kind) };
        self.push_frame(Lane::Data, fin, rsv, opcode, payload);
        Ok(())
    }

    /// Queues frames encoded once for many connections (a broadcast). Only
    /// for the server role, whose frames are unmasked; each must be a
    /// complete, valid frame sequence for this connection's extensions.
    ///
    /// # Errors
    /// The connection is closing or closed, or is a client, or a fragmented
    /// send is in progress. The frames are copied into the connection's
    /// output, so a shared buffer needs no clone per connection.
    pub fn send_encoded(&mut self, _now: Instant, frames: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.role == Role::Client || self.sending.is_some() {
            return Err(SendError::Fragmentation("pre-encoded frames need an idle server connection"));
        }
        self.outbox.push_encoded(frames);
        Ok(())
    }

    /// Queues a ping. A keep-alive ping's pong also measures [`rtt`](Self::rtt).
    ///
    /// # Errors
    /// The connection is closing, or the payload exceeds 125 bytes.
    pub fn ping(&mut self, now: Instant, payload: Bytes) -> Result<(), SendError> {
        self.check_can_send()?;
        check_control_len(payload.len())?;
        self.heartbeat.ping_sent.get_or_insert(now);
        self.push_control(Opcode::Ping, payload);
        self.refresh_timeout();
        Ok(())
    }

    /// Queues an unsolicited pong (a one-way heartbeat, RFC 6455 §5.5.3).
    ///
    /// # Errors
    /// The connection is closing, or the payload exceeds 125 bytes.
    pub fn pong(&mut self, _now: Instant, payload: Bytes) -> Result<(), SendError> {
        self.check_can_send()?;
        check_control_len(payload.len())?;
        self.push_control(Opcode::Pong, payload);
        Ok(())
    }

    /// Starts the close handshake: queues Close after everything already
    /// queued, and waits `close_timeout` for the peer's Close.
    ///
    /// # Errors
    /// Already closing or closed; a code that may not be sent; a reason over
    /// 123 bytes.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_can_send()?;
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code));
        }
        check_control_len(reason.len() + 2)?;
        self.push_close(Some(code), reason.as_bytes());
        self.state = ReadyState::Closing;
        self.close_deadline = Some(now + self.config.close_timeout);
        self.refresh_timeout();
        Ok(())
    }

    // ----- internals ----------------------------------------------------

    fn check_can_send(&self) -> Result<(), SendError> {
        if self.state == ReadyState::Open { Ok(()) } else { Err(SendError::Closed) }
    }

    fn process(&mut self, now: Instant) {
        self.heartbeat.last_received = now;
        while !self.is_closed() {
            match self.reader.next() {
                Ok(Some(unit)) => self.dispatch(now, unit),
                Ok(None) => break,
                Err(error) => self.fail(error),
            }
        }
    }

    fn dispatch(&mut self, now: Instant, unit: Inbound) {
        match unit {
            Inbound::Message(message) => self.deliver(now, message),
            Inbound::Ping(payload) => {
                if self.config.auto_pong && self.state == ReadyState::Open {
                    // RFC 6455 §5.5.3 allows answering only the latest ping: a ping
                    // flood from a peer that does not read cannot grow the queue.
                    if self.outbox.queued_control() >= MAX_QUEUED_CONTROL {
                        self.outbox.drop_queued_pongs();
                    }
                    self.push_control(Opcode::Pong, payload.clone());
                }
                self.events.push_back(Event::Ping(payload));
            }
            Inbound::Pong(payload) => {
                if let Some(sent) = self.heartbeat.ping_sent.take() {
                    self.heartbeat.rtt = Some(now.saturating_duration_since(sent));
                }
                self.events.push_back(Event::Pong(payload));
            }
            Inbound::Close(payload) => self.on_close(payload),
        }
    }

    fn deliver(&mut self, now: Instant, message: Message) {
        if let Some(limit) = self.config.rate_limit {
            if now.saturating_duration_since(self.rate.started) >= limit.window {
                self.rate = RateWindow { started: now, count: 0 };
            }
            self.rate.count = self.rate.count.saturating_add(1);
            if self.rate.count > limit.messages {
                return match limit.action {
                    RateLimitAction::Drop => self.events.push_back(Event::RateLimited),
                    RateLimitAction::Close => self.fail(ProtocolError::RateLimited),
                };
            }
        }
        self.events.push_back(Event::Message(message));
    }

    /// RFC 6455 §5.5.1 and §7.1.5: validate the peer's Close, echo it if we
    /// have not sent ours, and end the connection.
    fn on_close(&mut self, payload: Bytes) {
        let frame = match parse_close(payload) {
            Ok(frame) => frame,
            Err(error) => return self.fail(error),
        };
        let initiator = if self.state == ReadyState::Open {
            // "It SHOULD do so as soon as practical ... typically echos the status code it received."
            let code = frame.as_ref().map(|f| f.code);
            self.push_close(code, b"");
            Side::Peer
        } else {
            Side::Local
        };
        self.finish(CloseReason::Clean { initiator, frame });
    }

    /// Fails the connection (RFC 6455 §7.1.7): queue a Close with the error's
    /// code unless one was sent already, then end.
    fn fail(&mut self, error: ProtocolError) {
        if self.state == ReadyState::Open {
            self.push_close(Some(error.close_code()), b"");
        }
        self.finish(CloseReason::Protocol(error));
    }

    fn finish(&mut self, reason: CloseReason) {
        self.state = ReadyState::Closed;
        self.close_deadline = None;
        self.heartbeat.ping_sent = None;
        self.reader.discard();
        self.events.push_back(Event::Closed(reason));
    }

    fn push_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        let mut body = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            body.extend_from_slice(&code.0.to_be_bytes());
            body.extend_from_slice(reason);
        }
        self.push_frame(Lane::Data, true, 0, Opcode::Close, body.into());
    }

    fn push_control(&mut self, opcode: Opcode, payload: Bytes) {
        self.push_frame(Lane::Control, true, 0, opcode, payload);
    }

    fn push_frame(&mut self, lane: Lane, fin: bool, rsv: u8, opcode: Opcode, payload: Bytes) {
        let mask = self.entropy.as_mut().map(|entropy| {
            let mut key = [0; 4];
            entropy.fill(&mut key);
            key
        });
        let head = FrameHead { fin, rsv, opcode, mask, len: payload.len() as u64 };
        self.outbox.push(lane, head, payload);
    }
}

fn check_control_len(len: usize) -> Result<(), SendError> {
    if len > 125 { Err(SendError::ControlTooLong(len)) } else { Ok(()) }
}

/// Parses a Close payload (RFC 6455 §5.5.1, §7.4).
fn parse_close(payload: Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::CloseOneByte),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = Utf8Bytes::try_from_bytes(payload.slice(2..)).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}
