//! What a server writes back: the 101 that completes the handshake
//! (RFC 6455 §4.2.2) or a precise HTTP error.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use thiserror::Error;

use super::WEBSOCKET_VERSION;
use super::request::Request;

/// Headers the handshake writes itself; the same names in `extra_headers`
/// are skipped rather than sent twice or contradicted.
const OWNED_BY_HANDSHAKE: [HeaderName; 7] = [
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
];

/// The server asked [`accept_response`] for something the handshake cannot
/// send. Local misuse; nothing is written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// RFC 6455 §4.2.2: the chosen subprotocol "MUST be derived from the
    /// client's handshake" — it is not one the client offered.
    #[error("subprotocol was not offered by the client")]
    SubprotocolNotOffered,
    /// The extensions value is not a valid header value (visible ASCII,
    /// spaces and tabs only).
    #[error("invalid Sec-WebSocket-Extensions value")]
    InvalidExtensions,
}

/// Appends the `101 Switching Protocols` response that accepts `request`
/// (RFC 6455 §4.2.2 step 5) to `out`.
///
/// Writes `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`,
/// then `Sec-WebSocket-Protocol` if `subprotocol` is given, then
/// `Sec-WebSocket-Extensions` if `extensions` is given (the value the
/// extension module negotiated), then every header of `extra_headers` except
/// those the handshake owns (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
/// `-Protocol`, `-Extensions`, `Content-Length`, `Transfer-Encoding`).
///
/// # Errors
/// `subprotocol` is not among [`Request::subprotocols`], or `extensions` is
/// not a valid header value. `out` is left untouched.
pub fn accept_response(
    request: &Request,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &HeaderMap,
    out: &mut Vec<u8>,
) -> Result<(), AcceptError> {
    if let Some(p) = subprotocol
        && !request.subprotocols().iter().any(|offered| offered == p)
    {
        return Err(AcceptError::SubprotocolNotOffered);
    }
    if let Some(e) = extensions
        && HeaderValue::from_str(e).is_err()
    {
        return Err(AcceptError::InvalidExtensions);
    }
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    write_field(out, "Sec-WebSocket-Accept", request.accept_key().as_bytes());
    if let Some(p) = subprotocol {
        write_field(out, "Sec-WebSocket-Protocol", p.as_bytes());
    }
    if let Some(e) = extensions {
        write_field(out, "Sec-WebSocket-Extensions", e.as_bytes());
    }
    for (name, value) in extra_headers {
        if !OWNED_BY_HANDSHAKE.contains(name) {
            write_field(out, name.as_str(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The headers of the `101 Switching Protocols` response that accepts
/// `request`, for a server framework that writes the response itself (hyper,
/// axum): `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, and the chosen
/// subprotocol and extensions.
///
/// # Errors
/// As [`accept_response`].
pub fn accept_headers(
    request: &Request,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
) -> Result<HeaderMap, AcceptError> {
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = HeaderValue::from_str(&request.accept_key()).map_err(|_| AcceptError::InvalidExtensions)?;
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(p) = subprotocol {
        if !request.subprotocols().iter().any(|offered| offered == p) {
            return Err(AcceptError::SubprotocolNotOffered);
        }
        let value = HeaderValue::from_str(p).map_err(|_| AcceptError::SubprotocolNotOffered)?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    if let Some(e) = extensions {
        let value = HeaderValue::from_str(e).map_err(|_| AcceptError::InvalidExtensions)?;
        headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
    }
    Ok(headers)
}

/// A complete HTTP error response refusing an upgrade: status, headers and
/// a short text body, always with `Content-Length` and `Connection: close`.
///
/// Header values are [`HeaderValue`]s, which cannot hold CR or LF, so a
/// rejection cannot be used to inject header lines. The constructors cover
/// the statuses a WebSocket server needs; [`Rejection::new`] takes any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    // Boxed: keeps `Result<_, Rejection>` small (a `HeaderMap` is ~100 bytes).
    headers: Box<HeaderMap>,
    body: Bytes,
}

impl Rejection {
    /// A response with `status` and its reason phrase as the body.
    #[must_use]
    pub fn new(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        Self { status, headers: Box::default(), body: Bytes::from(format!("{reason}\n")) }
    }

    /// 400 Bad Request.
    #[must_use]
    pub fn bad_request() -> Self {
        Self::new(StatusCode::BAD_REQUEST)
    }

    /// 401 Unauthorized. RFC 9110 §11.6.1 wants a `WWW-Authenticate`
    /// challenge: add it with [`with_header`](Self::with_header).
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED)
    }

    /// 403 Forbidden (e.g. an origin not on the allow-list).
    #[must_use]
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN)
    }

    /// 404 Not Found (no route for the path).
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND)
    }

    /// 426 Upgrade Required with `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2).
    #[must_use]
    pub fn upgrade_required() -> Self {
        Self::new(StatusCode::UPGRADE_REQUIRED)
            .with_header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static(WEBSOCKET_VERSION))
    }

    /// 431 Request Header Fields Too Large.
    #[must_use]
    pub fn header_fields_too_large() -> Self {
        Self::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    }

    /// 503 Service Unavailable, with `Retry-After` in whole seconds (rounded
    /// up) when given.
    #[must_use]
    pub fn service_unavailable(retry_after: Option<Duration>) -> Self {
        let r = Self::new(StatusCode::SERVICE_UNAVAILABLE);
        match retry_after {
            Some(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                r.with_header(RETRY_AFTER, HeaderValue::from(secs))
            }
            None => r,
        }
    }

    /// Replaces the body (sent as `text/plain; charset=utf-8`).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header. `Content-Length`, `Connection` and `Transfer-Encoding`
    /// are computed by [`encode`](Self::encode) and ignored here.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The extra headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Appends the whole HTTP/1.1 response to `out`. The connection should
    /// be closed once it is written.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let reason = self.status.canonical_reason().unwrap_or("");
        out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", self.status.as_u16()).as_bytes());
        for (name, value) in self.headers.iter() {
            if ![CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING].contains(name) {
                write_field(out, name.as_str(), value.as_bytes());
            }
        }
        if !self.headers.contains_key(CONTENT_TYPE) {
            write_field(out, "Content-Type", b"text/plain; charset=utf-8");
        }
        write_field(out, "Content-Length", self.body.len().to_string().as_bytes());
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The encoded response as a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
