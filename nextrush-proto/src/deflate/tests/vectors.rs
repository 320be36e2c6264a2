//! The examples of RFC 7692 §7.2.3, byte for byte.

use bytes::BytesMut;

use super::{compress, decompress, pair, params};
use crate::deflate::{Compressor, Decompressor, DeflateConfig};
use crate::{ProtocolError, Role};

/// §7.2.3.1: "Hello" in one fixed-Huffman block, tail stripped.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/// §7.2.3.2: the second "Hello" referring back into the first.
const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];
/// §7.2.3.3: "Hello" in a stored block, then the header of an empty one.
const STORED: [u8; 11] = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
/// §7.2.3.4: "Hello" in a block with BFINAL set, then an empty-block header.
const BFINAL: [u8; 8] = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
/// §7.2.3.5: "He" and "llo" in two blocks separated by a sync flush.
const TWO_BLOCKS: [u8; 13] = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];

fn client_decompressor(server_no_context_takeover: bool) -> Decompressor {
    Decompressor::new(&params(server_no_context_takeover, false, 15, 15), Role::Client)
}

/// The RFC's bytes are what zlib produces at its default level, 6. Other
/// levels may choose other (valid) bytes: level 1 writes the second "Hello"
/// as `02 13 00 00`.
fn level_6() -> DeflateConfig {
    DeflateConfig::new().with_level(6).unwrap()
}

#[test]
fn every_level_refers_back_and_decodes() {
    for level in 0..=9 {
        let config = DeflateConfig::new().with_level(level).unwrap();
        let (mut c, mut d) = pair(&params(false, false, 15, 15), &config);
        let first = compress(&mut c, b"Hello");
        let second = compress(&mut c, b"Hello");
        assert!(level == 0 || second.len() < first.len(), "level {level}");
        assert_eq!(decompress(&mut d, &first), b"Hello");
        assert_eq!(decompress(&mut d, &second), b"Hello");
    }
}

#[test]
fn hello_compresses_to_the_rfc_bytes_and_the_second_refers_back() {
    let (mut c, _) = pair(&params(false, false, 15, 15), &level_6());
    assert_eq!(compress(&mut c, b"Hello"), HELLO, "§7.2.3.1");
    assert_eq!(compress(&mut c, b"Hello"), HELLO_AGAIN, "§7.2.3.2, context takeover");
}

#[test]
fn without_context_takeover_every_hello_is_the_same() {
    for role in [Role::Server, Role::Client] {
        let p = params(true, true, 15, 15);
        let mut c = Compressor::new(&p, role, &level_6());
        for _ in 0..3 {
            assert_eq!(compress(&mut c, b"Hello"), HELLO, "§7.2.3.2, no context takeover");
        }
    }
}

#[test]
fn hello_decompresses_whole_and_in_the_rfc_fragments() {
    let mut d = client_decompressor(false);
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
    // §7.2.3.1: the same payload split into frames of 3 and 4 octets.
    let mut d = client_decompressor(false);
    let mut out = BytesMut::new();
    d.decompress(&HELLO[..3], false, &mut out, 1024).unwrap();
    assert!(d.in_message());
    d.decompress(&HELLO[3..], true, &mut out, 1024).unwrap();
    assert!(!d.in_message());
    assert_eq!(&out[..], b"Hello");
}

#[test]
fn context_takeover_resolves_the_back_reference() {
    let mut d = client_decompressor(false);
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
    assert_eq!(decompress(&mut d, &HELLO_AGAIN), b"Hello");
}

#[test]
fn no_context_takeover_resets_the_window_between_messages() {
    // The peer promised no context takeover, so our window is reset after
    // each message and the back-reference has nothing to point at.
    let mut d = client_decompressor(true);
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
    let mut out = BytesMut::new();
    let err = d.decompress(&HELLO_AGAIN, true, &mut out, 1024).unwrap_err();
    assert!(matches!(err, ProtocolError::Compression(_)), "{err:?}");
    assert_eq!(err.close_code().0, 1002);
}

