//! Rooms, channels and presence for NextRush: a runtime-agnostic hub that
//! fans messages out to connections without doing any IO.
//!
//! # The pieces
//!
//! - [`Rooms`]: the hub. Rooms (named groups with presence, history and
//!   join/leave events) and channels (plain topics), shared by every
//!   connection task and usable from any thread.
//! - [`Member`]: what the hub needs from a connection — somewhere to
//!   enqueue a frame without blocking. The driver implements it; members are
//!   named by small [`ConnId`] handles.
//! - [`EncodedMessage`]: a message encoded once per [`Encoding`] and shared
//!   by every recipient as `Bytes` (plain, or compressed once per
//!   permessage-deflate parameter set when the server takes no context
//!   over; connections with context takeover compress themselves).
//! - [`MemberQueue`]: a byte-budgeted outbound queue implementing the
//!   [`SlowConsumer`] policies, which a driver embeds per connection;
//!   [`QueueMember`] wraps one as a ready-made [`Member`].
//!
//! # How a driver wires it
//!
//! ```text
//! on open:     id = rooms.register(Arc::new(member))      // member: impl Member (e.g. QueueMember + waker)
//! handler:     rooms.join(room, id)?; rooms.to(room).except(id).send(msg); rooms.subscribe(ch, id)?
//! anywhere:    rooms.publish(channel, msg); rooms.broadcast(room, msg); rooms.send_to(id, msg, None)?
//! conn task:   when the transport can take more, drain the member's queue:
//!                Outbound::Frame(bytes)  -> conn.send_encoded(now, &bytes)
//!                Outbound::Message(msg)  -> conn.send(now, msg)        // per-connection compression
//!              if the queue is_disconnected(): conn.close(now, 1008, "slow consumer")
//! on close:    rooms.unregister(id)
//! timer:       every config.cleanup_interval(): rooms.cleanup(now)
//! events task: while let Some(ev) = rooms.poll_event() { .. }   // room:join / room:leave / room:presence
//! ```
//!
//! ```
//! use std::sync::Arc;
//! use nextrush_rooms::{Encoding, Outbound, QueueMember, Rooms, RoomsConfig, RoomsEvent};
//!
//! let rooms: Rooms<QueueMember> = Rooms::new(RoomsConfig::new().with_history_len(10));
//! let alice = Arc::new(QueueMember::new(64 * 1024, Encoding::Plain));
//! let a = rooms.register(Arc::clone(&alice));
//! rooms.join("lobby", a)?;
//! assert!(matches!(rooms.poll_event(), Some(RoomsEvent::Join { count: 1, .. })));
//!
//! let sent = rooms.broadcast("lobby", "hello");
//! assert_eq!(sent.queued, 1);
//! let Some(Outbound::Frame(frame)) = alice.queue().pop() else { unreachable!() };
//! assert_eq!(&frame[..], b"\x81\x05hello"); // one unmasked text frame, shared by all
//!
//! rooms.unregister(a);
//! assert_eq!(rooms.room_count(), 0); // empty rooms vanish at once
//! # Ok::<(), nextrush_rooms::RoomsError>(())
//! ```
#![forbid(unsafe_code)]

mod config;
mod error;
mod event;
mod hub;
mod id;
mod member;
mod message;
mod policy;
mod queue;
mod stats;

pub use config::{RoomOptions, RoomsConfig};
pub use error::RoomsError;
pub use event::{LeaveReason, RoomsEvent};
pub use hub::{Broadcast, CleanupReport, Rooms};
pub use id::ConnId;
pub use member::{Member, QueueMember};
#[cfg(feature = "deflate")]
pub use message::DeflateKey;
pub use message::{EncodedMessage, Encoding, Outbound};
pub use policy::{Delivery, SlowConsumer};
pub use queue::{MemberQueue, QueueStats};
pub use stats::{FanOut, RoomsStats};
