//! Negotiation against the offers real clients send and the answers real
//! servers give.

use crate::deflate::{
    DeflateConfig, DeflateParams, NegotiationError, WindowBits, accept_client_response, client_offer, negotiate_server,
};
use crate::extension;
use crate::{ConfigError, Role};

use super::params;

/// The server's answer to header values `offer` under `config`.
fn answer(offer: &[&str], config: &DeflateConfig) -> Option<(DeflateParams, String)> {
    negotiate_server(&extension::parse(offer).unwrap(), config)
}

fn response(offer: &str) -> Option<String> {
    answer(&[offer], &DeflateConfig::default()).map(|(_, r)| r)
}

fn bits(b: u8) -> Option<WindowBits> {
    WindowBits::new(b)
}

#[test]
fn browsers_and_libraries_are_accepted_with_the_defaults() {
    for (who, offer) in [
        ("Chromium", "permessage-deflate; client_max_window_bits"),
        ("Firefox", "permessage-deflate"),
        ("Safari", "permessage-deflate"),
        ("Node ws", "permessage-deflate; client_max_window_bits"),
        ("Python websockets", "permessage-deflate; client_max_window_bits"),
    ] {
        let (p, r) = answer(&[offer], &DeflateConfig::default()).expect(who);
        assert_eq!(r, "permessage-deflate", "{who}");
        assert_eq!(p, DeflateParams::default(), "{who}");
        assert_eq!(p.compress_window_bits(Role::Server).get(), 15);
        assert_eq!(p.decompress_window_bits(Role::Server).get(), 15);
        assert!(!p.compress_no_context_takeover(Role::Server));
    }
}

#[test]
fn our_preferences_appear_in_the_response() {
    let config = DeflateConfig::new()
        .with_server_no_context_takeover(true)
        .with_client_no_context_takeover(true)
        .with_server_max_window_bits(12)
        .unwrap()
        .with_client_max_window_bits(10)
        .unwrap();
    let chrome = "permessage-deflate; client_max_window_bits";
    let (p, r) = answer(&[chrome], &config).unwrap();
    assert_eq!(
        r,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=12; client_max_window_bits=10"
    );
    assert!(p.compress_no_context_takeover(Role::Server));
    assert!(p.decompress_no_context_takeover(Role::Server));
    assert_eq!(p.compress_window_bits(Role::Server).get(), 12);
    assert_eq!(p.decompress_window_bits(Role::Server).get(), 10);

    // Firefox does not offer client_max_window_bits: we MUST NOT answer it,
    // and must inflate with the full window.
    let (p, r) = answer(&["permessage-deflate"], &config).unwrap();
    assert_eq!(
        r,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=12"
    );
    assert_eq!(p.decompress_window_bits(Role::Server).get(), 15);
}

