//! Helpers shared by the benchmark binaries: argument parsing, `/proc`
//! readings, file-descriptor limits, the servers' runtime and start line.

use std::collections::HashMap;
use std::str::FromStr;

/// `--key value` pairs and bare `--flag`s.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses `std::env::args()`. `flag_names` are the options that take no value.
    pub fn parse(flag_names: &[&str]) -> Self {
        let mut out = Self::default();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let Some(key) = arg.strip_prefix("--") else {
                die(&format!("unexpected argument {arg:?}"));
            };
            if let Some((k, v)) = key.split_once('=') {
                out.values.insert(k.to_owned(), v.to_owned());
            } else if flag_names.contains(&key) {
                out.flags.push(key.to_owned());
            } else {
                let Some(v) = it.next() else { die(&format!("--{key} needs a value")) };
                out.values.insert(key.to_owned(), v);
            }
        }
        out
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| die(&format!("bad value for --{name}: {v:?}"))),
        }
    }

    /// A comma-separated list.
    pub fn list<T: FromStr + Clone>(&self, name: &str, default: &[T]) -> Vec<T> {
        match self.values.get(name) {
            None => default.to_vec(),
            Some(v) => v
                .split(',')
                .map(|x| x.trim().parse().unwrap_or_else(|_| die(&format!("bad value in --{name}: {x:?}"))))
                .collect(),
        }
    }
}

pub fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// What a server under test returns: it serves until an error.
pub type BoxResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs a server under test on a tokio current-thread runtime (the one
/// thread every server is measured on); an error ends the process via `die`.
pub fn serve_on_current_thread(server: impl Future<Output = BoxResult>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(server) {
        die(&e.to_string());
    }
}

/// A server's `listening on ADDR` line, which `run` waits for to learn its port.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    std::io::stdout().flush().ok();
}

/// Raises RLIMIT_NOFILE: to 65536 if allowed (root), else the soft limit to
/// the hard one. Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let want = libc::rlimit { rlim_cur: 65536.max(lim.rlim_max), rlim_max: 65536.max(lim.rlim_max) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Clock ticks per second for `/proc/PID/stat` times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of a process, in bytes (VmRSS).
pub fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The implementations under test, in table order.
pub const IMPLS: [&str; 3] = ["nextrush", "fastwebsockets", "tungstenite"];

/// The minimal RFC 6455 client shared by `load` and `fanout`: URL parsing,
/// the opening handshake, opening many connections; over TCP (`ws://`) or
/// TLS over TCP (`wss://`, tokio-rustls trusting the bench CA of [`tls`](super::tls)).
pub mod client {
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;

    use super::die;

    /// A connection's byte stream: TCP, or TLS over TCP. Writers flush after
    /// each batch (a no-op for TCP; TLS needs it to send its records).
    pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}
    pub type BoxStream = Box<dyn Stream>;

    pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// The head of a masked binary frame of `size` payload bytes (mask key
    /// `MASK` included), with room reserved for the payload.
    #[must_use]
    pub fn masked_binary_head(size: usize) -> Vec<u8> {
        let mut f = Vec::with_capacity(size + 14);
        f.push(0x82);
        if size < 126 {
            f.push(0x80 | size as u8);
        } else if size <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(size as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(size as u64).to_be_bytes());
        }
        f.extend_from_slice(&MASK);
        f
    }

    pub fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    pub struct Target {
        pub addr: String,
        pub host_header: String,
        pub path: String,
        /// For `wss://`: the connector and the server name to verify.
        pub tls: Option<(TlsConnector, ServerName<'static>)>,
    }

    /// `ws://HOST:PORT[/path]` or `wss://HOST:PORT[/path]`.
    pub fn parse_url(url: &str) -> Target {
        let (rest, secure) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => die("--url must start with ws:// or wss://"),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let tls = secure.then(|| {
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name).to_owned();
            let name = ServerName::try_from(name).unwrap_or_else(|_| die("bad host name in --url"));
            (TlsConnector::from(super::tls::client()), name)
        });
        Target { addr: host.to_owned(), host_header: host.to_owned(), path: path.to_owned(), tls }
    }

    /// TCP connect (and TLS handshake for `wss://`) plus opening handshake;
    /// returns the stream and any bytes that followed the 101 response.
    pub async fn connect(t: &Target) -> std::io::Result<(BoxStream, Vec<u8>)> {
        let tcp = TcpStream::connect(&t.addr).await?;
        tcp.set_nodelay(true)?;
        let mut s: BoxStream = match &t.tls {
            None => Box::new(tcp),
            Some((connector, name)) => Box::new(connector.connect(name.clone(), tcp).await?),
        };
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            t.path, t.host_header
        );
        s.write_all(req.as_bytes()).await?;
        s.flush().await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed during handshake"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]);
                if !head.starts_with("HTTP/1.1 101") || !head.contains(ACCEPT) {
                    return Err(std::io::Error::other(format!("handshake refused: {head}")));
                }
                return Ok((s, buf[end + 4..].to_vec()));
            }
            if buf.len() > 16 * 1024 {
                return Err(std::io::Error::other("handshake response too long"));
            }
        }
    }

    /// Opens `n` connections, at most 128 handshakes at a time.
    pub async fn connect_all(t: &Arc<Target>, n: usize) -> Vec<(BoxStream, Vec<u8>)> {
        let sem = Arc::new(tokio::sync::Semaphore::new(128));
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let t = t.clone();
            let sem = sem.clone();
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                let mut tries = 0;
                loop {
                    match connect(&t).await {
                        Ok(c) => return c,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("connect failed ({e}), retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => die(&format!("connect: {e}")),
                    }
                }
            }));
        }
        let mut out = Vec::with_capacity(n);
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
/// `run --runtimes`: for each runtime, its name, NextRush's adapter for it and
/// the tungstenite server on the same runtime (`echo_server --impl` names).
pub const RUNTIME_PAIRS: [(&str, &str, &str); 3] = [
    ("tokio", "nextrush", "tungstenite"),
    ("smol", "nextrush-smol", "async-tungstenite-smol"),
    ("async-std", "nextrush-async-std", "async-tungstenite-async-std"),
];

