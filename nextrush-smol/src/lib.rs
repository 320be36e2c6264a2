//! NextRush on smol: the same server and client as `nextrush-tokio`, with the
//! same names and options — pick the crate for your runtime and change
//! nothing else.
//!
//! ```no_run
//! use nextrush_smol::{App, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let app = App::new(Options::default());
//!     app.ws("/echo", |mut ws, _req| async move {
//!         while let Some(msg) = ws.recv().await? {
//!             ws.send(msg).await?;
//!         }
//!         Ok::<_, nextrush_smol::Error>(())
//!     })?;
//!     app.listen("127.0.0.1:3000").await?;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Tasks (connections, reconnecting clients) are spawned on smol's global
//! executor; set `SMOL_THREADS` to size it.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use nextrush_driver::compat::{AsyncIoTimer, FuturesIo};
use nextrush_driver::{Listener, Runtime, WrapIo};

pub use nextrush_driver::api::*;

/// TLS (`wss://`) with futures-rustls (the `rustls` feature).
///
/// * Server: [`App::listen_tls`](nextrush_driver::App::listen_tls)`(addr, config)`
///   or [`App::serve_tls`](nextrush_driver::App::serve_tls)`(listener, config)`
///   with an `Arc<rustls::ServerConfig>` — from PEM files with
///   [`server_config_from_pem_files`](tls::server_config_from_pem_files) — or a
///   `futures_rustls::TlsAcceptor`.
/// * Client: [`connect`]`("wss://...")` trusts the system's root certificates
///   ([`SystemRoots`](tls::SystemRoots));
///   [`Client::with_tls`](nextrush_driver::Client::with_tls) takes an
///   `Arc<rustls::ClientConfig>` (see [`client_config`](tls::client_config)) or
///   a `futures_rustls::TlsConnector` instead.
///
/// The same names exist in `nextrush-tokio`.
#[cfg(feature = "rustls")]
pub mod tls {
    pub use nextrush_driver::compat::{ClientTlsStream, ServerTlsStream};
    pub use nextrush_driver::tls::{
        ALPN_HTTP_11, SystemRoots, client_config, explain, roots_from_pem_file, rustls, server_config,
        server_config_from_pem_files, server_name, system_roots,
    };
}

/// The smol runtime, for the driver.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

/// A smol TCP listener for [`App::serve`](nextrush_driver::App::serve).
#[derive(Debug)]
pub struct TcpListener(pub smol::net::TcpListener);

impl From<smol::net::TcpListener> for TcpListener {
    fn from(listener: smol::net::TcpListener) -> Self {
        Self(listener)
    }
}

impl Runtime for Smol {
    type Timer = AsyncIoTimer;
    type Listener = TcpListener;
    type TcpStream = FuturesIo<smol::net::TcpStream>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self) -> AsyncIoTimer {
        AsyncIoTimer::default()
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }

    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        smol::net::TcpListener::bind(addr).await.map(TcpListener)
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::TcpStream> {
        let stream = smol::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(FuturesIo(stream))
    }

    /// With the `rustls` feature: the system's root certificates.
    #[cfg(feature = "rustls")]
    fn default_tls_connector(&self) -> Option<nextrush_driver::TlsConnector<Self::TcpStream>> {
        Some(nextrush_driver::TlsConnector::new(nextrush_driver::tls::SystemRoots))
    }
}

impl Listener for TcpListener {
    type Stream = FuturesIo<smol::net::TcpStream>;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok((FuturesIo(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl<S> WrapIo<S> for Smol
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static,
{
    type Io = FuturesIo<S>;

    fn wrap(stream: S) -> FuturesIo<S> {
        FuturesIo(stream)
    }
}

/// A WebSocket server application on smol.
pub type App = nextrush_driver::App<Smol>;

/// A WebSocket client on smol.
pub type Client = nextrush_driver::Client<Smol>;

/// Connects to a `ws://` URL (or, with the `rustls` feature, a `wss://` one,
/// trusting the system's root certificates) with default options.
///
/// # Errors
/// See [`Client::connect`](nextrush_driver::Client::connect).
pub async fn connect(url: &str) -> Result<WebSocket, Error> {
    Client::default().connect(url).await
}
