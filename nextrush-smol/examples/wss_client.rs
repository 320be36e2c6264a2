//! A `wss://` client: sends text and binary messages to an echo server and
//! checks every echo (the interop check of `.ci/interop-tls.sh`).
//!
//! `cargo run -p nextrush-smol --features rustls --example wss_client -- --url wss://localhost:9443/ --ca ca.pem`
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
    wss_client::report(smol::block_on(wss_client::run::<nextrush_smol::Smol>(args)))
}
