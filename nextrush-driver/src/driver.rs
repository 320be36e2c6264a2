//! The one connection driver: moves bytes between a [`Transport`] and a
//! `nextrush_proto::Connection`, runs its timers, and hands events to the
//! socket handles. Written once, for every runtime.
//!
//! Each poll: take the protocol's output → write it → read → feed the
//! protocol → deliver events → arm the timer. Work per poll is bounded so one
//! busy connection cannot starve the others on its thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use nextrush_proto::{CloseReason, Event as ProtoEvent, Role, Timer as ProtoTimer, Transmit};

use crate::arena::{self, ReadArena};
use crate::rooms::MemberDrain;
use crate::runtime::{Runtime, Timer, Transport};
use crate::socket::{Event, Shared, lock, wake_all};
use crate::stats::Stats;

/// Loop iterations per poll before yielding to the scheduler.
const BUDGET: usize = 32;
/// Most pieces handed to one vectored write.
const MAX_WRITE_SLICES: usize = 32;
/// Stop reading while this many events wait for the application...
const MAX_PENDING_EVENTS: usize = 256;
/// ...or while their messages hold this many bytes, or `max_message_size`
/// if larger: a peer sending large messages to a busy handler is held back
/// by TCP after about one maximal message, not 256 of them.
const MIN_PENDING_BYTES: usize = 64 * 1024;

thread_local! {
    static READ_ARENA: RefCell<ReadArena> = RefCell::new(ReadArena::default());
}

/// How the driver ended, for the server's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) reason: CloseReason,
}

/// Drives one connection until it is closed and its transport shut down.
#[repr(C)] // As `Core`: what every round touches first.
pub(crate) struct Driver<R: Runtime, T: Transport> {
    shared: Arc<Mutex<Shared>>,
    /// With [`Self::poll_at`]: the waker given to the transport and the
    /// timer, which notes that they fired before waking the task (whose
    /// waker it holds, the one the handles wake too). Beside the core, so
    /// the rounds borrow it.
    io_wake: Option<(Arc<IoWake>, Waker)>,
    /// With [`Self::poll_woken`]: the caller's waker, given to the
    /// transport and the timer as it is.
    waker: Option<Waker>,
    core: Core<R, T>,
}

/// Everything but the shared state, which the rounds borrow beside it.
///
/// In this order: what every round touches first, what only the end of the
/// connection needs last (fewer cache lines per message).
#[repr(C)]
struct Core<R: Runtime, T: Transport> {
    io: T,
    /// Output the transport has not taken all of yet (empty when idle).
    write_buf: Transmit,
    timer: DeadlineTimer<R::Timer>,
    /// The socket's queue in the rooms hub, drained into the connection.
    room: Option<MemberDrain>,
    role: Role,
    /// Written bytes wait for a flush: the last one did not finish (TLS
    /// holding records the socket did not take), or the write ended with
    /// `Pending` and the flush waits for a round whose writes go through.
    flush_pending: bool,
    read_eof: bool,
    /// The last read ended with `Pending` and the transport has not woken
    /// us since: reading again now would only find nothing.
    read_parked: bool,
    /// The connection may hold events not handed out yet: it was fed bytes
    /// read with the handshake before the driver started.
    events_waiting: bool,
    /// `flush_until` passed with output still unwritten.
    flush_expired: bool,
    done: bool,
    /// For a client after a clean close: wait this long for the server's FIN.
    linger_until: Option<Instant>,
    /// Once the protocol has ended: give up on writing what is left after
    /// this (`close_timeout` later). A peer that stopped reading must not
    /// hold the connection, its slot and its queue forever.
    flush_until: Option<Instant>,
    outcome: Option<Outcome>,
    rt: R,
}

/// The transport's and the timer's waker: records that one of them fired,
/// then wakes the connection's task. Other wakes (a handle queueing a
/// message) reach the task without it, so the driver knows when a read
/// attempt can be skipped.
struct IoWake {
    fired: AtomicBool,
    task: Waker,
}

