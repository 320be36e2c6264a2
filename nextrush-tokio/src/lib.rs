//! NextRush on tokio: a WebSocket server with routing, authentication,
//! heartbeats, rate limits, statistics and graceful shutdown, and a client
//! that reconnects — RFC 6455 and permessage-deflate, checked by every
//! Autobahn case.
//!
//! ```no_run
//! use nextrush_tokio::{App, Options};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App::new(Options::default().max_connections(5_000));
//! app.ws("/echo/:name", |mut ws, req| async move {
//!     let name = req.param("name").unwrap_or("anonymous").to_owned();
//!     while let Some(msg) = ws.recv().await? {
//!         ws.send(msg).await?;
//!     }
//!     tracing::info!(%name, "left");
//!     Ok::<_, nextrush_tokio::Error>(())
//! })?;
//! app.listen("127.0.0.1:3000").await?;
//! # Ok(()) }
//! ```
//!
//! Every type here is the runtime-independent one from the driver, bound to
//! tokio: `nextrush-smol` and `nextrush-async-std` expose the same names.
//!
//! With the `rustls` feature, `wss://`: [`App::listen_tls`](nextrush_driver::App::listen_tls)
//! and `connect("wss://...")`; see the `tls` module.
#![forbid(unsafe_code)]

mod runtime;
#[cfg(feature = "rustls")]
pub mod tls;

pub use nextrush_driver::api::*;
pub use runtime::{TcpListener, Tokio, TokioIo, TokioTimer};

/// A WebSocket server application on tokio.
pub type App = nextrush_driver::App<Tokio>;

/// A WebSocket client on tokio.
pub type Client = nextrush_driver::Client<Tokio>;

/// Connects to a `ws://` URL (or, with the `rustls` feature, a `wss://` one,
/// trusting the system's root certificates) with default options.
///
/// # Errors
/// See [`Client::connect`](nextrush_driver::Client::connect).
pub async fn connect(url: &str) -> Result<WebSocket, Error> {
    Client::default().connect(url).await
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
