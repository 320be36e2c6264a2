//! Our permessage-deflate preferences, for either role.

use crate::error::ConfigError;

use super::params::WindowBits;

/// What we want from permessage-deflate. One type serves both roles; the
/// table says what each setting does in each.
///
/// | setting | as server | as client |
/// | --- | --- | --- |
/// | `server_no_context_takeover` | we reset our compressor after each message (always answered when the client asks) | we ask the server to reset |
/// | `client_no_context_takeover` | we ask the client to reset (lets our decompressor drop its window) | we reset, and say so in the offer |
/// | `server_max_window_bits` | the largest window we compress with | if below 15, we ask the server for at most this |
/// | `client_max_window_bits` | if below 15 and the client supports it, we ask it for at most this | the largest window we compress with |
/// | `level`, `threshold` | our compressor | our compressor |
///
/// The defaults interoperate with every browser: full 15-bit windows, context
/// takeover in both directions (the best ratio for streams of small, similar
/// messages such as chat), level 1 ([`DEFAULT_LEVEL`](Self::DEFAULT_LEVEL)
/// says why) and an automatic threshold
/// ([`with_threshold`](Self::with_threshold)).
///
/// Setters that can fail validate at once and return [`ConfigError`], so a
/// built config is always valid:
///
/// ```
/// # use nextrush_proto::deflate::DeflateConfig;
/// let config = DeflateConfig::new()
///     .with_server_no_context_takeover(true)
///     .with_server_max_window_bits(12)?
///     .with_level(3)?;
/// assert_eq!(config.server_max_window_bits().get(), 12);
/// # Ok::<(), nextrush_proto::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: WindowBits,
    client_max_window_bits: WindowBits,
    level: u32,
    threshold: Option<usize>,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: WindowBits::MAX,
            client_max_window_bits: WindowBits::MAX,
            level: Self::DEFAULT_LEVEL,
            threshold: None,
        }
    }
}

impl DeflateConfig {
    /// The default level: 1, zlib's fastest (as gorilla/websocket).
    ///
    /// Measured with zlib-rs (`benches/deflate.rs`): on ~200-byte JSON chat
    /// messages with context takeover, level 1 costs ~3 µs per message for
    /// 30% of the original size, level 6 (zlib's default) ~10.6 µs for 20%;
    /// on 1 MiB of JSON, ~300 MiB/s for 27% against ~46 MiB/s for 12%. A
    /// server compresses every message once per connection, so CPU is
    /// usually the tighter budget; raise the level when bandwidth is.
    /// zlib-rs' level 1 never falls back to stored blocks, so incompressible
    /// data grows by ~5% (random 1 MiB → 1.055 MiB, against +0.03% at
    /// level 2 and up); [`Compressor::compress`](super::Compressor::compress)
    /// then declines and the message goes out uncompressed.
    pub const DEFAULT_LEVEL: u32 = 1;

    /// The automatic threshold when our compressor keeps its context: below
    /// 16 bytes the best case saves a few bytes per message.
    pub const AUTO_THRESHOLD_TAKEOVER: usize = 16;

    /// The automatic threshold when our compressor resets after each
    /// message: with an empty window, JSON messages under ~100 bytes do not
    /// shrink at level 1 (93 bytes → 93) and barely at level 6 (→ 81), and
    /// each one pays a compressor reset (a 128 KiB hash-table clear).
    pub const AUTO_THRESHOLD_NO_TAKEOVER: usize = 128;

    /// The defaults (same as [`Default`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `server_no_context_takeover` (see the table on the type).
    #[must_use]
    pub const fn with_server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets `client_no_context_takeover` (see the table on the type).
    #[must_use]
    pub const fn with_client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets `server_max_window_bits`, 8 to 15.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] outside `8..=15`.
    pub fn with_server_max_window_bits(mut self, bits: u8) -> Result<Self, ConfigError> {
        self.server_max_window_bits = window_bits("server_max_window_bits", bits)?;
        Ok(self)
    }

    /// Sets `client_max_window_bits`, 8 to 15.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] outside `8..=15`.
    pub fn with_client_max_window_bits(mut self, bits: u8) -> Result<Self, ConfigError> {
        self.client_max_window_bits = window_bits("client_max_window_bits", bits)?;
        Ok(self)
    }

    /// Sets the zlib compression level: 0 (stored, no compression) to 9
    /// (best, slowest). 1 is fastest with real compression.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] above 9.
    pub fn with_level(mut self, level: u32) -> Result<Self, ConfigError> {
        if level > 9 {
            return Err(ConfigError::OutOfRange { setting: "deflate level", value: level.into(), min: 0, max: 9 });
        }
        self.level = level;
        Ok(self)
    }

    /// Sets the size in bytes below which messages are sent uncompressed
    /// (0 compresses everything).
    ///
    /// By default the threshold is automatic: with context takeover for our
    /// compressor, even short messages shrink by referring to earlier ones
    /// ([`AUTO_THRESHOLD_TAKEOVER`](Self::AUTO_THRESHOLD_TAKEOVER)); without
    /// it, only longer ones do
    /// ([`AUTO_THRESHOLD_NO_TAKEOVER`](Self::AUTO_THRESHOLD_NO_TAKEOVER)).
    /// Uncompressed messages do not enter the shared window, which costs
    /// little for messages this short.
    #[must_use]
    pub const fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = Some(bytes);
        self
    }

    /// `server_no_context_takeover`.
    #[must_use]
    pub const fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// `client_no_context_takeover`.
    #[must_use]
    pub const fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// `server_max_window_bits`.
    #[must_use]
    pub const fn server_max_window_bits(&self) -> WindowBits {
        self.server_max_window_bits
    }

    /// `client_max_window_bits`.
    #[must_use]
    pub const fn client_max_window_bits(&self) -> WindowBits {
        self.client_max_window_bits
    }

    /// The compression level, 0 to 9.
    #[must_use]
    pub const fn level(&self) -> u32 {
        self.level
    }

    /// The threshold set with [`with_threshold`](Self::with_threshold);
    /// `None` when automatic.
    #[must_use]
    pub const fn threshold(&self) -> Option<usize> {
        self.threshold
    }

    /// The threshold for a compressor that does (`false`) or does not
    /// (`true`) reset its context after each message.
    #[must_use]
    pub const fn effective_threshold(&self, no_context_takeover: bool) -> usize {
        match (self.threshold, no_context_takeover) {
            (Some(bytes), _) => bytes,
            (None, false) => Self::AUTO_THRESHOLD_TAKEOVER,
            (None, true) => Self::AUTO_THRESHOLD_NO_TAKEOVER,
        }
    }
}

fn window_bits(setting: &'static str, bits: u8) -> Result<WindowBits, ConfigError> {
    WindowBits::new(bits).ok_or(ConfigError::OutOfRange {
        setting,
        value: bits.into(),
        min: WindowBits::MIN.get().into(),
        max: WindowBits::MAX.get().into(),
    })
}
