//! One test per RFC 6455 rule the connection enforces; each names its section.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nextrush_proto::frame::Opcode;
use nextrush_proto::{
    CloseCode, CloseFrame, CloseReason, Config, Event, Message, ProtocolError, RateLimit, RateLimitAction, ReadyState,
    SendError, Side, Timer,
};

#[test]
fn rfc6455_5_1_server_rejects_unmasked_frame() {
    let (code, reason) = server_fails_with(&frame(true, 0, Opcode::Text, b"hi", None));
    assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::UnmaskedFrame)));
}

#[test]
fn rfc6455_5_1_client_rejects_masked_frame() {
    let (mut conn, now) = client(Config::default());
    conn.receive(now, &frame(true, 0, Opcode::Text, b"hi", Some([1, 2, 3, 4])));
    let out = transmit(&mut conn);
    assert_eq!(sent_close_code(&out), Some(1002));
    assert!(matches!(events(&mut conn)[..], [Event::Closed(CloseReason::Protocol(ProtocolError::MaskedFrame))]));
}

#[test]
fn rfc6455_5_2_reserved_bits_without_extension() {
    for rsv in 1..8 {
        let (code, _) = server_fails_with(&frame(true, rsv, Opcode::Text, b"x", Some([1, 2, 3, 4])));
        assert_eq!(code, 1002, "rsv {rsv:#b}");
    }
}

#[test]
fn rfc6455_5_2_unknown_opcode() {
    let mut bytes = client_frame(true, Opcode::Binary, b"x");
    bytes[0] = 0x80 | 0x3;
    assert_eq!(server_fails_with(&bytes), (1002, CloseReason::Protocol(ProtocolError::UnknownOpcode(3))));
}

#[test]
fn rfc6455_5_5_control_frame_over_125_bytes() {
    let (code, _) = server_fails_with(&client_frame(true, Opcode::Ping, &[0; 126]));
    assert_eq!(code, 1002);
}

#[test]
fn rfc6455_5_5_fragmented_control_frame() {
    let (code, reason) = server_fails_with(&client_frame(false, Opcode::Ping, b"x"));
    assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::FragmentedControl)));
}

#[test]
fn rfc6455_5_4_control_frames_interleave_with_fragments() {
    let (mut conn, now) = server(Config::default());
    let mut input = client_frame(false, Opcode::Text, b"Hel");
    input.extend(client_frame(true, Opcode::Ping, b"p"));
    input.extend(client_frame(true, Opcode::Continuation, b"lo"));
    conn.receive(now, &input);
    assert_eq!(events(&mut conn), vec![Event::Ping(Bytes::from_static(b"p")), Event::Message(Message::text("Hello"))]);
    assert_eq!(decode_all(&transmit(&mut conn)), vec![(Opcode::Pong, true, b"p".to_vec())]);
}

#[test]
fn rfc6455_5_4_continuation_without_start() {
    let (code, reason) = server_fails_with(&client_frame(true, Opcode::Continuation, b"x"));
    assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::UnexpectedContinuation)));
}

#[test]
fn rfc6455_5_4_data_frame_inside_fragmented_message() {
    let mut input = client_frame(false, Opcode::Text, b"a");
    input.extend(client_frame(true, Opcode::Binary, b"b"));
    let (code, reason) = server_fails_with(&input);
    assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::ExpectedContinuation)));
}

#[test]
fn rfc6455_5_5_1_close_payload_of_one_byte() {
    let (code, reason) = server_fails_with(&client_frame(true, Opcode::Close, &[3]));
    assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::CloseOneByte)));
}

#[test]
fn rfc6455_7_4_invalid_close_codes() {
    for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        let (code, reason) = server_fails_with(&client_frame(true, Opcode::Close, &bad.to_be_bytes()));
        assert_eq!((code, reason), (1002, CloseReason::Protocol(ProtocolError::InvalidCloseCode(bad))));
    }
}

