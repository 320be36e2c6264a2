//! Encode once, deliver many: [`EncodedMessage`] and the per-member
//! [`Encoding`].
//!
//! A server frame is unmasked (RFC 6455 §5.1: "A server MUST NOT mask any
//! frames that it sends to the client"), so the bytes of a broadcast are the
//! same for every recipient that negotiated the same thing. An
//! [`EncodedMessage`] holds the message and computes, lazily and at most
//! once each:
//!
//! - the plain frame (FIN, RSV1 clear), for members without
//!   permessage-deflate;
//! - one compressed frame per [`DeflateKey`], for members whose negotiated
//!   parameters include `server_no_context_takeover`: without context
//!   takeover the compressed bytes depend only on the message, the window
//!   and the level (RFC 7692 §7.1.1.1), so every such member shares them.
//!
//! Members with context takeover cannot share: their compressed bytes depend
//! on everything sent on that connection before. They get
//! [`Outbound::Message`] and their connection compresses it
//! ([`Encoding::PerConnection`]); the hub counts these fallbacks in
//! [`RoomsStats::per_connection_encodings`](crate::RoomsStats::per_connection_encodings).

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use nextrush_proto::Message;
use nextrush_proto::frame::{FrameHead, MAX_HEAD_LEN, Opcode};

#[cfg(feature = "deflate")]
pub use deflate::DeflateKey;

/// How one member's connection sends broadcasts. Fixed by its handshake and
/// reported once, by [`Member::encoding`](crate::Member::encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// No permessage-deflate: the plain frame, shared by all such members.
    #[default]
    Plain,
    /// permessage-deflate with `server_no_context_takeover`: the compressed
    /// frame for these settings, shared by all members with the same key.
    #[cfg(feature = "deflate")]
    Shared(DeflateKey),
    /// permessage-deflate with context takeover: the member's connection
    /// encodes (and compresses) the message itself.
    PerConnection,
}

#[cfg(feature = "deflate")]
impl Encoding {
    /// The encoding for a connection from its handshake: `params` as
    /// negotiated (`None` when deflate is off) and the server's
    /// [`DeflateConfig`](nextrush_proto::deflate::DeflateConfig).
    #[must_use]
    pub fn negotiated(
        params: Option<&nextrush_proto::deflate::DeflateParams>,
        config: &nextrush_proto::deflate::DeflateConfig,
    ) -> Self {
        match params {
            None => Self::Plain,
            Some(params) => DeflateKey::new(params, config).map_or(Self::PerConnection, Self::Shared),
        }
    }
}

/// What a member's queue holds: bytes ready for the wire, or a message its
/// connection must still encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// One complete, unmasked server frame, shared with other recipients:
    /// hand it to `Connection::send_encoded`.
    Frame(Bytes),
    /// A message for `Connection::send`, which compresses it with the
    /// connection's own context ([`Encoding::PerConnection`]).
    Message(Message),
}

impl Outbound {
    /// Bytes this item costs in a queue's budget: the frame's length, or the
    /// message's uncompressed frame length (an upper bound of what it sends
    /// unless compression grows it).
    #[must_use]
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Frame(frame) => frame.len(),
            Self::Message(message) => head_len(message.len()) + message.len(),
        }
    }
}

/// A message to broadcast, with its encodings computed lazily and shared.
///
/// Cheap to clone (one `Arc`); rooms keep clones in their history, so a
/// replay reuses the frames already built. Build one with
/// [`new`](Self::new) or `From` a [`Message`], `&'static str`, `String`,
/// `Bytes` or `Vec<u8>`.
#[derive(Clone)]
pub struct EncodedMessage(Arc<Inner>);

struct Inner {
    message: Message,
    plain: OnceLock<Bytes>,
    #[cfg(feature = "deflate")]
    compressed: std::sync::Mutex<Vec<(DeflateKey, Bytes)>>,
}

impl EncodedMessage {
    /// Wraps `message`; nothing is encoded until a member needs it.
    ///
    /// A payload shorter than 16 KiB is copied ([`Message::into_compact`]). A
    /// message received from a peer may be a view into the read buffer it
    /// arrived in (the driver's buffers are 64 KiB), and a broadcast that a
    /// room remembers, or that waits in a member's queue, would keep that
    /// whole buffer alive: a 20-byte message, 64 KiB. With the copy, what a
    /// broadcast keeps is at most four times its size.
    #[must_use]
    pub fn new(message: impl Into<Message>) -> Self {
        Self(Arc::new(Inner {
            message: message.into().into_compact(),
            plain: OnceLock::new(),
            #[cfg(feature = "deflate")]
            compressed: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.0.message
    }

    /// The payload length in bytes (uncompressed).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.message.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.message.is_empty()
    }

    /// The plain frame: FIN, no RSV bits, unmasked, head and payload in one
    /// `Bytes`. Built on first use, then shared.
    #[must_use]
    pub fn plain_frame(&self) -> &Bytes {
        self.0.plain.get_or_init(|| encode_frame(opcode(&self.0.message), 0, self.0.message.payload()))
    }

    /// What a member with `encoding` gets.
    #[must_use]
    pub fn outbound(&self, encoding: &Encoding) -> Outbound {
        match encoding {
            Encoding::Plain => Outbound::Frame(self.plain_frame().clone()),
            #[cfg(feature = "deflate")]
            Encoding::Shared(key) => Outbound::Frame(self.compressed_frame(key).0),
            Encoding::PerConnection => Outbound::Message(self.0.message.clone()),
        }
    }

    /// Whether `self` and `other` are the same message (one was cloned from
    /// the other).
    #[must_use]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for EncodedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedMessage")
            .field("message", &self.0.message)
            .field("plain_encoded", &self.0.plain.get().is_some())
            .finish_non_exhaustive()
    }
}

impl From<Message> for EncodedMessage {
    fn from(message: Message) -> Self {
        Self::new(message)
    }
}

impl From<&'static str> for EncodedMessage {
    fn from(text: &'static str) -> Self {
        Self::new(Message::text(text))
    }
}

