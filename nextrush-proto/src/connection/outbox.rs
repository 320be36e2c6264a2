//! The outbound queue: encoded frames waiting for the transport.
//!
//! Two lanes: pongs and pings jump ahead of queued data (they are whole
//! frames, so they may go between the fragments of a message, RFC 6455 §5.4);
//! Close stays behind the data, so that everything accepted before it is sent.
//!
//! Data frames are encoded back to back into one buffer, except that a large
//! unmasked payload is not copied: the buffer keeps a reference to it, and
//! the transport writes it with a vectored write between the bytes around it.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

use crate::frame::{FrameHead, MAX_HEAD_LEN, extend_masked};

/// Payloads longer than this are queued by reference, not copied: a vectored
/// write costs about what copying a kilobyte does.
const BY_REFERENCE_ABOVE: usize = 1024;

/// Encoded frames for the peer, as [`Connection::take_transmit`] hands them
/// out: bytes, with large payloads held by reference in between. Write it
/// through its [`Buf`] implementation: [`Buf::chunk`] for plain writes,
/// [`Buf::chunks_vectored`] for vectored ones, then [`Buf::advance`] by what
/// the transport took.
///
/// [`Connection::take_transmit`]: super::Connection::take_transmit
#[derive(Debug, Default)]
pub struct Transmit {
    bytes: Vec<u8>,
    /// How much of `bytes` was written.
    pos: usize,
    /// In order; those before `first` are written. (A `Vec`, not a
    /// `VecDeque`: most transmits hold none, and an empty `Vec` costs
    /// nothing to make, move and drop.)
    payloads: Vec<Payload>,
    first: usize,
    /// Unwritten bytes in `payloads`.
    payload_bytes: usize,
}

/// A payload held by reference, due once `bytes[..at]` is written.
#[derive(Debug)]
struct Payload {
    at: usize,
    bytes: Bytes,
}

impl Transmit {
    /// Unwritten bytes.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len() - self.pos + self.payload_bytes
    }

    /// Whether everything was written.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_payload(&mut self, bytes: Bytes) {
        self.payload_bytes += bytes.len();
        self.payloads.push(Payload { at: self.bytes.len(), bytes });
    }

    /// Appends everything unwritten to `out`.
    fn copy_into(&self, out: &mut Vec<u8>) {
        let mut pos = self.pos;
        for payload in &self.payloads[self.first..] {
            out.extend_from_slice(&self.bytes[pos..payload.at]);
            out.extend_from_slice(&payload.bytes);
            pos = payload.at;
        }
        out.extend_from_slice(&self.bytes[pos..]);
    }

    /// Once everything is written: an idle connection should not hold a
    /// large buffer.
    #[inline]
    fn release_if_written_and_large(&mut self) {
        if self.pos == self.bytes.len() && self.bytes.capacity() > KEEP_CAPACITY && self.first == self.payloads.len() {
            *self = Self::default();
        }
    }

    /// Empties it, keeping its allocations.
    #[inline]
    fn clear(&mut self) {
        self.bytes.clear();
        self.pos = 0;
        if !self.payloads.is_empty() {
            self.payloads.clear();
            self.first = 0;
            self.payload_bytes = 0;
        }
    }
}

impl Buf for Transmit {
    #[inline]
    fn remaining(&self) -> usize {
        self.len()
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        match self.payloads.get(self.first) {
            Some(payload) if payload.at == self.pos => &payload.bytes,
            Some(payload) => &self.bytes[self.pos..payload.at],
            None => &self.bytes[self.pos..],
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        /// Puts `slice` in the next free place (if not empty); false once full.
        fn put<'a>(dst: &mut [IoSlice<'a>], filled: &mut usize, slice: &'a [u8]) -> bool {
            if !slice.is_empty() && *filled < dst.len() {
                dst[*filled] = IoSlice::new(slice);
                *filled += 1;
            }
            *filled < dst.len()
        }
        let mut filled = 0;
        let mut pos = self.pos;
        for payload in &self.payloads[self.first..] {
            if !put(dst, &mut filled, &self.bytes[pos..payload.at]) || !put(dst, &mut filled, &payload.bytes) {
                return filled;
            }
            pos = payload.at;
        }
        put(dst, &mut filled, &self.bytes[pos..]);
        filled
    }

    /// Advancing past the end stops at the end.
    #[inline]
    fn advance(&mut self, n: usize) {
        if self.first == self.payloads.len() {
            // Only bytes (the usual case).
            self.pos += n.min(self.bytes.len() - self.pos);
            self.release_if_written_and_large();
        } else {
            self.advance_through_payloads(n);
        }
    }
}