#[test]
fn the_first_acceptable_offer_wins() {
    assert_eq!(
        response(
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10, \
             permessage-deflate"
        )
        .unwrap(),
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
    );
    // Unknown parameter: that offer is declined, the next is accepted.
    let (p, r) = answer(
        &[
            "permessage-deflate; x-unknown=1; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=11",
        ],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(r, "permessage-deflate; client_max_window_bits=11");
    assert_eq!(p.client_max_window_bits, bits(11));
    // Other extensions are skipped.
    assert_eq!(
        response("x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover").unwrap(),
        "permessage-deflate; server_no_context_takeover"
    );
}

#[test]
fn quoted_values_are_accepted() {
    assert_eq!(
        response("permessage-deflate; server_max_window_bits=\"10\"").unwrap(),
        "permessage-deflate; server_max_window_bits=10"
    );
    assert_eq!(
        response("permessage-deflate; client_max_window_bits=\"9\"").unwrap(),
        "permessage-deflate; client_max_window_bits=9"
    );
}

#[test]
fn invalid_offers_are_declined() {
    for offer in [
        "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=255",
        "permessage-deflate; Server_No_Context_Takeover",
        "x-webkit-deflate-frame",
        "",
    ] {
        assert_eq!(response(offer), None, "{offer:?} must be declined");
        // ...and a following good offer is taken instead.
        let both = format!("{offer}, permessage-deflate");
        assert_eq!(response(&both).as_deref(), Some("permessage-deflate"), "{both:?}");
    }
}

#[test]
fn an_8_bit_server_window_is_accepted() {
    // zlib cannot compress with 2^8; we compress with 2^9, whose matches
    // never reach farther than 250 bytes (checked in the property tests).
    let (p, r) = answer(&["permessage-deflate; server_max_window_bits=8"], &DeflateConfig::default()).unwrap();
    assert_eq!(r, "permessage-deflate; server_max_window_bits=8");
    assert_eq!(p.compress_window_bits(Role::Server), WindowBits::MIN);
    // A larger request is capped by our own limit.
    let config = DeflateConfig::new().with_server_max_window_bits(9).unwrap();
    let (_, r) = answer(&["permessage-deflate; server_max_window_bits=14"], &config).unwrap();
    assert_eq!(r, "permessage-deflate; server_max_window_bits=9");
}

#[test]
fn client_offers() {
    assert_eq!(client_offer(&DeflateConfig::default()), "permessage-deflate; client_max_window_bits");
    let config = DeflateConfig::new()
        .with_server_no_context_takeover(true)
        .with_client_no_context_takeover(true)
        .with_server_max_window_bits(10)
        .unwrap()
        .with_client_max_window_bits(12)
        .unwrap();
    assert_eq!(
        client_offer(&config),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=12"
    );
}

fn accept(values: &[&str], config: &DeflateConfig) -> Result<Option<DeflateParams>, NegotiationError> {
    accept_client_response(values, config)
}

#[test]
fn client_accepts_what_it_allowed() {
    let default = DeflateConfig::default();
    assert_eq!(accept(&[], &default), Ok(None));
    assert_eq!(accept(&["", " , "], &default), Ok(None));
    assert_eq!(accept(&["permessage-deflate"], &default), Ok(Some(DeflateParams::default())));
    let all = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
               server_max_window_bits=10; client_max_window_bits=9";
    assert_eq!(accept(&[all], &default), Ok(Some(params(true, true, 10, 9))));
    // A server may ask for an 8-bit client window: we honour it with zlib's
    // 9-bit window, which never reaches farther than 250 bytes.
    let p = accept(&["permessage-deflate; client_max_window_bits=8"], &default).unwrap().unwrap();
    assert_eq!(p.compress_window_bits(Role::Client), WindowBits::MIN);
    // Values may be quoted; the header may span lines.
    assert_eq!(
        accept(&["permessage-deflate; server_max_window_bits=\"12\""], &default),
        Ok(Some(params(false, false, 12, 15)))
    );
    assert_eq!(accept(&["", "permessage-deflate"], &default), Ok(Some(DeflateParams::default())));
}

#[test]
fn client_rejects_what_it_did_not_allow() {
    use NegotiationError as E;
    let default = DeflateConfig::default();
    let cases: &[(&[&str], E)] = &[
        (&["x-foo"], E::UnexpectedExtension("x-foo".into())),
        (&["permessage-deflate, x-foo"], E::UnexpectedExtension("x-foo".into())),
        (&["permessage-deflate, permessage-deflate"], E::DuplicateExtension),
        (&["permessage-deflate", "permessage-deflate"], E::DuplicateExtension),
        (&["permessage-deflate; foo"], E::InvalidParameter("unknown parameter")),
        (
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            E::InvalidParameter("duplicate parameter"),
        ),
        (
            &["permessage-deflate; client_max_window_bits"],
            E::InvalidParameter("client_max_window_bits needs a value in a response"),
        ),
        (
            &["permessage-deflate; server_max_window_bits=16"],
            E::InvalidParameter("server_max_window_bits needs a value from 8 to 15"),
        ),
        (
            &["permessage-deflate; client_max_window_bits=08"],
            E::InvalidParameter("client_max_window_bits must be from 8 to 15"),
        ),
        (
            &["permessage-deflate; client_no_context_takeover=yes"],
            E::InvalidParameter("client_no_context_takeover has a value"),
        ),
    ];
    for (values, want) in cases {
        assert_eq!(accept(values, &default).as_ref(), Err(want), "{values:?}");
    }
    assert!(matches!(accept(&["permessage-deflate;"], &default), Err(E::Malformed(_))));
}

#[test]
fn client_rejects_answers_that_ignore_its_requests() {
    use NegotiationError as E;
    let strict = DeflateConfig::new()
        .with_server_no_context_takeover(true)
        .with_server_max_window_bits(10)
        .unwrap()
        .with_client_max_window_bits(12)
        .unwrap();
    let ok = "permessage-deflate; server_no_context_takeover; server_max_window_bits=9";
    // Our own client_max_window_bits=12 binds us although the server did not
    // repeat it.
    assert_eq!(accept(&[ok], &strict), Ok(Some(params(true, false, 9, 12))));
    let cases: &[(&str, E)] = &[
        ("permessage-deflate; server_max_window_bits=10", E::RequestIgnored("server_no_context_takeover")),
        ("permessage-deflate; server_no_context_takeover", E::RequestIgnored("server_max_window_bits")),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            E::NotOffered("server_max_window_bits larger than requested"),
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
             client_max_window_bits=13",
            E::NotOffered("client_max_window_bits larger than offered"),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(accept(&[value], &strict).as_ref(), Err(want), "{value:?}");
    }
    // A client that offered client_no_context_takeover keeps its word even
    // if the server does not echo it.
    let polite = DeflateConfig::new().with_client_no_context_takeover(true);
    let p = accept(&["permessage-deflate"], &polite).unwrap().unwrap();
    assert!(p.compress_no_context_takeover(Role::Client));
}

#[test]
fn config_setters_validate() {
    let out_of_range = |value| ConfigError::OutOfRange { setting: "server_max_window_bits", value, min: 8, max: 15 };
    assert_eq!(DeflateConfig::new().with_server_max_window_bits(7), Err(out_of_range(7)));
    assert_eq!(DeflateConfig::new().with_server_max_window_bits(16), Err(out_of_range(16)));
    assert!(DeflateConfig::new().with_client_max_window_bits(0).is_err());
    assert!(DeflateConfig::new().with_level(10).is_err());
    assert_eq!(DeflateConfig::new().with_level(0).unwrap().level(), 0);
    assert_eq!(DeflateConfig::new().with_threshold(0).threshold(), Some(0));
    assert_eq!(DeflateConfig::new().threshold(), None);
    assert_eq!(WindowBits::try_from(8), Ok(WindowBits::MIN));
    assert_eq!(WindowBits::try_from(16), Err(16));
}

#[test]
fn the_threshold_follows_context_takeover_unless_set() {
    use crate::deflate::Compressor;
    let auto = DeflateConfig::default();
    let fixed = DeflateConfig::new().with_threshold(500);
    for (p, role, want_auto) in [
        (params(false, false, 15, 15), Role::Server, 16),
        (params(true, false, 15, 15), Role::Server, 128),
        (params(true, false, 15, 15), Role::Client, 16),
        (params(false, true, 15, 15), Role::Client, 128),
    ] {
        let c = Compressor::new(&p, role, &auto);
        assert_eq!(c.threshold(), want_auto);
        assert!(!c.should_compress(want_auto - 1) && c.should_compress(want_auto));
        assert_eq!(Compressor::new(&p, role, &fixed).threshold(), 500);
    }
}
