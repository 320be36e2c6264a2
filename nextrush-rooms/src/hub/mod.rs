//! The hub: [`Rooms`].

mod fanout;
mod group;
mod upkeep;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;

use crate::config::{RoomOptions, RoomsConfig};
use crate::error::RoomsError;
use crate::event::{LeaveReason, RoomsEvent};
use crate::id::ConnId;
use crate::member::Member;
use crate::message::Encoding;
use crate::stats::{Counters, RoomsStats};

pub use fanout::Broadcast;
pub use upkeep::CleanupReport;

use group::{Dormant, Group, History, Kind, Name, Slot, Space};

/// Members a send found gone or too slow, to unregister once no room lock
/// is held.
type Leaving = Vec<(ConnId, LeaveReason)>;

/// Rooms, channels and presence for the members (connections) of one
/// server, shared by every connection task and any other thread.
///
/// `Rooms` is `Send + Sync`; share it with an `Arc`. Every method takes
/// `&self` and only ever *enqueues* into members (see [`Member`]): no lock
/// of the hub is held while a driver writes to a socket.
///
/// # Verbs
///
/// - Members: [`register`](Self::register) a connection's handle when it
///   opens, [`unregister`](Self::unregister) when it closes (it leaves every
///   room and channel).
/// - Rooms: [`join`](Self::join), [`join_with`](Self::join_with) (with
///   presence), [`leave`](Self::leave), [`set_presence`](Self::set_presence);
///   queries [`members`](Self::members), [`member_count`](Self::member_count),
///   [`rooms`](Self::rooms), [`presence`](Self::presence).
/// - Channels: [`subscribe`](Self::subscribe), [`unsubscribe`](Self::unsubscribe),
///   [`publish`](Self::publish).
/// - Sending: [`to`](Self::to) a room (chain `.to(..)`, `.channel(..)`,
///   `.except(id)`, `.policy(..)`, then `.send(msg)`),
///   [`broadcast`](Self::broadcast), [`send_to`](Self::send_to) one member.
/// - Outputs: [`poll_event`](Self::poll_event) (joins, leaves, presence),
///   [`stats`](Self::stats).
/// - Time: [`cleanup`](Self::cleanup)`(now)` every
///   [`cleanup_interval`](RoomsConfig::cleanup_interval).
///
/// # Guarantees
///
/// - **Encode once.** A send frames the message once per encoding
///   ([`EncodedMessage`](crate::EncodedMessage)); every recipient gets the
///   same `Bytes`.
/// - **Per-room order.** A room's broadcasts, joins and leaves are
///   serialized by that room's lock, so all members see a room's messages
///   in the same order, whichever threads sent them.
/// - **At most once.** A send reaches each member once, even when it
///   targets several rooms the member is in.
/// - **Slow consumers are isolated.** A full queue applies its policy to
///   itself; the others get the message as usual.
/// - **Empty rooms vanish** at once: the last leave removes the room.
/// - **Gone members are removed.** A delivery answering
///   [`Delivery::Gone`](crate::Delivery::Gone) or
///   [`Delivery::Disconnected`](crate::Delivery::Disconnected) unregisters
///   the member right after the send, with a `room:leave` per room.
pub struct Rooms<M: Member> {
    config: RoomsConfig,
    next_id: AtomicU64,
    registry: RwLock<HashMap<ConnId, Arc<Registered<M>>>>,
    rooms: Space<M>,
    channels: Space<M>,
    options: RwLock<HashMap<Name, RoomOptions>>,
    dormant: Mutex<HashMap<Name, Dormant>>,
    events: Mutex<VecDeque<RoomsEvent>>,
    counters: Counters,
    /// Set once any room kept history: before that a sweep has nothing to do.
    history_kept: upkeep::Latch,
}

/// A registered member.
struct Registered<M> {
    member: Arc<M>,
    encoding: Encoding,
    /// Held across a whole join or leave, so that an unregister cannot
    /// interleave with it.
    state: Mutex<MemberState>,
}

#[derive(Default)]
struct MemberState {
    alive: bool,
    rooms: BTreeSet<Name>,
    channels: BTreeSet<Name>,
}

impl MemberState {
    const fn names(&mut self, kind: Kind) -> &mut BTreeSet<Name> {
        match kind {
            Kind::Room => &mut self.rooms,
            Kind::Channel => &mut self.channels,
        }
    }
}

impl<M: Member> Default for Rooms<M> {
    fn default() -> Self {
        Self::new(RoomsConfig::default())
    }
}

