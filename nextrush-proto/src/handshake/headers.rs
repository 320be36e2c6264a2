//! Header helpers shared by both roles: conversion from httparse, token lists,
//! single-valued fields.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// A header name or value that the `http` crate does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidHeader;

/// A field that must appear at most once appeared more often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate;

/// Copies parsed headers into a [`HeaderMap`] (order of equal names kept).
/// Uses the fallible `http` calls, so no header count can make it panic.
pub(crate) fn to_header_map(headers: &[httparse::Header<'_>]) -> Result<HeaderMap, InvalidHeader> {
    let mut map = HeaderMap::try_with_capacity(headers.len()).map_err(|_| InvalidHeader)?;
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| InvalidHeader)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| InvalidHeader)?;
        map.try_append(name, value).map_err(|_| InvalidHeader)?;
    }
    Ok(map)
}

/// Header slots for httparse: `max_headers`, but never more than a head of
/// `max_head_bytes` can hold (a field line takes at least 3 bytes, `a:\n`),
/// so a huge configured count does not allocate a huge array.
pub(crate) fn slots(max_headers: usize, max_head_bytes: usize) -> Vec<httparse::Header<'static>> {
    vec![httparse::EMPTY_HEADER; max_headers.min(max_head_bytes / 3 + 1)]
}

/// The elements of every `name` field, split on commas, trimmed, empty
/// elements skipped (RFC 9110 §5.6.1 list syntax). Values that are not
/// visible ASCII are skipped.
pub(crate) fn list<'a>(map: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    map.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Whether the `name` list holds `token`, compared ASCII-case-insensitively.
pub(crate) fn has_token(map: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    list(map, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The one value of `name`, trimmed; `Ok(None)` when absent. A value that
/// is not visible ASCII reads as `Some("")`, which no check accepts.
pub(crate) fn single<'a>(map: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Duplicate> {
    let mut values = map.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Duplicate);
    }
    Ok(Some(first.to_str().map_or("", str::trim)))
}

/// RFC 9110 §5.6.2 `token`: one or more `tchar`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONNECTION;

    #[test]
    fn token_lists_are_case_insensitive_and_comma_split() {
        let mut map = HeaderMap::new();
        map.append(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&map, &CONNECTION, "upgrade"));
        assert!(has_token(&map, &CONNECTION, "keep-alive"));
        assert!(!has_token(&map, &CONNECTION, "close"));
        map.append(CONNECTION, HeaderValue::from_static(" ,, close "));
        assert_eq!(list(&map, &CONNECTION).collect::<Vec<_>>(), ["keep-alive", "Upgrade", "close"]);
        assert_eq!(single(&map, &CONNECTION), Err(Duplicate));
    }

    #[test]
    fn tokens() {
        assert!(is_token("chat.v2+json"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a/b"));
        assert!(!is_token("é"));
    }
}
