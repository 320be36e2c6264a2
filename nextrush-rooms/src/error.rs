//! Errors of the hub.

use std::sync::Arc;

use thiserror::Error;

use crate::id::ConnId;

/// Why a hub operation was refused. Nothing is changed when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RoomsError {
    /// The handle was never registered, or was unregistered (also after a
    /// slow-consumer disconnect).
    #[error("unknown member {0}")]
    UnknownMember(ConnId),
    /// Creating the room would exceed [`RoomsConfig::max_rooms`](crate::RoomsConfig::max_rooms).
    #[error("room limit reached ({max} rooms)")]
    TooManyRooms {
        /// The limit.
        max: usize,
    },
    /// Creating the channel would exceed [`RoomsConfig::max_channels`](crate::RoomsConfig::max_channels).
    #[error("channel limit reached ({max} channels)")]
    TooManyChannels {
        /// The limit.
        max: usize,
    },
    /// The room or channel already has
    /// [`RoomsConfig::max_members`](crate::RoomsConfig::max_members) members.
    #[error("{name} is full ({max} members)")]
    Full {
        /// The room or channel.
        name: Arc<str>,
        /// The limit.
        max: usize,
    },
    /// The member is not in that room.
    #[error("member {member} is not in room {room}")]
    NotInRoom {
        /// The room.
        room: Arc<str>,
        /// The member.
        member: ConnId,
    },
    /// A room or channel name is empty or longer than
    /// [`RoomsConfig::max_name_len`](crate::RoomsConfig::max_name_len).
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
}
