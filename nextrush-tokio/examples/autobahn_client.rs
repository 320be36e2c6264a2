//! Runs every case of an Autobahn|Testsuite fuzzing server against our client.
//!
//! `cargo run --release -p nextrush-tokio --example autobahn_client -- --url ws://127.0.0.1:9001 --agent nextrush-tokio`

use nextrush_tokio::{Client, ClientOptions, Error};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".to_owned());
    let mut agent = "nextrush-tokio".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--url", Some(value)) => url = value,
            ("--agent", Some(value)) => agent = value,
            _ => return Err(format!("usage: autobahn_client --url URL --agent NAME (got {arg})").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(&url, &agent))
}

async fn run(url: &str, agent: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(ClientOptions::default().max_message_size(64 << 20).ping_interval(None));
    let mut ws = client.connect(&format!("{url}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await? {
        Some(message) => message.as_text().unwrap_or("0").trim().parse()?,
        None => return Err("no case count".into()),
    };
    drop(ws);
    println!("{count} cases");
    for case in 1..=count {
        if let Err(error) = run_case(&client, &format!("{url}/runCase?case={case}&agent={agent}")).await {
            // Many cases end the connection with an error on purpose.
            eprintln!("case {case}: {error}");
        }
    }
    let ws = client.connect(&format!("{url}/updateReports?agent={agent}")).await?;
    ws.closed().await;
    Ok(())
}

async fn run_case(client: &Client, url: &str) -> Result<(), Error> {
    let mut ws = client.connect(url).await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}
