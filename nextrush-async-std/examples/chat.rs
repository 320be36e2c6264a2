//! Chat with rooms, on async-std: the same server as the tokio example.
//!
//! `cargo run --release -p nextrush-async-std --example chat [-- --addr 127.0.0.1:3000]`

#[path = "../../shared-examples/chat.rs"]
mod chat;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = chat::Args::parse()?;
    async_std::task::block_on(chat::run::<nextrush_async_std::AsyncStd>(args))
}
