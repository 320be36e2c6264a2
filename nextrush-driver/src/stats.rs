//! Counters for a server or client, read as a [`StatsSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Live counters, updated with relaxed atomics on the hot path.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    pub(crate) connections: AtomicU64,
    pub(crate) total_connections: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
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

    pub(crate) fn snapshot(&self, now: Instant, rooms: usize) -> StatsSnapshot {
        StatsSnapshot {
            connections: self.connections.load(Relaxed),
            total_connections: self.total_connections.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
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
