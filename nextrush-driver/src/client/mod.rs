//! The client: `connect(url)`, and the reconnecting client.

mod reconnect;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};
use nextrush_proto::handshake::{ClientConfig, ClientHandshake, ClientHandshakeError, ClientResponse, HandshakeLimits};
use nextrush_proto::{Config, Connection, Role, SeededEntropy};

pub use reconnect::{Backoff, ReconnectEvent, ReconnectOptions, ReconnectingClient};

use crate::Error;
use crate::driver::Driver;
use crate::io::{ReadOutcome, read_until, with_deadline, write_all};
use crate::runtime::{Runtime, Transport, WrapIo};
use crate::socket::{Info, Outbound, Shared, SlowConsumer, WebSocket};
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::{TlsConnect, TlsConnector};

/// Client options: subprotocols, headers, compression, limits and timers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    pub(crate) protocols: Vec<String>,
    pub(crate) origin: Option<String>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) compression: bool,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: nextrush_proto::deflate::DeflateConfig,
    pub(crate) protocol: Config,
    pub(crate) handshake: HandshakeLimits,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_buffered: usize,
    pub(crate) slow_consumer: SlowConsumer,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            origin: None,
            headers: Vec::new(),
            compression: true,
            #[cfg(feature = "deflate")]
            deflate: nextrush_proto::deflate::DeflateConfig::default(),
            protocol: Config::default()
                .ping_interval(Some(Duration::from_secs(30)))
                .max_message_size(64 << 20)
                .max_frame_size(64 << 20),
            handshake: HandshakeLimits::default(),
            connect_timeout: Duration::from_secs(10),
            max_buffered: 1 << 20,
            slow_consumer: SlowConsumer::Wait,
        }
    }
}

impl ClientOptions {
    /// Subprotocols to offer, in order of preference.
    #[must_use]
    pub fn protocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The `Origin` header to send.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// An extra request header (e.g. `Authorization`).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Offer permessage-deflate. Default on.
    #[must_use]
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// permessage-deflate parameters to offer.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, config: nextrush_proto::deflate::DeflateConfig) -> Self {
        self.deflate = config;
        self
    }

    /// Protocol limits and timers (message size, ping interval, timeouts).
    #[must_use]
    pub fn protocol_config(mut self, config: Config) -> Self {
        self.protocol = config;
        self
    }

    /// Largest message accepted (and frame). Default 64 MiB.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.max_message_size(bytes).max_frame_size(bytes);
        self
    }

    /// Ping the server after this much silence (`None`: never). Default 30 s.
    #[must_use]
    pub fn ping_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.protocol = self.protocol.ping_interval(interval.into());
        self
    }

    /// Time allowed for TCP connect plus the opening handshake. Default 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self.handshake.timeout = timeout;
        self
    }

    /// Bound on bytes queued for the server, and the policy beyond it.
    #[must_use]
    pub fn outbound_queue(mut self, max_bytes: usize, policy: SlowConsumer) -> Self {
        self.max_buffered = max_bytes;
        self.slow_consumer = policy;
        self
    }
}

/// Opens client connections on runtime `R`: `ws://` over TCP, `wss://` over
/// TLS with its [TLS connector](Self::with_tls).
pub struct Client<R: Runtime> {
    rt: R,
    options: ClientOptions,
    /// `options.protocol`, shared by every connection.
    protocol: Arc<nextrush_proto::Config>,
    stats: Arc<Stats>,
    tls: Option<TlsConnector<R::TcpStream>>,
}

impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        Self {
            rt: self.rt.clone(),
            options: self.options.clone(),
            protocol: Arc::clone(&self.protocol),
            stats: Arc::clone(&self.stats),
            tls: self.tls.clone(),
        }
    }
}

impl<R: Runtime + std::fmt::Debug> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("rt", &self.rt)
            .field("options", &self.options)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Default for Client<R> {
    fn default() -> Self {
        Self::new(ClientOptions::default())
    }
}

