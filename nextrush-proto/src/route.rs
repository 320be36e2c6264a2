//! Routing upgrade requests by path: `/chat/:room`, `/files/*rest`.
//!
//! # Rules
//!
//! - A pattern is `/` followed by `/`-separated segments: a static segment
//!   (`chat`), a parameter (`:room`, matching one non-empty segment) or, last
//!   only, a wildcard (`*rest`, matching all remaining segments, possibly an
//!   empty one). Parameter names are ASCII letters, digits and `_`, unique in a
//!   pattern, at most [`MAX_PARAMS`] of them.
//! - Matching splits the raw path on `/` first and percent-decodes each
//!   segment after, so `%2F` stays inside its segment: `/chat/a%2Fb` gives
//!   `room = "a/b"`. Static segments of the pattern are percent-decoded too, so
//!   `/café` and `/caf%C3%A9` are the same pattern. A segment whose decoding is
//!   not UTF-8 matches nothing, so the request falls through to 404 (rather
//!   than reaching a handler with mangled text). `+` is not a space in paths.
//! - Trailing slashes are significant: `/chat/x/` does **not** match
//!   `/chat/:room` (its last segment is empty, and parameters never match an
//!   empty segment); a pattern that should accept it says so (`/chat/:room/`).
//!   `/` is the root pattern and matches only `/`. The wildcard in
//!   `/files/*rest` matches `/files/` (`rest = ""`) and `/files/a/b`
//!   (`rest = "a/b"`) but not `/files`.
//! - When several patterns match, the most specific wins: comparing segment by
//!   segment from the left, static beats parameter beats wildcard. So
//!   `/chat/lobby` beats `/chat/:room`, and `/a/b/:x` beats `/a/:y/c` for
//!   `/a/b/c`. Two patterns with the same shape (the same statics in the same
//!   places) are rejected by [`Router::add`], so the winner is always unique.
//!
//! Lookup is a scan over the routes (linear in their number and the path
//! length): WebSocket servers have a handful of endpoints.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use thiserror::Error;

use crate::handshake::percent;

/// Most parameters (wildcard included) in one pattern.
pub const MAX_PARAMS: usize = 16;

/// A pattern that cannot be added.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RouteError {
    /// Patterns start with `/`.
    #[error("pattern must start with '/'")]
    MissingLeadingSlash,
    /// `//` inside a pattern (only a trailing `/` may leave a segment empty).
    #[error("empty segment in pattern")]
    EmptySegment,
    /// A `:name` or `*name` with an empty or non-`[A-Za-z0-9_]` name.
    #[error("invalid parameter name {0:?}")]
    InvalidParamName(String),
    /// The same parameter name twice in one pattern.
    #[error("duplicate parameter name {0:?}")]
    DuplicateParam(String),
    /// A `*wildcard` that is not the last segment.
    #[error("wildcard must be the last segment")]
    WildcardNotLast,
    /// More than [`MAX_PARAMS`] parameters.
    #[error("more than {limit} parameters")]
    TooManyParams {
        /// The limit.
        limit: usize,
    },
    /// A static segment whose percent-decoding is not UTF-8.
    #[error("static segment is not UTF-8 after percent-decoding")]
    InvalidEncoding,
    /// A route with the same shape exists (it would match the same paths).
    #[error("pattern conflicts with {existing:?}")]
    Conflict {
        /// The pattern already added.
        existing: String,
    },
}

/// Parameters captured by a match, percent-decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(Arc<str>, String)>,
}

impl Params {
    /// The value captured for `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| &**n == name).map(|(_, v)| v.as_str())
    }

    /// All `(name, value)` pairs, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// Number of captured parameters.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether nothing was captured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Static(String),
    Param(Arc<str>),
    Wildcard(Arc<str>),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Self::Static(_) => 0,
            Self::Param(_) => 1,
            Self::Wildcard(_) => 2,
        }
    }

    /// Equal ignoring parameter names.
    fn same_shape(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Static(a), Self::Static(b)) => a == b,
            _ => self.rank() == other.rank(),
        }
    }
}

#[derive(Clone, Debug)]
struct Route<H> {
    pattern: String,
    segments: Vec<Segment>,
    handler: H,
}