#[test]
fn stored_bfinal_and_two_block_payloads_decode() {
    for (name, payload) in [("§7.2.3.3", &STORED[..]), ("§7.2.3.4", &BFINAL[..]), ("§7.2.3.5", &TWO_BLOCKS[..])] {
        let mut d = client_decompressor(false);
        assert_eq!(decompress(&mut d, payload), b"Hello", "{name}");
        // The stream is still in step: another message decodes.
        assert_eq!(decompress(&mut d, &HELLO), b"Hello", "{name}, next message");
        assert_eq!(decompress(&mut d, &HELLO_AGAIN), b"Hello", "{name}, back-reference");
    }
}

#[test]
fn bfinal_without_the_extra_octet_keeps_the_stream_in_step() {
    // §7.2.3.4 says the trailing 0x00 is necessary; a peer that omits it
    // still gets its message through, and the next one decodes.
    let mut d = client_decompressor(false);
    assert_eq!(decompress(&mut d, &BFINAL[..7]), b"Hello");
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
    // ...also when the BFINAL block ends a non-final frame.
    let mut out = BytesMut::new();
    d.decompress(&BFINAL[..7], false, &mut out, 64).unwrap();
    d.decompress(&[], true, &mut out, 64).unwrap();
    assert_eq!(&out[..], b"Hello");
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
}

#[test]
fn every_split_of_every_vector_decodes() {
    for payload in [&HELLO[..], &STORED, &BFINAL, &TWO_BLOCKS] {
        for cut in 0..=payload.len() {
            let mut d = client_decompressor(false);
            let mut out = BytesMut::new();
            d.decompress(&payload[..cut], false, &mut out, 5).unwrap();
            d.decompress(&payload[cut..], true, &mut out, 5).unwrap();
            assert_eq!(&out[..], b"Hello", "{payload:02x?} cut at {cut}");
        }
    }
}

#[test]
fn an_empty_final_fragment_is_a_single_zero_octet() {
    // §7.2.3.6: data of unknown size; the end is found after a flushed
    // fragment, so the final frame carries only `00`.
    let (mut c, mut d) = pair(&params(false, false, 15, 15), &level_6());
    let mut first = BytesMut::new();
    c.compress_fragment(b"Hello", false, &mut first).unwrap();
    assert!(c.in_message());
    assert_eq!(&first[..], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff]);
    let mut last = BytesMut::new();
    c.compress_fragment(b"", true, &mut last).unwrap();
    assert!(!c.in_message());
    assert_eq!(&last[..], [0x00]);

    let mut out = BytesMut::new();
    d.decompress(&first, false, &mut out, 64).unwrap();
    assert_eq!(&out[..], b"Hello", "a flushed fragment decodes on arrival");
    d.decompress(&last, true, &mut out, 64).unwrap();
    assert_eq!(&out[..], b"Hello");
    // In step for the next message, which refers back.
    assert_eq!(decompress(&mut d, &compress(&mut c, b"Hello")), b"Hello");
}

#[test]
fn empty_messages_round_trip_with_and_without_takeover() {
    for nct in [false, true] {
        let (mut c, mut d) = pair(&params(nct, nct, 15, 15), &DeflateConfig::default());
        for msg in [&b""[..], b"", b"Hello", b"", b"Hello", b""] {
            let payload = compress(&mut c, msg);
            assert!(!payload.is_empty(), "a compressed payload is never empty");
            assert_eq!(decompress(&mut d, &payload), msg);
        }
    }
}

#[test]
fn corrupt_data_is_a_compression_error() {
    // BTYPE = 11 is reserved.
    let mut d = client_decompressor(false);
    let mut out = BytesMut::new();
    let err = d.decompress(&[0xff, 0xff, 0xff], true, &mut out, 64).unwrap_err();
    assert!(matches!(err, ProtocolError::Compression(_)), "{err:?}");
    // A stored block whose NLEN is not the complement of LEN.
    let mut d = client_decompressor(false);
    let err = d.decompress(&[0x00, 0x05, 0x00, 0x00, 0x00], true, &mut out, 64).unwrap_err();
    assert!(matches!(err, ProtocolError::Compression(_)), "{err:?}");
    // After an error the decompressor starts over.
    assert!(!d.in_message());
    assert_eq!(decompress(&mut d, &HELLO), b"Hello");
}

