//! Property tests of the connection: chunking, fragmentation, masks,
//! arbitrary input and timers.

mod common;

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use common::*;
use nextrush_proto::frame::Opcode;
use nextrush_proto::{Config, Connection, Event, Message, MessageKind, SeededEntropy};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        "\\PC{0,40}".prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::binary),
    ]
}

/// Feeds `input` to a server in chunks cut at `cuts`; returns events and output.
fn run_chunked(input: &[u8], cuts: &[usize], config: Config) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut conn = Connection::server(config, now).unwrap();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let (mut start, mut out, mut evs) = (0, Vec::new(), Vec::new());
    for (i, end) in cuts.into_iter().enumerate() {
        let chunk = &input[start..end];
        if i % 2 == 0 {
            conn.receive(now, chunk);
        } else if let Some(mut partial) = conn.take_partial_input() {
            // As a driver does: the rest read straight after a cut frame.
            partial.extend_from_slice(chunk);
            conn.receive_owned(now, partial);
        } else {
            conn.receive_owned(now, bytes::BytesMut::from(chunk));
        }
        let _ = conn.poll_transmit(&mut out);
        evs.extend(std::iter::from_fn(|| conn.poll_event()));
        start = end;
    }
    (evs, out)
}

/// Encodes `msg` as a client would, split into fragments at `cuts`, with
/// pings between fragments.
fn fragmented(msg: &Message, cuts: &[usize], mask: [u8; 4], pings: bool) -> Vec<u8> {
    let payload = msg.payload();
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (payload.len() + 1)).collect();
    ends.sort_unstable();
    ends.dedup();
    ends.retain(|&e| e != payload.len());
    ends.push(payload.len());
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        let opcode = match (i, msg) {
            (0, Message::Text(_)) => Opcode::Text,
            (0, Message::Binary(_)) => Opcode::Binary,
            _ => Opcode::Continuation,
        };
        out.extend(frame(i + 1 == ends.len(), 0, opcode, &payload[start..end], Some(mask)));
        if pings && i + 1 < ends.len() {
            out.extend(frame(true, 0, Opcode::Ping, b"between", Some(mask)));
        }
        start = end;
    }
    out
}

