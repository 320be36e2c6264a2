//! Connections upgraded by another HTTP server (hyper, axum, ...): the
//! framework answers the HTTP request, NextRush decides and runs the socket.

use std::net::SocketAddr;

use http::{HeaderMap, StatusCode};
use nextrush_proto::handshake::{Rejection, accept_headers};

use super::App;
use super::handshake::{Admitted, admit, run};
use crate::runtime::{Runtime, WrapIo};
use crate::stats::Stats;

/// An upgrade NextRush accepted for a request another HTTP server received.
/// Send [`response`](Self::response) (status 101 and its headers), then hand
/// the upgraded stream to [`App::serve_upgraded`].
pub struct Upgrade {
    admitted: Admitted,
    headers: HeaderMap,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade").field("path", &self.admitted.request.path()).finish_non_exhaustive()
    }
}

impl Upgrade {
    /// The headers of the 101 response.
    #[must_use]
    pub fn response_headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `101 Switching Protocols` response to send.
    #[must_use]
    pub fn response<B: Default>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

impl<R: Runtime> App<R> {
    /// Decides on an upgrade request another HTTP server parsed: the same
    /// validation, routing, origin, capacity, `verify_client` and extension
    /// negotiation as [`accept`](Self::accept). `verify_client` has the
    /// handshake timeout, from this call, to answer (503 after that).
    ///
    /// # Errors
    /// The HTTP answer to send instead (400, 401, 403, 404, 426, 503...).
    pub async fn prepare_upgrade(
        &self,
        parts: &http::request::Parts,
        peer_addr: Option<SocketAddr>,
    ) -> Result<Upgrade, Rejection> {
        let checked =
            nextrush_proto::Request::from_http(parts, &self.inner.options.handshake).map_err(|error| error.rejection());
        let admitted = match checked {
            Ok(head) => {
                let deadline = self.inner.rt.now() + self.inner.options.handshake.timeout;
                admit(self, head, peer_addr, deadline).await
            }
            Err(rejection) => Err(rejection),
        };
        let admitted = admitted.inspect_err(|_| Stats::add(&self.inner.stats.rejected, 1))?;
        let headers =
            accept_headers(admitted.request.head(), admitted.protocol.as_deref(), admitted.extensions.as_deref())
                .map_err(|_| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR))?;
        Ok(Upgrade { admitted, headers })
    }

    /// Runs the route's handler on a stream the HTTP server upgraded after
    /// sending [`Upgrade::response`]. Returns when the connection is over.
    pub async fn serve_upgraded<S>(&self, upgrade: Upgrade, stream: S)
    where
        R: WrapIo<S>,
    {
        let io = <R as WrapIo<S>>::wrap(stream);
        run(self, self.inner.rt.clone(), io, upgrade.admitted, bytes::Bytes::new()).await;
    }
}
