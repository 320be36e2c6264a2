//! The opening handshake (RFC 6455 §4), both roles, as small state machines
//! with no IO and no clock.
//!
//! # Server
//!
//! ```text
//! ServerHandshake::new(limits, now)
//!   loop: receive(bytes) -> Ok(None)      need more bytes; arm poll_timeout()
//!                        -> Ok(Some(in))  a valid upgrade request + leftover
//!                        -> Err(e)        write e.rejection(), close
//!         handle_timeout(now) -> Err(TimedOut) once the deadline passed
//!   (receive_any(bytes) also yields Received::Http(req) for a plain GET,
//!    for a server that serves a page on the same port)
//! then:  Router::find(in.request.path())   -> None: Rejection::not_found()
//!        ServerPolicy::decide(&in.request, n) -> Err(rejection) or the subprotocol
//!        accept_response(&in.request, subprotocol, extensions, &headers, &mut out)
//!        hand `in.leftover` to the connection before any new bytes
//! ```
//!
//! # Client
//!
//! ```text
//! ClientConfig::builder(url)...build()? -> ClientHandshake::new(config, entropy, now)
//!   write request_bytes(); then receive(bytes) until Ok(Some(response)),
//!   validate response.extension_headers() with the extension module,
//!   hand `response.leftover` to the connection.
//! ```

mod client;
mod client_config;
mod error;
mod head;
mod headers;
pub(crate) mod percent;
mod plain;
mod policy;
mod request;
mod response;
mod server;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};

use crate::error::ConfigError;

pub use client::{ClientHandshake, ClientHandshakeError, ClientResponse, RejectedResponse};
pub use client_config::{ClientConfig, ClientConfigBuilder, ClientConfigError};
pub use error::HandshakeError;
pub use plain::HttpRequest;
pub use policy::ServerPolicy;
pub use request::{QueryPairs, Request};
pub use response::{AcceptError, Rejection, accept_headers, accept_response};
pub use server::{Incoming, Received, ServerHandshake};

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines (§4.1, §11.3.5).
pub const WEBSOCKET_VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §1.3, §4.2.2):
/// base64 of the SHA-1 of the key (as sent, without decoding) and the GUID.
#[must_use]
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Bounds on what a peer can make a handshake hold, and how long it may take.
///
/// Every limit applies to both roles unless its doc says otherwise. Build one
/// from [`Default`] and set fields; [`HandshakeLimits::validate`] reports
/// unusable values instead of panicking later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// Largest request or response head in bytes, the final empty line
    /// included. A server answers a longer request with 431. Default 8 KiB.
    pub max_head_bytes: usize,
    /// Most header fields in a head (431 beyond). Default 64.
    pub max_headers: usize,
    /// Most subprotocols a client may offer (400 beyond). Default 16.
    pub max_subprotocols: usize,
    /// Client only: most bytes of a non-101 response body kept for the
    /// error. Default 4 KiB.
    pub max_body_bytes: usize,
    /// Time from construction until the handshake fails with `TimedOut`.
    /// Default 10 s.
    pub timeout: Duration,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_subprotocols: 16,
            max_body_bytes: 4 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

impl HandshakeLimits {
    /// Checks that the limits can ever admit a handshake.
    ///
    /// # Errors
    /// `max_head_bytes`, `max_headers` or `timeout` is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_head_bytes == 0 {
            return Err(ConfigError::Zero("max_head_bytes"));
        }
        if self.max_headers == 0 {
            return Err(ConfigError::Zero("max_headers"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Zero("timeout"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_accept_key_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn limits_validate() {
        assert_eq!(HandshakeLimits::default().validate(), Ok(()));
        let zero = HandshakeLimits { max_headers: 0, ..HandshakeLimits::default() };
        assert_eq!(zero.validate(), Err(ConfigError::Zero("max_headers")));
    }
}
