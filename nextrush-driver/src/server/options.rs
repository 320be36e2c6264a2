//! Server options, with the seed's defaults.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nextrush_proto::handshake::{HandshakeLimits, Rejection};
use nextrush_proto::{Config, RateLimit, RateLimitAction};

use super::Request;
use crate::rooms::RoomsConfig;
use crate::socket::SlowConsumer;

/// What `verify_client` attaches to an accepted connection, read back with
/// [`WebSocket::data`](crate::WebSocket::data).
#[derive(Debug, Default)]
pub struct Verified {
    pub(crate) data: http::Extensions,
}

impl Verified {
    /// Nothing attached.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches `value` (one value per type).
    #[must_use]
    pub fn with<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(value);
        self
    }
}

type VerifyFuture = Pin<Box<dyn Future<Output = Result<Verified, Rejection>> + Send>>;
pub(crate) type VerifyFn = Arc<dyn Fn(&Request) -> VerifyFuture + Send + Sync>;

/// Server options. `Options::default()` has the seed's values:
/// 1000 connections, ping every 30 s, pong timeout 5 s, 1 MiB messages,
/// compression on.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) max_connections: usize,
    pub(crate) protocol: Config,
    pub(crate) handshake: HandshakeLimits,
    pub(crate) allow_origins: Option<Vec<String>>,
    pub(crate) protocols: Vec<String>,
    pub(crate) compression: bool,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: nextrush_proto::deflate::DeflateConfig,
    pub(crate) verify_client: Option<VerifyFn>,
    pub(crate) max_buffered: usize,
    pub(crate) slow_consumer: SlowConsumer,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) rooms: RoomsConfig,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_connections", &self.max_connections)
            .field("protocol", &self.protocol)
            .field("allow_origins", &self.allow_origins)
            .field("protocols", &self.protocols)
            .field("compression", &self.compression)
            .field("verify_client", &self.verify_client.is_some())
            .field("max_buffered", &self.max_buffered)
            .field("slow_consumer", &self.slow_consumer)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            protocol: Config::default()
                .ping_interval(Some(Duration::from_secs(30)))
                .pong_timeout(Duration::from_secs(5))
                .max_message_size(1 << 20)
                .max_frame_size(1 << 20),
            handshake: HandshakeLimits::default(),
            allow_origins: None,
            protocols: Vec::new(),
            compression: true,
            #[cfg(feature = "deflate")]
            deflate: nextrush_proto::deflate::DeflateConfig::default(),
            verify_client: None,
            max_buffered: 1 << 20,
            slow_consumer: SlowConsumer::Wait,
            retry_after: None,
            rooms: RoomsConfig::default(),
        }
    }
}

impl Options {
    /// Most open connections; the next handshake gets 503. Default 1000.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Ping a peer that has been silent this long (`None`: never). Default 30 s.
    #[must_use]
    pub fn ping_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.protocol = self.protocol.ping_interval(interval.into());
        self
    }

    /// Drop a peer that does not answer a ping within this time. Default 5 s.
    #[must_use]
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.protocol = self.protocol.pong_timeout(timeout);
        self
    }

    /// Largest message (after decompression); bigger ones close with 1009.
    /// Also caps the frame size unless [`max_frame_size`](Self::max_frame_size)
    /// is set afterwards. Default 1 MiB.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.max_message_size(bytes).max_frame_size(bytes);
        self
    }

    /// Largest single frame; bigger ones close with 1009. Default: the
    /// message size.
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.max_frame_size(bytes);
        self
    }

    /// Time allowed for the opening handshake. Default 10 s.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake.timeout = timeout;
        self
    }

    /// Limits on the upgrade request's head (bytes, header count).
    #[must_use]
    pub fn handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.handshake = limits;
        self
    }

    /// Time to wait for the peer's Close after ours. Default 5 s.
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.protocol = self.protocol.close_timeout(timeout);
        self
    }

    /// Accept only these `Origin`s (exact, case-insensitive); others get 403.
    /// Requests without `Origin` (non-browser clients) are accepted.
    #[must_use]
    pub fn allow_origins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, origins: I) -> Self {
        self.allow_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Subprotocols we speak, in order of preference: the first one the
    /// client also offered is chosen.
    #[must_use]
    pub fn protocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Negotiate permessage-deflate when the client offers it. Default on.
    #[must_use]
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// permessage-deflate preferences (window bits, context takeover, level,
    /// threshold).
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, config: nextrush_proto::deflate::DeflateConfig) -> Self {
        self.deflate = config;
        self
    }

    /// Checks each upgrade request before accepting it. The callback reads
    /// what it needs from the request and returns a future that either
    /// accepts — optionally attaching data such as the authenticated user —
    /// or rejects with an HTTP answer (`Rejection::unauthorized()`, 403...).
    /// It must answer within the [`handshake_timeout`](Self::handshake_timeout)
    /// (counted from the connection's start): past it, the client gets 503
    /// (with `Retry-After` if set) and the connection's slot is freed.
    #[must_use]
    pub fn verify_client<F, Fut>(mut self, verify: F) -> Self
    where
        F: Fn(&Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Verified, Rejection>> + Send + 'static,
    {
        self.verify_client = Some(Arc::new(move |req| Box::pin(verify(req))));
        self
    }

    /// At most `messages` per `window` from each socket; `action` says what
    /// happens to the rest (drop them, or close with 1008).
    #[must_use]
    pub fn rate_limit(mut self, messages: u32, window: Duration, action: RateLimitAction) -> Self {
        self.protocol = self.protocol.rate_limit(Some(RateLimit { messages, window, action }));
        self
    }

    /// Bound on bytes queued for one peer, and what a send does beyond it.
    /// Default 1 MiB, [`SlowConsumer::Wait`].
    #[must_use]
    pub fn outbound_queue(mut self, max_bytes: usize, policy: SlowConsumer) -> Self {
        self.max_buffered = max_bytes;
        self.slow_consumer = policy;
        self
    }

    /// `Retry-After` sent with 503 when `max_connections` is reached.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Rooms and channels: `max_rooms`, members per room, history kept per
    /// room, the default slow-consumer policy, `room_cleanup_interval`.
    #[must_use]
    pub fn rooms(mut self, config: RoomsConfig) -> Self {
        self.rooms = config;
        self
    }

    /// The protocol limits and timers every connection gets.
    #[must_use]
    pub fn protocol_config(&self) -> &Config {
        &self.protocol
    }
}
