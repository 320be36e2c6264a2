//! The `wss_client` example of each adapter, written once for every runtime
//! (needs the adapter's `rustls` feature):
//! `wss_client --url wss://HOST:PORT/PATH [--ca FILE] [--count N] [--size BYTES]`.
//!
//! Connects (trusting the PEM CA file given with `--ca`, else the system's
//! root certificates), sends `N` text messages and `N` binary messages of
//! `BYTES` bytes, checks that each comes back unchanged, closes, and prints
//! `ok: ...`. Any failure prints `error: ...` and exits with status 1.

use std::sync::Arc;

use nextrush_driver::tls::rustls::ClientConfig;
use nextrush_driver::{Client, ClientOptions, CloseCode, Message, Runtime, TlsConnect};

/// Command-line arguments.
pub(crate) struct Args {
    url: String,
    ca: Option<String>,
    count: usize,
    size: usize,
}

const USAGE: &str = "usage: wss_client --url wss://HOST:PORT/PATH [--ca FILE] [--count N] [--size BYTES]";

impl Args {
    /// Parses the command line.
    pub(crate) fn parse() -> Result<Self, String> {
        let mut parsed = Self { url: String::new(), ca: None, count: 3, size: 100_000 };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let value = args.next();
            let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse().ok());
            match (arg.as_str(), &value) {
                ("--url", Some(v)) => parsed.url.clone_from(v),
                ("--ca", Some(v)) => parsed.ca = Some(v.clone()),
                ("--count", Some(_)) => parsed.count = number(&value).ok_or(USAGE)?,
                ("--size", Some(_)) => parsed.size = number(&value).ok_or(USAGE)?,
                _ => return Err(format!("{USAGE} (got {arg})")),
            }
        }
        if parsed.url.is_empty() {
            return Err(USAGE.to_owned());
        }
        Ok(parsed)
    }
}

/// Runs the exchange; `Err` with the reason on any failure.
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<String, Box<dyn std::error::Error>>
where
    Arc<ClientConfig>: TlsConnect<R::TcpStream>,
{
    let mut client = Client::<R>::new(ClientOptions::default());
    if let Some(ca) = &args.ca {
        let roots = nextrush_driver::tls::roots_from_pem_file(ca)?;
        client = client.with_tls(nextrush_driver::tls::client_config(roots)?);
    }
    let mut ws = client.connect(&args.url).await?;
    let binary: Vec<u8> = (0..args.size).map(|i| (i % 251) as u8).collect();
    for i in 0..args.count {
        let text = Message::text(format!("hello {i} from nextrush"));
        ws.send(text.clone()).await?;
        ws.send(Message::binary(binary.clone())).await?;
        for expected in [text, Message::binary(binary.clone())] {
            match ws.recv().await? {
                Some(got) if got == expected => {}
                Some(got) => return Err(format!("echo differs: sent {expected:?}, got {got:?}").into()),
                None => return Err("connection closed before the echo".into()),
            }
        }
    }
    ws.close(CloseCode::NORMAL, "done").await?;
    Ok(format!(
        "{} text and {} binary messages of {} bytes echoed over {}",
        args.count, args.count, args.size, args.url
    ))
}

/// Runs and reports; the process's exit status.
pub(crate) fn report(outcome: Result<String, Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match outcome {
        Ok(summary) => {
            println!("ok: {summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            println!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
