//! Scenarios: what a scripted peer sends, and how it cuts the bytes into
//! writes — with the proptest strategies that generate them.
//!
//! A scenario is a list of [`Action`]s (valid messages, fragmented with
//! pings in between, pings, pongs), then an [`Ending`] (a clean close, a
//! frame the endpoint must fail the connection on, or the end of the stream,
//! possibly mid-frame), then a cutting of the whole byte stream — the HTTP
//! head included — into writes. The same generator serves both roles: a
//! [`Peer::Client`] masks its frames, a [`Peer::Server`] does not, and the
//! "wrong masking" error flips with it.

use std::fmt;
use std::ops::Range;

use nextrush_proto::frame::Opcode;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::wire::RawFrame;

/// The `max_message_size` (and frame size) of the endpoints under test.
pub const MAX_MESSAGE: usize = 1024;

/// Most actions in a scenario. With at most two pings between the fragments
/// of a message, a scenario holds at most 30 pings, whose pongs (127 bytes
/// at most each) stay under the 4 KiB of unsent pongs beyond which the
/// protocol keeps only the newest: a limit that would make the pongs depend
/// on how reads are cut.
pub const MAX_ACTIONS: usize = 10;

/// Most frame bytes a server script sends to a client under test. The client
/// application runs in its own task, beside the connection's driver, and on
/// a multi-threaded executor it can react between two reads of one write:
/// an echo could then legitimately slip in before a Close that came in the
/// same write. The driver always reads at least 2 KiB at once, so a script
/// that fits in 2 KiB arrives in one read and the outcome is the oracle's.
pub const MAX_SERVER_SCRIPT: usize = 2048;

/// The `Sec-WebSocket-Key` of the raw client (RFC 6455 §1.3's example).
pub const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The raw client's upgrade request.
#[must_use]
pub fn upgrade_request() -> Vec<u8> {
    format!(
        "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// The scripted server's 101 for a given `Sec-WebSocket-Accept` value (always
/// 28 characters, so the length of the head is known before the key is).
#[must_use]
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// A masking key, printed compactly in failure reports.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 4]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:02x}{:02x}{:02x}{:02x})", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// Which endpoint the scripted peer plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A raw client against the server under test: frames are masked.
    Client,
    /// A raw server against the client under test: frames are unmasked.
    Server,
}

impl Peer {
    /// The HTTP head this peer opens with (the 101 with a placeholder key for
    /// a server: same length as the real one).
    #[must_use]
    pub fn head(self) -> Vec<u8> {
        match self {
            Self::Client => upgrade_request(),
            Self::Server => switching_protocols(&"=".repeat(28)),
        }
    }

    fn mask(self, key: Key) -> Option<[u8; 4]> {
        match self {
            Self::Client => Some(key.0),
            Self::Server => None,
        }
    }

    fn wrong_mask(self, key: Key) -> Option<[u8; 4]> {
        match self {
            Self::Client => None,
            Self::Server => Some(key.0),
        }
    }
}

/// One step of a scenario that keeps the connection open.
#[derive(Clone, Debug)]
pub enum Action {
    /// A data message.
    Message(Msg),
    /// A ping; the endpoint answers with a pong.
    Ping {
        /// Payload (at most 125 bytes).
        payload: Vec<u8>,
        /// Masking key (used when the peer masks).
        mask: Key,
    },
    /// An unsolicited pong.
    Pong {
        /// Payload (at most 125 bytes).
        payload: Vec<u8>,
        /// Masking key.
        mask: Key,
    },
}

/// A data message, cut into fragments, with pings between fragments.
#[derive(Clone)]
pub struct Msg {
    /// Text (opcode 1) or binary (opcode 2).
    pub text: bool,
    /// The whole payload.
    pub payload: Vec<u8>,
    /// Fragment boundaries: sorted offsets into the payload; repeats and the
    /// ends make empty fragments, which are valid.
    pub cuts: Vec<usize>,
    /// Pings sent after fragment `i` (always before the last fragment).
    pub pings: Vec<(usize, Vec<u8>)>,
    /// Masking key of the first frame (later frames derive theirs from it).
    pub mask: Key,
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(if self.text { "Text" } else { "Binary" })
            .field("payload", &crate::wire::Preview(&self.payload))
            .field("cuts", &self.cuts)
            .field("pings", &self.pings)
            .field("mask", &self.mask)
            .finish()
    }
}