#[test]
fn state_is_lazy_and_can_be_released() {
    let p = params(true, true, 15, 15);
    let (mut c, mut d) = pair(&p, &DeflateConfig::default());
    assert!(!c.is_allocated() && !d.is_allocated());
    assert_eq!(decompress(&mut d, &compress(&mut c, b"Hello")), b"Hello");
    assert!(c.is_allocated() && d.is_allocated());
    assert!(c.release() && d.release());
    assert!(!c.is_allocated() && !d.is_allocated());
    assert_eq!(decompress(&mut d, &compress(&mut c, b"Hello")), b"Hello");

    // Mid-message nothing is released; with context takeover the
    // decompressor keeps its window.
    let p = params(false, false, 15, 15);
    let (mut c, mut d) = pair(&p, &DeflateConfig::default());
    let mut out = BytesMut::new();
    c.compress_fragment(b"Hel", false, &mut out).unwrap();
    assert!(!c.release());
    c.compress_fragment(b"lo", true, &mut out).unwrap();
    assert_eq!(decompress(&mut d, &out), b"Hello");
    assert!(!d.release());
    // Releasing the compressor with takeover only costs ratio: the next
    // message does not refer back, and the peer still decodes it.
    assert!(c.release());
    let fresh = compress(&mut c, b"Hello");
    assert_eq!(decompress(&mut Decompressor::new(&p, Role::Client), &fresh), b"Hello");
    assert_eq!(decompress(&mut d, &fresh), b"Hello");
}

#[test]
fn an_8_bit_window_is_honoured_with_zlibs_9_bit_window() {
    // A 300-byte pseudo-random block repeated: every match is 300 bytes back.
    let block: Vec<u8> = (0..300u32).map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let data = block.repeat(20);
    let max_distance = |bits: u8| {
        let p = params(false, false, bits, 15);
        let (mut c, mut d) = pair(&p, &level_6());
        let mut stream = compress(&mut c, &data);
        assert_eq!(decompress(&mut d, &stream), data);
        stream.extend_from_slice(&crate::deflate::TAIL);
        let inflated = super::puff::inflate(&stream).unwrap();
        assert_eq!(inflated.data, data);
        inflated.max_distance
    };
    assert!(max_distance(10) >= 300, "a 10-bit window uses the repeats");
    // zlib never matches farther back than 2^w - 262: 250 bytes for w = 9,
    // which an 8-bit (256-byte) window holds.
    assert!(max_distance(9) <= 250);
    assert!(max_distance(8) <= 250);
}

#[test]
fn incompressible_messages_are_sent_as_they_are_and_the_stream_stays_in_step() {
    let mut random = vec![0; 4000];
    crate::Entropy::fill(&mut crate::SeededEntropy::new(9), &mut random);
    let chat = b"{\"type\":\"message\",\"room\":\"lobby\",\"text\":\"hello hello hello\"}";
    for level in [1, 6] {
        for nct in [false, true] {
            let config = DeflateConfig::new().with_level(level).unwrap();
            let (mut c, mut d) = pair(&params(nct, nct, 15, 15), &config);
            let mut out = BytesMut::from(&b"frame header"[..]);
            assert_eq!(c.compress(chat, &mut out), Ok(true));
            let first = out.split_off(12);
            assert_eq!(decompress(&mut d, &first), chat);
            // Random data and the empty message do not shrink: nothing is
            // written and the caller sends them uncompressed.
            assert_eq!(c.compress(&random, &mut out), Ok(false));
            assert_eq!(c.compress(b"", &mut out), Ok(false));
            assert_eq!(&out[..], b"frame header");
            // The peer never sees them; the next message decodes.
            let mut next = BytesMut::new();
            assert_eq!(c.compress(chat, &mut next), Ok(true));
            assert_eq!(decompress(&mut d, &next), chat, "level {level}, nct {nct}");
        }
    }
}
