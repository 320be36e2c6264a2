//! The server's view of a valid upgrade request, and its parsing and
//! validation (RFC 6455 §4.2.1).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, ORIGIN, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::Authority;
use http::{Method, Uri, Version};

use super::error::HandshakeError;
use super::headers::{self, Duplicate};
use super::plain::HttpRequest;
use super::{HandshakeLimits, WEBSOCKET_VERSION, accept_key, percent};

/// A validated WebSocket upgrade request (RFC 6455 §4.2.1).
///
/// Everything in it came from the peer and is bounded by the
/// [`HandshakeLimits`] it was parsed under: the head size bounds every string,
/// `max_headers` the header map, `max_subprotocols` the offer list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: Method,
    version: Version,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    key: String,
    subprotocols: Vec<String>,
}

impl Request {
    /// The request method (always `GET` for a valid upgrade).
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The HTTP version (always HTTP/1.1: httparse reads 1.0 and 1.1, and
    /// 1.0 is refused).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The path of the request target, as sent: still percent-encoded, no
    /// query. For an absolute-form target (`GET ws://host/chat`) this is
    /// the path part (`/chat`). Always starts with `/`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query after `?`, if the target had one (possibly empty).
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The query as decoded `key=value` pairs, in order, duplicates kept
    /// (the `application/x-www-form-urlencoded` rules: `&` separates pairs,
    /// `+` is a space, `%XX` is a byte, invalid UTF-8 becomes U+FFFD, a pair
    /// without `=` has an empty value, empty pairs are skipped).
    ///
    /// Decoded lazily from [`query`](Self::query); the count is bounded by
    /// the query's length.
    pub fn query_pairs(&self) -> QueryPairs<'_> {
        QueryPairs::new(self.query.as_deref().unwrap_or(""))
    }

    /// The value of the first query pair named `name` (after decoding).
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// All header fields as received (names lower-cased by `http`).
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of a header as text, if present and visible ASCII.
    #[must_use]
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Host` header (validated as an authority: `host[:port]`).
    #[must_use]
    pub fn host(&self) -> &str {
        self.header(HOST).unwrap_or_default()
    }

    /// The `Origin` header (RFC 6455 §4.1 item 8, sent by browsers), as sent.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.header(ORIGIN)
    }

    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's
    /// order of preference: comma-split, trimmed, each an RFC 9110 token.
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The raw `Sec-WebSocket-Extensions` values, one per header line, for the
    /// extension module to parse (RFC 6455 §9.1 grammar).
    pub fn extension_headers(&self) -> impl Iterator<Item = &str> {
        self.headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok())
    }

    /// The `Sec-WebSocket-Key` as sent (24 base64 characters of 16 bytes).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` value that answers this request's key.
    #[must_use]
    pub fn accept_key(&self) -> String {
        accept_key(&self.key)
    }
}

/// Iterator over decoded query pairs; see [`Request::query_pairs`].
#[derive(Clone, Debug)]
pub struct QueryPairs<'a> {
    rest: &'a str,
}

impl<'a> QueryPairs<'a> {
    pub(crate) fn new(query: &'a str) -> Self {
        Self { rest: query }
    }
}

impl<'a> Iterator for QueryPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (pair, rest) = self.rest.split_once('&').unwrap_or((self.rest, ""));
            self.rest = rest;
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            return Some((percent::decode_lossy(k, true), percent::decode_lossy(v, true)));
        }
    }
}

impl Request {
    /// Validates a request another HTTP server has parsed (hyper, axum) with
    /// the same RFC 6455 §4.2.1 rules as [`ServerHandshake`](super::ServerHandshake).
    ///
    /// # Errors
    /// The request is not a valid WebSocket upgrade; the error knows its
    /// HTTP status.
    pub fn from_http(parts: &http::request::Parts, limits: &HandshakeLimits) -> Result<Self, HandshakeError> {
        if parts.method != Method::GET {
            return Err(HandshakeError::MethodNotGet);
        }
        if parts.version != Version::HTTP_11 {
            return Err(HandshakeError::HttpVersion);
        }
        if parts.headers.len() > limits.max_headers {
            return Err(HandshakeError::TooManyHeaders { limit: limits.max_headers });
        }
        let target = parts.uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let (path, query) = split_target(target)?;
        let headers = parts.headers.clone();
        validate_headers(&headers)?;
        let key = validate_key(&headers)?;
        let subprotocols = offered_subprotocols(&headers, limits.max_subprotocols)?;
        Ok(Self { method: Method::GET, version: Version::HTTP_11, path, query, headers, key, subprotocols })
    }
}

/// A complete request head: a WebSocket upgrade, or a plain `GET`.
pub(crate) enum Parsed {
    /// A valid upgrade request.
    Upgrade(Request),
    /// A well-formed `GET` without `Upgrade: websocket`.
    Http(HttpRequest),
}

