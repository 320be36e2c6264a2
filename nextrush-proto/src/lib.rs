//! Sans-IO WebSocket protocol core (RFC 6455 + RFC 7692).
#![forbid(unsafe_code)]

pub mod close_code;
pub mod config;
pub mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod rng;
pub mod role;
pub mod route;
pub mod utf8;

pub use close_code::{CloseCode, CloseFrame};
pub use config::{Config, RateLimit, RateLimitAction};
pub use connection::{Connection, Event, MessageKind, ReadyState, Transmit};
pub use error::{CloseReason, ConfigError, ProtocolError, SendError, Side, Timer};
pub use handshake::{
    ClientConfig, ClientHandshake, ClientHandshakeError, ClientResponse, HandshakeError, HandshakeLimits, HttpRequest,
    Incoming, Received, Rejection, Request, ServerHandshake, ServerPolicy,
};
pub use message::{Message, Utf8Bytes};
pub use rng::{Entropy, SeededEntropy};
pub use role::Role;
pub use route::{Params, RouteError, Router};
