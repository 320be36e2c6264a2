//! `wss://` on every runtime: the same tests, compiled against each
//! adapter's own names (`nextrush_tokio::App`, `nextrush_smol::App`, ...)
//! with its `rustls` feature, and a CA made afresh for each test with rcgen.
//!
//! * echo over wss (DNS name and IP address, large messages);
//! * a client that does not trust the CA is refused, with a TLS error on
//!   both sides, and the server goes on serving;
//! * a certificate for another host name is refused;
//! * plain `ws://` to the TLS port and `wss://` to a plain port fail clearly
//!   and quickly on both sides;
//! * a peer that opens TCP and says nothing is dropped at the handshake
//!   timeout;
//! * the reconnecting client works over wss across a server restart on the
//!   same port;
//! * the default client trusts the system's roots (`SSL_CERT_FILE` pointed
//!   at the test CA, in a child process), and without any roots fails with a
//!   TLS error that says so while `ws://` still works.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nextrush_tokio::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use nextrush_tokio::tls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use nextrush_tokio::tls::{client_config, server_config};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// How long any one step may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(10);

/// A throwaway certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate");
        Self { issuer }
    }

    /// A client configuration trusting this CA only.
    fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("CA certificate as a root");
        client_config(roots).expect("client configuration")
    }

    /// A server configuration with a certificate for `names` (DNS names or
    /// IP addresses) signed by this CA.
    fn server(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, "nextrush test server");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        server_config(chain, key).expect("server configuration")
    }
}

impl Ca {
    /// Writes `ca.pem`, and `server.pem` + `server.key` for `names`, to `dir`.
    fn write_pem(&self, dir: &Path, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("leaf parameters");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        std::fs::create_dir_all(dir).expect("PEM directory");
        std::fs::write(dir.join("ca.pem"), self.issuer.pem()).expect("write ca.pem");
        std::fs::write(dir.join("server.pem"), cert.pem()).expect("write server.pem");
        std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write server.key");
    }
}

/// Set in a child test process: the test it is to run.
const CHILD: &str = "NEXTRUSH_TLS_CHILD";
/// Set in a child test process: where the PEM files are.
const CHILD_DIR: &str = "NEXTRUSH_TLS_DIR";

/// Runs test `name` again in a child process whose system roots are
/// `SSL_CERT_FILE=ca.pem` of a fresh CA (`installed`) or a missing file, with
/// the CA's PEM files in [`CHILD_DIR`]. Returns the directory in the child
/// (which then runs the test's body), `None` in the parent (after checking
/// that the child passed).
fn in_child_with_roots(name: &str, installed: bool) -> Option<PathBuf> {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        return Some(PathBuf::from(std::env::var_os(CHILD_DIR).expect("the PEM directory")));
    }
    let dir = std::env::temp_dir().join(format!("nextrush-tls-{}-{}", std::process::id(), name.replace("::", "-")));
    Ca::new("system CA").write_pem(&dir, LOCAL);
    let roots = dir.join(if installed { "ca.pem" } else { "missing.pem" });
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--test-threads=1"])
        .env(CHILD, name)
        .env(CHILD_DIR, &dir)
        .env("SSL_CERT_FILE", roots)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run the child test");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "child {name} failed:\n{report}");
    assert!(stdout.contains("1 passed"), "child {name} ran no test:\n{report}");
    None
}

/// The names a local test server's certificate is for.
const LOCAL: &[&str] = &["localhost", "127.0.0.1"];

/// Server error events, as text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, message: String) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(message);
    }

    fn find(&self, needle: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|m| m.contains(needle)).cloned()
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A pseudo-random payload (so that compression leaves it large).
fn payload(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// tokio: a current-thread runtime built per test.
mod tokio_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(future));
    }

    pub(crate) async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        tokio::time::timeout(limit, future).await.ok()
    }
}

/// async-std: `block_on`, tasks on its global executor.
mod async_std_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(future));
    }

    pub(crate) async fn sleep(duration: Duration) {
        async_std::task::sleep(duration).await;
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        async_std::future::timeout(limit, future).await.ok()
    }
}

/// smol: `block_on`, tasks on its global executor.
mod smol_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }

    pub(crate) async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        let expired = async {
            smol::Timer::after(limit).await;
            None
        };
        smol::future::or(async { Some(future.await) }, expired).await
    }
}

