//! TLS for `futures-io` runtimes (async-std, smol) with futures-rustls:
//! [`TlsConnect`] and [`TlsAccept`] for [`FuturesIo`] streams, written once
//! for both adapters.

use std::io;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::{ClientConfig, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector, client, server};
use nextrush_proto::Role;

use super::FuturesIo;
use crate::tls::{SystemRoots, TlsAccept, TlsConnect, explain, server_name, system_roots};

/// A client TLS session over a `futures-io` stream.
pub type ClientTlsStream<S> = FuturesIo<client::TlsStream<S>>;

/// A server TLS session over a `futures-io` stream.
pub type ServerTlsStream<S> = FuturesIo<server::TlsStream<S>>;

impl<S> TlsConnect<FuturesIo<S>> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: FuturesIo<S>) -> io::Result<Self::Io> {
        let name = server_name(host)?;
        match Self::connect(self, name, stream.0).await {
            Ok(tls) => Ok(FuturesIo(tls)),
            Err(error) => Err(explain(error, Role::Client)),
        }
    }
}

impl<S> TlsConnect<FuturesIo<S>> for Arc<ClientConfig>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: FuturesIo<S>) -> io::Result<Self::Io> {
        TlsConnect::connect(&TlsConnector::from(self.clone()), host, stream).await
    }
}

impl<S> TlsConnect<FuturesIo<S>> for SystemRoots
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ClientTlsStream<S>;

    async fn connect(&self, host: &str, stream: FuturesIo<S>) -> io::Result<Self::Io> {
        TlsConnect::connect(&system_roots()?, host, stream).await
    }
}

impl<S> TlsAccept<FuturesIo<S>> for TlsAcceptor
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ServerTlsStream<S>;

    async fn accept(&self, stream: FuturesIo<S>) -> io::Result<Self::Io> {
        match Self::accept(self, stream.0).await {
            Ok(tls) => Ok(FuturesIo(tls)),
            Err(error) => Err(explain(error, Role::Server)),
        }
    }
}

impl<S> TlsAccept<FuturesIo<S>> for Arc<ServerConfig>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Io = ServerTlsStream<S>;

    async fn accept(&self, stream: FuturesIo<S>) -> io::Result<Self::Io> {
        TlsAccept::accept(&TlsAcceptor::from(self.clone()), stream).await
    }
}
