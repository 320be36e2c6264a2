//! TLS (`wss://`) on tokio with tokio-rustls (the `rustls` feature).
//!
//! * Server: [`App::listen_tls`](crate::App::listen_tls)`(addr, config)` or
//!   [`App::serve_tls`](crate::App::serve_tls)`(listener, config)` with an
//!   `Arc<rustls::ServerConfig>` — from PEM files with
//!   [`server_config_from_pem_files`] — or a [`tokio_rustls::TlsAcceptor`].
//! * Client: [`connect`](crate::connect)`("wss://...")` trusts the system's
//!   root certificates ([`SystemRoots`]);
//!   [`Client::with_tls`](nextrush_driver::Client::with_tls) takes an
//!   `Arc<rustls::ClientConfig>` (see [`client_config`]) or a
//!   [`tokio_rustls::TlsConnector`] instead.
//!
//! The same names exist in `nextrush-smol` and `nextrush-async-std`.

use std::io;
use std::sync::Arc;

use nextrush_driver::proto::Role;
use nextrush_driver::{TlsAccept, TlsConnect};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

pub use nextrush_driver::tls::{
    ALPN_HTTP_11, SystemRoots, client_config, explain, roots_from_pem_file, rustls, server_config,
    server_config_from_pem_files, server_name, system_roots,
};
pub use tokio_rustls;

use crate::TokioIo;

/// A client TLS session over a tokio stream.
pub type ClientTlsStream<S> = TokioIo<client::TlsStream<S>>;

/// A server TLS session over a tokio stream.
pub type ServerTlsStream<S> = TokioIo<server::TlsStream<S>>;

impl<S> TlsConnect<TokioIo<S>> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: TokioIo<S>) -> io::Result<Self::Io> {
        let name = server_name(host)?;
        match Self::connect(self, name, stream.0).await {
            Ok(tls) => Ok(TokioIo(tls)),
            Err(error) => Err(explain(error, Role::Client)),
        }
    }
}

impl<S> TlsConnect<TokioIo<S>> for Arc<ClientConfig>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: TokioIo<S>) -> io::Result<Self::Io> {
        TlsConnect::connect(&TlsConnector::from(self.clone()), host, stream).await
    }
}

impl<S> TlsConnect<TokioIo<S>> for SystemRoots
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: TokioIo<S>) -> io::Result<Self::Io> {
        TlsConnect::connect(&system_roots()?, host, stream).await
    }
}

impl<S> TlsAccept<TokioIo<S>> for TlsAcceptor
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ServerTlsStream<S>;

    async fn accept(&self, stream: TokioIo<S>) -> io::Result<Self::Io> {
        match Self::accept(self, stream.0).await {
            Ok(tls) => Ok(TokioIo(tls)),
            Err(error) => Err(explain(error, Role::Server)),
        }
    }
}

impl<S> TlsAccept<TokioIo<S>> for Arc<ServerConfig>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ServerTlsStream<S>;

    async fn accept(&self, stream: TokioIo<S>) -> io::Result<Self::Io> {
        TlsAccept::accept(&TlsAcceptor::from(self.clone()), stream).await
    }
}
