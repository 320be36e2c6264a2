//! Benchmark driver: runs `echo_server` and `load` (built beside it) as child
//! processes for every cell of the matrix and reports throughput and server
//! CPU per message; or, with `--idle N`, server memory per idle connection.
//!
//! ```text
//! cd bench && cargo build --release
//! cargo run --release --bin run -- [--quick] [--duration 3] [--warmup 1]
//!     [--impls nextrush,fastwebsockets,tungstenite] [--connections 1,16,256]
//!     [--sizes 20,1024,16384] [--inflight 1,16] [--threads 1] [--repeat 1] [--out FILE]
//! cargo run --release --bin run -- --idle 10000 [--settle 2] [--partial BYTES] [--out FILE]
//! ```

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nextrush_bench::{Args, IMPLS, clk_tck, cpu_ticks, die, raise_nofile, vm_rss};

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe.parent().unwrap().join(name);
    if !path.exists() {
        die(&format!("{} not found: build all binaries first (cargo build --release)", path.display()));
    }
    path
}

struct Server {
    child: Child,
    addr: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    // The child is waited for in `stop` (or just above `die`).
    #[allow(clippy::zombie_processes)]
    fn start(which: &str) -> Self {
        let mut child = Command::new(bin("echo_server"))
            .args(["--impl", which, "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn echo_server: {e}")));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                die(&format!("echo_server --impl {which} exited before listening"));
            }
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let addr = addr.trim_start_matches("ws://").trim_end_matches('/').to_owned();
                return Self { child, addr, _stdout: out };
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `pid` with SIGKILL after `after` unless disarmed.
fn watchdog(pid: u32, after: Duration) -> Arc<AtomicBool> {
    let armed = Arc::new(AtomicBool::new(true));
    let flag = armed.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        if flag.load(Ordering::SeqCst) {
            eprintln!("watchdog: killing load process {pid}");
            // SAFETY: kill(2) on a child we started and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    armed
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    connections: usize,
    size: usize,
    inflight: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    rate: f64,
    messages: u64,
    cpu_secs: f64,
    window_secs: f64,
}

impl Measure {
    /// Messages per server CPU-second.
    fn per_cpu(&self) -> f64 {
        if self.cpu_secs > 0.0 { self.messages as f64 / self.cpu_secs } else { f64::NAN }
    }
    fn cpu_share(&self) -> f64 {
        self.cpu_secs / self.window_secs
    }
}

/// Medians over the repetitions of one cell and server.
#[derive(Clone, Copy, Debug)]
struct Agg {
    rate: f64,
    per_cpu: f64,
    share: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

impl Agg {
    fn of(runs: &[Measure]) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        Some(Self {
            rate: median(runs.iter().map(|m| m.rate).collect()),
            per_cpu: median(runs.iter().map(Measure::per_cpu).collect()),
            share: median(runs.iter().map(Measure::cpu_share).collect()),
        })
    }
}

struct Config {
    duration: f64,
    warmup: f64,
    threads: usize,
}

// `load` is waited for below, on every path past the spawn.
#[allow(clippy::zombie_processes)]
fn measure(which: &str, cell: Cell, cfg: &Config) -> Option<Measure> {
    let server = Server::start(which);
    let tck = clk_tck();
    let mut load = Command::new(bin("load"))
        .args(["--url", &format!("ws://{}/", server.addr)])
        .args(["--connections", &cell.connections.to_string()])
        .args(["--size", &cell.size.to_string()])
        .args(["--inflight", &cell.inflight.to_string()])
        .args(["--duration", &cfg.duration.to_string()])
        .args(["--warmup", &cfg.warmup.to_string()])
        .args(["--threads", &cfg.threads.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn load: {e}")));
    let dog = watchdog(load.id(), Duration::from_secs_f64(cfg.duration + cfg.warmup + 60.0));
    let out = BufReader::new(load.stdout.take().unwrap());
    let (mut t0, mut t1) = (None, None);
    let mut result = None;
    for line in out.lines() {
        let Ok(line) = line else { break };
        match line.as_str() {
            "window start" => t0 = cpu_ticks(server.pid()),
            "window end" => t1 = cpu_ticks(server.pid()),
            l if l.starts_with("result ") => {
                let field = |name: &str| -> Option<f64> {
                    l.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?.parse().ok()
                };
                result = Some((field("messages")? as u64, field("seconds")?, field("rate")?));
            }
            _ => {}
        }
    }
    let status = load.wait();
    dog.store(false, Ordering::SeqCst);
    server.stop();
    if !status.map(|s| s.success()).unwrap_or(false) {
        eprintln!("load failed for {which} {cell:?}");
        return None;
    }
    let (messages, window_secs, rate) = result?;
    let cpu_secs = (t1? - t0?) as f64 / tck;
    Some(Measure { rate, messages, cpu_secs, window_secs })
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine_notes() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap().trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    format!(
        "- date: {}\n- machine: nproc {nproc}, CPU `{model}`, {:.0} GiB RAM, Linux {}\n- load average at start: {}\n- rustc: {}\n",
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        mem as f64 / (1 << 20) as f64,
        kernel.trim(),
        loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        sh("rustc --version"),
    )
}

fn short(name: &str) -> &str {
    match name {
        "nextrush" => "nr",
        "fastwebsockets" => "fws",
        "tungstenite" => "tung",
        other => other,
    }
}

fn fmt_rate(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

fn write_out(path: &str, text: &str) {
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, text).unwrap_or_else(|e| die(&format!("write {path}: {e}")));
    eprintln!("wrote {path}");
}

fn results_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/results").to_owned()
}

fn load_matrix(args: &Args) {
    let quick = args.flag("quick");
    let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
    let cfg = Config {
        duration: args.get("duration", if quick { 1.5 } else { 3.0 }),
        warmup: args.get("warmup", if quick { 0.5 } else { 1.0 }),
        threads: args.get("threads", 1),
    };
    let conns: Vec<usize> = args.list("connections", if quick { &[1, 256] } else { &[1, 16, 256] });
    let sizes: Vec<usize> = args.list("sizes", if quick { &[20, 16384] } else { &[20, 1024, 16384] });
    let inflights: Vec<usize> = args.list("inflight", &[1, 16]);
    let out = args
        .str("out")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}/{}", results_dir(), if quick { "load-quick.md" } else { "load.md" }));

    let notes = machine_notes();
    let mut cells = Vec::new();
    for &connections in &conns {
        for &size in &sizes {
            for &inflight in &inflights {
                cells.push(Cell { connections, size, inflight });
            }
        }
    }
    let repeat: usize = args.get("repeat", 1).max(1);
    let total = cells.len() * impls.len() * repeat;
    let started = Instant::now();
    let mut rows: Vec<(Cell, Vec<Option<Agg>>)> = Vec::new();
    let mut done = 0;
    for cell in cells {
        let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); impls.len()];
        // Impls interleaved within each repetition, so slow drifts in the
        // machine's other load hit them alike.
        for _ in 0..repeat {
            for (i, which) in impls.iter().enumerate() {
                let m = measure(which, cell, &cfg);
                done += 1;
                match &m {
                    Some(m) => eprintln!(
                        "[{done}/{total} {:.0}s] {which:>14} c={:<3} size={:<5} k={:<2}: {:>9} msg/s, server CPU {:>5.1}%, {:>9} msg/CPU-s",
                        started.elapsed().as_secs_f64(),
                        cell.connections,
                        cell.size,
                        cell.inflight,
                        fmt_rate(m.rate),
                        m.cpu_share() * 100.0,
                        fmt_rate(m.per_cpu()),
                    ),
                    None => eprintln!("[{done}/{total}] {which} {cell:?}: FAILED"),
                }
                runs[i].extend(m);
            }
        }
        rows.push((cell, runs.iter().map(|r| Agg::of(r)).collect()));
    }

    let idx = |name: &str| impls.iter().position(|i| i == name);
    let (nr, fws, tung) = (idx("nextrush"), idx("fastwebsockets"), idx("tungstenite"));
    let mut md = String::new();
    let _ = writeln!(md, "# Echo load benchmark{}\n", if quick { " (quick subset)" } else { "" });
    md.push_str(&notes);
    let _ = writeln!(
        md,
        "- window: {} s measured after {} s warm-up, per cell and server, {} run(s) per cell and server \
         (median shown), a fresh server process per run; load generator: {} worker thread(s); \
         servers: tokio current-thread runtime (1 thread)\n",
        cfg.duration, cfg.warmup, repeat, cfg.threads
    );
    let _ = writeln!(
        md,
        "c = connections, k = messages in flight per connection. msg/s = echoes received per second; \
         msg/CPU-s = echoes per second of server CPU (utime+stime); CPU% = server CPU use during the window \
         (100% = the server's one thread saturated). CPU/msg ratios > 1 mean NextRush spends more CPU per message.\n"
    );
    let mut header = String::from("| c | size | k |");
    let mut rule = String::from("|---:|---:|---:|");
    for i in &impls {
        let _ = write!(header, " {} msg/s |", short(i));
        rule.push_str("---:|");
    }
    for i in &impls {
        let _ = write!(header, " {} msg/CPU-s |", short(i));
        rule.push_str("---:|");
    }
    header.push_str(" CPU% ");
    header.push_str(&impls.iter().map(|i| short(i)).collect::<Vec<_>>().join("/"));
    header.push_str(" |");
    rule.push_str("---:|");
    if nr.is_some() && fws.is_some() {
        header.push_str(" CPU/msg nr÷fws |");
        rule.push_str("---:|");
    }
    if nr.is_some() && tung.is_some() {
        header.push_str(" CPU/msg nr÷tung |");
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    let cpm = |ms: &[Option<Agg>], i: Option<usize>| i.and_then(|i| ms[i]).map(|m| 1.0 / m.per_cpu);
    for (cell, ms) in &rows {
        let mut row = format!("| {} | {} | {} |", cell.connections, cell.size, cell.inflight);
        for m in ms {
            let _ = write!(row, " {} |", m.map(|m| fmt_rate(m.rate)).unwrap_or("—".into()));
        }
        for m in ms {
            let _ = write!(row, " {} |", m.map(|m| fmt_rate(m.per_cpu)).unwrap_or("—".into()));
        }
        let shares: Vec<String> =
            ms.iter().map(|m| m.map(|m| format!("{:.0}", m.share * 100.0)).unwrap_or("—".into())).collect();
        let _ = write!(row, " {} |", shares.join("/"));
        if nr.is_some() && fws.is_some() {
            let _ = write!(row, " {} |", ratio(cpm(ms, nr), cpm(ms, fws)));
        }
        if nr.is_some() && tung.is_some() {
            let _ = write!(row, " {} |", ratio(cpm(ms, nr), cpm(ms, tung)));
        }
        let _ = writeln!(md, "{row}");
    }
    println!("{md}");
    write_out(&out, &md);
}

