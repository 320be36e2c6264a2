//! The endpoints under test, on each runtime.
//!
//! The code is written once and instantiated per adapter with that adapter's
//! own names (`nextrush_tokio::App`, `nextrush_smol::App`, ...): the adapters
//! promise the same API, and this is the same user code compiled against
//! each. Only the executor calls differ (`block_on`, `spawn`, a timeout).
//!
//! * Server: an [`echo`](tokio_rt::echo) app on `127.0.0.1:0` with compression
//!   off, no keep-alive pings and 1 KiB messages; the raw client of
//!   [`peer`](crate::peer) plays the scenario against it from a thread.
//! * Client: the adapter's `Client` (compression off, no pings, 1 KiB
//!   messages) connects to the scripted server of [`peer`](crate::peer),
//!   running in a thread, and runs the same echo app.

use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use nextrush_proto::CloseReason;

use crate::transcript::{Ev, Outcome, Transcript};

/// How long an application may take to finish its connection.
pub const APP_LIMIT: Duration = Duration::from_secs(10);

/// What the application saw, shared between it, the server's event hook and
/// the harness; the harness can wait for it asynchronously on any runtime.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Record>>);

#[derive(Debug, Default)]
struct Record {
    events: Vec<Ev>,
    outcome: Option<Outcome>,
    reason: Option<CloseReason>,
    code: Option<u16>,
    waker: Option<Waker>,
}

impl Recorder {
    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn wake(&self) {
        if let Some(waker) = self.with(|r| r.waker.take()) {
            waker.wake();
        }
    }

    /// Records an event.
    pub fn event(&self, event: Ev) {
        self.with(|r| r.events.push(event));
    }

    /// Records how the receive loop ended and the socket's close reason.
    pub fn finish(&self, outcome: Outcome, reason: Option<CloseReason>) {
        self.with(|r| {
            r.outcome = Some(outcome);
            r.reason = reason;
        });
        self.wake();
    }

    /// Records the final close code.
    pub fn code(&self, code: u16) {
        self.with(|r| r.code = Some(code));
        self.wake();
    }

    /// Resolves once the outcome and the close code are recorded.
    pub async fn done(&self) {
        poll_fn(|cx| {
            self.with(|r| {
                if r.outcome.is_some() && r.code.is_some() {
                    Poll::Ready(())
                } else {
                    r.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await;
    }

    /// Copies the record into `transcript`.
    pub fn fill(&self, transcript: &mut Transcript) {
        self.with(|r| {
            transcript.events = std::mem::take(&mut r.events);
            transcript.outcome = r.outcome.clone().unwrap_or(Outcome::Unfinished);
            transcript.reason = r.reason.clone();
            transcript.code = r.code;
        });
    }
}

/// tokio: a current-thread runtime built for each run.
mod tokio_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(future));
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        tokio::time::timeout(limit, future).await.ok()
    }
}

/// async-std: `block_on`, tasks on its global executor.
mod async_std_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(future));
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        async_std::future::timeout(limit, future).await.ok()
    }
}

/// smol: `block_on`, tasks on its global executor.
mod smol_exec {
    use super::{Duration, Future};

    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }

    pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
        let expired = async {
            smol::Timer::after(limit).await;
            None
        };
        smol::future::or(async { Some(future.await) }, expired).await
    }
}

