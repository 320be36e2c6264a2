//! Why a server refused an upgrade request, and the HTTP status for it.

use http::StatusCode;
use thiserror::Error;

use super::response::Rejection;

/// The upgrade request is not one this server can accept (RFC 6455 §4.2.1),
/// or the handshake failed otherwise. Each variant knows its HTTP status
/// ([`status`](Self::status)) and the response to send
/// ([`rejection`](Self::rejection)).
///
/// Messages are fixed text: no variant carries text from the peer, so the
/// rejection body never echoes what the peer sent.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head did not end within `max_head_bytes` (431).
    #[error("request head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than `max_headers` (431).
    #[error("request has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x syntax (400).
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// The head ended before the request line did (400).
    #[error("incomplete request line")]
    Incomplete,
    /// RFC 6455 §4.1: "The method of the request MUST be GET". Answered
    /// with 400, not 405: 405 asserts the resource exists and MUST list
    /// `Allow`, which only the application's HTTP server can know.
    #[error("method is not GET")]
    MethodNotGet,
    /// RFC 6455 §4.1: "the HTTP version MUST be at least 1.1" (400).
    #[error("HTTP version is below 1.1")]
    HttpVersion,
    /// The request target is neither origin-form nor absolute-form, or has
    /// a fragment (RFC 6455 §3: fragments MUST NOT be used) (400).
    #[error("malformed request target")]
    InvalidTarget,
    /// A header name or value the `http` crate rejects (400).
    #[error("malformed header field")]
    InvalidHeader,
    /// RFC 6455 §4.1 / RFC 9112 §3.2: `Host` is missing or invalid (400).
    #[error("missing or invalid Host header")]
    InvalidHost,
    /// A header that must appear once appeared more often (400).
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// RFC 6455 §4.2.1 item 3: `Upgrade` lacks the `websocket` token (400).
    #[error("Upgrade header does not include websocket")]
    NotWebSocketUpgrade,
    /// RFC 6455 §4.2.1 item 4: `Connection` lacks the `Upgrade` token (400).
    #[error("Connection header does not include upgrade")]
    NotConnectionUpgrade,
    /// RFC 6455 §4.2.1 item 5: no `Sec-WebSocket-Key` (400).
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// RFC 6455 §4.2.1 item 5: the key is not base64 of 16 bytes (400).
    #[error("Sec-WebSocket-Key is not a base64-encoded 16-byte value")]
    InvalidKey,
    /// RFC 6455 §4.2.1 item 6 / §4.2.2: version missing or not 13. Answered
    /// with 426 and `Sec-WebSocket-Version: 13`.
    #[error("Sec-WebSocket-Version must be 13")]
    UnsupportedVersion,
    /// RFC 6455 §4.1 item 10: an offered subprotocol is not a token (400).
    #[error("malformed Sec-WebSocket-Protocol")]
    InvalidSubprotocol,
    /// More subprotocols offered than `max_subprotocols` (400).
    #[error("more than {limit} subprotocols offered")]
    TooManySubprotocols {
        /// The configured limit.
        limit: usize,
    },
    /// The request declares a body (`Content-Length` > 0 or
    /// `Transfer-Encoding`), whose bytes would be misread as frames (400).
    #[error("upgrade request must not have a body")]
    UnexpectedBody,
    /// The request did not complete before the deadline (408).
    #[error("handshake timed out")]
    TimedOut,
    /// The peer closed before the request was complete (400; there is
    /// usually no one left to answer).
    #[error("connection closed during the handshake")]
    Eof,
    /// Local misuse: bytes were fed after the request was complete (500).
    /// Bytes after the head belong to the connection (see `Incoming::leftover`).
    #[error("receive called after the handshake completed")]
    AlreadyComplete,
}

impl HandshakeError {
    /// The HTTP status this error is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::AlreadyComplete => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The complete HTTP response for this error: its status, this error's
    /// fixed message as the body, `Connection: close`, and for 426 the
    /// `Sec-WebSocket-Version: 13` that RFC 6455 §4.2.2 asks for.
    #[must_use]
    pub fn rejection(&self) -> Rejection {
        let status = self.status();
        let base =
            if status == StatusCode::UPGRADE_REQUIRED { Rejection::upgrade_required() } else { Rejection::new(status) };
        base.with_body(format!("{self}\n"))
    }
}
