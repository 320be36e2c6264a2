//! What a client connects to and offers: built from a `ws://` or `wss://` URL
//! (RFC 6455 §3).

use http::Uri;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING,
    UPGRADE,
};
use thiserror::Error;

use super::HandshakeLimits;
use super::headers::is_token;
use crate::error::ConfigError;

/// Headers the client handshake writes itself and will not take from
/// [`ClientConfigBuilder::header`]. (`Host` and `Origin` may be set there.)
const RESERVED: [HeaderName; 9] = [
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
];

/// A client configuration that cannot be used. Local error: the texts it
/// carries came from the caller.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The URL does not parse.
    #[error("invalid URL")]
    InvalidUrl,
    /// The scheme is not `ws` or `wss` (RFC 6455 §3).
    #[error("unsupported URL scheme {0:?}: expected ws or wss")]
    UnsupportedScheme(String),
    /// The URL has no host.
    #[error("URL has no host")]
    MissingHost,
    /// RFC 6455 §3: "Fragment identifiers ... MUST NOT be used" in WebSocket
    /// URIs (escape `#` as `%23`).
    #[error("URL has a fragment")]
    Fragment,
    /// `user:password@` in the URL; send credentials in a header instead.
    #[error("URL has user information; set an Authorization header instead")]
    UserInfo,
    /// The origin is not a valid header value.
    #[error("invalid origin")]
    InvalidOrigin,
    /// A subprotocol that is not an RFC 9110 token, or offered twice
    /// (RFC 6455 §4.1 item 10).
    #[error("invalid or duplicate subprotocol {0:?}")]
    InvalidSubprotocol(String),
    /// The extensions offer is not a valid header value.
    #[error("invalid Sec-WebSocket-Extensions value")]
    InvalidExtensions,
    /// A header the handshake writes itself.
    #[error("header {0} is set by the handshake")]
    ReservedHeader(HeaderName),
    /// The limits are unusable.
    #[error(transparent)]
    Limits(#[from] ConfigError),
}

/// Where and how a client opens a WebSocket: endpoint, `Host`, offered
/// subprotocols and extensions, extra headers and limits.
///
/// Build with [`ClientConfig::builder`]; the adapter connects to
/// [`host`](Self::host):[`port`](Self::port), with TLS when
/// [`is_secure`](Self::is_secure).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    secure: bool,
    host: String,
    port: u16,
    resource: String,
    host_header: HeaderValue,
    subprotocols: Vec<String>,
    extensions: Option<HeaderValue>,
    headers: HeaderMap,
    limits: HandshakeLimits,
}

impl ClientConfig {
    /// Starts a configuration for `url` (`ws://host[:port]/path?query` or
    /// `wss://...`); the URL is checked by [`ClientConfigBuilder::build`].
    pub fn builder(url: &str) -> ClientConfigBuilder {
        ClientConfigBuilder {
            url: url.to_owned(),
            origin: None,
            subprotocols: Vec::new(),
            extensions: None,
            headers: HeaderMap::new(),
            limits: HandshakeLimits::default(),
        }
    }

    /// A configuration for `url` with nothing offered.
    ///
    /// # Errors
    /// See [`ClientConfigBuilder::build`].
    pub fn new(url: &str) -> Result<Self, ClientConfigError> {
        Self::builder(url).build()
    }

    /// Whether the URL was `wss://` (the adapter must wrap TLS).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host to connect to (and the TLS server name): IPv6 addresses
    /// without their brackets.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: the URL's, or 80 for `ws` and 443 for `wss` (RFC 6455 §3).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The resource name sent in the request line: path and query (`/` if
    /// the URL has no path).
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The `Host` header value: the host, plus `:port` when it is not the
    /// scheme's default (RFC 6455 §4.1 item 4), unless overridden by a `Host`
    /// header.
    #[must_use]
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// The offered subprotocols, most preferred first.
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The `Sec-WebSocket-Extensions` offer, if any.
    #[must_use]
    pub fn extensions(&self) -> Option<&HeaderValue> {
        self.extensions.as_ref()
    }

