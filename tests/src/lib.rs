//! The cross-runtime suite of NextRush: one scenario, three runtimes, one
//! oracle.
//!
//! A proptest scenario ([`scenario`]) is played by a scripted peer
//! ([`peer`]) against the same endpoint on tokio, async-std and smol
//! ([`runtimes`]), and in memory against `nextrush_proto::Connection`
//! ([`oracle`]). Every run yields a [`transcript::Transcript`]; all four must
//! agree ([`transcript::report`] says where they first do not).

pub mod oracle;
pub mod peer;
pub mod runtimes;
pub mod scenario;
pub mod transcript;
pub mod wire;

use nextrush_proto::Config;

/// The protocol configuration of the clients under test (and of the client
/// oracle): 1 KiB messages and frames, no keep-alive pings.
#[must_use]
pub fn client_config() -> Config {
    Config::default().max_message_size(scenario::MAX_MESSAGE).max_frame_size(scenario::MAX_MESSAGE).ping_interval(None)
}

/// The protocol configuration the servers under test run with (read back
/// from their options, for the server oracle).
#[must_use]
pub fn server_config() -> Config {
    runtimes::tokio_rt::server_options().protocol_config().clone()
}