proptest! {
    /// Any split of the input stream into chunks yields the same events.
    #[test]
    fn chunking_does_not_change_events(
        msgs in proptest::collection::vec(message(), 1..6),
        frag_cuts in proptest::collection::vec(any::<usize>(), 0..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        mask in any::<[u8; 4]>(),
    ) {
        let input: Vec<u8> = msgs.iter().flat_map(|m| fragmented(m, &frag_cuts, mask, true)).collect();
        let whole = run_chunked(&input, &[], Config::default());
        let chunked = run_chunked(&input, &cuts, Config::default());
        prop_assert_eq!(&whole.0, &chunked.0);
        // Output is the same too, except that pongs for pings received in one
        // chunk collapse into one (RFC 6455 §5.5.3 allows answering the latest).
        let no_pongs = |out: &[u8]| decode_all(out).into_iter().filter(|f| f.0 != Opcode::Pong).collect::<Vec<_>>();
        prop_assert_eq!(no_pongs(&whole.1), no_pongs(&chunked.1));
        let got: Vec<Message> = whole.0.into_iter().filter_map(|e| match e { Event::Message(m) => Some(m), _ => None }).collect();
        prop_assert_eq!(got, msgs);
    }

    /// Messages a client connection encodes decode on the server to the same
    /// messages, for any fragmentation and any mask seed.
    #[test]
    fn client_to_server_round_trip(
        msgs in proptest::collection::vec(message(), 1..8),
        frag in 1usize..64,
        seed in any::<u64>(),
    ) {
        let now = Instant::now();
        let mut client = Connection::client(Config::default(), now, Box::new(SeededEntropy::new(seed))).unwrap();
        let mut server = Connection::server(Config::default(), now).unwrap();
        for msg in &msgs {
            let (kind, payload) = match msg {
                Message::Text(t) => (MessageKind::Text, t.as_bytes().clone()),
                Message::Binary(b) => (MessageKind::Binary, b.clone()),
            };
            if kind == MessageKind::Text {
                // Text fragments must end on character boundaries.
                let text = msg.as_text().unwrap_or_default();
                let mut pieces = Vec::new();
                let mut rest = text;
                while !rest.is_empty() {
                    let mut at = frag.min(rest.len());
                    while !rest.is_char_boundary(at) { at += 1; }
                    pieces.push(&rest[..at]);
                    rest = &rest[at..];
                }
                if pieces.is_empty() { pieces.push(""); }
                let last = pieces.len() - 1;
                for (i, p) in pieces.into_iter().enumerate() {
                    client.send_fragment(now, kind, Bytes::copy_from_slice(p.as_bytes()), i == last).unwrap();
                }
            } else {
                let chunks: Vec<Bytes> = if payload.is_empty() { vec![payload] } else { payload.chunks(frag).map(Bytes::copy_from_slice).collect() };
                let last = chunks.len() - 1;
                for (i, c) in chunks.into_iter().enumerate() {
                    client.send_fragment(now, kind, c, i == last).unwrap();
                }
            }
        }
        let mut wire = Vec::new();
        let _ = client.poll_transmit(&mut wire);
        server.receive(now, &wire);
        let got: Vec<Message> = std::iter::from_fn(|| server.poll_event()).filter_map(|e| match e { Event::Message(m) => Some(m), _ => None }).collect();
        prop_assert_eq!(got, msgs);
    }

    /// Arbitrary bytes never panic, the connection ends at most once, and
    /// buffered input never exceeds a frame head plus the frame limit.
    #[test]
    fn arbitrary_input_is_handled(input in proptest::collection::vec(any::<u8>(), 0..2048), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let config = Config::default().max_frame_size(512).max_message_size(1024);
        let now = Instant::now();
        for role_is_server in [true, false] {
            let mut conn = if role_is_server {
                Connection::server(config.clone(), now).unwrap()
            } else {
                Connection::client(config.clone(), now, Box::new(SeededEntropy::new(1))).unwrap()
            };
            let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            ends.sort_unstable();
            ends.push(input.len());
            let mut start = 0;
            let mut closed = 0;
            let mut out = Vec::new();
            for end in ends {
                conn.receive(now, &input[start..end]);
                prop_assert!(conn.buffered_input() <= 14 + 512 + (end - start), "buffered {}", conn.buffered_input());
                let _ = conn.poll_transmit(&mut out);
                closed += std::iter::from_fn(|| conn.poll_event()).filter(|e| matches!(e, Event::Closed(_))).count();
                start = end;
            }
            prop_assert!(closed <= 1);
            // Whatever we sent is a valid frame sequence ending in at most one Close.
            let frames = decode_all(&out);
            prop_assert!(frames.iter().filter(|f| f.0 == Opcode::Close).count() <= 1);
        }
    }

    /// The same inputs at the same instants give the same deadlines, frames
    /// and events.
    #[test]
    fn timers_are_deterministic(steps in proptest::collection::vec((0u64..20_000, any::<bool>()), 1..30)) {
        let run = || {
            let start = Instant::now();
            let cfg = Config::default().ping_interval(Some(Duration::from_secs(3))).pong_timeout(Duration::from_secs(2));
            let mut conn = Connection::server(cfg, start).unwrap();
            let mut log = Vec::new();
            let mut t = start;
            for &(ms, pong) in &steps {
                t += Duration::from_millis(ms);
                if pong { conn.receive(t, &client_frame(true, Opcode::Pong, b"")); } else { conn.handle_timeout(t); }
                let mut out = Vec::new();
                let _ = conn.poll_transmit(&mut out);
                let evs: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
                log.push((conn.poll_timeout().map(|d| d - start), out, evs));
            }
            log
        };
        prop_assert_eq!(run(), run());
    }

    /// Taking the output as a [`Transmit`] (large payloads by reference) and
    /// writing it the way transports do, a few bytes at a time with plain or
    /// vectored writes, sends exactly the bytes `poll_transmit` copies out,
    /// whatever is queued: small and large messages, pings ahead of data,
    /// a Close last.
    #[test]
    fn a_transmit_written_in_pieces_sends_what_poll_transmit_copies(
        steps in proptest::collection::vec((0usize..3000, 0u8..8), 1..12),
        writes in proptest::collection::vec((1usize..2500, 1usize..4), 1..40),
        close in any::<bool>(),
    ) {
        let queue = |conn: &mut Connection, now: Instant| {
            // A whole message while a fragmented one is in progress is
            // refused, the same way on both connections.
            for &(len, kind) in &steps {
                let payload = Bytes::from(vec![kind; len]);
                let _ = match kind {
                    0 => conn.ping(now, Bytes::from_static(b"p")),
                    1..=3 => conn.send(now, Message::Binary(payload)),
                    _ => conn.send_fragment(now, MessageKind::Binary, payload, kind % 2 == 0),
                };
            }
            if close {
                let _ = conn.close(now, nextrush_proto::CloseCode::NORMAL, "bye");
            }
        };
        let (mut copied_conn, now) = server(Config::default());
        queue(&mut copied_conn, now);
        let mut copied = Vec::new();
        copied_conn.poll_transmit(&mut copied);

        let (mut conn, now) = server(Config::default());
        queue(&mut conn, now);
        let mut transmit = nextrush_proto::Transmit::default();
        conn.take_transmit(&mut transmit);
        prop_assert_eq!(transmit.len(), copied.len());
        let mut written = Vec::new();
        for &(most, slices) in writes.iter().cycle() {
            if transmit.is_empty() {
                break;
            }
            // A transport that takes at most `most` bytes, over up to `slices` pieces.
            let mut pieces = [std::io::IoSlice::new(&[]); 3];
            let count = if slices == 1 {
                pieces[0] = std::io::IoSlice::new(transmit.chunk());
                1
            } else {
                transmit.chunks_vectored(&mut pieces[..slices])
            };
            let mut taken = 0;
            for piece in &pieces[..count] {
                let n = piece.len().min(most - taken);
                written.extend_from_slice(&piece[..n]);
                taken += n;
            }
            prop_assert!(taken > 0);
            transmit.advance(taken);
        }
        prop_assert_eq!(written, copied);
        prop_assert_eq!(conn.buffered_amount(), 0);
        // The written buffer goes back for the next frames, which come out
        // whole too.
        // (Refused while a fragmented message is in progress or after the close.)
        let sent = conn.send(now, Message::binary(b"next".to_vec())).is_ok();
        conn.take_transmit(&mut transmit);
        let mut next = Vec::new();
        while !transmit.is_empty() {
            next.extend_from_slice(transmit.chunk());
            transmit.advance(transmit.chunk().len());
        }
        if sent {
            prop_assert_eq!(next, [&[0x82, 4][..], b"next"].concat());
        }
    }
}
