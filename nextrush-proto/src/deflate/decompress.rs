//! The receiving side: append the tail, inflate in bounded steps
//! (RFC 7692 §7.2.2).

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::role::Role;

use super::TAIL;
use super::compress::delta;
use super::params::DeflateParams;

/// The first output step is this many times the input, within the bounds
/// below; each further step doubles. Steps bound the zero-filled space we
/// hand to zlib, so a small message never touches a large buffer.
const STEP_FACTOR: usize = 4;
const MIN_STEP: usize = 1024;
const MAX_STEP: usize = 1 << 20;

/// Decompresses the messages we receive on one connection.
///
/// Build one per connection with the agreed [`DeflateParams`] and our
/// [`Role`]. The zlib state (~46 KiB, see the [module docs](super)) is
/// allocated on the first compressed frame.
///
/// Feed it the payload of every frame of a compressed message (the message
/// whose first frame had RSV1 set), in order, with `fin` on the last one.
/// Uncompressed messages must not be fed: they are not part of the
/// compressed stream.
#[derive(Debug)]
pub struct Decompressor {
    state: Option<Decompress>,
    zlib_window_bits: u8,
    no_context_takeover: bool,
    /// Decompressed bytes of the current message so far.
    message_len: usize,
    in_message: bool,
    /// The input so far ended exactly at the end of a `BFINAL` block.
    stream_ended: bool,
}

impl Decompressor {
    /// A decompressor for the peer's side of the agreed parameters.
    #[must_use]
    pub fn new(params: &DeflateParams, role: Role) -> Self {
        Self {
            state: None,
            zlib_window_bits: params.decompress_window_bits(role).zlib_bits(),
            no_context_takeover: params.decompress_no_context_takeover(role),
            message_len: 0,
            in_message: false,
            stream_ended: false,
        }
    }

    /// Whether a message is in progress (frames were fed without `fin`).
    #[must_use]
    pub const fn in_message(&self) -> bool {
        self.in_message
    }

    /// Whether the zlib state is currently allocated.
    #[must_use]
    pub const fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Frees the zlib state between messages when the peer does not take
    /// over context (its next message cannot refer to earlier ones, so our
    /// window is not needed). Returns whether anything was freed. Does
    /// nothing mid-message or with context takeover.
    pub fn release(&mut self) -> bool {
        self.no_context_takeover && !self.in_message && self.state.take().is_some()
    }