#[test]
fn rfc6455_7_4_valid_close_codes_are_echoed() {
    for good in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] {
        let (mut conn, now) = server(Config::default());
        conn.receive(now, &client_frame(true, Opcode::Close, &good.to_be_bytes()));
        assert_eq!(sent_close_code(&transmit(&mut conn)), Some(good));
        assert_eq!(
            events(&mut conn),
            vec![Event::Closed(CloseReason::Clean {
                initiator: Side::Peer,
                frame: Some(CloseFrame::new(CloseCode(good), "")),
            })]
        );
    }
}

#[test]
fn rfc6455_5_5_1_empty_close_is_echoed_empty() {
    let (mut conn, now) = server(Config::default());
    conn.receive(now, &client_frame(true, Opcode::Close, b""));
    assert_eq!(decode_all(&transmit(&mut conn)), vec![(Opcode::Close, true, vec![])]);
    let closed = events(&mut conn);
    assert!(matches!(&closed[..], [Event::Closed(r)] if r.code() == CloseCode::NO_STATUS));
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_close_reason() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80");
    let (code, reason) = server_fails_with(&client_frame(true, Opcode::Close, &payload));
    assert_eq!((code, reason), (1007, CloseReason::Protocol(ProtocolError::InvalidUtf8)));
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_before_the_message_ends() {
    let (mut conn, now) = server(Config::default());
    // The first fragment is already invalid; the message never finishes.
    conn.receive(now, &client_frame(false, Opcode::Text, b"ok\xc0\xaf"));
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1007));
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_mid_frame() {
    let (mut conn, now) = server(Config::default());
    let bytes = client_frame(true, Opcode::Text, b"abc\xff and then much more text");
    // Only the head and the first 4 payload bytes have arrived.
    conn.receive(now, &bytes[..6 + 4]);
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1007));
}

#[test]
fn rfc6455_8_1_code_point_split_over_fragments_is_fine() {
    let (mut conn, now) = server(Config::default());
    let euro = "€".as_bytes();
    let mut input = client_frame(false, Opcode::Text, &euro[..1]);
    input.extend(client_frame(false, Opcode::Continuation, &euro[1..2]));
    input.extend(client_frame(true, Opcode::Continuation, &euro[2..]));
    conn.receive(now, &input);
    assert_eq!(events(&mut conn), vec![Event::Message(Message::text("€"))]);
}

#[test]
fn rfc6455_10_4_frame_over_max_frame_size_rejected_from_the_head() {
    let (mut conn, now) = server(Config::default().max_frame_size(1000).max_message_size(4000));
    // Only the head of a 1001-byte frame: rejected before any payload arrives.
    conn.receive(now, &client_frame(true, Opcode::Binary, &[0; 1001])[..8]);
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1009));
}

#[test]
fn rfc6455_10_4_message_over_max_message_size_across_fragments() {
    let (mut conn, now) = server(Config::default().max_frame_size(1000).max_message_size(1500));
    let mut input = client_frame(false, Opcode::Binary, &[0; 1000]);
    input.extend(client_frame(true, Opcode::Continuation, &[0; 501])[..8].iter());
    conn.receive(now, &input);
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1009));
    assert!(matches!(
        events(&mut conn)[..],
        [Event::Closed(CloseReason::Protocol(ProtocolError::MessageTooBig { limit: 1500 }))]
    ));
}

#[test]
fn rfc6455_5_5_2_ping_answered_with_pong_automatically() {
    let (mut conn, now) = server(Config::default());
    conn.receive(now, &client_frame(true, Opcode::Ping, b"hello"));
    assert_eq!(decode_all(&transmit(&mut conn)), vec![(Opcode::Pong, true, b"hello".to_vec())]);
    assert_eq!(events(&mut conn), vec![Event::Ping(Bytes::from_static(b"hello"))]);
}

#[test]
fn auto_pong_can_be_turned_off() {
    let (mut conn, now) = server(Config::default().auto_pong(false));
    conn.receive(now, &client_frame(true, Opcode::Ping, b"x"));
    assert!(transmit(&mut conn).is_empty());
}

