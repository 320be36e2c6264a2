//! permessage-deflate (RFC 7692): negotiation and the per-message codec.
//!
//! # Pieces
//!
//! - [`DeflateConfig`]: what we prefer (window sizes, context takeover,
//!   compression level, the size below which we do not compress).
//! - Negotiation: [`negotiate_server`] picks the first acceptable offer and
//!   writes the response; [`client_offer`] writes our offer and
//!   [`accept_client_response`] checks the server's answer. Both produce the
//!   [`DeflateParams`] ("agreed parameters", RFC 7692 §5).
//! - Codec: a [`Compressor`] for what we send and a [`Decompressor`] for what
//!   we receive, one of each per connection, built from the params and our
//!   [`Role`](crate::Role).
//!
//! # Window bits 8
//!
//! RFC 7692 allows windows of 2^8 to 2^15 bytes; zlib (C zlib ≥ 1.2.9, zlib-ng
//! and zlib-rs, which we use) refuses an 8-bit window for raw deflate. Both
//! directions are still handled without declining:
//!
//! - *Decompressing* with a 9-bit window where 8 was agreed is always correct:
//!   an inflater with a larger window decodes any stream made with a smaller one.
//! - *Compressing* where 8 was agreed (a client offering
//!   `server_max_window_bits=8`, or a server answering
//!   `client_max_window_bits=8`) runs zlib with a 9-bit window. zlib never
//!   emits a match farther back than `2^w − 262` bytes (`MAX_DIST`, kept by
//!   zlib-rs in `State::max_dist`), i.e. 250 bytes for `w = 9`, which fits the
//!   peer's 256-byte window. Node.js' zlib binding relies on the same fact
//!   ("windowBits 8 is upgraded to 9"). A test decodes our 8-bit output with
//!   an independent decoder and checks every distance is ≤ 256.
//!
//! # Memory per connection
//!
//! Both zlib states are allocated lazily, on the first message that needs
//! them, and can be dropped between messages: [`Compressor::release`] at any
//! time (with context takeover the next message just compresses without
//! history), [`Decompressor::release`] when the peer does not take over
//! context (its window does not outlive a message, so nothing is lost).
//! Sizes with the zlib-rs backend (flate2 fixes `memLevel` at 8), measured
//! with a counting allocator:
//!
//! | state | formula | `w = 15` | `w = 12` | `w = 9` (and 8) |
//! | --- | --- | --- | --- | --- |
//! | compressor | `2^(w+2)` (window + chains) + 128 KiB (hash heads) + 112 KiB (symbol and pending buffers) + ~3 KiB | 371 KiB | 259 KiB | 245 KiB |
//! | decompressor | 32 KiB window (always the maximum) + ~14 KiB state | 46 KiB | 46 KiB | 46 KiB |
//!
//! C zlib's classic estimate is `2^(w+2) + 2^(memLevel+9)` for deflate
//! (256 KiB at `w = 15`) and `2^w` + ~7 KiB for inflate; zlib-rs trades a
//! larger fixed hash table for speed. With context takeover both states live
//! as long as the connection: 5,000 connections with full windows hold
//! ~2 GiB. A server with many mostly idle connections saves most by
//! negotiating `server_no_context_takeover` and calling
//! [`Compressor::release`] after sending (and `client_no_context_takeover`
//! with [`Decompressor::release`] after receiving), at the cost of ratio on
//! streams of small messages.
//!
//! # Broadcasts
//!
//! With context takeover the compressed bytes of a message depend on every
//! message sent before it on that connection, so they cannot be shared
//! between connections. With `server_no_context_takeover` they depend only on
//! the message and the compression settings, and a broadcast can be
//! compressed once for all members.

mod compress;
mod config;
mod decompress;
mod negotiate;
mod params;

#[cfg(test)]
mod tests;

pub use compress::{CompressError, Compressor};
pub use config::DeflateConfig;
pub use decompress::Decompressor;
pub use negotiate::{NegotiationError, accept_client_response, client_offer, negotiate_server};
pub use params::{DeflateParams, WindowBits};

/// The extension token (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The empty stored block that ends a sync flush: stripped by the sender,
/// appended again by the receiver (RFC 7692 §7.2.1, §7.2.2).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Server side, from a parsed upgrade request: reads every
/// `Sec-WebSocket-Extensions` header and negotiates with [`negotiate_server`].
/// A malformed header declines compression rather than failing the
/// handshake (the connection works, uncompressed).
#[must_use]
pub fn negotiate_request(
    request: &crate::handshake::Request,
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    let offers = crate::extension::parse(request.extension_headers()).ok()?;
    negotiate_server(&offers, config)
}
