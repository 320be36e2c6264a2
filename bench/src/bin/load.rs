//! Load generator: N connections, each keeping K binary messages in flight.
//!
//! `load --url ws://127.0.0.1:PORT --connections N --size BYTES --inflight K --duration SECS
//!       [--warmup SECS] [--threads T]`
//! `load --url ws://127.0.0.1:PORT --idle N [--partial BYTES]`
//! `load --url wss://localhost:PORT ...` (or `--tls` with a ws:// URL): the
//! same over TLS (tokio-rustls, ring, trusting the bench CA of
//! `nextrush_bench::tls`).
//!
//! The client is a minimal hand-written RFC 6455 client, the cheapest per
//! message we could make and the same for every server: each connection
//! pre-builds its masked frame once, writes K of them, then for every batch
//! of echoes parsed out of one read writes as many new frames in one write.
//! Each echo is checked (opcode, length, first and last byte).
//!
//! Output, line by line (the `run` driver reads it): `connected N`,
//! `window start` after the warm-up, `window end`, then
//! `result messages=M seconds=S rate=R`.
//!
//! With `--idle N`: opens N connections, prints `established N`, and holds
//! them without traffic until its standard input closes. With `--partial
//! BYTES` too, each connection first sends BYTES of a frame declared one
//! byte longer, so the server holds a partial frame of BYTES per connection
//! (the worst case a peer can impose on the receive side within a frame
//! limit of BYTES + 1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nextrush_bench::client::{BoxStream, MASK, connect_all, masked_binary_head, parse_url, say};
use nextrush_bench::{Args, die, raise_nofile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Payload byte `i` (so first and last byte depend on the size).
fn payload_byte(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

/// One masked binary frame carrying `size` payload bytes.
fn client_frame(size: usize) -> Vec<u8> {
    let mut f = masked_binary_head(size);
    f.extend((0..size).map(|i| payload_byte(i) ^ MASK[i % 4]));
    f
}

/// Streaming parser of server frames (unmasked), checking each echo.
struct Parser {
    size: usize,
    first: u8,
    last: u8,
    header: [u8; 10],
    have: usize,
    /// Payload bytes of the current frame still to come; `None` in a header.
    remaining: Option<usize>,
}

impl Parser {
    fn new(size: usize) -> Self {
        Self {
            size,
            first: payload_byte(0),
            last: payload_byte(size.saturating_sub(1)),
            header: [0; 10],
            have: 0,
            remaining: None,
        }
    }

    /// Consumes `buf`; returns the number of complete echoes in it.
    fn feed(&mut self, mut buf: &[u8]) -> Result<usize, String> {
        let mut done = 0;
        while !buf.is_empty() {
            match self.remaining {
                None => {
                    self.header[self.have] = buf[0];
                    self.have += 1;
                    buf = &buf[1..];
                    if self.have < 2 {
                        continue;
                    }
                    let need = match self.header[1] & 0x7f {
                        126 => 4,
                        127 => 10,
                        _ => 2,
                    };
                    if self.have < need {
                        continue;
                    }
                    if self.header[0] != 0x82 {
                        return Err(format!("unexpected frame header byte {:#04x}", self.header[0]));
                    }
                    if self.header[1] & 0x80 != 0 {
                        return Err("server frame is masked".into());
                    }
                    let len = match need {
                        2 => usize::from(self.header[1] & 0x7f),
                        4 => usize::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                        _ => u64::from_be_bytes(self.header[2..10].try_into().unwrap()) as usize,
                    };
                    if len != self.size {
                        return Err(format!("echo of {len} bytes, sent {}", self.size));
                    }
                    self.have = 0;
                    if len == 0 {
                        done += 1;
                    } else {
                        self.remaining = Some(len);
                    }
                }
                Some(remaining) => {
                    if remaining == self.size && buf[0] != self.first {
                        return Err("first payload byte differs".into());
                    }
                    let take = remaining.min(buf.len());
                    if take == remaining {
                        if buf[take - 1] != self.last {
                            return Err("last payload byte differs".into());
                        }
                        self.remaining = None;
                        done += 1;
                    } else {
                        self.remaining = Some(remaining - take);
                    }
                    buf = &buf[take..];
                }
            }
        }
        Ok(done)
    }
}

/// A masked binary frame head declaring `len + 1` bytes, and `len` of them.
fn partial_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(len as u64 + 1).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend((0..len).map(|i| (i as u8) ^ [1, 2, 3, 4][i % 4]));
    frame
}

async fn run_connection(
    mut s: BoxStream,
    leftover: Vec<u8>,
    size: usize,
    inflight: usize,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let frame = client_frame(size);
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * inflight).collect();
    let mut parser = Parser::new(size);
    let mut buf = vec![0u8; 64 * 1024];
    // (The flushes are no-ops for TCP; TLS needs them to send its records.)
    if let Err(e) = async {
        s.write_all(&batch).await?;
        s.flush().await
    }
    .await
    {
        die(&format!("write: {e}"));
    }
    let mut pending = match parser.feed(&leftover) {
        Ok(n) => n,
        Err(e) => die(&e),
    };
    loop {
        if pending > 0 {
            count.fetch_add(pending as u64, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let sent = async {
                s.write_all(&batch[..frame.len() * pending]).await?;
                s.flush().await
            };
            if let Err(e) = sent.await {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                die(&format!("write: {e}"));
            }
        }
        let n = match s.read(&mut buf).await {
            Ok(0) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                die("server closed the connection");
            }
            Ok(n) => n,
            Err(e) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                die(&format!("read: {e}"));
            }
        };
        pending = match parser.feed(&buf[..n]) {
            Ok(n) => n,
            Err(e) => die(&e),
        };
    }
}

