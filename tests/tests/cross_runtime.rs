//! Cross-runtime transcripts: the same scenario against the server and the
//! client on tokio, async-std and smol, and against the sans-IO oracle.
//!
//! `PROPTEST_CASES` sets the number of cases of each property (default 64).

use nextrush_tests::oracle::{self, Reference};
use nextrush_tests::peer::Plan;
use nextrush_tests::runtimes::{CLIENTS, Run, SERVERS};
use nextrush_tests::scenario::{Peer, Scenario, scenario};
use nextrush_tests::transcript::report;
use nextrush_tests::{client_config, server_config};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    ProptestConfig {
        cases,
        // A shrink step costs one run per runtime (milliseconds), or a sync
        // timeout while the runtimes diverge: bound shrinking by time.
        max_shrink_iters: 8192,
        max_shrink_time: 90_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// Plays `scenario` on every runtime and compares with the oracle.
fn check(scenario: &Scenario, reference: &Reference, runtimes: &[(&str, Run)]) -> Result<(), TestCaseError> {
    let plan = Plan::new(scenario, reference.expected.clone());
    let runs: Vec<(&str, _)> = runtimes.iter().map(|(name, run)| (*name, run(&plan))).collect();
    match report(&reference.transcript, &runs) {
        None => Ok(()),
        Some(report) => Err(TestCaseError::fail(format!("{report}\nwrites: {:?}", scenario.writes))),
    }
}

proptest! {
    #![proptest_config(config())]

    /// A raw client plays the scenario against the echo server.
    #[test]
    fn servers_agree_with_the_oracle(scenario in scenario(Peer::Client)) {
        let reference = oracle::server(server_config(), &scenario);
        check(&scenario, &reference, &SERVERS)?;
    }

    /// A scripted server plays the scenario against the echo client.
    #[test]
    fn clients_agree_with_the_oracle(scenario in scenario(Peer::Server)) {
        let reference = oracle::client(client_config(), &scenario);
        check(&scenario, &reference, &CLIENTS)?;
    }
}

/// A hand-written scenario: a text message in two fragments with a ping
/// between them and a ping, in the write that completes the HTTP head; then
/// a clean close in a second write (in the same write, the close would come
/// before the application could echo).
fn greeting(peer: Peer) -> Scenario {
    use nextrush_tests::scenario::{Action, Ending, Key, Msg};
    let actions = vec![
        Action::Message(Msg {
            text: true,
            payload: "héllo".as_bytes().to_vec(),
            cuts: vec![2],
            pings: vec![(0, b"between".to_vec())],
            mask: Key([1, 2, 3, 4]),
        }),
        Action::Ping { payload: b"p".to_vec(), mask: Key([5, 6, 7, 8]) },
    ];
    let ending = Ending::Close { code: Some(1000), reason: "bye".to_owned(), mask: Key([9, 9, 9, 9]) };
    let before_close = Scenario {
        peer,
        actions: actions.clone(),
        ending: Ending::Eof { payload: vec![0], keep: 0, mask: Key([0; 4]) },
        after: Vec::new(),
        writes: Vec::new(),
    };
    let split = peer.head().len() + before_close.frames().len();
    let mut scenario = Scenario { peer, actions, ending, after: Vec::new(), writes: Vec::new() };
    scenario.writes = vec![0..split, split..peer.head().len() + scenario.frames().len()];
    scenario
}

/// The transcripts are not vacuous: the oracle's has the echo, both pongs and
/// the close echo, and every runtime agrees with it.
#[test]
fn greeting_is_echoed_everywhere() {
    use nextrush_tests::transcript::{Ev, Outcome};
    for (peer, runtimes) in [(Peer::Client, &SERVERS), (Peer::Server, &CLIENTS)] {
        let scenario = greeting(peer);
        let reference = match peer {
            Peer::Client => oracle::server(server_config(), &scenario),
            Peer::Server => oracle::client(client_config(), &scenario),
        };
        let t = &reference.transcript;
        let ops: Vec<u8> = t.data.iter().map(|f| f.opcode()).collect();
        assert_eq!(ops, [0x1, 0x8], "{t:#?}");
        assert_eq!(t.data[0].payload, "héllo".as_bytes());
        assert_eq!(t.data[1].payload, 1000u16.to_be_bytes());
        assert_eq!(t.control.len(), 2);
        assert_eq!(t.events[0], Ev::Ping(b"between".to_vec()));
        assert_eq!(t.events[1], Ev::Text("héllo".to_owned()));
        assert_eq!(t.events[3], Ev::Close(Some((1000, "bye".to_owned()))));
        assert_eq!((&t.outcome, t.code), (&Outcome::Clean, Some(1000)));
        check(&scenario, &reference, runtimes).unwrap();
    }
}
