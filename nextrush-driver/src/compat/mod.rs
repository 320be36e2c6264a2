//! Shared pieces for adapters whose runtimes speak `futures-io` and
//! `async-io` (async-std, smol): written once here, not per adapter.

#[cfg(feature = "async-io")]
mod async_io_timer;
#[cfg(feature = "futures-io")]
mod futures_io_transport;
#[cfg(feature = "futures-rustls")]
mod futures_rustls;

#[cfg(feature = "async-io")]
pub use async_io_timer::AsyncIoTimer;
#[cfg(feature = "futures-io")]
pub use futures_io_transport::FuturesIo;
#[cfg(feature = "futures-rustls")]
pub use futures_rustls::{ClientTlsStream, ServerTlsStream};
