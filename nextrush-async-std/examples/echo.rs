//! Echo server: every text and binary message comes back.
//!
//! `cargo run --release -p nextrush-async-std --example echo -- --addr 127.0.0.1:9001 [--protocols a,b]`
//!
//! `wss://`: `cargo run --release -p nextrush-async-std --features rustls --example echo -- --tls-cert cert.pem --tls-key key.pem`
//!
//! Compression on, messages up to 64 MiB.

#[path = "../../shared-examples/echo.rs"]
mod echo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = echo::Args::parse()?;
    async_std::task::block_on(echo::run::<nextrush_async_std::AsyncStd>(args))
}
