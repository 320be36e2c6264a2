//! The upgrade request as a handler sees it.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::HeaderMap;
use nextrush_proto::route::Params;

/// The HTTP upgrade request of a WebSocket connection: path parameters from
/// the route, query, headers and the peer's address.
///
/// One pointer wide: a handler usually holds its request for the whole
/// connection, and a small one leaves the handler's own state in fewer
/// cache lines.
#[derive(Debug)]
pub struct Request(Box<Parts>);

#[derive(Debug)]
struct Parts {
    head: nextrush_proto::Request,
    params: Params,
    peer_addr: Option<SocketAddr>,
}

impl Request {
    pub(crate) fn new(head: nextrush_proto::Request, params: Params, peer_addr: Option<SocketAddr>) -> Self {
        Self(Box::new(Parts { head, params, peer_addr }))
    }

    /// A path parameter of the route (`/chat/:room` → `param("room")`),
    /// percent-decoded.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.0.params.get(name)
    }

    /// All path parameters.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.0.params
    }

    /// The first query parameter called `name`, percent-decoded.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.head.query_param(name)
    }

    /// The raw query string, without `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.0.head.query()
    }

    /// The request path, without the query.
    #[must_use]
    pub fn path(&self) -> &str {
        self.0.head.path()
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        self.0.head.headers()
    }

    /// A header's value, if present and valid text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.head.header(name)
    }

    /// The `Origin` header.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.0.head.origin()
    }

    /// The peer's address, when the transport has one.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.0.peer_addr
    }

    /// The parsed upgrade request with everything the protocol layer knows.
    #[must_use]
    pub fn head(&self) -> &nextrush_proto::Request {
        &self.0.head
    }
}
