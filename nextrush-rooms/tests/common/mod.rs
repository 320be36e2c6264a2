//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use bytes::Bytes;
use nextrush_proto::frame::FrameHead;
use nextrush_rooms::{Encoding, Outbound, QueueMember, Rooms, RoomsEvent};

pub type Hub = Rooms<QueueMember>;

/// A plain member with `budget` bytes of queue.
pub fn member(budget: usize) -> Arc<QueueMember> {
    Arc::new(QueueMember::new(budget, Encoding::Plain))
}

/// Registers a fresh plain member with a large queue.
pub fn join_new(rooms: &Hub) -> (nextrush_rooms::ConnId, Arc<QueueMember>) {
    let m = member(1 << 20);
    (rooms.register(Arc::clone(&m)), m)
}

/// The payload of one unmasked, final, uncompressed frame.
pub fn frame_payload(frame: &Bytes) -> Bytes {
    let (head, n) = FrameHead::decode(frame).expect("valid head").expect("complete head");
    assert!(head.fin && head.mask.is_none(), "server frames are final and unmasked");
    assert_eq!(head.len as usize, frame.len() - n, "one frame per item");
    frame.slice(n..)
}

/// Payloads of everything queued for `member`, oldest first (draining it).
pub fn drain(member: &QueueMember) -> Vec<Bytes> {
    member
        .queue()
        .pop_all()
        .map(|item| match item {
            Outbound::Frame(frame) => frame_payload(&frame),
            Outbound::Message(message) => message.into_payload(),
        })
        .collect()
}

/// Payloads as strings.
pub fn texts(member: &QueueMember) -> Vec<String> {
    drain(member).iter().map(|b| String::from_utf8(b.to_vec()).expect("utf-8")).collect()
}

/// Every queued event.
pub fn events(rooms: &Hub) -> Vec<RoomsEvent> {
    std::iter::from_fn(|| rooms.poll_event()).collect()
}
