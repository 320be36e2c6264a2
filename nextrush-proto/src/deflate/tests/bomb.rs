//! Decompression bombs: the output, and the memory behind it, stay within
//! the message limit.

use bytes::BytesMut;

use super::{compress, pair, params};
use crate::ProtocolError;
use crate::deflate::{DeflateConfig, TAIL};

const MIB: usize = 1 << 20;

/// A payload that inflates to `mib` MiB of zeros: 1 MiB of zeros compressed
/// by a fresh compressor is a self-contained run of blocks, so copies of it
/// (each but the last with its flush marker) chain into one stream.
fn zero_bomb(mib: usize) -> Vec<u8> {
    let best = DeflateConfig::new().with_level(9).unwrap();
    let (mut c, _) = pair(&params(true, true, 15, 15), &best);
    let chunk = compress(&mut c, &vec![0; MIB]);
    let mut bomb = Vec::with_capacity((chunk.len() + TAIL.len()) * mib);
    for i in 0..mib {
        bomb.extend_from_slice(&chunk);
        if i + 1 < mib {
            bomb.extend_from_slice(&TAIL);
        }
    }
    bomb
}

#[test]
fn a_1_gib_bomb_in_one_frame_stops_at_the_limit() {
    let bomb = zero_bomb(1024);
    assert!(bomb.len() < 2 * MIB, "the bomb is small: {} bytes", bomb.len());
    for limit in [0, 1, 1000, MIB, 3 * MIB + 17] {
        let (_, mut d) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
        let mut out = BytesMut::new();
        let err = d.decompress(&bomb, true, &mut out, limit).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooBig { limit });
        assert_eq!(err.close_code().0, 1009);
        assert!(out.len() <= limit);
        assert!(out.capacity() <= limit, "capacity {} > limit {limit}", out.capacity());
        assert!(out.iter().all(|&b| b == 0));
    }
}

#[test]
fn a_1_gib_bomb_in_many_frames_stops_at_the_limit() {
    let bomb = zero_bomb(1024);
    let limit = 16 * MIB;
    let (_, mut d) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
    // Streaming: a fresh buffer per frame; the limit still counts the message.
    let mut total = 0;
    let mut result = Ok(());
    for frame in bomb.chunks(4096) {
        let mut out = BytesMut::new();
        result = d.decompress(frame, false, &mut out, limit);
        total += out.len();
        assert!(out.capacity() <= limit);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProtocolError::MessageTooBig { limit }));
    assert_eq!(total, limit);

    // Assembled: one buffer that already holds other data.
    let (_, mut d) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
    let mut out = BytesMut::from(&b"earlier"[..]);
    let limit = 2 * MIB;
    let mut result = Ok(());
    for frame in bomb.chunks(64 * 1024) {
        result = d.decompress(frame, false, &mut out, limit);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProtocolError::MessageTooBig { limit }));
    assert_eq!(&out[..7], b"earlier");
    assert!(out.len() <= limit + 7);
    assert!(out.capacity() <= limit + 7, "capacity {}", out.capacity());
}

#[test]
fn the_limit_is_inclusive_and_counts_the_whole_message() {
    let msg = vec![b'x'; 5000];
    let (mut c, _) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
    let payload = compress(&mut c, &msg);
    for (limit, ok) in [(5000, true), (4999, false), (0, false)] {
        let (_, mut d) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
        let mut out = BytesMut::new();
        let (a, b) = payload.split_at(payload.len() / 2);
        let result = d.decompress(a, false, &mut out, limit).and_then(|()| d.decompress(b, true, &mut out, limit));
        assert_eq!(result.is_ok(), ok, "limit {limit}: {result:?}");
        if ok {
            assert_eq!(&out[..], &msg[..]);
        }
    }
    // The count restarts with each message.
    let (mut c, mut d) = pair(&params(false, false, 15, 15), &DeflateConfig::default());
    for _ in 0..3 {
        let mut out = BytesMut::new();
        d.decompress(&compress(&mut c, &msg), true, &mut out, 5000).unwrap();
        assert_eq!(out.len(), 5000);
    }
    // No limit at all.
    let mut out = BytesMut::new();
    d.decompress(&compress(&mut c, &msg), true, &mut out, usize::MAX).unwrap();
    assert_eq!(out.len(), 5000);
    // An empty message fits a zero limit.
    let mut out = BytesMut::new();
    d.decompress(&compress(&mut c, b""), true, &mut out, 0).unwrap();
    assert!(out.is_empty());
}
