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
//! cargo run --release --bin run -- --fanout [--repeat 3] [--window 1,16,64,256] [--duration 5]
//!     [--warmup 1] [--subscribers 1000] [--size 64] [--rate max|N] [--threads 1]
//!     [--impls nextrush,tungstenite,tungstenite-mpsc] [--out FILE]
//! cargo run --release --bin run -- --runtimes tokio,smol,async-std [--quick] [--repeat 3]
//!     [--idle 10000] [...]   # NextRush vs tungstenite on each runtime → results/runtimes.md
//! cargo run --release --bin run -- --tls [--quick] [--repeat 3] [--impls ...] [--connections ...]
//!     [--sizes ...] [--inflight ...] [...]   # each cell over ws:// and wss:// → results/tls.md
//! ```

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nextrush_bench::{Args, IMPLS, RUNTIME_PAIRS, clk_tck, cpu_ticks, die, raise_nofile, vm_rss};

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
    fn start(which: &str, tls: bool) -> Self {
        Self::start_bin("echo_server", which, tls)
    }

    // As `start`.
    #[allow(clippy::zombie_processes)]
    fn start_bin(binary: &str, which: &str, tls: bool) -> Self {
        let mut child = Command::new(bin(binary))
            .args(["--impl", which, "--addr", "127.0.0.1:0"])
            .args(tls.then_some("--tls"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn {binary}: {e}")));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                die(&format!("{binary} --impl {which} exited before listening"));
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

impl Cell {
    /// The `| c | size | k |` columns of a table row.
    fn table_columns(&self) -> String {
        format!("| {} | {} | {} |", self.connections, self.size, self.inflight)
    }
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

/// One server's runs in one cell, a failed run as `None`.
type Runs = Vec<Option<Measure>>;

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
    /// Of the runs that did not fail; `None` if all did.
    fn of(runs: &[Option<Measure>]) -> Option<Self> {
        let runs: Vec<Measure> = runs.iter().flatten().copied().collect();
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

#[derive(Clone, Copy)]
struct Config {
    duration: f64,
    warmup: f64,
    threads: usize,
    /// wss:// (`echo_server --tls`, `load` over TLS) instead of ws://.
    tls: bool,
}

/// What a load generator (`load` or `fanout`) reported over its run.
struct LoadRun {
    /// It exited with success.
    success: bool,
    /// Server CPU time between its `window start` and `window end` lines.
    cpu_secs: Option<f64>,
    /// Its last `result key=value ...` line.
    result: Option<String>,
}

impl LoadRun {
    /// The value of `name=` in the result line.
    fn field(&self, name: &str) -> Option<f64> {
        let result = self.result.as_deref()?;
        result.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?.parse().ok()
    }
}

/// Reads `load` (spawned with its stdout piped) to its end, under a watchdog
/// of `limit`, then stops `server`. The server's CPU time is read at the
/// window lines; lines other than those and `result` go to `on_line`.
fn drive(mut load: Child, server: Server, limit: Duration, mut on_line: impl FnMut(&str)) -> LoadRun {
    let tck = clk_tck();
    let dog = watchdog(load.id(), limit);
    let out = BufReader::new(load.stdout.take().unwrap());
    let (mut t0, mut t1) = (None, None);
    let mut result = None;
    for line in out.lines() {
        let Ok(line) = line else { break };
        match line.as_str() {
            "window start" => t0 = cpu_ticks(server.pid()),
            "window end" => t1 = cpu_ticks(server.pid()),
            l if l.starts_with("result ") => result = Some(line),
            l => on_line(l),
        }
    }
    let status = load.wait();
    dog.store(false, Ordering::SeqCst);
    server.stop();
    let cpu_secs = match (t0, t1) {
        (Some(t0), Some(t1)) => Some((t1 - t0) as f64 / tck),
        _ => None,
    };
    LoadRun { success: status.map(|s| s.success()).unwrap_or(false), cpu_secs, result }
}

fn measure(which: &str, cell: Cell, cfg: &Config) -> Option<Measure> {
    let server = Server::start(which, cfg.tls);
    let scheme = if cfg.tls { "wss" } else { "ws" };
    let load = Command::new(bin("load"))
        .args(["--url", &format!("{scheme}://{}/", server.addr)])
        .args(["--connections", &cell.connections.to_string()])
        .args(["--size", &cell.size.to_string()])
        .args(["--inflight", &cell.inflight.to_string()])
        .args(["--duration", &cfg.duration.to_string()])
        .args(["--warmup", &cfg.warmup.to_string()])
        .args(["--threads", &cfg.threads.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn load: {e}")));
    let run = drive(load, server, Duration::from_secs_f64(cfg.duration + cfg.warmup + 60.0), |_| {});
    if !run.success {
        eprintln!("load failed for {which} {cell:?}");
        return None;
    }
    Some(Measure {
        rate: run.field("rate")?,
        messages: run.field("messages")? as u64,
        cpu_secs: run.cpu_secs?,
        window_secs: run.field("seconds")?,
    })
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

/// Where a matrix run is: runs done of `total`, since `started`.
struct Progress {
    done: usize,
    total: usize,
    started: Instant,
}

/// One progress line on stderr for a measured run of `label` (the server,
/// padded, and anything else that tells the run apart).
fn report(progress: Progress, label: &str, cell: Cell, m: Option<&Measure>) {
    let Progress { done, total, started } = progress;
    match m {
        Some(m) => eprintln!(
            "[{done}/{total} {:.0}s] {label} c={:<3} size={:<5} k={:<2}: {:>9} msg/s, server CPU {:>5.1}%, {:>9} msg/CPU-s",
            started.elapsed().as_secs_f64(),
            cell.connections,
            cell.size,
            cell.inflight,
            fmt_rate(m.rate),
            m.cpu_share() * 100.0,
            fmt_rate(m.per_cpu()),
        ),
        None => eprintln!("[{done}/{total}] {} {cell:?}: FAILED", label.trim_start()),
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

/// A ratio of medians, then (from two repetitions on) the lowest and
/// highest of the ratios within single repetitions, in parentheses.
fn with_range(median_ratio: String, per_repetition: impl IntoIterator<Item = f64>) -> String {
    let per_rep: Vec<f64> = per_repetition.into_iter().filter(|x| x.is_finite()).collect();
    if per_rep.len() < 2 {
        return median_ratio;
    }
    let lo = per_rep.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_rep.iter().copied().fold(0.0, f64::max);
    format!("{median_ratio} ({lo:.2}–{hi:.2})")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// The report: on stdout, and written to `path`.
fn print_and_write(path: &str, md: &str) {
    println!("{md}");
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, md).unwrap_or_else(|e| die(&format!("write {path}: {e}")));
    eprintln!("wrote {path}");
}

/// `--out`, by default `results/{default_name}`.
fn out_path(args: &Args, default_name: &str) -> String {
    match args.str("out") {
        Some(path) => path.to_owned(),
        None => format!("{}/results/{default_name}", env!("CARGO_MANIFEST_DIR")),
    }
}

/// The echo-load options the plain, `--tls` and `--runtimes` matrices share.
struct Matrix {
    quick: bool,
    /// ws:// (`tls` false).
    cfg: Config,
    cells: Vec<Cell>,
    repeat: usize,
}

impl Matrix {
    fn from_args(args: &Args) -> Self {
        let quick = args.flag("quick");
        let cfg = Config {
            duration: args.get("duration", if quick { 1.5 } else { 3.0 }),
            warmup: args.get("warmup", if quick { 0.5 } else { 1.0 }),
            threads: args.get("threads", 1),
            tls: false,
        };
        let conns: Vec<usize> = args.list("connections", if quick { &[1, 256] } else { &[1, 16, 256] });
        let sizes: Vec<usize> = args.list("sizes", if quick { &[20, 16384] } else { &[20, 1024, 16384] });
        let inflights: Vec<usize> = args.list("inflight", &[1, 16]);
        let mut cells = Vec::new();
        for &connections in &conns {
            for &size in &sizes {
                for &inflight in &inflights {
                    cells.push(Cell { connections, size, inflight });
                }
            }
        }
        Self { quick, cfg, cells, repeat: args.get("repeat", 1).max(1) }
    }

    fn title_suffix(&self) -> &'static str {
        if self.quick { " (quick subset)" } else { "" }
    }
}

/// A server measured in every cell of a matrix.
struct Job<'a> {
    /// Its `echo_server --impl` name.
    which: &'a str,
    cfg: &'a Config,
    /// The server, padded, and anything else that tells the job apart in the
    /// progress lines.
    label: String,
}

/// Measures every job in every cell, `repeat` times, one progress line per
/// run. The jobs take turns within each repetition, so slow drifts in the
/// machine's other load hit them alike. Per cell: each job's runs, in job
/// order.
fn run_matrix(cells: &[Cell], jobs: &[Job], repeat: usize) -> Vec<(Cell, Vec<Runs>)> {
    let total = cells.len() * jobs.len() * repeat;
    let started = Instant::now();
    let mut done = 0;
    let mut rows = Vec::new();
    for &cell in cells {
        let mut runs: Vec<Runs> = vec![Vec::new(); jobs.len()];
        for _ in 0..repeat {
            for (job, job_runs) in jobs.iter().zip(&mut runs) {
                let m = measure(job.which, cell, job.cfg);
                done += 1;
                report(Progress { done, total, started }, &job.label, cell, m.as_ref());
                job_runs.push(m);
            }
        }
        rows.push((cell, runs));
    }
    rows
}

fn load_matrix(args: &Args) {
    let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
    let matrix = Matrix::from_args(args);
    let (cfg, repeat) = (&matrix.cfg, matrix.repeat);
    let out = out_path(args, if matrix.quick { "load-quick.md" } else { "load.md" });

    let notes = machine_notes();
    let jobs: Vec<Job> = impls.iter().map(|which| Job { which, cfg, label: format!("{which:>14}") }).collect();
    let rows: Vec<(Cell, Vec<Option<Agg>>)> = run_matrix(&matrix.cells, &jobs, repeat)
        .into_iter()
        .map(|(cell, runs)| (cell, runs.iter().map(|r| Agg::of(r)).collect()))
        .collect();

    let idx = |name: &str| impls.iter().position(|i| i == name);
    let (nr, fws, tung) = (idx("nextrush"), idx("fastwebsockets"), idx("tungstenite"));
    let floor = idx("floor");
    let mut md = String::new();
    let _ = writeln!(md, "# Echo load benchmark{}\n", matrix.title_suffix());
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
    if floor.is_some() && fws.is_some() {
        header.push_str(" CPU/msg floor÷fws |");
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    let cpm = |ms: &[Option<Agg>], i: Option<usize>| i.and_then(|i| ms[i]).map(|m| 1.0 / m.per_cpu);
    for (cell, ms) in &rows {
        let mut row = cell.table_columns();
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
        if floor.is_some() && fws.is_some() {
            let _ = write!(row, " {} |", ratio(cpm(ms, floor), cpm(ms, fws)));
        }
        let _ = writeln!(md, "{row}");
    }
    print_and_write(&out, &md);
}

/// Server RSS before `n` connections and `settle` s after all are up; the
/// latter `None` if `load` did not get them all up. With `partial` > 0,
/// every connection holds a partial frame of that many bytes.
fn idle_rss(which: &str, n: usize, settle: f64, partial: usize) -> (u64, Option<u64>) {
    let server = Server::start(which, false);
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
    let after = if established == format!("established {n}") {
        std::thread::sleep(Duration::from_secs_f64(settle));
        Some(vm_rss(server.pid()).unwrap_or(0))
    } else {
        eprintln!("{which}: load said {established:?}");
        None
    };
    // Closing its stdin lets `load` close the connections and exit.
    drop(load.stdin.take());
    let _ = load.wait();
    dog.store(false, Ordering::SeqCst);
    server.stop();
    (before, after)
}

fn idle(args: &Args, n: usize) {
    let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
    let settle: f64 = args.get("settle", 2.0);
    let partial: usize = args.get("partial", 0);
    let out = out_path(args, if partial > 0 { "partial.md" } else { "idle.md" });
    let notes = machine_notes();
    let mut rows = Vec::new();
    for which in &impls {
        let (before, after) = idle_rss(which, n, settle, partial);
        let per = after.map_or(f64::NAN, |after| (after as f64 - before as f64) / n as f64);
        let after = after.unwrap_or(0);
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
        let _ = writeln!(md, "| {which} | {} | {} | {per:.0} |", mib(*before), mib(*after));
    }
    let _ = writeln!(
        md,
        "\nRatio nextrush ÷ fastwebsockets: {}; nextrush ÷ tungstenite: {}",
        ratio(per("nextrush"), per("fastwebsockets")),
        ratio(per("nextrush"), per("tungstenite"))
    );
    print_and_write(&out, &md);
}

// --- `--tls`: every cell over ws:// and over wss://, per implementation.

/// One implementation's repetitions in one cell: ws runs, wss runs (the
/// two schemes of one repetition run next to each other).
type WsWss = [Runs];

/// ws and wss side by side: throughput and server CPU per message, wss as a
/// ratio of ws for each implementation, and the implementations compared
/// over wss → `results/tls.md`.
fn tls_matrix(args: &Args) {
    let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
    for i in &impls {
        if !IMPLS.contains(&i.as_str()) {
            die(&format!("--tls: --impls takes {}, not {i:?}", IMPLS.join(", ")));
        }
    }
    let matrix = Matrix::from_args(args);
    let schemes = [matrix.cfg, Config { tls: true, ..matrix.cfg }];
    let repeat = matrix.repeat;
    let out = out_path(args, "tls.md");
    let command: Vec<String> = std::env::args().skip(1).collect();

    let notes = machine_notes();
    // Each implementation over ws, then over wss: a cell's runs come in
    // pairs, one `WsWss` per implementation.
    let jobs: Vec<Job> = impls
        .iter()
        .flat_map(|which| {
            schemes.iter().map(move |cfg| {
                let scheme = if cfg.tls { "wss" } else { "ws " };
                Job { which, cfg, label: format!("{which:>14} {scheme}") }
            })
        })
        .collect();
    let rows = run_matrix(&matrix.cells, &jobs, repeat);

    let per_cpu = |runs: &[Option<Measure>]| Agg::of(runs).map(|a| a.per_cpu);
    let cpu_per_msg = |runs: &[Option<Measure>]| Agg::of(runs).map(|a| 1.0 / a.per_cpu);
    // wss÷ws of one figure: of the medians, and the range of the ratios of
    // the runs next to each other (one repetition).
    let wss_over_ws = |r: &WsWss, f: fn(&Measure) -> f64| -> String {
        let median_of = |runs: &[Option<Measure>]| -> Option<f64> {
            let v: Vec<f64> = runs.iter().flatten().map(f).filter(|x| x.is_finite()).collect();
            (!v.is_empty()).then(|| median(v))
        };
        let med = ratio(median_of(&r[1]), median_of(&r[0]));
        with_range(med, r[1].iter().zip(&r[0]).filter_map(|(wss, ws)| Some(f(wss.as_ref()?) / f(ws.as_ref()?))))
    };
    let idx = |name: &str| impls.iter().position(|i| i == name);
    let (nr, fws, tung) = (idx("nextrush"), idx("fastwebsockets"), idx("tungstenite"));

    let mut md = format!("# wss:// vs ws:// echo load{}\n\n", matrix.title_suffix());
    let _ = writeln!(md, "Command (in `bench/`): `./target/release/run {}`\n", command.join(" "));
    md.push_str(&notes);
    let _ = writeln!(
        md,
        "- window: {} s measured after {} s warm-up, per cell, server and scheme, {} run(s) per cell, server and \
         scheme (median shown), a fresh server process per run, servers interleaved within each repetition and \
         each server's ws and wss runs next to each other; load generator: {} worker thread(s), the same client \
         for ws and wss (over tokio-rustls for wss); servers: tokio current-thread runtime (1 thread)\n\
         - TLS: rustls 0.23 with the ring provider (TLS 1.3 negotiated), ALPN http/1.1, a bench CA and a \
         `localhost`/`127.0.0.1` certificate made with rcgen; the same `ServerConfig` for every implementation \
         (NextRush through `App::serve_tls`, fastwebsockets and tokio-tungstenite behind \
         `tokio_rustls::TlsAcceptor`)\n",
        schemes[0].duration, schemes[0].warmup, repeat, schemes[0].threads
    );
    let _ = writeln!(
        md,
        "c = connections, k = messages in flight per connection. msg/s = echoes per second seen by the load \
         generator (which encrypts and decrypts too, so over wss it can be the bottleneck: see CPU%); msg/CPU-s = \
         echoes per second of server CPU (utime+stime); CPU% = server CPU use in the window (100% = its one thread \
         busy). wss÷ws = the wss figure divided by the ws one (msg/CPU-s: 1.00 = TLS costs the server nothing, \
         0.50 = twice the CPU per message); in parentheses the lowest and highest ratio of a single repetition. \
         CPU/msg nr÷X = server CPU per message of NextRush divided by that of X over the same scheme: < 1 NextRush \
         cheaper, > 1 dearer.\n"
    );

    // Summary: the ratios.
    md.push_str("## Ratios\n\n| c | size | k |");
    let mut rule = String::from("|---:|---:|---:|");
    for i in &impls {
        let _ = write!(md, " {} wss÷ws msg/CPU-s |", short(i));
        rule.push_str("---:|");
    }
    let others: Vec<(usize, &str)> =
        [fws.map(|i| (i, "fws")), tung.map(|i| (i, "tung"))].into_iter().flatten().collect();
    if nr.is_some() {
        for (_, name) in &others {
            let _ = write!(md, " CPU/msg nr÷{name} ws | CPU/msg nr÷{name} wss |");
            rule.push_str("---:|---:|");
        }
    }
    let _ = writeln!(md, "\n{rule}");
    for (cell, runs) in &rows {
        let by_impl: Vec<&WsWss> = runs.chunks(2).collect();
        md.push_str(&cell.table_columns());
        for r in &by_impl {
            let _ = write!(md, " {} |", ratio(per_cpu(&r[1]), per_cpu(&r[0])));
        }
        if let Some(nr) = nr {
            for &(o, _) in &others {
                for (mine, theirs) in by_impl[nr].iter().zip(by_impl[o]) {
                    let _ = write!(md, " {} |", ratio(cpu_per_msg(mine), cpu_per_msg(theirs)));
                }
            }
        }
        md.push('\n');
    }

    // Detail: a ws row and a wss row per implementation.
    md.push_str(
        "\n## Every implementation, ws and wss\n\n\
         | c | size | k | impl | scheme | msg/s | msg/CPU-s | CPU% | wss÷ws msg/s | wss÷ws msg/CPU-s |\n\
         |---:|---:|---:|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (cell, runs) in &rows {
        for (which, r) in impls.iter().zip(runs.chunks(2)) {
            for (t, scheme) in ["ws", "wss"].into_iter().enumerate() {
                let a = Agg::of(&r[t]);
                let (rr, rc) = if t == 1 {
                    (wss_over_ws(r, |m| m.rate), wss_over_ws(r, Measure::per_cpu))
                } else {
                    (String::new(), String::new())
                };
                let _ = writeln!(
                    md,
                    "{} {which} | {scheme} | {} | {} | {} | {rr} | {rc} |",
                    cell.table_columns(),
                    a.map(|a| fmt_rate(a.rate)).unwrap_or("—".into()),
                    a.map(|a| fmt_rate(a.per_cpu)).unwrap_or("—".into()),
                    a.map(|a| format!("{:.0}", a.share * 100.0)).unwrap_or("—".into()),
                );
            }
        }
    }
    print_and_write(&out, &md);
}

fn main() {
    let args = Args::parse(&["quick", "fanout", "tls"]);
    raise_nofile();
    let _ = std::io::stdout().flush();
    if args.flag("tls") {
        if args.flag("fanout") || args.str("runtimes").is_some() || args.str("idle").is_some() {
            die("--tls is a mode of its own: not with --fanout, --runtimes or --idle");
        }
        // Made once here, before any server or load process needs it.
        nextrush_bench::tls::ensure();
        return tls_matrix(&args);
    }
    if args.flag("fanout") {
        return fanout::run(&args);
    }
    if let Some(list) = args.str("runtimes") {
        return runtimes(&args, list);
    }
    match args.str("idle") {
        Some(n) => idle(&args, n.parse().unwrap_or_else(|_| die("--idle N"))),
        None => load_matrix(&args),
    }
}

// --- `--runtimes tokio,smol,async-std`: on each runtime, NextRush's adapter
// against the tungstenite server on that same runtime (tokio-tungstenite on
// tokio, async-tungstenite on smol and async-std), same cells and load as
// the matrix above; with `--idle N`, also idle memory at N connections.

fn runtimes(args: &Args, list: &str) {
    let pairs: Vec<(&str, &str, &str)> = list
        .split(',')
        .map(|r| {
            RUNTIME_PAIRS
                .iter()
                .find(|p| p.0 == r.trim())
                .copied()
                .unwrap_or_else(|| die(&format!("--runtimes: unknown runtime {r:?} (tokio, smol, async-std)")))
        })
        .collect();
    let matrix = Matrix::from_args(args);
    let (cfg, repeat) = (&matrix.cfg, matrix.repeat);
    let idle_n: usize = args.get("idle", 0);
    let settle: f64 = args.get("settle", 2.0);
    let out = out_path(args, "runtimes.md");
    let impls: Vec<&str> = pairs.iter().flat_map(|p| [p.1, p.2]).collect();

    let notes = machine_notes();
    // Every server once per repetition, each NextRush run next to its
    // tungstenite run on the same runtime: pair p's runs are 2p and 2p + 1.
    let jobs: Vec<Job> = impls.iter().map(|&which| Job { which, cfg, label: format!("{which:>27}") }).collect();
    let rows = run_matrix(&matrix.cells, &jobs, repeat);

    // CPU per message of NextRush ÷ that of the other server: of the medians,
    // and the range of the ratios within each repetition (adjacent runs).
    let pair_ratio = |runs: &[Runs], p: usize| -> String {
        let (nr, other) = (&runs[2 * p], &runs[2 * p + 1]);
        let med = ratio(Agg::of(nr).map(|a| 1.0 / a.per_cpu), Agg::of(other).map(|a| 1.0 / a.per_cpu));
        with_range(med, nr.iter().zip(other).filter_map(|(a, b)| Some(b.as_ref()?.per_cpu() / a.as_ref()?.per_cpu())))
    };
    let other_short = |p: &(&str, &str, &str)| if p.0 == "tokio" { "tung" } else { "at" };

    let mut md = format!("# NextRush vs tungstenite on each runtime{}\n\n", matrix.title_suffix());
    md.push_str(&notes);
    let _ = writeln!(
        md,
        "- window: {} s measured after {} s warm-up, per cell and server, {} run(s) per cell and server \
         (median shown), a fresh server process per run, servers interleaved within each repetition; \
         load generator: {} worker thread(s)",
        cfg.duration, cfg.warmup, repeat, cfg.threads
    );
    let _ = writeln!(
        md,
        "- servers, one runtime thread each: tokio current-thread runtime; smol global executor with \
         `SMOL_THREADS=1`; async-std executor with `ASYNC_STD_THREAD_COUNT=1` (on smol and async-std the \
         whole server, accept loop included, runs as tasks on that one executor thread, which also drives \
         the reactor; the main thread only waits). CPU is counted over all the server's threads.\n"
    );
    let _ = writeln!(
        md,
        "nr = NextRush (`nextrush-tokio`, `nextrush-smol`, `nextrush-async-std`, compression and heartbeats \
         off); tung = tokio-tungstenite 0.30; at = async-tungstenite 0.35 (tungstenite 0.30). c = connections, \
         k = messages in flight per connection. CPU/msg nr÷other = server CPU per message of NextRush divided \
         by that of the tungstenite server on the same runtime: < 1 NextRush cheaper, > 1 dearer; in \
         parentheses the lowest and highest ratio of a single repetition (the two runs next to each other).\n"
    );

    // Summary: the ratios.
    md.push_str("## CPU per message, NextRush ÷ tungstenite on the same runtime\n\n| c | size | k |");
    let mut rule = String::from("|---:|---:|---:|");
    for p in &pairs {
        let _ = write!(md, " {} nr÷{} |", p.0, other_short(p));
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "\n{rule}");
    for (cell, runs) in &rows {
        md.push_str(&cell.table_columns());
        for p in 0..pairs.len() {
            let _ = write!(md, " {} |", pair_ratio(runs, p));
        }
        md.push('\n');
    }

    // Efficiency of each server across runtimes (same run, so comparable as ratios too).
    md.push_str("\n## msg/CPU-s of every server\n\n| c | size | k |");
    let mut rule = String::from("|---:|---:|---:|");
    for p in &pairs {
        let _ = write!(md, " nr {} |", p.0);
        rule.push_str("---:|");
    }
    for p in &pairs {
        let _ = write!(md, " {} {} |", other_short(p), p.0);
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "\n{rule}");
    for (cell, runs) in &rows {
        md.push_str(&cell.table_columns());
        for side in 0..2 {
            for p in 0..pairs.len() {
                let a = Agg::of(&runs[2 * p + side]);
                let _ = write!(md, " {} |", a.map(|a| fmt_rate(a.per_cpu)).unwrap_or("—".into()));
            }
        }
        md.push('\n');
    }

    // Detail per runtime.
    for (p, pair) in pairs.iter().enumerate() {
        let o = other_short(pair);
        let _ = writeln!(
            md,
            "\n## {}: `{}` vs `{}`\n\n| c | size | k | nr msg/s | {o} msg/s | nr msg/CPU-s | {o} msg/CPU-s | CPU% nr/{o} | CPU/msg nr÷{o} |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            pair.0, pair.1, pair.2
        );
        for (cell, runs) in &rows {
            let (a, b) = (Agg::of(&runs[2 * p]), Agg::of(&runs[2 * p + 1]));
            let f = |m: Option<Agg>, g: fn(Agg) -> String| m.map(g).unwrap_or("—".into());
            let _ = writeln!(
                md,
                "{} {} | {} | {} | {} | {}/{} | {} |",
                cell.table_columns(),
                f(a, |m| fmt_rate(m.rate)),
                f(b, |m| fmt_rate(m.rate)),
                f(a, |m| fmt_rate(m.per_cpu)),
                f(b, |m| fmt_rate(m.per_cpu)),
                f(a, |m| format!("{:.0}", m.share * 100.0)),
                f(b, |m| format!("{:.0}", m.share * 100.0)),
                pair_ratio(runs, p),
            );
        }
    }

    if idle_n > 0 {
        let mut table = String::new();
        let mut ratios = Vec::new();
        for pair in &pairs {
            let mut per = [None, None];
            for (side, which) in [pair.1, pair.2].into_iter().enumerate() {
                let (before, after) = idle_rss(which, idle_n, settle, 0);
                // Both readings only when all connections came up.
                let r = after.map(|after| (before, after));
                let b = r.map(|(before, after)| (after as f64 - before as f64) / idle_n as f64);
                eprintln!("{which:>27}: RSS {r:?}, {:.0} bytes per idle connection", b.unwrap_or(f64::NAN));
                let (before, after) = r.unwrap_or((0, 0));
                let _ = writeln!(
                    table,
                    "| {} | {which} | {} | {} | {} |",
                    pair.0,
                    mib(before),
                    r.map(|_| mib(after)).unwrap_or("failed".into()),
                    b.map(|b| format!("{b:.0}")).unwrap_or("—".into()),
                );
                per[side] = b;
            }
            ratios.push(format!("{} {}", pair.0, ratio(per[0], per[1])));
        }
        let _ = writeln!(
            md,
            "\n## Idle memory: {idle_n} idle connections\n\nServer RSS (VmRSS) before the connections and \
             {settle} s after all {idle_n} handshakes completed.\n\n\
             | runtime | impl | RSS before | RSS after | bytes / idle connection |\n|---|---|---:|---:|---:|\n{table}\
             \nBytes per idle connection, NextRush ÷ tungstenite: {}",
            ratios.join("; ")
        );
    }
    print_and_write(&out, &md);
}

/// `run --fanout`: `fanout_server` × `fanout`, one publisher to N subscribers.
mod fanout {
    use super::*;

    pub(super) const IMPLS: [&str; 3] = ["nextrush", "tungstenite", "tungstenite-mpsc"];

    struct Cfg {
        subscribers: usize,
        size: usize,
        duration: f64,
        warmup: f64,
        threads: usize,
        rate: String,
    }

    #[derive(Clone, Debug, Default)]
    struct Run {
        rate: f64,
        deliveries: u64,
        cpu_secs: f64,
        window_secs: f64,
        published: u64,
        lost: u64,
        duplicates: u64,
        missing: u64,
        stalled: bool,
        server: String,
    }

    impl Run {
        fn per_cpu(&self) -> f64 {
            if self.cpu_secs > 0.0 { self.deliveries as f64 / self.cpu_secs } else { f64::NAN }
        }
        fn cpu_share(&self) -> f64 {
            self.cpu_secs / self.window_secs
        }
        fn clean(&self) -> bool {
            self.lost == 0
                && self.duplicates == 0
                && self.missing == 0
                && !self.stalled
                && self.server.starts_with("dropped=0")
        }
    }

    fn measure(which: &str, window: usize, cfg: &Cfg) -> Option<Run> {
        let server = Server::start_bin("fanout_server", which, false);
        let load = Command::new(bin("fanout"))
            .args(["--url", &format!("ws://{}/room", server.addr)])
            .args(["--subscribers", &cfg.subscribers.to_string()])
            .args(["--size", &cfg.size.to_string()])
            .args(["--window", &window.to_string()])
            .args(["--rate", &cfg.rate])
            .args(["--duration", &cfg.duration.to_string()])
            .args(["--warmup", &cfg.warmup.to_string()])
            .args(["--threads", &cfg.threads.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn fanout: {e}")));
        let mut server_text = String::from("?");
        let run = drive(load, server, Duration::from_secs_f64(cfg.duration + cfg.warmup + 90.0), |line| {
            if let Some(text) = line.strip_prefix("server ") {
                server_text = text.to_owned();
            }
        });
        if !run.success {
            eprintln!("fanout failed for {which} window {window}");
            return None;
        }
        Some(Run {
            rate: run.field("rate")?,
            deliveries: run.field("deliveries")? as u64,
            cpu_secs: run.cpu_secs?,
            window_secs: run.field("seconds")?,
            published: run.field("published")? as u64,
            lost: run.field("lost")? as u64,
            duplicates: run.field("duplicates")? as u64,
            missing: run.field("missing")? as u64,
            stalled: run.field("stalled")? != 0.0,
            server: server_text,
        })
    }

    pub(super) fn run(args: &Args) {
        let impls: Vec<String> = args.list("impls", &IMPLS.map(str::to_owned));
        let windows: Vec<usize> = args.list("window", &[1, 16, 64, 256]);
        let cfg = Cfg {
            subscribers: args.get("subscribers", 1000),
            size: args.get("size", 64),
            duration: args.get("duration", 5.0),
            warmup: args.get("warmup", 1.0),
            threads: args.get("threads", 1),
            rate: args.str("rate").unwrap_or("max").to_owned(),
        };
        let repeat: usize = args.get("repeat", 3).max(1);
        let out = out_path(args, "fanout.md");
        let notes = machine_notes();
        let started = Instant::now();
        let total = windows.len() * impls.len() * repeat;
        let mut done = 0;
        // runs[window][impl] = the repetitions.
        let mut all: Vec<Vec<Vec<Run>>> = Vec::new();
        for &window in &windows {
            let mut runs: Vec<Vec<Run>> = vec![Vec::new(); impls.len()];
            for _ in 0..repeat {
                // Interleaved, so drifts in the machine's other load hit all alike.
                for (i, which) in impls.iter().enumerate() {
                    let r = measure(which, window, &cfg);
                    done += 1;
                    match &r {
                        Some(r) => eprintln!(
                            "[{done}/{total} {:.0}s] {which:>16} window={window:<4}: {:>9} deliveries/s, server CPU {:>5.1}%, \
                             {:>9} deliveries/CPU-s; published {} lost {} dup {} missing {} stalled {} server {}",
                            started.elapsed().as_secs_f64(),
                            fmt_rate(r.rate),
                            r.cpu_share() * 100.0,
                            fmt_rate(r.per_cpu()),
                            r.published,
                            r.lost,
                            r.duplicates,
                            r.missing,
                            r.stalled,
                            r.server,
                        ),
                        None => eprintln!("[{done}/{total}] {which} window {window}: FAILED"),
                    }
                    runs[i].extend(r);
                }
            }
            all.push(runs);
        }

        let mut md = String::from("# Fan-out benchmark: one publisher, one room\n\n");
        md.push_str(&notes);
        let rate_note = if cfg.rate == "max" {
            "closed loop: the publisher keeps `window` messages not yet received by every subscriber".to_owned()
        } else {
            format!("open loop at {} messages/s", cfg.rate)
        };
        let _ = writeln!(
            md,
            "- {} subscribers + 1 publisher on one room, {}-byte binary messages, {rate_note}; {} s measured after \
             {} s warm-up, {} run(s) per impl (median shown), a fresh server process per run, impls interleaved; \
             load generator (`fanout`): {} worker thread(s); servers: tokio current-thread runtime (1 thread), \
             no compression, no heartbeats\n",
            cfg.subscribers, cfg.size, cfg.duration, cfg.warmup, repeat, cfg.threads
        );
        let _ = writeln!(
            md,
            "deliveries/s = messages received per second, summed over all subscribers; deliveries/CPU-s = deliveries \
             per second of server CPU (utime+stime from /proc); CPU% = server CPU use in the window (100% = its one \
             thread busy). nr÷ = NextRush's figure divided by this impl's (> 1: NextRush better). Checked = every \
             run had no lost, duplicated or missing message and the server reported `dropped=0`.\n"
        );
        let nr = impls.iter().position(|i| i == "nextrush");
        let med = |runs: &[Run], f: &dyn Fn(&Run) -> f64| -> Option<f64> {
            (!runs.is_empty()).then(|| median(runs.iter().map(f).collect()))
        };
        md.push_str(
            "| window | impl | deliveries/s | deliveries/CPU-s | CPU% | nr÷ deliveries/s | nr÷ deliveries/CPU-s | checked |\n\
             |---:|---|---:|---:|---:|---:|---:|---|\n",
        );
        for (w, runs) in windows.iter().zip(&all) {
            for (i, which) in impls.iter().enumerate() {
                let r = &runs[i];
                let rate = med(r, &|x| x.rate);
                let per = med(r, &|x| x.per_cpu());
                let share = med(r, &|x| x.cpu_share() * 100.0);
                let (rr, rp) = match nr {
                    Some(n) if n != i => {
                        (ratio(med(&runs[n], &|x| x.rate), rate), ratio(med(&runs[n], &|x| x.per_cpu()), per))
                    }
                    _ => ("".into(), "".into()),
                };
                let checked = if r.is_empty() {
                    "no run".to_owned()
                } else if r.iter().all(Run::clean) {
                    format!("yes ({}/{})", r.len(), repeat)
                } else {
                    "**no**, see runs".to_owned()
                };
                let _ = writeln!(
                    md,
                    "| {w} | {which} | {} | {} | {} | {rr} | {rp} | {checked} |",
                    rate.map(fmt_rate).unwrap_or("—".into()),
                    per.map(fmt_rate).unwrap_or("—".into()),
                    share.map(|s| format!("{s:.0}")).unwrap_or("—".into()),
                );
            }
        }
        md.push_str(
            "\nEvery run:\n\n| window | impl | run | deliveries/s | deliveries/CPU-s | CPU% | published | lost | dup | missing | stalled | server |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
        );
        for (w, runs) in windows.iter().zip(&all) {
            for (i, which) in impls.iter().enumerate() {
                for (k, r) in runs[i].iter().enumerate() {
                    let _ = writeln!(
                        md,
                        "| {w} | {which} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | `{}` |",
                        k + 1,
                        fmt_rate(r.rate),
                        fmt_rate(r.per_cpu()),
                        r.cpu_share() * 100.0,
                        r.published,
                        r.lost,
                        r.duplicates,
                        r.missing,
                        if r.stalled { "yes" } else { "no" },
                        r.server,
                    );
                }
            }
        }
        print_and_write(&out, &md);
    }
}