impl From<String> for EncodedMessage {
    fn from(text: String) -> Self {
        Self::new(Message::text(text))
    }
}

impl From<Bytes> for EncodedMessage {
    fn from(data: Bytes) -> Self {
        Self::new(Message::binary(data))
    }
}

impl From<Vec<u8>> for EncodedMessage {
    fn from(data: Vec<u8>) -> Self {
        Self::new(Message::binary(data))
    }
}

/// Counts what one fan-out encoded, and remembers the last shared frame so
/// that a fan-out to many members with one key takes no lock per member.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// Compressions actually performed (not found in the cache).
    pub(crate) compressions: u64,
    /// Members given the message to encode themselves.
    pub(crate) per_connection: u64,
    #[cfg(feature = "deflate")]
    last: Option<(DeflateKey, Bytes)>,
}

impl Encoder {
    /// `message` for a member with `encoding`.
    pub(crate) fn outbound(&mut self, message: &EncodedMessage, encoding: &Encoding) -> Outbound {
        match encoding {
            Encoding::Plain => Outbound::Frame(message.plain_frame().clone()),
            #[cfg(feature = "deflate")]
            Encoding::Shared(key) => {
                if let Some((last, frame)) = &self.last
                    && last == key
                {
                    return Outbound::Frame(frame.clone());
                }
                let (frame, computed) = message.compressed_frame(key);
                self.compressions += u64::from(computed);
                self.last = Some((*key, frame.clone()));
                Outbound::Frame(frame)
            }
            Encoding::PerConnection => {
                self.per_connection += 1;
                Outbound::Message(message.message().clone())
            }
        }
    }
}

fn opcode(message: &Message) -> Opcode {
    match message {
        Message::Text(_) => Opcode::Text,
        Message::Binary(_) => Opcode::Binary,
    }
}

/// The length of an unmasked frame head for a payload of `len` bytes.
const fn head_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// One complete unmasked frame: head and payload in one buffer.
fn encode_frame(opcode: Opcode, rsv: u8, payload: &[u8]) -> Bytes {
    let head = FrameHead { fin: true, rsv, opcode, mask: None, len: payload.len() as u64 };
    let mut buf = [0; MAX_HEAD_LEN];
    let n = head.encode(&mut buf);
    let mut frame = BytesMut::with_capacity(n + payload.len());
    frame.extend_from_slice(&buf[..n]);
    frame.extend_from_slice(payload);
    frame.freeze()
}

#[cfg(feature = "deflate")]
mod deflate {
    use bytes::{Bytes, BytesMut};
    use nextrush_proto::Role;
    use nextrush_proto::deflate::{Compressor, DeflateConfig, DeflateParams, WindowBits};
    use nextrush_proto::frame::FrameHead;

    use super::{EncodedMessage, encode_frame, opcode};

