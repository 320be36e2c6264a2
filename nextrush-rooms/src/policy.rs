//! What happens when a member's outbound queue is full, and what a delivery
//! did.

use nextrush_proto::CloseCode;

/// The slow-consumer policy: what to do with a message for a member whose
/// outbound queue has no room left in its byte budget.
///
/// Chosen per room ([`RoomOptions`](crate::RoomOptions)), per send
/// ([`Broadcast::policy`](crate::Broadcast::policy)), or else from
/// [`RoomsConfig::with_default_policy`](crate::RoomsConfig::with_default_policy).
/// Whatever the policy, a full queue never delays the other recipients:
/// delivery only ever enqueues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SlowConsumer {
    /// Drop the message that does not fit (the default, as uWebSockets'
    /// publish and socketioxide do). The member misses it.
    #[default]
    DropNewest,
    /// Drop the oldest queued messages until the new one fits: the member
    /// misses older messages but sees the latest state.
    DropOldest,
    /// Close the member's connection with 1008 (policy violation): its queue
    /// is discarded and it is removed from every room and channel.
    Disconnect,
}

impl SlowConsumer {
    /// The close code a [`Disconnect`](Self::Disconnect) sends: 1008.
    pub const CLOSE_CODE: CloseCode = CloseCode::POLICY_VIOLATION;
}

/// What one delivery to one member did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Delivery {
    /// The message is queued.
    Queued,
    /// The queue was full and the message was dropped
    /// ([`SlowConsumer::DropNewest`]).
    DroppedNewest,
    /// The message is queued after dropping this many older messages
    /// ([`SlowConsumer::DropOldest`]); at least 1.
    DroppedOldest(usize),
    /// The queue was full and the member is being disconnected with 1008
    /// ([`SlowConsumer::Disconnect`]); the message was dropped.
    Disconnected,
    /// The member's connection is gone (closed or disconnected before); the
    /// message was dropped.
    Gone,
}

impl Delivery {
    /// Whether the message is now in the member's queue.
    #[must_use]
    pub const fn is_queued(self) -> bool {
        matches!(self, Self::Queued | Self::DroppedOldest(_))
    }

    /// Whether the member should be removed from the registry (it is
    /// disconnected or gone).
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Disconnected | Self::Gone)
    }
}
