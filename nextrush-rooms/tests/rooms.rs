//! One test per hub operation: membership, limits, events, presence,
//! history, cleanup.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Hub, events, join_new, member, texts};
use nextrush_rooms::{ConnId, LeaveReason, RoomOptions, Rooms, RoomsConfig, RoomsError, RoomsEvent};

fn hub() -> Hub {
    Rooms::default()
}

#[test]
fn register_and_unregister() {
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    let (b, _) = join_new(&rooms);
    assert_ne!(a, b);
    assert!(rooms.is_registered(a));
    assert_eq!(rooms.stats().members, 2);
    assert!(rooms.unregister(a));
    assert!(!rooms.unregister(a), "twice is a no-op");
    assert!(!rooms.is_registered(a) && rooms.member(a).is_none());
    assert_eq!(rooms.join("x", a), Err(RoomsError::UnknownMember(a)));
    assert_eq!(rooms.subscribe("x", a), Err(RoomsError::UnknownMember(a)));
    assert_eq!(rooms.send_to(a, "hi", None), Err(RoomsError::UnknownMember(a)));
    assert_eq!(rooms.join("x", ConnId::from_raw(999)), Err(RoomsError::UnknownMember(ConnId::from_raw(999))));
}

#[test]
fn join_and_leave_with_counts_and_events() {
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    let (b, _) = join_new(&rooms);
    assert_eq!(rooms.join("lobby", a), Ok(true));
    assert_eq!(rooms.join("lobby", a), Ok(false), "already in");
    assert_eq!(rooms.join("lobby", b), Ok(true));
    assert_eq!(rooms.member_count("lobby"), 2);
    let mut members = rooms.members("lobby");
    members.sort();
    assert_eq!(members, [a, b]);
    assert_eq!(rooms.rooms_of(a), [Arc::from("lobby")]);
    assert!(rooms.leave("lobby", a));
    assert!(!rooms.leave("lobby", a), "not in any more");
    assert!(!rooms.leave("nowhere", b));
    let lobby: Arc<str> = Arc::from("lobby");
    assert_eq!(
        events(&rooms),
        [
            RoomsEvent::Join { room: lobby.clone(), member: a, count: 1 },
            RoomsEvent::Join { room: lobby.clone(), member: b, count: 2 },
            RoomsEvent::Leave { room: lobby, member: a, count: 1, reason: LeaveReason::Left },
        ]
    );
    assert_eq!(events(&rooms)[..], [], "drained");
    assert_eq!(RoomsEvent::Join { room: "r".into(), member: a, count: 1 }.name(), "room:join");
}

#[test]
fn empty_rooms_vanish_at_once() {
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    let (b, _) = join_new(&rooms);
    rooms.join("r1", a).unwrap();
    rooms.join("r2", a).unwrap();
    rooms.join("r2", b).unwrap();
    let mut list = rooms.rooms();
    list.sort();
    assert_eq!(list, [(Arc::from("r1"), 1), (Arc::from("r2"), 2)]);
    rooms.leave("r1", a);
    assert_eq!(rooms.rooms(), [(Arc::from("r2"), 2)]);
    assert_eq!(rooms.room_count(), 1);
    rooms.leave("r2", a);
    rooms.leave("r2", b);
    assert_eq!((rooms.room_count(), rooms.rooms().len(), rooms.member_count("r2")), (0, 0, 0));
    let stats = rooms.stats();
    assert_eq!((stats.rooms, stats.memberships), (0, 0));
    // The room can be created again.
    assert_eq!(rooms.join("r2", b), Ok(true));
    assert_eq!(rooms.room_count(), 1);
}

