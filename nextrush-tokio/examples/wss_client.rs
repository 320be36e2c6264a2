//! A `wss://` client: sends text and binary messages to an echo server and
//! checks every echo (the interop check of `.ci/interop-tls.sh`).
//!
//! `cargo run -p nextrush-tokio --features rustls --example wss_client -- --url wss://localhost:9443/ --ca ca.pem`
//!
//! Without `--ca`, the system's root certificates are trusted.

#[path = "../../shared-examples/wss_client.rs"]
mod wss_client;

fn main() -> std::process::ExitCode {
    let args = match wss_client::Args::parse() {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    wss_client::report(runtime.block_on(wss_client::run::<nextrush_tokio::Tokio>(args)))
}