macro_rules! tls_suite {
    ($(#[$doc:meta])* $module:ident, $krate:ident, $exec:ident) => {
        $(#[$doc])*
        mod $module {
            use std::net::SocketAddr;
            use std::sync::Arc;
            use std::time::Duration;

            use $krate::tls::rustls::ServerConfig;
            use $krate::tls::server_config_from_pem_files;
            use $krate::{
                App, Client, CloseCode, Error, Message, Options, ReconnectEvent, ReconnectOptions,
                ReconnectingClient, ServerEvent,
            };

            use super::$exec as exec;
            use super::{Ca, Events, LIMIT, LOCAL, in_child_with_roots, payload};

            /// A running server and the error events it reported.
            struct Server {
                app: App,
                addr: SocketAddr,
                events: Events,
            }

            impl Server {
                fn url(&self, host: &str) -> String {
                    format!("wss://{host}:{}/echo", self.addr.port())
                }

                /// Waits until an error event contains `needle`.
                async fn error_event(&self, needle: &str) -> String {
                    let found = exec::timeout(LIMIT, async {
                        loop {
                            if let Some(message) = self.events.find(needle) {
                                return message;
                            }
                            exec::sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    found.unwrap_or_else(|| panic!("no server error with {needle:?}; got {:?}", self.events.all()))
                }
            }

            /// An echo app on `addr`, over TLS with `tls`, or plain without.
            /// `None` if `addr` cannot be bound (yet).
            async fn start(addr: &str, tls: Option<Arc<ServerConfig>>, options: Options) -> Option<Server> {
                let app = App::new(options);
                app.ws("/echo", |mut ws, _req| async move {
                    while let Some(message) = ws.recv().await? {
                        ws.send(message).await?;
                    }
                    Ok::<_, Error>(())
                })
                .expect("route");
                let events = Events::default();
                let hook = events.clone();
                app.on_event(move |event| {
                    if let ServerEvent::Error { message, .. } = event {
                        hook.push(message.clone());
                    }
                });
                let listener = app.bind(addr).await.ok()?;
                let addr = listener.0.local_addr().expect("local address");
                let serving = app.clone();
                exec::spawn(async move {
                    let served = match tls {
                        Some(tls) => serving.serve_tls(listener, tls).await,
                        None => serving.serve(listener).await,
                    };
                    served.expect("the accept loop ends only at shutdown");
                });
                Some(Server { app, addr, events })
            }

            async fn start_tls(config: Arc<ServerConfig>) -> Server {
                start("127.0.0.1:0", Some(config), Options::default()).await.expect("bind a loopback port")
            }

            /// Connects `client` to `url` and checks an echo round trip.
            async fn echo_round_trip(client: &Client, url: &str) {
                let mut ws = client.connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
                ws.send("hello over TLS").await.expect("send");
                assert_eq!(ws.recv().await.expect("recv"), Some(Message::text("hello over TLS")));
                ws.close(CloseCode::NORMAL, "done").await.expect("close");
            }

            async fn expect_tls_error(client: &Client, url: &str, needle: &str) -> Error {
                let attempt = exec::timeout(LIMIT, client.connect(url)).await;
                let error = match attempt {
                    None => panic!("connect {url} hung"),
                    Some(Ok(_)) => panic!("connect {url} succeeded; expected a TLS error"),
                    Some(Err(error)) => error,
                };
                assert!(matches!(error, Error::Tls(_)), "expected Error::Tls, got {error:?}");
                assert!(error.to_string().contains(needle), "expected {needle:?} in {error}");
                error
            }

            #[test]
            fn echo_over_wss() {
                exec::block_on(async {
                    let ca = Ca::new("echo CA");
                    let server = start_tls(ca.server(LOCAL)).await;
                    let client = Client::default().with_tls(ca.client());
                    echo_round_trip(&client, &server.url("localhost")).await;
                    echo_round_trip(&client, &server.url("127.0.0.1")).await;

                    // Messages far larger than a TLS record, both ways, back to back.
                    let mut ws = client.connect(&server.url("localhost")).await.expect("connect");
                    let big = payload(600 * 1024);
                    for _ in 0..3 {
                        ws.send(Message::binary(big.clone())).await.expect("send a large message");
                    }
                    for _ in 0..3 {
                        let echoed = exec::timeout(LIMIT, ws.recv()).await.expect("echo in time");
                        assert_eq!(echoed.expect("recv"), Some(Message::binary(big.clone())));
                    }
                    ws.close(CloseCode::NORMAL, "").await.expect("close");
                    assert!(server.events.all().is_empty(), "unexpected errors: {:?}", server.events.all());
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn untrusted_ca_is_refused_and_the_server_goes_on() {
                exec::block_on(async {
                    let ca = Ca::new("private CA");
                    let server = start_tls(ca.server(LOCAL)).await;
                    let url = server.url("localhost");

                    // The default client trusts the system's roots, not this CA
                    // (or finds no roots at all): a TLS error either way.
                    let error = exec::timeout(LIMIT, $krate::connect(&url)).await.expect("no hang").unwrap_err();
                    assert!(matches!(error, Error::Tls(_)), "expected Error::Tls, got {error:?}");

                    // A client trusting another CA: the precise reason.
                    let stranger = Client::default().with_tls(Ca::new("another CA").client());
                    expect_tls_error(&stranger, &url, "not signed by a CA this client trusts").await;
                    let event = server.error_event("does not trust this server's certificate").await;
                    assert!(event.starts_with("TLS handshake with 127.0.0.1:"), "{event}");
                    // Both refusals are counted (the first may still be on its way).
                    let counted = exec::timeout(LIMIT, async {
                        while server.app.stats().errors < 2 {
                            exec::sleep(Duration::from_millis(10)).await;
                        }
                    });
                    assert!(counted.await.is_some(), "{:?}", server.app.stats());

                    // Still serving.
                    echo_round_trip(&Client::default().with_tls(ca.client()), &url).await;
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn wrong_host_name_is_refused() {
                exec::block_on(async {
                    let ca = Ca::new("name CA");
                    let server = start_tls(ca.server(&["wrong.example"])).await;
                    let client = Client::default().with_tls(ca.client());
                    let error = expect_tls_error(&client, &server.url("localhost"), "not valid for").await;
                    assert!(error.to_string().contains("host name in the URL"), "{error}");
                    expect_tls_error(&client, &server.url("127.0.0.1"), "not valid for").await;
                    server.error_event("TLS handshake").await;
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn plain_ws_to_a_tls_port_fails_clearly() {
                exec::block_on(async {
                    let ca = Ca::new("port CA");
                    let server = start_tls(ca.server(LOCAL)).await;
                    let url = format!("ws://localhost:{}/echo", server.addr.port());
                    let error = expect_tls_error(&Client::default(), &url, "use wss://").await;
                    assert!(error.to_string().contains("answered with TLS"), "{error}");
                    let event = server.error_event("does not speak TLS").await;
                    assert!(event.contains("plain HTTP or ws:// sent to a TLS port"), "{event}");
                    echo_round_trip(&Client::default().with_tls(ca.client()), &server.url("localhost")).await;
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn wss_to_a_plain_port_fails_clearly() {
                exec::block_on(async {
                    let ca = Ca::new("plain CA");
                    let server = start("127.0.0.1:0", None, Options::default()).await.expect("bind");
                    let client = Client::default().with_tls(ca.client());
                    let error = expect_tls_error(&client, &server.url("localhost"), "does not speak TLS").await;
                    assert!(error.to_string().contains("is this a ws:// port?"), "{error}");
                    let event = server.error_event("handshake rejected with 400").await;
                    assert!(event.contains("wss:// sent to a plain ws:// port"), "{event}");
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn silent_peer_is_dropped_at_the_handshake_timeout() {
                exec::block_on(async {
                    let ca = Ca::new("timeout CA");
                    let options = Options::default().handshake_timeout(Duration::from_millis(300));
                    let server = start("127.0.0.1:0", Some(ca.server(LOCAL)), options).await.expect("bind");
                    // Opens TCP and says nothing.
                    let silent = std::net::TcpStream::connect(server.addr).expect("tcp connect");
                    let event = server.error_event("timed out").await;
                    assert!(event.starts_with("TLS handshake with"), "{event}");
                    drop(silent);
                    echo_round_trip(&Client::default().with_tls(ca.client()), &server.url("localhost")).await;
                    server.app.shutdown(Duration::from_millis(200)).await;
                });
            }

            #[test]
            fn default_client_trusts_the_system_roots() {
                let name = concat!(stringify!($module), "::default_client_trusts_the_system_roots");
                let Some(dir) = in_child_with_roots(name, true) else { return };
                exec::block_on(async {
                    let config = server_config_from_pem_files(dir.join("server.pem"), dir.join("server.key"))
                        .expect("server configuration from PEM files");
                    let server = start_tls(config).await;
                    let mut ws = $krate::connect(&server.url("localhost")).await.expect("connect with system roots");
                    ws.send("trusted").await.expect("send");
                    assert_eq!(ws.recv().await.expect("recv"), Some(Message::text("trusted")));
                    server.app.shutdown(Duration::from_millis(100)).await;
                });
            }

            #[test]
            fn no_system_roots_is_a_clear_tls_error() {
                let name = concat!(stringify!($module), "::no_system_roots_is_a_clear_tls_error");
                let Some(dir) = in_child_with_roots(name, false) else { return };
                exec::block_on(async {
                    let config = server_config_from_pem_files(dir.join("server.pem"), dir.join("server.key"))
                        .expect("server configuration from PEM files");
                    let server = start_tls(config).await;
                    let error = exec::timeout(LIMIT, $krate::connect(&server.url("localhost")))
                        .await
                        .expect("no hang")
                        .expect_err("no roots, no trust");
                    assert!(matches!(error, Error::Tls(_)), "expected Error::Tls, got {error:?}");
                    assert!(error.to_string().contains("no system root certificates found"), "{error}");
                    assert!(error.to_string().contains("ca-certificates"), "{error}");
                    // ws:// does not care.
                    let plain = start("127.0.0.1:0", None, Options::default()).await.expect("bind");
                    let url = format!("ws://127.0.0.1:{}/echo", plain.addr.port());
                    let mut ws = $krate::connect(&url).await.expect("ws:// without roots");
                    ws.send("plain").await.expect("send");
                    assert_eq!(ws.recv().await.expect("recv"), Some(Message::text("plain")));
                    server.app.shutdown(Duration::from_millis(100)).await;
                    plain.app.shutdown(Duration::from_millis(100)).await;
                });
            }

            /// The next event that `want` accepts, skipping others.
            async fn next_event(
                live: &mut ReconnectingClient,
                want: impl Fn(&ReconnectEvent) -> bool,
            ) -> ReconnectEvent {
                let found = exec::timeout(LIMIT, async {
                    while let Some(event) = live.recv().await {
                        if want(&event) {
                            return Some(event);
                        }
                    }
                    None
                })
                .await;
                found.flatten().expect("the expected event in time")
            }

            #[test]
            fn reconnecting_client_over_wss_survives_a_server_restart() {
                exec::block_on(async {
                    let ca = Ca::new("reconnect CA");
                    let config = ca.server(LOCAL);
                    let server = start_tls(Arc::clone(&config)).await;
                    let addr = server.addr;
                    let mut options = ReconnectOptions::default();
                    options.backoff.initial = Duration::from_millis(50);
                    options.backoff.max = Duration::from_millis(200);
                    options.backoff.jitter = false;
                    options.max_attempts = None;
                    let client = Client::default().with_tls(ca.client());
                    let mut live = ReconnectingClient::connect(client, &server.url("localhost"), options);
                    next_event(&mut live, |e| matches!(e, ReconnectEvent::Connected { .. })).await;
                    live.send("before").await.expect("send");
                    let echo = next_event(&mut live, |e| matches!(e, ReconnectEvent::Message(_))).await;
                    assert_eq!(echo, ReconnectEvent::Message(Message::text("before")));

                    server.app.shutdown(Duration::from_millis(500)).await;
                    next_event(&mut live, |e| matches!(e, ReconnectEvent::Disconnected { .. })).await;

                    // The same port again, once the old listener is gone.
                    let restarted = exec::timeout(LIMIT, async {
                        loop {
                            let options = Options::default();
                            if let Some(server) = start(&addr.to_string(), Some(Arc::clone(&config)), options).await {
                                return server;
                            }
                            exec::sleep(Duration::from_millis(20)).await;
                        }
                    })
                    .await
                    .expect("rebind the same port");
                    next_event(&mut live, |e| matches!(e, ReconnectEvent::Connected { .. })).await;
                    live.send("after").await.expect("send");
                    let echo = next_event(&mut live, |e| matches!(e, ReconnectEvent::Message(_))).await;
                    assert_eq!(echo, ReconnectEvent::Message(Message::text("after")));
                    live.close().await;
                    restarted.app.shutdown(Duration::from_millis(200)).await;
                });
            }
        }
    };
}

tls_suite!(
    /// On `nextrush-tokio` (tokio-rustls).
    tokio_rt,
    nextrush_tokio,
    tokio_exec
);
tls_suite!(
    /// On `nextrush-async-std` (futures-rustls).
    async_std_rt,
    nextrush_async_std,
    async_std_exec
);
tls_suite!(
    /// On `nextrush-smol` (futures-rustls).
    smol_rt,
    nextrush_smol,
    smol_exec
);

/// tokio only: what the TLS session negotiated, seen from a raw tokio-rustls
/// client and from a custom acceptor; `accept_tls` on a listener of one's
/// own.
mod tokio_details {
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    use nextrush_tokio::tls::tokio_rustls::{TlsAcceptor, TlsConnector};
    use nextrush_tokio::tls::{ALPN_HTTP_11, ServerTlsStream, server_name};
    use nextrush_tokio::{App, Client, Error, Message, TlsAccept, TokioIo};

    use super::{Ca, LOCAL, tokio_exec as exec};

    #[test]
    fn alpn_is_http11_over_tls13() {
        exec::block_on(async {
            let ca = Ca::new("alpn CA");
            let app = App::default();
            let listener = app.bind("127.0.0.1:0").await.expect("bind");
            let port = listener.0.local_addr().expect("address").port();
            let serving = app.clone();
            let config = ca.server(LOCAL);
            exec::spawn(async move { serving.serve_tls(listener, config).await.expect("serve") });

            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
            let tls = TlsConnector::from(ca.client());
            let stream = tls.connect(server_name("localhost").expect("name"), tcp).await.expect("TLS handshake");
            let (_, session) = stream.get_ref();
            assert_eq!(session.alpn_protocol(), Some(ALPN_HTTP_11));
            assert_eq!(session.protocol_version(), Some(nextrush_tokio::tls::rustls::ProtocolVersion::TLSv1_3));
            app.shutdown(Duration::from_millis(100)).await;
        });
    }

    /// An acceptor that records the server name each client asked for.
    struct RecordSni {
        inner: TlsAcceptor,
        seen: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl TlsAccept<TokioIo<tokio::net::TcpStream>> for RecordSni {
        type Io = ServerTlsStream<tokio::net::TcpStream>;

        async fn accept(&self, stream: TokioIo<tokio::net::TcpStream>) -> io::Result<Self::Io> {
            let tls = TlsAccept::accept(&self.inner, stream).await?;
            let name = tls.0.get_ref().1.server_name().map(str::to_owned);
            self.seen.lock().unwrap_or_else(PoisonError::into_inner).push(name);
            Ok(tls)
        }
    }

    #[test]
    fn sni_is_the_url_host_and_custom_acceptors_work() {
        exec::block_on(async {
            let ca = Ca::new("sni CA");
            let app = App::default();
            app.ws("/", |ws, _req| async move {
                drop(ws);
                Ok::<_, Error>(())
            })
            .expect("route");
            let listener = app.bind("127.0.0.1:0").await.expect("bind");
            let port = listener.0.local_addr().expect("address").port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let acceptor = RecordSni { inner: TlsAcceptor::from(ca.server(LOCAL)), seen: Arc::clone(&seen) };
            let serving = app.clone();
            exec::spawn(async move { serving.serve_tls(listener, acceptor).await.expect("serve") });
            let client = Client::default().with_tls(ca.client());
            drop(client.connect(&format!("wss://localhost:{port}/")).await.expect("connect by name"));
            drop(client.connect(&format!("wss://127.0.0.1:{port}/")).await.expect("connect by address"));
            // An IP address is not sent as SNI (RFC 6066 §3).
            let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
            assert_eq!(seen, vec![Some("localhost".to_owned()), None]);
            app.shutdown(Duration::from_millis(100)).await;
        });
    }

    #[test]
    fn accept_tls_on_an_own_listener() {
        exec::block_on(async {
            let ca = Ca::new("own listener CA");
            let app = App::default();
            app.ws("/echo", |mut ws, _req| async move {
                while let Some(message) = ws.recv().await? {
                    ws.send(message).await?;
                }
                Ok::<_, Error>(())
            })
            .expect("route");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            let config = ca.server(LOCAL);
            let serving = app.clone();
            exec::spawn(async move {
                let (stream, peer) = listener.accept().await.expect("accept");
                serving.accept_tls(stream, Some(peer), &config).await;
            });
            let client = Client::default().with_tls(ca.client());
            let mut ws = client.connect(&format!("wss://localhost:{port}/echo")).await.expect("connect");
            ws.send("mine").await.expect("send");
            assert_eq!(ws.recv().await.expect("recv"), Some(Message::text("mine")));
            drop(ws);
            app.shutdown(Duration::from_millis(100)).await;
        });
    }
}
