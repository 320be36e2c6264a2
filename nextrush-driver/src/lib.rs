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

mod arena;
mod client;
pub mod compat;
mod driver;
mod error;
mod io;
mod rooms;
mod runtime;
mod server;
mod socket;
mod stats;
pub mod tls;

pub use client::{Backoff, Client, ClientOptions, ReconnectEvent, ReconnectOptions, ReconnectingClient};
pub use error::Error;
pub use nextrush_rooms::{Delivery, FanOut};
pub use rooms::{
    Broadcast, LeaveReason, RoomMember, RoomOptions, RoomPolicy, RoomSend, Rooms, RoomsConfig, RoomsError, RoomsEvent,
    RoomsStats, SharedMessage, SocketId,
};
pub use runtime::{Listener, Runtime, Timer, Transport, WrapIo};
pub use server::{App, BoxError, HttpRequest, Options, Request, ServerEvent, Upgrade, Verified};
pub use socket::{Event, Metadata, SlowConsumer, WebSocket, WsReader, WsWriter};
pub use stats::StatsSnapshot;
pub use tls::{TlsAccept, TlsConnect, TlsConnector};

pub use bytes::Bytes;
/// The `http` crate, for the responses of [`App::get`] handlers and requests.
pub use http;
pub use nextrush_proto as proto;
pub use nextrush_proto::handshake::Rejection;
pub use nextrush_proto::{
    CloseCode, CloseFrame, CloseReason, Message, MessageKind, RateLimitAction, ReadyState, Utf8Bytes,
};

/// Everything an application uses, for the adapters to re-export whole:
/// the same names on every runtime.
pub mod api {
    pub use crate::{
        Backoff, BoxError, Broadcast, Bytes, ClientOptions, CloseCode, CloseFrame, CloseReason, Delivery, Error, Event,
        FanOut, LeaveReason, Message, MessageKind, Metadata, Options, RateLimitAction, ReadyState, ReconnectEvent,
        ReconnectOptions, ReconnectingClient, Rejection, Request, RoomMember, RoomOptions, RoomPolicy, RoomSend, Rooms,
        RoomsConfig, RoomsError, RoomsEvent, RoomsStats, ServerEvent, SharedMessage, SlowConsumer, SocketId,
        StatsSnapshot, TlsAccept, TlsConnect, TlsConnector, Upgrade, Utf8Bytes, Verified, WebSocket, WsReader,
        WsWriter, proto,
    };
    /// The plain-HTTP fallback ([`App::get`](crate::App::get)): its request,
    /// and the `http` crate for the responses.
    pub use crate::{HttpRequest, http};
}
