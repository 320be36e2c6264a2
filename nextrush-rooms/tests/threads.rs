//! Concurrent sends from several threads keep one order per room, while
//! other threads join, leave and send elsewhere.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Hub, drain, member};
use nextrush_rooms::{ConnId, Rooms};

const SENDERS: u32 = 4;
const PER_SENDER: u32 = 400;

/// Payload: room tag, sender, sequence number.
fn payload(room: u8, sender: u32, seq: u32) -> Vec<u8> {
    let mut p = vec![room];
    p.extend_from_slice(&sender.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p
}

fn parse(p: &[u8]) -> (u8, u32, u32) {
    (p[0], u32::from_le_bytes(p[1..5].try_into().unwrap()), u32::from_le_bytes(p[5..9].try_into().unwrap()))
}

#[test]
fn concurrent_broadcasts_keep_per_room_order() {
    let rooms: Arc<Hub> = Arc::new(Rooms::default());
    // Stable members: in "a", in "b", or in both.
    let mut stable: Vec<(ConnId, Arc<nextrush_rooms::QueueMember>, Vec<u8>)> = Vec::new();
    for i in 0..9 {
        let m = member(usize::MAX);
        let id = rooms.register(Arc::clone(&m));
        let tags: Vec<u8> = match i % 3 {
            0 => vec![b'a'],
            1 => vec![b'b'],
            _ => vec![b'a', b'b'],
        };
        for tag in &tags {
            rooms.join(if *tag == b'a' { "a" } else { "b" }, id).unwrap();
        }
        stable.push((id, m, tags));
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Churn: members joining and leaving both rooms all along.
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let id = rooms.register(member(1 << 16));
                    rooms.join("a", id).unwrap();
                    rooms.join("b", id).unwrap();
                    rooms.leave("a", id);
                    rooms.unregister(id);
                }
            });
        }
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let rooms = &rooms;
                s.spawn(move || {
                    for seq in 0..PER_SENDER {
                        match (sender + seq) % 3 {
                            0 => rooms.broadcast("a", payload(b'a', sender, seq)),
                            1 => rooms.broadcast("b", payload(b'b', sender, seq)),
                            _ => rooms.to("a").to("b").send(payload(b'*', sender, seq)),
                        };
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });

    // Every member of a room saw that room's messages in one order.
    let mut order_of: HashMap<u8, Vec<(u8, u32, u32)>> = HashMap::new();
    for (id, m, tags) in &stable {
        let got: Vec<_> = drain(m).iter().map(|p| parse(p)).collect();
        for tag in tags {
            // The room's own messages plus those sent to both rooms.
            let seen: Vec<_> = got.iter().copied().filter(|(t, _, _)| t == tag || *t == b'*').collect();
            let reference = order_of.entry(*tag).or_insert_with(|| seen.clone());
            assert_eq!(&seen, reference, "member {id} saw room {} in another order", *tag as char);
        }
        // Per sender, sequence numbers only go up (each message once).
        for sender in 0..SENDERS {
            let seqs: Vec<u32> = got.iter().filter(|(_, s, _)| *s == sender).map(|(_, _, q)| *q).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sender {sender}: {seqs:?}");
        }
    }
    // Nothing was lost: every message reached each stable member of its rooms.
    let per_room = |tag: u8| {
        (0..SENDERS)
            .flat_map(|s| (0..PER_SENDER).map(move |q| (s, q)))
            .filter(|(s, q)| match (s + q) % 3 {
                0 => tag == b'a',
                1 => tag == b'b',
                _ => true,
            })
            .count()
    };
    assert_eq!(order_of[&b'a'].len(), per_room(b'a'));
    assert_eq!(order_of[&b'b'].len(), per_room(b'b'));
    assert_eq!(rooms.stats().dropped(), 0);
    assert_eq!(rooms.stats().members, stable.len());
}

#[test]
fn concurrent_churn_leaves_no_empty_rooms() {
    let config = nextrush_rooms::RoomsConfig::new().with_history_len(3).with_max_rooms(2);
    let rooms: Arc<Hub> = Arc::new(Rooms::new(config));
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let rooms = &rooms;
            s.spawn(move || {
                let mut id = rooms.register(member(1 << 12));
                for i in 0..2_000u32 {
                    let name = ["x", "y", "z"][((t + i) % 3) as usize];
                    // Creating a third room may fail at the limit of 2.
                    if rooms.join(name, id).is_ok() {
                        rooms.to(name).except(id).send("m");
                        rooms.subscribe(name, id).unwrap();
                        rooms.publish(name, "p");
                        assert!(rooms.leave(name, id));
                        assert!(rooms.unsubscribe(name, id));
                    }
                    if i % 100 == 0 {
                        rooms.unregister(id);
                        id = rooms.register(member(1 << 12));
                    }
                }
                rooms.unregister(id);
            });
        }
    });
    let stats = rooms.stats();
    assert_eq!((stats.rooms, stats.channels, stats.memberships, stats.subscriptions, stats.members), (0, 0, 0, 0, 0));
    assert!(rooms.rooms().is_empty() && rooms.channels().is_empty());
    // Every room left its history behind for the next joiner.
    assert!(["x", "y", "z"].iter().any(|r| !rooms.history(r).is_empty()));
}