/// TLS material for the wss rows (`run --tls`): a CA and a server certificate
/// for `localhost` and `127.0.0.1`, made with rcgen once and kept in
/// `target/bench-tls/`, so that `echo_server --tls` and `load`, separate
/// processes, share it. Server and client configurations come from
/// NextRush's own helpers (ring provider, ALPN `http/1.1`), and every server
/// under test gets the very same `ServerConfig`.
pub mod tls {
    use std::path::PathBuf;
    use std::sync::Arc;

    use nextrush_tokio::tls::rustls::pki_types::pem::PemObject;
    use nextrush_tokio::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use nextrush_tokio::tls::rustls::{ClientConfig, RootCertStore, ServerConfig};
    use nextrush_tokio::tls::{client_config, server_config};

    use super::die;

    fn dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-tls"))
    }

    /// Makes the CA and the server certificate unless they exist.
    pub fn ensure() {
        let dir = dir();
        if dir.join("server.key").exists() {
            return;
        }
        let made = (|| -> Result<(), Box<dyn std::error::Error>> {
            use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
            let mut ca = CertificateParams::new(Vec::<String>::new())?;
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name.push(DnType::CommonName, "nextrush bench CA");
            let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
            let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
            let key = KeyPair::generate()?;
            let cert = leaf.signed_by(&key, &ca)?;
            // Written to a private directory, then moved in, the key last:
            // its presence means the set is complete.
            let tmp = dir.join(format!("tmp-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            std::fs::write(tmp.join("ca.pem"), ca.pem())?;
            std::fs::write(tmp.join("server.pem"), cert.pem())?;
            std::fs::write(tmp.join("server.key"), key.serialize_pem())?;
            for name in ["ca.pem", "server.pem", "server.key"] {
                std::fs::rename(tmp.join(name), dir.join(name))?;
            }
            std::fs::remove_dir(&tmp)?;
            Ok(())
        })();
        if let Err(e) = made {
            die(&format!("making TLS material in {}: {e}", dir.display()));
        }
    }

    /// The servers' configuration (ring, TLS 1.2/1.3, ALPN `http/1.1`).
    pub fn server() -> Arc<ServerConfig> {
        ensure();
        let dir = dir();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .and_then(|certs| certs.collect())
            .unwrap_or_else(|e| die(&format!("server.pem: {e}")));
        let key =
            PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap_or_else(|e| die(&format!("server.key: {e}")));
        server_config(chain, key).unwrap_or_else(|e| die(&format!("server config: {e}")))
    }

    /// The load generator's configuration: trusts the bench CA only.
    pub fn client() -> Arc<ClientConfig> {
        ensure();
        let ca = CertificateDer::from_pem_file(dir().join("ca.pem")).unwrap_or_else(|e| die(&format!("ca.pem: {e}")));
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap_or_else(|e| die(&format!("ca.pem: {e}")));
        client_config(roots).unwrap_or_else(|e| die(&format!("client config: {e}")))
    }
}
