//! Model-based property test: random sequences of hub operations from
//! several members, checked step by step against a simple reference model.
//!
//! Invariants checked after every step: membership and counts (rooms,
//! channels, members, memberships) agree with the model; empty rooms and
//! channels do not exist; room events match. On every drain, each member
//! received exactly the messages the model says, in the model's order — no
//! duplicate, no gap while subscribed and not overflowing, one order per
//! room — and the drop counters equal the model's exactly.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Hub, drain};
use nextrush_rooms::{
    ConnId, Encoding, LeaveReason, QueueMember, RoomOptions, Rooms, RoomsConfig, RoomsError, RoomsEvent, SlowConsumer,
};
use proptest::prelude::*;

const MEMBERS: usize = 4;
const ROOMS: [&str; 3] = ["r0", "r1", "r2"];
const CHANNELS: [&str; 2] = ["c0", "c1"];
const MAX_ROOMS: usize = 2;
const MAX_CHANNELS: usize = 1;
const MAX_MEMBERS: usize = 3;
const HISTORY: usize = 2;
const IDLE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Join(usize, usize),
    Leave(usize, usize),
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    Unregister(usize),
    /// The driver saw the connection close (its queue disconnects).
    Close(usize),
    Drain(usize),
    Broadcast {
        rooms: Vec<usize>,
        channels: Vec<usize>,
        except: Option<usize>,
        policy: Option<SlowConsumer>,
        size: usize,
    },
    SendTo(usize, Option<SlowConsumer>, usize),
    SetRoomPolicy(usize, Option<SlowConsumer>),
    Cleanup(u64),
}

fn policy() -> impl Strategy<Value = SlowConsumer> {
    prop_oneof![Just(SlowConsumer::DropNewest), Just(SlowConsumer::DropOldest), Just(SlowConsumer::Disconnect)]
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MEMBERS;
    let r = 0..ROOMS.len();
    let c = 0..CHANNELS.len();
    prop_oneof![
        1 => m.clone().prop_map(Op::Register),
        6 => (m.clone(), r.clone()).prop_map(|(m, r)| Op::Join(m, r)),
        3 => (m.clone(), r.clone()).prop_map(|(m, r)| Op::Leave(m, r)),
        3 => (m.clone(), c.clone()).prop_map(|(m, c)| Op::Subscribe(m, c)),
        2 => (m.clone(), c.clone()).prop_map(|(m, c)| Op::Unsubscribe(m, c)),
        1 => m.clone().prop_map(Op::Unregister),
        1 => m.clone().prop_map(Op::Close),
        5 => m.clone().prop_map(Op::Drain),
        10 => (
            proptest::collection::vec(r.clone(), 0..3),
            proptest::collection::vec(c, 0..2),
            proptest::option::of(m.clone()),
            proptest::option::weighted(0.3, policy()),
            8usize..40,
        )
            .prop_map(|(mut rooms, channels, except, policy, size)| {
                if rooms.is_empty() && channels.is_empty() {
                    rooms.push(0);
                }
                Op::Broadcast { rooms, channels, except, policy, size }
            }),
        2 => (m, proptest::option::of(policy()), 8usize..40).prop_map(|(m, p, s)| Op::SendTo(m, p, s)),
        1 => (r, proptest::option::of(policy())).prop_map(|(r, p)| Op::SetRoomPolicy(r, p)),
        1 => (0u64..40).prop_map(Op::Cleanup),
    ]
}

/// Activity as the hub's sweeps see it.
#[derive(Clone, Debug, Default)]
struct Sweep {
    active: bool,
    quiet_since: Option<Instant>,
}

impl Sweep {
    fn idle(&mut self, now: Instant) -> bool {
        match self.quiet_since {
            Some(since) if !self.active => now.duration_since(since) >= IDLE,
            _ => {
                self.active = false;
                self.quiet_since = Some(now);
                false
            }
        }
    }
}

#[derive(Debug)]
struct RoomModel {
    members: BTreeSet<usize>,
    history: VecDeque<(u64, usize)>,
    policy: Option<SlowConsumer>,
    sweep: Sweep,
}

struct Slot {
    id: ConnId,
    registered: bool,
    member: Arc<QueueMember>,
    budget: usize,
    queue: VecDeque<(u64, usize)>,
    disconnected: bool,
    rooms: BTreeSet<usize>,
    channels: BTreeSet<usize>,
}