/// How the scenario ends.
#[derive(Clone, Debug)]
pub enum Ending {
    /// A Close with a code that may be sent (or no body) and a UTF-8 reason.
    Close {
        /// The status code; `None` for an empty Close body.
        code: Option<u16>,
        /// The reason (at most 123 bytes).
        reason: String,
        /// Masking key.
        mask: Key,
    },
    /// A frame the endpoint must fail the connection on.
    Invalid {
        /// What is wrong with it.
        fault: Fault,
        /// Masking key.
        mask: Key,
    },
    /// The peer just stops: it ends the stream after the first `keep` bytes
    /// of a binary frame (never all of it; possibly none).
    Eof {
        /// The payload of the frame cut short.
        payload: Vec<u8>,
        /// How many of the frame's bytes are sent.
        keep: usize,
        /// Masking key.
        mask: Key,
    },
}

/// A protocol violation by the peer (RFC 6455 §5, §7.4, §8.1) or one over the
/// endpoint's size limits.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An unmasked frame from a client, a masked one from a server (§5.1).
    WrongMasking,
    /// RSV bits without a negotiated extension (§5.2).
    ReservedBits {
        /// The bits, 1..=7.
        rsv: u8,
        /// The frame's opcode.
        opcode: u8,
    },
    /// A reserved opcode (§5.2).
    UnknownOpcode(u8),
    /// A control frame with more than 125 bytes of payload (§5.5).
    OversizeControl {
        /// Close, ping or pong.
        opcode: u8,
        /// 126 or more.
        len: usize,
    },
    /// A control frame without FIN (§5.5).
    FragmentedControl {
        /// Close, ping or pong.
        opcode: u8,
    },
    /// A continuation frame with no message started (§5.4).
    ContinuationWithoutStart,
    /// A new data frame while a fragmented message is in progress (§5.4).
    DataInsideFragmented {
        /// Kind of the unfinished message.
        first_text: bool,
        /// Kind of the intruding frame.
        second_text: bool,
    },
    /// A text message that is not UTF-8 (§8.1), fragmented at `cut` if given.
    InvalidUtf8 {
        /// The payload: valid text around an invalid sequence.
        payload: Vec<u8>,
        /// Where to cut it into two frames.
        cut: Option<usize>,
    },
    /// A Close whose body is one byte (§5.5.1).
    CloseOneByte(u8),
    /// A Close with a code that may not appear on the wire (§7.4).
    CloseInvalidCode(u16),
    /// A Close whose reason is not UTF-8 (§5.5.1).
    CloseInvalidReason {
        /// A valid code.
        code: u16,
        /// The reason bytes.
        reason: Vec<u8>,
    },
    /// A single frame over `max_message_size`.
    TooBig {
        /// Payload length, over the limit.
        len: usize,
    },
    /// Two fragments, each under the limit, together over it.
    TooBigFragmented {
        /// First fragment's length.
        first: usize,
        /// Second fragment's length.
        second: usize,
    },
}

/// A complete scenario for one connection.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The scripted peer's role.
    pub peer: Peer,
    /// What it sends.
    pub actions: Vec<Action>,
    /// How it ends.
    pub ending: Ending,
    /// Frames sent after a Close or a fatal frame, which the endpoint must
    /// ignore (none after an [`Ending::Eof`]).
    pub after: Vec<Action>,
    /// The writes: consecutive ranges over the HTTP head followed by the
    /// frames (`head().len() + frames().len()` bytes in all).
    pub writes: Vec<Range<usize>>,
}

impl Scenario {
    /// The frame bytes (everything after the HTTP head).
    #[must_use]
    pub fn frames(&self) -> Vec<u8> {
        encode(self.peer, &self.actions, &self.ending, &self.after)
    }
}

fn encode(peer: Peer, actions: &[Action], ending: &Ending, after: &[Action]) -> Vec<u8> {
    let mut out = Vec::new();
    for action in actions {
        encode_action(peer, action, &mut out);
    }
    encode_ending(peer, ending, &mut out);
    if !matches!(ending, Ending::Eof { .. }) {
        for action in after {
            encode_action(peer, action, &mut out);
        }
    }
    out
}

/// The key of the `i`th frame of an action: arbitrary, and distinct.
fn derive(key: Key, i: usize) -> Key {
    let step = (i as u8).wrapping_mul(0x9D);
    Key(key.0.map(|b| b.wrapping_add(step)))
}

fn encode_action(peer: Peer, action: &Action, out: &mut Vec<u8>) {
    match action {
        Action::Message(msg) => encode_message(peer, msg, out),
        Action::Ping { payload, mask } => {
            RawFrame::new(Opcode::Ping, payload.clone(), peer.mask(*mask)).encode_into(out);
        }
        Action::Pong { payload, mask } => {
            RawFrame::new(Opcode::Pong, payload.clone(), peer.mask(*mask)).encode_into(out);
        }
    }
}

