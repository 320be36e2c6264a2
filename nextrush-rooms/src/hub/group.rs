//! A room or a channel: its members, presence and history, behind one lock;
//! and the map of all groups of one kind.
//!
//! # Life of a group
//!
//! A group is created with its first member and marked *removed* (under its
//! lock) when its last member leaves; it is then taken out of the map. A
//! lookup may still hand out a removed group for a moment: joins re-check
//! the flag after locking and create a fresh group instead, broadcasts find
//! it empty. So no member is ever added to a group that is no longer in the
//! map, and an empty group never lingers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::id::ConnId;
use crate::message::{EncodedMessage, Encoding};
use crate::policy::SlowConsumer;

/// A room or channel name.
pub(crate) type Name = Arc<str>;

/// Rooms have presence, history and events; channels are plain topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Room,
    Channel,
}

/// One member in one group.
pub(crate) struct Slot<M> {
    pub(crate) id: ConnId,
    pub(crate) member: Arc<M>,
    pub(crate) encoding: Encoding,
    pub(crate) presence: Option<Bytes>,
}

/// Activity as seen by the cleanup sweeps: a group is idle once a sweep has
/// seen no activity since an earlier sweep at least `idle_timeout` ago.
#[derive(Debug, Default)]
pub(crate) struct Sweep {
    active: bool,
    quiet_since: Option<Instant>,
}

impl Sweep {
    /// Something happened (a broadcast, a join).
    pub(crate) const fn touch(&mut self) {
        self.active = true;
    }

    /// Called by a sweep at `now`: whether the state has been idle for at
    /// least `timeout` (measured from the first sweep that found it quiet).
    pub(crate) fn is_idle(&mut self, now: Instant, timeout: Duration) -> bool {
        match self.quiet_since {
            Some(since) if !self.active => now.saturating_duration_since(since) >= timeout,
            _ => {
                self.active = false;
                self.quiet_since = Some(now);
                false
            }
        }
    }
}

/// History kept for a room that emptied, until it is joined again or idles
/// out.
#[derive(Default)]
pub(crate) struct Dormant {
    pub(crate) history: VecDeque<EncodedMessage>,
    pub(crate) sweep: Sweep,
}

/// What the group's lock protects.
pub(crate) struct Inner<M> {
    pub(crate) slots: Vec<Slot<M>>,
    index: HashMap<ConnId, usize>,
    pub(crate) history: VecDeque<EncodedMessage>,
    pub(crate) history_len: usize,
    pub(crate) policy: Option<SlowConsumer>,
    pub(crate) sweep: Sweep,
}

impl<M> Inner<M> {
    /// Appends to the history, forgetting the oldest beyond its length.
    /// Returns whether the room keeps history.
    pub(crate) fn record(&mut self, message: &EncodedMessage) -> bool {
        if self.history_len == 0 {
            return false;
        }
        while self.history.len() >= self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(message.clone());
        true
    }

    /// Sets the history length, forgetting what no longer fits.
    pub(crate) fn set_history_len(&mut self, len: usize) {
        self.history_len = len;
        let excess = self.history.len().saturating_sub(len);
        self.history.drain(..excess);
    }

    pub(crate) fn slot_mut(&mut self, id: ConnId) -> Option<&mut Slot<M>> {
        let at = *self.index.get(&id)?;
        self.slots.get_mut(at)
    }

    pub(crate) fn slot(&self, id: ConnId) -> Option<&Slot<M>> {
        self.slots.get(*self.index.get(&id)?)
    }
}

/// A room or channel.
pub(crate) struct Group<M> {
    pub(crate) name: Name,
    pub(crate) kind: Kind,
    removed: AtomicBool,
    len: AtomicUsize,
    inner: Mutex<Inner<M>>,
}

