//! The `async-io` timer (used by smol and async-std) as a driver [`Timer`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Timer;

/// An `async_io::Timer`, re-armed when the deadline changes.
#[derive(Debug)]
pub struct AsyncIoTimer {
    timer: async_io::Timer,
    deadline: Option<Instant>,
}

impl Default for AsyncIoTimer {
    fn default() -> Self {
        Self { timer: async_io::Timer::never(), deadline: None }
    }
}

impl Timer for AsyncIoTimer {
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.deadline != Some(deadline) {
            self.timer.set_at(deadline);
            self.deadline = Some(deadline);
        }
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}
