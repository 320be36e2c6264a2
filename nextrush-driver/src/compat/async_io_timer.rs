//! The `async-io` timer (used by smol and async-std) as a driver [`Timer`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Timer;

/// An `async_io::Timer`, re-armed when the deadline moves earlier, or when
/// it fires before a deadline that moved later.
#[derive(Debug)]
pub struct AsyncIoTimer {
    timer: async_io::Timer,
    /// Where the timer is armed; `None` once it fired.
    armed: Option<Instant>,
}

impl Default for AsyncIoTimer {
    fn default() -> Self {
        Self { timer: async_io::Timer::never(), armed: None }
    }
}

impl AsyncIoTimer {
    fn arm(&mut self, deadline: Instant) {
        self.timer.set_at(deadline);
        self.armed = Some(deadline);
    }
}

impl Timer for AsyncIoTimer {
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            // The keep-alive deadline moves later with every message: leave
            // the timer armed where it is and move it only once it fires
            // early.
            if self.armed.is_none_or(|armed| deadline < armed) {
                self.arm(deadline);
            }
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Fired: it is disarmed now.
            if self.armed.take().is_some_and(|armed| armed >= deadline) {
                return Poll::Ready(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    #[test]
    fn moved_deadlines_are_honoured_both_ways() {
        async_io::block_on(async {
            let mut timer = AsyncIoTimer::default();
            let start = Instant::now();
            let first = start + Duration::from_millis(40);
            assert!(poll_fn(|cx| Poll::Ready(timer.poll_at(cx, first))).await.is_pending());
            // Moved later: waits past the first deadline.
            let later = start + Duration::from_millis(120);
            poll_fn(|cx| timer.poll_at(cx, later)).await;
            assert!(Instant::now() >= later);
            // After firing, a new deadline arms it again.
            let next = Instant::now() + Duration::from_millis(30);
            poll_fn(|cx| timer.poll_at(cx, next)).await;
            assert!(Instant::now() >= next);
            // Moved earlier: fires at the earlier one.
            let far = Instant::now() + Duration::from_secs(30);
            assert!(poll_fn(|cx| Poll::Ready(timer.poll_at(cx, far))).await.is_pending());
            let soon = Instant::now() + Duration::from_millis(20);
            poll_fn(|cx| timer.poll_at(cx, soon)).await;
            assert!(Instant::now() >= soon && Instant::now() < far);
        });
    }
}
