//! Which end of the connection this endpoint is.

/// The role of this endpoint: it decides masking (RFC 6455 §5.1) and, with
/// permessage-deflate, which negotiated parameters apply to our compressor
/// and which to our decompressor (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We opened the connection: we mask our frames and compress with the
    /// `client_*` parameters.
    Client,
    /// We accepted the connection: our frames are unmasked and we compress
    /// with the `server_*` parameters.
    Server,
}

impl Role {
    /// The role of the other endpoint.
    #[must_use]
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}