fn encode_message(peer: Peer, msg: &Msg, out: &mut Vec<u8>) {
    let mut bounds = msg.cuts.clone();
    bounds.push(msg.payload.len());
    let mut start = 0;
    let mut key = 0;
    for (i, &end) in bounds.iter().enumerate() {
        let opcode = match (i, msg.text) {
            (0, true) => Opcode::Text,
            (0, false) => Opcode::Binary,
            _ => Opcode::Continuation,
        };
        let mut frame = RawFrame::new(opcode, msg.payload[start..end].to_vec(), peer.mask(derive(msg.mask, key)));
        frame.fin = i + 1 == bounds.len();
        frame.encode_into(out);
        key += 1;
        for (_, ping) in msg.pings.iter().filter(|(after, _)| *after == i) {
            RawFrame::new(Opcode::Ping, ping.clone(), peer.mask(derive(msg.mask, key))).encode_into(out);
            key += 1;
        }
        start = end;
    }
}

fn encode_ending(peer: Peer, ending: &Ending, out: &mut Vec<u8>) {
    match ending {
        Ending::Close { code, reason, mask } => {
            let mut body = Vec::new();
            if let Some(code) = code {
                body.extend_from_slice(&code.to_be_bytes());
                body.extend_from_slice(reason.as_bytes());
            }
            RawFrame::new(Opcode::Close, body, peer.mask(*mask)).encode_into(out);
        }
        Ending::Invalid { fault, mask } => {
            for frame in fault_frames(peer, fault, *mask) {
                frame.encode_into(out);
            }
        }
        Ending::Eof { payload, keep, mask } => {
            let mut frame = Vec::new();
            RawFrame::new(Opcode::Binary, payload.clone(), peer.mask(*mask)).encode_into(&mut frame);
            out.extend_from_slice(&frame[..(*keep).min(frame.len() - 1)]);
        }
    }
}

fn fault_frames(peer: Peer, fault: &Fault, key: Key) -> Vec<RawFrame> {
    let mask = peer.mask(key);
    let second = peer.mask(derive(key, 1));
    let frame = |opcode: u8, payload: Vec<u8>| RawFrame { fin: true, rsv: 0, opcode, mask, payload };
    let close = |body: Vec<u8>| frame(Opcode::Close.bits(), body);
    match fault {
        Fault::WrongMasking => vec![RawFrame::new(Opcode::Binary, b"mask?".to_vec(), peer.wrong_mask(key))],
        Fault::ReservedBits { rsv, opcode } => vec![RawFrame { rsv: *rsv, ..frame(*opcode, b"rsv".to_vec()) }],
        Fault::UnknownOpcode(op) => vec![frame(*op, b"op".to_vec())],
        Fault::OversizeControl { opcode, len } => vec![frame(*opcode, pattern(*len, 3))],
        Fault::FragmentedControl { opcode } => vec![RawFrame { fin: false, ..frame(*opcode, b"frag".to_vec()) }],
        Fault::ContinuationWithoutStart => vec![frame(Opcode::Continuation.bits(), b"cont".to_vec())],
        Fault::DataInsideFragmented { first_text, second_text } => {
            let kind = |text: bool| if text { Opcode::Text.bits() } else { Opcode::Binary.bits() };
            vec![
                RawFrame { fin: false, ..frame(kind(*first_text), b"first".to_vec()) },
                RawFrame { mask: second, ..frame(kind(*second_text), b"second".to_vec()) },
            ]
        }
        Fault::InvalidUtf8 { payload, cut: None } => vec![frame(Opcode::Text.bits(), payload.clone())],
        Fault::InvalidUtf8 { payload, cut: Some(cut) } => vec![
            RawFrame { fin: false, ..frame(Opcode::Text.bits(), payload[..*cut].to_vec()) },
            RawFrame { mask: second, ..frame(Opcode::Continuation.bits(), payload[*cut..].to_vec()) },
        ],
        Fault::CloseOneByte(byte) => vec![close(vec![*byte])],
        Fault::CloseInvalidCode(code) => vec![close(code.to_be_bytes().to_vec())],
        Fault::CloseInvalidReason { code, reason } => {
            let mut body = code.to_be_bytes().to_vec();
            body.extend_from_slice(reason);
            vec![close(body)]
        }
        Fault::TooBig { len } => vec![frame(Opcode::Binary.bits(), pattern(*len, 7))],
        Fault::TooBigFragmented { first, second: second_len } => vec![
            RawFrame { fin: false, ..frame(Opcode::Binary.bits(), pattern(*first, 1)) },
            RawFrame { mask: second, ..frame(Opcode::Continuation.bits(), pattern(*second_len, 2)) },
        ],
    }
}

