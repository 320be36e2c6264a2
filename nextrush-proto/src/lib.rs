//! Sans-IO WebSocket protocol core (RFC 6455 + RFC 7692).
#![forbid(unsafe_code)]

pub mod close_code;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod extension;
pub mod message;
pub mod rng;
pub mod role;

pub use close_code::{CloseCode, CloseFrame};
pub use error::{CloseReason, ConfigError, ProtocolError, SendError, Side, Timer};
pub use message::{Message, Utf8Bytes};
pub use rng::{Entropy, SeededEntropy};
pub use role::Role;