#[test]
fn unregister_leaves_everything() {
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    let (b, _) = join_new(&rooms);
    rooms.join("r1", a).unwrap();
    rooms.join("r2", a).unwrap();
    rooms.join("r2", b).unwrap();
    rooms.subscribe("news", a).unwrap();
    events(&rooms);
    assert!(rooms.unregister(a));
    assert_eq!(rooms.rooms(), [(Arc::from("r2"), 1)]);
    assert_eq!(rooms.channels(), []);
    let mut leaves: Vec<_> = events(&rooms)
        .into_iter()
        .map(|e| match e {
            RoomsEvent::Leave { room, member, count, reason } => (room, member, count, reason),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    leaves.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        leaves,
        [(Arc::from("r1"), a, 0, LeaveReason::Unregistered), (Arc::from("r2"), a, 1, LeaveReason::Unregistered)]
    );
}

#[test]
fn limits() {
    let config = RoomsConfig::new().with_max_rooms(2).with_max_channels(1).with_max_members(2).with_max_name_len(8);
    let rooms: Hub = Rooms::new(config);
    let ids: Vec<_> = (0..3).map(|_| join_new(&rooms).0).collect();
    rooms.join("a", ids[0]).unwrap();
    rooms.join("b", ids[0]).unwrap();
    assert_eq!(rooms.join("c", ids[0]), Err(RoomsError::TooManyRooms { max: 2 }));
    rooms.join("a", ids[1]).unwrap();
    assert_eq!(rooms.join("a", ids[2]), Err(RoomsError::Full { name: "a".into(), max: 2 }));
    assert_eq!(rooms.join("", ids[0]), Err(RoomsError::InvalidName("empty")));
    assert_eq!(rooms.join("123456789", ids[0]), Err(RoomsError::InvalidName("too long")));
    rooms.subscribe("t", ids[0]).unwrap();
    assert_eq!(rooms.subscribe("u", ids[0]), Err(RoomsError::TooManyChannels { max: 1 }));
    // Freeing a room makes room for another.
    rooms.leave("b", ids[0]);
    assert_eq!(rooms.join("c", ids[2]), Ok(true));
    assert!(rooms.rooms_of(ids[2]) == [Arc::from("c")]);
}

#[test]
fn channels_subscribe_publish_unsubscribe() {
    let rooms = hub();
    let (a, ma) = join_new(&rooms);
    let (b, mb) = join_new(&rooms);
    assert_eq!(rooms.subscribe("news", a), Ok(true));
    assert_eq!(rooms.subscribe("news", a), Ok(false));
    rooms.subscribe("news", b).unwrap();
    assert_eq!(rooms.subscriber_count("news"), 2);
    assert_eq!(rooms.channels_of(b), [Arc::from("news")]);
    let sent = rooms.publish("news", "one");
    assert_eq!((sent.recipients, sent.queued), (2, 2));
    assert!(rooms.unsubscribe("news", a));
    assert!(!rooms.unsubscribe("news", a));
    // From another thread, outside any connection.
    std::thread::scope(|s| {
        s.spawn(|| rooms.publish("news", "two"));
    });
    assert_eq!(texts(&ma), ["one"]);
    assert_eq!(texts(&mb), ["one", "two"]);
    // Channels have no room events and are not rooms.
    assert!(events(&rooms).is_empty());
    assert_eq!(rooms.room_count(), 0);
    rooms.unsubscribe("news", b);
    assert_eq!(rooms.channels(), []);
    assert_eq!(rooms.publish("news", "nobody").recipients, 0);
}

#[test]
fn rooms_and_channels_are_separate_namespaces() {
    let rooms = hub();
    let (a, ma) = join_new(&rooms);
    let (b, mb) = join_new(&rooms);
    rooms.join("x", a).unwrap();
    rooms.subscribe("x", b).unwrap();
    rooms.broadcast("x", "room");
    rooms.publish("x", "channel");
    assert_eq!(texts(&ma), ["room"]);
    assert_eq!(texts(&mb), ["channel"]);
}

#[test]
fn presence() {
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    let (b, _) = join_new(&rooms);
    rooms.join_with("room", a, Bytes::from_static(b"{\"name\":\"alice\"}")).unwrap();
    rooms.join("room", b).unwrap();
    assert_eq!(rooms.presence("room"), [(a, Bytes::from_static(b"{\"name\":\"alice\"}"))]);
    rooms.set_presence("room", b, Some(Bytes::from_static(b"bob"))).unwrap();
    assert_eq!(rooms.presence_of("room", b), Some(Bytes::from_static(b"bob")));
    rooms.set_presence("room", a, None).unwrap();
    assert_eq!(rooms.presence_of("room", a), None);
    // join_with on a member already in updates the presence.
    assert_eq!(rooms.join_with("room", a, Bytes::from_static(b"again")), Ok(false));
    assert_eq!(rooms.presence_of("room", a), Some(Bytes::from_static(b"again")));
    assert_eq!(rooms.set_presence("other", a, None), Err(RoomsError::NotInRoom { room: "other".into(), member: a }));
    let names: Vec<_> = events(&rooms).iter().map(RoomsEvent::name).collect();
    assert_eq!(names, ["room:join", "room:join", "room:presence", "room:presence", "room:presence"]);
    // Presence goes with the membership.
    rooms.leave("room", a);
    rooms.join("room", a).unwrap();
    assert_eq!(rooms.presence_of("room", a), None);
}

#[test]
fn history_is_replayed_on_join() {
    let rooms: Hub = Rooms::new(RoomsConfig::new().with_history_len(2));
    let (a, _) = join_new(&rooms);
    rooms.join("chat", a).unwrap();
    for text in ["1", "2", "3"] {
        rooms.broadcast("chat", text);
    }
    assert_eq!(rooms.history("chat").len(), 2);
    let (b, mb) = join_new(&rooms);
    rooms.join("chat", b).unwrap();
    rooms.broadcast("chat", "4");
    assert_eq!(texts(&mb), ["2", "3", "4"]);
    assert_eq!(rooms.stats().replayed, 2);
    // Per-room options override the default, and outlive the room.
    rooms.set_room_options("chat", RoomOptions::new().with_history_len(1));
    assert_eq!(rooms.history("chat").len(), 1);
    assert_eq!(rooms.room_options("chat"), Some(RoomOptions::new().with_history_len(1)));
}

#[test]
fn history_survives_an_empty_room_until_cleanup() {
    let config = RoomsConfig::new().with_history_len(5).with_idle_timeout(Duration::from_secs(60));
    let rooms: Hub = Rooms::new(config);
    let (a, _) = join_new(&rooms);
    rooms.join("chat", a).unwrap();
    rooms.broadcast("chat", "kept");
    rooms.leave("chat", a);
    assert_eq!(rooms.room_count(), 0, "the room is gone");
    assert_eq!(rooms.history("chat").len(), 1, "its history is kept");
    let (b, mb) = join_new(&rooms);
    rooms.join("chat", b).unwrap();
    assert_eq!(texts(&mb), ["kept"]);
    rooms.leave("chat", b);

    let t0 = Instant::now();
    let first = rooms.cleanup(t0);
    assert_eq!((first.dormant_dropped, first.dormant_kept), (0, 1), "first sweep only notices");
    assert_eq!(rooms.cleanup(t0 + Duration::from_secs(59)).dormant_dropped, 0);
    assert_eq!(rooms.cleanup(t0 + Duration::from_secs(60)).dormant_dropped, 1);
    assert!(rooms.history("chat").is_empty());
}

/// Counts its wakes.
struct CountingWake(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn history_kept_is_ready_from_the_first_kept_message() {
    use std::task::{Context, Waker};
    let rooms = hub();
    let (a, _) = join_new(&rooms);
    rooms.join("plain", a).unwrap();
    rooms.broadcast("plain", "not kept: no history by default");
    let count = Arc::new(CountingWake(0.into()));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    assert!(rooms.poll_history_kept(&mut cx).is_pending());
    assert_eq!(rooms.cleanup(Instant::now()), nextrush_rooms::CleanupReport::default());

    rooms.set_room_options("kept", RoomOptions::new().with_history_len(2));
    rooms.join("kept", a).unwrap();
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 0, "joining keeps nothing");
    rooms.broadcast("kept", "kept");
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1, "woken once");
    assert!(rooms.poll_history_kept(&mut cx).is_ready());
    rooms.broadcast("kept", "again");
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1, "and only once");
}

