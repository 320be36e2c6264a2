//! Rooms and channels on sockets: each server connection is a member of the
//! app's [`Rooms`] hub, with a bounded queue the driver drains into the
//! connection — broadcasts are encoded once and never wait for a slow peer.

use std::sync::Arc;
use std::time::Instant;

use nextrush_proto::{CloseCode, Connection, ReadyState};
use nextrush_rooms::{ConnId, Delivery, EncodedMessage, FanOut, Outbound, QueueMember};

pub use nextrush_rooms::{
    Broadcast, ConnId as SocketId, EncodedMessage as SharedMessage, LeaveReason, RoomOptions, RoomsConfig, RoomsError,
    RoomsEvent, RoomsStats, SlowConsumer as RoomPolicy,
};

use crate::Error;
use crate::server::TaskWake;

/// The member type of the server's hub: a queue with a byte budget.
pub type RoomMember = QueueMember;

/// The server's rooms and channels hub.
pub type Rooms = nextrush_rooms::Rooms<RoomMember>;

/// Stop draining room traffic into a connection above this many queued bytes:
/// the rest waits in the member's queue, where the room policy applies.
const DRAIN_BELOW: usize = 64 * 1024;

/// A socket's place in the hub.
pub(crate) struct Membership {
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) id: ConnId,
    /// Turns the hub's queued join/leave events into server events.
    pub(crate) drain_events: Arc<dyn Fn() + Send + Sync>,
}

/// The driver's side of a member: drains its queue into the connection.
pub(crate) struct MemberDrain {
    pub(crate) member: Arc<QueueMember>,
    pub(crate) wake: Arc<TaskWake>,
    /// The last drain left messages queued (the connection was full).
    backlog: bool,
}

impl MemberDrain {
    pub(crate) fn new(member: Arc<QueueMember>, wake: Arc<TaskWake>) -> Self {
        Self { member, wake, backlog: false }
    }

    /// Whether a drain could move something: the queue was notified (it
    /// went from empty to non-empty, or disconnected) or the last drain
    /// left messages behind. Answered without locking the queue.
    #[inline]
    pub(crate) fn has_work(&self) -> bool {
        self.backlog || self.wake.room_pending()
    }

    /// Moves queued room traffic into `conn` while it has room; closes with
    /// 1008 if the room policy disconnected this member. Returns the number
    /// of messages moved.
    #[inline]
    pub(crate) fn drain(&mut self, conn: &mut Connection, now: Instant) -> u64 {
        // A plain load first: the usual answer is "nothing new".
        if self.has_work() { self.drain_queue(conn, now) } else { 0 }
    }

    fn drain_queue(&mut self, conn: &mut Connection, now: Instant) -> u64 {
        self.wake.clear_room_pending();
        let mut queue = self.member.queue();
        if queue.is_disconnected() {
            self.backlog = false;
            if conn.ready_state() == ReadyState::Open {
                let _ = conn.close(now, CloseCode::POLICY_VIOLATION, "slow consumer");
            }
            return 0;
        }
        let mut moved = 0;
        while conn.ready_state() == ReadyState::Open && conn.buffered_amount() < DRAIN_BELOW {
            let sent = match queue.front() {
                None => break,
                Some(Outbound::Frame(frame)) => conn.send_encoded(now, frame).is_ok(),
                Some(Outbound::Message(message)) => conn.send(now, message.clone()).is_ok(),
            };
            if !sent {
                // A fragmented send is in progress: the rest waits for its end.
                break;
            }
            queue.pop();
            moved += 1;
        }
        self.backlog = !queue.is_empty() && conn.ready_state() == ReadyState::Open;
        moved
    }
}

/// Sends to a room from a socket: `ws.to(room).except_self().send(msg)`.
#[must_use = "nothing is sent until `send`"]
pub struct RoomSend<'a> {
    membership: Option<&'a Membership>,
    room: &'a str,
    except_self: bool,
    policy: Option<RoomPolicy>,
}

impl<'a> RoomSend<'a> {
    pub(crate) fn new(membership: Option<&'a Membership>, room: &'a str) -> Self {
        Self { membership, room, except_self: false, policy: None }
    }

    /// Leaves the sending socket out.
    pub fn except_self(mut self) -> Self {
        self.except_self = true;
        self
    }

    /// The slow-consumer policy for this send (else the room's, else the
    /// hub's default).
    pub fn policy(mut self, policy: RoomPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Encodes `message` once and queues it for every member of the room.
    ///
    /// # Errors
    /// [`Error::NotInHub`] on a client socket.
    pub fn send(self, message: impl Into<EncodedMessage>) -> Result<FanOut, Error> {
        let membership = self.membership.ok_or(Error::NotInHub)?;
        let mut broadcast = membership.rooms.to(self.room);
        if self.except_self {
            broadcast = broadcast.except(membership.id);
        }
        if let Some(policy) = self.policy {
            broadcast = broadcast.policy(policy);
        }
        let fan_out = broadcast.send(message);
        (membership.drain_events)();
        Ok(fan_out)
    }
}

impl Membership {
    pub(crate) fn send_to(&self, id: ConnId, message: EncodedMessage) -> Result<Delivery, Error> {
        let delivery = self.rooms.send_to(id, message, None)?;
        (self.drain_events)();
        Ok(delivery)
    }
}
