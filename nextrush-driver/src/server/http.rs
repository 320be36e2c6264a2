//! A minimal plain-HTTP fallback, so that one port serves a page and the
//! WebSocket: `GET` requests that are not upgrades go to the handler of a
//! route added with [`App::get`].
//!
//! Deliberately small — for a page, a token endpoint, a stats document; not
//! a web framework: `GET` only, no request bodies, one request per
//! connection (every answer says `Connection: close`, no keep-alive), the
//! head bounded by the handshake limits and deadline. Anything else gets the
//! answer it got before: 400, 404, 426, 431...

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderMap, TRANSFER_ENCODING};
use http::{Method, StatusCode};
use nextrush_proto::handshake::{HandshakeError, Rejection};
use nextrush_proto::route::{Params, RouteError};

use super::{App, ServerEvent};
use crate::io::write_all;
use crate::runtime::{Runtime, Transport};
use crate::stats::Stats;

type HttpFuture = Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send>>;
pub(super) type HttpHandler = Arc<dyn Fn(HttpRequest) -> HttpFuture + Send + Sync>;

/// A plain HTTP `GET` request routed to an [`App::get`] handler: path
/// parameters, query, headers and the peer's address.
#[derive(Debug)]
pub struct HttpRequest {
    head: nextrush_proto::handshake::HttpRequest,
    params: Params,
    peer_addr: Option<SocketAddr>,
}

impl HttpRequest {
    /// The method: always `GET`.
    #[must_use]
    pub fn method(&self) -> &Method {
        self.head.method()
    }

    /// The request path, without the query, still percent-encoded.
    #[must_use]
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// A path parameter of the route (`/files/:name` → `param("name")`),
    /// percent-decoded.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// All path parameters.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The first query parameter called `name`, percent-decoded.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.head.query_param(name)
    }

    /// The raw query string, without `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// A header's value, if present and valid text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The peer's address, when the transport has one.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
}

impl<R: Runtime> App<R> {
    /// Answers plain HTTP `GET` requests for `pattern` (same syntax as
    /// [`ws`](Self::ws): `/`, `/token`, `/files/:name`) with `handler`, on
    /// the same port as the WebSocket routes.
    ///
    /// Only for requests without `Upgrade: websocket`: upgrades always go to
    /// the [`ws`](Self::ws) routes, so a path may have both. This is a
    /// fallback for a page, a token endpoint or a stats document, not a web
    /// framework: the request has no body, the head is bounded by the
    /// handshake limits (431 beyond), and the connection closes after the
    /// response (`Connection: close`; `Content-Length` is set from the body).
    /// A `GET` for a path with no route of either kind gets 404; other
    /// methods get 400, as before. A panicking handler answers 500.
    ///
    /// ```no_run
    /// # async fn run<R: nextrush_driver::Runtime>(app: nextrush_driver::App<R>) -> Result<(), Box<dyn std::error::Error>> {
    /// app.get("/", |_req| async {
    ///     http::Response::builder()
    ///         .header("content-type", "text/html; charset=utf-8")
    ///         .body(bytes::Bytes::from_static(b"<h1>hello</h1>"))
    ///         .unwrap()
    /// })?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The pattern is malformed or conflicts with an existing `get` route.
    pub fn get<F, Fut>(&self, pattern: &str, handler: F) -> Result<&Self, RouteError>
    where
        F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
    {
        let handler: HttpHandler = Arc::new(move |req| Box::pin(handler(req)));
        self.inner.http_routes.write().unwrap_or_else(std::sync::PoisonError::into_inner).add(pattern, handler)?;
        Ok(self)
    }

    fn find_http_route(&self, path: &str) -> Option<(HttpHandler, Params)> {
        let routes = self.inner.http_routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        routes.find(path).map(|(h, params)| (Arc::clone(h), params))
    }
}

/// Answers one plain `GET` and closes: the route's handler, or the
/// rejection the request got before there was an HTTP fallback.
pub(super) async fn serve<R: Runtime, T: Transport>(
    app: &App<R>,
    mut io: T,
    head: nextrush_proto::handshake::HttpRequest,
    peer_addr: Option<SocketAddr>,
) {
    let Some((handler, params)) = app.find_http_route(head.path()) else {
        let rejection = if app.find_route(head.path()).is_some() {
            // A WebSocket route asked for without the upgrade.
            HandshakeError::NotWebSocketUpgrade.rejection()
        } else {
            Rejection::not_found()
        };
        super::handshake::reject(app, &mut io, &rejection, "").await;
        return;
    };
    if app.is_shutting_down() {
        let rejection =
            Rejection::service_unavailable(app.inner.options.retry_after).with_body("server shutting down\n");
        super::handshake::reject(app, &mut io, &rejection, "").await;
        return;
    }
    let path = head.path().to_owned();
    let mut future = handler(HttpRequest { head, params, peer_addr });
    let polled =
        std::future::poll_fn(|cx| match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(response)) => Poll::Ready(Some(response)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        })
        .await;
    drop(future);
    let response = polled.unwrap_or_else(|| {
        tracing::warn!(%path, "HTTP handler panicked");
        Stats::add(&app.inner.stats.errors, 1);
        app.emit(&ServerEvent::Error { id: None, message: format!("HTTP handler for {path} panicked") });
        let mut response = http::Response::new(Bytes::from_static(b"Internal Server Error\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    });
    let mut out = Vec::with_capacity(256 + response.body().len());
    encode_response(&response, &mut out);
    if write_all(&mut io, &out).await.is_ok() {
        Stats::add(&app.inner.stats.bytes_sent, out.len() as u64);
    }
    let _ = std::future::poll_fn(|cx| io.poll_shutdown(cx)).await;
}

/// Appends `response` as HTTP/1.1 to `out`: the status line, the handler's
/// headers except those the server owns (`Content-Length`, `Connection`,
/// `Transfer-Encoding`), then `Content-Length` and `Connection: close`, then
/// the body. Header values cannot hold CR or LF, so nothing can be injected.
fn encode_response(response: &http::Response<Bytes>, out: &mut Vec<u8>) {
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in response.headers() {
        if ![CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING].contains(name) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body().len()).as_bytes());
    out.extend_from_slice(response.body());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_status_headers_length_and_close() {
        let response = http::Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "text/plain")
            .header("content-length", "999")
            .header("connection", "keep-alive")
            .body(Bytes::from_static(b"gone"))
            .unwrap();
        let mut out = Vec::new();
        encode_response(&response, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone"
        );
    }
}
