//! What the hub reports: room joins, leaves and presence changes.

use std::sync::Arc;

use crate::id::ConnId;

/// Why a member left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// [`Rooms::leave`](crate::Rooms::leave).
    Left,
    /// [`Rooms::unregister`](crate::Rooms::unregister): the connection closed.
    Unregistered,
    /// Its queue overflowed under [`SlowConsumer::Disconnect`](crate::SlowConsumer::Disconnect).
    SlowConsumer,
    /// A delivery found its connection gone ([`Delivery::Gone`](crate::Delivery::Gone)).
    Gone,
}

/// A room event, drained with [`Rooms::poll_event`](crate::Rooms::poll_event).
///
/// Events of one room are queued in the order the changes happened in that
/// room (they are queued under the room's lock). Channels produce no events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomsEvent {
    /// `room:join`: `member` joined `room`, which now has `count` members.
    Join {
        /// The room.
        room: Arc<str>,
        /// Who joined.
        member: ConnId,
        /// Members after the join.
        count: usize,
    },
    /// `room:leave`: `member` left `room`, which now has `count` members (0:
    /// the room is gone).
    Leave {
        /// The room.
        room: Arc<str>,
        /// Who left.
        member: ConnId,
        /// Members after the leave.
        count: usize,
        /// Why.
        reason: LeaveReason,
    },
    /// `room:presence`: `member` set or cleared its presence in `room`.
    Presence {
        /// The room.
        room: Arc<str>,
        /// Whose presence changed.
        member: ConnId,
    },
}

impl RoomsEvent {
    /// The event's name as the seed's `RoomManager` emits it: `room:join`,
    /// `room:leave` or `room:presence`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "room:join",
            Self::Leave { .. } => "room:leave",
            Self::Presence { .. } => "room:presence",
        }
    }

    /// The room the event is about.
    #[must_use]
    pub fn room(&self) -> &Arc<str> {
        match self {
            Self::Join { room, .. } | Self::Leave { room, .. } | Self::Presence { room, .. } => room,
        }
    }
}
