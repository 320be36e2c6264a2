//! Receive path (parse + unmask + UTF-8 check) and send path for messages of
//! 20 B, 1 KiB, 16 KiB and 1 MiB, beside a plain memcpy of the same bytes.
//!
//! `cargo bench -p nextrush-proto --bench connection`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nextrush_proto::frame::{FrameHead, MAX_HEAD_LEN, Opcode, apply_mask};
use nextrush_proto::{Config, Connection, Event, Message, SeededEntropy};

const SIZES: [(usize, &str); 4] = [(20, "20B"), (1024, "1KiB"), (16 * 1024, "16KiB"), (1 << 20, "1MiB")];

/// JSON-like chat text: what most text messages look like.
fn text_payload(len: usize) -> String {
    r#"{"type":"message","room":"lobby","user":"alice","text":"see you at 10:30 in the usual place"},"#
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// Text where every few characters is multi-byte: the slow path of UTF-8 checks.
fn unicode_payload(len: usize) -> String {
    let s: String = "Ünïcödé ✓ κόσμε 𝄞 ".chars().cycle().take(len).collect();
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let head = FrameHead { fin: true, rsv: 0, opcode: Opcode::Text, mask: Some(key), len: payload.len() as u64 };
    let mut buf = [0; MAX_HEAD_LEN];
    let n = head.encode(&mut buf);
    let mut out = buf[..n].to_vec();
    out.extend_from_slice(payload);
    apply_mask(&mut out[n..], key, 0);
    out
}

fn config() -> Config {
    Config::default().max_frame_size(2 << 20).max_message_size(2 << 20)
}

fn receive(c: &mut Criterion) {
    receive_group(c, "receive", text_payload);
    receive_group(c, "receive_unicode", unicode_payload);
}

fn receive_group(c: &mut Criterion, group_name: &str, make: fn(usize) -> String) {
    let mut group = c.benchmark_group(group_name);
    for (size, name) in SIZES {
        let payload = make(size);
        let wire = masked_text_frame(payload.as_bytes());
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let now = Instant::now();
        let mut conn = Connection::server(config(), now).unwrap();
        group.bench_with_input(BenchmarkId::new("nextrush", name), &wire, |b, wire| {
            b.iter(|| {
                conn.receive(now, black_box(wire));
                match conn.poll_event() {
                    Some(Event::Message(m)) => black_box(m),
                    other => panic!("unexpected {other:?}"),
                };
            });
        });
        // The adapters read into a buffer and hand it over without a copy.
        group.bench_with_input(BenchmarkId::new("nextrush_owned", name), &wire, |b, wire| {
            b.iter_batched(
                || bytes::BytesMut::from(&wire[..]),
                |buf| {
                    conn.receive_owned(now, buf);
                    match conn.poll_event() {
                        Some(Event::Message(m)) => black_box(m),
                        other => panic!("unexpected {other:?}"),
                    };
                },
                criterion::BatchSize::LargeInput,
            );
        });
        let mut dst = vec![0u8; wire.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", name), &wire, |b, wire| {
            b.iter(|| {
                dst.copy_from_slice(black_box(wire));
                black_box(&dst);
            });
        });
    }
    group.finish();
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("send");
    for (size, name) in SIZES {
        let payload = text_payload(size);
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let now = Instant::now();
        let message = Message::text(payload.clone());
        let mut out = Vec::with_capacity(size + 16);
        let mut server = Connection::server(config(), now).unwrap();
        group.bench_with_input(BenchmarkId::new("server", name), &message, |b, m| {
            b.iter(|| {
                out.clear();
                server.send(now, m.clone()).unwrap();
                black_box(server.poll_transmit(&mut out));
            });
        });
        let mut client = Connection::client(config(), now, Box::new(SeededEntropy::new(1))).unwrap();
        group.bench_with_input(BenchmarkId::new("client_masked", name), &message, |b, m| {
            b.iter(|| {
                out.clear();
                client.send(now, m.clone()).unwrap();
                black_box(client.poll_transmit(&mut out));
            });
        });
        let src = payload.into_bytes();
        let mut dst = vec![0u8; src.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", name), &src, |b, src| {
            b.iter(|| {
                dst.copy_from_slice(black_box(src));
                black_box(&dst);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, receive, send);
criterion_main!(benches);