impl Transmit {
    fn advance_through_payloads(&mut self, mut n: usize) {
        while n > 0 {
            match self.payloads.get_mut(self.first) {
                Some(payload) if payload.at == self.pos => {
                    let taken = n.min(payload.bytes.len());
                    payload.bytes.advance(taken);
                    self.payload_bytes -= taken;
                    n -= taken;
                    if payload.bytes.is_empty() {
                        // Let go of it now: it may be large.
                        payload.bytes = Bytes::new();
                        self.first += 1;
                    }
                }
                Some(payload) => {
                    let taken = n.min(payload.at - self.pos);
                    self.pos += taken;
                    n -= taken;
                }
                None => {
                    self.pos += n.min(self.bytes.len() - self.pos);
                    break;
                }
            }
        }
        self.release_if_written_and_large();
    }
}

/// One encoded frame: the head bytes and the (unmasked) payload.
#[derive(Debug)]
struct OutFrame {
    head: [u8; MAX_HEAD_LEN],
    head_len: u8,
    mask: Option<[u8; 4]>,
    payload: Bytes,
}

impl OutFrame {
    fn wire_len(&self) -> usize {
        usize::from(self.head_len) + self.payload.len()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head[..usize::from(self.head_len)]);
        match self.mask {
            Some(key) => extend_masked(out, &self.payload, key),
            None => out.extend_from_slice(&self.payload),
        }
    }
}

/// Which lane a frame goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Ahead of data: ping and pong.
    Control,
    /// In order: data frames and Close.
    Data,
}

/// A written buffer larger than this is not kept for the next frames: a
/// connection that once sent a large message should not hold that much
/// while it idles.
const KEEP_CAPACITY: usize = 4096;

/// Frames waiting to be written: control frames one by one (a pong may be
/// dropped for a newer one), data frames and Close encoded back to back.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    control: VecDeque<OutFrame>,
    queued_control: usize,
    /// Never partly written: `take_into` hands it out whole.
    data: Transmit,
}

impl Outbox {
    /// Queues a frame with `head` (whose `len` must equal the payload length).
    pub(crate) fn push(&mut self, lane: Lane, head: FrameHead, payload: Bytes) {
        debug_assert_eq!(head.len, payload.len() as u64);
        let mut bytes = [0; MAX_HEAD_LEN];
        let head_len = head.encode(&mut bytes);
        match lane {
            Lane::Control => {
                // MAX_HEAD_LEN is 14, so the head length always fits a u8.
                let frame = OutFrame { head: bytes, head_len: head_len as u8, mask: head.mask, payload };
                self.queued_control += frame.wire_len();
                self.control.push_back(frame);
            }
            // Masking writes a copy anyway.
            Lane::Data if head.mask.is_none() && payload.len() > BY_REFERENCE_ABOVE => {
                self.data.bytes.extend_from_slice(&bytes[..head_len]);
                self.data.push_payload(payload);
            }
            Lane::Data => {
                let out = &mut self.data.bytes;
                out.reserve(head_len + payload.len());
                out.extend_from_slice(&bytes[..head_len]);
                match head.mask {
                    Some(key) => extend_masked(out, &payload, key),
                    None => out.extend_from_slice(&payload),
                }
            }
        }
    }

    /// Queues bytes that already form complete frames (encoded once for many
    /// connections). Server role only: such frames are unmasked.
    pub(crate) fn push_encoded(&mut self, frames: &[u8]) {
        self.data.bytes.extend_from_slice(frames);
    }

    /// Drops every queued pong that has not been written yet (RFC 6455
    /// §5.5.3: an endpoint MAY answer only the most recent ping).
    pub(crate) fn drop_queued_pongs(&mut self) {
        let pong = 0x80 | crate::frame::Opcode::Pong.bits();
        let mut removed = 0;
        self.control.retain(|f| {
            let keep = f.head[0] != pong;
            if !keep {
                removed += f.wire_len();
            }
            keep
        });
        self.queued_control -= removed;
    }

    /// Bytes queued in the control lane.
    pub(crate) fn queued_control(&self) -> usize {
        self.queued_control
    }

    /// Appends the control lane's frames to `out`, emptying it.
    fn encode_control(&mut self, out: &mut Vec<u8>) {
        // Popping, not `drain`: cheaper for the usual one or two frames.
        while let Some(frame) = self.control.pop_front() {
            frame.write_to(out);
        }
        self.queued_control = 0;
    }

