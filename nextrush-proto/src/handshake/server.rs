//! The server side of the opening handshake: read and validate one upgrade
//! request.

use std::time::Instant;

use bytes::Bytes;

use super::HandshakeLimits;
use super::error::HandshakeError;
use super::head::{HeadBuffer, HeadTooLarge};
use super::plain::HttpRequest;
use super::request::{self, Parsed, Request};

/// A valid upgrade request and the bytes that followed its head.
///
/// A client may send its first frames in the same packet as the handshake;
/// they are in `leftover` and must be fed to the connection before anything
/// read later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "the request must be accepted or rejected, and the leftover bytes kept"]
pub struct Incoming {
    /// The validated request.
    pub request: Request,
    /// Bytes received after the request head (WebSocket frames).
    pub leftover: Bytes,
}

/// What a complete request head was, from
/// [`ServerHandshake::receive_any`]: an upgrade to accept or reject, or a
/// plain `GET` for a server that also answers HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the request must be answered"]
pub enum Received {
    /// A valid WebSocket upgrade request.
    Upgrade(Incoming),
    /// A well-formed `GET` without `Upgrade: websocket`. Answer it (or
    /// reject it with [`HandshakeError::NotWebSocketUpgrade`]'s rejection, as
    /// [`ServerHandshake::receive`] would) and close.
    Http(HttpRequest),
}

/// Reads one HTTP/1.1 upgrade request, incrementally and within
/// [`HandshakeLimits`] (RFC 6455 §4.2.1).
///
/// Feed it bytes with [`receive`](Self::receive) until it returns the
/// [`Incoming`] request or an error; arm a timer at
/// [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout) when it fires. After an error
/// every call returns that same error; answer it with
/// [`HandshakeError::rejection`] and close.
///
/// A server that also serves plain HTTP on the same port (a page, a token
/// endpoint) calls [`receive_any`](Self::receive_any) instead, which hands
/// back a `GET` without `Upgrade: websocket` as [`Received::Http`] rather
/// than failing with [`HandshakeError::NotWebSocketUpgrade`].
///
/// Scanning resumes where it stopped, and httparse runs once, on the complete
/// head: feeding a request one byte at a time costs linear time. At most
/// `max_head_bytes` are ever buffered.
#[derive(Debug)]
pub struct ServerHandshake {
    limits: HandshakeLimits,
    deadline: Option<Instant>,
    state: State,
}

/// Named for what each state waits for.
#[derive(Debug)]
enum State {
    ExpectRequest(HeadBuffer),
    Done,
    Failed(HandshakeError),
}

impl ServerHandshake {
    /// A handshake that started at `now` and must complete within
    /// `limits.timeout`.
    #[must_use]
    pub fn new(limits: HandshakeLimits, now: Instant) -> Self {
        let deadline = now.checked_add(limits.timeout);
        let head = HeadBuffer::new(limits.max_head_bytes);
        Self { limits, deadline, state: State::ExpectRequest(head) }
    }

    /// Feeds bytes read from the peer.
    ///
    /// Returns `Ok(None)` while the head is incomplete, `Ok(Some(incoming))`
    /// once, when it is complete and valid (bytes past the head are in
    /// [`Incoming::leftover`]).
    ///
    /// # Errors
    /// The request is invalid or over a limit (see [`HandshakeError`]); the
    /// handshake has timed out or failed before; or it already completed
    /// ([`HandshakeError::AlreadyComplete`]).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Option<Incoming>, HandshakeError> {
        match self.receive_head(bytes, false)? {
            None => Ok(None),
            Some(Received::Upgrade(incoming)) => Ok(Some(incoming)),
            // `receive_head` without plain HTTP fails instead.
            Some(Received::Http(_)) => Err(HandshakeError::NotWebSocketUpgrade),
        }
    }

    /// Like [`receive`](Self::receive), for a server that also answers
    /// plain HTTP: a complete, well-formed `GET` without `Upgrade:
    /// websocket` is returned as [`Received::Http`] instead of failing with
    /// [`HandshakeError::NotWebSocketUpgrade`]. Any other request fails
    /// exactly as with `receive`; the same limits and deadline apply.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_any(&mut self, bytes: &[u8]) -> Result<Option<Received>, HandshakeError> {
        self.receive_head(bytes, true)
    }

    fn receive_head(&mut self, bytes: &[u8], http: bool) -> Result<Option<Received>, HandshakeError> {
        let head = match &mut self.state {
            State::ExpectRequest(buf) => buf.push(bytes),
            State::Done => return Err(HandshakeError::AlreadyComplete),
            State::Failed(e) => return Err(e.clone()),
        };
        let result = match head {
            Ok(None) => return Ok(None),
            Ok(Some(head)) => match request::parse_any(&head.bytes, &self.limits) {
                Ok(Parsed::Upgrade(request)) => Ok(Received::Upgrade(Incoming { request, leftover: head.leftover })),
                Ok(Parsed::Http(request)) if http => Ok(Received::Http(request)),
                Ok(Parsed::Http(_)) => Err(HandshakeError::NotWebSocketUpgrade),
                Err(e) => Err(e),
            },
            Err(HeadTooLarge) => Err(HandshakeError::HeadTooLarge { limit: self.limits.max_head_bytes }),
        };
        self.state = match &result {
            Ok(_) => State::Done,
            Err(e) => State::Failed(e.clone()),
        };
        result.map(Some)
    }

    /// The peer closed its side. Before the request completed this fails the
    /// handshake with [`HandshakeError::Eof`].
    ///
    /// # Errors
    /// `Eof`, or the error the handshake had already failed with.
    pub fn receive_eof(&mut self) -> Result<(), HandshakeError> {
        self.fail_unless_done(HandshakeError::Eof)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called: the
    /// handshake deadline, while the request is still awaited; `None` after
    /// it completed or failed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::ExpectRequest(_) => self.deadline,
            State::Done | State::Failed(_) => None,
        }
    }

    /// Tells the handshake the time; early or repeated calls are harmless.
    ///
    /// # Errors
    /// [`HandshakeError::TimedOut`] once `now` reaches the deadline with the
    /// request incomplete, or the error the handshake had already failed with.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        match (&self.state, self.deadline) {
            (State::ExpectRequest(_), Some(deadline)) if now >= deadline => {
                self.fail_unless_done(HandshakeError::TimedOut)
            }
            (State::Failed(e), _) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Bytes buffered while waiting for the end of the head (at most
    /// `max_head_bytes`).
    #[must_use]
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::ExpectRequest(buf) => buf.len(),
            State::Done | State::Failed(_) => 0,
        }
    }

    /// The limits this handshake enforces.
    #[must_use]
    pub fn limits(&self) -> &HandshakeLimits {
        &self.limits
    }

    fn fail_unless_done(&mut self, error: HandshakeError) -> Result<(), HandshakeError> {
        match &self.state {
            State::ExpectRequest(_) => {
                self.state = State::Failed(error.clone());
                Err(error)
            }
            State::Done => Ok(()),
            State::Failed(e) => Err(e.clone()),
        }
    }
}
