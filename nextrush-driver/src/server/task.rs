//! A server connection's task: the driver and the user's handler, polled
//! side by side in one task so that a message received and the reply sent
//! need no hop between tasks.
//!
//! Each part has its own waker over one shared [`TaskWake`]. A wake while
//! the task is running (the driver handing a message to `recv`, the handler
//! queueing a reply) only sets that part's flag, and the task polls it again
//! before returning instead of asking the runtime to schedule it once more.

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use nextrush_proto::CloseReason;

use super::HandlerFuture;
use crate::driver::Driver;
use crate::runtime::{Runtime, Transport};

/// Rounds of driver/handler polls per task poll before yielding.
const MAX_ROUNDS: usize = 16;

/// A connection task's wake state, shared by its driver, its handler and its
/// rooms queue: one word of flags, so that a wake from elsewhere is one
/// atomic operation. Wakes from inside the task's own poll (the driver
/// handing a message to `recv`, the handler queueing a reply) are plain
/// writes to [`POLLING`].
#[derive(Default)]
pub(crate) struct TaskWake {
    state: AtomicU8,
    /// The runtime's waker for the whole task.
    outer: Mutex<Option<Waker>>,
}

/// The driver must be polled again.
const DRIVER: u8 = 1;
/// The handler must be polled again.
const HANDLER: u8 = 2;
/// The rooms queue went from empty to non-empty (or disconnected).
const ROOM: u8 = 4;
const PARTS: u8 = DRIVER | HANDLER;
/// Only in what [`TaskWake::take_parts`] returns: the driver was woken from
/// outside the task's poll (its transport or timer among the possible
/// wakers), not only by the handler.
const OUTSIDE: u8 = 8;

thread_local! {
    /// The connection task this thread is polling (its `TaskWake`'s address)
    /// and the parts its own wakes asked for since its last round.
    static POLLING: Cell<(usize, u8)> = const { Cell::new((0, 0)) };
}

impl TaskWake {
    /// The rooms hub queued something for this connection.
    pub(crate) fn notify_room(&self) {
        // The rooms flag always goes in the shared word: the driver clears it
        // under the queue's lock.
        if self.wake_local(DRIVER) {
            self.state.fetch_or(ROOM, Ordering::AcqRel);
        } else {
            self.wake_remote(ROOM | DRIVER);
        }
    }

    /// Whether the rooms queue has news, without clearing it.
    pub(crate) fn room_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) & ROOM != 0
    }

    /// The rooms queue is about to be looked at (under its own lock, which
    /// orders what was queued): a notification from now on is news.
    pub(crate) fn clear_room_pending(&self) {
        self.state.fetch_and(!ROOM, Ordering::AcqRel);
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn wake_part(&self, flags: u8) {
        if !self.wake_local(flags) {
            self.wake_remote(flags);
        }
    }

    /// Notes `flags` without an atomic operation if this thread is polling
    /// the task: it runs another round before returning.
    fn wake_local(&self, flags: u8) -> bool {
        let me = self.address();
        POLLING.with(|polling| {
            let (task, parts) = polling.get();
            let local = task == me;
            if local {
                polling.set((task, parts | flags));
            }
            local
        })
    }

    /// Sets `flags` in the shared word and asks the runtime to poll the task
    /// (again, if it is being polled elsewhere: the flags are read after).
    fn wake_remote(&self, flags: u8) {
        self.state.fetch_or(flags, Ordering::AcqRel);
        // Runtime wakers only schedule the task: waking under this lock
        // cannot call back into it.
        let outer = self.outer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = outer.as_ref() {
            w.wake_by_ref();
        }
    }

    /// Takes the driver and handler flags, local and shared (the rooms flag
    /// stays for the driver to clear when it looks at the queue), with
    /// [`OUTSIDE`] if the driver's came from the shared word.
    fn take_parts(&self) -> u8 {
        let local = POLLING.with(|polling| {
            let (task, parts) = polling.get();
            polling.set((task, 0));
            parts
        });
        // A plain load first: a remote flag missed here woke the runtime,
        // which polls the task again.
        let remote = if self.state.load(Ordering::Relaxed) & PARTS != 0 {
            self.state.fetch_and(!PARTS, Ordering::AcqRel) & PARTS
        } else {
            0
        };
        let outside = if remote & DRIVER != 0 { OUTSIDE } else { 0 };
        local | remote | outside
    }
}

