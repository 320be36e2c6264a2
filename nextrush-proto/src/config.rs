//! Connection configuration: limits and time-based policy, validated once.

use std::time::Duration;

use crate::error::ConfigError;

/// What to do when a peer sends more messages than the rate limit allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitAction {
    /// Drop the message and report [`crate::Event::RateLimited`].
    Drop,
    /// Close the connection with 1008 (policy violation).
    Close,
}

/// A per-connection limit on received messages: at most `messages` per
/// `window` (a fixed window that restarts when it has elapsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed per window.
    pub messages: u32,
    /// The window length.
    pub window: Duration,
    /// What happens to messages over the limit.
    pub action: RateLimitAction,
}

/// Limits and policy for one connection. Build with [`Config::default`] and
/// the setters; [`Config::validate`] reports contradictions instead of
/// panicking.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest frame payload accepted, checked from the frame head before
    /// buffering (→ 1009). Default: 1 MiB.
    pub max_frame_size: usize,
    /// Largest message accepted, after reassembly and decompression (→ 1009).
    /// Default: 1 MiB.
    pub max_message_size: usize,
    /// Answer pings with pongs automatically. Default: on.
    pub auto_pong: bool,
    /// Send a ping after this long without receiving anything. Default: off
    /// (the server and client adapters turn it on).
    pub ping_interval: Option<Duration>,
    /// Fail the connection when a ping stays unanswered this long. Default 5 s.
    pub pong_timeout: Duration,
    /// After sending Close, wait this long for the peer's Close. Default 5 s.
    pub close_timeout: Duration,
    /// Limit on received messages. Default: none.
    pub rate_limit: Option<RateLimit>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            auto_pong: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            rate_limit: None,
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::auto_pong`].
    #[must_use]
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Sets [`Config::ping_interval`].
    #[must_use]
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`Config::pong_timeout`].
    #[must_use]
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Sets [`Config::close_timeout`].
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`Config::rate_limit`].
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Checks the settings against each other.
    ///
    /// # Errors
    /// A zero limit or interval, or a rate limit with an empty window.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame_size == 0 {
            return Err(ConfigError::Zero("max_frame_size"));
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::Zero("max_message_size"));
        }
        if self.ping_interval == Some(Duration::ZERO) {
            return Err(ConfigError::Zero("ping_interval"));
        }
        if let Some(limit) = self.rate_limit {
            if limit.messages == 0 {
                return Err(ConfigError::Zero("rate_limit.messages"));
            }
            if limit.window.is_zero() {
                return Err(ConfigError::Zero("rate_limit.window"));
            }
        }
        Ok(())
    }
}