    /// Appends every queued frame to `out`; returns the number of bytes.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.reserve(self.queued());
        self.encode_control(out);
        self.data.copy_into(out);
        self.data.clear();
        if self.data.bytes.capacity() > KEEP_CAPACITY {
            self.data = Transmit::default();
        }
        out.len() - start
    }

    /// Moves every queued frame into `out`, which the caller has written
    /// out: the data lane as it is when no control frame waits (no copy),
    /// and `out`'s buffer, if small, stays here for the next frames. Two
    /// buffers take turns, and nothing is allocated, made or dropped per
    /// message.
    #[inline]
    pub(crate) fn take_into(&mut self, out: &mut Transmit) {
        debug_assert!(out.is_empty(), "a transmit was replaced before it was written");
        out.clear();
        if out.bytes.capacity() > KEEP_CAPACITY {
            // An idle connection should not hold a large buffer.
            *out = Transmit::default();
        }
        std::mem::swap(&mut self.data, out);
        if self.control.is_empty() {
            return;
        }
        // Control frames go first: encode them, then the data after them.
        let data = std::mem::take(out);
        out.bytes.reserve(self.queued_control + data.bytes.len());
        self.encode_control(&mut out.bytes);
        let shift = out.bytes.len();
        out.bytes.extend_from_slice(&data.bytes);
        out.payloads = data.payloads;
        for payload in &mut out.payloads {
            payload.at += shift;
        }
        out.first = data.first;
        out.payload_bytes = data.payload_bytes;
    }

    /// Bytes waiting to be written.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        self.queued_control + self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Opcode;

    /// What a transmit holds, read the way a transport writes it.
    fn contents(transmit: &Transmit) -> Vec<u8> {
        let mut out = Vec::new();
        transmit.copy_into(&mut out);
        out
    }

    fn push(outbox: &mut Outbox, lane: Lane, opcode: Opcode, payload: &'static [u8]) {
        let head = FrameHead { fin: true, rsv: 0, opcode, mask: None, len: payload.len() as u64 };
        outbox.push(lane, head, Bytes::from_static(payload));
    }

    #[test]
    fn control_frames_go_ahead_of_queued_data() {
        let mut outbox = Outbox::default();
        push(&mut outbox, Lane::Data, Opcode::Text, b"data");
        push(&mut outbox, Lane::Control, Opcode::Pong, b"p");
        assert_eq!(outbox.queued(), 6 + 3);
        let mut out = Transmit::default();
        outbox.take_into(&mut out);
        assert_eq!(contents(&out), [&[0x8A, 1][..], b"p", &[0x81, 4], b"data"].concat());
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn two_buffers_take_turns_and_a_large_one_is_let_go() {
        let mut outbox = Outbox::default();
        let mut out = Transmit::default();
        push(&mut outbox, Lane::Data, Opcode::Binary, b"abc");
        outbox.take_into(&mut out);
        let first = out.bytes.as_ptr();
        assert_eq!(contents(&out), [0x82, 3, b'a', b'b', b'c']);
        out.advance(5);

        push(&mut outbox, Lane::Data, Opcode::Binary, b"d");
        outbox.take_into(&mut out);
        let second = out.bytes.as_ptr();
        assert_eq!(contents(&out), [0x82, 1, b'd']);
        out.advance(3);
        push(&mut outbox, Lane::Data, Opcode::Binary, b"e");
        assert_eq!(outbox.data.bytes.as_ptr(), first, "the first buffer, written, is reused");
        outbox.take_into(&mut out);
        assert_eq!(contents(&out), [0x82, 1, b'e']);
        out.advance(3);
        push(&mut outbox, Lane::Data, Opcode::Binary, b"f");
        assert_eq!(outbox.data.bytes.as_ptr(), second);

        let mut large = Transmit { bytes: vec![0; KEEP_CAPACITY + 1], ..Transmit::default() };
        large.advance(KEEP_CAPACITY + 1);
        assert_eq!(large.bytes.capacity(), 0, "a large buffer is let go once written");
    }

    #[test]
    fn a_large_payload_goes_by_reference_between_the_bytes_around_it() {
        let mut outbox = Outbox::default();
        let large = Bytes::from(vec![7; BY_REFERENCE_ABOVE + 1]);
        let head = FrameHead { fin: true, rsv: 0, opcode: Opcode::Binary, mask: None, len: large.len() as u64 };
        outbox.push(Lane::Data, head, large.clone());
        push(&mut outbox, Lane::Data, Opcode::Text, b"after");
        push(&mut outbox, Lane::Control, Opcode::Ping, b"");
        assert_eq!(outbox.queued(), 2 + 4 + large.len() + 2 + 5);

        let mut out = Transmit::default();
        outbox.take_into(&mut out);
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut slices), 3);
        assert_eq!(&*slices[0], [0x89, 0, 0x82, 126, 0x04, 0x01]);
        assert_eq!(slices[1].as_ptr(), large.as_ptr(), "the payload itself, not a copy");
        assert_eq!(&*slices[2], [&[0x81, 5][..], b"after"].concat());

        // Written partly into the payload: the rest of it comes next.
        out.advance(6 + 100);
        assert_eq!(out.chunk().as_ptr(), large[100..].as_ptr());
        assert_eq!(out.len(), large.len() - 100 + 7);
        out.advance(large.len() - 100);
        assert_eq!(out.chunk(), [&[0x81, 5][..], b"after"].concat());
        out.advance(usize::MAX);
        assert!(out.is_empty(), "advancing past the end stops there");
    }
}
