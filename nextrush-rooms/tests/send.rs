//! Sending: broadcasts, targeted sends, slow consumers, shared encodings.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use common::{Hub, drain, events, join_new, member, texts};
use nextrush_proto::deflate::{DeflateConfig, DeflateParams};
use nextrush_proto::{Config, Connection, Event, Message, SeededEntropy};
use nextrush_rooms::{
    Delivery, EncodedMessage, Encoding, LeaveReason, Member, Outbound, QueueMember, RoomOptions, Rooms, RoomsConfig,
    RoomsEvent, SlowConsumer,
};

#[test]
fn broadcast_shares_one_frame_and_skips_the_sender() {
    let rooms: Hub = Rooms::default();
    let members: Vec<_> = (0..4).map(|_| join_new(&rooms)).collect();
    for (id, _) in &members {
        rooms.join("r", *id).unwrap();
    }
    let sender = members[0].0;
    let sent = rooms.to("r").except(sender).send("hello");
    assert_eq!((sent.recipients, sent.queued), (3, 3));
    assert!(members[0].1.queue().is_empty());
    let frames: Vec<Bytes> = members[1..]
        .iter()
        .map(|(_, m)| match m.queue().pop() {
            Some(Outbound::Frame(frame)) => frame,
            other => panic!("expected a frame, got {other:?}"),
        })
        .collect();
    assert_eq!(&frames[0][..], b"\x81\x05hello");
    assert!(frames.iter().all(|f| f.as_ptr() == frames[0].as_ptr()), "one buffer, shared");
    let stats = rooms.stats();
    assert_eq!((stats.broadcasts, stats.deliveries), (1, 3));
}

#[test]
fn multi_target_sends_reach_each_member_once() {
    let rooms: Hub = Rooms::default();
    let (a, ma) = join_new(&rooms);
    let (b, mb) = join_new(&rooms);
    let (c, mc) = join_new(&rooms);
    rooms.join("r1", a).unwrap();
    rooms.join("r2", a).unwrap();
    rooms.join("r2", b).unwrap();
    rooms.subscribe("ch", a).unwrap();
    rooms.subscribe("ch", c).unwrap();
    let sent = rooms.to("r1").to("r2").channel("ch").to("r2").to("missing").send("once");
    assert_eq!(sent.recipients, 3);
    assert_eq!((texts(&ma), texts(&mb), texts(&mc)), (vec!["once".into()], vec!["once".into()], vec!["once".into()]));
    // Both rooms record it.
    let with_history: Hub = Rooms::new(RoomsConfig::new().with_history_len(4));
    let (d, _) = join_new(&with_history);
    with_history.join("x", d).unwrap();
    with_history.join("y", d).unwrap();
    with_history.to("x").to(String::from("y")).send("both");
    assert_eq!((with_history.history("x").len(), with_history.history("y").len()), (1, 1));
}

#[test]
fn send_to_one_member() {
    let rooms: Hub = Rooms::default();
    let (a, ma) = join_new(&rooms);
    let (_, mb) = join_new(&rooms);
    assert_eq!(rooms.send_to(a, "direct", None), Ok(Delivery::Queued));
    assert_eq!(texts(&ma), ["direct"]);
    assert!(texts(&mb).is_empty());
    assert_eq!(rooms.stats().deliveries, 1);
}

