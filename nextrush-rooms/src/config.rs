//! Limits and defaults of a hub, and per-room options.

use std::time::Duration;

use crate::policy::SlowConsumer;

/// The hub's limits and defaults. Every value is valid (a limit of 0 simply
/// refuses), so building one cannot fail.
///
/// ```
/// # use std::time::Duration;
/// # use nextrush_rooms::{RoomsConfig, SlowConsumer};
/// let config = RoomsConfig::new()
///     .with_max_rooms(1_000)
///     .with_max_members(500)
///     .with_history_len(20)
///     .with_default_policy(SlowConsumer::DropOldest)
///     .with_idle_timeout(Duration::from_secs(600));
/// assert_eq!(config.max_rooms(), 1_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomsConfig {
    max_rooms: usize,
    max_channels: usize,
    max_members: usize,
    max_name_len: usize,
    history_len: usize,
    default_policy: SlowConsumer,
    idle_timeout: Duration,
    cleanup_interval: Duration,
    event_capacity: usize,
    keep_history_when_empty: bool,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            max_rooms: 10_000,
            max_channels: 10_000,
            max_members: 100_000,
            max_name_len: 256,
            history_len: 0,
            default_policy: SlowConsumer::DropNewest,
            idle_timeout: Duration::from_secs(300),
            cleanup_interval: Duration::from_secs(60),
            event_capacity: 1024,
            keep_history_when_empty: true,
        }
    }
}

impl RoomsConfig {
    /// The defaults: 10,000 rooms and 10,000 channels of up to 100,000
    /// members each, names up to 256 bytes, no history, drop-newest, a
    /// 5-minute idle timeout swept every minute, 1,024 queued events.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Rooms that may exist at once (`maxRooms`); joining a new room beyond
    /// it fails with [`RoomsError::TooManyRooms`](crate::RoomsError::TooManyRooms).
    #[must_use]
    pub const fn with_max_rooms(mut self, max: usize) -> Self {
        self.max_rooms = max;
        self
    }

    /// Channels that may exist at once.
    #[must_use]
    pub const fn with_max_channels(mut self, max: usize) -> Self {
        self.max_channels = max;
        self
    }

    /// Members per room, and subscribers per channel.
    #[must_use]
    pub const fn with_max_members(mut self, max: usize) -> Self {
        self.max_members = max;
        self
    }

    /// The longest room or channel name, in bytes.
    #[must_use]
    pub const fn with_max_name_len(mut self, max: usize) -> Self {
        self.max_name_len = max;
        self
    }

    /// Messages each room keeps and replays to a member that joins (0: no
    /// history). [`RoomOptions::history_len`] overrides it per room.
    #[must_use]
    pub const fn with_history_len(mut self, len: usize) -> Self {
        self.history_len = len;
        self
    }

    /// The slow-consumer policy when neither the send nor the room chooses.
    #[must_use]
    pub const fn with_default_policy(mut self, policy: SlowConsumer) -> Self {
        self.default_policy = policy;
        self
    }

    /// How long a room's history may go without activity before
    /// [`Rooms::cleanup`](crate::Rooms::cleanup) drops it.
    #[must_use]
    pub const fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How often the driver should call [`Rooms::cleanup`](crate::Rooms::cleanup)
    /// (`roomCleanupInterval`). The hub keeps no timer: this is advice to
    /// the caller, and the precision of [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub const fn with_cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// Events kept for [`Rooms::poll_event`](crate::Rooms::poll_event); when
    /// full, the oldest is dropped and counted
    /// ([`RoomsStats::events_dropped`](crate::RoomsStats::events_dropped)).
    /// 0 turns events off.
    #[must_use]
    pub const fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Whether a room that empties keeps its history (outside the room
    /// list, until the idle timeout) for the next member who joins it. At
    /// most [`max_rooms`](Self::max_rooms) histories are kept this way;
    /// beyond that an emptied room's history is dropped at once.
    #[must_use]
    pub const fn with_keep_history_when_empty(mut self, keep: bool) -> Self {
        self.keep_history_when_empty = keep;
        self
    }

    /// See [`with_max_rooms`](Self::with_max_rooms).
    #[must_use]
    pub const fn max_rooms(&self) -> usize {
        self.max_rooms
    }

    /// See [`with_max_channels`](Self::with_max_channels).
    #[must_use]
    pub const fn max_channels(&self) -> usize {
        self.max_channels
    }

    /// See [`with_max_members`](Self::with_max_members).
    #[must_use]
    pub const fn max_members(&self) -> usize {
        self.max_members
    }

    /// See [`with_max_name_len`](Self::with_max_name_len).
    #[must_use]
    pub const fn max_name_len(&self) -> usize {
        self.max_name_len
    }

    /// See [`with_history_len`](Self::with_history_len).
    #[must_use]
    pub const fn history_len(&self) -> usize {
        self.history_len
    }

    /// See [`with_default_policy`](Self::with_default_policy).
    #[must_use]
    pub const fn default_policy(&self) -> SlowConsumer {
        self.default_policy
    }

    /// See [`with_idle_timeout`](Self::with_idle_timeout).
    #[must_use]
    pub const fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// See [`with_cleanup_interval`](Self::with_cleanup_interval).
    #[must_use]
    pub const fn cleanup_interval(&self) -> Duration {
        self.cleanup_interval
    }

    /// See [`with_event_capacity`](Self::with_event_capacity).
    #[must_use]
    pub const fn event_capacity(&self) -> usize {
        self.event_capacity
    }

    /// See [`with_keep_history_when_empty`](Self::with_keep_history_when_empty).
    #[must_use]
    pub const fn keep_history_when_empty(&self) -> bool {
        self.keep_history_when_empty
    }
}

/// Settings of one room, set with
/// [`Rooms::set_room_options`](crate::Rooms::set_room_options). They outlive
/// the room (a room that empties and is created again gets them back) until
/// cleared; `None` falls back to the [`RoomsConfig`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomOptions {
    /// The slow-consumer policy for broadcasts to this room (a send's own
    /// policy still wins).
    pub policy: Option<SlowConsumer>,
    /// Messages of history to keep and replay on join.
    pub history_len: Option<usize>,
}

impl RoomOptions {
    /// No overrides.
    #[must_use]
    pub const fn new() -> Self {
        Self { policy: None, history_len: None }
    }

    /// Sets the room's slow-consumer policy.
    #[must_use]
    pub const fn with_policy(mut self, policy: SlowConsumer) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the room's history length.
    #[must_use]
    pub const fn with_history_len(mut self, len: usize) -> Self {
        self.history_len = Some(len);
        self
    }
}