/// Marks this thread as polling a task until dropped (also on unwinding), so
/// that a stale mark can never turn a wake of another task into a local one.
struct PollingGuard {
    previous: (usize, u8),
}

impl PollingGuard {
    fn enter(wake: &TaskWake) -> Self {
        Self { previous: POLLING.replace((wake.address(), 0)) }
    }

    /// Leaves, returning the parts woken locally since the last round.
    fn leave(self) -> u8 {
        POLLING.with(|polling| polling.get().1)
    }
}

impl Drop for PollingGuard {
    fn drop(&mut self) {
        POLLING.set(self.previous);
    }
}

/// The driver's waker: its transport's and its timer's too (so a wake from
/// outside the task's poll may mean input: [`OUTSIDE`]), woken also by the
/// rooms queue and the socket's handles when they queue output.
impl Wake for TaskWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_part(DRIVER);
    }
}

/// The handler's waker.
struct HandlerWake(Arc<TaskWake>);

impl Wake for HandlerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_part(HANDLER);
    }
}

/// In this order: what every poll touches first, what only the end needs
/// last, so that a message brings in as few cache lines as it can.
#[repr(C)]
pub(super) struct ConnectionTask<R: Runtime, T: Transport> {
    wake: Arc<TaskWake>,
    /// The runtime waker last stored in `wake.outer`, to compare against
    /// without the lock.
    outer: Option<Waker>,
    driver_waker: Waker,
    handler_waker: Waker,
    handler: Option<HandlerFuture>,
    driver: Option<Driver<R, T>>,
    reason: Option<CloseReason>,
    handler_error: Option<String>,
}

impl<R: Runtime, T: Transport> ConnectionTask<R, T> {
    /// `wake` is the one the connection's rooms queue notifies.
    pub(super) fn new(driver: Driver<R, T>, handler: HandlerFuture, wake: Arc<TaskWake>) -> Self {
        wake.state.fetch_or(DRIVER | HANDLER, Ordering::AcqRel);
        let driver_waker = Waker::from(Arc::clone(&wake));
        let handler_waker = Waker::from(Arc::new(HandlerWake(Arc::clone(&wake))));
        Self {
            driver: Some(driver),
            handler: Some(handler),
            reason: None,
            handler_error: None,
            wake,
            driver_waker,
            handler_waker,
            outer: None,
        }
    }

    fn poll_handler(&mut self) {
        let Some(handler) = self.handler.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&self.handler_waker);
        // A panicking handler must not take the connection's driver down
        // with it: it becomes an error, and the socket closes normally.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(&mut cx)));
        let outcome = match polled {
            Ok(Poll::Pending) => return,
            Ok(Poll::Ready(Ok(()))) => None,
            // A handler that just passes on `recv`'s report of the connection
            // failing (`?`) adds nothing: that failure is reported already.
            Ok(Poll::Ready(Err(error))) if matches!(error.downcast_ref(), Some(crate::Error::Closed(_))) => None,
            Ok(Poll::Ready(Err(error))) => Some(format!("handler error: {error}")),
            Err(_) => Some("handler panicked".to_owned()),
        };
        if let Some(message) = &outcome {
            tracing::warn!(error = %message, "handler failed");
        }
        self.handler_error = outcome;
        // Dropping the handler drops its socket handle; the last one closes.
        self.handler = None;
    }

    /// Polls the driver; `now` is read on the first call of a task poll.
    /// `woken`: from outside the task (see [`OUTSIDE`]).
    fn poll_driver(&mut self, now: &mut Option<Instant>, woken: bool) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        let now = *now.get_or_insert_with(|| driver.now());
        let mut cx = Context::from_waker(&self.driver_waker);
        if driver.poll_woken(&mut cx, now, woken).is_ready() {
            self.reason = driver.outcome().map(|o| o.reason.clone());
            self.driver = None;
            // The handler may be waiting on `recv`: it was woken; poll it.
            self.wake.wake_part(HANDLER);
        }
    }

    /// Polls whichever part was woken until neither was; returns whether
    /// work remains (the round limit was hit). The driver goes first: what
    /// it reads, the handler takes in the same round.
    fn run_rounds(&mut self) -> bool {
        let mut now = None;
        for _ in 0..MAX_ROUNDS {
            let parts = self.wake.take_parts();
            if parts == 0 {
                return false;
            }
            if parts & DRIVER != 0 {
                self.poll_driver(&mut now, parts & OUTSIDE != 0);
            }
            if parts & HANDLER != 0 {
                self.poll_handler();
            }
        }
        true
    }
}

