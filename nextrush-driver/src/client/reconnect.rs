//! A client that reconnects with exponential backoff.
//!
//! Policy, in one place:
//! * After a failed attempt or a lost connection, wait
//!   `min(initial * factor^(attempt-1), max)`; with jitter (the default) the
//!   wait is uniformly drawn from its upper half, so a fleet of clients that
//!   lost the same server does not come back in lockstep.
//! * A `503` with `Retry-After` waits what the server asked (capped at `max`).
//! * A close with a policy code (1008, or 4000–4999) or a handshake refused
//!   with 401/403/404 ends the client, unless `reconnect_on_policy_close`.
//! * After `max_attempts` failed attempts in a row, the client gives up.
//! * Messages sent while disconnected wait in a buffer of `buffer_capacity`
//!   messages, sent in order once connected; when it is full the oldest is
//!   dropped (and counted in `dropped`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::StatusCode;
use nextrush_proto::handshake::ClientHandshakeError;
use nextrush_proto::{CloseCode, CloseReason, Message, SeededEntropy};

use super::{Client, os_seed};
use crate::Error;
use crate::runtime::Runtime;
use crate::socket::{WsReader, WsWriter};
use crate::stats::Stats;

/// Exponential backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Wait before the first retry. Default 500 ms.
    pub initial: Duration,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// Longest wait. Default 30 s.
    pub max: Duration,
    /// Randomize each wait within its upper half. Default on.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), factor: 2.0, max: Duration::from_secs(30), jitter: true }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1-based), with `random` in [0, 1).
    #[must_use]
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let secs = if self.jitter { capped * (0.5 + 0.5 * random.clamp(0.0, 1.0)) } else { capped };
        Duration::from_secs_f64(secs)
    }
}

/// How the reconnecting client behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReconnectOptions {
    /// The backoff between attempts.
    pub backoff: Backoff,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
    /// Reconnect even after a policy close (1008, 4xxx) or a 401/403/404.
    pub reconnect_on_policy_close: bool,
    /// Messages kept while disconnected.
    pub buffer_capacity: usize,
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_attempts: Some(10),
            reconnect_on_policy_close: false,
            buffer_capacity: 256,
        }
    }
}

/// What the reconnecting client reports besides messages.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReconnectEvent {
    /// A message from the server.
    Message(Message),
    /// Connected (again); `attempt` is how many tries it took.
    Connected {
        /// Tries this connection took (1 = first try).
        attempt: u32,
    },
    /// The connection was lost or closed.
    Disconnected {
        /// The close code (1006 when the connection just dropped).
        code: CloseCode,
        /// The close reason, if any.
        reason: String,
    },
    /// Waiting `delay` before attempt `attempt`.
    Reconnecting {
        /// The attempt about to be made (1-based).
        attempt: u32,
        /// How long until then.
        delay: Duration,
    },
    /// No more attempts: the reason is the last error.
    GaveUp {
        /// Why.
        reason: String,
    },
}

#[derive(Default)]
struct State {
    reader: Option<WsReader>,
    writer: Option<Arc<WsWriter>>,
    events: VecDeque<ReconnectEvent>,
    pending: VecDeque<Message>,
    waker: Option<Waker>,
    dropped: u64,
    stopped: bool,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push_event(state: &Mutex<State>, event: ReconnectEvent) {
    let mut s = lock(state);
    s.events.push_back(event);
    let waker = s.waker.take();
    drop(s);
    if let Some(w) = waker {
        w.wake();
    }
}

/// A client connection that comes back by itself. Receive messages and
/// connection events with [`recv`](Self::recv); [`send`](Self::send) works
/// connected or not.
pub struct ReconnectingClient {
    state: Shared,
    buffer_capacity: usize,
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient").field("connected", &self.is_connected()).finish()
    }
}

impl ReconnectingClient {
    /// Starts connecting to `url` in the background.
    pub fn connect<R: Runtime>(client: Client<R>, url: &str, options: ReconnectOptions) -> Self {
        let state: Shared = Arc::default();
        let buffer_capacity = options.buffer_capacity;
        let supervisor = supervise(client.clone(), url.to_owned(), options, Arc::clone(&state));
        client.rt.spawn(supervisor);
        Self { state, buffer_capacity }
    }

    /// The next message or connection event; `None` once the client gave up
    /// or was closed and every event was read. Cancel-safe.
    pub async fn recv(&mut self) -> Option<ReconnectEvent> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ReconnectEvent>> {
        let mut s = lock(&self.state);
        if let Some(event) = s.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if let Some(reader) = s.reader.as_mut() {
            match reader.poll_recv(cx) {
                Poll::Ready(Ok(Some(message))) => {
                    return Poll::Ready(Some(ReconnectEvent::Message(message)));
                }
                // The supervisor reports the disconnection; stop reading this one.
                Poll::Ready(_) => s.reader = None,
                Poll::Pending => {}
            }
        }
        if s.stopped && s.events.is_empty() && s.reader.is_none() {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Sends `message` now if connected, else buffers it (see the module docs
    /// for the buffer's policy).
    ///
    /// # Errors
    /// The client gave up or was closed.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        let writer = {
            let s = lock(&self.state);
            if s.stopped {
                return Err(Error::Send(nextrush_proto::SendError::Closed));
            }
            s.writer.clone()
        };
        if let Some(writer) = writer
            && writer.send(message.clone()).await.is_ok()
        {
            return Ok(());
        }
        self.buffer(message);
        Ok(())
    }

    fn buffer(&self, message: Message) {
        let mut s = lock(&self.state);
        if s.pending.len() >= self.buffer_capacity.max(1) {
            s.pending.pop_front();
            s.dropped += 1;
        }
        s.pending.push_back(message);
    }

    /// Whether a connection is up now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        lock(&self.state).writer.is_some()
    }

