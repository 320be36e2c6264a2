//! Helpers shared by the connection tests: raw frame building and draining.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Instant;

use nextrush_proto::frame::{FrameHead, MAX_HEAD_LEN, Opcode, apply_mask};
use nextrush_proto::{CloseReason, Config, Connection, Event, SeededEntropy};

/// Encodes one frame as a peer would, masked with `mask` if given.
pub fn frame(fin: bool, rsv: u8, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let head = FrameHead { fin, rsv, opcode, mask, len: payload.len() as u64 };
    let mut buf = [0; MAX_HEAD_LEN];
    let n = head.encode(&mut buf);
    let mut out = buf[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A masked frame as a client sends it.
pub fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

pub fn server(config: Config) -> (Connection, Instant) {
    let now = Instant::now();
    (Connection::server(config, now).unwrap(), now)
}

pub fn client(config: Config) -> (Connection, Instant) {
    let now = Instant::now();
    (Connection::client(config, now, Box::new(SeededEntropy::new(7))).unwrap(), now)
}

pub fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

pub fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    out
}

/// Decodes unmasked server output into (opcode, payload) pairs.
pub fn decode_all(mut bytes: &[u8]) -> Vec<(Opcode, bool, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (head, n) = FrameHead::decode(bytes).unwrap().unwrap();
        let len = head.len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = head.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((head.opcode, head.fin, payload));
        bytes = &bytes[n + len..];
    }
    frames
}

/// The close code in the single Close frame the connection sent, if any.
pub fn sent_close_code(bytes: &[u8]) -> Option<u16> {
    decode_all(bytes)
        .into_iter()
        .find(|(op, _, _)| *op == Opcode::Close)
        .map(|(_, _, p)| if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 1005 })
}

/// Feeds `input` to a fresh server and returns the close code it failed with.
pub fn server_fails_with(input: &[u8]) -> (u16, CloseReason) {
    let (mut conn, now) = server(Config::default());
    conn.receive(now, input);
    let out = transmit(&mut conn);
    let reason = events(&mut conn)
        .into_iter()
        .find_map(|e| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
        .expect("connection closed");
    (sent_close_code(&out).expect("close frame sent"), reason)
}