impl<R: Runtime> Client<R> {
    /// A client with `options`, and the runtime's default TLS connector for
    /// `wss://` (with the adapters' `rustls` feature: the system's root
    /// certificates, loaded on the first `wss://` connection).
    #[must_use]
    pub fn new(options: ClientOptions) -> Self {
        let rt = R::default();
        let stats = Arc::new(Stats::new(rt.now()));
        let tls = rt.default_tls_connector();
        let protocol = Arc::new(options.protocol.clone());
        Self { rt, options, protocol, stats, tls }
    }

    /// Uses `connector` for `wss://` URLs: with the adapters' `rustls`
    /// feature, an `Arc<rustls::ClientConfig>` (a private CA, pinned
    /// certificates, a client certificate: build one with the adapter's
    /// `tls::client_config(roots)`, and `tls::roots_from_pem_file` for a CA
    /// file) or the TLS flavour's own connector type. SNI and the
    /// certificate check use the URL's host. Clones of this client, and the
    /// [`ReconnectingClient`]s built on it, use the same connector.
    #[must_use]
    pub fn with_tls(mut self, connector: impl TlsConnect<R::TcpStream>) -> Self {
        self.tls = Some(TlsConnector::new(connector));
        self
    }

    /// Whether this client can open `wss://` connections (it has a TLS
    /// connector).
    #[must_use]
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Counters of every connection this client (and its clones, and the
    /// reconnecting clients built on it) made: connections, messages and
    /// bytes both ways, errors, reconnections. Open connections' traffic is
    /// added up from their own counters (see [`App::stats`](crate::App::stats)).
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(self.rt.now(), 0)
    }

    /// Connects to a `ws://` URL over TCP, or a `wss://` URL over TLS, and
    /// performs the handshake. [`connect_timeout`](ClientOptions::connect_timeout)
    /// bounds the TCP connect plus the TLS handshake, and again the
    /// WebSocket handshake.
    ///
    /// # Errors
    /// A bad URL; a `wss://` URL without a TLS connector
    /// ([`Error::TlsUnsupported`]); a TCP failure; a TLS failure
    /// ([`Error::Tls`]: untrusted certificate, wrong host name, not a TLS
    /// server, timeout); a handshake failure (a non-101 answer carries
    /// status, headers and body); a timeout.
    pub async fn connect(&self, url: &str) -> Result<WebSocket, Error> {
        let config = self.handshake_config(url)?;
        let tls = match (config.is_secure(), &self.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls),
            (true, None) => return Err(Error::TlsUnsupported),
        };
        let deadline = self.rt.now() + self.options.connect_timeout;
        let connect = self.rt.connect(config.host(), config.port());
        let tcp = with_deadline(&self.rt, deadline, connect)
            .await
            .ok_or_else(|| Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        let Some(tls) = tls else {
            return self.handshake(tcp, config).await;
        };
        let io = match with_deadline(&self.rt, deadline, tls.connect(config.host(), tcp)).await {
            Some(Ok(io)) => io,
            Some(Err(error)) => return Err(Error::Tls(error)),
            None => {
                let message = format!("no TLS handshake within {:?}", self.options.connect_timeout);
                return Err(Error::Tls(std::io::Error::new(std::io::ErrorKind::TimedOut, message)));
            }
        };
        self.handshake(io, config).await
    }

    /// Performs the handshake for `url` over a stream the caller opened (a
    /// TLS stream for `wss://`, a Unix socket, a proxy tunnel).
    ///
    /// # Errors
    /// As [`connect`](Self::connect), without the TCP part.
    pub async fn connect_with<S>(&self, stream: S, url: &str) -> Result<WebSocket, Error>
    where
        R: WrapIo<S>,
    {
        let config = self.handshake_config(url)?;
        self.handshake(<R as WrapIo<S>>::wrap(stream), config).await
    }

    fn handshake_config(&self, url: &str) -> Result<ClientConfig, Error> {
        let o = &self.options;
        let mut builder = ClientConfig::builder(url).subprotocols(o.protocols.clone()).limits(o.handshake.clone());
        if let Some(origin) = &o.origin {
            builder = builder.origin(origin.clone());
        }
        for (name, value) in &o.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        #[cfg(feature = "deflate")]
        if o.compression {
            builder = builder.extensions(nextrush_proto::deflate::client_offer(&o.deflate));
        }
        Ok(builder.build()?)
    }