/// Parses a complete request head; a `GET` that fails the upgrade checks
/// only for lacking `Upgrade: websocket` is a plain HTTP request. Every other
/// failure is the RFC 6455 §4.2.1 error for it.
pub(crate) fn parse_any(head: &[u8], limits: &HandshakeLimits) -> Result<Parsed, HandshakeError> {
    let mut storage = headers::slots(limits.max_headers, limits.max_head_bytes);
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HandshakeError::TooManyHeaders { limit: limits.max_headers });
        }
        Err(e) => return Err(HandshakeError::Malformed(e)),
    }
    // RFC 6455 §4.1 item 2: "The method of the request MUST be GET, and the
    // HTTP version MUST be at least 1.1."
    if req.method != Some("GET") {
        return Err(HandshakeError::MethodNotGet);
    }
    if req.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let (path, query) = split_target(req.path.unwrap_or_default())?;
    let headers = headers::to_header_map(req.headers).map_err(|_| HandshakeError::InvalidHeader)?;
    match validate_headers(&headers) {
        Ok(()) => {}
        // Host and Origin passed (they are checked first): a plain GET.
        Err(HandshakeError::NotWebSocketUpgrade) => return HttpRequest::new(path, query, headers).map(Parsed::Http),
        Err(e) => return Err(e),
    }
    let key = validate_key(&headers)?;
    let subprotocols = offered_subprotocols(&headers, limits.max_subprotocols)?;
    Ok(Parsed::Upgrade(Request {
        method: Method::GET,
        version: Version::HTTP_11,
        path,
        query,
        headers,
        key,
        subprotocols,
    }))
}

/// Splits the request target into path and raw query (RFC 9112 §3.2).
fn split_target(target: &str) -> Result<(String, Option<String>), HandshakeError> {
    // RFC 6455 §3: "Fragment identifiers are meaningless in the context of
    // WebSocket URIs and MUST NOT be used on these URIs."
    if target.contains('#') {
        return Err(HandshakeError::InvalidTarget);
    }
    if target.starts_with('/') {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        return Ok((path.to_owned(), query));
    }
    // Absolute-form, which RFC 9112 §3.2.2 says a server MUST accept.
    let uri: Uri = target.parse().map_err(|_| HandshakeError::InvalidTarget)?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(HandshakeError::InvalidTarget);
    }
    let path = if uri.path().is_empty() { "/" } else { uri.path() };
    Ok((path.to_owned(), uri.query().map(str::to_owned)))
}

/// The header checks of RFC 6455 §4.2.1 items 2–4 and 6, plus framing.
fn validate_headers(headers: &HeaderMap) -> Result<(), HandshakeError> {
    // RFC 9112 §3.2: 400 for a missing Host, several Host lines, or an
    // invalid Host value.
    let host = one(headers, &HOST, "host")?.ok_or(HandshakeError::InvalidHost)?;
    match host.parse::<Authority>() {
        Ok(a) if !host.contains('@') && !a.host().is_empty() => {}
        _ => return Err(HandshakeError::InvalidHost),
    }
    one(headers, &ORIGIN, "origin")?;
    // Everything above applies to any request; `parse_any` reads the error
    // below as "a plain GET", so keep the checks before it request-generic.
    if !headers::has_token(headers, &UPGRADE, "websocket") {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    if !headers::has_token(headers, &CONNECTION, "upgrade") {
        return Err(HandshakeError::NotConnectionUpgrade);
    }
    // RFC 6455 §4.2.2: a version the server does not understand MUST be
    // answered with an error (426) naming the versions it does.
    if one(headers, &SEC_WEBSOCKET_VERSION, "sec-websocket-version") != Ok(Some(WEBSOCKET_VERSION)) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let has_body =
        headers.contains_key(TRANSFER_ENCODING) || headers.get_all(CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(HandshakeError::UnexpectedBody);
    }
    if headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().any(|v| v.to_str().is_err()) {
        return Err(HandshakeError::InvalidHeader);
    }
    Ok(())
}

/// RFC 6455 §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a
/// base64-encoded value that, when decoded, is 16 bytes in length", and
/// §11.3.1: it MUST NOT appear more than once.
fn validate_key(headers: &HeaderMap) -> Result<String, HandshakeError> {
    let key = one(headers, &SEC_WEBSOCKET_KEY, "sec-websocket-key")?.ok_or(HandshakeError::MissingKey)?;
    // 16 bytes are exactly 24 base64 characters; checking the length first
    // bounds the decode.
    let ok = key.len() == 24 && BASE64.decode(key).is_ok_and(|nonce| nonce.len() == 16);
    if ok { Ok(key.to_owned()) } else { Err(HandshakeError::InvalidKey) }
}

/// RFC 6455 §4.1 item 10: the offered subprotocols, each a token.
fn offered_subprotocols(headers: &HeaderMap, limit: usize) -> Result<Vec<String>, HandshakeError> {
    let mut offered = Vec::new();
    for p in headers::list(headers, &SEC_WEBSOCKET_PROTOCOL) {
        if !headers::is_token(p) {
            return Err(HandshakeError::InvalidSubprotocol);
        }
        if offered.len() == limit {
            return Err(HandshakeError::TooManySubprotocols { limit });
        }
        offered.push(p.to_owned());
    }
    if headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter().any(|v| v.to_str().is_err()) {
        return Err(HandshakeError::InvalidSubprotocol);
    }
    Ok(offered)
}

/// The single value of `name`, or a duplicate error naming it.
fn one<'a>(headers: &'a HeaderMap, name: &HeaderName, label: &'static str) -> Result<Option<&'a str>, HandshakeError> {
    headers::single(headers, name).map_err(|Duplicate| HandshakeError::DuplicateHeader(label))
}
