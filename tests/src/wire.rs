//! Raw frames as a scripted peer writes them, and the decoding of what the
//! endpoint under test wrote back.
//!
//! Encoding goes through [`FrameHead::encode`] (minimal length forms) and
//! patches the opcode nibble afterwards, so that reserved opcodes, which
//! [`Opcode`] cannot name, can be sent too.

use std::fmt;

use nextrush_proto::frame::{FrameHead, MAX_HEAD_LEN, Opcode, apply_mask};

/// One frame to put on the wire, valid or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// The three RSV bits, as `0b0000_0RRR`.
    pub rsv: u8,
    /// The 4-bit opcode, reserved values included.
    pub opcode: u8,
    /// Masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A final, RSV-free frame.
    #[must_use]
    pub fn new(opcode: Opcode, payload: impl Into<Vec<u8>>, mask: Option<[u8; 4]>) -> Self {
        Self { fin: true, rsv: 0, opcode: opcode.bits(), mask, payload: payload.into() }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let head = FrameHead {
            fin: self.fin,
            rsv: self.rsv,
            opcode: Opcode::Binary,
            mask: self.mask,
            len: self.payload.len() as u64,
        };
        let mut buf = [0; MAX_HEAD_LEN];
        let n = head.encode(&mut buf);
        buf[0] = (buf[0] & 0xF0) | (self.opcode & 0x0F);
        out.extend_from_slice(&buf[..n]);
        let start = out.len();
        out.extend_from_slice(&self.payload);
        if let Some(key) = self.mask {
            apply_mask(&mut out[start..], key, 0);
        }
    }
}

/// A frame the endpoint under test wrote, in canonical form: its head with
/// the masking key left out (the mask *bit* stays), and its payload
/// unmasked. Client mask keys are random by design (RFC 6455 §5.3), so two
/// correct clients differ only there; everything else is compared byte for
/// byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The head bytes without the masking key.
    pub head: Vec<u8>,
    /// The unmasked payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The opcode nibble.
    #[must_use]
    pub fn opcode(&self) -> u8 {
        self.head[0] & 0x0F
    }

    /// Whether this is a ping or a pong: the frames the protocol queues by
    /// itself, ahead of data.
    #[must_use]
    pub fn is_ping_or_pong(&self) -> bool {
        matches!(self.opcode(), 0x9 | 0xA)
    }

    /// Head and payload, concatenated.
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        out.extend_from_slice(&self.payload);
        out
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match Opcode::from_bits(self.opcode()) {
            Ok(op) => format!("{op:?}"),
            Err(_) => format!("op{:#x}", self.opcode()),
        };
        let fin = if self.head[0] & 0x80 != 0 { "" } else { " !fin" };
        let rsv = (self.head[0] >> 4) & 0b111;
        let rsv = if rsv == 0 { String::new() } else { format!(" rsv={rsv:#05b}") };
        write!(f, "{name}{fin}{rsv} {:?}", Preview(&self.payload))
    }
}

/// A short, readable rendering of a payload: text when it is UTF-8.
pub struct Preview<'a>(pub &'a [u8]);

impl fmt::Debug for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 48;
        let bytes = self.0;
        let cut = &bytes[..bytes.len().min(SHOWN)];
        let more = if bytes.len() > SHOWN { "…" } else { "" };
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let shown: String = text.chars().take(SHOWN).collect();
                write!(f, "{:?}{more} ({} B)", shown, bytes.len())
            }
            Err(_) => write!(f, "{cut:02x?}{more} ({} B)", bytes.len()),
        }
    }
}

/// Splits a byte stream into frames; bytes that do not form a complete,
/// decodable frame are returned as the tail.
#[must_use]
pub fn decode_frames(mut bytes: &[u8]) -> (Vec<Frame>, Vec<u8>) {
    let mut frames = Vec::new();
    while let Ok(Some((head, n))) = FrameHead::decode(bytes) {
        let Some(len) = usize::try_from(head.len).ok().filter(|len| bytes.len() - n >= *len) else { break };
        let key_len = if head.mask.is_some() { 4 } else { 0 };
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = head.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push(Frame { head: bytes[..n - key_len].to_vec(), payload });
        bytes = &bytes[n + len..];
    }
    (frames, bytes.to_vec())
}

/// The end of an HTTP head (the index just past `\r\n\r\n`), if complete.
#[must_use]
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_reserved_opcode_and_mask() {
        let frame = RawFrame { fin: false, rsv: 0b010, opcode: 0xB, mask: Some([1, 2, 3, 4]), payload: vec![9; 200] };
        let mut out = Vec::new();
        frame.encode_into(&mut out);
        assert_eq!(out[0], 0x2B);
        assert_eq!(out[1], 0x80 | 126);
        // Reserved opcodes do not decode: the whole stream is the tail.
        let (frames, tail) = decode_frames(&out);
        assert!(frames.is_empty());
        assert_eq!(tail, out);
    }

    #[test]
    fn masked_frames_decode_to_canonical_form() {
        let mut out = Vec::new();
        RawFrame::new(Opcode::Text, b"hello".to_vec(), Some([0x37, 0xfa, 0x21, 0x3d])).encode_into(&mut out);
        RawFrame::new(Opcode::Pong, b"".to_vec(), None).encode_into(&mut out);
        out.push(0x81);
        let (frames, tail) = decode_frames(&out);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].canonical_bytes(), [0x81, 0x85, b'h', b'e', b'l', b'l', b'o']);
        assert!(frames[1].is_ping_or_pong());
        assert_eq!(tail, [0x81]);
    }
}
