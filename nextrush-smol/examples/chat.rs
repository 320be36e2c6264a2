//! Chat with rooms, on smol: the same server as the tokio example.
//!
//! `cargo run --release -p nextrush-smol --example chat [-- --addr 127.0.0.1:3000]`

#[path = "../../shared-examples/chat.rs"]
mod chat;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = chat::Args::parse()?;
    smol::block_on(chat::run::<nextrush_smol::Smol>(args))
}
