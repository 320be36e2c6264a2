//! The accept/reject decision for an upgrade request: a pure function of the
//! request, the configuration and the current connection count.

use std::time::Duration;

use super::request::Request;
use super::response::Rejection;

/// Who may connect, how many at once, and which subprotocols the server
/// speaks.
///
/// Routing is not part of it: a path with no route is answered by the
/// caller with [`Rejection::not_found`] (see [`crate::route::Router`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerPolicy {
    /// Origins allowed to connect; `None` allows any.
    ///
    /// Compared with the request's `Origin` as whole serialized origins
    /// (`scheme://host[:port]`, RFC 6454 §6.2), ASCII-case-insensitively and
    /// otherwise exactly: no default-port or trailing-slash normalisation, so
    /// list `https://app.example` rather than `https://app.example:443/`. A
    /// browser sends the literal `null` for opaque origins; it only matches an
    /// entry `"null"`.
    pub allow_origins: Option<Vec<String>>,
    /// With `allow_origins` set: whether a request without `Origin` passes.
    ///
    /// Default `true`. Browsers always send `Origin` (RFC 6455 §4.1 item 8),
    /// and the allow-list exists to stop other sites' pages from connecting
    /// with the user's cookies; non-browser clients (curl, native apps) send
    /// none and could forge any value anyway. Set `false` to require it.
    pub allow_missing_origin: bool,
    /// Subprotocols the server speaks, most preferred first.
    ///
    /// The rule: the first entry of this list that the client also offered
    /// is chosen (server preference wins over client order; names compare
    /// exactly, case-sensitively). No overlap, or no offer, selects none and
    /// the handshake still succeeds: RFC 6455 §4.2.2 lets the server select
    /// "one or none", and the client then decides whether to go on.
    pub protocols: Vec<String>,
    /// Connections allowed at once; a request arriving when
    /// `active_connections >= max_connections` gets 503.
    pub max_connections: usize,
    /// `Retry-After` sent with that 503, if any.
    pub retry_after: Option<Duration>,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        Self {
            allow_origins: None,
            allow_missing_origin: true,
            protocols: Vec::new(),
            max_connections: usize::MAX,
            retry_after: None,
        }
    }
}

impl ServerPolicy {
    /// Decides whether to accept `request` while `active_connections` are
    /// open, and which subprotocol to answer with.
    ///
    /// Checks in order: origin (403), capacity (503), then selects the
    /// subprotocol (see [`protocols`](Self::protocols)).
    ///
    /// # Errors
    /// The [`Rejection`] to send: 403 for an origin not allowed, 503 when
    /// full.
    pub fn decide(&self, request: &Request, active_connections: usize) -> Result<Option<String>, Rejection> {
        if !self.origin_allowed(request.origin()) {
            return Err(Rejection::forbidden().with_body("origin not allowed\n"));
        }
        if active_connections >= self.max_connections {
            return Err(Rejection::service_unavailable(self.retry_after).with_body("too many connections\n"));
        }
        Ok(self.select_subprotocol(request.subprotocols()))
    }

    /// Whether `origin` (the request's `Origin`, if any) may connect.
    #[must_use]
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (&self.allow_origins, origin) {
            (None, _) => true,
            (Some(_), None) => self.allow_missing_origin,
            (Some(list), Some(origin)) => list.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)),
        }
    }

    /// The first of [`protocols`](Self::protocols) that `offered` contains.
    #[must_use]
    pub fn select_subprotocol(&self, offered: &[String]) -> Option<String> {
        self.protocols.iter().find(|p| offered.contains(p)).cloned()
    }
}
