//! A server connection's task: the driver and the user's handler, polled
//! side by side in one task so that a message received and the reply sent
//! need no hop between tasks.
//!
//! Each part gets its own waker. When one part wakes the other while the
//! task is running (the driver handing a message to `recv`, the handler
//! queueing a reply), the wake only sets a flag and the task polls that part
//! again before returning, instead of asking the runtime to schedule the
//! whole task once more.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use nextrush_proto::CloseReason;

use super::HandlerFuture;
use crate::driver::Driver;
use crate::runtime::{Runtime, Transport};

/// Rounds of handler/driver polls per task poll before yielding.
const MAX_ROUNDS: usize = 16;

/// What the two wakers share with the task.
#[derive(Default)]
struct Flags {
    handler: AtomicBool,
    driver: AtomicBool,
    /// The task is inside `poll`: wakes need not reach the runtime.
    polling: AtomicBool,
    /// The runtime's waker for the whole task.
    outer: Mutex<Option<Waker>>,
}

/// The waker of one part.
struct PartWaker {
    flags: Arc<Flags>,
    driver: bool,
}

impl Wake for PartWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let flag = if self.driver { &self.flags.driver } else { &self.flags.handler };
        flag.store(true, Ordering::SeqCst);
        if !self.flags.polling.load(Ordering::SeqCst) {
            // Runtime wakers only schedule the task: waking under this lock
            // cannot call back into it.
            let outer = self.flags.outer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(w) = outer.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

pub(super) struct ConnectionTask<R: Runtime, T: Transport> {
    driver: Option<Driver<R, T>>,
    handler: Option<HandlerFuture>,
    reason: Option<CloseReason>,
    handler_error: Option<String>,
    span: tracing::Span,
    flags: Arc<Flags>,
    handler_waker: Waker,
    driver_waker: Waker,
    /// The runtime waker last stored in `flags.outer`, to compare against
    /// without the lock.
    outer: Option<Waker>,
}

impl<R: Runtime, T: Transport> ConnectionTask<R, T> {
    pub(super) fn new(driver: Driver<R, T>, handler: HandlerFuture, span: tracing::Span) -> Self {
        let flags = Arc::new(Flags::default());
        flags.handler.store(true, Ordering::SeqCst);
        flags.driver.store(true, Ordering::SeqCst);
        let handler_waker = Waker::from(Arc::new(PartWaker { flags: Arc::clone(&flags), driver: false }));
        let driver_waker = Waker::from(Arc::new(PartWaker { flags: Arc::clone(&flags), driver: true }));
        Self {
            driver: Some(driver),
            handler: Some(handler),
            reason: None,
            handler_error: None,
            span,
            flags,
            handler_waker,
            driver_waker,
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

    fn poll_driver(&mut self) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&self.driver_waker);
        if Pin::new(&mut *driver).poll(&mut cx).is_ready() {
            self.reason = driver.outcome().map(|o| o.reason.clone());
            self.driver = None;
            // The handler may be waiting on `recv`: it was woken; poll it.
            self.flags.handler.store(true, Ordering::SeqCst);
        }
    }

    /// Polls whichever part was woken until neither was; returns whether
    /// work remains (the round limit was hit).
    fn run_rounds(&mut self) -> bool {
        for _ in 0..MAX_ROUNDS {
            let handler = self.flags.handler.swap(false, Ordering::SeqCst);
            let driver = self.flags.driver.swap(false, Ordering::SeqCst);
            if !handler && !driver {
                return false;
            }
            if handler {
                self.poll_handler();
            }
            if driver {
                self.poll_driver();
            }
        }
        true
    }
}

impl<R: Runtime, T: Transport> Future for ConnectionTask<R, T> {
    type Output = (CloseReason, Option<String>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.clone().entered();
        if !this.outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *this.flags.outer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cx.waker().clone());
            this.outer = Some(cx.waker().clone());
        }
        this.flags.polling.store(true, Ordering::SeqCst);
        let busy = this.run_rounds();
        this.flags.polling.store(false, Ordering::SeqCst);
        if this.driver.is_none() && this.handler.is_none() {
            let reason = this.reason.take().unwrap_or(CloseReason::Eof);
            return Poll::Ready((reason, this.handler_error.take()));
        }
        // Work left over, or a wake that came in after the last round looked.
        if busy || this.flags.handler.load(Ordering::SeqCst) || this.flags.driver.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
