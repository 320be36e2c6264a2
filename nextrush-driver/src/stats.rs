//! Counters for a server or client, read as a [`StatsSnapshot`].
//!
//! Message and byte traffic is counted by each connection in its own state
//! (which its driver and handles lock anyway), not in shared atomics: those
//! would cost every message an atomic operation on one cache line that all
//! of a runtime's threads write. A snapshot adds up the open connections'
//! counters and those of the connections that ended, folded in as they end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::socket::{Shared, lock};

/// A connection's traffic so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) messages_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Self) {
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

/// The open connections whose traffic a snapshot adds up.
#[derive(Debug, Default)]
struct Live {
    next_id: u64,
    connections: HashMap<u64, Weak<Mutex<Shared>>>,
}

/// Live counters: events counted with relaxed atomics, traffic per connection.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    live: Mutex<Live>,
    pub(crate) connections: AtomicU64,
    pub(crate) total_connections: AtomicU64,
    /// Traffic of ended connections, and bytes of handshakes and plain HTTP.
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) reconnections: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
}

impl Stats {
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            started,
            live: Mutex::default(),
            connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            reconnections: AtomicU64::new(0),
            dead_peers: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            dropped_messages: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `shared`'s traffic from now on; returns the id to
    /// [`retire`](Self::retire) it with.
    pub(crate) fn track(&self, shared: &Arc<Mutex<Shared>>) -> u64 {
        let mut live = self.live();
        live.next_id += 1;
        let id = live.next_id;
        live.connections.insert(id, Arc::downgrade(shared));
        id
    }

    /// Folds an ended connection's final traffic into the totals. In one
    /// step with taking it off the live list, so that a snapshot counts it
    /// exactly once.
    pub(crate) fn retire(&self, id: u64, traffic: Traffic) {
        let mut live = self.live();
        if live.connections.remove(&id).is_some() {
            Self::add(&self.messages_sent, traffic.messages_out);
            Self::add(&self.messages_received, traffic.messages_in);
            Self::add(&self.bytes_sent, traffic.bytes_out);
            Self::add(&self.bytes_received, traffic.bytes_in);
        }
    }

    pub(crate) fn snapshot(&self, now: Instant, rooms: usize) -> StatsSnapshot {
        // Dropped only once the list is unlocked: a connection whose last
        // handle this was retires itself, which takes the list's lock.
        let open: Vec<Arc<Mutex<Shared>>>;
        let mut traffic;
        {
            // Under the list's lock, which `retire` holds while it moves a
            // connection from the list to the totals.
            let live = self.live();
            traffic = Traffic {
                messages_in: self.messages_received.load(Relaxed),
                messages_out: self.messages_sent.load(Relaxed),
                bytes_in: self.bytes_received.load(Relaxed),
                bytes_out: self.bytes_sent.load(Relaxed),
            };
            open = live.connections.values().filter_map(Weak::upgrade).collect();
            for shared in &open {
                traffic += lock(shared).counters.traffic;
            }
        }
        drop(open);
        StatsSnapshot {
            connections: self.connections.load(Relaxed),
            total_connections: self.total_connections.load(Relaxed),
            messages_sent: traffic.messages_out,
            messages_received: traffic.messages_in,
            bytes_sent: traffic.bytes_out,
            bytes_received: traffic.bytes_in,
            rooms,
            uptime: now.saturating_duration_since(self.started),
            errors: self.errors.load(Relaxed),
            reconnections: self.reconnections.load(Relaxed),
            dead_peers: self.dead_peers.load(Relaxed),
            rejected_handshakes: self.rejected.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            dropped_messages: self.dropped_messages.load(Relaxed),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Open connections now.
    pub connections: u64,
    /// Connections accepted (server) or made (client) since start.
    pub total_connections: u64,
    /// Data messages sent.
    pub messages_sent: u64,
    /// Data messages received.
    pub messages_received: u64,
    /// Bytes written to transports (frames and handshakes).
    pub bytes_sent: u64,
    /// Bytes read from transports.
    pub bytes_received: u64,
    /// Rooms that exist now.
    pub rooms: usize,
    /// Time since the server or client was created.
    pub uptime: Duration,
    /// Connections that ended in an error (protocol, timeout, lost transport),
    /// handler errors, and failed TLS handshakes.
    pub errors: u64,
    /// Successful reconnections of reconnecting clients.
    pub reconnections: u64,
    /// Peers dropped because they stopped answering pings.
    pub dead_peers: u64,
    /// Opening handshakes answered with an HTTP error.
    pub rejected_handshakes: u64,
    /// Messages over a socket's rate limit.
    pub rate_limited: u64,
    /// Outbound messages dropped by the slow-consumer policy.
    pub dropped_messages: u64,
}
