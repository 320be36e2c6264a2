//! The outbound queue: encoded frames waiting for the transport.
//!
//! Two lanes: pongs and pings jump ahead of queued data (they are whole
//! frames, so they may go between the fragments of a message, RFC 6455 §5.4);
//! Close stays behind the data, so that everything accepted before it is sent.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::frame::{FrameHead, MAX_HEAD_LEN, extend_masked};

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
    data: Vec<u8>,
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
            Lane::Data => {
                self.data.reserve(head_len + payload.len());
                self.data.extend_from_slice(&bytes[..head_len]);
                match head.mask {
                    Some(key) => extend_masked(&mut self.data, &payload, key),
                    None => self.data.extend_from_slice(&payload),
                }
            }
        }
    }

    /// Queues bytes that already form complete frames (encoded once for many
    /// connections). Server role only: such frames are unmasked.
    pub(crate) fn push_encoded(&mut self, frames: &[u8]) {
        self.data.extend_from_slice(frames);
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

    /// Appends every queued frame to `out`; returns the number of bytes.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.reserve(self.queued());
        // Popping, not `drain`: cheaper for the usual one or two frames.
        while let Some(frame) = self.control.pop_front() {
            frame.write_to(out);
        }
        self.queued_control = 0;
        out.extend_from_slice(&self.data);
        self.data.clear();
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = Vec::new();
        }
        out.len() - start
    }

    /// Every queued frame as one buffer: the data lane's own when no control
    /// frame waits (no copy).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        if self.control.is_empty() {
            return std::mem::take(&mut self.data);
        }
        let mut out = Vec::new();
        self.drain_into(&mut out);
        out
    }

    /// Takes back a buffer [`take`](Self::take) gave out, once written, to
    /// encode the next frames into (if it is small and none are queued).
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.data.capacity() == 0 && buf.capacity() <= KEEP_CAPACITY {
            buf.clear();
            self.data = buf;
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued_control + self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Opcode;

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
        let out = outbox.take();
        assert_eq!(out, [&[0x8A, 1][..], b"p", &[0x81, 4], b"data"].concat());
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn a_written_buffer_comes_back_only_if_small() {
        let mut outbox = Outbox::default();
        push(&mut outbox, Lane::Data, Opcode::Binary, b"abc");
        let out = outbox.take();
        let address = out.as_ptr();
        assert_eq!(out, [0x82, 3, b'a', b'b', b'c']);
        outbox.recycle(out);
        push(&mut outbox, Lane::Data, Opcode::Binary, b"d");
        let again = outbox.take();
        assert_eq!(again.as_ptr(), address, "the same allocation, reused");
        assert_eq!(again, [0x82, 1, b'd']);

        let large = vec![0; KEEP_CAPACITY + 1];
        outbox.recycle(large);
        assert_eq!(outbox.data.capacity(), 0, "a large buffer is not kept");
    }
}
