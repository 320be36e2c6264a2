//! Properties: any messages, under any parameters, cut into frames anywhere,
//! come back intact; our compressor stays within the agreed window; both
//! ends of a negotiation agree; bombs stay bounded.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{params, puff};
use crate::deflate::{
    Compressor, Decompressor, DeflateConfig, DeflateParams, TAIL, accept_client_response, client_offer,
    negotiate_server,
};
use crate::{ProtocolError, Role, extension};

const WORDS: [&str; 12] = [
    "{\"type\":\"message\",",
    "\"room\":\"lobby\",",
    "\"user\":\"alice\",",
    "\"text\":\"",
    "hello",
    "world",
    " ",
    "\"}",
    "bob",
    "typing",
    "\u{e9}t\u{e9}",
    "42",
];

/// Random bytes, a tiny alphabet, blocks repeated farther apart than 256
/// bytes, and JSON-ish text.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..600),
        vec(0u8..4, 0..3000),
        vec(any::<u8>(), 1..700).prop_map(|v| v.repeat(3)),
        vec(prop::sample::select(&WORDS[..]), 0..150).prop_map(|w| w.concat().into_bytes()),
    ]
}

/// Sorted cut positions in `0..=len`.
fn cuts(indices: &[Index], len: usize) -> Vec<usize> {
    let mut at: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
    at.sort_unstable();
    at
}

/// Splits `data` at `at` (sorted), keeping empty pieces.
fn split<'a>(data: &'a [u8], at: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for &cut in at {
        pieces.push(&data[start..cut]);
        start = cut;
    }
    pieces.push(&data[start..]);
    pieces
}

/// One message to send: whether it is compressed, how the application
/// fragments it, and how the compressed bytes are cut into frames.
#[derive(Clone, Debug)]
struct Send {
    data: Vec<u8>,
    compressed: bool,
    send_cuts: Vec<Index>,
    wire_cuts: Vec<Index>,
}

fn send() -> impl Strategy<Value = Send> {
    (message(), prop::bool::weighted(0.8), vec(any::<Index>(), 0..3), vec(any::<Index>(), 0..4))
        .prop_map(|(data, compressed, send_cuts, wire_cuts)| Send { data, compressed, send_cuts, wire_cuts })
}

/// Compresses one message as the sender would: whole, or fragment by
/// fragment. Returns the frame payloads, or `None` when the compressor found
/// the message not worth compressing (it is then sent as is).
fn compress_message(c: &mut Compressor, m: &Send) -> Option<Vec<Vec<u8>>> {
    if m.send_cuts.is_empty() {
        let mut out = BytesMut::new();
        let compressed = c.compress(&m.data, &mut out).unwrap();
        // Compressed means smaller; otherwise nothing was written.
        assert!(if compressed { out.len() < m.data.len() } else { out.is_empty() });
        return compressed.then(|| vec![out.to_vec()]);
    }
    let pieces = split(&m.data, &cuts(&m.send_cuts, m.data.len()));
    let last = pieces.len() - 1;
    let mut frames = Vec::new();
    for (i, piece) in pieces.into_iter().enumerate() {
        let mut out = BytesMut::new();
        c.compress_fragment(piece, i == last, &mut out).unwrap();
        frames.push(out.to_vec());
    }
    Some(frames)
}

/// Sends `msgs` from `c` to `d`; returns the compressed stream (payloads
/// with the tail re-appended) and the data it carries, for `puff`.
fn exchange(c: &mut Compressor, d: &mut Decompressor, msgs: &[Send]) -> (Vec<u8>, Vec<u8>) {
    let (mut stream, mut carried) = (Vec::new(), Vec::new());
    for m in msgs.iter().filter(|m| m.compressed) {
        // Not worth compressing: sent as is, the decompressor never sees it.
        let Some(frames) = compress_message(c, m) else {
            continue;
        };
        let joined = frames.concat();
        // Frames are arbitrary cuts of the message's compressed bytes.
        let frames = if m.wire_cuts.is_empty() {
            frames
        } else {
            split(&joined, &cuts(&m.wire_cuts, joined.len())).into_iter().map(<[u8]>::to_vec).collect()
        };
        let mut out = BytesMut::new();
        let last = frames.len() - 1;
        for (i, frame) in frames.iter().enumerate() {
            // The limit is exactly the message size: inclusive.
            d.decompress(frame, i == last, &mut out, m.data.len()).unwrap();
        }
        assert_eq!(&out[..], &m.data[..]);
        stream.extend_from_slice(&joined);
        stream.extend_from_slice(&TAIL);
        carried.extend_from_slice(&m.data);
    }
    (stream, carried)
}

fn any_params() -> impl Strategy<Value = DeflateParams> {
    (any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15)
        .prop_map(|(snct, cnct, sbits, cbits)| params(snct, cnct, sbits, cbits))
}