    /// Inflates the payload of one frame of a compressed message and appends
    /// the output to `out`.
    ///
    /// On the final frame (`fin`), the empty block `00 00 ff ff` that the
    /// sender stripped is fed after the payload (§7.2.2), and with no
    /// context takeover on the peer's side the window is reset for the next
    /// message.
    ///
    /// `max_total` bounds the decompressed size of the whole message (all
    /// frames since the last `fin`), counted by the decompressor itself, so
    /// `out` may hold anything before the call — the assembled message so
    /// far, or nothing. Output is produced in bounded steps, and `out` never
    /// grows past `out.len()` plus what is left of `max_total` (a doubling
    /// that would overshoot is replaced by one exact allocation), so a
    /// decompression bomb costs at most `max_total` bytes.
    ///
    /// A `BFINAL` block (§7.2.3.4) ends zlib's stream: the decompressor
    /// restarts with an empty window and continues with the rest of the
    /// payload, and skips the appended tail if nothing followed the block.
    /// A peer that refers to data before a `BFINAL` block after it is not
    /// supported (it fails as corrupt data).
    ///
    /// # Errors
    /// - [`ProtocolError::MessageTooBig`] when the message would exceed
    ///   `max_total` (close code 1009);
    /// - [`ProtocolError::Compression`] when the data is not valid DEFLATE
    ///   (close code 1002; RFC 7692 names no code, some servers use 1007).
    ///
    /// After an error the decompressor is reset (the connection is expected
    /// to fail); bytes already appended to `out` in this call stay there.
    pub fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut BytesMut,
        max_total: usize,
    ) -> Result<(), ProtocolError> {
        let bits = self.zlib_window_bits;
        // `bits` is 9..=15 by construction, so flate2 does not panic.
        let mut state = self.state.take().unwrap_or_else(|| Decompress::new_with_window_bits(false, bits));
        self.in_message = true;
        let result = self.frame(&mut state, input, fin, out, max_total);
        if result.is_ok() {
            self.state = Some(state);
        } else {
            // The zlib state is dropped: the next message starts afresh.
            self.message_len = 0;
            self.in_message = false;
            self.stream_ended = false;
        }
        result
    }

    fn frame(
        &mut self,
        state: &mut Decompress,
        input: &[u8],
        fin: bool,
        out: &mut BytesMut,
        max_total: usize,
    ) -> Result<(), ProtocolError> {
        self.inflate(state, input, out, max_total)?;
        if !fin {
            return Ok(());
        }
        // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of
        // the payload of the message."
        if !self.stream_ended {
            self.inflate(state, &TAIL, out, max_total)?;
        }
        self.message_len = 0;
        self.in_message = false;
        self.stream_ended = false;
        if self.no_context_takeover {
            state.reset(false);
        }
        Ok(())
    }

    /// Inflates `input` completely, or fails.
    fn inflate(
        &mut self,
        state: &mut Decompress,
        mut input: &[u8],
        out: &mut BytesMut,
        max_total: usize,
    ) -> Result<(), ProtocolError> {
        let mut step = input.len().saturating_mul(STEP_FACTOR).clamp(MIN_STEP, MAX_STEP);
        loop {
            let remaining = max_total.saturating_sub(self.message_len);
            if remaining == 0 {
                return self.probe(state, input, max_total);
            }
            let want = step.min(remaining);
            reserve_within(out, want, out.len().saturating_add(remaining));
            let start = out.len();
            out.resize(start + want, 0);
            let (in_before, out_before) = (state.total_in(), state.total_out());
            let status = state.decompress(input, &mut out[start..], FlushDecompress::Sync);
            let consumed = delta(state.total_in(), in_before);
            let produced = delta(state.total_out(), out_before);
            out.truncate(start + produced);
            self.message_len += produced;
            input = input.get(consumed..).unwrap_or_default();
            if consumed > 0 {
                self.stream_ended = false;
            }
            let status = status.map_err(|_| ProtocolError::Compression("invalid DEFLATE data"))?;
            if status == Status::StreamEnd {
                // A BFINAL block ended zlib's stream; more blocks may follow.
                state.reset(false);
                self.stream_ended = true;
            }
            // zlib has written all it can once it leaves output space unused.
            if input.is_empty() && produced < want {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && status != Status::StreamEnd {
                return Err(ProtocolError::Compression("inflate made no progress"));
            }
            step = step.saturating_mul(2).min(MAX_STEP);
        }
    }

    /// The message is at its limit: any further output byte is one too many.
    /// Inflates the rest of `input` into a one-byte buffer.
    fn probe(&mut self, state: &mut Decompress, mut input: &[u8], limit: usize) -> Result<(), ProtocolError> {
        let mut byte = [0u8; 1];
        loop {
            let (in_before, out_before) = (state.total_in(), state.total_out());
            let status = state.decompress(input, &mut byte, FlushDecompress::Sync);
            let consumed = delta(state.total_in(), in_before);
            if delta(state.total_out(), out_before) > 0 {
                return Err(ProtocolError::MessageTooBig { limit });
            }
            input = input.get(consumed..).unwrap_or_default();
            if consumed > 0 {
                self.stream_ended = false;
            }
            if status.map_err(|_| ProtocolError::Compression("invalid DEFLATE data"))? == Status::StreamEnd {
                state.reset(false);
                self.stream_ended = true;
            } else if consumed == 0 {
                return Ok(());
            }
        }
    }
}

/// Makes room for `additional` more bytes in `out` without letting its
/// capacity pass `ceiling` (which is at least `out.len() + additional`).
///
/// `BytesMut::reserve` grows to at least twice the capacity; near the message
/// limit that could allocate up to twice the limit, so the last growth is one
/// exact allocation instead. (A `BytesMut` split off a larger buffer may,
/// when it grows, take back its original capacity, at most 64 KiB.)
fn reserve_within(out: &mut BytesMut, additional: usize, ceiling: usize) {
    if out.capacity() - out.len() >= additional {
        return;
    }
    // Vec never grows to less than twice its capacity, nor to less than 8.
    if out.capacity().saturating_mul(2).max(64) <= ceiling {
        out.reserve(additional);
        return;
    }
    let mut exact = BytesMut::with_capacity(ceiling);
    exact.extend_from_slice(out);
    *out = exact;
}