    /// The settings that determine a compressed broadcast frame when the
    /// server compresses without context takeover: the window it compresses
    /// with, the zlib level, and the threshold below which it does not
    /// compress. Members with equal keys share one compressed frame.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DeflateKey {
        window_bits: WindowBits,
        level: u32,
        threshold: usize,
    }

    impl DeflateKey {
        /// The key for a connection with these negotiated `params` and the
        /// server's `config`; `None` unless `server_no_context_takeover` was
        /// agreed (then the connection must compress itself).
        #[must_use]
        pub fn new(params: &DeflateParams, config: &DeflateConfig) -> Option<Self> {
            params.compress_no_context_takeover(Role::Server).then(|| Self {
                window_bits: params.compress_window_bits(Role::Server),
                level: config.level(),
                threshold: config.effective_threshold(true),
            })
        }

        /// The window the server compresses with.
        #[must_use]
        pub const fn window_bits(&self) -> WindowBits {
            self.window_bits
        }

        /// The zlib level, 0 to 9.
        #[must_use]
        pub const fn level(&self) -> u32 {
            self.level
        }

        /// Messages shorter than this are sent uncompressed.
        #[must_use]
        pub const fn threshold(&self) -> usize {
            self.threshold
        }

        /// A compressor that produces exactly what a connection with this
        /// key would: server role, no context takeover.
        fn compressor(&self) -> Compressor {
            let params = DeflateParams {
                server_no_context_takeover: true,
                server_max_window_bits: Some(self.window_bits),
                ..DeflateParams::default()
            };
            let config = DeflateConfig::new().with_threshold(self.threshold);
            // The level came from a validated DeflateConfig, so it is 0..=9.
            let config = config.clone().with_level(self.level).unwrap_or(config);
            Compressor::new(&params, Role::Server, &config)
        }
    }

    impl EncodedMessage {
        /// The frame for members with `key`: compressed (RSV1 set) when the
        /// message reaches the threshold and shrinks, the plain frame
        /// otherwise (an uncompressed message is always valid on a deflate
        /// connection, RFC 7692 §6). Computed once per key, then shared.
        #[must_use]
        pub fn compressed(&self, key: &DeflateKey) -> Bytes {
            self.compressed_frame(key).0
        }

        /// The frame for `key`, and whether this call compressed it.
        pub(crate) fn compressed_frame(&self, key: &DeflateKey) -> (Bytes, bool) {
            let message = &self.0.message;
            if message.len() < key.threshold {
                return (self.plain_frame().clone(), false);
            }
            let mut cache = self.0.compressed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, frame)) = cache.iter().find(|(k, _)| k == key) {
                return (frame.clone(), false);
            }
            let mut out = BytesMut::new();
            let frame = match key.compressor().compress(message.payload(), &mut out) {
                Ok(true) => encode_frame(opcode(message), FrameHead::RSV1, &out),
                // Did not shrink (or zlib failed): the plain frame.
                Ok(false) | Err(_) => self.plain_frame().clone(),
            };
            cache.push((*key, frame.clone()));
            (frame, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use nextrush_proto::Utf8Bytes;

    use super::*;

    #[test]
    fn plain_frame_is_one_unmasked_final_frame() {
        let message = EncodedMessage::from("Hello");
        // RFC 6455 §5.7: "A single-frame unmasked text message".
        assert_eq!(&message.plain_frame()[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let binary = EncodedMessage::from(vec![0u8; 300]);
        assert_eq!(&binary.plain_frame()[..4], &[0x82, 126, 0x01, 0x2c]);
        assert_eq!(binary.plain_frame().len(), 304);
    }

    /// A view of `len` bytes into a 64 KiB buffer, as a received message is,
    /// and a weak handle on the buffer to tell when it is freed.
    fn received(len: usize) -> (Bytes, Weak<Vec<u8>>) {
        let buffer = Arc::new(vec![b'a'; 64 * 1024]);
        let memory = Arc::downgrade(&buffer);
        (Bytes::from_owner(ReadBuffer(buffer)).slice(..len), memory)
    }

    struct ReadBuffer(Arc<Vec<u8>>);

    impl AsRef<[u8]> for ReadBuffer {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn a_small_broadcast_does_not_keep_the_buffer_it_was_read_into() {
        let (view, buffer) = received(20);
        let text = EncodedMessage::new(Message::Text(Utf8Bytes::try_from_bytes(view).unwrap()));
        assert!(buffer.upgrade().is_none(), "the text was copied out");
        assert_eq!(text.message(), &Message::text("a".repeat(20)));

        let (view, buffer) = received(16 * 1024 - 1);
        let binary = EncodedMessage::new(Message::Binary(view));
        assert!(buffer.upgrade().is_none(), "the payload was copied out");
        assert_eq!(binary.len(), 16 * 1024 - 1);

        let (view, buffer) = received(16 * 1024);
        let large = EncodedMessage::new(Message::Binary(view));
        assert!(buffer.upgrade().is_some(), "a large payload is kept as it is: at most 4× its size");
        drop(large);
        assert!(buffer.upgrade().is_none());
    }

    #[test]
    fn plain_frame_is_shared_not_copied() {
        let message = EncodedMessage::from("shared");
        let (a, b) = (message.outbound(&Encoding::Plain), message.clone().outbound(&Encoding::Plain));
        let (Outbound::Frame(a), Outbound::Frame(b)) = (a, b) else { panic!("frames expected") };
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn per_connection_gets_the_message() {
        let message = EncodedMessage::from("raw");
        let mut encoder = Encoder::default();
        assert_eq!(encoder.outbound(&message, &Encoding::PerConnection), Outbound::Message(Message::text("raw")));
        assert_eq!(encoder.per_connection, 1);
        assert_eq!(Outbound::Message(Message::text("raw")).wire_len(), 5);
    }

    #[test]
    fn wire_len_counts_the_head() {
        assert_eq!(Outbound::Message(Message::binary(vec![0; 126])).wire_len(), 130);
        assert_eq!(Outbound::Message(Message::binary(vec![0; 70_000])).wire_len(), 70_010);
    }
}