fn main() {
    let args = Args::parse(&["tls"]);
    let mut url = args.str("url").unwrap_or_else(|| die("--url ws://HOST:PORT[/path]")).to_owned();
    if args.flag("tls") && url.starts_with("ws://") {
        url = format!("wss://{}", &url["ws://".len()..]);
    }
    let target = Arc::new(parse_url(&url));
    let threads: usize = args.get("threads", 1);
    let limit = raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();

    if let Some(idle) = args.str("idle") {
        let n: usize = idle.parse().unwrap_or_else(|_| die("--idle N"));
        if n as u64 + 64 > limit {
            die(&format!("--idle {n} needs more file descriptors than the limit {limit}"));
        }
        let partial: usize = args.get("partial", 0);
        rt.block_on(async {
            let mut conns = connect_all(&target, n).await;
            if partial > 0 {
                let frame = partial_frame(partial);
                for (s, _) in &mut conns {
                    let sent = async {
                        s.write_all(&frame).await?;
                        s.flush().await
                    };
                    sent.await.unwrap_or_else(|e| die(&format!("partial frame: {e}")));
                }
            }
            say(&format!("established {}", conns.len()));
            // Hold them until the driver closes our stdin.
            let mut stdin = tokio::io::stdin();
            let mut sink = [0u8; 64];
            while let Ok(n) = stdin.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            drop(conns);
        });
        return;
    }

    let connections: usize = args.get("connections", 1);
    let size: usize = args.get("size", 20);
    let inflight: usize = args.get("inflight", 1).max(1);
    let duration: f64 = args.get("duration", 3.0);
    let warmup: f64 = args.get("warmup", 1.0);

    rt.block_on(async {
        let conns = connect_all(&target, connections).await;
        say(&format!("connected {}", conns.len()));
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for (s, leftover) in conns {
            tokio::spawn(run_connection(s, leftover, size, inflight, count.clone(), stop.clone()));
        }
        tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
        let c0 = count.load(Ordering::Relaxed);
        let t0 = Instant::now();
        say("window start");
        tokio::time::sleep(Duration::from_secs_f64(duration)).await;
        let c1 = count.load(Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        say("window end");
        stop.store(true, Ordering::Relaxed);
        let messages = c1 - c0;
        say(&format!("result messages={messages} seconds={secs:.6} rate={:.1}", messages as f64 / secs));
    });
    // Do not wait for the connection tasks: exiting closes every socket.
    std::process::exit(0);
}
