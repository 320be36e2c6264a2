//! The receive path: frame heads, in-place unmasking, reassembly, limits,
//! incremental UTF-8 — every framing rule of RFC 6455 §5 enforced once.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::{FrameHead, Opcode, apply_mask};
use crate::message::{Message, Utf8Bytes};
use crate::role::Role;
use crate::utf8::Utf8Validator;

/// How much buffer to reserve ahead for a declared frame length: enough to
/// avoid regrowth for typical frames, without letting a frame head alone make
/// us allocate `max_frame_size`.
const RESERVE_AHEAD: usize = 256 * 1024;

/// Bytes unmasked and UTF-8 checked per pass over a large frame.
const PASS_BLOCK: usize = 32 * 1024;

/// A unit the reader hands to the connection.
#[derive(Debug)]
pub(crate) enum Inbound {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(Bytes),
}

/// A frame whose head has been read and whose payload is (partly) buffered.
#[derive(Debug)]
struct InFrame {
    head: FrameHead,
    len: usize,
    /// Payload bytes already unmasked (and, for plain text, UTF-8 checked).
    unmasked: usize,
    /// Check UTF-8 as bytes arrive (uncompressed text only).
    check_utf8: bool,
}

/// A data message in progress.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

/// Turns received bytes into [`Inbound`] units.
pub(crate) struct Reader {
    buf: BytesMut,
    /// `buf` is the caller's, adopted by `extend_owned`: a frame cut at its
    /// end gets no room reserved here, since growing a view of the
    /// caller's memory means a new allocation for every such frame; the
    /// caller places the rest (see `missing`).
    adopted: bool,
    role: Role,
    max_frame: usize,
    max_message: usize,
    frame: Option<InFrame>,
    message: Option<Partial>,
    utf8: Utf8Validator,
    inflate: Option<Box<super::compression::Inflater>>,
}

