//! The oracle: the scenario played against `nextrush_proto::Connection` in
//! memory, with the echo application's logic run on its events.
//!
//! Each write of the scenario is one `receive`; after it, every event is
//! handled as the application does (a message is echoed with `send`; a
//! failed send, on a closing connection, is ignored) and the output drained.
//! That is the contract the runtimes are held to: the bytes of one write are
//! all processed before the application reacts — true of a real connection
//! when a write reaches the reader whole, which the harness arranges (it
//! waits for each write's answer before the next write, and a loopback write
//! arrives at once).

use std::ops::Range;
use std::time::Instant;

use http::HeaderMap;
use nextrush_proto::handshake::{ClientConfig, ClientHandshake, HandshakeLimits, ServerHandshake, accept_response};
use nextrush_proto::{CloseReason, Config, Connection, Event, SeededEntropy, Side};

use crate::scenario::{Peer, Scenario};
use crate::transcript::{Ev, Outcome, Transcript, normalize_request};

/// The oracle's transcript, and how many bytes the endpoint must have written
/// (after its handshake) once each write of the scenario is processed: the
/// scripted peer waits for that much before its next write.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The expected transcript.
    pub transcript: Transcript,
    /// Cumulative reply bytes expected after each write.
    pub expected: Vec<usize>,
}

/// The URL the clients under test connect to (the port varies).
pub const PATH: &str = "/echo";

/// The oracle for a server under test (the scripted peer is a client).
///
/// # Panics
/// If the scenario's own upgrade request is not accepted: a bug in the suite.
#[must_use]
pub fn server(config: Config, scenario: &Scenario) -> Reference {
    assert_eq!(scenario.peer, Peer::Client);
    let now = Instant::now();
    let head = scenario.peer.head();
    let mut handshake = ServerHandshake::new(HandshakeLimits::default(), now);
    let incoming = handshake.receive(&head).ok().flatten().expect("the raw client's request is valid");
    let mut response = Vec::new();
    accept_response(&incoming.request, None, None, &HeaderMap::new(), &mut response).expect("accept");
    let conn = Connection::server(config, now).expect("valid server config");
    play(conn, response, scenario)
}

/// The oracle for a client under test (the scripted peer is a server).
///
/// # Panics
/// If the client configuration is invalid: a bug in the suite.
#[must_use]
pub fn client(config: Config, scenario: &Scenario) -> Reference {
    assert_eq!(scenario.peer, Peer::Server);
    let now = Instant::now();
    let url = format!("ws://127.0.0.1:1{PATH}");
    let handshake_config = ClientConfig::builder(&url).build().expect("valid url");
    let mut entropy = SeededEntropy::new(1);
    let request = ClientHandshake::new(handshake_config, &mut entropy, now).request_bytes().to_vec();
    let conn = Connection::client(config, now, Box::new(entropy)).expect("valid client config");
    play(conn, normalize_request(&request), scenario)
}

/// The frame bytes of each write (empty for writes inside the HTTP head).
#[must_use]
pub fn frame_parts(writes: &[Range<usize>], head_len: usize) -> Vec<Range<usize>> {
    writes.iter().map(|w| (w.start.max(head_len) - head_len)..(w.end.max(head_len) - head_len)).collect()
}

fn play(mut conn: Connection, handshake: Vec<u8>, scenario: &Scenario) -> Reference {
    let now = Instant::now();
    let frames = scenario.frames();
    let mut app = App::default();
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for part in frame_parts(&scenario.writes, scenario.peer.head().len()) {
        if !part.is_empty() {
            conn.receive(now, &frames[part]);
        }
        app.react(&mut conn, now);
        let _ = conn.poll_transmit(&mut out);
        expected.push(out.len());
    }
    // The scripted peer ends the stream after its last write.
    conn.receive_eof(now);
    app.react(&mut conn, now);
    let _ = conn.poll_transmit(&mut out);
    let mut transcript = Transcript::from_wire(handshake, &out, true);
    transcript.events = app.events;
    let reason = app.end.expect("the connection ends at EOF at the latest");
    transcript.code = Some(reason.code().0);
    transcript.outcome = match reason {
        CloseReason::Clean { .. } => Outcome::Clean,
        ref other => Outcome::Closed(other.clone()),
    };
    transcript.reason = Some(reason);
    Reference { transcript, expected }
}

/// The echo application, as the socket API presents events to it.
#[derive(Default)]
struct App {
    events: Vec<Ev>,
    end: Option<CloseReason>,
}

impl App {
    fn react(&mut self, conn: &mut Connection, now: Instant) {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => {
                    self.events.push(Ev::of_message(&message));
                    // Fails once the connection is closing: the application ignores that.
                    let _ = conn.send(now, message);
                }
                Event::Ping(payload) => self.events.push(Ev::Ping(payload.to_vec())),
                Event::Pong(payload) => self.events.push(Ev::Pong(payload.to_vec())),
                Event::Closed(reason) => {
                    // The socket reports the peer's Close as an event when the
                    // peer started the close handshake.
                    if let CloseReason::Clean { initiator: Side::Peer, frame } = &reason {
                        self.events.push(Ev::Close(frame.as_ref().map(|f| (f.code.0, f.reason.to_string()))));
                    }
                    self.end = Some(reason);
                }
                // Rate limiting is off in these scenarios; the socket drops these anyway.
                Event::RateLimited => {}
                other => self.events.push(Ev::Other(format!("{other:?}"))),
            }
        }
    }
}
