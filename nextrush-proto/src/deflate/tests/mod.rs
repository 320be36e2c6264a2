//! Tests of permessage-deflate: RFC 7692 vectors, negotiation with real
//! headers, property tests, and bombs.

mod bomb;
mod negotiate;
mod props;
mod puff;
mod vectors;

use bytes::BytesMut;

use super::{Compressor, Decompressor, DeflateConfig, DeflateParams, WindowBits};
use crate::Role;

/// Agreed parameters from plain values (`15` means absent).
pub(super) fn params(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    let bits = |b: u8| WindowBits::new(b).filter(|&w| w < WindowBits::MAX);
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: bits(server_bits),
        client_max_window_bits: bits(client_bits),
    }
}

/// A server compressor and the client decompressor that reads it.
pub(super) fn pair(p: &DeflateParams, config: &DeflateConfig) -> (Compressor, Decompressor) {
    (Compressor::new(p, Role::Server, config), Decompressor::new(p, Role::Client))
}

/// Compresses a whole message into a fresh buffer, even when that does not
/// make it smaller (as the final fragment of a one-frame message).
pub(super) fn compress(c: &mut Compressor, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    c.compress_fragment(payload, true, &mut out).unwrap();
    out.to_vec()
}

/// Decompresses a whole message (one frame) with a generous limit.
pub(super) fn decompress(d: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    d.decompress(payload, true, &mut out, 1 << 24).unwrap();
    out.to_vec()
}