/// Maps upgrade-request paths to handlers of any type `H` (see the module
/// docs for the rules).
#[derive(Clone, Debug)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<H> Router<H> {
    /// An empty router.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    ///
    /// # Errors
    /// The pattern is malformed or has the same shape as one already added.
    pub fn add(&mut self, pattern: &str, handler: H) -> Result<(), RouteError> {
        let segments = parse_pattern(pattern)?;
        let clash = self.routes.iter().find(|r| {
            r.segments.len() == segments.len() && r.segments.iter().zip(&segments).all(|(a, b)| a.same_shape(b))
        });
        if let Some(existing) = clash {
            return Err(RouteError::Conflict { existing: existing.pattern.clone() });
        }
        self.routes.push(Route { pattern: pattern.to_owned(), segments, handler });
        Ok(())
    }

    /// The handler for `path` (a raw, percent-encoded path without query,
    /// such as [`Request::path`](crate::handshake::Request::path)) and the
    /// parameters it captured; `None` (answer 404) when no route matches.
    #[must_use]
    pub fn find(&self, path: &str) -> Option<(&H, Params)> {
        let rest = path.strip_prefix('/')?;
        let decoded: Vec<Option<Cow<'_, str>>> = rest.split('/').map(|s| percent::decode_utf8(s, false)).collect();
        let mut best: Option<(&Route<H>, Params)> = None;
        for route in &self.routes {
            let Some(params) = match_route(&route.segments, &decoded) else {
                continue;
            };
            let better = best.as_ref().is_none_or(|(b, _)| more_specific(&route.segments, &b.segments));
            if better {
                best = Some((route, params));
            }
        }
        best.map(|(route, params)| (&route.handler, params))
    }

    /// The patterns added, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.pattern.as_str())
    }

    /// Number of routes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, RouteError> {
    let rest = pattern.strip_prefix('/').ok_or(RouteError::MissingLeadingSlash)?;
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    let mut names: Vec<Arc<str>> = Vec::new();
    for (i, seg) in raw.iter().enumerate() {
        let last = i + 1 == raw.len();
        let segment = if let Some(name) = seg.strip_prefix(':') {
            Segment::Param(param_name(name, &mut names)?)
        } else if let Some(name) = seg.strip_prefix('*') {
            if !last {
                return Err(RouteError::WildcardNotLast);
            }
            Segment::Wildcard(param_name(name, &mut names)?)
        } else if seg.is_empty() && !last {
            return Err(RouteError::EmptySegment);
        } else {
            let text = percent::decode_utf8(seg, false).ok_or(RouteError::InvalidEncoding)?;
            Segment::Static(text.into_owned())
        };
        segments.push(segment);
    }
    Ok(segments)
}

fn param_name(name: &str, names: &mut Vec<Arc<str>>) -> Result<Arc<str>, RouteError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(RouteError::InvalidParamName(name.to_owned()));
    }
    if names.iter().any(|n| &**n == name) {
        return Err(RouteError::DuplicateParam(name.to_owned()));
    }
    if names.len() == MAX_PARAMS {
        return Err(RouteError::TooManyParams { limit: MAX_PARAMS });
    }
    let name: Arc<str> = Arc::from(name);
    names.push(name.clone());
    Ok(name)
}

/// Matches decoded path segments (`None`: not UTF-8) against a pattern.
fn match_route(pattern: &[Segment], path: &[Option<Cow<'_, str>>]) -> Option<Params> {
    let mut params = Params::default();
    for (i, segment) in pattern.iter().enumerate() {
        match segment {
            Segment::Static(s) => {
                if path.get(i)?.as_deref()? != s {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = path.get(i)?.as_deref()?;
                if value.is_empty() {
                    return None;
                }
                params.pairs.push((name.clone(), value.to_owned()));
            }
            Segment::Wildcard(name) => {
                let rest = path.get(i..).filter(|r| !r.is_empty())?;
                let parts: Option<Vec<&str>> = rest.iter().map(Option::as_deref).collect();
                params.pairs.push((name.clone(), parts?.join("/")));
                return Some(params);
            }
        }
    }
    (path.len() == pattern.len()).then_some(params)
}

/// Whether pattern `a` beats pattern `b` (both matched): leftmost differing
/// segment kind, static < param < wildcard.
fn more_specific(a: &[Segment], b: &[Segment]) -> bool {
    let ranks = |s: &[Segment]| s.iter().map(Segment::rank).collect::<Vec<_>>();
    ranks(a).cmp(&ranks(b)) == Ordering::Less
}