impl Slot {
    fn bytes(&self) -> usize {
        self.queue.iter().map(|(_, len)| len).sum()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    broadcasts: u64,
    deliveries: u64,
    replayed: u64,
    dropped_newest: u64,
    dropped_oldest: u64,
    disconnects: u64,
    gone: u64,
}

struct Model {
    rooms_hub: Arc<Hub>,
    slots: Vec<Slot>,
    rooms: BTreeMap<usize, RoomModel>,
    channels: BTreeMap<usize, BTreeSet<usize>>,
    dormant: BTreeMap<usize, (VecDeque<(u64, usize)>, Sweep)>,
    options: BTreeMap<usize, Option<SlowConsumer>>,
    default_policy: SlowConsumer,
    expected: Expected,
    events: Vec<RoomsEvent>,
    next_message: u64,
    now: Instant,
}

impl Model {
    fn new(budgets: &[usize], default_policy: SlowConsumer) -> Self {
        let config = RoomsConfig::new()
            .with_max_rooms(MAX_ROOMS)
            .with_max_channels(MAX_CHANNELS)
            .with_max_members(MAX_MEMBERS)
            .with_history_len(HISTORY)
            .with_default_policy(default_policy)
            .with_idle_timeout(IDLE)
            .with_event_capacity(100_000);
        let rooms_hub: Arc<Hub> = Arc::new(Rooms::new(config));
        let slots = budgets
            .iter()
            .map(|&budget| {
                let member = Arc::new(QueueMember::new(budget, Encoding::Plain));
                let id = rooms_hub.register(Arc::clone(&member));
                Slot {
                    id,
                    registered: true,
                    member,
                    budget,
                    queue: VecDeque::new(),
                    disconnected: false,
                    rooms: BTreeSet::new(),
                    channels: BTreeSet::new(),
                }
            })
            .collect();
        Self {
            rooms_hub,
            slots,
            rooms: BTreeMap::new(),
            channels: BTreeMap::new(),
            dormant: BTreeMap::new(),
            options: BTreeMap::new(),
            default_policy,
            expected: Expected::default(),
            events: Vec::new(),
            next_message: 0,
            now: Instant::now(),
        }
    }

    fn message(&mut self, size: usize) -> (u64, Vec<u8>) {
        self.next_message += 1;
        let mut payload = self.next_message.to_le_bytes().to_vec();
        payload.resize(size, b'.');
        (self.next_message, payload)
    }

    /// Offers one message to one member, as `MemberQueue::push` does.
    /// Returns the reason to remove it, if any.
    fn offer(&mut self, slot: usize, message: (u64, usize), policy: SlowConsumer) -> Option<LeaveReason> {
        let e = &mut self.expected;
        let s = &mut self.slots[slot];
        if s.disconnected {
            e.gone += 1;
            return Some(LeaveReason::Gone);
        }
        let len = message.1 + 2; // a short frame's head
        if s.queue.is_empty() || s.bytes() + len <= s.budget {
            s.queue.push_back((message.0, len));
            e.deliveries += 1;
            return None;
        }
        match policy {
            SlowConsumer::DropNewest => e.dropped_newest += 1,
            SlowConsumer::DropOldest => {
                while !s.queue.is_empty() && s.bytes() + len > s.budget {
                    s.queue.pop_front();
                    e.dropped_oldest += 1;
                }
                s.queue.push_back((message.0, len));
                e.deliveries += 1;
            }
            SlowConsumer::Disconnect => {
                e.disconnects += 1;
                s.disconnected = true;
                s.queue.clear();
                return Some(LeaveReason::SlowConsumer);
            }
        }
        None
    }

    fn leave_room(&mut self, slot: usize, r: usize, reason: LeaveReason) {
        let room = self.rooms.get_mut(&r).expect("member's room exists");
        room.members.remove(&slot);
        let count = room.members.len();
        self.events.push(RoomsEvent::Leave { room: ROOMS[r].into(), member: self.slots[slot].id, count, reason });
        if count == 0 {
            let room = self.rooms.remove(&r).expect("present");
            if !room.history.is_empty() && self.dormant.len() < MAX_ROOMS {
                self.dormant.insert(r, (room.history, Sweep::default()));
            }
        }
    }

    fn unsubscribe_model(&mut self, slot: usize, c: usize) {
        let subs = self.channels.get_mut(&c).expect("member's channel exists");
        subs.remove(&slot);
        if subs.is_empty() {
            self.channels.remove(&c);
        }
    }

    fn unregister_model(&mut self, slot: usize, reason: LeaveReason) {
        if !self.slots[slot].registered {
            return;
        }
        self.slots[slot].registered = false;
        for r in std::mem::take(&mut self.slots[slot].rooms) {
            self.leave_room(slot, r, reason);
        }
        for c in std::mem::take(&mut self.slots[slot].channels) {
            self.unsubscribe_model(slot, c);
        }
    }

