//! The Autobahn|Testsuite client behind each adapter's `autobahn_client`
//! example, written once for every runtime:
//! `autobahn_client --url ws://127.0.0.1:9001 --agent NAME`. Runs every case
//! of a fuzzing server (getCaseCount, runCase with echo, updateReports).

use nextrush_driver::{Client, ClientOptions, Error, Runtime};

/// Command-line arguments.
pub(crate) struct Args {
    url: String,
    agent: String,
}

impl Args {
    /// Parses `--url` (default `$AUTOBAHN_URL`) and `--agent`.
    pub(crate) fn parse(default_agent: &str) -> Result<Self, String> {
        let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".to_owned());
        let mut parsed = Self { url, agent: default_agent.to_owned() };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--url", Some(value)) => parsed.url = value,
                ("--agent", Some(value)) => parsed.agent = value,
                _ => return Err(format!("usage: autobahn_client --url URL --agent NAME (got {arg})")),
            }
        }
        Ok(parsed)
    }
}

/// Runs every case, then asks for the report.
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args { url, agent } = args;
    let client = Client::<R>::new(ClientOptions::default().max_message_size(64 << 20).ping_interval(None));
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

async fn run_case<R: Runtime>(client: &Client<R>, url: &str) -> Result<(), Error> {
    let mut ws = client.connect(url).await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}
