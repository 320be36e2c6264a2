//! The frame head: FIN, RSV, opcode, mask and payload length.

use super::Opcode;
use crate::error::ProtocolError;

/// The longest possible frame head: 2 + 8 (length) + 4 (mask) bytes.
pub const MAX_HEAD_LEN: usize = 14;

/// A decoded frame head (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    /// Final fragment of a message.
    pub fin: bool,
    /// The three RSV bits, as `0b0000_0RRR` (RSV1 is `0b100`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
}

impl FrameHead {
    /// RSV1, the bit permessage-deflate uses to flag a compressed message.
    pub const RSV1: u8 = 0b100;

    /// Decodes a head from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole head, and the
    /// head with its encoded length otherwise.
    ///
    /// # Errors
    /// An unknown opcode, or a 64-bit length with its most significant bit
    /// set (RFC 6455 §5.2).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let opcode = Opcode::from_bits(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (len, mut pos) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match buf.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(bytes) => (u64::from_be_bytes(bytes), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        // RFC 6455 §5.2: "the most significant bit MUST be 0".
        if len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        let mask = if masked {
            let Some(key) = buf.get(pos..pos + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
                return Ok(None);
            };
            pos += 4;
            Some(key)
        } else {
            None
        };
        let head = Self { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0b111, opcode, mask, len };
        Ok(Some((head, pos)))
    }

    /// Encodes the head into `out`, returning the number of bytes written.
    /// Lengths use the minimal form, as RFC 6455 §5.2 requires.
    pub fn encode(&self, out: &mut [u8; MAX_HEAD_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.len {
            // The match arms bound each length to its encoding's range.
            #[allow(clippy::cast_possible_truncation)]
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            #[allow(clippy::cast_possible_truncation)]
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(head: FrameHead) {
        let mut buf = [0; MAX_HEAD_LEN];
        let n = head.encode(&mut buf);
        assert_eq!(FrameHead::decode(&buf[..n]), Ok(Some((head, n))));
        for short in 0..n {
            assert_eq!(FrameHead::decode(&buf[..short]), Ok(None), "prefix of {short} bytes");
        }
    }

    /// RFC 6455 §5.2: 7-bit, 16-bit and 64-bit length forms at their boundaries.
    #[test]
    fn rfc6455_5_2_length_forms_round_trip() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                round_trip(FrameHead { fin: true, rsv: 0, opcode: Opcode::Binary, mask, len });
            }
        }
    }

    #[test]
    fn rfc6455_5_2_minimal_length_encoding() {
        let mut buf = [0; MAX_HEAD_LEN];
        let head = |len| FrameHead { fin: true, rsv: 0, opcode: Opcode::Text, mask: None, len };
        assert_eq!(head(125).encode(&mut buf), 2);
        assert_eq!(head(126).encode(&mut buf), 4);
        assert_eq!(head(65_535).encode(&mut buf), 4);
        assert_eq!(head(65_536).encode(&mut buf), 10);
    }

    #[test]
    fn rfc6455_5_2_length_msb_must_be_zero() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHead::decode(&buf), Err(ProtocolError::InvalidLength));
    }

    #[test]
    fn rfc6455_5_2_unknown_opcodes_rejected() {
        for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(FrameHead::decode(&[0x80 | op, 0]), Err(ProtocolError::UnknownOpcode(op)));
        }
    }

    /// RFC 6455 §5.7: "A single-frame unmasked text message" and the masked one.
    #[test]
    fn rfc6455_5_7_examples() {
        let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (head, n) = FrameHead::decode(&unmasked).unwrap().unwrap();
        assert_eq!((head.fin, head.opcode, head.len, head.mask, n), (true, Opcode::Text, 5, None, 2));
        let masked = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (head, n) = FrameHead::decode(&masked).unwrap().unwrap();
        assert_eq!((head.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        let mut payload = masked[6..].to_vec();
        super::super::apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, b"Hello");
    }
}