#[test]
fn rfc6455_5_5_2_every_ping_gets_its_pong() {
    let (mut conn, now) = server(Config::default());
    let input: Vec<u8> = (0..10u32).flat_map(|i| client_frame(true, Opcode::Ping, &i.to_be_bytes())).collect();
    conn.receive(now, &input);
    let pongs: Vec<_> = decode_all(&transmit(&mut conn)).into_iter().map(|f| f.2).collect();
    assert_eq!(pongs, (0..10u32).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
}

#[test]
fn rfc6455_5_5_3_ping_flood_queue_stays_bounded() {
    let (mut conn, now) = server(Config::default());
    let input: Vec<u8> = (0..100_000u32).flat_map(|_| client_frame(true, Opcode::Ping, &[0; 100])).collect();
    conn.receive(now, &input);
    assert!(conn.buffered_amount() <= 4096 + 102, "queued {}", conn.buffered_amount());
    let frames = decode_all(&transmit(&mut conn));
    assert!(frames.iter().all(|f| f.0 == Opcode::Pong));
}

#[test]
fn rfc6455_1_4_data_after_close_is_ignored() {
    let (mut conn, now) = server(Config::default());
    let mut input = client_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    input.extend(client_frame(true, Opcode::Text, b"late"));
    conn.receive(now, &input);
    conn.receive(now, &client_frame(true, Opcode::Text, b"later"));
    let evs = events(&mut conn);
    assert_eq!(evs.len(), 1);
    assert!(matches!(evs[0], Event::Closed(_)));
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn rfc6455_7_1_2_we_close_and_peer_replies() {
    let (mut conn, now) = server(Config::default());
    conn.close(now, CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(conn.ready_state(), ReadyState::Closing);
    assert_eq!(decode_all(&transmit(&mut conn)), vec![(Opcode::Close, true, b"\x03\xe9bye".to_vec())]);
    // Messages still arrive while we wait for the reply.
    conn.receive(now, &client_frame(true, Opcode::Text, b"in flight"));
    conn.receive(now, &client_frame(true, Opcode::Close, &1001u16.to_be_bytes()));
    assert!(transmit(&mut conn).is_empty(), "no second close");
    assert_eq!(
        events(&mut conn),
        vec![
            Event::Message(Message::text("in flight")),
            Event::Closed(CloseReason::Clean {
                initiator: Side::Local,
                frame: Some(CloseFrame::new(CloseCode::GOING_AWAY, ""))
            })
        ]
    );
    assert_eq!(conn.send(now, Message::text("x")), Err(SendError::Closed));
}

#[test]
fn close_timeout_when_peer_never_answers() {
    let (mut conn, now) = server(Config::default().close_timeout(Duration::from_secs(2)));
    conn.close(now, CloseCode::NORMAL, "").unwrap();
    assert_eq!(conn.poll_timeout(), Some(now + Duration::from_secs(2)));
    conn.handle_timeout(now + Duration::from_secs(1));
    assert!(events(&mut conn).is_empty());
    conn.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(events(&mut conn), vec![Event::Closed(CloseReason::TimedOut(Timer::Close))]);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn sending_invalid_close_codes_is_refused() {
    let (mut conn, now) = server(Config::default());
    for code in [1005, 1006, 1015, 999, 5000] {
        assert_eq!(conn.close(now, CloseCode(code), ""), Err(SendError::InvalidCloseCode(CloseCode(code))));
    }
    assert_eq!(conn.close(now, CloseCode::NORMAL, &"x".repeat(124)), Err(SendError::ControlTooLong(126)));
}

#[test]
fn keepalive_ping_when_idle_then_pong_timeout() {
    let cfg = Config::default().ping_interval(Some(Duration::from_secs(30))).pong_timeout(Duration::from_secs(5));
    let (mut conn, start) = server(cfg);
    assert_eq!(conn.poll_timeout(), Some(start + Duration::from_secs(30)));
    // Traffic pushes the ping back.
    let t10 = start + Duration::from_secs(10);
    conn.receive(t10, &client_frame(true, Opcode::Text, b"hi"));
    assert_eq!(conn.poll_timeout(), Some(t10 + Duration::from_secs(30)));
    let t40 = t10 + Duration::from_secs(30);
    conn.handle_timeout(t40);
    assert_eq!(decode_all(&transmit(&mut conn)), vec![(Opcode::Ping, true, vec![])]);
    assert_eq!(conn.poll_timeout(), Some(t40 + Duration::from_secs(5)));
    conn.handle_timeout(t40 + Duration::from_secs(5));
    let evs = events(&mut conn);
    assert_eq!(evs.last(), Some(&Event::Closed(CloseReason::TimedOut(Timer::Pong))));
    assert!(transmit(&mut conn).is_empty(), "a dead peer gets no close frame");
}

#[test]
fn keepalive_pong_measures_rtt() {
    let cfg = Config::default().ping_interval(Some(Duration::from_secs(30)));
    let (mut conn, start) = server(cfg);
    let t30 = start + Duration::from_secs(30);
    conn.handle_timeout(t30);
    let _ = transmit(&mut conn);
    conn.receive(t30 + Duration::from_millis(40), &client_frame(true, Opcode::Pong, b""));
    assert_eq!(conn.rtt(), Some(Duration::from_millis(40)));
    assert_eq!(conn.poll_timeout(), Some(t30 + Duration::from_millis(40) + Duration::from_secs(30)));
}

#[test]
fn rate_limit_drop_and_close() {
    let limit = |action| RateLimit { messages: 2, window: Duration::from_secs(1), action };
    let (mut conn, now) = server(Config::default().rate_limit(Some(limit(RateLimitAction::Drop))));
    for _ in 0..3 {
        conn.receive(now, &client_frame(true, Opcode::Text, b"m"));
    }
    conn.receive(now + Duration::from_secs(1), &client_frame(true, Opcode::Text, b"m"));
    let kinds: Vec<_> = events(&mut conn).into_iter().map(|e| matches!(e, Event::RateLimited)).collect();
    assert_eq!(kinds, [false, false, true, false]);

    let (mut conn, now) = server(Config::default().rate_limit(Some(limit(RateLimitAction::Close))));
    for _ in 0..3 {
        conn.receive(now, &client_frame(true, Opcode::Text, b"m"));
    }
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1008));
}

#[test]
fn client_masks_every_frame_and_server_reads_them() {
    let (mut client, now) = client(Config::default());
    let (mut server, _) = server(Config::default());
    client.send(now, Message::text("hello")).unwrap();
    client.send(now, Message::binary(vec![1, 2, 3])).unwrap();
    let wire = transmit(&mut client);
    assert!(decode_all(&wire).len() == 2);
    server.receive(now, &wire);
    assert_eq!(
        events(&mut server),
        vec![Event::Message(Message::text("hello")), Event::Message(Message::binary(vec![1, 2, 3]))]
    );
}

#[test]
fn streaming_send_produces_fragments() {
    let (mut conn, now) = server(Config::default());
    use nextrush_proto::MessageKind::Text;
    conn.send_fragment(now, Text, Bytes::from_static(b"ab"), false).unwrap();
    assert!(conn.send(now, Message::text("x")).is_err());
    conn.send_fragment(now, Text, Bytes::from_static(b"cd"), true).unwrap();
    assert_eq!(
        decode_all(&transmit(&mut conn)),
        vec![(Opcode::Text, false, b"ab".to_vec()), (Opcode::Continuation, true, b"cd".to_vec())]
    );
}

#[test]
fn backpressure_is_visible() {
    let (mut conn, now) = server(Config::default());
    conn.send(now, Message::binary(vec![0; 1000])).unwrap();
    assert_eq!(conn.buffered_amount(), 4 + 1000);
    let _ = transmit(&mut conn);
    assert_eq!(conn.buffered_amount(), 0);
}

#[test]
fn eof_is_abnormal() {
    let (mut conn, now) = server(Config::default());
    conn.receive_eof(now);
    let evs = events(&mut conn);
    assert!(matches!(&evs[..], [Event::Closed(r)] if r.code() == CloseCode::ABNORMAL));
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_a_whole_single_frame() {
    // Buffered whole: the one-pass path for unfragmented frames.
    let (code, reason) = server_fails_with(&client_frame(true, Opcode::Text, b"fine, then \xed\xa0\x80"));
    assert_eq!((code, reason), (1007, CloseReason::Protocol(ProtocolError::InvalidUtf8)));
}

#[test]
fn whole_frames_and_frames_in_pieces_give_the_same_messages() {
    // Sizes around the one-pass path's limit (32 KiB) and the length forms.
    for len in [0, 1, 125, 126, 65_535, 32 * 1024, 32 * 1024 + 1, 70_000] {
        let text: String = "é€a".chars().cycle().take(len).collect();
        let bytes =
            [client_frame(true, Opcode::Text, text.as_bytes()), client_frame(true, Opcode::Binary, &vec![7; len])]
                .concat();
        let expected = [Message::text(text.clone()), Message::binary(vec![7; len])];
        let (mut whole, now) = server(Config::default());
        whole.receive(now, &bytes);
        let (mut pieces, now) = server(Config::default());
        for piece in bytes.chunks(1000) {
            pieces.receive(now, piece);
        }
        for conn in [&mut whole, &mut pieces] {
            let got: Vec<Message> = events(conn)
                .into_iter()
                .filter_map(|e| match e {
                    Event::Message(m) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(got, expected, "len {len}");
        }
    }
}

#[test]
fn rfc6455_10_4_whole_single_frame_over_max_message_size() {
    let (mut conn, now) = server(Config::default().max_message_size(100));
    conn.receive(now, &client_frame(true, Opcode::Binary, &[0; 101]));
    assert_eq!(sent_close_code(&transmit(&mut conn)), Some(1009));
}

/// Bytes given with `receive_owned` are the caller's (a view of its read
/// memory, say): a frame cut at their end gets no room reserved there, which
/// would allocate anew for every such frame; `missing_input` tells the
/// caller how much to make room for.
#[test]
fn a_frame_cut_in_the_callers_buffer_gets_a_count_not_room() {
    let (mut conn, now) = server(Config::default());
    assert_eq!(conn.missing_input(), 0, "nothing pending");
    let payload = vec![b'y'; 10_000];
    let wire = client_frame(true, Opcode::Binary, &payload);
    let (head, rest) = wire.split_at(3_000);
    conn.receive_owned(now, bytes::BytesMut::from(head));
    assert!(events(&mut conn).is_empty());
    assert_eq!(conn.missing_input(), rest.len());
    let start = conn.take_partial_input().expect("a partial frame");
    assert_eq!(start.capacity(), start.len(), "no room reserved in the caller's buffer");
    // As the driver does: the start copied to memory with room, the rest
    // read after it.
    let mut moved = bytes::BytesMut::with_capacity(wire.len());
    moved.extend_from_slice(&start);
    moved.extend_from_slice(rest);
    conn.receive_owned(now, moved);
    assert_eq!(events(&mut conn), [Event::Message(Message::binary(payload))]);
    assert_eq!(conn.missing_input(), 0);
}

/// A frame cut by a read: its bytes are handed out with room for the rest,
/// the rest is read straight after them, and the message is cut from that
/// very buffer (no copy). Handed back untouched, nothing changes.
#[test]
fn a_cut_frame_is_completed_in_its_own_buffer() {
    let (mut conn, now) = server(Config::default());
    assert!(conn.take_partial_input().is_none(), "nothing pending");
    let payload = vec![b'x'; 10_000];
    let wire = client_frame(true, Opcode::Binary, &payload);
    let (head, rest) = wire.split_at(3_000);
    conn.receive(now, head);
    assert!(events(&mut conn).is_empty());

    // Handed out and back without reading: as before.
    let untouched = conn.take_partial_input().expect("a partial frame");
    conn.restore_partial_input(untouched);

    let mut buf = conn.take_partial_input().expect("a partial frame");
    assert!(buf.capacity() - buf.len() >= rest.len(), "room for the rest of the frame is reserved");
    let start = buf.as_ptr() as usize;
    let end = start + buf.capacity();
    buf.extend_from_slice(rest);
    conn.receive_owned(now, buf);
    let events = events(&mut conn);
    assert_eq!(events, [Event::Message(Message::binary(payload))]);
    let Event::Message(message) = &events[0] else { unreachable!() };
    let at = message.payload().as_ptr() as usize;
    assert!((start..end).contains(&at), "the message lives in the buffer the rest was read into");
}
