//! The chat server behind each adapter's `chat` example, written once for
//! every runtime: `chat [--addr HOST:PORT]` (default `127.0.0.1:3000`), one
//! port for the page and the WebSocket.
//!
//! - `GET /` — the page (`chat/index.html`, one file with inline JS/CSS).
//! - `GET /token?name=NAME` — `{"token": JWT}`: an HS256 JWT for `NAME`,
//!   valid for an hour. Signed with `CHAT_SECRET` from the environment, or a
//!   random secret made at start (tokens then die with the process; the page
//!   fetches a new one for every connection). Name-only sign-in: put a real
//!   login in front of it.
//! - `GET /chat/:roomId?token=JWT` — the WebSocket. The token is checked by
//!   `verify_client` before the upgrade (401 when missing, invalid or
//!   expired) and the user is attached to the socket.
//! - `GET /stats` — the server's statistics as JSON.
//!
//! Protocol: JSON text messages with a `type`.
//!
//! ```text
//! server -> client  {type:"welcome", id, name, room}          first, once
//!                   {type:"users", room, users:[{id, name}]}  on every join and leave
//!                   {type:"message", id, from, fromId, text, ts}  the room's history is replayed on join
//!                   {type:"private", id, from, fromId, text, ts}
//!                   {type:"typing", from, fromId}
//!                   {type:"error", text}
//! client -> server  {type:"message", id?, text} | {type:"private", id?, to, text} | {type:"typing"}
//! ```
//!
//! How it maps onto NextRush: each socket joins its room with its user name
//! as presence (`join_with`), so the user list is the room's presence; chat
//! messages go to the room (`ws.to(room).except_self()`), which keeps the
//! last 50 and replays them to whoever joins; typing notices and user lists
//! go to a channel beside the room (`ROOM:live`), which keeps no history;
//! private messages go to one socket by id (`ws.send_to`). The user list is
//! sent from the server's `RoomJoin`/`RoomLeave` events.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nextrush_driver::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use nextrush_driver::http::{self, StatusCode};
use nextrush_driver::{
    App, BoxError, Bytes, HttpRequest, Listener, Options, RateLimitAction, Rejection, Request, Rooms, RoomsConfig,
    Runtime, ServerEvent, SocketId, Verified, WebSocket,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The page, embedded in the binary.
const PAGE: &str = include_str!("chat/index.html");

/// How long a token is valid.
const TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// Longest user name, in characters.
const MAX_NAME: usize = 32;

/// Longest chat message, in characters.
const MAX_TEXT: usize = 2000;

/// Command-line arguments.
pub(crate) struct Args {
    addr: String,
    /// PEM certificate chain and key: serve https:// and wss://.
    tls: Option<(String, String)>,
}

const USAGE: &str = "usage: chat [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE]";

impl Args {
    /// Parses `--addr`, `--tls-cert` and `--tls-key`.
    pub(crate) fn parse() -> Result<Self, String> {
        let mut addr = "127.0.0.1:3000".to_owned();
        let (mut cert, mut key) = (None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--addr", Some(value)) => addr = value,
                ("--tls-cert", Some(value)) => cert = Some(value),
                ("--tls-key", Some(value)) => key = Some(value),
                _ => return Err(format!("{USAGE} (got {arg})")),
            }
        }
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(format!("{USAGE}: --tls-cert and --tls-key go together")),
        };
        Ok(Self { addr, tls })
    }
}

/// Serves until the process is stopped: http:// and ws://, or with
/// `--tls-cert/--tls-key` https:// and wss://.
#[cfg(feature = "rustls")]
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>>
where
    std::sync::Arc<nextrush_driver::tls::rustls::ServerConfig>: nextrush_driver::TlsAccept<R::TcpStream>,
{
    let app = app::<R>()?;
    let listener = app.bind(&args.addr).await?;
    match &args.tls {
        Some((cert, key)) => {
            let config = nextrush_driver::tls::server_config_from_pem_files(cert, key)?;
            println!("chat on https://{}", listener.local_addr()?);
            app.serve_tls(listener, config).await?;
        }
        None => {
            println!("chat on http://{}", listener.local_addr()?);
            app.serve(listener).await?;
        }
    }
    Ok(())
}

/// Serves until the process is stopped (http:// and ws://).
#[cfg(not(feature = "rustls"))]
pub(crate) async fn run<R: Runtime>(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.tls.is_some() {
        return Err("--tls-cert/--tls-key need TLS: build the example with `--features rustls`".into());
    }
    let app = app::<R>()?;
    let listener = app.bind(&args.addr).await?;
    println!("chat on http://{}", listener.local_addr()?);
    app.serve(listener).await?;
    Ok(())
}

