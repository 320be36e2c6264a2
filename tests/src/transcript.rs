//! What one run of a scenario produced, and how two runs are compared.
//!
//! # What is compared, and why the normalizations are legitimate
//!
//! * **Frames, not writes.** The bytes the endpoint wrote are decoded into
//!   frames: how a runtime cuts them into TCP writes is not behaviour.
//! * **Two lanes.** Data and Close frames form one sequence, pings and pongs
//!   another; each is compared byte for byte, but not their interleaving. The
//!   protocol queues a pong the moment it reads the ping, ahead of queued
//!   data (RFC 6455 §5.4 lets control frames go between fragments), while an
//!   echo is queued by the application task whenever it runs: where a pong
//!   lands relative to an echo depends on scheduling, on any runtime.
//! * **Mask keys.** Client frames are compared without their masking key and
//!   with the payload unmasked ([`Frame`]): keys are random by design.
//! * **The client's request** is compared with its nonce and port replaced
//!   by placeholders (random by design; chosen by the operating system).
//!
//! Events, the application's final result, the close reason and code, and
//! whether the transport was closed are compared exactly.

use std::fmt;

use nextrush_proto::{CloseReason, Message};

use crate::wire::{Frame, Preview, decode_frames};

/// An event the application saw.
#[derive(Clone, PartialEq, Eq)]
pub enum Ev {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (already answered).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's Close: its code and reason, if it had a body.
    Close(Option<(u16, String)>),
    /// An event this suite does not know (the enum is non-exhaustive).
    Other(String),
}

impl fmt::Debug for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => write!(f, "Text {:?}", Preview(t.as_bytes())),
            Self::Binary(b) => write!(f, "Binary {:?}", Preview(b)),
            Self::Ping(p) => write!(f, "Ping {:?}", Preview(p)),
            Self::Pong(p) => write!(f, "Pong {:?}", Preview(p)),
            Self::Close(c) => write!(f, "Close {c:?}"),
            Self::Other(o) => write!(f, "Other {o}"),
        }
    }
}

impl Ev {
    /// The event for a received message.
    #[must_use]
    pub fn of_message(message: &Message) -> Self {
        match message {
            Message::Text(text) => Self::Text(text.to_string()),
            Message::Binary(data) => Self::Binary(data.to_vec()),
        }
    }
}

/// How the application's receive loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `recv` returned `Ok(None)`: the close handshake completed.
    Clean,
    /// `recv` failed with `Error::Closed(reason)`.
    Closed(CloseReason),
    /// Another error (or a failed connect), as text.
    Other(String),
    /// The application did not finish in time.
    Unfinished,
}

/// Everything a run produced.
#[derive(Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The opening handshake: the server's 101 head, or the client's request
    /// with nonce and port normalized.
    pub handshake: Vec<u8>,
    /// Data and Close frames the endpoint wrote, in order.
    pub data: Vec<Frame>,
    /// Pings and pongs the endpoint wrote, in order.
    pub control: Vec<Frame>,
    /// Bytes after the last complete frame (should be none).
    pub tail: Vec<u8>,
    /// Whether the endpoint closed the transport (the peer read EOF).
    pub eof: bool,
    /// Events the application saw.
    pub events: Vec<Ev>,
    /// How its receive loop ended.
    pub outcome: Outcome,
    /// The socket's close reason at the end.
    pub reason: Option<CloseReason>,
    /// The final close code (the server's disconnect event; the client's
    /// close reason).
    pub code: Option<u16>,
    /// Diagnostics from the harness (not compared): sync waits that timed
    /// out, failed writes.
    pub notes: Vec<String>,
}

impl Transcript {
    /// A transcript of the bytes an endpoint wrote after its handshake.
    #[must_use]
    pub fn from_wire(handshake: Vec<u8>, written: &[u8], eof: bool) -> Self {
        let (frames, tail) = decode_frames(written);
        let (control, data) = frames.into_iter().partition(Frame::is_ping_or_pong);
        Self {
            handshake,
            data,
            control,
            tail,
            eof,
            events: Vec::new(),
            outcome: Outcome::Unfinished,
            reason: None,
            code: None,
            notes: Vec::new(),
        }
    }
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("handshake", &String::from_utf8_lossy(&self.handshake))
            .field("data", &self.data)
            .field("control", &self.control)
            .field("tail", &Preview(&self.tail))
            .field("eof", &self.eof)
            .field("events", &self.events)
            .field("outcome", &self.outcome)
            .field("reason", &self.reason)
            .field("code", &self.code)
            .field("notes", &self.notes)
            .finish()
    }
}

