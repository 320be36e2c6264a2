//! Runs every case of an Autobahn|Testsuite fuzzing server against our client.
//!
//! `cargo run --release -p nextrush-smol --example autobahn_client -- --url ws://127.0.0.1:9001 --agent nextrush-smol`

#[path = "../../shared-examples/autobahn_client.rs"]
mod autobahn_client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = autobahn_client::Args::parse("nextrush-smol")?;
    smol::block_on(autobahn_client::run::<nextrush_smol::Smol>(args))
}
