//! Live updates: pub/sub channels behind an axum app. axum serves the HTTP
//! side and hands WebSocket upgrades to NextRush; anything that can reach
//! the `App` publishes — here a POST endpoint and a clock task.
//!
//! `live [--addr HOST:PORT]` (default `127.0.0.1:3001`):
//!
//! - `GET /` — a small page that subscribes to a channel and publishes to it.
//! - `GET /live/:channel` — the WebSocket: axum receives the request,
//!   `App::prepare_upgrade` decides (routing, origin, limits, extensions)
//!   and gives the 101, hyper's `OnUpgrade` gives the stream, and
//!   `App::serve_upgraded` runs the socket, which subscribes to `channel`.
//! - `POST /publish/:channel` with a text body — `app.publish(channel, body)`;
//!   answers `{"channel", "subscribers", "queued"}`.
//! - The `clock` channel gets the server time every second.
//!
//! ```text
//! curl -d 'hello' http://127.0.0.1:3001/publish/news
//! ```
//!
//! tokio only: axum runs on tokio.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use nextrush_tokio::{App, Options, Rejection, WebSocket};
use serde_json::json;

/// Command-line arguments.
pub(crate) struct Args {
    addr: String,
}

impl Args {
    /// Parses `--addr`.
    pub(crate) fn parse() -> Result<Self, String> {
        let mut parsed = Self { addr: "127.0.0.1:3001".to_owned() };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--addr", Some(value)) => parsed.addr = value,
                _ => return Err(format!("usage: live [--addr HOST:PORT] (got {arg})")),
            }
        }
        Ok(parsed)
    }
}

/// Serves until the process is stopped.
pub(crate) async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (router, app) = router()?;
    tokio::spawn(clock(app));
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("live updates on http://{}", listener.local_addr()?);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

/// The axum router, and the NextRush app it hands upgrades to.
///
/// Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`
/// (the upgrade handler reads the peer's address).
pub(crate) fn router() -> Result<(Router, App), Box<dyn std::error::Error>> {
    let app = App::new(Options::default().max_connections(10_000));
    app.ws("/live/:channel", subscriber)?;
    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/live/{channel}", get(upgrade))
        .route("/publish/{channel}", post(publish))
        .with_state(app.clone());
    Ok((router, app))
}

/// A socket on `/live/:channel`: subscribed until it closes. What it sends
/// is ignored (publishing is the POST endpoint's job).
async fn subscriber(mut ws: WebSocket, req: nextrush_tokio::Request) -> Result<(), nextrush_tokio::Error> {
    let channel = req.param("channel").unwrap_or("news").to_owned();
    drop(req);
    ws.subscribe(&channel)?;
    ws.send(json!({"type": "subscribed", "channel": channel}).to_string()).await?;
    while ws.recv().await?.is_some() {}
    Ok(())
}

/// `GET /live/{channel}`: NextRush decides on the upgrade; axum sends the
/// answer; the upgraded stream goes to NextRush.
async fn upgrade(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>, mut req: Request) -> Response {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    match app.prepare_upgrade(&parts, Some(peer)).await {
        Ok(upgrade) => {
            let response = upgrade.response::<Body>();
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => app.serve_upgraded(upgrade, hyper_util::rt::TokioIo::new(upgraded)).await,
                    Err(error) => eprintln!("upgrade failed: {error}"),
                }
            });
            response
        }
        Err(rejection) => rejection_response(&rejection),
    }
}

/// NextRush's refusal (400, 403, 404, 426, 503...) as an axum response.
fn rejection_response(rejection: &Rejection) -> Response {
    let mut response = Response::new(Body::from(rejection.body().clone()));
    *response.status_mut() = rejection.status();
    response.headers_mut().extend(rejection.headers().clone());
    response.headers_mut().entry(CONTENT_TYPE).or_insert(HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// `POST /publish/{channel}`: the body, as text, to every subscriber.
async fn publish(State(app): State<App>, Path(channel): Path<String>, body: Bytes) -> Response {
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the body must be UTF-8 text\n").into_response();
    };
    let message = json!({"type": "update", "channel": channel, "data": text});
    let fan_out = app.publish(&channel, message.to_string());
    axum::Json(json!({"channel": channel, "subscribers": fan_out.recipients, "queued": fan_out.queued})).into_response()
}

/// Publishes the time to `clock` every second.
async fn clock(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let message = json!({"type": "update", "channel": "clock", "data": now.as_secs()});
        app.publish("clock", message.to_string());
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><meta charset="utf-8"><title>NextRush live updates</title>
<style>body{font:15px system-ui,sans-serif;margin:2em;max-width:40em}li{font-family:monospace}</style>
<h1>Live updates</h1>
<p><label>Channel <input id="channel" value="news"></label> <button id="sub">Subscribe</button>
<span id="status">not connected</span></p>
<p><input id="data" placeholder="something new"> <button id="pub">Publish (POST)</button></p>
<ul id="log"></ul>
<script>
let ws;
const $ = (id) => document.getElementById(id);
function log(text) { const li = document.createElement("li"); li.textContent = text; $("log").prepend(li); }
$("sub").onclick = () => {
  if (ws) ws.close();
  const channel = $("channel").value;
  ws = new WebSocket(`ws://${location.host}/live/${encodeURIComponent(channel)}`);
  ws.onopen = () => $("status").textContent = "subscribed to " + channel;
  ws.onclose = () => $("status").textContent = "not connected";
  ws.onmessage = (e) => log(e.data);
};
$("pub").onclick = async () => {
  const r = await fetch(`/publish/${encodeURIComponent($("channel").value)}`, { method: "POST", body: $("data").value });
  log("published: " + await r.text());
};
</script>
"#;
