//! Echo server: every text and binary message comes back.
//!
//! `cargo run --release -p nextrush-tokio --example echo -- --addr 127.0.0.1:9001 [--protocols a,b]`
//!
//! `wss://`: `cargo run --release -p nextrush-tokio --features rustls --example echo -- --tls-cert cert.pem --tls-key key.pem`
//!
//! Compression on, messages up to 64 MiB, one worker thread.

#[path = "../../shared-examples/echo.rs"]
mod echo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = echo::Args::parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(echo::run::<nextrush_tokio::Tokio>(args))
}