macro_rules! adapter {
    ($(#[$doc:meta])* $module:ident, $krate:ident, $exec:ident) => {
        $(#[$doc])*
        pub mod $module {
            use std::time::Duration;

            use $krate::{App, Client, ClientOptions, Error, Event, Options, ServerEvent, WebSocket};

            use super::$exec as exec;
            use super::{APP_LIMIT, Recorder};
            use crate::oracle::PATH;
            use crate::peer::{self, Plan};
            use crate::scenario::MAX_MESSAGE;
            use crate::transcript::{Ev, Outcome, Transcript, normalize_request};

            /// The server's options: deterministic bytes (no compression,
            /// no keep-alive pings) and a small message limit.
            #[must_use]
            pub fn server_options() -> Options {
                Options::default().compression(false).ping_interval(None).max_message_size(MAX_MESSAGE)
            }

            /// The client's options, with [`crate::client_config`] as its
            /// protocol configuration.
            #[must_use]
            pub fn client_options() -> ClientOptions {
                ClientOptions::default().compression(false).protocol_config(crate::client_config()).ping_interval(None)
            }

            /// The echo application: echoes every message, records every
            /// event, and how the receive loop ended; then waits for the
            /// connection to be over.
            pub async fn echo(mut ws: WebSocket, rec: Recorder) {
                let outcome = loop {
                    match ws.recv_event().await {
                        Ok(Some(Event::Message(message))) => {
                            rec.event(Ev::of_message(&message));
                            // Fails once the connection is closing: ignored, as the oracle does.
                            let _ = ws.send(message).await;
                        }
                        Ok(Some(Event::Ping(payload))) => rec.event(Ev::Ping(payload.to_vec())),
                        Ok(Some(Event::Pong(payload))) => rec.event(Ev::Pong(payload.to_vec())),
                        Ok(Some(Event::Close(frame))) => {
                            rec.event(Ev::Close(frame.map(|f| (f.code.0, f.reason.to_string()))));
                        }
                        Ok(Some(other)) => rec.event(Ev::Other(format!("{other:?}"))),
                        Ok(None) => break Outcome::Clean,
                        Err(Error::Closed(reason)) => break Outcome::Closed(reason),
                        Err(error) => break Outcome::Other(error.to_string()),
                    }
                };
                rec.finish(outcome, ws.close_reason());
                ws.closed().await;
            }

            /// Plays `plan` with the raw client against the echo server.
            ///
            /// # Panics
            /// If the server cannot bind a loopback port.
            #[must_use]
            pub fn server(plan: &Plan) -> Transcript {
                let plan = plan.clone();
                let rec = Recorder::default();
                let app_rec = rec.clone();
                let (peer, finished) = exec::block_on(async move {
                    let app = App::new(server_options());
                    let handler_rec = app_rec.clone();
                    app.ws(PATH, move |ws, _req| {
                        let rec = handler_rec.clone();
                        async move {
                            echo(ws, rec).await;
                            Ok::<(), Error>(())
                        }
                    })
                    .expect("route");
                    let hook_rec = app_rec.clone();
                    app.on_event(move |event| {
                        if let ServerEvent::Disconnect { code, .. } = event {
                            hook_rec.code(code.0);
                        }
                    });
                    let listener = app.bind("127.0.0.1:0").await.expect("bind a loopback port");
                    let addr = listener.0.local_addr().expect("local address");
                    let serving = app.clone();
                    exec::spawn(async move {
                        let _ = serving.serve(listener).await;
                    });
                    let peer = std::thread::spawn(move || peer::raw_client(addr, &plan));
                    let finished = exec::timeout(APP_LIMIT, app_rec.done()).await.is_some();
                    app.shutdown(Duration::from_millis(100)).await;
                    (peer, finished)
                });
                let run = peer.join().unwrap_or_default();
                let mut transcript = Transcript::from_wire(run.head, &run.reply, run.eof);
                rec.fill(&mut transcript);
                transcript.notes = run.notes;
                if !finished {
                    transcript.notes.push("the server did not finish the connection in time".to_owned());
                }
                transcript
            }

            /// Runs the client with the echo app against the scripted server
            /// playing `plan`.
            ///
            /// # Panics
            /// If the scripted server cannot bind a loopback port.
            #[must_use]
            pub fn client(plan: &Plan) -> Transcript {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
                let url = format!("ws://{}{PATH}", listener.local_addr().expect("local address"));
                let plan = plan.clone();
                let peer = std::thread::spawn(move || peer::scripted_server(&listener, &plan));
                let rec = Recorder::default();
                let app_rec = rec.clone();
                let finished = exec::block_on(async move {
                    let run = async {
                        match Client::new(client_options()).connect(&url).await {
                            Ok(ws) => echo(ws, app_rec.clone()).await,
                            Err(error) => app_rec.finish(Outcome::Other(format!("connect failed: {error}")), None),
                        }
                    };
                    exec::timeout(APP_LIMIT, run).await.is_some()
                });
                let run = peer.join().unwrap_or_default();
                let mut transcript = Transcript::from_wire(normalize_request(&run.head), &run.reply, run.eof);
                rec.fill(&mut transcript);
                transcript.code = transcript.reason.as_ref().map(|reason| reason.code().0);
                transcript.notes = run.notes;
                if !finished {
                    transcript.notes.push("the client did not finish the connection in time".to_owned());
                }
                transcript
            }
        }
    };
}

adapter!(
    /// The endpoints on `nextrush-tokio`.
    tokio_rt,
    nextrush_tokio,
    tokio_exec
);
adapter!(
    /// The endpoints on `nextrush-async-std`.
    async_std_rt,
    nextrush_async_std,
    async_std_exec
);
adapter!(
    /// The endpoints on `nextrush-smol`.
    smol_rt,
    nextrush_smol,
    smol_exec
);

/// A run of a plan on one runtime.
pub type Run = fn(&crate::peer::Plan) -> Transcript;

/// The servers under test, by runtime.
pub const SERVERS: [(&str, Run); 3] =
    [("tokio", tokio_rt::server), ("async-std", async_std_rt::server), ("smol", smol_rt::server)];

/// The clients under test, by runtime.
pub const CLIENTS: [(&str, Run); 3] =
    [("tokio", tokio_rt::client), ("async-std", async_std_rt::client), ("smol", smol_rt::client)];