impl IoWake {
    /// Whether the transport or the timer fired since the last call. A plain
    /// load first: most rounds find nothing, and need no atomic write.
    fn take_fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed) && self.fired.swap(false, Ordering::Acquire)
    }
}

impl Wake for IoWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<R: Runtime, T: Transport> Driver<R, T> {
    pub(crate) fn new(rt: R, io: T, shared: Arc<Mutex<Shared>>, role: Role) -> Self {
        let timer = DeadlineTimer::new(rt.timer());
        let core = Core {
            rt,
            io,
            timer,
            role,
            write_buf: Transmit::default(),
            flush_pending: false,
            read_eof: false,
            linger_until: None,
            flush_until: None,
            flush_expired: false,
            outcome: None,
            done: false,
            room: None,
            read_parked: false,
            events_waiting: true,
        };
        Self { shared, io_wake: None, waker: None, core }
    }

    /// Drains this socket's rooms queue too.
    pub(crate) fn with_room(mut self, room: MemberDrain) -> Self {
        self.core.room = Some(room);
        self
    }

    /// How the connection ended (once the driver is done).
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.core.outcome.as_ref()
    }

    /// The runtime's clock.
    pub(crate) fn now(&self) -> Instant {
        self.core.rt.now()
    }

    /// Polls with the clock read by the caller at `now` (a task that polls
    /// the driver more than once reads it once).
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        if self.core.done {
            return Poll::Ready(());
        }
        let (io_wake, io_waker) = match &mut self.io_wake {
            Some(pair) if pair.0.task.will_wake(cx.waker()) => pair,
            slot => slot.insert(self.core.new_io_waker(&self.shared, cx)),
        };
        let ran = self.core.run_steps(&self.shared, Fired::Flag(io_wake), &mut Context::from_waker(io_waker), now);
        // `None`: the budget ran out with work left; come back after others.
        ran.unwrap_or_else(|| {
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    /// As [`Self::poll_at`], for a caller that tells wakes from outside its
    /// task (the transport, the timer, a handle elsewhere) apart from its
    /// own: `woken` says whether one came since the last poll. `cx`'s waker
    /// goes to the transport and the timer as it is, with no waker of the
    /// driver's own around it (one allocation and a hop less per wake).
    pub(crate) fn poll_woken(&mut self, cx: &mut Context<'_>, now: Instant, woken: bool) -> Poll<()> {
        if self.core.done {
            return Poll::Ready(());
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.core.waker_changed(&self.shared, cx.waker());
            self.waker = Some(cx.waker().clone());
        }
        let ran = self.core.run_steps(&self.shared, Fired::Told(woken), cx, now);
        ran.unwrap_or_else(|| {
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }
}

/// Whether the transport or the timer may have fired since the driver last
/// looked (so that a parked read is worth trying again).
enum Fired<'a> {
    /// The driver's own waker records it.
    Flag(&'a IoWake),
    /// The caller said so: true at most once.
    Told(bool),
}

impl Fired<'_> {
    fn take(&mut self) -> bool {
        match self {
            Self::Flag(io_wake) => io_wake.take_fired(),
            Self::Told(woken) => std::mem::take(woken),
        }
    }
}

impl<R: Runtime, T: Transport> Core<R, T> {
    /// Takes what the protocol queued (its own buffer, not a copy), if
    /// nothing is left from an earlier write; the written buffer goes back
    /// for the next frames.
    fn refill_write_buf(&mut self, s: &mut Shared) {
        if !self.write_buf.is_empty() || s.conn.buffered_amount() == 0 {
            return;
        }
        s.conn.take_transmit(&mut self.write_buf);
        s.unflushed = self.write_buf.len();
    }

    /// Writes as much as the transport takes: the number of bytes written.
    /// Large payloads, held by reference, go out with vectored writes.
    fn write_out(&mut self, cx: &mut Context<'_>) -> std::io::Result<usize> {
        let before = self.write_buf.len();
        let mut blocked = false;
        while !self.write_buf.is_empty() {
            let chunk = self.write_buf.chunk();
            let poll = if chunk.len() == self.write_buf.len() {
                self.io.poll_write(cx, chunk)
            } else {
                let mut slices = [std::io::IoSlice::new(&[]); MAX_WRITE_SLICES];
                let count = self.write_buf.chunks_vectored(&mut slices);
                self.io.poll_write_vectored(cx, &slices[..count])
            };
            match poll {
                Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.write_buf.advance(n),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    blocked = true;
                    break;
                }
            }
        }
        let written = before - self.write_buf.len();
        // A no-op for TCP; TLS transports buffer records and need it, until
        // it completes: the records it holds back are already counted as
        // written. Not after a write that returned `Pending`: that write's
        // waker is the one that must bring us back, and a flush that returns
        // `Ready` may cancel it (async-net's `TcpStream::poll_flush` drops
        // the writability wait `poll_write` registered: the smol client then
        // never heard that its socket drained). The flush waits for the
        // round whose writes all go through.
        self.flush_pending |= written > 0;
        if self.flush_pending && !blocked {
            match self.io.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_pending = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => self.flush_pending = true,
            }
        }
        Ok(written)
    }

    /// Reads into the thread's arena until the transport has nothing more
    /// (so that its waker is registered) or a chunk's worth was read.
    fn read_in(&mut self, cx: &mut Context<'_>) -> Read {
        READ_ARENA.with_borrow_mut(|read_arena| {
            let chunk = read_arena.ready();
            match self.fill(cx, chunk, arena::CHUNK) {
                Fill::Nothing => Read::Nothing,
                Fill::Eof => Read::Eof,
                Fill::Data { more, .. } => Read::data(chunk.split(), more),
            }
        })
    }

    /// Reads the rest of a frame the last read cut, which still misses
    /// `missing` bytes (0 if its head is incomplete), straight after its
    /// start: in a chunk of the arena, its start copied there, when it fits
    /// one; otherwise in its own buffer, grown as needed.
    fn read_after(&mut self, cx: &mut Context<'_>, mut buf: BytesMut, missing: usize) -> Read {
        // The rest, and a read's worth beyond it: while the frame is not
        // complete, the buffer keeps this much room.
        let room = missing + arena::MIN_SPARE;
        // A view of a read chunk has no room of its own. Growing it would
        // allocate for every frame cut at a chunk's end, and an allocator
        // freeing those hands memory back to the system and faults it in
        // again (glibc does, on any thread but the main one).
        if buf.capacity() - buf.len() < room && buf.len() + room <= arena::CHUNK {
            return self.read_in_after(cx, buf, missing, room);
        }
        match self.fill(cx, &mut buf, room) {
            Fill::Nothing => Read::Data { bytes: buf, read: 0, more: false },
            Fill::Eof => Read::Eof,
            Fill::Data { read, more } => Read::Data { bytes: buf, read, more },
        }
    }

    /// Copies `start` (a cut frame's bytes) to the thread's arena and reads
    /// after it there, in a chunk with at least `room` bytes of room after
    /// it. A read that completes the frame leaves the chunk as dense as any
    /// read (the usual case: the rest comes in the next read). A frame still
    /// incomplete after it gets that room as its own, so that a frame coming
    /// in many small reads is copied this once and then read in place.
    fn read_in_after(&mut self, cx: &mut Context<'_>, start: BytesMut, missing: usize, room: usize) -> Read {
        READ_ARENA.with_borrow_mut(|read_arena| {
            let chunk = read_arena.ready_with(start.len() + room);
            chunk.extend_from_slice(&start);
            let (read, more) = match self.fill(cx, chunk, arena::CHUNK) {
                Fill::Data { read, more } => (read, more),
                Fill::Nothing => (0, false),
                Fill::Eof => {
                    chunk.clear();
                    return Read::Eof;
                }
            };
            let bytes = if read >= missing && read > 0 {
                chunk.split()
            } else {
                // All read is within the room: the frame's own from here.
                let rest = chunk.split_off(start.len() + room);
                std::mem::replace(chunk, rest)
            };
            Read::Data { bytes, read, more }
        })
    }

    /// Appends to `buf` until the transport has nothing more, a chunk's
    /// worth was read, or `buf` runs low on room after some bytes (growing
    /// a buffer that holds data would copy it all; the next round reads on).
    /// A `buf` low on room before anything is read first gets `top_up` more.
    fn fill(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut, top_up: usize) -> Fill {
        let start = buf.len();
        loop {
            if buf.capacity() - buf.len() < arena::MIN_SPARE {
                if buf.len() > start {
                    return Fill::Data { read: buf.len() - start, more: true };
                }
                buf.reserve(top_up);
            }
            let polled = self.io.poll_read_buf(cx, buf);
            let read = buf.len() - start;
            match polled {
                Poll::Pending if read == 0 => return Fill::Nothing,
                Poll::Ready(Ok(0) | Err(_)) if read == 0 => return Fill::Eof,
                // The end (or an error) waits for the next round: it will
                // be read again there.
                Poll::Pending | Poll::Ready(Ok(0) | Err(_)) => {
                    return Fill::Data { read, more: !matches!(polled, Poll::Pending) };
                }
                Poll::Ready(Ok(_)) if read >= arena::CHUNK => return Fill::Data { read, more: true },
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    /// Moves protocol events to the socket's queue. Returns whether any
    /// arrived. When the connection ends, everyone waiting on it (a `send`
    /// waiting for queue space, a `flush`) joins `waiters`: the queue may
    /// never drain now, and they must hear that it closed.
    fn deliver_events(&mut self, s: &mut Shared, now: Instant, waiters: &mut Vec<Waker>) -> bool {
        let mut delivered = false;
        while let Some(mut event) = s.conn.poll_event() {
            delivered = true;
            arena::unpin(&mut event, s.incoming.len());
            let event = match event {
                ProtoEvent::Message(m) => {
                    s.counters.traffic.messages_in += 1;
                    s.counters.last_activity = now;
                    s.incoming_bytes += m.len();
                    Event::Message(m)
                }
                ProtoEvent::Ping(p) => Event::Ping(p),
                ProtoEvent::Pong(p) => Event::Pong(p),
                ProtoEvent::RateLimited => {
                    Stats::add(&s.stats.rate_limited, 1);
                    tracing::debug!("message over the rate limit dropped");
                    continue;
                }
                ProtoEvent::Closed(reason) => {
                    self.on_closed(s, &reason, now);
                    waiters.extend(s.take_waiters());
                    if let CloseReason::Clean { frame, initiator: nextrush_proto::Side::Peer } = &reason {
                        s.incoming.push_back(Event::Close(frame.clone()));
                    }
                    s.closed = Some(reason);
                    continue;
                }
                _ => continue,
            };
            s.incoming.push_back(event);
        }
        delivered
    }

    fn on_closed(&mut self, s: &Shared, reason: &CloseReason, now: Instant) {
        self.flush_until = Some(now + s.conn.config().close_timeout);
        match reason {
            CloseReason::Clean { .. } => {
                tracing::debug!(code = %reason.code(), reason = reason.reason(), "connection closed");
                if self.role == Role::Client {
                    // RFC 6455 §7.1.1: the server closes TCP first; wait for it a little.
                    self.linger_until = Some(now + s.conn.config().close_timeout);
                }
            }
            CloseReason::TimedOut(ProtoTimer::Pong) => {
                Stats::add(&s.stats.dead_peers, 1);
                tracing::info!("peer stopped answering pings; dropped");
            }
            other => {
                Stats::add(&s.stats.errors, 1);
                tracing::info!(error = %other, "connection failed");
            }
        }
        self.outcome = Some(Outcome { reason: reason.clone() });
    }

    /// When the timer should fire next: the protocol's deadline, or once it
    /// has closed, the end of the wait for the peer's FIN or for the flush.
    fn deadline(&self, s: &Shared) -> Option<Instant> {
        if !s.conn.is_closed() {
            return s.conn.poll_timeout();
        }
        match (self.linger_until, self.flush_until) {
            (Some(linger), Some(flush)) => Some(linger.min(flush)),
            (linger, flush) => linger.or(flush),
        }
    }

    /// A transport and timer waker over `cx`'s, which becomes the one the
    /// handles wake too (the task's waker changed, or this is the first poll).
    fn new_io_waker(&mut self, shared: &Mutex<Shared>, cx: &Context<'_>) -> (Arc<IoWake>, Waker) {
        self.waker_changed(shared, cx.waker());
        let io_wake = Arc::new(IoWake { fired: AtomicBool::new(false), task: cx.waker().clone() });
        let io_waker = Waker::from(Arc::clone(&io_wake));
        (io_wake, io_waker)
    }

    /// The task's waker is now `task`: the handles wake it from now on, and
    /// the transport and the timer, which hold the old one, get it at the
    /// next read and the next timer poll, which must not be skipped.
    fn waker_changed(&mut self, shared: &Mutex<Shared>, task: &Waker) {
        lock(shared).driver_waker = Some(task.clone());
        self.read_parked = false;
        self.timer.forget();
    }

    /// One round of work: the shared state is locked to take output and
    /// look at the state, the transport is touched without the lock, and the
    /// state is locked again only if the transport or the timer did
    /// something (bytes written or read, the end, an error, a deadline).
    ///
    /// The round asks for another only when one could do more without being
    /// woken: every source it leaves has its waker registered (a read or
    /// write that returned `Pending`, the timer at the current deadline).
    fn step(&mut self, shared: &Mutex<Shared>, fired: &mut Fired<'_>, cx: &mut Context<'_>, now: Instant) -> Step {
        let look = self.look(&mut lock(shared), fired, now);
        let write = self.write_out(cx);
        let read = match look.partial {
            Some((buf, missing)) => self.read_after(cx, buf, missing),
            None if look.try_read => self.read_in(cx),
            None => Read::Nothing,
        };
        if look.try_read {
            self.read_parked = matches!(read, Read::Nothing | Read::Data { more: false, .. });
        }
        let due = look.deadline.filter(|&d| self.timer.due(cx, now, d));
        if matches!(write, Ok(0)) && matches!(read, Read::Nothing) && due.is_none() && !self.events_waiting {
            // Nothing moved: the state is as the first look found it, and
            // everything this round left has its waker.
            return Step { again: false, finished: look.finished };
        }
        self.apply(shared, Moved { write, read, due }, look.deadline, cx, now)
    }

    /// The round's first look, under the lock: room traffic moved into the
    /// connection, its output taken, and whether to read.
    fn look(&mut self, s: &mut Shared, fired: &mut Fired<'_>, now: Instant) -> Look {
        if let Some(room) = &mut self.room {
            let moved = room.drain(&mut s.conn, now);
            s.counters.traffic.messages_out += moved;
        }
        self.refill_write_buf(s);
        let max_bytes = s.conn.config().max_message_size.max(MIN_PENDING_BYTES);
        let can_read = s.incoming.len() < MAX_PENDING_EVENTS && s.incoming_bytes < max_bytes;
        s.read_paused = !can_read;
        let try_read = can_read && !self.read_eof && (!self.read_parked || fired.take());
        // A frame cut by the last read: read the rest straight after it.
        let partial = if try_read {
            let missing = s.conn.missing_input();
            s.conn.take_partial_input().map(|buf| (buf, missing))
        } else {
            None
        };
        Look { try_read, partial, deadline: self.deadline(s), finished: self.finished(s) }
    }

    /// The round's second look, under the lock, once the transport or the
    /// timer did something: that goes to the protocol, and the protocol's
    /// events to the socket's queue. `deadline` is the one the first look
    /// saw.
    fn apply(
        &mut self,
        shared: &Mutex<Shared>,
        moved: Moved,
        deadline: Option<Instant>,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Step {
        let mut s = lock(shared);
        let mut progress = Progress { input: std::mem::take(&mut self.events_waiting), ..Progress::default() };
        let mut waiters = self.apply_write(&mut s, moved.write, now, &mut progress);
        self.apply_read(&mut s, moved.read, now, &mut progress);
        if let Some(due) = moved.due {
            self.apply_due(&mut s, due, now, &mut progress);
        }
        if progress.input {
            // Only input and timeouts make protocol events.
            if self.deliver_events(&mut s, now, &mut waiters) {
                s.wake_reader();
            }
            // The input may have moved the deadline (a close began, a ping
            // went out): the timer must know before this round ends.
            let moved = self.deadline(&s).filter(|&d| Some(d) != deadline);
            progress.again |= moved.is_some_and(|d| self.timer.due(cx, now, d));
        }
        // Output appeared (a pong, a close reply, room traffic left queued
        // while the connection was full) with the transport free to take it.
        let write_idle = self.write_buf.is_empty();
        let room_backlog = progress.wrote && self.room.as_ref().is_some_and(MemberDrain::has_work);
        progress.again |= write_idle && (s.conn.buffered_amount() > 0 || room_backlog);
        let finished = self.finished(&s);
        drop(s);
        wake_all(waiters);
        Step { again: progress.again, finished }
    }

    /// Counts what the transport took, or ends the connection if it failed.
    /// Returns the tasks that waited for the write, to wake once the lock is
    /// released.
    fn apply_write(
        &mut self,
        s: &mut Shared,
        write: std::io::Result<usize>,
        now: Instant,
        progress: &mut Progress,
    ) -> Vec<Waker> {
        match write {
            Ok(0) => {}
            Ok(n) => {
                progress.wrote = true;
                s.unflushed -= n;
                s.counters.traffic.bytes_out += n as u64;
                s.counters.last_activity = now;
                return s.take_waiters();
            }
            Err(error) => {
                tracing::debug!(%error, "write failed");
                progress.again = true;
                progress.input = true;
                self.read_eof = true;
                self.write_buf = Transmit::default();
                s.unflushed = 0;
                s.conn.receive_eof(now);
            }
        }
        Vec::new()
    }

    /// Feeds what was read to the protocol.
    fn apply_read(&mut self, s: &mut Shared, read: Read, now: Instant, progress: &mut Progress) {
        match read {
            Read::Nothing => {}
            Read::Eof => {
                // (A partial frame taken out is dropped: the end discards it.)
                progress.again = true;
                progress.input = true;
                self.read_eof = true;
                s.conn.receive_eof(now);
            }
            Read::Data { bytes, read: 0, .. } => s.conn.restore_partial_input(bytes),
            Read::Data { bytes, read, more } => {
                progress.again |= more;
                progress.input = true;
                s.counters.traffic.bytes_in += read as u64;
                s.conn.receive_owned(now, bytes);
            }
        }
    }

    /// Runs the timers due at `deadline` (the clock may read a little
    /// earlier when the runtime's timer fired).
    fn apply_due(&mut self, s: &mut Shared, deadline: Instant, now: Instant, progress: &mut Progress) {
        progress.again = true;
        progress.input = true;
        let now = now.max(deadline);
        if self.linger_until.is_some_and(|l| now >= l) {
            self.read_eof = true;
        }
        if self.flush_until.is_some_and(|f| now >= f) {
            tracing::debug!("peer stopped reading; unsent output dropped");
            self.flush_expired = true;
        }
        s.conn.handle_timeout(now);
    }

    /// Whether the driver is done: aborted, given up on flushing, or closed
    /// with everything written (and, for a client, the server's FIN seen or
    /// waited for).
    fn finished(&self, s: &Shared) -> bool {
        s.abort
            || self.flush_expired
            || (s.conn.is_closed()
                && s.conn.buffered_amount() == 0
                && self.write_buf.is_empty()
                && (self.linger_until.is_none() || self.read_eof))
    }

    fn finish(&mut self, shared: &Mutex<Shared>, cx: &mut Context<'_>) -> Poll<()> {
        // Best effort: the peer may be gone already.
        if self.io.poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        if self.outcome.is_none() {
            // Aborted (shutdown timeout) before the protocol finished.
            self.outcome = Some(Outcome { reason: CloseReason::Eof });
        }
        self.write_buf = Transmit::default();
        let mut s = lock(shared);
        s.finished = true;
        s.unflushed = 0;
        if s.closed.is_none() {
            s.closed = Some(CloseReason::Eof);
        }
        let waiters = s.take_waiters();
        s.wake_reader();
        let retirement = s.take_retirement();
        let stats = Arc::clone(&s.stats);
        drop(s);
        if let Some((id, traffic)) = retirement {
            stats.retire(id, traffic);
        }
        wake_all(waiters);
        Poll::Ready(())
    }
}

/// The runtime's timer, polled only when that can change something.
///
/// Once polled for a deadline it wakes the task then, and the driver looks
/// at the clock again. So a later deadline (the keep-alive one moves with
/// every message) needs no poll until the moment it is armed for has come:
/// it fires there, early, and is polled again for the deadline of the time.
/// A poll of the runtime's timer costs a trip through its waker
/// registration, which would otherwise be paid several times per message.
struct DeadlineTimer<Tm> {
    timer: Tm,
    /// The deadline the timer was last left pending for, with the waker it
    /// holds now.
    armed: Option<Instant>,
}

impl<Tm: Timer> DeadlineTimer<Tm> {
    fn new(timer: Tm) -> Self {
        Self { timer, armed: None }
    }

    /// Whether `deadline` has come: by the clock, or by the timer, which is
    /// polled for it unless it is armed for an earlier moment still to come
    /// (that wakes the task first).
    fn due(&mut self, cx: &mut Context<'_>, now: Instant, deadline: Instant) -> bool {
        if now >= deadline {
            return true;
        }
        // Armed for a moment that has not come and is not later: it wakes
        // the task first.
        if self.armed.is_some_and(|armed| now < armed && armed <= deadline) {
            return false;
        }
        let due = self.timer.poll_at(cx, deadline).is_ready();
        self.armed = (!due).then_some(deadline);
        due
    }

    /// The task's waker changed: the timer must be polled again to get it.
    fn forget(&mut self) {
        self.armed = None;
    }
}

/// What one read gave.
enum Read {
    Nothing,
    Eof,
    /// `bytes` ends with `read` new bytes (after a partial frame's, when
    /// read into its buffer; `read` is 0 if none came). `more`: stopped
    /// before the transport had nothing left.
    Data {
        bytes: BytesMut,
        read: usize,
        more: bool,
    },
}

/// What one `fill` appended.
enum Fill {
    Nothing,
    Eof,
    /// `read` bytes; `more`: stopped before the transport had nothing left.
    Data {
        read: usize,
        more: bool,
    },
}

impl Read {
    /// Bytes read into a buffer of their own.
    fn data(bytes: BytesMut, more: bool) -> Self {
        Self::Data { read: bytes.len(), bytes, more }
    }
}

/// What one round of work did.
struct Step {
    /// Another round could do more right away.
    again: bool,
    finished: bool,
}

/// What a round's first look at the shared state found.
struct Look {
    try_read: bool,
    /// A frame the last read cut, to read the rest after, and how many
    /// bytes it misses.
    partial: Option<(BytesMut, usize)>,
    deadline: Option<Instant>,
    finished: bool,
}

/// What the transport and the timer did in a round, outside the lock.
struct Moved {
    write: std::io::Result<usize>,
    read: Read,
    /// The deadline that came.
    due: Option<Instant>,
}

/// What a round's second look has done so far.
#[derive(Default)]
struct Progress {
    /// Another round could do more right away.
    again: bool,
    /// The protocol got input or ran its timers: it may have events.
    input: bool,
    /// Bytes went out.
    wrote: bool,
}

impl<R: Runtime, T: Transport> Future for Driver<R, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // One clock reading per poll: a poll takes microseconds.
        let now = this.now();
        this.poll_at(cx, now)
    }
}

impl<R: Runtime, T: Transport> Core<R, T> {
    /// Runs rounds until one asks for no other (`None` if the budget ran out
    /// first).
    fn run_steps(
        &mut self,
        shared: &Mutex<Shared>,
        mut fired: Fired<'_>,
        io_cx: &mut Context<'_>,
        now: Instant,
    ) -> Option<Poll<()>> {
        for _ in 0..BUDGET {
            let step = self.step(shared, &mut fired, io_cx, now);
            if step.finished {
                return Some(self.finish(shared, io_cx));
            }
            if !step.again {
                return Some(Poll::Pending);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A timer that records the deadlines it is polled for and is ready
    /// once `now` (the time the test says it is) has reached the deadline.
    #[derive(Default)]
    struct RecordingTimer {
        polled_for: Vec<Instant>,
        now: Option<Instant>,
    }

    impl Timer for RecordingTimer {
        fn poll_at(&mut self, _cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
            self.polled_for.push(deadline);
            if self.now.is_some_and(|now| now >= deadline) { Poll::Ready(()) } else { Poll::Pending }
        }
    }

    /// A fresh timer, and `at(ms)`: `ms` after the test's start.
    fn fresh() -> (DeadlineTimer<RecordingTimer>, impl Fn(u64) -> Instant) {
        let start = Instant::now();
        (DeadlineTimer::new(RecordingTimer::default()), move |ms| start + Duration::from_millis(ms))
    }

    fn check(timer: &mut DeadlineTimer<RecordingTimer>, now: Instant, deadline: Instant) -> bool {
        timer.timer.now = Some(now);
        timer.due(&mut Context::from_waker(Waker::noop()), now, deadline)
    }

    #[test]
    fn a_deadline_that_moves_later_is_not_polled_for_until_the_armed_one_comes() {
        let (mut timer, at) = fresh();
        assert!(!check(&mut timer, at(0), at(1000)));
        // Keep-alive: every message moves the deadline later.
        assert!(!check(&mut timer, at(10), at(1010)));
        assert!(!check(&mut timer, at(20), at(1020)));
        assert!(!check(&mut timer, at(20), at(1020)), "the same deadline again");
        assert_eq!(timer.timer.polled_for, [at(1000)], "armed once, for the first");
        // The armed moment comes (the timer fired, early for the deadline
        // of the time): polled again, for that one.
        assert!(!check(&mut timer, at(1000), at(1020)));
        assert_eq!(timer.timer.polled_for, [at(1000), at(1020)]);
        assert!(check(&mut timer, at(1020), at(1020)), "due by the clock");
        assert_eq!(timer.timer.polled_for.len(), 2, "without a poll");
    }

    #[test]
    fn an_earlier_deadline_is_polled_for_at_once() {
        let (mut timer, at) = fresh();
        assert!(!check(&mut timer, at(0), at(30_000)));
        // A close began: its deadline is earlier than the keep-alive one.
        assert!(!check(&mut timer, at(5), at(1005)));
        assert_eq!(timer.timer.polled_for, [at(30_000), at(1005)]);
        // Later again (the close deadline gone): armed at 1005, no poll.
        assert!(!check(&mut timer, at(6), at(30_006)));
        assert_eq!(timer.timer.polled_for.len(), 2);
    }

    #[test]
    fn a_new_waker_makes_the_next_check_poll() {
        let (mut timer, at) = fresh();
        assert!(!check(&mut timer, at(0), at(1000)));
        timer.forget();
        assert!(!check(&mut timer, at(1), at(1000)));
        assert_eq!(timer.timer.polled_for, [at(1000), at(1000)], "the timer must hold the new waker");
    }

    #[test]
    fn a_timer_that_fires_is_not_taken_as_still_armed() {
        let (mut timer, at) = fresh();
        // The runtime's timer says due (its clock is a little ahead).
        timer.timer.now = Some(at(1000));
        assert!(timer.due(&mut Context::from_waker(Waker::noop()), at(999), at(1000)));
        assert!(!check(&mut timer, at(999), at(2000)), "polled for the next deadline");
        assert_eq!(timer.timer.polled_for, [at(1000), at(2000)]);
    }
}