    async fn handshake<T: Transport>(&self, mut io: T, config: ClientConfig) -> Result<WebSocket, Error> {
        let mut entropy = SeededEntropy::new(os_seed());
        let now = self.rt.now();
        let mut handshake = ClientHandshake::new(config, &mut entropy, now);
        write_all(&mut io, handshake.request_bytes()).await?;
        let response = read_response(&self.rt, &mut io, &mut handshake).await?;
        let mut conn = Connection::client(Arc::clone(&self.protocol), self.rt.now(), Box::new(entropy))?;
        #[cfg(feature = "deflate")]
        {
            let accepted =
                nextrush_proto::deflate::accept_client_response(response.extension_headers(), &self.options.deflate)
                    .map_err(|e| Error::Extension(e.to_string()))?;
            match accepted {
                Some(params) if self.options.compression => conn.enable_deflate(&params, &self.options.deflate),
                Some(_) => {
                    return Err(Error::Extension("server enabled compression we did not offer".into()));
                }
                None => {}
            }
        }
        #[cfg(not(feature = "deflate"))]
        if response.extension_headers().next().is_some() {
            return Err(Error::Extension("server enabled an extension we did not offer".into()));
        }
        if !response.leftover.is_empty() {
            conn.receive(self.rt.now(), &response.leftover);
        }
        Ok(self.start(io, conn, response))
    }

    fn start<T: Transport>(&self, io: T, conn: Connection, response: ClientResponse) -> WebSocket {
        let rt = self.rt.clone();
        let clock_rt = rt.clone();
        let outbound = Outbound { max_buffered: self.options.max_buffered, slow_consumer: self.options.slow_consumer };
        let shared = Shared::open(conn, outbound, Arc::clone(&self.stats), Arc::new(move || clock_rt.now()));
        Stats::add(&self.stats.total_connections, 1);
        let info = Info { protocol: response.subprotocol, ..Info::default() };
        let socket = WebSocket::new(Arc::clone(&shared), info);
        let driver = Driver::new(rt.clone(), io, shared, Role::Client);
        rt.spawn(driver);
        socket
    }
}

/// Reads the server's answer to the upgrade request.
async fn read_response<R: Runtime, T: Transport>(
    rt: &R,
    io: &mut T,
    handshake: &mut ClientHandshake,
) -> Result<ClientResponse, Error> {
    let mut timer = rt.timer();
    let mut buf = BytesMut::new();
    let mut first_byte = None;
    loop {
        let result = match read_until(rt, &mut timer, io, &mut buf, handshake.poll_timeout()).await? {
            ReadOutcome::Data(_) => {
                first_byte = first_byte.or(buf.first().copied());
                let result = handshake.receive(&buf);
                buf.clear();
                result
            }
            ReadOutcome::TimedOut => handshake.handle_timeout(rt.now()).map(|()| None),
            ReadOutcome::Eof => handshake.receive_eof().and(Err(ClientHandshakeError::Eof)),
        };
        match result {
            Ok(Some(response)) => return Ok(response),
            Ok(None) => {}
            Err(error) if looks_like_tls(first_byte) && !matches!(error, ClientHandshakeError::Rejected(_)) => {
                let message = format!("the server answered with TLS ({error}): use wss:// for this port");
                return Err(Error::Tls(std::io::Error::new(std::io::ErrorKind::InvalidData, message)));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Whether an answer starting with `byte` is a TLS record (an alert or a
/// handshake) rather than HTTP: a TLS server's reply to plain text.
fn looks_like_tls(byte: Option<u8>) -> bool {
    matches!(byte, Some(0x15 | 0x16))
}

/// A seed from the operating system for mask keys and nonces; falls back to
/// std's randomly keyed hasher if the OS source fails.
pub(crate) fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_ne_bytes(bytes);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}