    fn join(&mut self, slot: usize, r: usize) -> Result<bool, RoomsError> {
        let s = &self.slots[slot];
        if !s.registered {
            return Err(RoomsError::UnknownMember(s.id));
        }
        if s.rooms.contains(&r) {
            return Ok(false);
        }
        match self.rooms.get(&r) {
            Some(room) if room.members.len() >= MAX_MEMBERS => {
                return Err(RoomsError::Full { name: ROOMS[r].into(), max: MAX_MEMBERS });
            }
            Some(_) => {}
            None if self.rooms.len() >= MAX_ROOMS => return Err(RoomsError::TooManyRooms { max: MAX_ROOMS }),
            None => {
                let history = self.dormant.remove(&r).map(|d| d.0).unwrap_or_default();
                let policy = self.options.get(&r).copied().flatten();
                let room = RoomModel { members: BTreeSet::new(), history, policy, sweep: Sweep::default() };
                self.rooms.insert(r, room);
            }
        }
        let room = self.rooms.get_mut(&r).expect("just ensured");
        room.members.insert(slot);
        room.sweep.active = true;
        let (count, history, policy) = (room.members.len(), room.history.clone(), room.policy);
        self.slots[slot].rooms.insert(r);
        self.events.push(RoomsEvent::Join { room: ROOMS[r].into(), member: self.slots[slot].id, count });
        let policy = policy.unwrap_or(self.default_policy);
        for message in history {
            let before = self.expected.deliveries;
            let leaving = self.offer(slot, message, policy);
            self.expected.replayed += self.expected.deliveries - before;
            if let Some(reason) = leaving {
                self.unregister_model(slot, reason);
                break;
            }
        }
        Ok(true)
    }

    fn subscribe(&mut self, slot: usize, c: usize) -> Result<bool, RoomsError> {
        let s = &self.slots[slot];
        if !s.registered {
            return Err(RoomsError::UnknownMember(s.id));
        }
        if s.channels.contains(&c) {
            return Ok(false);
        }
        match self.channels.get(&c) {
            Some(subs) if subs.len() >= MAX_MEMBERS => {
                return Err(RoomsError::Full { name: CHANNELS[c].into(), max: MAX_MEMBERS });
            }
            None if self.channels.len() >= MAX_CHANNELS => {
                return Err(RoomsError::TooManyChannels { max: MAX_CHANNELS });
            }
            _ => {}
        }
        self.channels.entry(c).or_default().insert(slot);
        self.slots[slot].channels.insert(c);
        Ok(true)
    }

    fn broadcast(
        &mut self,
        rooms: &[usize],
        channels: &[usize],
        except: Option<usize>,
        policy: Option<SlowConsumer>,
        size: usize,
    ) {
        let message = (self.next_message, size);
        // Lock order: rooms before channels, by name; a member takes the
        // policy of the first target it is in.
        let rooms: BTreeSet<usize> = rooms.iter().copied().filter(|r| self.rooms.contains_key(r)).collect();
        let channels: BTreeSet<usize> = channels.iter().copied().filter(|c| self.channels.contains_key(c)).collect();
        let mut order: Vec<(usize, SlowConsumer)> = Vec::new();
        for r in &rooms {
            let room = &self.rooms[r];
            let p = policy.or(room.policy).unwrap_or(self.default_policy);
            order.extend(room.members.iter().map(|&m| (m, p)));
        }
        for c in &channels {
            let p = policy.unwrap_or(self.default_policy);
            order.extend(self.channels[c].iter().map(|&m| (m, p)));
        }
        let mut seen = BTreeSet::new();
        let mut leaving = Vec::new();
        for (slot, p) in order {
            if except == Some(slot) || !seen.insert(slot) {
                continue;
            }
            if let Some(reason) = self.offer(slot, message, p) {
                leaving.push((slot, reason));
            }
        }
        for r in &rooms {
            let room = self.rooms.get_mut(r).expect("filtered");
            if room.history.len() >= HISTORY {
                room.history.pop_front();
            }
            room.history.push_back(message);
            room.sweep.active = true;
        }
        self.expected.broadcasts += 1;
        leaving.sort_by_key(|(slot, _)| self.slots[*slot].id);
        for (slot, reason) in leaving {
            self.unregister_model(slot, reason);
        }
    }

