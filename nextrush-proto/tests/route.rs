//! Router: parameters, percent-decoding, the trailing-slash rule, and
//! static-over-parameter precedence.

use nextrush_proto::route::{MAX_PARAMS, Params, RouteError, Router};
use proptest::prelude::*;

fn router(patterns: &[&'static str]) -> Router<&'static str> {
    let mut r = Router::new();
    for p in patterns {
        r.add(p, *p).unwrap();
    }
    r
}

fn hit<'a>(r: &'a Router<&'static str>, path: &str) -> Option<(&'a str, Params)> {
    r.find(path).map(|(h, p)| (*h, p))
}

#[test]
fn params_are_captured() {
    let r = router(&["/chat/:roomId", "/games/:gameId/players/:playerId", "/"]);
    let (h, p) = hit(&r, "/chat/lobby").unwrap();
    assert_eq!((h, p.get("roomId")), ("/chat/:roomId", Some("lobby")));
    let (h, p) = hit(&r, "/games/g1/players/p_2").unwrap();
    assert_eq!(h, "/games/:gameId/players/:playerId");
    assert_eq!(p.iter().collect::<Vec<_>>(), [("gameId", "g1"), ("playerId", "p_2")]);
    assert_eq!((p.len(), p.get("nope")), (2, None));
    let (h, p) = hit(&r, "/").unwrap();
    assert_eq!(h, "/");
    assert!(p.is_empty());
    assert!(hit(&r, "/games/g1/players").is_none());
    assert!(hit(&r, "/chat").is_none());
    assert!(hit(&r, "chat/lobby").is_none());
    assert!(hit(&r, "").is_none());
}

#[test]
fn param_values_are_percent_decoded_after_splitting() {
    let r = router(&["/chat/:room", "/caf%C3%A9"]);
    assert_eq!(hit(&r, "/chat/caf%C3%A9").unwrap().1.get("room"), Some("café"));
    assert_eq!(hit(&r, "/chat/a%2Fb").unwrap().1.get("room"), Some("a/b"));
    assert_eq!(hit(&r, "/chat/a+b").unwrap().1.get("room"), Some("a+b"), "+ is not a space in paths");
    assert_eq!(hit(&r, "/chat/100%").unwrap().1.get("room"), Some("100%"), "invalid escapes stay literal");
    // Static segments are compared decoded, whichever way they are written.
    assert_eq!(hit(&r, "/café").unwrap().0, "/caf%C3%A9");
    assert_eq!(hit(&r, "/caf%c3%a9").unwrap().0, "/caf%C3%A9");
}

#[test]
fn invalid_utf8_after_decoding_matches_nothing() {
    let r = router(&["/chat/:room", "/files/*rest"]);
    assert!(hit(&r, "/chat/%FF").is_none());
    assert!(hit(&r, "/chat/%C3").is_none());
    assert!(hit(&r, "/files/ok/%FE").is_none());
}

#[test]
fn trailing_slash_is_significant() {
    let r = router(&["/chat/:room"]);
    assert!(hit(&r, "/chat/x").is_some());
    assert!(hit(&r, "/chat/x/").is_none());
    assert!(hit(&r, "/chat/").is_none(), "a parameter never matches an empty segment");
    let r = router(&["/chat/:room/", "/about"]);
    assert_eq!(hit(&r, "/chat/x/").unwrap().1.get("room"), Some("x"));
    assert!(hit(&r, "/chat/x").is_none());
    assert!(hit(&r, "/about/").is_none());
    assert!(hit(&r, "//about").is_none());
}

#[test]
fn wildcard_takes_the_rest() {
    let r = router(&["/files/*path"]);
    assert_eq!(hit(&r, "/files/a/b%20c/d").unwrap().1.get("path"), Some("a/b c/d"));
    assert_eq!(hit(&r, "/files/").unwrap().1.get("path"), Some(""));
    assert_eq!(hit(&r, "/files/a/").unwrap().1.get("path"), Some("a/"));
    assert!(hit(&r, "/files").is_none());
}

#[test]
fn static_beats_param_beats_wildcard() {
    // Added in every order: the winner does not depend on insertion order.
    let patterns = ["/chat/:room", "/chat/lobby", "/chat/*rest", "/*all", "/a/:x/c", "/a/b/:y"];
    for rotation in 0..patterns.len() {
        let mut ordered = patterns.to_vec();
        ordered.rotate_left(rotation);
        let r = router(&ordered);
        assert_eq!(hit(&r, "/chat/lobby").unwrap().0, "/chat/lobby");
        assert_eq!(hit(&r, "/chat/other").unwrap().0, "/chat/:room");
        assert_eq!(hit(&r, "/chat/a/b").unwrap().0, "/chat/*rest");
        assert_eq!(hit(&r, "/chat/").unwrap().0, "/chat/*rest");
        assert_eq!(hit(&r, "/elsewhere").unwrap().0, "/*all");
        let (h, p) = hit(&r, "/a/b/c").unwrap();
        assert_eq!((h, p.get("y")), ("/a/b/:y", Some("c")));
        assert_eq!(hit(&r, "/a/z/c").unwrap().0, "/a/:x/c");
    }
}

#[test]
fn bad_patterns_are_errors() {
    let mut r: Router<()> = Router::new();
    assert_eq!(r.add("chat", ()), Err(RouteError::MissingLeadingSlash));
    assert_eq!(r.add("/a//b", ()), Err(RouteError::EmptySegment));
    assert_eq!(r.add("/a/:", ()), Err(RouteError::InvalidParamName(String::new())));
    assert_eq!(r.add("/a/:b-c", ()), Err(RouteError::InvalidParamName("b-c".into())));
    assert_eq!(r.add("/:a/:a", ()), Err(RouteError::DuplicateParam("a".into())));
    assert_eq!(r.add("/*a/b", ()), Err(RouteError::WildcardNotLast));
    assert_eq!(r.add("/%FF", ()), Err(RouteError::InvalidEncoding));
    let many: String = (0..=MAX_PARAMS).map(|i| format!("/:p{i}")).collect();
    assert_eq!(r.add(&many, ()), Err(RouteError::TooManyParams { limit: MAX_PARAMS }));
    let most: String = (0..MAX_PARAMS).map(|i| format!("/:p{i}")).collect();
    assert_eq!(r.add(&most, ()), Ok(()));
    assert_eq!(r.len(), 1);
}

#[test]
fn same_shape_patterns_conflict() {
    let mut r = Router::new();
    r.add("/chat/:room", 1).unwrap();
    let conflict = RouteError::Conflict { existing: "/chat/:room".into() };
    assert_eq!(r.add("/chat/:other", 2), Err(conflict));
    r.add("/chat/:room/", 3).unwrap();
    r.add("/chat/lobby", 4).unwrap();
    assert_eq!(r.add("/chat/lobby", 5), Err(RouteError::Conflict { existing: "/chat/lobby".into() }));
    assert_eq!(r.patterns().collect::<Vec<_>>(), ["/chat/:room", "/chat/:room/", "/chat/lobby"]);
}

proptest! {
    #[test]
    fn any_path_is_safe_and_params_round_trip(room in "[^/]{1,40}", path in ".{0,80}") {
        let r = router(&["/chat/:room", "/files/*rest", "/"]);
        let _ = r.find(&path);
        // Any room name, percent-encoded, comes back decoded.
        let encoded: String = room.bytes().map(|b| format!("%{b:02X}")).collect();
        let (_, p) = r.find(&format!("/chat/{encoded}")).unwrap();
        prop_assert_eq!(p.get("room"), Some(room.as_str()));
    }
}
