//! The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a bounded parser
//! for offers and responses, and the formatter for the values we send.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-token = registered-token
//! registered-token = token
//! extension-param = token [ "=" (token | quoted-string) ]
//!     ; When using the quoted-string syntax variant, the value
//!     ; after quoted-string unescaping MUST conform to the
//!     ; 'token' ABNF.
//! ```
//!
//! The header may appear on several lines; [`parse`] takes every value in
//! order and returns one flat list, as if the lines were joined with commas
//! (RFC 9110 §5.3). Whitespace (SP, HTAB) is accepted around `,`, `;` and
//! `=`, and empty list elements are skipped (RFC 9110 §5.6.1). The input comes
//! from the peer, so the number of extensions, of parameters per extension and
//! the length of every token are limited by [`ExtensionLimits`] and checked
//! before anything is allocated.

use std::fmt;

use thiserror::Error;

/// One extension of the header: the client's offer, or the server's answer
/// to an offer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`. Compared exactly.
    pub name: String,
    /// The parameters in the order they appeared; duplicates are kept (each
    /// extension decides whether they are an error).
    pub params: Vec<ExtensionParam>,
}

/// One `;`-separated parameter of an extension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionParam {
    /// The parameter token, e.g. `client_max_window_bits`.
    pub name: String,
    /// The value after `=`, unquoted; `None` when the parameter has no `=`.
    pub value: Option<String>,
}

impl ExtensionOffer {
    /// An extension with no parameters.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), params: Vec::new() }
    }

    /// Appends a parameter (builder style).
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: Option<String>) -> Self {
        self.params.push(ExtensionParam { name: name.into(), value });
        self
    }
}

impl fmt::Display for ExtensionOffer {
    /// Formats the extension as a header value element:
    /// `name; param; param=value`. Values that are not tokens are written as
    /// quoted strings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for param in &self.params {
            write!(f, "; {}", param.name)?;
            match &param.value {
                None => {}
                Some(v) if is_token(v.as_bytes()) => write!(f, "={v}")?,
                Some(v) => {
                    f.write_str("=\"")?;
                    for c in v.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"")?;
                }
            }
        }
        Ok(())
    }
}

/// Formats a list of extensions as one `Sec-WebSocket-Extensions` value.
#[must_use]
pub fn format(extensions: &[ExtensionOffer]) -> String {
    let mut out = String::new();
    for (i, ext) in extensions.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&ext.to_string());
    }
    out
}

/// Bounds on what a peer may put in `Sec-WebSocket-Extensions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionLimits {
    /// Most extensions across all header lines (default 16; browsers send 1).
    pub max_extensions: usize,
    /// Most parameters on one extension (default 16; permessage-deflate
    /// defines 4).
    pub max_params: usize,
    /// Longest extension name, parameter name or unescaped value in bytes
    /// (default 64).
    pub max_token_len: usize,
}

impl Default for ExtensionLimits {
    fn default() -> Self {
        Self { max_extensions: 16, max_params: 16, max_token_len: 64 }
    }
}

/// A `Sec-WebSocket-Extensions` value that is malformed or over a limit. A
/// server answers it with 400 Bad Request; a client fails the connection.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The value does not follow the RFC 6455 §9.1 grammar.
    #[error("malformed Sec-WebSocket-Extensions (line {line}, byte {offset}): {reason}")]
    Syntax {
        /// Index of the header line (0-based).
        line: usize,
        /// Byte offset in that line.
        offset: usize,
        /// What was expected.
        reason: &'static str,
    },
    /// More extensions than [`ExtensionLimits::max_extensions`].
    #[error("more than {limit} extensions")]
    TooManyExtensions {
        /// The limit.
        limit: usize,
    },
    /// More parameters on one extension than [`ExtensionLimits::max_params`].
    #[error("more than {limit} parameters on one extension")]
    TooManyParams {
        /// The limit.
        limit: usize,
    },
    /// A name or value longer than [`ExtensionLimits::max_token_len`].
    #[error("extension token longer than {limit} bytes")]
    TokenTooLong {
        /// The limit.
        limit: usize,
    },
}