#[test]
fn cleanup_drops_history_of_idle_rooms_only() {
    let config = RoomsConfig::new().with_history_len(5).with_idle_timeout(Duration::from_secs(10));
    let rooms: Hub = Rooms::new(config);
    let (a, _) = join_new(&rooms);
    rooms.join("quiet", a).unwrap();
    rooms.join("busy", a).unwrap();
    rooms.broadcast("quiet", "old");
    rooms.broadcast("busy", "old");
    let t0 = Instant::now();
    let at = |s| t0 + Duration::from_secs(s);
    rooms.cleanup(at(0));
    rooms.cleanup(at(5));
    rooms.broadcast("busy", "new");
    assert_eq!(rooms.cleanup(at(10)).histories_cleared, 1);
    assert!(rooms.history("quiet").is_empty());
    assert_eq!(rooms.history("busy").len(), 2);
    assert_eq!(rooms.member_count("quiet"), 1, "membership is untouched");
    let cleared_busy = rooms.cleanup(at(20));
    assert_eq!(cleared_busy.histories_cleared, 1, "busy went quiet at the 10 s sweep");
}

#[test]
fn events_are_bounded_and_counted() {
    let rooms: Hub = Rooms::new(RoomsConfig::new().with_event_capacity(2));
    let (a, _) = join_new(&rooms);
    for room in ["a", "b", "c"] {
        rooms.join(room, a).unwrap();
    }
    let kept = events(&rooms);
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].room().as_ref(), "b", "the oldest was dropped");
    assert_eq!(rooms.stats().events_dropped, 1);
    let silent: Hub = Rooms::new(RoomsConfig::new().with_event_capacity(0));
    let (b, _) = join_new(&silent);
    silent.join("a", b).unwrap();
    assert_eq!(silent.poll_event(), None);
    assert_eq!(silent.stats().events_dropped, 0);
}

#[test]
fn member_budget_is_per_member() {
    let rooms = hub();
    let small = member(10);
    let s = rooms.register(Arc::clone(&small));
    let (b, mb) = join_new(&rooms);
    rooms.join("r", s).unwrap();
    rooms.join("r", b).unwrap();
    for text in ["aaaa", "bbbb", "cccc"] {
        rooms.broadcast("r", text);
    }
    assert_eq!(texts(&small), ["aaaa"], "6-byte frames: the second does not fit 10 bytes");
    assert_eq!(texts(&mb), ["aaaa", "bbbb", "cccc"]);
    assert_eq!(rooms.stats().dropped_newest, 2);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
    check::<Arc<Hub>>();
    check::<nextrush_rooms::EncodedMessage>();
    check::<nextrush_rooms::QueueMember>();
    check::<nextrush_rooms::MemberQueue>();
}
