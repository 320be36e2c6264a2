//! The client side of the opening handshake: send the upgrade request, read
//! and validate the server's answer (RFC 6455 §4.1).

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::StatusCode;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HeaderMap, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL,
    TRANSFER_ENCODING, UPGRADE,
};
use thiserror::Error;

use super::client_config::ClientConfig;
use super::head::{Head, HeadBuffer, HeadTooLarge};
use super::headers::{self, Duplicate};
use super::{WEBSOCKET_VERSION, accept_key};
use crate::rng::Entropy;

/// The server refused the upgrade: its status, headers and (bounded) body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedResponse {
    /// The status (anything but 101).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body: up to `Content-Length` bytes, cut at `max_body_bytes`. With
    /// no `Content-Length` (or with `Transfer-Encoding`) it is whatever
    /// arrived together with the head, also cut at `max_body_bytes`: the
    /// handshake does not wait for a body whose end it cannot know.
    pub body: Bytes,
}

/// The server's answer is not a valid WebSocket acceptance, or the handshake
/// failed otherwise (RFC 6455 §4.1: the client MUST _Fail the WebSocket
/// Connection_).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// The response head did not end within `max_head_bytes`.
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than `max_headers`.
    #[error("response has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x syntax.
    #[error("malformed response: {0}")]
    Malformed(httparse::Error),
    /// The head ended before the status line did.
    #[error("incomplete status line")]
    Incomplete,
    /// A header name or value the `http` crate rejects.
    #[error("malformed header field")]
    InvalidHeader,
    /// A 101 over a version other than HTTP/1.1.
    #[error("101 response is not HTTP/1.1")]
    HttpVersion,
    /// The server answered with a status other than 101 (RFC 6455 §4.1:
    /// "If the status code received from the server is not 101, the client
    /// handles the response per HTTP procedures").
    #[error("server refused the upgrade with status {}", .0.status)]
    Rejected(Box<RejectedResponse>),
    /// RFC 6455 §4.1 item 2: `Upgrade` is missing or not `websocket`.
    #[error("Upgrade header is not websocket")]
    NotWebSocketUpgrade,
    /// RFC 6455 §4.1 item 3: `Connection` lacks `Upgrade`.
    #[error("Connection header does not include upgrade")]
    NotConnectionUpgrade,
    /// RFC 6455 §4.1 item 4: no `Sec-WebSocket-Accept`.
    #[error("missing Sec-WebSocket-Accept")]
    MissingAccept,
    /// RFC 6455 §4.1 item 4: `Sec-WebSocket-Accept` does not answer our key.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// A header that must appear once appeared more often.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// RFC 6455 §4.1 item 6: the server chose a subprotocol that was not
    /// offered (or chose one when none was offered).
    #[error("server selected a subprotocol that was not offered")]
    UnexpectedSubprotocol,
    /// The response did not complete before the deadline.
    #[error("handshake timed out")]
    TimedOut,
    /// The server closed before the response head was complete.
    #[error("connection closed during the handshake")]
    Eof,
    /// Local misuse: bytes were fed after the handshake completed. Bytes
    /// after the head belong to the connection ([`ClientResponse::leftover`]).
    #[error("receive called after the handshake completed")]
    AlreadyComplete,
}

/// A valid `101 Switching Protocols` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "the leftover bytes are the server's first frames"]
pub struct ClientResponse {
    /// The response headers.
    pub headers: HeaderMap,
    /// The subprotocol the server selected (one the client offered).
    pub subprotocol: Option<String>,
    /// Bytes that arrived after the response head (the server's first
    /// frames): feed them to the connection first.
    pub leftover: Bytes,
}

impl ClientResponse {
    /// The raw `Sec-WebSocket-Extensions` values the server answered with, for
    /// the extension module to check against the offer (RFC 6455 §4.1 item 5:
    /// an extension not offered MUST fail the connection).
    pub fn extension_headers(&self) -> impl Iterator<Item = &str> {
        self.headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok())
    }
}

/// The client side of the opening handshake.
///
/// Write [`request_bytes`](Self::request_bytes) to the transport, then feed
/// what the server sends to [`receive`](Self::receive) until it returns the
/// [`ClientResponse`] or an error. Arm a timer at
/// [`poll_timeout`](Self::poll_timeout). After an error every call returns the
/// same error.
#[derive(Debug)]
pub struct ClientHandshake {
    config: ClientConfig,
    key: String,
    request: Vec<u8>,
    deadline: Option<Instant>,
    state: State,
}

#[derive(Debug)]
enum State {
    ExpectResponse(HeadBuffer),
    /// A non-101 answer whose body is still arriving.
    ExpectBody {
        rejected: Box<RejectedResponse>,
        body: Vec<u8>,
        wanted: usize,
    },
    Done,
    Failed(ClientHandshakeError),
}

