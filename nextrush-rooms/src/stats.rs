//! Counters of a hub, and the outcome of one fan-out.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::event::LeaveReason;
use crate::id::ConnId;
use crate::policy::Delivery;

/// A snapshot of a hub's state and counters, from
/// [`Rooms::stats`](crate::Rooms::stats). Counters count since the hub was
/// created; the first five fields are the state now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomsStats {
    /// Rooms that exist (each has at least one member).
    pub rooms: usize,
    /// Channels that exist (each has at least one subscriber).
    pub channels: usize,
    /// Registered members (connections).
    pub members: usize,
    /// Sum over rooms of their members.
    pub memberships: usize,
    /// Sum over channels of their subscribers.
    pub subscriptions: usize,
    /// Broadcasts and publishes (one per `send`, whatever the recipients).
    pub broadcasts: u64,
    /// Messages queued for a member: fan-outs, targeted sends and history
    /// replays (including those queued by evicting older ones).
    pub deliveries: u64,
    /// Of [`deliveries`](Self::deliveries), history replays on join.
    pub replayed: u64,
    /// Messages a full queue refused ([`SlowConsumer::DropNewest`](crate::SlowConsumer::DropNewest)).
    pub dropped_newest: u64,
    /// Queued messages evicted by newer ones ([`SlowConsumer::DropOldest`](crate::SlowConsumer::DropOldest)).
    pub dropped_oldest: u64,
    /// Members disconnected as slow consumers (each dropped the message that
    /// overflowed).
    pub disconnects: u64,
    /// Messages offered to members whose connection was already gone.
    pub gone: u64,
    /// Compressions performed for shared (no context takeover) encodings:
    /// at most one per message and [`DeflateKey`](crate::Encoding).
    pub shared_compressions: u64,
    /// Messages offered to connections that encode and compress them
    /// themselves because they negotiated context takeover (the
    /// per-connection fallback), one per recipient whether or not its queue
    /// took it.
    pub per_connection_encodings: u64,
    /// Events dropped because nobody drained the event queue in time.
    pub events_dropped: u64,
}

impl RoomsStats {
    /// All messages dropped by slow-consumer policies or gone members.
    #[must_use]
    pub const fn dropped(&self) -> u64 {
        self.dropped_newest + self.dropped_oldest + self.disconnects + self.gone
    }
}

/// What one broadcast, publish or replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FanOut {
    /// Members offered the message (the excluded sender is not counted, and
    /// a member of several targeted rooms is counted once).
    pub recipients: usize,
    /// Members that now have it queued.
    pub queued: usize,
    /// Members whose full queue refused it.
    pub dropped_newest: usize,
    /// Older messages evicted to queue it (over all recipients).
    pub dropped_oldest: usize,
    /// Members disconnected as slow consumers.
    pub disconnected: usize,
    /// Members found gone.
    pub gone: usize,
}

impl FanOut {
    /// Tallies one delivery; members to remove are pushed onto `leaving`.
    pub(crate) fn record(&mut self, id: ConnId, delivery: Delivery, leaving: &mut Vec<(ConnId, LeaveReason)>) {
        self.recipients += 1;
        match delivery {
            Delivery::Queued => self.queued += 1,
            Delivery::DroppedOldest(n) => {
                self.queued += 1;
                self.dropped_oldest += n;
            }
            Delivery::DroppedNewest => self.dropped_newest += 1,
            Delivery::Disconnected => {
                self.disconnected += 1;
                leaving.push((id, LeaveReason::SlowConsumer));
            }
            Delivery::Gone => {
                self.gone += 1;
                leaving.push((id, LeaveReason::Gone));
            }
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    broadcasts: AtomicU64,
    deliveries: AtomicU64,
    replayed: AtomicU64,
    dropped_newest: AtomicU64,
    dropped_oldest: AtomicU64,
    disconnects: AtomicU64,
    gone: AtomicU64,
    shared_compressions: AtomicU64,
    per_connection_encodings: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

/// What a fan-out adds to the counters.
pub(crate) struct Tally<'a> {
    pub(crate) fan_out: &'a FanOut,
    pub(crate) compressions: u64,
    pub(crate) per_connection: u64,
    pub(crate) broadcast: bool,
    pub(crate) replay: bool,
}

impl Counters {
    pub(crate) fn add(&self, tally: &Tally<'_>) {
        let f = tally.fan_out;
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        };
        add(&self.broadcasts, u64::from(tally.broadcast));
        add(&self.deliveries, f.queued as u64);
        if tally.replay {
            add(&self.replayed, f.queued as u64);
        }
        add(&self.dropped_newest, f.dropped_newest as u64);
        add(&self.dropped_oldest, f.dropped_oldest as u64);
        add(&self.disconnects, f.disconnected as u64);
        add(&self.gone, f.gone as u64);
        add(&self.shared_compressions, tally.compressions);
        add(&self.per_connection_encodings, tally.per_connection);
    }

    /// The counters into `stats` (whose state fields the caller fills).
    pub(crate) fn fill(&self, stats: &mut RoomsStats) {
        stats.broadcasts = self.broadcasts.load(Relaxed);
        stats.deliveries = self.deliveries.load(Relaxed);
        stats.replayed = self.replayed.load(Relaxed);
        stats.dropped_newest = self.dropped_newest.load(Relaxed);
        stats.dropped_oldest = self.dropped_oldest.load(Relaxed);
        stats.disconnects = self.disconnects.load(Relaxed);
        stats.gone = self.gone.load(Relaxed);
        stats.shared_compressions = self.shared_compressions.load(Relaxed);
        stats.per_connection_encodings = self.per_connection_encodings.load(Relaxed);
        stats.events_dropped = self.events_dropped.load(Relaxed);
    }
}