impl Reader {
    pub(crate) fn new(role: Role, max_frame: usize, max_message: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            adopted: false,
            role,
            max_frame,
            max_message,
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            inflate: None,
        }
    }

    #[cfg_attr(not(feature = "deflate"), allow(dead_code, reason = "only deflate decompresses"))]
    pub(crate) fn set_inflater(&mut self, inflate: Box<super::compression::Inflater>) {
        self.inflate = Some(inflate);
    }

    /// Appends received bytes.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Grown (or held alone) by now: room can be reserved in it.
        self.adopted = false;
    }

    /// Takes ownership of received bytes, copying only if some are buffered.
    pub(crate) fn extend_owned(&mut self, bytes: BytesMut) {
        if self.buf.is_empty() {
            self.buf = bytes;
            self.adopted = true;
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Bytes the frame being read still misses, up to `RESERVE_AHEAD` (0
    /// while its head is incomplete, or with no frame in progress).
    pub(crate) fn missing(&self) -> usize {
        self.frame.as_ref().map_or(0, |frame| frame.len.saturating_sub(self.buf.len()).min(RESERVE_AHEAD))
    }

    /// The bytes of a partly received frame, for the caller to read the
    /// rest into (room for it is reserved once its head is read, up to
    /// `RESERVE_AHEAD`): no copy when they come back with `extend_owned`.
    pub(crate) fn take_partial(&mut self) -> Option<BytesMut> {
        if self.buf.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// Puts back what `take_partial` gave out, nothing added.
    pub(crate) fn restore_partial(&mut self, buf: BytesMut) {
        debug_assert!(self.buf.is_empty(), "input arrived while the partial frame was out");
        self.buf = buf;
    }

    /// Bytes received but not yet turned into units.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything buffered (after the connection closed).
    pub(crate) fn discard(&mut self) {
        self.buf = BytesMut::new();
        self.message = None;
        self.frame = None;
    }

    /// The next complete unit, `Ok(None)` when more bytes are needed.
    pub(crate) fn next(&mut self) -> Result<Option<Inbound>, ProtocolError> {
        loop {
            if self.buf.is_empty() {
                if self.buf.capacity() == 0 {
                    // An adopted buffer used up: drop our hold on its
                    // allocation, which the messages cut from it keep alive
                    // on their own.
                    self.buf = BytesMut::new();
                    self.adopted = false;
                }
                // No bytes complete nothing: a frame in progress here still
                // misses payload (an empty one completes in the pass that
                // read its head).
                return Ok(None);
            }
            if let Some(unit) = self.whole_data_frame() {
                return unit.map(Some);
            }
            if self.frame.is_none() {
                let Some((head, head_len)) = FrameHead::decode(&self.buf)? else {
                    return Ok(None);
                };
                let frame = self.start_frame(head)?;
                self.buf.advance(head_len);
                if !self.adopted {
                    let missing = frame.len.saturating_sub(self.buf.len());
                    self.buf.reserve(missing.min(RESERVE_AHEAD));
                }
                self.frame = Some(frame);
            }
            let Some(frame) = self.frame.as_mut() else {
                return Ok(None);
            };
            let available = self.buf.len().min(frame.len);
            // Unmask and check in cache-sized blocks, so the UTF-8 pass reads
            // what the unmask pass just wrote while it is still in L1/L2.
            while frame.unmasked < available {
                let end = available.min(frame.unmasked + PASS_BLOCK);
                let block = &mut self.buf[frame.unmasked..end];
                if let Some(key) = frame.head.mask {
                    apply_mask(block, key, frame.unmasked);
                }
                if frame.check_utf8 {
                    // RFC 6455 §8.1 + Autobahn 6.4: fail fast, mid-frame.
                    self.utf8.feed(block).map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                frame.unmasked = end;
            }
            if available < frame.len {
                return Ok(None);
            }
            let (head, len) = (frame.head, frame.len);
            self.frame = None;
            let payload = self.buf.split_to(len).freeze();
            if let Some(unit) = self.finish_frame(head, payload)? {
                return Ok(Some(unit));
            }
        }
    }

    /// The common case in one pass: an unfragmented, uncompressed data frame
    /// of at most one pass block, buffered whole, with no message in
    /// progress. `None` leaves everything else (and every error) to the
    /// general path.
    fn whole_data_frame(&mut self) -> Option<Result<Inbound, ProtocolError>> {
        if self.frame.is_some() || self.message.is_some() {
            return None;
        }
        let Ok(Some((head, head_len))) = FrameHead::decode(&self.buf) else {
            return None;
        };
        let text = match head.opcode {
            Opcode::Text => true,
            Opcode::Binary => false,
            _ => return None,
        };
        let masked_as_required = head.mask.is_some() == (self.role == Role::Server);
        if !head.fin || head.rsv != 0 || !masked_as_required {
            return None;
        }
        let len = usize::try_from(head.len).ok()?;
        if len > PASS_BLOCK.min(self.max_frame).min(self.max_message) || self.buf.len() - head_len < len {
            return None;
        }
        self.buf.advance(head_len);
        let mut payload = self.buf.split_to(len);
        if let Some(key) = head.mask {
            apply_mask(&mut payload, key, 0);
        }
        if text && simdutf8::basic::from_utf8(&payload).is_err() {
            return Some(Err(ProtocolError::InvalidUtf8));
        }
        let payload = payload.freeze();
        let message = if text { Message::Text(Utf8Bytes::from_validated(payload)) } else { Message::Binary(payload) };
        Some(Ok(Inbound::Message(message)))
    }

    /// Checks a frame head against every rule that can be decided from it.
    fn start_frame(&mut self, head: FrameHead) -> Result<InFrame, ProtocolError> {
        match (self.role, head.mask) {
            // RFC 6455 §5.1: "The server MUST close the connection upon
            // receiving a frame that is not masked."
            (Role::Server, None) => return Err(ProtocolError::UnmaskedFrame),
            // "A client MUST close a connection if it detects a masked frame."
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        self.check_rsv(&head)?;
        let len = usize::try_from(head.len).unwrap_or(usize::MAX);
        if head.opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload length of
            // 125 bytes or less and MUST NOT be fragmented."
            if !head.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if head.len > 125 {
                return Err(ProtocolError::ControlTooLong(head.len));
            }
            return Ok(InFrame { head, len, unmasked: 0, check_utf8: false });
        }
        if len > self.max_frame {
            return Err(ProtocolError::FrameTooBig { size: head.len, limit: self.max_frame });
        }
        let max_message = self.max_message;
        let partial = self.data_frame_message(head)?;
        if !partial.compressed && partial.data.len().saturating_add(len) > max_message {
            return Err(ProtocolError::MessageTooBig { limit: max_message });
        }
        let check_utf8 = partial.text && !partial.compressed;
        Ok(InFrame { head, len, unmasked: 0, check_utf8 })
    }

    /// RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that
    /// defines meanings for non-zero values." RFC 7692 §6: RSV1 marks the first
    /// frame of a compressed message, and only that frame.
    fn check_rsv(&self, head: &FrameHead) -> Result<(), ProtocolError> {
        let deflate = self.inflate.is_some();
        let rsv1 = head.rsv & FrameHead::RSV1 != 0;
        if head.rsv & !FrameHead::RSV1 != 0 || (rsv1 && !deflate) {
            return Err(ProtocolError::ReservedBits(head.rsv));
        }
        if rsv1 && !matches!(head.opcode, Opcode::Text | Opcode::Binary) {
            return Err(ProtocolError::Compression("RSV1 set on a control or continuation frame"));
        }
        Ok(())
    }

    /// Starts or continues the message a data frame belongs to.
    fn data_frame_message(&mut self, head: FrameHead) -> Result<&mut Partial, ProtocolError> {
        match (head.opcode, self.message.is_some()) {
            // RFC 6455 §5.4: continuation only inside a fragmented message...
            (Opcode::Continuation, false) => Err(ProtocolError::UnexpectedContinuation),
            // ...and no new message until the current one is finished.
            (Opcode::Text | Opcode::Binary, true) => Err(ProtocolError::ExpectedContinuation),
            (opcode, _) => {
                if opcode != Opcode::Continuation {
                    self.utf8 = Utf8Validator::new();
                    self.message = Some(Partial {
                        text: opcode == Opcode::Text,
                        compressed: head.rsv & FrameHead::RSV1 != 0,
                        data: BytesMut::new(),
                    });
                }
                self.message.as_mut().ok_or(ProtocolError::UnexpectedContinuation)
            }
        }
    }

    /// Handles a frame whose payload is complete and unmasked.
    fn finish_frame(&mut self, head: FrameHead, payload: Bytes) -> Result<Option<Inbound>, ProtocolError> {
        match head.opcode {
            Opcode::Ping => return Ok(Some(Inbound::Ping(payload))),
            Opcode::Pong => return Ok(Some(Inbound::Pong(payload))),
            Opcode::Close => return Ok(Some(Inbound::Close(payload))),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {}
        }
        let Some(partial) = self.message.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        let whole = if partial.compressed {
            let before = partial.data.len();
            let inflate = self.inflate.as_mut().ok_or(ProtocolError::ReservedBits(FrameHead::RSV1))?;
            inflate.decompress(&payload, head.fin, &mut partial.data, self.max_message)?;
            if partial.text {
                self.utf8.feed(&partial.data[before..]).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            None
        } else if head.fin && partial.data.is_empty() {
            Some(payload) // a single-frame message: no copy
        } else {
            partial.data.extend_from_slice(&payload);
            None
        };
        if !head.fin {
            return Ok(None);
        }
        let Some(partial) = self.message.take() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        let data = whole.unwrap_or_else(|| partial.data.freeze());
        let message = if partial.text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            Message::Text(Utf8Bytes::from_validated(data))
        } else {
            Message::Binary(data)
        };
        Ok(Some(Inbound::Message(message)))
    }
}
