//! Path patterns and the method's default action.

use axum::http::Method;

use super::route::{Compiled, Pattern};
use super::{PatternError, Route, default_action};

fn matches(pattern: &str, path: &str) -> bool {
    Pattern::parse(pattern).expect("a pattern").matches(path)
}

#[test]
fn literal_segments_match_exactly_and_whole() {
    assert!(matches("/v1/reports/generate", "/v1/reports/generate"));
    assert!(!matches("/v1/reports/generate", "/v1/reports"));
    assert!(!matches("/v1/reports/generate", "/v1/reports/generate/more"));
    assert!(
        !matches("/v1/reports/generate", "/v1/reports/generate/"),
        "a trailing slash is a segment"
    );
    assert!(!matches("/v1/reports/generate", "/v1/Reports/generate"), "case counts");
    assert!(!matches("/v1/reports/generate", "/v1/%72eports/generate"), "not decoded, as axum");
    assert!(!matches("/v1/reports", "//v1/reports"));
    assert!(matches("/", "/"));
    assert!(!matches("/", "/x"));
}

#[test]
fn a_param_takes_one_non_empty_segment() {
    assert!(matches("/v1/reports/{id}/export", "/v1/reports/42/export"));
    assert!(!matches("/v1/reports/{id}/export", "/v1/reports//export"));
    assert!(!matches("/v1/reports/{id}/export", "/v1/reports/42/43/export"));
    assert!(!matches("/v1/reports/{id}", "/v1/reports"));
}

#[test]
fn a_trailing_star_takes_the_rest_even_nothing() {
    for path in ["/v1/files", "/v1/files/", "/v1/files/a", "/v1/files/a/b/c"] {
        assert!(matches("/v1/files/*", path), "{path}");
    }
    assert!(!matches("/v1/files/*", "/v1/filesystem"));
    assert!(!matches("/v1/files/*", "/v1"));
    assert!(matches("/*", "/anything/at/all"));
}

#[test]
fn patterns_that_are_not_ones_are_refused() {
    assert_eq!(Pattern::parse("v1/reports"), Err(PatternError::NotAbsolute));
    assert_eq!(Pattern::parse("/v1/*/x"), Err(PatternError::MisplacedWildcard));
    assert_eq!(Pattern::parse("/v1/files*"), Err(PatternError::MisplacedWildcard));
    assert_eq!(Pattern::parse("/v1/{}"), Err(PatternError::BadParam { segment: "{}".into() }));
    assert_eq!(
        Pattern::parse("/v1/a{id}"),
        Err(PatternError::BadParam { segment: "a{id}".into() })
    );
    let long = format!("/{}", "a".repeat(super::limits::PATTERN_LEN_MAX));
    assert!(matches!(Pattern::parse(&long), Err(PatternError::TooLong { .. })));
    let deep = "/a".repeat(super::limits::PATTERN_SEGMENTS_MAX + 1);
    assert!(matches!(Pattern::parse(&deep), Err(PatternError::TooManySegments { .. })));
}

#[test]
fn a_get_route_maps_head_and_an_any_route_every_method() {
    let compiled = |route: Route| Compiled::new(route).expect("a pattern");
    let get = compiled(Route::get("/r", "f"));
    assert!(get.matches(&Method::GET, "/r"));
    assert!(get.matches(&Method::HEAD, "/r"));
    assert!(!get.matches(&Method::POST, "/r"));
    let any = compiled(Route::any("/r", "f"));
    for method in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
        assert!(any.matches(&method, "/r"));
    }
}

#[test]
fn methods_map_to_actions() {
    let actions: Vec<&str> = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ]
    .iter()
    .map(default_action)
    .collect();
    assert_eq!(
        actions,
        ["read", "read", "create", "update", "update", "delete", "options", "other"]
    );
}

#[test]
fn what_allowed_a_request_is_said_in_a_header_value() {
    use govern_policy::DecidedBy;
    let compiled = Compiled::new(Route::get("/r", "reports")).expect("a pattern");
    let said =
        |by: DecidedBy| compiled.decided_by(&by).map(|v| v.to_str().expect("ASCII").to_owned());
    assert_eq!(
        said(DecidedBy::PlanFeature("reports".into())).as_deref(),
        Some("plan_feature:reports")
    );
    assert_eq!(said(DecidedBy::PlanFeature("other".into())).as_deref(), Some("plan_feature:other"));
    assert_eq!(
        said(DecidedBy::Rule { id: "r1".into(), version: 3 }).as_deref(),
        Some("rule:r1@v3")
    );
    // A value a header cannot carry is left out rather than refused.
    assert_eq!(said(DecidedBy::Limit("bad\nname".into())), None);
}