    fn send_to(&mut self, slot: usize, policy: Option<SlowConsumer>, size: usize) -> bool {
        if !self.slots[slot].registered {
            return false;
        }
        let message = (self.next_message, size);
        if let Some(reason) = self.offer(slot, message, policy.unwrap_or(self.default_policy)) {
            self.unregister_model(slot, reason);
        }
        true
    }

    fn cleanup(&mut self, now: Instant) {
        for room in self.rooms.values_mut() {
            if room.sweep.idle(now) {
                room.history.clear();
            }
        }
        self.dormant.retain(|_, (_, sweep)| !sweep.idle(now));
    }

    /// Applies `op` to the hub and to the model, then checks them.
    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let hub = Arc::clone(&self.rooms_hub);
        match *op {
            Op::Register(m) => {
                if !self.slots[m].registered {
                    self.check_drain(m)?;
                    let s = &mut self.slots[m];
                    s.member = Arc::new(QueueMember::new(s.budget, Encoding::Plain));
                    s.id = self.rooms_hub.register(Arc::clone(&s.member));
                    (s.registered, s.disconnected) = (true, false);
                }
            }
            Op::Join(m, r) => {
                let real = hub.join(ROOMS[r], self.slots[m].id);
                prop_assert_eq!(real, self.join(m, r), "join {} {}", m, r);
            }
            Op::Leave(m, r) => {
                let real = hub.leave(ROOMS[r], self.slots[m].id);
                let model = self.slots[m].registered && self.slots[m].rooms.remove(&r);
                if model {
                    self.leave_room(m, r, LeaveReason::Left);
                }
                prop_assert_eq!(real, model, "leave");
            }
            Op::Subscribe(m, c) => {
                let real = hub.subscribe(CHANNELS[c], self.slots[m].id);
                prop_assert_eq!(real, self.subscribe(m, c), "subscribe");
            }
            Op::Unsubscribe(m, c) => {
                let real = hub.unsubscribe(CHANNELS[c], self.slots[m].id);
                let model = self.slots[m].registered && self.slots[m].channels.remove(&c);
                if model {
                    self.unsubscribe_model(m, c);
                }
                prop_assert_eq!(real, model, "unsubscribe");
            }
            Op::Unregister(m) => {
                let real = hub.unregister(self.slots[m].id);
                prop_assert_eq!(real, self.slots[m].registered, "unregister");
                self.unregister_model(m, LeaveReason::Unregistered);
            }
            Op::Close(m) => {
                self.slots[m].member.queue().disconnect();
                self.slots[m].disconnected = true;
                self.slots[m].queue.clear();
            }
            Op::Drain(m) => self.check_drain(m)?,
            Op::Broadcast { ref rooms, ref channels, except, policy, size } => {
                let (_, payload) = self.message(size);
                let mut send = match (rooms.first(), channels.first()) {
                    (Some(&r), _) => hub.to(ROOMS[r]),
                    (None, Some(&c)) => hub.channel(CHANNELS[c]),
                    (None, None) => unreachable!("the strategy gives a target"),
                };
                for &r in rooms.iter().skip(1) {
                    send = send.to(ROOMS[r]);
                }
                for &c in channels.iter().skip(usize::from(rooms.is_empty())) {
                    send = send.channel(CHANNELS[c]);
                }
                if let Some(e) = except {
                    send = send.except(self.slots[e].id);
                }
                if let Some(p) = policy {
                    send = send.policy(p);
                }
                let _ = send.send(payload);
                self.broadcast(rooms, channels, except, policy, size);
            }
            Op::SendTo(m, policy, size) => {
                let (_, payload) = self.message(size);
                let real = hub.send_to(self.slots[m].id, payload, policy).is_ok();
                prop_assert_eq!(real, self.send_to(m, policy, size), "send_to");
            }
            Op::SetRoomPolicy(r, policy) => {
                let options = RoomOptions { policy, history_len: None };
                hub.set_room_options(ROOMS[r], options);
                self.options.insert(r, policy);
                if let Some(room) = self.rooms.get_mut(&r) {
                    room.policy = policy;
                }
            }
            Op::Cleanup(secs) => {
                self.now += Duration::from_secs(secs);
                let _ = hub.cleanup(self.now);
                self.cleanup(self.now);
            }
        }
        self.check_state()
    }

