//! State shared between a socket's handles and its driver task.
//!
//! The lock is held only for short, non-blocking sections (never across an
//! `.await`), and wakers are woken after it is released.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Instant, SystemTime};

use nextrush_proto::{CloseReason, Connection, Message};

use super::Event;
use crate::stats::{Stats, Traffic};

/// What happens when a send finds the outbound queue over its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowConsumer {
    /// `send` waits until the peer has read enough (backpressure). `try_send`
    /// fails with [`Error::QueueFull`](crate::Error::QueueFull).
    #[default]
    Wait,
    /// The message is dropped, counted in stats, and `send` fails with
    /// [`Error::QueueFull`](crate::Error::QueueFull).
    Drop,
    /// The connection is closed with 1008 (policy violation).
    Disconnect,
}

/// The outbound queue bound and its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outbound {
    pub(crate) max_buffered: usize,
    pub(crate) slow_consumer: SlowConsumer,
}

/// A clock the handles can read without knowing the runtime.
pub(crate) type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Per-socket counters (see [`super::Metadata`]).
#[derive(Clone, Debug)]
#[repr(C)] // `connected_at` last: a message does not touch it.
pub(crate) struct Counters {
    pub(crate) traffic: Traffic,
    pub(crate) last_activity: Instant,
    pub(crate) connected_at: SystemTime,
}

/// The state behind a socket.
///
/// In this order: the fields a message touches first, the connection, then
/// the rest, so that a message brings in as few cache lines as it can.
#[repr(C)]
pub(crate) struct Shared {
    /// Events not yet taken by `recv`.
    pub(crate) incoming: VecDeque<Event>,
    /// Payload bytes of the messages in `incoming`.
    pub(crate) incoming_bytes: usize,
    /// Bytes taken from the connection that the driver has not written yet.
    pub(crate) unflushed: usize,
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) driver_waker: Option<Waker>,
    /// Tasks waiting for queue space, a flush or the close.
    pub(crate) waiters: Vec<Waker>,
    pub(crate) counters: Counters,
    pub(crate) outbound: Outbound,
    /// `recv` is waiting on `recv_waker` (kept after a wake, so that waiting
    /// again does not clone it).
    pub(crate) recv_waiting: bool,
    /// The driver stopped reading because `incoming` is full; `recv` wakes it.
    pub(crate) read_paused: bool,
    /// The driver has finished: the transport is shut down.
    pub(crate) finished: bool,
    /// Drop the connection now, without waiting (shutdown timeout).
    pub(crate) abort: bool,
    /// Set once the protocol reported the end.
    pub(crate) closed: Option<CloseReason>,
    pub(crate) conn: Connection,
    /// Live user handles (socket or halves); at zero an open socket closes.
    pub(crate) handles: usize,
    pub(crate) stats: Arc<Stats>,
    /// This connection's entry among the stats' live ones (0 once retired).
    stats_id: u64,
    pub(crate) clock: Clock,
}

impl Shared {
    /// The state of a connection that has just opened, its traffic counted
    /// in `stats`.
    pub(crate) fn open(conn: Connection, outbound: Outbound, stats: Arc<Stats>, clock: Clock) -> Arc<Mutex<Self>> {
        let shared = Arc::new(Mutex::new(Self::new(conn, outbound, Arc::clone(&stats), clock)));
        let id = stats.track(&shared);
        lock(&shared).stats_id = id;
        shared
    }

    fn new(conn: Connection, outbound: Outbound, stats: Arc<Stats>, clock: Clock) -> Self {
        let now = clock();
        Self {
            conn,
            incoming: VecDeque::new(),
            incoming_bytes: 0,
            closed: None,
            finished: false,
            abort: false,
            read_paused: false,
            unflushed: 0,
            handles: 1,
            recv_waker: None,
            recv_waiting: false,
            waiters: Vec::new(),
            driver_waker: None,
            outbound,
            counters: Counters { connected_at: SystemTime::now(), traffic: Traffic::default(), last_activity: now },
            stats,
            stats_id: 0,
            clock,
        }
    }

    /// Takes the connection off the stats' live list, its traffic final
    /// (the driver has finished). Returns what to pass to
    /// [`Stats::retire`] once the lock is released.
    pub(crate) fn take_retirement(&mut self) -> Option<(u64, Traffic)> {
        let id = std::mem::take(&mut self.stats_id);
        (id != 0).then_some((id, self.counters.traffic))
    }

    /// Bytes queued for the peer: in the protocol's outbox and in the
    /// driver's write buffer.
    pub(crate) fn buffered(&self) -> usize {
        self.conn.buffered_amount() + self.unflushed
    }

    /// Queues a data message, counting it. No clock is read: the
    /// connection does not use the time of a send, and activity is noted
    /// when the bytes are written.
    pub(crate) fn send_message(&mut self, message: Message) -> Result<(), crate::Error> {
        self.conn.send(self.counters.last_activity, message)?;
        self.counters.traffic.messages_out += 1;
        Ok(())
    }

    /// Takes the wakers to wake once the lock is released.
    pub(crate) fn take_waiters(&mut self) -> Vec<Waker> {
        if self.waiters.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut self.waiters)
    }

    /// Wakes `recv` if it waits. Runtime wakers only schedule the task, so
    /// this is safe under the lock.
    pub(crate) fn wake_reader(&mut self) {
        if std::mem::take(&mut self.recv_waiting)
            && let Some(waker) = &self.recv_waker
        {
            waker.wake_by_ref();
        }
    }

    /// Registers `waker` among the waiters (once).
    pub(crate) fn add_waiter(&mut self, waker: &Waker) {
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A connection that ended without its driver finishing (its task
        // dropped at a runtime's shutdown).
        if let Some((id, traffic)) = self.take_retirement() {
            self.stats.retire(id, traffic);
        }
    }
}

/// Locks the shared state, recovering from a poisoned lock (a panic in a
/// user callback must not take other handles down).
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
