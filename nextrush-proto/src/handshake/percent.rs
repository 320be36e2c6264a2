//! Percent-decoding (RFC 3986 §2.1) for paths and query strings.
//!
//! Decoding is lenient in the WHATWG URL way: a `%` not followed by two hex
//! digits stays as it is. Whether the decoded bytes must be UTF-8 is the
//! caller's choice ([`decode_utf8`] or [`decode_lossy`]).

use std::borrow::Cow;

/// Decodes `%XX` escapes, and `+` as a space when `plus_as_space` (the
/// `application/x-www-form-urlencoded` rule for query strings). Borrows when
/// there is nothing to decode.
pub(crate) fn decode(input: &str, plus_as_space: bool) -> Cow<'_, [u8]> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || (plus_as_space && b == b'+')) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => match (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Decodes, then requires UTF-8: `None` when the decoded bytes are not.
pub(crate) fn decode_utf8(input: &str, plus_as_space: bool) -> Option<Cow<'_, str>> {
    match decode(input, plus_as_space) {
        Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
    }
}

/// Decodes, replacing invalid UTF-8 with U+FFFD.
pub(crate) fn decode_lossy(input: &str, plus_as_space: bool) -> Cow<'_, str> {
    match decode(input, plus_as_space) {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(&*decode("a%20b+c", true), b"a b c");
        assert_eq!(&*decode("a%20b+c", false), b"a b+c");
        assert_eq!(&*decode("caf%C3%a9", false), "café".as_bytes());
        assert!(matches!(decode("plain", true), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_escapes_stay_literal() {
        assert_eq!(&*decode("%zz%4", false), b"%zz%4");
        assert_eq!(&*decode("%", false), b"%");
        assert_eq!(&*decode("100%25", false), b"100%");
    }

    #[test]
    fn utf8_checks() {
        assert_eq!(decode_utf8("%FF", false), None);
        assert_eq!(decode_lossy("%FFa", false), "\u{FFFD}a");
        assert_eq!(decode_utf8("%E2%82%AC", false).as_deref(), Some("€"));
    }
}
