//! Runs every case of an Autobahn|Testsuite fuzzing server against our client.
//!
//! `cargo run --release -p nextrush-async-std --example autobahn_client -- --url ws://127.0.0.1:9001 --agent nextrush-async-std`

#[path = "../../shared-examples/autobahn_client.rs"]
mod autobahn_client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = autobahn_client::Args::parse("nextrush-async-std")?;
    async_std::task::block_on(autobahn_client::run::<nextrush_async_std::AsyncStd>(args))
}
