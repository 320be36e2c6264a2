//! The sending side: DEFLATE each message, sync-flush, strip the tail
//! (RFC 7692 §7.2.1).

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use thiserror::Error;

use crate::role::Role;

use super::TAIL;
use super::config::DeflateConfig;
use super::params::DeflateParams;

/// zlib reported an internal error. Never caused by peer data and not
/// expected with a valid stream; the compressor has reset itself, and the
/// caller may send the message uncompressed instead (an uncompressed message
/// does not touch the peer's window, so nothing goes out of sync).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("deflate failed: {0}")]
pub struct CompressError(&'static str);

/// Compresses the messages we send on one connection.
///
/// Build one per connection with the agreed [`DeflateParams`], our
/// [`Role`] and our [`DeflateConfig`]. The zlib state (a few hundred KiB, see
/// the [module docs](super)) is allocated on the first message that is
/// compressed.
///
/// The caller decides per message whether to try (typically: only messages
/// of at least [`threshold`](Self::threshold) bytes);
/// [`compress`](Self::compress) may still decline a message that does not
/// shrink. The caller sets RSV1 on the first frame of a compressed message,
/// and never on an uncompressed one.
#[derive(Debug)]
pub struct Compressor {
    state: Option<Compress>,
    level: Compression,
    zlib_window_bits: u8,
    no_context_takeover: bool,
    threshold: usize,
    in_message: bool,
}

impl Compressor {
    /// A compressor for our side of the agreed parameters.
    #[must_use]
    pub fn new(params: &DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        let no_context_takeover = params.compress_no_context_takeover(role);
        Self {
            state: None,
            level: Compression::new(config.level()),
            zlib_window_bits: params.compress_window_bits(role).zlib_bits(),
            no_context_takeover,
            threshold: config.effective_threshold(no_context_takeover),
            in_message: false,
        }
    }

    /// Messages shorter than this many bytes are best sent uncompressed
    /// ([`DeflateConfig::with_threshold`]).
    #[must_use]
    pub const fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether a message of `len` bytes should be compressed
    /// (`len >= threshold`).
    #[must_use]
    pub const fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Whether a message is in progress ([`compress_fragment`](Self::compress_fragment)
    /// was called without `fin`).
    #[must_use]
    pub const fn in_message(&self) -> bool {
        self.in_message
    }

    /// Whether the zlib state is currently allocated.
    #[must_use]
    pub const fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Frees the zlib state between messages; it is allocated again on the
    /// next compressed message. Returns whether anything was freed.
    ///
    /// Always correct between messages: the peer's decompressor decodes a
    /// message that does not refer to earlier ones whether or not context
    /// takeover was agreed. With no context takeover nothing is lost at all;
    /// with context takeover the next message compresses without history.
    /// Does nothing in the middle of a fragmented message.
    pub fn release(&mut self) -> bool {
        !self.in_message && self.state.take().is_some()
    }

    /// Compresses a whole message and appends its payload to `out`: the
    /// DEFLATE data, sync-flushed, without the final `00 00 ff ff`.
    ///
    /// Returns `Ok(true)` when `out` holds the compressed payload (send it
    /// with RSV1). Returns `Ok(false)` when the compressed form would not be
    /// smaller than `payload` — random or already-compressed data, or an
    /// empty message: `out` is left as it was, the compressor is reset so
    /// that no later message refers to data the peer will not have seen,
    /// and the caller sends the message uncompressed (RSV1 clear). With
    /// context takeover that reset costs some ratio on the next few
    /// messages; it never costs correctness.
    ///
    /// With no context takeover for our side, the context is reset after the
    /// message (§7.2.1: the next message must not refer to this one). Called
    /// while a fragmented message is in progress, it is the final fragment
    /// of that message and always returns `Ok(true)`.
    ///
    /// # Errors
    /// [`CompressError`] if zlib fails (not expected); `out` is then as it
    /// was before the call.
    pub fn compress(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<bool, CompressError> {
        let continues_message = self.in_message;
        let start = out.len();
        self.compress_fragment(payload, true, out)?;
        if continues_message || out.len() - start < payload.len() {
            return Ok(true);
        }
        out.truncate(start);
        // Without takeover the reset already happened at the end of the
        // message; with it, the window now holds data the peer will not see.
        if !self.no_context_takeover
            && let Some(state) = &mut self.state
        {
            state.reset();
        }
        Ok(false)
    }

    /// Compresses one fragment of a message sent in several frames and
    /// appends the payload of that frame to `out`.
    ///
    /// All fragments of a message are one DEFLATE stream; the frame
    /// boundaries are arbitrary cuts of it (RFC 7692 §7.2.1, example
    /// §7.2.3.1). Each fragment is sync-flushed so the peer can decode it
    /// when it arrives, and the flush marker `00 00 ff ff` stays in
    /// non-final fragments (it is an ordinary empty stored block). Only the
    /// final fragment has it removed. If the final fragment is empty right
    /// after a flushed fragment, its payload is the single octet `00` (the
    /// header of an empty stored block, §7.2.3.6).
    ///
    /// # Errors
    /// [`CompressError`] if zlib fails (not expected); `out` is then as it
    /// was before the call and the message is abandoned.
    pub fn compress_fragment(&mut self, data: &[u8], fin: bool, out: &mut BytesMut) -> Result<(), CompressError> {
        let start = out.len();
        let result = self.fragment(data, fin, out, start);
        if result.is_err() {
            out.truncate(start);
            self.state = None;
            self.in_message = false;
        }
        result
    }

    fn fragment(&mut self, data: &[u8], fin: bool, out: &mut BytesMut, start: usize) -> Result<(), CompressError> {
        let (level, bits) = (self.level, self.zlib_window_bits);
        // `bits` is 9..=15 by construction (WindowBits::zlib_bits), so flate2
        // does not panic.
        let state = self.state.get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        self.in_message = true;
        sync_flush(state, data, out)?;
        if !fin {
            return Ok(());
        }
        // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
        // tail end."
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        } else if out.len() == start {
            // zlib emits nothing for a second flush in a row with no input;
            // the stream is byte-aligned, so `00 00 00 ff ff` minus the tail
            // is what it would have produced.
            out.put_u8(0);
        } else {
            return Err(CompressError("sync flush did not end with 00 00 ff ff"));
        }
        self.in_message = false;
        if self.no_context_takeover {
            state.reset();
        }
        Ok(())
    }
}

/// Feeds `input` to zlib with a sync flush, appending everything it produces.
fn sync_flush(state: &mut Compress, mut input: &[u8], out: &mut BytesMut) -> Result<(), CompressError> {
    let mut room = input.len() / 2 + 64;
    loop {
        let start = out.len();
        out.resize(start + room, 0);
        let (in_before, out_before) = (state.total_in(), state.total_out());
        let status = state.compress(input, &mut out[start..], FlushCompress::Sync);
        let consumed = delta(state.total_in(), in_before);
        let produced = delta(state.total_out(), out_before);
        out.truncate(start + produced);
        input = input.get(consumed..).unwrap_or_default();
        status.map_err(|_| CompressError("zlib stream error"))?;
        // zlib: the flush is complete when it returns with output space left.
        if input.is_empty() && produced < room {
            return Ok(());
        }
        if consumed == 0 && produced == 0 {
            return Err(CompressError("zlib made no progress"));
        }
        room = room.saturating_mul(2);
    }
}

/// Bytes moved by one zlib call (bounded by the slice lengths we passed).
pub(super) fn delta(after: u64, before: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}
