//! Fan-out: one publisher, 1,000 members in one room, each with an
//! in-memory `MemberQueue`.
//!
//! - `plain-64B/broadcast`: the hub's side only — frame once, enqueue 1,000
//!   times (queues are emptied outside the measurement).
//! - `plain-64B/broadcast+drain`: the same plus each member popping its
//!   frame, as a driver's task would before `send_encoded`.
//! - `deflate-<n>B/shared`: members negotiated `server_no_context_takeover`:
//!   compress once, share the frame; broadcast + drain.
//! - `deflate-<n>B/per-member`: members with context takeover: each member
//!   compresses the message with its own compressor when draining (what
//!   `Connection::send` does); broadcast + drain + 1,000 compressions.
//!
//! Throughput is in deliveries (one element = one member reached).
//!
//! `cargo bench -p nextrush-rooms --bench fanout -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_main};
use nextrush_proto::deflate::{Compressor, DeflateConfig, DeflateParams};
use nextrush_proto::{Message, Role};
use nextrush_rooms::{EncodedMessage, Encoding, Member, Outbound, QueueMember, Rooms, RoomsConfig};

const MEMBERS: usize = 1_000;
/// Queue budget per member: room for a few hundred small frames.
const BUDGET: usize = 1 << 20;

type Hub = Rooms<QueueMember>;

fn room(encoding: Encoding) -> (Hub, Vec<Arc<QueueMember>>) {
    let rooms = Rooms::new(RoomsConfig::new().with_max_members(MEMBERS));
    let members: Vec<_> = (0..MEMBERS).map(|_| Arc::new(QueueMember::new(BUDGET, encoding))).collect();
    for m in &members {
        let id = rooms.register(Arc::clone(m));
        rooms.join("room", id).expect("join");
    }
    (rooms, members)
}

fn drain_all(members: &[Arc<QueueMember>]) {
    for m in members {
        for item in m.queue().pop_all() {
            black_box(item);
        }
    }
}

/// A chat message of about `len` bytes of JSON.
fn chat_message(len: usize) -> Message {
    let mut text = String::from(r#"{"type":"message","room":"lobby","user":"alice","text":""#);
    let words = ["hello", "everyone", "the", "deploy", "is", "done", "looks", "good", "ship", "it"];
    let mut i = 0;
    while text.len() + 2 < len {
        text.push_str(words[i % words.len()]);
        text.push(' ');
        i += 7;
    }
    text.truncate(len - 2);
    text.push_str("\"}");
    Message::text(text)
}

fn plain(c: &mut Criterion) {
    let (rooms, members) = room(Encoding::Plain);
    let message = Message::binary(vec![0x5a; 64]);
    let mut group = c.benchmark_group("plain-64B");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    group.bench_function("broadcast", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                let start = Instant::now();
                black_box(rooms.broadcast("room", message.clone()));
                spent += start.elapsed();
                if i % 64 == 63 {
                    drain_all(&members);
                }
            }
            drain_all(&members);
            spent
        });
    });
    group.bench_function("broadcast+drain", |b| {
        b.iter(|| {
            black_box(rooms.broadcast("room", message.clone()));
            drain_all(&members);
        });
    });
    group.finish();
}

fn deflate(c: &mut Criterion) {
    for len in [64, 512] {
        // Compress everything (the automatic threshold would send 64-byte
        // messages without a context uncompressed).
        let config = DeflateConfig::new().with_threshold(0);
        let message = chat_message(len);
        let mut group = c.benchmark_group(format!("deflate-{len}B"));
        group.throughput(Throughput::Elements(MEMBERS as u64));

        let shared = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
        let (rooms, members) = room(Encoding::negotiated(Some(&shared), &config));
        let frame = EncodedMessage::new(message.clone());
        if let Encoding::Shared(key) = members[0].encoding() {
            println!(
                "deflate-{len}B shared: {} -> {} bytes on the wire",
                frame.plain_frame().len(),
                frame.compressed(&key).len()
            );
        }
        group.bench_function("shared", |b| {
            b.iter(|| {
                black_box(rooms.broadcast("room", message.clone()));
                drain_all(&members);
            });
        });
        println!("deflate-{len}B shared stats: {:?}", rooms.stats());
        drop((rooms, members));

        let takeover = DeflateParams::default();
        let (rooms, members) = room(Encoding::negotiated(Some(&takeover), &config));
        let mut compressors: Vec<Compressor> =
            (0..MEMBERS).map(|_| Compressor::new(&takeover, Role::Server, &config)).collect();
        let mut out = BytesMut::with_capacity(2 * len);
        let mut per_member = |members: &[Arc<QueueMember>]| {
            for (m, compressor) in members.iter().zip(&mut compressors) {
                for item in m.queue().pop_all() {
                    let Outbound::Message(message) = item else { unreachable!("context takeover") };
                    out.clear();
                    let _ = compressor.compress(message.payload(), &mut out);
                    black_box(&out);
                }
            }
        };
        // Warm up: allocate every compressor's zlib state.
        rooms.broadcast("room", message.clone());
        per_member(&members);
        group.bench_function("per-member", |b| {
            b.iter(|| {
                black_box(rooms.broadcast("room", message.clone()));
                per_member(&members);
            });
        });
        println!("deflate-{len}B per-member stats: {:?}", rooms.stats());
        group.finish();
    }
}

mod group {
    //! The criterion entry points (generated, so without docs).
    #![allow(missing_docs, unreachable_pub)]
    use super::{deflate, plain};
    criterion::criterion_group!(benches, plain, deflate);
}
criterion_main!(group::benches);
