//! The scripted peers, on blocking std sockets (runtime-neutral): a raw
//! client for the servers under test, a raw server for the clients.
//!
//! Both play a [`Plan`] the same way: write each write of the scenario,
//! then wait until the endpoint has answered as much as the oracle says it
//! must by then, before the next write. That wait is what makes a run
//! deterministic — the application's echo of a message is on the wire before
//! anything that could close the connection arrives — and it is bounded: if
//! the answer does not come (the endpoint diverged), the peer notes it,
//! stops waiting, and the transcripts show the difference. No assertion
//! depends on timing.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::time::{Duration, Instant};

use nextrush_proto::handshake::{HandshakeLimits, ServerHandshake, accept_key};

use crate::scenario::{Scenario, switching_protocols};
use crate::wire::head_end;

/// How long a peer waits for the answer to one write.
const SYNC: Duration = Duration::from_secs(3);
/// How long a peer waits for the endpoint to close after the last write.
const FINISH: Duration = Duration::from_secs(5);
/// How long a peer waits for the connection and the endpoint's HTTP head.
const CONNECT: Duration = Duration::from_secs(5);
/// Read timeout of one blocking read: the granularity of the waits above.
const POLL: Duration = Duration::from_millis(20);

/// A scenario ready to play: the bytes, the writes, and the oracle's
/// expected answer after each write.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The HTTP head followed by the frames. A scripted server's 101 holds a
    /// placeholder accept key, replaced once the request is read.
    pub stream: Vec<u8>,
    /// Length of the HTTP head.
    pub head_len: usize,
    /// Consecutive ranges of `stream`, one per write.
    pub writes: Vec<Range<usize>>,
    /// Bytes the endpoint must have written after its own head, once each
    /// write is processed.
    pub expected: Vec<usize>,
}

impl Plan {
    /// The plan for `scenario`, with the oracle's expectations.
    #[must_use]
    pub fn new(scenario: &Scenario, expected: Vec<usize>) -> Self {
        let head = scenario.peer.head();
        let head_len = head.len();
        let stream = [head, scenario.frames()].concat();
        assert_eq!(scenario.writes.len(), expected.len());
        Self { stream, head_len, writes: scenario.writes.clone(), expected }
    }
}

/// What a peer observed.
#[derive(Clone, Debug, Default)]
pub struct PeerRun {
    /// The endpoint's HTTP head (the server's response, the client's request).
    pub head: Vec<u8>,
    /// Everything the endpoint wrote after its head.
    pub reply: Vec<u8>,
    /// Whether the endpoint closed the connection (read EOF).
    pub eof: bool,
    /// Diagnostics: failed writes, answers that did not come.
    pub notes: Vec<String>,
}

/// Reads what the endpoint writes, splitting off its HTTP head.
struct Inbox {
    stream: TcpStream,
    buf: Vec<u8>,
    head_end: Option<usize>,
    eof: bool,
    notes: Vec<String>,
}

impl Inbox {
    fn new(stream: TcpStream) -> Self {
        let mut notes = Vec::new();
        if let Err(e) = stream.set_nodelay(true).and_then(|()| stream.set_read_timeout(Some(POLL))) {
            notes.push(format!("socket options: {e}"));
        }
        Self { stream, buf: Vec::new(), head_end: None, eof: false, notes }
    }

    fn reply_len(&self) -> usize {
        self.head_end.map_or(0, |end| self.buf.len() - end)
    }

    /// One read, of at most `POLL`.
    fn read_some(&mut self) {
        let mut chunk = [0; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                if self.head_end.is_none() {
                    self.head_end = head_end(&self.buf);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            // A reset after the endpoint closed with our bytes unread: its
            // output was read before (we wait for it write by write).
            Err(e) => {
                self.notes.push(format!("read failed: {e}"));
                self.eof = true;
            }
        }
    }

    /// Reads until `done` holds (true), or EOF or `limit` (false).
    fn wait(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.eof || Instant::now() >= deadline {
                return false;
            }
            self.read_some();
        }
    }

    /// Writes the plan, waiting for each write's answer; then ends the
    /// stream and reads until the endpoint closes.
    fn play(&mut self, plan: &Plan, stream: &[u8]) {
        let mut waiting = true;
        for (i, (write, &want)) in plan.writes.iter().zip(&plan.expected).enumerate() {
            if let Err(e) = self.stream.write_all(&stream[write.clone()]).and_then(|()| self.stream.flush()) {
                self.notes.push(format!("write {i} ({write:?}) failed: {e}"));
                break;
            }
            if waiting && !self.wait(SYNC, |inbox| inbox.reply_len() >= want) {
                self.notes.push(format!(
                    "after write {i} ({write:?}) the endpoint had answered {} of the {want} bytes expected{}",
                    self.reply_len(),
                    if self.eof { " and closed" } else { "; no longer waiting" }
                ));
                waiting = false;
            }
        }
        // Ignored: fails when the endpoint is already gone.
        let _ = self.stream.shutdown(Shutdown::Write);
        if !self.wait(FINISH, |inbox| inbox.eof) {
            self.notes.push("the endpoint did not close the connection".to_owned());
        }
    }

    fn into_run(self) -> PeerRun {
        let end = self.head_end.unwrap_or(self.buf.len());
        PeerRun { head: self.buf[..end].to_vec(), reply: self.buf[end..].to_vec(), eof: self.eof, notes: self.notes }
    }
}

/// The raw client: connects to a server under test and plays `plan` (its
/// upgrade request, then frames).
#[must_use]
pub fn raw_client(addr: SocketAddr, plan: &Plan) -> PeerRun {
    let stream = match TcpStream::connect_timeout(&addr, CONNECT) {
        Ok(stream) => stream,
        Err(e) => return PeerRun { notes: vec![format!("connect failed: {e}")], ..PeerRun::default() },
    };
    let mut inbox = Inbox::new(stream);
    inbox.play(plan, &plan.stream);
    inbox.into_run()
}

/// The raw server: accepts one client under test on `listener`, reads its
/// upgrade request, answers 101 with the right accept key, and plays `plan`.
#[must_use]
pub fn scripted_server(listener: &TcpListener, plan: &Plan) -> PeerRun {
    let stream = match accept(listener) {
        Ok(stream) => stream,
        Err(e) => return PeerRun { notes: vec![format!("accept failed: {e}")], ..PeerRun::default() },
    };
    let mut inbox = Inbox::new(stream);
    if !inbox.wait(CONNECT, |inbox| inbox.head_end.is_some()) {
        inbox.notes.push("no complete upgrade request".to_owned());
        return inbox.into_run();
    }
    let request = &inbox.buf[..inbox.head_end.unwrap_or_default()];
    let mut handshake = ServerHandshake::new(HandshakeLimits::default(), Instant::now());
    let key = match handshake.receive(request) {
        Ok(Some(incoming)) => incoming.request.key().to_owned(),
        other => {
            inbox.notes.push(format!("invalid upgrade request: {other:?}"));
            return inbox.into_run();
        }
    };
    let mut stream = plan.stream.clone();
    let response = switching_protocols(&accept_key(&key));
    stream[..plan.head_len].copy_from_slice(&response);
    inbox.play(plan, &stream);
    inbox.into_run()
}

fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + CONNECT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}
