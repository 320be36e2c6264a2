//! Live updates: pub/sub channels published from an axum app's HTTP
//! endpoint; axum hands WebSocket upgrades to NextRush.
//!
//! `cargo run --release -p nextrush-tokio --example live [-- --addr 127.0.0.1:3001]`,
//! open http://127.0.0.1:3001, then `curl -d 'hello' http://127.0.0.1:3001/publish/news`.

#[path = "../../shared-examples/live.rs"]
mod live;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = live::Args::parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(live::run(args))
}
