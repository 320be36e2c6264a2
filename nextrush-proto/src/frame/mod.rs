//! Frames (RFC 6455 §5.2): opcodes, the frame head, masking.

mod head;
mod mask;

pub use head::{FrameHead, MAX_HEAD_LEN};
pub use mask::{apply_mask, extend_masked};

use crate::error::ProtocolError;

/// A frame opcode (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl Opcode {
    /// The 4-bit wire value.
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Parses the 4-bit wire value.
    ///
    /// # Errors
    /// RFC 6455 §5.2: "If an unknown opcode is received, the receiving
    /// endpoint MUST _Fail the WebSocket Connection_."
    pub const fn from_bits(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// Whether this is a control opcode (close, ping, pong).
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}
