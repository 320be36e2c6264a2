//! Sans-IO WebSocket protocol core (RFC 6455 + RFC 7692).
#![forbid(unsafe_code)]

pub mod close_code;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod rng;
pub mod route;
pub mod utf8;

pub use close_code::{CloseCode, CloseFrame};
pub use config::{Config, RateLimit, RateLimitAction, Role};
pub use connection::{Connection, Event, MessageKind, ReadyState};
pub use error::{CloseReason, ConfigError, ProtocolError, SendError, Side, Timer};
pub use handshake::{
    ClientConfig, ClientHandshake, ClientHandshakeError, ClientResponse, HandshakeError,
    HandshakeLimits, Incoming, Rejection, Request, ServerHandshake, ServerPolicy,
};
pub use message::{Message, Utf8Bytes};
pub use rng::{Entropy, SeededEntropy};
pub use route::{Params, RouteError, Router};
