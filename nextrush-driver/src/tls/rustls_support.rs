//! rustls helpers shared by every TLS flavour (tokio-rustls in the tokio
//! adapter, futures-rustls in [`compat`](crate::compat)): configurations,
//! the system's root certificates, PEM files, and clearer handshake errors.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use nextrush_proto::Role;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, InvalidMessage, RootCertStore, ServerConfig};

/// The ALPN protocol id NextRush offers and selects: a WebSocket opening
/// handshake is an HTTP/1.1 request (RFC 6455 §4.1).
pub const ALPN_HTTP_11: &[u8] = b"http/1.1";

/// The process-wide default crypto provider if one is installed, else ring's.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A client configuration that trusts `roots`, offers ALPN `http/1.1` and
/// sends no client certificate: for a private CA, put its certificate in
/// `roots`.
///
/// # Errors
/// The process's default crypto provider supports none of TLS 1.2 and 1.3.
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP_11.to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration presenting the certificate chain `certs` (leaf
/// first) with `key`, selecting ALPN `http/1.1`, without client
/// certificates.
///
/// # Errors
/// The key does not match the certificate or is of an unsupported kind.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![ALPN_HTTP_11.to_vec()];
    Ok(Arc::new(config))
}

/// [`server_config`] from PEM files: the certificate chain (leaf first) and
/// the private key (PKCS#8, PKCS#1 or SEC1), as `certbot` or `openssl` write
/// them.
///
/// # Errors
/// A file cannot be read, holds no certificate or key, or the key does not
/// fit the certificate; the message names the file.
pub fn server_config_from_pem_files(
    cert_file: impl AsRef<Path>,
    key_file: impl AsRef<Path>,
) -> io::Result<Arc<ServerConfig>> {
    let (cert_file, key_file) = (cert_file.as_ref(), key_file.as_ref());
    let pem_error = |file: &Path, e: rustls::pki_types::pem::Error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", file.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| pem_error(cert_file, e))?;
    if certs.is_empty() {
        let message = format!("{}: no PEM certificate in it", cert_file.display());
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| pem_error(key_file, e))?;
    server_config(certs, key).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The certificates of a PEM file (a private CA, a bundle) as trusted
/// roots, for [`client_config`].
///
/// # Errors
/// The file cannot be read, or holds no certificate rustls can use as a
/// root; the message names the file.
pub fn roots_from_pem_file(ca_file: impl AsRef<Path>) -> io::Result<RootCertStore> {
    let ca_file = ca_file.as_ref();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", ca_file.display())))?;
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        let message = format!("{}: no usable PEM certificate in it", ca_file.display());
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    Ok(roots)
}

/// The TLS server name for a URL host: a DNS name (sent as SNI and matched
/// against the certificate) or an IP address (matched against the
/// certificate's IP addresses; no SNI).
///
/// # Errors
/// `host` is neither (`InvalidInput`).
pub fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a valid TLS server name")))
}

/// The client configuration with the system's root certificates (see
/// [`SystemRoots`]): loaded on the first call, then shared.
///
/// # Errors
/// No root certificate could be loaded (`NotFound`, with what to do about
/// it); the next call tries again.
pub fn system_roots() -> io::Result<Arc<ClientConfig>> {
    static LOADED: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(config) = loaded.as_ref() {
        return Ok(Arc::clone(config));
    }
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        let detail = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
        let message = format!(
            "no system root certificates found{detail}: install the ca-certificates package, point \
             SSL_CERT_FILE at a PEM bundle, or give the client a rustls ClientConfig with Client::with_tls"
        );
        return Err(io::Error::new(io::ErrorKind::NotFound, message));
    }
    tracing::debug!(roots = added, "loaded the system's root certificates");
    let config = client_config(roots).map_err(io::Error::other)?;
    *loaded = Some(Arc::clone(&config));
    Ok(config)
}

/// Trust the operating system's root certificates, as found by
/// `rustls-native-certs` (the OpenSSL locations of the platform, or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`), loaded once on first use; ALPN
/// `http/1.1`.
///
/// The default TLS connector of the adapters' clients when their `rustls`
/// feature is on: `connect("wss://...")` works out of the box. Where the
/// system has no root certificates, `wss://` connections fail with a TLS
/// error saying so, and `ws://` is unaffected.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRoots;

/// Adds a hint to a rustls handshake error on `role`'s side, for the
/// mistakes people make: plain `ws://`/HTTP sent to a TLS port (or TLS to a
/// plain one), a certificate from an untrusted CA or for another host name.
/// Other errors pass through unchanged.
#[must_use]
pub fn explain(error: io::Error, role: Role) -> io::Error {
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return error;
    };
    let hint = match (tls, role) {
        (rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType), Role::Client) => {
            "the server does not speak TLS: is this a ws:// port?"
        }
        (rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType), Role::Server) => {
            "the client does not speak TLS: plain HTTP or ws:// sent to a TLS port?"
        }
        (rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer), Role::Client) => {
            "the server's certificate is not signed by a CA this client trusts; to trust a private CA, \
             give the client a rustls ClientConfig with Client::with_tls"
        }
        (
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ),
            Role::Client,
        ) => "the server's certificate is not valid for the host name in the URL",
        (
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate | AlertDescription::UnknownCA | AlertDescription::CertificateUnknown,
            ),
            Role::Server,
        ) => "the client does not trust this server's certificate",
        _ => return error,
    };
    io::Error::new(error.kind(), format!("{tls} ({hint})"))
}