impl<M> Group<M> {
    /// A group whose first member is `slot`.
    pub(crate) fn new(name: Name, kind: Kind, slot: Slot<M>, policy: Option<SlowConsumer>, history: History) -> Self {
        let mut inner = Inner {
            slots: Vec::new(),
            index: HashMap::new(),
            history: history.kept,
            history_len: 0,
            policy,
            sweep: Sweep::default(),
        };
        inner.set_history_len(history.len);
        inner.index.insert(slot.id, 0);
        inner.slots.push(slot);
        inner.sweep.touch();
        Self { name, kind, removed: AtomicBool::new(false), len: AtomicUsize::new(1), inner: Mutex::new(inner) }
    }

    /// Locks the group (recovering from poison: every critical section
    /// leaves the group consistent before it can panic in a member's code).
    pub(crate) fn lock(&self) -> Locked<'_, M> {
        Locked { group: self, inner: self.inner.lock().unwrap_or_else(PoisonError::into_inner) }
    }

    /// Whether the group emptied and left (or is leaving) the map.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Members now, without locking.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

/// The history a new group starts with.
pub(crate) struct History {
    pub(crate) kept: VecDeque<EncodedMessage>,
    pub(crate) len: usize,
}

/// A locked group. Membership changes go through it so that the lock-free
/// count stays equal to the slots.
pub(crate) struct Locked<'a, M> {
    pub(crate) group: &'a Group<M>,
    pub(crate) inner: MutexGuard<'a, Inner<M>>,
}

impl<M> Locked<'_, M> {
    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.inner.index.contains_key(&id)
    }

    /// Adds a member not yet in the group; returns the new count.
    pub(crate) fn insert(&mut self, slot: Slot<M>) -> usize {
        debug_assert!(!self.contains(slot.id) && !self.group.is_removed());
        let inner = &mut *self.inner;
        inner.index.insert(slot.id, inner.slots.len());
        inner.slots.push(slot);
        inner.sweep.touch();
        self.group.len.store(inner.slots.len(), Ordering::Relaxed);
        inner.slots.len()
    }

    /// Removes a member; returns its slot and the new count. At 0 the group
    /// is marked removed: `on_empty` runs first, with the inner state, so
    /// that whatever it saves is visible before the flag is.
    pub(crate) fn remove(&mut self, id: ConnId, on_empty: impl FnOnce(&mut Inner<M>)) -> Option<(Slot<M>, usize)> {
        let inner = &mut *self.inner;
        let at = inner.index.remove(&id)?;
        let slot = inner.slots.swap_remove(at);
        if let Some(moved) = inner.slots.get(at) {
            inner.index.insert(moved.id, at);
        }
        let count = inner.slots.len();
        self.group.len.store(count, Ordering::Relaxed);
        if count == 0 {
            on_empty(inner);
            self.group.removed.store(true, Ordering::Release);
        }
        Some((slot, count))
    }
}

/// All groups of one kind, by name.
pub(crate) struct Space<M> {
    map: RwLock<HashMap<Name, Arc<Group<M>>>>,
    /// Groups not marked removed.
    count: AtomicUsize,
}

impl<M> Space<M> {
    pub(crate) fn new() -> Self {
        Self { map: RwLock::new(HashMap::new()), count: AtomicUsize::new(0) }
    }

    /// The group called `name`, if any (it may have just been removed).
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Group<M>>> {
        self.read().get(name).cloned()
    }

    /// Every group not marked removed.
    pub(crate) fn list(&self) -> Vec<Arc<Group<M>>> {
        self.read().values().filter(|g| !g.is_removed()).cloned().collect()
    }

    /// Groups that exist.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the members of every group.
    pub(crate) fn memberships(&self) -> usize {
        self.read().values().map(|g| g.len()).sum()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, HashMap<Name, Arc<Group<M>>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, HashMap<Name, Arc<Group<M>>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a group created (under the write lock, after the limit check).
    pub(crate) fn created(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes a group that was marked removed out of the map, unless the name
    /// already belongs to a newer group.
    pub(crate) fn forget(&self, group: &Arc<Group<M>>) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.write();
        if map.get(&group.name).is_some_and(|current| Arc::ptr_eq(current, group)) {
            map.remove(&group.name);
        }
    }
}
