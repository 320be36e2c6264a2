//! The agreed parameters of a permessage-deflate session (RFC 7692 §5, §7.1).

use std::fmt;

use crate::role::Role;

use super::EXTENSION_NAME;

/// The base-2 logarithm of an LZ77 window size, 8 to 15 (RFC 7692 §7.1.2).
///
/// Invalid values cannot be represented, so nothing downstream can panic on
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

impl WindowBits {
    /// The smallest window RFC 7692 allows: 256 bytes.
    pub const MIN: Self = Self(8);
    /// The largest window: 32 KiB, the DEFLATE maximum and the default.
    pub const MAX: Self = Self(15);

    /// `Some` when `bits` is in `8..=15`.
    #[must_use]
    pub const fn new(bits: u8) -> Option<Self> {
        if bits >= Self::MIN.0 && bits <= Self::MAX.0 { Some(Self(bits)) } else { None }
    }

    /// The value, 8 to 15.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The window zlib runs with: 8 becomes 9 (see the module docs on why a
    /// 9-bit zlib stream fits an 8-bit window, and why a 9-bit inflater
    /// decodes 8-bit streams).
    pub(crate) const fn zlib_bits(self) -> u8 {
        if self.0 < 9 { 9 } else { self.0 }
    }

    /// Parses a parameter value: "a decimal integer value without leading
    /// zeroes between 8 to 15, inclusive" (RFC 7692 §7.1.2.1, §7.1.2.2).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let bits = match value.as_bytes() {
            [d @ b'8'..=b'9'] => d - b'0',
            [b'1', d @ b'0'..=b'5'] => 10 + (d - b'0'),
            _ => return None,
        };
        Self::new(bits)
    }
}

impl Default for WindowBits {
    fn default() -> Self {
        Self::MAX
    }
}

impl TryFrom<u8> for WindowBits {
    type Error = u8;

    /// Fails with the rejected value when it is outside `8..=15`.
    fn try_from(bits: u8) -> Result<Self, u8> {
        Self::new(bits).ok_or(bits)
    }
}

impl fmt::Display for WindowBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The negotiated permessage-deflate parameters, as they appear in the
/// server's response (the RFC's "agreed parameters").
///
/// A window-bits field is `None` when the parameter was absent from the
/// response, which means the full 15-bit window. Produced by
/// [`negotiate_server`](super::negotiate_server) and
/// [`accept_client_response`](super::accept_client_response); the per-role
/// accessors say what applies to our compressor and to our decompressor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with.
    pub server_max_window_bits: Option<WindowBits>,
    /// The largest window the client compresses with.
    pub client_max_window_bits: Option<WindowBits>,
}

impl DeflateParams {
    /// Whether our compressor must reset its context after each message.
    #[must_use]
    pub const fn compress_no_context_takeover(&self, role: Role) -> bool {
        match role {
            Role::Server => self.server_no_context_takeover,
            Role::Client => self.client_no_context_takeover,
        }
    }

    /// Whether the peer resets its context after each message, so our
    /// decompressor may reset (and free) its window between messages.
    #[must_use]
    pub const fn decompress_no_context_takeover(&self, role: Role) -> bool {
        self.compress_no_context_takeover(role.peer())
    }

    /// The largest window our compressor may use.
    #[must_use]
    pub fn compress_window_bits(&self, role: Role) -> WindowBits {
        match role {
            Role::Server => self.server_max_window_bits,
            Role::Client => self.client_max_window_bits,
        }
        .unwrap_or_default()
    }

    /// The largest window the peer compresses with: what our decompressor
    /// needs.
    #[must_use]
    pub fn decompress_window_bits(&self, role: Role) -> WindowBits {
        self.compress_window_bits(role.peer())
    }
}

impl fmt::Display for DeflateParams {
    /// The `Sec-WebSocket-Extensions` response value, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_max_window_bits=12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXTENSION_NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if let Some(bits) = self.server_max_window_bits {
            write!(f, "; server_max_window_bits={bits}")?;
        }
        if let Some(bits) = self.client_max_window_bits {
            write!(f, "; client_max_window_bits={bits}")?;
        }
        Ok(())
    }
}