#[test]
fn slow_consumer_policies_per_room_and_per_send() {
    let rooms: Hub = Rooms::default();
    let slow = member(14); // two 7-byte frames ("\x81\x05" + 5 bytes)
    let s = rooms.register(Arc::clone(&slow));
    let (f, fast) = join_new(&rooms);
    for id in [s, f] {
        rooms.join("r", id).unwrap();
    }
    rooms.set_room_options("r", RoomOptions::new().with_policy(SlowConsumer::DropOldest));
    for text in ["msg-1", "msg-2", "msg-3", "msg-4"] {
        rooms.broadcast("r", text);
    }
    assert_eq!(texts(&slow), ["msg-3", "msg-4"], "drop-oldest keeps the latest");
    assert_eq!(texts(&fast).len(), 4, "the fast member is not affected");
    assert_eq!(rooms.stats().dropped_oldest, 2);
    for text in ["msg-5", "msg-6"] {
        rooms.broadcast("r", text);
    }
    let sent = rooms.to("r").policy(SlowConsumer::DropNewest).send("msg-7");
    assert_eq!((sent.queued, sent.dropped_newest), (1, 1));
    assert_eq!(texts(&slow), ["msg-5", "msg-6"]);
    assert_eq!(rooms.stats().dropped_newest, 1);
}

