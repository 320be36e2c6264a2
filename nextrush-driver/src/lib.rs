//! Internal: the one async driver behind `nextrush-tokio`, `nextrush-async-std`
//! and `nextrush-smol`.
//!
//! Users depend on an adapter crate, which re-exports this crate's types
//! for its runtime. This crate holds everything that is not a runtime call:
//! the connection driver (bytes between a transport and
//! `nextrush_proto::Connection`, timers, events), the [`WebSocket`] handle,
//! the server [`App`] (routing, admission, events, stats, shutdown) and the
//! [`Client`] with reconnection. An adapter implements [`Runtime`] (clock,
//! timer, spawn, TCP) and [`WrapIo`] for its byte streams, and, for
//! `wss://`, [`TlsConnect`] and [`TlsAccept`] for its TLS flavour (see
//! [`tls`]).
#![forbid(unsafe_code)]

mod client;
pub mod compat;
mod driver;
mod error;
mod io;
mod runtime;
mod server;
mod socket;
mod stats;
pub mod tls;

pub use client::{Backoff, Client, ClientOptions, ReconnectEvent, ReconnectOptions, ReconnectingClient};
pub use error::Error;
pub use runtime::{Listener, Runtime, Timer, Transport, WrapIo};
pub use server::{App, BoxError, Options, Request, ServerEvent, Upgrade, Verified};
pub use socket::{Event, Metadata, SlowConsumer, WebSocket, WsReader, WsWriter};
pub use stats::StatsSnapshot;
pub use tls::{TlsAccept, TlsConnect, TlsConnector};

pub use bytes::Bytes;
pub use nextrush_proto as proto;
pub use nextrush_proto::handshake::Rejection;
pub use nextrush_proto::{
    CloseCode, CloseFrame, CloseReason, Message, MessageKind, RateLimitAction, ReadyState, Utf8Bytes,
};
