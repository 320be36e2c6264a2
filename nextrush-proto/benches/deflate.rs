//! permessage-deflate throughput: small JSON chat messages (with and without
//! context takeover) and 1 MiB payloads (JSON-ish text and random bytes).
//!
//! `cargo bench -p nextrush-proto --bench deflate -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use nextrush_proto::deflate::{Compressor, Decompressor, DeflateConfig, DeflateParams};
use nextrush_proto::{Entropy, Role, SeededEntropy};

const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "eve"];
const WORDS: [&str; 16] = [
    "hello", "everyone", "is", "the", "deploy", "done", "yet", "?", "looks", "good", "to", "me", "let's", "ship", "it",
    "tomorrow",
];

/// `n` chat messages of ~100–300 bytes, deterministic.
fn chat_messages(n: usize) -> Vec<Vec<u8>> {
    let mut rng = SeededEntropy::new(7);
    (0..n)
        .map(|i| {
            let r = rng.next_u64();
            let words = 8 + (r % 30) as usize;
            let text: Vec<&str> = (0..words).map(|k| WORDS[((r >> (k % 60)) as usize + k * 7) % WORDS.len()]).collect();
            format!(
                r#"{{"type":"message","room":"lobby","user":"{}","id":{},"ts":{},"text":"{}"}}"#,
                USERS[i % USERS.len()],
                100_000 + i,
                1_700_000_000_000u64 + (r % 1_000_000),
                text.join(" ")
            )
            .into_bytes()
        })
        .collect()
}

/// ~1 MiB of JSON-ish text: many chat messages in an array.
fn json_mib() -> Vec<u8> {
    let mut out = b"[".to_vec();
    for msg in chat_messages(6000) {
        if out.len() + msg.len() + 2 > 1 << 20 {
            break;
        }
        out.extend_from_slice(&msg);
        out.push(b',');
    }
    out.resize((1 << 20) - 1, b' ');
    out.push(b']');
    out
}

fn random_mib() -> Vec<u8> {
    let mut out = vec![0; 1 << 20];
    SeededEntropy::new(42).fill(&mut out);
    out
}

fn params(no_context_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        ..DeflateParams::default()
    }
}

fn level(l: u32) -> DeflateConfig {
    DeflateConfig::new().with_level(l).unwrap_or_default()
}

/// Compresses `msgs` in order with a fresh compressor, also those that do
/// not shrink (to measure their decompression).
fn compress_all(p: &DeflateParams, config: &DeflateConfig, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut c = Compressor::new(p, Role::Server, config);
    msgs.iter()
        .map(|m| {
            let mut out = BytesMut::new();
            c.compress_fragment(m, true, &mut out).unwrap_or_default();
            out.to_vec()
        })
        .collect()
}

fn chat(c: &mut Criterion) {
    let msgs = chat_messages(100);
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("chat-100-messages");
    group.throughput(Throughput::Elements(msgs.len() as u64));
    for (name, nct, lvl) in
        [("takeover-l6", false, 6), ("takeover-l1", false, 1), ("no-takeover-l6", true, 6), ("no-takeover-l1", true, 1)]
    {
        let (p, config) = (params(nct), level(lvl));
        let compressed = compress_all(&p, &config, &msgs);
        let wire: usize = compressed.iter().map(Vec::len).sum();
        println!("chat {name}: {bytes} -> {wire} bytes ({:.1}%)", 100.0 * wire as f64 / bytes as f64);
        // A fresh compressor per batch of 100 messages: the lazy allocation
        // is part of the cost, as on a new connection.
        group.bench_function(format!("compress/{name}"), |b| {
            b.iter_batched_ref(
                || Compressor::new(&p, Role::Server, &config),
                |c| {
                    let mut out = BytesMut::with_capacity(512);
                    for m in &msgs {
                        out.clear();
                        c.compress(m, &mut out).unwrap_or_default();
                        black_box(&out);
                    }
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_function(format!("decompress/{name}"), |b| {
            b.iter_batched_ref(
                || Decompressor::new(&p, Role::Client),
                |d| {
                    let mut out = BytesMut::with_capacity(512);
                    for m in &compressed {
                        out.clear();
                        d.decompress(m, true, &mut out, 1 << 20).unwrap_or_default();
                        black_box(&out);
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn large(c: &mut Criterion) {
    let mut group = c.benchmark_group("1MiB");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(1 << 20));
    for (kind, data) in [("json", json_mib()), ("random", random_mib())] {
        for lvl in [6, 1] {
            let (p, config) = (params(true), level(lvl));
            let compressed = compress_all(&p, &config, std::slice::from_ref(&data));
            println!("1MiB {kind} l{lvl}: {} -> {} bytes", data.len(), compressed[0].len());
            let mut comp = Compressor::new(&p, Role::Server, &config);
            let mut out = BytesMut::with_capacity(2 << 20);
            group.bench_function(format!("compress/{kind}-l{lvl}"), |b| {
                b.iter(|| {
                    out.clear();
                    comp.compress(&data, &mut out).unwrap_or_default();
                    black_box(&out);
                });
            });
            let mut d = Decompressor::new(&p, Role::Client);
            group.bench_function(format!("decompress/{kind}-l{lvl}"), |b| {
                b.iter(|| {
                    out.clear();
                    d.decompress(&compressed[0], true, &mut out, 2 << 20).unwrap_or_default();
                    black_box(&out);
                });
            });
        }
    }
    group.finish();
}

mod group {
    //! The criterion entry points (generated, so without docs).
    #![allow(missing_docs, unreachable_pub)]
    use super::{chat, large};
    criterion::criterion_group!(benches, chat, large);
}
criterion_main!(group::benches);
