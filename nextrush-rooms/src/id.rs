//! Handles for connections.

use std::fmt;

/// A small handle for a registered member (one connection).
///
/// Handed out by [`Rooms::register`](crate::Rooms::register) and never
/// reused by the same [`Rooms`](crate::Rooms): a stale handle is simply
/// unknown, it can never name a newer connection. Rooms refer to
/// connections by these handles, never by pointers to connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// Wraps a raw value (the registry allocates them; tests and drivers
    /// that keep their own tables may rebuild one from [`get`](Self::get)).
    #[must_use]
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
