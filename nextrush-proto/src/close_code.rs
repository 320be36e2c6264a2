//! Close status codes (RFC 6455 §7.4) and the close frame body.

use std::fmt;

use crate::message::Utf8Bytes;

/// A WebSocket close status code (RFC 6455 §7.4).
///
/// A `u16` newtype with named constants rather than an enum with catch-all
/// variants: every value a peer can send is representable, and
/// [`CloseCode::is_valid_on_wire`] says whether it may appear in a Close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: received a data type it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data not consistent with its type (e.g. invalid UTF-8).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation (rate limit, slow consumer, authentication).
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (overload).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway or proxy got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a Close frame on the wire.
    ///
    /// RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1000–1003 and 1007–1014
    /// are defined; 1004–1006 and 1015 are reserved and MUST NOT be sent;
    /// 3000–4999 are for libraries, frameworks and applications; everything
    /// else is invalid.
    #[must_use]
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether a peer closing with this code asked not to be retried as-is
    /// (1008 policy violation and the 4000–4999 application range).
    #[must_use]
    pub fn is_policy(self) -> bool {
        self == Self::POLICY_VIOLATION || (4000..=4999).contains(&self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The body of a Close frame: a code and a UTF-8 reason of at most 123 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason text (may be empty).
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// Makes a close frame body from a code and a reason.
    #[must_use]
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self { code, reason: reason.into() }
    }
}
