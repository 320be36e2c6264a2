//! TLS (`wss://`) as just another byte stream.
//!
//! The driver never speaks TLS itself, and `nextrush-proto` never hears of
//! it: a TLS session is a [`Transport`] like a TCP stream. What the driver
//! needs is two small traits, implemented once per TLS flavour:
//!
//! * [`TlsConnect`]: turns a runtime's TCP stream into a client TLS stream
//!   for a server name (SNI and the certificate check use the URL's host).
//!   A [`Client`](crate::Client) carries one as a [`TlsConnector`] and uses
//!   it for `wss://` URLs.
//! * [`TlsAccept`]: turns an accepted TCP stream into a server TLS stream;
//!   [`App::serve_tls`](crate::App::serve_tls) and
//!   [`App::listen_tls`](crate::App::listen_tls) take one.
//!
//! The adapters implement both for rustls (`tokio-rustls` on tokio, and
//! `futures-rustls` for async-std and smol, written once in
//! [`compat`](crate::compat)) behind their `rustls` feature, for
//! `Arc<rustls::ClientConfig>`, `Arc<rustls::ServerConfig>`, the flavour's
//! own connector and acceptor types, and `SystemRoots` (the client
//! default). The rustls helpers they share (configurations, PEM files,
//! error hints) live here behind this crate's `rustls` feature.

#[cfg(feature = "rustls")]
mod rustls_support;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;

#[cfg(feature = "rustls")]
pub use ::rustls;
#[cfg(feature = "rustls")]
pub use rustls_support::{
    ALPN_HTTP_11, SystemRoots, client_config, explain, roots_from_pem_file, server_config,
    server_config_from_pem_files, server_name, system_roots,
};

use crate::runtime::Transport;

/// Opens client TLS sessions over streams of type `S` (a runtime's TCP
/// stream, as a [`Transport`]).
///
/// Implemented by the adapters (with their `rustls` feature) for
/// `Arc<rustls::ClientConfig>` (a private CA, pinned certificates, client
/// certificates: whatever the config says), for their TLS flavour's
/// connector type, and for `SystemRoots`. Give one to a client with
/// [`Client::with_tls`](crate::Client::with_tls).
pub trait TlsConnect<S>: Send + Sync + 'static {
    /// The encrypted stream.
    type Io: Transport;

    /// Performs the TLS handshake over `stream` as a client of
    /// `server_name`: the URL's host, sent as SNI (unless it is an IP
    /// address) and checked against the server's certificate.
    ///
    /// # Errors
    /// The handshake failed: an untrusted or mismatched certificate, a peer
    /// that does not speak TLS, a lost connection.
    fn connect(&self, server_name: &str, stream: S) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// Accepts server TLS sessions over accepted streams of type `S`.
///
/// Implemented by the adapters for `Arc<rustls::ServerConfig>` and their TLS
/// flavour's acceptor type; used by [`App::serve_tls`](crate::App::serve_tls),
/// [`App::listen_tls`](crate::App::listen_tls) and
/// [`App::accept_tls`](crate::App::accept_tls).
pub trait TlsAccept<S>: Send + Sync + 'static {
    /// The encrypted stream.
    type Io: Transport;

    /// Performs the TLS handshake over `stream` as a server.
    ///
    /// # Errors
    /// The handshake failed: the client refused the certificate, does not
    /// speak TLS, or went away.
    fn accept(&self, stream: S) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// A TLS stream behind a box, as a [`TlsConnector`] yields it.
pub type BoxTransport = Box<dyn Transport>;

/// The future of a type-erased TLS connect.
type BoxConnect = Pin<Box<dyn Future<Output = io::Result<BoxTransport>> + Send>>;

impl Transport for BoxTransport {
    fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        (**self).poll_read_buf(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        (**self).poll_write(cx, buf)
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_shutdown(cx)
    }
}

/// [`TlsConnect`] with its types erased, so a client can hold any connector.
trait ErasedConnect<S>: Send + Sync {
    fn connect_boxed(self: Arc<Self>, server_name: String, stream: S) -> BoxConnect;
}

impl<S: Send + 'static, C: TlsConnect<S>> ErasedConnect<S> for C {
    fn connect_boxed(self: Arc<Self>, server_name: String, stream: S) -> BoxConnect {
        Box::pin(async move {
            let io = self.connect(&server_name, stream).await?;
            Ok(Box::new(io) as BoxTransport)
        })
    }
}

/// Any [`TlsConnect`] for streams `S`, shared and type-erased: what a
/// [`Client`](crate::Client) holds. Cheap to clone.
pub struct TlsConnector<S> {
    inner: Arc<dyn ErasedConnect<S>>,
}

impl<S> Clone for TlsConnector<S> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<S> fmt::Debug for TlsConnector<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl<S: Send + 'static> TlsConnector<S> {
    /// Wraps `connector`.
    pub fn new(connector: impl TlsConnect<S>) -> Self {
        Self { inner: Arc::new(connector) }
    }

    /// Performs the TLS handshake over `stream` for `server_name`.
    ///
    /// # Errors
    /// See [`TlsConnect::connect`].
    pub async fn connect(&self, server_name: &str, stream: S) -> io::Result<BoxTransport> {
        Arc::clone(&self.inner).connect_boxed(server_name.to_owned(), stream).await
    }
}
