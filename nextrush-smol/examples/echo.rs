//! Echo server: every text and binary message comes back.
//!
//! `cargo run --release -p nextrush-smol --example echo -- --addr 127.0.0.1:9001 [--protocols a,b]`
//!
//! `wss://`: `cargo run --release -p nextrush-smol --features rustls --example echo -- --tls-cert cert.pem --tls-key key.pem`
//!
//! Compression on, messages up to 64 MiB.

#[path = "../../shared-examples/echo.rs"]
mod echo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = echo::Args::parse()?;
    smol::block_on(echo::run::<nextrush_smol::Smol>(args))
}
