//! Presence, history, events and the cleanup sweep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

use super::group::{Kind, Locked};
use super::{Leaving, Rooms, lock};
use crate::error::RoomsError;
use crate::event::RoomsEvent;
use crate::id::ConnId;
use crate::member::Member;
use crate::message::{EncodedMessage, Encoder};
use crate::stats::{FanOut, Tally};

/// A one-way flag with a waker: set once, then ready forever.
#[derive(Debug, Default)]
pub(super) struct Latch {
    set: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

impl Latch {
    pub(super) fn set(&self) {
        // A plain load first: after the first time this is all it costs.
        if !self.set.load(Ordering::Acquire)
            && !self.set.swap(true, Ordering::AcqRel)
            && let Some(waker) = lock(&self.waiter).take()
        {
            waker.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.set.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *lock(&self.waiter) = Some(cx.waker().clone());
        // Set between the look and the waker going in: no wake came.
        if self.set.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }
}

/// What one [`Rooms::cleanup`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Live rooms whose history was dropped because nothing happened in
    /// them for the idle timeout.
    pub histories_cleared: usize,
    /// Histories of emptied rooms dropped (no one came back in time).
    pub dormant_dropped: usize,
    /// Emptied rooms' histories still kept.
    pub dormant_kept: usize,
}

impl<M: Member> Rooms<M> {
    /// Sets (`Some`) or clears (`None`) `id`'s presence in `room`: opaque
    /// bytes (a JSON document, a name, a status) that
    /// [`presence`](Self::presence) lists. Queues `room:presence`. Presence
    /// lives as long as the membership.
    ///
    /// # Errors
    /// [`RoomsError::NotInRoom`].
    pub fn set_presence(&self, room: &str, id: ConnId, presence: Option<Bytes>) -> Result<(), RoomsError> {
        let not_in_room = || RoomsError::NotInRoom { room: Arc::from(room), member: id };
        let group = self.rooms.get(room).ok_or_else(not_in_room)?;
        let mut g = group.lock();
        let slot = g.inner.slot_mut(id).ok_or_else(not_in_room)?;
        slot.presence = presence;
        g.inner.sweep.touch();
        self.push_event(RoomsEvent::Presence { room: Arc::clone(&group.name), member: id });
        Ok(())
    }

    /// The members of `room` that have a presence, with it.
    #[must_use]
    pub fn presence(&self, room: &str) -> Vec<(ConnId, Bytes)> {
        let Some(group) = self.rooms.get(room) else { return Vec::new() };
        let g = group.lock();
        g.inner.slots.iter().filter_map(|s| Some((s.id, s.presence.clone()?))).collect()
    }

    /// `id`'s presence in `room`.
    #[must_use]
    pub fn presence_of(&self, room: &str, id: ConnId) -> Option<Bytes> {
        let group = self.rooms.get(room)?;
        let g = group.lock();
        g.inner.slot(id)?.presence.clone()
    }

    /// The history `room` would replay now, oldest first (for a room that
    /// emptied, what it kept).
    #[must_use]
    pub fn history(&self, room: &str) -> Vec<EncodedMessage> {
        if let Some(group) = self.rooms.get(room).filter(|g| !g.is_removed()) {
            return group.lock().inner.history.iter().cloned().collect();
        }
        lock(&self.dormant).get(room).map(|d| d.history.iter().cloned().collect()).unwrap_or_default()
    }

    /// Ready once any room has kept history. Until then
    /// [`cleanup`](Self::cleanup) has nothing to do, so a caller can wait
    /// for this before it starts sweeping, and keep no timer meanwhile (an
    /// event loop with no timer armed sleeps without a timeout).
    pub fn poll_history_kept(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.history_kept.poll(cx)
    }

    /// The sweep behind `roomCleanupInterval`: call it every
    /// [`cleanup_interval`](crate::RoomsConfig::cleanup_interval) with the
    /// current time.
    ///
    /// Membership needs no sweep (empty rooms and channels are removed at
    /// once, gone members on their first failed delivery). What it drops is
    /// idle *history*:
    ///
    /// - the history of a live room in which nothing happened (no send, no
    ///   join, no presence change) for
    ///   [`idle_timeout`](crate::RoomsConfig::idle_timeout), so that a quiet
    ///   room does not replay stale messages;
    /// - the history kept for a room that emptied
    ///   ([`keep_history_when_empty`](crate::RoomsConfig::keep_history_when_empty))
    ///   once no one rejoined it for the idle timeout.
    ///
    /// Time is measured in sweeps: activity is noticed by the next sweep, so
    /// state goes between `idle_timeout` and `idle_timeout + interval` after
    /// the last activity. The hot path reads no clock.
    pub fn cleanup(&self, now: Instant) -> CleanupReport {
        if !self.history_kept.set.load(Ordering::Acquire) {
            return CleanupReport::default();
        }
        let timeout = self.config.idle_timeout();
        let mut report = CleanupReport::default();
        for group in self.rooms.list() {
            let mut g = group.lock();
            if g.inner.sweep.is_idle(now, timeout) && !g.inner.history.is_empty() {
                g.inner.history.clear();
                report.histories_cleared += 1;
            }
        }
        let mut dormant = lock(&self.dormant);
        let before = dormant.len();
        dormant.retain(|_, d| !d.sweep.is_idle(now, timeout));
        report.dormant_dropped = before - dormant.len();
        report.dormant_kept = dormant.len();
        report
    }

    /// Queues an event, dropping the oldest when full.
    pub(super) fn push_event(&self, event: RoomsEvent) {
        let capacity = self.config.event_capacity();
        if capacity == 0 {
            return;
        }
        let mut events = lock(&self.events);
        while events.len() >= capacity {
            events.pop_front();
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        events.push_back(event);
    }

    /// After a member was inserted (it is the last slot): queues
    /// `room:join` and replays the history to it, under the room's lock so
    /// that no broadcast comes between. Returns members to remove.
    pub(super) fn announce_join(&self, g: &mut Locked<'_, M>, count: usize) -> Leaving {
        let mut leaving = Vec::new();
        if g.group.kind != Kind::Room {
            return leaving;
        }
        let Some(slot) = g.inner.slots.last() else { return leaving };
        self.push_event(RoomsEvent::Join { room: Arc::clone(&g.group.name), member: slot.id, count });
        if g.inner.history.is_empty() {
            return leaving;
        }
        let policy = g.inner.policy.unwrap_or(self.config.default_policy());
        let mut encoder = Encoder::default();
        let mut fan_out = FanOut::default();
        for message in &g.inner.history {
            let delivery = slot.member.deliver(encoder.outbound(message, &slot.encoding), policy);
            fan_out.record(slot.id, delivery, &mut leaving);
            if delivery.is_terminal() {
                break;
            }
        }
        let tally = Tally {
            fan_out: &fan_out,
            compressions: encoder.compressions,
            per_connection: encoder.per_connection,
            broadcast: false,
            replay: true,
        };
        self.counters.add(&tally);
        leaving
    }
}
