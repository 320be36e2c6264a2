//! The driver's error type.

use std::io;

use nextrush_proto::handshake::{ClientConfigError, ClientHandshakeError, HandshakeError};
use nextrush_proto::{CloseReason, ConfigError, SendError};
use thiserror::Error;

/// Everything that can go wrong on a socket, a server or a client.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection ended without a clean close handshake: a protocol
    /// error (with the close code we sent), a timeout, or a lost transport.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A client's opening handshake failed (including non-101 answers, which
    /// carry status, headers and body).
    #[error("handshake failed: {0}")]
    ClientHandshake(#[from] ClientHandshakeError),
    /// A peer's opening handshake was rejected.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The URL or client options are invalid.
    #[error("invalid client configuration: {0}")]
    ClientConfig(#[from] ClientConfigError),
    /// Invalid options.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The message could not be sent (the socket is closing, a bad close
    /// code, a control payload over 125 bytes...).
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
    /// The outbound queue is over its bound and the slow-consumer policy
    /// dropped the message (or closed the connection).
    #[error("outbound queue full")]
    QueueFull,
    /// The peer negotiated an extension we did not offer, or with values we
    /// did not allow.
    #[error("extension negotiation failed: {0}")]
    Extension(String),
    /// TLS was asked for (`wss://`) but the client has no TLS connector:
    /// the adapter was built without its `rustls` feature and none was given
    /// with [`Client::with_tls`](crate::Client::with_tls).
    #[error(
        "wss:// needs TLS: enable the adapter's `rustls` feature or give the client a connector with Client::with_tls"
    )]
    TlsUnsupported,
    /// A rooms operation failed (room full, too many rooms, bad name...).
    #[error("rooms: {0}")]
    Rooms(#[from] nextrush_rooms::RoomsError),
    /// Rooms and channels are for server sockets; this one is a client's.
    #[error("this socket is not in a rooms hub (client sockets are not)")]
    NotInHub,
    /// The TLS handshake failed or timed out: an untrusted certificate, a
    /// certificate for another host name, a server that does not speak TLS
    /// (a `ws://` port) or, for a `ws://` URL, a server that answered with
    /// TLS. The message says which, where it can tell.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// A JSON payload could not be encoded or decoded.
    #[cfg(feature = "json")]
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io(e) => e,
            other => Self::other(other),
        }
    }
}
