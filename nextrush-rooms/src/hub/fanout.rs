//! Sending: broadcasts to rooms and channels, and targeted sends.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use super::group::{Group, Kind, Locked};
use super::{Leaving, Rooms};
use crate::error::RoomsError;
use crate::id::ConnId;
use crate::member::Member;
use crate::message::{EncodedMessage, Encoder};
use crate::policy::{Delivery, SlowConsumer};
use crate::stats::{FanOut, Tally};

/// A send being built: targets (rooms and channels), an excluded member and
/// a policy. Start with [`Rooms::to`] or [`Rooms::channel`]; finish with
/// [`send`](Self::send).
///
/// ```
/// # use std::sync::Arc;
/// # use nextrush_rooms::{Encoding, QueueMember, Rooms};
/// let rooms: Rooms<QueueMember> = Rooms::default();
/// let alice = rooms.register(Arc::new(QueueMember::new(1 << 16, Encoding::Plain)));
/// let bob = rooms.register(Arc::new(QueueMember::new(1 << 16, Encoding::Plain)));
/// rooms.join("lobby", alice)?;
/// rooms.join("lobby", bob)?;
/// // ws.to(room).except_self().send(msg)
/// let sent = rooms.to("lobby").except(alice).send("hi");
/// assert_eq!(sent.queued, 1);
/// # Ok::<(), nextrush_rooms::RoomsError>(())
/// ```
#[must_use = "nothing is sent until `send`"]
pub struct Broadcast<'a, M: Member> {
    rooms: &'a Rooms<M>,
    targets: Vec<(Kind, Cow<'a, str>)>,
    except: Option<ConnId>,
    policy: Option<SlowConsumer>,
}

impl<'a, M: Member> Broadcast<'a, M> {
    /// Adds a room to the targets.
    pub fn to(mut self, room: impl Into<Cow<'a, str>>) -> Self {
        self.targets.push((Kind::Room, room.into()));
        self
    }

    /// Adds a channel to the targets.
    pub fn channel(mut self, channel: impl Into<Cow<'a, str>>) -> Self {
        self.targets.push((Kind::Channel, channel.into()));
        self
    }

    /// Leaves `id` out (the sender: `except_self`).
    pub const fn except(mut self, id: ConnId) -> Self {
        self.except = Some(id);
        self
    }

    /// The slow-consumer policy for this send, over the rooms' own.
    pub const fn policy(mut self, policy: SlowConsumer) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Delivers `message` once to every member of the targets (a member of
    /// several targets gets it once), except the excluded one. Targets that
    /// do not exist are skipped. Rooms record it in their history.
    ///
    /// The locks of all targeted rooms are held, in a fixed order, while the
    /// members' queues take the message: concurrent sends reach every
    /// member of a room in the same order.
    pub fn send(self, message: impl Into<EncodedMessage>) -> FanOut {
        self.rooms.fan_out(&self.targets, &message.into(), self.except, self.policy)
    }
}

impl<M: Member> Rooms<M> {
    /// Starts a send to `room` (`ws.to(room)` / `io.to(room)`).
    pub fn to<'a>(&'a self, room: impl Into<Cow<'a, str>>) -> Broadcast<'a, M> {
        Broadcast { rooms: self, targets: vec![(Kind::Room, room.into())], except: None, policy: None }
    }

    /// Starts a send to the subscribers of `channel`.
    pub fn channel<'a>(&'a self, channel: impl Into<Cow<'a, str>>) -> Broadcast<'a, M> {
        Broadcast { rooms: self, targets: vec![(Kind::Channel, channel.into())], except: None, policy: None }
    }

    /// Sends `message` to every member of `room`: `self.to(room).send(message)`.
    pub fn broadcast(&self, room: &str, message: impl Into<EncodedMessage>) -> FanOut {
        self.to(room).send(message)
    }

    /// Publishes `message` to every subscriber of `channel`:
    /// `self.channel(channel).send(message)`. Usable from anywhere: a
    /// handler, another task or thread, outside any connection.
    pub fn publish(&self, channel: &str, message: impl Into<EncodedMessage>) -> FanOut {
        self.channel(channel).send(message)
    }

    /// Sends `message` to one member, with `policy` (or the default).
    /// Ordered after everything this thread sent before; not ordered
    /// against rooms' broadcasts from other threads.
    ///
    /// # Errors
    /// [`RoomsError::UnknownMember`].
    pub fn send_to(
        &self,
        id: ConnId,
        message: impl Into<EncodedMessage>,
        policy: Option<SlowConsumer>,
    ) -> Result<Delivery, RoomsError> {
        let registered = self.registered(id)?;
        let message = message.into();
        let mut encoder = Encoder::default();
        let policy = policy.unwrap_or(self.config.default_policy());
        let delivery = registered.member.deliver(encoder.outbound(&message, &registered.encoding), policy);
        drop(registered);
        let mut fan_out = FanOut::default();
        let mut leaving = Vec::new();
        fan_out.record(id, delivery, &mut leaving);
        self.finish(&fan_out, &encoder, false, leaving);
        Ok(delivery)
    }

    pub(super) fn fan_out(
        &self,
        targets: &[(Kind, Cow<'_, str>)],
        message: &EncodedMessage,
        except: Option<ConnId>,
        policy: Option<SlowConsumer>,
    ) -> FanOut {
        let mut groups: Vec<Arc<Group<M>>> =
            targets.iter().filter_map(|(kind, name)| self.space(*kind).get(name)).collect();
        if groups.len() > 1 {
            // A total order, so that two multi-room sends never wait on each
            // other's locks.
            groups.sort_by(|a, b| (a.kind, &a.name, Arc::as_ptr(a)).cmp(&(b.kind, &b.name, Arc::as_ptr(b))));
            groups.dedup_by(|a, b| Arc::ptr_eq(a, b));
        }
        let mut locked: Vec<Locked<'_, M>> = groups.iter().map(|g| g.lock()).collect();
        let mut seen: Option<HashSet<ConnId>> = (locked.len() > 1).then(HashSet::new);
        let mut encoder = Encoder::default();
        let mut fan_out = FanOut::default();
        let mut leaving = Vec::new();
        let mut recorded = false;
        for g in &mut locked {
            let policy = policy.or(g.inner.policy).unwrap_or(self.config.default_policy());
            for slot in &g.inner.slots {
                if except == Some(slot.id) || seen.as_mut().is_some_and(|seen| !seen.insert(slot.id)) {
                    continue;
                }
                let delivery = slot.member.deliver(encoder.outbound(message, &slot.encoding), policy);
                fan_out.record(slot.id, delivery, &mut leaving);
            }
            if g.group.kind == Kind::Room && !g.group.is_removed() {
                recorded |= g.inner.record(message);
                g.inner.sweep.touch();
            }
        }
        drop(locked);
        if recorded {
            self.history_kept.set();
        }
        self.finish(&fan_out, &encoder, true, leaving);
        fan_out
    }

    /// Counts a send and removes the members it found gone, in `ConnId`
    /// order (so that what happens when several rooms empty at once does
    /// not depend on the order of members in a room).
    fn finish(&self, fan_out: &FanOut, encoder: &Encoder, broadcast: bool, mut leaving: Leaving) {
        leaving.sort_unstable_by_key(|(id, _)| *id);
        let tally = Tally {
            fan_out,
            compressions: encoder.compressions,
            per_connection: encoder.per_connection,
            broadcast,
            replay: false,
        };
        self.counters.add(&tally);
        for (id, reason) in leaving {
            self.remove_member(id, reason);
        }
    }
}
