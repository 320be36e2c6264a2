//! Fan-out load: one publisher and N subscribers on one room of a
//! `fanout_server`; counts deliveries (messages received by subscribers).
//!
//! `fanout --url ws://127.0.0.1:PORT/room --subscribers 1000 --size 64 --duration SECS
//!         [--warmup SECS] [--rate max|N] [--window K] [--threads T] [--settle SECS]`
//!
//! Every subscriber and the publisher connect to `--url` (the server relays
//! what one connection sends to all the others), with the minimal client of
//! the echo `load` tool. Payloads carry the message's sequence number (first
//! 8 bytes, little endian); each subscriber checks it receives 0, 1, 2, ...
//! in order and counts gaps (lost) and repeats (duplicates).
//!
//! - `--rate max` (default): closed loop. The publisher keeps `--window K`
//!   messages (default 64) "open": a message closes when all N subscribers
//!   have received it, and the publisher sends one new message per closed
//!   one (as many as allowed in one write). The server is always busy with
//!   at most K messages × N deliveries, so this measures its fan-out
//!   capacity without ever overrunning a queue (no policy has to drop).
//! - `--rate N`: open loop at N messages per second (sent in 1 ms ticks),
//!   whatever the server manages; lost messages show the overrun.
//!
//! Output, line by line (the `run` driver reads it): `connected N`, `window
//! start`, `window end`, then `result deliveries=D seconds=S rate=R
//! published=P lost=L duplicates=U missing=M stalled=0|1` and `server
//! TEXT` (the server's `/stats` answer, e.g. `dropped=0`). After the window
//! the publisher stops and the subscribers may catch up (until 3 s pass
//! without progress); `missing` counts messages published but still not
//! received by some subscriber then (summed over subscribers). `stalled=1`: in closed loop,
//! no message closed for 10 s (a lost message keeps its slot open forever).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nextrush_bench::client::{BoxStream, MASK, Target, connect, connect_all, masked_binary_head, parse_url, say};
use nextrush_bench::{Args, die, raise_nofile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Open-message slots; the window may not exceed it.
const RING: usize = 1 << 16;

struct Shared {
    subscribers: u32,
    /// Deliveries so far, all subscribers.
    deliveries: AtomicU64,
    lost: AtomicU64,
    duplicates: AtomicU64,
    /// Per ring slot: subscribers that received the message in it (closed loop).
    ring: Vec<AtomicU32>,
    /// Messages received by every subscriber (closed loop).
    closed: AtomicU64,
    closed_notify: Notify,
    /// Next sequence number each subscriber expects.
    next: Vec<AtomicU64>,
    track: bool,
}

/// The publisher's masked frames: header, mask, payload of `size` bytes
/// whose first 8 bytes are the sequence number.
struct FrameMaker {
    template: Vec<u8>,
    seq_at: usize,
}

impl FrameMaker {
    fn new(size: usize) -> Self {
        assert!(size >= 8, "--size must be at least 8 (the sequence number)");
        let mut f = masked_binary_head(size);
        let seq_at = f.len();
        f.extend((0..size).map(|i| ((i.wrapping_mul(31).wrapping_add(7) % 251) as u8) ^ MASK[i % 4]));
        Self { template: f, seq_at }
    }

    fn push(&self, out: &mut Vec<u8>, seq: u64) {
        let start = out.len();
        out.extend_from_slice(&self.template);
        for (i, b) in seq.to_le_bytes().into_iter().enumerate() {
            out[start + self.seq_at + i] = b ^ MASK[i % 4];
        }
    }
}

/// Reads server frames and checks sequence numbers; subscriber `idx`.
async fn subscriber(mut s: BoxStream, leftover: Vec<u8>, idx: usize, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    buf[..leftover.len()].copy_from_slice(&leftover);
    let mut filled = leftover.len();
    let mut expected: u64 = 0;
    loop {
        // Parse every complete frame in buf[..filled].
        let mut at = 0;
        let mut got = 0u64;
        while filled - at >= 2 {
            let b0 = buf[at];
            let b1 = buf[at + 1];
            let (hdr, len) = match b1 & 0x7f {
                126 if filled - at >= 4 => (4, usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]))),
                127 if filled - at >= 10 => (10, u64::from_be_bytes(buf[at + 2..at + 10].try_into().unwrap()) as usize),
                126 | 127 => break,
                n => (2, usize::from(n)),
            };
            if filled - at < hdr + len {
                if hdr + len > buf.len() {
                    die(&format!("frame of {len} bytes is larger than the read buffer"));
                }
                break;
            }
            if b0 == 0x88 {
                // The server closed (at the end of the run).
                return;
            }
            if b0 != 0x82 || b1 & 0x80 != 0 || len < 8 {
                die(&format!("unexpected frame: {b0:#04x} {b1:#04x}, {len} bytes"));
            }
            let p = at + hdr;
            let seq = u64::from_le_bytes(buf[p..p + 8].try_into().unwrap());
            at += hdr + len;
            if seq < expected {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if seq > expected {
                shared.lost.fetch_add(seq - expected, Ordering::Relaxed);
            }
            expected = seq + 1;
            got += 1;
            if shared.track {
                let slot = &shared.ring[seq as usize % RING];
                if slot.fetch_add(1, Ordering::AcqRel) + 1 == shared.subscribers {
                    slot.store(0, Ordering::Release);
                    shared.closed.fetch_add(1, Ordering::AcqRel);
                    shared.closed_notify.notify_one();
                }
            }
        }
        if got > 0 {
            shared.deliveries.fetch_add(got, Ordering::Relaxed);
            shared.next[idx].store(expected, Ordering::Release);
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        match s.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

/// One batch: write, then flush (a no-op for TCP; TLS sends its records).
async fn write_flush(s: &mut BoxStream, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Closed loop: keeps `window` messages open. Returns (published, stalled).
async fn publish_closed(
    mut s: BoxStream,
    size: usize,
    window: u64,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> (u64, bool) {
    let maker = FrameMaker::new(size);
    let mut out = Vec::with_capacity(maker.template.len() * window as usize);
    let mut sent: u64 = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return (sent, false);
        }
        let open = sent - shared.closed.load(Ordering::Acquire);
        if open < window {
            out.clear();
            for _ in open..window {
                maker.push(&mut out, sent);
                sent += 1;
            }
            if let Err(e) = write_flush(&mut s, &out).await {
                die(&format!("publisher write: {e}"));
            }
            continue;
        }
        if tokio::time::timeout(Duration::from_secs(10), shared.closed_notify.notified()).await.is_err() {
            eprintln!("stalled: no message reached every subscriber for 10 s ({sent} published)");
            return (sent, true);
        }
    }
}

/// Open loop: `rate` messages per second in 1 ms ticks. Returns published.
async fn publish_open(mut s: BoxStream, size: usize, rate: f64, stop: Arc<AtomicBool>) -> u64 {
    let maker = FrameMaker::new(size);
    let mut out = Vec::new();
    let mut sent: u64 = 0;
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        if due <= sent {
            continue;
        }
        out.clear();
        while sent < due {
            maker.push(&mut out, sent);
            sent += 1;
        }
        if let Err(e) = write_flush(&mut s, &out).await {
            die(&format!("publisher write: {e}"));
        }
    }
    sent
}

/// The server's `/stats` answer (one text message), or `?`.
async fn server_stats(base: &Target) -> String {
    let t = Target {
        addr: base.addr.clone(),
        host_header: base.host_header.clone(),
        path: "/stats".into(),
        tls: base.tls.clone(),
    };
    let Ok(Ok((mut s, mut buf))) = tokio::time::timeout(Duration::from_secs(3), connect(&t)).await else {
        return "?".into();
    };
    let mut chunk = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if buf.len() >= 2 {
            let len = usize::from(buf[1] & 0x7f);
            if buf[0] == 0x81 && len < 126 && buf.len() >= 2 + len {
                return String::from_utf8_lossy(&buf[2..2 + len]).into_owned();
            }
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    "?".into()
}

fn main() {
    let args = Args::parse(&[]);
    let target = Arc::new(parse_url(args.str("url").unwrap_or_else(|| die("--url ws://HOST:PORT/room"))));
    let subscribers: usize = args.get("subscribers", 1000);
    let size: usize = args.get("size", 64);
    let duration: f64 = args.get("duration", 3.0);
    let warmup: f64 = args.get("warmup", 1.0);
    let settle: f64 = args.get("settle", 0.5);
    let threads: usize = args.get("threads", 1);
    let window: u64 = args.get("window", 64);
    let rate: Option<f64> = match args.str("rate").unwrap_or("max") {
        "max" => None,
        r => Some(r.parse().unwrap_or_else(|_| die("--rate max|N"))),
    };
    if window == 0 || window as usize > RING {
        die(&format!("--window must be 1..={RING}"));
    }
    let limit = raise_nofile();
    if subscribers as u64 + 64 > limit {
        die(&format!("--subscribers {subscribers} needs more file descriptors than the limit {limit}"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    rt.block_on(async move {
        let shared = Arc::new(Shared {
            subscribers: subscribers as u32,
            deliveries: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            ring: (0..if rate.is_none() { RING } else { 0 }).map(|_| AtomicU32::new(0)).collect(),
            closed: AtomicU64::new(0),
            closed_notify: Notify::new(),
            next: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
            track: rate.is_none(),
        });
        let conns = connect_all(&target, subscribers + 1).await;
        say(&format!("connected {}", conns.len()));
        let mut conns = conns.into_iter();
        let (publisher, _) = conns.next().unwrap();
        for (idx, (s, leftover)) in conns.enumerate() {
            tokio::spawn(subscriber(s, leftover, idx, shared.clone()));
        }
        // Let the server finish joining everyone before the first message.
        tokio::time::sleep(Duration::from_secs_f64(settle)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = match rate {
            None => tokio::spawn(publish_closed(publisher, size, window, shared.clone(), stop.clone())),
            Some(r) => {
                let stop = stop.clone();
                tokio::spawn(async move { (publish_open(publisher, size, r, stop).await, false) })
            }
        };
        tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
        let d0 = shared.deliveries.load(Ordering::Relaxed);
        let t0 = Instant::now();
        say("window start");
        tokio::time::sleep(Duration::from_secs_f64(duration)).await;
        let d1 = shared.deliveries.load(Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        say("window end");
        stop.store(true, Ordering::Relaxed);
        shared.closed_notify.notify_one();
        let (published, stalled) = publisher.await.unwrap();
        // Let the subscribers catch up with everything published, as long
        // as they make progress (3 s without any, or 60 s in all, ends it).
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut last = (u64::MAX, Instant::now());
        let missing = loop {
            let missing: u64 =
                shared.next.iter().map(|n| published.saturating_sub(n.load(Ordering::Acquire))).sum();
            if missing < last.0 {
                last = (missing, Instant::now());
            }
            if missing == 0 || last.1.elapsed() >= Duration::from_secs(3) || Instant::now() >= give_up {
                break missing;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let deliveries = d1 - d0;
        say(&format!(
            "result deliveries={deliveries} seconds={secs:.6} rate={:.1} published={published} lost={} duplicates={} missing={missing} stalled={}",
            deliveries as f64 / secs,
            shared.lost.load(Ordering::Relaxed),
            shared.duplicates.load(Ordering::Relaxed),
            u8::from(stalled),
        ));
        say(&format!("server {}", server_stats(&target).await));
    });
    // Do not wait for the connection tasks: exiting closes every socket.
    std::process::exit(0);
}
