//! Negotiation of permessage-deflate (RFC 7692 §5, §7.1) for both roles.

use std::cmp::min;

use thiserror::Error;

use crate::extension::{self, ExtensionError, ExtensionOffer, ExtensionParam};

use super::EXTENSION_NAME;
use super::config::DeflateConfig;
use super::params::{DeflateParams, WindowBits};

/// The server's answer could not be accepted: RFC 7692 says the client MUST
/// _Fail the WebSocket Connection_ in every one of these cases.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The `Sec-WebSocket-Extensions` response does not parse.
    #[error(transparent)]
    Malformed(#[from] ExtensionError),
    /// The server accepted an extension we did not offer (RFC 6455 §4.1).
    #[error("server answered with extension {0:?}, which was not offered")]
    UnexpectedExtension(String),
    /// permessage-deflate appears more than once in the response.
    #[error("permessage-deflate accepted more than once")]
    DuplicateExtension,
    /// An unknown or duplicated parameter, or a bad value (RFC 7692 §7.1).
    #[error("invalid permessage-deflate parameter: {0}")]
    InvalidParameter(&'static str),
    /// A parameter we did not allow, or a window larger than we asked for.
    #[error("permessage-deflate parameter not allowed by our offer: {0}")]
    NotOffered(&'static str),
    /// The server ignored something we asked for, which it may only do by
    /// declining the whole offer (RFC 7692 §7.1.1.1, §7.1.2.1).
    #[error("server ignored our request for {0}")]
    RequestIgnored(&'static str),
}

/// `client_max_window_bits` as it appears in an offer or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientBits {
    Absent,
    /// Present without a value: allowed in offers only.
    NoValue,
    Value(WindowBits),
}

/// Whether the parameters come from an offer or from a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Offer,
    Response,
}

/// The four RFC 7692 parameters of one offer or response, syntax-checked.
#[derive(Clone, Copy, Debug)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<WindowBits>,
    client_max_window_bits: ClientBits,
}

impl Parsed {
    /// Checks every parameter: unknown names, duplicates and bad values are
    /// errors, in offers (the offer is declined) and in responses (the
    /// connection fails).
    fn from_params(params: &[ExtensionParam], kind: Kind) -> Result<Self, &'static str> {
        let mut parsed = Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: ClientBits::Absent,
        };
        let mut seen = [false; 4];
        for param in params {
            let value = param.value.as_deref();
            let index = match param.name.as_str() {
                "server_no_context_takeover" => {
                    // §7.1.1.1: "This extension parameter has no value."
                    if value.is_some() {
                        return Err("server_no_context_takeover has a value");
                    }
                    parsed.server_no_context_takeover = true;
                    0
                }
                "client_no_context_takeover" => {
                    // §7.1.1.2: "This extension parameter has no value."
                    if value.is_some() {
                        return Err("client_no_context_takeover has a value");
                    }
                    parsed.client_no_context_takeover = true;
                    1
                }
                "server_max_window_bits" => {
                    // §7.1.2.1: a value between 8 and 15 is required.
                    let bits = value.and_then(WindowBits::parse);
                    parsed.server_max_window_bits =
                        Some(bits.ok_or("server_max_window_bits needs a value from 8 to 15")?);
                    2
                }
                "client_max_window_bits" => {
                    // §7.1.2.2: no value or 8..=15 in an offer; a response
                    // MUST carry a value.
                    parsed.client_max_window_bits = match (value, kind) {
                        (None, Kind::Offer) => ClientBits::NoValue,
                        (None, Kind::Response) => {
                            return Err("client_max_window_bits needs a value in a response");
                        }
                        (Some(v), _) => ClientBits::Value(
                            WindowBits::parse(v).ok_or("client_max_window_bits must be from 8 to 15")?,
                        ),
                    };
                    3
                }
                _ => return Err("unknown parameter"),
            };
            // §7: a duplicated parameter makes the offer (or response) invalid.
            if std::mem::replace(&mut seen[index], true) {
                return Err("duplicate parameter");
            }
        }
        Ok(parsed)
    }
}

/// Server role: picks the first acceptable permessage-deflate offer and
/// returns the agreed parameters with the `Sec-WebSocket-Extensions` value to
/// answer with.
///
/// Offers are considered in the client's order of preference (RFC 7692 §5).
/// An offer with an unknown parameter, a duplicated parameter or an invalid
/// value is declined and the next one is tried; `None` means none was
/// acceptable and the connection runs without compression. Other extensions
/// in `offers` are ignored.
///
/// What we answer:
/// - `server_no_context_takeover` when the client asks or our config wants
///   it (the server may always add it, §7.1.1.1);
/// - `client_no_context_takeover` when the client offers it or our config
///   asks for it (§7.1.1.2);
/// - `server_max_window_bits` = the smaller of the client's limit and ours,
///   whenever the client sent one or ours is below 15 (§7.1.2.1); a limit of
///   8 is accepted (see the module docs on 8-bit windows);
/// - `client_max_window_bits` = the smaller of the client's hint and our
///   preference, only when the client offered the parameter (§7.1.2.2: the
///   server MUST NOT send it otherwise) and the result is below 15. A client
///   that did not offer it (Firefox, Safari) may use the full window, so our
///   decompressor uses 15 bits then.
#[must_use]
pub fn negotiate_server(offers: &[ExtensionOffer], config: &DeflateConfig) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|offer| offer.name == EXTENSION_NAME)
        .find_map(|offer| Parsed::from_params(&offer.params, Kind::Offer).ok())
        .map(|offer| {
            let params = accept_offer(offer, config);
            (params, params.to_string())
        })
}

