//! Chat with rooms: a page, JWT sign-in checked before the upgrade, user
//! lists, typing, history, private messages; one port for HTTP and WebSocket.
//!
//! `cargo run --release -p nextrush-tokio --example chat [-- --addr 127.0.0.1:3000]`,
//! then open http://127.0.0.1:3000 in two browser windows. `CHAT_SECRET`
//! sets the token secret (default: random at start).

#[path = "../../shared-examples/chat.rs"]
mod chat;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = chat::Args::parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(chat::run::<nextrush_tokio::Tokio>(args))
}