    /// Drains member `m` and compares what it received with the model.
    fn check_drain(&mut self, m: usize) -> Result<(), TestCaseError> {
        let got: Vec<u64> =
            drain(&self.slots[m].member).iter().map(|p| u64::from_le_bytes(p[..8].try_into().unwrap())).collect();
        let want: Vec<u64> = self.slots[m].queue.drain(..).map(|(id, _)| id).collect();
        prop_assert_eq!(got, want, "messages received by member {}", m);
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), TestCaseError> {
        let hub = &self.rooms_hub;
        let mut rooms = hub.rooms();
        rooms.sort();
        let want: Vec<(Arc<str>, usize)> =
            self.rooms.iter().map(|(r, m)| (ROOMS[*r].into(), m.members.len())).collect();
        prop_assert_eq!(&rooms, &want, "rooms and counts");
        let mut channels = hub.channels();
        channels.sort();
        let want: Vec<(Arc<str>, usize)> = self.channels.iter().map(|(c, m)| (CHANNELS[*c].into(), m.len())).collect();
        prop_assert_eq!(&channels, &want, "channels and counts");
        for (r, room) in &self.rooms {
            let mut members = hub.members(ROOMS[*r]);
            members.sort();
            let mut want: Vec<ConnId> = room.members.iter().map(|&m| self.slots[m].id).collect();
            want.sort();
            prop_assert_eq!(members, want, "members of {}", ROOMS[*r]);
            let history: Vec<usize> = hub.history(ROOMS[*r]).iter().map(|m| m.len()).collect();
            prop_assert_eq!(history.len(), room.history.len(), "history of {}", ROOMS[*r]);
        }
        for (r, (history, _)) in &self.dormant {
            prop_assert_eq!(hub.history(ROOMS[*r]).len(), history.len(), "kept history of {}", ROOMS[*r]);
        }
        for (i, s) in self.slots.iter().enumerate() {
            prop_assert_eq!(hub.is_registered(s.id), s.registered, "slot {} registered", i);
            let mut rooms_of = hub.rooms_of(s.id);
            rooms_of.sort();
            let want: Vec<Arc<str>> = s.rooms.iter().map(|&r| ROOMS[r].into()).collect();
            prop_assert_eq!(rooms_of, want);
        }
        let stats = hub.stats();
        let registered = self.slots.iter().filter(|s| s.registered).count();
        let memberships: usize = self.rooms.values().map(|r| r.members.len()).sum();
        let subscriptions: usize = self.channels.values().map(BTreeSet::len).sum();
        prop_assert_eq!(
            (stats.rooms, stats.channels, stats.members, stats.memberships, stats.subscriptions),
            (self.rooms.len(), self.channels.len(), registered, memberships, subscriptions)
        );
        let got = Expected {
            broadcasts: stats.broadcasts,
            deliveries: stats.deliveries,
            replayed: stats.replayed,
            dropped_newest: stats.dropped_newest,
            dropped_oldest: stats.dropped_oldest,
            disconnects: stats.disconnects,
            gone: stats.gone,
        };
        prop_assert_eq!(&got, &self.expected, "counters");
        let events: Vec<RoomsEvent> = std::iter::from_fn(|| hub.poll_event()).collect();
        let want = std::mem::take(&mut self.events);
        prop_assert_eq!(normalize(&events), normalize(&want), "events");
        Ok(())
    }
}

/// Events of one step, in a form that does not depend on the order in which
/// one step removed several members (which follows hash order): joins as
/// they are, leaves per room as sorted (member, reason) and sorted counts.
#[allow(clippy::type_complexity)]
fn normalize(events: &[RoomsEvent]) -> (Vec<RoomsEvent>, BTreeMap<Arc<str>, (Vec<(ConnId, String)>, Vec<usize>)>) {
    let mut joins = Vec::new();
    let mut leaves: BTreeMap<Arc<str>, (Vec<(ConnId, String)>, Vec<usize>)> = BTreeMap::new();
    for event in events {
        match event {
            RoomsEvent::Leave { room, member, count, reason } => {
                let entry = leaves.entry(room.clone()).or_default();
                entry.0.push((*member, format!("{reason:?}")));
                entry.1.push(*count);
            }
            other => joins.push(other.clone()),
        }
    }
    for (members, counts) in leaves.values_mut() {
        // Counts in a room go down one by one, whatever the member order.
        assert!(counts.windows(2).all(|w| w[0] == w[1] + 1), "leave counts go down by one: {counts:?}");
        counts.sort_unstable();
        members.sort();
    }
    (joins, leaves)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hub_matches_model(
        budgets in proptest::collection::vec(20usize..150, MEMBERS),
        default_policy in policy(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut model = Model::new(&budgets, default_policy);
        for op in &ops {
            model.step(op)?;
        }
        for m in 0..MEMBERS {
            model.check_drain(m)?;
        }
    }
}