fn any_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Server), Just(Role::Client)]
}

fn any_config() -> impl Strategy<Value = DeflateConfig> {
    (any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15, 0u32..=9).prop_map(|(snct, cnct, sbits, cbits, level)| {
        DeflateConfig::new()
            .with_server_no_context_takeover(snct)
            .with_client_no_context_takeover(cnct)
            .with_server_max_window_bits(sbits)
            .and_then(|c| c.with_client_max_window_bits(cbits))
            .and_then(|c| c.with_level(level))
            .unwrap()
    })
}

proptest! {
    #[test]
    fn messages_round_trip_under_every_parameter_set(
        p in any_params(),
        role in any_role(),
        level in 0u32..=9,
        msgs in vec(send(), 1..6),
    ) {
        let config = DeflateConfig::new().with_level(level).unwrap();
        let mut c = Compressor::new(&p, role, &config);
        let mut d = Decompressor::new(&p, role.peer());
        let (stream, carried) = exchange(&mut c, &mut d, &msgs);

        // An independent decoder agrees, and no match reaches farther back
        // than the agreed window (2^8 included).
        let decoded = puff::inflate(&stream).unwrap();
        prop_assert_eq!(decoded.data, carried);
        let window = 1usize << p.compress_window_bits(role).get();
        prop_assert!(decoded.max_distance <= window,
            "distance {} > window {}", decoded.max_distance, window);
    }

    #[test]
    fn both_ends_of_a_negotiation_agree(
        client in any_config(),
        server in any_config(),
        msgs in vec(send(), 1..4),
    ) {
        let offer = client_offer(&client);
        let offers = extension::parse([&offer]).unwrap();
        let (ps, answer) = negotiate_server(&offers, &server).unwrap();
        let pc = accept_client_response([&answer], &client).unwrap().unwrap();

        // What each side compresses with fits what the other inflates with,
        // and a side that resets its window only does so if the sender does.
        prop_assert!(ps.compress_window_bits(Role::Server) <= pc.decompress_window_bits(Role::Client));
        prop_assert!(pc.compress_window_bits(Role::Client) <= ps.decompress_window_bits(Role::Server));
        prop_assert!(!pc.decompress_no_context_takeover(Role::Client)
            || ps.compress_no_context_takeover(Role::Server));
        prop_assert!(!ps.decompress_no_context_takeover(Role::Server)
            || pc.compress_no_context_takeover(Role::Client));
        // Every request was honoured.
        prop_assert!(ps.compress_window_bits(Role::Server) <= server.server_max_window_bits());
        prop_assert!(ps.compress_window_bits(Role::Server) <= client.server_max_window_bits());
        prop_assert!(pc.compress_window_bits(Role::Client) <= server.client_max_window_bits());
        prop_assert!(pc.compress_window_bits(Role::Client) <= client.client_max_window_bits());
        prop_assert_eq!(ps.compress_no_context_takeover(Role::Server),
            client.server_no_context_takeover() || server.server_no_context_takeover());

        // Both directions carry data.
        let mut c = Compressor::new(&ps, Role::Server, &server);
        let mut d = Decompressor::new(&pc, Role::Client);
        exchange(&mut c, &mut d, &msgs);
        let mut c = Compressor::new(&pc, Role::Client, &client);
        let mut d = Decompressor::new(&ps, Role::Server);
        exchange(&mut c, &mut d, &msgs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn output_and_memory_stay_within_the_limit(
        len in 0usize..200_000,
        pattern in vec(any::<u8>(), 1..4),
        limit in 0usize..250_000,
        wire_cuts in vec(any::<Index>(), 0..6),
    ) {
        let data: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
        let p = params(false, false, 15, 15);
        let mut c = Compressor::new(&p, Role::Client, &DeflateConfig::default());
        let mut d = Decompressor::new(&p, Role::Server);
        let mut payload = BytesMut::new();
        c.compress_fragment(&data, true, &mut payload).unwrap();
        let frames = split(&payload, &cuts(&wire_cuts, payload.len()));
        let mut out = BytesMut::new();
        let last = frames.len() - 1;
        let mut result = Ok(());
        for (i, frame) in frames.iter().enumerate() {
            result = d.decompress(frame, i == last, &mut out, limit);
            if result.is_err() {
                break;
            }
        }
        if len <= limit {
            prop_assert_eq!(result, Ok(()));
            prop_assert_eq!(&out[..], &data[..]);
        } else {
            prop_assert_eq!(result, Err(ProtocolError::MessageTooBig { limit }));
            prop_assert!(out.len() <= limit);
        }
        prop_assert!(out.capacity() <= limit, "capacity {} > limit {}", out.capacity(), limit);
    }
}
