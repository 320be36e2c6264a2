//! Helpers shared by the benchmark binaries: argument parsing, `/proc`
//! readings, file-descriptor limits.

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

/// TLS material for the wss rows: a CA and a server certificate for
/// `localhost` and `127.0.0.1`, made with rcgen on first use and kept in
/// `target/bench-tls/` (so that `echo_server --tls` and `load --tls`,
/// separate processes, share it).
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
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!("tmp-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            std::fs::write(tmp.join("ca.pem"), ca.pem())?;
            std::fs::write(tmp.join("server.pem"), cert.pem())?;
            std::fs::write(tmp.join("server.key"), key.serialize_pem())?;
            // The key last: its presence means the set is complete.
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

    /// The server's configuration (ALPN http/1.1, ring), shared by every
    /// implementation under test.
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

    /// The load generator's configuration: trusts the bench CA.
    pub fn client() -> Arc<ClientConfig> {
        ensure();
        let ca = CertificateDer::from_pem_file(dir().join("ca.pem")).unwrap_or_else(|e| die(&format!("ca.pem: {e}")));
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap_or_else(|e| die(&format!("ca.pem: {e}")));
        client_config(roots).unwrap_or_else(|e| die(&format!("client config: {e}")))
    }
}