/// `len` bytes of a recognisable pattern (cheaper to generate and shrink
/// than arbitrary vectors for the large payloads).
#[must_use]
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

// ----- strategies ------------------------------------------------------------

/// A scenario for a scripted `peer`, with its writes.
pub fn scenario(peer: Peer) -> impl Strategy<Value = Scenario> {
    // How many frame bytes go out with the end of the head: none, all of them
    // (the whole conversation reaches the endpoint in its handshake's
    // leftover, before the application runs), or any number.
    let with_head = prop_oneof![
        1 => Just(HeadWrite::Alone),
        1 => Just(HeadWrite::Everything),
        3 => any::<Index>().prop_map(HeadWrite::Some),
    ];
    let chunking = (vec(any::<Index>(), 0..3), with_head, vec(any::<Index>(), 0..16));
    let after = prop_oneof![3 => Just(Vec::new()), 1 => vec(action(), 1..3)];
    (vec(action(), 0..=MAX_ACTIONS), ending(), after, chunking).prop_map(
        move |(mut actions, ending, mut after, cuts)| {
            if matches!(ending, Ending::Eof { .. }) {
                after.clear();
            }
            if peer == Peer::Server {
                while encode(peer, &actions, &ending, &after).len() > MAX_SERVER_SCRIPT {
                    if after.pop().is_none() && actions.pop().is_none() {
                        break;
                    }
                }
            }
            let head_len = peer.head().len();
            let frames_len = encode(peer, &actions, &ending, &after).len();
            let (head_cuts, with_head, cuts) = cuts;
            let head_cuts: Vec<usize> = head_cuts.iter().map(|i| i.index(head_len)).collect();
            let first = head_len
                + match with_head {
                    HeadWrite::Alone => 0,
                    HeadWrite::Everything => frames_len,
                    HeadWrite::Some(i) => i.index(frames_len + 1),
                };
            let cuts: Vec<usize> = cuts.iter().map(|i| head_len + i.index(frames_len + 1)).collect();
            let writes = writes(head_len + frames_len, &head_cuts, first, &cuts);
            Scenario { peer, actions, ending, after, writes }
        },
    )
}

/// What goes out in the write that completes the HTTP head.
#[derive(Clone, Debug)]
enum HeadWrite {
    Alone,
    Everything,
    Some(Index),
}

/// Cuts `total` bytes into writes: at `head_cuts` (inside the HTTP head), at
/// `first` (the end of the write that completes the head, carrying the first
/// frame bytes with it), and at those of `cuts` after `first`.
fn writes(total: usize, head_cuts: &[usize], first: usize, cuts: &[usize]) -> Vec<Range<usize>> {
    let mut ends: Vec<usize> = head_cuts.iter().copied().filter(|&c| c > 0).collect();
    ends.push(first);
    ends.extend(cuts.iter().copied().filter(|&c| c > first));
    ends.push(total);
    ends.sort_unstable();
    ends.dedup();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

fn mask() -> impl Strategy<Value = Key> {
    any::<[u8; 4]>().prop_map(Key)
}

/// Mostly short, sometimes the 125-byte maximum.
fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![7 => vec(any::<u8>(), 0..=8), 1 => Just(pattern(125, 5))]
}

fn payload() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let sizes =
        prop_oneof![Just(0usize), Just(1), Just(125), Just(126), Just(127), Just(MAX_MESSAGE - 1), Just(MAX_MESSAGE)];
    prop_oneof![
        3 => "\\PC{0,40}".prop_map(|s| (true, s.into_bytes())),
        // Multi-byte characters, so that fragment cuts split them.
        1 => "[a-z é€😀]{0,250}".prop_map(|s| (true, s.into_bytes())),
        3 => vec(any::<u8>(), 0..200).prop_map(|v| (false, v)),
        1 => (sizes, any::<u8>()).prop_map(|(len, seed)| (false, pattern(len, seed))),
    ]
}