/// Parses every `Sec-WebSocket-Extensions` header value, in order, with the
/// default [`ExtensionLimits`].
///
/// Accepts anything that yields byte strings: `&http::HeaderValue`, `&str`,
/// `&[u8]`. No values (or only empty elements) give an empty list.
///
/// # Errors
/// [`ExtensionError`] when a value is malformed or exceeds a limit.
pub fn parse<I>(values: I) -> Result<Vec<ExtensionOffer>, ExtensionError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    parse_with_limits(values, &ExtensionLimits::default())
}

/// [`parse`] with explicit limits.
///
/// # Errors
/// [`ExtensionError`] when a value is malformed or exceeds a limit.
pub fn parse_with_limits<I>(values: I, limits: &ExtensionLimits) -> Result<Vec<ExtensionOffer>, ExtensionError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for (line, value) in values.into_iter().enumerate() {
        let mut cursor = Cursor { bytes: value.as_ref(), pos: 0, line, limits };
        cursor.extension_list(&mut out)?;
    }
    Ok(out)
}

/// RFC 9110 §5.6.2 `tchar`.
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty `token`.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A position in one header line.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    limits: &'a ExtensionLimits,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn syntax(&self, reason: &'static str) -> ExtensionError {
        ExtensionError::Syntax { line: self.line, offset: self.pos, reason }
    }

    /// Optional whitespace: `*( SP / HTAB )`.
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// `extension-list`, appending to `out`.
    fn extension_list(&mut self, out: &mut Vec<ExtensionOffer>) -> Result<(), ExtensionError> {
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                // An empty list element: `a, , b` or a leading comma.
                Some(b',') => self.pos += 1,
                Some(_) => {
                    if out.len() >= self.limits.max_extensions {
                        return Err(ExtensionError::TooManyExtensions { limit: self.limits.max_extensions });
                    }
                    let ext = self.extension()?;
                    out.push(ext);
                }
            }
        }
    }

    /// `extension`, up to and including the `,` that ends it (or the end).
    fn extension(&mut self) -> Result<ExtensionOffer, ExtensionError> {
        let name = self.token("expected an extension name")?;
        let mut params = Vec::new();
        loop {
            self.skip_ows();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.pos += 1;
                    break;
                }
                Some(b';') => {
                    self.pos += 1;
                    if params.len() >= self.limits.max_params {
                        return Err(ExtensionError::TooManyParams { limit: self.limits.max_params });
                    }
                    params.push(self.param()?);
                }
                Some(_) => return Err(self.syntax("expected ';' or ','")),
            }
        }
        Ok(ExtensionOffer { name, params })
    }

    /// `extension-param`, after its `;`.
    fn param(&mut self) -> Result<ExtensionParam, ExtensionError> {
        self.skip_ows();
        let name = self.token("expected a parameter name")?;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Ok(ExtensionParam { name, value: None });
        }
        self.pos += 1;
        self.skip_ows();
        let value =
            if self.peek() == Some(b'"') { self.quoted_token()? } else { self.token("expected a parameter value")? };
        Ok(ExtensionParam { name, value: Some(value) })
    }

    /// A bare `token`, checked against the length limit before allocating.
    fn token(&mut self, what: &'static str) -> Result<String, ExtensionError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let token = &self.bytes[start..self.pos];
        if token.is_empty() {
            return Err(self.syntax(what));
        }
        if token.len() > self.limits.max_token_len {
            return Err(ExtensionError::TokenTooLong { limit: self.limits.max_token_len });
        }
        // Every tchar is ASCII, so this never replaces anything.
        Ok(String::from_utf8_lossy(token).into_owned())
    }

    /// A `quoted-string` whose unescaped content must be a `token`.
    fn quoted_token(&mut self) -> Result<String, ExtensionError> {
        self.pos += 1; // the opening DQUOTE
        let mut value = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.syntax("unterminated quoted-string"));
            };
            self.pos += 1;
            let c = match b {
                b'"' => break,
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.syntax("unterminated quoted-pair"));
                    };
                    self.pos += 1;
                    escaped
                }
                other => other,
            };
            // RFC 6455 §9.1: the unescaped value MUST conform to `token`.
            if !is_tchar(c) {
                return Err(self.syntax("quoted value is not a token"));
            }
            if value.len() >= self.limits.max_token_len {
                return Err(ExtensionError::TokenTooLong { limit: self.limits.max_token_len });
            }
            value.push(c);
        }
        if value.is_empty() {
            return Err(self.syntax("quoted value is not a token"));
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>) -> ExtensionParam {
        ExtensionParam { name: name.into(), value: value.map(Into::into) }
    }

    fn one(value: &str) -> Result<Vec<ExtensionOffer>, ExtensionError> {
        parse([value])
    }

    #[test]
    fn browser_offers() {
        let chrome = one("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(chrome.len(), 1);
        assert_eq!(chrome[0].name, "permessage-deflate");
        assert_eq!(chrome[0].params, [p("client_max_window_bits", None)]);

        let firefox = one("permessage-deflate").unwrap();
        assert_eq!(firefox, [ExtensionOffer::new("permessage-deflate")]);
    }

    #[test]
    fn several_offers_params_and_whitespace() {
        let got = one(" permessage-deflate ;client_no_context_takeover;\tserver_max_window_bits = 10 ,\
             permessage-deflate , x-foo; a=\"b\\c\"")
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].params, [p("client_no_context_takeover", None), p("server_max_window_bits", Some("10"))]);
        assert!(got[1].params.is_empty());
        assert_eq!(got[2].name, "x-foo");
        assert_eq!(got[2].params, [p("a", Some("bc"))]);
    }

    #[test]
    fn several_header_lines_and_empty_elements() {
        let got = parse([
            "permessage-deflate; client_max_window_bits",
            ",, ",
            "",
            "permessage-deflate, ,x-webkit-deflate-frame",
        ])
        .unwrap();
        let names: Vec<_> = got.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["permessage-deflate", "permessage-deflate", "x-webkit-deflate-frame"]);
        assert!(parse(Vec::<&[u8]>::new()).unwrap().is_empty());
    }

    #[test]
    fn quoted_values_are_unescaped() {
        let got = one("permessage-deflate; server_max_window_bits=\"10\"").unwrap();
        assert_eq!(got[0].params, [p("server_max_window_bits", Some("10"))]);
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; =10",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"\"",
            "permessage-deflate; a=\"1 0\"",
            "permessage-deflate; a=\"10",
            "permessage-deflate; a=\"10\\",
            "permessage-deflate; a=1 0",
            "permessage-deflate x",
            "permessage-deflate; a=b=c",
            "; a",
            "perm\u{e9}ssage",
            "a, b; \"c\"",
        ] {
            let err = one(bad).unwrap_err();
            assert!(matches!(err, ExtensionError::Syntax { .. }), "{bad:?}: {err}");
        }
        let err = parse(["a", "b; ="]).unwrap_err();
        assert_eq!(err, ExtensionError::Syntax { line: 1, offset: 3, reason: "expected a parameter name" });
    }

    #[test]
    fn limits_are_enforced() {
        let many = vec!["permessage-deflate"; 17].join(", ");
        assert_eq!(one(&many), Err(ExtensionError::TooManyExtensions { limit: 16 }));
        let lines = vec!["permessage-deflate"; 17];
        assert_eq!(parse(&lines), Err(ExtensionError::TooManyExtensions { limit: 16 }));
        let params = format!("x{}", "; a".repeat(17));
        assert_eq!(one(&params), Err(ExtensionError::TooManyParams { limit: 16 }));
        let long = "a".repeat(65);
        assert_eq!(one(&long), Err(ExtensionError::TokenTooLong { limit: 64 }));
        let quoted = format!("x; a=\"{long}\"");
        assert_eq!(one(&quoted), Err(ExtensionError::TokenTooLong { limit: 64 }));
        assert!(one(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn display_round_trips() {
        let exts = vec![
            ExtensionOffer::new("permessage-deflate")
                .with_param("server_no_context_takeover", None)
                .with_param("client_max_window_bits", Some("12".into())),
            ExtensionOffer::new("x").with_param("q", Some("a b\"".into())),
        ];
        let text = format(&exts);
        assert_eq!(
            text,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12, \
             x; q=\"a b\\\"\""
        );
        // The quoted value is not a token, so it does not parse back; the
        // first extension does.
        assert_eq!(one(&format(&exts[..1])).unwrap(), exts[..1]);
    }
}
