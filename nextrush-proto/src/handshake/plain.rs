//! A plain HTTP `GET` that arrived where an upgrade was expected: what a
//! server that also serves a page, a token endpoint or stats needs to know.

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, HeaderMap, TRANSFER_ENCODING};
use http::{Method, Version};

use super::error::HandshakeError;
use super::request::QueryPairs;

/// A well-formed HTTP/1.1 `GET` request that is not a WebSocket upgrade (it
/// has no `Upgrade: websocket`), as returned by
/// [`ServerHandshake::receive_any`](super::ServerHandshake::receive_any).
///
/// It passed the checks that do not depend on the upgrade: the request line,
/// `Host` (present once, a valid authority), at most one `Origin`, no body
/// (`Content-Length` other than 0 and `Transfer-Encoding` are refused, since
/// the answer closes the connection), and every limit of
/// [`HandshakeLimits`](super::HandshakeLimits). Bytes after its head are not
/// kept: the server answers one request and closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl HttpRequest {
    pub(crate) fn new(path: String, query: Option<String>, headers: HeaderMap) -> Result<Self, HandshakeError> {
        let has_body = headers.contains_key(TRANSFER_ENCODING)
            || headers.get_all(CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
        if has_body {
            return Err(HandshakeError::UnexpectedBody);
        }
        Ok(Self { path, query, headers })
    }

    /// The request method: always `GET`.
    #[must_use]
    pub fn method(&self) -> &Method {
        &Method::GET
    }

    /// The HTTP version: always HTTP/1.1.
    #[must_use]
    pub fn version(&self) -> Version {
        Version::HTTP_11
    }

    /// The path of the request target, still percent-encoded, without the
    /// query. Always starts with `/`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query after `?`, if the target had one.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The query as decoded `key=value` pairs, with the same rules as
    /// [`Request::query_pairs`](super::Request::query_pairs).
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
}