#[test]
fn disconnect_policy_removes_the_member() {
    let rooms: Hub = Rooms::new(RoomsConfig::new().with_default_policy(SlowConsumer::Disconnect));
    let woken = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&woken);
    let slow = Arc::new(QueueMember::new(7, Encoding::Plain).with_notify(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let s = rooms.register(Arc::clone(&slow));
    let (f, _) = join_new(&rooms);
    rooms.join("r", s).unwrap();
    rooms.join("r", f).unwrap();
    rooms.subscribe("c", s).unwrap();
    events(&rooms);
    rooms.broadcast("r", "msg-1");
    let sent = rooms.broadcast("r", "msg-2");
    assert_eq!((sent.queued, sent.disconnected), (1, 1));
    assert!(slow.queue().is_disconnected() && slow.queue().is_empty());
    assert_eq!(woken.load(Ordering::Relaxed), 2, "once when it got work, once when it must close");
    assert!(!rooms.is_registered(s), "a slow consumer is unregistered");
    assert_eq!(rooms.member_count("r"), 1);
    assert_eq!(rooms.subscriber_count("c"), 0);
    assert_eq!(
        events(&rooms),
        [RoomsEvent::Leave { room: "r".into(), member: s, count: 1, reason: LeaveReason::SlowConsumer }]
    );
    assert_eq!(rooms.stats().disconnects, 1);
    assert_eq!(SlowConsumer::CLOSE_CODE.0, 1008);
}

#[test]
fn gone_members_are_removed() {
    let rooms: Hub = Rooms::default();
    let (a, ma) = join_new(&rooms);
    rooms.join("r", a).unwrap();
    events(&rooms);
    ma.queue().disconnect(); // the driver saw the connection close
    let sent = rooms.broadcast("r", "late");
    assert_eq!(sent.gone, 1);
    assert!(!rooms.is_registered(a));
    assert_eq!(rooms.room_count(), 0);
    assert!(matches!(events(&rooms)[..], [RoomsEvent::Leave { reason: LeaveReason::Gone, count: 0, .. }]));
    assert_eq!(rooms.stats().gone, 1);
}

/// Decodes `frame` as a client with `params` would.
fn client_reads(params: &DeflateParams, frame: &Bytes) -> Message {
    let now = Instant::now();
    let mut client = Connection::client(Config::default(), now, Box::new(SeededEntropy::new(1))).unwrap();
    client.enable_deflate(params, &DeflateConfig::default());
    client.receive(now, frame);
    match client.poll_event() {
        Some(Event::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn shared_compression_once_per_key_and_fallback_counted() {
    let rooms: Hub = Rooms::default();
    let config = DeflateConfig::new().with_server_no_context_takeover(true);
    let shared = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
    let shared12 = DeflateParams { server_max_window_bits: nextrush_proto::deflate::WindowBits::new(12), ..shared };
    let takeover = DeflateParams::default();
    let mk =
        |params: Option<&DeflateParams>| Arc::new(QueueMember::new(1 << 20, Encoding::negotiated(params, &config)));
    let members: Vec<(DeflateParams, Arc<QueueMember>)> = [shared, shared, shared, shared12, takeover]
        .iter()
        .map(|p| (*p, mk(Some(p))))
        .chain([(DeflateParams::default(), mk(None))])
        .collect();
    assert_eq!(members[4].1.encoding(), Encoding::PerConnection);
    assert_eq!(members[5].1.encoding(), Encoding::Plain);
    for (_, m) in &members {
        let id = rooms.register(Arc::clone(m));
        rooms.join("r", id).unwrap();
    }
    let text = "{\"type\":\"chat\",\"text\":\"hello hello hello hello\"} ".repeat(8);
    rooms.broadcast("r", text.clone());
    let stats = rooms.stats();
    assert_eq!(stats.shared_compressions, 2, "one per parameter set, not per member");
    assert_eq!(stats.per_connection_encodings, 1, "the context-takeover member compresses itself");
    let frames: Vec<Outbound> = members.iter().map(|(_, m)| m.queue().pop().unwrap()).collect();
    let Outbound::Frame(first) = &frames[0] else { panic!("shared frame expected") };
    assert_eq!(first[0], 0xC1, "FIN + RSV1 + text");
    assert!(first.len() < text.len() / 2);
    for (i, ((params, _), out)) in members.iter().zip(&frames).enumerate() {
        match out {
            Outbound::Frame(frame) => assert_eq!(client_reads(params, frame), Message::text(text.clone()), "#{i}"),
            Outbound::Message(message) => {
                assert_eq!(i, 4);
                assert_eq!(*message, Message::text(text.clone()));
            }
        }
    }
    let Outbound::Frame(second) = &frames[1] else { unreachable!() };
    assert_eq!(first.as_ptr(), second.as_ptr(), "members with one key share the bytes");
}

#[test]
fn short_or_incompressible_messages_go_plain() {
    let config = DeflateConfig::new();
    let params = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
    let Encoding::Shared(key) = Encoding::negotiated(Some(&params), &config) else { panic!("shared expected") };
    let short = EncodedMessage::from("short");
    assert_eq!(short.compressed(&key), *short.plain_frame());
    let mut noise = vec![0u8; 4096];
    nextrush_proto::Entropy::fill(&mut SeededEntropy::new(7), &mut noise);
    let noisy = EncodedMessage::from(noise);
    assert_eq!(noisy.compressed(&key)[0] & 0x40, 0, "RSV1 clear when compression does not help");
}

#[test]
fn history_replays_compressed_frames_without_recompressing() {
    let rooms: Hub = Rooms::new(RoomsConfig::new().with_history_len(3));
    let params = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
    let encoding = Encoding::negotiated(Some(&params), &DeflateConfig::new());
    let first = Arc::new(QueueMember::new(1 << 20, encoding));
    let a = rooms.register(first);
    rooms.join("r", a).unwrap();
    rooms.broadcast("r", "x".repeat(500));
    let late = Arc::new(QueueMember::new(1 << 20, encoding));
    let b = rooms.register(Arc::clone(&late));
    rooms.join("r", b).unwrap();
    assert_eq!(rooms.stats().shared_compressions, 1);
    assert_eq!(drain(&late).len(), 1);
}

/// A member that records its own deliveries, as a driver's would.
struct Recorder(std::sync::Mutex<Vec<Outbound>>);

impl Member for Recorder {
    fn deliver(&self, message: Outbound, _: SlowConsumer) -> Delivery {
        self.0.lock().unwrap().push(message);
        Delivery::Queued
    }
}

#[test]
fn custom_members_work() {
    let rooms: Rooms<Recorder> = Rooms::default();
    let r = Arc::new(Recorder(std::sync::Mutex::new(Vec::new())));
    let id = rooms.register(Arc::clone(&r));
    rooms.subscribe("t", id).unwrap();
    rooms.publish("t", Message::binary(Bytes::from_static(&[1, 2, 3])));
    assert_eq!(*r.0.lock().unwrap(), [Outbound::Frame(Bytes::from_static(&[0x82, 3, 1, 2, 3]))]);
}