impl ClientHandshake {
    /// Starts a handshake at `now`: draws the 16-byte nonce for
    /// `Sec-WebSocket-Key` from `entropy` (RFC 6455 §4.1 item 7) and encodes
    /// the request.
    #[must_use]
    pub fn new(config: ClientConfig, entropy: &mut dyn Entropy, now: Instant) -> Self {
        let mut nonce = [0u8; 16];
        entropy.fill(&mut nonce);
        let key = BASE64.encode(nonce);
        let request = encode_request(&config, &key);
        let deadline = now.checked_add(config.limits().timeout);
        let head = HeadBuffer::new(config.limits().max_head_bytes);
        Self { config, key, request, deadline, state: State::ExpectResponse(head) }
    }

    /// The complete upgrade request to write to the transport.
    #[must_use]
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The configuration this handshake was made from.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Feeds bytes read from the server.
    ///
    /// Returns `Ok(None)` while the response is incomplete, and
    /// `Ok(Some(response))` once, for a valid 101.
    ///
    /// # Errors
    /// The answer is not a valid acceptance (a non-101 status gives
    /// [`ClientHandshakeError::Rejected`] once its body is read); a limit was
    /// exceeded; the handshake timed out or already failed or completed.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Option<ClientResponse>, ClientHandshakeError> {
        let result = match &mut self.state {
            State::ExpectResponse(buf) => match buf.push(bytes) {
                Ok(None) => return Ok(None),
                Ok(Some(head)) => self.on_head(head),
                Err(HeadTooLarge) => {
                    Err(ClientHandshakeError::HeadTooLarge { limit: self.config.limits().max_head_bytes })
                }
            },
            State::ExpectBody { body, wanted, .. } => {
                let take = bytes.len().min(wanted.saturating_sub(body.len()));
                body.extend_from_slice(&bytes[..take]);
                if body.len() < *wanted {
                    return Ok(None);
                }
                Err(self.rejection_so_far())
            }
            State::Done => return Err(ClientHandshakeError::AlreadyComplete),
            State::Failed(e) => return Err(e.clone()),
        };
        match result {
            Ok(Some(response)) => {
                self.state = State::Done;
                Ok(Some(response))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The server closed its side. Before a complete answer this fails the
    /// handshake: with the refusal read so far while a non-101 body was
    /// arriving, else with [`ClientHandshakeError::Eof`].
    ///
    /// # Errors
    /// As described, or the error the handshake had already failed with.
    pub fn receive_eof(&mut self) -> Result<(), ClientHandshakeError> {
        self.fail_unless_done(ClientHandshakeError::Eof)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called: the
    /// deadline while the answer is awaited, `None` afterwards.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::ExpectResponse(_) | State::ExpectBody { .. } => self.deadline,
            State::Done | State::Failed(_) => None,
        }
    }

    /// Tells the handshake the time; early or repeated calls are harmless.
    ///
    /// # Errors
    /// [`ClientHandshakeError::TimedOut`] once the deadline passed with no
    /// head (with a non-101 head, the refusal read so far), or the error the
    /// handshake had already failed with.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientHandshakeError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Done => Ok(()),
            _ if self.deadline.is_some_and(|d| now >= d) => self.fail_unless_done(ClientHandshakeError::TimedOut),
            _ => Ok(()),
        }
    }

    fn fail_unless_done(&mut self, error: ClientHandshakeError) -> Result<(), ClientHandshakeError> {
        let error = match &self.state {
            State::ExpectResponse(_) => error,
            State::ExpectBody { .. } => self.rejection_so_far(),
            State::Done => return Ok(()),
            State::Failed(e) => return Err(e.clone()),
        };
        self.state = State::Failed(error.clone());
        Err(error)
    }

    /// The `Rejected` error with the body read so far (while in `ExpectBody`).
    fn rejection_so_far(&mut self) -> ClientHandshakeError {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ExpectBody { mut rejected, body, .. } => {
                rejected.body = Bytes::from(body);
                ClientHandshakeError::Rejected(rejected)
            }
            other => {
                self.state = other;
                ClientHandshakeError::Eof
            }
        }
    }

    /// Handles a complete response head.
    fn on_head(&mut self, head: Head) -> Result<Option<ClientResponse>, ClientHandshakeError> {
        let limits = self.config.limits();
        let mut storage = headers::slots(limits.max_headers, limits.max_head_bytes);
        let mut resp = httparse::Response::new(&mut storage);
        match resp.parse(&head.bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(ClientHandshakeError::Incomplete),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ClientHandshakeError::TooManyHeaders { limit: limits.max_headers });
            }
            Err(e) => return Err(ClientHandshakeError::Malformed(e)),
        }
        let status = resp.code.and_then(|c| StatusCode::from_u16(c).ok());
        let status = status.ok_or(ClientHandshakeError::Malformed(httparse::Error::Status))?;
        let headers = headers::to_header_map(resp.headers).map_err(|_| ClientHandshakeError::InvalidHeader)?;
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return self.start_body(status, headers, &head.leftover);
        }
        if resp.version != Some(1) {
            return Err(ClientHandshakeError::HttpVersion);
        }
        let subprotocol = self.validate_101(&headers)?;
        Ok(Some(ClientResponse { headers, subprotocol, leftover: head.leftover }))
    }

    /// Starts reading the body of a refusal; fails at once when no more of it
    /// is expected.
    fn start_body(
        &mut self,
        status: StatusCode,
        headers: HeaderMap,
        leftover: &[u8],
    ) -> Result<Option<ClientResponse>, ClientHandshakeError> {
        let max = self.config.limits().max_body_bytes;
        let declared = match headers::single(&headers, &CONTENT_LENGTH) {
            Ok(Some(v)) if !headers.contains_key(TRANSFER_ENCODING) => v.parse::<usize>().ok(),
            _ => None,
        };
        // No usable length: the body is what came with the head.
        let wanted = declared.unwrap_or(leftover.len()).min(max);
        let body = leftover[..wanted.min(leftover.len())].to_vec();
        let complete = body.len() == wanted;
        let rejected = Box::new(RejectedResponse { status, headers, body: Bytes::new() });
        self.state = State::ExpectBody { rejected, body, wanted };
        if complete { Err(self.rejection_so_far()) } else { Ok(None) }
    }

    /// RFC 6455 §4.1, the client's checks of a 101 (items 1–6 of the list
    /// after "the client MUST validate the server's response").
    fn validate_101(&self, headers: &HeaderMap) -> Result<Option<String>, ClientHandshakeError> {
        // Item 2: "If the response lacks an |Upgrade| header field or the
        // |Upgrade| header field contains a value that is not an ASCII
        // case-insensitive match for the value "websocket", the client MUST
        // _Fail the WebSocket Connection_."
        let upgrade = one(headers, &UPGRADE, "upgrade")?;
        if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return Err(ClientHandshakeError::NotWebSocketUpgrade);
        }
        // Item 3: Connection must contain the "Upgrade" token.
        if !headers::has_token(headers, &CONNECTION, "upgrade") {
            return Err(ClientHandshakeError::NotConnectionUpgrade);
        }
        // Item 4: Sec-WebSocket-Accept must be base64(SHA-1(key + GUID)).
        let accept = one(headers, &SEC_WEBSOCKET_ACCEPT, "sec-websocket-accept")?;
        match accept {
            None => return Err(ClientHandshakeError::MissingAccept),
            Some(a) if a != accept_key(&self.key) => {
                return Err(ClientHandshakeError::AcceptMismatch);
            }
            Some(_) => {}
        }
        // Item 6: a subprotocol not present in the client's handshake fails.
        match one(headers, &SEC_WEBSOCKET_PROTOCOL, "sec-websocket-protocol")? {
            None => Ok(None),
            Some(p) if self.config.subprotocols().iter().any(|o| o == p) => Ok(Some(p.to_owned())),
            Some(_) => Err(ClientHandshakeError::UnexpectedSubprotocol),
        }
    }
}

/// The single value of a header, or a duplicate error naming it.
fn one<'a>(
    headers: &'a HeaderMap,
    name: &http::header::HeaderName,
    label: &'static str,
) -> Result<Option<&'a str>, ClientHandshakeError> {
    headers::single(headers, name).map_err(|Duplicate| ClientHandshakeError::DuplicateHeader(label))
}

/// Encodes the upgrade request (RFC 6455 §4.1 items 1–12).
fn encode_request(config: &ClientConfig, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(config.resource().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut field = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    field("Host", config.host_header().as_bytes());
    field("Upgrade", b"websocket");
    field("Connection", b"Upgrade");
    field("Sec-WebSocket-Key", key.as_bytes());
    field("Sec-WebSocket-Version", WEBSOCKET_VERSION.as_bytes());
    if !config.subprotocols().is_empty() {
        field("Sec-WebSocket-Protocol", config.subprotocols().join(", ").as_bytes());
    }
    if let Some(ext) = config.extensions() {
        field("Sec-WebSocket-Extensions", ext.as_bytes());
    }
    for (name, value) in config.headers() {
        field(name.as_str(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}