fn accept_offer(offer: Parsed, config: &DeflateConfig) -> DeflateParams {
    let ours = config.server_max_window_bits();
    let server_max_window_bits = match offer.server_max_window_bits {
        Some(theirs) => Some(min(theirs, ours)),
        None => (ours < WindowBits::MAX).then_some(ours),
    };
    let hint = config.client_max_window_bits();
    let client_max_window_bits = match offer.client_max_window_bits {
        ClientBits::Absent => None,
        ClientBits::NoValue => (hint < WindowBits::MAX).then_some(hint),
        ClientBits::Value(theirs) => Some(min(theirs, hint)).filter(|&b| b < WindowBits::MAX),
    };
    DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover || config.server_no_context_takeover(),
        client_no_context_takeover: offer.client_no_context_takeover || config.client_no_context_takeover(),
        server_max_window_bits,
        client_max_window_bits,
    }
}

/// Client role: the `Sec-WebSocket-Extensions` value to offer.
///
/// One offer, e.g. `permessage-deflate; client_max_window_bits` with the
/// defaults (what Chromium sends). `client_max_window_bits` is always
/// included — without a value when we may use the full window — so that the
/// server can ask for a smaller one to save its memory.
#[must_use]
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    if config.server_no_context_takeover() {
        offer.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover() {
        offer.push_str("; client_no_context_takeover");
    }
    let server_bits = config.server_max_window_bits();
    if server_bits < WindowBits::MAX {
        offer.push_str("; server_max_window_bits=");
        offer.push_str(&server_bits.to_string());
    }
    let client_bits = config.client_max_window_bits();
    if client_bits < WindowBits::MAX {
        offer.push_str("; client_max_window_bits=");
        offer.push_str(&client_bits.to_string());
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// Client role: checks the server's `Sec-WebSocket-Extensions` values against
/// the offer [`client_offer`] made from the same `config`.
///
/// `Ok(None)`: the server declined (no extension in the response); the
/// connection runs without compression. `Ok(Some(params))`: the agreed
/// parameters, where our own promises are folded in (a
/// `client_no_context_takeover` or a `client_max_window_bits` value we
/// offered binds us even if the server did not repeat it).
///
/// # Errors
/// [`NegotiationError`] when the answer is malformed, names an extension we
/// did not offer, accepts permessage-deflate twice, has unknown, duplicated
/// or invalid parameters, allows windows larger than we asked for, or
/// ignores our `server_no_context_takeover` / `server_max_window_bits`
/// request. The caller must then fail the connection.
pub fn accept_client_response<I>(values: I, config: &DeflateConfig) -> Result<Option<DeflateParams>, NegotiationError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut accepted = None;
    for ext in extension::parse(values)? {
        if ext.name != EXTENSION_NAME {
            return Err(NegotiationError::UnexpectedExtension(ext.name));
        }
        if accepted.is_some() {
            return Err(NegotiationError::DuplicateExtension);
        }
        let parsed = Parsed::from_params(&ext.params, Kind::Response).map_err(NegotiationError::InvalidParameter)?;
        accepted = Some(parsed);
    }
    accepted.map(|r| check_response(r, config)).transpose()
}

fn check_response(response: Parsed, config: &DeflateConfig) -> Result<DeflateParams, NegotiationError> {
    // §7.1.1.1: a server accepts an offer with server_no_context_takeover by
    // including it in the response; otherwise it must decline the offer.
    if config.server_no_context_takeover() && !response.server_no_context_takeover {
        return Err(NegotiationError::RequestIgnored("server_no_context_takeover"));
    }
    // §7.1.2.1: the response must carry server_max_window_bits with the same
    // or a smaller value than we asked for.
    let asked = config.server_max_window_bits();
    if asked < WindowBits::MAX {
        match response.server_max_window_bits {
            None => return Err(NegotiationError::RequestIgnored("server_max_window_bits")),
            Some(bits) if bits > asked => {
                return Err(NegotiationError::NotOffered("server_max_window_bits larger than requested"));
            }
            Some(_) => {}
        }
    }
    // §7.1.2.2: we always offer client_max_window_bits; the server may lower
    // it but not raise it above a value we offered.
    let ours = config.client_max_window_bits();
    let client_max_window_bits = match response.client_max_window_bits {
        ClientBits::Value(bits) if bits > ours => {
            return Err(NegotiationError::NotOffered("client_max_window_bits larger than offered"));
        }
        ClientBits::Value(bits) => Some(bits),
        // Responses never parse as NoValue; our offer's value still binds us.
        ClientBits::Absent | ClientBits::NoValue => (ours < WindowBits::MAX).then_some(ours),
    };
    Ok(DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        client_no_context_takeover: response.client_no_context_takeover || config.client_no_context_takeover(),
        server_max_window_bits: response.server_max_window_bits,
        client_max_window_bits,
    })
}