fn idle(args: &Args, n: usize) {
    let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
    let settle: f64 = args.get("settle", 2.0);
    let partial: usize = args.get("partial", 0);
    let default_out = if partial > 0 { "partial.md" } else { "idle.md" };
    let out = args.str("out").map(str::to_owned).unwrap_or_else(|| format!("{}/{default_out}", results_dir()));
    let notes = machine_notes();
    let mut rows = Vec::new();
    for which in &impls {
        let server = Server::start(which);
        std::thread::sleep(Duration::from_millis(500));
        let before = vm_rss(server.pid()).unwrap_or(0);
        let mut load = Command::new(bin("load"))
            .args(["--url", &format!("ws://{}/", server.addr), "--idle", &n.to_string()])
            .args(["--partial", &partial.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn load: {e}")));
        let dog = watchdog(load.id(), Duration::from_secs_f64(120.0 + settle));
        let mut lines = BufReader::new(load.stdout.take().unwrap()).lines();
        let established = lines.next().and_then(Result::ok).unwrap_or_default();
        let ok = established == format!("established {n}");
        let mut after = 0;
        if ok {
            std::thread::sleep(Duration::from_secs_f64(settle));
            after = vm_rss(server.pid()).unwrap_or(0);
        } else {
            eprintln!("{which}: load said {established:?}");
        }
        drop(load.stdin.take());
        let _ = load.wait();
        dog.store(false, Ordering::SeqCst);
        server.stop();
        let per = if ok { (after as f64 - before as f64) / n as f64 } else { f64::NAN };
        eprintln!("{which:>14}: RSS {before} → {after} bytes, {per:.0} bytes per idle connection");
        rows.push((which.clone(), before, after, per));
    }
    let per = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.3);
    let mut md = if partial > 0 {
        format!("# Memory: {n} connections, each holding a partial frame of {partial} bytes\n\n{notes}")
    } else {
        format!("# Idle memory: {n} idle WebSocket connections\n\n{notes}")
    };
    let _ = writeln!(
        md,
        "- server RSS (VmRSS) read before the connections and {settle} s after all {n} handshakes completed; \
         servers: tokio current-thread runtime, NextRush with compression and heartbeats off\n"
    );
    let column = if partial > 0 { "bytes / connection" } else { "bytes / idle connection" };
    let _ = writeln!(md, "| impl | RSS before | RSS after | {column} |\n|---|---:|---:|---:|");
    for (which, before, after, per) in &rows {
        let _ = writeln!(
            md,
            "| {which} | {:.1} MiB | {:.1} MiB | {per:.0} |",
            *before as f64 / 1048576.0,
            *after as f64 / 1048576.0
        );
    }
    let _ = writeln!(
        md,
        "\nRatio nextrush ÷ fastwebsockets: {}; nextrush ÷ tungstenite: {}",
        ratio(per("nextrush"), per("fastwebsockets")),
        ratio(per("nextrush"), per("tungstenite"))
    );
    println!("{md}");
    write_out(&out, &md);
}

fn main() {
    let args = Args::parse(&["quick"]);
    raise_nofile();
    let _ = std::io::stdout().flush();
    match args.str("idle") {
        Some(n) => idle(&args, n.parse().unwrap_or_else(|_| die("--idle N"))),
        None => load_matrix(&args),
    }
}
