//! Cancel safety, end to end: both peers stream numbered messages at each
//! other while every `send`, `try_send`, `recv` and `recv_event` is raced
//! against a seeded interruption (ready at once, after a few yields, or
//! after a short timer) in a biased `select!`. The operation is always
//! polled first, so an interruption only wins when the operation is pending
//! — exactly when dropping it could lose or duplicate something. Every
//! message must arrive exactly once, in order and byte-exact, both ways.

mod common;

use std::time::Duration;

use common::{Lcg, assert_same, numbered, start, within};
use nextrush_tokio::{
    App, Client, ClientOptions, CloseCode, Error, Event, Message, Options, SlowConsumer, WsReader, WsWriter,
};
use tokio::sync::mpsc;

const COUNT: u32 = 400;
/// A small outbound bound, so that sends are often pending.
const QUEUE: usize = 4 * 1024;

const CLIENT_TO_SERVER: u64 = 100;
const SERVER_TO_CLIENT: u64 = 200;

/// One interruption, drawn from the generator.
#[derive(Clone, Copy, Debug)]
enum Interrupt {
    Now,
    Yields(u32),
    Sleep(Duration),
    Never,
}

impl Interrupt {
    fn draw(rng: &mut Lcg) -> Self {
        match rng.below(8) {
            0..=2 => Self::Now,
            3 | 4 => Self::Yields(rng.below(6) + 1),
            5 | 6 => Self::Sleep(Duration::from_micros(u64::from(rng.below(400)))),
            _ => Self::Never,
        }
    }

    async fn wait(self) {
        match self {
            Self::Now => {}
            Self::Yields(n) => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            }
            Self::Sleep(d) => tokio::time::sleep(d).await,
            Self::Never => std::future::pending().await,
        }
    }
}

/// How often operations were dropped while pending.
#[derive(Debug, Default)]
struct Interrupted {
    sends: u32,
    recvs: u32,
}

/// Sends `COUNT` numbered messages of `stream`, retrying each one whose send
/// was interrupted, then an uninterrupted `"done"`.
async fn send_all(writer: &WsWriter, stream: u64, seed: u64) -> u32 {
    let mut rng = Lcg(seed);
    let mut interrupted = 0;
    let mut i = 0;
    while i < COUNT {
        let message = numbered(stream, i);
        if rng.below(8) == 0 {
            match writer.try_send(message) {
                Ok(()) => i += 1,
                // Full: let the driver drain, then go on.
                Err(Error::QueueFull) => tokio::task::yield_now().await,
                Err(e) => panic!("try_send {i}: {e}"),
            }
            continue;
        }
        let interrupt = Interrupt::draw(&mut rng);
        tokio::select! {
            biased;
            sent = writer.send(message) => {
                sent.unwrap_or_else(|e| panic!("send {i}: {e}"));
                i += 1;
            }
            () = interrupt.wait() => interrupted += 1,
        }
    }
    writer.send("done").await.expect("send done");
    interrupted
}

/// Receives `COUNT` numbered messages of `stream` and the `"done"` after
/// them, with interruptions; any loss, duplicate, reordering or corruption
/// fails.
async fn recv_all(reader: &mut WsReader, stream: u64, seed: u64) -> u32 {
    let mut rng = Lcg(seed);
    let mut interrupted = 0;
    let mut expected = 0;
    while expected <= COUNT {
        let interrupt = Interrupt::draw(&mut rng);
        let use_events = rng.below(2) == 0;
        let receive = async {
            if use_events {
                match reader.recv_event().await {
                    Ok(Some(Event::Message(m))) => Ok(Some(m)),
                    Ok(Some(other)) => panic!("unexpected event {other:?}"),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            } else {
                reader.recv().await
            }
        };
        let got = tokio::select! {
            biased;
            got = receive => got,
            () = interrupt.wait() => {
                interrupted += 1;
                continue;
            }
        };
        let message = got.unwrap_or_else(|e| panic!("recv {expected}: {e}")).expect("closed too early");
        if expected == COUNT {
            assert_eq!(message, Message::text("done"), "nothing extra after the last message");
        } else {
            assert_same(&message, &numbered(stream, expected), &format!("message {expected} of stream {stream}"));
        }
        expected += 1;
    }
    interrupted
}

async fn exchange(seed: u64) {
    let (verdict_tx, mut verdict) = mpsc::unbounded_channel();
    let options = Options::default().outbound_queue(QUEUE, SlowConsumer::Wait);
    let app = App::new(options);
    app.ws("/stream", move |ws, _req| {
        let verdict_tx = verdict_tx.clone();
        async move {
            let (mut reader, writer) = ws.split();
            let (sends, recvs) = tokio::join!(
                send_all(&writer, SERVER_TO_CLIENT, seed ^ 0x5151),
                recv_all(&mut reader, CLIENT_TO_SERVER, seed ^ 0xa3a3),
            );
            verdict_tx.send(Interrupted { sends, recvs }).unwrap();
            // Until the client closes.
            while reader.recv().await?.is_some() {}
            Ok::<_, Error>(())
        }
    })
    .unwrap();
    let server = start(app).await;
    let client = Client::new(ClientOptions::default().outbound_queue(QUEUE, SlowConsumer::Wait));
    let ws = client.connect(&server.url("/stream")).await.unwrap();
    let (mut reader, writer) = ws.split();
    let (sends, recvs) = within("both directions", async {
        tokio::join!(
            send_all(&writer, CLIENT_TO_SERVER, seed ^ 0x1717),
            recv_all(&mut reader, SERVER_TO_CLIENT, seed ^ 0x2929),
        )
    })
    .await;
    let server_side = within("server verdict", verdict.recv()).await.expect("the server handler finished its checks");
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(within("end", reader.recv()).await.unwrap(), None);

    // The test really dropped pending sends and receives. (How many, and on
    // which side, depends on scheduling: a receiver that lags behind always
    // finds a message waiting, so only the totals are checked.)
    let client_side = Interrupted { sends, recvs };
    let (sends, recvs) = (client_side.sends + server_side.sends, client_side.recvs + server_side.recvs);
    assert!(sends > 0 && recvs > 0, "seed {seed}: client {client_side:?}, server {server_side:?}");
    assert_eq!(server.app.stats().messages_received, u64::from(COUNT) + 1);
}

#[tokio::test]
async fn every_message_exactly_once_in_order_current_thread() {
    for seed in [1, 2] {
        exchange(seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_exactly_once_in_order_multi_thread() {
    for seed in [3, 4] {
        exchange(seed).await;
    }
}
