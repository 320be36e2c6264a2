//! Errors, split by blame: the peer ([`ProtocolError`]), the local caller
//! ([`SendError`], [`ConfigError`]), and the terminal reason a connection
//! ended ([`CloseReason`]).

use thiserror::Error;

use crate::close_code::{CloseCode, CloseFrame};

/// The peer broke RFC 6455 / RFC 7692 or one of our limits. Each variant knows
/// the close code the connection is failed with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RFC 6455 §5.1: a server MUST close on an unmasked client frame.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// RFC 6455 §5.1: a client MUST close on a masked server frame.
    #[error("server frame is masked")]
    MaskedFrame,
    /// RFC 6455 §5.2: RSV bits set without a negotiated extension defining them.
    #[error("reserved bits set: {0:#05b}")]
    ReservedBits(u8),
    /// RFC 6455 §5.2: an opcode that is reserved.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// RFC 6455 §5.5: control frames MUST NOT be fragmented.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// RFC 6455 §5.5: control frame payloads MUST be 125 bytes or less.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlTooLong(u64),
    /// RFC 6455 §5.4: a continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// RFC 6455 §5.4: a new data frame while a fragmented message is in progress.
    #[error("data frame inside a fragmented message")]
    ExpectedContinuation,
    /// RFC 6455 §5.2: the 64-bit length has its most significant bit set.
    #[error("frame length has the most significant bit set")]
    InvalidLength,
    /// RFC 6455 §5.2: the length is not encoded in the minimal number of bytes.
    #[error("frame length not minimally encoded")]
    NonMinimalLength,
    /// RFC 6455 §8.1: a text message (or close reason) that is not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// RFC 6455 §5.5.1: a close payload of one byte.
    #[error("close frame payload of one byte")]
    CloseOneByte,
    /// RFC 6455 §7.4: a close code that may not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A frame longer than `max_frame_size`.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooBig {
        /// Declared frame length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message (after decompression) longer than `max_message_size`.
    #[error("message exceeds the limit of {limit} bytes")]
    MessageTooBig {
        /// The configured limit.
        limit: usize,
    },
    /// RFC 7692 §6.2: RSV1 on a continuation or control frame, or a
    /// compressed stream that does not inflate.
    #[error("invalid compressed data: {0}")]
    Compression(&'static str),
    /// The peer sent more messages than the rate limit allows.
    #[error("rate limit exceeded")]
    RateLimited,
}

impl ProtocolError {
    /// The close code this error fails the connection with.
    #[must_use]
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::RateLimited => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// A local misuse of the connection: never caused by peer data.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed; nothing more can be sent.
    #[error("connection is closing or closed")]
    Closed,
    /// Control frame payloads are limited to 125 bytes (RFC 6455 §5.5).
    #[error("control payload of {0} bytes exceeds 125")]
    ControlTooLong(usize),
    /// The close code may not be sent on the wire (e.g. 1005, 1006, 1015).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(CloseCode),
    /// A complete message was sent while a fragmented one is in progress, or a
    /// continuation with none started.
    #[error("fragmented message state violated: {0}")]
    Fragmentation(&'static str),
    /// The compressor failed (zlib reported an internal error).
    #[error("compression failed")]
    Compression,
    /// The message exceeds the local `max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooBig {
        /// Message length.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// An invalid configuration value, reported instead of a panic.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// `max_frame_size` is larger than `max_message_size`... or another pair
    /// of settings contradict each other.
    #[error("inconsistent settings: {0}")]
    Inconsistent(&'static str),
    /// A setting outside its allowed range (e.g. deflate window bits 8–15).
    #[error("{setting} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
        /// The rejected value.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
}

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The opening handshake did not complete in time.
    Handshake,
    /// Time to send a keep-alive ping.
    KeepAlive,
    /// The peer did not answer our ping in time.
    Pong,
    /// The peer did not answer our Close in time.
    Close,
}

/// Why a connection ended: reported once, in [`crate::Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The close handshake completed (either side started it). `frame` is what
    /// the peer sent (`None` when its Close had no body).
    #[error("closed by {initiator:?}: {frame:?}")]
    Clean {
        /// Who sent the first Close.
        initiator: Side,
        /// The peer's close frame body, if it had one.
        frame: Option<CloseFrame>,
    },
    /// We failed the connection because the peer broke the protocol; a Close
    /// with [`ProtocolError::close_code`] was queued.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// A timer expired: no pong, no close reply, or no handshake.
    #[error("timed out waiting for {0:?}")]
    TimedOut(Timer),
    /// The transport ended before the close handshake (code 1006).
    #[error("connection lost without a close frame")]
    Eof,
}

impl CloseReason {
    /// The close code an application sees: the peer's code for a clean close
    /// (1005 if it sent none), the error's code, or 1006 for abnormal ends.
    #[must_use]
    pub fn code(&self) -> CloseCode {
        match self {
            Self::Clean { frame, .. } => frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code),
            Self::Protocol(e) => e.close_code(),
            Self::TimedOut(_) | Self::Eof => CloseCode::ABNORMAL,
        }
    }

    /// The reason text the peer gave, if any.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Clean { frame: Some(f), .. } => f.reason.as_str(),
            _ => "",
        }
    }
}

/// One end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This endpoint.
    Local,
    /// The other endpoint.
    Peer,
}