/// The chat application: options, the page and token routes, the socket
/// route, and the user lists sent on room events.
pub(crate) fn app<R: Runtime>() -> Result<App<R>, Box<dyn std::error::Error>> {
    let keys = Arc::new(Keys::from_env()?);
    let verify_keys = Arc::clone(&keys);
    let options = Options::default()
        .max_message_size(16 * 1024)
        .rate_limit(20, Duration::from_secs(1), RateLimitAction::Drop)
        .rooms(RoomsConfig::default().with_history_len(50).with_max_rooms(100))
        .verify_client(move |req| {
            let verdict = verify(&verify_keys, req);
            async move { verdict }
        });
    let app = App::<R>::new(options);
    app.get("/", |_req| async { respond(StatusCode::OK, "text/html; charset=utf-8", PAGE) })?;
    app.get("/token", move |req| {
        let response = issue_token(&keys, &req);
        async move { response }
    })?;
    // The route lives as long as the app it reads: fine for a process-long server.
    let stats_app = app.clone();
    app.get("/stats", move |_req| {
        let body = stats(&stats_app).to_string();
        async move { respond(StatusCode::OK, "application/json", body) }
    })?;
    app.ws("/chat/:roomId", chat)?;
    let rooms = Arc::clone(app.rooms());
    app.on_event(move |event| announce_users(&rooms, event));
    Ok(app)
}

// ----- tokens ---------------------------------------------------------------

/// The claims of a chat token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user name.
    sub: String,
    /// Issued at (seconds since the epoch).
    iat: u64,
    /// Expires at (seconds since the epoch).
    exp: u64,
}

/// The user a socket belongs to, attached by `verify_client`.
#[derive(Clone, Debug)]
struct User {
    name: String,
}

/// HS256 keys from one secret.
struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    /// `CHAT_SECRET`, or 32 random bytes.
    fn from_env() -> Result<Self, Box<dyn std::error::Error>> {
        let secret = match std::env::var("CHAT_SECRET") {
            Ok(secret) if !secret.is_empty() => secret.into_bytes(),
            _ => {
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| format!("no randomness for the secret: {e}"))?;
                println!("CHAT_SECRET not set: signing tokens with a random secret (they end with this process)");
                secret
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
        })
    }

    fn issue(&self, name: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = unix_now().as_secs();
        let claims = Claims { sub: name.to_owned(), iat, exp: iat + TOKEN_TTL.as_secs() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The user name in a valid, unexpired token.
    fn verify(&self, token: &str) -> Option<String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        valid_name(&data.claims.sub).then_some(data.claims.sub)
    }
}

/// `GET /token?name=NAME`.
fn issue_token(keys: &Keys, req: &HttpRequest) -> http::Response<Bytes> {
    let name = req.query_param("name").map(|n| n.trim().to_owned()).unwrap_or_default();
    if !valid_name(&name) {
        let body = json!({"error": format!("name must be 1 to {MAX_NAME} printable characters")});
        return respond(StatusCode::BAD_REQUEST, "application/json", body.to_string());
    }
    match keys.issue(&name) {
        Ok(token) => {
            let body = json!({"token": token, "expires_in": TOKEN_TTL.as_secs()});
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("cannot sign: {e}\n")),
    }
}

/// `verify_client`: a valid token for a valid room, before the upgrade.
fn verify(keys: &Keys, req: &Request) -> Result<Verified, Rejection> {
    if !req.param("roomId").is_some_and(valid_room) {
        return Err(Rejection::bad_request().with_body("room names are 1 to 64 of A-Z a-z 0-9 _ -\n"));
    }
    let token = req.query_param("token");
    match token.as_deref().and_then(|t| keys.verify(t)) {
        Some(name) => Ok(Verified::new().with(User { name })),
        None => Err(Rejection::unauthorized()
            .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            .with_body("missing, invalid or expired token\n")),
    }
}

fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME).contains(&chars) && !name.chars().any(char::is_control) && name.trim() == name
}

fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len()) && room.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// ----- the socket -------------------------------------------------------------

/// What a client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Incoming {
    /// To the room.
    Message { id: Option<String>, text: String },
    /// To one user, by socket id.
    Private { id: Option<String>, to: u64, text: String },
    /// The user is typing.
    Typing,
}

/// The channel that carries a room's user lists and typing notices: no
/// history, so they are never replayed.
fn live_channel(room: &str) -> String {
    format!("{room}:live")
}

