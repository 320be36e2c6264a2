//! The member handle the driver implements, and a ready-made one.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::message::{Encoding, Outbound};
use crate::policy::{Delivery, SlowConsumer};
use crate::queue::MemberQueue;

/// One connection, as the hub sees it: somewhere to put frames.
///
/// The driver implements this for its per-connection handle (typically over
/// a [`MemberQueue`] it drains when the transport is writable) and registers
/// it with [`Rooms::register`](crate::Rooms::register).
///
/// # Contract
///
/// - [`deliver`](Self::deliver) must not block and must not wait for IO: it
///   enqueues (or drops, per `policy`) and returns. It runs while the hub
///   holds the lock of the room being broadcast to, which is what keeps
///   per-room order; a slow `deliver` slows that room, never the socket
///   writes, which happen elsewhere without any hub lock.
/// - `deliver` must not call back into the [`Rooms`](crate::Rooms) that
///   called it (that could deadlock on the room's lock). Waking the
///   connection's task is fine.
/// - After the connection is gone, `deliver` answers [`Delivery::Gone`]
///   (the hub then unregisters the member).
pub trait Member: Send + Sync + 'static {
    /// How this connection sends broadcasts, from its handshake. Asked once,
    /// at registration.
    fn encoding(&self) -> Encoding {
        Encoding::Plain
    }

    /// Enqueues `message` without blocking, applying `policy` to this
    /// member's own queue if it is full.
    fn deliver(&self, message: Outbound, policy: SlowConsumer) -> Delivery;
}

/// A [`Member`] made of a [`MemberQueue`] behind a mutex, an [`Encoding`],
/// and an optional wake-up callback.
///
/// Usable as is by a driver: register an `Arc<QueueMember>`, keep a clone,
/// pass a `notify` that wakes the connection's task, and drain
/// [`queue`](Self::queue) from that task. `notify` runs when the queue goes
/// from empty to non-empty and when it disconnects — once per burst, not
/// once per message.
pub struct QueueMember {
    queue: Mutex<MemberQueue>,
    encoding: Encoding,
    notify: Option<Box<dyn Fn() + Send + Sync>>,
}

impl QueueMember {
    /// A member with an empty queue of `budget` bytes.
    #[must_use]
    pub fn new(budget: usize, encoding: Encoding) -> Self {
        Self { queue: Mutex::new(MemberQueue::new(budget)), encoding, notify: None }
    }

    /// Sets the callback run when the queue needs draining.
    #[must_use]
    pub fn with_notify(mut self, notify: impl Fn() + Send + Sync + 'static) -> Self {
        self.notify = Some(Box::new(notify));
        self
    }

    /// Locks the queue (recovering from a poisoned lock: the queue is
    /// consistent after every method).
    pub fn queue(&self) -> MutexGuard<'_, MemberQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for QueueMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueMember").field("queue", &*self.queue()).field("encoding", &self.encoding).finish()
    }
}

impl Member for QueueMember {
    fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn deliver(&self, message: Outbound, policy: SlowConsumer) -> Delivery {
        let mut queue = self.queue();
        let was_empty = queue.is_empty();
        let delivery = queue.push(message, policy);
        drop(queue);
        let wake = (was_empty && delivery.is_queued()) || delivery == Delivery::Disconnected;
        if wake && let Some(notify) = &self.notify {
            notify();
        }
        delivery
    }
}
