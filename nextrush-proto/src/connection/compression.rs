//! The seam between the connection and permessage-deflate.
//!
//! Without the `deflate` feature the codec types are uninhabited, so the
//! connection's compression paths compile away.

use bytes::BytesMut;

use crate::error::ProtocolError;

/// Decompresses received messages (never constructed without `deflate`).
#[derive(Debug)]
pub(crate) enum Inflater {}

impl Inflater {
    pub(crate) fn decompress(
        &mut self,
        _input: &[u8],
        _fin: bool,
        _out: &mut BytesMut,
        _max_total: usize,
    ) -> Result<(), ProtocolError> {
        match *self {}
    }
}

/// Compresses sent messages (never constructed without `deflate`).
#[derive(Debug)]
pub(crate) enum Deflater {}

impl Deflater {
    pub(crate) fn threshold(&self) -> usize {
        match *self {}
    }

    pub(crate) fn compress(&mut self, _payload: &[u8], _out: &mut BytesMut) {
        match *self {}
    }

    pub(crate) fn compress_fragment(&mut self, _data: &[u8], _fin: bool, _out: &mut BytesMut) {
        match *self {}
    }
}