/// One connection: welcome, join with the user's name as presence (the
/// room's history is replayed), then relay until the socket closes. Leaving
/// the room happens on close; the `RoomLeave` event updates the list.
async fn chat(mut ws: WebSocket, req: Request) -> Result<(), BoxError> {
    let room = req.param("roomId").unwrap_or("lobby").to_owned();
    drop(req);
    let user = ws.data::<User>().cloned().ok_or("no user attached")?;
    let (Some(me), Some(hub)) = (ws.id(), ws.hub().cloned()) else {
        return Err("not a server socket".into());
    };
    let live = live_channel(&room);
    ws.send(json!({"type": "welcome", "id": me.get(), "name": user.name, "room": room}).to_string()).await?;
    ws.subscribe(&live)?;
    if let Err(e) = ws.join_with(&room, user.name.clone()) {
        ws.send(json!({"type": "error", "text": format!("cannot join {room}: {e}")}).to_string()).await?;
        return Ok(());
    }
    let mut sent = 0u64;
    while let Some(message) = ws.recv().await? {
        let parsed = message.as_text().and_then(|text| serde_json::from_str::<Incoming>(text).ok());
        let reply = match parsed {
            Some(Incoming::Message { id, text }) => {
                let Some(text) = clean_text(&text) else { continue };
                sent += 1;
                let out = json!({
                    "type": "message", "id": message_id(id, me, sent), "from": user.name,
                    "fromId": me.get(), "text": text, "ts": unix_now().as_millis() as u64,
                });
                ws.to(&room).except_self().send(out.to_string())?;
                None
            }
            Some(Incoming::Private { id, to, text }) => {
                let Some(text) = clean_text(&text) else { continue };
                let to = SocketId::from_raw(to);
                if to == me || !hub.members(&room).contains(&to) {
                    Some("no such user in this room".to_owned())
                } else {
                    sent += 1;
                    let out = json!({
                        "type": "private", "id": message_id(id, me, sent), "from": user.name,
                        "fromId": me.get(), "text": text, "ts": unix_now().as_millis() as u64,
                    });
                    ws.send_to(to, out.to_string()).err().map(|e| format!("not delivered: {e}"))
                }
            }
            Some(Incoming::Typing) => {
                let out = json!({"type": "typing", "from": user.name, "fromId": me.get()});
                let _ = hub.channel(live.as_str()).except(me).send(out.to_string());
                None
            }
            None => Some("expected JSON with type message, private or typing".to_owned()),
        };
        if let Some(text) = reply {
            ws.send(json!({"type": "error", "text": text}).to_string()).await?;
        }
    }
    Ok(())
}

/// Trimmed, non-empty, at most [`MAX_TEXT`] characters.
fn clean_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_TEXT).collect())
}

/// The client's id for its message (so that it can recognise its own
/// messages in a replayed history), or one made here.
fn message_id(id: Option<String>, me: SocketId, n: u64) -> String {
    match id {
        Some(id) if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => id,
        _ => format!("s{}-{}-{n}", unix_now().as_micros(), me.get()),
    }
}

/// On every join and leave, the room's user list (its presence) to the
/// room's live channel.
fn announce_users(rooms: &Rooms, event: &ServerEvent) {
    let (ServerEvent::RoomJoin { room, count, .. } | ServerEvent::RoomLeave { room, count, .. }) = event else {
        return;
    };
    let joined = matches!(event, ServerEvent::RoomJoin { .. });
    println!("{} {room}: {count} online", if joined { "join" } else { "leave" });
    let mut users: Vec<(String, u64)> = rooms
        .presence(room)
        .into_iter()
        .map(|(id, name)| (String::from_utf8_lossy(&name).into_owned(), id.get()))
        .collect();
    users.sort();
    let users: Vec<_> = users.into_iter().map(|(name, id)| json!({"id": id, "name": name})).collect();
    rooms.publish(&live_channel(room), json!({"type": "users", "room": room, "users": users}).to_string());
}

// ----- HTTP helpers -------------------------------------------------------------

/// `GET /stats`: the server's counters and its rooms.
fn stats<R: Runtime>(app: &App<R>) -> serde_json::Value {
    let s = app.stats();
    let mut rooms: Vec<_> = app.rooms().rooms().into_iter().map(|(name, n)| (name.to_string(), n)).collect();
    rooms.sort();
    let rooms: Vec<_> = rooms.into_iter().map(|(name, members)| json!({"name": name, "members": members})).collect();
    json!({
        "connections": s.connections,
        "total_connections": s.total_connections,
        "messages_sent": s.messages_sent,
        "messages_received": s.messages_received,
        "bytes_sent": s.bytes_sent,
        "bytes_received": s.bytes_received,
        "rooms": s.rooms,
        "room_list": rooms,
        "uptime_secs": s.uptime.as_secs(),
        "errors": s.errors,
        "dead_peers": s.dead_peers,
        "rejected_handshakes": s.rejected_handshakes,
        "rate_limited": s.rate_limited,
        "dropped_messages": s.dropped_messages,
    })
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> http::Response<Bytes> {
    let mut response = http::Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}
