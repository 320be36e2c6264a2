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

/// Frames waiting to be written, with their total size on the wire.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    control: VecDeque<OutFrame>,
    data: VecDeque<OutFrame>,
    queued: usize,
    queued_control: usize,
}

impl Outbox {
    /// Queues a frame with `head` (whose `len` must equal the payload length).
    pub(crate) fn push(&mut self, lane: Lane, head: FrameHead, payload: Bytes) {
        debug_assert_eq!(head.len, payload.len() as u64);
        let mut bytes = [0; MAX_HEAD_LEN];
        let head_len = head.encode(&mut bytes);
        // MAX_HEAD_LEN is 14, so the head length always fits a u8.
        let frame = OutFrame { head: bytes, head_len: head_len as u8, mask: head.mask, payload };
        self.queued += frame.wire_len();
        match lane {
            Lane::Control => {
                self.queued_control += frame.wire_len();
                self.control.push_back(frame);
            }
            Lane::Data => self.data.push_back(frame),
        }
    }

    /// Queues bytes that already form complete frames (encoded once for many
    /// connections). Server role only: such frames are unmasked.
    pub(crate) fn push_encoded(&mut self, frames: Bytes) {
        self.queued += frames.len();
        self.data.push_back(OutFrame { head: [0; MAX_HEAD_LEN], head_len: 0, mask: None, payload: frames });
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
        self.queued -= removed;
        self.queued_control -= removed;
    }

    /// Bytes queued in the control lane.
    pub(crate) fn queued_control(&self) -> usize {
        self.queued_control
    }

    /// Appends every queued frame to `out`; returns the number of bytes.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.reserve(self.queued);
        // Popping, not `drain`: cheaper for the usual one or two frames.
        while let Some(frame) = self.control.pop_front() {
            frame.write_to(out);
        }
        while let Some(frame) = self.data.pop_front() {
            frame.write_to(out);
        }
        self.queued = 0;
        self.queued_control = 0;
        out.len() - start
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }
}