/// Where two transcripts first differ, in words.
#[must_use]
pub fn difference(a_name: &str, a: &Transcript, b_name: &str, b: &Transcript) -> Option<String> {
    let lanes = [("handshake", a.handshake.clone(), b.handshake.clone())]
        .into_iter()
        .chain(
            [("data/close frames", &a.data, &b.data), ("ping/pong frames", &a.control, &b.control)]
                .map(|(lane, x, y)| (lane, concat(x), concat(y))),
        )
        .chain([("bytes after the last frame", a.tail.clone(), b.tail.clone())]);
    for (lane, x, y) in lanes {
        if let Some(at) = first_difference(&x, &y) {
            let show = |v: &[u8]| v.get(at).map_or("end".to_owned(), |byte| format!("{byte:#04x}"));
            return Some(format!(
                "{lane} differ first at byte {at}: {a_name}={} {b_name}={} ({a_name} wrote {} bytes, {b_name} {})",
                show(&x),
                show(&y),
                x.len(),
                y.len()
            ));
        }
    }
    if let Some(i) = (0..a.events.len().max(b.events.len())).find(|&i| a.events.get(i) != b.events.get(i)) {
        return Some(format!(
            "events differ first at #{i}: {a_name}={:?} {b_name}={:?}",
            a.events.get(i),
            b.events.get(i)
        ));
    }
    let fields = [
        ("outcome", format!("{:?}", a.outcome), format!("{:?}", b.outcome)),
        ("close reason", format!("{:?}", a.reason), format!("{:?}", b.reason)),
        ("close code", format!("{:?}", a.code), format!("{:?}", b.code)),
        ("transport closed", format!("{:?}", a.eof), format!("{:?}", b.eof)),
    ];
    fields.into_iter().find(|(_, x, y)| x != y).map(|(what, x, y)| format!("{what} differs: {a_name}={x} {b_name}={y}"))
}

/// A client's upgrade request with the `Sec-WebSocket-Key` value and the
/// port in `Host` replaced by placeholders.
#[must_use]
pub fn normalize_request(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.eq_ignore_ascii_case("sec-websocket-key") => format!("{name}: <key>"),
            Some((name, value)) if name.eq_ignore_ascii_case("host") => match value.rsplit_once(':') {
                Some((host, _port)) => format!("{name}:{host}:<port>"),
                None => line.to_owned(),
            },
            _ => line.to_owned(),
        })
        .collect();
    lines.join("\r\n").into_bytes()
}

fn concat(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(Frame::canonical_bytes).collect()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Compares every run with the oracle; `None` when all agree, otherwise a
/// report with the first difference of each disagreeing runtime and the
/// transcripts involved.
#[must_use]
pub fn report(oracle: &Transcript, runs: &[(&str, Transcript)]) -> Option<String> {
    let diffs: Vec<String> = runs
        .iter()
        .filter_map(|(name, run)| difference(name, run, "oracle", oracle).map(|d| format!("  {name} vs oracle: {d}")))
        .collect();
    if diffs.is_empty() {
        return None;
    }
    let mut out = String::from("transcripts differ\n");
    out.push_str(&diffs.join("\n"));
    for (i, (a_name, a)) in runs.iter().enumerate() {
        for (b_name, b) in &runs[i + 1..] {
            if let Some(d) = difference(a_name, a, b_name, b) {
                out.push_str(&format!("\n  {a_name} vs {b_name}: {d}"));
            }
        }
    }
    out.push_str(&format!("\noracle: {oracle:#?}"));
    for (name, run) in runs {
        if difference(name, run, "oracle", oracle).is_some() {
            out.push_str(&format!("\n{name}: {run:#?}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_normalization() {
        let head = b"GET /echo HTTP/1.1\r\nhost: 127.0.0.1:4242\r\nSec-WebSocket-Key: abc==\r\n\r\n";
        assert_eq!(
            normalize_request(head),
            b"GET /echo HTTP/1.1\r\nhost: 127.0.0.1:<port>\r\nSec-WebSocket-Key: <key>\r\n\r\n"
        );
    }

    #[test]
    fn reports_the_first_differing_byte() {
        let a = Transcript::from_wire(Vec::new(), &[0x81, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xe8], true);
        let mut b = a.clone();
        b.data[1].payload[1] = 0xe9;
        let d = difference("x", &a, "y", &b).unwrap();
        assert!(d.contains("data/close frames differ first at byte 7: x=0xe8 y=0xe9"), "{d}");
        assert_eq!(difference("x", &a, "y", &a), None);
    }
}
