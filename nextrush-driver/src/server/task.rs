//! A server connection's task: the driver and the user's handler, polled
//! side by side in one task so that a message received and the reply sent
//! need no hop between tasks.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use nextrush_proto::CloseReason;

use super::HandlerFuture;
use crate::driver::Driver;
use crate::runtime::{Runtime, Transport};

pub(super) struct ConnectionTask<R: Runtime, T: Transport> {
    driver: Option<Driver<R, T>>,
    handler: Option<HandlerFuture>,
    reason: Option<CloseReason>,
    handler_error: Option<String>,
    span: tracing::Span,
}

impl<R: Runtime, T: Transport> ConnectionTask<R, T> {
    pub(super) fn new(driver: Driver<R, T>, handler: HandlerFuture, span: tracing::Span) -> Self {
        Self { driver: Some(driver), handler: Some(handler), reason: None, handler_error: None, span }
    }

    fn poll_handler(&mut self, cx: &mut Context<'_>) {
        let Some(handler) = self.handler.as_mut() else {
            return;
        };
        // A panicking handler must not take the connection's driver down
        // with it: it becomes an error, and the socket closes normally.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)));
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
}

impl<R: Runtime, T: Transport> Future for ConnectionTask<R, T> {
    type Output = (CloseReason, Option<String>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.clone().entered();
        this.poll_handler(cx);
        if let Some(driver) = this.driver.as_mut()
            && Pin::new(&mut *driver).poll(cx).is_ready()
        {
            this.reason = driver.outcome().map(|o| o.reason.clone());
            this.driver = None;
            // The handler may be waiting on `recv`: it was woken; poll it now.
            this.poll_handler(cx);
        }
        if this.driver.is_none() && this.handler.is_none() {
            let reason = this.reason.take().unwrap_or(CloseReason::Eof);
            return Poll::Ready((reason, this.handler_error.take()));
        }
        Poll::Pending
    }
}