impl<M: Member> std::fmt::Debug for Rooms<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms").field("config", &self.config).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl<M: Member> Rooms<M> {
    /// An empty hub.
    #[must_use]
    pub fn new(config: RoomsConfig) -> Self {
        Self {
            config,
            next_id: AtomicU64::new(1),
            registry: RwLock::new(HashMap::new()),
            rooms: Space::new(),
            channels: Space::new(),
            options: RwLock::new(HashMap::new()),
            dormant: Mutex::new(HashMap::new()),
            events: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            history_kept: upkeep::Latch::default(),
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &RoomsConfig {
        &self.config
    }

    // ----- members ------------------------------------------------------

    /// Registers a connection's handle; its [`Member::encoding`] is read
    /// now. Returns the handle to use in every other call.
    pub fn register(&self, member: Arc<M>) -> ConnId {
        let id = ConnId::from_raw(self.next_id.fetch_add(1, Ordering::Relaxed));
        let encoding = member.encoding();
        let state = Mutex::new(MemberState { alive: true, ..MemberState::default() });
        let registered = Arc::new(Registered { member, encoding, state });
        write(&self.registry).insert(id, registered);
        id
    }

    /// Removes a member from every room (a `room:leave` each, reason
    /// [`LeaveReason::Unregistered`]) and channel, and forgets it. Returns
    /// whether it was registered. Call it when the connection closes.
    pub fn unregister(&self, id: ConnId) -> bool {
        self.remove_member(id, LeaveReason::Unregistered)
    }

    /// Whether `id` is registered.
    #[must_use]
    pub fn is_registered(&self, id: ConnId) -> bool {
        read(&self.registry).contains_key(&id)
    }

    /// The member behind `id`.
    #[must_use]
    pub fn member(&self, id: ConnId) -> Option<Arc<M>> {
        read(&self.registry).get(&id).map(|r| Arc::clone(&r.member))
    }

    /// The rooms `id` is in.
    #[must_use]
    pub fn rooms_of(&self, id: ConnId) -> Vec<Arc<str>> {
        self.names_of(id, Kind::Room)
    }

    /// The channels `id` is subscribed to.
    #[must_use]
    pub fn channels_of(&self, id: ConnId) -> Vec<Arc<str>> {
        self.names_of(id, Kind::Channel)
    }

    // ----- rooms --------------------------------------------------------

    /// Adds `id` to `room`, creating the room if needed, and replays the
    /// room's history to it. Queues `room:join` with the new count. Returns
    /// `false` if it was already in the room.
    ///
    /// # Errors
    /// Unknown member, invalid name, [`max_rooms`](RoomsConfig::max_rooms)
    /// reached (for a new room) or the room is full.
    pub fn join(&self, room: &str, id: ConnId) -> Result<bool, RoomsError> {
        self.enter(Kind::Room, room, id, None)
    }

    /// As [`join`](Self::join), with `id`'s presence in the room set before
    /// the join is announced. If already in the room, only the presence is
    /// updated (with a `room:presence` event).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_with(&self, room: &str, id: ConnId, presence: Bytes) -> Result<bool, RoomsError> {
        self.enter(Kind::Room, room, id, Some(presence))
    }

    /// Removes `id` from `room` (a `room:leave`, reason
    /// [`LeaveReason::Left`]); the room is removed if it is now empty.
    /// Returns whether it was in the room.
    pub fn leave(&self, room: &str, id: ConnId) -> bool {
        self.exit(Kind::Room, room, id)
    }

    /// The members of `room`, in no particular order.
    #[must_use]
    pub fn members(&self, room: &str) -> Vec<ConnId> {
        self.ids(Kind::Room, room)
    }

    /// How many members `room` has (0 if it does not exist).
    #[must_use]
    pub fn member_count(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |g| g.len())
    }

    /// Every room with its member count, in no particular order.
    #[must_use]
    pub fn rooms(&self) -> Vec<(Arc<str>, usize)> {
        self.rooms.list().iter().map(|g| (Arc::clone(&g.name), g.len())).collect()
    }

    /// How many rooms exist.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms.count()
    }

    /// Sets options for `room` (now, if it exists, and whenever it is
    /// created again), until [`clear_room_options`](Self::clear_room_options).
    /// A shorter history length forgets the oldest messages at once.
    pub fn set_room_options(&self, room: &str, options: RoomOptions) {
        write(&self.options).insert(Arc::from(room), options);
        if let Some(group) = self.rooms.get(room) {
            let mut g = group.lock();
            g.inner.policy = options.policy;
            g.inner.set_history_len(options.history_len.unwrap_or(self.config.history_len()));
        }
    }

    /// Forgets `room`'s options (a live room keeps them until it empties).
    pub fn clear_room_options(&self, room: &str) {
        write(&self.options).remove(room);
    }

    /// The options set for `room`.
    #[must_use]
    pub fn room_options(&self, room: &str) -> Option<RoomOptions> {
        read(&self.options).get(room).copied()
    }

    // ----- channels -----------------------------------------------------

    /// Subscribes `id` to `channel`, creating it if needed. Returns `false`
    /// if it was already subscribed.
    ///
    /// # Errors
    /// Unknown member, invalid name,
    /// [`max_channels`](RoomsConfig::max_channels) reached or the channel is
    /// full.
    pub fn subscribe(&self, channel: &str, id: ConnId) -> Result<bool, RoomsError> {
        self.enter(Kind::Channel, channel, id, None)
    }

    /// Unsubscribes `id`; the channel is removed if it is now empty.
    /// Returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str, id: ConnId) -> bool {
        self.exit(Kind::Channel, channel, id)
    }

    /// The subscribers of `channel`, in no particular order.
    #[must_use]
    pub fn subscribers(&self, channel: &str) -> Vec<ConnId> {
        self.ids(Kind::Channel, channel)
    }

    /// How many subscribers `channel` has.
    #[must_use]
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |g| g.len())
    }

    /// Every channel with its subscriber count.
    #[must_use]
    pub fn channels(&self) -> Vec<(Arc<str>, usize)> {
        self.channels.list().iter().map(|g| (Arc::clone(&g.name), g.len())).collect()
    }

    // ----- outputs ------------------------------------------------------

    /// The next room event, oldest first. Drain it after calls that change
    /// membership or presence (or from a task of its own); when more than
    /// [`event_capacity`](RoomsConfig::event_capacity) pile up, the oldest
    /// are dropped and counted.
    #[must_use]
    pub fn poll_event(&self) -> Option<RoomsEvent> {
        lock(&self.events).pop_front()
    }

    /// State and counters now.
    #[must_use]
    pub fn stats(&self) -> RoomsStats {
        let mut stats = RoomsStats {
            rooms: self.rooms.count(),
            channels: self.channels.count(),
            members: read(&self.registry).len(),
            memberships: self.rooms.memberships(),
            subscriptions: self.channels.memberships(),
            ..RoomsStats::default()
        };
        self.counters.fill(&mut stats);
        stats
    }

    // ----- internals ----------------------------------------------------

    const fn space(&self, kind: Kind) -> &Space<M> {
        match kind {
            Kind::Room => &self.rooms,
            Kind::Channel => &self.channels,
        }
    }

    fn registered(&self, id: ConnId) -> Result<Arc<Registered<M>>, RoomsError> {
        read(&self.registry).get(&id).cloned().ok_or(RoomsError::UnknownMember(id))
    }

    fn check_name(&self, name: &str) -> Result<(), RoomsError> {
        if name.is_empty() {
            return Err(RoomsError::InvalidName("empty"));
        }
        if name.len() > self.config.max_name_len() {
            return Err(RoomsError::InvalidName("too long"));
        }
        Ok(())
    }

    fn names_of(&self, id: ConnId, kind: Kind) -> Vec<Arc<str>> {
        let Ok(registered) = self.registered(id) else { return Vec::new() };
        let mut state = lock(&registered.state);
        state.names(kind).iter().cloned().collect()
    }

    fn ids(&self, kind: Kind, name: &str) -> Vec<ConnId> {
        self.space(kind).get(name).map_or_else(Vec::new, |g| g.lock().inner.slots.iter().map(|s| s.id).collect())
    }

    /// Join or subscribe. Lock order: member state, then the space map,
    /// then the group (then the event queue and dormant store).
    fn enter(&self, kind: Kind, name: &str, id: ConnId, presence: Option<Bytes>) -> Result<bool, RoomsError> {
        self.check_name(name)?;
        let registered = self.registered(id)?;
        let mut state = lock(&registered.state);
        if !state.alive {
            return Err(RoomsError::UnknownMember(id));
        }
        if state.names(kind).contains(name) {
            drop(state);
            if let Some(presence) = presence {
                self.set_presence(name, id, Some(presence))?;
            }
            return Ok(false);
        }
        let slot = Slot { id, member: Arc::clone(&registered.member), encoding: registered.encoding, presence };
        let (group, leaving) = self.add_to_group(kind, name, slot)?;
        state.names(kind).insert(Arc::clone(&group.name));
        drop(state);
        for (id, reason) in leaving {
            self.remove_member(id, reason);
        }
        Ok(true)
    }

    /// Adds `slot` to the live group called `name`, creating it if needed.
    /// Returns the group and members a history replay found gone.
    fn add_to_group(&self, kind: Kind, name: &str, slot: Slot<M>) -> Result<(Arc<Group<M>>, Leaving), RoomsError> {
        let space = self.space(kind);
        let max_members = self.config.max_members();
        loop {
            if let Some(group) = space.get(name).filter(|g| !g.is_removed()) {
                let mut g = group.lock();
                if group.is_removed() {
                    continue; // emptied while we waited: create it again
                }
                if g.inner.slots.len() >= max_members {
                    return Err(RoomsError::Full { name: Arc::clone(&group.name), max: max_members });
                }
                let count = g.insert(slot);
                let leaving = self.announce_join(&mut g, count);
                drop(g);
                return Ok((group, leaving));
            }
            let mut map = space.write();
            if map.get(name).is_some_and(|g| !g.is_removed()) {
                continue; // created meanwhile: join it
            }
            let max = match kind {
                Kind::Room => self.config.max_rooms(),
                Kind::Channel => self.config.max_channels(),
            };
            if space.count() >= max {
                return Err(match kind {
                    Kind::Room => RoomsError::TooManyRooms { max },
                    Kind::Channel => RoomsError::TooManyChannels { max },
                });
            }
            let name: Name = Arc::from(name);
            let (policy, history) = self.new_group_settings(kind, &name);
            let group = Arc::new(Group::new(Arc::clone(&name), kind, slot, policy, history));
            map.insert(name, Arc::clone(&group));
            space.created();
            let mut g = group.lock();
            drop(map);
            let leaving = self.announce_join(&mut g, 1);
            drop(g);
            return Ok((group, leaving));
        }
    }

    /// Policy and history for a group being created (rooms only get them).
    fn new_group_settings(&self, kind: Kind, name: &str) -> (Option<crate::SlowConsumer>, History) {
        if kind == Kind::Channel {
            return (None, History { kept: VecDeque::new(), len: 0 });
        }
        let options = read(&self.options).get(name).copied().unwrap_or_default();
        let kept = lock(&self.dormant).remove(name).map(|d| d.history).unwrap_or_default();
        let len = options.history_len.unwrap_or(self.config.history_len());
        (options.policy, History { kept, len })
    }

    /// Leave or unsubscribe.
    fn exit(&self, kind: Kind, name: &str, id: ConnId) -> bool {
        let Ok(registered) = self.registered(id) else { return false };
        let mut state = lock(&registered.state);
        if !state.names(kind).remove(name) {
            return false;
        }
        self.remove_from_group(kind, name, id, LeaveReason::Left);
        true
    }

    /// Unregisters `id`, leaving everything with `reason`.
    fn remove_member(&self, id: ConnId, reason: LeaveReason) -> bool {
        let Some(registered) = write(&self.registry).remove(&id) else { return false };
        let mut state = lock(&registered.state);
        state.alive = false;
        for room in std::mem::take(&mut state.rooms) {
            self.remove_from_group(Kind::Room, &room, id, reason);
        }
        for channel in std::mem::take(&mut state.channels) {
            self.remove_from_group(Kind::Channel, &channel, id, reason);
        }
        true
    }

    /// Takes `id` out of the group; removes the group if it empties.
    fn remove_from_group(&self, kind: Kind, name: &str, id: ConnId, reason: LeaveReason) {
        let space = self.space(kind);
        // The member is in the live group, which therefore is in the map.
        let Some(group) = space.get(name) else { return };
        let mut g = group.lock();
        let keep = kind == Kind::Room && self.config.keep_history_when_empty();
        let Some((_, count)) = g.remove(id, |inner| {
            let mut dormant = lock(&self.dormant);
            // At most `max_rooms` kept histories, so that creating and
            // leaving rooms in a loop cannot grow memory until the sweep.
            if keep && !inner.history.is_empty() && dormant.len() < self.config.max_rooms() {
                let history = std::mem::take(&mut inner.history);
                dormant.insert(Arc::clone(&group.name), Dormant { history, ..Dormant::default() });
            }
        }) else {
            return;
        };
        if kind == Kind::Room {
            self.push_event(RoomsEvent::Leave { room: Arc::clone(&group.name), member: id, count, reason });
        }
        drop(g);
        if count == 0 {
            space.forget(&group);
        }
    }
}

/// Locks a mutex, recovering from poison (every critical section of the
/// hub leaves its data consistent before calling out).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