impl<R: Runtime, T: Transport> Future for ConnectionTask<R, T> {
    type Output = (CloseReason, Option<String>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *this.wake.outer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cx.waker().clone());
            this.outer = Some(cx.waker().clone());
        }
        let polling = PollingGuard::enter(&this.wake);
        let busy = this.run_rounds();
        let left = polling.leave();
        if this.driver.is_none() && this.handler.is_none() {
            let reason = this.reason.take().unwrap_or(CloseReason::Eof);
            return Poll::Ready((reason, this.handler_error.take()));
        }
        // Work left over, or a local wake after the last round looked (a
        // remote one woke the runtime itself): its flags move to the shared
        // word for the next poll.
        if left != 0 {
            this.wake.state.fetch_or(left, Ordering::AcqRel);
        }
        if busy || left != 0 {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the runtime wakes a task gets.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task_wake(runtime: &Arc<CountingWaker>) -> Arc<TaskWake> {
        let wake = Arc::new(TaskWake::default());
        *wake.outer.lock().unwrap() = Some(Waker::from(Arc::clone(runtime)));
        wake
    }

    #[test]
    fn a_wake_from_inside_the_poll_is_noted_without_the_runtime() {
        let runtime = Arc::new(CountingWaker::default());
        let wake = task_wake(&runtime);
        let polling = PollingGuard::enter(&wake);
        wake.wake_part(HANDLER);
        Waker::from(Arc::clone(&wake)).wake_by_ref();
        assert_eq!(wake.take_parts(), DRIVER | HANDLER);
        assert_eq!(wake.take_parts(), 0, "taken once");
        wake.wake_part(DRIVER);
        assert_eq!(polling.leave(), DRIVER, "woken after the last round: the poll hands it on");
        assert_eq!(runtime.0.load(Ordering::SeqCst), 0);
        assert_eq!(wake.state.load(Ordering::SeqCst), 0, "nothing in the shared word");
    }

    #[test]
    fn a_wake_of_another_task_or_outside_any_poll_reaches_the_runtime() {
        let runtime = Arc::new(CountingWaker::default());
        let wake = task_wake(&runtime);
        wake.wake_part(HANDLER);
        assert_eq!(runtime.0.load(Ordering::SeqCst), 1, "no poll on this thread");

        let other_runtime = Arc::new(CountingWaker::default());
        let other = task_wake(&other_runtime);
        let polling = PollingGuard::enter(&other);
        wake.wake_part(DRIVER);
        assert_eq!(runtime.0.load(Ordering::SeqCst), 2, "this thread polls another task");
        assert_eq!(polling.leave(), 0);
        assert_eq!(wake.take_parts(), DRIVER | HANDLER | OUTSIDE, "both in the shared word, the driver's from outside");
        assert_eq!(other_runtime.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_poll_mark_is_cleared_when_a_poll_unwinds() {
        let runtime = Arc::new(CountingWaker::default());
        let wake = task_wake(&runtime);
        let unwound = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _polling = PollingGuard::enter(&wake);
            panic!("a part panicked");
        }));
        assert!(unwound.is_err());
        wake.wake_part(HANDLER);
        assert_eq!(runtime.0.load(Ordering::SeqCst), 1, "not taken for a wake inside a poll");
    }

    #[test]
    fn a_room_notification_inside_the_poll_keeps_its_flag_in_the_shared_word() {
        let runtime = Arc::new(CountingWaker::default());
        let wake = task_wake(&runtime);
        let polling = PollingGuard::enter(&wake);
        wake.notify_room();
        assert!(wake.room_pending(), "the driver clears it under the queue's lock");
        assert_eq!(wake.take_parts(), DRIVER);
        assert!(wake.room_pending(), "taking the parts leaves it");
        drop(polling);
        assert_eq!(runtime.0.load(Ordering::SeqCst), 0);
    }
}
