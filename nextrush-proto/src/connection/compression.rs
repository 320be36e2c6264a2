//! The seam between the connection and permessage-deflate.
//!
//! With the `deflate` feature these are the RFC 7692 codec; without it they
//! are uninhabited, so the connection's compression paths compile away.

#[cfg(feature = "deflate")]
pub(crate) use crate::deflate::{Compressor as Deflater, Decompressor as Inflater};

#[cfg(not(feature = "deflate"))]
pub(crate) use disabled::{Deflater, Inflater};

#[cfg(not(feature = "deflate"))]
mod disabled {
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

        pub(crate) fn compress(&mut self, _payload: &[u8], _out: &mut BytesMut) -> Result<bool, ()> {
            match *self {}
        }

        pub(crate) fn compress_fragment(&mut self, _data: &[u8], _fin: bool, _out: &mut BytesMut) -> Result<(), ()> {
            match *self {}
        }
    }
}