    /// Extra headers sent with the request (including `Origin`).
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The handshake limits.
    #[must_use]
    pub fn limits(&self) -> &HandshakeLimits {
        &self.limits
    }
}

/// Builder for [`ClientConfig`]; every check happens in
/// [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientConfigBuilder {
    url: String,
    origin: Option<String>,
    subprotocols: Vec<String>,
    extensions: Option<String>,
    headers: HeaderMap,
    limits: HandshakeLimits,
}

impl ClientConfigBuilder {
    /// Sends `Origin: origin` (RFC 6455 §4.1 item 8; browsers always do).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers one more subprotocol (after those already added).
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Offers these subprotocols, most preferred first (after those already
    /// added).
    pub fn subprotocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> Self {
        self.subprotocols.extend(protocols.into_iter().map(Into::into));
        self
    }

    /// Sends this `Sec-WebSocket-Extensions` offer (e.g. from the extension
    /// module: `permessage-deflate; client_max_window_bits`).
    pub fn extensions(mut self, offer: impl Into<String>) -> Self {
        self.extensions = Some(offer.into());
        self
    }

    /// Adds a header (e.g. `Authorization`, `Cookie`, or a `Host` override).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the handshake limits.
    pub fn limits(mut self, limits: HandshakeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks everything and builds the configuration.
    ///
    /// # Errors
    /// A URL that is not `ws`/`wss` with a host, has a fragment or user
    /// information; an origin or extension offer that is not a header value;
    /// a subprotocol that is not a token or is repeated; a reserved header;
    /// invalid limits.
    pub fn build(self) -> Result<ClientConfig, ClientConfigError> {
        let endpoint = Endpoint::parse(&self.url)?;
        self.limits.validate()?;
        let mut headers = self.headers;
        if let Some(name) = RESERVED.iter().find(|n| headers.contains_key(*n)) {
            return Err(ClientConfigError::ReservedHeader(name.clone()));
        }
        let host_header = match headers.remove(HOST) {
            Some(v) => v,
            None => HeaderValue::from_str(&endpoint.host_header).map_err(|_| ClientConfigError::InvalidUrl)?,
        };
        if let Some(origin) = self.origin {
            let v = HeaderValue::from_str(&origin).map_err(|_| ClientConfigError::InvalidOrigin)?;
            headers.insert(ORIGIN, v);
        }
        for (i, p) in self.subprotocols.iter().enumerate() {
            if !is_token(p) || self.subprotocols[..i].contains(p) {
                return Err(ClientConfigError::InvalidSubprotocol(p.clone()));
            }
        }
        let extensions = self
            .extensions
            .map(|e| HeaderValue::from_str(&e).map_err(|_| ClientConfigError::InvalidExtensions))
            .transpose()?;
        Ok(ClientConfig {
            secure: endpoint.secure,
            host: endpoint.host,
            port: endpoint.port,
            resource: endpoint.resource,
            host_header,
            subprotocols: self.subprotocols,
            extensions,
            headers,
            limits: self.limits,
        })
    }
}

/// The parts of a WebSocket URL (RFC 6455 §3).
struct Endpoint {
    secure: bool,
    host: String,
    port: u16,
    resource: String,
    host_header: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, ClientConfigError> {
        if url.contains('#') {
            return Err(ClientConfigError::Fragment);
        }
        let uri: Uri = url.parse().map_err(|_| ClientConfigError::InvalidUrl)?;
        let scheme = uri.scheme_str().ok_or(ClientConfigError::InvalidUrl)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(ClientConfigError::UnsupportedScheme(scheme.to_owned())),
        };
        let authority = uri.authority().ok_or(ClientConfigError::MissingHost)?;
        if authority.as_str().contains('@') {
            return Err(ClientConfigError::UserInfo);
        }
        let bracketed = authority.host();
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(ClientConfigError::MissingHost);
        }
        let default_port = if secure { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default_port);
        let host_header = if port == default_port { bracketed.to_owned() } else { format!("{bracketed}:{port}") };
        let path = if uri.path().is_empty() { "/" } else { uri.path() };
        let resource = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        Ok(Self { secure, host: host.to_owned(), port, resource, host_header })
    }
}