fn message() -> impl Strategy<Value = Msg> {
    (payload(), vec(any::<Index>(), 0..4), vec((any::<Index>(), control_payload()), 0..=2), mask()).prop_map(
        |((text, payload), cuts, pings, mask)| {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            let gaps = cuts.len();
            let pings =
                if gaps == 0 { Vec::new() } else { pings.into_iter().map(|(i, p)| (i.index(gaps), p)).collect() };
            Msg { text, payload, cuts, pings, mask }
        },
    )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => message().prop_map(Action::Message),
        2 => (control_payload(), mask()).prop_map(|(payload, mask)| Action::Ping { payload, mask }),
        1 => (control_payload(), mask()).prop_map(|(payload, mask)| Action::Pong { payload, mask }),
    ]
}

fn valid_close_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000..=1003u16, 1007..=1014u16, 3000..=4999u16]
}

fn invalid_close_code() -> impl Strategy<Value = u16> {
    prop_oneof![0..=999u16, 1004..=1006u16, Just(1015u16), 1016..=2999u16, 5000..=u16::MAX]
}

fn control_opcode() -> impl Strategy<Value = u8> {
    prop_oneof![Just(Opcode::Close.bits()), Just(Opcode::Ping.bits()), Just(Opcode::Pong.bits())]
}

/// Byte sequences that are never valid UTF-8 (RFC 3629), whatever follows:
/// a lone continuation, 0xFF, an overlong encoding, a surrogate, a code point
/// past U+10FFFF, a lead byte followed by ASCII.
fn invalid_utf8() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0x80]),
        Just(vec![0xFF]),
        Just(vec![0xC0, 0x80]),
        Just(vec![0xED, 0xA0, 0x80]),
        Just(vec![0xF4, 0x90, 0x80, 0x80]),
        Just(vec![0xE2, 0x82, b'x']),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::WrongMasking),
        (1..=7u8, prop_oneof![Just(1u8), Just(2u8), Just(9u8)])
            .prop_map(|(rsv, opcode)| Fault::ReservedBits { rsv, opcode }),
        prop_oneof![3..=7u8, 0xB..=0xFu8].prop_map(Fault::UnknownOpcode),
        (control_opcode(), 126..=200usize).prop_map(|(opcode, len)| Fault::OversizeControl { opcode, len }),
        control_opcode().prop_map(|opcode| Fault::FragmentedControl { opcode }),
        Just(Fault::ContinuationWithoutStart),
        (any::<bool>(), any::<bool>())
            .prop_map(|(first_text, second_text)| Fault::DataInsideFragmented { first_text, second_text }),
        ("\\PC{0,12}", invalid_utf8(), "\\PC{0,12}", any::<Option<Index>>()).prop_map(|(pre, bad, post, cut)| {
            let payload = [pre.as_bytes(), &bad, post.as_bytes()].concat();
            let cut = cut.map(|i| i.index(payload.len() + 1));
            Fault::InvalidUtf8 { payload, cut }
        }),
        any::<u8>().prop_map(Fault::CloseOneByte),
        invalid_close_code().prop_map(Fault::CloseInvalidCode),
        (valid_close_code(), "\\PC{0,8}", invalid_utf8()).prop_map(|(code, text, bad)| {
            Fault::CloseInvalidReason { code, reason: [text.as_bytes(), &bad].concat() }
        }),
        (MAX_MESSAGE + 1..=MAX_MESSAGE + 80).prop_map(|len| Fault::TooBig { len }),
        (1..=MAX_MESSAGE, 1..=64usize).prop_map(|(first, over)| Fault::TooBigFragmented {
            first,
            second: (MAX_MESSAGE + over - first).min(MAX_MESSAGE),
        }),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    let reason = "\\PC{0,20}".prop_map(|s: String| {
        let mut s = s;
        while s.len() > 123 {
            s.pop();
        }
        s
    });
    let eof = (vec(any::<u8>(), 1..40), 0..50usize, mask()).prop_map(|(payload, keep, mask)| Ending::Eof {
        payload,
        keep,
        mask,
    });
    prop_oneof![
        3 => (proptest::option::weighted(0.85, valid_close_code()), reason, mask())
            .prop_map(|(code, reason, mask)| Ending::Close { code, reason, mask }),
        4 => (fault(), mask()).prop_map(|(fault, mask)| Ending::Invalid { fault, mask }),
        1 => eof,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cover_the_stream_once() {
        let ranges = writes(160, &[0, 40], 120, &[110, 150, 150]);
        assert_eq!(ranges, [0..40, 40..120, 120..150, 150..160]);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(160));
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start && w[0].start < w[0].end));
    }

    #[test]
    fn heads_have_fixed_lengths() {
        let accept = nextrush_proto::handshake::accept_key(CLIENT_KEY);
        assert_eq!(switching_protocols(&accept).len(), Peer::Server.head().len());
    }
}