    /// Messages dropped because the disconnected buffer was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Closes the current connection with 1000 and stops reconnecting.
    pub async fn close(&self) {
        let writer = {
            let mut s = lock(&self.state);
            s.stopped = true;
            s.writer.take()
        };
        if let Some(writer) = writer {
            let _ = writer.close(CloseCode::NORMAL, "").await;
        }
        let waker = lock(&self.state).waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// What ended a connection attempt or a connection.
enum Ending {
    /// Try again after the backoff (or the server's `Retry-After`).
    Retry { retry_after: Option<Duration>, reason: String },
    /// Stop for good.
    Stop(String),
}

async fn supervise<R: Runtime>(client: Client<R>, url: String, options: ReconnectOptions, state: Shared) {
    let mut rng = SeededEntropy::new(os_seed());
    let mut failures = 0u32;
    // Waits since the last connection was made: the backoff grows with these.
    let mut waits = 0u32;
    let mut connected_before = false;
    loop {
        if lock(&state).stopped {
            break;
        }
        let (ending, attempt_failed) = match client.connect(&url).await {
            Ok(ws) => {
                let attempt = failures + 1;
                failures = 0;
                waits = 0;
                if connected_before {
                    Stats::add(&client.stats.reconnections, 1);
                }
                connected_before = true;
                (run_connection(ws, &options, &state, attempt).await, false)
            }
            Err(error) => (classify_error(&error, &options), true),
        };
        let reason = match ending {
            Ending::Stop(reason) => {
                push_event(&state, ReconnectEvent::GaveUp { reason });
                break;
            }
            Ending::Retry { retry_after, reason } => {
                // A connection that was up and then lost is not a failed
                // attempt: the tries after it start from 1 again.
                failures += u32::from(attempt_failed);
                if attempt_failed && options.max_attempts.is_some_and(|max| failures >= max) {
                    push_event(&state, ReconnectEvent::GaveUp { reason });
                    break;
                }
                retry_after.map(|d| d.min(options.backoff.max))
            }
        };
        if lock(&state).stopped {
            break;
        }
        // Random in [0, 1) from 53 random bits.
        #[allow(clippy::cast_precision_loss)]
        let random = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        waits += 1;
        let delay = reason.unwrap_or_else(|| options.backoff.delay(waits, random));
        push_event(&state, ReconnectEvent::Reconnecting { attempt: failures + 1, delay });
        client.rt.sleep_until(client.rt.now() + delay).await;
    }
    let mut s = lock(&state);
    s.stopped = true;
    s.writer = None;
    let waker = s.waker.take();
    drop(s);
    if let Some(w) = waker {
        w.wake();
    }
}

/// Runs one connection: flush the buffer, hand the halves to the user, wait
/// for the end.
async fn run_connection(ws: crate::WebSocket, options: &ReconnectOptions, state: &Shared, attempt: u32) -> Ending {
    let (reader, writer) = ws.split();
    let writer = Arc::new(writer);
    {
        let mut s = lock(state);
        s.reader = Some(reader);
    }
    push_event(state, ReconnectEvent::Connected { attempt });
    // Send what waited, in order, before new sends go straight through.
    loop {
        let next = {
            let mut s = lock(state);
            match s.pending.pop_front() {
                Some(message) => Some(message),
                None => {
                    s.writer = Some(Arc::clone(&writer));
                    None
                }
            }
        };
        let Some(message) = next else { break };
        if writer.send(message).await.is_err() {
            break;
        }
    }
    writer.closed().await;
    let reason = writer.close_reason().unwrap_or(CloseReason::Eof);
    {
        let mut s = lock(state);
        s.writer = None;
    }
    let (code, text) = (reason.code(), reason.reason().to_owned());
    push_event(state, ReconnectEvent::Disconnected { code, reason: text.clone() });
    if lock(state).stopped {
        return Ending::Stop("closed by the application".into());
    }
    if code.is_policy() && !options.reconnect_on_policy_close {
        return Ending::Stop(format!("closed by policy: {code} {text}"));
    }
    Ending::Retry { retry_after: None, reason: format!("connection lost: {code}") }
}

fn classify_error(error: &Error, options: &ReconnectOptions) -> Ending {
    let reason = error.to_string();
    let Error::ClientHandshake(ClientHandshakeError::Rejected(rejected)) = error else {
        return Ending::Retry { retry_after: None, reason };
    };
    let status = rejected.status;
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
        && !options.reconnect_on_policy_close
    {
        return Ending::Stop(reason);
    }
    let retry_after = rejected
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Ending::Retry { retry_after, reason }
}
